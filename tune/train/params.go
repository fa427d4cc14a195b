// Package train fine-tunes embedding models on ggml: LoRA, QLoRA (frozen
// quantized base) and full fine-tuning with contrastive losses.
//
// ggml computes the loss and its gradients (reverse-mode autodiff of the
// model graph), and by default accumulates them, clips them and runs AdamW
// in graphs on the device (devopt.go); schedules, parameter groups and
// divergence checks stay in Go. The Go AdamW over host copies (optim.go)
// serves devices without those ops and is the device path's reference.
package train

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/ragtune/ragtune/bindings"
	"github.com/ragtune/ragtune/tune/model"
)

// Param is one trainable tensor with its host copy, gradient and AdamW
// moments. Grad, M and V are made on first use (ensureGrad,
// ensureMoments): the device optimizer keeps its own gradients and
// moments, and needs host moments only for checkpoints.
type Param struct {
	Name string
	T    bindings.Tensor
	Data []float32 // host copy of the values
	Grad []float32 // accumulated over micro-batches (host optimizer)
	M, V []float32 // AdamW moments
	// Decay says whether weight decay applies (not to biases and norms).
	Decay bool
	// LRScale multiplies the learning rate for this tensor (its parameter
	// group); 0 means 1. LoRA+ gives B a larger rate than A.
	LRScale float64
}

func newParam(name string, t bindings.Tensor, data []float32, decay bool) *Param {
	return &Param{Name: name, T: t, Data: data, Decay: decay}
}

func (p *Param) ensureGrad() {
	if p.Grad == nil {
		p.Grad = make([]float32, len(p.Data))
	}
}

func (p *Param) ensureMoments() {
	if p.M == nil {
		p.M, p.V = make([]float32, len(p.Data)), make([]float32, len(p.Data))
	}
}

// checkpointed is what a checkpoint holds of p, in its order: the values
// and the AdamW moments (zeros before the first step).
func (p *Param) checkpointed() [][]float32 {
	p.ensureMoments()
	return [][]float32{p.Data, p.M, p.V}
}

// upload copies the host values into backend memory.
func (p *Param) upload() error { return p.T.SetF32(p.Data) }

// LoRAConfig chooses where and how LoRA adapts a model.
type LoRAConfig struct {
	Rank    int
	Alpha   float32
	Dropout float32
	// Targets are layer kinds: attn_q, attn_k, attn_v, attn_output, ffn_up,
	// ffn_down, ffn_gate. Empty means every linear layer the model has
	// (QLoRA's finding, and ours on the demo's domain shift: far better
	// than attn_q and attn_v alone).
	Targets []string
	// Scaling is how alpha and rank give the update's scale: "standard"
	// (alpha/r, the LoRA paper) or "rslora" (alpha/√r, rank-stabilised:
	// larger ranks keep learning instead of being scaled down). "" is
	// standard.
	Scaling string `json:",omitempty"`
	// LRBRatio, above 0, is LoRA+: B learns at LRBRatio times the rate of A
	// (the paper suggests about 16). 1: one rate. Runs default to
	// DefaultLRBRatio; AttachLoRA alone takes 0 as 1.
	LRBRatio float64 `json:",omitempty"`
	// DoRA decomposes each adapted weight into a trained magnitude per
	// output unit and a LoRA-updated direction (model.LoRA.Magnitude).
	DoRA bool `json:",omitempty"`
}

// DefaultLRBRatio is LoRA+'s ratio that training uses unless told, chosen
// on the validation splits of two domain shifts (the demo's and
// scripts/bench-quality's; README): 8 was best or second there (share of
// full fine-tuning's gain 82% and 120%), where 16 gave 52% and 95%, 4 95%
// and 96%, and 1 (no LoRA+) 65% on the benchmark.
const DefaultLRBRatio = 8

// Scaling names.
const (
	ScalingStandard = "standard"
	ScalingRS       = "rslora"
)

// Scale is the factor on B·A: alpha/r, or alpha/√r for rsLoRA.
func (c LoRAConfig) Scale() (float32, error) {
	switch c.Scaling {
	case "", ScalingStandard:
		return c.Alpha / float32(c.Rank), nil
	case ScalingRS:
		return c.Alpha / float32(math.Sqrt(float64(c.Rank))), nil
	}
	return 0, fmt.Errorf("unknown LoRA scaling %q (want %s or %s)", c.Scaling, ScalingStandard, ScalingRS)
}

// ExportAlpha is the alpha to write in a GGUF adapter: llama.cpp scales by
// alpha/r, so rsLoRA's alpha/√r is stored as alpha·√r.
func (c LoRAConfig) ExportAlpha() float32 {
	if c.Scaling == ScalingRS {
		return c.Alpha * float32(math.Sqrt(float64(c.Rank)))
	}
	return c.Alpha
}

// TargetKinds lists the layer kinds LoRA can adapt.
var TargetKinds = []string{"attn_q", "attn_k", "attn_v", "attn_qkv", "attn_output", "ffn_gate", "ffn_up", "ffn_down"}

// LoRASet is the adapter being trained: its tensors live in their own
// context and buffer; the model's graphs pick them up through m.Adapters.
type LoRASet struct {
	Config LoRAConfig
	Params []*Param // A then B of each adapted layer, in model order
	ctx    *bindings.Context
	buf    *bindings.Buffer
	m      *model.Model
}

// AttachLoRA creates LoRA pairs on the target layers of m, initialised as in
// the LoRA paper (and PEFT): A uniform in ±1/√in (Kaiming-uniform with a=√5),
// B zero, so training starts from the base model exactly.
func AttachLoRA(m *model.Model, be *bindings.Backend, cfg LoRAConfig, rng *rand.Rand) (*LoRASet, error) {
	if cfg.Rank < 1 {
		return nil, fmt.Errorf("LoRA rank must be at least 1, got %d", cfg.Rank)
	}
	if cfg.Alpha == 0 {
		cfg.Alpha = float32(cfg.Rank)
	}
	scale, err := cfg.Scale()
	if err != nil {
		return nil, err
	}
	if cfg.LRBRatio < 0 {
		return nil, fmt.Errorf("LoRA+ learning-rate ratio of B must be positive, got %g", cfg.LRBRatio)
	}
	if len(cfg.Targets) == 0 {
		cfg.Targets = modelKinds(m)
	}
	want := map[string]bool{}
	for _, t := range cfg.Targets {
		ok := false
		for _, k := range TargetKinds {
			ok = ok || k == t
		}
		if !ok {
			return nil, fmt.Errorf("unknown LoRA target %q (want some of %v)", t, TargetKinds)
		}
		want[t] = true
	}
	var layers []model.Linear
	fused := false
	for _, l := range m.Linears() {
		fused = fused || kindOf(l.Name) == "attn_qkv"
		if want[kindOf(l.Name)] {
			layers = append(layers, l)
		}
	}
	if fused && (want["attn_q"] || want["attn_k"] || want["attn_v"]) {
		// llama.cpp applies an adapter to a whole tensor, and these files
		// have no separate q, k or v tensor to carry one.
		return nil, fmt.Errorf("the model fuses q, k and v into one attn_qkv matrix per layer: target attn_qkv instead of attn_q/attn_k/attn_v (one LoRA pair over the fused matrix, which llama.cpp applies)")
	}
	if len(layers) == 0 {
		return nil, fmt.Errorf("the model has no layer among the LoRA targets %v", cfg.Targets)
	}
	ctx, err := bindings.NewContext(3*len(layers)+4, 0, false)
	if err != nil {
		return nil, err
	}
	s := &LoRASet{Config: cfg, ctx: ctx, m: m}
	pairs := make([]*model.LoRA, len(layers))
	var mags []*Param
	for i, l := range layers {
		in, out := l.W.Ne()[0], l.W.Ne()[1]
		a := ctx.NewTensor(bindings.TypeF32, in, cfg.Rank).SetName(l.Name + ".lora_a")
		b := ctx.NewTensor(bindings.TypeF32, cfg.Rank, out).SetName(l.Name + ".lora_b")
		a.SetParam()
		b.SetParam()
		bound := 1 / math.Sqrt(float64(in))
		av := make([]float32, in*cfg.Rank)
		for j := range av {
			av[j] = float32((2*rng.Float64() - 1) * bound)
		}
		pb := newParam(b.Name(), b, make([]float32, cfg.Rank*out), true)
		pb.LRScale = cfg.LRBRatio
		s.Params = append(s.Params, newParam(a.Name(), a, av, true), pb)
		pairs[i] = &model.LoRA{A: a, B: b, Scale: scale, Dropout: cfg.Dropout}
		if cfg.DoRA {
			p, err := newMagnitude(ctx, l)
			if err != nil {
				ctx.Close()
				return nil, err
			}
			pairs[i].Magnitude = p.T
			mags = append(mags, p)
		}
	}
	// Magnitudes come after every A, B pair, which keeps the pairs' order.
	s.Params = append(s.Params, mags...)
	if err := ctx.Err(); err != nil {
		ctx.Close()
		return nil, err
	}
	if s.buf, err = be.AllocTensors(ctx); err != nil {
		ctx.Close()
		return nil, err
	}
	for _, p := range s.Params {
		if err := p.upload(); err != nil {
			s.Close()
			return nil, err
		}
	}
	for i, l := range layers {
		m.Adapters[l.Name] = pairs[i]
	}
	return s, nil
}

// modelKinds lists the target kinds m has: all its linear layers.
func modelKinds(m *model.Model) []string {
	has := map[string]bool{}
	for _, l := range m.Linears() {
		has[kindOf(l.Name)] = true
	}
	var out []string
	for _, k := range TargetKinds {
		if has[k] {
			out = append(out, k)
		}
	}
	return out
}

// kindOf turns "blk.3.attn_q.weight" into "attn_q".
func kindOf(name string) string {
	var layer int
	var kind string
	if _, err := fmt.Sscanf(name, "blk.%d.%s", &layer, &kind); err != nil {
		return ""
	}
	if len(kind) > len(".weight") {
		return kind[:len(kind)-len(".weight")]
	}
	return ""
}

// Close detaches the adapter from the model and frees it.
func (s *LoRASet) Close() {
	for _, p := range s.Params {
		if base, ok := strings.CutSuffix(p.Name, ".lora_a"); ok {
			delete(s.m.Adapters, base)
		}
	}
	s.buf.Close()
	s.ctx.Close()
}

// FullParams marks every weight of m trainable (full fine-tuning). The model
// must hold F32 weights: load it with model.LoadOptions{WidenF16: true} and
// not quantized.
func FullParams(m *model.Model) ([]*Param, error) {
	var out []*Param
	add := func(t bindings.Tensor, decay bool) error {
		if t.IsNil() {
			return nil
		}
		if t.Type() != bindings.TypeF32 {
			return fmt.Errorf("full fine-tuning needs f32 weights; %s is %s (quantized bases train with --method qlora)", t.Name(), t.Type())
		}
		t.SetParam()
		out = append(out, newParam(t.Name(), t, t.F32(), decay))
		return nil
	}
	var err error
	try := func(t bindings.Tensor, decay bool) {
		if err == nil {
			err = add(t, decay)
		}
	}
	try(m.TokEmbd, true)
	try(m.TypeEmbd, true)
	try(m.PosEmbd, true)
	try(m.EmbNorm.W, false)
	try(m.EmbNorm.B, false)
	for _, l := range m.Layers {
		for _, lin := range []model.Linear{l.QKV, l.Q, l.K, l.V, l.O, l.Gate, l.Up, l.Down} {
			try(lin.W, true)
			try(lin.B, false)
		}
		for _, n := range []model.Norm{l.AttnNorm, l.FFNNorm, l.QNorm, l.KNorm, l.PostAttnNorm, l.PostFFNNorm} {
			try(n.W, false)
			try(n.B, false)
		}
	}
	try(m.OutNorm.W, false)
	try(m.Dense2, true)
	try(m.Dense3, true)
	return out, err
}
