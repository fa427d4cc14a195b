package hfconvert

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ragtune/ragtune/bindings"
	"github.com/ragtune/ragtune/bindings/gguf"
	"github.com/ragtune/ragtune/bindings/safetensors"
	"github.com/ragtune/ragtune/retrieval"
	"github.com/ragtune/ragtune/tune/encoder"
)

func cosine(a, b []float32) float64 {
	var ab, aa, bb float64
	for i := range a {
		ab += float64(a[i]) * float64(b[i])
		aa += float64(a[i]) * float64(a[i])
		bb += float64(b[i]) * float64(b[i])
	}
	return ab / math.Sqrt(aa*bb)
}

// embedBoth embeds texts with llama.cpp's engine and ragtune's graph, and
// returns both with llama.cpp's token ids.
func embedBoth(t *testing.T, path string, texts []string) (llama, ours [][]float32, ids [][]int32) {
	t.Helper()
	ref, err := encoder.Open(path, encoder.Options{Engine: encoder.EngineLlama, Threads: 2, Batch: 1, Exact: true})
	must(t, err)
	defer ref.Close()
	if ids, err = ref.Tokenize(texts, retrieval.Document); err != nil {
		t.Fatal(err)
	}
	if llama, err = ref.Embed(context.Background(), texts, retrieval.Document); err != nil {
		t.Fatal(err)
	}
	g, err := encoder.Open(path, encoder.Options{Threads: 2, Batch: 4})
	must(t, err)
	defer g.Close()
	if ours, err = g.Embed(context.Background(), texts, retrieval.Document); err != nil {
		t.Fatal(err)
	}
	return llama, ours, ids
}

// TestConvertMatchesReference: a converted checkpoint embeds in llama.cpp
// and in ragtune's graph as the checkpoint's own forward pass does, for
// f32, f16 and bf16 files, single and sharded.
func TestConvertMatchesReference(t *testing.T) {
	for _, arch := range []string{"bert", "llama"} {
		for _, c := range []struct {
			dtype  safetensors.DType
			shards int
		}{{safetensors.F32, 1}, {safetensors.BF16, 2}, {safetensors.F16, 1}} {
			t.Run(fmt.Sprintf("%s/%s/%d", arch, c.dtype, c.shards), func(t *testing.T) {
				dir := filepath.Join(t.TempDir(), "hf")
				var ck *checkpoint
				reference := bertReference
				if arch == "bert" {
					ck, _ = bertFolder(t, dir, c.dtype, c.shards)
				} else {
					ck, _ = llamaFolder(t, dir, c.dtype, c.shards)
					reference = llamaReference
				}
				out := filepath.Join(t.TempDir(), "m.gguf")
				rep, err := Convert(dir, out, Options{})
				must(t, err)
				if rep.Arch != arch || !rep.Normalize {
					t.Errorf("report %+v", rep)
				}
				llama, ours, ids := embedBoth(t, out, corpus)
				minRef, minOurs := 1.0, 1.0
				for i := range corpus {
					want := reference(ck, ids[i])
					minRef = min(minRef, cosine(want, llama[i]))
					minOurs = min(minOurs, cosine(ours[i], llama[i]))
				}
				t.Logf("min cosine: reference vs llama.cpp %.9f, ragtune vs llama.cpp %.9f", minRef, minOurs)
				if minRef < 0.9999 || minOurs < 0.9999 {
					t.Errorf("cosine below 0.9999: reference %.7f, ragtune %.7f", minRef, minOurs)
				}
			})
		}
	}
}

// TestConvertQuantized: --type q8_0 writes quantized matrices that still
// embed like the f32 conversion.
func TestConvertQuantized(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "hf")
	ck, _ := bertFolder(t, dir, safetensors.F32, 1)
	out := filepath.Join(t.TempDir(), "q8.gguf")
	rep, err := Convert(dir, out, Options{Type: gguf.Q8_0})
	must(t, err)
	if rep.TensorTypes["q8_0"] == 0 {
		t.Fatalf("no q8_0 tensor: %v", rep.TensorTypes)
	}
	llama, _, ids := embedBoth(t, out, corpus)
	for i := range corpus {
		if c := cosine(bertReference(ck, ids[i]), llama[i]); c < 0.999 {
			t.Errorf("text %d: q8_0 cosine %.5f against the reference", i, c)
		}
	}
}

// TestTokenizersAsLlamaCpp: each tokenizer kind converts into a vocabulary
// that llama.cpp tokenizes exactly as the same vocabulary written by
// ragtune's own model init (which is llama.cpp's format by construction).
func TestTokenizersAsLlamaCpp(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "hf")
	_, v := bertFolder(t, dir, safetensors.F32, 1)
	out := filepath.Join(t.TempDir(), "m.gguf")
	_, err := Convert(dir, out, Options{})
	must(t, err)
	f, err := gguf.Open(out)
	must(t, err)
	toks, _, _ := f.Strings("tokenizer.ggml.tokens")
	f.Close()
	if fmt.Sprint(toks) != fmt.Sprint(v.Tokens) {
		t.Fatalf("WordPiece tokens differ from llama.cpp's form:\n got %q\nwant %q", toks[:10], v.Tokens[:10])
	}
	m, err := bindings.LoadLlamaModel(out, true)
	must(t, err)
	defer m.Close()
	got, err := m.Tokenize("quick brown fox. numerical arrays", true, false)
	must(t, err)
	if got[0] != 2 || got[len(got)-1] != 3 || len(got) < 5 {
		t.Errorf("bert tokens %v: want [CLS]=2 first and [SEP]=3 last", got)
	}
	for _, id := range got {
		if id == 1 {
			t.Errorf("bert tokens %v contain [UNK]", got)
		}
	}
}

// TestConvertQwen3: a Qwen3 checkpoint (BPE tokenizer.json, q/k norms, wide
// heads, bf16, an embedding table wider than the tokenizer) embeds as its
// reference forward pass does.
func TestConvertQwen3(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "hf")
	ck, v := qwen3Folder(t, dir)
	out := filepath.Join(t.TempDir(), "q.gguf")
	rep, err := Convert(dir, out, Options{})
	must(t, err)
	if rep.Arch != "qwen3" || rep.Tokenizer != "gpt2" || rep.TokenizerPre != "qwen2" || rep.Vocab != len(v.Tokens)+5 {
		t.Fatalf("report %+v", rep)
	}
	f, err := gguf.Open(out)
	must(t, err)
	toks, _, _ := f.Strings("tokenizer.ggml.tokens")
	merges, _, _ := f.Strings("tokenizer.ggml.merges")
	f.Close()
	if fmt.Sprint(toks[:len(v.Tokens)]) != fmt.Sprint(v.Tokens) || fmt.Sprint(merges) != fmt.Sprint(v.Merges) {
		t.Fatal("BPE tokens or merges differ from the tokenizer's")
	}
	if toks[len(v.Tokens)] != fmt.Sprintf("[PAD%d]", len(v.Tokens)) {
		t.Errorf("padding token %q", toks[len(v.Tokens)])
	}
	llama, ours, ids := embedBoth(t, out, corpus)
	for i := range corpus {
		if c := cosine(qwen3Reference(ck, ids[i]), llama[i]); c < 0.9999 {
			t.Errorf("text %d: reference vs llama.cpp cosine %.7f", i, c)
		}
		if c := cosine(ours[i], llama[i]); c < 0.9999 {
			t.Errorf("text %d: ragtune vs llama.cpp cosine %.7f", i, c)
		}
	}
}

// TestRoundTrip: convert, export as a sentence-transformers folder, convert
// again: the same metadata and the same tensor bytes.
func TestRoundTrip(t *testing.T) {
	for _, arch := range []string{"bert", "llama", "qwen3"} {
		t.Run(arch, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "hf")
			switch arch {
			case "bert":
				bertFolder(t, dir, safetensors.F32, 1)
			case "llama":
				llamaFolder(t, dir, safetensors.F32, 1)
			default:
				qwen3Folder(t, dir)
			}
			first := filepath.Join(t.TempDir(), "a.gguf")
			_, err := Convert(dir, first, Options{Name: "m"})
			must(t, err)
			back := filepath.Join(t.TempDir(), "st")
			rep, err := Export(first, back, ExportOptions{})
			must(t, err)
			t.Logf("exported %v", rep.Files)
			second := filepath.Join(t.TempDir(), "b.gguf")
			_, err = Convert(back, second, Options{Name: "m"})
			must(t, err)
			a, err := gguf.Open(first)
			must(t, err)
			defer a.Close()
			b, err := gguf.Open(second)
			must(t, err)
			defer b.Close()
			if fmt.Sprint(a.KVs) != fmt.Sprint(b.KVs) {
				for i := range max(len(a.KVs), len(b.KVs)) {
					if i >= len(a.KVs) || i >= len(b.KVs) || fmt.Sprint(a.KVs[i]) != fmt.Sprint(b.KVs[i]) {
						t.Errorf("first differing key: %v", func() []any {
							var out []any
							if i < len(a.KVs) {
								out = append(out, a.KVs[i].Key)
							}
							if i < len(b.KVs) {
								out = append(out, b.KVs[i].Key)
							}
							return out
						}())
						break
					}
				}
			}
			if len(a.Tensors) != len(b.Tensors) {
				t.Fatalf("%d tensors, then %d", len(a.Tensors), len(b.Tensors))
			}
			for i, ta := range a.Tensors {
				tb := b.Tensors[i]
				da, _ := a.TensorData(ta.Name)
				db, _ := b.TensorData(tb.Name)
				if ta.Name != tb.Name || ta.Type != tb.Type || fmt.Sprint(ta.Dims) != fmt.Sprint(tb.Dims) || string(da) != string(db) {
					t.Errorf("tensor %s (%s %v) became %s (%s %v), same bytes %v", ta.Name, ta.Type, ta.Dims, tb.Name, tb.Type, tb.Dims, string(da) == string(db))
				}
			}
		})
	}
}

// llamaCppEmbed embeds texts with llama.cpp alone (for families ragtune's
// own graph does not run yet): its tokens, its pooled vectors.
func llamaCppEmbed(t *testing.T, path string, texts []string) ([][]float32, [][]int32) {
	t.Helper()
	m, err := bindings.LoadLlamaModel(path, false)
	must(t, err)
	defer m.Close()
	ctx, err := m.NewEmbeddingContext(bindings.LlamaContextOptions{Pooling: bindings.PoolingUnspecified, Threads: 2, Exact: true})
	must(t, err)
	defer ctx.Close()
	var vecs [][]float32
	var ids [][]int32
	for _, text := range texts {
		toks, err := m.Tokenize(text, true, false)
		must(t, err)
		v, err := ctx.EmbedPooled([][]int32{toks})
		must(t, err)
		vecs = append(vecs, v[0])
		ids = append(ids, toks)
	}
	return vecs, ids
}

// TestConvertXLMRoberta: a Unigram tokenizer.json becomes llama.cpp's UGM
// vocabulary (<s> … </s> framing), the position table loses RoBERTa's
// offset rows, and the embeddings (llama.cpp's and ragtune's graph's) equal
// the reference's.
func TestConvertXLMRoberta(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "hf")
	ck := xlmrFolder(t, dir)
	out := filepath.Join(t.TempDir(), "x.gguf")
	rep, err := Convert(dir, out, Options{})
	must(t, err)
	if rep.Tokenizer != "t5" || rep.Pooling != "cls" {
		t.Fatalf("report %+v", rep)
	}
	// The last text is longer than the model's context: truncated, it still
	// ends with </s>.
	texts := append(append([]string(nil), corpus...), strings.Repeat("a long text of many words ", 60))
	vecs, ours, ids := embedBoth(t, out, texts)
	for i := range texts {
		if c := cosine(vecs[i], ours[i]); c < 0.9999 {
			t.Errorf("text %d: ragtune vs llama.cpp cosine %.7f", i, c)
		}
		if ids[i][0] != 0 || ids[i][len(ids[i])-1] != 2 {
			t.Errorf("text %d: tokens %v not framed by <s> (0) and </s> (2)", i, ids[i])
		}
		for _, id := range ids[i] {
			if id == 3 {
				t.Errorf("text %d: <unk> in %v", i, ids[i])
				break
			}
		}
		if c := cosine(xlmrReference(ck, ids[i]), vecs[i]); c < 0.9999 {
			t.Errorf("text %d: reference vs llama.cpp cosine %.7f", i, c)
		}
	}
}

// TestConvertNomicAndGemma: the families llama.cpp runs before ragtune's own
// graph does: the converted GGUF loads in llama.cpp and embeds as the
// checkpoint's reference forward pass.
func TestConvertNomicAndGemma(t *testing.T) {
	for _, c := range []struct {
		arch   string
		folder func(testing.TB, string) *checkpoint
		ref    func(*checkpoint, []int32) []float32
	}{{"nomic-bert", nomicFolder, nomicReference}, {"gemma-embedding", gemmaFolder, gemmaReference}} {
		t.Run(c.arch, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "hf")
			ck := c.folder(t, dir)
			out := filepath.Join(t.TempDir(), "m.gguf")
			rep, err := Convert(dir, out, Options{})
			must(t, err)
			if rep.Arch != c.arch {
				t.Fatalf("report %+v", rep)
			}
			vecs, ids := llamaCppEmbed(t, out, corpus)
			worst := 1.0
			for i := range corpus {
				worst = min(worst, cosine(c.ref(ck, ids[i]), vecs[i]))
			}
			t.Logf("min cosine reference vs llama.cpp %.9f", worst)
			if worst < 0.9999 {
				t.Errorf("min cosine %.7f < 0.9999", worst)
			}
			back := filepath.Join(t.TempDir(), "st")
			_, err = Export(out, back, ExportOptions{})
			must(t, err)
			again := filepath.Join(t.TempDir(), "again.gguf")
			_, err = Convert(back, again, Options{Name: "hf"})
			must(t, err)
			a, _ := gguf.Open(out)
			b, _ := gguf.Open(again)
			defer a.Close()
			defer b.Close()
			for _, ta := range a.Tensors {
				da, _ := a.TensorData(ta.Name)
				db, err := b.TensorData(ta.Name)
				if err != nil || string(da) != string(db) {
					t.Errorf("tensor %s differs after export and convert (%v)", ta.Name, err)
				}
			}
		})
	}
}

// TestConvertCausalLM: a *ForCausalLM checkpoint names its weights
// "model.…" and carries lm_head, which becomes output.weight.
func TestConvertCausalLM(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "hf")
	ck, v := llamaFolder(t, dir, safetensors.F32, 1)
	b := safetensors.NewBuilder()
	for _, n := range ck.names {
		must(t, b.AddFloat32s("model."+n, safetensors.F32, ck.shapes[n], ck.vals[n]))
	}
	must(t, b.AddFloat32s("lm_head.weight", safetensors.F32, []int64{int64(len(v.Tokens)), tE}, ck.normal(len(v.Tokens)*tE, 0, 0.1)))
	must(t, b.WriteFile(filepath.Join(dir, safetensors.SingleFile)))
	writeTestJSON(t, filepath.Join(dir, "config.json"), map[string]any{
		"architectures": []string{"MistralForCausalLM"}, "hidden_size": tE, "num_hidden_layers": tL, "num_attention_heads": tH,
		"num_key_value_heads": tHkv, "intermediate_size": tF, "max_position_embeddings": 128, "rms_norm_eps": 1e-5, "tie_word_embeddings": false,
	})
	out := filepath.Join(t.TempDir(), "m.gguf")
	_, err := Convert(dir, out, Options{})
	must(t, err)
	f, err := gguf.Open(out)
	must(t, err)
	_, hasOutput := f.Tensor("output.weight")
	f.Close()
	if !hasOutput {
		t.Fatal("lm_head did not become output.weight")
	}
	llama, ours, ids := embedBoth(t, out, corpus)
	for i := range corpus {
		if c := cosine(llamaReference(ck, ids[i]), llama[i]); c < 0.9999 {
			t.Errorf("text %d: reference vs llama.cpp cosine %.7f", i, c)
		}
		if c := cosine(ours[i], llama[i]); c < 0.9999 {
			t.Errorf("text %d: ragtune vs llama.cpp cosine %.7f", i, c)
		}
	}
}

// TestPermuteRoPE: within each head, row 2j+s takes row s·d/2+j (rows of
// any length, biases too), and the export's inverse undoes it.
func TestPermuteRoPE(t *testing.T) {
	bias := []float32{0, 1, 2, 3, 4, 5, 6, 7, 10, 11, 12, 13}
	got, err := permuteRoPE(func() ([]float32, error) { return bias, nil }, 2, 1)
	must(t, err)
	// Two heads of 6: rows 0..5 become 0 3 1 4 2 5.
	if want := []float32{0, 3, 1, 4, 2, 5, 6, 11, 7, 12, 10, 13}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("bias permuted to %v, want %v", got, want)
	}
	// Two heads of 6 rows of 2 values.
	rows := make([]float32, 24)
	for i := range rows {
		rows[i] = float32(i)
	}
	p, err := permuteRows(rows, 2, 2, false)
	must(t, err)
	if fmt.Sprint(p[:12]) != fmt.Sprint([]float32{0, 1, 6, 7, 2, 3, 8, 9, 4, 5, 10, 11}) {
		t.Errorf("permuted %v", p[:12])
	}
	if back, err := permuteRows(p, 2, 2, true); err != nil || fmt.Sprint(back) != fmt.Sprint(rows) {
		t.Errorf("inverse gives %v", back)
	}
	if _, err := permuteRoPE(func() ([]float32, error) { return bias[:10], nil }, 2, 1); err == nil {
		t.Error("odd head size accepted")
	}
}
