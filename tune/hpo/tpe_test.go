package hpo

import (
	"testing"
)

// compareWithRandom runs TPE and random search over several seeds and
// returns the median best values after n trials.
func compareWithRandom(t *testing.T, space Space, f objectiveFunc, opt TPEOptions, n, seeds int) (tpe, random float64) {
	var bt, br []float64
	for seed := range int64(seeds) {
		bt = append(bt, bestValue(runStudy(t, NewTPESampler(seed, opt), space, []Direction{Minimize}, n, f)))
		br = append(br, bestValue(runStudy(t, NewRandomSampler(seed), space, []Direction{Minimize}, n, f)))
	}
	return median(bt), median(br)
}

func TestTPEBeatsRandomOnBranin(t *testing.T) {
	for _, multivariate := range []bool{false, true} {
		opt := DefaultTPEOptions()
		opt.Multivariate = multivariate
		tpe, random := compareWithRandom(t, braninSpace(t), branin, opt, 60, 10)
		t.Logf("branin multivariate=%v: median best after 60 trials: TPE %.4f, random %.4f (optimum 0.3979)", multivariate, tpe, random)
		if tpe >= random {
			t.Errorf("multivariate=%v: TPE median best %.4f not better than random %.4f", multivariate, tpe, random)
		}
	}
}

func TestTPEBeatsRandomOnMixedSpace(t *testing.T) {
	for _, multivariate := range []bool{false, true} {
		opt := DefaultTPEOptions()
		opt.Multivariate = multivariate
		tpe, random := compareWithRandom(t, mixedSpace(t), mixed, opt, 80, 10)
		t.Logf("mixed multivariate=%v: median best after 80 trials: TPE %.4f, random %.4f (optimum 0)", multivariate, tpe, random)
		if tpe >= random {
			t.Errorf("multivariate=%v: TPE median best %.4f not better than random %.4f", multivariate, tpe, random)
		}
	}
}
