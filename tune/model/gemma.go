package model

import (
	"fmt"
	"math"

	"github.com/ragtune/ragtune/bindings"
	"github.com/ragtune/ragtune/bindings/gguf"
)

// gemma-embedding (EmbeddingGemma) as llama.cpp's graph runs it: token
// embeddings times √E; pre- and post-RMSNorm around attention and FFN;
// per-head q/k RMSNorm and NeoX rotation; bidirectional attention, where
// five layers of every six see only a symmetric window (a token and those
// at most sliding_window/2 positions away) and rotate with base 10000,
// the sixth sees everything and rotates with rope.freq_base; a GELU-gated
// FFN; output_norm, pooling, then the optional Dense projections.
// The GGUF's norm gains already hold Gemma's (1 + w).

// gemmaWindowBase is the rotary base llama.cpp gives gemma-embedding's
// sliding layers, whatever the file says.
const gemmaWindowBase = 10000

// gemmaSliding reports whether layer l uses the sliding window (llama.cpp's
// swa pattern 6: the last of every six layers is global).
func gemmaSliding(l int) bool { return l%6 < 5 }

func readGemma(f *gguf.File, c *Config) error {
	eps, ok, err := f.Float32("gemma-embedding.attention.layer_norm_rms_epsilon")
	if err != nil || !ok {
		return fmt.Errorf("%s: missing or malformed key %q (%v)", f.Path, "gemma-embedding.attention.layer_norm_rms_epsilon", err)
	}
	c.Eps = eps
	c.RopeBase = 10000
	if v, ok, err := f.Float32("gemma-embedding.rope.freq_base"); err != nil {
		return err
	} else if ok {
		c.RopeBase = v
	}
	w, ok, err := f.Uint32("gemma-embedding.attention.sliding_window")
	if err != nil || !ok {
		return fmt.Errorf("%s: missing or malformed key %q (%v)", f.Path, "gemma-embedding.attention.sliding_window", err)
	}
	c.Window = int(w)
	p, ok, err := f.Uint32("gemma-embedding.pooling_type")
	if err != nil || !ok {
		return fmt.Errorf("%s: missing or malformed key %q (%v)", f.Path, "gemma-embedding.pooling_type", err)
	}
	c.Pooling = Pooling(p)
	if c.Pooling < PoolMean || c.Pooling > PoolLast {
		return fmt.Errorf("%s: gemma-embedding.pooling_type %d is not mean, cls or last", f.Path, p)
	}
	return nil
}

func (l *loader) gemmaLayer(p string) Layer {
	c := l.m.Config
	E, F, hd := c.Dim, c.FF, c.HeadDim()
	return Layer{
		AttnNorm:     l.norm(p+"attn_norm", false),
		Q:            Linear{Name: p + "attn_q.weight", W: l.tensor(p+"attn_q.weight", false, E, c.Heads*hd)},
		K:            Linear{Name: p + "attn_k.weight", W: l.tensor(p+"attn_k.weight", false, E, c.KVHeads*hd)},
		V:            Linear{Name: p + "attn_v.weight", W: l.tensor(p+"attn_v.weight", false, E, c.KVHeads*hd)},
		O:            Linear{Name: p + "attn_output.weight", W: l.tensor(p+"attn_output.weight", false, c.Heads*hd, E)},
		QNorm:        l.normOf(p+"attn_q_norm", hd, false),
		KNorm:        l.normOf(p+"attn_k_norm", hd, false),
		PostAttnNorm: l.norm(p+"post_attention_norm", false),
		FFNNorm:      l.norm(p+"ffn_norm", false),
		Gate:         Linear{Name: p + "ffn_gate.weight", W: l.tensor(p+"ffn_gate.weight", false, E, F)},
		Up:           Linear{Name: p + "ffn_up.weight", W: l.tensor(p+"ffn_up.weight", false, E, F)},
		Down:         Linear{Name: p + "ffn_down.weight", W: l.tensor(p+"ffn_down.weight", false, F, E)},
		PostFFNNorm:  l.norm(p+"post_ffw_norm", false),
	}
}

// gemmaDense declares the Dense projections: dense_2 [E, n], dense_3 [n, E].
func (l *loader) gemmaDense() {
	d2, ok2 := l.f.Tensor("dense_2.weight")
	_, ok3 := l.f.Tensor("dense_3.weight")
	if ok2 != ok3 {
		l.err = fmt.Errorf("%s: dense_2.weight and dense_3.weight come together (llama.cpp applies neither alone)", l.f.Path)
		return
	}
	if !ok2 || len(d2.Dims) < 2 {
		return
	}
	n := int(d2.Dims[1])
	l.m.Dense2 = l.tensor("dense_2.weight", false, l.m.Dim, n)
	l.m.Dense3 = l.tensor("dense_3.weight", false, n, l.m.Dim)
}

// maskSWA is the sliding layers' mask input, made on first use.
func (b *builder) maskSWA() bindings.Tensor {
	if b.in.MaskSWA.IsNil() {
		b.in.MaskSWA = b.ctx.NewTensor(bindings.TypeF32, b.S, b.S, 1, b.B).SetName("attn_mask_swa").SetInput()
	}
	return b.in.MaskSWA
}

func (b *builder) gemmaLayer(il int, x bindings.Tensor) bindings.Tensor {
	ctx, m, l := b.ctx, b.m, b.m.Layers[il]
	// Only the mask the layer reads is made: a segment graph of one
	// sliding layer (recomputation) has no memory for the global one.
	var base float32
	var mask bindings.Tensor
	if gemmaSliding(il) {
		base, mask = gemmaWindowBase, b.maskSWA()
	} else {
		base, mask = m.RopeBase, b.mask()
	}
	qk := func(t bindings.Tensor, n int, gain Norm) bindings.Tensor {
		t = b.rmsNorm(gain, b.heads(t, n))
		return ctx.RopeNeox(t, b.positions(), m.HeadDim(), base, m.Ctx)
	}
	n := b.rmsNorm(l.AttnNorm, x)
	q := qk(b.linear(l.Q, n), m.Heads, l.QNorm)
	k := qk(b.linear(l.K, n), m.KVHeads, l.KNorm)
	v := b.heads(b.linear(l.V, n), m.KVHeads)
	a := b.rmsNorm(l.PostAttnNorm, b.linear(l.O, b.attention(q, k, v, mask)))
	h := ctx.Add(a, x)
	g := b.rmsNorm(l.FFNNorm, h)
	f := b.linear(l.Down, ctx.Mul(b.gelu(b.linear(l.Gate, g)), b.linear(l.Up, g)))
	return ctx.Add(b.rmsNorm(l.PostFFNNorm, f), h)
}

// windowMask is the padding mask of ids with keys more than window/2
// positions from the query masked too (llama.cpp's symmetric window).
// Padding queries keep every real key: a row of -inf alone would make
// their softmax NaN, which pooling's zero weights do not cancel.
func windowMask(ids [][]int32, S, window int) []float32 {
	mask := make([]float32, S*S*len(ids))
	ninf := float32(math.Inf(-1))
	half := window / 2
	for s, seq := range ids {
		for q := 0; q < S; q++ {
			row := mask[(s*S+q)*S : (s*S+q+1)*S]
			real := q < len(seq)
			for k := range row {
				if k >= len(seq) || (real && (k-q > half || q-k > half)) {
					row[k] = ninf
				}
			}
		}
	}
	return mask
}
