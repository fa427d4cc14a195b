package modelinit

import (
	"fmt"

	"github.com/ragtune/ragtune/bindings/gguf"
)

// qwen3KVs writes the keys llama.cpp's converter writes for
// Qwen3-Embedding: head size as key/value length, pooling, and a
// byte-level BPE vocabulary with the qwen2 pre-tokenizer whose texts end
// with <|endoftext|> (add_eos_token, as the model's own tokenizer does).
func (m *maker) qwen3KVs(v *Vocab) {
	o := m.o
	m.general("qwen3")
	m.set("qwen3.block_count", u32(o.Layers))
	m.set("qwen3.context_length", u32(o.Ctx))
	m.set("qwen3.embedding_length", u32(o.Dim))
	m.set("qwen3.feed_forward_length", u32(o.FF))
	m.set("qwen3.attention.head_count", u32(o.Heads))
	m.set("qwen3.attention.head_count_kv", u32(o.KVHeads))
	m.set("qwen3.rope.freq_base", gguf.Of(float32(1000000)))
	m.set("qwen3.attention.layer_norm_rms_epsilon", gguf.Of(float32(1e-6)))
	m.set("qwen3.attention.key_length", u32(o.headDim()))
	m.set("qwen3.attention.value_length", u32(o.headDim()))
	m.set("qwen3.pooling_type", gguf.Of(poolingTypes[o.Pooling]))
	m.fileType()
	m.set("tokenizer.ggml.model", gguf.Of("gpt2"))
	m.set("tokenizer.ggml.pre", gguf.Of("qwen2"))
	m.set("tokenizer.ggml.tokens", gguf.ArrayOf(v.Tokens))
	m.set("tokenizer.ggml.token_type", gguf.ArrayOf(v.Types))
	m.set("tokenizer.ggml.merges", gguf.ArrayOf(v.Merges))
	eos := v.id("<|endoftext|>")
	m.set("tokenizer.ggml.eos_token_id", u32(eos))
	m.set("tokenizer.ggml.padding_token_id", u32(eos))
	m.set("tokenizer.ggml.bos_token_id", u32(eos))
	m.set("tokenizer.ggml.eot_token_id", u32(v.id("<|im_end|>")))
	m.set("tokenizer.ggml.add_bos_token", gguf.Of(false))
	m.set("tokenizer.ggml.add_eos_token", gguf.Of(true))
}

func (m *maker) qwen3Tensors(vocab int) {
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
		m.vector(b+"ffn_norm.weight", E, 1)
		m.matrix(b+"ffn_gate.weight", E, F)
		m.matrix(b+"ffn_up.weight", E, F)
		m.matrix(b+"ffn_down.weight", F, E)
	}
	m.vector("output_norm.weight", E, 1)
	if o.OutputHead {
		m.matrix("output.weight", E, vocab)
	}
}
