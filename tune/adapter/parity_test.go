package adapter_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ragtune/ragtune/bindings"
	"github.com/ragtune/ragtune/bindings/gguf"
	"github.com/ragtune/ragtune/retrieval"
	"github.com/ragtune/ragtune/retrieval/shareddata"
	"github.com/ragtune/ragtune/tune/adapter"
	"github.com/ragtune/ragtune/tune/encoder"
	"github.com/ragtune/ragtune/tune/model"
	"github.com/ragtune/ragtune/tune/modelinit"
	"github.com/ragtune/ragtune/tune/train"
)

// sharedTexts returns the first n texts of the mini Debian corpus (the
// test skips when the shared data is absent, unless RAGTUNE_REQUIRE_SHARED=1).
func sharedTexts(t *testing.T, n int) []string {
	t.Helper()
	texts, err := modelinit.ReadCorpus(shareddata.Dir(t, "debian-packages", "mini", "corpus.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	return texts[:min(n, len(texts))]
}

// tinyModel writes a tiny model whose vocabulary is learnt from texts;
// arch "bert+qkv" is bert with fused attn_qkv tensors.
func tinyModel(t *testing.T, arch string, typ gguf.TensorType, texts []string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), arch+"-"+typ.String()+".gguf")
	o := modelinit.Options{Texts: texts, Type: typ, Seed: 7}
	if arch == "gemma-embedding" {
		o.Dense = 128
	}
	o.Arch, o.FusedQKV = strings.CutSuffix(arch, "+qkv")
	if _, err := modelinit.Write(path, o); err != nil {
		t.Fatal(err)
	}
	return path
}

// randomAdapter writes an adapter on every listed kind of every block, with
// A and B both random and non-zero (a trained B is non-zero; a zero B would
// make every comparison below vacuous).
func randomAdapter(t *testing.T, base string, kinds []string, rank int, alpha float32, seed uint64, bStd float64) string {
	t.Helper()
	f, err := gguf.Open(base)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rng := rand.New(rand.NewPCG(seed, 1))
	var pairs []adapter.Pair
	for blk := 0; ; blk++ {
		if _, ok := f.Tensor(fmt.Sprintf("blk.%d.attn_output.weight", blk)); !ok {
			break
		}
		for _, k := range kinds {
			name := fmt.Sprintf("blk.%d.%s.weight", blk, k)
			w, ok := f.Tensor(name)
			if !ok {
				t.Fatalf("%s has no %s", base, name)
			}
			in, out := int(w.Dims[0]), int(w.Dims[1])
			p := adapter.Pair{Base: name, In: in, Out: out, Rank: rank, A: make([]float32, in*rank), B: make([]float32, rank*out)}
			// PEFT's A init range (±1/√in) and a non-zero B, as after training.
			for i := range p.A {
				p.A[i] = float32((rng.Float64()*2 - 1) / math.Sqrt(float64(in)))
			}
			for i := range p.B {
				p.B[i] = float32(rng.NormFloat64() * bStd)
			}
			pairs = append(pairs, p)
		}
	}
	path := filepath.Join(t.TempDir(), "adapter.gguf")
	meta := map[string]string{"general.name": "parity", "ragtune.method": "lora", "ragtune.train.steps": "0"}
	if err := adapter.Save(path, f.Architecture(), alpha, pairs, meta); err != nil {
		t.Fatal(err)
	}
	return path
}

func embed(t *testing.T, model string, opts encoder.Options, texts []string) [][]float32 {
	t.Helper()
	opts.Threads, opts.Normalize = 2, true
	e, err := encoder.Open(model, opts)
	if err != nil {
		t.Fatalf("%s (%s): %v", model, opts.Engine, err)
	}
	defer e.Close()
	vecs, err := e.Embed(context.Background(), texts, retrieval.Document)
	if err != nil {
		t.Fatal(err)
	}
	return vecs
}

// compare returns the smallest cosine and the largest absolute difference
// between matching (unit) vectors.
func compare(a, b [][]float32) (minCos, maxAbs float64) {
	minCos = 1
	for i := range a {
		var dot, na, nb float64
		for j := range a[i] {
			x, y := float64(a[i][j]), float64(b[i][j])
			dot += x * y
			na += x * x
			nb += y * y
			maxAbs = max(maxAbs, math.Abs(x-y))
		}
		minCos = min(minCos, dot/math.Sqrt(na*nb))
	}
	return minCos, maxAbs
}

// deltaError is the largest ‖a−b‖/‖a−base‖: how far two ways of applying
// the adapter disagree, relative to how far the adapter moves the vector.
// Unlike a cosine near 1 it cannot hide a half-applied adapter.
func deltaError(base, a, b [][]float32) float64 {
	var worst float64
	for i := range a {
		var diff, moved float64
		for j := range a[i] {
			diff += math.Pow(float64(a[i][j])-float64(b[i][j]), 2)
			moved += math.Pow(float64(a[i][j])-float64(base[i][j]), 2)
		}
		worst = max(worst, math.Sqrt(diff/moved))
	}
	return worst
}

// bStd sizes B so the adapter moves embeddings clearly but not wildly:
// bert's post-norms and mean pooling absorb much more than llama's pre-norms.
var bStd = map[string]float64{"bert": 0.3, "llama": 0.05, "qwen3": 0.05, "nomic-bert": 0.3, "bert+qkv": 0.3, "gemma-embedding": 0.05}

var parityTargets = map[string][]string{
	"bert":  {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_up", "ffn_down"},
	"llama": {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"},
	"qwen3": {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"},
	// llama.cpp applies an adapter of a fused attn_qkv to the whole matrix.
	"nomic-bert": {"attn_qkv", "attn_output", "ffn_gate", "ffn_up", "ffn_down"},
	"bert+qkv":   {"attn_qkv", "attn_output", "ffn_up", "ffn_down"},
	// The Dense projections carry none: llama.cpp multiplies them plainly.
	"gemma-embedding": {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"},
}

// TestParityWithLlamaCpp is the done criterion of the adapter export: one
// adapter, four ways to apply it (llama.cpp's adapter API, our graph with
// the adapter, our graph and llama.cpp on the merged model), the same
// embeddings (cosine ≥ 0.9999 on an f32 base).
func TestParityWithLlamaCpp(t *testing.T) {
	texts := sharedTexts(t, 500) // vocabulary; the first 20 are embedded
	for _, arch := range []string{"bert", "llama", "qwen3", "nomic-bert", "bert+qkv", "gemma-embedding"} {
		t.Run(arch, func(t *testing.T) {
			base := tinyModel(t, arch, gguf.F32, texts)
			ad := randomAdapter(t, base, parityTargets[arch], 4, 8, 11, bStd[arch])
			checkParity(t, arch+" f32 random", base, ad, texts[:20])
		})
	}
}

// checkParity embeds sample four ways and requires every pair to agree.
func checkParity(t *testing.T, label, base, ad string, sample []string) {
	t.Helper()
	merged := filepath.Join(t.TempDir(), "merged.gguf")
	if _, err := adapter.Merge(base, ad, merged, adapter.MergeOptions{Scale: 1}); err != nil {
		t.Fatal(err)
	}
	llamaCpp := encoder.Options{Engine: encoder.EngineLlama, Exact: true}
	ggml := encoder.Options{Engine: encoder.EngineGGML}
	withAdapter := func(o encoder.Options) encoder.Options { o.Adapter = ad; return o }
	runs := []struct {
		name string
		vecs [][]float32
	}{
		{"llama.cpp+adapter", embed(t, base, withAdapter(llamaCpp), sample)},
		{"ggml+adapter", embed(t, base, withAdapter(ggml), sample)},
		{"ggml merged", embed(t, merged, ggml, sample)},
		{"llama.cpp merged", embed(t, merged, llamaCpp, sample)},
	}
	plain := embed(t, base, ggml, sample)
	if c, d := compare(plain, runs[1].vecs); c > 0.999 {
		t.Fatalf("%s: the adapter hardly moves the embeddings (min cosine %.6f, max abs diff %.3g): the test would be vacuous", label, c, d)
	} else {
		t.Logf("%s: base vs adapted: min cosine %.6f, max abs diff %.3g", label, c, d)
	}
	for i := range runs {
		for j := i + 1; j < len(runs); j++ {
			c, d := compare(runs[i].vecs, runs[j].vecs)
			rel := deltaError(plain, runs[i].vecs, runs[j].vecs)
			t.Logf("%s: %-17s vs %-17s 1-min cosine %.2g  max abs diff %.3g  delta error %.2g", label, runs[i].name, runs[j].name, 1-c, d, rel)
			if c < 0.9999 || rel > 1e-3 {
				t.Errorf("%s: %s vs %s: min cosine %.8f (want ≥ 0.9999), delta error %.3g (want ≤ 1e-3)", label, runs[i].name, runs[j].name, c, rel)
			}
		}
	}
}

// TestMergeQuantizedBase merges into a q8_0 base. Applied without merging,
// the adapter adds its exact delta to the quantized weight; merging
// re-quantizes W+ΔW (the default keeps q8_0) or stores it as f16/f32. The
// tolerances are those of one more q8_0 rounding of the weights (cosine
// ≥ 0.9995; 1−cos measured 2e-5) and of f16 storage or of f32 weights
// multiplied unquantized (≥ 0.99999; measured 1e-7).
func TestMergeQuantizedBase(t *testing.T) {
	texts := sharedTexts(t, 500)
	base := tinyModel(t, "bert", gguf.Q8_0, texts)
	ad := randomAdapter(t, base, parityTargets["bert"], 4, 8, 12, bStd["bert"])
	sample := texts[:20]
	applied := embed(t, base, encoder.Options{Adapter: ad}, sample)
	plain := embed(t, base, encoder.Options{}, sample)
	for _, c := range []struct {
		typ    string
		minCos float64
	}{{"", 0.9995}, {"f16", 0.99999}, {"f32", 0.99999}} {
		merged := filepath.Join(t.TempDir(), "merged-"+c.typ+".gguf")
		if _, err := adapter.Merge(base, ad, merged, adapter.MergeOptions{Type: c.typ, Scale: 1}); err != nil {
			t.Fatal(err)
		}
		for _, engine := range []string{encoder.EngineGGML, encoder.EngineLlama} {
			got := embed(t, merged, encoder.Options{Engine: engine, Exact: true}, sample)
			cos, d := compare(applied, got)
			t.Logf("bert q8_0 base, merged --type %q, %s vs ggml+adapter: 1-min cosine %.2g  max abs diff %.3g  delta error %.2g", c.typ, engine, 1-cos, d, deltaError(plain, applied, got))
			if cos < c.minCos {
				t.Errorf("--type %q, %s: min cosine %.8f < %g", c.typ, engine, cos, c.minCos)
			}
		}
	}
}

// TestLlamaCppLoadsEveryMergeType: llama.cpp refuses none of the files
// Merge writes, including the fallback types of a q4_k merge of a tiny model.
func TestLlamaCppLoadsEveryMergeType(t *testing.T) {
	texts := sharedTexts(t, 200)
	for _, arch := range []string{"bert", "llama", "qwen3", "nomic-bert"} {
		base := tinyModel(t, arch, gguf.F32, texts)
		ad := randomAdapter(t, base, parityTargets[arch], 2, 0, 13, bStd[arch])
		for _, typ := range adapter.MergeTypes {
			out := filepath.Join(t.TempDir(), arch+"-"+typ+".gguf")
			if _, err := adapter.Merge(base, ad, out, adapter.MergeOptions{Type: typ, Scale: 0.5}); err != nil {
				t.Fatalf("%s %s: %v", arch, typ, err)
			}
			m, err := bindings.LoadLlamaModel(out, false)
			if err != nil {
				t.Errorf("%s --type %s: %v", arch, typ, err)
				continue
			}
			m.Close()
		}
	}
}

// TestParityTrainedAdapter trains a LoRA adapter with ragtune's own
// stepper and AdamW (MNRL on query/document pairs cut from the corpus),
// exports it as train does, and requires the four ways of applying it to
// agree: the done criterion with a really trained adapter.
func TestParityTrainedAdapter(t *testing.T) {
	texts := sharedTexts(t, 500)
	for _, arch := range []string{"bert", "llama", "qwen3", "nomic-bert", "bert+qkv", "gemma-embedding"} {
		t.Run(arch, func(t *testing.T) {
			base := tinyModel(t, arch, gguf.F32, texts)
			ad := trainAdapter(t, base, parityTargets[arch], texts[20:84])
			checkParity(t, arch+" f32 trained", base, ad, texts[:20])
		})
	}
}

// trainAdapter runs 6 AdamW steps of LoRA (rank 4, alpha 8) on pairs of
// (first words of a text, the text) and saves the result with adapter.Save.
func trainAdapter(t *testing.T, base string, targets []string, texts []string) string {
	t.Helper()
	be, err := bindings.NewCPUBackend(2)
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	m, err := model.Load(base, be, model.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	rng := rand.New(rand.NewPCG(21, 22))
	lora, err := train.AttachLoRA(m, be, train.LoRAConfig{Rank: 4, Alpha: 8, Targets: targets}, rng)
	if err != nil {
		t.Fatal(err)
	}
	defer lora.Close()
	tok, err := encoder.NewTokenizer(base, m.Config, 32)
	if err != nil {
		t.Fatal(err)
	}
	defer tok.Close()
	step, err := train.NewStepper(m, be, lora.Params, train.LossConfig{Name: train.LossMNRL, Scale: 20}, 0, rng)
	if err != nil {
		t.Fatal(err)
	}
	defer step.Close()
	encode := func(s string) []int32 {
		ids, _, err := tok.Encode(s)
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}
	const batch, steps = 8, 6
	for s := 1; s <= steps; s++ {
		var b train.Batch
		for i := range batch {
			text := texts[((s-1)*batch+i)%len(texts)]
			words := strings.Fields(text)
			b.Queries = append(b.Queries, encode(strings.Join(words[:min(6, len(words))], " ")))
			b.Docs = append(b.Docs, encode(text))
		}
		if _, err := step.Accumulate(b, 1); err != nil {
			t.Fatal(err)
		}
		train.DefaultAdamW.Update(lora.Params, s, 1e-2)
		for _, p := range lora.Params {
			if err := p.T.SetF32(p.Data); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Export as train does: Params hold A then B of each layer.
	var pairs []adapter.Pair
	for i := 0; i+1 < len(lora.Params); i += 2 {
		a, b := lora.Params[i], lora.Params[i+1]
		ne := a.T.Ne()
		pairs = append(pairs, adapter.Pair{Base: strings.TrimSuffix(a.Name, ".lora_a"), A: a.Data, B: b.Data, In: ne[0], Rank: ne[1], Out: b.T.Ne()[1]})
	}
	path := filepath.Join(t.TempDir(), "trained.gguf")
	if err := adapter.Save(path, string(m.Arch), 8, pairs, map[string]string{"ragtune.method": "lora"}); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestParityUserScale: an adapter without alpha at user scale 0.5 (llama.cpp's
// --lora-scaled) gives the same embeddings applied by llama.cpp, by our
// graph, and merged with --scale 0.5; and differs from scale 1.
func TestParityUserScale(t *testing.T) {
	texts := sharedTexts(t, 300)
	base := tinyModel(t, "llama", gguf.F32, texts)
	ad := randomAdapter(t, base, []string{"attn_q", "attn_v", "ffn_down"}, 2, 0, 14, 0.1)
	merged := filepath.Join(t.TempDir(), "merged.gguf")
	if _, err := adapter.Merge(base, ad, merged, adapter.MergeOptions{Scale: 0.5}); err != nil {
		t.Fatal(err)
	}
	sample := texts[:8]
	half := embed(t, merged, encoder.Options{}, sample)
	for _, engine := range []string{encoder.EngineLlama, encoder.EngineGGML} {
		got := embed(t, base, encoder.Options{Engine: engine, Exact: true, Adapter: ad, AdapterScale: 0.5}, sample)
		if c, d := compare(half, got); c < 0.9999 {
			t.Errorf("%s at scale 0.5 vs merged at 0.5: min cosine %.8f, max abs diff %.3g", engine, c, d)
		}
	}
	full := embed(t, base, encoder.Options{Adapter: ad}, sample)
	if c, _ := compare(half, full); c > 0.9999 {
		t.Errorf("scale 0.5 and 1 agree (min cosine %.8f): the scale is not applied", c)
	}
}
