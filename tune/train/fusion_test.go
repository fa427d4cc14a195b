package train

import (
	"context"
	"strings"
	"testing"

	"github.com/ragtune/ragtune/bindings/gguf"
	"github.com/ragtune/ragtune/retrieval/hybrid"
	"github.com/ragtune/ragtune/tune/encoder"
	"github.com/ragtune/ragtune/tune/hpo/objective"
)

// Validation with fusion scores the model's ranking as before, and its
// fusion with BM25 at least as well as either: the model alone and BM25
// alone are what the "dense" and "bm25" specs score.
func TestValidationFusion(t *testing.T) {
	d := miniSlice(t, 48)
	qs, ds := miniPairs(t, 300)
	enc, err := encoder.Open(writeTiny(t, "bert", gguf.F32, append(qs, ds...)), encoder.Options{Threads: 1, MaxTokens: 32})
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	ctx := context.Background()
	plain, err := NewValidator(d, "validation", 10)
	if err != nil {
		t.Fatal(err)
	}
	plain.CacheDocs = true
	want, err := plain.Evaluate(ctx, enc)
	if err != nil {
		t.Fatal(err)
	}
	scores := func(method string, weight *float64) Scores {
		t.Helper()
		v, _ := NewValidator(d, "validation", 10)
		v.docVecs = plain.docVecs // the same documents: embed them once
		if err := v.EnableFusion(method, weight, "ndcg@10"); err != nil {
			t.Fatal(err)
		}
		s, err := v.Evaluate(ctx, enc)
		if err != nil {
			t.Fatal(err)
		}
		for k, w := range want {
			if s[k] != w {
				t.Fatalf("%s: %s %v with fusion, %v without", method, k, s[k], w)
			}
		}
		return s
	}
	dense, bm25 := scores("dense", nil), scores("bm25", nil)
	if dense["hybrid_ndcg@10"] != want["ndcg@10"] || dense["hybrid_weight"] != 1 || dense["hybrid_fused"] != 0 || bm25["hybrid_weight"] != 0 {
		t.Fatalf("dense alone: %v (model %v)", dense, want["ndcg@10"])
	}
	if bm25["hybrid_ndcg@10"] <= 0 || bm25["hybrid_ndcg@10"] == want["ndcg@10"] {
		t.Fatalf("BM25 alone scores %v (model %v)", bm25["hybrid_ndcg@10"], want["ndcg@10"])
	}
	auto := scores("auto", nil)
	if auto["hybrid_ndcg@10"] < max(dense["hybrid_ndcg@10"], bm25["hybrid_ndcg@10"]) {
		t.Fatalf("auto fusion %v below the model %v or BM25 %v", auto["hybrid_ndcg@10"], dense["hybrid_ndcg@10"], bm25["hybrid_ndcg@10"])
	}
	if (auto["hybrid_fused"] == 1) != (auto["hybrid_ndcg@10"] > max(dense["hybrid_ndcg@10"], bm25["hybrid_ndcg@10"])) {
		t.Fatalf("hybrid_fused %v with %v against %v/%v", auto["hybrid_fused"], auto["hybrid_ndcg@10"], dense["hybrid_ndcg@10"], bm25["hybrid_ndcg@10"])
	}
	w := 0.35
	if given := scores("zscore", &w); given["hybrid_weight"] != 0.35 || given["hybrid_fused"] != 1 {
		t.Fatalf("zscore w=0.35: %v", given)
	}
	// Weight chosen for one method: never below the ends of its own range.
	if mm := scores("minmax", nil); mm["hybrid_ndcg@10"] < max(dense["hybrid_ndcg@10"], bm25["hybrid_ndcg@10"]) {
		t.Fatalf("minmax with its weight chosen: %v", mm["hybrid_ndcg@10"])
	}

	v, _ := NewValidator(d, "validation", 10)
	for _, c := range []struct {
		method, metric string
		weight         *float64
		want           string
	}{
		{"auto", "ndcg@10", &w, "give a fusion method"},
		{"rrf", "ndcg@10", &w, "rrf takes none"},
		{"cosine", "ndcg@10", nil, `unknown fusion "cosine"`},
		{"auto", "map@x", nil, `fusion metric "map@x"`},
	} {
		if err := v.EnableFusion(c.method, c.weight, c.metric); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %s: %v, want %q", c.method, c.metric, err, c.want)
		}
	}
}

// The study's built-in objective reports the hybrid scores by default and
// takes the fusion and its weight as trial parameters.
func TestObjectiveReportsHybridScores(t *testing.T) {
	d := miniSlice(t, 48)
	qs, ds := miniPairs(t, 300)
	o := &Objective{Model: writeTiny(t, "bert", gguf.F32, append(qs, ds...)), Out: t.TempDir(), data: d,
		Base: Config{Fusion: "auto", Epochs: 1, Batch: 8, MaxSeq: 32, Threads: 1}}
	noReport := func(int, map[string]float64) bool { return false }
	res, err := o.Run(context.Background(), objective.Trial{Number: 0, Params: map[string]any{"lr": 1e-3}}, noReport)
	if err != nil {
		t.Fatal(err)
	}
	if h, ok := res["hybrid_ndcg@10"].(float64); !ok || h < res["ndcg@10"].(float64) {
		t.Fatalf("auto: hybrid_ndcg@10 %v, ndcg@10 %v", res["hybrid_ndcg@10"], res["ndcg@10"])
	}
	// The fusion chosen on these queries is never below BM25 alone, which is
	// reported once (not as a base-model score).
	if b, ok := res["bm25_ndcg@10"].(float64); !ok || b > res["hybrid_ndcg@10"].(float64) || res["base_bm25_ndcg@10"] != nil {
		t.Fatalf("auto: bm25_ndcg@10 %v, hybrid_ndcg@10 %v, base_bm25_ndcg@10 %v", res["bm25_ndcg@10"], res["hybrid_ndcg@10"], res["base_bm25_ndcg@10"])
	}
	res, err = o.Run(context.Background(), objective.Trial{Number: 1, Params: map[string]any{"lr": 1e-3, "fusion": string(hybrid.MethodMinMax), "fusion_weight": 0.6}}, noReport)
	if err != nil {
		t.Fatal(err)
	}
	if res["hybrid_weight"] != 0.6 || res["hybrid_fused"] != 1.0 {
		t.Fatalf("minmax w=0.6: hybrid_weight %v, hybrid_fused %v", res["hybrid_weight"], res["hybrid_fused"])
	}
	off := o.Base
	if err := applyParams(&off, map[string]any{"fusion": "off"}); err != nil || off.Fusion != "" {
		t.Fatalf("fusion off: %v, %q", err, off.Fusion)
	}
}
