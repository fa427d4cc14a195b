// Package gguf reads and writes GGUF files (version 3, as ggml and llama.cpp
// use them) in pure Go.
//
// The reader is strict: it refuses everything ggml's own reader
// (ggml/src/gguf.cpp) refuses, and a little more where ggml would crash or
// misbehave (zero-sized dimensions, NUL bytes in names), so a file that Open
// accepts can be handed to llama.cpp. It never panics, checks every count
// and length against the bytes left before allocating (memory stays
// proportional to the file size), and every error names the byte offset and
// the key or tensor at fault. A file missing only the zero padding after its
// last tensor is accepted, as llama.cpp's model loader accepts it (ggml's
// own gguf_init_from_file with no_alloc=false would not); Builder always
// writes that padding. ValidateModel adds what llama.cpp's model loader
// checks for the bert and llama architectures.
//
// The writer (Builder) lays files out exactly as ggml's writer does: KVs in
// the order given, tensor data in tensor-info order with strict offsets, each
// tensor padded to the alignment, the last one included.
package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"os"
	"strings"
)

// Magic starts every GGUF file.
const Magic = "GGUF"

// Version is the GGUF version the writer produces.
const Version = 3

// DefaultAlignment applies when general.alignment is absent.
const DefaultAlignment = 32

// MaxNameLen is the longest tensor name ggml accepts (GGML_MAX_NAME minus the NUL).
const MaxNameLen = 63

// MaxDims is GGML_MAX_DIMS.
const MaxDims = 4

// KeyAlignment is the metadata key that sets the data alignment.
const KeyAlignment = "general.alignment"

// FormatError reports malformed GGUF content at a byte offset.
type FormatError struct {
	Path   string // file name, or "" for in-memory input
	Offset int64  // byte offset in the file where the problem was found
	Msg    string
}

func (e *FormatError) Error() string {
	p := e.Path
	if p == "" {
		p = "gguf"
	}
	return fmt.Sprintf("%s: byte %d: %s", p, e.Offset, e.Msg)
}

// TensorInfo describes one tensor of a file.
type TensorInfo struct {
	Name   string
	Type   TensorType
	Dims   []int64 // ne in ggml order: Dims[0] is the contiguous dimension
	Offset uint64  // from the start of the data section
	Size   int64   // bytes of data, without padding
}

// Elements is the number of elements (product of Dims).
func (t TensorInfo) Elements() int64 {
	n := int64(1)
	for _, d := range t.Dims {
		n *= d
	}
	return n
}

// Rows is the number of rows of Dims[0] elements.
func (t TensorInfo) Rows() int64 {
	if len(t.Dims) == 0 || t.Dims[0] == 0 {
		return 0
	}
	return t.Elements() / t.Dims[0]
}

// Shape renders Dims as "[384 1536]".
func (t TensorInfo) Shape() string { return fmt.Sprint(t.Dims) }

// File is a parsed GGUF file. Metadata and tensor infos are in memory; tensor
// data is read on demand from the underlying reader.
type File struct {
	Path       string
	Version    uint32
	Alignment  uint64
	DataOffset int64 // absolute offset of the data section
	KVs        []KV
	Tensors    []TensorInfo

	r       io.ReaderAt
	size    int64
	closer  io.Closer
	kvIndex map[string]int
	tIndex  map[string]int
}

// Open parses the GGUF file at path. Close the returned file when done.
func Open(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := fh.Stat()
	if err != nil {
		fh.Close()
		return nil, err
	}
	f, err := parse(fh, st.Size(), path)
	if err != nil {
		fh.Close()
		return nil, err
	}
	f.closer = fh
	return f, nil
}

// Read parses GGUF content of the given size from r (which must stay
// readable while the File is used).
func Read(r io.ReaderAt, size int64) (*File, error) { return parse(r, size, "") }

// Close releases the underlying file, if Open opened one.
func (f *File) Close() error {
	if f.closer == nil {
		return nil
	}
	err := f.closer.Close()
	f.closer = nil
	return err
}

// Size is the file size in bytes.
func (f *File) Size() int64 { return f.size }

// decoder reads little-endian values from a bounded stream and knows its
// position, so that every length can be checked against the bytes left
// before anything is allocated.
type decoder struct {
	r    *bufio.Reader
	pos  int64
	size int64
	path string
	buf  [8]byte
}

func (d *decoder) fail(at int64, format string, args ...any) error {
	return &FormatError{Path: d.path, Offset: at, Msg: fmt.Sprintf(format, args...)}
}

func (d *decoder) left() int64 { return d.size - d.pos }

// need fails unless n more bytes exist.
func (d *decoder) need(n uint64, what string) error {
	if n > uint64(d.left()) {
		return d.fail(d.pos, "%s needs %d bytes, only %d left in the file", what, n, d.left())
	}
	return nil
}

func (d *decoder) read(p []byte, what string) error {
	if err := d.need(uint64(len(p)), what); err != nil {
		return err
	}
	if _, err := io.ReadFull(d.r, p); err != nil {
		return d.fail(d.pos, "reading %s: %v", what, err)
	}
	d.pos += int64(len(p))
	return nil
}

func (d *decoder) u8(what string) (uint8, error) {
	err := d.read(d.buf[:1], what)
	return d.buf[0], err
}

func (d *decoder) u16(what string) (uint16, error) {
	err := d.read(d.buf[:2], what)
	return binary.LittleEndian.Uint16(d.buf[:2]), err
}

func (d *decoder) u32(what string) (uint32, error) {
	err := d.read(d.buf[:4], what)
	return binary.LittleEndian.Uint32(d.buf[:4]), err
}

func (d *decoder) u64(what string) (uint64, error) {
	err := d.read(d.buf[:8], what)
	return binary.LittleEndian.Uint64(d.buf[:8]), err
}

func (d *decoder) str(what string) (string, error) {
	at := d.pos
	n, err := d.u64(what + " length")
	if err != nil {
		return "", err
	}
	if n > uint64(d.left()) {
		return "", d.fail(at, "%s has length %d but only %d bytes are left in the file", what, n, d.left())
	}
	b := make([]byte, n)
	if err := d.read(b, what); err != nil {
		return "", err
	}
	return string(b), nil
}

func parse(r io.ReaderAt, size int64, path string) (*File, error) {
	bufSize := 1 << 16
	if size < int64(bufSize) {
		bufSize = max(int(size), 16)
	}
	d := &decoder{r: bufio.NewReaderSize(io.NewSectionReader(r, 0, size), bufSize), size: size, path: path}
	f := &File{Path: path, r: r, size: size, Alignment: DefaultAlignment}

	var magic [4]byte
	if err := d.read(magic[:], "magic"); err != nil {
		return nil, err
	}
	if string(magic[:]) != Magic {
		return nil, d.fail(0, "not a GGUF file: magic %q, expected %q", magic[:], Magic)
	}
	v, err := d.u32("version")
	if err != nil {
		return nil, err
	}
	switch {
	case v == 0:
		return nil, d.fail(4, "bad GGUF version 0")
	case v&0xFFFF == 0:
		return nil, d.fail(4, "GGUF version %#x looks byte-swapped: big-endian files are not supported", v)
	case v == 1:
		return nil, d.fail(4, "GGUF version 1 is no longer supported by ggml")
	case v > Version:
		return nil, d.fail(4, "GGUF version %d is newer than the supported version %d", v, Version)
	}
	f.Version = v

	nTensors, err := d.u64("tensor count")
	if err != nil {
		return nil, err
	}
	nKV, err := d.u64("metadata count")
	if err != nil {
		return nil, err
	}
	// Cheapest possible encodings: a KV is key length + type + 1 byte; a
	// tensor info is name length + n_dims + one dim + type + offset.
	const minKV, minTensor = 8 + 4 + 1, 8 + 4 + 8 + 4 + 8
	if nKV > uint64(d.left())/minKV {
		return nil, d.fail(16, "metadata count %d cannot fit in the %d bytes left", nKV, d.left())
	}
	if nTensors > uint64(d.left())/minTensor {
		return nil, d.fail(8, "tensor count %d cannot fit in the %d bytes left", nTensors, d.left())
	}
	if nKV*minKV+nTensors*minTensor > uint64(d.left()) {
		return nil, d.fail(8, "%d tensors and %d metadata entries cannot fit in the %d bytes left", nTensors, nKV, d.left())
	}

	f.KVs = make([]KV, 0, nKV)
	f.kvIndex = make(map[string]int, nKV)
	for i := uint64(0); i < nKV; i++ {
		at := d.pos
		key, err := d.str(fmt.Sprintf("key of metadata entry %d", i))
		if err != nil {
			return nil, err
		}
		if strings.IndexByte(key, 0) >= 0 {
			return nil, d.fail(at, "key %q of metadata entry %d contains a NUL byte", key, i)
		}
		if j, dup := f.kvIndex[key]; dup {
			return nil, d.fail(at, "duplicate key %q (entries %d and %d)", key, j, i)
		}
		val, err := d.value(key)
		if err != nil {
			return nil, err
		}
		f.kvIndex[key] = len(f.KVs)
		f.KVs = append(f.KVs, KV{Key: key, Value: val})
	}
	if i, ok := f.kvIndex[KeyAlignment]; ok {
		a, isU32 := f.KVs[i].Value.v.(uint32)
		if !isU32 {
			// ggml's gguf_get_val_u32 aborts the process here.
			return nil, d.fail(16, "key %q must be u32, found %s", KeyAlignment, f.KVs[i].Value.TypeName())
		}
		if a == 0 || a&(a-1) != 0 {
			return nil, d.fail(16, "key %q is %d, not a power of two", KeyAlignment, a)
		}
		f.Alignment = uint64(a)
	}

	f.Tensors = make([]TensorInfo, 0, nTensors)
	f.tIndex = make(map[string]int, nTensors)
	for i := uint64(0); i < nTensors; i++ {
		t, err := d.tensorInfo(i, f.tIndex)
		if err != nil {
			return nil, err
		}
		f.tIndex[t.Name] = len(f.Tensors)
		f.Tensors = append(f.Tensors, t)
	}

	dataOff, ok := padUp(uint64(d.pos), f.Alignment)
	if !ok || dataOff > math.MaxInt64 {
		return nil, d.fail(d.pos, "data section offset overflows")
	}
	f.DataOffset = int64(dataOff)
	var expect uint64
	for i, t := range f.Tensors {
		if t.Offset != expect {
			return nil, d.fail(f.DataOffset, "tensor %d %q has offset %d, expected %d (data must be contiguous in tensor order, each tensor padded to %d)",
				i, t.Name, t.Offset, expect, f.Alignment)
		}
		end := dataOff + t.Offset + uint64(t.Size)
		if end < dataOff || end > uint64(size) {
			return nil, d.fail(f.DataOffset+int64(t.Offset), "tensor %q (%d bytes at data offset %d) extends past the end of the file (%d bytes): truncated?",
				t.Name, t.Size, t.Offset, size)
		}
		padded, ok := padUp(uint64(t.Size), f.Alignment)
		if !ok || expect+padded < expect {
			return nil, d.fail(f.DataOffset, "tensor %q: data size overflows", t.Name)
		}
		expect += padded
	}
	return f, nil
}

func (d *decoder) tensorInfo(i uint64, seen map[string]int) (TensorInfo, error) {
	at := d.pos
	name, err := d.str(fmt.Sprintf("name of tensor %d", i))
	if err != nil {
		return TensorInfo{}, err
	}
	if len(name) > MaxNameLen {
		return TensorInfo{}, d.fail(at, "tensor %d name %.70q is %d bytes, ggml allows at most %d", i, name, len(name), MaxNameLen)
	}
	if strings.IndexByte(name, 0) >= 0 {
		return TensorInfo{}, d.fail(at, "tensor %d name %q contains a NUL byte", i, name)
	}
	if j, dup := seen[name]; dup {
		return TensorInfo{}, d.fail(at, "duplicate tensor name %q (tensors %d and %d)", name, j, i)
	}
	t := TensorInfo{Name: name}
	at = d.pos
	nDims, err := d.u32(fmt.Sprintf("tensor %q n_dims", name))
	if err != nil {
		return t, err
	}
	if nDims < 1 || nDims > MaxDims {
		return t, d.fail(at, "tensor %q has %d dimensions, must be 1..%d", name, nDims, MaxDims)
	}
	t.Dims = make([]int64, nDims)
	elems := uint64(1)
	for j := range t.Dims {
		at = d.pos
		v, err := d.u64(fmt.Sprintf("tensor %q dimension %d", name, j))
		if err != nil {
			return t, err
		}
		ne := int64(v)
		if ne <= 0 {
			// ggml divides by ne[1..3] when checking for overflow: zero crashes it.
			return t, d.fail(at, "tensor %q dimension %d is %d, must be positive", name, j, ne)
		}
		hi, lo := bits.Mul64(elems, uint64(ne))
		if hi != 0 || lo >= math.MaxInt64 {
			return t, d.fail(at, "tensor %q: element count of shape %v overflows int64", name, t.Dims[:j+1])
		}
		elems = lo
		t.Dims[j] = ne
	}
	at = d.pos
	typ, err := d.u32(fmt.Sprintf("tensor %q type", name))
	if err != nil {
		return t, err
	}
	t.Type = TensorType(typ)
	if !t.Type.Valid() {
		return t, d.fail(at, "tensor %q has invalid ggml type %d", name, typ)
	}
	bs := uint64(t.Type.BlockSize())
	if uint64(t.Dims[0])%bs != 0 {
		return t, d.fail(at, "tensor %q of type %s has %d elements per row, not a multiple of the block size %d", name, t.Type, t.Dims[0], bs)
	}
	hi, lo := bits.Mul64(elems/bs, uint64(t.Type.TypeSize()))
	if hi != 0 || lo > math.MaxInt64 {
		return t, d.fail(at, "tensor %q: byte size overflows", name)
	}
	t.Size = int64(lo)
	if t.Offset, err = d.u64(fmt.Sprintf("tensor %q offset", name)); err != nil {
		return t, err
	}
	return t, nil
}

// value reads a type tag and the value that follows.
func (d *decoder) value(key string) (Value, error) {
	at := d.pos
	tag, err := d.u32(fmt.Sprintf("type of key %q", key))
	if err != nil {
		return Value{}, err
	}
	t := ValueType(tag)
	if t != TypeArray {
		if t.scalarSize() == 0 && t != TypeString {
			return Value{}, d.fail(at, "key %q has invalid type %d", key, tag)
		}
		v, err := d.scalar(t, key)
		return Value{Type: t, v: v}, err
	}
	et, err := d.u32(fmt.Sprintf("array element type of key %q", key))
	if err != nil {
		return Value{}, err
	}
	elem := ValueType(et)
	if elem == TypeArray {
		return Value{}, d.fail(at+4, "key %q is an array of arrays, which ggml refuses", key)
	}
	if elem.scalarSize() == 0 && elem != TypeString {
		return Value{}, d.fail(at+4, "key %q has invalid array element type %d", key, et)
	}
	at = d.pos
	n, err := d.u64(fmt.Sprintf("array length of key %q", key))
	if err != nil {
		return Value{}, err
	}
	min := uint64(elem.scalarSize())
	if elem == TypeString {
		min = 8
	}
	if n > uint64(d.left())/min {
		return Value{}, d.fail(at, "key %q: array of %d %s elements cannot fit in the %d bytes left", key, n, elem, d.left())
	}
	v, err := d.array(elem, int(n), key)
	return Value{Type: TypeArray, ElemType: elem, v: v}, err
}

func (d *decoder) scalar(t ValueType, key string) (any, error) {
	what := fmt.Sprintf("value of key %q", key)
	switch t {
	case TypeUint8:
		return d.u8(what)
	case TypeInt8:
		v, err := d.u8(what)
		return int8(v), err
	case TypeBool:
		v, err := d.u8(what)
		return v != 0, err
	case TypeUint16:
		return d.u16(what)
	case TypeInt16:
		v, err := d.u16(what)
		return int16(v), err
	case TypeUint32:
		return d.u32(what)
	case TypeInt32:
		v, err := d.u32(what)
		return int32(v), err
	case TypeFloat32:
		v, err := d.u32(what)
		return math.Float32frombits(v), err
	case TypeUint64:
		return d.u64(what)
	case TypeInt64:
		v, err := d.u64(what)
		return int64(v), err
	case TypeFloat64:
		v, err := d.u64(what)
		return math.Float64frombits(v), err
	case TypeString:
		return d.str(what)
	}
	return nil, d.fail(d.pos, "key %q has invalid type %d", key, t)
}

// array reads n elements; n has been checked against the bytes left.
func (d *decoder) array(t ValueType, n int, key string) (any, error) {
	if t == TypeString {
		out := make([]string, n)
		for i := range out {
			s, err := d.str(fmt.Sprintf("element %d of key %q", i, key))
			if err != nil {
				return nil, err
			}
			out[i] = s
		}
		return out, nil
	}
	raw := make([]byte, n*t.scalarSize())
	if err := d.read(raw, fmt.Sprintf("array of key %q", key)); err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	switch t {
	case TypeUint8:
		return raw, nil
	case TypeInt8:
		return mapBytes(n, 1, raw, func(b []byte) int8 { return int8(b[0]) }), nil
	case TypeBool:
		return mapBytes(n, 1, raw, func(b []byte) bool { return b[0] != 0 }), nil
	case TypeUint16:
		return mapBytes(n, 2, raw, le.Uint16), nil
	case TypeInt16:
		return mapBytes(n, 2, raw, func(b []byte) int16 { return int16(le.Uint16(b)) }), nil
	case TypeUint32:
		return mapBytes(n, 4, raw, le.Uint32), nil
	case TypeInt32:
		return mapBytes(n, 4, raw, func(b []byte) int32 { return int32(le.Uint32(b)) }), nil
	case TypeFloat32:
		return mapBytes(n, 4, raw, func(b []byte) float32 { return math.Float32frombits(le.Uint32(b)) }), nil
	case TypeUint64:
		return mapBytes(n, 8, raw, le.Uint64), nil
	case TypeInt64:
		return mapBytes(n, 8, raw, func(b []byte) int64 { return int64(le.Uint64(b)) }), nil
	case TypeFloat64:
		return mapBytes(n, 8, raw, func(b []byte) float64 { return math.Float64frombits(le.Uint64(b)) }), nil
	}
	return nil, d.fail(d.pos, "key %q has invalid array element type %d", key, t)
}

func mapBytes[T any](n, size int, raw []byte, conv func([]byte) T) []T {
	out := make([]T, n)
	for i := range out {
		out[i] = conv(raw[i*size : (i+1)*size])
	}
	return out
}

// padUp rounds n up to a multiple of align (a power of two).
func padUp(n, align uint64) (uint64, bool) {
	r := (n + align - 1) &^ (align - 1)
	return r, r >= n
}

// Get returns the value of key.
func (f *File) Get(key string) (Value, bool) {
	i, ok := f.kvIndex[key]
	if !ok {
		return Value{}, false
	}
	return f.KVs[i].Value, true
}

// ErrWrongType is wrapped by typed getters when a key exists with another type.
var ErrWrongType = errors.New("wrong type")

// Lookup returns the scalar of key when it is stored with exactly the GGUF
// type of T (llama.cpp's loader is type-exact: a u32 key stored as i32 is an
// error there, and here). ok is false when the key is absent.
func Lookup[T Scalar](f *File, key string) (v T, ok bool, err error) {
	val, found := f.Get(key)
	if !found {
		return v, false, nil
	}
	v, isT := val.v.(T)
	if !isT || val.Type == TypeArray {
		return v, true, fmt.Errorf("%s: key %q has %w: %s, expected %s", f.name(), key, ErrWrongType, val.TypeName(), typeOf(any(v)))
	}
	return v, true, nil
}

// LookupArray returns the array of key when its elements have exactly the
// GGUF type of T.
func LookupArray[T Scalar](f *File, key string) (vs []T, ok bool, err error) {
	val, found := f.Get(key)
	if !found {
		return nil, false, nil
	}
	vs, isT := val.v.([]T)
	if !isT {
		var zero T
		return nil, true, fmt.Errorf("%s: key %q has %w: %s, expected array[%s]", f.name(), key, ErrWrongType, val.TypeName(), typeOf(any(zero)))
	}
	return vs, true, nil
}

func (f *File) name() string {
	if f.Path == "" {
		return "gguf"
	}
	return f.Path
}

// Uint32 returns a UINT32 key.
func (f *File) Uint32(key string) (uint32, bool, error) { return Lookup[uint32](f, key) }

// Uint64 returns a UINT64 key.
func (f *File) Uint64(key string) (uint64, bool, error) { return Lookup[uint64](f, key) }

// Float32 returns a FLOAT32 key.
func (f *File) Float32(key string) (float32, bool, error) { return Lookup[float32](f, key) }

// Bool returns a BOOL key.
func (f *File) Bool(key string) (bool, bool, error) { return Lookup[bool](f, key) }

// String returns a STRING key.
func (f *File) String(key string) (string, bool, error) { return Lookup[string](f, key) }

// Strings returns an array of STRING key.
func (f *File) Strings(key string) ([]string, bool, error) { return LookupArray[string](f, key) }

// Architecture is general.architecture, or "" when absent or not a string.
func (f *File) Architecture() string {
	s, _, _ := f.String("general.architecture")
	return s
}

// Tensor returns the info of the named tensor.
func (f *File) Tensor(name string) (TensorInfo, bool) {
	i, ok := f.tIndex[name]
	if !ok {
		return TensorInfo{}, false
	}
	return f.Tensors[i], true
}

// TensorData reads the raw bytes of the named tensor.
func (f *File) TensorData(name string) ([]byte, error) {
	t, ok := f.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("%s: no tensor %q", f.name(), name)
	}
	if f.r == nil {
		return nil, fmt.Errorf("%s: file is closed", f.name())
	}
	b := make([]byte, t.Size)
	off := f.DataOffset + int64(t.Offset)
	if _, err := f.r.ReadAt(b, off); err != nil {
		return nil, fmt.Errorf("%s: read tensor %q (%d bytes at byte %d): %w", f.name(), name, t.Size, off, err)
	}
	return b, nil
}
