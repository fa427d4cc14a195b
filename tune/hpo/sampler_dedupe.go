package hpo

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ErrSpaceExhausted is returned when every point of a finite search space has
// already been tried (by COMPLETE, PRUNED, RUNNING or WAITING trials).
var ErrSpaceExhausted = errors.New("search space exhausted: every combination has been tried")

// NoDuplicates wraps a sampler so that a trial is not spent on parameters
// identical to those of a COMPLETE, PRUNED, RUNNING or WAITING trial. FAILED
// trials do not block their parameters: a failure may be transient, and the
// study replaces failed trials.
//
// On a duplicate it asks the sampler again with other random streams (TPE
// and random then draw anew; Sobol, being deterministic, cannot), then
// perturbs the proposal by redrawing a growing number of its parameters
// uniformly, and finally, in a finite space, draws uniformly among the
// combinations not yet tried; when there is none, it returns
// ErrSpaceExhausted. In a continuous space a duplicate after all that is
// returned as it is (it cannot happen in practice).
func NoDuplicates(s Sampler, seed int64) Sampler {
	if _, ok := s.(*dedupeSampler); ok {
		return s
	}
	return &dedupeSampler{inner: s, seed: seed}
}

type dedupeSampler struct {
	inner Sampler
	seed  int64
}

const (
	dedupeRetries  = 4  // fresh streams asked of the wrapped sampler
	dedupePerturbs = 64 // perturbation attempts
	maxEnumerated  = 1 << 20
)

func (d *dedupeSampler) Name() string { return d.inner.Name() }

func (d *dedupeSampler) Suggest(req SuggestRequest) (map[string]float64, error) {
	p, err := d.inner.Suggest(req)
	if err != nil {
		return nil, err
	}
	dims, err := dimsOf(req.Space)
	if err != nil {
		return nil, err
	}
	taken := takenPoints(req, dims)
	if len(taken) == 0 || !taken[pointKey(dims, p)] {
		return p, nil
	}
	for attempt := 1; attempt <= dedupeRetries; attempt++ {
		r := req
		r.Seed = req.Seed + int64(attempt)*0x5bd1e995
		q, err := d.inner.Suggest(r)
		if err != nil {
			return nil, err
		}
		if !taken[pointKey(dims, q)] {
			return q, nil
		}
	}
	rng := trialRNG(d.seed, req.Seed, req.Number, streamDedupe)
	var free []int
	for i, dm := range dims {
		if !dm.single {
			free = append(free, i)
		}
	}
	for attempt := range dedupePerturbs {
		if len(free) == 0 {
			break
		}
		q := make(map[string]float64, len(p))
		for k, v := range p {
			q[k] = v
		}
		n := 1 + attempt*len(free)/dedupePerturbs // redraw more parameters as attempts go on
		for _, i := range rng.Perm(len(free))[:n] {
			q[dims[free[i]].name] = dims[free[i]].sampleUniform(rng)
		}
		if !taken[pointKey(dims, q)] {
			return q, nil
		}
	}
	size := 1.0
	for _, dm := range dims {
		size *= dm.gridSize() // 0 for a continuous dim
	}
	if size == 0 || size > maxEnumerated {
		return p, nil
	}
	var untried []map[string]float64
	forEachGridPoint(dims, func(q map[string]float64) {
		if !taken[pointKey(dims, q)] {
			c := make(map[string]float64, len(q))
			for k, v := range q {
				c[k] = v
			}
			untried = append(untried, c)
		}
	})
	if len(untried) == 0 {
		return nil, fmt.Errorf("%w (%d combinations)", ErrSpaceExhausted, int(size))
	}
	return untried[rng.IntN(len(untried))], nil
}

// takenPoints are the keys of the parameter sets that block a proposal.
func takenPoints(req SuggestRequest, dims []dim) map[string]bool {
	taken := map[string]bool{}
	for i := range req.Trials {
		t := &req.Trials[i]
		if t.Number == req.Number {
			continue
		}
		switch t.State {
		case Complete, Pruned, Running, Waiting:
		default:
			continue
		}
		if k, ok := trialKey(dims, t); ok {
			taken[k] = true
		}
	}
	return taken
}

// trialKey is the key of a trial's internal parameters, if it has them all.
func trialKey(dims []dim, t *FrozenTrial) (string, bool) {
	for _, d := range dims {
		if _, ok := t.InternalParams[d.name]; !ok {
			return "", false
		}
	}
	return pointKey(dims, t.InternalParams), true
}

// pointKey encodes a parameter set exactly (float bits), in dims order.
func pointKey(dims []dim, p map[string]float64) string {
	var b strings.Builder
	for _, d := range dims {
		b.WriteString(strconv.FormatUint(math.Float64bits(p[d.name]), 36))
		b.WriteByte(',')
	}
	return b.String()
}

// forEachGridPoint calls fn with every point of a finite space (fn must not
// keep the map).
func forEachGridPoint(dims []dim, fn func(map[string]float64)) {
	p := make(map[string]float64, len(dims))
	var rec func(i int)
	rec = func(i int) {
		if i == len(dims) {
			fn(p)
			return
		}
		d := dims[i]
		n := int(d.gridSize())
		for k := range n {
			switch {
			case d.kind == dimCategorical:
				p[d.name] = float64(k)
			default:
				p[d.name] = d.low + float64(k)*d.step
			}
			rec(i + 1)
		}
	}
	rec(0)
}
