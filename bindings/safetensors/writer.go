package safetensors

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"

	"github.com/ragtune/ragtune/bindings/gguf"
	"github.com/ragtune/ragtune/bindings/safefile"
)

// Builder plans a safetensors file from declared dtypes and shapes, so the
// header is written first and each tensor's bytes are produced only when its
// turn comes: a large model is written one tensor at a time.
type Builder struct {
	tensors  []builderTensor
	names    map[string]bool
	metadata map[string]string
	size     int64
}

type builderTensor struct {
	info    TensorInfo
	produce func() ([]byte, error)
}

// NewBuilder returns an empty builder.
func NewBuilder() *Builder { return &Builder{names: map[string]bool{}} }

// SetMetadata adds a __metadata__ entry (transformers writes "format": "pt").
func (b *Builder) SetMetadata(key, value string) {
	if b.metadata == nil {
		b.metadata = map[string]string{}
	}
	b.metadata[key] = value
}

// Add plans a tensor (shape row-major) whose bytes produce returns at write
// time; they must be exactly the declared size.
func (b *Builder) Add(name string, dtype DType, shape []int64, produce func() ([]byte, error)) error {
	if name == "" || name == "__metadata__" || b.names[name] {
		return fmt.Errorf("safetensors: tensor name %q is empty, reserved or a duplicate", name)
	}
	if dtype.Size() == 0 {
		return fmt.Errorf("safetensors: tensor %q: unknown dtype %q", name, dtype)
	}
	n := int64(1)
	for _, d := range shape {
		if d < 0 || (d > 0 && n > math.MaxInt64/d) {
			return fmt.Errorf("safetensors: tensor %q: bad shape %v", name, shape)
		}
		n *= d
	}
	size := n * int64(dtype.Size())
	b.names[name] = true
	b.tensors = append(b.tensors, builderTensor{
		info:    TensorInfo{Name: name, DType: dtype, Shape: append([]int64{}, shape...), Begin: b.size, End: b.size + size},
		produce: produce,
	})
	b.size += size
	return nil
}

// AddFloat32s plans a tensor stored as dtype (F32, F16 or BF16) from values
// already in memory.
func (b *Builder) AddFloat32s(name string, dtype DType, shape []int64, v []float32) error {
	return b.Add(name, dtype, shape, func() ([]byte, error) { return FromFloat32(dtype, v) })
}

// FromFloat32 encodes floats as F32, F16 (round to nearest even) or BF16
// (round to nearest even, as PyTorch's conversion does).
func FromFloat32(dtype DType, v []float32) ([]byte, error) {
	switch dtype {
	case F32:
		return gguf.EncodeF32(v), nil
	case F16:
		return gguf.EncodeF16(v), nil
	case BF16:
		out := make([]byte, 2*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint16(out[2*i:], Float32ToBF16(x))
		}
		return out, nil
	}
	return nil, fmt.Errorf("safetensors: cannot encode floats as %s", dtype)
}

// Float32ToBF16 rounds to bfloat16, nearest even; NaN stays a quiet NaN.
func Float32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7FFFFFFF > 0x7F800000 {
		return uint16(b>>16) | 0x40
	}
	return uint16((b + 0x7FFF + (b>>16)&1) >> 16)
}

// header is the JSON header, padded with spaces to a multiple of 8 bytes
// (what the reference writer does, so the data section stays aligned).
func (b *Builder) header() ([]byte, error) {
	m := map[string]any{}
	if len(b.metadata) > 0 {
		m["__metadata__"] = b.metadata
	}
	for _, t := range b.tensors {
		shape := t.info.Shape
		if shape == nil {
			shape = []int64{}
		}
		m[t.info.Name] = headerEntry{DType: t.info.DType, Shape: shape, DataOffsets: []uint64{uint64(t.info.Begin), uint64(t.info.End)}}
	}
	h, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	for len(h)%8 != 0 {
		h = append(h, ' ')
	}
	return h, nil
}

// WriteTo writes the header, then each tensor's bytes in the order added.
func (b *Builder) WriteTo(w io.Writer) (int64, error) {
	h, err := b.header()
	if err != nil {
		return 0, err
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	var n int64
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(h)))
	for _, p := range [][]byte{lenBuf[:], h} {
		k, err := bw.Write(p)
		n += int64(k)
		if err != nil {
			return n, err
		}
	}
	for _, t := range b.tensors {
		data, err := t.produce()
		if err != nil {
			return n, fmt.Errorf("tensor %q: %w", t.info.Name, err)
		}
		if want := t.info.End - t.info.Begin; int64(len(data)) != want {
			return n, fmt.Errorf("tensor %q: produced %d bytes, declared %d", t.info.Name, len(data), want)
		}
		k, err := bw.Write(data)
		n += int64(k)
		if err != nil {
			return n, err
		}
	}
	return n, bw.Flush()
}

// WriteFile writes the file atomically: a reader never sees a partial file,
// and a failed write leaves an existing file as it was.
func (b *Builder) WriteFile(path string) error {
	return safefile.Write(path, func(w io.Writer) error {
		if _, err := b.WriteTo(w); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		return nil
	})
}
