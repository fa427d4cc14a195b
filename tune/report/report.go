// Package report turns a study (any Optuna 3.x study, ragtune's or Optuna's
// own) into one self-contained, interactive HTML page: Pareto front,
// optimisation history, learning curves, importances (fANOVA and MDI),
// fANOVA interactions, parallel coordinates, slice plots, validation against
// test, and a sortable table of every trial. ECharts is inlined; study data
// travels as escaped JSON and the page inserts it as text only.
package report

import (
	"context"
	"fmt"

	"github.com/ragtune/ragtune/tune/hpo"
	"github.com/ragtune/ragtune/tune/hpo/export"
	"github.com/ragtune/ragtune/tune/hpo/storage"
)

// Study is what a report is made from.
type Study struct {
	Name       string
	Directions []hpo.Direction
	Metrics    []string // one per direction
	Trials     []hpo.FrozenTrial
	UserAttrs  map[string]any // the study's user attributes (baselines live here)
}

// Load reads a study, its trials, metric names and user attributes.
// Studies without recorded metric names (Optuna before 3.2, or no
// set_metric_names) get Optuna's column names: value, or values_0, values_1...
func Load(ctx context.Context, st *storage.Storage, name string) (Study, error) {
	s, err := st.LoadStudy(ctx, name)
	if err != nil {
		return Study{}, err
	}
	out := Study{Name: s.Name, Directions: s.Directions}
	if out.Trials, err = st.LoadTrials(ctx, s.ID); err != nil {
		return Study{}, fmt.Errorf("study %q: %v", name, err)
	}
	sys, err := st.StudySystemAttrs(ctx, s.ID)
	if err != nil {
		return Study{}, fmt.Errorf("study %q: %v", name, err)
	}
	if out.UserAttrs, err = st.StudyUserAttrs(ctx, s.ID); err != nil {
		return Study{}, fmt.Errorf("study %q: %v", name, err)
	}
	if list, ok := sys[export.MetricNamesAttr].([]any); ok && len(list) == len(s.Directions) {
		for _, m := range list {
			out.Metrics = append(out.Metrics, fmt.Sprint(m))
		}
	}
	if len(out.Metrics) != len(out.Directions) {
		out.Metrics = nil
		for i := range out.Directions {
			out.Metrics = append(out.Metrics, fmt.Sprintf("values_%d", i))
		}
		if len(out.Metrics) == 1 {
			out.Metrics[0] = "value"
		}
	}
	return out, nil
}
