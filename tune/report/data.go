package report

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/ragtune/ragtune/tune/hpo"
	"github.com/ragtune/ragtune/tune/hpo/runner"
)

// Data is everything the page draws, as it travels in the page's JSON.
type Data struct {
	Study      string         `json:"study"`
	Metrics    []string       `json:"metrics"`
	Directions []string       `json:"directions"` // "maximize" or "minimize"
	Params     []ParamInfo    `json:"params"`
	Attrs      []string       `json:"attrs"`         // trial user attributes, table order
	Numeric    []string       `json:"numeric_attrs"` // attributes that are numbers: cost axes
	Trials     []TrialData    `json:"trials"`
	Best       []int          `json:"best"` // the best trial, or the Pareto front's trials
	Counts     map[string]int `json:"counts"`
	Importance *Importance    `json:"importance,omitempty"`
	ValTest    []ValTestPair  `json:"val_test"`
	Baselines  []Baseline     `json:"baselines"`
	ParetoX    string         `json:"pareto_x"` // default axes: "obj:I", "attr:KEY" or "duration"
	ParetoY    string         `json:"pareto_y"`
	Sections   []sectionData  `json:"sections"`
}

// ParamInfo is one parameter's domain as the charts need it.
type ParamInfo struct {
	Name    string  `json:"name"`
	Kind    string  `json:"kind"` // float, int or categorical
	Log     bool    `json:"log"`
	Low     float64 `json:"low"`
	High    float64 `json:"high"`
	Choices []any   `json:"choices,omitempty"`
}

// TrialData is one trial. Values and intermediate values that are not finite
// are null; so are missing durations.
type TrialData struct {
	Number       int            `json:"number"`
	State        string         `json:"state"`
	Values       []*float64     `json:"values"`
	Params       map[string]any `json:"params"`
	Intermediate [][2]*float64  `json:"intermediate"` // (step, value) by step
	Duration     *float64       `json:"duration"`     // seconds
	Attrs        map[string]any `json:"attrs"`
	FailReason   string         `json:"fail_reason,omitempty"`
}

// Importance holds both evaluators' results for the main objective; an
// evaluator that could not run says why.
type Importance struct {
	Objective    string        `json:"objective"`
	Fanova       []NamedValue  `json:"fanova"`
	MDI          []NamedValue  `json:"mdi"`
	FanovaError  string        `json:"fanova_error,omitempty"`
	MDIError     string        `json:"mdi_error,omitempty"`
	Interactions *Interactions `json:"interactions,omitempty"`
}

// NamedValue is one bar of an importance chart.
type NamedValue struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
}

// Interactions is fANOVA's variance-share matrix: main effects on the
// diagonal, pairwise interactions off it (symmetric).
type Interactions struct {
	Names  []string    `json:"names"`
	Matrix [][]float64 `json:"matrix"`
}

// ValTestPair names a validation score and the test score that goes with it.
type ValTestPair struct {
	Val  string `json:"val"` // "obj:I" or "attr:KEY"
	Test string `json:"test"`
	Name string `json:"name"`
}

// Baseline is a score the study recorded for a reference system.
type Baseline struct {
	System string  `json:"system"` // "base model" or "BM25"
	Metric string  `json:"metric"`
	Value  float64 `json:"value"`
	Source string  `json:"source"` // "study" or "trial N"
}

// Extract computes the report's data from a study.
func Extract(s Study) (*Data, error) {
	if len(s.Metrics) != len(s.Directions) {
		return nil, fmt.Errorf("study %q: %d metric names for %d objectives", s.Name, len(s.Metrics), len(s.Directions))
	}
	// Empty lists stay lists in the JSON: the page maps over them.
	d := &Data{Study: s.Name, Metrics: s.Metrics, Counts: map[string]int{}, Trials: []TrialData{}, Attrs: []string{},
		Numeric: []string{}, ValTest: []ValTestPair{}, Baselines: []Baseline{}, Sections: []sectionData{}}
	for _, dir := range s.Directions {
		d.Directions = append(d.Directions, map[hpo.Direction]string{hpo.Maximize: "maximize", hpo.Minimize: "minimize"}[dir])
	}
	d.Params = append([]ParamInfo{}, paramInfos(s.Trials)...)
	attrSeen, numeric := map[string]bool{}, map[string]bool{}
	for _, t := range s.Trials {
		d.Counts[t.State.String()]++
		td := TrialData{Number: t.Number, State: t.State.String(), Values: []*float64{}, Params: map[string]any{},
			Intermediate: [][2]*float64{}, Attrs: map[string]any{}}
		for _, v := range t.Values {
			td.Values = append(td.Values, finite(v))
		}
		for k, v := range t.Params {
			td.Params[k] = jsonValue(v)
		}
		steps := make([]int, 0, len(t.Intermediate))
		for st := range t.Intermediate {
			steps = append(steps, st)
		}
		sort.Ints(steps)
		for _, st := range steps {
			step := float64(st)
			td.Intermediate = append(td.Intermediate, [2]*float64{&step, finite(t.Intermediate[st])})
		}
		if !t.Start.IsZero() && !t.End.IsZero() {
			sec := t.End.Sub(t.Start).Seconds()
			td.Duration = &sec
		}
		for k, v := range t.UserAttrs {
			if k == runner.AttrFailReason {
				td.FailReason = fmt.Sprint(v)
				continue
			}
			td.Attrs[k] = jsonValue(v)
			attrSeen[k] = true
			if _, ok := number(v); ok {
				numeric[k] = true
			}
		}
		if r, ok := t.SystemAttrs["fail_reason"].(string); ok && td.FailReason == "" {
			td.FailReason = r // where Optuna keeps it
		}
		d.Trials = append(d.Trials, td)
	}
	d.Attrs = append(d.Attrs, orderAttrs(attrSeen)...)
	for _, k := range d.Attrs {
		if numeric[k] {
			d.Numeric = append(d.Numeric, k)
		}
	}
	d.Best = bestTrials(s)
	d.ValTest = valTestPairs(s.Metrics, numeric)
	d.Baselines = baselines(s, d.Best)
	d.ParetoX, d.ParetoY = paretoAxes(s, numeric)
	d.Importance = importance(s)
	return d, nil
}

// finite is v, or nil where JSON cannot carry it.
func finite(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

// jsonValue replaces NaN and ±Inf (which Optuna's attributes may hold and
// encoding/json refuses) by their names, at any depth.
func jsonValue(v any) any {
	switch x := v.(type) {
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Sprint(x)
		}
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonValue(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonValue(e)
		}
		return out
	}
	return v
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, !math.IsNaN(x) && !math.IsInf(x, 0)
	case int64:
		return float64(x), true
	case bool:
		return 0, false
	}
	return 0, false
}

// attrOrder puts the columns a reader looks for first; the rest follow by name.
var attrOrder = []string{"train_flops", "train_seconds", "peak_rss_bytes", "energy_kwh", "emissions_kg"}

func orderAttrs(seen map[string]bool) []string {
	var out []string
	for _, k := range attrOrder {
		if seen[k] {
			out = append(out, k)
		}
	}
	var rest []string
	for k := range seen {
		if !contains(attrOrder, k) {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	return append(out, rest...)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// paramInfos lists every parameter of the study, sorted by name, with the
// distribution most trials used (a study may change its space over time).
func paramInfos(trials []hpo.FrozenTrial) []ParamInfo {
	count := map[string]map[string]int{}
	dist := map[string]hpo.Distribution{}
	for _, t := range trials {
		for name, dd := range t.Distributions {
			if count[name] == nil {
				count[name] = map[string]int{}
			}
			count[name][dd.JSON()]++
			js := dd.JSON()
			if prev, ok := dist[name]; !ok || count[name][js] > count[name][prev.JSON()] {
				dist[name] = dd
			}
		}
	}
	var out []ParamInfo
	for name, dd := range dist {
		p := ParamInfo{Name: name}
		switch x := dd.(type) {
		case hpo.FloatDistribution:
			p.Kind, p.Log, p.Low, p.High = "float", x.Log, x.Low, x.High
		case hpo.IntDistribution:
			p.Kind, p.Log, p.Low, p.High = "int", x.Log, float64(x.Low), float64(x.High)
		case hpo.CategoricalDistribution:
			p.Kind = "categorical"
			for _, c := range x.Choices {
				p.Choices = append(p.Choices, jsonValue(c))
			}
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// bestTrials is the best COMPLETE trial of a one-objective study, or the
// Pareto front of a multi-objective one.
func bestTrials(s Study) []int {
	out := []int{}
	if len(s.Directions) == 1 {
		if b := runner.BestTrial(s.Trials, s.Directions[0]); b != nil {
			out = append(out, b.Number)
		}
		return out
	}
	for _, t := range hpo.ParetoFront(s.Trials, s.Directions) {
		out = append(out, t.Number)
	}
	return out
}

// valTestPairs finds test scores recorded next to validation scores: an
// attribute test_M for an objective M, or test_M beside an attribute M.
func valTestPairs(metrics []string, numeric map[string]bool) []ValTestPair {
	out := []ValTestPair{}
	used := map[string]bool{}
	for i, m := range metrics {
		if numeric["test_"+m] {
			out = append(out, ValTestPair{Val: fmt.Sprintf("obj:%d", i), Test: "attr:test_" + m, Name: m})
			used["test_"+m] = true
		}
	}
	var keys []string
	for k := range numeric {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		m, ok := strings.CutPrefix(k, "test_")
		if ok && !used[k] && numeric[m] {
			out = append(out, ValTestPair{Val: "attr:" + m, Test: "attr:" + k, Name: m})
		}
	}
	return out
}

// baselines reads the base model's and BM25's scores: study user
// attributes base_M / bm25_M first, else the base_M attributes that the
// built-in objective records on each trial (taken from the best trial).
func baselines(s Study, best []int) []Baseline {
	out := []Baseline{}
	systems := []struct{ prefix, name string }{{"base_", "base model"}, {"bm25_", "BM25"}}
	for _, sys := range systems {
		for _, k := range sortedKeys(s.UserAttrs) {
			if m, ok := strings.CutPrefix(k, sys.prefix); ok {
				if v, ok := number(s.UserAttrs[k]); ok {
					out = append(out, Baseline{System: sys.name, Metric: m, Value: v, Source: "study"})
				}
			}
		}
	}
	if len(out) > 0 || len(best) == 0 {
		return out
	}
	for _, t := range s.Trials {
		if t.Number != best[0] {
			continue
		}
		for _, sys := range systems {
			for _, k := range sortedKeys(t.UserAttrs) {
				if m, ok := strings.CutPrefix(k, sys.prefix); ok {
					if v, ok := number(t.UserAttrs[k]); ok {
						out = append(out, Baseline{System: sys.name, Metric: m, Value: v, Source: fmt.Sprintf("trial %d", t.Number)})
					}
				}
			}
		}
	}
	return out
}

func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// paretoAxes picks the default Pareto axes: the main objective (or the
// first maximised one) up; across, an objective named for FLOPs, else
// another objective, else a FLOPs attribute, else duration.
func paretoAxes(s Study, numeric map[string]bool) (x, y string) {
	yi := 0
	for i, d := range s.Directions {
		if d == hpo.Maximize {
			yi = i
			break
		}
	}
	y = fmt.Sprintf("obj:%d", yi)
	for i, m := range s.Metrics {
		if i != yi && strings.Contains(strings.ToLower(m), "flops") {
			return fmt.Sprintf("obj:%d", i), y
		}
	}
	for i := range s.Metrics {
		if i != yi {
			return fmt.Sprintf("obj:%d", i), y
		}
	}
	for _, k := range append(append([]string{}, attrOrder...), sortedBools(numeric)...) {
		if numeric[k] && strings.Contains(strings.ToLower(k), "flops") {
			return "attr:" + k, y
		}
	}
	return "duration", y
}

func sortedBools(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// importance runs fANOVA (with pairwise interactions) and MDI on the main
// objective over the parameters every COMPLETE trial has with one
// distribution (Optuna's intersection search space).
func importance(s Study) *Importance {
	space := intersectionSpace(s.Trials)
	var complete int
	for _, t := range s.Trials {
		if t.State == hpo.Complete {
			complete++
		}
	}
	if complete == 0 {
		return nil
	}
	im := &Importance{Objective: s.Metrics[0], Fanova: []NamedValue{}, MDI: []NamedValue{}}
	if len(space) == 0 {
		im.FanovaError = "no parameter is shared by every complete trial"
		im.MDIError = im.FanovaError
		return im
	}
	fa, mdi, err := hpo.ForestImportances(s.Trials, space, hpo.DefaultImportanceOptions())
	if err != nil {
		im.FanovaError, im.MDIError = err.Error(), err.Error()
		return im
	}
	for _, p := range fa.Params {
		im.Fanova = append(im.Fanova, NamedValue{p.Name, p.Importance})
	}
	im.Interactions = interactionMatrix(space, fa)
	for _, p := range mdi.Params {
		im.MDI = append(im.MDI, NamedValue{p.Name, p.Importance})
	}
	return im
}

func interactionMatrix(space hpo.Space, fa *hpo.Importances) *Interactions {
	in := &Interactions{}
	at := map[string]int{}
	for i, p := range space {
		in.Names = append(in.Names, p.Name)
		at[p.Name] = i
	}
	in.Matrix = make([][]float64, len(space))
	for i := range in.Matrix {
		in.Matrix[i] = make([]float64, len(space))
	}
	for _, p := range fa.Params {
		in.Matrix[at[p.Name]][at[p.Name]] = p.Fraction
	}
	for _, p := range fa.Pairs {
		a, b := at[p.A], at[p.B]
		in.Matrix[a][b], in.Matrix[b][a] = p.Fraction, p.Fraction
	}
	return in
}

func intersectionSpace(trials []hpo.FrozenTrial) hpo.Space {
	var common map[string]hpo.Distribution
	for _, t := range trials {
		if t.State != hpo.Complete {
			continue
		}
		if common == nil {
			common = map[string]hpo.Distribution{}
			for k, v := range t.Distributions {
				common[k] = v
			}
			continue
		}
		for k, v := range common {
			if dd, ok := t.Distributions[k]; !ok || dd.JSON() != v.JSON() {
				delete(common, k)
			}
		}
	}
	var space hpo.Space
	for k, v := range common {
		space = append(space, hpo.Param{Name: k, Dist: v})
	}
	sort.Slice(space, func(i, j int) bool { return space[i].Name < space[j].Name })
	return space
}
