package export

import (
	"bytes"
	"encoding/csv"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ragtune/ragtune/tune/hpo"
)

func twoObjectiveStudy() Study {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.Local)
	dists := map[string]hpo.Distribution{"lr": hpo.FloatDistribution{Low: 1e-6, High: 1e-4, Log: true}, "opt": hpo.CategoricalDistribution{Choices: []any{"a", "b"}}}
	mk := func(n int, st hpo.TrialState, vals ...float64) hpo.FrozenTrial {
		return hpo.FrozenTrial{Number: n, State: st, Values: vals, Params: map[string]any{"lr": 1e-5 * float64(n+1), "opt": "a"},
			Distributions: dists, UserAttrs: map[string]any{}, Start: t0, End: t0.Add(time.Duration(n)*time.Hour + 1500*time.Millisecond)}
	}
	failed := mk(3, hpo.Fail)
	failed.UserAttrs["fail_reason"] = "diverged"
	spent := mk(1, hpo.Complete, 0.6, 20)
	spent.UserAttrs = map[string]any{"peak_rss_bytes": 1.5e9, "energy_kwh": 0.002, "emissions_kg": 0.00095}
	return Study{
		Name: "mo", Directions: []hpo.Direction{hpo.Maximize, hpo.Minimize}, Metrics: []string{"ndcg@5", "train_flops"},
		Trials: []hpo.FrozenTrial{mk(0, hpo.Complete, 0.5, 10), spent, mk(2, hpo.Complete, 0.4, 30), failed, mk(4, hpo.Complete, math.Inf(1), 5)},
	}
}

func rows(t *testing.T, write func(*bytes.Buffer) error) [][]string {
	t.Helper()
	var b bytes.Buffer
	if err := write(&b); err != nil {
		t.Fatal(err)
	}
	r, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestParetoAndColumns(t *testing.T) {
	s := twoObjectiveStudy()
	best := rows(t, func(b *bytes.Buffer) error { return BestModels(b, s) })
	// Trial 4 (inf, 5) is best in both objectives, so it alone is the front.
	if len(best) != 2 || best[1][0] != "4" || best[1][1] != "inf" {
		t.Errorf("best_model_log %v", best)
	}
	res := rows(t, func(b *bytes.Buffer) error { return TrialResults(b, s) })
	if strings.Join(res[0], ",") != "trial,state,ndcg@5,train_flops,lr,opt,datetime_start,datetime_complete,duration_s,peak_rss_bytes,energy_kwh,emissions_kg,fail_reason" {
		t.Errorf("header %v", res[0])
	}
	if res[4][1] != "FAIL" || res[4][2] != "" || res[4][9] != "" || res[4][12] != "diverged" {
		t.Errorf("failed row %v", res[4])
	}
	if strings.Join(res[2][9:12], ",") != "1.5e+09,0.002,0.00095" {
		t.Errorf("costs of trial 1: %v", res[2])
	}
	opt := rows(t, func(b *bytes.Buffer) error { return OptunaResults(b, s) })
	if strings.Join(opt[0][:5], ",") != "number,values_0,values_1,datetime_start,datetime_complete" ||
		opt[2][5] != "0 days 01:00:01.500000" || opt[2][len(opt[2])-1] != "COMPLETE" {
		t.Errorf("optuna_results %v", opt[:3])
	}
	rng := rows(t, func(b *bytes.Buffer) error { return ConfigRanges(b, s) })
	if strings.Join(rng[1], ",") != "lr,float,1e-06,0.0001,true,," || strings.Join(rng[2], ",") != "opt,categorical,,,,,a|b" {
		t.Errorf("bo_config_ranges %v", rng)
	}
}

func TestWriteAllFiles(t *testing.T) {
	dir := t.TempDir()
	s := twoObjectiveStudy()
	s.Metrics = nil // names fall back to values_<i>
	if err := Write(dir, s); err != nil {
		t.Fatal(err)
	}
	for _, f := range Files {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil || len(b) == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	b, _ := os.ReadFile(filepath.Join(dir, "trial_results_log.csv"))
	if !strings.HasPrefix(string(b), "trial,state,values_0,values_1,") {
		t.Errorf("header %q", strings.SplitN(string(b), "\n", 2)[0])
	}
}
