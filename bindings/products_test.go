package bindings

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// attnShape is an attention-like product chain for the batched kernels:
// d-wide heads, S positions, H heads, B texts. S > 64 splits a slice's
// rows into two units of work, and neither S nor d is a multiple of the
// vector width, so both kernels run their tails.
type attnShape struct{ d, s, h, b int }

// loss is Σ c ⊙ (v·(kᵀq)) per head in float64, with k ne [d, H, S, B]
// (read through a permuted view, as the model reads it), q ne [d, S, H, B],
// v ne [S, d, H, B] and c ne [d, S, H, B].
func (a attnShape) loss(k, q, v, c []float64) float64 {
	var sum float64
	kq := make([]float64, a.s)
	for b := range a.b {
		for h := range a.h {
			for i := range a.s {
				for j := range a.s {
					var dot float64
					for t := range a.d {
						dot += k[((b*a.s+j)*a.h+h)*a.d+t] * q[((b*a.h+h)*a.s+i)*a.d+t]
					}
					kq[j] = dot
				}
				for e := range a.d {
					var out float64
					for j := range a.s {
						out += v[((b*a.h+h)*a.d+e)*a.s+j] * kq[j]
					}
					sum += c[((b*a.h+h)*a.s+i)*a.d+e] * out
				}
			}
		}
	}
	return sum
}

// TestNativeProducts runs the attention products through BuildBackward on
// the CPU, where ragtune's batched kernels take every MUL_MAT and OUT_PROD,
// and checks the loss against a float64 reference and the gradients of k,
// q and v against its central differences. Three threads split the units
// of work unevenly.
func TestNativeProducts(t *testing.T) {
	a := attnShape{d: 20, s: 70, h: 2, b: 2}
	n := a.d * a.s * a.h * a.b
	r := rand.New(rand.NewPCG(9, 10))
	k, q, v, c := randF32(r, n), randF32(r, n), randF32(r, n), randF32(r, n)

	ctx, _ := NewContext(64, 512, true)
	defer ctx.Close()
	// k is a projection's output, [d·H, S·B], seen as heads and permuted
	// (as the model reads it); the output goes back to [d, H, S, B] through
	// a copy. ragtune's kernel writes k's gradient in [d, H, S, B] order
	// itself; the forward keeps its copy, as a forward graph of the same
	// nodes lists it too (below, a forward graph alone loses it).
	tk := ctx.NewTensor(TypeF32, a.d*a.h, a.s*a.b)
	tq := ctx.NewTensor(TypeF32, a.d, a.s, a.h, a.b)
	tv := ctx.NewTensor(TypeF32, a.s, a.d, a.h, a.b)
	tc := ctx.NewTensor(TypeF32, a.d, a.h, a.s, a.b)
	seed := ctx.NewTensor(TypeF32, 1)
	for _, p := range []Tensor{tk, tq, tv} {
		p.SetParam()
	}
	heads := ctx.Reshape(tk, a.d, a.h, a.s, a.b)
	scores := ctx.MulMat(ctx.Permute(heads, [4]int{0, 2, 1, 3}), tq) // [S_k, S_q, H, B]
	out := ctx.Cont(ctx.Permute(ctx.MulMat(tv, scores), [4]int{0, 2, 1, 3}))
	loss := ctx.Sum(ctx.Mul(out, tc)).SetLoss()
	be, g := backwardGraph(t, ctx, loss, seed, 3)
	grads := []Tensor{g.Grad(tk).SetOutput(), g.Grad(tq).SetOutput(), g.Grad(tv).SetOutput()}
	products := 0
	for i := range g.NumNodes() {
		node := g.Node(i)
		if op := node.Op(); op == "MUL_MAT" || op == "OUT_PROD" {
			if !strings.HasSuffix(node.OpDesc(), "(ragtune)") {
				t.Fatalf("node %d: %s of %v by ggml, want ragtune's batched kernel", i, op, node)
			}
			products++
		}
		if node.IsCopy() && !g.InForward(node) {
			t.Errorf("node %d: %s copies %v; k's gradient product should write it in place", i, node.OpDesc(), node)
		}
	}
	if products != 6 { // two forward products, two gradients of each
		t.Fatalf("%d batched products in the graph, want 6", products)
	}
	computeBackward(t, be, g, seed, feed{tk, k}, feed{tq, q}, feed{tv, v}, feed{tc, c})

	ins := [4][]float64{}
	for i, x := range [][]float32{k, q, v, c} {
		ins[i] = make([]float64, n)
		for j := range x {
			ins[i][j] = float64(x[j])
		}
	}
	// c is fed as [d, H, S, B]; the reference reads it as [d, S, H, B].
	for e := range a.d {
		for h := range a.h {
			for i := range a.s {
				for b := range a.b {
					ins[3][((b*a.h+h)*a.s+i)*a.d+e] = float64(c[((b*a.s+i)*a.h+h)*a.d+e])
				}
			}
		}
	}
	ref := func() float64 { return a.loss(ins[0], ins[1], ins[2], ins[3]) }
	if got, want := float64(loss.F32()[0]), ref(); math.Abs(got-want) > 1e-5*math.Sqrt(float64(n*a.s*a.d)) {
		t.Fatalf("loss %g, want %g", got, want)
	}
	// The loss is linear in each single element, so a central difference
	// is its derivative up to rounding; a sample of elements keeps it quick.
	for p, name := range []string{"k", "q", "v"} {
		ad := grads[p].F32()
		var num, den float64
		for range 60 {
			i := r.IntN(n)
			orig := ins[p][i]
			ins[p][i] = orig + 1
			lp := ref()
			ins[p][i] = orig - 1
			lm := ref()
			ins[p][i] = orig
			fd := (lp - lm) / 2
			num += (float64(ad[i]) - fd) * (float64(ad[i]) - fd)
			den += fd * fd
		}
		if rel := math.Sqrt(num / den); !(rel <= 1e-5) {
			t.Errorf("gradient of %s: relative L2 error %.3g against central differences", name, rel)
		}
	}

	// The same forward alone (an embedding graph): the P·V product writes
	// the output in [d, H, S, B] order itself, and the loss is unchanged.
	fctx, _ := NewContext(32, 64, false)
	defer fctx.Close()
	fk, fq := fctx.NewTensor(TypeF32, a.d*a.h, a.s*a.b), fctx.NewTensor(TypeF32, a.d, a.s, a.h, a.b)
	fv, fc := fctx.NewTensor(TypeF32, a.s, a.d, a.h, a.b), fctx.NewTensor(TypeF32, a.d, a.h, a.s, a.b)
	fbuf, err := be.AllocTensors(fctx)
	if err != nil {
		t.Fatal(err)
	}
	defer fbuf.Close()
	fscores := fctx.MulMat(fctx.Permute(fctx.Reshape(fk, a.d, a.h, a.s, a.b), [4]int{0, 2, 1, 3}), fq)
	floss := fctx.Sum(fctx.Mul(fctx.Cont(fctx.Permute(fctx.MulMat(fv, fscores), [4]int{0, 2, 1, 3})), fc)).SetOutput()
	fg, err := fctx.NewGraph(64, false)
	if err == nil {
		err = fg.Expand(floss)
	}
	if err == nil {
		err = fg.UseNativeKernels()
	}
	if err != nil {
		t.Fatal(err)
	}
	for i := range fg.NumNodes() {
		if node := fg.Node(i); node.IsCopy() {
			t.Errorf("forward graph node %d: %s copies %v", i, node.OpDesc(), node)
		}
	}
	alloc := be.NewAllocator()
	defer alloc.Close()
	if err := alloc.Alloc(fg); err != nil {
		t.Fatal(err)
	}
	for _, f := range []feed{{fk, k}, {fq, q}, {fv, v}, {fc, c}} {
		if err := f.t.SetF32(f.v); err != nil {
			t.Fatal(err)
		}
	}
	if err := be.Compute(fg); err != nil {
		t.Fatal(err)
	}
	if got, want := float64(floss.F32()[0]), ref(); math.Abs(got-want) > 1e-5*math.Sqrt(float64(n*a.s*a.d)) {
		t.Fatalf("forward graph's loss %g, want %g", got, want)
	}
}

// productChain is loss = Σ c ⊙ (W2·(W1·x)), W1 ne [in, mid] and W2 ne
// [mid, out] trainable, x ne [in, T] and c ne [out, T] inputs, with its
// backward graph on threads CPU threads.
type productChain struct {
	w1, w2, x, c, seed, loss Tensor
	be                       *Backend
	g                        *Graph
}

func newProductChain(t *testing.T, ctx *Context, in, mid, out, T, threads int) productChain {
	t.Helper()
	p := productChain{w1: ctx.NewTensor(TypeF32, in, mid), w2: ctx.NewTensor(TypeF32, mid, out),
		x: ctx.NewTensor(TypeF32, in, T), c: ctx.NewTensor(TypeF32, out, T), seed: ctx.NewTensor(TypeF32, 1)}
	p.w1.SetParam()
	p.w2.SetParam()
	p.loss = ctx.Sum(ctx.Mul(ctx.MulMat(p.w2, ctx.MulMat(p.w1, p.x)), p.c)).SetLoss()
	p.be, p.g = backwardGraph(t, ctx, p.loss, p.seed, threads)
	return p
}

// TestNativeShortProducts checks the 2-D products over a short reduction
// that ragtune's kernels take (a LoRA adapter's up product and its input
// gradient, rank 16) next to those ggml keeps (reductions of 40 and 70):
// loss = Σ c ⊙ (B·(A·x)) with A ne [40, 16], B ne [16, 24], x ne [40, 70];
// the gradients of A and B against central differences of a float64
// reference (the loss is linear in each element, so they are exact up to
// rounding).
func TestNativeShortProducts(t *testing.T) {
	const in, r, out, T = 40, 16, 24, 70
	rng := rand.New(rand.NewPCG(15, 16))
	a, b, x, c := randF32(rng, in*r), randF32(rng, r*out), randF32(rng, in*T), randF32(rng, out*T)
	ctx, _ := NewContext(64, 256, true)
	defer ctx.Close()
	pc := newProductChain(t, ctx, in, r, out, T, 3)
	g, loss := pc.g, pc.loss
	grads := []Tensor{g.Grad(pc.w1).SetOutput(), g.Grad(pc.w2).SetOutput()}
	ours := 0
	for i := range g.NumNodes() {
		node := g.Node(i)
		if op := node.Op(); (op == "MUL_MAT" || op == "OUT_PROD") && strings.HasSuffix(node.OpDesc(), "(ragtune)") {
			ours++
		}
	}
	if ours != 2 { // B·h forward and h's gradient (a reduction over 24)
		t.Fatalf("%d products by ragtune's kernels, want 2", ours)
	}
	computeBackward(t, pc.be, g, pc.seed, feed{pc.w1, a}, feed{pc.w2, b}, feed{pc.x, x}, feed{pc.c, c})
	var a64, b64 []float64
	for _, v := range a {
		a64 = append(a64, float64(v))
	}
	for _, v := range b {
		b64 = append(b64, float64(v))
	}
	ref := func() float64 {
		var sum float64
		for tt := range T {
			h := make([]float64, r)
			for j := range r {
				for i := range in {
					h[j] += a64[j*in+i] * float64(x[tt*in+i])
				}
			}
			for o := range out {
				var y float64
				for j := range r {
					y += b64[o*r+j] * h[j]
				}
				sum += float64(c[tt*out+o]) * y
			}
		}
		return sum
	}
	if got, want := float64(loss.F32()[0]), ref(); math.Abs(got-want) > 1e-4*(1+math.Abs(want)) {
		t.Fatalf("loss %g, want %g", got, want)
	}
	for p, x64 := range [][]float64{a64, b64} {
		if rel := centralDiffError(x64, grads[p].F32(), 1, ref); rel > 1e-5 {
			t.Errorf("gradient of %s: relative L2 error %.3g against central differences", []string{"A", "B"}[p], rel)
		}
	}
}

// TestRecomputedProbabilities runs attention, loss = Σ c ⊙ (v·softmax(
// kᵀq·scale + mask)), through BuildBackward on the CPU: the backward must
// read probabilities it recomputed, never the forward's (which are then
// freed after P·V), its softmax gradient must run on ragtune's kernel, and
// the gradients of k, q and v must match central differences of a float64
// reference.
func TestRecomputedProbabilities(t *testing.T) {
	const d, S, H, B, scale = 6, 11, 2, 2, 0.4
	n := d * S * H * B
	r := rand.New(rand.NewPCG(17, 18))
	k, q, v, c := randF32(r, n), randF32(r, n), randF32(r, n), randF32(r, n)
	mask := make([]float32, S*S*B)
	for i := range mask {
		if b, key := i/(S*S), i%S; b == 1 && key >= 7 { // text 1 has 7 tokens
			mask[i] = float32(math.Inf(-1))
		}
	}
	ctx, _ := NewContext(64, 512, true)
	defer ctx.Close()
	tk, tq := ctx.NewTensor(TypeF32, d, S, H, B), ctx.NewTensor(TypeF32, d, S, H, B)
	tv, tc := ctx.NewTensor(TypeF32, S, d, H, B), ctx.NewTensor(TypeF32, d, S, H, B)
	tm := ctx.NewTensor(TypeF32, S, S, 1, B)
	seed := ctx.NewTensor(TypeF32, 1)
	for _, p := range []Tensor{tk, tq, tv} {
		p.SetParam()
	}
	probs := ctx.SoftMaxExt(ctx.MulMat(tk, tq), tm, scale) // [S_k, S_q, H, B]
	loss := ctx.Sum(ctx.Mul(ctx.MulMat(tv, probs), tc)).SetLoss()
	be, g := backwardGraph(t, ctx, loss, seed, 3)
	grads := []Tensor{g.Grad(tk).SetOutput(), g.Grad(tq).SetOutput(), g.Grad(tv).SetOutput()}
	softmaxes, backs := 0, 0
	for i := range g.NumNodes() {
		node := g.Node(i)
		switch node.Op() {
		case "SOFT_MAX":
			softmaxes++
		case "SOFT_MAX_BACK":
			backs++
			if node.OpDesc() != "SOFT_MAX_BACK (ragtune)" {
				t.Errorf("softmax gradient runs %s, want ragtune's kernel", node.OpDesc())
			}
		}
		if g.InForward(node) {
			continue
		}
		for j := range 10 { // GGML_MAX_SRC
			if node.Src(j) == probs {
				t.Errorf("backward node %d (%s) reads the forward's probabilities", i, node.OpDesc())
			}
		}
	}
	if softmaxes != 2 || backs != 1 {
		t.Fatalf("%d softmaxes and %d softmax gradients, want 2 (forward, recomputed) and 1", softmaxes, backs)
	}
	computeBackward(t, be, g, seed, feed{tk, k}, feed{tq, q}, feed{tv, v}, feed{tc, c}, feed{tm, mask})

	ins := [4][]float64{}
	for i, x := range [][]float32{k, q, v, c} {
		ins[i] = make([]float64, n)
		for j := range x {
			ins[i][j] = float64(x[j])
		}
	}
	ref := func() float64 {
		kk, qq, vv, cc := ins[0], ins[1], ins[2], ins[3]
		var sum float64
		p := make([]float64, S)
		for b := range B {
			for h := range H {
				at := func(pos int) int { return ((b*H+h)*S + pos) * d }
				for i := range S {
					for j := range S {
						var dot float64
						for e := range d {
							dot += kk[at(j)+e] * qq[at(i)+e]
						}
						p[j] = dot*scale + float64(mask[(b*S+i)*S+j])
					}
					softmax64(p)
					for e := range d {
						var out float64
						for j := range S {
							out += vv[((b*H+h)*d+e)*S+j] * p[j]
						}
						sum += cc[at(i)+e] * out
					}
				}
			}
		}
		return sum
	}
	if got, want := float64(loss.F32()[0]), ref(); math.Abs(got-want) > 1e-5*(1+math.Abs(want)) {
		t.Fatalf("loss %g, want %g", got, want)
	}
	for p, name := range []string{"k", "q", "v"} {
		if rel := centralDiffError(ins[p], grads[p].F32(), 1e-4, ref); rel > 1e-4 {
			t.Errorf("gradient of %s: relative L2 error %.3g against central differences", name, rel)
		}
	}
}

// TestBackwardDropsBypassedViews checks that the backward of a chain of
// products on the CPU lists no transposed view that nothing reads. The
// rewrite of OUT_PROD into MUL_MAT reads a transposed gradient's source
// directly; ggml's allocator frees a tensor only after every view of it in
// the graph was read, so the unread view would keep each layer's gradient
// until the end of the graph (a LoRA step's compute buffer was a tenth
// larger for it). The gradients must still be right.
func TestBackwardDropsBypassedViews(t *testing.T) {
	const in, mid, out, T = 40, 48, 36, 50
	r := rand.New(rand.NewPCG(19, 20))
	w1, w2, x, c := randF32(r, in*mid), randF32(r, mid*out), randF32(r, in*T), randF32(r, out*T)
	ctx, _ := NewContext(64, 256, true)
	defer ctx.Close()
	pc := newProductChain(t, ctx, in, mid, out, T, 2)
	g := pc.g
	g1 := g.Grad(pc.w1).SetOutput()
	read := map[Tensor]bool{}
	for i := range g.NumNodes() {
		for j := range 10 { // GGML_MAX_SRC
			read[g.Node(i).Src(j)] = true
		}
	}
	for i := range g.NumNodes() {
		if n := g.Node(i); n.Op() == "TRANSPOSE" && !read[n] {
			t.Errorf("node %d: a transposed view nothing reads (%v)", i, n)
		}
	}
	computeBackward(t, pc.be, g, pc.seed, feed{pc.w1, w1}, feed{pc.w2, w2}, feed{pc.x, x}, feed{pc.c, c})
	// loss = Σ c ⊙ (W2·W1·x), so dL/dW1[i,m] = Σ_t x[t,i]·(W2ᵀc)[t,m]
	got := g1.F32()
	var num, den float64
	for m := range mid {
		for i := range in {
			var want float64
			for tt := range T {
				var back float64
				for o := range out {
					back += float64(w2[o*mid+m]) * float64(c[tt*out+o])
				}
				want += float64(x[tt*in+i]) * back
			}
			d := float64(got[m*in+i]) - want
			num += d * d
			den += want * want
		}
	}
	if rel := math.Sqrt(num / den); !(rel <= 1e-5) {
		t.Fatalf("gradient of W1: relative L2 error %.3g", rel)
	}
}
