package index

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

func randMatrix(rng *rand.Rand, n, dim int) []float32 {
	m := make([]float32, n*dim)
	for i := range m {
		m[i] = float32(rng.NormFloat64())
	}
	return m
}

// checkKernel compares k against a float64 reference on odd shapes that hit
// every tile remainder.
func checkKernel(t *testing.T, k Kernel) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, s := range []struct{ nq, nd, dim int }{
		{1, 1, 1}, {1, 7, 5}, {3, 9, 17}, {4, 2, 8}, {5, 1031, 33}, {9, 600, 384}, {64, 513, 16},
	} {
		q, d := randMatrix(rng, s.nq, s.dim), randMatrix(rng, s.nd, s.dim)
		out := make([]float32, s.nq*s.nd)
		k.Scores(q, s.nq, d, s.nd, s.dim, out)
		for i := 0; i < s.nq; i++ {
			for j := 0; j < s.nd; j++ {
				var want float64
				for x := 0; x < s.dim; x++ {
					want += float64(q[i*s.dim+x]) * float64(d[j*s.dim+x])
				}
				if got := float64(out[i*s.nd+j]); math.Abs(got-want) > 1e-4*math.Sqrt(float64(s.dim))+1e-5*math.Abs(want) {
					t.Fatalf("%+v: out[%d,%d] = %g, want %g", s, i, j, got, want)
				}
			}
		}
	}
}

func TestGoKernel(t *testing.T) {
	checkKernel(t, GoKernel{})
	checkKernel(t, GoKernel{Threads: 3})
	checkKernel(t, GoKernel{Portable: true})
	checkKernel(t, GoKernel{Portable: true, Threads: 3})
}

// BenchmarkKernel reports GFLOP/s (2 flops per multiply-add) of the kernels
// on a block shape the index uses.
func BenchmarkKernel(b *testing.B) {
	const dim, nd = 384, 8192
	rng := rand.New(rand.NewPCG(5, 6))
	docs := randMatrix(rng, nd, dim)
	for _, nq := range []int{1, 64} {
		q := randMatrix(rng, nq, dim)
		out := make([]float32, nq*nd)
		for _, k := range kernelsUnderTest() {
			b.Run(fmt.Sprintf("%s/nq=%d", k.name, nq), func(b *testing.B) {
				for b.Loop() {
					k.k.Scores(q, nq, docs, nd, dim, out)
				}
				b.ReportMetric(2*float64(nq*nd*dim)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

type namedKernel struct {
	name string
	k    Kernel
}

func kernelsUnderTest() []namedKernel {
	return []namedKernel{{"go-simd", GoKernel{}}, {"go-portable", GoKernel{Portable: true}}}
}
