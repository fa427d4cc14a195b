package bindings

import (
	"math"
	"math/rand/v2"
	"testing"
)

// geluRef is the tanh-approximated GELU in float64.
func geluRef(x float64) float64 {
	return 0.5 * x * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(x+0.044715*x*x*x)))
}

// fusedLossRef is sum(c ⊙ layernorm(gelu(x))) over rows of n, in float64.
func fusedLossRef(x, c []float64, n int, eps float64) float64 {
	var loss float64
	for r := 0; r < len(x)/n; r++ {
		row := make([]float64, n)
		var mean, sq float64
		for i := range row {
			row[i] = geluRef(x[r*n+i])
			mean += row[i]
		}
		mean /= float64(n)
		for i := range row {
			sq += (row[i] - mean) * (row[i] - mean)
		}
		sd := math.Sqrt(sq/float64(n) + eps)
		for i := range row {
			loss += c[r*n+i] * (row[i] - mean) / sd
		}
	}
	return loss
}

// TestFusedKernels runs ragtune's GELU, LayerNorm (ggml_norm's forward,
// given to ragtune's kernel by UseNativeKernels) and the fused GELU and
// LayerNorm backward kernels through BuildBackward and checks the forward values
// against the formula and the gradient against central differences of a
// float64 reference (the GELU's input is one f16 holds, where its f16 copy
// for the backward is exact, and one past f16's range). Rows of 37 leave a vector tail; two threads split
// the rows.
func TestFusedKernels(t *testing.T) {
	const n, rows, eps = 37, 6, 1e-5
	r := rand.New(rand.NewPCG(5, 6))
	x, c := randF32(r, n*rows), randF32(r, n*rows)
	for i := range x {
		// reach GELU's tails on both sides; the backward reads x in f16, so
		// values f16 holds exactly keep the gradient check exact
		x[i] = roundF16(3 * x[i])
	}
	x[40] = 7e4 // past f16's range: the backward's copy is +inf
	ctx, _ := NewContext(64, 256, true)
	defer ctx.Close()
	tx, tc := ctx.NewTensor(TypeF32, n, rows), ctx.NewTensor(TypeF32, n, rows)
	seed := ctx.NewTensor(TypeF32, 1)
	tx.SetParam()
	gelu := ctx.GeluFused(tx).SetOutput()
	loss := ctx.Sum(ctx.Mul(ctx.Norm(gelu, eps), tc))
	loss.SetLoss()
	be, g := backwardGraph(t, ctx, loss, seed, 2)
	gx := g.Grad(tx).SetOutput()
	kernels := map[string]int{}
	for i := range g.NumNodes() {
		kernels[g.Node(i).OpDesc()]++
	}
	for _, k := range []string{"GELU_F32 (ragtune)", "GELU_BACK_F32 (ragtune)", "NORM_F32 (ragtune)", "NORM_BACK_F32 (ragtune)"} {
		if kernels[k] != 1 {
			t.Fatalf("graph has %d nodes running %s, want 1 (ops: %v)", kernels[k], k, kernels)
		}
	}
	for i := range g.NumNodes() {
		// The backward's f16 copy of x is made right after the GELU, so
		// the allocator frees the f32 x with the forward.
		if g.Node(i) == gelu && (i+1 == g.NumNodes() || g.Node(i+1).Type() != TypeF16 || g.Node(i+1).Src(0) != tx) {
			t.Fatalf("node %d after the GELU is not the f16 copy of its input", i+1)
		}
	}
	computeBackward(t, be, g, seed, feed{tx, x}, feed{tc, c})

	for i, got := range gelu.F32() {
		want := geluRef(float64(x[i]))
		if d := math.Abs(float64(got) - want); d > 1e-6*(1+math.Abs(want)) {
			t.Fatalf("gelu(%g) = %g, want %g", x[i], got, want)
		}
	}
	x64, c64 := make([]float64, len(x)), make([]float64, len(c))
	for i := range x {
		x64[i], c64[i] = float64(x[i]), float64(c[i])
	}
	if got, want := float64(loss.F32()[0]), fusedLossRef(x64, c64, n, eps); math.Abs(got-want) > 1e-4*(1+math.Abs(want)) {
		t.Fatalf("loss %g, want %g", got, want)
	}
	if rel := centralDiffError(x64, gx.F32(), 1e-5, func() float64 { return fusedLossRef(x64, c64, n, eps) }); rel > 1e-5 {
		t.Fatalf("relative L2 error of the gradient through the fused kernels %.3g", rel)
	}
}

// roundF16 rounds x to the nearest value f16 holds (ties to even), for x
// in f16's normal range; smaller values become 0.
func roundF16(x float32) float32 {
	if math.Abs(float64(x)) < 1.0/(1<<14) {
		return 0
	}
	b := math.Float32bits(x)
	b += 0xfff + b>>13&1
	return math.Float32frombits(b &^ 0x1fff)
}

// softMaxLossRef is Σ c ⊙ softmax(x·scale + mask) over rows of n in float64,
// the mask [n, rows1, 1, n3] broadcast over dimension 2 of x [n, rows1, n2, n3].
func softMaxLossRef(x, c, mask []float64, n, rows1, n2 int, scale float64) float64 {
	var loss float64
	for r := 0; r < len(x)/n; r++ {
		i1, i3 := r%rows1, r/(rows1*n2)
		m := mask[(i3*rows1+i1)*n:]
		row := make([]float64, n)
		for i := range row {
			row[i] = x[r*n+i]*scale + m[i]
		}
		softmax64(row)
		for i := range row {
			loss += c[r*n+i] * row[i]
		}
	}
	return loss
}

// softmax64 turns a row of logits into probabilities, in place.
func softmax64(row []float64) {
	max := math.Inf(-1)
	for _, v := range row {
		max = math.Max(max, v)
	}
	var sum float64
	for i := range row {
		row[i] = math.Exp(row[i] - max)
		sum += row[i]
	}
	for i := range row {
		row[i] /= sum
	}
}

// TestNativeSoftMax runs attention's scaled, masked softmax through
// BuildBackward on the CPU, where ragtune's kernel takes the forward node,
// and checks it against a float64 reference, masked scores exactly 0, and
// the gradient (ggml's SOFT_MAX_BACK over the kernel's output) against
// central differences. Rows of 37 leave a vector tail; three threads.
func TestNativeSoftMax(t *testing.T) {
	const n, rows1, n2, n3, scale = 37, 5, 3, 2, 0.35
	r := rand.New(rand.NewPCG(13, 14))
	x, c := randF32(r, n*rows1*n2*n3), randF32(r, n*rows1*n2*n3)
	mask := make([]float32, n*rows1*n3)
	for i := range mask {
		if i%n > 30 && i/n%2 == 1 { // padded keys in some rows
			mask[i] = float32(math.Inf(-1))
		}
	}
	ctx, _ := NewContext(64, 256, true)
	defer ctx.Close()
	tx, tc, tm := ctx.NewTensor(TypeF32, n, rows1, n2, n3), ctx.NewTensor(TypeF32, n, rows1, n2, n3), ctx.NewTensor(TypeF32, n, rows1, 1, n3)
	seed := ctx.NewTensor(TypeF32, 1)
	tx.SetParam()
	y := ctx.SoftMaxExt(tx, tm, scale).SetOutput()
	loss := ctx.Sum(ctx.Mul(y, tc)).SetLoss()
	be, g := backwardGraph(t, ctx, loss, seed, 3)
	gx := g.Grad(tx).SetOutput()
	if y.OpDesc() != "SOFT_MAX (ragtune)" || y.Op() != "SOFT_MAX" {
		t.Fatalf("softmax node runs %s (op %s), want ragtune's kernel", y.OpDesc(), y.Op())
	}
	computeBackward(t, be, g, seed, feed{tx, x}, feed{tc, c}, feed{tm, mask})
	x64, c64, m64 := make([]float64, len(x)), make([]float64, len(c)), make([]float64, len(mask))
	for i := range x {
		x64[i], c64[i] = float64(x[i]), float64(c[i])
	}
	for i := range mask {
		m64[i] = float64(mask[i])
	}
	// y itself: the reference with c one-hot would be slow; compare row sums,
	// masked zeros and the loss instead.
	ys := y.F32()
	for row := 0; row < len(ys)/n; row++ {
		var sum float64
		for i := range n {
			v := ys[row*n+i]
			if m64[(row/(rows1*n2)*rows1+row%rows1)*n+i] < 0 && v != 0 {
				t.Fatalf("row %d: masked score %d is %g, want 0", row, i, v)
			}
			sum += float64(v)
		}
		if math.Abs(sum-1) > 1e-6 {
			t.Fatalf("row %d sums to %.9f", row, sum)
		}
	}
	ref := func() float64 { return softMaxLossRef(x64, c64, m64, n, rows1, n2, scale) }
	if got, want := float64(loss.F32()[0]), ref(); math.Abs(got-want) > 1e-5*(1+math.Abs(want)) {
		t.Fatalf("loss %g, want %g", got, want)
	}
	if rel := centralDiffError(x64, gx.F32(), 1e-4, ref); rel > 1e-5 {
		t.Fatalf("relative L2 error of the gradient through the softmax kernel %.3g", rel)
	}
}
