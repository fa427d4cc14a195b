package adapter

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/ragtune/ragtune/bindings/gguf"
)

// Keys that llama.cpp's adapter loader reads; Save writes them itself.
const (
	keyGeneralType = "general.type"
	keyArch        = "general.architecture"
	keyAdapterType = "adapter.type"
	keyAlpha       = "adapter.lora.alpha" // FLOAT32 or llama.cpp aborts
)

// ragtune's own keys. llama.cpp ignores them (it only exposes scalar KVs
// through llama_adapter_meta_*), so they travel with the adapter for
// `ragtune adapter info` and the reports.
const (
	KeyRank    = "ragtune.rank"    // u32, when every pair has the same rank
	KeyTargets = "ragtune.targets" // array[string] of layer kinds: attn_q, ffn_up, ...
)

// Pair is the LoRA update of one weight W (GGUF name Base, ne [In, Out]):
// W + scale·B·A with A ne [In, Rank] (row-major [Rank][In]) and B ne
// [Rank, Out] (row-major [Out][Rank]), exactly the layout of the
// "<Base>.lora_a" and "<Base>.lora_b" tensors in the file.
type Pair struct {
	Base          string
	A, B          []float32
	In, Out, Rank int
}

// Save writes pairs as a llama.cpp LoRA adapter for a base model of
// architecture arch: general.type=adapter, adapter.type=lora, alpha as
// FLOAT32, F32 tensors, 32-byte alignment, plus ragtune.rank and
// ragtune.targets derived from the pairs. meta adds string KVs (for example
// "ragtune.train.loss") and may replace the derived ones, but not the keys
// llama.cpp reads.
// The file is written atomically.
func Save(path, arch string, alpha float32, pairs []Pair, meta map[string]string) error {
	b, err := build(arch, alpha, pairs, meta)
	if err != nil {
		return fmt.Errorf("save adapter %s: %w", path, err)
	}
	return b.WriteFile(path)
}

func build(arch string, alpha float32, pairs []Pair, meta map[string]string) (*gguf.Builder, error) {
	if arch == "" {
		return nil, fmt.Errorf("the base model's architecture is required")
	}
	if math.IsNaN(float64(alpha)) || math.IsInf(float64(alpha), 0) || alpha < 0 {
		return nil, fmt.Errorf("alpha %v must be finite and not negative", alpha)
	}
	if len(pairs) == 0 {
		return nil, fmt.Errorf("no LoRA pairs to save")
	}
	b := gguf.NewBuilder()
	b.MustSet(keyGeneralType, gguf.Of("adapter"))
	b.MustSet(keyArch, gguf.Of(arch))
	b.MustSet(keyAdapterType, gguf.Of("lora"))
	b.MustSet(keyAlpha, gguf.Of(alpha))
	if r, ok := uniformRank(pairs); ok {
		b.MustSet(KeyRank, gguf.Of(uint32(r)))
	}
	b.MustSet(KeyTargets, gguf.ArrayOf(targetKinds(pairs)))
	keys := make([]string, 0, len(meta))
	for k := range meta {
		keys = append(keys, k)
	}
	sort.Strings(keys) // deterministic files
	for _, k := range keys {
		if k == keyGeneralType || k == keyArch || strings.HasPrefix(k, "adapter.") || k == gguf.KeyAlignment {
			return nil, fmt.Errorf("metadata key %q is reserved", k)
		}
		if err := b.Set(k, gguf.Of(meta[k])); err != nil {
			return nil, err
		}
	}
	for i, p := range pairs {
		if err := p.check(); err != nil {
			return nil, fmt.Errorf("pair %d: %w", i, err)
		}
		if err := b.AddTensor(p.Base+".lora_a", gguf.F32, []int64{int64(p.In), int64(p.Rank)}, gguf.EncodeF32(p.A)); err != nil {
			return nil, fmt.Errorf("pair %d: %w", i, err)
		}
		if err := b.AddTensor(p.Base+".lora_b", gguf.F32, []int64{int64(p.Rank), int64(p.Out)}, gguf.EncodeF32(p.B)); err != nil {
			return nil, fmt.Errorf("pair %d: %w", i, err)
		}
	}
	return b, nil
}

// check refuses what llama.cpp would refuse or silently misuse.
func (p Pair) check() error {
	switch {
	case !strings.HasSuffix(p.Base, ".weight"):
		return fmt.Errorf("base tensor %q: LoRA adapts weights, the name must end in .weight", p.Base)
	case strings.HasPrefix(p.Base, "token_embd"):
		// The embedding table uses a transposed layout (A ne [r, V]) that Pair does not describe.
		return fmt.Errorf("base tensor %q: token embedding adapters are not supported", p.Base)
	case p.In < 1 || p.Out < 1 || p.Rank < 1:
		return fmt.Errorf("%s: sizes in=%d out=%d rank=%d must be positive", p.Base, p.In, p.Out, p.Rank)
	case len(p.A) != p.In*p.Rank:
		return fmt.Errorf("%s: lora_a has %d values, want in·rank = %d·%d", p.Base, len(p.A), p.In, p.Rank)
	case len(p.B) != p.Rank*p.Out:
		return fmt.Errorf("%s: lora_b has %d values, want rank·out = %d·%d", p.Base, len(p.B), p.Rank, p.Out)
	}
	if i := firstNonFinite(p.A); i >= 0 {
		return fmt.Errorf("%s.lora_a: value %d is %v", p.Base, i, p.A[i])
	}
	if i := firstNonFinite(p.B); i >= 0 {
		return fmt.Errorf("%s.lora_b: value %d is %v", p.Base, i, p.B[i])
	}
	return nil
}

func firstNonFinite(vals []float32) int {
	for i, v := range vals {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return i
		}
	}
	return -1
}

func uniformRank(pairs []Pair) (int, bool) {
	for _, p := range pairs[1:] {
		if p.Rank != pairs[0].Rank {
			return 0, false
		}
	}
	return pairs[0].Rank, true
}

// targetKinds lists the distinct layer kinds ("attn_q") of the adapted
// weights ("blk.3.attn_q.weight"), sorted.
func targetKinds(pairs []Pair) []string {
	seen := map[string]bool{}
	var out []string
	for _, p := range pairs {
		k := kindOf(p.Base)
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// kindOf strips the block prefix and the .weight suffix of a tensor name.
func kindOf(name string) string {
	k := strings.TrimSuffix(name, ".weight")
	if rest, ok := strings.CutPrefix(k, "blk."); ok {
		if i := strings.IndexByte(rest, '.'); i >= 0 {
			k = rest[i+1:]
		}
	}
	return k
}
