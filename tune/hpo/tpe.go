package hpo

import (
	"cmp"
	"math"
	"slices"
)

// TPEOptions are TPESampler's settings; DefaultTPEOptions gives Optuna 3.1's.
type TPEOptions struct {
	ConsiderPrior     bool    // add a prior kernel to every estimator (true)
	PriorWeight       float64 // its weight (1.0)
	ConsiderMagicClip bool    // lower-bound bandwidths by range/min(100, 1+n) (true)
	ConsiderEndpoints bool    // let the outermost kernels see the bounds (false)
	NStartupTrials    int     // random sampling until this many COMPLETE+PRUNED trials (10)
	NEICandidates     int     // candidates drawn from l(x) per suggestion (24)
	Multivariate      bool    // one joint estimator over all parameters (false)
	ConstantLiar      bool    // RUNNING trials count as bad observations (false)
	// Gamma is the size of the "below" set for n observations
	// (default min(ceil(0.1·n), 25)).
	Gamma func(n int) int
	// Weights are the observations' weights, oldest first (default: ones,
	// with a linear ramp from 1/n for all but the newest 25).
	Weights func(n int) []float64
}

// DefaultTPEOptions are the defaults of Optuna 3.1's TPESampler.
func DefaultTPEOptions() TPEOptions {
	return TPEOptions{
		ConsiderPrior:     true,
		PriorWeight:       1.0,
		ConsiderMagicClip: true,
		NStartupTrials:    10,
		NEICandidates:     24,
		Gamma:             DefaultTPEGamma,
		Weights:           defaultTPEWeights,
	}
}

// DefaultTPEGamma is Optuna's default_gamma: min(ceil(0.1·n), 25).
func DefaultTPEGamma(n int) int { return min(int(math.Ceil(0.1*float64(n))), 25) }

// TPESampler is Optuna 3.1's Tree-structured Parzen Estimator sampler.
//
// Observations are COMPLETE and PRUNED trials (and, with ConstantLiar,
// RUNNING ones, always ranked worst). They are ranked best first — complete
// trials by value, then pruned trials by how far they got and their last
// intermediate value — and the best Gamma(n) form the "below" set. For
// each parameter (univariate, the default) or for all jointly
// (Multivariate), a Parzen estimator is fitted to each set, NEICandidates
// are drawn from the below one l(x), and the candidate maximizing
// log l(x) − log g(x) is returned.
//
// Multi-objective studies use MOTPE as Optuna 3.1 merged it into TPE:
// pruned and running trials are ignored, whole non-domination fronts go
// into the below set while they fit, the last one is cut by greedy
// hypervolume subset selection, and below kernels are weighted by their
// hypervolume contributions.
//
// Each suggestion draws from its own random stream (seeds and trial number),
// so a study is reproducible and parallel workers sharing a seed differ.
// Safe for concurrent use.
type TPESampler struct {
	opt    TPEOptions
	seed   int64
	random *RandomSampler
}

// NewTPESampler returns a TPESampler; zero Gamma/Weights take the defaults.
func NewTPESampler(seed int64, opt TPEOptions) *TPESampler {
	if opt.Gamma == nil {
		opt.Gamma = DefaultTPEGamma
	}
	if opt.Weights == nil {
		opt.Weights = defaultTPEWeights
	}
	if opt.NEICandidates < 1 {
		opt.NEICandidates = 1
	}
	if opt.PriorWeight <= 0 {
		opt.PriorWeight = 1
	}
	return &TPESampler{opt: opt, seed: seed, random: NewRandomSampler(seed)}
}

// Name implements Sampler.
func (s *TPESampler) Name() string { return "tpe" }

// tpeObservation is one trial as TPE ranks it.
type tpeObservation struct {
	trial   *FrozenTrial
	step    float64   // −inf complete, −last step pruned, +inf running
	values  []float64 // sign-normalized so smaller is better
	running bool
}

// Suggest implements Sampler.
func (s *TPESampler) Suggest(req SuggestRequest) (map[string]float64, error) {
	dims, err := dimsOf(req.Space)
	if err != nil {
		return nil, err
	}
	obs := s.observations(req)
	n := 0
	for _, o := range obs {
		if !o.running {
			n++
		}
	}
	if n < s.opt.NStartupTrials || n == 0 {
		return s.random.sample(req, dims, nil), nil
	}
	below, above := splitObservations(obs, s.opt.Gamma(n))
	multiObjective := len(req.Directions) > 1
	rng := trialRNG(s.seed, req.Seed, req.Number, streamTPE)
	params := make(map[string]float64, len(dims))
	var active []dim
	for _, d := range dims {
		if d.single {
			params[d.name] = d.low
		} else {
			active = append(active, d)
		}
	}
	pp := parzenParams{
		considerPrior:     s.opt.ConsiderPrior,
		priorWeight:       s.opt.PriorWeight,
		considerMagicClip: s.opt.ConsiderMagicClip,
		considerEndpoints: s.opt.ConsiderEndpoints,
		multivariate:      s.opt.Multivariate,
	}
	groups := [][]dim{active}
	if !s.opt.Multivariate {
		groups = groups[:0]
		for _, d := range active {
			groups = append(groups, []dim{d})
		}
	}
	for _, g := range groups {
		if len(g) == 0 {
			continue
		}
		bObs, bKeep := observedValues(below, g)
		aObs, _ := observedValues(above, g)
		bw := s.opt.Weights(len(bObs))
		if multiObjective {
			bw = hypervolumeWeights(below, bKeep)
		}
		l := newParzenEstimator(g, bObs, bw, pp)
		gEst := newParzenEstimator(g, aObs, s.opt.Weights(len(aObs)), pp)
		cands := l.sample(rng, s.opt.NEICandidates)
		ll, lg := l.logPDF(cands), gEst.logPDF(cands)
		best, bestScore := 0, math.Inf(-1)
		for i := range ll {
			score := ll[i] - lg[i]
			if math.IsNaN(score) {
				continue
			}
			if score > bestScore {
				best, bestScore = i, score
			}
		}
		for k, d := range g {
			params[d.name] = cands[k][best]
		}
	}
	return params, nil
}

// observations ranks the study's trials as Optuna's _get_observation_pairs.
func (s *TPESampler) observations(req SuggestRequest) []tpeObservation {
	multi := len(req.Directions) > 1
	sign := make([]float64, max(len(req.Directions), 1))
	for i := range sign {
		sign[i] = 1
		if i < len(req.Directions) && req.Directions[i] == Maximize {
			sign[i] = -1
		}
	}
	var out []tpeObservation
	for i := range req.Trials {
		t := &req.Trials[i]
		if t.Number == req.Number {
			continue
		}
		o := tpeObservation{trial: t}
		switch t.State {
		case Complete:
			if len(t.Values) < len(sign) {
				continue
			}
			o.step = math.Inf(-1)
			o.values = make([]float64, len(sign))
			for k := range sign {
				o.values[k] = sign[k] * t.Values[k]
			}
		case Pruned:
			if multi {
				continue
			}
			if step, ok := lastStep(*t); ok {
				v := t.Intermediate[step]
				o.step = -float64(step)
				if math.IsNaN(v) {
					o.values = []float64{math.Inf(1)}
				} else {
					o.values = []float64{sign[0] * v}
				}
			} else {
				o.step, o.values = 1, []float64{0}
			}
		case Running:
			if !s.opt.ConstantLiar || multi || len(t.InternalParams) == 0 {
				continue
			}
			o.step, o.values, o.running = math.Inf(1), []float64{math.Inf(1)}, true
		default:
			continue
		}
		out = append(out, o)
	}
	return out
}

// splitObservations returns the below (best nBelow) and above sets, each in
// trial order.
func splitObservations(obs []tpeObservation, nBelow int) (below, above []tpeObservation) {
	nBelow = min(nBelow, len(obs))
	idx := make([]int, len(obs))
	for i := range idx {
		idx[i] = i
	}
	var belowIdx []int
	if len(obs) > 0 && len(obs[0].values) > 1 {
		belowIdx = multiObjectiveBelow(obs, nBelow)
	} else {
		slices.SortFunc(idx, func(a, b int) int { // stable: ties by trial order
			x, y := &obs[a], &obs[b]
			if c := cmp.Compare(x.step, y.step); c != 0 {
				return c
			}
			if c := cmp.Compare(x.values[0], y.values[0]); c != 0 {
				return c
			}
			return a - b
		})
		belowIdx = idx[:nBelow]
	}
	isBelow := make([]bool, len(obs))
	for _, i := range belowIdx {
		isBelow[i] = true
	}
	for i, o := range obs {
		if isBelow[i] {
			below = append(below, o)
		} else {
			above = append(above, o)
		}
	}
	return below, above
}

// multiObjectiveBelow fills the below set with whole non-domination fronts
// and cuts the first front that does not fit by greedy hypervolume subset
// selection.
func multiObjectiveBelow(obs []tpeObservation, nBelow int) []int {
	values := make([][]float64, len(obs))
	for i, o := range obs {
		values[i] = o.values
	}
	ranks := NonDominatedRanks(values, nil)
	var below []int
	for rank := 0; len(below) < nBelow; rank++ {
		var front []int
		for i, r := range ranks {
			if r == rank {
				front = append(front, i)
			}
		}
		if len(front) == 0 {
			break
		}
		if len(below)+len(front) <= nBelow {
			below = append(below, front...)
			continue
		}
		pts := make([][]float64, len(front))
		for i, f := range front {
			pts[i] = values[f]
		}
		for _, j := range greedyHypervolumeSubset(pts, nBelow-len(below), referencePoint(pts)) {
			below = append(below, front[j])
		}
	}
	return below
}

// referencePoint is Optuna's: max(1.1·worst, 0.9·worst) per objective, with
// zeros replaced by EPS.
func referencePoint(pts [][]float64) []float64 {
	ref := make([]float64, len(pts[0]))
	for k := range ref {
		worst := math.Inf(-1)
		for _, p := range pts {
			worst = math.Max(worst, p[k])
		}
		ref[k] = math.Max(1.1*worst, 0.9*worst)
		if ref[k] == 0 {
			ref[k] = tpeEPS
		}
	}
	return ref
}

// greedyHypervolumeSubset picks k points one at a time, each adding the
// most hypervolume to those already picked (a 1−1/e approximation).
func greedyHypervolumeSubset(pts [][]float64, k int, ref []float64) []int {
	picked := make([]bool, len(pts))
	var chosen []int
	var sel [][]float64
	hv := 0.0
	for len(chosen) < k {
		best, bestGain := -1, math.Inf(-1)
		for i, p := range pts {
			if picked[i] {
				continue
			}
			if gain := Hypervolume(append(sel[:len(sel):len(sel)], p), ref) - hv; gain > bestGain {
				best, bestGain = i, gain
			}
		}
		if best < 0 {
			break
		}
		picked[best] = true
		chosen = append(chosen, best)
		sel = append(sel, pts[best])
		hv += bestGain
	}
	return chosen
}

// hypervolumeWeights are MOTPE's below weights: each kept observation's
// leave-one-out hypervolume contribution (+EPS), over the largest, in [0, 1].
func hypervolumeWeights(below []tpeObservation, keep []int) []float64 {
	pts := make([][]float64, len(keep))
	for i, j := range keep {
		pts[i] = below[j].values
	}
	w := make([]float64, len(pts))
	switch len(pts) {
	case 0:
		return w
	case 1:
		w[0] = 1
		return w
	}
	ref := referencePoint(pts)
	total := Hypervolume(pts, ref)
	maxC := 0.0
	for i := range pts {
		rest := make([][]float64, 0, len(pts)-1)
		rest = append(rest, pts[:i]...)
		rest = append(rest, pts[i+1:]...)
		w[i] = total - Hypervolume(rest, ref) + tpeEPS
		maxC = math.Max(maxC, w[i])
	}
	for i := range w {
		w[i] = clamp(w[i]/maxC, 0, 1)
	}
	return w
}

// observedValues extracts the internal values of dims from the observations
// that have all of them inside the current bounds, and which ones those are.
func observedValues(set []tpeObservation, dims []dim) ([][]float64, []int) {
	out := make([][]float64, 0, len(set))
	keep := make([]int, 0, len(set))
	backing := make([]float64, len(set)*len(dims))
	for j, o := range set {
		row := backing[j*len(dims) : (j+1)*len(dims) : (j+1)*len(dims)]
		ok := true
		for k, d := range dims {
			v, has := o.trial.InternalParams[d.name]
			if !has || math.IsNaN(v) || v < d.low || v > d.high {
				ok = false
				break
			}
			row[k] = v
		}
		if ok {
			out = append(out, row)
			keep = append(keep, j)
		}
	}
	return out, keep
}
