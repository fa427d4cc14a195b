package hpo

import (
	"math"
	"math/rand/v2"
	"slices"
)

// This file is TPE's Parzen estimator (Optuna 3.1, parzen_estimator.py):
// a mixture of one kernel per observation plus a prior kernel, in the
// "internal" space where log parameters are ln(x) and categoricals are
// choice indices. A univariate estimator covers one parameter; a
// multivariate one covers several with one shared component per sample.

const (
	tpeEPS          = 1e-12
	tpeSigma0       = 0.2 // Scott's-rule factor of the multivariate bandwidth
	logSqrt2Pi      = 0.9189385332046727
	maxOffsetTable  = 1 << 12 // grid sizes up to this use cached discrete masses
	negligibleLogPr = -40.0   // kernels this far below the best add < 1e-17 relative
)

type parzenParams struct {
	considerPrior     bool
	priorWeight       float64
	considerMagicClip bool
	considerEndpoints bool
	multivariate      bool
}

// parzenDim is one parameter's kernels.
type parzenDim struct {
	d   dim
	cat bool
	// numerical: bounds of the internal space, grid step (0: continuous), kernels
	low, high, q   float64
	mu, sigma      []float64
	logZ           []float64 // log of each kernel's mass on [low, high]
	invSigma, logC []float64 // 1/σ and −log σ − log√(2π) − logZ, for continuous densities
	grid           []int     // kernel's index on the step grid, −1 if off-grid (prior)
	offsetLogMass  []float64 // multivariate discrete: log mass by grid offset (NaN = not yet computed)
	// categorical: observed choice per kernel (−1 for the prior), row probabilities
	obs            []int
	pObs, pOther   float64
	mixture        []float64 // univariate: log P(choice) of the whole mixture
	nChoices       int
	univariateMass []parzenMerged // univariate numerical: kernels merged by (μ, σ)
}

// parzenMerged is a univariate kernel with its weight and constants folded in.
type parzenMerged struct {
	mu, sigma, invSigma float64
	logZ                float64 // log mass on the bounds
	logWC               float64 // log weight − logZ (and − log σ√(2π) when continuous)
}

type parzenEstimator struct {
	weights []float64
	logW    []float64
	dims    []parzenDim
	params  parzenParams
}

// internalValue maps an internal parameter value into the estimator's space.
func (d dim) toParzen(v float64) float64 {
	if d.log {
		return math.Log(v)
	}
	return v
}

// parzenBounds are the estimator's bounds and grid step for a numerical dim.
func (d dim) parzenBounds() (low, high, q float64) {
	switch {
	case d.kind == dimInt && d.log:
		return math.Log(d.low - 0.5), math.Log(d.high + 0.5), 0
	case d.log:
		return math.Log(d.low), math.Log(d.high), 0
	case d.step > 0:
		return d.low - d.step/2, d.high + d.step/2, d.step
	}
	return d.low, d.high, 0
}

// newParzenEstimator builds the estimator from observations obs[i][k]
// (internal values of dims[k] for observation i) and their weights before
// the prior is added (nil: the default ramp weights).
func newParzenEstimator(dims []dim, obs [][]float64, weights []float64, p parzenParams) *parzenEstimator {
	n := len(obs)
	if weights == nil {
		weights = defaultTPEWeights(n)
	}
	considerPrior := p.considerPrior || n == 0
	w := append([]float64(nil), weights[:n]...)
	if considerPrior {
		w = append(w, p.priorWeight)
	}
	sum := 0.0
	for _, x := range w {
		sum += x
	}
	e := &parzenEstimator{weights: w, params: p}
	for i := range w {
		w[i] /= sum
	}
	if p.multivariate {
		e.logW = make([]float64, len(w))
		for i := range w {
			e.logW[i] = math.Log(w[i])
		}
	}
	sigma0 := 0.0
	if p.multivariate {
		sigma0 = tpeSigma0 * math.Pow(float64(max(n, 1)), -1/float64(len(dims)+4))
	}
	for k, d := range dims {
		pd := parzenDim{d: d}
		if d.kind == dimCategorical {
			pd.cat = true
			pd.nChoices = d.choices
			var value float64
			if considerPrior {
				value = p.priorWeight / float64(n+1)
			} else {
				value = p.priorWeight / float64(n)
			}
			rowSum := value*float64(d.choices) + 1
			pd.pObs, pd.pOther = (value+1)/rowSum, value/rowSum
			pd.obs = make([]int, len(w))
			for i := range obs {
				pd.obs[i] = int(obs[i][k])
			}
			if considerPrior {
				pd.obs[n] = -1
			}
			if !p.multivariate {
				pd.mixture = make([]float64, d.choices)
				for c := range pd.mixture {
					pr := 0.0
					for i, o := range pd.obs {
						pr += w[i] * pd.rowProb(o, c)
					}
					pd.mixture[c] = math.Log(pr)
				}
			}
			e.dims = append(e.dims, pd)
			continue
		}
		pd.low, pd.high, pd.q = d.parzenBounds()
		mus := make([]float64, len(w))
		for i := range obs {
			mus[i] = d.toParzen(obs[i][k])
		}
		if considerPrior {
			mus[n] = (pd.low + pd.high) / 2
		}
		sigmas := make([]float64, len(w))
		span := pd.high - pd.low
		var bucket []int
		nBuckets := 0
		if p.multivariate {
			for i := range sigmas {
				sigmas[i] = sigma0 * span
			}
		} else {
			bucket, nBuckets = univariateSigmas(mus, sigmas, pd.low, pd.high, p.considerEndpoints)
		}
		minSigma := tpeEPS
		if p.considerMagicClip {
			minSigma = span / math.Min(100, 1+float64(len(mus)))
		}
		for i := range sigmas {
			sigmas[i] = clamp(sigmas[i], minSigma, span)
		}
		if considerPrior {
			sigmas[n] = span
			if bucket != nil {
				bucket[n] = nBuckets // the prior's σ is its own
				nBuckets++
			}
		}
		pd.mu, pd.sigma = mus, sigmas
		if !p.multivariate {
			pd.univariateMass = mergeKernels(bucket, nBuckets, mus, sigmas, w, pd.low, pd.high, pd.q)
			e.dims = append(e.dims, pd)
			continue
		}
		pd.logZ = make([]float64, len(w))
		pd.invSigma = make([]float64, len(w))
		pd.logC = make([]float64, len(w))
		for i := range mus {
			pd.logZ[i] = logGaussMass((pd.low-mus[i])/sigmas[i], (pd.high-mus[i])/sigmas[i])
			pd.invSigma[i] = 1 / sigmas[i]
			pd.logC[i] = -math.Log(sigmas[i]) - logSqrt2Pi - pd.logZ[i]
		}
		if p.multivariate && pd.q > 0 && d.gridSize() <= maxOffsetTable {
			pd.grid = make([]int, len(mus))
			for i := range mus {
				pd.grid[i] = gridIndex(d, mus[i])
			}
			if considerPrior {
				pd.grid[n] = -1
			}
			pd.offsetLogMass = make([]float64, 2*int(d.gridSize())-1)
			for i := range pd.offsetLogMass {
				pd.offsetLogMass[i] = math.NaN()
			}
		}
		e.dims = append(e.dims, pd)
	}
	return e
}

// univariateSigmas sets each kernel's bandwidth as Optuna does: the larger
// gap to its neighbours among the sorted means padded with the bounds; without
// considerEndpoints the outermost kernels use their inner gap only. Equal
// means (frequent for discrete parameters) sit in runs where only the first
// and last kernel see a gap. Instead of sorting kernels it sorts the values
// and places each kernel in its run, which also yields buckets of kernels
// with identical (μ, σ) for mergeKernels: 3 per distinct value (first or
// single, middle, last of the run).
func univariateSigmas(mus, sigmas []float64, low, high float64, considerEndpoints bool) (bucket []int, nBuckets int) {
	sorted := slices.Clone(mus)
	slices.Sort(sorted)
	var distinct []float64
	var runLen []int
	for _, v := range sorted {
		if len(distinct) == 0 || v != distinct[len(distinct)-1] {
			distinct = append(distinct, v)
			runLen = append(runLen, 0)
		}
		runLen[len(runLen)-1]++
	}
	last := len(distinct) - 1
	seen := make([]int, len(distinct))
	bucket = make([]int, len(mus))
	for i, m := range mus {
		pos, _ := slices.BinarySearch(distinct, m)
		rank, run := seen[pos], runLen[pos]
		seen[pos]++
		left, right := low, high
		if pos > 0 {
			left = distinct[pos-1]
		}
		if pos < last {
			right = distinct[pos+1]
		}
		var sigma float64
		class := 1 // middle of a run: both gaps are zero
		switch {
		case run == 1:
			sigma, class = math.Max(m-left, right-m), 0
		case rank == 0:
			sigma, class = m-left, 0
		case rank == run-1:
			sigma, class = right-m, 2
		}
		if !considerEndpoints && len(mus) >= 2 {
			switch {
			case pos == 0 && rank == 0: // first kernel: its right gap only
				sigma = 0
				if run == 1 {
					sigma = right - m
				}
			case pos == last && rank == run-1: // last kernel: its left gap only
				sigma = 0
				if run == 1 {
					sigma = m - left
				}
			}
		}
		sigmas[i] = sigma
		bucket[i] = 3*pos + class
	}
	return bucket, 3 * len(distinct)
}

// mergeKernels adds up the weights of kernels in the same bucket (equal μ
// and σ): a univariate density is a plain sum over kernels, and discrete
// parameters repeat values. Each merged kernel carries the constant part of
// its log density.
func mergeKernels(bucket []int, nBuckets int, mus, sigmas, w []float64, low, high, q float64) []parzenMerged {
	wsum := make([]float64, nBuckets)
	member := make([]int, nBuckets)
	for i, b := range bucket {
		wsum[b] += w[i]
		member[b] = i
	}
	var out []parzenMerged
	for b, ws := range wsum {
		if ws == 0 {
			continue
		}
		i := member[b]
		m := parzenMerged{mu: mus[i], sigma: sigmas[i], invSigma: 1 / sigmas[i]}
		m.logZ = logGaussMass((low-m.mu)/m.sigma, (high-m.mu)/m.sigma)
		m.logWC = math.Log(ws) - m.logZ
		if q == 0 {
			m.logWC += -math.Log(m.sigma) - logSqrt2Pi
		}
		out = append(out, m)
	}
	return out
}

func gridIndex(d dim, v float64) int {
	k := math.Round((v - d.low) / d.step)
	if k < 0 || k >= d.gridSize() || d.low+k*d.step != v {
		return -1
	}
	return int(k)
}

func (pd *parzenDim) rowProb(obs, c int) float64 {
	switch {
	case obs < 0:
		return 1 / float64(pd.nChoices)
	case obs == c:
		return pd.pObs
	}
	return pd.pOther
}

// sample draws size candidates; out[k][i] is dim k's internal value for
// candidate i.
func (e *parzenEstimator) sample(rng *rand.Rand, size int) [][]float64 {
	active := make([]int, size)
	for i := range active {
		active[i] = drawIndex(rng, e.weights)
	}
	out := make([][]float64, len(e.dims))
	for k := range e.dims {
		pd := &e.dims[k]
		vals := make([]float64, size)
		for i, a := range active {
			if pd.cat {
				u := rng.Float64()
				c, acc := 0, 0.0
				for c = 0; c < pd.nChoices-1; c++ {
					if acc += pd.rowProb(pd.obs[a], c); acc >= u {
						break
					}
				}
				vals[i] = float64(c)
				continue
			}
			x := truncNormal(rng, pd.mu[a], pd.sigma[a], pd.low, pd.high)
			vals[i] = pd.fromParzen(x)
		}
		out[k] = vals
	}
	return out
}

// fromParzen maps an estimator-space sample back to an internal value.
func (pd *parzenDim) fromParzen(x float64) float64 {
	d := pd.d
	switch {
	case d.kind == dimInt && d.log:
		return clamp(math.RoundToEven(math.Exp(x)), d.low, d.high)
	case d.log:
		return math.Exp(x)
	case d.step > 0:
		return clamp(math.RoundToEven((x-d.low)/d.step)*d.step+d.low, d.low, d.high)
	}
	return x
}

// logPDF evaluates the log density of each candidate (cands[k][i] as
// sample returns them).
func (e *parzenEstimator) logPDF(cands [][]float64) []float64 {
	n := len(cands[0])
	out := make([]float64, n)
	if !e.params.multivariate {
		pd := &e.dims[0]
		cache := map[float64]float64{}
		for i, v := range cands[0] {
			if r, ok := cache[v]; ok {
				out[i] = r
				continue
			}
			out[i] = pd.univariateLogPDF(v)
			cache[v] = out[i]
		}
		return out
	}
	comp := make([]float64, len(e.weights))
	for i := range out {
		copy(comp, e.logW)
		for k := range e.dims {
			e.dims[k].addLogPDF(comp, cands[k][i])
		}
		out[i] = logSumExp(comp)
	}
	return out
}

// univariateLogPDF is the mixture's log density at internal value v.
func (pd *parzenDim) univariateLogPDF(v float64) float64 {
	if pd.cat {
		return pd.mixture[int(v)]
	}
	x := pd.d.toParzen(v)
	comp := make([]float64, len(pd.univariateMass))
	for j, m := range pd.univariateMass {
		if pd.q == 0 {
			z := (x - m.mu) * m.invSigma
			comp[j] = m.logWC - 0.5*z*z
			continue
		}
		up := math.Min(x+pd.q/2, pd.high)
		lo := math.Max(x-pd.q/2, pd.low)
		comp[j] = m.logWC + logGaussMass((lo-m.mu)*m.invSigma, (up-m.mu)*m.invSigma)
	}
	return logSumExp(comp)
}

func (pd *parzenDim) kernelLogPDF(x, mu, sigma, logZ float64) float64 {
	if pd.q == 0 {
		z := (x - mu) / sigma
		return -0.5*z*z - math.Log(sigma) - logSqrt2Pi - logZ
	}
	up := math.Min(x+pd.q/2, pd.high)
	lo := math.Max(x-pd.q/2, pd.low)
	return logGaussMass((lo-mu)/sigma, (up-mu)/sigma) - logZ
}

// addLogPDF adds this dim's per-kernel log density at internal value v.
func (pd *parzenDim) addLogPDF(comp []float64, v float64) {
	switch {
	case pd.cat:
		c := int(v)
		lObs, lOther, lPrior := math.Log(pd.pObs), math.Log(pd.pOther), -math.Log(float64(pd.nChoices))
		for i, o := range pd.obs {
			switch {
			case o < 0:
				comp[i] += lPrior
			case o == c:
				comp[i] += lObs
			default:
				comp[i] += lOther
			}
		}
	case pd.q == 0:
		x := pd.d.toParzen(v)
		for i := range comp {
			z := (x - pd.mu[i]) * pd.invSigma[i]
			comp[i] += pd.logC[i] - 0.5*z*z
		}
	default:
		x := pd.d.toParzen(v)
		ci := -1
		if pd.offsetLogMass != nil {
			ci = gridIndex(pd.d, v)
		}
		half := int(pd.d.gridSize()) - 1
		for i := range comp {
			if ci >= 0 && pd.grid[i] >= 0 {
				off := ci - pd.grid[i] + half
				lm := pd.offsetLogMass[off]
				if math.IsNaN(lm) { // σ is shared by all observation kernels, so the mass depends on the offset only
					s := pd.sigma[i]
					lm = logGaussMass((x-pd.q/2-pd.mu[i])/s, (x+pd.q/2-pd.mu[i])/s)
					pd.offsetLogMass[off] = lm
				}
				comp[i] += lm - pd.logZ[i]
				continue
			}
			comp[i] += pd.kernelLogPDF(x, pd.mu[i], pd.sigma[i], pd.logZ[i])
		}
	}
}

// logSumExp skips terms too small to matter after finding the maximum.
func logSumExp(v []float64) float64 {
	m := math.Inf(-1)
	for _, x := range v {
		if x > m {
			m = x
		}
	}
	if math.IsInf(m, 0) || math.IsNaN(m) {
		return m
	}
	s := 0.0
	for _, x := range v {
		if d := x - m; d > negligibleLogPr {
			s += math.Exp(d)
		}
	}
	return m + math.Log(s)
}

// logGaussMass is log(Φ(b) − Φ(a)) for a < b, computed on the side of the
// distribution where the difference keeps its precision.
func logGaussMass(a, b float64) float64 {
	switch {
	case a >= 0:
		return math.Log(0.5 * (math.Erfc(a/math.Sqrt2) - math.Erfc(b/math.Sqrt2)))
	case b <= 0:
		return math.Log(0.5 * (math.Erfc(-b/math.Sqrt2) - math.Erfc(-a/math.Sqrt2)))
	}
	return math.Log(1 - 0.5*math.Erfc(-a/math.Sqrt2) - 0.5*math.Erfc(b/math.Sqrt2))
}

// truncNormal draws from N(mu, sigma²) truncated to [low, high] by inverting
// the CDF, on the side of the mean where the interval lies so tails keep
// their precision.
func truncNormal(rng *rand.Rand, mu, sigma, low, high float64) float64 {
	a, b := (low-mu)/sigma, (high-mu)/sigma
	flip := a > 0
	if flip {
		a, b = -b, -a
	}
	pa, pb := stdNormCDF(a), stdNormCDF(b)
	z := stdNormQuantile(pa + rng.Float64()*(pb-pa))
	z = clamp(z, a, b)
	if flip {
		z = -z
	}
	return clamp(mu+sigma*z, low, high)
}

func stdNormCDF(z float64) float64 { return 0.5 * math.Erfc(-z/math.Sqrt2) }

func stdNormQuantile(p float64) float64 { return math.Sqrt2 * math.Erfinv(2*p-1) }

// drawIndex picks i with probability w[i] (w sums to 1).
func drawIndex(rng *rand.Rand, w []float64) int {
	u := rng.Float64()
	acc := 0.0
	for i, x := range w {
		if acc += x; u < acc {
			return i
		}
	}
	return len(w) - 1
}

// defaultTPEWeights is Optuna's default_weights: ones up to 25 observations,
// then a linear ramp from 1/n for all but the newest 25.
func defaultTPEWeights(n int) []float64 {
	w := make([]float64, n)
	if n < 25 {
		for i := range w {
			w[i] = 1
		}
		return w
	}
	ramp := n - 25
	for i := range ramp {
		if ramp == 1 {
			w[i] = 1 / float64(n)
		} else {
			w[i] = 1/float64(n) + (1-1/float64(n))*float64(i)/float64(ramp-1)
		}
	}
	for i := ramp; i < n; i++ {
		w[i] = 1
	}
	return w
}
