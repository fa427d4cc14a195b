package model

import (
	"fmt"
	"strings"

	"github.com/ragtune/ragtune/bindings"
	"github.com/ragtune/ragtune/bindings/gguf"
)

// Linear is a weight matrix W (ne [in, out]) with an optional bias.
type Linear struct {
	Name string // GGUF name of W, which is also the key of its LoRA pair
	W, B bindings.Tensor
}

// Norm is a normalisation gain with an optional bias (LayerNorm) or none (RMSNorm).
type Norm struct{ W, B bindings.Tensor }

// Layer is one transformer block. For bert AttnNorm and FFNNorm are the
// post-norms (attn_output_norm, layer_output_norm); for llama the pre-norms
// (attn_norm, ffn_norm). Gate is only set for the SwiGLU families; QNorm
// and KNorm (per-head RMSNorm gains of queries and keys) for qwen3. QKV
// replaces Q, K and V in files that fuse them (nomic-bert, some bert).
type Layer struct {
	Q, K, V, O        Linear
	QKV               Linear
	Up, Down, Gate    Linear
	AttnNorm, FFNNorm Norm
	QNorm, KNorm      Norm
	// gemma-embedding's norms of the attention and FFN outputs.
	PostAttnNorm, PostFFNNorm Norm
}

// Model holds a model's weights in backend memory.
type Model struct {
	Config
	Path string

	TokEmbd, TypeEmbd, PosEmbd bindings.Tensor
	EmbNorm                    Norm // bert: token_embd_norm
	Layers                     []Layer
	OutNorm                    Norm // llama, qwen3, gemma-embedding: output_norm
	// Dense2 and Dense3 project pooled vectors (gemma-embedding files
	// converted with sentence-transformers' Dense modules; both or none).
	Dense2, Dense3 bindings.Tensor

	// LoRA pairs by weight name, applied by every graph built from the model.
	Adapters map[string]*LoRA

	ctx *bindings.Context
	buf *bindings.Buffer
}

// LoRA is a low-rank update W + Scale·B·A of one linear layer, stored as
// llama.cpp stores adapters: A ne [in, r], B ne [r, out].
type LoRA struct {
	A, B    bindings.Tensor
	Scale   float32
	Dropout float32 // on the layer's input, in trainable graphs only
	// Magnitude, when set, makes the pair DoRA: the layer's weight becomes
	// Magnitude ⊙ (W + Scale·BA) / ‖W + Scale·BA‖, norms per output unit
	// (one per row of the [out, in] matrix). F32 [out].
	Magnitude bindings.Tensor
}

// LoadOptions say how weights are kept in memory.
type LoadOptions struct {
	// WidenF16 converts F16 and BF16 matrices to F32, for training on the
	// CPU (ragtune's product kernels are f32) and for weights that train
	// (full fine-tuning, DoRA). Devices multiply f16 and bf16 weights as
	// they are, forward and backward (bindings.Backend.WeightGradType).
	WidenF16 bool
	// Quantize re-encodes the layers' weight matrices in memory (QLoRA on a
	// float base): "q4_0", "q4_k", "q8_0"; "" keeps the file's types.
	Quantize string
}

// Load reads a bert, llama or qwen3 GGUF into backend memory. Quantized weights stay
// quantized.
func Load(path string, be *bindings.Backend, opts LoadOptions) (*Model, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cfg, err := ReadConfig(f)
	if err != nil {
		return nil, err
	}
	m := &Model{Config: cfg, Path: path, Adapters: map[string]*LoRA{}}
	m.ctx, err = bindings.NewContext(len(f.Tensors)+8, 0, false)
	if err != nil {
		return nil, err
	}
	l := loader{f: f, m: m, opts: opts, used: map[string]bool{}}
	if opts.Quantize != "" {
		q, err := bindings.ParseType(opts.Quantize)
		if err != nil || !q.IsQuantized() {
			m.Close()
			return nil, fmt.Errorf("cannot quantize to %q (want q4_0, q4_k or q8_0)", opts.Quantize)
		}
		l.quant = &q
	}
	l.declare()
	if l.err != nil {
		m.Close()
		return nil, l.err
	}
	for _, t := range f.Tensors {
		if !l.used[t.Name] && !(cfg.Arch.finalNorm() && (t.Name == "output.weight" || t.Name == "rope_freqs.weight")) {
			m.Close()
			return nil, fmt.Errorf("%s: unexpected tensor %q for arch %s", path, t.Name, cfg.Arch)
		}
	}
	if m.buf, err = be.AllocTensors(m.ctx); err != nil {
		m.Close()
		return nil, err
	}
	if err := l.upload(); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// Close frees the weights.
func (m *Model) Close() {
	m.buf.Close()
	m.ctx.Close()
}

// WeightBytes is the backend memory taken by the weights.
func (m *Model) WeightBytes() int { return m.buf.Size() }

// Linears lists every linear layer by GGUF name (LoRA targets).
func (m *Model) Linears() []Linear {
	var out []Linear
	for _, l := range m.Layers {
		for _, lin := range []Linear{l.QKV, l.Q, l.K, l.V, l.O, l.Gate, l.Up, l.Down} {
			if !lin.W.IsNil() {
				out = append(out, lin)
			}
		}
	}
	return out
}

type loader struct {
	f     *gguf.File
	m     *Model
	opts  LoadOptions
	used  map[string]bool
	todo  []pending
	err   error
	quant *bindings.Type
}

type pending struct {
	name string
	t    bindings.Tensor
	info gguf.TensorInfo
}

// tensor declares a weight with the expected shape; optional weights may be absent.
func (l *loader) tensor(name string, optional bool, ne ...int) bindings.Tensor {
	if l.err != nil {
		return bindings.Tensor{}
	}
	info, ok := l.f.Tensor(name)
	if !ok {
		if !optional {
			l.err = fmt.Errorf("%s: missing tensor %q", l.f.Path, name)
		}
		return bindings.Tensor{}
	}
	dims := append([]int64(nil), info.Dims...)
	for len(dims) < len(ne) {
		dims = append(dims, 1)
	}
	for i, n := range ne {
		if int(dims[i]) != n {
			l.err = fmt.Errorf("%s: tensor %q has shape %v, want %v", l.f.Path, name, info.Dims, ne)
			return bindings.Tensor{}
		}
	}
	for _, d := range dims[len(ne):] {
		if d != 1 {
			l.err = fmt.Errorf("%s: tensor %q has shape %v, want %v", l.f.Path, name, info.Dims, ne)
			return bindings.Tensor{}
		}
	}
	typ := bindings.Type(info.Type)
	if len(ne) == 1 && typ != bindings.TypeF32 {
		l.err = fmt.Errorf("%s: tensor %q is %s; 1-D tensors must be f32", l.f.Path, name, typ)
		return bindings.Tensor{}
	}
	if l.opts.WidenF16 && (typ == bindings.TypeF16 || typ == bindings.TypeBF16) {
		typ = bindings.TypeF32
	}
	if l.quant != nil && len(ne) == 2 && strings.HasPrefix(name, "blk.") && !typ.IsQuantized() {
		if ne[0]%l.quant.BlockSize() != 0 {
			l.err = fmt.Errorf("%s: tensor %q: rows of %d cannot be quantized to %s (block size %d)", l.f.Path, name, ne[0], *l.quant, l.quant.BlockSize())
			return bindings.Tensor{}
		}
		typ = *l.quant
	}
	t := l.m.ctx.NewTensor(typ, ne...).SetName(name)
	if err := l.m.ctx.Err(); err != nil {
		l.err = fmt.Errorf("%s: tensor %q: %w", l.f.Path, name, err)
		return bindings.Tensor{}
	}
	l.used[name] = true
	l.todo = append(l.todo, pending{name, t, info})
	return t
}

func (l *loader) linear(name string, in, out int, biasOptional bool) Linear {
	return Linear{
		Name: name + ".weight",
		W:    l.tensor(name+".weight", false, in, out),
		B:    l.tensor(name+".bias", biasOptional, out),
	}
}

func (l *loader) norm(name string, withBias bool) Norm {
	return l.normOf(name, l.m.Dim, withBias)
}

// normOf declares a norm over n values.
func (l *loader) normOf(name string, n int, withBias bool) Norm {
	nm := Norm{W: l.tensor(name+".weight", false, n)}
	if withBias {
		nm.B = l.tensor(name+".bias", false, n)
	}
	return nm
}

func (l *loader) declare() {
	c := l.m.Config
	E, F, V := c.Dim, c.FF, c.Vocab
	l.m.TokEmbd = l.tensor("token_embd.weight", false, E, V)
	if c.Arch.postNorm() {
		if info, ok := l.f.Tensor("token_types.weight"); ok {
			// XLM-RoBERTa has one token type, which GGUF stores as [E].
			rows := 1
			if len(info.Dims) >= 2 {
				rows = int(info.Dims[1])
			}
			l.m.TypeEmbd = l.tensor("token_types.weight", false, E, rows)
		}
		if c.Arch == Bert { // nomic-bert rotates instead
			l.m.PosEmbd = l.tensor("position_embd.weight", false, E, c.Ctx)
		}
		l.m.EmbNorm = l.norm("token_embd_norm", true)
	}
	hd := c.HeadDim()
	for i := 0; i < c.Layers; i++ {
		p := fmt.Sprintf("blk.%d.", i)
		var ly Layer
		switch c.Arch {
		case Bert:
			if _, fused := l.f.Tensor(p + "attn_qkv.weight"); fused {
				ly.QKV = l.linear(p+"attn_qkv", E, 3*E, true)
			} else {
				ly.Q = l.linear(p+"attn_q", E, E, false)
				ly.K = l.linear(p+"attn_k", E, E, false)
				ly.V = l.linear(p+"attn_v", E, E, false)
			}
			ly.O = l.linear(p+"attn_output", E, E, true)
			ly.AttnNorm = l.norm(p+"attn_output_norm", true)
			ly.Up = l.linear(p+"ffn_up", E, F, true)
			ly.Down = l.linear(p+"ffn_down", F, E, true)
			ly.FFNNorm = l.norm(p+"layer_output_norm", true)
		case Llama:
			ly.AttnNorm = l.norm(p+"attn_norm", false)
			ly.Q = l.linear(p+"attn_q", E, c.Heads*hd, true)
			ly.K = l.linear(p+"attn_k", E, c.KVHeads*hd, true)
			ly.V = l.linear(p+"attn_v", E, c.KVHeads*hd, true)
			ly.O = l.linear(p+"attn_output", c.Heads*hd, E, true)
			ly.FFNNorm = l.norm(p+"ffn_norm", false)
			ly.Gate = l.linear(p+"ffn_gate", E, F, true)
			ly.Up = l.linear(p+"ffn_up", E, F, true)
			ly.Down = l.linear(p+"ffn_down", F, E, true)
		case Qwen3:
			ly = l.qwen3Layer(p)
		case NomicBert:
			ly = l.nomicLayer(p)
		case Gemma:
			ly = l.gemmaLayer(p)
		}
		l.m.Layers = append(l.m.Layers, ly)
	}
	if c.Arch == Gemma {
		l.gemmaDense()
	}
	if c.Arch.finalNorm() {
		l.m.OutNorm = l.norm("output_norm", false)
	}
}

// upload copies every declared tensor's data into backend memory, widening
// F16/BF16 to F32 when asked.
func (l *loader) upload() error {
	for _, p := range l.todo {
		raw, err := l.f.TensorData(p.name)
		if err != nil {
			return err
		}
		if typ := p.t.Type(); typ != bindings.Type(p.info.Type) {
			vals, err := gguf.Decode(p.info.Type, raw, p.info.Elements())
			if err != nil {
				return fmt.Errorf("%s: tensor %q: %w", l.f.Path, p.name, err)
			}
			if typ.IsQuantized() {
				ne := p.t.Ne()
				q, err := bindings.Quantize(typ, vals, ne[1]*ne[2]*ne[3], ne[0])
				if err != nil {
					return fmt.Errorf("%s: tensor %q: %w", l.f.Path, p.name, err)
				}
				if err := p.t.SetBytes(q); err != nil {
					return err
				}
				continue
			}
			if err := p.t.SetF32(vals); err != nil {
				return err
			}
			continue
		}
		if err := p.t.SetBytes(raw); err != nil {
			return fmt.Errorf("%s: tensor %q: %w", l.f.Path, p.name, err)
		}
	}
	return nil
}
