package report

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/ragtune/ragtune/tune/hpo"
	"github.com/ragtune/ragtune/tune/hpo/export"
	"github.com/ragtune/ragtune/tune/hpo/storage"
)

var ctx = context.Background()

// studySpec describes a synthetic study written to real SQLite storage.
type studySpec struct {
	n        int
	multi    bool   // objectives ndcg@5 (max) and train_flops (min)
	probe    string // put into parameter choices, attributes, names and texts
	baseline bool   // study user attributes base_ndcg@5 and bm25_ndcg@5
}

func mustDist[D hpo.Distribution](t testing.TB, d D, err error) hpo.Distribution {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// writeStudy makes a study like a ragtune sweep's: lr (log float), batch
// (categorical), epochs and rank (ints), a scheduler whose choices may carry
// a probe; every 7th trial pruned after two epochs, every 11th failed, the
// last one running. ndcg@5 depends on lr and on rank×epochs.
func writeStudy(t testing.TB, dir, name string, spec studySpec) (url string, trials []hpo.FrozenTrial) {
	t.Helper()
	url = "sqlite:///" + filepath.Join(dir, "study.db")
	return url, writeStudyAt(t, url, name, spec)
}

// writeStudyAt is writeStudy into any storage URL.
func writeStudyAt(t testing.TB, url, name string, spec studySpec) (trials []hpo.FrozenTrial) {
	t.Helper()
	st, err := storage.Open(url, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	dirs := []hpo.Direction{hpo.Maximize}
	metrics := []any{"ndcg@5"}
	if spec.multi {
		dirs = append(dirs, hpo.Minimize)
		metrics = append(metrics, "train_flops")
	}
	study, err := st.CreateStudy(ctx, name, dirs)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetStudySystemAttr(ctx, study.ID, export.MetricNamesAttr, metrics); err != nil {
		t.Fatal(err)
	}
	if spec.baseline {
		if err := st.SetStudyUserAttr(ctx, study.ID, "base_ndcg@5", 0.3); err != nil {
			t.Fatal(err)
		}
		if err := st.SetStudyUserAttr(ctx, study.ID, "bm25_ndcg@5", 0.9); err != nil {
			t.Fatal(err)
		}
	}
	fl, err := hpo.NewFloatDistribution(1e-5, 1e-2, true, 0)
	lr := mustDist(t, fl, err)
	ct, err := hpo.NewCategoricalDistribution([]any{int64(8), int64(16), int64(32)})
	batch := mustDist(t, ct, err)
	it, err := hpo.NewIntDistribution(1, 4, false, 1)
	epochs := mustDist(t, it, err)
	rt, err := hpo.NewIntDistribution(2, 32, true, 1)
	rank := mustDist(t, rt, err)
	sc, err := hpo.NewCategoricalDistribution([]any{"cosine", "linear", "constant" + spec.probe})
	sched := mustDist(t, sc, err)
	dists := map[string]hpo.Distribution{"lr": lr, "batch": batch, "epochs": epochs, "rank": rank, "scheduler": sched}
	rng := rand.New(rand.NewPCG(1, 2))
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := range spec.n {
		internal := map[string]float64{
			"lr":        math.Exp(math.Log(1e-5) + rng.Float64()*(math.Log(1e-2)-math.Log(1e-5))),
			"batch":     float64(rng.IntN(3)),
			"epochs":    float64(1 + rng.IntN(4)),
			"rank":      float64(2 + rng.IntN(31)),
			"scheduler": float64(rng.IntN(3)),
		}
		ft := hpo.FrozenTrial{Number: i, State: hpo.Complete, InternalParams: internal, Distributions: dists,
			Params: map[string]any{}, Intermediate: map[int]float64{}, UserAttrs: map[string]any{}, SystemAttrs: map[string]any{},
			Start: t0.Add(time.Duration(i) * time.Minute), End: t0.Add(time.Duration(i)*time.Minute + time.Duration(10+i)*time.Second)}
		for k, v := range internal {
			ft.Params[k] = dists[k].ToExternal(v)
		}
		lrq := math.Log10(internal["lr"]) + 3.5 // best near 3e-4
		ndcg := 0.6 - 0.08*lrq*lrq + 0.004*internal["rank"]*internal["epochs"]/4 + 0.01*rng.Float64()
		flops := 1e12 * internal["epochs"] * (1 + internal["rank"]/8) * float64(int(8)<<int(internal["batch"]))
		ep := int(internal["epochs"])
		for e := range ep {
			ft.Intermediate[e] = ndcg * float64(e+1) / float64(ep)
		}
		ft.UserAttrs["peak_rss_bytes"] = float64(200<<20 + i<<16)
		ft.UserAttrs["energy_kwh"] = flops / 1e16
		ft.UserAttrs["test_ndcg@5"] = ndcg - 0.02 + 0.01*rng.Float64()
		ft.UserAttrs["note"] = "trial" + spec.probe
		switch {
		case i == spec.n-1 && spec.n > 3:
			ft.State, ft.End, ft.Intermediate = hpo.Running, time.Time{}, map[int]float64{0: ndcg / 2}
		case i%11 == 5:
			ft.State = hpo.Fail
			ft.Intermediate = nil
			ft.UserAttrs = map[string]any{"fail_reason": "diverged (loss NaN at step 3)" + spec.probe}
		case i%7 == 3:
			ft.State = hpo.Pruned
			ft.Intermediate = map[int]float64{0: ndcg / 3, 1: ndcg / 2}
		default:
			ft.Values = []float64{ndcg}
			if spec.multi {
				ft.Values = append(ft.Values, flops)
			} else {
				ft.UserAttrs["train_flops"] = flops
			}
		}
		if spec.probe != "" {
			ft.UserAttrs[spec.probe] = spec.probe
		}
		trials = append(trials, ft)
	}
	if err := st.AddTrials(ctx, study.ID, trials); err != nil {
		t.Fatal(err)
	}
	return trials
}

func loadStudy(t testing.TB, url, name string) Study {
	t.Helper()
	st, err := storage.Open(url, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s, err := Load(ctx, st, name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newReport(t testing.TB, s Study) *Report {
	t.Helper()
	r, err := New(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func trialNumbers(ts []hpo.FrozenTrial) string {
	var out []int
	for _, t := range ts {
		out = append(out, t.Number)
	}
	return fmt.Sprint(out)
}
