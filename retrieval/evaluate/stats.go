package evaluate

import (
	"errors"
	"math"
	"math/rand/v2"
	"sort"
)

// CI is a confidence interval around a mean.
type CI struct {
	Mean  float64 `json:"mean"`
	Low   float64 `json:"low"`
	High  float64 `json:"high"`
	Level float64 `json:"level"`
}

// BootstrapCI is the percentile bootstrap interval of the mean of values
// (per-query scores): resample the queries with replacement `resamples`
// times, take each resample's mean, and report the (1-level)/2 and
// (1+level)/2 quantiles of those means. The seed makes it reproducible.
func BootstrapCI(values []float64, level float64, resamples int, seed uint64) (CI, error) {
	if len(values) == 0 {
		return CI{}, errors.New("bootstrap: no values")
	}
	if !(level > 0 && level < 1) || resamples < 1 {
		return CI{}, errors.New("bootstrap: want 0 < level < 1 and resamples >= 1")
	}
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	n := len(values)
	means := make([]float64, resamples)
	for b := range means {
		var s float64
		for range n {
			s += values[rng.IntN(n)]
		}
		means[b] = s / float64(n)
	}
	sort.Float64s(means)
	q := func(p float64) float64 { // linear interpolation between order statistics
		x := p * float64(resamples-1)
		i := int(math.Floor(x))
		if i+1 >= resamples {
			return means[resamples-1]
		}
		return means[i] + (x-float64(i))*(means[i+1]-means[i])
	}
	return CI{Mean: mean(values), Low: q((1 - level) / 2), High: q((1 + level) / 2), Level: level}, nil
}

// RandomizationTest is the paired (sign-flip) randomisation test of two
// systems scored on the same queries: under the null hypothesis that the
// systems are exchangeable, each per-query difference a[i]-b[i] is as likely
// negated. It returns the observed mean difference and the two-sided p-value
// (count of permutations at least as extreme + 1) / (trials + 1).
func RandomizationTest(a, b []float64, trials int, seed uint64) (diff, p float64, err error) {
	if len(a) != len(b) || len(a) == 0 {
		return 0, 0, errors.New("randomisation test: want two non-empty lists of equal length")
	}
	if trials < 1 {
		return 0, 0, errors.New("randomisation test: trials must be >= 1")
	}
	d := make([]float64, len(a))
	for i := range a {
		d[i] = a[i] - b[i]
	}
	obs := mean(d)
	// Tolerance for floating-point ties between a permutation and the observation.
	eps := 1e-12 * (1 + math.Abs(obs))
	rng := rand.New(rand.NewPCG(seed, 0xf11b))
	extreme := 0
	for range trials {
		var s float64
		for _, x := range d {
			if rng.Uint64()&1 == 1 {
				s += x
			} else {
				s -= x
			}
		}
		if math.Abs(s/float64(len(d))) >= math.Abs(obs)-eps {
			extreme++
		}
	}
	return obs, float64(extreme+1) / float64(trials+1), nil
}

func mean(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}
