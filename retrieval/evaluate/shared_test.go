package evaluate

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/ragtune/ragtune/retrieval/bm25"
)

// sharedData returns the team's shared data folder (<repo>/../shared/data),
// skipping the test when it is absent unless RAGTUNE_REQUIRE_SHARED=1.
func sharedData(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../../../shared/data")
	if err == nil {
		if _, err = os.Stat(dir); err == nil {
			return dir
		}
	}
	if os.Getenv("RAGTUNE_REQUIRE_SHARED") == "1" {
		t.Fatalf("shared data: %v", err)
	}
	t.Skipf("shared data absent: %v", err)
	return ""
}

// TestBM25OnMini runs the lexical baseline end to end on the mini split of
// the debian-packages set: real documents, queries and judgments.
func TestBM25OnMini(t *testing.T) {
	mini := filepath.Join(sharedData(t), "debian-packages", "mini")
	corpus, err := ReadCorpus(filepath.Join(mini, "corpus.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	queries, err := ReadQueries(filepath.Join(mini, "queries.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	qrels, err := ReadQrels(filepath.Join(mini, "qrels", "validation.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	ids, texts := make([]string, len(corpus)), make([]string, len(corpus))
	for i, d := range corpus {
		ids[i], texts[i] = d.ID, DocText(d)
	}
	ix, err := bm25.Build(ids, texts, bm25.DefaultParams)
	if err != nil {
		t.Fatal(err)
	}
	var judged []Query
	for _, q := range queries {
		if _, ok := qrels[q.ID]; ok {
			judged = append(judged, q)
		}
	}
	run, err := Retrieve(context.Background(), Lexical{ix}, judged, RunDepth, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	rep := Evaluate(run, qrels, []int{1, 10})
	t.Logf("mini validation, BM25 k1=0.9 b=0.4: %d queries, nDCG@10 %.4f, Recall@10 %.4f, MRR@10 %.4f",
		rep.Queries, rep.Metrics["ndcg@10"], rep.Metrics["recall@10"], rep.Metrics["mrr@10"])
	if rep.Queries != 300 || rep.MissingFromRun != 0 {
		t.Fatalf("scored %d queries (%d missing), want the 300 validation queries", rep.Queries, rep.MissingFromRun)
	}
	// A working BM25 finds a package from its synopsis far above chance
	// (chance nDCG@10 on 6,000 documents is about 0.001).
	if rep.Metrics["ndcg@10"] < 0.2 {
		t.Fatalf("nDCG@10 = %.4f: the lexical baseline is broken", rep.Metrics["ndcg@10"])
	}
}
