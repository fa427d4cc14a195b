package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// What viz and analyze write (maps.json, analysis.json) goes into the study
// report as sections; a damaged file is an error that names it.
func TestReportAddsMapsAndAnalysis(t *testing.T) {
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }
	writeRetrievalFixture(t, dir)
	write := func(name, body string) {
		if err := os.WriteFile(p(name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("qvec.jsonl", "{\"_id\":\"q1\",\"i\":0,\"n_tokens\":2,\"embedding\":[1,0,0.05]}\n{\"_id\":\"q2\",\"i\":1,\"n_tokens\":2,\"embedding\":[0,1,0]}\n")
	for from, to := range map[string]string{"corpus.jsonl": "beir/corpus.jsonl", "queries.jsonl": "beir/queries.jsonl", "qrels.tsv": "beir/qrels/validation.tsv"} {
		b, err := os.ReadFile(p(from))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(p(to)), 0o755); err != nil {
			t.Fatal(err)
		}
		write(to, string(b))
	}
	if _, err := runCLI(t, "viz", "--data", p("beir"), "--base-doc-vectors", p("emb.jsonl"), "--base-query-vectors", p("qvec.jsonl"), "--method", "pca", "--out", p("maps")); err != nil {
		t.Fatal(err)
	}
	write("a.jsonl", "{\"query_id\":\"q1\",\"results\":[{\"doc_id\":\"d2\",\"score\":3},{\"doc_id\":\"d1\",\"score\":1}]}\n{\"query_id\":\"q2\",\"results\":[{\"doc_id\":\"d2\",\"score\":1}]}\n")
	write("b.jsonl", "{\"query_id\":\"q1\",\"results\":[{\"doc_id\":\"d1\",\"score\":2}]}\n{\"query_id\":\"q2\",\"results\":[{\"doc_id\":\"d1\",\"score\":2}]}\n")
	if _, err := runCLI(t, "analyze", "--run-a", p("a.jsonl"), "--run-b", p("b.jsonl"), "--queries", p("queries.jsonl"),
		"--qrels", p("qrels.tsv"), "--corpus", p("corpus.jsonl"), "--trials", "100", "--out", p("fa")); err != nil {
		t.Fatal(err)
	}
	db := "sqlite:///" + p("q.db")
	if _, stderr, err := runApp(t, "tune", "run", "--config", filepath.Join("..", "scripts", "sweeps", "quadratic.yaml"), "--storage", db, "--n-trials", "4", "--quiet"); err != nil {
		t.Fatalf("tune run: %v\n%s", err, stderr)
	}
	if _, _, err := runApp(t, "report", "--storage", db, "--study", "quadratic", "--out", p("rep"),
		"--maps", p("maps/maps.json"), "--analysis", p("fa/analysis.json")); err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(p("rep/report.html"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`id="embedding-maps-1"`, `id="failure-analysis-1"`, "Failure analysis: tuned against base", "version control"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("report.html lacks %q", want)
		}
	}

	write("bad.json", `{"items":[{"id":"q1"}],"maps":[{"model":"base","method":"pca","points":[]}]}`)
	_, _, err = runApp(t, "report", "--storage", db, "--study", "quadratic", "--out", p("rep2"), "--maps", p("bad.json"))
	if err == nil || !strings.Contains(err.Error(), "bad.json: maps[0] (base pca) has 0 points for 1 items") {
		t.Errorf("damaged maps.json: %v", err)
	}
}
