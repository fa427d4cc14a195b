// Package hf maps GGUF tensor names (llama.cpp's, e.g. "blk.3.attn_q") to the
// Hugging Face module paths of the same weights (e.g. bert's
// "encoder.layer.3.attention.self.query") and back, per model family. The
// Hugging Face side is the module path inside the base transformer as
// AutoModel loads it (what sentence-transformers wraps and PEFT adapts):
// headless, so llama's is "layers.3.self_attn.q_proj", not
// "model.layers...". The reverse accepts the prefixed spellings too
// ("model.", "bert.", "roberta.", and the ".weight"/".bias" suffix).
package hf

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// The families ragtune converts, named by their llama.cpp architecture.
const (
	Bert           = "bert"
	Llama          = "llama"
	Qwen3          = "qwen3"
	NomicBert      = "nomic-bert"
	GemmaEmbedding = "gemma-embedding"
)

// Families lists the architectures this package maps.
func Families() []string {
	out := make([]string, 0, len(tables))
	for a := range tables {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// entry pairs a GGUF name with its Hugging Face module path; "%d" stands for
// the block number in both.
type entry struct{ gguf, hf string }

var bertTable = []entry{
	{"token_embd", "embeddings.word_embeddings"},
	{"token_types", "embeddings.token_type_embeddings"},
	{"position_embd", "embeddings.position_embeddings"},
	{"token_embd_norm", "embeddings.LayerNorm"},
	{"blk.%d.attn_q", "encoder.layer.%d.attention.self.query"},
	{"blk.%d.attn_k", "encoder.layer.%d.attention.self.key"},
	{"blk.%d.attn_v", "encoder.layer.%d.attention.self.value"},
	{"blk.%d.attn_output", "encoder.layer.%d.attention.output.dense"},
	{"blk.%d.attn_output_norm", "encoder.layer.%d.attention.output.LayerNorm"},
	{"blk.%d.ffn_up", "encoder.layer.%d.intermediate.dense"},
	{"blk.%d.ffn_down", "encoder.layer.%d.output.dense"},
	{"blk.%d.layer_output_norm", "encoder.layer.%d.output.LayerNorm"},
}

// decoderTable is what llama, qwen3 and gemma-embedding share.
var decoderTable = []entry{
	{"token_embd", "embed_tokens"},
	{"output_norm", "norm"},
	{"output", "lm_head"},
	{"blk.%d.attn_norm", "layers.%d.input_layernorm"},
	{"blk.%d.attn_q", "layers.%d.self_attn.q_proj"},
	{"blk.%d.attn_k", "layers.%d.self_attn.k_proj"},
	{"blk.%d.attn_v", "layers.%d.self_attn.v_proj"},
	{"blk.%d.attn_output", "layers.%d.self_attn.o_proj"},
	{"blk.%d.ffn_gate", "layers.%d.mlp.gate_proj"},
	{"blk.%d.ffn_up", "layers.%d.mlp.up_proj"},
	{"blk.%d.ffn_down", "layers.%d.mlp.down_proj"},
}

var qkNorms = []entry{
	{"blk.%d.attn_q_norm", "layers.%d.self_attn.q_norm"},
	{"blk.%d.attn_k_norm", "layers.%d.self_attn.k_norm"},
}

var llamaTable = append(append([]entry{}, decoderTable...),
	entry{"blk.%d.ffn_norm", "layers.%d.post_attention_layernorm"})

var qwen3Table = append(append([]entry{}, llamaTable...), qkNorms...)

// Gemma 3 norms both sides of attention and of the MLP.
var gemmaTable = append(append(append([]entry{}, decoderTable...), qkNorms...),
	entry{"blk.%d.post_attention_norm", "layers.%d.post_attention_layernorm"},
	entry{"blk.%d.ffn_norm", "layers.%d.pre_feedforward_layernorm"},
	entry{"blk.%d.post_ffw_norm", "layers.%d.post_feedforward_layernorm"},
)

// nomic-embed-text's own modelling code: fused Wqkv, SwiGLU with fc11 the up
// and fc12 the gate projection, rotary positions (no position table).
var nomicTable = []entry{
	{"token_embd", "embeddings.word_embeddings"},
	{"token_types", "embeddings.token_type_embeddings"},
	{"token_embd_norm", "emb_ln"},
	{"blk.%d.attn_qkv", "encoder.layers.%d.attn.Wqkv"},
	{"blk.%d.attn_output", "encoder.layers.%d.attn.out_proj"},
	{"blk.%d.attn_output_norm", "encoder.layers.%d.norm1"},
	{"blk.%d.ffn_up", "encoder.layers.%d.mlp.fc11"},
	{"blk.%d.ffn_gate", "encoder.layers.%d.mlp.fc12"},
	{"blk.%d.ffn_down", "encoder.layers.%d.mlp.fc2"},
	{"blk.%d.layer_output_norm", "encoder.layers.%d.norm2"},
}

var tables = map[string][]entry{
	Bert: bertTable, Llama: llamaTable, Qwen3: qwen3Table,
	NomicBert: nomicTable, GemmaEmbedding: gemmaTable,
}

// prefixes a checkpoint may put before the headless module path.
var prefixes = map[string][]string{
	Bert:           {"bert.", "roberta.", "model."},
	Llama:          {"model."},
	Qwen3:          {"model."},
	NomicBert:      {"bert.", "model."},
	GemmaEmbedding: {"model."},
}

// blockNum finds the block number, written as the only run of digits that
// stands as its own dotted component.
var blockNum = regexp.MustCompile(`(^|\.)(\d+)(\.|$)`)

// lookup maps name through the table from side `from` to the other side.
func lookup(arch, name string, toHF bool) (string, error) {
	table, ok := tables[arch]
	if !ok {
		return "", fmt.Errorf("no Hugging Face name map for architecture %q (known: %s)", arch, strings.Join(Families(), ", "))
	}
	pattern, block := name, -1
	if m := blockNum.FindStringSubmatchIndex(name); m != nil {
		n, err := strconv.Atoi(name[m[4]:m[5]])
		if err == nil {
			block = n
			pattern = name[:m[4]] + "%d" + name[m[5]:]
		}
	}
	for _, e := range table {
		from, to := e.gguf, e.hf
		if !toHF {
			from, to = e.hf, e.gguf
		}
		if from == pattern {
			if block >= 0 {
				return fmt.Sprintf(to, block), nil
			}
			return to, nil
		}
	}
	if toHF {
		return "", fmt.Errorf("%s tensor %q has no Hugging Face module", arch, name)
	}
	return "", fmt.Errorf("%s module %q has no GGUF tensor", arch, name)
}

// splitSuffix separates ".weight" or ".bias" from a name.
func splitSuffix(name string) (base, suffix string) {
	for _, s := range []string{".weight", ".bias"} {
		if strings.HasSuffix(name, s) {
			return strings.TrimSuffix(name, s), s
		}
	}
	return name, ""
}

// ModuleName is the Hugging Face module path (no ".weight") of a GGUF tensor,
// given with or without its ".weight"/".bias" suffix.
func ModuleName(arch, ggufTensorName string) (string, error) {
	base, _ := splitSuffix(ggufTensorName)
	return lookup(arch, base, true)
}

// TensorName is the GGUF tensor name of a Hugging Face module or parameter.
// A ".weight"/".bias" suffix is kept; a checkpoint prefix ("model.",
// "bert.") is dropped.
func TensorName(arch, hfName string) (string, error) {
	base, suffix := splitSuffix(hfName)
	name, err := lookup(arch, base, false)
	if err != nil {
		for _, p := range prefixes[arch] {
			if strings.HasPrefix(base, p) {
				if n, err2 := lookup(arch, strings.TrimPrefix(base, p), false); err2 == nil {
					return n + suffix, nil
				}
			}
		}
		return "", err
	}
	return name + suffix, nil
}
