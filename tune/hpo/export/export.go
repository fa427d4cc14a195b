// Package export writes a study's trials as the CSV logs the original work
// produced: trial_results_log.csv (every trial), best_model_log.csv (each
// time the best trial improved; the Pareto front for several objectives),
// bo_config_ranges.csv (the search space) and optuna_results.csv (Optuna's
// trials_dataframe columns).
package export

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ragtune/ragtune/bindings/safefile"
	"github.com/ragtune/ragtune/tune/hpo"
)

// MetricNamesAttr is the study system attribute Optuna ≥ 3.2 uses for
// objective names (set_metric_names); ragtune writes it too.
const MetricNamesAttr = "study:metric_names"

// Study is what the CSVs are made from.
type Study struct {
	Name       string
	Directions []hpo.Direction
	Metrics    []string // one per direction; empty means value / values_<i>
	Trials     []hpo.FrozenTrial
}

// Files lists the CSVs Write produces, in order.
var Files = []string{"trial_results_log.csv", "best_model_log.csv", "bo_config_ranges.csv", "optuna_results.csv"}

// Write writes all four CSVs into dir (each atomically).
func Write(dir string, s Study) error {
	writers := []func(io.Writer, Study) error{TrialResults, BestModels, ConfigRanges, OptunaResults}
	for i, name := range Files {
		path := filepath.Join(dir, name)
		if err := safefile.Write(path, func(w io.Writer) error { return writers[i](w, s) }); err != nil {
			return fmt.Errorf("%s: %v", path, err)
		}
	}
	return nil
}

func (s Study) metricNames() []string {
	if len(s.Metrics) == len(s.Directions) {
		return s.Metrics
	}
	if len(s.Directions) == 1 {
		return []string{"value"}
	}
	out := make([]string, len(s.Directions))
	for i := range out {
		out[i] = fmt.Sprintf("values_%d", i)
	}
	return out
}

// paramNames is every parameter seen in the study, sorted.
func (s Study) paramNames() []string {
	seen := map[string]bool{}
	for _, t := range s.Trials {
		for k := range t.Params {
			seen[k] = true
		}
	}
	return sortedSet(seen)
}

func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func num(v float64) string {
	switch {
	case math.IsNaN(v):
		return "nan"
	case math.IsInf(v, 1):
		return "inf"
	case math.IsInf(v, -1):
		return "-inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

func cell(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case float64:
		return num(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case string:
		return x
	case bool:
		if x {
			return "True"
		}
		return "False"
	}
	return fmt.Sprint(v)
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format("2006-01-02 15:04:05.000000")
}

func seconds(t hpo.FrozenTrial) string {
	if t.Start.IsZero() || t.End.IsZero() {
		return ""
	}
	return strconv.FormatFloat(t.End.Sub(t.Start).Seconds(), 'f', 3, 64)
}

func valueCells(t hpo.FrozenTrial, k int) []string {
	out := make([]string, k)
	for i := range out {
		if i < len(t.Values) {
			out[i] = num(t.Values[i])
		}
	}
	return out
}

// CostColumns are the user attributes trial_results_log.csv shows for
// every trial: what it spent (set by ragtune's objectives; empty for
// trials without them).
var CostColumns = []string{"peak_rss_bytes", "energy_kwh", "emissions_kg"}

// TrialResults writes one row per trial: its number, state, objective
// values, parameters, times, costs and the reason a failed trial failed.
func TrialResults(w io.Writer, s Study) error {
	cw := csv.NewWriter(w)
	metrics, params := s.metricNames(), s.paramNames()
	header := append([]string{"trial", "state"}, metrics...)
	header = append(header, params...)
	header = append(header, "datetime_start", "datetime_complete", "duration_s")
	header = append(header, CostColumns...)
	cw.Write(append(header, "fail_reason"))
	for _, t := range s.Trials {
		row := append([]string{strconv.Itoa(t.Number), t.State.String()}, valueCells(t, len(metrics))...)
		for _, p := range params {
			row = append(row, cell(t.Params[p]))
		}
		row = append(row, stamp(t.Start), stamp(t.End), seconds(t))
		for _, c := range CostColumns {
			row = append(row, cell(t.UserAttrs[c]))
		}
		cw.Write(append(row, cell(t.UserAttrs["fail_reason"])))
	}
	cw.Flush()
	return cw.Error()
}

// BestModels writes, for one objective, a row each time a COMPLETE trial
// beat every earlier one (in trial-number order); for several objectives,
// the Pareto front.
func BestModels(w io.Writer, s Study) error {
	cw := csv.NewWriter(w)
	metrics, params := s.metricNames(), s.paramNames()
	header := append([]string{"trial"}, metrics...)
	header = append(header, params...)
	header = append(header, "datetime_complete")
	cw.Write(header)
	row := func(t hpo.FrozenTrial) {
		r := append([]string{strconv.Itoa(t.Number)}, valueCells(t, len(metrics))...)
		for _, p := range params {
			r = append(r, cell(t.Params[p]))
		}
		cw.Write(append(r, stamp(t.End)))
	}
	if len(s.Directions) == 1 {
		maximize := s.Directions[0] == hpo.Maximize
		var best *hpo.FrozenTrial
		for i := range s.Trials {
			t := &s.Trials[i]
			if t.State != hpo.Complete || len(t.Values) == 0 || math.IsNaN(t.Values[0]) {
				continue
			}
			if best == nil || (maximize && t.Values[0] > best.Values[0]) || (!maximize && t.Values[0] < best.Values[0]) {
				best = t
				row(*t)
			}
		}
	} else {
		for _, t := range hpo.ParetoFront(s.Trials, s.Directions) {
			row(t)
		}
	}
	cw.Flush()
	return cw.Error()
}

// ConfigRanges writes the search space as the trials stored it (the latest
// distribution of each parameter).
func ConfigRanges(w io.Writer, s Study) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"param", "type", "low", "high", "log", "step", "choices"})
	dists := map[string]hpo.Distribution{}
	for _, t := range s.Trials {
		for k, d := range t.Distributions {
			dists[k] = d
		}
	}
	names := make([]string, 0, len(dists))
	for k := range dists {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		switch d := dists[name].(type) {
		case hpo.FloatDistribution:
			step := ""
			if d.Step != 0 {
				step = num(d.Step)
			}
			cw.Write([]string{name, "float", num(d.Low), num(d.High), strconv.FormatBool(d.Log), step, ""})
		case hpo.IntDistribution:
			cw.Write([]string{name, "int", strconv.FormatInt(d.Low, 10), strconv.FormatInt(d.High, 10), strconv.FormatBool(d.Log), strconv.FormatInt(d.Step, 10), ""})
		case hpo.CategoricalDistribution:
			choices := make([]string, len(d.Choices))
			for i, c := range d.Choices {
				choices[i] = cell(c)
			}
			cw.Write([]string{name, "categorical", "", "", "", "", strings.Join(choices, "|")})
		}
	}
	cw.Flush()
	return cw.Error()
}

// OptunaResults writes Optuna's trials_dataframe() columns: number, value
// (values_<i> for several objectives), datetime_start, datetime_complete,
// duration (pandas Timedelta text), params_<name>, user_attrs_<key>, state.
func OptunaResults(w io.Writer, s Study) error {
	cw := csv.NewWriter(w)
	params := s.paramNames()
	users := map[string]bool{}
	for _, t := range s.Trials {
		for k := range t.UserAttrs {
			users[k] = true
		}
	}
	userKeys := sortedSet(users)
	header := []string{"number"}
	if len(s.Directions) == 1 {
		header = append(header, "value")
	} else {
		for i := range s.Directions {
			header = append(header, fmt.Sprintf("values_%d", i))
		}
	}
	header = append(header, "datetime_start", "datetime_complete", "duration")
	for _, p := range params {
		header = append(header, "params_"+p)
	}
	for _, k := range userKeys {
		header = append(header, "user_attrs_"+k)
	}
	cw.Write(append(header, "state"))
	for _, t := range s.Trials {
		row := append([]string{strconv.Itoa(t.Number)}, valueCells(t, len(s.Directions))...)
		row = append(row, stamp(t.Start), stamp(t.End), timedelta(t))
		for _, p := range params {
			row = append(row, cell(t.Params[p]))
		}
		for _, k := range userKeys {
			row = append(row, cell(t.UserAttrs[k]))
		}
		cw.Write(append(row, t.State.String()))
	}
	cw.Flush()
	return cw.Error()
}

// timedelta formats a duration as pandas prints a Timedelta.
func timedelta(t hpo.FrozenTrial) string {
	if t.Start.IsZero() || t.End.IsZero() {
		return ""
	}
	d := t.End.Sub(t.Start)
	days := int(d / (24 * time.Hour))
	d -= time.Duration(days) * 24 * time.Hour
	h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
	sec := d % time.Minute
	return fmt.Sprintf("%d days %02d:%02d:%02d.%06d", days, h, m, int(sec/time.Second), int(sec%time.Second/time.Microsecond))
}
