package modelinit

import (
	"fmt"
	"sort"
	"strings"

	"github.com/ragtune/ragtune/bindings/gguf"
)

// Info summarises a model or adapter file for `ragtune model info`.
type Info struct {
	Path        string         `json:"path"`
	Kind        string         `json:"kind"` // "model" or "adapter"
	Arch        string         `json:"arch"`
	Name        string         `json:"name,omitempty"`
	GGUFVersion uint32         `json:"gguf_version"`
	FileType    string         `json:"file_type,omitempty"`
	FileTypeID  *uint32        `json:"file_type_id,omitempty"`
	Layers      uint32         `json:"layers,omitempty"`
	Dim         uint32         `json:"dim,omitempty"`
	Heads       uint32         `json:"heads,omitempty"`
	KVHeads     uint32         `json:"kv_heads,omitempty"`
	HeadDim     uint32         `json:"head_dim,omitempty"`
	FF          uint32         `json:"ff,omitempty"`
	Context     uint32         `json:"context,omitempty"`
	Pooling     string         `json:"pooling,omitempty"`
	Tokenizer   string         `json:"tokenizer,omitempty"`
	Vocab       int            `json:"vocab,omitempty"`
	Tensors     int            `json:"tensors"`
	TensorTypes map[string]int `json:"tensor_types"`
	TensorBytes int64          `json:"tensor_bytes"`
	Params      int64          `json:"params"`
	FileBytes   int64          `json:"file_bytes"`
	// Problem is what llama.cpp's loader would refuse, "" when the file
	// passes gguf.ValidateModel (models only).
	Problem string       `json:"problem,omitempty"`
	Adapter *AdapterInfo `json:"adapter,omitempty"`
}

// AdapterInfo describes a LoRA adapter file.
type AdapterInfo struct {
	Type     string     `json:"type"`            // adapter.type ("lora")
	Alpha    *float32   `json:"alpha,omitempty"` // adapter.lora.alpha
	Rank     int        `json:"rank"`            // common rank, 0 when the pairs differ
	Pairs    []LoRAPair `json:"pairs"`
	Problems []string   `json:"problems,omitempty"`
}

// LoRAPair is one adapted base tensor.
type LoRAPair struct {
	Target string  `json:"target"` // base tensor name, e.g. blk.0.attn_q.weight
	Rank   int     `json:"rank"`
	A      []int64 `json:"a"` // ne of .lora_a
	B      []int64 `json:"b"` // ne of .lora_b
	Type   string  `json:"type"`
}

// Describe summarises f.
func Describe(f *gguf.File) Info {
	in := Info{Path: f.Path, Kind: "model", Arch: f.Architecture(), GGUFVersion: f.Version,
		Tensors: len(f.Tensors), TensorTypes: map[string]int{}, FileBytes: f.Size()}
	in.Name, _, _ = f.String("general.name")
	if ft, ok, err := f.Uint32("general.file_type"); ok && err == nil {
		in.FileType, in.FileTypeID = gguf.FileType(ft).String(), &ft
	}
	for _, t := range f.Tensors {
		in.TensorTypes[t.Type.String()]++
		in.TensorBytes += t.Size
		in.Params += t.Elements()
	}
	if t, _, _ := f.String("general.type"); t == "adapter" {
		in.Kind = "adapter"
		in.Adapter = describeAdapter(f)
		return in
	}
	hp, err := gguf.ValidateModel(f, "")
	if err != nil {
		in.Problem = err.Error()
		return in
	}
	in.Layers, in.Dim, in.Heads, in.KVHeads = hp.Layers, hp.Embd, hp.Heads[0], hp.HeadsKV[0]
	in.HeadDim, in.FF, in.Context = hp.HeadDimK, hp.FF[0], hp.Context
	in.Tokenizer, in.Vocab = hp.Tokenizer, hp.Vocab
	in.Pooling = gguf.PoolingName(hp.Pooling)
	if hp.Arch == "llama" {
		in.Pooling = "last" // chosen by the caller; llama.cpp reads no pooling key for llama
	}
	return in
}

func describeAdapter(f *gguf.File) *AdapterInfo {
	a := &AdapterInfo{}
	a.Type, _, _ = f.String("adapter.type")
	if a.Type != "lora" {
		a.Problems = append(a.Problems, fmt.Sprintf("adapter.type is %q, llama.cpp needs \"lora\"", a.Type))
	}
	if alpha, ok, err := f.Float32("adapter.lora.alpha"); err != nil {
		a.Problems = append(a.Problems, "adapter.lora.alpha must be f32 (llama.cpp aborts otherwise)")
	} else if ok {
		a.Alpha = &alpha
	}
	halves := map[string][2]*gguf.TensorInfo{}
	for i := range f.Tensors {
		t := &f.Tensors[i]
		switch {
		case strings.HasSuffix(t.Name, ".lora_a"):
			h := halves[strings.TrimSuffix(t.Name, ".lora_a")]
			h[0] = t
			halves[strings.TrimSuffix(t.Name, ".lora_a")] = h
		case strings.HasSuffix(t.Name, ".lora_b"):
			h := halves[strings.TrimSuffix(t.Name, ".lora_b")]
			h[1] = t
			halves[strings.TrimSuffix(t.Name, ".lora_b")] = h
		case strings.HasSuffix(t.Name, "_norm.weight"):
			// llama.cpp skips norm vectors in adapters.
		default:
			a.Problems = append(a.Problems, fmt.Sprintf("tensor %q is neither .lora_a nor .lora_b", t.Name))
		}
	}
	targets := make([]string, 0, len(halves))
	for k := range halves {
		targets = append(targets, k)
	}
	sort.Strings(targets)
	for _, name := range targets {
		h := halves[name]
		if h[0] == nil || h[1] == nil {
			a.Problems = append(a.Problems, fmt.Sprintf("%s has only one of .lora_a and .lora_b", name))
			continue
		}
		// llama.cpp takes the rank from lora_b's first dimension.
		p := LoRAPair{Target: name, Rank: int(h[1].Dims[0]), A: h[0].Dims, B: h[1].Dims, Type: h[0].Type.String()}
		a.Pairs = append(a.Pairs, p)
		if len(a.Pairs) == 1 {
			a.Rank = p.Rank
		} else if a.Rank != p.Rank {
			a.Rank = 0
		}
	}
	return a
}

// Text renders the summary for a terminal.
func (in Info) Text() string {
	var b strings.Builder
	line := func(k string, format string, args ...any) {
		fmt.Fprintf(&b, "%-12s "+format+"\n", append([]any{k + ":"}, args...)...)
	}
	line("file", "%s (%s, GGUF v%d)", in.Path, humanBytes(in.FileBytes), in.GGUFVersion)
	line("kind", "%s", in.Kind)
	line("arch", "%s", in.Arch)
	if in.Name != "" {
		line("name", "%s", in.Name)
	}
	if in.FileType != "" {
		line("file type", "%s (%d)", in.FileType, *in.FileTypeID)
	}
	if in.Layers > 0 {
		line("layers", "%d", in.Layers)
		line("dim", "%d (heads %d, kv heads %d, head dim %d)", in.Dim, in.Heads, in.KVHeads, in.HeadDim)
		line("ff", "%d", in.FF)
		line("context", "%d", in.Context)
		line("pooling", "%s", in.Pooling)
		line("vocab", "%d (%s tokenizer)", in.Vocab, in.Tokenizer)
	}
	types := make([]string, 0, len(in.TensorTypes))
	for t, n := range in.TensorTypes {
		types = append(types, fmt.Sprintf("%s×%d", t, n))
	}
	sort.Strings(types)
	line("tensors", "%d (%s), %s", in.Tensors, strings.Join(types, " "), humanBytes(in.TensorBytes))
	line("parameters", "%d (%.2fM)", in.Params, float64(in.Params)/1e6)
	if a := in.Adapter; a != nil {
		alpha := "absent"
		if a.Alpha != nil {
			alpha = fmt.Sprint(*a.Alpha)
		}
		line("adapter", "%s, %d pairs, rank %d, alpha %s", a.Type, len(a.Pairs), a.Rank, alpha)
		for _, p := range a.Pairs {
			fmt.Fprintf(&b, "  %-36s rank %-4d A %v  B %v  %s\n", p.Target, p.Rank, p.A, p.B, p.Type)
		}
		for _, p := range a.Problems {
			line("problem", "%s", p)
		}
	}
	if in.Problem != "" {
		line("problem", "%s", in.Problem)
	}
	return b.String()
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
