package cli

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/ragtune/ragtune/retrieval/hybrid"
	"github.com/ragtune/ragtune/retrieval/index"
)

// evalJSON is the part of eval --json these tests read.
type evalJSON struct {
	Metrics        map[string]float64 `json:"metrics"`
	Queries        int                `json:"queries"`
	Fusion         *hybrid.Choice     `json:"fusion"`
	FusionRecorded bool               `json:"fusion_recorded"`
}

func evalJSONOf(t *testing.T, args ...string) evalJSON {
	t.Helper()
	out, err := runCLI(t, append(args, "--json")...)
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	var e evalJSON
	if err := json.Unmarshal([]byte(out), &e); err != nil {
		t.Fatalf("eval --json: %v\n%s", err, out)
	}
	return e
}

// TestHybridFusionOnDemoData builds a hybrid index of the demo data with a
// tiny untrained model and BM25: index build chooses the fusion on the
// validation split, and the record must hold up when eval recomputes it.
func TestHybridFusionOnDemoData(t *testing.T) {
	_, here, _, _ := runtime.Caller(0)
	data := filepath.Join(filepath.Dir(here), "..", "scripts", "demo", "data", "target")
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }
	mustRun := func(args ...string) string {
		t.Helper()
		out, err := runCLI(t, args...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		return out
	}
	mustRun("data", "import", "--in", data, "--out", p("ds"))
	mustRun("model", "init", "--arch", "bert", "--corpus", filepath.Join(data, "corpus.jsonl"), "--out", p("m.gguf"),
		"--layers", "1", "--dim", "32", "--heads", "2", "--ff", "64", "--ctx", "64", "--vocab", "1000", "--seed", "3")
	text := mustRun("index", "build", "--corpus", p("ds"), "--model", p("m.gguf"), "--bm25", "--out", p("hyb"), "--threads", "1", "--batch", "64")
	if !strings.Contains(text, "fusion: ") || !strings.Contains(text, "validation ndcg@10") && !strings.Contains(text, "none beat") {
		t.Fatalf("index build says nothing about the fusion:\n%s", text)
	}
	m, err := index.ReadManifest(p("hyb"))
	if err != nil {
		t.Fatal(err)
	}
	f := m.Fusion
	if f == nil || f.Chosen != hybrid.ChosenOnSplit || f.Split != "validation" || f.Metric != "ndcg@10" || f.Queries != 100 || len(f.Candidates) != 1+3*19 {
		t.Fatalf("recorded fusion %+v", f)
	}
	if f.Score < max(f.BM25, f.Dense) || f.BM25 <= 0 || f.Dense <= 0 {
		t.Fatalf("chosen %s scores %v on validation, below BM25 %v or dense %v", f.Spec, f.Score, f.BM25, f.Dense)
	}
	if best := f.BestCandidate(); f.Method.IsFusion() != (best.Score > max(f.BM25, f.Dense)) {
		t.Fatalf("chose %s while the best fusion %s scores %v against %v/%v", f.Spec, best.Spec, best.Score, f.BM25, f.Dense)
	}

	// eval on validation uses the record and scores what it says; each
	// retriever alone scores what the record says too.
	args := []string{"eval", "--index", p("hyb"), "--data", p("ds"), "--split", "validation", "--threads", "1", "--batch", "64"}
	got := evalJSONOf(t, args...)
	if got.Fusion == nil || got.Fusion.Spec != f.Spec || got.FusionRecorded || math.Abs(got.Metrics["ndcg@10"]-f.Score) > 1e-12 {
		t.Fatalf("eval with the recorded fusion: ndcg@10 %v, fusion %+v; recorded %s at %v", got.Metrics["ndcg@10"], got.Fusion, f.Spec, f.Score)
	}
	for method, want := range map[string]float64{"bm25": f.BM25, "dense": f.Dense} {
		one := evalJSONOf(t, append(args, "--fusion", method)...)
		if math.Abs(one.Metrics["ndcg@10"]-want) > 1e-12 || one.Fusion.Chosen != hybrid.ChosenGiven {
			t.Fatalf("--fusion %s: ndcg@10 %v, recorded %v (%+v)", method, one.Metrics["ndcg@10"], want, one.Fusion)
		}
	}
	// A given weighted fusion is scored as given; every candidate's recorded score is real.
	c := f.Candidates[len(f.Candidates)-5] // zscore w=0.75
	given := evalJSONOf(t, append(args, "--fusion", string(c.Method), "--fusion-weight", "0.75")...)
	if c.Spec != (hybrid.Spec{Method: hybrid.MethodZScore, Weight: 0.75}) || math.Abs(given.Metrics["ndcg@10"]-c.Score) > 1e-12 {
		t.Fatalf("%s: eval %v, candidate %+v", given.Fusion.Spec, given.Metrics["ndcg@10"], c)
	}
	// The held-out split uses the record, chosen on validation.
	test := evalJSONOf(t, "eval", "--index", p("hyb"), "--data", p("ds"), "--split", "test", "--threads", "1", "--batch", "64")
	if test.Fusion == nil || test.Fusion.Split != "validation" || test.Fusion.Spec != f.Spec {
		t.Fatalf("eval of test: fusion %+v", test.Fusion)
	}
	table := mustRun(args...)
	if !strings.HasPrefix(table, f.Summary()+"\n") {
		t.Fatalf("eval table does not open with %q:\n%s", f.Summary(), table)
	}
}

// TestEvalChoosesAndRecordsFusion: a hybrid folder built from vectors has no
// fusion yet; eval chooses it on --data's validation split and records it.
func TestEvalChoosesAndRecordsFusion(t *testing.T) {
	dir := t.TempDir()
	writeRetrievalFixture(t, dir)
	p := func(name string) string { return filepath.Join(dir, name) }
	os.MkdirAll(p("qrels"), 0o755)
	os.WriteFile(p("qrels/validation.tsv"), []byte("query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td4\t1\nq2\td2\t2\n"), 0o644)
	out, err := runCLI(t, "index", "build", "--corpus", dir, "--vectors", p("emb.jsonl"), "--bm25", "--out", p("hyb"))
	if err != nil || !strings.Contains(out, "fusion: not chosen yet") {
		t.Fatalf("index build: %v\n%s", err, out)
	}
	if m, _ := index.ReadManifest(p("hyb")); m.Fusion != nil {
		t.Fatalf("fusion recorded without validation queries: %+v", m.Fusion)
	}
	// Without a validation split: plain RRF, nothing recorded.
	e := evalJSONOf(t, "eval", "--index", p("hyb"), "--queries", p("queries.jsonl"), "--qrels", p("qrels.tsv"), "--query-vectors", p("qvec.jsonl"))
	if e.Fusion.Chosen != hybrid.ChosenDefault || e.Fusion.Method != hybrid.MethodRRF || e.FusionRecorded {
		t.Fatalf("no validation: %+v", e.Fusion)
	}
	e = evalJSONOf(t, "eval", "--index", p("hyb"), "--data", dir, "--split", "validation", "--query-vectors", p("qvec.jsonl"))
	if !e.FusionRecorded || e.Fusion.Chosen != hybrid.ChosenOnSplit || e.Fusion.Queries != 2 || e.Fusion.Score < max(e.Fusion.Dense, e.Fusion.BM25) ||
		e.Metrics["ndcg@10"] != e.Fusion.Score {
		t.Fatalf("eval chose %+v, scored %v", e.Fusion, e.Metrics["ndcg@10"])
	}
	m, err := index.ReadManifest(p("hyb"))
	if err != nil || m.Fusion == nil || m.Fusion.Spec != e.Fusion.Spec {
		t.Fatalf("manifest after eval: %v %+v", err, m)
	}
	// Given at build time without validation: recorded as given.
	if _, err := runCLI(t, "index", "build", "--corpus", p("corpus.jsonl"), "--vectors", p("emb.jsonl"), "--bm25", "--out", p("hyb2"),
		"--fusion", "wrrf", "--fusion-weight", "0.3"); err != nil {
		t.Fatal(err)
	}
	if m, _ := index.ReadManifest(p("hyb2")); m.Fusion == nil || m.Fusion.Spec != (hybrid.Spec{Method: hybrid.MethodWRRF, Weight: 0.3}) || m.Fusion.Chosen != hybrid.ChosenGiven {
		t.Fatalf("given fusion: %+v", m.Fusion)
	}
}

func TestFusionFlagErrors(t *testing.T) {
	dir := t.TempDir()
	writeRetrievalFixture(t, dir)
	p := func(name string) string { return filepath.Join(dir, name) }
	if _, err := runCLI(t, "index", "build", "--corpus", p("corpus.jsonl"), "--out", p("bm25"), "--bm25"); err != nil {
		t.Fatal(err)
	}
	build := []string{"index", "build", "--corpus", p("corpus.jsonl"), "--out", p("x"), "--vectors", p("emb.jsonl"), "--bm25"}
	evalArgs := []string{"eval", "--index", p("bm25"), "--queries", p("queries.jsonl"), "--qrels", p("qrels.tsv")}
	for _, c := range []struct {
		args []string
		want string
	}{
		{append(build, "--fusion", "cosine"), `--fusion: unknown fusion "cosine"`},
		{append(build, "--fusion-weight", "0.5"), "--fusion-weight: give it with --fusion wrrf, minmax or zscore"},
		{append(build, "--fusion", "minmax", "--fusion-weight", "1.5"), "fusion weight 1.5"},
		{append(build, "--fusion", "minmax"), "--fusion minmax without --fusion-weight"},
		{[]string{"index", "build", "--corpus", p("corpus.jsonl"), "--out", p("x"), "--bm25", "--fusion", "rrf"}, "--fusion is for a hybrid index"},
		{append(evalArgs, "--fusion", "rrf"), "not hybrid"},
	} {
		_, err := runCLI(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want %q", c.args, err, c.want)
		}
	}
}
