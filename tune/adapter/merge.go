package adapter

import (
	"fmt"
	"os"
	"strings"

	"github.com/ragtune/ragtune/bindings"
	"github.com/ragtune/ragtune/bindings/gguf"
)

// MergeTypes are the --type values Merge accepts ("" keeps the base's types).
var MergeTypes = []string{"f32", "f16", "q8_0", "q4_0", "q4_k"}

// fileTypes is general.file_type for each output type (llama_ftype).
var fileTypes = map[gguf.TensorType]gguf.FileType{
	gguf.F32: gguf.FileTypeAllF32, gguf.F16: gguf.FileTypeF16, gguf.Q8_0: gguf.FileTypeQ8_0,
	gguf.Q4_0: gguf.FileTypeQ4_0, gguf.Q4_K: gguf.FileTypeQ4_K_S,
}

// MergeOptions are Merge's choices.
type MergeOptions struct {
	// Type re-encodes the 2-D weights as one of MergeTypes; "" keeps every
	// tensor's type.
	Type string
	// Scale is the user's scale of the adapter (llama.cpp's --lora-scaled).
	Scale float32
	// Device is where the products run, a --device value ("" is the CPU);
	// Threads the CPU threads (0: ggml's default).
	Device  string
	Threads int
}

// MergeResult says what Merge wrote.
type MergeResult struct {
	Out       string
	Device    string         // the backend that computed the merged weights
	Merged    int            // adapted weights (W += scale·alpha/r·B·A)
	Copied    int            // tensors copied byte for byte
	Reencoded int            // tensors converted to another type
	Fallbacks []string       // weights that could not take the requested type (row length), kept as F16 or Q5_0
	Types     map[string]int // output tensor count by type name
	Bytes     int64          // size of the output file
}

// Merge writes outPath: the base model with every adapter pair folded into
// its weight, W += scale·(alpha/r)·B·A, computed on the device by the ggml
// graph llama.cpp's export-lora builds (quantized bases are dequantized
// first, on the host). All base metadata is kept.
//
// Type "" keeps every tensor's type, so a merged weight of a quantized
// base is quantized again to its own type. Otherwise ("f32", "f16", "q8_0",
// "q4_0", "q4_k") the 2-D weights are re-encoded as `model quantize` does
// (norms, position and token-type tables and 1-D tensors keep their type)
// and general.file_type is set. The file is written atomically.
func Merge(basePath, adapterPath, outPath string, o MergeOptions) (*MergeResult, error) {
	target, keep, err := parseMergeType(o.Type)
	if err != nil {
		return nil, err
	}
	base, err := gguf.Open(basePath)
	if err != nil {
		return nil, err
	}
	defer base.Close()
	ad, err := gguf.Open(adapterPath)
	if err != nil {
		return nil, err
	}
	defer ad.Close()
	info, err := inspect(ad)
	if err != nil {
		return nil, err
	}
	pairs, err := matchBase(base, info)
	if err != nil {
		return nil, err
	}

	be, err := bindings.OpenBackend(o.Device, o.Threads)
	if err != nil {
		return nil, err
	}
	defer be.Close()
	res := &MergeResult{Out: outPath, Device: be.Name(), Types: map[string]int{}}
	b := gguf.NewBuilder()
	for _, kv := range base.KVs {
		if err := b.Set(kv.Key, kv.Value); err != nil {
			return nil, fmt.Errorf("%s: %w", basePath, err)
		}
	}
	if !keep {
		b.MustSet("general.file_type", gguf.Of(uint32(fileTypes[target])))
	}
	for _, t := range base.Tensors {
		typ := t.Type
		if !keep && reencodable(t) {
			typ = fitType(target, t.Dims[0])
			if typ != target {
				res.Fallbacks = append(res.Fallbacks, fmt.Sprintf("%s: %s (row length %d)", t.Name, typ, t.Dims[0]))
			}
		}
		res.Types[typ.String()]++
		p, adapted := pairs[t.Name]
		var produce func() ([]byte, error)
		switch {
		case adapted:
			res.Merged++
			produce = func() ([]byte, error) { return mergeTensor(be, base, ad, t, p, p.Scale(info.Alpha, o.Scale), typ) }
		case typ == t.Type:
			res.Copied++
			produce = func() ([]byte, error) { return base.TensorData(t.Name) }
		default:
			res.Reencoded++
			produce = func() ([]byte, error) {
				w, err := readF32(base, t)
				if err != nil {
					return nil, err
				}
				return encode(w, t, typ)
			}
		}
		if err := b.AddTensorFunc(t.Name, typ, t.Dims, produce); err != nil {
			return nil, fmt.Errorf("%s: %w", basePath, err)
		}
	}
	if err := b.WriteFile(outPath); err != nil {
		return nil, err
	}
	if st, err := os.Stat(outPath); err == nil {
		res.Bytes = st.Size()
	}
	return res, nil
}

func parseMergeType(s string) (typ gguf.TensorType, keep bool, err error) {
	if s == "" {
		return 0, true, nil
	}
	for _, name := range MergeTypes {
		if strings.EqualFold(s, name) {
			typ, err := gguf.ParseTensorType(name)
			return typ, false, err
		}
	}
	return 0, false, fmt.Errorf("merge: unknown output type %q (want one of %s)", s, strings.Join(MergeTypes, ", "))
}

// matchBase checks every pair against the base model as llama.cpp does and
// refuses what export-lora refuses (quantized adapters).
func matchBase(base *gguf.File, info *Info) (map[string]PairInfo, error) {
	arch := base.Architecture()
	if arch == "" {
		return nil, fmt.Errorf("%s: general.architecture is missing: not a model", base.Path)
	}
	if info.Arch != arch {
		return nil, fmt.Errorf("%s: adapter is for architecture %q but %s is %q", info.Path, info.Arch, base.Path, arch)
	}
	out := map[string]PairInfo{}
	for _, p := range info.Pairs {
		for _, t := range []gguf.TensorInfo{p.A, p.B} {
			if t.Type != gguf.F32 && t.Type != gguf.F16 && t.Type != gguf.BF16 {
				return nil, fmt.Errorf("%s: tensor %q is %s; merging needs an F32, F16 or BF16 adapter", info.Path, t.Name, t.Type)
			}
		}
		w, ok := base.Tensor(p.Base)
		if !ok {
			return nil, fmt.Errorf("%s: tensor %q adapts %q, which %s does not have", info.Path, p.A.Name, p.Base, base.Path)
		}
		if len(w.Dims) != 2 || int(w.Dims[0]) != p.In || int(w.Dims[1]) != p.Out {
			want := fmt.Sprintf("lora_a [%d, r] and lora_b [r, %d]", w.Dims[0], dimOr1(w.Dims, 1))
			if p.isEmbedding() {
				want = fmt.Sprintf("lora_a [r, %d] and lora_b [r, %d]", dimOr1(w.Dims, 1), w.Dims[0])
			}
			return nil, fmt.Errorf("%s: %q is %s in %s, so the adapter needs %s, but has lora_a %s and lora_b %s",
				info.Path, p.Base, w.Shape(), base.Path, want, p.A.Shape(), p.B.Shape())
		}
		out[p.Base] = p
	}
	return out, nil
}

func dimOr1(d []int64, i int) int64 {
	if i < len(d) {
		return d[i]
	}
	return 1
}

// reencodable is llama.cpp quantize's choice of the tensors a --type
// applies to: 2-D weights except norms and the bert position and token-type
// tables.
func reencodable(t gguf.TensorInfo) bool {
	return len(t.Dims) >= 2 && strings.HasSuffix(t.Name, "weight") &&
		!strings.Contains(t.Name, "_norm.weight") &&
		t.Name != "position_embd.weight" && t.Name != "token_types.weight"
}

// fitType falls back, as llama.cpp quantize does, when the row length is
// not a multiple of the block size: q4_k to q5_0, anything else to f16.
func fitType(want gguf.TensorType, ne0 int64) gguf.TensorType {
	if ne0%int64(want.BlockSize()) == 0 {
		return want
	}
	if want == gguf.Q4_K && ne0%int64(gguf.Q5_0.BlockSize()) == 0 {
		return gguf.Q5_0
	}
	return gguf.F16
}

// mergeTensor computes W + s·ΔW on the backend and encodes it as typ.
func mergeTensor(be *bindings.Backend, base, ad *gguf.File, w gguf.TensorInfo, p PairInfo, s float32, typ gguf.TensorType) ([]byte, error) {
	W, err := readF32(base, w)
	if err != nil {
		return nil, err
	}
	A, err := ad.Float32s(p.A.Name)
	if err != nil {
		return nil, err
	}
	B, err := ad.Float32s(p.B.Name)
	if err != nil {
		return nil, err
	}
	merged, err := fold(be, W, A, B, p, s)
	if err != nil {
		return nil, fmt.Errorf("merging %s into %s on %s: %w", p.A.Name, w.Name, be.Name(), err)
	}
	return encode(merged, w, typ)
}

// fold is W + s·ΔW as one ggml graph on the backend: each element of ΔW
// is the length-r dot product rounded once, then scaled and added, as in
// export-lora. W ne [in, out]; ΔW = B·A with A ne [in, r], B ne [r, out].
// For a token embedding (A ne [r, V], B ne [r, E], W ne [E, V]) ΔW = A·Bᵀ:
// row v of the table gets Σ_k A[v][k]·B[e][k].
func fold(be *bindings.Backend, W, A, B []float32, p PairInfo, s float32) ([]float32, error) {
	ctx, err := bindings.NewContext(8, 8, false)
	if err != nil {
		return nil, err
	}
	defer ctx.Close()
	in, out, r := p.In, p.Out, p.Rank
	tw := ctx.NewTensor(bindings.TypeF32, in, out)
	var ta, tb, delta bindings.Tensor
	if p.isEmbedding() {
		ta, tb = ctx.NewTensor(bindings.TypeF32, r, out), ctx.NewTensor(bindings.TypeF32, r, in)
		delta = ctx.MulMat(tb, ta)
	} else {
		ta, tb = ctx.NewTensor(bindings.TypeF32, in, r), ctx.NewTensor(bindings.TypeF32, r, out)
		delta = ctx.MulMat(ctx.Cont(ctx.Transpose(ta)), tb)
	}
	merged := ctx.Add(tw, ctx.Scale(delta, s))
	g, err := ctx.NewGraph(8, false)
	if err == nil {
		err = g.Expand(merged)
	}
	if err != nil {
		return nil, err
	}
	buf, err := be.AllocTensors(ctx)
	if err != nil {
		return nil, err
	}
	defer buf.Close()
	for _, x := range []struct {
		t bindings.Tensor
		v []float32
	}{{tw, W}, {ta, A}, {tb, B}} {
		if err := x.t.SetF32(x.v); err != nil {
			return nil, err
		}
	}
	if err := be.Compute(g); err != nil {
		return nil, err
	}
	return merged.F32(), nil
}

// readF32 dequantizes a base tensor with ggml's own converters.
func readF32(f *gguf.File, t gguf.TensorInfo) ([]float32, error) {
	raw, err := f.TensorData(t.Name)
	if err != nil {
		return nil, err
	}
	vals, err := bindings.Dequantize(bindings.Type(t.Type), raw, int(t.Rows()), int(t.Dims[0]))
	if err != nil {
		return nil, fmt.Errorf("%s: tensor %q: %w", f.Path, t.Name, err)
	}
	return vals, nil
}

// encode stores values as typ with ggml's reference quantizers, so the
// bytes equal what llama.cpp's tools write.
func encode(vals []float32, t gguf.TensorInfo, typ gguf.TensorType) ([]byte, error) {
	data, err := bindings.Quantize(bindings.Type(typ), vals, int(t.Rows()), int(t.Dims[0]))
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	return data, nil
}
