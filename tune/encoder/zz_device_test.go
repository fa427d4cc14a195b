package encoder

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/ragtune/ragtune/bindings"
	"github.com/ragtune/ragtune/bindings/devicetest"
	"github.com/ragtune/ragtune/bindings/gguf"
)

// This file's name makes its test the package's last (go test runs files
// in name order): it loads the test device's backend library, and what a
// library brings into the process (its own ggml, the device's driver) must
// not reach the CPU tests.
//
// TestDeviceParity embeds the same texts on the test device
// ($RAGTUNE_DEVICE, default vulkan) and on the CPU. Tolerances: f32 weights
// within f16 rounding, max abs difference 5e-3 on unit-scale embeddings:
// ggml's Vulkan backend runs f32 products with f16 operands on a device
// that has f16 arithmetic (lavapipe does; 2.5e-4 relative per product,
// measured; GGML_VK_DISABLE_F16 makes them f32: 1e-7). Measured on
// lavapipe: bert 4.1e-5, nomic-bert 2.7e-5, gemma-embedding 1.7e-4, llama
// 8.4e-4, qwen3 2.2e-3 (cosine 1.000000). Quantized weights quantize the
// activations on both, in different blocks, so cosine ≥ 0.999.
func TestDeviceParity(t *testing.T) {
	const f32Tolerance = 5e-3
	dev := devicetest.Device(t)
	// Made here, not read from the shared data: scripts/gpu-check runs this
	// on a lent machine that has only the test binary.
	texts := []string{"", "Ünïcödé façade — naïve café, 日本語のテキスト", strings.Repeat("a long text of many words ", 40)}
	for i := range 12 {
		texts = append(texts, fmt.Sprintf("package w%d provides w%d for w%d and w%d", i, i*7%30, i*13%30, i*3%30))
	}
	for _, arch := range []string{"bert", "llama", "qwen3", "nomic-bert", "gemma-embedding"} {
		types := []gguf.TensorType{gguf.F32, gguf.Q8_0, gguf.Q4_0}
		if arch != "bert" && arch != "llama" {
			types = types[:1] // their own ops (NeoX rope, q/k norms, windows) in f32
		}
		for _, typ := range types {
			t.Run(fmt.Sprintf("%s/%s", arch, bindings.Type(typ)), func(t *testing.T) {
				path := tinyModel(t, arch, typ, texts)
				embed := func(device string) ([][]float32, bindings.Usage) {
					return embedTexts(t, path, Options{Device: device, Threads: 2, Batch: 5}, texts)
				}
				want, _ := embed("cpu")
				got, use := embed(dev.Spec())
				if use.Device != dev.Name() || use.PeakDeviceBytes <= 0 {
					t.Fatalf("usage %+v: want device %s with its peak memory", use, dev.Name())
				}
				var maxAbs float64
				minCos := 1.0
				for i := range want {
					for j := range want[i] {
						maxAbs = math.Max(maxAbs, math.Abs(float64(got[i][j]-want[i][j])))
					}
					minCos = math.Min(minCos, cosine(got[i], want[i]))
				}
				t.Logf("%s: max abs diff %.2g, min cosine %.6f; %s", dev.Name(), maxAbs, minCos, use.Summary())
				if typ == gguf.F32 && !(maxAbs <= f32Tolerance) {
					t.Errorf("f32: max abs difference %.3g from the CPU, want <= %g", maxAbs, f32Tolerance)
				}
				if !(minCos >= 0.999) {
					t.Errorf("min cosine %.6f with the CPU, want >= 0.999", minCos)
				}
			})
		}
	}
}

// TestDeviceLlamaEngine runs llama.cpp's own embedding path with every
// layer on the test device (the reference the GPU check times ragtune's
// engine against) and compares it with ragtune's graph on the same device:
// the same vectors, so the two engines' speeds compare like for like.
// Tolerances as TestDeviceParity's (both products run on the device, each
// engine's graph its own way): f32 cosine ≥ 0.9999, quantized ≥ 0.999.
func TestDeviceLlamaEngine(t *testing.T) {
	dev := devicetest.Device(t)
	texts := []string{"Ünïcödé façade — naïve café", strings.Repeat("a long text of many words ", 10)}
	for i := range 8 {
		texts = append(texts, fmt.Sprintf("package w%d provides w%d for w%d", i, i*7%30, i*13%30))
	}
	for _, arch := range []string{"bert", "llama"} {
		for _, typ := range []gguf.TensorType{gguf.F32, gguf.Q8_0} {
			t.Run(fmt.Sprintf("%s/%s", arch, bindings.Type(typ)), func(t *testing.T) {
				path := tinyModel(t, arch, typ, texts)
				embed := func(engine string) ([][]float32, bindings.Usage) {
					return embedTexts(t, path, Options{Engine: engine, Device: dev.Spec(), Threads: 2, Batch: 4}, texts)
				}
				ours, _ := embed(EngineGGML)
				ref, use := embed(EngineLlama)
				if use.Device != dev.Name() {
					t.Errorf("llama.cpp's engine reports device %q, want %s", use.Device, dev.Name())
				}
				minCos := 1.0
				for i := range ours {
					minCos = min(minCos, cosine(ours[i], ref[i]))
				}
				want := 0.9999
				if typ != gguf.F32 {
					want = 0.999
				}
				t.Logf("%s: min cosine %.6f between llama.cpp's engine and ours", dev.Name(), minCos)
				if !(minCos >= want) {
					t.Errorf("min cosine %.6f, want >= %v", minCos, want)
				}
			})
		}
	}
}
