package hpo

import (
	"math"
	"testing"
)

// completeWith makes COMPLETE trials whose intermediate value at every step
// in steps is vals[i].
func completeWith(vals []float64, steps ...int) []FrozenTrial {
	var out []FrozenTrial
	for i, v := range vals {
		iv := map[int]float64{}
		for _, s := range steps {
			iv[s] = v
		}
		out = append(out, FrozenTrial{Number: i, State: Complete, Values: []float64{v}, Intermediate: iv})
	}
	return out
}

func pruneReq(trials []FrozenTrial, dir Direction, iv map[int]float64) PruneRequest {
	cur := FrozenTrial{Number: len(trials), State: Running, Intermediate: iv}
	step, _ := lastStep(cur)
	return PruneRequest{Trials: append(append([]FrozenTrial(nil), trials...), cur), Directions: []Direction{dir}, Trial: cur, Step: step}
}

func TestMedianPruner(t *testing.T) {
	five := completeWith([]float64{1, 2, 3, 4, 5}, 0, 1, 2)
	cases := []struct {
		name   string
		pruner func() *MedianPruner
		trials []FrozenTrial
		dir    Direction
		iv     map[int]float64
		want   bool
	}{
		{"worse than median", NewMedianPruner, five, Minimize, map[int]float64{0: 10, 1: 3.5}, true},
		{"best so far counts", NewMedianPruner, five, Minimize, map[int]float64{0: 2.5, 1: 3.5}, false},
		{"better than median", NewMedianPruner, five, Minimize, map[int]float64{1: 2.5}, false},
		{"equal to median kept", NewMedianPruner, five, Minimize, map[int]float64{1: 3}, false},
		{"maximize flips", NewMedianPruner, five, Maximize, map[int]float64{1: 2.5}, true},
		{"startup trials", NewMedianPruner, five[:4], Minimize, map[int]float64{1: 100}, false},
		{"warmup", func() *MedianPruner { p := NewMedianPruner(); p.NWarmupSteps = 2; return p }, five, Minimize, map[int]float64{1: 100}, false},
		{"after warmup", func() *MedianPruner { p := NewMedianPruner(); p.NWarmupSteps = 2; return p }, five, Minimize, map[int]float64{2: 100}, true},
		{"between intervals", func() *MedianPruner { p := NewMedianPruner(); p.IntervalSteps = 2; return p }, five, Minimize, map[int]float64{0: 100, 1: 100}, false},
		{"at interval", func() *MedianPruner { p := NewMedianPruner(); p.IntervalSteps = 2; return p }, five, Minimize, map[int]float64{0: 100, 1: 100, 2: 100}, true},
		{"all NaN", NewMedianPruner, five, Minimize, map[int]float64{1: math.NaN()}, true},
		{"no values at step", NewMedianPruner, five, Minimize, map[int]float64{7: 100}, false},
		{"percentile 25", func() *MedianPruner { p := NewMedianPruner(); p.Percentile = 25; return p }, five, Minimize, map[int]float64{1: 2.5}, true},
	}
	for _, c := range cases {
		if got := c.pruner().Prune(pruneReq(c.trials, c.dir, c.iv)); got != c.want {
			t.Errorf("%s: prune = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestSuccessiveHalvingPruner(t *testing.T) {
	sha := func(minResource int) *SuccessiveHalvingPruner {
		p := NewSuccessiveHalvingPruner()
		p.MinResource, p.ReductionFactor = minResource, 2
		return p
	}
	four := completeWith([]float64{1, 2, 3, 4}, 1, 2, 3, 4)
	cases := []struct {
		name string
		p    *SuccessiveHalvingPruner
		dir  Direction
		iv   map[int]float64
		want bool
	}{
		// Rung 0 at step 1: competitors [1 2 3 4] + value; keep the best len/2.
		{"before rung 0", sha(2), Minimize, map[int]float64{1: 100}, false},
		{"rung 0 pruned", sha(1), Minimize, map[int]float64{1: 3.5}, true},
		{"rung 0 kept", sha(1), Minimize, map[int]float64{1: 1.5}, false},
		{"maximize", sha(1), Maximize, map[int]float64{1: 3.5}, false},
		// Step 2 reaches rung 1 (step 2) too: value 1.5 then competes again.
		{"two rungs at once kept", sha(1), Minimize, map[int]float64{2: 1.5}, false},
		{"rung 1 pruned", sha(1), Minimize, map[int]float64{1: 1.5, 2: 2.5}, true},
		{"NaN", sha(1), Minimize, map[int]float64{1: math.NaN()}, true},
	}
	for _, c := range cases {
		if got := c.p.Prune(pruneReq(four, c.dir, c.iv)); got != c.want {
			t.Errorf("%s: prune = %v, want %v", c.name, got, c.want)
		}
	}
	// "auto" needs a COMPLETE trial; then min_resource = max(1, 4//100) = 1.
	auto := NewSuccessiveHalvingPruner()
	if auto.Prune(pruneReq(nil, Minimize, map[int]float64{1: 100})) {
		t.Error("auto: pruned before any trial completed")
	}
	// Optuna's completed_rung_0 attributes take precedence over intermediate values.
	withAttrs := completeWith([]float64{1, 2, 3, 4}, 1)
	for i := range withAttrs {
		withAttrs[i].SystemAttrs = map[string]any{"completed_rung_0": float64(10 + i)}
	}
	if sha(1).Prune(pruneReq(withAttrs, Minimize, map[int]float64{1: 5})) {
		t.Error("rung attributes: 5 beats 10..13 and should be kept")
	}
}
