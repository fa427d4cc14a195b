//go:build !amd64

package index

// haveSIMD is false: only amd64 has hand-written tiles.
const haveSIMD = false

func scoreRangeSIMD(q []float32, nq int, docs []float32, lo, hi, nd, dim int, out []float32) {
	panic("unreachable: haveSIMD is false")
}
