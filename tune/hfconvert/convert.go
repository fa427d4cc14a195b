package hfconvert

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/ragtune/ragtune/bindings/gguf"
	"github.com/ragtune/ragtune/bindings/safefile"
	"github.com/ragtune/ragtune/bindings/safetensors"
	"github.com/ragtune/ragtune/tune/hf"
	"github.com/ragtune/ragtune/tune/modelinit"
)

// Options configure Convert.
type Options struct {
	Type    gguf.TensorType // of the 2-D weights (default F32); 1-D tensors stay F32
	Pooling string          // mean, cls, last or none: overrides the Pooling module
	Name    string          // general.name (default: the folder's name)
	// Progress is called after each tensor is written.
	Progress func(done, total int, name string)
}

// Report says what Convert did.
type Report struct {
	In           string         `json:"in"`
	Out          string         `json:"out"`
	Architecture string         `json:"architecture"` // config.json's
	Arch         string         `json:"arch"`         // llama.cpp's
	Tokenizer    string         `json:"tokenizer"`    // tokenizer.ggml.model
	TokenizerPre string         `json:"tokenizer_pre"`
	TokenizerSrc string         `json:"tokenizer_file"`
	Vocab        int            `json:"vocab"`
	Pooling      string         `json:"pooling"`
	Dense        int            `json:"dense_modules"`
	Normalize    bool           `json:"normalize"` // the folder L2-normalises: pass --normalize when embedding
	Tensors      int            `json:"tensors"`
	Params       int64          `json:"params"`
	TensorTypes  map[string]int `json:"tensor_types"`
	BytesOut     int64          `json:"bytes_out"`
	Notes        []string       `json:"notes,omitempty"`
}

// tensorPlan is one GGUF tensor and how to make it from the checkpoint.
type tensorPlan struct {
	name  string
	dims  []int64 // ggml order
	typ   gguf.TensorType
	read  func() ([]float32, error)
	block int // for ordering: -1 before the blocks, 1<<30 after
}

// converter holds one conversion's state.
type converter struct {
	dir   string
	cfg   *config
	arch  string
	ckpt  *safetensors.Checkpoint
	st    stModules
	o     Options
	hp    hparams
	plans []tensorPlan
	notes []string
	dense []*safetensors.File
}

// hparams are the model's shape as the GGUF keys need it.
type hparams struct {
	embd, layers, heads, headsKV, ff, ctx, headDim int
	eps, ropeBase                                  float64
	posOffset                                      int // rows cut from a RoBERTa position table
	typeVocab                                      int
}

// Convert writes the Hugging Face folder dir as a GGUF model at out.
func Convert(dir, out string, o Options) (*Report, error) {
	if err := checkType(o.Type); err != nil {
		return nil, err
	}
	cfg, err := readConfig(dir)
	if err != nil {
		return nil, err
	}
	arch, declared, err := cfg.family()
	if err != nil {
		return nil, err
	}
	c := &converter{dir: dir, cfg: cfg, arch: arch, o: o}
	if c.st, err = readModules(dir); err != nil {
		return nil, err
	}
	pooling := c.st.Pooling
	if o.Pooling != "" {
		if _, ok := poolingTypes[o.Pooling]; !ok {
			return nil, fmt.Errorf("--pooling %q: expected mean, cls, last or none", o.Pooling)
		}
		pooling = o.Pooling
	}
	if pooling == "" && arch != hf.Llama {
		return nil, fmt.Errorf("%s: no sentence-transformers Pooling module (modules.json, 1_Pooling/config.json); %s needs a pooling type: pass --pooling mean|cls|last", dir, arch)
	}
	if arch == hf.Llama && pooling != "" && pooling != "last" {
		c.note("llama.cpp's llama models pool the last token; the folder's %s pooling is not kept", pooling)
	}
	if c.ckpt, err = safetensors.OpenCheckpoint(dir); err != nil {
		return nil, err
	}
	defer c.ckpt.Close()
	if err := c.readHparams(); err != nil {
		return nil, err
	}
	if err := c.planTensors(); err != nil {
		return nil, err
	}
	if err := c.planDense(); err != nil {
		return nil, err
	}
	defer func() {
		for _, f := range c.dense {
			f.Close()
		}
	}()
	embd, ok := c.plan("token_embd.weight")
	if !ok {
		return nil, fmt.Errorf("%s: the checkpoint has no token embedding (%s)", dir, c.hfName("token_embd"))
	}
	v, err := readVocab(dir, arch, int(embd.dims[1]))
	if err != nil {
		return nil, err
	}

	b := gguf.NewBuilder()
	name := o.Name
	if name == "" {
		name = filepath.Base(filepath.Clean(dir))
	}
	b.MustSet("general.architecture", gguf.Of(arch))
	b.MustSet("general.type", gguf.Of("model"))
	b.MustSet("general.name", gguf.Of(name))
	c.setHparams(b, pooling, len(v.Tokens))
	b.MustSet("general.file_type", gguf.Of(uint32(fileType(o.Type))))
	if o.Type.Quantized() {
		b.MustSet("general.quantization_version", gguf.Of(uint32(2)))
	}
	v.set(b)

	rep := &Report{In: dir, Out: out, Architecture: declared, Arch: arch, Tokenizer: v.Model, TokenizerPre: v.Pre,
		TokenizerSrc: filepath.Base(v.Source), Vocab: len(v.Tokens), Pooling: pooling, Dense: len(c.dense),
		Normalize: c.st.Normalize, TensorTypes: map[string]int{}}
	sort.SliceStable(c.plans, func(i, j int) bool {
		if c.plans[i].block != c.plans[j].block {
			return c.plans[i].block < c.plans[j].block
		}
		return c.plans[i].name < c.plans[j].name
	})
	for i, p := range c.plans {
		p, i := p, i
		rows, cols := int64(1), p.dims[0]
		for _, d := range p.dims[1:] {
			rows *= d
		}
		rep.Params += rows * cols
		rep.TensorTypes[p.typ.String()]++
		err := b.AddTensorFunc(p.name, p.typ, p.dims, func() ([]byte, error) {
			vals, err := p.read()
			if err != nil {
				return nil, err
			}
			if int64(len(vals)) != rows*cols {
				return nil, fmt.Errorf("has %d values, expected %d", len(vals), rows*cols)
			}
			data, err := encode(p.typ, vals, int(rows), int(cols))
			if o.Progress != nil && err == nil {
				o.Progress(i+1, len(c.plans), p.name)
			}
			return data, err
		})
		if err != nil {
			return nil, err
		}
	}
	rep.Tensors = len(c.plans)
	if rep.BytesOut, err = writeChecked(b, out, arch); err != nil {
		return nil, err
	}
	rep.Notes = c.notes
	return rep, nil
}

// writeChecked writes the model next to out, runs ragtune's copy of
// llama.cpp's loader checks on it (for the architectures it covers; llama.cpp
// judges the others when it loads), and only then renames it over out.
func writeChecked(b *gguf.Builder, out, arch string) (int64, error) {
	tmp, err := safefile.TempPath(out)
	if err != nil {
		return 0, err
	}
	n, err := writeTo(b, tmp)
	if err == nil && slices.Contains(gguf.SupportedArchs, arch) {
		var f *gguf.File
		if f, err = gguf.Open(tmp); err == nil {
			if _, verr := gguf.ValidateModel(f, ""); verr != nil {
				err = fmt.Errorf("converted model fails llama.cpp's loader checks: %w", verr)
			}
			f.Close()
		}
	}
	if err == nil {
		err = safefile.Commit(tmp, out)
	}
	if err != nil {
		os.Remove(tmp)
		return 0, err
	}
	return n, nil
}

func writeTo(b *gguf.Builder, path string) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	n, err := b.WriteTo(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("write %s: %w", path, err)
	}
	return n, nil
}

func (c *converter) note(format string, args ...any) {
	c.notes = append(c.notes, fmt.Sprintf(format, args...))
}

// ConvertTypes are the weight types Convert writes.
var ConvertTypes = []gguf.TensorType{gguf.F32, gguf.F16, gguf.BF16, gguf.Q8_0, gguf.Q4_0, gguf.Q4_K}

func checkType(t gguf.TensorType) error {
	for _, c := range ConvertTypes {
		if c == t {
			return nil
		}
	}
	return fmt.Errorf("--type %s: expected f32, f16, bf16, q8_0, q4_0 or q4_k", t)
}

func fileType(t gguf.TensorType) gguf.FileType { return modelinit.FileTypeOf(t) }

// encode stores rows×cols floats as typ.
func encode(typ gguf.TensorType, v []float32, rows, cols int) ([]byte, error) {
	if typ == gguf.BF16 {
		return safetensors.FromFloat32(safetensors.BF16, v)
	}
	return modelinit.Encode(typ, v, rows, cols)
}

func (c *converter) plan(name string) (tensorPlan, bool) {
	for _, p := range c.plans {
		if p.name == name {
			return p, true
		}
	}
	return tensorPlan{}, false
}

// hfName is a GGUF name's module path, for messages.
func (c *converter) hfName(gguf string) string {
	n, err := hf.ModuleName(c.arch, gguf)
	if err != nil {
		return gguf
	}
	return n
}

// The keys of the five sizes every family has (hidden size, blocks, heads,
// feed-forward size, context), each the first of its keys present.
var (
	hfSizeKeys    = [5][]string{{"hidden_size"}, {"num_hidden_layers"}, {"num_attention_heads"}, {"intermediate_size"}, {"max_position_embeddings"}}
	nomicSizeKeys = [5][]string{{"n_embd", "hidden_size"}, {"n_layer", "num_hidden_layers"}, {"n_head", "num_attention_heads"},
		{"n_inner", "intermediate_size"}, {"max_trained_positions", "n_positions", "max_position_embeddings"}}
)

// sizes reads the five sizes into h, in keys' order.
func (cfg *config) sizes(h *hparams, keys [5][]string) error {
	for i, dst := range []*int{&h.embd, &h.layers, &h.heads, &h.ff, &h.ctx} {
		n, err := cfg.need(keys[i]...)
		if err != nil {
			return err
		}
		*dst = n
	}
	return nil
}

func (c *converter) readHparams() error {
	cfg, h := c.cfg, &c.hp
	var err error
	switch c.arch {
	case hf.Bert:
		if err := cfg.sizes(h, hfSizeKeys); err != nil {
			return err
		}
		if h.eps, err = cfg.number(1e-12, "layer_norm_eps"); err != nil {
			return err
		}
		if act := cfg.str("hidden_act"); act != "" && act != "gelu" && act != "gelu_new" && act != "gelu_pytorch_tanh" {
			return fmt.Errorf("%s: hidden_act %q; llama.cpp's bert uses GELU", cfg.path, act)
		}
		if m := cfg.str("model_type"); m == "roberta" || m == "xlm-roberta" || strings.Contains(c.declared(), "Roberta") {
			// RoBERTa numbers positions from pad_token_id+1: those first rows are never used.
			pad, _, err := cfg.integer("pad_token_id")
			if err != nil {
				return err
			}
			h.posOffset = pad + 1
			h.ctx -= h.posOffset
		}
		h.typeVocab, _, _ = cfg.integer("type_vocab_size")
		h.headsKV, h.headDim = h.heads, h.embd/h.heads
	case hf.NomicBert:
		if err := cfg.sizes(h, nomicSizeKeys); err != nil {
			return err
		}
		if h.eps, err = cfg.number(1e-12, "layer_norm_epsilon", "layer_norm_eps"); err != nil {
			return err
		}
		if h.ropeBase, err = cfg.number(1000, "rotary_emb_base"); err != nil {
			return err
		}
		if f, _ := cfg.number(1, "rotary_emb_fraction"); f != 1 {
			return fmt.Errorf("%s: rotary_emb_fraction %g; llama.cpp's nomic-bert rotates whole heads (1.0)", cfg.path, f)
		}
		if act := cfg.str("activation_function"); act != "" && act != "swiglu" {
			return fmt.Errorf("%s: activation_function %q; llama.cpp's nomic-bert uses swiglu", cfg.path, act)
		}
		if cfg.boolean("rotary_emb_interleaved", false) {
			return fmt.Errorf("%s: rotary_emb_interleaved is true; llama.cpp's nomic-bert rotates halves", cfg.path)
		}
		h.typeVocab, _, _ = cfg.integer("type_vocab_size")
		h.headsKV, h.headDim = h.heads, h.embd/h.heads
	default: // llama, qwen3, gemma-embedding
		if err := cfg.sizes(h, hfSizeKeys); err != nil {
			return err
		}
		kv, ok, err := cfg.integer("num_key_value_heads")
		if err != nil {
			return err
		}
		h.headsKV = h.heads
		if ok && kv > 0 {
			h.headsKV = kv
		}
		h.headDim = h.embd / h.heads
		if d, ok, err := cfg.integer("head_dim"); err != nil {
			return err
		} else if ok && d > 0 {
			h.headDim = d
		}
		if h.eps, err = cfg.number(1e-6, "rms_norm_eps"); err != nil {
			return err
		}
		if h.ropeBase, err = cfg.number(10000, "rope_theta"); err != nil {
			return err
		}
		if rs, ok := cfg.raw["rope_scaling"]; ok && rs != nil && c.arch != hf.GemmaEmbedding {
			return fmt.Errorf("%s: rope_scaling %v is not converted (plain RoPE only)", cfg.path, rs)
		}
		if c.arch == hf.Llama && h.headDim != h.embd/h.heads {
			return fmt.Errorf("%s: head_dim %d differs from hidden_size/num_attention_heads; llama.cpp's llama needs them equal", cfg.path, h.headDim)
		}
	}
	if h.heads == 0 || h.headsKV == 0 || h.heads%h.headsKV != 0 || h.headDim == 0 {
		return fmt.Errorf("%s: %d attention heads and %d key/value heads do not divide", cfg.path, h.heads, h.headsKV)
	}
	if c.arch != hf.Qwen3 && c.arch != hf.GemmaEmbedding && h.embd%h.heads != 0 {
		return fmt.Errorf("%s: hidden size %d is not a multiple of %d heads", cfg.path, h.embd, h.heads)
	}
	return nil
}

func (c *converter) declared() string { _, d, _ := c.cfg.family(); return d }

func (c *converter) setHparams(b *gguf.Builder, pooling string, vocab int) {
	h, a := c.hp, c.arch
	u := func(k string, v int) { b.MustSet(a+"."+k, gguf.Of(uint32(v))) }
	f := func(k string, v float64) { b.MustSet(a+"."+k, gguf.Of(float32(v))) }
	u("context_length", h.ctx)
	u("embedding_length", h.embd)
	u("feed_forward_length", h.ff)
	u("block_count", h.layers)
	u("attention.head_count", h.heads)
	switch a {
	case hf.Bert, hf.NomicBert:
		f("attention.layer_norm_epsilon", h.eps)
		b.MustSet(a+".attention.causal", gguf.Of(false))
		if a == hf.NomicBert {
			f("rope.freq_base", h.ropeBase)
		}
		if _, ok := c.plan("token_types.weight"); ok {
			b.MustSet("tokenizer.ggml.token_type_count", gguf.Of(uint32(max(h.typeVocab, 1))))
		}
	default:
		u("attention.head_count_kv", h.headsKV)
		f("attention.layer_norm_rms_epsilon", h.eps)
		f("rope.freq_base", h.ropeBase)
		if a == hf.Llama {
			u("rope.dimension_count", h.headDim)
			u("vocab_size", vocab)
		} else {
			u("attention.key_length", h.headDim)
			u("attention.value_length", h.headDim)
		}
		if a == hf.GemmaEmbedding {
			sw, _, _ := c.cfg.integer("sliding_window")
			u("attention.sliding_window", sw)
			for _, n := range []int{2, 3} {
				if p, ok := c.plan(fmt.Sprintf("dense_%d.weight", n)); ok {
					u(fmt.Sprintf("dense_%d_feat_in", n), int(p.dims[0]))
					u(fmt.Sprintf("dense_%d_feat_out", n), int(p.dims[1]))
				}
			}
		}
	}
	if pooling != "" && a != hf.Llama {
		u("pooling_type", int(poolingTypes[pooling]))
	}
}

// skipped are checkpoint tensors llama.cpp's converter drops.
var skipped = regexp.MustCompile(`(^|\.)(position_ids|rotary_emb\.inv_freq|pooler\.dense\.(weight|bias))$|^cls\.|^lm_head\.`)

// planTensors maps every checkpoint tensor to its GGUF tensor.
func (c *converter) planTensors() error {
	for _, name := range c.ckpt.Names() {
		if skipped.MatchString(name) && !(name == "lm_head.weight" && c.arch != hf.Bert && c.arch != hf.NomicBert) {
			continue
		}
		info, _ := c.ckpt.Tensor(name)
		if !info.DType.Float() {
			return fmt.Errorf("checkpoint tensor %q is %s; model weights must be F32, F16 or BF16", name, info.DType)
		}
		hfName := name
		if c.arch == hf.Bert {
			hfName = strings.NewReplacer("LayerNorm.gamma", "LayerNorm.weight", "LayerNorm.beta", "LayerNorm.bias").Replace(hfName)
		}
		gname, err := hf.TensorName(c.arch, hfName)
		if err != nil {
			return fmt.Errorf("checkpoint tensor %q: %v", name, err)
		}
		if !strings.HasSuffix(gname, ".weight") && !strings.HasSuffix(gname, ".bias") {
			return fmt.Errorf("checkpoint tensor %q is neither a weight nor a bias", name)
		}
		if _, dup := c.plan(gname); dup {
			return fmt.Errorf("checkpoint tensor %q maps to %s, which another tensor already gave", name, gname)
		}
		dims := make([]int64, len(info.Shape))
		for i, d := range info.Shape {
			dims[len(dims)-1-i] = d
		}
		if len(dims) == 0 || len(dims) > 2 {
			return fmt.Errorf("checkpoint tensor %q has shape %v; expected a vector or a matrix", name, info.Shape)
		}
		p := tensorPlan{name: gname, dims: dims, typ: gguf.F32, block: blockOf(gname)}
		src := name
		p.read = func() ([]float32, error) { return c.ckpt.Float32s(src) }
		c.transform(&p)
		p.typ = c.weightType(p)
		c.plans = append(c.plans, p)
	}
	return nil
}

var blockRe = regexp.MustCompile(`^blk\.(\d+)\.`)

func blockOf(name string) int {
	if m := blockRe.FindStringSubmatch(name); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	if strings.HasPrefix(name, "output") || strings.HasPrefix(name, "dense_") {
		return 1 << 30
	}
	return -1
}

// transform applies what llama.cpp's converter changes in a tensor's values.
func (c *converter) transform(p *tensorPlan) {
	read := p.read
	h := c.hp
	cols := 1 // a bias: one value per row
	if len(p.dims) == 2 {
		cols = int(p.dims[0])
	}
	switch {
	case c.arch == hf.Llama && (strings.HasSuffix(p.name, ".attn_q.weight") || strings.HasSuffix(p.name, ".attn_q.bias")):
		p.read = func() ([]float32, error) { return permuteRoPE(read, h.heads, cols) }
	case c.arch == hf.Llama && (strings.HasSuffix(p.name, ".attn_k.weight") || strings.HasSuffix(p.name, ".attn_k.bias")):
		p.read = func() ([]float32, error) { return permuteRoPE(read, h.headsKV, cols) }
	case c.arch == hf.GemmaEmbedding && strings.HasSuffix(p.name, "norm.weight"):
		// Gemma's RMSNorm multiplies by (1 + w); llama.cpp's by w.
		p.read = func() ([]float32, error) { return addOne(read) }
	case p.name == "position_embd.weight" && h.posOffset > 0:
		off := h.posOffset
		p.dims = []int64{p.dims[0], p.dims[1] - int64(off)}
		p.read = func() ([]float32, error) {
			v, err := read()
			if err != nil {
				return nil, err
			}
			if len(v) < off*cols {
				return nil, fmt.Errorf("position table shorter than its offset %d", off)
			}
			return v[off*cols:], nil
		}
	}
}

func addOne(read func() ([]float32, error)) ([]float32, error) {
	v, err := read()
	for i := range v {
		v[i]++
	}
	return v, err
}

// permuteRoPE reorders the rows of a q or k projection (or its bias, one
// value per row) from Hugging Face's order to llama.cpp's (hf.RopeRowOrder).
func permuteRoPE(read func() ([]float32, error), heads, cols int) ([]float32, error) {
	v, err := read()
	if err != nil {
		return nil, err
	}
	return permuteRows(v, heads, cols, false)
}

// permuteRows moves rows of v (cols values each) from Hugging Face's
// rotary order to llama.cpp's, or back with inverse.
func permuteRows(v []float32, heads, cols int, inverse bool) ([]float32, error) {
	order, err := hf.RopeRowOrder(len(v)/cols, heads)
	if err != nil {
		return nil, err
	}
	out := make([]float32, len(v))
	for hfRow, ggufRow := range order {
		dst, src := ggufRow, hfRow
		if inverse {
			dst, src = hfRow, ggufRow
		}
		copy(out[dst*cols:(dst+1)*cols], v[src*cols:(src+1)*cols])
	}
	return out, nil
}

// weightType follows the converter and llama-quantize: vectors and norms stay
// F32, so do bert's position and token-type tables; other matrices take the
// requested type, F16 when their rows do not fill its blocks.
func (c *converter) weightType(p tensorPlan) gguf.TensorType {
	if len(p.dims) < 2 || strings.HasSuffix(p.name, "_norm.weight") || p.name == "position_embd.weight" || p.name == "token_types.weight" {
		return gguf.F32
	}
	t := c.o.Type
	if p.dims[0]%int64(t.BlockSize()) != 0 {
		c.note("%s: rows of %d do not fill %s blocks; written as F16", p.name, p.dims[0], t)
		return gguf.F16
	}
	return t
}

// planDense adds sentence-transformers Dense modules as llama.cpp's
// dense_2/dense_3 projections (gemma-embedding only knows them).
func (c *converter) planDense() error {
	if len(c.st.Dense) == 0 {
		return nil
	}
	if c.arch != hf.GemmaEmbedding {
		return fmt.Errorf("%s: modules.json has Dense modules (%s); llama.cpp applies them for gemma-embedding only", c.dir, strings.Join(c.st.Dense, ", "))
	}
	if len(c.st.Dense) > 2 {
		return fmt.Errorf("%s: %d Dense modules; llama.cpp knows two (dense_2, dense_3)", c.dir, len(c.st.Dense))
	}
	prev := c.hp.embd
	for i, folder := range c.st.Dense {
		dcfgPath := filepath.Join(c.dir, folder, "config.json")
		raw, err := os.ReadFile(dcfgPath)
		if err != nil {
			return fmt.Errorf("Dense module %s: %w", folder, err)
		}
		var dc struct {
			In   int    `json:"in_features"`
			Out  int    `json:"out_features"`
			Bias bool   `json:"bias"`
			Act  string `json:"activation_function"`
		}
		if err := json.Unmarshal(raw, &dc); err != nil {
			return fmt.Errorf("%s: %v", dcfgPath, err)
		}
		if dc.Bias {
			return fmt.Errorf("%s: a Dense bias has no place in llama.cpp's dense_%d", dcfgPath, i+2)
		}
		if dc.Act != "" && !strings.HasSuffix(dc.Act, "Identity") {
			return fmt.Errorf("%s: activation %q; llama.cpp's dense layers are linear (Identity)", dcfgPath, dc.Act)
		}
		if dc.In != prev || dc.In <= 0 || dc.Out <= 0 {
			return fmt.Errorf("%s: in_features %d, expected %d (the previous layer's width)", dcfgPath, dc.In, prev)
		}
		f, err := safetensors.Open(filepath.Join(c.dir, folder, safetensors.SingleFile))
		if err != nil {
			return fmt.Errorf("Dense module %s: %w", folder, err)
		}
		c.dense = append(c.dense, f)
		t, ok := f.Tensor("linear.weight")
		if !ok || len(t.Shape) != 2 || t.Shape[0] != int64(dc.Out) || t.Shape[1] != int64(dc.In) || !t.DType.Float() {
			return fmt.Errorf("%s: expected a float linear.weight of shape [%d %d]", f.Path, dc.Out, dc.In)
		}
		p := tensorPlan{name: fmt.Sprintf("dense_%d.weight", i+2), dims: []int64{int64(dc.In), int64(dc.Out)}, block: 1 << 30}
		p.read = func() ([]float32, error) { return f.Float32s("linear.weight") }
		p.typ = c.weightType(p)
		c.plans = append(c.plans, p)
		prev = dc.Out
	}
	if prev != c.hp.embd {
		return fmt.Errorf("%s: the Dense modules end at width %d; llama.cpp needs them to return to %d", c.dir, prev, c.hp.embd)
	}
	return nil
}
