package adapter

import (
	"fmt"
	"sort"
	"strings"

	"github.com/ragtune/ragtune/bindings/gguf"
)

// Info describes an adapter file as llama.cpp's loader sees it.
type Info struct {
	Path    string
	Arch    string
	Alpha   float32 // 0 when absent: llama.cpp then uses the user scale alone
	Pairs   []PairInfo
	Targets []string // distinct layer kinds, sorted
	Skipped []string // *_norm.weight tensors, which llama.cpp ignores
	// Meta holds the other scalar KVs (general.name, ragtune.*), rendered as text.
	Meta map[string]string
}

// PairInfo is one lora_a/lora_b pair of an adapter file.
type PairInfo struct {
	Base string          // adapted weight, e.g. "blk.0.attn_q.weight"
	In   int             // ne0 of the base weight
	Out  int             // ne1 of the base weight
	Rank int             // r = lora_b.ne0, which scales alpha
	A, B gguf.TensorInfo // the two tensors
}

// Scale is the factor llama.cpp multiplies B·A by: user·alpha/r, or user
// alone when the adapter has no alpha.
func (p PairInfo) Scale(alpha, user float32) float32 {
	if alpha == 0 {
		return user
	}
	return user * alpha / float32(p.Rank)
}

// isEmbedding reports whether the pair adapts a token embedding table, whose
// adapter is stored transposed: A ne [r, V], B ne [r, E].
func (p PairInfo) isEmbedding() bool { return strings.HasPrefix(p.Base, "token_embd") }

// Inspect reads an adapter's metadata and tensor table and checks them as
// llama.cpp's loader does, without a base model: general.type, adapter.type,
// a FLOAT32 alpha, only .lora_a/.lora_b (and ignored *_norm.weight) tensors,
// both halves present, 2-D, equal ranks.
func Inspect(path string) (*Info, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return inspect(f)
}

func inspect(f *gguf.File) (*Info, error) {
	path := f.Path
	if typ, _, _ := f.String(keyGeneralType); typ != "adapter" {
		if m, _, _ := f.String("ragtune.method"); m == "dora" {
			return nil, fmt.Errorf("%s is a DoRA run's merged model, not an adapter (a GGUF LoRA adapter cannot hold DoRA's magnitudes): use it as the model itself", path)
		}
		return nil, fmt.Errorf("%s: %s is %q, not \"adapter\": not a LoRA adapter", path, keyGeneralType, typ)
	}
	if typ, _, _ := f.String(keyAdapterType); typ != "lora" {
		return nil, fmt.Errorf("%s: %s is %q, not \"lora\"", path, keyAdapterType, typ)
	}
	info := &Info{Path: path, Arch: f.Architecture(), Meta: map[string]string{}}
	if info.Arch == "" {
		return nil, fmt.Errorf("%s: %s is missing", path, keyArch)
	}
	// Any other type than FLOAT32 aborts llama.cpp, so refuse it here.
	var err error
	if info.Alpha, _, err = f.Float32(keyAlpha); err != nil {
		return nil, err
	}
	for _, kv := range f.KVs {
		if kv.Value.Type != gguf.TypeArray && kv.Key != keyGeneralType && kv.Key != keyAdapterType && kv.Key != keyArch && kv.Key != keyAlpha {
			info.Meta[kv.Key] = fmt.Sprint(kv.Value.Any())
		}
	}
	halves := map[string]*PairInfo{}
	var order []string
	for _, t := range f.Tensors {
		base, half, ok := splitName(t.Name)
		if !ok {
			if strings.HasSuffix(t.Name, "_norm.weight") {
				info.Skipped = append(info.Skipped, t.Name)
				continue
			}
			return nil, fmt.Errorf("%s: tensor %q: a LoRA adapter holds only <weight>.lora_a and <weight>.lora_b tensors", path, t.Name)
		}
		dims, ok := matrix(t.Dims)
		if !ok {
			return nil, fmt.Errorf("%s: tensor %q has shape %s, want 2-D", path, t.Name, t.Shape())
		}
		t.Dims = dims
		p := halves[base]
		if p == nil {
			p = &PairInfo{Base: base}
			halves[base] = p
			order = append(order, base)
		}
		if half == "a" {
			p.A = t
		} else {
			p.B = t
		}
	}
	if len(order) == 0 {
		return nil, fmt.Errorf("%s: the adapter has no lora_a/lora_b tensors", path)
	}
	kinds := map[string]bool{}
	for _, base := range order {
		p := halves[base]
		if p.A.Name == "" || p.B.Name == "" {
			return nil, fmt.Errorf("%s: %q has only one of %s.lora_a and %s.lora_b", path, base, base, base)
		}
		p.Rank = int(p.B.Dims[0])
		rankA := int(p.A.Dims[1])
		if p.isEmbedding() {
			rankA = int(p.A.Dims[0])
			p.In, p.Out = int(p.B.Dims[1]), int(p.A.Dims[1])
		} else {
			p.In, p.Out = int(p.A.Dims[0]), int(p.B.Dims[1])
		}
		if rankA != p.Rank {
			return nil, fmt.Errorf("%s: %q: lora_a %s and lora_b %s have different ranks (%d, %d)", path, base, p.A.Shape(), p.B.Shape(), rankA, p.Rank)
		}
		info.Pairs = append(info.Pairs, *p)
		if k := kindOf(base); !kinds[k] {
			kinds[k] = true
			info.Targets = append(info.Targets, k)
		}
	}
	sort.Strings(info.Targets)
	return info, nil
}

// Ranks lists the distinct ranks of the pairs, ascending (one for adapters
// ragtune trains).
func (in *Info) Ranks() []int {
	seen := map[int]bool{}
	var out []int
	for _, p := range in.Pairs {
		if !seen[p.Rank] {
			seen[p.Rank] = true
			out = append(out, p.Rank)
		}
	}
	sort.Ints(out)
	return out
}

// matrix reads a LoRA half's dims as 2-D. Writers drop trailing dims of 1
// as ggml does (a rank-1 lora_a [in, 1] is stored as [in]), and llama.cpp
// reads the missing dim as 1.
func matrix(dims []int64) ([]int64, bool) {
	switch len(dims) {
	case 1:
		return []int64{dims[0], 1}, true
	case 2:
		return dims, true
	}
	return nil, false
}
