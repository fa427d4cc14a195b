package report

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// optunaStudies has Optuna itself (Debian's python3-optuna) write two
// studies: one objective with pruned and failed trials, and two objectives.
func optunaStudies(t *testing.T) string {
	t.Helper()
	const py = "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import optuna").Run(); err != nil {
		msg := "Optuna not importable by " + py + " (scripts/test-deps installs python3-optuna)"
		if os.Getenv("RAGTUNE_REQUIRE_SHARED") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	url := "sqlite:///" + filepath.Join(t.TempDir(), "optuna.db")
	script := `
import sys, optuna
optuna.logging.set_verbosity(optuna.logging.ERROR)
s = optuna.create_study(study_name="one", storage=sys.argv[1], direction="maximize",
                        sampler=optuna.samplers.RandomSampler(seed=3))
s.set_user_attr("bm25_ndcg@10", 0.92)
def f(tr):
    x = tr.suggest_float("x", -2, 2)
    lr = tr.suggest_float("lr", 1e-5, 1e-1, log=True)
    o = tr.suggest_categorical("o", ["a", "b", None])
    tr.set_user_attr("train_flops", 1e12 * (3 + x))
    for step in range(3):
        tr.report(-x * x + step, step)
        if tr.number == 2 and step == 1:
            raise optuna.TrialPruned()
    if tr.number == 3:
        raise RuntimeError("boom")
    return -x * x + 2
s.optimize(f, n_trials=12, catch=(RuntimeError,))
m = optuna.create_study(study_name="two", storage=sys.argv[1], directions=["maximize", "minimize"],
                        sampler=optuna.samplers.RandomSampler(seed=4))
m.optimize(lambda tr: (tr.suggest_float("a", 0, 1), tr.suggest_float("b", 0, 1) + tr.params["a"] ** 2), n_trials=15)
`
	out, err := exec.Command(py, "-c", script, url).CombinedOutput()
	if err != nil {
		t.Fatalf("optuna: %v\n%s", err, out)
	}
	return url
}

func TestReportOfStudiesOptunaWrote(t *testing.T) {
	url := optunaStudies(t)

	one := loadStudy(t, url, "one")
	r := newReport(t, one)
	d := r.Data
	if d.Counts["COMPLETE"] != 10 || d.Counts["PRUNED"] != 1 || d.Counts["FAIL"] != 1 {
		t.Fatalf("counts %v", d.Counts)
	}
	if strings.Join(d.Metrics, ",") != "value" || d.ParetoX != "attr:train_flops" {
		t.Fatalf("metrics %v, Pareto x %s", d.Metrics, d.ParetoX)
	}
	// Optuna 3.1 logs a failure's reason without storing it (2.x kept it
	// in the fail_reason system attribute, which the report reads).
	if f := d.Trials[3]; f.State != "FAIL" || len(f.Values) != 0 {
		t.Fatalf("failed trial %+v", f)
	}
	if p := d.Trials[2]; p.State != "PRUNED" || len(p.Intermediate) != 2 {
		t.Fatalf("pruned trial %+v", p)
	}
	var kinds []string
	for _, p := range d.Params {
		kinds = append(kinds, p.Name+":"+p.Kind)
	}
	if strings.Join(kinds, ",") != "lr:float,o:categorical,x:float" || d.Params[1].Choices[2] != nil {
		t.Fatalf("params %v %+v", kinds, d.Params)
	}
	if len(d.Baselines) != 1 || d.Baselines[0].System != "BM25" || d.Baselines[0].Value != 0.92 {
		t.Fatalf("baselines %+v", d.Baselines)
	}
	if d.Importance == nil || d.Importance.FanovaError != "" || d.Importance.Fanova[0].Name != "x" {
		t.Fatalf("importance %+v", d.Importance)
	}

	two := loadStudy(t, url, "two")
	d2 := newReport(t, two).Data
	if strings.Join(d2.Metrics, ",") != "values_0,values_1" || d2.ParetoX != "obj:1" || len(d2.Best) == 0 {
		t.Fatalf("two objectives: metrics %v, Pareto x %s, front %v", d2.Metrics, d2.ParetoX, d2.Best)
	}
	var buf bytes.Buffer
	if err := r.WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "BM25 (recorded by the study): ndcg@10 = 0.92.") {
		t.Error("the header lacks the BM25 score the study recorded")
	}
}
