package encoder

import (
	"context"

	"fmt"
	"github.com/ragtune/ragtune/bindings"
	"math"
	"sort"

	"github.com/ragtune/ragtune/retrieval"
	"github.com/ragtune/ragtune/tune/model"
)

// Engine names.
const (
	EngineGGML  = "ggml"      // ragtune's own graph: per-sequence attention over padded batches
	EngineLlama = "llama.cpp" // llama.cpp's embedding path
)

// Options configure an Encoder.
type Options struct {
	Engine string // EngineGGML (default) or EngineLlama
	// Device is where the engine runs, as --device names it ("" is the
	// CPU): ragtune's graphs on ggml's backend for it, or llama.cpp with
	// every layer offloaded to it.
	Device    string
	Threads   int
	Batch     int  // texts per compute
	MaxTokens int  // per text; 0: the model's context length
	Normalize bool // L2-normalise outputs (llama.cpp never does)
	// QueryInstruction prefixes query texts for instruction-tuned embedders,
	// e.g. "Instruct: Given a question, retrieve passages that answer it\nQuery: ".
	QueryInstruction string
	Adapter          string  // LoRA adapter GGUF applied without merging
	AdapterScale     float32 // user scale (0 means 1)
	// Exact runs llama.cpp with flash attention off and an F32 KV cache.
	Exact bool
	// QueryOnlyAdapter applies the model's adapters to queries only;
	// documents are embedded by the frozen base (query-side adaptation).
	QueryOnlyAdapter bool
}

// Stats count what an Encoder has done.
type Stats struct {
	Texts, Tokens, Truncated int
}

// Encoder embeds texts with one model; it implements retrieval.Embedder.
type Encoder struct {
	opts  Options
	cfg   model.Config
	tok   *Tokenizer
	eng   engine
	stats Stats
	// borrowedTok: the tokenizer belongs to the caller of FromModel.
	borrowedTok bool
}

type engine interface {
	embed(seqs [][]int32, kind retrieval.TextKind) ([][]float32, error)
	close()
}

var _ retrieval.Embedder = (*Encoder)(nil)

// Open loads a model for embedding.
func Open(path string, opts Options) (*Encoder, error) {
	opts = withDefaults(opts)
	cfg, err := readConfig(path)
	if err != nil {
		return nil, err
	}
	tok, err := NewTokenizer(path, cfg, opts.MaxTokens)
	if err != nil {
		return nil, err
	}
	e := &Encoder{opts: opts, cfg: cfg, tok: tok}
	if opts.QueryOnlyAdapter && opts.Engine == EngineLlama {
		tok.Close()
		return nil, fmt.Errorf("query-side-only adapters need the %s engine", EngineGGML)
	}
	switch opts.Engine {
	case "", EngineGGML:
		e.eng, err = newGraphEngine(path, tok, opts)
	case EngineLlama:
		e.eng, err = newLlamaEngine(path, cfg, opts)
	default:
		err = fmt.Errorf("unknown engine %q (want %s or %s)", opts.Engine, EngineGGML, EngineLlama)
	}
	if err != nil {
		tok.Close()
		return nil, err
	}
	return e, nil
}

// FromModel embeds with a model already in memory, with whatever adapters
// it carries (training evaluates the live model this way). The caller keeps
// ownership of m, be and tok; Close frees only the encoder's graphs.
func FromModel(m *model.Model, be *bindings.Backend, tok *Tokenizer, opts Options) *Encoder {
	opts = withDefaults(opts)
	eng := &graphEngine{be: be, m: m, alloc: be.NewAllocator(), graphs: map[graphKey]*compiled{}, borrowed: true, queryOnly: opts.QueryOnlyAdapter}
	return &Encoder{opts: opts, cfg: m.Config, tok: tok, eng: eng, borrowedTok: true}
}

func withDefaults(opts Options) Options {
	if opts.Threads <= 0 {
		opts.Threads = 1
	}
	if opts.Batch <= 0 {
		opts.Batch = 16
	}
	if opts.AdapterScale == 0 {
		opts.AdapterScale = 1
	}
	return opts
}

// Close frees the model.
func (e *Encoder) Close() {
	e.eng.close()
	if !e.borrowedTok {
		e.tok.Close()
	}
}

// Dim is the embedding size.
func (e *Encoder) Dim() int { return e.cfg.Dim }

// Config is the model's configuration.
func (e *Encoder) Config() model.Config { return e.cfg }

// Tokenizer is the shared tokenizer.
func (e *Encoder) Tokenizer() *Tokenizer { return e.tok }

// Usage is the device the encoder runs on, its peak memory and the ops
// that fell back to the CPU (llama.cpp's engine: its device only; llama.cpp
// keeps its own buffers).
func (e *Encoder) Usage() bindings.Usage {
	switch eng := e.eng.(type) {
	case *graphEngine:
		return eng.be.Usage()
	case *llamaEngine:
		return bindings.Usage{Device: eng.device}
	}
	return bindings.Usage{}
}

// Stats returns the running counts.
func (e *Encoder) Stats() Stats { return e.stats }

// Embed returns one vector per text.
func (e *Encoder) Embed(ctx context.Context, texts []string, kind retrieval.TextKind) ([][]float32, error) {
	seqs, err := e.Tokenize(texts, kind)
	if err != nil {
		return nil, err
	}
	return e.EmbedTokens(ctx, seqs, kind)
}

// Tokenize turns texts into the token sequences EmbedTokens takes, adding
// the query instruction to queries and counting truncated texts.
func (e *Encoder) Tokenize(texts []string, kind retrieval.TextKind) ([][]int32, error) {
	seqs := make([][]int32, len(texts))
	for i, t := range texts {
		if kind == retrieval.Query {
			t = e.opts.QueryInstruction + t
		}
		ids, cut, err := e.tok.Encode(t)
		if err != nil {
			return nil, fmt.Errorf("text %d: %w", i, err)
		}
		seqs[i] = ids
		if cut {
			e.stats.Truncated++
		}
	}
	return seqs, nil
}

// EmbedTokens embeds already tokenized texts. Texts are sorted by length so
// each batch pads little, then returned in input order.
func (e *Encoder) EmbedTokens(ctx context.Context, seqs [][]int32, kind retrieval.TextKind) ([][]float32, error) {
	order := make([]int, len(seqs))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return len(seqs[order[a]]) < len(seqs[order[b]]) })
	out := make([][]float32, len(seqs))
	for _, s := range seqs {
		e.stats.Tokens += len(s)
	}
	e.stats.Texts += len(seqs)
	for lo, hi := 0, 0; lo < len(order); lo = hi {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hi = e.batchEnd(seqs, order, lo)
		batch := make([][]int32, 0, hi-lo)
		for _, i := range order[lo:hi] {
			batch = append(batch, seqs[i])
		}
		vecs, err := e.eng.embed(batch, kind)
		if err != nil {
			return nil, err
		}
		for j, i := range order[lo:hi] {
			if e.opts.Normalize {
				normalize(vecs[j])
			}
			out[i] = vecs[j]
		}
	}
	return out, nil
}

// batchTokens caps the padded tokens of one ggml compute. Sorted texts
// still vary from a few tokens to the context, and a batch of long texts
// costs memory and cache in proportion to B·S (activations) and B·S²
// (scores) for no gain in throughput, so long texts go in smaller batches.
const batchTokens = 4096

// batchEnd is the end (exclusive) of the batch that starts at order[lo]:
// at most Options.Batch texts and, for the ggml engine, at most
// batchTokens padded tokens unless one text alone exceeds them.
func (e *Encoder) batchEnd(seqs [][]int32, order []int, lo int) int {
	hi := min(lo+e.opts.Batch, len(order))
	if _, ok := e.eng.(*graphEngine); !ok {
		return hi
	}
	for n := lo + 1; n < hi; n++ {
		// order is sorted by length, so text n sets the padded length.
		if (n+1-lo)*paddedLen(len(seqs[order[n]])) > batchTokens {
			return n
		}
	}
	return hi
}

func normalize(v []float32) {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	if s == 0 {
		return
	}
	inv := float32(1 / math.Sqrt(s))
	for i := range v {
		v[i] *= inv
	}
}

// Options returns the options the encoder was opened with.
func (e *Encoder) Options() Options { return e.opts }
