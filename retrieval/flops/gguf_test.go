package flops

import (
	"path/filepath"
	"testing"

	"github.com/ragtune/ragtune/bindings/gguf"
)

// writeTinyBert writes a 1-layer bert GGUF (dim 32, 2 heads, ff 64) that
// passes llama.cpp's loader checks, with zero weights (only shapes matter here).
func writeTinyBert(t *testing.T, path string) {
	t.Helper()
	const E, F, P = 32, 64, 8
	tokens := []string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "▁a", "b"}
	b := gguf.NewBuilder()
	for k, v := range map[string]gguf.Value{
		"general.architecture":              gguf.Of("bert"),
		"bert.context_length":               gguf.Of(uint32(P)),
		"bert.embedding_length":             gguf.Of(uint32(E)),
		"bert.block_count":                  gguf.Of(uint32(1)),
		"bert.feed_forward_length":          gguf.Of(uint32(F)),
		"bert.attention.head_count":         gguf.Of(uint32(2)),
		"bert.attention.layer_norm_epsilon": gguf.Of(float32(1e-12)),
		"bert.attention.causal":             gguf.Of(false),
		"bert.pooling_type":                 gguf.Of(uint32(gguf.PoolingMean)),
		"tokenizer.ggml.model":              gguf.Of("bert"),
		"tokenizer.ggml.tokens":             gguf.ArrayOf(tokens),
		"tokenizer.ggml.token_type":         gguf.ArrayOf([]int32{3, 3, 3, 3, 3, 1, 1}),
		"tokenizer.ggml.token_type_count":   gguf.Of(uint32(2)),
		"tokenizer.ggml.padding_token_id":   gguf.Of(uint32(0)),
		"tokenizer.ggml.unknown_token_id":   gguf.Of(uint32(1)),
		"tokenizer.ggml.bos_token_id":       gguf.Of(uint32(2)),
		"tokenizer.ggml.seperator_token_id": gguf.Of(uint32(3)),
		"tokenizer.ggml.mask_token_id":      gguf.Of(uint32(4)),
	} {
		if err := b.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	add := func(name string, dims ...int64) {
		n := int64(1)
		for _, d := range dims {
			n *= d
		}
		if err := b.AddTensor(name, gguf.F32, dims, gguf.EncodeF32(make([]float32, n))); err != nil {
			t.Fatal(err)
		}
	}
	add("token_embd.weight", E, int64(len(tokens)))
	add("token_types.weight", E, 2)
	add("position_embd.weight", E, P)
	add("token_embd_norm.weight", E)
	add("token_embd_norm.bias", E)
	for _, n := range []string{"attn_q", "attn_k", "attn_v", "attn_output"} {
		add("blk.0."+n+".weight", E, E)
		add("blk.0."+n+".bias", E)
	}
	add("blk.0.attn_output_norm.weight", E)
	add("blk.0.attn_output_norm.bias", E)
	add("blk.0.ffn_up.weight", E, F)
	add("blk.0.ffn_up.bias", F)
	add("blk.0.ffn_down.weight", F, E)
	add("blk.0.ffn_down.bias", E)
	add("blk.0.layer_output_norm.weight", E)
	add("blk.0.layer_output_norm.bias", E)
	if err := b.WriteFile(path); err != nil {
		t.Fatal(err)
	}
}

func TestFromGGUF(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tiny.gguf")
	writeTinyBert(t, path)
	a, err := FromGGUF(path)
	if err != nil {
		t.Fatal(err)
	}
	if a.Name != "bert" || a.Dim != 32 || len(a.Layers) != 1 || a.Layers[0] != (Layer{Heads: 2, KVHeads: 2, FF: 64}) || a.Vocab != 7 {
		t.Fatalf("arch %+v", a)
	}
	// Projections 4·2·32² = 8192; scores 2·2·(16+16)·8 = 1024; ffn 2·2·32·64 = 8192.
	if p := a.Forward(8); p.AttnProj != 8192 || p.AttnScores != 1024 || p.FFN != 8192 {
		t.Fatalf("per token %+v", p)
	}
	if _, err := FromGGUF(filepath.Join(t.TempDir(), "missing.gguf")); err == nil {
		t.Fatal("missing file accepted")
	}
}
