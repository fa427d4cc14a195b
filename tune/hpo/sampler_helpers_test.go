package hpo

import (
	"math"
	"sort"
	"testing"
)

// objectiveFunc maps internal parameters to objective values.
type objectiveFunc func(p map[string]float64) []float64

// runStudy runs n sequential trials in memory: ask the sampler, evaluate,
// record a COMPLETE trial. No storage involved.
func runStudy(t testing.TB, s Sampler, space Space, dirs []Direction, n int, f objectiveFunc) []FrozenTrial {
	t.Helper()
	var trials []FrozenTrial
	for i := range n {
		p, err := s.Suggest(SuggestRequest{Trials: trials, Directions: dirs, Space: space, Number: i, Seed: 7})
		if err != nil {
			t.Fatalf("trial %d: %v", i, err)
		}
		for _, prm := range space {
			v, ok := p[prm.Name]
			if !ok || !prm.Dist.Contains(v) {
				t.Fatalf("trial %d: %s = %v (present %v) not in %s", i, prm.Name, v, ok, prm.Dist.JSON())
			}
		}
		trials = append(trials, FrozenTrial{Number: i, State: Complete, Values: f(p), InternalParams: p})
	}
	return trials
}

func bestValue(trials []FrozenTrial) float64 {
	best := math.Inf(1)
	for _, t := range trials {
		best = math.Min(best, t.Values[0])
	}
	return best
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func mustFloat(t testing.TB, low, high float64, log bool, step float64) FloatDistribution {
	d, err := NewFloatDistribution(low, high, log, step)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func mustInt(t testing.TB, low, high int64, log bool, step int64) IntDistribution {
	d, err := NewIntDistribution(low, high, log, step)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func mustCat(t testing.TB, choices ...any) CategoricalDistribution {
	d, err := NewCategoricalDistribution(choices)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// braninSpace and branin: the classic 2-D test function, minimum 0.397887.
func braninSpace(t testing.TB) Space {
	return Space{{"x1", mustFloat(t, -5, 10, false, 0)}, {"x2", mustFloat(t, 0, 15, false, 0)}}
}

func branin(p map[string]float64) []float64 {
	x1, x2 := p["x1"], p["x2"]
	a, b, c, r, s, tt := 1.0, 5.1/(4*math.Pi*math.Pi), 5/math.Pi, 6.0, 10.0, 1/(8*math.Pi)
	return []float64{a*math.Pow(x2-b*x1*x1+c*x1-r, 2) + s*(1-tt)*math.Cos(x1) + s}
}

// mixedSpace has six parameters of every kind: log float, stepped float,
// int, log int, stepped int and a categorical.
func mixedSpace(t testing.TB) Space {
	return Space{
		{"lr", mustFloat(t, 1e-5, 1e-1, true, 0)},
		{"dropout", mustFloat(t, 0, 0.5, false, 0.05)},
		{"layers", mustInt(t, 1, 8, false, 1)},
		{"batch", mustInt(t, 8, 512, true, 1)},
		{"rank", mustInt(t, 8, 128, false, 8)},
		{"opt", mustCat(t, "adam", "sgd", "rmsprop")},
	}
}

func mixed(p map[string]float64) []float64 {
	optCost := []float64{0, 1, 0.5}[int(p["opt"])]
	return []float64{math.Pow(math.Log10(p["lr"])+3, 2) +
		math.Pow(p["dropout"]-0.2, 2)*10 +
		math.Pow(p["layers"]-5, 2)/4 +
		math.Pow(math.Log2(p["batch"])-6, 2)/8 +
		math.Pow(p["rank"]-64, 2)/1000 +
		optCost}
}
