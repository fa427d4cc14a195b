// Package metrics scores one ranked result list against graded relevance
// judgments, one function per measure, with the definitions trec_eval (and so
// pytrec_eval and BEIR) use.
//
// Conventions shared by every function:
//
//   - ranking lists document ids best first; call SortTrec first to order a
//     scored run the way trec_eval does. A document id that appears a second
//     time is ignored (trec_eval refuses such runs; counting it twice would
//     reward a run for repeating a hit);
//   - rel maps judged document ids to graded relevance; a document is
//     relevant when its grade is > 0. Unjudged documents count as grade 0;
//   - k is the cut-off; k <= 0 means the whole list. A k larger than the list
//     simply sees the whole list (no padding), except Precision, which divides
//     by k as trec_eval's P_k does;
//   - a query with no relevant document has no defined Recall, nDCG or MAP;
//     these functions return 0 for it, and callers (package evaluate) exclude
//     such queries and count them.
package metrics

import (
	"math"
	"sort"
)

// Result is one scored document of a run.
type Result struct {
	DocID string  `json:"doc_id"`
	Score float64 `json:"score"`
}

// SortTrec orders results as trec_eval does before it scores a run: by score
// descending, then by document id descending (trec_eval's comp_sim_docno in
// form_res_rels.c compares strcmp(docno2, docno1) on equal scores). The order
// in which the run file listed the results does not matter.
func SortTrec(results []Result) {
	sort.SliceStable(results, func(i, j int) bool {
		a, b := results[i], results[j]
		if a.Score != b.Score {
			return a.Score > b.Score
		}
		return a.DocID > b.DocID
	})
}

// IDs returns the document ids of results, in order.
func IDs(results []Result) []string {
	ids := make([]string, len(results))
	for i, r := range results {
		ids[i] = r.DocID
	}
	return ids
}

// cut returns the first k distinct ids of ranking (all of them when k <= 0).
func cut(ranking []string, k int) []string {
	seen := make(map[string]bool, len(ranking))
	out := make([]string, 0, min(len(ranking), max(k, 0)))
	for _, id := range ranking {
		if k > 0 && len(out) == k {
			break
		}
		if seen[id] {
			continue
		}
		seen[id] = true
		out = append(out, id)
	}
	return out
}

// NumRelevant counts the judged documents with grade > 0.
func NumRelevant(rel map[string]int) int {
	n := 0
	for _, g := range rel {
		if g > 0 {
			n++
		}
	}
	return n
}

// NDCG is the normalised discounted cumulative gain at k:
//
//	DCG@k  = sum over ranks i = 1..k of grade(doc_i) / log2(i + 1)
//	nDCG@k = DCG@k / IDCG@k
//
// with linear gain (the grade itself, negatives as 0) and IDCG@k the DCG@k of
// the ideal ranking of ALL judged-relevant documents of the query, sorted by
// grade, whether the run retrieved them or not (trec_eval's ndcg_cut, BEIR).
func NDCG(ranking []string, rel map[string]int, k int) float64 {
	var dcg float64
	for i, id := range cut(ranking, k) {
		if g := rel[id]; g > 0 {
			dcg += float64(g) / math.Log2(float64(i)+2)
		}
	}
	grades := make([]int, 0, len(rel))
	for _, g := range rel {
		if g > 0 {
			grades = append(grades, g)
		}
	}
	sort.Sort(sort.Reverse(sort.IntSlice(grades)))
	if k > 0 && len(grades) > k {
		grades = grades[:k]
	}
	var idcg float64
	for i, g := range grades {
		idcg += float64(g) / math.Log2(float64(i)+2)
	}
	if idcg == 0 {
		return 0
	}
	return dcg / idcg
}

// Recall is the fraction of the query's relevant documents found in the top
// k: |relevant ∩ top k| / |relevant| (trec_eval's recall_k, BEIR's Recall@k).
func Recall(ranking []string, rel map[string]int, k int) float64 {
	n := NumRelevant(rel)
	if n == 0 {
		return 0
	}
	return float64(hits(ranking, rel, k)) / float64(n)
}

// Precision is the fraction of the top k that is relevant:
// |relevant ∩ top k| / k. Like trec_eval's P_k it divides by k even when the
// run returned fewer than k documents; with k <= 0 it divides by the list's length.
func Precision(ranking []string, rel map[string]int, k int) float64 {
	denom := k
	if k <= 0 {
		denom = len(cut(ranking, 0))
	}
	if denom == 0 {
		return 0
	}
	return float64(hits(ranking, rel, k)) / float64(denom)
}

// MRR is the reciprocal rank of the first relevant document within the top
// k (1/rank), or 0 when none is there. Averaged over queries it is the mean
// reciprocal rank (trec_eval's recip_rank, cut at k).
func MRR(ranking []string, rel map[string]int, k int) float64 {
	for i, id := range cut(ranking, k) {
		if rel[id] > 0 {
			return 1 / float64(i+1)
		}
	}
	return 0
}

// AP is average precision at k: the sum of Precision@i over the ranks
// i <= k that hold a relevant document, divided by the number of relevant
// documents of the query (not by the number found; trec_eval's map_cut,
// BEIR's MAP@k). Averaged over queries it is MAP@k.
func AP(ranking []string, rel map[string]int, k int) float64 {
	n := NumRelevant(rel)
	if n == 0 {
		return 0
	}
	var sum float64
	found := 0
	for i, id := range cut(ranking, k) {
		if rel[id] > 0 {
			found++
			sum += float64(found) / float64(i+1)
		}
	}
	return sum / float64(n)
}

// Hit is 1 when at least one relevant document is in the top k, else 0
// (also called success@k).
func Hit(ranking []string, rel map[string]int, k int) float64 {
	if hits(ranking, rel, k) > 0 {
		return 1
	}
	return 0
}

// hits counts the relevant documents in the top k.
func hits(ranking []string, rel map[string]int, k int) int {
	n := 0
	for _, id := range cut(ranking, k) {
		if rel[id] > 0 {
			n++
		}
	}
	return n
}
