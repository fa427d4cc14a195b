package embmap

import (
	"math"
	"sort"

	"github.com/ragtune/ragtune/retrieval/index"
	"github.com/ragtune/ragtune/retrieval/topk"
)

// neighbours holds each point's k nearest other points, nearest first:
// index[i*k+r] and dist[i*k+r] (Euclidean).
type neighbours struct {
	k     int
	index []int32
	dist  []float64
}

// knnBlock is how many query rows share one pass over the data (the score
// block is knnBlock*n floats).
const knnBlock = 256

// exactKNN finds every point's k nearest neighbours (itself excluded) by
// brute force over the row-major matrix flat (n x dim). It ranks by
// 2·x·y − |y|², which orders neighbours of x as the Euclidean distance does,
// so the dot products can run on the index's SIMD kernel; ties go to the
// lower row. n*n*dim multiply-adds: fine up to some tens of thousands.
func exactKNN(flat []float32, n, dim, k int, progress func(done, total int)) neighbours {
	norms := make([]float32, n)
	for i := range n {
		var s float32
		for _, x := range flat[i*dim : (i+1)*dim] {
			s += x * x
		}
		norms[i] = s
	}
	nb := neighbours{k: k, index: make([]int32, n*k), dist: make([]float64, n*k)}
	kernel := index.GoKernel{}
	scores := make([]float32, min(knnBlock, n)*n)
	for lo := 0; lo < n; lo += knnBlock {
		hi := min(lo+knnBlock, n)
		kernel.Scores(flat[lo*dim:hi*dim], hi-lo, flat, n, dim, scores)
		for q := lo; q < hi; q++ {
			row := scores[(q-lo)*n : (q-lo+1)*n]
			for j := range row {
				row[j] = 2*row[j] - norms[j]
			}
			row[q] = float32(math.Inf(-1)) // never its own neighbour
			sel := topk.New(k)
			sel.PushScores(0, row)
			hits := sel.Sorted()
			// The float32 products choose the neighbours; their distances are
			// recomputed in float64, where |x|²−2x·y+|y|² would cancel badly.
			x := flat[q*dim : (q+1)*dim]
			dists := make([]float64, len(hits))
			for r, h := range hits {
				dists[r] = distance(x, flat[int(h.Row)*dim:(int(h.Row)+1)*dim])
			}
			order := make([]int, len(hits))
			for r := range order {
				order[r] = r
			}
			sort.SliceStable(order, func(a, b int) bool { return dists[order[a]] < dists[order[b]] })
			for r, o := range order {
				nb.index[q*k+r] = hits[o].Row
				nb.dist[q*k+r] = dists[o]
			}
		}
		if progress != nil {
			progress(hi, n)
		}
	}
	return nb
}

// distance is the Euclidean distance of two vectors, summed in float64.
func distance(a, b []float32) float64 {
	var s float64
	for i, x := range a {
		d := float64(x) - float64(b[i])
		s += d * d
	}
	return math.Sqrt(s)
}
