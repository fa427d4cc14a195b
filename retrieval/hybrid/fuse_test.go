package hybrid

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ragtune/ragtune/retrieval/metrics"
)

// The two lists of the hand-worked examples below.
var (
	denseList = []metrics.Result{{DocID: "a", Score: 0.9}, {DocID: "b", Score: 0.5}, {DocID: "c", Score: 0.1}}
	bm25List  = []metrics.Result{{DocID: "c", Score: 10}, {DocID: "d", Score: 6}, {DocID: "a", Score: 2}}
)

func res(id string, score float64) metrics.Result { return metrics.Result{DocID: id, Score: score} }

func TestFuseHandComputed(t *testing.T) {
	z := math.Sqrt(1.5) // |0.9−0.5| / population std of {0.9, 0.5, 0.1}; same for {10, 6, 2}
	for _, c := range []struct {
		spec Spec
		want []metrics.Result
	}{
		// min-max: dense a 1, b 0.5, c 0; BM25 c 1, d 0.5, a 0; missing: 0.
		{Spec{Method: MethodMinMax, Weight: 0.5}, []metrics.Result{res("a", 0.5), res("c", 0.5), res("b", 0.25), res("d", 0.25)}},
		{Spec{Method: MethodMinMax, Weight: 0.8}, []metrics.Result{res("a", 0.8), res("b", 0.4), res("c", 0.2), res("d", 0.1)}},
		// z-score: dense a z, b 0, c −z; BM25 c z, d 0, a −z; missing: −z.
		{Spec{Method: MethodZScore, Weight: 0.25}, []metrics.Result{res("c", 0.5*z), res("d", -0.25*z), res("a", -0.5*z), res("b", -0.75*z)}},
		// weighted RRF, k 60: a at 1 and 3, b at 2, c at 3 and 1, d at 2.
		{Spec{Method: MethodWRRF, Weight: 0.25}, []metrics.Result{res("c", 0.25/63+0.75/61), res("a", 0.25/61+0.75/63), res("d", 0.75/62), res("b", 0.25/62)}},
		// plain RRF: a and c tie, b and d tie; smaller id first.
		{Spec{Method: MethodRRF}, []metrics.Result{res("a", 1.0/61+1.0/63), res("c", 1.0/61+1.0/63), res("b", 1.0/62), res("d", 1.0/62)}},
		{Spec{Method: MethodDense}, denseList},
		{Spec{Method: MethodBM25}, bm25List},
	} {
		got := c.spec.Fuse(denseList, bm25List, 0)
		if len(got) != len(c.want) {
			t.Fatalf("%s: %v, want %v", c.spec, got, c.want)
		}
		for i := range got {
			if got[i].DocID != c.want[i].DocID || math.Abs(got[i].Score-c.want[i].Score) > 1e-12 {
				t.Fatalf("%s: rank %d %v, want %v (all: %v)", c.spec, i+1, got[i], c.want[i], got)
			}
		}
		if cut := c.spec.Fuse(denseList, bm25List, 2); len(cut) != 2 || cut[0] != got[0] || cut[1] != got[1] {
			t.Fatalf("%s cut to 2: %v", c.spec, cut)
		}
	}
}

func TestFuseEdgeCases(t *testing.T) {
	// A list of equal scores orders nothing; an empty list neither.
	flat := []metrics.Result{{DocID: "x", Score: 3}, {DocID: "y", Score: 3}}
	for _, m := range []Method{MethodMinMax, MethodZScore} {
		got := Spec{Method: m, Weight: 0.9}.Fuse(flat, nil, 0)
		if len(got) != 2 || got[0].DocID != "x" || got[0].Score != 0 || got[1].Score != 0 {
			t.Fatalf("%s on a flat list: %v", m, got)
		}
	}
	// A repeated document counts at its first place only.
	rep := []metrics.Result{{DocID: "a", Score: 2}, {DocID: "b", Score: 1}, {DocID: "a", Score: 0}}
	got := Spec{Method: MethodMinMax, Weight: 1}.Fuse(rep, nil, 0)
	if len(got) != 2 || got[0] != (metrics.Result{DocID: "a", Score: 1}) || got[1] != (metrics.Result{DocID: "b", Score: 0}) {
		t.Fatalf("repeated id: %v", got)
	}
	if got := (Spec{Method: MethodWRRF, Weight: 0.5}).Fuse(nil, nil, 10); len(got) != 0 {
		t.Fatalf("empty lists: %v", got)
	}
}

func TestSpecValidate(t *testing.T) {
	for _, c := range []struct {
		spec Spec
		want string
	}{
		{Spec{Method: MethodMinMax, Weight: 0.3}, ""},
		{Spec{Method: MethodRRF, K: 10}, ""},
		{Spec{Method: "cosine"}, `unknown fusion "cosine"`},
		{Spec{Method: MethodZScore, Weight: 1.5}, "fusion weight 1.5"},
		{Spec{Method: MethodWRRF, Weight: math.NaN()}, "fusion weight NaN"},
		{Spec{Method: MethodRRF, K: -1}, "fusion k -1"},
	} {
		err := c.spec.Validate()
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%+v: %v, want %q", c.spec, err, c.want)
		}
	}
	if s := (Spec{Method: MethodMinMax, Weight: 0.7}).String(); s != "minmax w=0.70" {
		t.Fatalf("String = %q", s)
	}
}

func TestGridAndCandidates(t *testing.T) {
	g := Grid(0.05)
	if len(g) != 19 || g[0] != 0.05 || g[9] != 0.5 || g[18] != 0.95 {
		t.Fatalf("Grid(0.05) = %v", g)
	}
	cs := Candidates([]Method{MethodZScore, MethodRRF}, []float64{0.2, 0.4}, 0)
	want := []Spec{{Method: MethodRRF}, {Method: MethodZScore, Weight: 0.2}, {Method: MethodZScore, Weight: 0.4}}
	if fmt.Sprint(cs) != fmt.Sprint(want) {
		t.Fatalf("Candidates = %v, want %v", cs, want)
	}
}

// meanNDCG10 is the scorer of the tests: mean nDCG@10 over qrels' queries.
func meanNDCG10(qrels map[string]map[string]int) Scorer {
	return func(run Run) float64 {
		var sum float64
		for _, qid := range queryIDs(run) { // a fixed order: the sum is exact every time
			if rel, ok := qrels[qid]; ok {
				sum += metrics.NDCG(metrics.IDs(run[qid]), rel, 10)
			}
		}
		return sum / float64(len(qrels))
	}
}

func TestChooseFusionThatBeatsBoth(t *testing.T) {
	// q1: BM25 ranks the relevant r first, dense second; q2 the other way.
	dense := Run{
		"q1": {{DocID: "x1", Score: 0.9}, {DocID: "r", Score: 0.8}},
		"q2": {{DocID: "s", Score: 0.9}, {DocID: "y1", Score: 0.1}},
	}
	lexical := Run{
		"q1": {{DocID: "r", Score: 5}, {DocID: "x2", Score: 4}},
		"q2": {{DocID: "y2", Score: 3}, {DocID: "s", Score: 2.9}},
	}
	qrels := map[string]map[string]int{"q1": {"r": 1}, "q2": {"s": 1}}
	c := Choose(dense, lexical, meanNDCG10(qrels), Candidates([]Method{MethodRRF, MethodWRRF, MethodMinMax, MethodZScore}, Grid(0.05), 0), 100, "validation", "ndcg@10")
	single := (1 + 1/math.Log2(3)) / 2 // each retriever: one hit at 1, one at 2
	if math.Abs(c.Dense-single) > 1e-12 || math.Abs(c.BM25-single) > 1e-12 {
		t.Fatalf("singles %v %v, want %v", c.Dense, c.BM25, single)
	}
	// RRF puts both relevant documents first (1/61+1/62 beats 1/61) and is
	// the first candidate to reach 1.
	if c.Method != MethodRRF || c.Score != 1 || c.Queries != 2 || len(c.Candidates) != 1+3*19 {
		t.Fatalf("choice %+v", c)
	}
	if s := c.Summary(); s != "fusion: rrf (validation ndcg@10 1.000 vs BM25 0.815, dense 0.815)" {
		t.Fatalf("summary %q", s)
	}
}

func TestChooseKeepsTheBetterRetrieverWhenNoFusionBeatsIt(t *testing.T) {
	// BM25 is perfect; fusion can only tie it (small dense weights) or lose.
	dense := Run{"q": {{DocID: "x", Score: 0.9}, {DocID: "r", Score: 0.1}}}
	lexical := Run{"q": {{DocID: "r", Score: 2}, {DocID: "x", Score: 1}}}
	qrels := map[string]map[string]int{"q": {"r": 1}}
	c := Choose(dense, lexical, meanNDCG10(qrels), Candidates([]Method{MethodMinMax}, Grid(0.1), 0), 100, "validation", "ndcg@10")
	if c.Method != MethodBM25 || c.Score != 1 || c.BM25 != 1 || c.BestCandidate().Score != 1 {
		t.Fatalf("choice %+v", c)
	}
	want := fmt.Sprintf("fusion: none beat BM25 on validation (ndcg@10 1.000, dense %.3f; best fusion minmax w=0.10 1.000); using BM25", 1/math.Log2(3))
	if s := c.Summary(); s != want {
		t.Fatalf("summary %q\nwant    %q", s, want)
	}
}

// TestChooseNeverLosesToItsParts checks the property Choose exists for on
// random runs: the choice scores at least the better retriever, and its
// recorded score is what its spec scores.
func TestChooseNeverLosesToItsParts(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	randomList := func() []metrics.Result {
		perm := rng.Perm(30)[:rng.IntN(15)]
		out := make([]metrics.Result, len(perm))
		for i, d := range perm {
			out[i] = metrics.Result{DocID: fmt.Sprintf("d%02d", d), Score: float64(len(perm)-i) + rng.Float64()*0.5}
		}
		return out
	}
	candidates := Candidates([]Method{MethodRRF, MethodWRRF, MethodMinMax, MethodZScore}, Grid(0.1), 0)
	fused := 0
	for trial := 0; trial < 200; trial++ {
		dense, lexical, qrels := Run{}, Run{}, map[string]map[string]int{}
		for q := 0; q < 5; q++ {
			qid := fmt.Sprint("q", q)
			dense[qid], lexical[qid] = randomList(), randomList()
			qrels[qid] = map[string]int{fmt.Sprintf("d%02d", rng.IntN(30)): 1 + rng.IntN(2), fmt.Sprintf("d%02d", rng.IntN(30)): 1}
		}
		score := meanNDCG10(qrels)
		c := Choose(dense, lexical, score, candidates, 100, "validation", "ndcg@10")
		if c.Score < max(c.Dense, c.BM25) {
			t.Fatalf("trial %d: chose %s at %v below dense %v / BM25 %v", trial, c.Spec, c.Score, c.Dense, c.BM25)
		}
		if got := score(FuseRuns(c.Spec, dense, lexical, 100)); got != c.Score {
			t.Fatalf("trial %d: %s records %v, scores %v", trial, c.Spec, c.Score, got)
		}
		if c.Method.IsFusion() {
			fused++
		}
	}
	if fused == 0 || fused == 200 {
		t.Fatalf("%d of 200 random cases chose a fusion: the test exercises only one branch", fused)
	}
}
