package hpo

import (
	"math"
	"strings"
	"testing"
)

// The JSON strings are the exact forms Optuna 3.1 wrote (optuna-facts.md 1.4).
func TestDistributionJSONRoundTrip(t *testing.T) {
	cases := []struct {
		json string
		want Distribution
	}{
		{`{"name": "FloatDistribution", "attributes": {"step": null, "low": -10.0, "high": 10.0, "log": false}}`,
			FloatDistribution{Low: -10, High: 10}},
		{`{"name": "FloatDistribution", "attributes": {"step": null, "low": 1e-05, "high": 0.1, "log": true}}`,
			FloatDistribution{Low: 1e-5, High: 0.1, Log: true}},
		{`{"name": "FloatDistribution", "attributes": {"step": 0.25, "low": 0.0, "high": 1.0, "log": false}}`,
			FloatDistribution{Low: 0, High: 1, Step: 0.25}},
		{`{"name": "IntDistribution", "attributes": {"log": false, "step": 2, "low": 1, "high": 9}}`,
			IntDistribution{Low: 1, High: 9, Step: 2}},
		{`{"name": "IntDistribution", "attributes": {"log": true, "step": 1, "low": 1, "high": 1024}}`,
			IntDistribution{Low: 1, High: 1024, Log: true, Step: 1}},
		{`{"name": "CategoricalDistribution", "attributes": {"choices": ["adam", "sgd", null, 3, 2.5, true]}}`,
			CategoricalDistribution{Choices: []any{"adam", "sgd", nil, int64(3), 2.5, true}}},
	}
	for _, c := range cases {
		d, err := ParseDistributionJSON(c.json)
		if err != nil {
			t.Fatalf("%s: %v", c.json, err)
		}
		if !SameDistribution(d, c.want) {
			t.Errorf("parsed %s as %#v, want %#v", c.json, d, c.want)
		}
		if d.JSON() != c.json {
			t.Errorf("JSON()\n got %s\nwant %s", d.JSON(), c.json)
		}
	}
}

func TestParseDistributionLegacyAndShortForms(t *testing.T) {
	cases := map[string]Distribution{
		`{"name": "UniformDistribution", "attributes": {"low": 0.0, "high": 2.0}}`:                   FloatDistribution{Low: 0, High: 2},
		`{"name": "LogUniformDistribution", "attributes": {"low": 0.001, "high": 1.0}}`:              FloatDistribution{Low: 0.001, High: 1, Log: true},
		`{"name": "DiscreteUniformDistribution", "attributes": {"low": 0.0, "high": 1.0, "q": 0.1}}`: FloatDistribution{Low: 0, High: 1, Step: 0.1},
		`{"name": "IntUniformDistribution", "attributes": {"low": 0, "high": 10, "step": 5}}`:        IntDistribution{Low: 0, High: 10, Step: 5},
		`{"name": "IntLogUniformDistribution", "attributes": {"low": 1, "high": 100}}`:               IntDistribution{Low: 1, High: 100, Log: true, Step: 1},
		`{"name": "FloatDistribution", "attributes": {"low": 0.5, "high": 1.5}}`:                     FloatDistribution{Low: 0.5, High: 1.5},
		`{"name": "IntDistribution", "attributes": {"low": 2, "high": 4}}`:                           IntDistribution{Low: 2, High: 4, Step: 1},
		`{"type": "float", "low": 0.1, "high": 1, "log": true}`:                                      FloatDistribution{Low: 0.1, High: 1, Log: true},
		`{"type": "int", "low": 1, "high": 3}`:                                                       IntDistribution{Low: 1, High: 3, Step: 1},
		`{"type": "categorical", "choices": ["a", 1]}`:                                               CategoricalDistribution{Choices: []any{"a", int64(1)}},
	}
	for js, want := range cases {
		d, err := ParseDistributionJSON(js)
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		if !SameDistribution(d, want) {
			t.Errorf("%s: got %s want %s", js, d.JSON(), want.JSON())
		}
	}
}

func TestParseDistributionErrors(t *testing.T) {
	bad := []string{
		``, `[]`, `{"name": "Nope", "attributes": {}}`, `{"name": "FloatDistribution"}`,
		`{"name": "FloatDistribution", "attributes": {"low": 1.0, "high": 0.0}}`,
		`{"name": "FloatDistribution", "attributes": {"low": 0.0, "high": 1.0, "log": true}}`,
		`{"name": "FloatDistribution", "attributes": {"low": 0.1, "high": 1.0, "log": true, "step": 0.1}}`,
		`{"name": "IntDistribution", "attributes": {"low": 1, "high": 10, "log": true, "step": 2}}`,
		`{"name": "IntDistribution", "attributes": {"low": 0, "high": 10, "log": true}}`,
		`{"name": "IntDistribution", "attributes": {"low": 0.5, "high": 10}}`,
		`{"name": "IntDistribution", "attributes": {"low": 0, "high": 10, "step": 0}}`,
		`{"name": "CategoricalDistribution", "attributes": {"choices": []}}`,
		`{"name": "CategoricalDistribution", "attributes": {"choices": [[1]]}}`,
		`{"type": "complex"}`,
	}
	for _, js := range bad {
		if d, err := ParseDistributionJSON(js); err == nil {
			t.Errorf("%q parsed as %#v, want an error", js, d)
		}
	}
}

// Optuna lowers a high bound that is off the step grid, with decimal arithmetic.
func TestHighAdjustedOntoStepGrid(t *testing.T) {
	f, err := NewFloatDistribution(0, 1, false, 0.3)
	if err != nil || f.High != 0.9 {
		t.Errorf("float high = %v (%v), want 0.9", f.High, err)
	}
	f, _ = NewFloatDistribution(0.1, 0.7, false, 0.2)
	if f.High != 0.7 { // 0.6/0.2 is exactly 3 in decimal, not in binary
		t.Errorf("float high = %v, want 0.7 unchanged", f.High)
	}
	i, _ := NewIntDistribution(1, 10, false, 2)
	if i.High != 9 {
		t.Errorf("int high = %v, want 9", i.High)
	}
}

func TestConversionsAndContains(t *testing.T) {
	cat := CategoricalDistribution{Choices: []any{"linear", int64(1), 2.5, nil}}
	for ext, want := range map[any]float64{"linear": 0, true: 1, 1.0: 1, int64(1): 1, 2.5: 2} {
		got, err := cat.ToInternal(ext)
		if err != nil || got != want {
			t.Errorf("ToInternal(%v) = %v, %v; want %v", ext, got, err, want)
		}
	}
	if got, _ := cat.ToInternal(nil); got != 3 {
		t.Errorf("ToInternal(nil) = %v", got)
	}
	if _, err := cat.ToInternal("cosine"); err == nil {
		t.Error("ToInternal accepted an unknown choice")
	}
	if cat.ToExternal(0) != "linear" || cat.Contains(4) || !cat.Contains(3) || cat.Single() {
		t.Error("categorical ToExternal/Contains/Single wrong")
	}
	in := IntDistribution{Low: 1, High: 9, Step: 2}
	if in.ToExternal(5) != int64(5) || in.Contains(4) || !in.Contains(5) || in.Contains(11) {
		t.Error("int ToExternal/Contains wrong")
	}
	if (IntDistribution{Low: 1, High: 9, Step: 1}).Contains(4.5) {
		t.Error("int Contains accepted 4.5 (Optuna does not)")
	}
	if _, err := in.ToInternal(4.5); err == nil {
		t.Error("int ToInternal accepted 4.5")
	}
	fl := FloatDistribution{Low: 0, High: 1, Step: 0.25}
	if !fl.Contains(0.75) || fl.Contains(0.7) || fl.Contains(math.NaN()) {
		t.Error("float Contains wrong")
	}
	if !(FloatDistribution{Low: 0, High: 0.2, Step: 0.25}).Single() || (IntDistribution{Low: 1, High: 2, Step: 1}).Single() {
		t.Error("Single wrong")
	}
}

func TestCheckCompatible(t *testing.T) {
	a := FloatDistribution{Low: 0, High: 1}
	if err := CheckCompatible(a, FloatDistribution{Low: 0, High: 2}); err != nil {
		t.Errorf("dynamic range rejected: %v", err)
	}
	if CheckCompatible(a, FloatDistribution{Low: 0.1, High: 1, Log: true}) == nil ||
		CheckCompatible(a, IntDistribution{Low: 0, High: 1, Step: 1}) == nil ||
		CheckCompatible(CategoricalDistribution{Choices: []any{"a"}}, CategoricalDistribution{Choices: []any{"b"}}) == nil {
		t.Error("incompatible change accepted")
	}
}

// pyFloat must match Python's repr, which is what json.dumps writes.
func TestPyFloat(t *testing.T) {
	for x, want := range map[float64]string{
		1: "1.0", -10: "-10.0", 1e-5: "1e-05", 0.0001: "0.0001", 0.1: "0.1", 1e16: "1e+16",
		1e15: "1000000000000000.0", 2.5e-7: "2.5e-07", 123.456: "123.456", math.Inf(1): "Infinity",
	} {
		if got := pyFloat(x); got != want {
			t.Errorf("pyFloat(%v) = %s, want %s", x, got, want)
		}
	}
}

func FuzzParseDistributionJSON(f *testing.F) {
	f.Add(`{"name": "FloatDistribution", "attributes": {"step": null, "low": -10.0, "high": 10.0, "log": false}}`)
	f.Add(`{"name": "CategoricalDistribution", "attributes": {"choices": ["adam", null, 3, 2.5, true]}}`)
	f.Add(`{"type": "int", "low": 1, "high": 3, "step": 2}`)
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDistributionJSON(s)
		if err != nil {
			return
		}
		// Whatever parses must survive its own JSON unchanged.
		d2, err := ParseDistributionJSON(d.JSON())
		if err != nil {
			t.Fatalf("re-parse of %s: %v", d.JSON(), err)
		}
		if !strings.EqualFold(d.JSON(), d2.JSON()) {
			t.Fatalf("round trip changed %s into %s", d.JSON(), d2.JSON())
		}
	})
}
