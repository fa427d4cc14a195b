package encoder

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ragtune/ragtune/bindings"
	"github.com/ragtune/ragtune/bindings/gguf"
	"github.com/ragtune/ragtune/retrieval"
	"github.com/ragtune/ragtune/retrieval/shareddata"
	"github.com/ragtune/ragtune/tune/modelinit"
)

// realTexts returns n documents of the mini corpus plus the edge cases
// parity must cover: empty, non-ASCII, and longer than the context.
func realTexts(t testing.TB, n int) []string {
	dir := shareddata.Dir(t, "debian-packages", "mini")
	f, err := os.Open(filepath.Join(dir, "corpus.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var texts []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() && len(texts) < n {
		var d struct{ Title, Text string }
		if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
			t.Fatal(err)
		}
		texts = append(texts, d.Text)
	}
	long := strings.Repeat(texts[0]+" ", 20)
	return append(texts, "", "Ünïcödé façade — naïve café, 日本語のテキスト", long)
}

// tinyModel writes a model made from the texts; arch "bert+qkv" is bert
// with fused attn_qkv tensors.
func tinyModel(t testing.TB, arch string, typ gguf.TensorType, texts []string) string {
	path := filepath.Join(t.TempDir(), fmt.Sprintf("%s-%d.gguf", arch, typ))
	o := modelinit.Options{Arch: arch, Texts: texts, Seed: 7, Type: typ, Dim: 64, Layers: 2, Heads: 4, FF: 128, Vocab: 800}
	o.Arch, o.FusedQKV = strings.CutSuffix(arch, "+qkv")
	if arch == "llama" || arch == "qwen3" {
		o.KVHeads = 2
	}
	if arch == "qwen3" {
		o.HeadDim = 32 // wider than Dim/Heads, as Qwen3's heads are
	}
	if arch == "gemma-embedding" {
		// Six layers: five with the sliding window, one global; heads
		// wider than Dim/Heads and Dense projections, as EmbeddingGemma's.
		o.Layers, o.KVHeads, o.HeadDim, o.Dense = 6, 2, 32, 128
	}
	if _, err := modelinit.Write(path, o); err != nil {
		t.Fatal(err)
	}
	return path
}

// embedTexts opens path with opts, embeds texts as documents and returns
// the vectors with the encoder's device usage.
func embedTexts(t testing.TB, path string, opts Options, texts []string) ([][]float32, bindings.Usage) {
	t.Helper()
	e, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	vs, err := e.Embed(context.Background(), texts, retrieval.Document)
	if err != nil {
		t.Fatal(err)
	}
	return vs, e.Usage()
}

func cosine(a, b []float32) float64 {
	var ab, aa, bb float64
	for i := range a {
		ab += float64(a[i]) * float64(b[i])
		aa += float64(a[i]) * float64(a[i])
		bb += float64(b[i]) * float64(b[i])
	}
	return ab / math.Sqrt(aa*bb)
}

// TestParityWithLlamaCpp compares our graph's pooled embeddings with
// llama.cpp's on the same GGUF and texts.
func TestParityWithLlamaCpp(t *testing.T) {
	texts := realTexts(t, 24)
	for _, arch := range []string{"bert", "llama", "qwen3", "nomic-bert", "bert+qkv", "gemma-embedding"} {
		for _, typ := range []gguf.TensorType{gguf.F32, gguf.F16, gguf.Q8_0, gguf.Q4_0} {
			t.Run(fmt.Sprintf("%s/%s", arch, bindings.Type(typ)), func(t *testing.T) {
				path := tinyModel(t, arch, typ, texts)
				ours, err := Open(path, Options{Threads: 2, Batch: 7})
				if err != nil {
					t.Fatal(err)
				}
				defer ours.Close()
				a, err := ours.Embed(context.Background(), texts, retrieval.Document)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := embedTexts(t, path, Options{Engine: EngineLlama, Threads: 2, Batch: 1, Exact: true}, texts)
				minCos, maxDiff := 1.0, 0.0
				for i := range texts {
					c := cosine(a[i], b[i])
					minCos = min(minCos, c)
					for j := range a[i] {
						maxDiff = max(maxDiff, math.Abs(float64(a[i][j]-b[i][j])))
					}
				}
				want := 0.99999
				if typ != gguf.F32 {
					want = 0.999
				}
				t.Logf("min cosine %.7f, max abs diff %.3g over %d texts (%d truncated)", minCos, maxDiff, len(texts), ours.Stats().Truncated)
				if !(minCos >= want) { // NaN fails too
					t.Errorf("min cosine %.7f < %v", minCos, want)
				}
				if ours.Stats().Truncated == 0 {
					t.Error("no text was truncated: the long-text case is not covered")
				}
			})
		}
	}
}

// TestTokensEqualLlamaCpp checks that our token ids are llama.cpp's, with
// only the documented truncation added.
func TestTokensEqualLlamaCpp(t *testing.T) {
	texts := realTexts(t, 50)
	for _, arch := range []string{"bert", "llama", "qwen3", "nomic-bert", "gemma-embedding"} {
		path := tinyModel(t, arch, gguf.F32, texts)
		enc, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		vocab, err := bindings.LoadLlamaModel(path, true)
		if err != nil {
			t.Fatal(err)
		}
		for i, text := range texts {
			got, cut, err := enc.Tokenizer().Encode(text)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := vocab.Tokenize(text, true, false)
			if (arch == "llama" || arch == "qwen3") && want[len(want)-1] != vocab.EOS() {
				want = append(want, vocab.EOS())
			}
			if len(want) > enc.Tokenizer().MaxTokens() {
				if !cut {
					t.Errorf("%s text %d: %d tokens not reported as truncated", arch, i, len(want))
				}
				want = append(want[:enc.Tokenizer().MaxTokens()-1], want[len(want)-1])
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s text %d: tokens %v, llama.cpp %v", arch, i, got, want)
			}
		}
		vocab.Close()
		enc.Close()
	}
}
