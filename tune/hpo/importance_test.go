package hpo

import (
	"math"
	"reflect"
	"testing"
)

func importanceStudy(t *testing.T, space Space, n int, f objectiveFunc) []FrozenTrial {
	return runStudy(t, NewRandomSampler(5), space, []Direction{Minimize}, n, f)
}

func TestImportanceRanksDominantParameterFirst(t *testing.T) {
	space := Space{
		{"x", mustFloat(t, 0, 1, false, 0)},
		{"y", mustFloat(t, 0, 1, false, 0)},
		{"c", mustCat(t, "a", "b", "c")},
		{"k", mustInt(t, 3, 3, false, 1)}, // single value: importance 0
	}
	trials := importanceStudy(t, space, 150, func(p map[string]float64) []float64 {
		return []float64{10*p["x"] + p["y"] + 0.5*p["c"]}
	})
	opt := DefaultImportanceOptions()
	opt.NTrees = 16
	for name, eval := range map[string]func([]FrozenTrial, Space, ImportanceOptions) (*Importances, error){
		"fanova": FanovaImportance, "mdi": MeanDecreaseImpurity,
	} {
		im, err := eval(trials, space, opt)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %+v", name, im.Params)
		if im.Params[0].Name != "x" || im.Params[0].Importance < 0.8 {
			t.Errorf("%s: x should dominate: %+v", name, im.Params)
		}
		sum := 0.0
		for _, p := range im.Params {
			sum += p.Importance
			if p.Name == "k" && p.Importance != 0 {
				t.Errorf("%s: single-valued k has importance %v", name, p.Importance)
			}
		}
		if math.Abs(sum-1) > 1e-9 {
			t.Errorf("%s: importances sum to %v", name, sum)
		}
	}
}

func TestFanovaDetectsInteraction(t *testing.T) {
	space := Space{
		{"x", mustFloat(t, 0, 1, false, 0)},
		{"y", mustFloat(t, 0, 1, false, 0)},
		{"z", mustFloat(t, 0, 1, false, 0)},
	}
	trials := importanceStudy(t, space, 200, func(p map[string]float64) []float64 {
		return []float64{(p["x"] - 0.5) * (p["y"] - 0.5)}
	})
	opt := DefaultImportanceOptions()
	opt.NTrees = 16
	im, err := FanovaImportance(trials, space, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("main %+v\npairs %+v", im.Params, im.Pairs)
	top := im.Pairs[0]
	if !(top.A == "x" && top.B == "y") || top.Fraction < 0.3 {
		t.Fatalf("x·y interaction not found: %+v", im.Pairs)
	}
	for _, p := range im.Pairs[1:] {
		if p.Fraction > top.Fraction/3 {
			t.Errorf("spurious interaction %+v", p)
		}
	}
}

func TestImportanceNeedsTrials(t *testing.T) {
	space := Space{{"x", mustFloat(t, 0, 1, false, 0)}}
	if _, err := FanovaImportance(nil, space, DefaultImportanceOptions()); err == nil {
		t.Fatal("want an error with no trials")
	}
}

// An additive function has no interaction: the pair shares stay near 0
// while the main effects explain almost all the variance.
func TestFanovaAdditiveHasNoInteraction(t *testing.T) {
	space := Space{
		{"x", mustFloat(t, 0, 1, false, 0)},
		{"y", mustFloat(t, 0, 1, false, 0)},
	}
	trials := importanceStudy(t, space, 200, func(p map[string]float64) []float64 {
		return []float64{p["x"] + p["y"]}
	})
	opt := DefaultImportanceOptions()
	opt.NTrees = 16
	im, err := FanovaImportance(trials, space, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("main %+v\npairs %+v", im.Params, im.Pairs)
	main := 0.0
	for _, p := range im.Params {
		main += p.Fraction
	}
	if len(im.Pairs) != 1 || im.Pairs[0].Fraction > 0.05 || main < 0.9 {
		t.Fatalf("x+y: main effects %v, pairs %+v", main, im.Pairs)
	}
}

func TestForestImportancesEqualsBothEvaluators(t *testing.T) {
	space := Space{
		{"x", mustFloat(t, 0, 1, false, 0)},
		{"c", mustCat(t, "a", "b")},
	}
	trials := importanceStudy(t, space, 60, func(p map[string]float64) []float64 {
		return []float64{p["x"]*p["x"] + p["c"]}
	})
	opt := DefaultImportanceOptions()
	opt.NTrees = 8
	fa, mdi, err := ForestImportances(trials, space, opt)
	if err != nil {
		t.Fatal(err)
	}
	fa1, err := FanovaImportance(trials, space, opt)
	if err != nil {
		t.Fatal(err)
	}
	mdi1, err := MeanDecreaseImpurity(trials, space, opt)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fa, fa1) || !reflect.DeepEqual(mdi, mdi1) {
		t.Fatalf("one forest: %+v %+v\nseparate: %+v %+v", fa, mdi, fa1, mdi1)
	}
}
