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

// centralDiffError is the relative L2 error of grad against the central
// differences, h apart, of loss over every element of x; +Inf when either
// is not finite, so a NaN gradient fails every tolerance.
func centralDiffError(x []float64, grad []float32, h float64, loss func() float64) float64 {
	var num, den float64
	for i := range x {
		orig := x[i]
		x[i] = orig + h
		lp := loss()
		x[i] = orig - h
		lm := loss()
		x[i] = orig
		fd := (lp - lm) / (2 * h)
		num += (float64(grad[i]) - fd) * (float64(grad[i]) - fd)
		den += fd * fd
	}
	if rel := math.Sqrt(num / den); !math.IsNaN(rel) {
		return rel
	}
	return math.Inf(1)
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

// backwardGraph gives ctx's tensors backend memory and builds the graph of
// loss with its backward pass (seeded by seed) on a CPU backend.
func backwardGraph(t *testing.T, ctx *Context, loss, seed Tensor, threads int) (*Backend, *Graph) {
	t.Helper()
	be, err := NewCPUBackend(threads)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(be.Close)
	buf, err := be.AllocTensors(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(buf.Close)
	g, err := ctx.NewGraph(256, true)
	if err == nil {
		err = g.Expand(loss)
	}
	if err == nil {
		err = g.BuildBackward(loss, seed, be)
	}
	if err != nil {
		t.Fatal(err)
	}
	return be, g
}

// feed is a tensor and the values a test computes it with.
type feed struct {
	t Tensor
	v []float32
}

// computeBackward places a graph from backwardGraph with an allocator of
// its own (closed when the test ends), uploads the feeds and the loss seed
// 1, and computes it.
func computeBackward(t *testing.T, be *Backend, g *Graph, seed Tensor, feeds ...feed) {
	t.Helper()
	alloc := be.NewAllocator()
	t.Cleanup(alloc.Close)
	if err := alloc.Alloc(g); err != nil {
		t.Fatal(err)
	}
	for _, f := range append(feeds, feed{seed, []float32{1}}) {
		if err := f.t.SetF32(f.v); err != nil {
			t.Fatal(err)
		}
	}
	if err := be.Compute(g); err != nil {
		t.Fatal(err)
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
	be, g := backwardGraph(t, ctx, loss, seed, 1)
	gw := g.Grad(tw).SetOutput()
	alloc := be.NewAllocator()
	defer alloc.Close()
	if err := alloc.Alloc(g); err != nil {
		t.Fatal(err)
	}
	w64 := make([]float64, len(w))
	for i := range w {
		w64[i] = float64(w[i])
	}
	eval := func() float64 {
		for i := range w {
			w[i] = float32(w64[i])
		}
		tw.SetF32(w)
		tx.SetF32(x)
		seed.SetF32([]float32{1})
		if err := be.Compute(g); err != nil {
			t.Fatal(err)
		}
		return float64(loss.F32()[0])
	}
	eval()
	if rel := centralDiffError(w64, gw.F32(), 1e-2, eval); rel > 1e-2 {
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
		be, g := backwardGraph(t, ctx, loss, seed, 2)
		for i := 0; i < g.NumNodes(); i++ {
			if op := g.Node(i).OpDesc(); op == "OUT_PROD" { // ggml's, not ragtune's batched kernel
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

// TestTransposeF32 checks ragtune's transpose kernel against Go, for f32
// (a 4-D permuted view with free strides, sizes that are not multiples of
// its tiles) and for quantized rows, which it dequantizes on the way.
func TestTransposeF32(t *testing.T) {
	cases := []struct {
		typ            Type
		cols, rows, n2 int
		permuted       bool
	}{
		{TypeF32, 300, 37, 3, false},
		{TypeF32, 40, 19, 5, true},
		{TypeQ8_0, 96, 33, 1, false},
		{TypeQ4_0, 64, 17, 2, false},
		{TypeQ4_K, 512, 20, 1, false},
	}
	for _, c := range cases {
		r := rand.New(rand.NewPCG(9, uint64(c.cols)))
		vals := randF32(r, c.cols*c.rows*c.n2)
		ctx, _ := NewContext(16, 16, false)
		defer ctx.Close()
		// src is [cols, rows, n2]; the permuted case stores it as
		// [cols, n2, rows] and permutes dimensions 1 and 2.
		var store Tensor
		if c.permuted {
			store = ctx.NewTensor(c.typ, c.cols, c.n2, c.rows)
		} else {
			store = ctx.NewTensor(c.typ, c.cols, c.rows, c.n2)
		}
		src := store
		if c.permuted {
			src = ctx.Permute(store, [4]int{0, 2, 1, 3})
		}
		out := ctx.TransposeF32(src).SetOutput()
		g, err := ctx.NewGraph(16, false)
		if err == nil {
			err = g.Expand(out)
		}
		if err != nil {
			t.Fatal(err)
		}
		be, _ := NewCPUBackend(2)
		defer be.Close()
		buf, err := be.AllocTensors(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer buf.Close()
		// at(col, row, i2) is the value the source holds there.
		at := func(col, row, i2 int) float32 { return vals[(i2*c.rows+row)*c.cols+col] }
		if c.permuted {
			at = func(col, row, i2 int) float32 { return vals[(row*c.n2+i2)*c.cols+col] }
		}
		if c.typ == TypeF32 {
			store.SetF32(vals)
		} else {
			// The kernel must reproduce ggml's own dequantization.
			q, err := Quantize(c.typ, vals, c.rows*c.n2, c.cols)
			if err != nil {
				t.Fatal(err)
			}
			store.SetBytes(q)
			if vals, err = Dequantize(c.typ, q, c.rows*c.n2, c.cols); err != nil {
				t.Fatal(err)
			}
		}
		if err := be.Compute(g); err != nil {
			t.Fatal(err)
		}
		got := out.F32()
		if ne := out.Ne(); ne != [4]int{c.rows, c.cols, c.n2, 1} {
			t.Fatalf("%v: shape %v", c.typ, ne)
		}
		for i2 := 0; i2 < c.n2; i2++ {
			for col := 0; col < c.cols; col++ {
				for row := 0; row < c.rows; row++ {
					if g, w := got[(i2*c.cols+col)*c.rows+row], at(col, row, i2); g != w {
						t.Fatalf("%v %dx%dx%d: out[%d,%d,%d] = %v, want %v", c.typ, c.cols, c.rows, c.n2, row, col, i2, g, w)
					}
				}
			}
		}
	}
}

// TestExpandCountsOnlyNewNodes expands one graph from several roots that
// share a long chain, as the training step appends an accumulation per
// parameter to its backward graph: each expansion adds one node (and a
// leaf), and a graph with room for the chain, those and two more must take
// them all (counting the chain again would refuse the first). Expanding
// past the room is still refused.
func TestExpandCountsOnlyNewNodes(t *testing.T) {
	const chain, roots = 100, 20
	ctx, err := NewContext(chain+3*roots+8, 256, false)
	if err != nil {
		t.Fatal(err)
	}
	defer ctx.Close()
	x := ctx.NewTensor(TypeF32, 4)
	for range chain {
		x = ctx.Scale(x, 0.5)
	}
	g, err := ctx.NewGraph(chain+roots+2, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Expand(x); err != nil {
		t.Fatal(err)
	}
	for i := range roots {
		c := ctx.NewTensor(TypeF32, 4)
		if err := g.Expand(ctx.Add(x, c)); err != nil {
			t.Fatalf("root %d of %d: %v", i+1, roots, err)
		}
	}
	if got, want := g.NumNodes(), chain+roots; got != want {
		t.Errorf("%d nodes, want %d", got, want)
	}
	big := ctx.Scale(ctx.Scale(ctx.Scale(x, 2), 2), 2)
	if err := g.Expand(ctx.Add(big, x)); err == nil || !strings.Contains(err.Error(), "too small") {
		t.Errorf("expanding past the graph's room: %v, want too small", err)
	}
}
