package modelinit

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/ragtune/ragtune/bindings"
	"github.com/ragtune/ragtune/bindings/gguf"
)

// TestGoCodecsMatchGGML: the pure-Go F16 encoder writes ggml's bytes, and the
// pure-Go decoders of package gguf give exactly ggml's dequantized values.
func TestGoCodecsMatchGGML(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	const rows, cols = 3, 512
	src := make([]float32, rows*cols)
	for i := range src {
		src[i] = float32(rng.NormFloat64() * 0.5)
	}
	src[5] = 70000 // overflows to inf in F16
	src[6] = 1e-7  // subnormal in F16
	want, err := bindings.Quantize(bindings.TypeF16, src, rows, cols)
	if err != nil {
		t.Fatal(err)
	}
	if got := gguf.EncodeF16(src); !bytes.Equal(got, want) {
		t.Error("Go F16 encoding differs from ggml's")
	}
	src[5] = 3
	for _, typ := range []gguf.TensorType{gguf.F16, gguf.BF16, gguf.Q8_0, gguf.Q4_0, gguf.Q4_1, gguf.Q5_0, gguf.Q5_1, gguf.Q4_K, gguf.Q6_K} {
		raw, err := bindings.Quantize(bindings.Type(typ), src, rows, cols)
		if err != nil {
			t.Fatal(typ, err)
		}
		ref, err := bindings.Dequantize(bindings.Type(typ), raw, rows, cols)
		if err != nil {
			t.Fatal(typ, err)
		}
		got, err := gguf.Decode(typ, raw, rows*cols)
		if err != nil {
			t.Fatal(typ, err)
		}
		for i := range ref {
			if got[i] != ref[i] {
				t.Fatalf("%s: element %d decodes to %g, ggml says %g", typ, i, got[i], ref[i])
			}
		}
	}
}
