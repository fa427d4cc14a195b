package adapter

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ragtune/ragtune/bindings"
	"github.com/ragtune/ragtune/bindings/gguf"
	"github.com/ragtune/ragtune/tune/modelinit"
)

// fakeBase writes a GGUF with a bert-like tensor set (Merge needs no more
// than an architecture and tensors): one F32 and one Q8_0 matrix to adapt,
// a bias, a norm, a position table and an embedding table.
func fakeBase(t *testing.T, rng *rand.Rand) (string, map[string][]float32) {
	t.Helper()
	b := gguf.NewBuilder()
	b.MustSet("general.architecture", gguf.Of("bert"))
	b.MustSet("general.name", gguf.Of("fake"))
	b.MustSet("general.file_type", gguf.Of(uint32(gguf.FileTypeAllF32)))
	b.MustSet("bert.embedding_length", gguf.Of(uint32(64)))
	vals := map[string][]float32{}
	add := func(name string, typ gguf.TensorType, dims ...int64) {
		n := int64(1)
		for _, d := range dims {
			n *= d
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		data, err := bindings.Quantize(bindings.Type(typ), v, int(n/dims[0]), int(dims[0]))
		if err != nil {
			t.Fatal(err)
		}
		// Keep what the file holds, so references start from the same W.
		if vals[name], err = bindings.Dequantize(bindings.Type(typ), data, int(n/dims[0]), int(dims[0])); err != nil {
			t.Fatal(err)
		}
		if err := b.AddTensor(name, typ, dims, data); err != nil {
			t.Fatal(err)
		}
	}
	add("token_embd.weight", gguf.F32, 64, 10)
	add("position_embd.weight", gguf.F32, 64, 8)
	add("blk.0.attn_q.weight", gguf.F32, 64, 32)
	add("blk.0.attn_q.bias", gguf.F32, 32)
	add("blk.0.attn_output_norm.weight", gguf.F32, 64)
	add("blk.0.ffn_up.weight", gguf.Q8_0, 64, 48)
	add("blk.0.ffn_down.weight", gguf.F32, 48, 64)
	path := filepath.Join(t.TempDir(), "base.gguf")
	if err := b.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	return path, vals
}

// referenceMerge is W + s·B·A in float64, written out loop by loop.
func referenceMerge(w []float32, p Pair, s float64) []float64 {
	out := make([]float64, len(w))
	for o := 0; o < p.Out; o++ {
		for i := 0; i < p.In; i++ {
			var d float64
			for k := 0; k < p.Rank; k++ {
				d += float64(p.B[o*p.Rank+k]) * float64(p.A[k*p.In+i])
			}
			out[o*p.In+i] = float64(w[o*p.In+i]) + s*d
		}
	}
	return out
}

func maxAbsDiff(got []float32, want []float64) float64 {
	var m float64
	for i := range got {
		m = max(m, math.Abs(float64(got[i])-want[i]))
	}
	return m
}

func TestMergeMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	basePath, w := fakeBase(t, rng)
	q := randomPair(rng, "blk.0.attn_q.weight", 64, 32, 4)
	up := randomPair(rng, "blk.0.ffn_up.weight", 64, 48, 4)
	adPath := filepath.Join(t.TempDir(), "a.gguf")
	const alpha, userScale = 8, 0.75
	if err := Save(adPath, "bert", alpha, []Pair{q, up}, nil); err != nil {
		t.Fatal(err)
	}
	s := float64(userScale) * alpha / 4

	out := filepath.Join(t.TempDir(), "merged.gguf")
	res, err := Merge(basePath, adPath, out, MergeOptions{Scale: userScale})
	if err != nil {
		t.Fatal(err)
	}
	if res.Merged != 2 || res.Copied != 5 || res.Reencoded != 0 {
		t.Errorf("result %+v", res)
	}
	base, _ := gguf.Open(basePath)
	defer base.Close()
	m, err := gguf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if len(m.KVs) != len(base.KVs) {
		t.Errorf("merged file has %d KVs, base %d", len(m.KVs), len(base.KVs))
	}
	got, _ := m.Float32s("blk.0.attn_q.weight")
	if d := maxAbsDiff(got, referenceMerge(w["blk.0.attn_q.weight"], q, s)); d > 1e-5 {
		t.Errorf("attn_q: max abs diff to the float64 reference %g", d)
	}
	// Untouched tensors are byte for byte the base's.
	for _, name := range []string{"token_embd.weight", "blk.0.attn_q.bias", "blk.0.ffn_down.weight"} {
		a, _ := base.TensorData(name)
		b, _ := m.TensorData(name)
		if !bytes.Equal(a, b) {
			t.Errorf("%s changed", name)
		}
	}
	// Keeping the type re-quantizes the merged q8_0 weight: within half a
	// q8_0 step (max|row block|/127/2) of the exact result.
	if ti, _ := m.Tensor("blk.0.ffn_up.weight"); ti.Type != gguf.Q8_0 {
		t.Errorf("ffn_up kept as %s, want q8_0", ti.Type)
	}
	ref := referenceMerge(w["blk.0.ffn_up.weight"], up, s)
	got, _ = m.Float32s("blk.0.ffn_up.weight")
	if d := maxAbsDiff(got, ref); d > 0.05 || d == 0 {
		t.Errorf("ffn_up (q8_0 again): max abs diff %g", d)
	}

	// As f32 the dequantized base plus the delta is exact.
	out32 := filepath.Join(t.TempDir(), "merged32.gguf")
	res, err = Merge(basePath, adPath, out32, MergeOptions{Type: "f32", Scale: userScale})
	if err != nil {
		t.Fatal(err)
	}
	m32, _ := gguf.Open(out32)
	defer m32.Close()
	got, _ = m32.Float32s("blk.0.ffn_up.weight")
	if d := maxAbsDiff(got, ref); d > 1e-5 {
		t.Errorf("ffn_up as f32: max abs diff %g", d)
	}
	if ft, _, _ := m32.Uint32("general.file_type"); ft != uint32(gguf.FileTypeAllF32) || res.Types["f32"] != 7 {
		t.Errorf("file type %d, types %v", ft, res.Types)
	}
}

func TestMergeReencodesLikeQuantize(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	basePath, _ := fakeBase(t, rng)
	adPath := filepath.Join(t.TempDir(), "a.gguf")
	if err := Save(adPath, "bert", 4, []Pair{randomPair(rng, "blk.0.attn_q.weight", 64, 32, 4)}, nil); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "m.gguf")
	res, err := Merge(basePath, adPath, out, MergeOptions{Type: "q4_k", Scale: 1})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := gguf.Open(out)
	defer m.Close()
	// Rows of 64 or 48 do not fit q4_k's 256-blocks: llama.cpp falls back
	// to q5_0 (blocks of 32), and to f16 where even that does not fit.
	want := map[string]gguf.TensorType{
		"token_embd.weight": gguf.Q5_0, "position_embd.weight": gguf.F32, "blk.0.attn_q.weight": gguf.Q5_0,
		"blk.0.attn_q.bias": gguf.F32, "blk.0.attn_output_norm.weight": gguf.F32,
		"blk.0.ffn_up.weight": gguf.Q5_0, "blk.0.ffn_down.weight": gguf.F16,
	}
	for name, typ := range want {
		if ti, _ := m.Tensor(name); ti.Type != typ {
			t.Errorf("%s is %s, want %s", name, ti.Type, typ)
		}
	}
	if len(res.Fallbacks) != 4 {
		t.Errorf("fallbacks %v", res.Fallbacks)
	}
	if ft, _, _ := m.Uint32("general.file_type"); ft != uint32(gguf.FileTypeQ4_K_S) {
		t.Errorf("file type %d", ft)
	}
}

// The token embedding pair is stored transposed (A ne [r, V], B ne [r, E])
// and merged as A·Bᵀ, as export-lora does, for adapters made by other tools.
func TestMergeTokenEmbedding(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	basePath, w := fakeBase(t, rng)
	const r, E, V = 2, 64, 10
	A := randomPair(rng, "x", r*V, 1, 1).A
	B := randomPair(rng, "x", r*E, 1, 1).A
	b := gguf.NewBuilder()
	b.MustSet(keyGeneralType, gguf.Of("adapter"))
	b.MustSet(keyArch, gguf.Of("bert"))
	b.MustSet(keyAdapterType, gguf.Of("lora"))
	b.MustSet(keyAlpha, gguf.Of(float32(0)))
	b.AddTensor("token_embd.weight.lora_a", gguf.F32, []int64{r, V}, gguf.EncodeF32(A))
	b.AddTensor("token_embd.weight.lora_b", gguf.F32, []int64{r, E}, gguf.EncodeF32(B))
	adPath := filepath.Join(t.TempDir(), "a.gguf")
	if err := b.WriteFile(adPath); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "m.gguf")
	if _, err := Merge(basePath, adPath, out, MergeOptions{Scale: 0.5}); err != nil {
		t.Fatal(err)
	}
	m, _ := gguf.Open(out)
	defer m.Close()
	got, _ := m.Float32s("token_embd.weight")
	var worst float64
	for v := 0; v < V; v++ {
		for e := 0; e < E; e++ {
			var d float64
			for k := 0; k < r; k++ {
				d += float64(A[v*r+k]) * float64(B[e*r+k])
			}
			worst = max(worst, math.Abs(float64(got[v*E+e])-float64(w["token_embd.weight"][v*E+e])-0.5*d))
		}
	}
	if worst > 1e-6 {
		t.Errorf("token_embd: max abs diff %g", worst)
	}
}

func TestMergeRefusesAdaptersThatDoNotFit(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	basePath, _ := fakeBase(t, rng)
	dir := t.TempDir()
	saved := 0
	save := func(arch string, p Pair) string {
		saved++
		path := filepath.Join(dir, fmt.Sprintf("a%d.gguf", saved))
		if err := Save(path, arch, 1, []Pair{p}, nil); err != nil {
			t.Fatal(err)
		}
		return path
	}
	quantized := func() string {
		b, _ := build("bert", 1, []Pair{randomPair(rng, "blk.0.attn_q.weight", 64, 32, 4)}, nil)
		b.AddTensor("blk.0.ffn_down.weight.lora_a", gguf.Q8_0, []int64{64, 32}, make([]byte, gguf.Q8_0.RowBytes(64)*32))
		b.AddTensor("blk.0.ffn_down.weight.lora_b", gguf.F32, []int64{32, 48}, make([]byte, 4*32*48))
		path := filepath.Join(dir, "q.gguf")
		if err := b.WriteFile(path); err != nil {
			t.Fatal(err)
		}
		return path
	}
	for _, c := range []struct {
		name, adapter, typ, want string
	}{
		{"arch", save("llama", randomPair(rng, "blk.0.attn_q.weight", 64, 32, 4)), "", `adapter is for architecture "llama"`},
		{"unknown tensor", save("bert", randomPair(rng, "blk.7.attn_q.weight", 64, 32, 4)), "", `adapts "blk.7.attn_q.weight", which`},
		{"shape", save("bert", randomPair(rng, "blk.0.attn_q.weight", 32, 64, 4)), "", `"blk.0.attn_q.weight" is [64 32]`},
		{"quantized adapter", quantized(), "", `"blk.0.ffn_down.weight.lora_a" is q8_0`},
		{"type", save("bert", randomPair(rng, "blk.0.attn_q.weight", 64, 32, 4)), "q3_k", `unknown output type "q3_k"`},
	} {
		out := filepath.Join(dir, "m.gguf")
		_, err := Merge(basePath, c.adapter, out, MergeOptions{Type: c.typ, Scale: 1})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want it to mention %s", c.name, err, c.want)
		}
	}
}

// BenchmarkMerge merges a rank-16 adapter on q, k, v, output, up and down
// into a MiniLM-shaped bert (6 layers, 384 wide, ff 1536), keeping f32 and
// re-encoding to q8_0.
func BenchmarkMerge(b *testing.B) {
	dir := b.TempDir()
	base := filepath.Join(dir, "base.gguf")
	texts := []string{"apt installs packages", "git tracks source code", "vim edits text files"}
	o := modelinit.Options{Arch: "bert", Texts: texts, Layers: 6, Dim: 384, Heads: 12, FF: 1536, Ctx: 128, Vocab: 1000}
	if _, err := modelinit.Write(base, o); err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	var pairs []Pair
	for l := range 6 {
		for _, k := range []struct {
			kind    string
			in, out int
		}{{"attn_q", 384, 384}, {"attn_k", 384, 384}, {"attn_v", 384, 384}, {"attn_output", 384, 384}, {"ffn_up", 384, 1536}, {"ffn_down", 1536, 384}} {
			pairs = append(pairs, randomPair(rng, fmt.Sprintf("blk.%d.%s.weight", l, k.kind), k.in, k.out, 16))
		}
	}
	ad := filepath.Join(dir, "a.gguf")
	if err := Save(ad, "bert", 16, pairs, nil); err != nil {
		b.Fatal(err)
	}
	for _, typ := range []string{"", "q8_0"} {
		b.Run("type="+typ, func(b *testing.B) {
			for b.Loop() {
				if _, err := Merge(base, ad, filepath.Join(dir, "m.gguf"), MergeOptions{Type: typ, Scale: 1}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAddDelta is one 4096×4096 weight of a 7B model at rank 16:
// 268M multiply-adds.
func BenchmarkAddDelta(b *testing.B) {
	const n, r = 4096, 16
	W, L, R := make([]float32, n*n), make([]float32, n*r), make([]float32, r*n)
	for b.Loop() {
		addDelta(W, L, R, 0.5, n, n, r)
	}
	b.ReportMetric(float64(2*n*n*r)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}
