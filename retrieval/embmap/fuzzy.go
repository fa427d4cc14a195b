package embmap

import (
	"math"
	"sort"
)

// Constants of the smooth kNN distance search, as umap-learn sets them.
const (
	sigmaIterations = 64
	sigmaTolerance  = 1e-5
	// minSigmaScale bounds sigma below by this share of the mean neighbour
	// distance, so that points in very dense spots keep some spread.
	minSigmaScale = 1e-3
)

// smoothDistances finds, for every point, rho (the distance to its nearest
// neighbour at a non-zero distance) and sigma such that
// Σ_j exp(−max(0, d_ij − rho)/sigma) = log2(k+1) over its k neighbours: the
// local metric that gives every point the same fuzzy neighbourhood size
// (k+1 counts the point itself, as umap-learn's n_neighbors does).
func smoothDistances(nb neighbours) (rho, sigma []float64) {
	k := nb.k
	n := len(nb.dist) / k
	rho, sigma = make([]float64, n), make([]float64, n)
	target := math.Log2(float64(k + 1))
	var meanAll float64
	for _, d := range nb.dist {
		meanAll += d
	}
	meanAll /= float64(len(nb.dist))
	for i := range n {
		ds := nb.dist[i*k : (i+1)*k]
		for _, d := range ds {
			if d > 0 {
				rho[i] = d
				break
			}
		}
		lo, hi, mid := 0.0, math.Inf(1), 1.0
		for range sigmaIterations {
			var sum float64
			for _, d := range ds {
				if x := d - rho[i]; x > 0 {
					sum += math.Exp(-x / mid)
				} else {
					sum++
				}
			}
			if math.Abs(sum-target) < sigmaTolerance {
				break
			}
			if sum > target {
				hi = mid
				mid = (lo + hi) / 2
			} else {
				lo = mid
				if math.IsInf(hi, 1) {
					mid *= 2
				} else {
					mid = (lo + hi) / 2
				}
			}
		}
		floor := minSigmaScale * meanAll
		if rho[i] > 0 {
			var m float64
			for _, d := range ds {
				m += d
			}
			floor = minSigmaScale * m / float64(k)
		}
		sigma[i] = math.Max(mid, floor)
	}
	return rho, sigma
}

// edge is one directed edge of the fuzzy graph.
type edge struct {
	from, to int32
	weight   float64
}

// fuzzyGraph is the fuzzy simplicial set of the data: each point's
// membership strengths exp(−max(0, d − rho)/sigma) towards its neighbours,
// made symmetric by the fuzzy union w = a + b − a·b of the two directions.
// Every undirected edge is listed in both directions, in (from, to) order.
func fuzzyGraph(nb neighbours) []edge {
	rho, sigma := smoothDistances(nb)
	k := nb.k
	n := len(nb.dist) / k
	directed := make(map[[2]int32]float64, n*k)
	for i := range n {
		for r := range k {
			j := nb.index[i*k+r]
			w := 1.0
			if x := nb.dist[i*k+r] - rho[i]; x > 0 && sigma[i] > 0 {
				w = math.Exp(-x / sigma[i])
			}
			directed[[2]int32{int32(i), j}] = w
		}
	}
	edges := make([]edge, 0, 2*len(directed))
	for key, a := range directed {
		i, j := key[0], key[1]
		b, mutual := directed[[2]int32{j, i}]
		if mutual && j < i {
			continue // listed when the loop meets (j, i)
		}
		w := a + b - a*b
		edges = append(edges, edge{i, j, w}, edge{j, i, w})
	}
	sort.Slice(edges, func(x, y int) bool {
		if edges[x].from != edges[y].from {
			return edges[x].from < edges[y].from
		}
		return edges[x].to < edges[y].to
	})
	return edges
}
