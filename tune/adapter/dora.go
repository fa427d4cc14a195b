package adapter

import "math"

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
