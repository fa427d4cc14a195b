// Package modelinit makes, describes and re-encodes model files in
// llama.cpp's exact GGUF format: tiny random bert, llama, qwen3, nomic-bert and gemma-embedding models with a
// vocabulary learnt from a corpus (ragtune model init), a summary of any
// model or adapter file (model info), and quantization of a model's weight
// matrices with ggml's own quantizers (model quantize).
//
// The tensor sets, shapes and key types follow
// ../shared/reference/gguf-embeddings-and-lora.md sections 2 and 3; every
// file written here passes gguf.ValidateModel and loads in llama.cpp.
package modelinit

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/ragtune/ragtune/bindings"
	"github.com/ragtune/ragtune/bindings/gguf"
)

// Options describe a model to create. Zero sizes take the architecture's
// defaults (see Defaults).
type Options struct {
	Arch       string   // "bert", "llama", "qwen3", "nomic-bert" or "gemma-embedding"
	Texts      []string // corpus the vocabulary is learnt from
	Vocabulary *Vocab   // a vocabulary built before (BuildWordPiece for bert, BuildSentencePiece for llama, BuildByteBPE for qwen3); Texts and Vocab are then unused
	Layers     int
	Dim        int // hidden size (embedding_length)
	Heads      int
	KVHeads    int  // llama, qwen3 (GQA); bert requires Heads
	HeadDim    int  // qwen3, gemma-embedding: head size when it is not Dim/Heads (written as attention.key_length)
	Window     int  // gemma-embedding: attention.sliding_window (default 8, so short texts already meet it)
	Dense      int  // gemma-embedding: width of the Dense projections after pooling (dense_2 E→n, dense_3 n→E); 0 writes none
	FusedQKV   bool // bert: one attn_qkv matrix (and bias) per layer instead of attn_q/k/v
	FF         int  // feed-forward width
	Ctx        int  // context length (bert: rows of position_embd)
	Vocab      int  // vocabulary size (upper bound; a small corpus may give fewer)
	Seed       uint64
	Pooling    string          // bert: mean, cls or last (qwen3 too, default last); llama pools the last token
	Type       gguf.TensorType // type of 2-D weight matrices: F32, F16, BF16, Q8_0, Q4_0, Q4_K
	OutputHead bool            // llama: write a separate output.weight instead of tying it to token_embd
	// ChatTemplate (llama only) is written as tokenizer.chat_template, so
	// llama.cpp can format chats for the model as a generator (llama.cpp
	// recognises a template by its markers: ChatML's contain <|im_start|>).
	ChatTemplate string
	Name         string // general.name
}

// Defaults fills zero fields with a tiny model of the architecture: 2
// layers, width 64, 4 heads (llama: 2 KV heads), FF 128, context 64
// (llama 128), vocabulary 1000, mean pooling (bert), F32.
func (o *Options) Defaults() {
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	if o.Arch == "gemma-embedding" {
		def(&o.Layers, 6) // five sliding-window layers and a global one
	}
	def(&o.Layers, 2)
	def(&o.Dim, 64)
	def(&o.Heads, 4)
	def(&o.FF, 128)
	def(&o.Vocab, 1000)
	if o.Arch == "llama" || o.Arch == "qwen3" || o.Arch == "gemma-embedding" {
		def(&o.KVHeads, max(o.Heads/2, 1))
		def(&o.Ctx, 128)
		if o.Arch == "qwen3" && o.Pooling == "" {
			o.Pooling = "last"
		}
		if o.Arch == "gemma-embedding" {
			def(&o.Window, 8)
			if o.Pooling == "" {
				o.Pooling = "mean"
			}
		}
	} else {
		def(&o.KVHeads, o.Heads)
		def(&o.Ctx, 64)
		if o.Pooling == "" {
			o.Pooling = "mean"
		}
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.Name == "" {
		o.Name = "ragtune-tiny-" + o.Arch
	}
}

var poolingTypes = map[string]uint32{"none": gguf.PoolingNone, "mean": gguf.PoolingMean, "cls": gguf.PoolingCLS, "last": gguf.PoolingLast}

// check refuses options llama.cpp could not load or that make no model.
func (o *Options) check() error {
	switch o.Arch {
	case "bert", "llama", "qwen3", "nomic-bert", "gemma-embedding":
	default:
		return fmt.Errorf("--arch %q: expected bert, llama, qwen3, nomic-bert or gemma-embedding", o.Arch)
	}
	if o.Arch == "gemma-embedding" && o.Layers < 6 {
		// Layer 5 is the first global one; without it llama.cpp builds a
		// graph whose unused global mask has no buffer and aborts.
		return fmt.Errorf("--layers %d: gemma-embedding needs at least 6 (every sixth layer attends globally, and llama.cpp aborts on a model without one)", o.Layers)
	}
	if (o.Window != 0 || o.Dense != 0) && o.Arch != "gemma-embedding" {
		return fmt.Errorf("--window and --dense are for gemma-embedding")
	}
	if o.Window < 0 || o.Dense < 0 {
		return fmt.Errorf("--window %d and --dense %d must not be negative", o.Window, o.Dense)
	}
	if o.FusedQKV && o.Arch != "bert" {
		return fmt.Errorf("--fused-qkv is for bert (nomic-bert is always fused, the decoders never)")
	}
	if o.HeadDim < 0 || (o.HeadDim > 0 && o.Arch != "qwen3" && o.Arch != "gemma-embedding") {
		return fmt.Errorf("--head-dim %d: only qwen3 and gemma-embedding set a head size other than --dim/--heads", o.HeadDim)
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"--layers", o.Layers}, {"--dim", o.Dim}, {"--heads", o.Heads}, {"--kv-heads", o.KVHeads}, {"--ff", o.FF}, {"--ctx", o.Ctx}, {"--vocab", o.Vocab}} {
		if f.v <= 0 || f.v > math.MaxInt32 {
			return fmt.Errorf("%s must be positive, got %d", f.name, f.v)
		}
	}
	if o.Layers > gguf.MaxLayers {
		return fmt.Errorf("--layers %d: llama.cpp allows at most %d", o.Layers, gguf.MaxLayers)
	}
	if o.Dim%o.Heads != 0 && o.HeadDim == 0 {
		return fmt.Errorf("--dim %d is not divisible by --heads %d", o.Dim, o.Heads)
	}
	if o.Arch == "bert" || o.Arch == "nomic-bert" {
		if o.KVHeads != o.Heads {
			return fmt.Errorf("--kv-heads %d: %s has no grouped-query attention (must equal --heads %d)", o.KVHeads, o.Arch, o.Heads)
		}
		if hd := o.Dim / o.Heads; o.Arch == "nomic-bert" && hd%2 != 0 {
			return fmt.Errorf("head size %d (--dim/--heads) must be even for rotary embeddings", hd)
		}
		if _, ok := poolingTypes[o.Pooling]; !ok {
			return fmt.Errorf("--pooling %q: expected mean, cls, last or none", o.Pooling)
		}
		if o.OutputHead {
			return fmt.Errorf("bert has no output head")
		}
		if o.ChatTemplate != "" {
			return fmt.Errorf("bert cannot generate text: a chat template needs --arch llama")
		}
	} else {
		if o.Heads%o.KVHeads != 0 {
			return fmt.Errorf("--heads %d is not a multiple of --kv-heads %d", o.Heads, o.KVHeads)
		}
		if hd := o.headDim(); hd%2 != 0 {
			return fmt.Errorf("head size %d (--dim/--heads or --head-dim) must be even for rotary embeddings", hd)
		}
		if o.Arch != "llama" {
			if p, ok := poolingTypes[o.Pooling]; !ok || p == gguf.PoolingNone {
				return fmt.Errorf("--pooling %q: expected last, mean or cls", o.Pooling)
			}
		} else if o.Pooling != "" && o.Pooling != "last" {
			return fmt.Errorf("--pooling %q: llama models pool the last token (llama.cpp reads no pooling key for llama)", o.Pooling)
		}
	}
	switch o.Type {
	case gguf.F32, gguf.F16, gguf.BF16, gguf.Q8_0, gguf.Q4_0, gguf.Q4_K:
	default:
		return fmt.Errorf("--type %s: expected f32, f16, bf16, q8_0, q4_0 or q4_k", o.Type)
	}
	if bs := o.Type.BlockSize(); o.Dim%bs != 0 || o.FF%bs != 0 || (o.headDim()*o.Heads)%bs != 0 || o.Dense%bs != 0 {
		return fmt.Errorf("--type %s stores rows in blocks of %d: --dim %d, --ff %d and the attention width %d must be multiples of %d", o.Type, bs, o.Dim, o.FF, o.headDim()*o.Heads, bs)
	}
	if len(o.Texts) == 0 && o.Vocabulary == nil {
		return fmt.Errorf("the corpus is empty: the vocabulary is learnt from it")
	}
	return nil
}

// headDim is the size of one attention head.
func (o *Options) headDim() int {
	if o.HeadDim > 0 {
		return o.HeadDim
	}
	return o.Dim / o.Heads
}

// Result says what Build made.
type Result struct {
	Builder *gguf.Builder
	Vocab   *Vocab
	Params  int64 // number of weights
}

// Build makes the model in memory.
func Build(o Options) (*Result, error) {
	o.Defaults()
	if err := o.check(); err != nil {
		return nil, err
	}
	v, err := o.Vocabulary, error(nil)
	switch {
	case v != nil:
	case o.Arch == "bert" || o.Arch == "nomic-bert":
		v, err = BuildWordPiece(o.Texts, o.Vocab)
	case o.Arch == "qwen3":
		v, err = BuildByteBPE(o.Texts, o.Vocab)
	default:
		v, err = BuildSentencePiece(o.Texts, o.Vocab)
	}
	if err != nil {
		return nil, err
	}
	m := &maker{o: o, b: gguf.NewBuilder(), rng: rand.New(rand.NewPCG(o.Seed, 0x9e3779b97f4a7c15))}
	switch o.Arch {
	case "bert":
		m.bertKVs(v)
		m.bertTensors(len(v.Tokens))
	case "nomic-bert":
		m.bertKVs(v)
		m.nomicTensors(len(v.Tokens))
	case "gemma-embedding":
		m.gemmaKVs(v)
		m.gemmaTensors(len(v.Tokens))
	case "qwen3":
		m.qwen3KVs(v)
		m.qwen3Tensors(len(v.Tokens))
	default:
		m.llamaKVs(v)
		m.llamaTensors(len(v.Tokens))
	}
	if m.err != nil {
		return nil, m.err
	}
	return &Result{Builder: m.b, Vocab: v, Params: m.params}, nil
}

// Write builds the model and writes it atomically to path.
func Write(path string, o Options) (*Result, error) {
	r, err := Build(o)
	if err != nil {
		return nil, err
	}
	if err := r.Builder.WriteFile(path); err != nil {
		return nil, err
	}
	return r, nil
}

// FileTypeOf is the general.file_type value for weights of type t.
func FileTypeOf(t gguf.TensorType) gguf.FileType {
	switch t {
	case gguf.F16:
		return gguf.FileTypeF16
	case gguf.Q8_0:
		return gguf.FileTypeQ8_0
	case gguf.Q4_0:
		return gguf.FileTypeQ4_0
	case gguf.Q4_K:
		return gguf.FileTypeQ4_K_S
	case gguf.BF16:
		return gguf.FileTypeBF16
	}
	return gguf.FileTypeAllF32
}

// quantizationVersion is general.quantization_version (GGML_QNT_VERSION).
const quantizationVersion = 2

type maker struct {
	o      Options
	b      *gguf.Builder
	rng    *rand.Rand
	params int64
	err    error
}

func (m *maker) set(key string, v gguf.Value) { m.b.MustSet(key, v) }

func u32(v int) gguf.Value { return gguf.Of(uint32(v)) }

func (m *maker) general(arch string) {
	m.set("general.architecture", gguf.Of(arch))
	m.set("general.type", gguf.Of("model"))
	m.set("general.name", gguf.Of(m.o.Name))
}

func (m *maker) fileType() {
	m.set("general.file_type", gguf.Of(uint32(FileTypeOf(m.o.Type))))
	if m.o.Type.Quantized() {
		m.set("general.quantization_version", gguf.Of(uint32(quantizationVersion)))
	}
}

// bertKVs writes the keys of bert and nomic-bert (which adds its rotary
// base: nomic-embed-text's 1000).
func (m *maker) bertKVs(v *Vocab) {
	o := m.o
	a := o.Arch
	m.general(a)
	m.set(a+".block_count", u32(o.Layers))
	m.set(a+".context_length", u32(o.Ctx))
	m.set(a+".embedding_length", u32(o.Dim))
	m.set(a+".feed_forward_length", u32(o.FF))
	m.set(a+".attention.head_count", u32(o.Heads))
	m.set(a+".attention.layer_norm_epsilon", gguf.Of(float32(1e-12)))
	if a == "nomic-bert" {
		m.set(a+".rope.freq_base", gguf.Of(float32(1000)))
	}
	m.fileType()
	m.set(a+".attention.causal", gguf.Of(false))
	m.set(a+".pooling_type", gguf.Of(poolingTypes[o.Pooling]))
	m.set("tokenizer.ggml.token_type_count", u32(2))
	m.set("tokenizer.ggml.model", gguf.Of("bert"))
	m.set("tokenizer.ggml.tokens", gguf.ArrayOf(v.Tokens))
	m.set("tokenizer.ggml.token_type", gguf.ArrayOf(v.Types))
	// A small vocabulary must set every id: llama.cpp's defaults (101, 100,
	// 102, 0, 103) are not range-checked.
	m.set("tokenizer.ggml.bos_token_id", u32(bertCLS))
	m.set("tokenizer.ggml.eos_token_id", u32(bertSEP))
	m.set("tokenizer.ggml.unknown_token_id", u32(bertUnk))
	m.set("tokenizer.ggml.seperator_token_id", u32(bertSEP))
	m.set("tokenizer.ggml.padding_token_id", u32(bertPad))
	m.set("tokenizer.ggml.cls_token_id", u32(bertCLS))
	m.set("tokenizer.ggml.mask_token_id", u32(bertMask))
}

// spmTokenizer writes a SentencePiece vocabulary the way llama.cpp's
// converter does for llama and gemma: texts start with <s> and end with </s>.
func (m *maker) spmTokenizer(v *Vocab) {
	m.set("tokenizer.ggml.model", gguf.Of("llama"))
	m.set("tokenizer.ggml.pre", gguf.Of("default"))
	m.set("tokenizer.ggml.tokens", gguf.ArrayOf(v.Tokens))
	m.set("tokenizer.ggml.scores", gguf.ArrayOf(v.Scores))
	m.set("tokenizer.ggml.token_type", gguf.ArrayOf(v.Types))
	m.set("tokenizer.ggml.bos_token_id", u32(spmBOS))
	m.set("tokenizer.ggml.eos_token_id", u32(spmEOS))
	m.set("tokenizer.ggml.unknown_token_id", u32(spmUnk))
	m.set("tokenizer.ggml.add_bos_token", gguf.Of(true))
	m.set("tokenizer.ggml.add_eos_token", gguf.Of(true))
}

func (m *maker) llamaKVs(v *Vocab) {
	o := m.o
	m.general("llama")
	m.set("llama.block_count", u32(o.Layers))
	m.set("llama.context_length", u32(o.Ctx))
	m.set("llama.embedding_length", u32(o.Dim))
	m.set("llama.feed_forward_length", u32(o.FF))
	m.set("llama.attention.head_count", u32(o.Heads))
	m.set("llama.attention.head_count_kv", u32(o.KVHeads))
	m.set("llama.rope.freq_base", gguf.Of(float32(10000)))
	m.set("llama.attention.layer_norm_rms_epsilon", gguf.Of(float32(1e-5)))
	m.set("llama.rope.dimension_count", u32(o.Dim/o.Heads))
	m.set("llama.vocab_size", u32(len(v.Tokens)))
	m.fileType()
	// e5-mistral and Linq-Embed-Mistral pool the final </s>.
	m.spmTokenizer(v)
	if o.ChatTemplate != "" {
		m.set("tokenizer.chat_template", gguf.Of(o.ChatTemplate))
	}
}

const weightStd = 0.02

// matrix adds a 2-D weight of ne = [in, out] in the model's type, drawn
// from N(0, weightStd²).
func (m *maker) matrix(name string, in, out int) { m.matrixAs(name, in, out, m.o.Type) }

func (m *maker) matrixAs(name string, in, out int, typ gguf.TensorType) {
	v := m.normal(in*out, 0, weightStd)
	m.tensor(name, typ, []int64{int64(in), int64(out)}, v, out, in)
}

// vector adds a 1-D F32 tensor around mean (1 for norm gains, 0 for
// biases) with a little noise, so tests notice a gain or bias applied wrongly.
func (m *maker) vector(name string, n int, mean float64) {
	m.tensor(name, gguf.F32, []int64{int64(n)}, m.normal(n, mean, weightStd), 1, n)
}

func (m *maker) normal(n int, mean, std float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(mean + std*m.rng.NormFloat64())
	}
	return v
}

func (m *maker) tensor(name string, typ gguf.TensorType, dims []int64, v []float32, rows, cols int) {
	if m.err != nil {
		return
	}
	data, err := Encode(typ, v, rows, cols)
	if err == nil {
		err = m.b.AddTensor(name, typ, dims, data)
	}
	if err != nil {
		m.err = fmt.Errorf("tensor %s: %w", name, err)
	}
	m.params += int64(len(v))
}

// Encode stores rows×cols floats as typ: F32 and F16 in Go, quantized
// types with ggml's own quantizers, so the bytes equal llama.cpp's.
func Encode(typ gguf.TensorType, v []float32, rows, cols int) ([]byte, error) {
	switch typ {
	case gguf.F32:
		return gguf.EncodeF32(v), nil
	case gguf.F16:
		return gguf.EncodeF16(v), nil
	}
	if bs := typ.BlockSize(); bs == 0 || cols%bs != 0 {
		return nil, fmt.Errorf("row length %d is not a multiple of the %s block size %d", cols, typ, bs)
	}
	return bindings.Quantize(bindings.Type(typ), v, rows, cols)
}

func (m *maker) bertTensors(vocab int) {
	o := m.o
	E, F := o.Dim, o.FF
	m.matrix("token_embd.weight", E, vocab)
	// Position and token-type tables stay F32, as llama-quantize keeps them:
	// bert adds a view of token_types row 0, which ggml cannot do quantized.
	m.matrixAs("token_types.weight", E, 2, gguf.F32)
	m.matrixAs("position_embd.weight", E, o.Ctx, gguf.F32)
	m.vector("token_embd_norm.weight", E, 1)
	m.vector("token_embd_norm.bias", E, 0)
	for l := range o.Layers {
		b := fmt.Sprintf("blk.%d.", l)
		if o.FusedQKV {
			m.matrix(b+"attn_qkv.weight", E, 3*E)
			m.vector(b+"attn_qkv.bias", 3*E, 0)
		} else {
			for _, p := range []string{"attn_q", "attn_k", "attn_v"} {
				m.matrix(b+p+".weight", E, E)
				m.vector(b+p+".bias", E, 0)
			}
		}
		m.matrix(b+"attn_output.weight", E, E)
		m.vector(b+"attn_output.bias", E, 0)
		m.vector(b+"attn_output_norm.weight", E, 1)
		m.vector(b+"attn_output_norm.bias", E, 0)
		m.matrix(b+"ffn_up.weight", E, F)
		m.vector(b+"ffn_up.bias", F, 0)
		m.matrix(b+"ffn_down.weight", F, E)
		m.vector(b+"ffn_down.bias", E, 0)
		m.vector(b+"layer_output_norm.weight", E, 1)
		m.vector(b+"layer_output_norm.bias", E, 0)
	}
}

func (m *maker) llamaTensors(vocab int) {
	o := m.o
	E, F := o.Dim, o.FF
	kv := o.Dim / o.Heads * o.KVHeads
	m.matrix("token_embd.weight", E, vocab)
	for l := range o.Layers {
		b := fmt.Sprintf("blk.%d.", l)
		m.vector(b+"attn_norm.weight", E, 1)
		// Q/K rows are random, so the rotary row permutation of converted
		// checkpoints is moot here.
		m.matrix(b+"attn_q.weight", E, E)
		m.matrix(b+"attn_k.weight", E, kv)
		m.matrix(b+"attn_v.weight", E, kv)
		m.matrix(b+"attn_output.weight", E, E)
		m.vector(b+"ffn_norm.weight", E, 1)
		m.matrix(b+"ffn_gate.weight", E, F)
		m.matrix(b+"ffn_up.weight", E, F)
		m.matrix(b+"ffn_down.weight", F, E)
	}
	m.vector("output_norm.weight", E, 1)
	if o.OutputHead {
		m.matrix("output.weight", E, vocab)
	}
}
