package model

import "github.com/ragtune/ragtune/bindings"

// Qwen3 (Qwen3-Embedding) is llama's block with three differences that
// llama.cpp's qwen3 graph has: queries and keys are RMS-normalised per head
// (gains attn_q_norm, attn_k_norm of the head size) before the rotation, the
// rotation is NeoX's (halves of a head, not adjacent pairs: the converter
// does not permute Qwen's Q/K rows), and heads may be wider than
// Dim/Heads (attention.key_length).

func (l *loader) qwen3Layer(p string) Layer {
	c := l.m.Config
	E, F, hd := c.Dim, c.FF, c.HeadDim()
	return Layer{
		AttnNorm: l.norm(p+"attn_norm", false),
		Q:        l.linear(p+"attn_q", E, c.Heads*hd, true),
		K:        l.linear(p+"attn_k", E, c.KVHeads*hd, true),
		V:        l.linear(p+"attn_v", E, c.KVHeads*hd, true),
		O:        l.linear(p+"attn_output", c.Heads*hd, E, true),
		QNorm:    l.normOf(p+"attn_q_norm", hd, false),
		KNorm:    l.normOf(p+"attn_k_norm", hd, false),
		FFNNorm:  l.norm(p+"ffn_norm", false),
		Gate:     l.linear(p+"ffn_gate", E, F, true),
		Up:       l.linear(p+"ffn_up", E, F, true),
		Down:     l.linear(p+"ffn_down", F, E, true),
	}
}

// qwen3Layer is a pre-RMSNorm causal block: per-head q/k RMSNorm, NeoX
// rotary positions, GQA, SwiGLU.
func (b *builder) qwen3Layer(l Layer, x bindings.Tensor) bindings.Tensor {
	ctx, m := b.ctx, b.m
	qk := func(t bindings.Tensor, n int, gain Norm) bindings.Tensor {
		// [d, n, S, B]: rms_norm normalises each head's d values.
		t = b.rmsNorm(gain, b.heads(t, n))
		return ctx.RopeNeox(t, b.positions(), m.HeadDim(), m.RopeBase, m.Ctx)
	}
	n := b.rmsNorm(l.AttnNorm, x)
	q := qk(b.linear(l.Q, n), m.Heads, l.QNorm)
	k := qk(b.linear(l.K, n), m.KVHeads, l.KNorm)
	v := b.heads(b.linear(l.V, n), m.KVHeads)
	h := ctx.Add(x, b.linear(l.O, b.attention(q, k, v, b.mask())))
	g := b.rmsNorm(l.FFNNorm, h)
	f := b.linear(l.Down, ctx.SwigluSplit(b.linear(l.Gate, g), b.linear(l.Up, g)))
	return ctx.Add(h, f)
}
