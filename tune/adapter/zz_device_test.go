package adapter

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/ragtune/ragtune/bindings/devicetest"
	"github.com/ragtune/ragtune/bindings/gguf"
)

// This file's name makes its test the package's last: it loads the test
// device's backend library, which must not reach the CPU tests.
//
// TestMergeOnDevice merges an adapter with a linear pair (on an F32 and a
// Q8_0 weight) and a token-embedding pair on the test device
// ($RAGTUNE_DEVICE, default vulkan) and on the CPU, into F32 files, and
// compares every merged weight. Tolerance: 1e-3 of the update's largest
// element: ggml's Vulkan backend multiplies f32 operands in f16 on a device
// with f16 arithmetic (lavapipe), 2.5e-4 relative per product.
func TestMergeOnDevice(t *testing.T) {
	dev := devicetest.Device(t)
	rng := rand.New(rand.NewPCG(11, 12))
	basePath, w := fakeBase(t, rng)
	const r, E, V = 4, 64, 10
	pairs := []Pair{randomPair(rng, "blk.0.attn_q.weight", 64, 32, r), randomPair(rng, "blk.0.ffn_up.weight", 64, 48, r)}
	embA, embB := randomPair(rng, "x", r*V, 1, 1).A, randomPair(rng, "x", r*E, 1, 1).A
	b := gguf.NewBuilder()
	b.MustSet(keyGeneralType, gguf.Of("adapter"))
	b.MustSet(keyArch, gguf.Of("bert"))
	b.MustSet(keyAdapterType, gguf.Of("lora"))
	b.MustSet(keyAlpha, gguf.Of(float32(8)))
	for _, p := range pairs {
		b.AddTensor(p.Base+".lora_a", gguf.F32, []int64{int64(p.In), int64(r)}, gguf.EncodeF32(p.A))
		b.AddTensor(p.Base+".lora_b", gguf.F32, []int64{int64(r), int64(p.Out)}, gguf.EncodeF32(p.B))
	}
	b.AddTensor("token_embd.weight.lora_a", gguf.F32, []int64{r, V}, gguf.EncodeF32(embA))
	b.AddTensor("token_embd.weight.lora_b", gguf.F32, []int64{r, E}, gguf.EncodeF32(embB))
	adPath := filepath.Join(t.TempDir(), "a.gguf")
	if err := b.WriteFile(adPath); err != nil {
		t.Fatal(err)
	}
	merged := func(device string) (*gguf.File, *MergeResult) {
		out := filepath.Join(t.TempDir(), "m.gguf")
		res, err := Merge(basePath, adPath, out, MergeOptions{Type: "f32", Scale: 0.75, Device: device, Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		f, err := gguf.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f, res
	}
	want, _ := merged("cpu")
	got, res := merged(dev.Spec())
	if res.Merged != 3 || res.Device == "CPU" {
		t.Fatalf("merged %d weights on %s, want 3 on %s", res.Merged, res.Device, dev.Name())
	}
	for _, name := range []string{"blk.0.attn_q.weight", "blk.0.ffn_up.weight", "token_embd.weight"} {
		g, err := got.Float32s(name)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := want.Float32s(name)
		var worst, update float64
		for i := range g {
			worst = max(worst, math.Abs(float64(g[i]-c[i])))
			update = max(update, math.Abs(float64(c[i]-w[name][i])))
		}
		if update == 0 || worst > 1e-3*update {
			t.Errorf("%s: max abs difference %.3g from the CPU merge, update up to %.3g", name, worst, update)
		}
		t.Logf("%s: max abs difference %.2e from the CPU, update up to %.2f", name, worst, update)
	}
}
