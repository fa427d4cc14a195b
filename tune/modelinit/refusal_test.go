package modelinit

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ragtune/ragtune/bindings"
	"github.com/ragtune/ragtune/bindings/gguf"
)

// TestRefusalsAgreeWithLlamaCpp: every broken model that our validator
// refuses (in the cases where llama.cpp answers with an error rather than
// an abort) is refused by llama.cpp's loader as well, so the Go errors are
// not stricter than the real thing there.
func TestRefusalsAgreeWithLlamaCpp(t *testing.T) {
	dir := t.TempDir()
	src := writeModel(t, dir, Options{Arch: "bert", Layers: 1, Dim: 32, Heads: 2, FF: 64, Vocab: 200})
	f, err := gguf.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// rebuild copies src, letting edit change the metadata and skip or
	// replace tensors (return false to drop a tensor).
	rebuild := func(name string, editKV func(b *gguf.Builder), keep func(b *gguf.Builder, ti gguf.TensorInfo) bool) string {
		b := gguf.NewBuilder()
		for _, kv := range f.KVs {
			b.MustSet(kv.Key, kv.Value)
		}
		if editKV != nil {
			editKV(b)
		}
		for _, ti := range f.Tensors {
			if keep != nil && !keep(b, ti) {
				continue
			}
			data, err := f.TensorData(ti.Name)
			if err != nil {
				t.Fatal(err)
			}
			if err := b.AddTensor(ti.Name, ti.Type, ti.Dims, data); err != nil {
				t.Fatal(err)
			}
		}
		p := filepath.Join(dir, name+".gguf")
		if err := b.WriteFile(p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	valid, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := map[string]string{
		"unknown arch": rebuild("arch", func(b *gguf.Builder) { b.MustSet("general.architecture", gguf.Of("bort")) }, nil),
		"missing tensor": rebuild("missing", nil, func(_ *gguf.Builder, ti gguf.TensorInfo) bool {
			return ti.Name != "blk.0.attn_k.weight"
		}),
		"extra tensor": rebuild("extra", nil, func(b *gguf.Builder, ti gguf.TensorInfo) bool {
			if ti.Name == "token_embd.weight" {
				b.AddTensor("pooler.dense.weight", gguf.F32, []int64{32, 32}, make([]byte, 4*32*32))
			}
			return true
		}),
		"wrong shape": rebuild("shape", nil, func(b *gguf.Builder, ti gguf.TensorInfo) bool {
			if ti.Name != "blk.0.ffn_up.weight" {
				return true
			}
			b.AddTensor(ti.Name, gguf.F32, []int64{32, 32}, make([]byte, 4*32*32))
			return false
		}),
		"u32 key stored as i32": rebuild("i32", func(b *gguf.Builder) { b.MustSet("bert.context_length", gguf.Of(int32(64))) }, nil),
		"missing eps":           rebuild("eps", func(b *gguf.Builder) { b.Delete("bert.attention.layer_norm_epsilon") }, nil),
		"truncated":             write("trunc.gguf", valid[:len(valid)*2/3]),
		"garbage":               write("garbage.gguf", []byte("GGUF\x03\x00\x00\x00 this is not a model at all, just text")),
		"not gguf":              write("text.gguf", []byte("hello")),
	}
	for name, path := range cases {
		t.Run(name, func(t *testing.T) {
			g, err := gguf.Open(path)
			if err == nil {
				_, err = gguf.ValidateModel(g, "")
				g.Close()
			}
			if err == nil {
				t.Fatal("our validator accepts it")
			}
			t.Logf("ours: %v", err)
			m, lerr := bindings.LoadLlamaModel(path, false)
			if lerr == nil {
				m.Close()
				t.Fatal("llama.cpp loads it")
			}
		})
	}
}
