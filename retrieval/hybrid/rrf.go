// Package hybrid fuses ranked lists from different retrievers (BM25 and a
// dense index): by reciprocal rank fusion (Cormack, Clarke and Büttcher,
// 2009), weighted or not, or by a convex combination of normalised scores
// (fuse.go); and chooses among those on judged queries (choose.go).
package hybrid

import "sort"

// DefaultK is the RRF constant of the original paper, also the common default.
const DefaultK = 60

// Fused is one document of a fused ranking.
type Fused struct {
	ID    string
	Score float64
}

// RRF fuses rankings (document ids, best first) into one:
//
//	score(d) = sum over the rankings that contain d of 1 / (k + rank(d))
//
// with 1-based ranks. Only ranks matter, so retrievers with incomparable
// scores (BM25's unbounded sums, cosines) fuse fairly. The result is ordered
// by score, then by document id ascending (the index's tie rule), and cut to
// n entries (n <= 0: all).
func RRF(rankings [][]string, k float64, n int) []Fused {
	scores := map[string]float64{}
	for _, ranking := range rankings {
		seen := map[string]bool{}
		for r, id := range ranking {
			if seen[id] { // a repeated id counts at its best rank only
				continue
			}
			seen[id] = true
			scores[id] += 1 / (k + float64(r+1))
		}
	}
	out := make([]Fused, 0, len(scores))
	for id, s := range scores {
		out = append(out, Fused{id, s})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Score != out[j].Score {
			return out[i].Score > out[j].Score
		}
		return out[i].ID < out[j].ID
	})
	if n > 0 && len(out) > n {
		out = out[:n]
	}
	return out
}
