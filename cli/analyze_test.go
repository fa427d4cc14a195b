package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAnalyzeCommand(t *testing.T) {
	dir := t.TempDir()
	writeRetrievalFixture(t, dir)
	p := func(name string) string { return filepath.Join(dir, name) }
	write := func(name, body string) {
		if err := os.WriteFile(p(name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// q1 (relevant d1, d4): A finds d1 third, B first. q2 (relevant d2):
	// A first, B not at all.
	write("a.jsonl", `{"query_id":"q1","results":[{"doc_id":"d2","score":3},{"doc_id":"d3","score":2},{"doc_id":"d1","score":1}]}
{"query_id":"q2","results":[{"doc_id":"d2","score":1}]}
`)
	write("b.jsonl", `{"query_id":"q1","results":[{"doc_id":"d1","score":2},{"doc_id":"d4","score":1}]}
{"query_id":"q2","results":[{"doc_id":"d1","score":2},{"doc_id":"d3","score":1}]}
`)
	out, err := runCLI(t, "analyze", "--run-a", p("a.jsonl"), "--run-b", p("b.jsonl"), "--queries", p("queries.jsonl"),
		"--qrels", p("qrels.tsv"), "--corpus", p("corpus.jsonl"), "--trials", "500", "--out", p("fa"), "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Queries  int `json:"queries"`
		Improved int `json:"improved"`
		Worsened int `json:"worsened"`
		Better   []struct {
			ID             string `json:"id"`
			Text           string `json:"text"`
			FirstRelevantA int    `json:"first_relevant_a"`
			FirstRelevantB int    `json:"first_relevant_b"`
		} `json:"better"`
		Failures [2]struct {
			Failed int            `json:"failed"`
			Causes map[string]int `json:"causes"`
		} `json:"failures"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if rep.Queries != 2 || rep.Improved != 1 || rep.Worsened != 1 || len(rep.Better) != 1 {
		t.Fatalf("queries %d, improved %d, worsened %d\n%s", rep.Queries, rep.Improved, rep.Worsened, out)
	}
	if b := rep.Better[0]; b.ID != "q1" || b.Text != "version control" || b.FirstRelevantA != 3 || b.FirstRelevantB != 1 {
		t.Fatalf("better: %+v", b)
	}
	if rep.Failures[0].Failed != 0 || rep.Failures[1].Failed != 1 || rep.Failures[1].Causes["not_in_top_100"] != 1 {
		t.Fatalf("failures: %+v", rep.Failures)
	}
	for _, name := range []string{"analysis.html", "analysis.json"} {
		if _, err := os.Stat(filepath.Join(p("fa"), name)); err != nil {
			t.Error(err)
		}
	}
	// The table, with flags after nothing positional but in another order.
	text, err := runCLI(t, "analyze", "--corpus", p("corpus.jsonl"), "--qrels", p("qrels.tsv"), "--queries", p("queries.jsonl"),
		"--run-b", p("b.jsonl"), "--run-a", p("a.jsonl"), "--trials", "500", "--name-b", "lora")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"2 queries, lora against base", "ndcg@10", "not_in_top_100", "better with lora", "q1"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	// A malformed run names its file and line.
	write("bad.jsonl", `{"query_id":"q1","results":[]}
{"query_id":"q2","results":[{"doc_id":"d1"}]}
`)
	_, err = runCLI(t, "analyze", "--run-a", p("a.jsonl"), "--run-b", p("bad.jsonl"), "--queries", p("queries.jsonl"),
		"--qrels", p("qrels.tsv"), "--corpus", p("corpus.jsonl"))
	if err == nil || !strings.Contains(err.Error(), "bad.jsonl:2") {
		t.Fatalf("bad run: %v", err)
	}
}
