package analysis

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ragtune/ragtune/retrieval/bm25"
	"github.com/ragtune/ragtune/retrieval/evaluate"
	"github.com/ragtune/ragtune/retrieval/metrics"
	"github.com/ragtune/ragtune/retrieval/shareddata"
)

// ranked makes run results from ids, best first.
func ranked(ids ...string) []metrics.Result {
	out := make([]metrics.Result, len(ids))
	for i, id := range ids {
		out[i] = metrics.Result{DocID: id, Score: float64(100 - i)}
	}
	return out
}

// fillers are documents that no query judges.
func fillers(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("f%02d", i)
	}
	return out
}

// constructed is a case with known answers:
//
//	q1 "quick fox" -> d1. A ranks d1's near-duplicate first and d1 12th
//	   (fails: near_duplicate_above); B ranks d1 first. nDCG@10 0 -> 1.
//	q2 "fruit salad" -> d2, no word in common. A ranks d2 first; B
//	   does not list it (fails: not_in_top_100, no_shared_word). 1 -> 0.
//	q3 "zebra" -> d3, second in both: 1/log2(3) both, unchanged.
//	q4 "mystery" -> d4. A ranks it 3rd (0.5); B 11th (fails: other). 0.5 -> 0.
func constructed() Input {
	docs := map[string]string{
		"d1":    "The quick brown fox jumps over the lazy dog",
		"d1dup": "the QUICK brown fox — jumps over the lazy dog!",
		"d2":    "apple banana cherry",
		"d3":    "zebra yak walrus",
		"d4":    "a mystery novel",
	}
	f := fillers(12)
	for _, id := range f {
		docs[id] = "filler text number " + id
	}
	return Input{
		Queries: []evaluate.Query{{ID: "q1", Text: "quick fox"}, {ID: "q2", Text: "fruit salad"}, {ID: "q3", Text: "zebra"}, {ID: "q4", Text: "mystery"}, {ID: "q5", Text: "unjudged"}},
		Qrels:   evaluate.Qrels{"q1": {"d1": 1}, "q2": {"d2": 1}, "q3": {"d3": 1, "f00": 0}, "q4": {"d4": 2}},
		Docs:    docs,
		RunA: evaluate.Run{
			"q1": ranked(append(append([]string{"d1dup"}, f[:10]...), "d1")...),
			"q2": ranked("d2", "f00"),
			"q3": ranked("f00", "d3"),
			"q4": ranked("f00", "f01", "d4"),
		},
		RunB: evaluate.Run{
			"q1": ranked("d1", "d1dup"),
			"q2": ranked(f...),
			"q3": ranked("f01", "d3"),
			"q4": ranked(append(f[:10], "d4")...),
		},
		NameA: "base", NameB: "tuned",
	}
}

func TestCompareConstructed(t *testing.T) {
	rep, err := Compare(constructed(), Options{Trials: 2000})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Queries != 4 || rep.Improved != 1 || rep.Worsened != 2 || rep.Unchanged != 1 {
		t.Fatalf("queries %d, improved %d, worsened %d, unchanged %d; want 4, 1, 2, 1", rep.Queries, rep.Improved, rep.Worsened, rep.Unchanged)
	}
	ids := func(cs []QueryChange) (out []string) {
		for _, c := range cs {
			out = append(out, c.ID)
		}
		return out
	}
	if !slices.Equal(ids(rep.Better), []string{"q1"}) || !slices.Equal(ids(rep.Worse), []string{"q2", "q4"}) {
		t.Fatalf("better %v, worse %v; want [q1], [q2 q4]", ids(rep.Better), ids(rep.Worse))
	}
	q1 := rep.Better[0]
	if q1.Delta != 1 || q1.FirstRelevantA != 12 || q1.FirstRelevantB != 1 || q1.Text != "quick fox" {
		t.Fatalf("q1: %+v", q1.QueryDelta)
	}
	if len(q1.TopA) != 5 || q1.TopA[0].ID != "d1dup" || !q1.TopA[0].NearDuplicate || q1.TopA[0].Relevant {
		t.Fatalf("q1 top of A: %+v", q1.TopA)
	}
	if len(q1.TopB) != 2 || !q1.TopB[0].Relevant || !slices.Equal(q1.CausesA, []string{CauseNearDuplicate}) || q1.CausesB != nil {
		t.Fatalf("q1: top B %+v, causes %v / %v", q1.TopB, q1.CausesA, q1.CausesB)
	}
	q2, q4 := rep.Worse[0], rep.Worse[1]
	if !slices.Equal(q2.CausesB, []string{CauseNotRetrieved, CauseNoSharedWord}) || q2.FirstRelevantB != 0 {
		t.Fatalf("q2 causes in B %v, first relevant %d", q2.CausesB, q2.FirstRelevantB)
	}
	if !slices.Equal(q4.CausesB, []string{CauseOther}) || q4.Delta != -0.5 || q4.FirstRelevantB != 11 {
		t.Fatalf("q4: causes %v, %+v", q4.CausesB, q4.QueryDelta)
	}
	wantA := FailureCount{Run: "base", Failed: 1, Causes: map[string]int{CauseNearDuplicate: 1}}
	wantB := FailureCount{Run: "tuned", Failed: 2, Causes: map[string]int{CauseNotRetrieved: 1, CauseNoSharedWord: 1, CauseOther: 1}}
	if fmt.Sprint(rep.Failures) != fmt.Sprint([2]FailureCount{wantA, wantB}) {
		t.Fatalf("failures %+v, want %+v %+v", rep.Failures, wantA, wantB)
	}
	var nd *MetricDelta
	for i := range rep.Metrics {
		if rep.Metrics[i].Name == "ndcg@10" {
			nd = &rep.Metrics[i]
		}
	}
	third := 1 / math.Log2(3)
	wantMeanA, wantMeanB := (0+1+third+0.5)/4, (1+0+third+0)/4
	// Differences +1, −1, 0, −0.5: every sign flip gives |mean| >= 0.125,
	// so the randomisation test's p is exactly 1.
	if nd == nil || math.Abs(nd.A-wantMeanA) > 1e-12 || math.Abs(nd.B-wantMeanB) > 1e-12 || math.Abs(nd.Diff+0.125) > 1e-12 || nd.P != 1 {
		t.Fatalf("ndcg@10: %+v; want a %.4f, b %.4f, diff -0.125, p 1", nd, wantMeanA, wantMeanB)
	}
	if len(rep.Metrics) != 3*len(evaluate.Measures) || len(rep.PerQuery) != 4 {
		t.Fatalf("%d metrics, %d per-query rows", len(rep.Metrics), len(rep.PerQuery))
	}
}

func TestCompareOptions(t *testing.T) {
	in := constructed()
	if _, err := Compare(in, Options{Metric: "ndcg"}); err == nil {
		t.Error("metric without a cut-off accepted")
	}
	if _, err := Compare(in, Options{Metric: "bleu@4"}); err == nil {
		t.Error("unknown measure accepted")
	}
	if _, err := Compare(in, Options{NearDuplicate: 1.5}); err == nil {
		t.Error("Jaccard threshold 1.5 accepted")
	}
	// With the threshold above d1dup's similarity (1), nothing is a
	// near-duplicate any more: q1 fails in A for no cause the data tells.
	in.Docs["d1dup"] = "quick brown fox jumps over lazy cat"
	rep, err := Compare(in, Options{Trials: 100, Show: 1})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failures[0].Causes[CauseOther] != 1 || rep.Failures[0].Causes[CauseNearDuplicate] != 0 {
		t.Fatalf("causes in A: %v", rep.Failures[0].Causes)
	}
	if len(rep.Worse) != 1 || rep.Worse[0].ID != "q2" {
		t.Fatalf("Show 1: worse = %+v", rep.Worse)
	}
}

func TestJaccard(t *testing.T) {
	set := func(s string) map[string]bool { return tokenSet(bm25.NewTokenizer(true), s) }
	for _, c := range []struct {
		a, b string
		want float64
	}{
		{"a b c x", "B, C, D!", 0.5}, // "a" is a stopword: {b c x} vs {b c d}
		{"Same text.", "same TEXT", 1},
		{"", "", 0},
		{"one", "two", 0},
	} {
		if got := Jaccard(set(c.a), set(c.b)); got != c.want {
			t.Errorf("Jaccard(%q, %q) = %g, want %g", c.a, c.b, got, c.want)
		}
	}
}

// TestHTMLEscapes: texts from the data reach the page escaped, never as markup.
func TestHTMLEscapes(t *testing.T) {
	in := constructed()
	in.Queries[0].Text = `<script>window.__pwned=1</script>`
	in.Docs["d1dup"] = `<img src=x onerror=alert(1)> quick brown fox jumps over the lazy dog`
	in.NameB = `tuned"><i onclick=x>`
	rep, err := Compare(in, Options{Trials: 100})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "analysis.html")
	if err := rep.WritePage(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	for _, bad := range []string{"<script", "<img", "<i onclick"} {
		if strings.Contains(page, bad) {
			t.Errorf("page contains %q unescaped", bad)
		}
	}
	for _, want := range []string{"&lt;script&gt;", "q1", "near-duplicate", "not_in_top_100", "Content-Security-Policy"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

// TestSharedBM25Variants compares two real runs on the debian-packages mini
// validation split: BM25 with and without English stopwords. The counts must
// agree with evaluate's scores (a failure is a query with hit@10 = 0), and
// split packages sharing paragraphs must show up as near-duplicates.
func TestSharedBM25Variants(t *testing.T) {
	mini := shareddata.Dir(t, "debian-packages", "mini")
	corpus, err := evaluate.ReadCorpus(filepath.Join(mini, "corpus.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	queries, err := evaluate.ReadQueries(filepath.Join(mini, "queries.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	qrels, err := evaluate.ReadQrels(filepath.Join(mini, "qrels", "validation.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	ids, texts := make([]string, len(corpus)), make([]string, len(corpus))
	docs := map[string]string{}
	for i, d := range corpus {
		ids[i], texts[i] = d.ID, evaluate.DocText(d)
		docs[d.ID] = texts[i]
	}
	judged, _ := evaluate.JudgedQueries(queries, qrels)
	run := func(p bm25.Params) evaluate.Run {
		ix, err := bm25.Build(ids, texts, p)
		if err != nil {
			t.Fatal(err)
		}
		r, err := evaluate.Retrieve(context.Background(), evaluate.Lexical{Index: ix}, judged, evaluate.RunDepth, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	stop := bm25.DefaultParams
	stop.Stopwords = true
	in := Input{Queries: queries, Qrels: qrels, Docs: docs, RunA: run(bm25.DefaultParams), RunB: run(stop), NameA: "bm25", NameB: "bm25-stop"}
	rep, err := Compare(in, Options{Trials: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Queries != 300 || rep.Improved+rep.Worsened+rep.Unchanged != 300 {
		t.Fatalf("%d queries: %d + %d + %d", rep.Queries, rep.Improved, rep.Worsened, rep.Unchanged)
	}
	for i, r := range []evaluate.Run{in.RunA, in.RunB} {
		ev := evaluate.Evaluate(r, qrels, []int{10})
		misses := 0
		for _, per := range ev.PerQuery {
			if per["hit@10"] == 0 {
				misses++
			}
		}
		if rep.Failures[i].Failed != misses {
			t.Errorf("%s: %d failures, evaluate has %d queries with hit@10 = 0", rep.Failures[i].Run, rep.Failures[i].Failed, misses)
		}
	}
	t.Logf("mini validation, %s vs %s: %d better, %d worse; failures %v / %v", rep.NameB, rep.NameA, rep.Improved, rep.Worsened, rep.Failures[0], rep.Failures[1])
	if rep.Failures[0].Causes[CauseNearDuplicate] == 0 {
		t.Error("no near-duplicate failure on a corpus of split packages")
	}
}

func TestScatterOption(t *testing.T) {
	rep, err := Compare(constructed(), Options{Trials: 100})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(rep.ScatterOption())
	if err != nil {
		t.Fatal(err)
	}
	// Every query is one point [a, b, id].
	for _, want := range []string{`[0,1,"q1"]`, `[1,0,"q2"]`, `[0.5,0,"q4"]`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("option lacks point %s: %s", want, b)
		}
	}
	if n := len(rep.MainMetrics()); n != 9 {
		t.Errorf("%d main metrics, want ndcg, recall and mrr at 3 cut-offs", n)
	}
}
