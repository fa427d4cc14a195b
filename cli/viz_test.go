package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestVizCommand(t *testing.T) {
	dir := t.TempDir()
	writeRetrievalFixture(t, dir)
	p := func(name string) string { return filepath.Join(dir, name) }
	if err := os.MkdirAll(p("beir/qrels"), 0o755); err != nil {
		t.Fatal(err)
	}
	for from, to := range map[string]string{"corpus.jsonl": "beir/corpus.jsonl", "queries.jsonl": "beir/queries.jsonl", "qrels.tsv": "beir/qrels/validation.tsv"} {
		b, _ := os.ReadFile(p(from))
		if err := os.WriteFile(p(to), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	qvec := `{"_id":"q1","i":0,"n_tokens":2,"embedding":[1,0,0.05]}
{"_id":"q2","i":1,"n_tokens":2,"embedding":[0,1,0]}
`
	if err := os.WriteFile(p("qvec-id.jsonl"), []byte(qvec), 0o644); err != nil {
		t.Fatal(err)
	}

	// Precomputed vectors, base only, both methods.
	out, err := runCLI(t, "viz", "--data", p("beir"), "--base-doc-vectors", p("emb.jsonl"), "--base-query-vectors", p("qvec-id.jsonl"),
		"--out", p("maps"), "--wizmap", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var sum struct {
		Queries, Documents int
		Maps               []struct{ Model, Method string }
		Files              []string
	}
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	// q3 judges nothing relevant: two queries; their three relevant
	// documents and the one other.
	if sum.Queries != 2 || sum.Documents != 4 || len(sum.Maps) != 2 || len(sum.Files) != 3+4 {
		t.Fatalf("summary %+v", sum)
	}
	if _, err := os.Stat(p("maps/wizmap/base-umap-grid.json")); err != nil {
		t.Error(err)
	}
	page, err := os.ReadFile(p("maps/viz.html"))
	if err != nil || !strings.Contains(string(page), `"id":"q1"`) {
		t.Fatalf("viz.html: %v", err)
	}

	// A model and its adapter: base and tuned maps, PCA only.
	base, ad := tinyBertWithAdapter(t)
	text, err := runCLI(t, "viz", "--data", p("beir"), "--model", base, "--adapter", ad, "--method", "pca", "--out", p("maps2"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"mapped 2 queries and 4 documents", "base   pca", "tuned  pca", "viz.html"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	var maps struct {
		Maps []struct {
			Model  string
			Points []struct{ X, Y float64 }
		}
	}
	b, _ := os.ReadFile(p("maps2/maps.json"))
	if err := json.Unmarshal(b, &maps); err != nil || len(maps.Maps) != 2 || maps.Maps[1].Model != "tuned" {
		t.Fatalf("maps.json: %v %+v", err, maps)
	}
	if maps.Maps[0].Points[0] == maps.Maps[1].Points[0] {
		t.Error("the adapter changed nothing in the map")
	}

	// Refusals name what is wrong.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--data", p("beir"), "--out", p("x")}, "--model"},
		{[]string{"--data", p("beir"), "--model", base, "--method", "tsne", "--out", p("x")}, "--method"},
		{[]string{"--data", p("beir"), "--base-doc-vectors", p("emb.jsonl"), "--out", p("x")}, "--base-query-vectors"},
		{[]string{"--data", p("beir"), "--base-doc-vectors", p("emb.jsonl"), "--base-query-vectors", p("qvec.jsonl"), "--out", p("x")}, "_id"},
	} {
		_, err := runCLI(t, append([]string{"viz"}, c.args...)...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("viz %v: error %v, want one naming %s", c.args, err, c.want)
		}
	}
}
