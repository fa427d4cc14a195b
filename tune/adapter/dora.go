package adapter

import (
	"math"
	"runtime"
	"sync"
)

// MergeDoRA folds a DoRA layer into its base weight in place: W becomes
// mag ⊙ (W + s·B·A) / ‖W + s·B·A‖, each row of the [out][in] matrix
// scaled to its magnitude. B is [out][r] and A [r][in], row-major, as in
// Merge. llama.cpp's LoRA adapters have no place for the magnitude, so a
// DoRA run ships this merged weight in a whole model instead.
func MergeDoRA(W, A, B, mag []float32, s float32, in, out, r int) {
	addDelta(W, B, A, s, in, out, r)
	for o := 0; o < out; o++ {
		row := W[o*in : (o+1)*in]
		var ss float64
		for _, x := range row {
			ss += float64(x) * float64(x)
		}
		f := float32(float64(mag[o]) / math.Sqrt(ss))
		for i := range row {
			row[i] *= f
		}
	}
}

// addDelta adds s·(L·R) to W, with L [out][r], R [r][in] and W [out][in],
// all row-major. Each output element is the length-r dot product rounded
// once, then scaled and added, as export-lora's ggml graph does.
func addDelta(W, L, R []float32, s float32, in, out, r int) {
	workers := min(runtime.GOMAXPROCS(0), out)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := make([]float32, in)
			for o := w; o < out; o += workers {
				clear(d)
				for k, l := range L[o*r : (o+1)*r] {
					row := R[k*in : (k+1)*in]
					for i, x := range row {
						d[i] += l * x
					}
				}
				dst := W[o*in : (o+1)*in]
				for i := range dst {
					dst[i] += s * d[i]
				}
			}
		}()
	}
	wg.Wait()
}
