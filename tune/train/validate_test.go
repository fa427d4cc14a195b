package train

import (
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ragtune/ragtune/bindings/gguf"
	"github.com/ragtune/ragtune/retrieval/dataset"
	"github.com/ragtune/ragtune/tune/encoder"
	"github.com/ragtune/ragtune/tune/energy"
)

func judgedDocs(d *dataset.Dataset, split string, queries []dataset.Query) map[string]bool {
	kept := map[string]bool{}
	for _, q := range queries {
		kept[q.ID] = true
	}
	out := map[string]bool{}
	for _, r := range d.Qrels[split] {
		if kept[r.QueryID] {
			out[r.DocID] = true
		}
	}
	return out
}

// A bounded validation draws the same sample for the same seed, keeps every
// judged document of the queries it keeps, and stays within its bounds.
func TestValidationSample(t *testing.T) {
	d := miniSlice(t, 48)
	s := Sample{Queries: 50, Docs: 400, Seed: 7}
	a, err := NewSampledValidator(d, "validation", 10, s)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewSampledValidator(d, "validation", 10, s)
	if !slices.Equal(a.docIDs, b.docIDs) || !slices.Equal(a.queries, b.queries) {
		t.Error("the same seed drew different samples")
	}
	s.Seed = 8
	c, _ := NewSampledValidator(d, "validation", 10, s)
	if slices.Equal(a.docIDs, c.docIDs) || slices.Equal(a.queries, c.queries) {
		t.Error("another seed drew the same sample")
	}
	info := a.Info()
	if len(a.queries) != 50 || len(a.docIDs) != 400 || info.Queries != 50 || info.Docs != 400 || !info.Sampled ||
		info.QueriesTotal != 120 || info.CorpusDocs != len(d.Corpus) {
		t.Fatalf("%d queries, %d docs, info %+v", len(a.queries), len(a.docIDs), info)
	}
	judged := judgedDocs(d, "validation", a.queries)
	if info.JudgedDocs != len(judged) {
		t.Errorf("info says %d judged documents, the qrels %d", info.JudgedDocs, len(judged))
	}
	kept := map[string]bool{}
	for _, id := range a.docIDs {
		kept[id] = true
	}
	for id := range judged {
		if !kept[id] {
			t.Errorf("judged document %s of a sampled query is not in the sample", id)
		}
	}
	// Dataset order is kept.
	pos := map[string]int{}
	for i, doc := range d.Corpus {
		pos[doc.ID] = i
	}
	for i := 1; i < len(a.docIDs); i++ {
		if pos[a.docIDs[i]] < pos[a.docIDs[i-1]] {
			t.Fatal("sampled documents are out of corpus order")
		}
	}

	// A bound below the judged documents keeps them all and nothing else.
	few, _ := NewSampledValidator(d, "validation", 10, Sample{Queries: 50, Docs: 5, Seed: 7})
	if len(few.docIDs) != len(judged) {
		t.Errorf("docs bound 5: %d documents, want the %d judged ones", len(few.docIDs), len(judged))
	}
}

// oldValidator is NewValidator as it was before sampling existed (every
// query with a relevant document, the whole corpus, dataset order).
func oldValidator(d *dataset.Dataset, split string) *Validator {
	v := &Validator{Ks: []int{1, 5, 10}, rel: d.Relevant(split)}
	for _, q := range d.SplitQueries(split) {
		if len(v.rel[q.ID]) > 0 {
			v.queries = append(v.queries, q)
		}
	}
	for _, doc := range d.Corpus {
		v.docIDs = append(v.docIDs, doc.ID)
		v.docs = append(v.docs, d.DocText(doc))
	}
	return v
}

// Validation without bounds, or with bounds the data set does not reach,
// scores exactly as before, with a real model.
func TestFullValidationEqualsOld(t *testing.T) {
	d := miniSlice(t, 48)
	qs, ds := miniPairs(t, 300)
	enc, err := encoder.Open(writeTiny(t, "bert", gguf.F32, append(qs, ds...)), encoder.Options{Threads: 2, MaxTokens: 32})
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	want, err := oldValidator(d, "validation").Evaluate(context.Background(), enc)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []Sample{{}, {Queries: 10_000, Docs: len(d.Corpus), Seed: 3}} {
		v, err := NewSampledValidator(d, "validation", 10, s)
		if err != nil {
			t.Fatal(err)
		}
		if v.Info().Sampled {
			t.Errorf("%+v: reported as a sample", s)
		}
		got, err := v.Evaluate(context.Background(), enc)
		if err != nil {
			t.Fatal(err)
		}
		for k, w := range want {
			if got[k] != w {
				t.Errorf("%+v: %s %v, want %v", s, k, got[k], w)
			}
		}
	}
}

// A run says what its bounded validation will cost before training, keeps
// to the bounds, and writes its energy to emissions.csv; --no-val skips
// validation.
func TestRunBoundsValidationAndMeasuresEnergy(t *testing.T) {
	d := miniSlice(t, 48)
	qs, ds := miniPairs(t, 300)
	model := writeTiny(t, "bert", gguf.F32, append(qs, ds...))
	cfg := smallConfig()
	cfg.Epochs, cfg.ValQueries, cfg.ValDocs = 1, 30, 200
	cfg.Energy = energy.Options{SysfsRoot: t.TempDir(), NoGPU: true}
	out := t.TempDir()
	var plan *ValidationPlan
	res, err := Run(context.Background(), model, d, out, cfg, Hooks{Validation: func(p ValidationPlan) { plan = &p }})
	if err != nil {
		t.Fatal(err)
	}
	if plan == nil || plan.Queries != 30 || plan.Docs != max(200, plan.JudgedDocs) || plan.Passes != 2 ||
		plan.Texts != 2*(plan.Docs+30) || plan.TextsPerSecond <= 0 || plan.EstimatedSeconds <= 0 {
		t.Fatalf("plan %+v", plan)
	}
	if res.Validation == nil || *res.Validation != *plan || res.Base == nil || len(res.History) != 2 {
		t.Errorf("result: validation %+v, base %v, %d evaluations", res.Validation, res.Base, len(res.History))
	}
	if res.Energy == nil || res.Energy.EnergyKWh <= 0 || !strings.HasPrefix(res.Energy.Method, "cpu estimate") ||
		res.Energy.EmissionsKg != res.Energy.EnergyKWh*energy.DefaultCarbonIntensity/1000 {
		t.Errorf("energy %+v", res.Energy)
	}
	rows := readCSV(t, filepath.Join(out, "emissions.csv"))
	if len(rows) != 2 || !slices.Equal(rows[0], energy.EmissionsColumns) || rows[1][slices.Index(rows[0], "experiment_id")] != filepath.Base(out) {
		t.Errorf("emissions.csv: %v", rows)
	}
	if _, err := os.Stat(filepath.Join(out, "gpu_power_log.csv")); !os.IsNotExist(err) {
		t.Errorf("gpu_power_log.csv without a GPU: %v", err)
	}

	cfg.NoVal = true
	plan = nil
	res, err = Run(context.Background(), model, d, t.TempDir(), cfg, Hooks{Validation: func(p ValidationPlan) { plan = &p }})
	if err != nil {
		t.Fatal(err)
	}
	if plan != nil || res.Validation != nil || res.Base != nil || len(res.History) != 0 {
		t.Errorf("no-val run validated: plan %v, %+v", plan, res)
	}
}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}
