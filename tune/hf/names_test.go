package hf

import (
	"strconv"
	"strings"
	"testing"
)

func TestModuleNames(t *testing.T) {
	for _, c := range []struct{ arch, gguf, hf string }{
		{Bert, "blk.0.attn_q.weight", "encoder.layer.0.attention.self.query"},
		{Bert, "blk.11.ffn_down", "encoder.layer.11.output.dense"},
		{Bert, "blk.3.attn_output_norm.bias", "encoder.layer.3.attention.output.LayerNorm"},
		{Bert, "token_embd.weight", "embeddings.word_embeddings"},
		{Llama, "blk.31.attn_q", "layers.31.self_attn.q_proj"},
		{Llama, "blk.2.ffn_norm.weight", "layers.2.post_attention_layernorm"},
		{Llama, "output.weight", "lm_head"},
		{Qwen3, "blk.0.attn_k_norm.weight", "layers.0.self_attn.k_norm"},
		{Qwen3, "blk.5.ffn_gate", "layers.5.mlp.gate_proj"},
		{NomicBert, "blk.1.attn_qkv.weight", "encoder.layers.1.attn.Wqkv"},
		{NomicBert, "blk.1.ffn_gate.weight", "encoder.layers.1.mlp.fc12"},
		{NomicBert, "token_embd_norm.bias", "emb_ln"},
		{GemmaEmbedding, "blk.4.post_ffw_norm.weight", "layers.4.post_feedforward_layernorm"},
		{GemmaEmbedding, "blk.4.ffn_norm.weight", "layers.4.pre_feedforward_layernorm"},
		{GemmaEmbedding, "blk.4.attn_output", "layers.4.self_attn.o_proj"},
	} {
		got, err := ModuleName(c.arch, c.gguf)
		if err != nil || got != c.hf {
			t.Errorf("ModuleName(%s, %s) = %q, %v; want %q", c.arch, c.gguf, got, err, c.hf)
		}
		base, suffix := splitSuffix(c.gguf)
		back, err := TensorName(c.arch, c.hf+suffix)
		if err != nil || back != base+suffix {
			t.Errorf("TensorName(%s, %s) = %q, %v; want %q", c.arch, c.hf+suffix, back, err, base+suffix)
		}
	}
}

// Every entry of every table maps both ways to itself, for several blocks.
func TestTablesInvert(t *testing.T) {
	for arch, table := range tables {
		seen := map[string]bool{}
		for _, e := range table {
			for _, b := range []int{0, 7, 23} {
				if b > 0 && !strings.Contains(e.gguf, "%d") {
					break
				}
				g := strings.ReplaceAll(e.gguf, "%d", strconv.Itoa(b))
				h, err := ModuleName(arch, g)
				if err != nil {
					t.Fatal(err)
				}
				if seen[h] {
					t.Errorf("%s: two GGUF names map to %s", arch, h)
				}
				seen[h] = true
				if back, err := TensorName(arch, h+".weight"); err != nil || back != g+".weight" {
					t.Errorf("%s: %s -> %s -> %s, %v", arch, g, h, back, err)
				}
			}
		}
	}
}

func TestPrefixedAndRefused(t *testing.T) {
	for _, c := range []struct{ arch, hf, want string }{
		{Llama, "model.layers.3.self_attn.v_proj.weight", "blk.3.attn_v.weight"},
		{Llama, "model.embed_tokens.weight", "token_embd.weight"},
		{Bert, "bert.encoder.layer.2.intermediate.dense.bias", "blk.2.ffn_up.bias"},
		{Bert, "roberta.embeddings.LayerNorm.weight", "token_embd_norm.weight"},
	} {
		if got, err := TensorName(c.arch, c.hf); err != nil || got != c.want {
			t.Errorf("TensorName(%s, %s) = %q, %v; want %q", c.arch, c.hf, got, err, c.want)
		}
	}
	for _, c := range []struct{ arch, name, want string }{
		{"gpt2", "blk.0.attn_q", `architecture "gpt2"`},
		{Bert, "blk.0.attn_qkv", `bert tensor "blk.0.attn_qkv" has no Hugging Face module`},
		{Llama, "blk.0.attn_q_norm", "no Hugging Face module"},
	} {
		if _, err := ModuleName(c.arch, c.name); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ModuleName(%s, %s): %v, want %q", c.arch, c.name, err, c.want)
		}
	}
	if _, err := TensorName(Bert, "pooler.dense.weight"); err == nil || !strings.Contains(err.Error(), "pooler.dense") {
		t.Errorf("pooler: %v", err)
	}
}
