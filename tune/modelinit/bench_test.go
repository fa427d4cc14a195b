package modelinit

import (
	"path/filepath"
	"testing"

	"github.com/ragtune/ragtune/bindings/gguf"
)

// miniLM is the all-MiniLM-L6-v2 shape (6 layers, 384 wide, 12 heads, FF
// 1536, context 512) with a vocabulary learnt from the mini corpus.
func miniLM(b *testing.B, typ gguf.TensorType) Options {
	texts := sharedTexts(b, 0)
	v, err := BuildWordPiece(texts, 30522)
	if err != nil {
		b.Fatal(err)
	}
	return Options{Arch: "bert", Vocabulary: v, Layers: 6, Dim: 384, Heads: 12, FF: 1536, Ctx: 512, Type: typ}
}

func BenchmarkBuildWordPiece(b *testing.B) {
	texts := sharedTexts(b, 0)
	for b.Loop() {
		if _, err := BuildWordPiece(texts, 30522); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBuildSentencePiece(b *testing.B) {
	texts := sharedTexts(b, 0)
	for b.Loop() {
		if _, err := BuildSentencePiece(texts, 32000); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkInitMiniLM(b *testing.B) {
	for _, typ := range []gguf.TensorType{gguf.F32, gguf.Q8_0} {
		b.Run(typ.String(), func(b *testing.B) {
			o := miniLM(b, typ)
			path := filepath.Join(b.TempDir(), "m.gguf")
			for b.Loop() {
				if _, err := Write(path, o); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkQuantizeMiniLM(b *testing.B) {
	dir := b.TempDir()
	src := filepath.Join(dir, "f32.gguf")
	if _, err := Write(src, miniLM(b, gguf.F32)); err != nil {
		b.Fatal(err)
	}
	for _, typ := range QuantizeTypes {
		b.Run(typ.String(), func(b *testing.B) {
			for b.Loop() {
				if _, err := Quantize(src, filepath.Join(dir, "q.gguf"), typ); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOpenValidateMiniLM: parsing the metadata (30k-token vocabulary)
// and validating it, which every model load pays.
func BenchmarkOpenValidateMiniLM(b *testing.B) {
	src := filepath.Join(b.TempDir(), "f32.gguf")
	if _, err := Write(src, miniLM(b, gguf.F32)); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		f, err := gguf.Open(src)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := gguf.ValidateModel(f, "bert"); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}

// BenchmarkDecodeQ8_0MiniLM: dequantizing the FFN weights of one layer in Go.
func BenchmarkDecodeQ8_0MiniLM(b *testing.B) {
	src := filepath.Join(b.TempDir(), "q8.gguf")
	if _, err := Write(src, miniLM(b, gguf.Q8_0)); err != nil {
		b.Fatal(err)
	}
	f, err := gguf.Open(src)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	info, _ := f.Tensor("blk.0.ffn_up.weight")
	b.SetBytes(info.Elements() * 4)
	for b.Loop() {
		if _, err := f.Float32s("blk.0.ffn_up.weight"); err != nil {
			b.Fatal(err)
		}
	}
}
