// Package embmap draws 2-D maps of embeddings: PCA (the top two principal
// components) and UMAP (McInnes, Healy and Melville 2018, written here from
// the paper and umap-learn's documented defaults), plus trustworthiness, the
// standard measure of how well a map keeps each point's neighbours.
//
// Everything is deterministic: the same vectors, options and seed give the
// same map on every run and machine (one goroutine draws every random
// number; only the distance products run in parallel, each written once).
package embmap

import (
	"errors"
	"fmt"
	"math"
)

// Point is one point of a 2-D map.
type Point struct {
	X float64 `json:"x"`
	Y float64 `json:"y"`
}

// flatten copies vectors into one row-major float32 matrix, checking that
// they share one length and hold finite values.
func flatten(vectors [][]float32) (flat []float32, n, dim int, err error) {
	n = len(vectors)
	if n == 0 {
		return nil, 0, 0, errors.New("embmap: no vectors")
	}
	dim = len(vectors[0])
	if dim == 0 {
		return nil, 0, 0, errors.New("embmap: vector 0 is empty")
	}
	flat = make([]float32, 0, n*dim)
	for i, v := range vectors {
		if len(v) != dim {
			return nil, 0, 0, fmt.Errorf("embmap: vector %d has %d dimensions, vector 0 has %d", i, len(v), dim)
		}
		for j, x := range v {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				return nil, 0, 0, fmt.Errorf("embmap: vector %d, dimension %d: %v is not finite", i, j, x)
			}
		}
		flat = append(flat, v...)
	}
	return flat, n, dim, nil
}

// Normalize returns unit-length copies of vectors (zero vectors stay zero),
// so that Euclidean neighbours are cosine neighbours.
func Normalize(vectors [][]float32) [][]float32 {
	out := make([][]float32, len(vectors))
	for i, v := range vectors {
		var s float64
		for _, x := range v {
			s += float64(x) * float64(x)
		}
		w := make([]float32, len(v))
		if s > 0 {
			inv := 1 / math.Sqrt(s)
			for j, x := range v {
				w[j] = float32(float64(x) * inv)
			}
		}
		out[i] = w
	}
	return out
}
