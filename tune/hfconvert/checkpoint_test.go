package hfconvert

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ragtune/ragtune/bindings/safetensors"
	"github.com/ragtune/ragtune/tune/modelinit"
)

// Tiny checkpoints in Hugging Face's own layout, written by the tests with
// the safetensors writer, and reference forward passes over their tensors
// written from the published model definitions (transformers' BertModel and
// LlamaModel/MistralModel), not through any GGUF or ggml code.

var corpus = []string{
	"The quick brown fox jumps over the lazy dog.",
	"Debian packages install software with apt and dpkg.",
	"A tiny model converted from Hugging Face weights.",
	"Embeddings map texts to vectors for retrieval.",
	"libssl provides the TLS library used by many servers",
	"python3-numpy: fast arrays for numerical computing",
}

// checkpoint collects named tensors (row-major, PyTorch shapes).
type checkpoint struct {
	rng    *rand.Rand
	names  []string
	shapes map[string][]int64
	vals   map[string][]float32
}

func newCheckpoint(seed uint64) *checkpoint {
	return &checkpoint{rng: rand.New(rand.NewPCG(seed, 99)), shapes: map[string][]int64{}, vals: map[string][]float32{}}
}

func (c *checkpoint) add(name string, v []float32, shape ...int64) {
	c.names = append(c.names, name)
	c.shapes[name] = shape
	c.vals[name] = v
}

func (c *checkpoint) normal(n int, mean, std float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(mean + std*c.rng.NormFloat64())
	}
	return v
}

// mat adds an nn.Linear weight [out, in].
func (c *checkpoint) mat(name string, out, in int) {
	c.add(name, c.normal(out*in, 0, 0.08), int64(out), int64(in))
}

// vec adds a vector around mean (norm gains 1, biases 0).
func (c *checkpoint) vec(name string, n int, mean float64) {
	c.add(name, c.normal(n, mean, 0.05), int64(n))
}

// w returns a tensor as the reference reads it.
func (c *checkpoint) w(name string) []float32 {
	v, ok := c.vals[name]
	if !ok {
		panic("reference needs missing tensor " + name)
	}
	return v
}

// write stores the tensors as dtype in shards files (1: model.safetensors;
// more: an index and model-0000i-of-0000n.safetensors). Values are rounded
// to dtype first, so the reference sees exactly what the file holds.
func (c *checkpoint) write(t testing.TB, dir string, dtype safetensors.DType, shards int) {
	t.Helper()
	for _, n := range c.names {
		raw, err := safetensors.FromFloat32(dtype, c.vals[n])
		if err != nil {
			t.Fatal(err)
		}
		if c.vals[n], err = safetensors.ToFloat32(dtype, raw); err != nil {
			t.Fatal(err)
		}
	}
	if shards <= 1 {
		b := safetensors.NewBuilder()
		b.SetMetadata("format", "pt")
		for _, n := range c.names {
			must(t, b.AddFloat32s(n, dtype, c.shapes[n], c.vals[n]))
		}
		must(t, b.WriteFile(filepath.Join(dir, safetensors.SingleFile)))
		return
	}
	weightMap := map[string]string{}
	for s := 0; s < shards; s++ {
		file := fmt.Sprintf("model-%05d-of-%05d.safetensors", s+1, shards)
		b := safetensors.NewBuilder()
		for i, n := range c.names {
			if i%shards == s {
				must(t, b.AddFloat32s(n, dtype, c.shapes[n], c.vals[n]))
				weightMap[n] = file
			}
		}
		must(t, b.WriteFile(filepath.Join(dir, file)))
	}
	writeTestJSON(t, filepath.Join(dir, safetensors.IndexFile), map[string]any{"metadata": map[string]any{}, "weight_map": weightMap})
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func writeTestJSON(t testing.TB, path string, v any) {
	t.Helper()
	data, err := json.Marshal(v)
	must(t, err)
	must(t, os.MkdirAll(filepath.Dir(path), 0o755))
	must(t, os.WriteFile(path, data, 0o644))
}

// sentenceTransformers writes modules.json and the Pooling module.
func sentenceTransformers(t testing.TB, dir, mode string, dim int) {
	writeTestJSON(t, filepath.Join(dir, "modules.json"), []map[string]any{
		{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
		{"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
		{"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
	})
	writeTestJSON(t, filepath.Join(dir, "1_Pooling", "config.json"), map[string]any{
		"word_embedding_dimension": dim, "pooling_mode_" + mode: true, "pooling_mode_max_tokens": false,
	})
}

// Shapes of the tiny models.
const (
	tE, tL, tH, tF = 64, 2, 4, 128
	tHkv           = 2
)

// hfWordPiece turns a vocabulary in llama.cpp's phantom-space form back into
// BERT's vocab.txt form: "▁word" is a word, any other piece "##piece".
func hfWordPiece(v *modelinit.Vocab) []string {
	out := make([]string, len(v.Tokens))
	for i, tok := range v.Tokens {
		switch {
		case v.Types[i] == tokControl:
			out[i] = tok
		case strings.HasPrefix(tok, "▁"):
			out[i] = strings.TrimPrefix(tok, "▁")
		default:
			out[i] = "##" + tok
		}
	}
	return out
}

// bertFolder writes a tiny BertModel with a WordPiece vocab.txt and mean
// pooling; it returns the checkpoint and the llama.cpp-form vocabulary.
func bertFolder(t testing.TB, dir string, dtype safetensors.DType, shards int) (*checkpoint, *modelinit.Vocab) {
	t.Helper()
	v, err := modelinit.BuildWordPiece(corpus, 300)
	must(t, err)
	must(t, os.MkdirAll(dir, 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "vocab.txt"), []byte(strings.Join(hfWordPiece(v), "\n")+"\n"), 0o644))
	writeTestJSON(t, filepath.Join(dir, "tokenizer_config.json"), map[string]any{
		"cls_token": "[CLS]", "sep_token": "[SEP]", "unk_token": "[UNK]", "pad_token": "[PAD]", "mask_token": "[MASK]", "do_lower_case": true,
	})
	const P = 64
	writeTestJSON(t, filepath.Join(dir, "config.json"), map[string]any{
		"architectures": []string{"BertModel"}, "model_type": "bert", "hidden_size": tE, "num_hidden_layers": tL,
		"num_attention_heads": tH, "intermediate_size": tF, "max_position_embeddings": P, "layer_norm_eps": 1e-12,
		"type_vocab_size": 2, "vocab_size": len(v.Tokens), "hidden_act": "gelu", "pad_token_id": 0,
	})
	sentenceTransformers(t, dir, "mean_tokens", tE)
	c := newCheckpoint(3)
	bertWeights(c, len(v.Tokens), P, 2)
	c.write(t, dir, dtype, shards)
	return c, v
}

// bertWeights adds a BertModel's tensors (sentence-transformers' names,
// without the "bert." prefix) and two that the converter must drop.
func bertWeights(c *checkpoint, vocab, positions, types int) {
	c.add("embeddings.word_embeddings.weight", c.normal(vocab*tE, 0, 0.5), int64(vocab), tE)
	c.add("embeddings.position_embeddings.weight", c.normal(positions*tE, 0, 0.2), int64(positions), tE)
	c.add("embeddings.token_type_embeddings.weight", c.normal(types*tE, 0, 0.2), int64(types), tE)
	c.vec("embeddings.LayerNorm.weight", tE, 1)
	c.vec("embeddings.LayerNorm.bias", tE, 0)
	c.add("embeddings.position_ids", make([]float32, positions), 1, int64(positions))
	for l := 0; l < tL; l++ {
		p := fmt.Sprintf("encoder.layer.%d.", l)
		for _, m := range []string{"attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"} {
			c.mat(p+m+".weight", tE, tE)
			c.vec(p+m+".bias", tE, 0)
		}
		c.vec(p+"attention.output.LayerNorm.weight", tE, 1)
		c.vec(p+"attention.output.LayerNorm.bias", tE, 0)
		c.mat(p+"intermediate.dense.weight", tF, tE)
		c.vec(p+"intermediate.dense.bias", tF, 0)
		c.mat(p+"output.dense.weight", tE, tF)
		c.vec(p+"output.dense.bias", tE, 0)
		c.vec(p+"output.LayerNorm.weight", tE, 1)
		c.vec(p+"output.LayerNorm.bias", tE, 0)
	}
	c.mat("pooler.dense.weight", tE, tE)
	c.vec("pooler.dense.bias", tE, 0)
}

// xlmrFolder writes a tiny XLMRobertaModel: a Unigram tokenizer.json in
// fairseq's id order (<s> <pad> </s> <unk> … <mask>), positions numbered
// from pad_token_id+1, one token type, CLS pooling.
func xlmrFolder(t testing.TB, dir string) *checkpoint {
	t.Helper()
	spm, err := modelinit.BuildSentencePiece(corpus, 400)
	must(t, err)
	must(t, os.MkdirAll(dir, 0o755))
	vocab := [][2]any{{"<s>", 0.0}, {"<pad>", 0.0}, {"</s>", 0.0}, {"<unk>", 0.0}}
	for i, tok := range spm.Tokens {
		if spm.Types[i] == tokNormal {
			vocab = append(vocab, [2]any{tok, float64(spm.Scores[i])})
		}
	}
	vocab = append(vocab, [2]any{"<mask>", 0.0})
	var added []map[string]any
	for _, id := range []int{0, 1, 2, 3, len(vocab) - 1} {
		added = append(added, map[string]any{"id": id, "content": vocab[id][0], "special": true})
	}
	writeTestJSON(t, filepath.Join(dir, "tokenizer.json"), map[string]any{
		"added_tokens":  added,
		"normalizer":    nil,
		"pre_tokenizer": map[string]any{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always"},
		"model":         map[string]any{"type": "Unigram", "unk_id": 3, "vocab": vocab},
	})
	writeTestJSON(t, filepath.Join(dir, "tokenizer_config.json"), map[string]any{
		"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "sep_token": "</s>", "pad_token": "<pad>", "cls_token": "<s>", "mask_token": "<mask>",
	})
	const P = 64
	writeTestJSON(t, filepath.Join(dir, "config.json"), map[string]any{
		"architectures": []string{"XLMRobertaModel"}, "model_type": "xlm-roberta", "hidden_size": tE, "num_hidden_layers": tL,
		"num_attention_heads": tH, "intermediate_size": tF, "max_position_embeddings": P + 2, "layer_norm_eps": 1e-5,
		"type_vocab_size": 1, "vocab_size": len(vocab), "hidden_act": "gelu", "pad_token_id": 1,
	})
	sentenceTransformers(t, dir, "cls_token", tE)
	c := newCheckpoint(11)
	bertWeights(c, len(vocab), P+2, 1)
	c.write(t, dir, safetensors.F32, 1)
	return c
}

// llamaFolder writes a tiny MistralModel (headless, GQA) with a SentencePiece
// tokenizer.model and last-token pooling.
func llamaFolder(t testing.TB, dir string, dtype safetensors.DType, shards int) (*checkpoint, *modelinit.Vocab) {
	t.Helper()
	v, err := modelinit.BuildSentencePiece(corpus, 400)
	must(t, err)
	must(t, os.MkdirAll(dir, 0o755))
	m := &spmModel{ModelType: spmBPE, AddDummy: true, RemoveSpaces: false}
	for i, tok := range v.Tokens {
		m.Pieces = append(m.Pieces, spmPiece{Text: tok, Score: v.Scores[i], Type: v.Types[i]})
	}
	must(t, os.WriteFile(filepath.Join(dir, "tokenizer.model"), encodeSPM(m), 0o644))
	writeTestJSON(t, filepath.Join(dir, "tokenizer_config.json"), map[string]any{
		"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "add_bos_token": true, "add_eos_token": true,
	})
	const ctx = 128
	writeTestJSON(t, filepath.Join(dir, "config.json"), map[string]any{
		"architectures": []string{"MistralModel"}, "model_type": "mistral", "hidden_size": tE, "num_hidden_layers": tL,
		"num_attention_heads": tH, "num_key_value_heads": tHkv, "intermediate_size": tF, "max_position_embeddings": ctx,
		"rms_norm_eps": 1e-5, "rope_theta": 10000.0, "vocab_size": len(v.Tokens), "bos_token_id": 1, "eos_token_id": 2,
		"hidden_act": "silu", "sliding_window": 4096,
	})
	sentenceTransformers(t, dir, "lasttoken", tE)
	c := newCheckpoint(5)
	decoderWeights(c, len(v.Tokens), tinyMistral)
	c.write(t, dir, dtype, shards)
	return c, v
}

// linear is y = W x + b for an nn.Linear weight W [out, in].
func linear(w, b []float32, x []float64) []float64 {
	in := len(x)
	out := make([]float64, len(w)/in)
	for o := range out {
		var s float64
		for i, xi := range x {
			s += float64(w[o*in+i]) * xi
		}
		if b != nil {
			s += float64(b[o])
		}
		out[o] = s
	}
	return out
}

func layerNorm(x []float64, g, b []float32, eps float64) []float64 {
	var mean, vr float64
	for _, v := range x {
		mean += v
	}
	mean /= float64(len(x))
	for _, v := range x {
		vr += (v - mean) * (v - mean)
	}
	vr /= float64(len(x))
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = (v-mean)/math.Sqrt(vr+eps)*float64(g[i]) + float64(b[i])
	}
	return out
}

func rmsNorm(x []float64, g []float32, eps float64) []float64 {
	var ss float64
	for _, v := range x {
		ss += v * v
	}
	r := 1 / math.Sqrt(ss/float64(len(x))+eps)
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = v * r * float64(g[i])
	}
	return out
}

func add(a, b []float64) []float64 {
	out := make([]float64, len(a))
	for i := range a {
		out[i] = a[i] + b[i]
	}
	return out
}

// attention is scaled dot-product attention of T positions, heads query
// heads sharing kvHeads key/value heads; causal masks the future.
func attention(q, k, v [][]float64, heads, kvHeads, d int, causal bool) [][]float64 {
	T := len(q)
	out := make([][]float64, T)
	for i := range out {
		out[i] = make([]float64, heads*d)
	}
	for h := 0; h < heads; h++ {
		kh := h / (heads / kvHeads)
		for i := 0; i < T; i++ {
			n := T
			if causal {
				n = i + 1
			}
			scores := make([]float64, n)
			mx := math.Inf(-1)
			for j := 0; j < n; j++ {
				var s float64
				for x := 0; x < d; x++ {
					s += q[i][h*d+x] * k[j][kh*d+x]
				}
				scores[j] = s / math.Sqrt(float64(d))
				mx = math.Max(mx, scores[j])
			}
			var sum float64
			for j := range scores {
				scores[j] = math.Exp(scores[j] - mx)
				sum += scores[j]
			}
			for j := range scores {
				for x := 0; x < d; x++ {
					out[i][h*d+x] += scores[j] / sum * v[j][kh*d+x]
				}
			}
		}
	}
	return out
}

// bertReference is transformers' BertModel + mean pooling (exact erf GELU,
// token type 0, positions from 0).
func bertReference(c *checkpoint, ids []int32) []float32 {
	return meanPool(bertHidden(c, ids, 0, 1e-12))
}

// xlmrReference is XLMRobertaModel: positions from pad_token_id+1 (= 2),
// CLS pooling.
func xlmrReference(c *checkpoint, ids []int32) []float32 {
	h := bertHidden(c, ids, 2, 1e-5)
	out := make([]float32, tE)
	for j := range out {
		out[j] = float32(h[0][j])
	}
	return out
}

func meanPool(x [][]float64) []float32 {
	out := make([]float32, tE)
	for j := range out {
		var s float64
		for i := range x {
			s += x[i][j]
		}
		out[j] = float32(s / float64(len(x)))
	}
	return out
}

// bertHidden is the last hidden state of BertModel / XLMRobertaModel.
func bertHidden(c *checkpoint, ids []int32, posOffset int, eps float64) [][]float64 {
	T, d := len(ids), tE/tH
	x := make([][]float64, T)
	for i, id := range ids {
		x[i] = make([]float64, tE)
		for j := range x[i] {
			x[i][j] = float64(c.w("embeddings.word_embeddings.weight")[int(id)*tE+j]) +
				float64(c.w("embeddings.position_embeddings.weight")[(i+posOffset)*tE+j]) +
				float64(c.w("embeddings.token_type_embeddings.weight")[j])
		}
		x[i] = layerNorm(x[i], c.w("embeddings.LayerNorm.weight"), c.w("embeddings.LayerNorm.bias"), eps)
	}
	for l := 0; l < tL; l++ {
		p := fmt.Sprintf("encoder.layer.%d.", l)
		lin := func(m string, v []float64) []float64 { return linear(c.w(p+m+".weight"), c.w(p+m+".bias"), v) }
		q, k, v := make([][]float64, T), make([][]float64, T), make([][]float64, T)
		for i := range x {
			q[i], k[i], v[i] = lin("attention.self.query", x[i]), lin("attention.self.key", x[i]), lin("attention.self.value", x[i])
		}
		a := attention(q, k, v, tH, tH, d, false)
		for i := range x {
			h := layerNorm(add(lin("attention.output.dense", a[i]), x[i]), c.w(p+"attention.output.LayerNorm.weight"), c.w(p+"attention.output.LayerNorm.bias"), eps)
			u := lin("intermediate.dense", h)
			for j, z := range u {
				u[j] = 0.5 * z * (1 + math.Erf(z/math.Sqrt2))
			}
			x[i] = layerNorm(add(lin("output.dense", u), h), c.w(p+"output.LayerNorm.weight"), c.w(p+"output.LayerNorm.bias"), eps)
		}
	}
	return x
}

// ropeHalf rotates each head's halves (transformers' rotate_half).
func ropeHalf(x []float64, heads, d, pos int, base float64) {
	for h := 0; h < heads; h++ {
		for i := 0; i < d/2; i++ {
			theta := float64(pos) * math.Pow(base, -2*float64(i)/float64(d))
			a, b := x[h*d+i], x[h*d+i+d/2]
			x[h*d+i] = a*math.Cos(theta) - b*math.Sin(theta)
			x[h*d+i+d/2] = b*math.Cos(theta) + a*math.Sin(theta)
		}
	}
}

// decoder describes a tiny decoder for the reference.
type decoder struct {
	heads, kvHeads, headDim int
	eps, base               float64
	qkNorm                  bool // Qwen3: RMSNorm of each q and k head before RoPE
}

var (
	tinyMistral = decoder{heads: tH, kvHeads: tHkv, headDim: tE / tH, eps: 1e-5, base: 10000}
	tinyQwen3   = decoder{heads: tH, kvHeads: tHkv, headDim: 32, eps: 1e-6, base: 1e6, qkNorm: true}
)

func llamaReference(c *checkpoint, ids []int32) []float32 {
	return decoderReference(c, ids, tinyMistral)
}
func qwen3Reference(c *checkpoint, ids []int32) []float32 { return decoderReference(c, ids, tinyQwen3) }

// decoderReference is transformers' MistralModel / Qwen3Model (pre-RMSNorm,
// rotate-half RoPE, GQA, SwiGLU, causal) pooled at the last token.
func decoderReference(c *checkpoint, ids []int32, s decoder) []float32 {
	T, d := len(ids), s.headDim
	x := make([][]float64, T)
	for i, id := range ids {
		x[i] = make([]float64, tE)
		for j := range x[i] {
			x[i][j] = float64(c.w("embed_tokens.weight")[int(id)*tE+j])
		}
	}
	headNorm := func(v []float64, heads int, g []float32) {
		for h := 0; h < heads; h++ {
			copy(v[h*d:(h+1)*d], rmsNorm(v[h*d:(h+1)*d], g, s.eps))
		}
	}
	for l := 0; l < tL; l++ {
		p := fmt.Sprintf("layers.%d.", l)
		lin := func(m string, v []float64) []float64 { return linear(c.w(p+m+".weight"), nil, v) }
		q, k, v := make([][]float64, T), make([][]float64, T), make([][]float64, T)
		for i := range x {
			n := rmsNorm(x[i], c.w(p+"input_layernorm.weight"), s.eps)
			q[i], k[i], v[i] = lin("self_attn.q_proj", n), lin("self_attn.k_proj", n), lin("self_attn.v_proj", n)
			if s.qkNorm {
				headNorm(q[i], s.heads, c.w(p+"self_attn.q_norm.weight"))
				headNorm(k[i], s.kvHeads, c.w(p+"self_attn.k_norm.weight"))
			}
			ropeHalf(q[i], s.heads, d, i, s.base)
			ropeHalf(k[i], s.kvHeads, d, i, s.base)
		}
		a := attention(q, k, v, s.heads, s.kvHeads, d, true)
		for i := range x {
			h := add(x[i], lin("self_attn.o_proj", a[i]))
			m := rmsNorm(h, c.w(p+"post_attention_layernorm.weight"), s.eps)
			g, u := lin("mlp.gate_proj", m), lin("mlp.up_proj", m)
			for j := range g {
				g[j] = g[j] / (1 + math.Exp(-g[j])) * u[j]
			}
			x[i] = add(h, lin("mlp.down_proj", g))
		}
	}
	last := rmsNorm(x[T-1], c.w("norm.weight"), s.eps)
	out := make([]float32, tE)
	for j := range out {
		out[j] = float32(last[j])
	}
	return out
}

// decoderWeights adds a decoder's tensors (headless names, as AutoModel saves them).
func decoderWeights(c *checkpoint, vocab int, s decoder) {
	d := s.headDim
	c.add("embed_tokens.weight", c.normal(vocab*tE, 0, 0.5), int64(vocab), tE)
	for l := 0; l < tL; l++ {
		p := fmt.Sprintf("layers.%d.", l)
		c.vec(p+"input_layernorm.weight", tE, 1)
		c.mat(p+"self_attn.q_proj.weight", s.heads*d, tE)
		c.mat(p+"self_attn.k_proj.weight", s.kvHeads*d, tE)
		c.mat(p+"self_attn.v_proj.weight", s.kvHeads*d, tE)
		if s.qkNorm {
			c.vec(p+"self_attn.q_norm.weight", d, 1)
			c.vec(p+"self_attn.k_norm.weight", d, 1)
		}
		c.mat(p+"self_attn.o_proj.weight", tE, s.heads*d)
		c.vec(p+"post_attention_layernorm.weight", tE, 1)
		c.mat(p+"mlp.gate_proj.weight", tF, tE)
		c.mat(p+"mlp.up_proj.weight", tF, tE)
		c.mat(p+"mlp.down_proj.weight", tE, tF)
	}
	c.vec("norm.weight", tE, 1)
}

// qwen3Folder writes a tiny Qwen3Model (head_dim wider than E/H, q/k norms)
// with a byte-level BPE tokenizer.json and last-token pooling.
func qwen3Folder(t testing.TB, dir string) (*checkpoint, *modelinit.Vocab) {
	t.Helper()
	v, err := modelinit.BuildByteBPE(corpus, 400)
	must(t, err)
	must(t, os.MkdirAll(dir, 0o755))
	vocabMap := map[string]int{}
	var added []map[string]any
	for i, tok := range v.Tokens {
		if v.Types[i] == tokControl {
			added = append(added, map[string]any{"id": i, "content": tok, "special": true})
			continue
		}
		vocabMap[tok] = i
	}
	writeTestJSON(t, filepath.Join(dir, "tokenizer.json"), map[string]any{
		"added_tokens": added,
		"pre_tokenizer": map[string]any{"type": "Sequence", "pretokenizers": []any{
			map[string]any{"type": "Split", "pattern": map[string]any{"Regex": bprePatterns[1].regex}, "behavior": "Isolated"},
			map[string]any{"type": "ByteLevel", "add_prefix_space": false, "use_regex": false},
		}},
		"model": map[string]any{"type": "BPE", "vocab": vocabMap, "merges": v.Merges},
	})
	writeTestJSON(t, filepath.Join(dir, "tokenizer_config.json"), map[string]any{
		"eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>", "bos_token": nil,
	})
	writeTestJSON(t, filepath.Join(dir, "config.json"), map[string]any{
		"architectures": []string{"Qwen3ForCausalLM"}, "model_type": "qwen3", "hidden_size": tE, "num_hidden_layers": tL,
		"num_attention_heads": tH, "num_key_value_heads": tHkv, "head_dim": 32, "intermediate_size": tF,
		"max_position_embeddings": 128, "rms_norm_eps": 1e-6, "rope_theta": 1e6, "vocab_size": len(v.Tokens) + 5,
		"tie_word_embeddings": true, "bos_token_id": len(v.Tokens) - 3, "eos_token_id": len(v.Tokens) - 3,
	})
	sentenceTransformers(t, dir, "lasttoken", tE)
	c := newCheckpoint(9)
	// The embedding table is wider than the tokenizer, as Qwen's is.
	decoderWeights(c, len(v.Tokens)+5, tinyQwen3)
	c.write(t, dir, safetensors.BF16, 1)
	return c, v
}

// nomicFolder writes a tiny NomicBertModel (nomic-embed-text's modelling
// code: fused Wqkv, rotary positions, SwiGLU, post-norm, no biases) with a
// WordPiece vocab.txt and mean pooling.
func nomicFolder(t testing.TB, dir string) *checkpoint {
	t.Helper()
	v, err := modelinit.BuildWordPiece(corpus, 300)
	must(t, err)
	must(t, os.MkdirAll(dir, 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "vocab.txt"), []byte(strings.Join(hfWordPiece(v), "\n")+"\n"), 0o644))
	writeTestJSON(t, filepath.Join(dir, "config.json"), map[string]any{
		"architectures": []string{"NomicBertModel"}, "model_type": "nomic_bert", "n_embd": tE, "n_layer": tL, "n_head": tH,
		"n_inner": tF, "n_positions": 128, "max_trained_positions": 128, "layer_norm_epsilon": 1e-12, "rotary_emb_base": 1000,
		"rotary_emb_fraction": 1.0, "rotary_emb_interleaved": false, "activation_function": "swiglu", "type_vocab_size": 2,
		"vocab_size": len(v.Tokens), "qkv_proj_bias": false, "mlp_fc1_bias": false, "mlp_fc2_bias": false, "prenorm": false,
	})
	sentenceTransformers(t, dir, "mean_tokens", tE)
	c := newCheckpoint(13)
	c.add("embeddings.word_embeddings.weight", c.normal(len(v.Tokens)*tE, 0, 0.5), int64(len(v.Tokens)), tE)
	c.add("embeddings.token_type_embeddings.weight", c.normal(2*tE, 0, 0.2), 2, tE)
	c.vec("emb_ln.weight", tE, 1)
	c.vec("emb_ln.bias", tE, 0)
	for l := 0; l < tL; l++ {
		p := fmt.Sprintf("encoder.layers.%d.", l)
		c.mat(p+"attn.Wqkv.weight", 3*tE, tE)
		c.mat(p+"attn.out_proj.weight", tE, tE)
		c.vec(p+"norm1.weight", tE, 1)
		c.vec(p+"norm1.bias", tE, 0)
		c.mat(p+"mlp.fc11.weight", tF, tE)
		c.mat(p+"mlp.fc12.weight", tF, tE)
		c.mat(p+"mlp.fc2.weight", tE, tF)
		c.vec(p+"norm2.weight", tE, 1)
		c.vec(p+"norm2.bias", tE, 0)
	}
	c.write(t, dir, safetensors.F32, 1)
	return c
}

// nomicReference is NomicBertModel's forward pass with mean pooling.
func nomicReference(c *checkpoint, ids []int32) []float32 {
	const eps = 1e-12
	T, d := len(ids), tE/tH
	x := make([][]float64, T)
	for i, id := range ids {
		x[i] = make([]float64, tE)
		for j := range x[i] {
			x[i][j] = float64(c.w("embeddings.word_embeddings.weight")[int(id)*tE+j]) + float64(c.w("embeddings.token_type_embeddings.weight")[j])
		}
		x[i] = layerNorm(x[i], c.w("emb_ln.weight"), c.w("emb_ln.bias"), eps)
	}
	for l := 0; l < tL; l++ {
		p := fmt.Sprintf("encoder.layers.%d.", l)
		lin := func(m string, v []float64) []float64 { return linear(c.w(p+m+".weight"), nil, v) }
		q, k, v := make([][]float64, T), make([][]float64, T), make([][]float64, T)
		for i := range x {
			qkv := lin("attn.Wqkv", x[i])
			q[i], k[i], v[i] = qkv[:tE], qkv[tE:2*tE], qkv[2*tE:]
			ropeHalf(q[i], tH, d, i, 1000)
			ropeHalf(k[i], tH, d, i, 1000)
		}
		a := attention(q, k, v, tH, tH, d, false)
		for i := range x {
			h := layerNorm(add(lin("attn.out_proj", a[i]), x[i]), c.w(p+"norm1.weight"), c.w(p+"norm1.bias"), eps)
			up, gate := lin("mlp.fc11", h), lin("mlp.fc12", h)
			for j := range up {
				up[j] *= gate[j] / (1 + math.Exp(-gate[j]))
			}
			x[i] = layerNorm(add(lin("mlp.fc2", up), h), c.w(p+"norm2.weight"), c.w(p+"norm2.bias"), eps)
		}
	}
	return meanPool(x)
}

// Tiny EmbeddingGemma shapes: heads of 16, two kv heads, and six layers
// so that the pattern has its global layer (five sliding-window layers, then
// one global, as Gemma 3 alternates; llama.cpp's graph needs both kinds).
const gHd, gH, gHkv, gL = 16, 4, 2, 6

// gemmaFolder writes a tiny Gemma3TextModel as EmbeddingGemma ships it:
// SentencePiece tokenizer.model, mean pooling, two Dense projections
// (E -> 2E -> E) and Normalize.
func gemmaFolder(t testing.TB, dir string) *checkpoint {
	t.Helper()
	v, err := modelinit.BuildSentencePiece(corpus, 400)
	must(t, err)
	must(t, os.MkdirAll(dir, 0o755))
	m := &spmModel{ModelType: spmBPE, AddDummy: false, RemoveSpaces: false}
	for i, tok := range v.Tokens {
		m.Pieces = append(m.Pieces, spmPiece{Text: tok, Score: v.Scores[i], Type: v.Types[i]})
	}
	must(t, os.WriteFile(filepath.Join(dir, "tokenizer.model"), encodeSPM(m), 0o644))
	writeTestJSON(t, filepath.Join(dir, "tokenizer_config.json"), map[string]any{
		"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "add_bos_token": true, "add_eos_token": true,
	})
	writeTestJSON(t, filepath.Join(dir, "config.json"), map[string]any{
		"architectures": []string{"Gemma3TextModel"}, "model_type": "gemma3_text", "hidden_size": tE, "num_hidden_layers": gL,
		"num_attention_heads": gH, "num_key_value_heads": gHkv, "head_dim": gHd, "query_pre_attn_scalar": gHd,
		"intermediate_size": tF, "max_position_embeddings": 128, "rms_norm_eps": 1e-6, "rope_theta": 1e6,
		"rope_local_base_freq": 10000.0, "sliding_window": 512, "vocab_size": len(v.Tokens), "use_bidirectional_attention": true,
	})
	writeTestJSON(t, filepath.Join(dir, "modules.json"), []map[string]any{
		{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
		{"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
		{"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"},
		{"idx": 3, "name": "3", "path": "3_Dense", "type": "sentence_transformers.models.Dense"},
		{"idx": 4, "name": "4", "path": "4_Normalize", "type": "sentence_transformers.models.Normalize"},
	})
	writeTestJSON(t, filepath.Join(dir, "1_Pooling", "config.json"), map[string]any{"pooling_mode_mean_tokens": true})
	c := newCheckpoint(17)
	c.add("embed_tokens.weight", c.normal(len(v.Tokens)*tE, 0, 0.1), int64(len(v.Tokens)), tE)
	for l := 0; l < gL; l++ {
		p := fmt.Sprintf("layers.%d.", l)
		// Gemma's norms scale by 1 + w: gains around 0.
		for _, n := range []string{"input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm"} {
			c.vec(p+n+".weight", tE, 0)
		}
		c.mat(p+"self_attn.q_proj.weight", gH*gHd, tE)
		c.mat(p+"self_attn.k_proj.weight", gHkv*gHd, tE)
		c.mat(p+"self_attn.v_proj.weight", gHkv*gHd, tE)
		c.vec(p+"self_attn.q_norm.weight", gHd, 0)
		c.vec(p+"self_attn.k_norm.weight", gHd, 0)
		c.mat(p+"self_attn.o_proj.weight", tE, gH*gHd)
		c.mat(p+"mlp.gate_proj.weight", tF, tE)
		c.mat(p+"mlp.up_proj.weight", tF, tE)
		c.mat(p+"mlp.down_proj.weight", tE, tF)
	}
	c.vec("norm.weight", tE, 0)
	c.write(t, dir, safetensors.F32, 1)
	for i, shape := range [][2]int{{2 * tE, tE}, {tE, 2 * tE}} {
		folder := fmt.Sprintf("%d_Dense", i+2)
		writeTestJSON(t, filepath.Join(dir, folder, "config.json"), map[string]any{
			"in_features": shape[1], "out_features": shape[0], "bias": false, "activation_function": "torch.nn.modules.linear.Identity",
		})
		name := folder + "/linear.weight"
		c.mat(name, shape[0], shape[1])
		b := safetensors.NewBuilder()
		must(t, b.AddFloat32s("linear.weight", safetensors.F32, c.shapes[name], c.vals[name]))
		must(t, b.WriteFile(filepath.Join(dir, folder, safetensors.SingleFile)))
	}
	return c
}

// gemmaNorm is Gemma's RMSNorm: x / rms(x) · (1 + w).
func gemmaNorm(x []float64, w []float32) []float64 {
	one := make([]float32, len(w))
	for i := range w {
		one[i] = 1 + w[i]
	}
	return rmsNorm(x, one, 1e-6)
}

// gemmaReference is EmbeddingGemma: Gemma3TextModel with bidirectional
// attention (sliding-window layers use the local RoPE base 10000, the
// global sixth layer rope_theta; the window is wider than any text), mean
// pooling, then the Dense projections.
func gemmaReference(c *checkpoint, ids []int32) []float32 {
	T := len(ids)
	x := make([][]float64, T)
	for i, id := range ids {
		x[i] = make([]float64, tE)
		for j := range x[i] {
			x[i][j] = float64(c.w("embed_tokens.weight")[int(id)*tE+j]) * math.Sqrt(tE)
		}
	}
	for l := 0; l < gL; l++ {
		p := fmt.Sprintf("layers.%d.", l)
		lin := func(m string, v []float64) []float64 { return linear(c.w(p+m+".weight"), nil, v) }
		q, k, v := make([][]float64, T), make([][]float64, T), make([][]float64, T)
		for i := range x {
			n := gemmaNorm(x[i], c.w(p+"input_layernorm.weight"))
			q[i], k[i], v[i] = lin("self_attn.q_proj", n), lin("self_attn.k_proj", n), lin("self_attn.v_proj", n)
			for h := 0; h < gH; h++ {
				copy(q[i][h*gHd:(h+1)*gHd], gemmaNorm(q[i][h*gHd:(h+1)*gHd], c.w(p+"self_attn.q_norm.weight")))
			}
			for h := 0; h < gHkv; h++ {
				copy(k[i][h*gHd:(h+1)*gHd], gemmaNorm(k[i][h*gHd:(h+1)*gHd], c.w(p+"self_attn.k_norm.weight")))
			}
			base := 10000.0
			if (l+1)%6 == 0 {
				base = 1e6
			}
			ropeHalf(q[i], gH, gHd, i, base)
			ropeHalf(k[i], gHkv, gHd, i, base)
		}
		a := attention(q, k, v, gH, gHkv, gHd, false)
		for i := range x {
			h := add(x[i], gemmaNorm(lin("self_attn.o_proj", a[i]), c.w(p+"post_attention_layernorm.weight")))
			m := gemmaNorm(h, c.w(p+"pre_feedforward_layernorm.weight"))
			g, u := lin("mlp.gate_proj", m), lin("mlp.up_proj", m)
			for j, z := range g {
				g[j] = 0.5 * z * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(z+0.044715*z*z*z))) * u[j]
			}
			x[i] = add(h, gemmaNorm(lin("mlp.down_proj", g), c.w(p+"post_feedforward_layernorm.weight")))
		}
	}
	for i := range x {
		x[i] = gemmaNorm(x[i], c.w("norm.weight"))
	}
	pooled := meanPool(x)
	y := make([]float64, tE)
	for j := range y {
		y[j] = float64(pooled[j])
	}
	y = linear(c.w("2_Dense/linear.weight"), nil, y)
	y = linear(c.w("3_Dense/linear.weight"), nil, y)
	out := make([]float32, tE)
	for j := range out {
		out[j] = float32(y[j])
	}
	return out
}
