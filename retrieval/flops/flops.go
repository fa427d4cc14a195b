// Package flops estimates the floating-point operations of embedding models:
// the forward pass per token from an architecture's hyperparameters, and the
// training cost of full fine-tuning and LoRA with the original work's rules.
//
// Conventions: one multiply-add is 2 FLOPs; only matrix products are counted
// (normalisation, activations, softmax, pooling and embedding lookups are
// O(dim) per token, well under 1% of the total); embedding models have no
// language-model head, so the vocabulary adds parameters but no FLOPs.
//
// Per layer and token, with d = hidden size, H/Hkv = query/key-value heads,
// dk/dv = head sizes, f = feed-forward size, S = sequence length:
//
//	attention projections  2·d·(H·dk + Hkv·dk + Hkv·dv) + 2·(H·dv)·d   (Q, K, V, output)
//	attention scores       2·H·(dk + dv)·S'   (Q·Kᵀ and the weighted sum of V)
//	feed-forward           2·2·d·f (bert: up, down) or 2·3·d·f (llama, qwen3, nomic-bert, gemma-embedding: gate, up, down)
//
// where S' = S for bidirectional attention (bert) and (S+1)/2 on average for
// causal attention (llama, qwen3). qwen3's heads may be wider than d/H
// (dk from attention.key_length), which the projection terms follow. A
// fused attn_qkv (nomic-bert, some bert) costs what Q, K and V cost.
// gemma-embedding is bidirectional; its sliding-window layers (five of six)
// see fewer than S positions once S exceeds the window, which the estimate
// does not subtract (an upper bound), and its Dense projections run once
// per text, not per token. Training: full fine-tuning ≈ 3 × forward (the
// backward pass costs about twice the forward); LoRA ≈ (2/3 + 2r/N) × full
// fine-tuning, with r the rank and N the hidden size: the frozen weights
// still need the forward and the gradient with respect to their inputs (2 of
// the 3 thirds), and the adapters add about 2r/N of the dense cost.
package flops

import (
	"errors"
	"fmt"

	"github.com/ragtune/ragtune/bindings/gguf"
)

// Layer holds one transformer block's sizes.
type Layer struct {
	Heads   int `json:"heads"`
	KVHeads int `json:"kv_heads"`
	FF      int `json:"ff"`
}

// Arch is what the estimate needs of a model.
type Arch struct {
	Name     string  `json:"arch"` // "bert", "llama", "qwen3", "nomic-bert" or "gemma-embedding"
	Dim      int     `json:"dim"`
	HeadDimK int     `json:"head_dim_k"`
	HeadDimV int     `json:"head_dim_v"`
	Vocab    int     `json:"vocab"`
	Layers   []Layer `json:"-"`
}

// Uniform builds an Arch whose layers all have the same sizes, with head
// sizes dim/heads (the case for bert and llama models; use WithHeadDim for
// qwen3's wider heads).
func Uniform(name string, layers, dim, heads, kvHeads, ff, vocab int) (Arch, error) {
	switch name {
	case "bert", "llama", "qwen3", "nomic-bert", "gemma-embedding":
	default:
		return Arch{}, fmt.Errorf("arch %q: want bert, llama, qwen3, nomic-bert or gemma-embedding", name)
	}
	if layers <= 0 || dim <= 0 || heads <= 0 || ff <= 0 || vocab < 0 {
		return Arch{}, errors.New("layers, dim, heads and ff must be positive")
	}
	if kvHeads <= 0 {
		kvHeads = heads
	}
	if dim%heads != 0 {
		return Arch{}, fmt.Errorf("dim %d is not a multiple of heads %d", dim, heads)
	}
	if heads%kvHeads != 0 {
		return Arch{}, fmt.Errorf("heads %d is not a multiple of kv-heads %d", heads, kvHeads)
	}
	a := Arch{Name: name, Dim: dim, HeadDimK: dim / heads, HeadDimV: dim / heads, Vocab: vocab}
	for range layers {
		a.Layers = append(a.Layers, Layer{Heads: heads, KVHeads: kvHeads, FF: ff})
	}
	return a, nil
}

// WithHeadDim sets the head size (attention.key_length of qwen3).
func (a Arch) WithHeadDim(d int) (Arch, error) {
	if d <= 0 {
		return a, fmt.Errorf("head size %d must be positive", d)
	}
	a.HeadDimK, a.HeadDimV = d, d
	return a, nil
}

// FromGGUF reads the architecture of a bert, llama, qwen3, nomic-bert or gemma-embedding GGUF model (checked as
// llama.cpp's loader would).
func FromGGUF(path string) (Arch, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return Arch{}, err
	}
	defer f.Close()
	h, err := gguf.ValidateModel(f, "")
	if err != nil {
		return Arch{}, err
	}
	a := Arch{Name: h.Arch, Dim: int(h.Embd), HeadDimK: int(h.HeadDimK), HeadDimV: int(h.HeadDimV), Vocab: h.Vocab}
	for l := range int(h.Layers) {
		a.Layers = append(a.Layers, Layer{Heads: int(h.Heads[l]), KVHeads: int(h.HeadsKV[l]), FF: int(h.FF[l])})
	}
	return a, nil
}

// causal reports whether tokens attend only to earlier tokens.
func (a Arch) causal() bool { return a.Name == "llama" || a.Name == "qwen3" }

// ffMatrices is the number of d×f matrices in a feed-forward block.
func (a Arch) ffMatrices() int {
	if a.Name != "bert" {
		return 3 // SwiGLU: gate, up, down
	}
	return 2
}

// PerToken is the forward FLOPs of one token, by term.
type PerToken struct {
	AttnProj   float64 `json:"attn_proj"`
	AttnScores float64 `json:"attn_scores"`
	FFN        float64 `json:"ffn"`
	Forward    float64 `json:"forward"`
}

// Forward returns the forward FLOPs per token at sequence length seq.
func (a Arch) Forward(seq int) PerToken {
	d := float64(a.Dim)
	dk, dv := float64(a.HeadDimK), float64(a.HeadDimV)
	span := float64(seq)
	if a.causal() {
		span = float64(seq+1) / 2
	}
	var p PerToken
	for _, l := range a.Layers {
		h, hkv := float64(l.Heads), float64(l.KVHeads)
		p.AttnProj += 2*d*(h*dk+hkv*dk+hkv*dv) + 2*h*dv*d
		p.AttnScores += 2 * h * (dk + dv) * span
		p.FFN += 2 * float64(a.ffMatrices()) * d * float64(l.FF)
	}
	p.Forward = p.AttnProj + p.AttnScores + p.FFN
	return p
}

// Params counts the weights of the matrix products (the non-embedding
// parameters, biases and norms left out) and of the token embeddings.
func (a Arch) Params() (matrices, embeddings float64) {
	d := float64(a.Dim)
	dk, dv := float64(a.HeadDimK), float64(a.HeadDimV)
	for _, l := range a.Layers {
		h, hkv := float64(l.Heads), float64(l.KVHeads)
		matrices += d*(h*dk+hkv*dk+hkv*dv) + h*dv*d + float64(a.ffMatrices())*d*float64(l.FF)
	}
	return matrices, float64(a.Vocab) * d
}

// Estimate is the training cost of one run.
type Estimate struct {
	Arch             Arch     `json:"model"`
	Layers           int      `json:"layers"`
	ParamsMatrices   float64  `json:"params_matrices"`
	ParamsEmbeddings float64  `json:"params_embeddings"`
	Seq              int      `json:"seq"`
	Tokens           float64  `json:"tokens"`
	PerToken         PerToken `json:"per_token"`
	Forward          float64  `json:"forward"`     // PerToken.Forward × Tokens
	FullFT           float64  `json:"full_ft"`     // 3 × Forward
	LoRARank         int      `json:"lora_rank"`   // 0: no LoRA term
	LoRAFactor       float64  `json:"lora_factor"` // 2/3 + 2r/N
	LoRA             float64  `json:"lora"`        // LoRAFactor × FullFT
}

// FullFTFactor is the cost of a training step relative to a forward pass.
const FullFTFactor = 3

// LoRAFactor is the original work's rule: LoRA costs (2/3 + 2r/N) of full
// fine-tuning, r the rank and N the hidden size.
func LoRAFactor(rank, hidden int) float64 {
	return 2.0/3 + 2*float64(rank)/float64(hidden)
}

// Estimate computes the training cost of tokens tokens (all sequences of
// length seq) for full fine-tuning and, when rank > 0, LoRA of that rank.
func (a Arch) Estimate(tokens float64, seq, rank int) (Estimate, error) {
	if seq <= 0 || !(tokens >= 0) || rank < 0 {
		return Estimate{}, errors.New("want seq > 0, tokens >= 0 and rank >= 0")
	}
	e := Estimate{Arch: a, Layers: len(a.Layers), Seq: seq, Tokens: tokens, PerToken: a.Forward(seq), LoRARank: rank}
	e.ParamsMatrices, e.ParamsEmbeddings = a.Params()
	e.Forward = e.PerToken.Forward * tokens
	e.FullFT = FullFTFactor * e.Forward
	if rank > 0 {
		e.LoRAFactor = LoRAFactor(rank, a.Dim)
		e.LoRA = e.LoRAFactor * e.FullFT
	}
	return e, nil
}
