package hpo

import (
	"math"
	"math/rand/v2"
	"sort"
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

// TestUnivariateSigmasMatchOptuna compares the run-based bandwidths with
// Optuna's formula applied literally (stable argsort, padded neighbours).
func TestUnivariateSigmasMatchOptuna(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := range 200 {
		n := 2 + rng.IntN(30)
		mus := make([]float64, n)
		for i := range mus {
			mus[i] = float64(rng.IntN(6)) // many ties
			if trial%2 == 1 {
				mus[i] = rng.Float64() * 5
			}
		}
		for _, endpoints := range []bool{false, true} {
			got := make([]float64, n)
			univariateSigmas(mus, got, -0.5, 5.5, endpoints)
			order := make([]int, n)
			for i := range order {
				order[i] = i
			}
			sort.SliceStable(order, func(a, b int) bool { return mus[order[a]] < mus[order[b]] })
			padded := []float64{-0.5}
			for _, o := range order {
				padded = append(padded, mus[o])
			}
			padded = append(padded, 5.5)
			want := make([]float64, n)
			for j, o := range order {
				want[o] = math.Max(padded[j+1]-padded[j], padded[j+2]-padded[j+1])
			}
			if !endpoints && len(padded) >= 4 {
				want[order[0]] = padded[2] - padded[1]
				want[order[n-1]] = padded[n] - padded[n-1]
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("mus %v endpoints=%v: sigma[%d] = %v, want %v", mus, endpoints, i, got[i], want[i])
				}
			}
		}
	}
}

func TestTPEConstantLiarRanksRunningTrialsWorst(t *testing.T) {
	var trials []FrozenTrial
	for i := range 12 {
		trials = append(trials, FrozenTrial{Number: i, State: Complete, Values: []float64{float64(i)}, InternalParams: map[string]float64{"x": float64(i)}})
	}
	trials = append(trials,
		FrozenTrial{Number: 12, State: Running, InternalParams: map[string]float64{"x": 0.5}},
		FrozenTrial{Number: 13, State: Running}, // the trial being sampled
		FrozenTrial{Number: 14, State: Fail, InternalParams: map[string]float64{"x": 0.25}},
	)
	req := SuggestRequest{Trials: trials, Directions: []Direction{Minimize}, Number: 13}
	opt := DefaultTPEOptions()
	if got := len(NewTPESampler(1, opt).observations(req)); got != 12 {
		t.Fatalf("without constant liar: %d observations, want the 12 complete trials", got)
	}
	opt.ConstantLiar = true
	obs := NewTPESampler(1, opt).observations(req)
	if len(obs) != 13 {
		t.Fatalf("with constant liar: %d observations, want 12 complete + 1 running", len(obs))
	}
	below, above := splitObservations(obs, DefaultTPEGamma(12))
	if len(below) != 2 || below[0].trial.Number != 0 || below[1].trial.Number != 1 {
		t.Fatalf("below = %v, want trials 0 and 1", below)
	}
	if last := above[len(above)-1]; last.trial.Number != 12 || !last.running {
		t.Fatalf("running trial should be in the above set, got %+v", last)
	}
}
