package bindings

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func randF32(r *rand.Rand, n int) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(r.NormFloat64())
	}
	return out
}

// TestMulMatMatchesGo checks ggml's matrix product against a plain loop.
func TestMulMatMatchesGo(t *testing.T) {
	const k, m, n = 40, 3, 5
	r := rand.New(rand.NewPCG(1, 2))
	a, b := randF32(r, k*m), randF32(r, k*n)
	ctx, err := NewContext(16, 64, false)
	if err != nil {
		t.Fatal(err)
	}
	defer ctx.Close()
	ta, tb := ctx.NewTensor(TypeF32, k, m), ctx.NewTensor(TypeF32, k, n)
	y := ctx.MulMat(ta, tb)
	g, err := ctx.NewGraph(16, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Expand(y); err != nil {
		t.Fatal(err)
	}
	be, err := NewCPUBackend(2)
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	alloc := be.NewAllocator()
	defer alloc.Close()
	if err := alloc.Alloc(g); err != nil {
		t.Fatal(err)
	}
	ta.SetF32(a)
	tb.SetF32(b)
	if err := be.Compute(g); err != nil {
		t.Fatal(err)
	}
	got := y.F32()
	for j := 0; j < n; j++ {
		for i := 0; i < m; i++ {
			var want float64
			for p := 0; p < k; p++ {
				want += float64(a[i*k+p]) * float64(b[j*k+p])
			}
			if d := math.Abs(float64(got[j*m+i]) - want); d > 1e-4 {
				t.Fatalf("y[%d,%d] = %v, want %v", i, j, got[j*m+i], want)
			}
		}
	}
}

// TestBadShapesBecomeErrors checks that ops ggml would abort on become Go errors.
func TestBadShapesBecomeErrors(t *testing.T) {
	ctx, err := NewContext(16, 16, false)
	if err != nil {
		t.Fatal(err)
	}
	defer ctx.Close()
	a, b := ctx.NewTensor(TypeF32, 4, 3), ctx.NewTensor(TypeF32, 5, 3)
	y := ctx.Add(ctx.MulMat(a, b), a)
	if !y.IsNil() || ctx.Err() == nil || !strings.Contains(ctx.Err().Error(), "mul_mat") {
		t.Fatalf("want a mul_mat shape error, got %v", ctx.Err())
	}
	if _, err := ctx.NewGraph(8, false); err == nil {
		t.Fatal("graph built after an error")
	}
	ctx2, _ := NewContext(4, 4, false)
	defer ctx2.Close()
	if q := ctx2.NewTensor(TypeQ4_0, 33, 2); !q.IsNil() || ctx2.Err() == nil {
		t.Fatal("q4_0 tensor with a row of 33 accepted")
	}
}

// TestBackwardMatchesFiniteDifferences differentiates sum(softmax(W x)²)
// through ggml's autodiff and compares with central differences.
func TestBackwardMatchesFiniteDifferences(t *testing.T) {
	const k, m, n = 6, 5, 4
	r := rand.New(rand.NewPCG(3, 4))
	w, x := randF32(r, k*m), randF32(r, k*n)
	ctx, _ := NewContext(64, 256, true)
	defer ctx.Close()
	tw, tx := ctx.NewTensor(TypeF32, k, m), ctx.NewTensor(TypeF32, k, n)
	seed := ctx.NewTensor(TypeF32, 1)
	tw.SetParam()
	loss := ctx.Sum(ctx.Sqr(ctx.SoftMaxExt(ctx.MulMat(tw, tx), Tensor{}, 0.7)))
	loss.SetLoss()
	be, _ := NewCPUBackend(1)
	defer be.Close()
	if _, err := be.AllocTensors(ctx); err != nil {
		t.Fatal(err)
	}
	g, _ := ctx.NewGraph(256, true)
	if err := g.Expand(loss); err != nil {
		t.Fatal(err)
	}
	if err := g.BuildBackward(loss, seed); err != nil {
		t.Fatal(err)
	}
	gw := g.Grad(tw).SetOutput()
	alloc := be.NewAllocator()
	defer alloc.Close()
	if err := alloc.Alloc(g); err != nil {
		t.Fatal(err)
	}
	eval := func() float64 {
		tw.SetF32(w)
		tx.SetF32(x)
		seed.SetF32([]float32{1})
		if err := be.Compute(g); err != nil {
			t.Fatal(err)
		}
		return float64(loss.F32()[0])
	}
	eval()
	ad := gw.F32()
	const h = 1e-2
	var num, den float64
	for i := range w {
		orig := w[i]
		w[i] = orig + h
		lp := eval()
		w[i] = orig - h
		lm := eval()
		w[i] = orig
		fd := (lp - lm) / (2 * h)
		num += (float64(ad[i]) - fd) * (float64(ad[i]) - fd)
		den += fd * fd
	}
	if rel := math.Sqrt(num / den); rel > 1e-2 {
		t.Fatalf("relative L2 error of the gradient %.3g", rel)
	}
}

func TestQuantizeRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	src := randF32(r, 4*256)
	for _, typ := range []Type{TypeF16, TypeQ8_0, TypeQ4_0, TypeQ4_K} {
		q, err := Quantize(typ, src, 4, 256)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Dequantize(typ, q, 4, 256)
		if err != nil {
			t.Fatal(err)
		}
		var num, den float64
		for i := range src {
			num += float64((back[i] - src[i]) * (back[i] - src[i]))
			den += float64(src[i] * src[i])
		}
		limit := map[Type]float64{TypeF16: 1e-3, TypeQ8_0: 1e-2, TypeQ4_0: 0.15, TypeQ4_K: 0.1}[typ]
		if rel := math.Sqrt(num / den); rel > limit {
			t.Errorf("%s: relative error %.3g > %.3g", typ, rel, limit)
		}
	}
	if _, err := Quantize(TypeQ4_0, src[:40], 1, 40); err == nil {
		t.Error("row of 40 accepted for q4_0")
	}
}

// TestGraphsShareAnAllocator alternates two graphs of different sizes on one
// allocator: the second grows its buffer, and the first must be placed anew
// (ggml keeps stale pointers into the freed buffer otherwise).
func TestGraphsShareAnAllocator(t *testing.T) {
	be, _ := NewCPUBackend(1)
	defer be.Close()
	alloc := be.NewAllocator()
	defer alloc.Close()
	type g struct {
		ctx  *Context
		gr   *Graph
		x, y Tensor
	}
	build := func(n int) g {
		ctx, _ := NewContext(8, 16, false)
		x := ctx.NewTensor(TypeF32, n).SetInput()
		y := ctx.Scale(ctx.Sqr(x), 2)
		gr, _ := ctx.NewGraph(16, false)
		gr.Expand(y)
		return g{ctx, gr, x, y}
	}
	small, big := build(4), build(1<<20)
	defer small.ctx.Close()
	defer big.ctx.Close()
	for round := 0; round < 3; round++ {
		for _, c := range []g{small, big} {
			if err := alloc.Alloc(c.gr); err != nil {
				t.Fatal(err)
			}
			in := make([]float32, c.x.Nelements())
			for i := range in {
				in[i] = float32(i%7) - 3
			}
			c.x.SetF32(in)
			if err := be.Compute(c.gr); err != nil {
				t.Fatal(err)
			}
			out := c.y.F32()
			for i, v := range out {
				if v != 2*in[i]*in[i] {
					t.Fatalf("round %d, size %d: y[%d] = %v, want %v", round, len(in), i, v, 2*in[i]*in[i])
				}
			}
		}
	}
}

// TestBackwardProductsAreExact checks the gradients of a matrix product
// with exact closed forms, for an f32 and a quantized frozen weight and a
// batched operand: loss = Σ C ⊙ (W·X), so ∂loss/∂X = Wᵀ-contracted C and
// ∂loss/∂W = X-contracted C. BuildBackward computes them as MUL_MATs of
// transposed copies instead of ggml's OUT_PROD; no OUT_PROD may be left.
func TestBackwardProductsAreExact(t *testing.T) {
	const k, m, n, batch = 64, 24, 10, 3
	for _, typ := range []Type{TypeF32, TypeQ8_0} {
		r := rand.New(rand.NewPCG(7, 8))
		w, x, c := randF32(r, k*m), randF32(r, k*n*batch), randF32(r, m*n*batch)
		wq := w
		var wBytes []byte
		if typ != TypeF32 {
			var err error
			if wBytes, err = Quantize(typ, w, m, k); err != nil {
				t.Fatal(err)
			}
			if wq, err = Dequantize(typ, wBytes, m, k); err != nil {
				t.Fatal(err)
			}
		}
		ctx, _ := NewContext(64, 256, true)
		defer ctx.Close()
		tw, tx, tc := ctx.NewTensor(typ, k, m), ctx.NewTensor(TypeF32, k, n, batch), ctx.NewTensor(TypeF32, m, n, batch)
		seed := ctx.NewTensor(TypeF32, 1)
		tx.SetParam()
		if typ == TypeF32 {
			tw.SetParam() // a quantized weight stays frozen, as in QLoRA
		}
		loss := ctx.Sum(ctx.Mul(ctx.MulMat(tw, tx), tc)).SetLoss()
		be, _ := NewCPUBackend(2)
		defer be.Close()
		if _, err := be.AllocTensors(ctx); err != nil {
			t.Fatal(err)
		}
		g, _ := ctx.NewGraph(256, true)
		if err := g.Expand(loss); err != nil {
			t.Fatal(err)
		}
		if err := g.BuildBackward(loss, seed); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < g.NumNodes(); i++ {
			if op := g.Node(i).Op(); op == "OUT_PROD" {
				t.Fatalf("%v: OUT_PROD node %d left in the backward graph", typ, i)
			}
		}
		gx := g.Grad(tx).SetOutput()
		var gw Tensor
		if typ == TypeF32 {
			gw = g.Grad(tw).SetOutput()
		}
		alloc := be.NewAllocator()
		defer alloc.Close()
		if err := alloc.Alloc(g); err != nil {
			t.Fatal(err)
		}
		if typ == TypeF32 {
			tw.SetF32(w)
		} else {
			tw.SetBytes(wBytes)
		}
		tx.SetF32(x)
		tc.SetF32(c)
		seed.SetF32([]float32{1})
		if err := be.Compute(g); err != nil {
			t.Fatal(err)
		}
		near := func(what string, got float32, want float64) {
			if math.Abs(float64(got)-want) > 1e-3*(1+math.Abs(want)) {
				t.Fatalf("%v: %s = %v, want %v", typ, what, got, want)
			}
		}
		dx := gx.F32()
		for b := 0; b < batch; b++ {
			for j := 0; j < n; j++ {
				for p := 0; p < k; p++ {
					var want float64
					for i := 0; i < m; i++ {
						want += float64(wq[i*k+p]) * float64(c[(b*n+j)*m+i])
					}
					near("dX", dx[(b*n+j)*k+p], want)
				}
			}
		}
		if typ != TypeF32 {
			continue
		}
		dw := gw.F32()
		for i := 0; i < m; i++ {
			for p := 0; p < k; p++ {
				var want float64
				for b := 0; b < batch; b++ {
					for j := 0; j < n; j++ {
						want += float64(x[(b*n+j)*k+p]) * float64(c[(b*n+j)*m+i])
					}
				}
				near("dW", dw[i*k+p], want)
			}
		}
	}
}
