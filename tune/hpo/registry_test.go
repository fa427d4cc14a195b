package hpo

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestNoDuplicatesOnSmallCategoricalSpace(t *testing.T) {
	space := Space{{"opt", mustCat(t, "adam", "sgd")}, {"bs", mustCat(t, 8, 16, 32)}}
	for _, name := range []string{"random", "sobol", "tpe", "nsga2"} {
		opts := map[string]any{}
		if name == "tpe" {
			opts["n_startup_trials"] = 2
		}
		if name == "nsga2" {
			opts["population_size"] = 2
		}
		s, err := NewSampler(name, 3, opts)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[[2]float64]bool{}
		trials := runStudy(t, s, space, []Direction{Minimize}, 6, func(p map[string]float64) []float64 { return []float64{p["opt"] + p["bs"]} })
		for _, tr := range trials {
			k := [2]float64{tr.InternalParams["opt"], tr.InternalParams["bs"]}
			if seen[k] {
				t.Fatalf("%s: trial %d repeats %v", name, tr.Number, k)
			}
			seen[k] = true
		}
		_, err = s.Suggest(SuggestRequest{Trials: trials, Directions: []Direction{Minimize}, Space: space, Number: 6})
		if !errors.Is(err, ErrSpaceExhausted) {
			t.Fatalf("%s: 7th trial of 6 combinations: err = %v, want ErrSpaceExhausted", name, err)
		}
		// A FAILED trial does not block its parameters.
		trials[5].State = Fail
		p, err := s.Suggest(SuggestRequest{Trials: trials, Directions: []Direction{Minimize}, Space: space, Number: 6})
		if err != nil || p["opt"] != trials[5].InternalParams["opt"] || p["bs"] != trials[5].InternalParams["bs"] {
			t.Fatalf("%s: after a failure: %v, %v; want the failed trial's point", name, p, err)
		}
	}
}

func TestScheduleStages(t *testing.T) {
	s, err := NewScheduleSampler(Schedule{{Name: "sobol", Trials: 3}, {Name: "tpe", Trials: 2, Options: map[string]any{"multivariate": true}}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if s.Name() != "schedule(sobol:3,tpe:2)" {
		t.Fatalf("name %q", s.Name())
	}
	ss := s.(*dedupeSampler).inner.(*ScheduleSampler)
	tr := func(states ...TrialState) []FrozenTrial {
		var out []FrozenTrial
		for i, st := range states {
			out = append(out, FrozenTrial{Number: i, State: st})
		}
		return out
	}
	cases := []struct {
		trials []FrozenTrial
		number int
		want   int
	}{
		{nil, 0, 0},
		{tr(Complete, Pruned), 2, 0},
		{tr(Complete, Pruned, Complete), 3, 1},
		{tr(Complete, Fail, Complete), 3, 0},                                   // the failed Sobol trial is replaced
		{tr(Complete, Running, Running), 3, 1},                                 // running trials count: parallel workers move on
		{tr(Complete, Running, Running), 2, 0},                                 // the trial being sampled does not count itself
		{tr(Complete, Complete, Complete, Complete, Complete, Complete), 6, 1}, // past the total: last stage
	}
	for i, c := range cases {
		if got := ss.StageFor(c.trials, c.number); got != c.want {
			t.Errorf("case %d: stage %d, want %d", i, got, c.want)
		}
	}
	if (Schedule{{Name: "sobol", Trials: 8}, {Name: "tpe", Trials: 12}}).Total() != 20 {
		t.Error("Total")
	}
}

func TestRegistryErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		opts map[string]any
		want string
	}{
		{"annealing", nil, "unknown sampler"},
		{"tpe", map[string]any{"n_startup": 3}, `unknown option "n_startup"`},
		{"tpe", map[string]any{"multivariate": "yes"}, "true or false"},
		{"nsga2", map[string]any{"population_size": 1.5}, "integer"},
	} {
		if _, err := NewSampler(c.name, 0, c.opts); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("NewSampler(%s, %v): err = %v, want %q", c.name, c.opts, err, c.want)
		}
	}
	for _, c := range []struct {
		name string
		opts map[string]any
		want string
	}{
		{"hyperband", nil, "unknown pruner"},
		{"percentile", nil, "percentile must be"},
		{"sha", map[string]any{"min_resource": "soon"}, "integer"},
		{"median", map[string]any{"n_warmup_steps": -1}, "≥ 0"},
	} {
		if _, err := NewPruner(c.name, c.opts); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("NewPruner(%s, %v): err = %v, want %q", c.name, c.opts, err, c.want)
		}
	}
	if p, err := NewPruner("sha", map[string]any{"min_resource": "auto", "reduction_factor": 3}); err != nil || p.(*SuccessiveHalvingPruner).ReductionFactor != 3 {
		t.Errorf("sha options: %v %v", p, err)
	}
}

func TestSobolSamplerFollowsOptuna(t *testing.T) {
	space := Space{{"x", mustFloat(t, 0, 1, false, 0)}, {"lr", mustFloat(t, 1e-4, 1e-1, true, 0)}, {"n", mustInt(t, 0, 10, false, 1)}, {"c", mustCat(t, "a", "b")}}
	s := NewSobolSampler(0)
	// Trial 1 takes point 0: every numerical parameter at its lower bound (Optuna: x=0.0, lr=1e-4, n=0).
	p, err := s.Suggest(SuggestRequest{Space: space, Number: 1})
	if err != nil {
		t.Fatal(err)
	}
	if p["x"] != 0 || math.Abs(p["lr"]/1e-4-1) > 1e-12 || p["n"] != 0 {
		t.Fatalf("trial 1 = %v, want the lower corner", p)
	}
	// Trial 2 takes point 1 = (0.5, 0.5, 0.5): the middle of each unit-cube axis.
	p, _ = s.Suggest(SuggestRequest{Space: space, Number: 2})
	if p["x"] != 0.5 || p["n"] != 5 || p["lr"] < 0.00316 || p["lr"] > 0.00317 {
		t.Fatalf("trial 2 = %v, want x=0.5, lr≈10^-2.5, n=5", p)
	}
}
