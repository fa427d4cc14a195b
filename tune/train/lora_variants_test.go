package train

import (
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/ragtune/ragtune/bindings"
	"github.com/ragtune/ragtune/bindings/gguf"
	"github.com/ragtune/ragtune/retrieval"
	"github.com/ragtune/ragtune/tune/adapter"
	"github.com/ragtune/ragtune/tune/encoder"
	"github.com/ragtune/ragtune/tune/model"
)

// variantParams attaches rank-4 LoRA with cfg's variant to the targets and
// moves every tensor away from its initial value (B random, DoRA
// magnitudes ±30% off the weights' norms), so no gradient is trivially zero.
func variantParams(t *testing.T, cfg LoRAConfig, sets **LoRASet) func(m *model.Model, be *bindings.Backend) []*Param {
	return func(m *model.Model, be *bindings.Backend) []*Param {
		cfg.Rank = 4
		if cfg.Alpha == 0 {
			cfg.Alpha = 8
		}
		s, err := AttachLoRA(m, be, cfg, rand.New(rand.NewPCG(2, 2)))
		if err != nil {
			t.Fatal(err)
		}
		r := rand.New(rand.NewPCG(9, 9))
		for _, p := range s.Params {
			for i := range p.Data {
				if filepath.Ext(p.Name) == magnitudeSuffix {
					p.Data[i] *= float32(1 + 0.3*(2*r.Float64()-1))
				} else {
					p.Data[i] = float32(r.NormFloat64() * 0.3)
				}
			}
			p.upload()
		}
		if sets != nil {
			*sets = s
		}
		return s.Params
	}
}

func TestRSLoRAGradients(t *testing.T) {
	queries, docs := miniPairs(t, 200)
	path := writeTiny(t, "bert", gguf.F32, append(queries, docs...))
	var s *LoRASet
	f := newFixture(t, path, model.LoadOptions{}, LossConfig{}, variantParams(t, LoRAConfig{Alpha: 4, Scaling: ScalingRS, Targets: []string{"attn_v", "ffn_down"}}, &s))
	defer f.close()
	// alpha 4 and rank 4: scale 2 (standard scaling would give 1), the scale
	// of the standard check, so finite differences see the same curvature.
	if got := f.m.Adapters["blk.0.attn_v.weight"].Scale; got != 2 {
		t.Fatalf("rsLoRA scale %v, want alpha/√r = 2", got)
	}
	if a := s.Config.ExportAlpha(); a != 8 { // llama.cpp's alpha/r must give 2
		t.Fatalf("rsLoRA export alpha %v, want 8", a)
	}
	checkDirectional(t, f, f.step.params, 3e-2, 1e-2)
}

// TestDoRAGradients checks the gradients of A, B and the magnitudes
// through DoRA's weight norm (sqr, sum_rows, sqrt, div), for both families.
func TestDoRAGradients(t *testing.T) {
	queries, docs := miniPairs(t, 200)
	texts := append(queries, docs...)
	for _, arch := range []string{"bert", "llama"} {
		t.Run(arch, func(t *testing.T) {
			path := writeTiny(t, arch, gguf.F32, texts)
			targets := []string{"attn_v"}
			f := newFixture(t, path, model.LoadOptions{}, LossConfig{}, variantParams(t, LoRAConfig{DoRA: true, Targets: targets}, nil))
			defer f.close()
			if n := len(f.step.params); n != 3*2*len(targets) {
				t.Fatalf("%d DoRA tensors, want A, B and a magnitude for each of %d layers", n, 2*len(targets))
			}
			// Directional checks: each tensor's whole gradient at once, well
			// above the f32 loss's rounding (single elements measured 1-2%).
			// llama's gradients are ~500x bert's here (sharper curvature),
			// so its step is smaller.
			h := 3e-2
			if arch == "llama" {
				h = 1e-2
			}
			checkDirectional(t, f, f.step.params, h, 1e-2)
		})
	}
}

// TestDoRAStartsAtBase: with B zero and magnitudes at the weights' norms,
// a DoRA model embeds exactly as its base does.
func TestDoRAStartsAtBase(t *testing.T) {
	queries, docs := miniPairs(t, 200)
	path := writeTiny(t, "bert", gguf.F32, append(queries, docs...))
	be, m := loadOnCPU(t, path)
	tok, err := encoder.NewTokenizer(path, m.Config, 32)
	if err != nil {
		t.Fatal(err)
	}
	defer tok.Close()
	embed := func() [][]float32 {
		enc := encoder.FromModel(m, be, tok, encoder.Options{Threads: 2})
		defer enc.Close()
		v, err := enc.Embed(context.Background(), queries[:6], retrieval.Query)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	base := embed()
	s, err := AttachLoRA(m, be, LoRAConfig{Rank: 4, DoRA: true}, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := maxAbsDiff(base, embed()); got > 1e-5 {
		t.Fatalf("DoRA at initialisation moves embeddings by %.3g", got)
	}
}

// TestDoRAExportsMergedModel trains nothing but sets a DoRA state, exports
// it, and checks that llama.cpp's own forward pass of the merged model.gguf
// gives the live DoRA model's embeddings.
func TestDoRAExportsMergedModel(t *testing.T) {
	queries, docs := miniPairs(t, 200)
	path := writeTiny(t, "bert", gguf.F32, append(queries, docs...))
	be, m := loadOnCPU(t, path)
	var s *LoRASet
	variantParams(t, LoRAConfig{DoRA: true, Scaling: ScalingRS}, &s)(m, be)
	defer s.Close()
	tok, err := encoder.NewTokenizer(path, m.Config, 32)
	if err != nil {
		t.Fatal(err)
	}
	defer tok.Close()
	enc := encoder.FromModel(m, be, tok, encoder.Options{Threads: 2})
	live, err := enc.Embed(context.Background(), docs[:6], retrieval.Document)
	enc.Close()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	r := &run{cfg: Config{Method: MethodLoRA, LoRA: s.Config}, dir: dir, path: path, m: m, lora: s, params: s.Params}
	out := r.outputPath()
	if filepath.Base(out) != "model.gguf" {
		t.Fatalf("DoRA output %s, want model.gguf", out)
	}
	if err := r.export(out); err != nil {
		t.Fatal(err)
	}
	if _, err := adapter.Inspect(out); err == nil {
		t.Fatal("a DoRA export reads as a LoRA adapter")
	}
	merged, err := encoder.Open(out, encoder.Options{Engine: encoder.EngineLlama, Exact: true, MaxTokens: 32})
	if err != nil {
		t.Fatal(err)
	}
	defer merged.Close()
	got, err := merged.Embed(context.Background(), docs[:6], retrieval.Document)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxAbsDiff(live, got); d > 1e-4 || math.IsNaN(d) {
		t.Fatalf("merged model differs from the live DoRA model by %.3g", d)
	}
	if d := maxAbsDiff(live, embedBase(t, path, docs[:6])); d < 1e-2 {
		t.Fatalf("the DoRA state barely moves the embeddings (%.3g): the test says nothing", d)
	}
}

func embedBase(t *testing.T, path string, texts []string) [][]float32 {
	e, err := encoder.Open(path, encoder.Options{Engine: encoder.EngineLlama, Exact: true, MaxTokens: 32})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	v, err := e.Embed(context.Background(), texts, retrieval.Document)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func maxAbsDiff(a, b [][]float32) float64 {
	worst := 0.0
	for i := range a {
		for j := range a[i] {
			worst = max(worst, math.Abs(float64(a[i][j]-b[i][j])))
		}
	}
	return worst
}

// TestLoRAPlusUpdate: with the same gradient, LoRA+'s B moves ratio times
// as far as A in an AdamW step (Adam's first step is lr·g/|g| per element;
// decoupled weight decay scales with the group's rate too).
func TestLoRAPlusUpdate(t *testing.T) {
	a := &Param{Name: "a", Data: []float32{0.5, -0.25, 1}, Decay: true}
	b := &Param{Name: "b", Data: []float32{0.5, -0.25, 1}, Decay: true, LRScale: 16}
	for _, p := range []*Param{a, b} {
		p.Grad = []float32{0.3, -2, 1e-3}
		p.M, p.V = make([]float32, 3), make([]float32, 3)
	}
	before := append([]float32(nil), a.Data...)
	opt := DefaultAdamW
	opt.WeightDecay = 0.01
	opt.Update([]*Param{a, b}, 1, 1e-4)
	for i := range before {
		da, db := float64(a.Data[i]-before[i]), float64(b.Data[i]-before[i])
		if da == 0 || math.Abs(db/da-16) > 1e-2 {
			t.Errorf("element %d: A moved %.4g, B %.4g: ratio %.4g, want 16", i, da, db, db/da)
		}
	}
	queries, docs := miniPairs(t, 200)
	path := writeTiny(t, "bert", gguf.F32, append(queries, docs...))
	f := newFixture(t, path, model.LoadOptions{}, LossConfig{}, variantParams(t, LoRAConfig{LRBRatio: 16, Targets: []string{"attn_q"}}, nil))
	defer f.close()
	for _, p := range f.step.params {
		want := 0.0
		if filepath.Ext(p.Name) == ".lora_b" {
			want = 16
		}
		if p.LRScale != want {
			t.Errorf("%s: learning-rate scale %v, want %v", p.Name, p.LRScale, want)
		}
	}
}
