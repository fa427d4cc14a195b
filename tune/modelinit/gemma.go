package modelinit

import (
	"fmt"

	"github.com/ragtune/ragtune/bindings/gguf"
)

// gemmaKVs writes the keys llama.cpp's converter writes for EmbeddingGemma:
// head size, sliding window, pooling, the Dense projections' sizes, and a
// SentencePiece vocabulary whose texts start with <s> and end with </s>
// (Gemma's tokenizer adds both).
func (m *maker) gemmaKVs(v *Vocab) {
	o := m.o
	const a = "gemma-embedding"
	m.general(a)
	m.set(a+".block_count", u32(o.Layers))
	m.set(a+".context_length", u32(o.Ctx))
	m.set(a+".embedding_length", u32(o.Dim))
	m.set(a+".feed_forward_length", u32(o.FF))
	m.set(a+".attention.head_count", u32(o.Heads))
	m.set(a+".attention.head_count_kv", u32(o.KVHeads))
	m.set(a+".attention.key_length", u32(o.headDim()))
	m.set(a+".attention.value_length", u32(o.headDim()))
	m.set(a+".attention.sliding_window", u32(o.Window))
	m.set(a+".rope.freq_base", gguf.Of(float32(1000000)))
	m.set(a+".attention.layer_norm_rms_epsilon", gguf.Of(float32(1e-6)))
	m.set(a+".pooling_type", gguf.Of(poolingTypes[o.Pooling]))
	if o.Dense > 0 {
		m.set(a+".dense_2_feat_in", u32(o.Dim))
		m.set(a+".dense_2_feat_out", u32(o.Dense))
		m.set(a+".dense_3_feat_in", u32(o.Dense))
		m.set(a+".dense_3_feat_out", u32(o.Dim))
	}
	m.fileType()
	m.spmTokenizer(v)
	m.set("tokenizer.ggml.padding_token_id", u32(spmUnk))
}

func (m *maker) gemmaTensors(vocab int) {
	o := m.o
	E, F, d := o.Dim, o.FF, o.headDim()
	q, kv := d*o.Heads, d*o.KVHeads
	m.matrix("token_embd.weight", E, vocab)
	for l := range o.Layers {
		b := fmt.Sprintf("blk.%d.", l)
		m.vector(b+"attn_norm.weight", E, 1)
		m.matrix(b+"attn_q.weight", E, q)
		m.matrix(b+"attn_k.weight", E, kv)
		m.matrix(b+"attn_v.weight", E, kv)
		m.matrix(b+"attn_output.weight", q, E)
		m.vector(b+"attn_q_norm.weight", d, 1)
		m.vector(b+"attn_k_norm.weight", d, 1)
		m.vector(b+"post_attention_norm.weight", E, 1)
		m.vector(b+"ffn_norm.weight", E, 1)
		m.matrix(b+"ffn_gate.weight", E, F)
		m.matrix(b+"ffn_up.weight", E, F)
		m.matrix(b+"ffn_down.weight", F, E)
		m.vector(b+"post_ffw_norm.weight", E, 1)
	}
	m.vector("output_norm.weight", E, 1)
	if o.Dense > 0 {
		m.matrix("dense_2.weight", E, o.Dense)
		m.matrix("dense_3.weight", o.Dense, E)
	}
}
