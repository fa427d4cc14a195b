package model

import "github.com/ragtune/ragtune/bindings"

// nomic-bert (nomic-embed-text) is bert's post-norm encoder with three
// changes that llama.cpp's bert graph makes for it: q, k and v come from
// one fused attn_qkv matrix, positions are NeoX rotations of q and k (no
// position table), and the FFN is SwiGLU without biases.

func (l *loader) nomicLayer(p string) Layer {
	c := l.m.Config
	E, F, kv := c.Dim, c.FF, c.KVHeads*c.HeadDim()
	var ly Layer
	if _, fused := l.f.Tensor(p + "attn_qkv.weight"); fused {
		ly.QKV = l.linear(p+"attn_qkv", E, E+2*kv, true)
	} else { // what llama.cpp also accepts
		ly.Q = l.linear(p+"attn_q", E, E, false)
		ly.K = l.linear(p+"attn_k", E, kv, false)
		ly.V = l.linear(p+"attn_v", E, kv, false)
	}
	ly.O = l.linear(p+"attn_output", E, E, true)
	ly.AttnNorm = l.norm(p+"attn_output_norm", true)
	// llama.cpp's SwiGLU branch reads no FFN biases, so none are loaded.
	ly.Up = Linear{Name: p + "ffn_up.weight", W: l.tensor(p+"ffn_up.weight", false, E, F)}
	ly.Gate = Linear{Name: p + "ffn_gate.weight", W: l.tensor(p+"ffn_gate.weight", false, E, F)}
	ly.Down = Linear{Name: p + "ffn_down.weight", W: l.tensor(p+"ffn_down.weight", false, F, E)}
	ly.FFNNorm = l.norm(p+"layer_output_norm", true)
	return ly
}

// nomicLayer is a post-norm block: fused qkv, NeoX rotary positions,
// non-causal attention, SwiGLU FFN.
func (b *builder) nomicLayer(l Layer, x bindings.Tensor) bindings.Tensor {
	ctx, m := b.ctx, b.m
	rope := func(t bindings.Tensor) bindings.Tensor {
		return ctx.RopeNeox(t, b.positions(), m.HeadDim(), m.RopeBase, m.Ctx)
	}
	q, k, v := b.qkv(l, x)
	a := b.linear(l.O, b.attention(rope(q), rope(k), v, b.mask()))
	h := b.layerNorm(l.AttnNorm, ctx.Add(a, x), m.Eps)
	f := b.linear(l.Down, ctx.SwigluSplit(b.linear(l.Gate, h), b.linear(l.Up, h)))
	return b.layerNorm(l.FFNNorm, ctx.Add(f, h), m.Eps)
}

// qkv projects x to queries [d, H, S, B] and keys and values [d, Hkv, S,
// B]: with three matrices, or with a fused attn_qkv whose output rows are
// Q, then K, then V (one LoRA pair then adapts the fused matrix, as
// llama.cpp applies it).
func (b *builder) qkv(l Layer, x bindings.Tensor) (q, k, v bindings.Tensor) {
	m := b.m
	if l.QKV.W.IsNil() {
		return b.heads(b.linear(l.Q, x), m.Heads), b.heads(b.linear(l.K, x), m.KVHeads), b.heads(b.linear(l.V, x), m.KVHeads)
	}
	y := b.linear(l.QKV, x) // [Hd + 2·Hkv·d, S·B]
	T, row := b.S*b.B, y.Nb()[1]
	qw, kw := m.Heads*m.HeadDim(), m.KVHeads*m.HeadDim()
	part := func(off, n, heads int) bindings.Tensor {
		// A column block of y, made contiguous for the head reshape.
		view := b.ctx.View(y, []int{n, T}, []int{row}, off*4)
		return b.heads(b.ctx.Cont(view), heads)
	}
	return part(0, qw, m.Heads), part(qw, kw, m.KVHeads), part(qw+kw, kw, m.KVHeads)
}
