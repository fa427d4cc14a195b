package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeRetrievalFixture writes a 4-document BEIR-style corpus, its vectors,
// queries with their vectors and qrels into dir.
func writeRetrievalFixture(t *testing.T, dir string) {
	t.Helper()
	files := map[string]string{
		"corpus.jsonl": `{"_id":"d1","title":"git","text":"distributed version control system"}
{"_id":"d2","title":"","text":"image editor for raster graphics"}
{"_id":"d3","title":"vim","text":"text editor"}
{"_id":"d4","title":"","text":"version control for large binary files"}
`,
		// d1 and d4 point one way, d2 and d3 another.
		"emb.jsonl": `{"_id":"d1","i":0,"n_tokens":4,"embedding":[1,0,0]}
{"_id":"d2","i":1,"n_tokens":5,"embedding":[0,1,0]}
{"_id":"d3","i":2,"n_tokens":3,"embedding":[0,0.9,0.1]}
{"_id":"d4","i":3,"n_tokens":6,"embedding":[0.9,0,0.1]}
`,
		"queries.jsonl": `{"_id":"q1","text":"version control"}
{"_id":"q2","text":"graphics editor"}
{"_id":"q3","text":"nothing relevant"}
`,
		"qvec.jsonl": `{"i":0,"n_tokens":2,"embedding":[1,0,0.05]}
{"i":1,"n_tokens":2,"embedding":[0,1,0]}
{"i":2,"n_tokens":2,"embedding":[0,0,1]}
`,
		"qrels.tsv": "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td4\t1\nq2\td2\t2\nq3\td3\t0\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestIndexBuildAndEval(t *testing.T) {
	dir := t.TempDir()
	writeRetrievalFixture(t, dir)
	p := func(name string) string { return filepath.Join(dir, name) }

	// Dense from precomputed vectors; eval with precomputed query vectors.
	if _, err := runCLI(t, "index", "build", "--corpus", p("corpus.jsonl"), "--out", p("dense"), "--vectors", p("emb.jsonl")); err != nil {
		t.Fatal(err)
	}
	out, err := runCLI(t, "eval", "--index", p("dense"), "--queries", p("queries.jsonl"), "--qrels", p("qrels.tsv"),
		"--query-vectors", p("qvec.jsonl"), "--k", "1,2", "--run-out", p("run.jsonl"), "--top10-out", p("top10.jsonl"), "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Metrics    map[string]float64 `json:"metrics"`
		Queries    int                `json:"queries"`
		NoRelevant int                `json:"no_relevant"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("eval --json: %v\n%s", err, out)
	}
	// q1 ranks d1 then d4 (both relevant), q2 ranks d2 first: everything perfect.
	if rep.Queries != 2 || rep.NoRelevant != 1 || rep.Metrics["ndcg@2"] != 1 || rep.Metrics["recall@1"] != 0.75 {
		t.Fatalf("eval report %+v", rep)
	}
	run, _ := os.ReadFile(p("run.jsonl"))
	if !strings.HasPrefix(string(run), `{"query_id":"q1","results":[{"doc_id":"d1","score":`) {
		t.Fatalf("run file:\n%s", run)
	}
	top, _ := os.ReadFile(p("top10.jsonl"))
	if !strings.Contains(string(top), `"retrieved_texts":["git distributed version control system"`) {
		t.Fatalf("top10 file:\n%s", top)
	}

	// Hybrid (BM25 + vectors) from a BEIR folder, flags after the subcommand's
	// positional-free form and in another order; info with a trailing flag.
	if _, err := runCLI(t, "index", "build", "--bm25", "--vectors", p("emb.jsonl"), "--out", p("hybrid"), "--corpus", dir, "--json"); err != nil {
		t.Fatal(err)
	}
	info, err := runCLI(t, "index", "info", p("hybrid"), "--json")
	if err != nil || !strings.Contains(info, `"kind": "hybrid"`) || !strings.Contains(info, `"k1": 0.9`) {
		t.Fatalf("index info: %v\n%s", err, info)
	}
	table, err := runCLI(t, "eval", "--index", p("hybrid"), "--queries", p("queries.jsonl"), "--qrels", p("qrels.tsv"), "--query-vectors", p("qvec.jsonl"))
	if err != nil || !strings.Contains(table, "ndcg") || !strings.Contains(table, "2 queries scored (1 without relevant documents left out)") {
		t.Fatalf("eval table: %v\n%s", err, table)
	}

	// BM25 alone, queried by text.
	if _, err := runCLI(t, "index", "build", "--corpus", p("corpus.jsonl"), "--out", p("bm25"), "--bm25", "--stopwords"); err != nil {
		t.Fatal(err)
	}
	q, err := runCLI(t, "index", "query", "--index", p("bm25"), "graphics", "--k", "1", "--json")
	if err != nil || !strings.Contains(q, `"doc_id": "d2"`) {
		t.Fatalf("index query: %v\n%s", err, q)
	}
	// Scoring a saved run needs no index.
	if _, err := runCLI(t, "eval", "--run", p("run.jsonl"), "--queries", p("queries.jsonl"), "--qrels", p("qrels.tsv"), "--compare", p("run.jsonl"), "--json"); err != nil {
		t.Fatal(err)
	}
}

func TestIndexErrors(t *testing.T) {
	dir := t.TempDir()
	writeRetrievalFixture(t, dir)
	p := func(name string) string { return filepath.Join(dir, name) }
	os.WriteFile(p("bad.jsonl"), []byte(`{"_id":"d1","i":0,"embedding":[1,0,0]}`+"\n"+`{"_id":"zz","i":1,"embedding":[1,0,0]}`), 0o644)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"index", "build", "--corpus", p("corpus.jsonl"), "--out", p("x")}, "say what to index"},
		{[]string{"index", "build", "--corpus", p("corpus.jsonl"), "--out", p("x"), "--vectors", p("bad.jsonl")}, `no such id in the corpus`},
		{[]string{"index", "build", "--corpus", p("qrels.tsv"), "--out", p("x"), "--bm25"}, "qrels.tsv:1"},
		{[]string{"index", "build", "--corpus", p("corpus.jsonl"), "--out", p("x"), "--bm25", "--metric", "l2"}, "unknown metric"},
		{[]string{"eval", "--index", p("nowhere"), "--queries", p("queries.jsonl"), "--qrels", p("qrels.tsv")}, "not an index folder"},
		{[]string{"eval", "--index", p("x"), "--queries", p("queries.jsonl")}, "give --queries and --qrels"},
		{[]string{"eval", "--index", p("x"), "--data", dir, "--split", "test"}, "no qrels/test.tsv"},
	} {
		_, err := runCLI(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want %q", c.args, err, c.want)
		}
	}
}

func TestFlopsCommand(t *testing.T) {
	out, err := runCLI(t, "flops", "--layers", "6", "--dim", "384", "--ff", "1536", "--heads", "12", "--tokens", "1e6", "--seq", "128", "--rank", "8", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var est struct {
		Forward, FullFT, LoRA, LoRAFactor float64
	}
	if err := json.Unmarshal([]byte(strings.NewReplacer(`"full_ft"`, `"FullFT"`, `"lora_factor"`, `"LoRAFactor"`, `"lora"`, `"LoRA"`).Replace(out)), &est); err != nil {
		t.Fatal(err)
	}
	fwd := 6.0 * (1179648 + 196608 + 2359296) * 1e6
	if est.Forward != fwd || est.FullFT != 3*fwd || fmt.Sprintf("%.6f", est.LoRAFactor) != fmt.Sprintf("%.6f", 2.0/3+16.0/384) {
		t.Fatalf("flops: %+v\n%s", est, out)
	}
	text, err := runCLI(t, "flops", "--tokens", "1000", "--arch", "llama", "--layers", "2", "--dim", "64", "--ff", "128", "--heads", "4", "--kv-heads", "2")
	if err != nil || !strings.Contains(text, "full fine-tuning (3 x forward)") {
		t.Fatalf("flops table: %v\n%s", err, text)
	}
	if _, err := runCLI(t, "flops", "--tokens", "1"); err == nil {
		t.Fatal("flops without a model or sizes succeeded")
	}
}
