package hpo

import (
	"math"
	"sort"
)

// MedianPruner is Optuna 3.1's PercentilePruner; with Percentile 50 it is
// MedianPruner. A trial is pruned when its best intermediate value so far is
// worse than the given percentile of the COMPLETE trials' values at the same
// step. Defaults: n_startup_trials 5, n_warmup_steps 0, interval_steps 1,
// n_min_trials 1.
//
// Multi-objective studies (which Optuna cannot prune) are pruned on the
// first objective: intermediate values are the main metric's, compared in
// the first objective's direction.
type MedianPruner struct {
	Percentile     float64 // in [0, 100]; 50 for the median
	NStartupTrials int     // no pruning until this many trials are COMPLETE
	NWarmupSteps   int     // no pruning before this step
	IntervalSteps  int     // check at warmup + k·interval only
	NMinTrials     int     // fewest values at the step needed to judge
}

// NewMedianPruner returns a MedianPruner with Optuna's defaults.
func NewMedianPruner() *MedianPruner {
	return &MedianPruner{Percentile: 50, NStartupTrials: 5, IntervalSteps: 1, NMinTrials: 1}
}

// Prune implements Pruner.
func (p *MedianPruner) Prune(req PruneRequest) bool {
	var complete []*FrozenTrial
	for i := range req.Trials {
		if t := &req.Trials[i]; t.State == Complete && t.Number != req.Trial.Number {
			complete = append(complete, t)
		}
	}
	if len(complete) == 0 || len(complete) < p.NStartupTrials {
		return false
	}
	step, ok := lastStep(req.Trial)
	if !ok || step < p.NWarmupSteps {
		return false
	}
	interval := max(p.IntervalSteps, 1)
	boundary := (step-p.NWarmupSteps)/interval*interval + p.NWarmupSteps
	previous := -1
	for s := range req.Trial.Intermediate {
		if s != step && s > previous {
			previous = s
		}
	}
	if previous >= boundary { // already checked within this interval
		return false
	}
	maximize := mainDirection(req.Directions) == Maximize
	best := math.NaN()
	for _, v := range req.Trial.Intermediate {
		if math.IsNaN(v) {
			continue
		}
		if math.IsNaN(best) || (maximize && v > best) || (!maximize && v < best) {
			best = v
		}
	}
	if math.IsNaN(best) {
		return true
	}
	var values []float64
	for _, t := range complete {
		if v, ok := t.Intermediate[step]; ok {
			values = append(values, v)
		}
	}
	if len(values) < max(p.NMinTrials, 1) {
		return false
	}
	q := p.Percentile
	if maximize {
		q = 100 - q
	}
	threshold := nanPercentile(values, q)
	if math.IsNaN(threshold) {
		return false
	}
	if maximize {
		return best < threshold
	}
	return best > threshold
}

// lastStep is the largest step a trial has reported.
func lastStep(t FrozenTrial) (int, bool) {
	step, ok := -1, false
	for s := range t.Intermediate {
		if s > step {
			step, ok = s, true
		}
	}
	return step, ok
}

// mainDirection is the direction pruners compare in: the first objective's.
func mainDirection(d []Direction) Direction {
	if len(d) == 0 {
		return Minimize
	}
	return d[0]
}

// nanPercentile is numpy.nanpercentile with linear interpolation.
func nanPercentile(values []float64, q float64) float64 {
	v := make([]float64, 0, len(values))
	for _, x := range values {
		if !math.IsNaN(x) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return math.NaN()
	}
	sort.Float64s(v)
	pos := q / 100 * float64(len(v)-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, len(v)-1)
	frac := pos - float64(lo)
	if frac == 0 {
		return v[lo]
	}
	return v[lo] + (v[hi]-v[lo])*frac
}
