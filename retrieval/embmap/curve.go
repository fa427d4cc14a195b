package embmap

import (
	"fmt"
	"math"
)

// fitCurve finds a and b such that 1/(1 + a·x^(2b)) approximates UMAP's
// target membership in the map: 1 up to minDist, then
// exp(−(x − minDist)/spread). The fit is least squares on 300 points of
// [0, 3·spread] from a = b = 1 (umap-learn's recipe), here by
// Levenberg–Marquardt. With the defaults (0.1, 1) it gives a ≈ 1.577,
// b ≈ 0.895.
func fitCurve(spread, minDist float64) (a, b float64, err error) {
	if !(spread > 0) || !(minDist >= 0) || minDist > spread {
		return 0, 0, fmt.Errorf("embmap: want 0 <= min-dist <= spread and spread > 0 (got min-dist %g, spread %g)", minDist, spread)
	}
	const points = 300
	xs, ys := make([]float64, points), make([]float64, points)
	for i := range xs {
		x := 3 * spread * float64(i) / (points - 1)
		xs[i] = x
		ys[i] = 1
		if x >= minDist {
			ys[i] = math.Exp(-(x - minDist) / spread)
		}
	}
	// residuals and the 2x2 normal equations of the Gauss-Newton step.
	eval := func(a, b float64) (cost, jtj00, jtj01, jtj11, jtr0, jtr1 float64) {
		for i, x := range xs {
			var u, lnx float64
			if x > 0 {
				lnx = math.Log(x)
				u = math.Exp(2 * b * lnx)
			}
			den := 1 + a*u
			r := 1/den - ys[i]
			da := -u / (den * den)
			db := -a * u * 2 * lnx / (den * den)
			cost += r * r
			jtj00 += da * da
			jtj01 += da * db
			jtj11 += db * db
			jtr0 += da * r
			jtr1 += db * r
		}
		return
	}
	a, b = 1, 1
	lambda := 1e-3
	cost, j00, j01, j11, r0, r1 := eval(a, b)
	for range 200 {
		m00, m11 := j00*(1+lambda), j11*(1+lambda)
		det := m00*m11 - j01*j01
		if det == 0 {
			break
		}
		da := -(m11*r0 - j01*r1) / det
		db := -(m00*r1 - j01*r0) / det
		na, nbv := a+da, b+db
		if na <= 0 || nbv <= 0 {
			lambda *= 10
			continue
		}
		ncost, n00, n01, n11, nr0, nr1 := eval(na, nbv)
		if ncost < cost {
			done := cost-ncost < 1e-15*(1+cost)
			a, b, cost, j00, j01, j11, r0, r1 = na, nbv, ncost, n00, n01, n11, nr0, nr1
			lambda = math.Max(lambda/10, 1e-12)
			if done {
				break
			}
		} else {
			lambda *= 10
			if lambda > 1e12 {
				break
			}
		}
	}
	return a, b, nil
}
