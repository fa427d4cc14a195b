package hpo

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// This file is the samplers' common view of a search space: each parameter
// becomes a dim with its bounds in the space the algorithms work in, and the
// unit-cube mapping that Optuna's _SearchSpaceTransform uses for random and
// quasi-random sampling.

type dimKind int

const (
	dimFloat dimKind = iota
	dimInt
	dimCategorical
)

// dim is one parameter as samplers see it. Values in and out are internal
// representations (numbers as float64, categoricals as choice indices).
type dim struct {
	name    string
	kind    dimKind
	low     float64 // distribution bounds (internal values); 0 and n-1 for categoricals
	high    float64
	log     bool
	step    float64 // 0 for continuous floats; ≥1 for ints
	choices int     // number of choices of a categorical
	single  bool    // only one value is possible: never sampled
}

// dimsOf turns a Space into dims, in the space's order.
func dimsOf(space Space) ([]dim, error) {
	dims := make([]dim, len(space))
	seen := make(map[string]bool, len(space))
	for i, p := range space {
		if seen[p.Name] {
			return nil, fmt.Errorf("search space: parameter %q appears twice", p.Name)
		}
		seen[p.Name] = true
		d := dim{name: p.Name}
		switch v := any(p.Dist).(type) {
		case FloatDistribution:
			d.kind, d.low, d.high, d.log, d.step = dimFloat, v.Low, v.High, v.Log, v.Step
		case *FloatDistribution:
			d.kind, d.low, d.high, d.log, d.step = dimFloat, v.Low, v.High, v.Log, v.Step
		case IntDistribution:
			d.kind, d.low, d.high, d.log, d.step = dimInt, float64(v.Low), float64(v.High), v.Log, float64(max(v.Step, 1))
		case *IntDistribution:
			d.kind, d.low, d.high, d.log, d.step = dimInt, float64(v.Low), float64(v.High), v.Log, float64(max(v.Step, 1))
		case CategoricalDistribution:
			d.kind, d.choices = dimCategorical, len(v.Choices)
		case *CategoricalDistribution:
			d.kind, d.choices = dimCategorical, len(v.Choices)
		default:
			return nil, fmt.Errorf("search space: parameter %q has unsupported distribution %T", p.Name, p.Dist)
		}
		if d.kind == dimCategorical {
			if d.choices == 0 {
				return nil, fmt.Errorf("search space: parameter %q has no choices", p.Name)
			}
			d.low, d.high = 0, float64(d.choices-1)
		}
		if math.IsNaN(d.low) || math.IsNaN(d.high) || d.low > d.high || (d.log && d.low <= 0) {
			return nil, fmt.Errorf("search space: parameter %q has invalid bounds [%v, %v]", p.Name, d.low, d.high)
		}
		d.single = d.low == d.high || (d.step > 0 && d.high-d.low < d.step)
		dims[i] = d
	}
	return dims, nil
}

// unitBounds are the bounds of the space the unit cube is stretched over
// (Optuna's _SearchSpaceTransform with log and step transforms on).
func (d dim) unitBounds() (lo, hi float64) {
	switch {
	case d.kind == dimInt && d.log:
		return math.Log(d.low - 0.5), math.Log(d.high + 0.5)
	case d.log:
		return math.Log(d.low), math.Log(d.high)
	case d.step > 0:
		return d.low - d.step/2, d.high + d.step/2
	}
	return d.low, d.high
}

// fromUnit maps u in [0, 1) to an internal value. Categoricals split [0, 1)
// into equal cells, one per choice.
func (d dim) fromUnit(u float64) float64 {
	if d.single {
		return d.low
	}
	if d.kind == dimCategorical {
		return float64(min(int(u*float64(d.choices)), d.choices-1))
	}
	lo, hi := d.unitBounds()
	return d.untransform(lo + u*(hi-lo))
}

// untransform takes a value of the unit-bounds space back to an internal
// value on the distribution's grid: exp for log scales, half-to-even rounding
// onto the step grid, and a cap just below high for continuous floats so the
// upper bound stays exclusive, as Optuna does.
func (d dim) untransform(v float64) float64 {
	switch {
	case d.kind == dimInt && d.log:
		return clamp(math.RoundToEven(math.Exp(v)), d.low, d.high)
	case d.step > 0:
		return clamp(math.RoundToEven((v-d.low)/d.step)*d.step+d.low, d.low, d.high)
	case d.log:
		v = math.Exp(v)
	}
	return clamp(v, d.low, math.Nextafter(d.high, math.Inf(-1)))
}

// sampleUniform draws an internal value as RandomSampler does.
func (d dim) sampleUniform(rng *rand.Rand) float64 {
	if d.single {
		return d.low
	}
	if d.kind == dimCategorical {
		return float64(rng.IntN(d.choices))
	}
	return d.fromUnit(rng.Float64())
}

// gridSize is the number of values of a discrete dim, or 0 when continuous.
func (d dim) gridSize() float64 {
	switch {
	case d.single:
		return 1
	case d.kind == dimCategorical:
		return float64(d.choices)
	case d.step > 0:
		return math.Floor((d.high-d.low)/d.step+1e-9) + 1
	}
	return 0
}

func clamp(v, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, v)) }

// trialRNG gives every (sampler seed, study seed, trial number, stream) its own
// generator, so workers that share a seed still draw different trials and a
// study is reproducible whatever order its trials are asked in.
func trialRNG(samplerSeed, studySeed int64, number int, stream uint64) *rand.Rand {
	a := splitmix(uint64(samplerSeed) ^ splitmix(uint64(studySeed)+0x9e3779b97f4a7c15))
	b := splitmix(uint64(number)<<16 ^ stream)
	return rand.New(rand.NewPCG(a, b))
}

// splitmix is SplitMix64's finalizer: a cheap, well-mixing 64-bit hash.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
