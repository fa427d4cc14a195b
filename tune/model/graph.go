package model

import (
	"fmt"
	"math"

	"github.com/ragtune/ragtune/bindings"
)

// Shapes in this file use ggml order, contiguous dimension first:
// E hidden size, S padded sequence length, B sequences in the batch,
// H heads, Hkv key/value heads, d head size, F feed-forward size.

// Inputs are the per-batch tensors a graph reads; upload them with Set
// before every compute (the allocator may reuse their memory). A graph of
// one segment (see EmbedLayer) makes only the inputs it reads; the others
// stay nil.
type Inputs struct {
	S, B   int
	Tokens bindings.Tensor // I32 [S·B]
	Pos    bindings.Tensor // I32 [S·B]: each token's position in its sequence
	Mask   bindings.Tensor // F32 [S, S, 1, B]: 0 where a query may see a key, -inf elsewhere
	// MaskSWA is Mask for gemma-embedding's sliding-window layers.
	MaskSWA bindings.Tensor
	Pool    bindings.Tensor // F32 [S, 1, B]: pooling weights per token
	// Dropout masks of LoRA inputs (trainable graphs only), each [in, S·B]:
	// 0 or 1/(1-p), drawn by the trainer before every compute.
	Dropout []DropoutMask
}

// DropoutMask is the input mask of one LoRA layer's dropout.
type DropoutMask struct {
	T bindings.Tensor
	P float32
}

// BuildOptions select the graph's form.
type BuildOptions struct {
	// Trainable builds LayerNorm and GELU from ops that have a backward pass
	// in this ggml, instead of ggml_norm and ggml_gelu (same function; the
	// inference forms match llama.cpp bit for bit).
	Trainable bool
	// Fused, with Trainable, builds LayerNorm as ggml_norm and GELU as
	// ragtune's kernel, each one op whose backward is one fused CPU kernel
	// (bindings.Graph.BuildBackward), instead of compositions of seven and
	// five ops: fewer passes over the activations and fewer of them kept
	// for the backward pass. For graphs that run on the CPU.
	Fused bool
	// Normalize L2-normalises the pooled vectors inside the graph.
	Normalize bool
	// SkipAdapters builds the base model alone, ignoring m.Adapters
	// (documents under query-side-only adaptation).
	SkipAdapters bool
}

// Embed builds the graph from token ids to pooled embeddings [E, B].
func (m *Model) Embed(ctx *bindings.Context, S, B int, opts BuildOptions) (*Inputs, bindings.Tensor) {
	b := m.newBuilder(ctx, S, B, opts)
	h := b.input()
	for l := range m.Layers {
		h = b.layer(l, h)
	}
	return b.in, b.output(h)
}

// The three segments below compose to Embed; training with recomputation
// builds one graph per segment and keeps only the hidden states between
// them. Hidden states are [E, S·B].

// EmbedInput builds the graph from token ids to the first layer's input.
func (m *Model) EmbedInput(ctx *bindings.Context, S, B int, opts BuildOptions) (*Inputs, bindings.Tensor) {
	b := m.newBuilder(ctx, S, B, opts)
	return b.in, b.input()
}

// EmbedLayer builds transformer block l over hidden states x.
func (m *Model) EmbedLayer(ctx *bindings.Context, S, B, l int, x bindings.Tensor, opts BuildOptions) (*Inputs, bindings.Tensor) {
	b := m.newBuilder(ctx, S, B, opts)
	return b.in, b.layer(l, x)
}

// EmbedOutput builds the graph from the last block's hidden states to the
// pooled embeddings [E, B].
func (m *Model) EmbedOutput(ctx *bindings.Context, S, B int, x bindings.Tensor, opts BuildOptions) (*Inputs, bindings.Tensor) {
	b := m.newBuilder(ctx, S, B, opts)
	return b.in, b.output(x)
}

func (m *Model) newBuilder(ctx *bindings.Context, S, B int, opts BuildOptions) *builder {
	return &builder{ctx: ctx, m: m, opts: opts, S: S, B: B, in: &Inputs{S: S, B: B}}
}

// The inputs, made on first use.

func (b *builder) tokens() bindings.Tensor {
	if b.in.Tokens.IsNil() {
		b.in.Tokens = b.ctx.NewTensor(bindings.TypeI32, b.S*b.B).SetName("tokens").SetInput()
	}
	return b.in.Tokens
}

func (b *builder) positions() bindings.Tensor {
	if b.in.Pos.IsNil() {
		b.in.Pos = b.ctx.NewTensor(bindings.TypeI32, b.S*b.B).SetName("positions").SetInput()
	}
	return b.in.Pos
}

func (b *builder) mask() bindings.Tensor {
	if b.in.Mask.IsNil() {
		b.in.Mask = b.ctx.NewTensor(bindings.TypeF32, b.S, b.S, 1, b.B).SetName("attn_mask").SetInput()
	}
	return b.in.Mask
}

func (b *builder) poolWeights() bindings.Tensor {
	if b.in.Pool.IsNil() {
		b.in.Pool = b.ctx.NewTensor(bindings.TypeF32, b.S, 1, b.B).SetName("pool_weights").SetInput()
	}
	return b.in.Pool
}

// input embeds the tokens: for bert with token-type and position
// embeddings and LayerNorm (nomic-bert: no position table), for the
// decoders the token embeddings alone.
func (b *builder) input() bindings.Tensor {
	ctx, m := b.ctx, b.m
	x := ctx.GetRows(m.TokEmbd, b.tokens()) // [E, S·B]
	if m.Arch == Gemma {
		return ctx.Scale(x, float32(math.Sqrt(float64(m.Dim))))
	}
	if !m.Arch.postNorm() {
		return x
	}
	if !m.TypeEmbd.IsNil() {
		// llama.cpp hard-wires token type 0 for every token.
		row0 := ctx.View(m.TypeEmbd, []int{m.Dim}, nil, 0)
		x = ctx.Add(x, row0)
	}
	if !m.PosEmbd.IsNil() {
		x = ctx.Add(x, ctx.GetRows(m.PosEmbd, b.positions())) // [E, S·B]
	}
	return b.layerNorm(m.EmbNorm, x, m.Eps)
}

func (b *builder) layer(l int, x bindings.Tensor) bindings.Tensor {
	switch b.m.Arch {
	case Bert:
		return b.bertLayer(b.m.Layers[l], x)
	case Qwen3:
		return b.qwen3Layer(b.m.Layers[l], x)
	case NomicBert:
		return b.nomicLayer(b.m.Layers[l], x)
	case Gemma:
		return b.gemmaLayer(l, x)
	}
	return b.llamaLayer(b.m.Layers[l], x)
}

// output applies the final norm of the families that have one, pools per
// sequence, then applies gemma-embedding's dense projections.
func (b *builder) output(h bindings.Tensor) bindings.Tensor {
	ctx, m := b.ctx, b.m
	if m.Arch.finalNorm() {
		h = b.rmsNorm(m.OutNorm, h)
	}
	// Pooling as a batched product: [S, E, B] x [S, 1, B] -> [E, 1, B]. Its
	// backward stays contiguous, unlike mul + permute + sum_rows.
	hT := ctx.Cont(ctx.Permute(ctx.Reshape(h, m.Dim, b.S, b.B), [4]int{1, 0, 2, 3}))
	pooled := ctx.Reshape(ctx.MulMat(hT, b.poolWeights()), m.Dim, b.B)
	if !m.Dense2.IsNil() {
		pooled = ctx.MulMat(m.Dense3, ctx.MulMat(m.Dense2, pooled))
	}
	if b.opts.Normalize {
		pooled = L2Normalize(ctx, pooled)
	}
	return pooled.SetName("embeddings")
}

// L2Normalize scales each column of x [E, N] to unit length (ggml has no
// backward for its l2_norm: rms_norm/√E is the same function).
func L2Normalize(ctx *bindings.Context, x bindings.Tensor) bindings.Tensor {
	return ctx.Scale(ctx.RMSNorm(x, 1e-12), float32(1/math.Sqrt(float64(x.Ne()[0]))))
}

type builder struct {
	ctx  *bindings.Context
	m    *Model
	opts BuildOptions
	S, B int
	in   *Inputs
}

// linear is W·x + b, plus Scale·B·(A·x) when the layer carries a LoRA pair.
func (b *builder) linear(l Linear, x bindings.Tensor) bindings.Tensor {
	y := b.ctx.MulMat(l.W, x)
	if lora, ok := b.m.Adapters[l.Name]; ok && !b.opts.SkipAdapters {
		xa := x
		if b.opts.Trainable && lora.Dropout > 0 {
			mask := b.ctx.NewTensor(bindings.TypeF32, x.Ne()[0], x.Ne()[1]).SetInput()
			b.in.Dropout = append(b.in.Dropout, DropoutMask{T: mask, P: lora.Dropout})
			xa = b.ctx.Mul(x, mask)
		}
		delta := b.ctx.MulMat(lora.B, b.ctx.MulMat(lora.A, xa))
		y = b.ctx.Add(y, b.ctx.Scale(delta, lora.Scale))
		if !lora.Magnitude.IsNil() {
			y = b.ctx.Mul(y, b.doraScale(l.W, lora))
		}
	}
	if !l.B.IsNil() {
		y = b.ctx.Add(y, l.B)
	}
	return y
}

// doraScale is DoRA's m / ‖W + s·BA‖ per output unit, as [out, 1] to
// broadcast over tokens: (W + s·BA)·x scaled by it is DoRA's layer. The
// norm is built from sqr, sum_rows and sqrt, which have backward passes,
// and gets its gradient (the DoRA paper's cheaper variant detaches it).
func (b *builder) doraScale(W bindings.Tensor, lora *LoRA) bindings.Tensor {
	ctx := b.ctx
	out := W.Ne()[1]
	// BA as an [in, out] tensor like W: mul_mat(Aᵀ [r, in], B [r, out]).
	// The no-op reshape matters: its backward makes the transposed gradient
	// contiguous before it is added to A's other one (ggml's add needs that).
	a := ctx.Reshape(lora.A, lora.A.Ne()[0], lora.A.Ne()[1])
	ba := ctx.MulMat(ctx.Cont(ctx.Transpose(a)), lora.B)
	merged := ctx.Add(W, ctx.Scale(ba, lora.Scale))
	norm := ctx.Sqrt(ctx.SumRows(ctx.Sqr(merged))) // [1, out]
	return ctx.Reshape(ctx.Div(lora.Magnitude, ctx.Reshape(norm, out)), out, 1)
}

// layerNorm normalises x [E, T] over E and applies gain and bias.
func (b *builder) layerNorm(n Norm, x bindings.Tensor, eps float32) bindings.Tensor {
	var y bindings.Tensor
	if b.opts.Trainable && !b.opts.Fused {
		// x - mean(x), with the mean repeated explicitly: sub's backward does
		// not reduce a broadcast operand. Then rms_norm of a centred vector
		// is exactly LayerNorm.
		mean := b.ctx.Scale(b.ctx.SumRows(x), -1/float32(x.Ne()[0]))
		y = b.ctx.RMSNorm(b.ctx.Add(x, b.ctx.Repeat(mean, x)), eps)
	} else {
		y = b.ctx.Norm(x, eps)
	}
	y = b.ctx.Mul(y, n.W)
	if !n.B.IsNil() {
		y = b.ctx.Add(y, n.B)
	}
	return y
}

// gelu is the tanh approximation bert uses in llama.cpp. The trainable form
// is the same function as x·σ(2u), u = √(2/π)(x + 0.044715x³), written
// with ops that have a backward pass in this ggml (silu's is fused).
func (b *builder) gelu(x bindings.Tensor) bindings.Tensor {
	switch {
	case !b.opts.Trainable:
		return b.ctx.Gelu(x)
	case b.opts.Fused:
		return b.ctx.GeluFused(x)
	}
	// 2u = x·d with d = 2c(1 + 0.044715x²) ≥ 2c > 0, so x·σ(2u) = silu(x·d)/d.
	c := float32(math.Sqrt(2 / math.Pi))
	d := b.ctx.ScaleBias(b.ctx.Sqr(x), 2*c*0.044715, 2*c)
	return b.ctx.Div(b.ctx.Silu(b.ctx.Mul(x, d)), d)
}

// attention runs multi-head attention per sequence over the padded batch:
// q [d, H, S, B], k and v [d, Hkv, S, B] -> [H·d, S·B].
func (b *builder) attention(q, k, v bindings.Tensor, mask bindings.Tensor) bindings.Tensor {
	ctx, d := b.ctx, b.m.HeadDim()
	H := q.Ne()[1]
	if Hkv := k.Ne()[1]; Hkv != H && b.opts.Trainable {
		// ggml's mul_mat backward cannot reduce a broadcast operand that
		// also has a batch dimension, so training expands the kv heads:
		// query head h reads kv head h/(H/Hkv), as the broadcast does.
		k, v = b.expandHeads(k, H), b.expandHeads(v, H)
	}
	q = ctx.Permute(q, [4]int{0, 2, 1, 3}) // [d, S, H, B]
	// A contiguous q lets ggml's CPU matmul take its tiled sgemm path
	// instead of one dot product per score; the copy costs far less.
	q = ctx.Cont(q)
	k = ctx.Permute(k, [4]int{0, 2, 1, 3}) // [d, S, Hkv, B]
	// scores [S_k, S_q, H, B]; ggml broadcasts the kv heads over query heads
	kq := ctx.MulMat(k, q)
	kq = ctx.SoftMaxExt(kq, mask, float32(1/math.Sqrt(float64(d))))
	vT := ctx.Cont(ctx.Permute(v, [4]int{1, 2, 0, 3})) // [S, d, Hkv, B]
	out := ctx.MulMat(vT, kq)                          // [d, S_q, H, B]
	out = ctx.Cont(ctx.Permute(out, [4]int{0, 2, 1, 3}))
	return ctx.Reshape(out, d*H, b.S*b.B)
}

// expandHeads turns x [d, Hkv, S, B] into [d, H, S, B], each kv head
// repeated H/Hkv times in a row.
func (b *builder) expandHeads(x bindings.Tensor, H int) bindings.Tensor {
	ne := x.Ne()
	d, hkv := ne[0], ne[1]
	x = b.ctx.Reshape(b.ctx.Cont(x), d, 1, hkv, b.S*b.B)
	x = b.ctx.Repeat4D(x, d, H/hkv, hkv, b.S*b.B)
	return b.ctx.Reshape(x, d, H, b.S, b.B)
}

func (b *builder) heads(x bindings.Tensor, n int) bindings.Tensor {
	return b.ctx.Reshape(x, b.m.HeadDim(), n, b.S, b.B)
}

// bertLayer is a post-norm encoder block with non-causal attention.
func (b *builder) bertLayer(l Layer, x bindings.Tensor) bindings.Tensor {
	ctx, m := b.ctx, b.m
	q, k, v := b.qkv(l, x)
	a := b.linear(l.O, b.attention(q, k, v, b.mask()))
	h := b.layerNorm(l.AttnNorm, ctx.Add(a, x), m.Eps)
	f := b.linear(l.Down, b.gelu(b.linear(l.Up, h)))
	return b.layerNorm(l.FFNNorm, ctx.Add(f, h), m.Eps)
}

// llamaLayer is a pre-RMSNorm causal decoder block with rotary positions,
// GQA and SwiGLU.
func (b *builder) llamaLayer(l Layer, x bindings.Tensor) bindings.Tensor {
	ctx, m := b.ctx, b.m
	rope := func(t bindings.Tensor, n int) bindings.Tensor {
		t4 := b.heads(t, n)
		return ctx.RopeNorm(t4, b.positions(), m.HeadDim(), m.RopeBase, m.Ctx)
	}
	n := b.rmsNorm(l.AttnNorm, x)
	q := rope(b.linear(l.Q, n), m.Heads)
	k := rope(b.linear(l.K, n), m.KVHeads)
	v := b.heads(b.linear(l.V, n), m.KVHeads)
	h := ctx.Add(x, b.linear(l.O, b.attention(q, k, v, b.mask())))
	g := b.rmsNorm(l.FFNNorm, h)
	f := b.linear(l.Down, ctx.SwigluSplit(b.linear(l.Gate, g), b.linear(l.Up, g)))
	return ctx.Add(h, f)
}

func (b *builder) rmsNorm(n Norm, x bindings.Tensor) bindings.Tensor {
	return b.ctx.Mul(b.ctx.RMSNorm(x, b.m.Eps), n.W)
}

// Set uploads a batch: ids holds B sequences (each at most S tokens) that
// are right-padded with pad. Only the inputs the graph made are written.
func (in *Inputs) Set(m *Model, ids [][]int32, pad int32) error {
	if len(ids) != in.B {
		return fmt.Errorf("batch has %d sequences, graph expects %d", len(ids), in.B)
	}
	S := in.S
	for s, seq := range ids {
		if n := len(seq); n == 0 || n > S {
			return fmt.Errorf("sequence %d has %d tokens; the graph takes 1 to %d", s, n, S)
		}
	}
	if !in.Tokens.IsNil() {
		tok := make([]int32, S*in.B)
		for s, seq := range ids {
			for i := 0; i < S; i++ {
				if i < len(seq) {
					tok[s*S+i] = seq[i]
				} else {
					tok[s*S+i] = pad
				}
			}
		}
		if err := in.Tokens.SetI32(tok); err != nil {
			return err
		}
	}
	if !in.Pos.IsNil() {
		pos := make([]int32, S*in.B)
		for i := range pos {
			pos[i] = int32(i % S)
		}
		if err := in.Pos.SetI32(pos); err != nil {
			return err
		}
	}
	if !in.Mask.IsNil() {
		mask := make([]float32, S*S*in.B)
		ninf := float32(math.Inf(-1))
		causal := m.Arch.Causal()
		for s, seq := range ids {
			n := len(seq)
			for q := 0; q < S; q++ {
				row := mask[(s*S+q)*S : (s*S+q+1)*S]
				for k := range row {
					if k >= n || (causal && k > q) {
						row[k] = ninf
					}
				}
			}
		}
		if err := in.Mask.SetF32(mask); err != nil {
			return err
		}
	}
	if !in.MaskSWA.IsNil() {
		if err := in.MaskSWA.SetF32(windowMask(ids, S, m.Window)); err != nil {
			return err
		}
	}
	if !in.Pool.IsNil() {
		pool := make([]float32, S*in.B)
		for s, seq := range ids {
			n := len(seq)
			w := pool[s*S : (s+1)*S]
			switch m.Pooling {
			case PoolMean:
				for i := 0; i < n; i++ {
					w[i] = 1 / float32(n)
				}
			case PoolCLS:
				w[0] = 1
			default:
				w[n-1] = 1
			}
		}
		if err := in.Pool.SetF32(pool); err != nil {
			return err
		}
	}
	return nil
}
