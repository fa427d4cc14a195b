// Package encoder turns texts into embeddings with either of ragtune's two
// engines: its own ggml graph (tune/model) over padded batches, or
// llama.cpp's embedding path. Both share one tokenizer: llama.cpp's own,
// loaded without weights, so token ids always equal llama.cpp's.
package encoder

import (
	"github.com/ragtune/ragtune/bindings"
	"github.com/ragtune/ragtune/tune/model"
)

// Tokenizer wraps llama.cpp's tokenizer with the truncation and end-of-text
// rules embedding models need.
type Tokenizer struct {
	vocab     *bindings.LlamaModel
	arch      model.Arch
	maxTokens int
	end       int32 // the token every text ends with: [SEP] (bert), </s> (llama) or <|endoftext|> (qwen3)
	pad       int32
}

// NewTokenizer loads the vocabulary of a GGUF model. maxTokens caps a text's
// length (0: the model's context length).
func NewTokenizer(path string, cfg model.Config, maxTokens int) (*Tokenizer, error) {
	v, err := bindings.LoadLlamaModel(path, true)
	if err != nil {
		return nil, err
	}
	if maxTokens <= 0 || maxTokens > cfg.Ctx {
		maxTokens = cfg.Ctx
	}
	t := &Tokenizer{vocab: v, arch: cfg.Arch, maxTokens: maxTokens}
	if cfg.Arch == model.Bert || cfg.Arch == model.NomicBert {
		t.end = v.SEP()
	} else {
		t.end = v.EOS()
	}
	return t, nil
}

// Close frees the vocabulary.
func (t *Tokenizer) Close() { t.vocab.Close() }

// MaxTokens is the longest sequence Encode returns.
func (t *Tokenizer) MaxTokens() int { return t.maxTokens }

// Encode tokenizes one text. bert and nomic-bert texts get [CLS] … [SEP]; llama texts get
// <s> … </s> (e5-mistral and Linq pool the final </s>, which llama.cpp only
// appends when the vocabulary asks); qwen3 texts end with <|endoftext|>. A text longer than MaxTokens is cut as
// Hugging Face tokenizers cut it: its first MaxTokens-1 tokens, then the end
// token; truncated reports it.
func (t *Tokenizer) Encode(text string) (ids []int32, truncated bool, err error) {
	ids, err = t.vocab.Tokenize(text, true, false)
	if err != nil {
		return nil, false, err
	}
	if t.arch.Decoder() && t.end >= 0 && (len(ids) == 0 || ids[len(ids)-1] != t.end) {
		ids = append(ids, t.end)
	}
	if len(ids) > t.maxTokens {
		ids = append(ids[:t.maxTokens-1:t.maxTokens-1], t.end)
		truncated = true
	}
	return ids, truncated, nil
}
