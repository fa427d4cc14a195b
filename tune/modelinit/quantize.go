package modelinit

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/ragtune/ragtune/bindings/gguf"
)

// QuantizeTypes are the target types of Quantize.
var QuantizeTypes = []gguf.TensorType{gguf.F16, gguf.Q8_0, gguf.Q4_0, gguf.Q4_K}

// QuantizeReport says what Quantize did.
type QuantizeReport struct {
	In            string         `json:"in"`
	Out           string         `json:"out"`
	Type          string         `json:"type"`
	FileType      uint32         `json:"file_type"`
	Converted     int            `json:"converted"` // tensors re-encoded
	Kept          int            `json:"kept"`      // tensors copied unchanged
	Fallbacks     []string       `json:"fallbacks,omitempty"`
	TensorTypes   map[string]int `json:"tensor_types"`
	BytesIn       int64          `json:"bytes_in"`
	BytesOut      int64          `json:"bytes_out"`
	TensorBytesIn int64          `json:"tensor_bytes_in"`
}

// quantizable follows llama-quantize (src/llama-quant.cpp): only weights
// with at least two dimensions, never norms, and never bert's position and
// token-type tables (bert adds a view of token_types, which ggml cannot do
// on quantized data).
func quantizable(t gguf.TensorInfo) bool {
	return strings.HasSuffix(t.Name, "weight") && len(t.Dims) >= 2 &&
		!strings.Contains(t.Name, "_norm.weight") &&
		t.Name != "position_embd.weight" && t.Name != "token_types.weight"
}

// kQuantFallback is llama-quantize's replacement when a row does not fill
// whole 256-element blocks.
var kQuantFallback = map[gguf.TensorType]gguf.TensorType{gguf.Q4_K: gguf.Q5_0, gguf.Q6_K: gguf.Q8_0}

// Quantize re-encodes the weight matrices of the model at in as typ and
// writes the result atomically to out. Every matrix gets typ (no mixes, so
// QLoRA bases and parity tests see one type); for Q4_K a matrix whose rows
// are not a multiple of 256 falls back to Q5_0 as llama-quantize does, and
// is listed in the report. Other tensors and all metadata are copied;
// general.file_type is set. Already-quantized weights are refused:
// quantize from an F32, F16 or BF16 model.
func Quantize(in, out string, typ gguf.TensorType) (*QuantizeReport, error) {
	if !isQuantizeType(typ) {
		return nil, fmt.Errorf("--type %s: expected f16, q8_0, q4_0 or q4_k", typ)
	}
	f, err := gguf.Open(in)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if t, _, _ := f.String("general.type"); t == "adapter" {
		return nil, fmt.Errorf("%s is a LoRA adapter: quantize the base model instead", in)
	}
	if _, err := gguf.ValidateModel(f, ""); err != nil && !errors.Is(err, gguf.ErrUnsupportedArch) {
		return nil, err
	}
	rep := &QuantizeReport{In: in, Out: out, Type: typ.String(), FileType: uint32(FileTypeOf(typ)), TensorTypes: map[string]int{}, BytesIn: f.Size()}
	b := gguf.NewBuilder()
	for _, kv := range f.KVs {
		if err := b.Set(kv.Key, kv.Value); err != nil {
			return nil, err
		}
	}
	b.MustSet("general.file_type", gguf.Of(rep.FileType))
	if typ.Quantized() {
		b.MustSet("general.quantization_version", gguf.Of(uint32(quantizationVersion)))
	}
	for _, t := range f.Tensors {
		rep.TensorBytesIn += t.Size
		target := t.Type
		if quantizable(t) {
			if target, err = targetType(t, typ); err != nil {
				return nil, fmt.Errorf("%s: %w", in, err)
			}
			if target != typ {
				rep.Fallbacks = append(rep.Fallbacks, fmt.Sprintf("%s: %s (rows of %d)", t.Name, target, t.Dims[0]))
			}
		}
		rep.TensorTypes[target.String()]++
		if target == t.Type {
			rep.Kept++
			err = b.AddTensorFunc(t.Name, t.Type, t.Dims, func() ([]byte, error) { return f.TensorData(t.Name) })
		} else {
			rep.Converted++
			err = b.AddTensorFunc(t.Name, target, t.Dims, func() ([]byte, error) {
				v, err := f.Float32s(t.Name)
				if err != nil {
					return nil, err
				}
				return Encode(target, v, int(t.Rows()), int(t.Dims[0]))
			})
		}
		if err != nil {
			return nil, err
		}
	}
	if err := b.WriteFile(out); err != nil {
		return nil, err
	}
	if st, err := os.Stat(out); err == nil {
		rep.BytesOut = st.Size()
	}
	sort.Strings(rep.Fallbacks)
	return rep, nil
}

func isQuantizeType(t gguf.TensorType) bool {
	for _, q := range QuantizeTypes {
		if q == t {
			return true
		}
	}
	return false
}

// targetType picks the type of one quantizable tensor.
func targetType(t gguf.TensorInfo, typ gguf.TensorType) (gguf.TensorType, error) {
	switch t.Type {
	case gguf.F32, gguf.F16, gguf.BF16:
	default:
		return 0, fmt.Errorf("tensor %q is already %s: quantize from an f32, f16 or bf16 model", t.Name, t.Type)
	}
	target := typ
	if t.Dims[0]%int64(target.BlockSize()) != 0 {
		if fb, ok := kQuantFallback[target]; ok {
			target = fb
		}
	}
	if bs := int64(target.BlockSize()); t.Dims[0]%bs != 0 {
		return 0, fmt.Errorf("tensor %q has rows of %d elements, not a multiple of the %s block size %d", t.Name, t.Dims[0], target, bs)
	}
	return target, nil
}
