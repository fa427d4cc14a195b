package hpo

import (
	"math"
	"testing"
)

// zdt1 on two variables: the Pareto front is y = 0, f2 = 1 − √f1.
func zdt1(p map[string]float64) []float64 {
	x, y := p["x"], p["y"]
	g := 1 + 9*y
	return []float64{x, g * (1 - math.Sqrt(x/g))}
}

func frontHypervolume(trials []FrozenTrial, dirs []Direction) (float64, int) {
	front := ParetoFront(trials, dirs)
	pts := make([][]float64, len(front))
	for i, t := range front {
		pts[i] = t.Values
	}
	return Hypervolume(pts, []float64{1.1, 1.1}), len(front)
}

func TestMultiObjectiveSamplersFindParetoFront(t *testing.T) {
	space := Space{{"x", mustFloat(t, 0, 1, false, 0)}, {"y", mustFloat(t, 0, 1, false, 0)}}
	dirs := []Direction{Minimize, Minimize}
	nsga := DefaultNSGAIIOptions()
	nsga.PopulationSize = 20
	// NSGA-II gets more trials: it needs generations.
	samplers := []struct {
		name string
		n    int
		mk   func(seed int64) Sampler
	}{
		{"motpe", 120, func(seed int64) Sampler { return NewTPESampler(seed, DefaultTPEOptions()) }},
		{"nsga2", 400, func(seed int64) Sampler { return NewNSGAIISampler(seed, nsga) }},
	}
	// The true front's hypervolume with reference (1.1, 1.1) is about 0.877.
	for _, smp := range samplers {
		name, mk, n := smp.name, smp.mk, smp.n
		var randomHV []float64
		for seed := range int64(5) {
			hv, _ := frontHypervolume(runStudy(t, NewRandomSampler(seed), space, dirs, n, zdt1), dirs)
			randomHV = append(randomHV, hv)
		}
		var hvs []float64
		size := 0
		for seed := range int64(5) {
			hv, s := frontHypervolume(runStudy(t, mk(seed), space, dirs, n, zdt1), dirs)
			hvs = append(hvs, hv)
			size = max(size, s)
		}
		t.Logf("%s: median front hypervolume %.4f after %d trials (random %.4f), front up to %d points", name, median(hvs), n, median(randomHV), size)
		if median(hvs) <= median(randomHV) || size < 5 {
			t.Errorf("%s: front hypervolume %.4f not better than random %.4f (front %d points)", name, median(hvs), median(randomHV), size)
		}
	}
}

func TestParetoFrontAndDomination(t *testing.T) {
	dirs := []Direction{Maximize, Minimize}
	trials := []FrozenTrial{
		{Number: 0, State: Complete, Values: []float64{0.5, 10}},
		{Number: 1, State: Complete, Values: []float64{0.6, 20}},
		{Number: 2, State: Complete, Values: []float64{0.4, 15}}, // dominated by 0
		{Number: 3, State: Complete, Values: []float64{0.6, 20}}, // duplicate of 1: both stay
		{Number: 4, State: Pruned, Values: []float64{0.9, 1}},    // not complete
	}
	var got []int
	for _, f := range ParetoFront(trials, dirs) {
		got = append(got, f.Number)
	}
	if len(got) != 3 || got[0] != 0 || got[1] != 1 || got[2] != 3 {
		t.Fatalf("front = %v, want [0 1 3]", got)
	}
	// 3-D: inclusion–exclusion by hand for boxes [1,4]x[2,4]x[3,4], [2,4]x[1,4]x[3,4], [3,4]x[3,4]x[1,4].
	a, b, c := 3.0*2*1, 2.0*3*1, 1.0*1*3
	ab, ac, bc, abc := 2.0*2*1, 1.0*1*1, 1.0*1*1, 1.0*1*1
	if hv, want := Hypervolume([][]float64{{1, 2, 3}, {2, 1, 3}, {3, 3, 1}}, []float64{4, 4, 4}), a+b+c-ab-ac-bc+abc; math.Abs(hv-want) > 1e-9 {
		t.Fatalf("3-D hypervolume = %v, want %v", hv, want)
	}
}
