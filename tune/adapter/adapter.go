// Package adapter reads and writes LoRA adapters in llama.cpp's GGUF
// adapter format (general.type=adapter, adapter.type=lora, f32
// adapter.lora.alpha, "<weight>.lora_a" ne [in, r] and "<weight>.lora_b"
// ne [r, out]) and merges them into base models.
package adapter

import (
	"fmt"
	"strings"

	"github.com/ragtune/ragtune/bindings"
	"github.com/ragtune/ragtune/bindings/gguf"
	"github.com/ragtune/ragtune/tune/model"
)

// Adapter is a LoRA adapter attached to a loaded model.
type Adapter struct {
	Alpha float32
	Rank  int
	m     *model.Model
	names []string
	ctx   *bindings.Context
	buf   *bindings.Buffer
}

// Load reads an adapter GGUF and attaches its pairs to m with the effective
// scale llama.cpp uses: userScale·alpha/rank (userScale alone when alpha is 0).
func Load(path string, m *model.Model, be *bindings.Backend, userScale float32) (*Adapter, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if typ, _, _ := f.String("general.type"); typ != "adapter" {
		return nil, fmt.Errorf("%s: general.type is %q, not \"adapter\"", path, typ)
	}
	if typ, _, _ := f.String("adapter.type"); typ != "lora" {
		return nil, fmt.Errorf("%s: adapter.type is %q, not \"lora\"", path, typ)
	}
	if arch := f.Architecture(); arch != string(m.Arch) {
		return nil, fmt.Errorf("%s: adapter is for arch %q, model is %q", path, arch, m.Arch)
	}
	alpha, _, err := f.Float32("adapter.lora.alpha")
	if err != nil {
		return nil, err
	}
	linears := map[string]model.Linear{}
	for _, l := range m.Linears() {
		linears[l.Name] = l
	}
	a := &Adapter{Alpha: alpha, m: m}
	a.ctx, err = bindings.NewContext(len(f.Tensors)+4, 0, false)
	if err != nil {
		return nil, err
	}
	type upload struct {
		t    bindings.Tensor
		name string
		info gguf.TensorInfo
	}
	var todo []upload
	pairs := map[string]*model.LoRA{}
	for _, info := range f.Tensors {
		base, half, ok := splitName(info.Name)
		if !ok {
			if strings.HasSuffix(info.Name, "_norm.weight") {
				continue // llama.cpp skips norm adapters too
			}
			a.Close()
			return nil, fmt.Errorf("%s: unexpected tensor %q in a LoRA adapter", path, info.Name)
		}
		lin, ok := linears[base]
		if !ok {
			a.Close()
			return nil, fmt.Errorf("%s: tensor %q adapts %q, which the model has no linear layer for", path, info.Name, base)
		}
		dims, ok := matrix(info.Dims)
		if !ok {
			a.Close()
			return nil, fmt.Errorf("%s: tensor %q has shape %v, want 2-D", path, info.Name, info.Dims)
		}
		info.Dims = dims
		t := a.ctx.NewTensor(bindings.TypeF32, int(info.Dims[0]), int(info.Dims[1])).SetName(info.Name)
		p := pairs[base]
		if p == nil {
			p = &model.LoRA{}
			pairs[base] = p
		}
		in, out := lin.W.Ne()[0], lin.W.Ne()[1]
		if half == "a" {
			if int(info.Dims[0]) != in {
				a.Close()
				return nil, fmt.Errorf("%s: %q has shape %v, want [%d, rank]", path, info.Name, info.Dims, in)
			}
			p.A = t
		} else {
			if int(info.Dims[1]) != out {
				a.Close()
				return nil, fmt.Errorf("%s: %q has shape %v, want [rank, %d]", path, info.Name, info.Dims, out)
			}
			p.B = t
		}
		todo = append(todo, upload{t, info.Name, info})
	}
	for base, p := range pairs {
		if p.A.IsNil() || p.B.IsNil() {
			a.Close()
			return nil, fmt.Errorf("%s: %q has only one of lora_a and lora_b", path, base)
		}
		r := p.A.Ne()[1]
		if p.B.Ne()[0] != r {
			a.Close()
			return nil, fmt.Errorf("%s: %q: lora_a rank %d differs from lora_b rank %d", path, base, r, p.B.Ne()[0])
		}
		a.Rank = r
		p.Scale = userScale
		if alpha != 0 {
			p.Scale = userScale * alpha / float32(r)
		}
	}
	if err := a.ctx.Err(); err != nil {
		a.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if a.buf, err = be.AllocTensors(a.ctx); err != nil {
		a.Close()
		return nil, err
	}
	for _, u := range todo {
		raw, err := f.TensorData(u.name)
		if err != nil {
			a.Close()
			return nil, err
		}
		vals, err := gguf.Decode(u.info.Type, raw, u.info.Elements())
		if err != nil {
			a.Close()
			return nil, fmt.Errorf("%s: tensor %q: %w", path, u.name, err)
		}
		if err := u.t.SetF32(vals); err != nil {
			a.Close()
			return nil, err
		}
	}
	for base, p := range pairs {
		m.Adapters[base] = p
		a.names = append(a.names, base)
	}
	return a, nil
}

// splitName turns "blk.0.attn_q.weight.lora_a" into ("blk.0.attn_q.weight", "a").
func splitName(name string) (base, half string, ok bool) {
	for _, h := range []string{"a", "b"} {
		if b, found := strings.CutSuffix(name, ".lora_"+h); found {
			return b, h, true
		}
	}
	return "", "", false
}

// Close detaches the adapter from its model and frees it.
func (a *Adapter) Close() {
	for _, n := range a.names {
		delete(a.m.Adapters, n)
	}
	a.names = nil
	a.buf.Close()
	a.ctx.Close()
}
