package indexdir

import (
	"context"
	"strings"
	"testing"

	"github.com/ragtune/ragtune/retrieval/bm25"
	"github.com/ragtune/ragtune/retrieval/evaluate"
	"github.com/ragtune/ragtune/retrieval/hybrid"
	"github.com/ragtune/ragtune/retrieval/index"
)

// A hybrid folder where BM25 ranks q1's document first and misses q2's, and
// the vectors rank q2's first and q1's second: only a fusion gets both first.
func TestChooseFusionRecordAndOpen(t *testing.T) {
	dir := t.TempDir()
	docs := []evaluate.Doc{
		{ID: "a", Text: "apt package manager"},
		{ID: "b", Text: "image editor"},
		{ID: "c", Text: "text editor"},
	}
	vecs := [][]float32{{1, 0, 0}, {0, 1, 0}, {0, 0.9, 0.1}}
	if _, err := Build(dir, docs, Options{Vectors: vecs, Metric: index.Cosine, BM25: &bm25.DefaultParams}); err != nil {
		t.Fatal(err)
	}
	queries := []evaluate.Query{{ID: "q1", Text: "text editor"}, {ID: "q2", Text: "editor"}}
	encode := evaluate.LookupQueries(map[string][]float32{"q1": {0, 1, 0}, "q2": {1, 0, 0}})
	qrels := evaluate.Qrels{"q1": {"c": 1}, "q2": {"a": 1}}
	parts, err := OpenParts(dir, encode, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c, err := parts.ChooseFusion(ctx, queries, qrels, FusionOptions{Split: "validation"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Chosen != hybrid.ChosenOnSplit || c.Metric != "ndcg@10" || c.Queries != 2 || !c.Method.IsFusion() || c.Score != 1 ||
		c.BM25 != 0.5 || c.Dense >= 1 || len(c.Candidates) != 1+3*19 {
		t.Fatalf("choice %+v", c)
	}
	given := hybrid.Spec{Method: hybrid.MethodMinMax, Weight: 0.4}
	g, err := parts.ChooseFusion(ctx, queries, qrels, FusionOptions{Given: &given, Metric: "recall@1"})
	if err != nil || g.Spec != given || g.Chosen != hybrid.ChosenGiven || len(g.Candidates) != 1 || g.Score != g.Candidates[0].Score {
		t.Fatalf("given: %v %+v", err, g)
	}

	// Recorded, the choice is what Open fuses by.
	if err := RecordFusion(dir, g); err != nil {
		t.Fatal(err)
	}
	r, m, err := Open(dir, encode, nil, 10)
	if err != nil || m.Fusion == nil || m.Fusion.Spec != given {
		t.Fatalf("open: %v %+v", err, m)
	}
	if f, ok := r.(evaluate.Fused); !ok || f.Spec != given {
		t.Fatalf("Open gave %T %+v", r, r)
	}
	if _, ok := parts.Retriever(hybrid.Spec{Method: hybrid.MethodBM25}, 10).(evaluate.Lexical); !ok {
		t.Fatal("a BM25-only spec still fuses")
	}

	for _, metric := range []string{"ndcg", "ndcg@x", "ndcg@5,10", "bleu@10"} {
		if _, err := parts.ChooseFusion(ctx, queries, qrels, FusionOptions{Metric: metric}); err == nil || !strings.Contains(err.Error(), "fusion metric") {
			t.Errorf("metric %q: %v", metric, err)
		}
	}
	lexOnly := &Parts{Manifest: m, Lexical: parts.Lexical}
	if _, err := lexOnly.ChooseFusion(ctx, queries, qrels, FusionOptions{}); err == nil || !strings.Contains(err.Error(), "not hybrid") {
		t.Errorf("BM25 folder: %v", err)
	}
}
