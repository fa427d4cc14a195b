package evaluate

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ragtune/ragtune/retrieval/hybrid"
	"github.com/ragtune/ragtune/retrieval/metrics"
)

func TestEvaluateCountsAndTies(t *testing.T) {
	qrels := Qrels{
		"q1": {"a": 2, "b": 1},
		"q2": {"x": 0}, // no relevant document: excluded, counted
		"q3": {"c": 1}, // not in the run: scores 0
	}
	run := Run{
		// a and b tie; trec_eval orders ties by id descending, so b comes first.
		"q1": {{DocID: "a", Score: 1}, {DocID: "b", Score: 1}, {DocID: "z", Score: 3}},
		"q2": {{DocID: "x", Score: 1}},
		"q9": {{DocID: "a", Score: 1}}, // not judged: ignored
	}
	rep := Evaluate(run, qrels, []int{1, 3})
	if rep.Queries != 2 || rep.NoRelevant != 1 || rep.MissingFromRun != 1 || rep.NotJudged != 1 {
		t.Fatalf("counts: %+v", rep)
	}
	l3, l4 := math.Log2(3), math.Log2(4)
	// q1 ranking: z, b, a. DCG@3 = 1/log2(3) + 2/log2(4); IDCG@3 = 2 + 1/log2(3).
	ndcg3q1 := (1/l3 + 2/l4) / (2 + 1/l3)
	want := map[string]float64{
		"ndcg@3":      ndcg3q1 / 2,
		"ndcg@1":      0,
		"recall@3":    0.5,
		"mrr@3":       0.25, // q1: 1/2, q3: 0
		"precision@3": (2.0 / 3) / 2,
		"map@3":       ((1.0/2 + 2.0/3) / 2) / 2,
		"hit@1":       0,
		"hit@3":       0.5,
	}
	for name, w := range want {
		if got := rep.Metrics[name]; math.Abs(got-w) > 1e-12 {
			t.Errorf("%s = %.12g, want %.12g", name, got, w)
		}
	}
	if v := rep.Values("mrr@3"); len(v) != 2 || v[0] != 0.5 || v[1] != 0 {
		t.Errorf("per-query mrr@3 = %v", v)
	}
}

func TestStats(t *testing.T) {
	ci, err := BootstrapCI([]float64{0.5, 0.5, 0.5}, 0.95, 200, 1)
	if err != nil || ci.Low != 0.5 || ci.High != 0.5 || ci.Mean != 0.5 {
		t.Fatalf("constant values: %+v %v", ci, err)
	}
	vals := make([]float64, 100)
	for i := range vals {
		vals[i] = float64(i % 2) // mean 0.5, sd 0.5: 95% CI about ±0.1
	}
	ci, _ = BootstrapCI(vals, 0.95, 2000, 1)
	if !(ci.Low < 0.5 && ci.High > 0.5 && ci.Low > 0.35 && ci.High < 0.65) {
		t.Fatalf("bootstrap CI %+v", ci)
	}
	ci2, _ := BootstrapCI(vals, 0.95, 2000, 1)
	if ci2 != ci {
		t.Fatal("same seed, different interval")
	}

	// Identical systems: every sign flip is as extreme, so p = 1.
	_, p, _ := RandomizationTest(vals, vals, 999, 1)
	if p != 1 {
		t.Fatalf("identical runs: p = %g", p)
	}
	// b better on every one of 30 queries: p at its floor 1/(trials+1).
	a, b := make([]float64, 30), make([]float64, 30)
	for i := range b {
		b[i] = 0.1
	}
	diff, p, _ := RandomizationTest(a, b, 999, 1)
	if diff != -0.1 && math.Abs(diff+0.1) > 1e-12 || p != 1.0/1000 {
		t.Fatalf("clear difference: diff %g p %g", diff, p)
	}
	if _, _, err := RandomizationTest(a, b[:3], 10, 1); err == nil {
		t.Fatal("unpaired lists accepted")
	}
}

func TestRunFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	run := Run{"q2": {{DocID: "d1", Score: 0.5}}, "q1": make([]metrics.Result, 150)}
	for i := range run["q1"] {
		run["q1"][i] = metrics.Result{DocID: "d" + string(rune('a'+i%26)) + string(rune('a'+i/26)), Score: float64(150 - i)}
	}
	p := filepath.Join(dir, "run.jsonl")
	if err := WriteRun(p, run, RunDepth); err != nil {
		t.Fatal(err)
	}
	back, err := ReadRun(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(back["q1"]) != RunDepth || back["q1"][99] != run["q1"][99] || len(back["q2"]) != 1 {
		t.Fatalf("round trip: %d %d", len(back["q1"]), len(back["q2"]))
	}
	data, _ := os.ReadFile(p)
	if !strings.HasPrefix(string(data), `{"query_id":"q1","results":[{"doc_id":"daa","score":150}`) {
		t.Fatalf("run file starts %.80s", data)
	}

	top := filepath.Join(dir, "top10.jsonl")
	err = WriteTop10(top, []Query{{"q1", "first"}, {"q2", "second"}}, back, Qrels{"q2": {"d1": 1, "d0": 0}}, map[string]string{"d1": "doc one"})
	if err != nil {
		t.Fatal(err)
	}
	data, _ = os.ReadFile(top)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 2 || lines[1] != `{"query_id":"q2","query":"second","retrieved_ids":["d1"],"retrieved_texts":["doc one"],"scores":[0.5],"relevant_ids":["d1"]}` {
		t.Fatalf("top10 file:\n%s", data)
	}
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct {
		parse func(string) error
		in    string
		want  string
	}{
		{parseRun, `{"query_id":"q","results":[{"doc_id":"a","score":1},{"doc_id":"a","score":2}]}`, `run:1: field "results[1].doc_id": duplicate id "a"`},
		{parseRun, `{"query_id":"q","results":[{"doc_id":"a"}]}`, `field "results[0].score": missing`},
		{parseRun, `{"query_id":"q","results":[]}` + "\n" + `{"query_id":"q","results":[]}`, `run:2: field "query_id": duplicate id "q"`},
		{parseRun, `not json`, `run:1: malformed record`},
		{parseRun, `{"results":[]}`, `field "query_id": missing field`},
		{parseQrels, "query-id\tcorpus-id\tscore\nq1\td1\tx", `run:2: field "score": score is not an integer`},
		{parseQrels, "q1 d1", `run:1: malformed record: 2 fields`},
		{parseQrels, "q1 d1 1\nq1 d1 2", `run:2: duplicate id: query "q1" judges document "d1" twice`},
		{parseQrels, "query-id corpus-id score\n", `no judgments`},
		{parseQueries, `{"_id":"q1"}`, `run:1: field "text": missing field`},
		{parseQueries, `{"_id":"q1","text":"a"}` + "\n" + `{"_id":"q1","text":"b"}`, `run:2: field "_id": duplicate id "q1" (first on line 1)`},
		{parseQueries, "{\"_id\":\"q\xff\",\"text\":\"a\"}", `run:1: invalid UTF-8`},
	} {
		err := c.parse(c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want %q", c.in, err, c.want)
		}
	}
	q, err := ParseQrels("q", strings.NewReader("q1 0 d1 2\nq1 0 d2 0\n"))
	if err != nil || q["q1"]["d1"] != 2 || q["q1"]["d2"] != 0 {
		t.Fatalf("TREC qrels: %v %v", q, err)
	}
}

func parseRun(s string) error     { _, err := ParseRun("run", strings.NewReader(s)); return err }
func parseQrels(s string) error   { _, err := ParseQrels("run", strings.NewReader(s)); return err }
func parseQueries(s string) error { _, err := ParseQueries("run", strings.NewReader(s)); return err }

func FuzzParseRun(f *testing.F) {
	f.Add(`{"query_id":"q1","results":[{"doc_id":"d1","score":1.5},{"doc_id":2,"score":-3}]}`)
	f.Add(`{"query_id":7,"results":[]}` + "\n\n" + `{"query_id":"x","results":null}`)
	f.Fuzz(func(t *testing.T, in string) {
		run, err := ParseRun("fuzz", strings.NewReader(in))
		if err == nil {
			Evaluate(run, Qrels{"q1": {"d1": 1}}, []int{1, 10}) // must not panic either
		}
	})
}

func FuzzParseQrels(f *testing.F) {
	f.Add("query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t0\n")
	f.Add("q1 0 d1 2\n")
	f.Fuzz(func(t *testing.T, in string) {
		q, err := ParseQrels("fuzz", strings.NewReader(in))
		if err == nil && len(q) == 0 {
			t.Fatal("empty qrels accepted")
		}
	})
}

func FuzzParseQueries(f *testing.F) {
	f.Add(`{"_id":"q1","text":"hello"}` + "\n" + `{"_id":2,"text":""}`)
	f.Fuzz(func(t *testing.T, in string) {
		ParseQueries("fuzz", strings.NewReader(in))
	})
}

// fakeRetriever answers every query with the documents given, for testing Fused.
type fakeRetriever []metrics.Result

func (f fakeRetriever) Retrieve(_ context.Context, qs []Query, k int) ([][]metrics.Result, error) {
	out := make([][]metrics.Result, len(qs))
	for i := range out {
		out[i] = f[:min(k, len(f))]
	}
	return out, nil
}

func TestFusedAndRetrieve(t *testing.T) {
	a := fakeRetriever{{DocID: "x", Score: 9}, {DocID: "y", Score: 8}}
	b := fakeRetriever{{DocID: "y", Score: 0.9}, {DocID: "z", Score: 0.1}}
	run, err := Retrieve(context.Background(), Fused{Dense: a, Lexical: b}, []Query{{"q1", ""}, {"q2", ""}, {"q3", ""}}, 2, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(run) != 3 || len(run["q3"]) != 2 || run["q3"][0].DocID != "y" || math.Abs(run["q3"][0].Score-(1.0/62+1.0/61)) > 1e-15 || run["q3"][1].DocID != "x" {
		t.Fatalf("fused run %+v", run)
	}
	// Min-max with dense weight 0.8: x 0.8·1, y 0.8·0 + 0.2·1, z 0.
	run, err = Retrieve(context.Background(), Fused{Dense: a, Lexical: b, Spec: hybrid.Spec{Method: hybrid.MethodMinMax, Weight: 0.8}}, []Query{{"q1", ""}}, 3, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := run["q1"]; len(got) != 3 || got[0].DocID != "x" || math.Abs(got[1].Score-0.2) > 1e-15 || got[2].DocID != "z" {
		t.Fatalf("min-max fused run %+v", run)
	}
}
