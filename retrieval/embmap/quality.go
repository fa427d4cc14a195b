package embmap

import (
	"fmt"
	"sort"
)

// Trustworthiness measures how far a map keeps neighbourhoods (Venna and
// Kaski 2001; the definition scikit-learn uses): with r(i, j) the rank of j
// among i's neighbours in the original space (1 = nearest) and U_i the
// points among i's k nearest in the map that are not among its k nearest in
// the original space,
//
//	T(k) = 1 − 2/(n·k·(2n − 3k − 1)) · Σ_i Σ_{j∈U_i} (r(i, j) − k).
//
// 1 means every map neighbour is a true neighbour. Distances are Euclidean
// in both spaces; ties rank the lower index first. It costs n² distances in
// the original space, so it suits tests and samples, not 100,000 points.
func Trustworthiness(vectors [][]float32, points []Point, k int) (float64, error) {
	flat, n, dim, err := flatten(vectors)
	if err != nil {
		return 0, err
	}
	if len(points) != n {
		return 0, fmt.Errorf("embmap: %d points for %d vectors", len(points), n)
	}
	if k < 1 || 2*n-3*k-1 <= 0 || k >= n {
		return 0, fmt.Errorf("embmap: trustworthiness needs 1 <= k < n/2 (k = %d, n = %d)", k, n)
	}
	rank := make([]int, n)
	order := make([]int, 0, n-1)
	dist := make([]float64, n)
	var penalty float64
	for i := range n {
		xi := flat[i*dim : (i+1)*dim]
		order = order[:0]
		for j := range n {
			if j != i {
				dist[j] = distance(xi, flat[j*dim:(j+1)*dim])
				order = append(order, j)
			}
		}
		sort.SliceStable(order, func(a, b int) bool { return dist[order[a]] < dist[order[b]] })
		for r, j := range order {
			rank[j] = r + 1
		}
		for _, j := range mapNeighbours(points, i, k) {
			if rank[j] > k {
				penalty += float64(rank[j] - k)
			}
		}
	}
	nf, kf := float64(n), float64(k)
	return 1 - 2/(nf*kf*(2*nf-3*kf-1))*penalty, nil
}

// mapNeighbours returns the k nearest points to points[i] in the map
// (itself excluded), ties to the lower index.
func mapNeighbours(points []Point, i, k int) []int {
	idx := make([]int, 0, len(points)-1)
	d := make([]float64, len(points))
	for j, p := range points {
		if j != i {
			dx, dy := p.X-points[i].X, p.Y-points[i].Y
			d[j] = dx*dx + dy*dy
			idx = append(idx, j)
		}
	}
	sort.SliceStable(idx, func(a, b int) bool { return d[idx[a]] < d[idx[b]] })
	return idx[:k]
}
