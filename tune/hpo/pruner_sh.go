package hpo

import (
	"fmt"
	"math"
	"sort"
)

// SuccessiveHalvingPruner is Optuna 3.1's asynchronous successive halving
// (ASHA). Rung r is reached at step min_resource·rf^(min_early_stopping_rate+r);
// a trial reaching it is kept only if its value there is within the best
// 1/rf of the values every trial had at that rung. Defaults: min_resource
// "auto" (max(1, last step of the first COMPLETE trial // 100); no pruning
// before a trial completes), reduction_factor 4, min_early_stopping_rate 0,
// bootstrap_count 0.
//
// Optuna records each trial's value at a rung in the system attribute
// completed_rung_<r>. Pruners here cannot write storage, so a trial's rung
// value is read from that attribute when the trial has such attributes
// (studies written by Optuna), and otherwise derived from its intermediate
// values: the value at its first reported step at or past the rung. "auto"
// takes the earliest-finished COMPLETE trial (Optuna: the COMPLETE trials at
// its first check). Multi-objective studies are pruned on the first
// objective (see MedianPruner).
type SuccessiveHalvingPruner struct {
	MinResource          int // 0 means "auto"
	ReductionFactor      int
	MinEarlyStoppingRate int
	BootstrapCount       int
}

// NewSuccessiveHalvingPruner returns a pruner with Optuna's defaults.
func NewSuccessiveHalvingPruner() *SuccessiveHalvingPruner {
	return &SuccessiveHalvingPruner{ReductionFactor: 4}
}

// Prune implements Pruner.
func (p *SuccessiveHalvingPruner) Prune(req PruneRequest) bool {
	step, ok := lastStep(req.Trial)
	if !ok {
		return false
	}
	minResource := p.MinResource
	if minResource <= 0 {
		if minResource, ok = autoMinResource(req.Trials, req.Trial.Number); !ok {
			return false
		}
	}
	rf := max(p.ReductionFactor, 2)
	promotion := func(rung int) int {
		return minResource * int(math.Pow(float64(rf), float64(p.MinEarlyStoppingRate+rung)))
	}
	// Rungs this trial completed before its latest report.
	rung := 0
	for {
		done := false
		for s := range req.Trial.Intermediate {
			if s != step && s >= promotion(rung) {
				done = true
				break
			}
		}
		if !done {
			break
		}
		rung++
	}
	value := req.Trial.Intermediate[step]
	maximize := mainDirection(req.Directions) == Maximize
	for step >= promotion(rung) {
		if math.IsNaN(value) {
			return true
		}
		competing := []float64{value}
		for i := range req.Trials {
			t := &req.Trials[i]
			if t.Number == req.Trial.Number {
				continue
			}
			if v, ok := rungValue(t, rung, promotion(rung)); ok {
				competing = append(competing, v)
			}
		}
		if len(competing) <= p.BootstrapCount {
			return true
		}
		if !promotable(value, competing, rf, maximize) {
			return true
		}
		rung++
	}
	return false
}

// autoMinResource is "auto": max(1, last step // 100) of the earliest
// finished COMPLETE trial with reports.
func autoMinResource(trials []FrozenTrial, self int) (int, bool) {
	var first *FrozenTrial
	for i := range trials {
		t := &trials[i]
		if t.State != Complete || t.Number == self || len(t.Intermediate) == 0 {
			continue
		}
		if first == nil || t.End.Before(first.End) || (t.End.Equal(first.End) && t.Number < first.Number) {
			first = t
		}
	}
	if first == nil {
		return 0, false
	}
	last, _ := lastStep(*first)
	return max(last/100, 1), true
}

// rungValue is a trial's value at a rung: Optuna's completed_rung_<r>
// attribute when the trial carries rung attributes, else its value at its
// first reported step at or past the rung's promotion step.
func rungValue(t *FrozenTrial, rung, promotionStep int) (float64, bool) {
	if _, ok := t.SystemAttrs["completed_rung_0"]; ok {
		v, ok := t.SystemAttrs[fmt.Sprintf("completed_rung_%d", rung)]
		if !ok {
			return 0, false
		}
		f, isNum := asFloat(v)
		return f, isNum
	}
	best := -1
	for s := range t.Intermediate {
		if s >= promotionStep && (best < 0 || s < best) {
			best = s
		}
	}
	if best < 0 {
		return 0, false
	}
	v := t.Intermediate[best]
	return v, !math.IsNaN(v)
}

// promotable: the value is within the top len/rf of the competitors (at
// least the single best).
func promotable(value float64, competing []float64, rf int, maximize bool) bool {
	k := max(len(competing)/rf-1, 0)
	sort.Float64s(competing)
	if maximize {
		return value >= competing[len(competing)-1-k]
	}
	return value <= competing[k]
}
