package hpo

import (
	"fmt"
	"math"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// A sweep file (YAML) describes one study: where it is stored, what it
// optimises, how parameters are drawn and what runs a trial. Its form is
// fixed by DESIGN.md; unknown keys are errors that name their line.
//
//	study: demo
//	storage: sqlite:///study.db
//	objectives:
//	  - {metric: ndcg@5, direction: maximize}
//	sampler:
//	  seed: 1
//	  schedule: [{name: sobol, trials: 8}, {name: tpe, trials: 12}]
//	pruner: {name: median, warmup_steps: 1}
//	space:
//	  lr: {type: float, low: 1.0e-6, high: 1.0e-4, log: true}
//	objective:
//	  cmd: "python3 objective.py"
//	heartbeat: {interval: 10s, grace: 60s, max_retry: 1}    # optional
//
// space may also be the string "preset:original" (the original work's
// ranges), or a mapping with a "preset" key whose other entries add to or
// replace the preset's parameters.

// Sweep is a parsed sweep file.
type Sweep struct {
	Path       string // where it was read from ("" if parsed from bytes)
	Study      string
	Storage    string
	Objectives []Metric // the first is the main one
	Seed       int64
	Schedule   Schedule
	Pruner     *PrunerSpec // nil: no pruning
	Space      Space
	Command    string         // objective.cmd (external command)
	Train      map[string]any // objective.train (built-in objective), raw
	Heartbeat  Heartbeat
}

// Metric is one objective: a metric name and whether to maximise or minimise it.
type Metric struct {
	Name      string
	Direction Direction
}

// PrunerSpec names a pruner and its options (NewPruner's).
type PrunerSpec struct {
	Name    string
	Options map[string]any
}

// Heartbeat says how workers show they are alive and what happens to
// trials whose worker is gone.
type Heartbeat struct {
	Interval time.Duration // between heartbeats of a running trial
	Grace    time.Duration // a RUNNING trial silent this long is failed
	MaxRetry int           // times a stale trial is re-run with its params
}

// DefaultHeartbeat: beat every 10 s, fail after 60 s of silence, retry once.
var DefaultHeartbeat = Heartbeat{Interval: 10 * time.Second, Grace: 60 * time.Second, MaxRetry: 1}

// Directions lists the objectives' directions in order.
func (s *Sweep) Directions() []Direction {
	out := make([]Direction, len(s.Objectives))
	for i, o := range s.Objectives {
		out[i] = o.Direction
	}
	return out
}

// LoadSweep reads and parses a sweep file.
func LoadSweep(path string) (*Sweep, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseSweep(path, data)
}

// ParseSweep parses a sweep file's bytes; path only labels errors.
func ParseSweep(path string, data []byte) (*Sweep, error) {
	if path == "" {
		path = "sweep"
	}
	p := &sweepParser{path: path}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if len(doc.Content) == 0 {
		return nil, fmt.Errorf("%s: empty sweep file", path)
	}
	s := p.sweep(doc.Content[0])
	if p.err != nil {
		return nil, p.err
	}
	s.Path = path
	return s, nil
}

// sweepParser walks the YAML tree, keeping the first error with its line.
type sweepParser struct {
	path string
	err  error
}

func (p *sweepParser) fail(n *yaml.Node, field, format string, a ...any) {
	if p.err != nil {
		return
	}
	line := 0
	if n != nil {
		line = n.Line
	}
	msg := fmt.Sprintf(format, a...)
	if field != "" {
		msg = field + ": " + msg
	}
	p.err = fmt.Errorf("%s:%d: %s", p.path, line, msg)
}

// fields returns a mapping's values by key, failing on keys not in allowed
// and on repeated keys.
func (p *sweepParser) fields(n *yaml.Node, field string, allowed ...string) map[string]*yaml.Node {
	out := map[string]*yaml.Node{}
	if n.Kind != yaml.MappingNode {
		p.fail(n, field, "want a mapping")
		return out
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !contains(allowed, k.Value) {
			p.fail(k, field, "unknown key %q (want one of %s)", k.Value, strings.Join(allowed, ", "))
			continue
		}
		if _, dup := out[k.Value]; dup {
			p.fail(k, field, "key %q given twice", k.Value)
		}
		out[k.Value] = v
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func join(field, key string) string {
	if field == "" {
		return key
	}
	return field + "." + key
}

func (p *sweepParser) str(n *yaml.Node, field string) string {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.fail(n, field, "want a string")
		return ""
	}
	return n.Value
}

func (p *sweepParser) scalar(n *yaml.Node, field string) any {
	if n.Kind != yaml.ScalarNode {
		p.fail(n, field, "want a number, string, bool or null")
		return nil
	}
	var v any
	if err := n.Decode(&v); err != nil {
		p.fail(n, field, "%v", err)
		return nil
	}
	switch x := v.(type) {
	case int:
		return int64(x)
	case uint64:
		p.fail(n, field, "integer %d is too large", x)
		return nil
	}
	return v
}

func (p *sweepParser) number(n *yaml.Node, field string) float64 {
	switch v := p.scalar(n, field).(type) {
	case int64:
		return float64(v)
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			p.fail(n, field, "want a finite number")
		}
		return v
	}
	p.fail(n, field, "want a number, got %q", n.Value)
	return 0
}

func (p *sweepParser) integer(n *yaml.Node, field string) int64 {
	if v, ok := p.scalar(n, field).(int64); ok {
		return v
	}
	p.fail(n, field, "want an integer, got %q", n.Value)
	return 0
}

func (p *sweepParser) boolean(n *yaml.Node, field string) bool {
	if v, ok := p.scalar(n, field).(bool); ok {
		return v
	}
	p.fail(n, field, "want true or false, got %q", n.Value)
	return false
}

func (p *sweepParser) duration(n *yaml.Node, field string) time.Duration {
	s := p.str(n, field)
	if s == "" {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		// A bare number means seconds.
		var f float64
		if _, err2 := fmt.Sscanf(s, "%g", &f); err2 == nil && !strings.ContainsAny(s, "abcdfghijklmnopqrstuvwxyz") {
			d, err = time.Duration(f*float64(time.Second)), nil
		}
	}
	if err != nil || d <= 0 {
		p.fail(n, field, "want a positive duration such as 10s or 2m, got %q", s)
	}
	return d
}

func (p *sweepParser) sweep(n *yaml.Node) *Sweep {
	s := &Sweep{Heartbeat: DefaultHeartbeat}
	f := p.fields(n, "", "study", "storage", "objectives", "sampler", "pruner", "space", "objective", "heartbeat")
	if v := f["study"]; v != nil {
		s.Study = p.str(v, "study")
	}
	if v := f["storage"]; v != nil {
		s.Storage = p.str(v, "storage")
	}
	if v := f["objectives"]; v != nil {
		s.Objectives = p.objectives(v)
	} else {
		p.fail(n, "objectives", "missing (one or more {metric, direction})")
	}
	if v := f["sampler"]; v != nil {
		p.sampler(v, s)
	} else {
		p.fail(n, "sampler", "missing (seed and schedule)")
	}
	if v := f["pruner"]; v != nil {
		s.Pruner = p.pruner(v)
	}
	if v := f["space"]; v != nil {
		s.Space = p.space(v)
	} else {
		p.fail(n, "space", "missing")
	}
	if v := f["objective"]; v != nil {
		p.objective(v, s)
	} else {
		p.fail(n, "objective", "missing (cmd or train)")
	}
	if v := f["heartbeat"]; v != nil {
		h := p.fields(v, "heartbeat", "interval", "grace", "max_retry")
		if x := h["interval"]; x != nil {
			s.Heartbeat.Interval = p.duration(x, "heartbeat.interval")
		}
		if x := h["grace"]; x != nil {
			s.Heartbeat.Grace = p.duration(x, "heartbeat.grace")
		} else if h["interval"] != nil {
			s.Heartbeat.Grace = 2 * s.Heartbeat.Interval // Optuna's default
		}
		if x := h["max_retry"]; x != nil {
			s.Heartbeat.MaxRetry = int(p.integer(x, "heartbeat.max_retry"))
			if s.Heartbeat.MaxRetry < 0 {
				p.fail(x, "heartbeat.max_retry", "must be ≥ 0")
			}
		}
		if p.err == nil && s.Heartbeat.Grace <= s.Heartbeat.Interval {
			p.fail(v, "heartbeat.grace", "must be longer than the interval (%v)", s.Heartbeat.Interval)
		}
	}
	return s
}

func (p *sweepParser) objectives(n *yaml.Node) []Metric {
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		p.fail(n, "objectives", "want a list of {metric, direction}")
		return nil
	}
	var out []Metric
	seen := map[string]bool{}
	for i, item := range n.Content {
		field := fmt.Sprintf("objectives[%d]", i)
		f := p.fields(item, field, "metric", "direction")
		var m Metric
		if v := f["metric"]; v != nil {
			m.Name = p.str(v, field+".metric")
		} else {
			p.fail(item, field, "missing metric")
		}
		if seen[m.Name] {
			p.fail(item, field, "metric %q listed twice", m.Name)
		}
		seen[m.Name] = true
		if v := f["direction"]; v != nil {
			switch strings.ToLower(p.str(v, field+".direction")) {
			case "maximize", "maximise", "max":
				m.Direction = Maximize
			case "minimize", "minimise", "min":
				m.Direction = Minimize
			default:
				p.fail(v, field+".direction", "want maximize or minimize, got %q", v.Value)
			}
		} else {
			p.fail(item, field, "missing direction")
		}
		out = append(out, m)
	}
	return out
}

func (p *sweepParser) sampler(n *yaml.Node, s *Sweep) {
	f := p.fields(n, "sampler", "seed", "schedule")
	if v := f["seed"]; v != nil {
		s.Seed = p.integer(v, "sampler.seed")
	}
	v := f["schedule"]
	if v == nil {
		p.fail(n, "sampler.schedule", "missing (a list of {name, trials})")
		return
	}
	if v.Kind != yaml.SequenceNode || len(v.Content) == 0 {
		p.fail(v, "sampler.schedule", "want a list of {name, trials, ...options}")
		return
	}
	for i, item := range v.Content {
		field := fmt.Sprintf("sampler.schedule[%d]", i)
		if item.Kind != yaml.MappingNode {
			p.fail(item, field, "want a mapping")
			continue
		}
		st := Stage{Options: map[string]any{}}
		for j := 0; j+1 < len(item.Content); j += 2 {
			k, val := item.Content[j], item.Content[j+1]
			switch k.Value {
			case "name":
				st.Name = p.str(val, field+".name")
			case "trials":
				st.Trials = int(p.integer(val, field+".trials"))
				if st.Trials < 1 {
					p.fail(val, field+".trials", "must be ≥ 1")
				}
			default:
				st.Options[k.Value] = p.scalar(val, field+"."+k.Value)
			}
		}
		if st.Name == "" {
			p.fail(item, field, "missing name (random, sobol, tpe or nsga2)")
		}
		if st.Trials == 0 {
			p.fail(item, field, "missing trials")
		}
		// Let the sampler registry judge names and options now, with the line.
		if p.err == nil {
			if _, err := NewSampler(st.Name, s.Seed, copyOptions(st.Options)); err != nil {
				p.fail(item, field, "%v", err)
			}
		}
		s.Schedule = append(s.Schedule, st)
	}
}

func copyOptions(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (p *sweepParser) pruner(n *yaml.Node) *PrunerSpec {
	if n.Kind == yaml.ScalarNode {
		spec := &PrunerSpec{Name: p.str(n, "pruner"), Options: map[string]any{}}
		if _, err := NewPruner(spec.Name, nil); err != nil {
			p.fail(n, "pruner", "%v", err)
		}
		return spec
	}
	if n.Kind != yaml.MappingNode {
		p.fail(n, "pruner", "want a name or {name, ...options}")
		return nil
	}
	spec := &PrunerSpec{Options: map[string]any{}}
	for j := 0; j+1 < len(n.Content); j += 2 {
		k, v := n.Content[j], n.Content[j+1]
		if k.Value == "name" {
			spec.Name = p.str(v, "pruner.name")
		} else {
			spec.Options[k.Value] = p.scalar(v, "pruner."+k.Value)
		}
	}
	if spec.Name == "" {
		p.fail(n, "pruner", "missing name (median, percentile, successive_halving or none)")
	} else if p.err == nil {
		if _, err := NewPruner(spec.Name, copyOptions(spec.Options)); err != nil {
			p.fail(n, "pruner", "%v", err)
		}
	}
	return spec
}

func (p *sweepParser) objective(n *yaml.Node, s *Sweep) {
	f := p.fields(n, "objective", "cmd", "train")
	switch {
	case f["cmd"] != nil && f["train"] != nil:
		p.fail(n, "objective", "give exactly one of cmd and train")
	case f["cmd"] != nil:
		s.Command = p.str(f["cmd"], "objective.cmd")
		if strings.TrimSpace(s.Command) == "" {
			p.fail(f["cmd"], "objective.cmd", "empty command")
		}
	case f["train"] != nil:
		var m map[string]any
		if err := f["train"].Decode(&m); err != nil || m == nil {
			p.fail(f["train"], "objective.train", "want a mapping of train options")
		}
		s.Train = m
	default:
		p.fail(n, "objective", "give exactly one of cmd and train")
	}
}

const presetPrefix = "preset:"

func (p *sweepParser) space(n *yaml.Node) Space {
	if n.Kind == yaml.ScalarNode {
		name, ok := strings.CutPrefix(strings.TrimSpace(n.Value), presetPrefix)
		if !ok {
			p.fail(n, "space", "want a mapping of parameters or %q", "preset:NAME")
			return nil
		}
		sp, err := PresetSpace(strings.TrimSpace(name))
		if err != nil {
			p.fail(n, "space", "%v", err)
		}
		return sp
	}
	if n.Kind != yaml.MappingNode || len(n.Content) == 0 {
		p.fail(n, "space", "want a mapping of parameters")
		return nil
	}
	var sp Space
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Value == "preset" {
			base, err := PresetSpace(p.str(v, "space.preset"))
			if err != nil {
				p.fail(v, "space.preset", "%v", err)
			}
			sp = mergeSpace(sp, base)
			continue
		}
		if k.Value == "" {
			p.fail(k, "space", "empty parameter name")
			continue
		}
		for _, prm := range sp {
			if prm.Name == k.Value && !isPreset(k.Value) {
				p.fail(k, "space", "parameter %q given twice", k.Value)
			}
		}
		d := p.distribution(v, "space."+k.Value)
		if d != nil {
			sp = mergeSpace(sp, Space{{Name: k.Value, Dist: d}})
		}
	}
	return sp
}

func isPreset(name string) bool {
	for _, prm := range originalSpace() {
		if prm.Name == name {
			return true
		}
	}
	return false
}

// mergeSpace appends add to sp, replacing parameters of the same name in place.
func mergeSpace(sp, add Space) Space {
	for _, a := range add {
		replaced := false
		for i := range sp {
			if sp[i].Name == a.Name {
				sp[i] = a
				replaced = true
			}
		}
		if !replaced {
			sp = append(sp, a)
		}
	}
	return sp
}

func (p *sweepParser) distribution(n *yaml.Node, field string) Distribution {
	f := p.fields(n, field, "type", "low", "high", "log", "step", "choices")
	if p.err != nil {
		return nil
	}
	typ := ""
	if v := f["type"]; v != nil {
		typ = p.str(v, field+".type")
	} else if f["choices"] != nil {
		typ = "categorical"
	} else {
		p.fail(n, field, "missing type (float, int or categorical)")
		return nil
	}
	only := func(keys ...string) {
		for k, v := range f {
			if k != "type" && !contains(keys, k) {
				p.fail(v, field, "%q does not apply to a %s parameter", k, typ)
			}
		}
	}
	need := func(k string) *yaml.Node {
		if f[k] == nil {
			p.fail(n, field, "missing %s", k)
		}
		return f[k]
	}
	var d Distribution
	var err error
	switch typ {
	case "float":
		only("low", "high", "log", "step")
		lo, hi := need("low"), need("high")
		if p.err != nil {
			return nil
		}
		log, step := false, 0.0
		if v := f["log"]; v != nil {
			log = p.boolean(v, field+".log")
		}
		if v := f["step"]; v != nil {
			step = p.number(v, field+".step")
			if p.err == nil && step <= 0 {
				p.fail(v, field+".step", "must be > 0")
			}
		}
		d, err = NewFloatDistribution(p.number(lo, field+".low"), p.number(hi, field+".high"), log, step)
	case "int":
		only("low", "high", "log", "step")
		lo, hi := need("low"), need("high")
		if p.err != nil {
			return nil
		}
		log, step := false, int64(1)
		if v := f["log"]; v != nil {
			log = p.boolean(v, field+".log")
		}
		if v := f["step"]; v != nil {
			step = p.integer(v, field+".step")
		}
		d, err = NewIntDistribution(p.integer(lo, field+".low"), p.integer(hi, field+".high"), log, step)
	case "categorical":
		only("choices")
		v := need("choices")
		if p.err != nil {
			return nil
		}
		if v.Kind != yaml.SequenceNode {
			p.fail(v, field+".choices", "want a list")
			return nil
		}
		var choices []any
		for i, c := range v.Content {
			choices = append(choices, p.scalar(c, fmt.Sprintf("%s.choices[%d]", field, i)))
		}
		d, err = NewCategoricalDistribution(choices)
	default:
		p.fail(f["type"], field+".type", "want float, int or categorical, got %q", typ)
		return nil
	}
	if err != nil {
		p.fail(n, field, "%v", err)
		return nil
	}
	return d
}

// PresetSpace returns a shipped search space by name. "original" is the
// original work's ranges, with names matching `ragtune train` flags.
func PresetSpace(name string) (Space, error) {
	switch name {
	case "original":
		return originalSpace(), nil
	}
	return nil, fmt.Errorf("unknown space preset %q (want original)", name)
}

func originalSpace() Space {
	return Space{
		{"lr", FloatDistribution{Low: 1e-6, High: 1e-4, Log: true}},
		{"batch", CategoricalDistribution{Choices: []any{int64(1), int64(2), int64(4), int64(8), int64(16), int64(32)}}},
		{"epochs", IntDistribution{Low: 1, High: 3, Step: 1}},
		{"warmup", FloatDistribution{Low: 0.01, High: 0.2}},
		{"scheduler", CategoricalDistribution{Choices: []any{"linear", "cosine", "constant"}}},
		{"accum", CategoricalDistribution{Choices: []any{int64(1), int64(2), int64(4), int64(8)}}},
		{"rank", CategoricalDistribution{Choices: []any{int64(8), int64(16), int64(32), int64(64), int64(128)}}},
		{"alpha", CategoricalDistribution{Choices: []any{int64(8), int64(16), int64(32), int64(64), int64(128), int64(256)}}},
		{"dropout", FloatDistribution{Low: 0, High: 0.2}},
		{"targets", CategoricalDistribution{Choices: []any{"attn_q,attn_v", "attn_q,attn_k,attn_v,attn_output", "attn_q,attn_k,attn_v,attn_output,ffn_up,ffn_down"}}},
		{"train_fraction", FloatDistribution{Low: 0.1, High: 1}},
	}
}
