package train

import (
	"fmt"
	"strings"

	"github.com/ragtune/ragtune/bindings/gguf"
	"github.com/ragtune/ragtune/tune/adapter"
)

// export writes the trained result: the adapter (lora, qlora) in llama.cpp's
// format, or the whole fine-tuned model (full; and DoRA, merged, since a
// GGUF adapter cannot hold its magnitudes).
func (r *run) export(path string) error {
	if r.step != nil { // nil for an export of parameters already on the host
		r.step.SyncValues()
	}
	if r.cfg.Method == MethodFull {
		trained := map[string][]float32{}
		for _, p := range r.params {
			trained[p.Name] = p.Data
		}
		return r.exportModel(path, func(*gguf.File) (map[string][]float32, error) { return trained, nil }, nil)
	}
	if r.lora.Config.DoRA {
		return r.exportModel(path, r.doraWeights, map[string]string{"ragtune.method": "dora", "ragtune.targets": strings.Join(r.lora.Config.Targets, ",")})
	}
	var pairs []adapter.Pair
	for i := 0; i+1 < len(r.params); i += 2 {
		a, b := r.params[i], r.params[i+1]
		ne := a.T.Ne()
		in, rank, out := ne[0], ne[1], b.T.Ne()[1]
		pairs = append(pairs, adapter.Pair{
			Base: strings.TrimSuffix(a.Name, ".lora_a"),
			A:    a.Data, B: b.Data,
			In: in, Out: out, Rank: rank,
		})
	}
	meta := map[string]string{
		"ragtune.method":  r.cfg.Method,
		"ragtune.targets": strings.Join(r.lora.Config.Targets, ","),
	}
	if r.cfg.QuerySideOnly {
		meta["ragtune.query_side_only"] = "true"
	}
	if r.lora.Config.Scaling == ScalingRS {
		meta["ragtune.scaling"] = ScalingRS
	}
	return adapter.Save(path, string(r.m.Arch), r.lora.Config.ExportAlpha(), pairs, meta)
}

// exportModel writes the base model with the tensors that weights gives
// (by name, from the base file) replaced, as F32, and meta added.
func (r *run) exportModel(path string, weights func(*gguf.File) (map[string][]float32, error), meta map[string]string) error {
	f, err := gguf.Open(r.path)
	if err != nil {
		return err
	}
	defer f.Close()
	trained, err := weights(f)
	if err != nil {
		return err
	}
	b := gguf.NewBuilder()
	for _, kv := range f.KVs {
		if err := b.Set(kv.Key, kv.Value); err != nil {
			return err
		}
	}
	for k, v := range meta {
		if err := b.Set(k, gguf.Of(v)); err != nil {
			return err
		}
	}
	if err := b.Set("general.file_type", gguf.Of(uint32(0))); err != nil {
		return err
	}
	for _, t := range f.Tensors {
		info := t
		if vals, ok := trained[t.Name]; ok {
			err = b.AddTensor(t.Name, gguf.F32, info.Dims, gguf.EncodeF32(vals))
		} else {
			err = b.AddTensorFunc(t.Name, info.Type, info.Dims, func() ([]byte, error) { return f.TensorData(info.Name) })
		}
		if err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
	}
	return b.WriteFile(path)
}
