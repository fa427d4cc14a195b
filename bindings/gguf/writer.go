package gguf

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/ragtune/ragtune/bindings/safefile"
)

// Builder collects metadata and tensors and writes them as a GGUF v3 file
// laid out as ggml's writer lays it out: KVs in the order set, tensor infos
// and data in the order added, offsets strictly cumulative, every tensor's
// data (the last one too) padded with zeros to the alignment.
//
// Tensor data may be given as bytes or as a function that produces them at
// write time, so that large models can be re-encoded one tensor at a time.
type Builder struct {
	kvs     []KV
	kvIndex map[string]int
	tensors []builderTensor
	tIndex  map[string]int
	align   uint64
}

type builderTensor struct {
	info TensorInfo
	data func() ([]byte, error)
}

// NewBuilder returns an empty builder with the default alignment (32).
func NewBuilder() *Builder {
	return &Builder{kvIndex: map[string]int{}, tIndex: map[string]int{}, align: DefaultAlignment}
}

// Set stores a metadata value. A key set again keeps its place and gets the
// new value. Setting general.alignment (which must be a power-of-two u32)
// also changes the layout, so the file is padded as it declares.
func (b *Builder) Set(key string, v Value) error {
	if strings.IndexByte(key, 0) >= 0 {
		return fmt.Errorf("gguf: key %q contains a NUL byte", key)
	}
	if !v.valid() {
		return fmt.Errorf("gguf: key %q: invalid value (make values with Of or ArrayOf)", key)
	}
	if key == KeyAlignment {
		a, ok := v.v.(uint32)
		if !ok || v.Type != TypeUint32 || a == 0 || a&(a-1) != 0 {
			return fmt.Errorf("gguf: %s must be a power-of-two u32, got %s %v", key, v.TypeName(), v)
		}
		b.align = uint64(a)
	}
	if i, ok := b.kvIndex[key]; ok {
		b.kvs[i].Value = v
		return nil
	}
	b.kvIndex[key] = len(b.kvs)
	b.kvs = append(b.kvs, KV{Key: key, Value: v})
	return nil
}

// MustSet is Set for keys and values known to be valid (the program's own
// constants); it panics on a programming error.
func (b *Builder) MustSet(key string, v Value) {
	if err := b.Set(key, v); err != nil {
		panic(err)
	}
}

// Delete removes a key if present.
func (b *Builder) Delete(key string) {
	i, ok := b.kvIndex[key]
	if !ok {
		return
	}
	b.kvs = append(b.kvs[:i], b.kvs[i+1:]...)
	delete(b.kvIndex, key)
	for j := i; j < len(b.kvs); j++ {
		b.kvIndex[b.kvs[j].Key] = j
	}
	if key == KeyAlignment {
		b.align = DefaultAlignment
	}
}

// KVs returns the metadata in write order.
func (b *Builder) KVs() []KV { return b.kvs }

// AddTensor adds a tensor with its encoded data. dims are in ggml order.
func (b *Builder) AddTensor(name string, typ TensorType, dims []int64, data []byte) error {
	info, err := b.check(name, typ, dims)
	if err != nil {
		return err
	}
	if int64(len(data)) != info.Size {
		return fmt.Errorf("gguf: tensor %q (%s %v) needs %d bytes of data, got %d", name, typ, dims, info.Size, len(data))
	}
	b.add(info, func() ([]byte, error) { return data, nil })
	return nil
}

// AddTensorFunc adds a tensor whose data is produced by produce when the
// file is written; it must return exactly the tensor's byte size.
func (b *Builder) AddTensorFunc(name string, typ TensorType, dims []int64, produce func() ([]byte, error)) error {
	info, err := b.check(name, typ, dims)
	if err != nil {
		return err
	}
	b.add(info, produce)
	return nil
}

func (b *Builder) add(info TensorInfo, data func() ([]byte, error)) {
	b.tIndex[info.Name] = len(b.tensors)
	b.tensors = append(b.tensors, builderTensor{info: info, data: data})
}

// check validates a tensor as the reader would and computes its size.
// Trailing dimensions of size 1 are dropped, as ggml's writer does.
func (b *Builder) check(name string, typ TensorType, dims []int64) (TensorInfo, error) {
	if len(name) > MaxNameLen || strings.IndexByte(name, 0) >= 0 {
		return TensorInfo{}, fmt.Errorf("gguf: tensor name %q must be at most %d bytes without NUL", name, MaxNameLen)
	}
	if _, dup := b.tIndex[name]; dup {
		return TensorInfo{}, fmt.Errorf("gguf: duplicate tensor %q", name)
	}
	if !typ.Valid() {
		return TensorInfo{}, fmt.Errorf("gguf: tensor %q: invalid type %d", name, uint32(typ))
	}
	if len(dims) < 1 || len(dims) > MaxDims {
		return TensorInfo{}, fmt.Errorf("gguf: tensor %q has %d dimensions, must be 1..%d", name, len(dims), MaxDims)
	}
	n := len(dims)
	for n > 1 && dims[n-1] == 1 {
		n--
	}
	d := append([]int64(nil), dims[:n]...)
	elems := int64(1)
	for i, v := range d {
		if v <= 0 || elems > math.MaxInt64/v {
			return TensorInfo{}, fmt.Errorf("gguf: tensor %q: dimension %d is %d (shape %v)", name, i, v, dims)
		}
		elems *= v
	}
	bs := int64(typ.BlockSize())
	if d[0]%bs != 0 {
		return TensorInfo{}, fmt.Errorf("gguf: tensor %q: row length %d is not a multiple of the %s block size %d", name, d[0], typ, bs)
	}
	if elems/bs > math.MaxInt64/int64(typ.TypeSize()) {
		return TensorInfo{}, fmt.Errorf("gguf: tensor %q: byte size overflows (shape %v)", name, dims)
	}
	return TensorInfo{Name: name, Type: typ, Dims: d, Size: elems / bs * int64(typ.TypeSize())}, nil
}

// Tensors returns the tensor infos in write order, with offsets as written.
func (b *Builder) Tensors() []TensorInfo {
	out := make([]TensorInfo, len(b.tensors))
	var off uint64
	for i, t := range b.tensors {
		out[i] = t.info
		out[i].Offset = off
		p, _ := padUp(uint64(t.info.Size), b.align)
		off += p
	}
	return out
}

// WriteFile writes the file atomically: a reader never sees a partial file.
func (b *Builder) WriteFile(path string) error {
	return safefile.Write(path, func(w io.Writer) error {
		_, err := b.WriteTo(w)
		if err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		return nil
	})
}

// WriteTo writes the whole file to w.
func (b *Builder) WriteTo(w io.Writer) (int64, error) {
	cw := &countWriter{w: bufio.NewWriterSize(w, 1<<16)}
	e := encoder{w: cw}
	e.bytes([]byte(Magic))
	e.u32(Version)
	e.u64(uint64(len(b.tensors)))
	e.u64(uint64(len(b.kvs)))
	for _, kv := range b.kvs {
		e.str(kv.Key)
		e.value(kv.Value)
	}
	infos := b.Tensors()
	for _, t := range infos {
		e.str(t.Name)
		e.u32(uint32(len(t.Dims)))
		for _, d := range t.Dims {
			e.u64(uint64(d))
		}
		e.u32(uint32(t.Type))
		e.u64(t.Offset)
	}
	e.pad(b.align)
	for _, t := range b.tensors {
		if e.err != nil {
			break
		}
		data, err := t.data()
		if err != nil {
			return cw.n, fmt.Errorf("tensor %q: %w", t.info.Name, err)
		}
		if int64(len(data)) != t.info.Size {
			return cw.n, fmt.Errorf("tensor %q: produced %d bytes, expected %d", t.info.Name, len(data), t.info.Size)
		}
		e.bytes(data)
		e.pad(b.align)
	}
	if e.err == nil {
		e.err = cw.w.(*bufio.Writer).Flush()
	}
	return cw.n, e.err
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// encoder writes little-endian values and remembers the first error.
type encoder struct {
	w   *countWriter
	err error
	buf [8]byte
}

func (e *encoder) bytes(p []byte) {
	if e.err == nil {
		_, e.err = e.w.Write(p)
	}
}

func (e *encoder) u8(v uint8) { e.buf[0] = v; e.bytes(e.buf[:1]) }
func (e *encoder) u16(v uint16) {
	binary.LittleEndian.PutUint16(e.buf[:], v)
	e.bytes(e.buf[:2])
}
func (e *encoder) u32(v uint32) {
	binary.LittleEndian.PutUint32(e.buf[:], v)
	e.bytes(e.buf[:4])
}
func (e *encoder) u64(v uint64) {
	binary.LittleEndian.PutUint64(e.buf[:], v)
	e.bytes(e.buf[:8])
}
func (e *encoder) str(s string) { e.u64(uint64(len(s))); e.bytes([]byte(s)) }

func (e *encoder) pad(align uint64) {
	n := uint64(e.w.n)
	p, _ := padUp(n, align)
	if p > n {
		e.bytes(make([]byte, p-n))
	}
}

func (e *encoder) value(v Value) {
	e.u32(uint32(v.Type))
	if v.Type != TypeArray {
		e.scalar(v.v)
		return
	}
	e.u32(uint32(v.ElemType))
	e.u64(uint64(v.Len()))
	switch a := v.v.(type) {
	case []uint8:
		e.bytes(a)
	case []int8:
		each(e, a)
	case []uint16:
		each(e, a)
	case []int16:
		each(e, a)
	case []uint32:
		each(e, a)
	case []int32:
		each(e, a)
	case []float32:
		each(e, a)
	case []bool:
		each(e, a)
	case []string:
		each(e, a)
	case []uint64:
		each(e, a)
	case []int64:
		each(e, a)
	case []float64:
		each(e, a)
	}
}

func each[T any](e *encoder, a []T) {
	for _, x := range a {
		e.scalar(x)
	}
}

func (e *encoder) scalar(v any) {
	switch x := v.(type) {
	case uint8:
		e.u8(x)
	case int8:
		e.u8(uint8(x))
	case bool:
		if x {
			e.u8(1)
		} else {
			e.u8(0)
		}
	case uint16:
		e.u16(x)
	case int16:
		e.u16(uint16(x))
	case uint32:
		e.u32(x)
	case int32:
		e.u32(uint32(x))
	case float32:
		e.u32(math.Float32bits(x))
	case uint64:
		e.u64(x)
	case int64:
		e.u64(uint64(x))
	case float64:
		e.u64(math.Float64bits(x))
	case string:
		e.str(x)
	}
}
