package train

import (
	"math"
	"testing"

	"github.com/ragtune/ragtune/bindings"
	"github.com/ragtune/ragtune/bindings/gguf"
	"github.com/ragtune/ragtune/tune/encoder"
	"github.com/ragtune/ragtune/tune/model"
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
			be, err := bindings.NewCPUBackend(2)
			if err != nil {
				t.Fatal(err)
			}
			defer be.Close()
			m, err := model.Load(path, be, model.LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
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
			got := embedWith(t, m, be, ids, 32, model.BuildOptions{Trainable: true})
			var worst float64
			for i := range want {
				worst = max(worst, math.Abs(float64(got[i]-want[i])))
			}
			t.Logf("%d texts: max abs difference %.2e", len(ids), worst)
			// Not bit-equal: ggml's CPU gelu reads a table of f16 inputs.
			if worst > 1e-4 {
				t.Errorf("trainable graph differs from the inference graph by %.3g", worst)
			}
		})
	}
}
