package train

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ragtune/ragtune/bindings"
	"github.com/ragtune/ragtune/bindings/gguf"
	"github.com/ragtune/ragtune/tune/encoder"
	"github.com/ragtune/ragtune/tune/model"
	"github.com/ragtune/ragtune/tune/modelinit"
)

// embedWith computes pooled embeddings of ids with one graph form.
func embedWith(t *testing.T, m *model.Model, be *bindings.Backend, ids [][]int32, S int, opts model.BuildOptions) []float32 {
	ctx, err := bindings.NewContext(8192, 8192, false)
	if err != nil {
		t.Fatal(err)
	}
	defer ctx.Close()
	in, emb := m.Embed(ctx, S, len(ids), opts)
	emb.SetOutput()
	g, err := ctx.NewGraph(8192, false)
	if err == nil {
		err = g.Expand(emb)
	}
	if err != nil {
		t.Fatal(err)
	}
	alloc := be.NewAllocator()
	defer alloc.Close()
	if err := alloc.Alloc(g); err != nil {
		t.Fatal(err)
	}
	if err := in.Set(m, ids, 0); err != nil {
		t.Fatal(err)
	}
	for _, dm := range in.Dropout {
		t.Fatalf("unexpected dropout mask %v", dm)
	}
	if err := be.Compute(g); err != nil {
		t.Fatal(err)
	}
	return emb.F32()
}

// The trainable graph composes LayerNorm and GELU from differentiable ops;
// it must compute the same function as the inference graph, which matches
// llama.cpp (tune/encoder's parity tests).
func TestTrainableGraphEqualsInference(t *testing.T) {
	queries, docs := miniPairs(t, 6)
	for _, arch := range []string{"bert", "llama"} {
		t.Run(arch, func(t *testing.T) {
			path := writeTiny(t, arch, gguf.F32, append(queries, docs...))
			be, m := loadOnCPU(t, path)
			tok, err := encoder.NewTokenizer(path, m.Config, 32)
			if err != nil {
				t.Fatal(err)
			}
			defer tok.Close()
			var ids [][]int32
			for _, text := range append(queries, docs...) {
				seq, _, err := tok.Encode(text)
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, seq)
			}
			want := embedWith(t, m, be, ids, 32, model.BuildOptions{})
			for _, opts := range []model.BuildOptions{{Trainable: true}, {Trainable: true, Fused: true}} {
				got := embedWith(t, m, be, ids, 32, opts)
				var worst float64
				for i := range want {
					worst = max(worst, math.Abs(float64(got[i]-want[i])))
				}
				t.Logf("%d texts, fused %v: max abs difference %.2e", len(ids), opts.Fused, worst)
				// Not bit-equal: ggml's CPU gelu reads a table of f16 inputs.
				if worst > 1e-4 {
					t.Errorf("trainable graph (fused %v) differs from the inference graph by %.3g", opts.Fused, worst)
				}
			}
		})
	}
}

// TestStepVariantsEqualWholeGraph: the recomputing step (one graph per
// segment) and the GradCache step (chunks of 3 texts) must give the loss
// and gradients of the whole-graph step, which the gradient checks test
// against finite differences. Recomputation is compared with dropout on, so
// this also checks it regenerates the forward pass's masks; GradCache draws
// masks per chunk, so it is compared without dropout.
func TestStepVariantsEqualWholeGraph(t *testing.T) {
	queries, docs := miniPairs(t, 200)
	texts := append(queries, docs...)
	for _, variant := range []string{"recompute", "gradcache"} {
		for _, arch := range []string{"bert", "llama"} {
			for _, method := range []string{"lora", "qlora", "full", "lora-query-side", "triplet"} {
				t.Run(variant+"/"+arch+"/"+method, func(t *testing.T) {
					path := writeTiny(t, arch, gguf.F32, texts)
					compareStepVariant(t, path, variant, method)
				})
			}
		}
		// The other families' own blocks; gemma-embedding's segments of
		// one sliding layer read only the window's mask.
		for _, arch := range []string{"qwen3", "gemma-embedding"} {
			t.Run(variant+"/"+arch+"/lora", func(t *testing.T) {
				compareStepVariant(t, writeTiny(t, arch, gguf.F32, texts), variant, "lora")
			})
		}
	}
}

func compareStepVariant(t *testing.T, path, variant, method string) {
	loss := LossConfig{}
	if method == "triplet" {
		loss.Name = LossTriplet
	}
	dropout := float32(0.2)
	if variant == "gradcache" {
		dropout = 0
	}
	makeParams := loraParams(dropout, "attn_q", "attn_v", "ffn_down")
	if method == "full" {
		makeParams = func(m *model.Model, be *bindings.Backend) []*Param {
			all, err := FullParams(m)
			if err != nil {
				t.Fatal(err)
			}
			return all
		}
	}
	run := func(variant string) (float64, [][]float32) {
		var opts model.LoadOptions
		if method == "qlora" {
			opts.Quantize = "q4_0"
		}
		f := newFixture(t, path, opts, loss, makeParams)
		defer f.close()
		f.step.Recompute = variant == "recompute"
		if variant == "gradcache" {
			f.step.GradCache = 3
		}
		f.step.QuerySideOnly = method == "lora-query-side"
		l, err := f.step.Accumulate(f.batch, 0.5)
		if err != nil {
			t.Fatal(err)
		}
		var grads [][]float32
		for _, p := range f.step.params {
			grads = append(grads, p.Grad)
		}
		return l, grads
	}
	wantLoss, want := run("whole")
	gotLoss, got := run(variant)
	if math.Abs(gotLoss-wantLoss) > 1e-5*math.Abs(wantLoss) {
		t.Errorf("loss %v, whole graph %v", gotLoss, wantLoss)
	}
	// Relative to each tensor's norm, with a floor of 1e-6 of the whole
	// gradient's: some gradients are zero in exact arithmetic (a key bias:
	// softmax ignores a constant shift) and only rounding noise here.
	var total float64
	for i := range want {
		for _, x := range want[i] {
			total += float64(x) * float64(x)
		}
	}
	floor := 1e-6 * math.Sqrt(total)
	worst := 0.0
	for i := range want {
		var num, den float64
		for j := range want[i] {
			d := float64(got[i][j] - want[i][j])
			num += d * d
			den += float64(want[i][j]) * float64(want[i][j])
		}
		worst = max(worst, math.Sqrt(num)/max(math.Sqrt(den), floor))
	}
	t.Logf("loss %.6f; worst relative L2 difference of %d gradients %.2e", gotLoss, len(want), worst)
	if worst > 1e-4 {
		t.Errorf("gradients differ from the whole graph's by %.3g", worst)
	}
}

// TestDeepModelStepFits builds and runs one LoRA step (every linear layer
// adapted) of a 24-layer gemma-embedding, EmbeddingGemma's depth: the step
// graph's node budget comes from the forward pass's own count, where a
// fixed budget per layer was too small for it ("graph of 12928 nodes is too
// small to rewrite ... backward products").
func TestDeepModelStepFits(t *testing.T) {
	queries, docs := miniPairs(t, 40)
	path := filepath.Join(t.TempDir(), "gemma24.gguf")
	o := modelinit.Options{Arch: "gemma-embedding", Texts: append(queries, docs...), Seed: 3, Type: gguf.F32,
		Dim: 32, Layers: 24, Heads: 2, KVHeads: 1, HeadDim: 16, FF: 64, Vocab: 300, Ctx: 32}
	if _, err := modelinit.Write(path, o); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, path, model.LoadOptions{}, LossConfig{}, loraParams(0, "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"))
	defer f.close()
	loss, err := f.step.Accumulate(f.batch, 1)
	if err != nil {
		t.Fatal(err)
	}
	if math.IsNaN(loss) || loss <= 0 {
		t.Fatalf("loss %v", loss)
	}
}

// TestStepGraphReportsLossErrors: a batch the loss cannot take (triplet
// needs one negative per query) gets the loss's own error, not a failure
// of the graph's sizing pass that builds the same forward first.
func TestStepGraphReportsLossErrors(t *testing.T) {
	queries, docs := miniPairs(t, 40)
	path := writeTiny(t, "bert", gguf.F32, append(queries, docs...))
	f := newFixture(t, path, model.LoadOptions{}, LossConfig{Name: LossTriplet}, loraParams(0, "attn_q"))
	defer f.close()
	f.batch.Docs = f.batch.Docs[:len(f.batch.Docs)-1]
	if _, err := f.step.Accumulate(f.batch, 1); err == nil || !strings.Contains(err.Error(), "triplet loss needs one positive and one negative per query") {
		t.Fatalf("err %v, want the triplet loss's", err)
	}
}
