package hpo

import (
	"strings"
	"testing"
	"time"
)

const designSweep = `
study: demo                       # --study overrides
storage: sqlite:///study.db
objectives:
  - {metric: ndcg@5, direction: maximize}
  - {metric: train_flops, direction: minimize}
sampler:
  seed: 1
  schedule: [{name: sobol, trials: 8}, {name: tpe, trials: 12, multivariate: true}]
pruner: {name: median, warmup_steps: 1}
space:
  lr:         {type: float, low: 1.0e-6, high: 1.0e-4, log: true}
  batch_size: {type: categorical, choices: [8, 16, 32]}
  epochs:     {type: int, low: 1, high: 3}
  dropout:    {type: float, low: 0, high: 0.2, step: 0.05}
objective:
  cmd: "python3 objective.py"
heartbeat: {interval: 2s, max_retry: 0}
`

// The example from DESIGN.md parses into what it says.
func TestParseDesignSweep(t *testing.T) {
	s, err := ParseSweep("design.yaml", []byte(designSweep))
	if err != nil {
		t.Fatal(err)
	}
	if s.Study != "demo" || s.Storage != "sqlite:///study.db" || s.Command != "python3 objective.py" || s.Seed != 1 {
		t.Errorf("sweep = %+v", s)
	}
	if len(s.Objectives) != 2 || s.Objectives[0] != (Metric{"ndcg@5", Maximize}) || s.Objectives[1].Direction != Minimize {
		t.Errorf("objectives = %+v", s.Objectives)
	}
	if s.Schedule.Total() != 20 || s.Schedule[1].Options["multivariate"] != true {
		t.Errorf("schedule = %+v", s.Schedule)
	}
	if s.Pruner == nil || s.Pruner.Name != "median" || s.Pruner.Options["warmup_steps"] != int64(1) {
		t.Errorf("pruner = %+v", s.Pruner)
	}
	names := []string{}
	for _, p := range s.Space {
		names = append(names, p.Name)
	}
	if strings.Join(names, ",") != "lr,batch_size,epochs,dropout" {
		t.Errorf("space order %v", names)
	}
	if !SameDistribution(s.Space[1].Dist, CategoricalDistribution{Choices: []any{int64(8), int64(16), int64(32)}}) ||
		!SameDistribution(s.Space[0].Dist, FloatDistribution{Low: 1e-6, High: 1e-4, Log: true}) ||
		!SameDistribution(s.Space[3].Dist, FloatDistribution{Low: 0, High: 0.2, Step: 0.05}) {
		t.Errorf("space = %+v", s.Space)
	}
	if s.Heartbeat != (Heartbeat{Interval: 2 * time.Second, Grace: 4 * time.Second, MaxRetry: 0}) {
		t.Errorf("heartbeat = %+v", s.Heartbeat)
	}
}

func TestParseSweepPreset(t *testing.T) {
	base := "objectives: [{metric: ndcg@5, direction: max}]\nsampler: {schedule: [{name: random, trials: 3}]}\nobjective: {cmd: ./obj}\n"
	s, err := ParseSweep("", []byte(base+"space: preset:original\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Space) != 11 || s.Space[0].Name != "lr" {
		t.Errorf("preset space = %+v", s.Space)
	}
	s, err = ParseSweep("", []byte(base+"space:\n  preset: original\n  epochs: {type: int, low: 1, high: 5}\n  extra: {choices: [a, b]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Space) != 12 || !SameDistribution(s.Space[2].Dist, IntDistribution{Low: 1, High: 5, Step: 1}) || s.Space[11].Name != "extra" {
		t.Errorf("merged space = %+v", s.Space)
	}
}

// Every error names the file, the line and the field.
func TestParseSweepErrors(t *testing.T) {
	cases := []struct{ yaml, want string }{
		{designSweep + "extra: 1\n", `s.yaml:19: unknown key "extra"`},
		{strings.Replace(designSweep, "log: true", "lgo: true", 1), `s.yaml:12: space.lr: unknown key "lgo"`},
		{strings.Replace(designSweep, "direction: minimize", "direction: up", 1), "s.yaml:6: objectives[1].direction"},
		{strings.Replace(designSweep, "name: sobol", "name: grid", 1), `s.yaml:9: sampler.schedule[0]: unknown sampler "grid"`},
		{strings.Replace(designSweep, "trials: 8", "trials: 0", 1), "sampler.schedule[0].trials: must be ≥ 1"},
		{strings.Replace(designSweep, "warmup_steps", "warmup_stpes", 1), "s.yaml:10: pruner"},
		{strings.Replace(designSweep, "low: 1, high: 3", "low: 3, high: 1", 1), "s.yaml:14: space.epochs: int distribution: low must be ≤ high"},
		{strings.Replace(designSweep, "high: 1.0e-4, log", "high: x, log", 1), "space.lr.high: want a number"},
		{strings.Replace(designSweep, `cmd: "python3 objective.py"`, "train: {model: m.gguf}\n  cmd: x", 1), "objective: give exactly one"},
		{strings.Replace(designSweep, "interval: 2s", "interval: soon", 1), "heartbeat.interval"},
		{strings.Replace(designSweep, "{type: int, low: 1, high: 3}", "{type: int, low: 1, high: 3, choices: [1]}", 1), `"choices" does not apply`},
		{"objectives: [{metric: m, direction: max}]\nsampler: {schedule: [{name: random, trials: 1}]}\nspace: preset:nope\n", "s.yaml:3: space: unknown space preset"},
		{"", "empty sweep file"},
		{"[1, 2]", "want a mapping"},
		{"study: [\n", "s.yaml"},
	}
	for _, c := range cases {
		_, err := ParseSweep("s.yaml", []byte(c.yaml))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want it to contain %q", err, c.want)
		}
	}
}

func FuzzParseSweep(f *testing.F) {
	f.Add(designSweep)
	f.Add("space: preset:original\n")
	f.Fuzz(func(t *testing.T, s string) {
		sw, err := ParseSweep("f.yaml", []byte(s))
		if err == nil && (len(sw.Objectives) == 0 || len(sw.Space) == 0 || len(sw.Schedule) == 0) {
			t.Fatalf("accepted an incomplete sweep: %+v", sw)
		}
	})
}
