package embmap

import (
	"errors"
	"math"

	"gonum.org/v1/gonum/mat"
)

// PCAResult is a 2-D PCA map.
type PCAResult struct {
	Points []Point
	// Components are the two unit principal directions (rows), each signed
	// so that its largest-magnitude entry is positive (a convention: SVD
	// leaves the sign free).
	Components [2][]float64
	// Explained is the share of the total variance along each component.
	Explained [2]float64
}

// PCA projects the centred vectors onto their top two principal components,
// found by the thin SVD of the centred data matrix. With fewer than two
// independent directions the missing coordinates are 0.
func PCA(vectors [][]float32) (*PCAResult, error) {
	flat, n, dim, err := flatten(vectors)
	if err != nil {
		return nil, err
	}
	mean := make([]float64, dim)
	for i := range n {
		for j, x := range flat[i*dim : (i+1)*dim] {
			mean[j] += float64(x)
		}
	}
	for j := range mean {
		mean[j] /= float64(n)
	}
	centred := mat.NewDense(n, dim, nil)
	for i := range n {
		row := centred.RawRowView(i)
		for j, x := range flat[i*dim : (i+1)*dim] {
			row[j] = float64(x) - mean[j]
		}
	}
	var svd mat.SVD
	if !svd.Factorize(centred, mat.SVDThinV) {
		return nil, errors.New("embmap: PCA: SVD did not converge")
	}
	values := svd.Values(nil)
	var v mat.Dense
	svd.VTo(&v)
	var total float64
	for _, s := range values {
		total += s * s
	}
	res := &PCAResult{Points: make([]Point, n)}
	for c := range 2 {
		comp := make([]float64, dim)
		if c < len(values) && values[c] > 1e-12*values[0] {
			mat.Col(comp, c, &v)
			flipSign(comp)
			if total > 0 {
				res.Explained[c] = values[c] * values[c] / total
			}
		}
		res.Components[c] = comp
	}
	for i := range n {
		row := centred.RawRowView(i)
		res.Points[i] = Point{X: dot64(row, res.Components[0]), Y: dot64(row, res.Components[1])}
	}
	return res, nil
}

// flipSign makes the largest-magnitude entry of v positive.
func flipSign(v []float64) {
	best := 0
	for i, x := range v {
		if math.Abs(x) > math.Abs(v[best]) {
			best = i
		}
	}
	if v[best] < 0 {
		for i := range v {
			v[i] = -v[i]
		}
	}
}

func dot64(a, b []float64) float64 {
	var s float64
	for i, x := range a {
		s += x * b[i]
	}
	return s
}
