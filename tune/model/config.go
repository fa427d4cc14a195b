// Package model builds ragtune's own ggml graphs of embedding models read
// from GGUF files: the bert family (all-MiniLM-L6-v2, bge-small, e5-small),
// the llama family used as embedders (e5-mistral-7b-instruct,
// Linq-Embed-Mistral), qwen3 (Qwen3-Embedding), nomic-bert
// (nomic-embed-text) and gemma-embedding (EmbeddingGemma). The same graph serves inference and training: every
// linear layer can carry a LoRA pair, and a trainable build swaps the ops
// ggml cannot differentiate (LayerNorm, GELU) for differentiable compositions.
package model

import (
	"fmt"

	"github.com/ragtune/ragtune/bindings/gguf"
)

// Arch is a model family.
type Arch string

const (
	Bert      Arch = "bert"
	Llama     Arch = "llama"
	Qwen3     Arch = "qwen3"
	NomicBert Arch = "nomic-bert"
	Gemma     Arch = "gemma-embedding"
)

// postNorm reports whether the family is a post-LayerNorm encoder (bert,
// nomic-bert): embeddings LayerNorm-ed, norms after each residual add.
func (a Arch) postNorm() bool { return a == Bert || a == NomicBert }

// finalNorm reports whether an output_norm precedes pooling.
func (a Arch) finalNorm() bool { return a.Decoder() || a == Gemma }

// Decoder reports whether the family is a pre-RMSNorm causal decoder
// (token embeddings in, a final output_norm before pooling).
func (a Arch) Decoder() bool { return a == Llama || a == Qwen3 }

// Causal reports whether a token attends only to itself and earlier ones.
func (a Arch) Causal() bool { return a.Decoder() }

// Pooling turns per-token states into one vector per text.
type Pooling int

// Values match llama.cpp's enum llama_pooling_type.
const (
	PoolNone Pooling = 0
	PoolMean Pooling = 1
	PoolCLS  Pooling = 2
	PoolLast Pooling = 3
)

func (p Pooling) String() string {
	switch p {
	case PoolMean:
		return "mean"
	case PoolCLS:
		return "cls"
	case PoolLast:
		return "last"
	}
	return "none"
}

// ParsePooling reads "mean", "cls" or "last".
func ParsePooling(s string) (Pooling, error) {
	switch s {
	case "mean":
		return PoolMean, nil
	case "cls":
		return PoolCLS, nil
	case "last":
		return PoolLast, nil
	}
	return 0, fmt.Errorf("unknown pooling %q (want mean, cls or last)", s)
}

// Config holds the hyperparameters the graph needs, read from GGUF keys.
type Config struct {
	Arch     Arch
	Layers   int
	Dim      int // hidden size E
	Heads    int
	KVHeads  int
	FF       int
	Ctx      int // trained context length (bert: rows of position_embd)
	Vocab    int
	Eps      float32 // LayerNorm or RMSNorm epsilon
	RopeBase float32
	Pooling  Pooling // bert, qwen3: from the file; llama: last token (e5-mistral, Linq)
	// HeadSize is attention.key_length when the file sets it (Qwen3's
	// heads are wider than Dim/Heads); 0 means Dim/Heads.
	HeadSize int
	// Window is gemma-embedding's attention.sliding_window: its sliding
	// layers let a token see those at most Window/2 positions away.
	Window int
}

// HeadDim is the size of one attention head.
func (c Config) HeadDim() int {
	if c.HeadSize > 0 {
		return c.HeadSize
	}
	return c.Dim / c.Heads
}

// ReadConfig reads and checks the hyperparameters of a bert or llama GGUF.
func ReadConfig(f *gguf.File) (Config, error) {
	arch := f.Architecture()
	c := Config{Arch: Arch(arch)}
	switch c.Arch {
	case Bert, Llama, Qwen3, NomicBert, Gemma:
	default:
		return c, fmt.Errorf("%s: architecture %q is not supported (want bert, llama, qwen3, nomic-bert or gemma-embedding)", f.Path, arch)
	}
	u32 := func(key string, required bool) (int, error) {
		full := arch + "." + key
		v, ok, err := f.Uint32(full)
		if err != nil {
			// Per-layer keys may be arrays; ragtune needs them uniform.
			if arr, aok, aerr := gguf.LookupArray[uint32](f, full); aok && aerr == nil && len(arr) > 0 {
				for _, x := range arr {
					if x != arr[0] {
						return 0, fmt.Errorf("%s: key %q varies by layer, which ragtune does not support", f.Path, full)
					}
				}
				return int(arr[0]), nil
			}
			return 0, err
		}
		if !ok && required {
			return 0, fmt.Errorf("%s: missing key %q", f.Path, full)
		}
		return int(v), nil
	}
	var err error
	if c.Layers, err = u32("block_count", true); err != nil {
		return c, err
	}
	if c.Dim, err = u32("embedding_length", true); err != nil {
		return c, err
	}
	if c.Heads, err = u32("attention.head_count", true); err != nil {
		return c, err
	}
	if c.KVHeads, err = u32("attention.head_count_kv", false); err != nil {
		return c, err
	}
	if c.KVHeads == 0 {
		c.KVHeads = c.Heads
	}
	if c.FF, err = u32("feed_forward_length", true); err != nil {
		return c, err
	}
	if c.Ctx, err = u32("context_length", true); err != nil {
		return c, err
	}
	if c.HeadSize, err = u32("attention.key_length", false); err != nil {
		return c, err
	}
	if v, err := u32("attention.value_length", false); err != nil {
		return c, err
	} else if v != c.HeadSize {
		return c, fmt.Errorf("%s: attention.key_length %d differs from attention.value_length %d", f.Path, c.HeadSize, v)
	}
	if c.Heads == 0 || (c.HeadSize == 0 && c.Dim%c.Heads != 0) || c.Heads%c.KVHeads != 0 || c.Layers == 0 || c.FF == 0 || c.Ctx == 0 {
		return c, fmt.Errorf("%s: inconsistent sizes: %d layers, dim %d, %d heads, %d kv heads, ff %d, ctx %d", f.Path, c.Layers, c.Dim, c.Heads, c.KVHeads, c.FF, c.Ctx)
	}
	tokens, _, err := f.Strings("tokenizer.ggml.tokens")
	if err != nil {
		return c, err
	}
	c.Vocab = len(tokens)
	switch c.Arch {
	case Bert, NomicBert:
		eps, ok, err := f.Float32(arch + ".attention.layer_norm_epsilon")
		if err != nil || !ok {
			return c, fmt.Errorf("%s: missing or malformed key %q (%v)", f.Path, arch+".attention.layer_norm_epsilon", err)
		}
		c.Eps = eps
		p, ok, err := f.Uint32(arch + ".pooling_type")
		if err != nil {
			return c, err
		}
		c.Pooling = PoolCLS
		if ok {
			c.Pooling = Pooling(p)
		}
		if c.Pooling < PoolMean || c.Pooling > PoolLast {
			return c, fmt.Errorf("%s: %s.pooling_type %d is not mean, cls or last", f.Path, arch, p)
		}
		if c.Arch == NomicBert {
			// nomic-bert rotates whole heads (NeoX) from rope.freq_base.
			c.RopeBase = 10000
			if v, ok, err := f.Float32("nomic-bert.rope.freq_base"); err != nil {
				return c, err
			} else if ok {
				c.RopeBase = v
			}
			if v, ok, err := f.Uint32("nomic-bert.rope.dimension_count"); err != nil {
				return c, err
			} else if ok && int(v) != c.HeadDim() {
				return c, fmt.Errorf("%s: nomic-bert.rope.dimension_count %d differs from the head size %d", f.Path, v, c.HeadDim())
			}
		}
	case Llama, Qwen3:
		if err := readDecoder(f, &c); err != nil {
			return c, err
		}
	case Gemma:
		if err := readGemma(f, &c); err != nil {
			return c, err
		}
	}
	return c, nil
}

// readDecoder reads the RMSNorm and rotary keys of llama and qwen3, and
// qwen3's pooling (Qwen3-Embedding's files say last; llama's pool the last
// token, which llama.cpp leaves to the caller).
func readDecoder(f *gguf.File, c *Config) error {
	arch := string(c.Arch)
	eps, ok, err := f.Float32(arch + ".attention.layer_norm_rms_epsilon")
	if err != nil || !ok {
		return fmt.Errorf("%s: missing or malformed key %q (%v)", f.Path, arch+".attention.layer_norm_rms_epsilon", err)
	}
	c.Eps = eps
	c.RopeBase = 10000
	if v, ok, err := f.Float32(arch + ".rope.freq_base"); err != nil {
		return err
	} else if ok {
		c.RopeBase = v
	}
	if v, ok, err := f.Uint32(arch + ".rope.dimension_count"); err != nil {
		return err
	} else if ok && int(v) != c.HeadDim() {
		return fmt.Errorf("%s: %s.rope.dimension_count %d differs from the head size %d", f.Path, arch, v, c.HeadDim())
	}
	c.Pooling = PoolLast
	if c.Arch == Qwen3 {
		p, ok, err := f.Uint32("qwen3.pooling_type")
		if err != nil {
			return err
		}
		if ok {
			c.Pooling = Pooling(p)
		}
		if c.Pooling < PoolMean || c.Pooling > PoolLast {
			return fmt.Errorf("%s: qwen3.pooling_type %d is not mean, cls or last", f.Path, p)
		}
	}
	return nil
}
