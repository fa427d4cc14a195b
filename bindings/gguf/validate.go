package gguf

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// This file checks a parsed file the way llama.cpp's model loader
// (src/llama-model-loader.cpp, llama-model.cpp, llama-vocab.cpp) would, for
// the architectures ragtune runs, so that a bad model gets a Go error naming
// the problem instead of an abort or a log line inside llama.cpp.

// MaxLayers is LLAMA_MAX_LAYERS: the loader refuses more blocks than this.
const MaxLayers = 512

// Hparams are the hyper-parameters of a bert or llama model as llama.cpp
// reads them. Per-layer values may vary by layer (keys stored as arrays).
type Hparams struct {
	Arch       string
	Context    uint32   // <arch>.context_length: rows of position_embd (bert)
	Embd       uint32   // <arch>.embedding_length
	Layers     uint32   // <arch>.block_count
	FF         []uint32 // <arch>.feed_forward_length, per layer
	Heads      []uint32 // <arch>.attention.head_count, per layer
	HeadsKV    []uint32 // <arch>.attention.head_count_kv, per layer (default: Heads)
	HeadDimK   uint32   // <arch>.attention.key_length (default Embd/Heads[0])
	HeadDimV   uint32   // <arch>.attention.value_length (default Embd/Heads[0])
	NormEps    float32  // layer_norm_epsilon (bert) or layer_norm_rms_epsilon (llama)
	Causal     bool     // bert: attention.causal; llama: always true
	Pooling    int      // bert.pooling_type, -1 when absent (llama: always -1)
	RopeBase   float32  // llama: rope.freq_base (default 10000)
	Vocab      int      // number of tokens in tokenizer.ggml.tokens
	TokenTypes uint32   // tokenizer.ggml.token_type_count (0 when absent)
	Tokenizer  string   // tokenizer.ggml.model
}

// Pooling types (enum llama_pooling_type).
const (
	PoolingNone = 0
	PoolingMean = 1
	PoolingCLS  = 2
	PoolingLast = 3
	PoolingRank = 4
)

// PoolingName names a pooling type ("none" for -1 too).
func PoolingName(p int) string {
	switch p {
	case PoolingMean:
		return "mean"
	case PoolingCLS:
		return "cls"
	case PoolingLast:
		return "last"
	case PoolingRank:
		return "rank"
	}
	return "none"
}

// KVGQA is the width of the K (or V) projection of layer l.
func (h Hparams) KVGQA(l int) uint32 { return h.HeadDimK * h.HeadsKV[l] }

// ModelError is a model that llama.cpp would refuse.
type ModelError struct {
	Path string
	Msg  string
}

func (e *ModelError) Error() string { return e.Path + ": " + e.Msg }

// ErrUnsupportedArch is wrapped when the architecture is not one ragtune runs.
var ErrUnsupportedArch = errors.New("unsupported architecture")

// SupportedArchs are the architectures ValidateModel knows.
var SupportedArchs = []string{"bert", "llama", "qwen3", "nomic-bert", "gemma-embedding"}

// ValidateModel checks f as llama.cpp's loader would for arch ("" means
// whatever general.architecture says): the architecture, every key it reads
// with its exact type, the tokenizer arrays, and that the tensor set is
// exactly what the architecture expects with exact shapes. It returns the
// hyper-parameters it read.
func ValidateModel(f *File, arch string) (Hparams, error) {
	fail := func(format string, args ...any) (Hparams, error) {
		return Hparams{}, &ModelError{Path: f.name(), Msg: fmt.Sprintf(format, args...)}
	}
	got, ok, err := f.String("general.architecture")
	if err != nil {
		return Hparams{}, err
	}
	if !ok {
		return fail("missing key %q: not a model file (general.type is %s)", "general.architecture", describeKey(f, "general.type"))
	}
	if arch != "" && got != arch {
		return fail("architecture is %q, expected %q", got, arch)
	}
	if t, _, _ := f.String("general.type"); t == "adapter" {
		return fail("this is an adapter (general.type = \"adapter\"), not a model")
	}
	spec, ok := archSpecs[got]
	if !ok {
		return Hparams{}, &ModelError{Path: f.name(), Msg: fmt.Sprintf("architecture %q: %v (ragtune runs %s)", got, ErrUnsupportedArch, strings.Join(SupportedArchs, ", "))}
	}
	hp, err := readHparams(f, got, spec)
	if err != nil {
		return Hparams{}, err
	}
	if err := validateVocab(f, &hp); err != nil {
		return Hparams{}, err
	}
	if _, ok := f.Tensor("token_types.weight"); ok && hp.TokenTypes == 0 {
		return fail("tensor %q needs key %q (u32, its row count)", "token_types.weight", "tokenizer.ggml.token_type_count")
	}
	if err := checkTensors(f, spec.tensors(hp, f)); err != nil {
		return Hparams{}, err
	}
	return hp, nil
}

func describeKey(f *File, key string) string {
	if v, ok := f.Get(key); ok {
		return v.String()
	}
	return "absent"
}

// archSpec says what an architecture reads beyond the common keys and which
// tensors it expects.
type archSpec struct {
	epsKey  string // required FLOAT32 key, without the arch prefix
	read    func(f *File, h *Hparams) error
	tensors func(h Hparams, f *File) []tensorWant
}

var archSpecs = map[string]archSpec{
	"bert":            {epsKey: "attention.layer_norm_epsilon", read: readBert, tensors: bertTensors},
	"llama":           {epsKey: "attention.layer_norm_rms_epsilon", read: readLlama, tensors: llamaTensors},
	"qwen3":           {epsKey: "attention.layer_norm_rms_epsilon", read: readQwen3, tensors: qwen3Tensors},
	"nomic-bert":      {epsKey: "attention.layer_norm_epsilon", read: readBert, tensors: nomicTensors},
	"gemma-embedding": {epsKey: "attention.layer_norm_rms_epsilon", read: readGemma, tensors: gemmaTensors},
}

// optionalKeys are read by llama.cpp with get_key(..., required=false) for
// every architecture; when present they must have exactly this type.
var optionalKeys = map[string]ValueType{
	"general.name":                            TypeString,
	"%s.vocab_size":                           TypeUint32,
	"%s.expert_count":                         TypeUint32,
	"%s.expert_used_count":                    TypeUint32,
	"%s.attention.key_length":                 TypeUint32,
	"%s.attention.value_length":               TypeUint32,
	"%s.rope.dimension_count":                 TypeUint32,
	"%s.rope.freq_base":                       TypeFloat32,
	"%s.rope.scaling.type":                    TypeString,
	"%s.rope.scaling.factor":                  TypeFloat32,
	"%s.rope.scale_linear":                    TypeFloat32,
	"%s.rope.scaling.attn_factor":             TypeFloat32,
	"%s.rope.scaling.finetuned":               TypeBool,
	"%s.rope.scaling.original_context_length": TypeUint32,
	"tokenizer.ggml.pre":                      TypeString,
	"tokenizer.ggml.token_type_count":         TypeUint32,
	"tokenizer.ggml.add_bos_token":            TypeBool,
	"tokenizer.ggml.add_eos_token":            TypeBool,
	"tokenizer.ggml.add_sep_token":            TypeBool,
	"tokenizer.ggml.add_space_prefix":         TypeBool,
	"tokenizer.ggml.remove_extra_whitespaces": TypeBool,
}

// specialIDKeys are the token-id keys llama.cpp reads as u32.
var specialIDKeys = []string{"bos", "eos", "eot", "eom", "unknown", "seperator", "padding", "mask",
	"fim_pre", "fim_suf", "fim_mid", "fim_pad", "fim_rep", "fim_sep", "prefix", "suffix", "middle"}

func readHparams(f *File, arch string, spec archSpec) (Hparams, error) {
	fail := func(format string, args ...any) (Hparams, error) {
		return Hparams{}, &ModelError{Path: f.name(), Msg: fmt.Sprintf(format, args...)}
	}
	for pattern, t := range optionalKeys {
		key := pattern
		if strings.Contains(pattern, "%s") {
			key = fmt.Sprintf(pattern, arch)
		}
		if v, ok := f.Get(key); ok && (v.Type != t) {
			return fail("key %q has wrong type %s, llama.cpp requires %s", key, v.TypeName(), t)
		}
	}
	for _, name := range specialIDKeys {
		key := "tokenizer.ggml." + name + "_token_id"
		if v, ok := f.Get(key); ok && v.Type != TypeUint32 {
			return fail("key %q has wrong type %s, llama.cpp requires u32", key, v.TypeName())
		}
	}
	h := Hparams{Arch: arch, Pooling: -1, RopeBase: 10000}
	p := func(k string) string { return arch + "." + k }
	for _, r := range []struct {
		key string
		dst *uint32
	}{{p("context_length"), &h.Context}, {p("embedding_length"), &h.Embd}, {p("block_count"), &h.Layers}} {
		v, ok, err := f.Uint32(r.key)
		if err != nil {
			return Hparams{}, err
		}
		if !ok {
			return fail("missing required key %q (u32)", r.key)
		}
		*r.dst = v
	}
	if h.Embd == 0 || h.Layers == 0 || h.Context == 0 {
		return fail("%s, %s and %s must be positive (got %d, %d, %d)", p("embedding_length"), p("block_count"), p("context_length"), h.Embd, h.Layers, h.Context)
	}
	if h.Layers > MaxLayers {
		return fail("%s is %d, llama.cpp allows at most %d", p("block_count"), h.Layers, MaxLayers)
	}
	if n, _, _ := f.Uint32(p("expert_count")); n > 0 {
		return fail("%s is %d: mixture-of-experts models are not supported", p("expert_count"), n)
	}
	var err error
	if h.FF, err = perLayer(f, p("feed_forward_length"), h.Layers, nil); err != nil {
		return Hparams{}, err
	}
	if h.Heads, err = perLayer(f, p("attention.head_count"), h.Layers, nil); err != nil {
		return Hparams{}, err
	}
	if h.HeadsKV, err = perLayer(f, p("attention.head_count_kv"), h.Layers, h.Heads); err != nil {
		return Hparams{}, err
	}
	for l := range h.Heads {
		if h.Heads[l] == 0 || h.FF[l] == 0 || h.HeadsKV[l] == 0 {
			return fail("layer %d: head_count, head_count_kv and feed_forward_length must be positive (got %d, %d, %d)", l, h.Heads[l], h.HeadsKV[l], h.FF[l])
		}
		if h.Heads[l]%h.HeadsKV[l] != 0 {
			return fail("layer %d: head_count %d is not a multiple of head_count_kv %d", l, h.Heads[l], h.HeadsKV[l])
		}
	}
	if h.Embd%h.Heads[0] != 0 {
		if _, ok := f.Get(p("attention.key_length")); !ok {
			return fail("%s %d is not divisible by %s %d", p("embedding_length"), h.Embd, p("attention.head_count"), h.Heads[0])
		}
	}
	h.HeadDimK, h.HeadDimV = h.Embd/h.Heads[0], h.Embd/h.Heads[0]
	if v, ok, _ := f.Uint32(p("attention.key_length")); ok {
		h.HeadDimK = v
	}
	if v, ok, _ := f.Uint32(p("attention.value_length")); ok {
		h.HeadDimV = v
	}
	if h.HeadDimK == 0 || h.HeadDimK != h.HeadDimV {
		return fail("key_length %d and value_length %d must be equal and positive", h.HeadDimK, h.HeadDimV)
	}
	if s, ok, _ := f.String(p("rope.scaling.type")); ok {
		switch s {
		case "none", "linear", "yarn", "longrope":
		default:
			// llama.cpp asserts (aborts) on an unknown scaling type.
			return fail("key %q is %q, expected none, linear, yarn or longrope", p("rope.scaling.type"), s)
		}
	}
	eps, ok, err := f.Float32(p(spec.epsKey))
	if err != nil {
		return Hparams{}, err
	}
	if !ok {
		return fail("missing required key %q (f32)", p(spec.epsKey))
	}
	h.NormEps = eps
	if err := spec.read(f, &h); err != nil {
		return Hparams{}, err
	}
	return h, nil
}

// perLayer reads a key that may be a u32 or an INT32/UINT32 array with one
// value per layer. def (when not nil) applies when the key is absent.
func perLayer(f *File, key string, layers uint32, def []uint32) ([]uint32, error) {
	fail := func(format string, args ...any) ([]uint32, error) {
		return nil, &ModelError{Path: f.name(), Msg: fmt.Sprintf(format, args...)}
	}
	v, ok := f.Get(key)
	if !ok {
		if def != nil {
			return def, nil
		}
		return fail("missing required key %q (u32 or array of %d)", key, layers)
	}
	out := make([]uint32, layers)
	switch a := v.Any().(type) {
	case uint32:
		for i := range out {
			out[i] = a
		}
	case []uint32:
		if len(a) != int(layers) {
			return fail("key %q has wrong array length: expected %d (block_count), got %d", key, layers, len(a))
		}
		copy(out, a)
	case []int32:
		if len(a) != int(layers) {
			return fail("key %q has wrong array length: expected %d (block_count), got %d", key, layers, len(a))
		}
		for i, x := range a {
			if x < 0 {
				return fail("key %q element %d is negative (%d)", key, i, x)
			}
			out[i] = uint32(x)
		}
	default:
		return fail("key %q has wrong type %s, llama.cpp requires u32 or an array of u32/i32", key, v.TypeName())
	}
	return out, nil
}

// readBert reads bert's and nomic-bert's keys; nomic-bert also requires
// its pooling type and rotates whole heads.
func readBert(f *File, h *Hparams) error {
	fail := func(format string, args ...any) error {
		return &ModelError{Path: f.name(), Msg: fmt.Sprintf(format, args...)}
	}
	p := func(k string) string { return h.Arch + "." + k }
	causal, ok, err := f.Bool(p("attention.causal"))
	if err != nil {
		return err
	}
	if !ok {
		return fail("missing required key %q (bool)", p("attention.causal"))
	}
	h.Causal = causal
	pool, ok, err := f.Uint32(p("pooling_type"))
	if err != nil {
		return err
	}
	if ok {
		if pool > PoolingRank {
			return fail("%s is %d, expected 0..%d", p("pooling_type"), pool, PoolingRank)
		}
		h.Pooling = int(pool)
	} else if h.Arch == "nomic-bert" {
		return fail("missing required key %q (u32)", p("pooling_type"))
	}
	for l := range h.Heads {
		if h.HeadsKV[l] != h.Heads[l] {
			return fail("layer %d: %s needs head_count_kv (%d) equal to head_count (%d)", l, h.Arch, h.HeadsKV[l], h.Heads[l])
		}
	}
	if h.Arch == "nomic-bert" {
		if rot, ok, _ := f.Uint32(p("rope.dimension_count")); ok && rot != h.HeadDimK {
			return fail("%s %d: ragtune rotates whole heads of %d", p("rope.dimension_count"), rot, h.HeadDimK)
		}
		if b, ok, _ := f.Float32(p("rope.freq_base")); ok {
			h.RopeBase = b
		}
	}
	return nil
}

func readLlama(f *File, h *Hparams) error {
	h.Causal = true
	if rot, ok, _ := f.Uint32("llama.rope.dimension_count"); ok && rot != h.HeadDimK {
		return &ModelError{Path: f.name(), Msg: fmt.Sprintf("invalid llama.rope.dimension_count %d: llama requires the head size %d", rot, h.HeadDimK)}
	}
	if b, ok, _ := f.Float32("llama.rope.freq_base"); ok {
		h.RopeBase = b
	}
	return nil
}

// readQwen3 reads what llama.cpp's qwen3 loader adds to the common keys:
// an optional pooling type; its graph asserts that the rotation covers the
// whole head.
func readQwen3(f *File, h *Hparams) error {
	h.Causal = true
	if rot, ok, _ := f.Uint32("qwen3.rope.dimension_count"); ok && rot != h.HeadDimK {
		return &ModelError{Path: f.name(), Msg: fmt.Sprintf("qwen3.rope.dimension_count %d: qwen3 requires the head size %d", rot, h.HeadDimK)}
	}
	if b, ok, _ := f.Float32("qwen3.rope.freq_base"); ok {
		h.RopeBase = b
	}
	pool, ok, err := f.Uint32("qwen3.pooling_type")
	if err != nil {
		return err
	}
	if ok {
		if pool > PoolingRank {
			return &ModelError{Path: f.name(), Msg: fmt.Sprintf("qwen3.pooling_type is %d, expected 0..%d", pool, PoolingRank)}
		}
		h.Pooling = int(pool)
	}
	return nil
}

// readGemma reads gemma-embedding's required pooling type and sliding
// window, and the Dense projections' sizes, which llama.cpp asserts (an
// abort) must start and end at the embedding size.
func readGemma(f *File, h *Hparams) error {
	fail := func(format string, args ...any) error {
		return &ModelError{Path: f.name(), Msg: fmt.Sprintf(format, args...)}
	}
	h.Causal = false
	if h.Layers < 6 {
		// Every sixth layer attends globally; with none, llama.cpp's graph
		// leaves the global mask without a buffer and aborts.
		return fail("gemma-embedding.block_count is %d: llama.cpp aborts on fewer than 6 layers (no global-attention layer)", h.Layers)
	}
	for _, k := range []string{"pooling_type", "attention.sliding_window"} {
		if v, ok, err := f.Uint32("gemma-embedding." + k); err != nil {
			return err
		} else if !ok {
			return fail("missing required key %q (u32)", "gemma-embedding."+k)
		} else if k == "pooling_type" {
			if v > PoolingRank {
				return fail("gemma-embedding.pooling_type is %d, expected 0..%d", v, PoolingRank)
			}
			h.Pooling = int(v)
		}
	}
	for _, k := range []string{"dense_2_feat_in", "dense_2_feat_out", "dense_3_feat_in", "dense_3_feat_out"} {
		v, ok, err := f.Uint32("gemma-embedding." + k)
		if err != nil {
			return err
		}
		if ok && (k == "dense_2_feat_in" || k == "dense_3_feat_out") && v != 0 && v != h.Embd {
			return fail("gemma-embedding.%s is %d: llama.cpp requires the embedding size %d", k, v, h.Embd)
		}
	}
	if b, ok, _ := f.Float32("gemma-embedding.rope.freq_base"); ok {
		h.RopeBase = b
	}
	return nil
}

// validateVocab checks the tokenizer keys as llama_vocab::load reads them:
// arrays it reinterprets must have the right element type and length, tokens
// must be unique (it asserts so), and the special ids it will use must exist.
func validateVocab(f *File, h *Hparams) error {
	fail := func(format string, args ...any) error {
		return &ModelError{Path: f.name(), Msg: fmt.Sprintf(format, args...)}
	}
	model, ok, err := f.String("tokenizer.ggml.model")
	if err != nil {
		return err
	}
	if !ok {
		return fail("missing required key %q (string)", "tokenizer.ggml.model")
	}
	h.Tokenizer = model
	var defaults map[string]uint32
	switch model {
	case "bert":
		defaults = map[string]uint32{"bos": 101, "unknown": 100, "seperator": 102, "padding": 0, "mask": 103}
	case "llama":
		defaults = map[string]uint32{"bos": 1, "eos": 2, "unknown": 0}
	case "gpt2":
		if _, ok, err := f.Strings("tokenizer.ggml.merges"); err != nil || !ok {
			return fail("tokenizer %q needs key %q as an array of strings", model, "tokenizer.ggml.merges")
		}
		defaults = map[string]uint32{"bos": 11, "eos": 11}
	case "t5":
		defaults = map[string]uint32{"eos": 1, "unknown": 2, "padding": 0}
	default:
		return fail("tokenizer.ggml.model is %q; ragtune supports bert, llama, gpt2 and t5 vocabularies", model)
	}
	tokens, ok, err := f.Strings("tokenizer.ggml.tokens")
	if err != nil {
		return err
	}
	if !ok || len(tokens) == 0 {
		return fail("missing tokenizer vocabulary %q (array of strings)", "tokenizer.ggml.tokens")
	}
	h.Vocab = len(tokens)
	seen := make(map[string]int, len(tokens))
	for i, t := range tokens {
		if t == "" {
			t = fmt.Sprintf("[EMPTY_%d]", i) // what llama.cpp substitutes
		}
		if j, dup := seen[t]; dup {
			return fail("tokenizer.ggml.tokens: token %q appears at ids %d and %d (llama.cpp asserts tokens are unique)", t, j, i)
		}
		seen[t] = i
	}
	for key, want := range map[string]ValueType{"tokenizer.ggml.scores": TypeFloat32, "tokenizer.ggml.token_type": TypeInt32} {
		v, ok := f.Get(key)
		if !ok {
			continue
		}
		if v.Type != TypeArray || v.ElemType != want {
			return fail("key %q has type %s, llama.cpp reads it as array[%s]", key, v.TypeName(), want)
		}
		if v.Len() != len(tokens) {
			return fail("key %q has %d entries but the vocabulary has %d tokens", key, v.Len(), len(tokens))
		}
	}
	names := make([]string, 0, len(defaults))
	for name := range defaults {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		key := "tokenizer.ggml." + name + "_token_id"
		id := defaults[name]
		if v, ok, _ := f.Uint32(key); ok && int(v) < len(tokens) {
			id = v
		}
		if int(id) >= len(tokens) {
			return fail("%s token id %d is outside the %d-token vocabulary (set %q explicitly)", name, id, len(tokens), key)
		}
	}
	h.TokenTypes, _, _ = f.Uint32("tokenizer.ggml.token_type_count")
	return nil
}

// tensorWant is one tensor an architecture may load.
type tensorWant struct {
	name     string
	dims     []int64
	required bool
}

func want(name string, required bool, dims ...uint32) tensorWant {
	d := make([]int64, len(dims))
	for i, x := range dims {
		d[i] = int64(x)
	}
	return tensorWant{name: name, dims: d, required: required}
}

func bertTensors(h Hparams, f *File) []tensorWant {
	E, V := h.Embd, uint32(h.Vocab)
	ws := []tensorWant{
		want("token_embd.weight", true, E, V),
		want("token_types.weight", false, E, h.TokenTypes),
		want("position_embd.weight", true, E, h.Context),
		want("token_embd_norm.weight", true, E),
		want("token_embd_norm.bias", true, E),
	}
	for l := range int(h.Layers) {
		b := fmt.Sprintf("blk.%d.", l)
		ws = append(ws, qkvTensors(h, f, l)...)
		ws = append(ws,
			want(b+"attn_output.weight", true, E, E), want(b+"attn_output.bias", false, E),
			want(b+"attn_output_norm.weight", true, E), want(b+"attn_output_norm.bias", true, E),
			want(b+"ffn_up.weight", true, E, h.FF[l]), want(b+"ffn_up.bias", false, h.FF[l]),
			want(b+"ffn_down.weight", true, h.FF[l], E), want(b+"ffn_down.bias", false, E),
			want(b+"layer_output_norm.weight", true, E), want(b+"layer_output_norm.bias", true, E))
	}
	// The optional ranking head; n_cls_out defaults to 1.
	nCls := uint32(1)
	if labels, ok, _ := f.Strings("bert.classifier.output_labels"); ok && len(labels) > 0 {
		nCls = uint32(len(labels))
	}
	return append(ws, want("cls.weight", false, E, E), want("cls.bias", false, E),
		want("cls.output.weight", false, E, nCls), want("cls.output.bias", false, nCls))
}

// qkvTensors are layer l's q, k and v projections of bert and nomic-bert:
// one fused attn_qkv (bias optional) or three with biases.
func qkvTensors(h Hparams, f *File, l int) []tensorWant {
	E, gqa := h.Embd, h.KVGQA(l)
	b := fmt.Sprintf("blk.%d.", l)
	if _, fused := f.Tensor(b + "attn_qkv.weight"); fused {
		return []tensorWant{want(b+"attn_qkv.weight", true, E, E+2*gqa), want(b+"attn_qkv.bias", false, E+2*gqa)}
	}
	return []tensorWant{
		want(b+"attn_q.weight", true, E, E), want(b+"attn_q.bias", true, E),
		want(b+"attn_k.weight", true, E, gqa), want(b+"attn_k.bias", true, gqa),
		want(b+"attn_v.weight", true, E, gqa), want(b+"attn_v.bias", true, gqa)}
}

// nomicTensors: bert's encoder without a position table, with a SwiGLU
// FFN. llama.cpp would also load (and ignore) ffn_up/ffn_down biases;
// ragtune refuses them rather than run a graph that silently drops them.
func nomicTensors(h Hparams, f *File) []tensorWant {
	E, V := h.Embd, uint32(h.Vocab)
	ws := []tensorWant{
		want("token_embd.weight", true, E, V),
		want("token_types.weight", false, E, h.TokenTypes),
		want("token_embd_norm.weight", true, E),
		want("token_embd_norm.bias", true, E),
	}
	for l := range int(h.Layers) {
		b := fmt.Sprintf("blk.%d.", l)
		ws = append(ws, qkvTensors(h, f, l)...)
		ws = append(ws,
			want(b+"attn_output.weight", true, E, E), want(b+"attn_output.bias", false, E),
			want(b+"attn_output_norm.weight", true, E), want(b+"attn_output_norm.bias", true, E),
			want(b+"ffn_up.weight", true, E, h.FF[l]), want(b+"ffn_gate.weight", true, E, h.FF[l]),
			want(b+"ffn_down.weight", true, h.FF[l], E),
			want(b+"layer_output_norm.weight", true, E), want(b+"layer_output_norm.bias", true, E))
	}
	return ws
}

func llamaTensors(h Hparams, f *File) []tensorWant {
	E, V := h.Embd, uint32(h.Vocab)
	ws := []tensorWant{
		want("token_embd.weight", true, E, V),
		want("output_norm.weight", true, E),
		want("output.weight", false, E, V),
		want("rope_freqs.weight", false, h.HeadDimK/2),
	}
	for l := range int(h.Layers) {
		b := fmt.Sprintf("blk.%d.", l)
		q, gqa, F := h.HeadDimK*h.Heads[l], h.KVGQA(l), h.FF[l]
		ws = append(ws,
			want(b+"attn_norm.weight", true, E),
			want(b+"attn_q.weight", true, E, q), want(b+"attn_k.weight", true, E, gqa),
			want(b+"attn_v.weight", true, E, gqa), want(b+"attn_output.weight", true, q, E),
			want(b+"attn_q.bias", false, E), want(b+"attn_k.bias", false, gqa),
			want(b+"attn_v.bias", false, gqa), want(b+"attn_output.bias", false, E),
			want(b+"ffn_norm.weight", true, E),
			want(b+"ffn_gate.weight", true, E, F), want(b+"ffn_down.weight", true, F, E),
			want(b+"ffn_up.weight", true, E, F),
			want(b+"ffn_gate.bias", false, F), want(b+"ffn_down.bias", false, E), want(b+"ffn_up.bias", false, F))
	}
	return ws
}

func qwen3Tensors(h Hparams, f *File) []tensorWant {
	E, V, d := h.Embd, uint32(h.Vocab), h.HeadDimK
	ws := []tensorWant{
		want("token_embd.weight", true, E, V),
		want("output_norm.weight", true, E),
		want("output.weight", false, E, V),
	}
	for l := range int(h.Layers) {
		b := fmt.Sprintf("blk.%d.", l)
		q, gqa, F := d*h.Heads[l], h.KVGQA(l), h.FF[l]
		ws = append(ws,
			want(b+"attn_norm.weight", true, E),
			want(b+"attn_q.weight", true, E, q), want(b+"attn_k.weight", true, E, gqa),
			want(b+"attn_v.weight", true, E, gqa), want(b+"attn_output.weight", true, q, E),
			want(b+"attn_q_norm.weight", true, d), want(b+"attn_k_norm.weight", true, d),
			want(b+"ffn_norm.weight", true, E),
			want(b+"ffn_gate.weight", true, E, F), want(b+"ffn_down.weight", true, F, E),
			want(b+"ffn_up.weight", true, E, F))
	}
	return ws
}

func gemmaTensors(h Hparams, f *File) []tensorWant {
	E, V, d := h.Embd, uint32(h.Vocab), h.HeadDimK
	d2, _, _ := f.Uint32("gemma-embedding.dense_2_feat_out")
	d3, _, _ := f.Uint32("gemma-embedding.dense_3_feat_in")
	ws := []tensorWant{
		want("token_embd.weight", true, E, V),
		want("output_norm.weight", true, E),
		want("output.weight", false, E, V),
		want("dense_2.weight", false, E, d2),
		want("dense_3.weight", false, d3, E),
	}
	for l := range int(h.Layers) {
		b := fmt.Sprintf("blk.%d.", l)
		q, gqa, F := d*h.Heads[l], h.KVGQA(l), h.FF[l]
		ws = append(ws,
			want(b+"attn_norm.weight", true, E),
			want(b+"attn_q.weight", true, E, q), want(b+"attn_k.weight", true, E, gqa),
			want(b+"attn_v.weight", true, E, gqa), want(b+"attn_output.weight", true, q, E),
			want(b+"attn_q_norm.weight", true, d), want(b+"attn_k_norm.weight", true, d),
			want(b+"post_attention_norm.weight", true, E),
			want(b+"ffn_norm.weight", true, E),
			want(b+"ffn_gate.weight", true, E, F), want(b+"ffn_down.weight", true, F, E),
			want(b+"ffn_up.weight", true, E, F),
			want(b+"post_ffw_norm.weight", true, E))
	}
	return ws
}

// checkTensors compares the file's tensors with the expected set: every
// required one present, nothing extra (llama.cpp counts them), shapes equal
// up to trailing dimensions of 1.
func checkTensors(f *File, wants []tensorWant) error {
	fail := func(format string, args ...any) error {
		return &ModelError{Path: f.name(), Msg: fmt.Sprintf(format, args...)}
	}
	expected := make(map[string]tensorWant, len(wants))
	for _, w := range wants {
		expected[w.name] = w
	}
	for _, t := range f.Tensors {
		w, ok := expected[t.Name]
		if !ok {
			return fail("unexpected tensor %q (%s %v): llama.cpp refuses files with tensors the %s architecture does not use", t.Name, t.Type, t.Dims, f.Architecture())
		}
		if !sameShape(t.Dims, w.dims) {
			return fail("tensor %q has wrong shape %v, expected %v", t.Name, t.Dims, w.dims)
		}
	}
	for _, w := range wants {
		if _, ok := f.Tensor(w.name); w.required && !ok {
			return fail("missing tensor %q (expected shape %v)", w.name, w.dims)
		}
	}
	return nil
}

func sameShape(a, b []int64) bool {
	for i := 0; i < MaxDims; i++ {
		x, y := int64(1), int64(1)
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			return false
		}
	}
	return true
}
