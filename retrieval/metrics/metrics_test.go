package metrics

import (
	"math"
	"reflect"
	"testing"
)

// graded judgments: a=3, b=2, c=1, d judged non-relevant; x is unjudged.
var graded = map[string]int{"a": 3, "b": 2, "c": 1, "d": 0}

func near(t *testing.T, name string, got, want float64) {
	t.Helper()
	if math.Abs(got-want) > 1e-12 {
		t.Errorf("%s = %.15g, want %.15g", name, got, want)
	}
}

func TestGradedRelevance(t *testing.T) {
	run := []string{"x", "c", "a", "b", "d"}
	l3 := math.Log2(3)
	// DCG@3 = 0 + 1/log2(3) + 3/log2(4); IDCG@3 = 3/1 + 2/log2(3) + 1/log2(4).
	near(t, "nDCG@3", NDCG(run, graded, 3), (1/l3+3.0/2)/(3+2/l3+0.5))
	near(t, "nDCG@1", NDCG(run, graded, 1), 0)
	near(t, "Recall@3", Recall(run, graded, 3), 2.0/3)
	near(t, "Precision@3", Precision(run, graded, 3), 2.0/3)
	near(t, "MRR@3", MRR(run, graded, 3), 0.5)
	near(t, "MRR@1", MRR(run, graded, 1), 0)
	// AP@3 = (P@2 + P@3) / 3 relevant = (1/2 + 2/3) / 3.
	near(t, "AP@3", AP(run, graded, 3), (0.5+2.0/3)/3)
	near(t, "Hit@1", Hit(run, graded, 1), 0)
	near(t, "Hit@2", Hit(run, graded, 2), 1)
}

func TestKLargerThanList(t *testing.T) {
	run := []string{"x", "c", "a", "b"}
	l3, l5 := math.Log2(3), math.Log2(5)
	// The ideal list has only 3 relevant documents, so IDCG@10 = IDCG@3.
	near(t, "nDCG@10", NDCG(run, graded, 10), (1/l3+1.5+2/l5)/(3+2/l3+0.5))
	near(t, "Recall@10", Recall(run, graded, 10), 1)
	near(t, "Precision@10 divides by k", Precision(run, graded, 10), 3.0/10)
	near(t, "Precision@all", Precision(run, graded, 0), 3.0/4)
	near(t, "AP@10", AP(run, graded, 10), (1.0/2+2.0/3+3.0/4)/3)
}

func TestIdealUsesAllJudgedRelevant(t *testing.T) {
	// One relevant doc retrieved at rank 1, two more never retrieved: the ideal
	// ranking still counts all three, so nDCG@10 < 1 although the run is "perfect".
	rel := map[string]int{"a": 1, "b": 1, "c": 1}
	near(t, "nDCG@10", NDCG([]string{"a"}, rel, 10), 1/(1+1/math.Log2(3)+0.5))
	near(t, "nDCG@1", NDCG([]string{"a"}, rel, 1), 1)
}

func TestMissingResultsAndNoRelevant(t *testing.T) {
	for name, f := range map[string]func([]string, map[string]int, int) float64{
		"NDCG": NDCG, "Recall": Recall, "Precision": Precision, "MRR": MRR, "AP": AP, "Hit": Hit,
	} {
		if v := f(nil, graded, 10); v != 0 {
			t.Errorf("%s(empty run) = %g, want 0", name, v)
		}
		if v := f([]string{"a", "b"}, map[string]int{"a": 0}, 10); v != 0 {
			t.Errorf("%s(no relevant) = %g, want 0", name, v)
		}
	}
}

func TestDuplicateIDsCountOnce(t *testing.T) {
	rel := map[string]int{"a": 1, "b": 1}
	run := []string{"a", "a", "b"}
	near(t, "Precision@2", Precision(run, rel, 2), 1)
	near(t, "Recall@2", Recall(run, rel, 2), 1)
	near(t, "nDCG@2", NDCG(run, rel, 2), 1)
}

func TestSortTrecTies(t *testing.T) {
	rs := []Result{{"a", 1}, {"c", 0.5}, {"b", 1}, {"d", 2}, {"b2", 1}}
	SortTrec(rs)
	// Equal scores: document id descending, as trec_eval.
	want := []string{"d", "b2", "b", "a", "c"}
	if got := IDs(rs); !reflect.DeepEqual(got, want) {
		t.Fatalf("SortTrec = %v, want %v", got, want)
	}
	// Ties decide the metric: with a and b tied, b (relevant) ranks first.
	rs = []Result{{"a", 1}, {"b", 1}}
	SortTrec(rs)
	near(t, "MRR@1 after tie-break", MRR(IDs(rs), map[string]int{"b": 1}, 1), 1)
}
