package hybrid

import (
	"fmt"
	"math"
	"sort"

	"github.com/ragtune/ragtune/retrieval/metrics"
)

// Method names how a dense and a BM25 ranking become one.
type Method string

const (
	// MethodRRF is reciprocal rank fusion with equal weights.
	MethodRRF Method = "rrf"
	// MethodWRRF is weighted RRF: w/(k+rank_dense) + (1−w)/(k+rank_bm25).
	MethodWRRF Method = "wrrf"
	// MethodMinMax is w·dense + (1−w)·bm25 over min-max normalised scores.
	MethodMinMax Method = "minmax"
	// MethodZScore is w·dense + (1−w)·bm25 over z-scored scores.
	MethodZScore Method = "zscore"
	// MethodDense and MethodBM25 are no fusion: one retriever's ranking as
	// it is (the ends, w = 1 and w = 0, of every weighted method).
	MethodDense Method = "dense"
	MethodBM25  Method = "bm25"
)

// Weighted lists the methods that take a weight, in the order Choose tries them.
var Weighted = []Method{MethodWRRF, MethodMinMax, MethodZScore}

// Spec is one way to fuse: a method, the dense list's weight w (BM25 gets
// 1−w; only for weighted methods) and the RRF constant (0: DefaultK).
type Spec struct {
	Method Method  `json:"method"`
	Weight float64 `json:"weight,omitempty"`
	K      float64 `json:"k,omitempty"`
}

// ParseMethod checks a method name.
func ParseMethod(s string) (Method, error) {
	switch m := Method(s); m {
	case MethodRRF, MethodWRRF, MethodMinMax, MethodZScore, MethodDense, MethodBM25:
		return m, nil
	}
	return "", fmt.Errorf("unknown fusion %q (want rrf, wrrf, minmax, zscore, dense or bm25)", s)
}

// IsWeighted reports whether m takes a weight.
func (m Method) IsWeighted() bool {
	return m == MethodWRRF || m == MethodMinMax || m == MethodZScore
}

// IsFusion reports whether m combines both lists (not a single retriever).
func (m Method) IsFusion() bool { return m == MethodRRF || m.IsWeighted() }

// Validate checks a Spec, e.g. one read from a manifest.
func (s Spec) Validate() error {
	if _, err := ParseMethod(string(s.Method)); err != nil {
		return err
	}
	if s.Method.IsWeighted() && !(s.Weight >= 0 && s.Weight <= 1) {
		return fmt.Errorf("fusion weight %v: want a number from 0 to 1", s.Weight)
	}
	if !(s.K >= 0) || math.IsInf(s.K, 0) {
		return fmt.Errorf("fusion k %v: want a positive number (0: %d)", s.K, DefaultK)
	}
	return nil
}

// String names the spec as the terminal output does, e.g. "minmax w=0.70".
func (s Spec) String() string {
	switch {
	case s.Method.IsWeighted():
		return fmt.Sprintf("%s w=%.2f", s.Method, s.Weight)
	case s.Method == MethodRRF && s.K != 0 && s.K != DefaultK:
		return fmt.Sprintf("rrf k=%g", s.K)
	}
	return string(s.Method)
}

func (s Spec) k() float64 {
	if s.K == 0 {
		return DefaultK
	}
	return s.K
}

// Fuse combines one query's dense and BM25 results (best first, as the
// retrievers return them) and keeps the best n (n <= 0: all).
//
// Weighted RRF adds w/(k+r) for the document's 1-based rank r in the dense
// list and (1−w)/(k+r) for its rank in the BM25 list; plain RRF weighs both
// lists 1. The convex methods normalise each list's scores over that list
// (min-max: (s−min)/(max−min); z-score: (s−mean)/std, population std), give a
// document absent from a list that list's minimum normalised score (0 under
// min-max), and add w·dense + (1−w)·bm25. A list whose scores are all equal
// normalises to 0 everywhere: it cannot order anything. The union of both
// lists is ranked by fused score, then by smaller document id (the index's
// tie rule). A document repeated within a list counts at its first place.
func (s Spec) Fuse(dense, lexical []metrics.Result, n int) []metrics.Result {
	var out []metrics.Result
	switch s.Method {
	case MethodDense:
		out = append(out, dense...)
	case MethodBM25:
		out = append(out, lexical...)
	case MethodRRF:
		for _, f := range RRF([][]string{metrics.IDs(dense), metrics.IDs(lexical)}, s.k(), n) {
			out = append(out, metrics.Result{DocID: f.ID, Score: f.Score})
		}
		return out
	case MethodWRRF:
		scores := map[string]float64{}
		addRanks(scores, dense, s.Weight, s.k())
		addRanks(scores, lexical, 1-s.Weight, s.k())
		out = ranked(scores)
	case MethodMinMax, MethodZScore:
		norm := minMax
		if s.Method == MethodZScore {
			norm = zScore
		}
		d, dFloor := norm(dense)
		b, bFloor := norm(lexical)
		scores := map[string]float64{}
		for id := range d {
			scores[id] = 0
		}
		for id := range b {
			scores[id] = 0
		}
		for id := range scores {
			dv, ok := d[id]
			if !ok {
				dv = dFloor
			}
			bv, ok := b[id]
			if !ok {
				bv = bFloor
			}
			scores[id] = s.Weight*dv + (1-s.Weight)*bv
		}
		out = ranked(scores)
	}
	if n > 0 && len(out) > n {
		out = out[:n]
	}
	return out
}

// addRanks adds w/(k+rank) for every document of list, first place only.
func addRanks(scores map[string]float64, list []metrics.Result, w, k float64) {
	seen := map[string]bool{}
	for r, x := range list {
		if seen[x.DocID] {
			continue
		}
		seen[x.DocID] = true
		scores[x.DocID] += w / (k + float64(r+1))
	}
}

// ranked orders fused scores by score, then smaller id.
func ranked(scores map[string]float64) []metrics.Result {
	out := make([]metrics.Result, 0, len(scores))
	for id, s := range scores {
		out = append(out, metrics.Result{DocID: id, Score: s})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Score != out[j].Score {
			return out[i].Score > out[j].Score
		}
		return out[i].DocID < out[j].DocID
	})
	return out
}

// firstScores returns each document's first score, in list order.
func firstScores(list []metrics.Result) (ids []string, scores map[string]float64) {
	scores = make(map[string]float64, len(list))
	for _, x := range list {
		if _, dup := scores[x.DocID]; !dup {
			ids = append(ids, x.DocID)
			scores[x.DocID] = x.Score
		}
	}
	return ids, scores
}

// minMax normalises a list to [0, 1]; floor is the minimum, 0.
func minMax(list []metrics.Result) (norm map[string]float64, floor float64) {
	ids, norm := firstScores(list)
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, id := range ids {
		lo, hi = min(lo, norm[id]), max(hi, norm[id])
	}
	for _, id := range ids {
		if hi > lo {
			norm[id] = (norm[id] - lo) / (hi - lo)
		} else {
			norm[id] = 0
		}
	}
	return norm, 0
}

// zScore standardises a list; floor is its smallest standardised score.
// Sums run in list order, so the result does not depend on map order.
func zScore(list []metrics.Result) (norm map[string]float64, floor float64) {
	ids, norm := firstScores(list)
	if len(ids) == 0 {
		return norm, 0
	}
	var mean, sq float64
	lo := math.Inf(1)
	for _, id := range ids {
		mean += norm[id]
		lo = min(lo, norm[id])
	}
	mean /= float64(len(ids))
	for _, id := range ids {
		sq += (norm[id] - mean) * (norm[id] - mean)
	}
	std := math.Sqrt(sq / float64(len(ids)))
	for _, id := range ids {
		if std > 0 {
			norm[id] = (norm[id] - mean) / std
		} else {
			norm[id] = 0
		}
	}
	if std == 0 {
		return norm, 0
	}
	return norm, (lo - mean) / std
}
