// Package safetensors reads and writes Hugging Face's safetensors files (pure
// Go): an 8-byte little-endian header length, a JSON header naming each
// tensor's dtype, shape and byte range, then the tensors' bytes. Readers
// check every length and offset against the file before allocating and read
// one tensor at a time, so a 7B checkpoint never has to fit in memory; a
// sharded checkpoint is opened through its model.safetensors.index.json.
package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"

	"github.com/ragtune/ragtune/bindings/gguf"
)

// MaxHeader is the largest JSON header accepted (the reference
// implementation's limit), so a corrupt length cannot make us allocate more.
const MaxHeader = 100 << 20

// DType is a tensor element type as the header spells it.
type DType string

// The dtypes this package knows the size of. Float32s converts the floating
// ones; the integer ones can be read as bytes (position_ids and the like).
const (
	F64  DType = "F64"
	F32  DType = "F32"
	F16  DType = "F16"
	BF16 DType = "BF16"
	I64  DType = "I64"
	I32  DType = "I32"
	I16  DType = "I16"
	I8   DType = "I8"
	U8   DType = "U8"
	Bool DType = "BOOL"
)

// Size is the byte size of one element, 0 for an unknown dtype.
func (d DType) Size() int {
	switch d {
	case F64, I64:
		return 8
	case F32, I32:
		return 4
	case F16, BF16, I16:
		return 2
	case I8, U8, Bool:
		return 1
	}
	return 0
}

// Float reports whether Float32s can convert the dtype.
func (d DType) Float() bool { return d == F64 || d == F32 || d == F16 || d == BF16 }

// TensorInfo describes one tensor. Shape is row-major (PyTorch's order);
// Begin and End are byte offsets in the data section.
type TensorInfo struct {
	Name       string
	DType      DType
	Shape      []int64
	Begin, End int64
}

// Elements is the product of the shape (1 for a scalar).
func (t TensorInfo) Elements() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// File is one open safetensors file. Tensors are in data order.
type File struct {
	Path     string
	Tensors  []TensorInfo
	Metadata map[string]string

	r         io.ReaderAt
	closer    io.Closer
	dataStart int64
	index     map[string]int
}

// Open reads the header of the file at path; tensor data is read on demand.
func Open(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	sf, err := read(f, st.Size(), path)
	if err != nil {
		f.Close()
		return nil, err
	}
	sf.closer = f
	return sf, nil
}

// Read parses a safetensors file held by r (size bytes long).
func Read(r io.ReaderAt, size int64) (*File, error) { return read(r, size, "safetensors") }

// Close releases the file.
func (f *File) Close() error {
	if f.closer == nil {
		return nil
	}
	err := f.closer.Close()
	f.closer = nil
	return err
}

// headerEntry is one value of the JSON header.
type headerEntry struct {
	DType       DType    `json:"dtype"`
	Shape       []int64  `json:"shape"`
	DataOffsets []uint64 `json:"data_offsets"`
}

func read(r io.ReaderAt, size int64, path string) (*File, error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...))
	}
	if size < 8 {
		return nil, fail("%d bytes, too short for a safetensors file (8-byte header length first)", size)
	}
	var lenBuf [8]byte
	if _, err := r.ReadAt(lenBuf[:], 0); err != nil {
		return nil, fail("read header length: %v", err)
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if n > MaxHeader || n > uint64(size-8) {
		return nil, fail("header length %d does not fit in the file (%d bytes) or exceeds %d", n, size, MaxHeader)
	}
	head := make([]byte, n)
	if _, err := r.ReadAt(head, 8); err != nil {
		return nil, fail("read header: %v", err)
	}
	if len(head) == 0 || head[0] != '{' {
		return nil, fail("header is not a JSON object")
	}
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(head))
	if err := dec.Decode(&raw); err != nil {
		return nil, fail("header JSON: %v", err)
	}
	// The writer pads the header with spaces; anything else after it is corrupt.
	if rest := bytes.TrimRight(head[dec.InputOffset():], " \x00"); len(rest) > 0 {
		return nil, fail("header has trailing bytes after the JSON object")
	}
	dataStart := int64(8 + n)
	dataLen := size - dataStart
	f := &File{Path: path, r: r, dataStart: dataStart, index: map[string]int{}}
	for name, msg := range raw {
		if name == "__metadata__" {
			if err := json.Unmarshal(msg, &f.Metadata); err != nil {
				return nil, fail("__metadata__ must map strings to strings: %v", err)
			}
			continue
		}
		var e headerEntry
		d := json.NewDecoder(bytes.NewReader(msg))
		d.DisallowUnknownFields()
		if err := d.Decode(&e); err != nil {
			return nil, fail("tensor %q: %v", name, err)
		}
		t, err := checkEntry(name, e, dataLen)
		if err != nil {
			return nil, fail("%v", err)
		}
		f.Tensors = append(f.Tensors, t)
	}
	sort.Slice(f.Tensors, func(i, j int) bool {
		a, b := f.Tensors[i], f.Tensors[j]
		if a.Begin != b.Begin {
			return a.Begin < b.Begin
		}
		return a.Name < b.Name
	})
	// As the reference reader: tensors tile the data section, no gaps or overlaps.
	var at int64
	for i, t := range f.Tensors {
		if t.Begin != at {
			return nil, fail("tensor %q starts at byte %d of the data, expected %d (gap or overlap)", t.Name, t.Begin, at)
		}
		at = t.End
		f.index[t.Name] = i
	}
	if at != dataLen {
		return nil, fail("tensors cover %d bytes of data but the file has %d after the header", at, dataLen)
	}
	return f, nil
}

// checkEntry validates one header entry against the data section's length.
func checkEntry(name string, e headerEntry, dataLen int64) (TensorInfo, error) {
	if e.DType.Size() == 0 {
		return TensorInfo{}, fmt.Errorf("tensor %q: unknown dtype %q", name, e.DType)
	}
	if len(e.DataOffsets) != 2 {
		return TensorInfo{}, fmt.Errorf("tensor %q: data_offsets must be [begin, end], got %v", name, e.DataOffsets)
	}
	begin, end := e.DataOffsets[0], e.DataOffsets[1]
	if begin > end || end > uint64(dataLen) {
		return TensorInfo{}, fmt.Errorf("tensor %q: data_offsets [%d, %d] outside the %d data bytes", name, begin, end, dataLen)
	}
	elems := uint64(1)
	for _, d := range e.Shape {
		if d < 0 || (d > 0 && elems > math.MaxInt64/uint64(d)) {
			return TensorInfo{}, fmt.Errorf("tensor %q: bad shape %v", name, e.Shape)
		}
		elems *= uint64(d)
	}
	if elems > math.MaxInt64/uint64(e.DType.Size()) || elems*uint64(e.DType.Size()) != end-begin {
		return TensorInfo{}, fmt.Errorf("tensor %q: shape %v of %s needs %d bytes, data_offsets give %d", name, e.Shape, e.DType, elems*uint64(e.DType.Size()), end-begin)
	}
	return TensorInfo{Name: name, DType: e.DType, Shape: append([]int64{}, e.Shape...), Begin: int64(begin), End: int64(end)}, nil
}

// Tensor looks a tensor up by name.
func (f *File) Tensor(name string) (TensorInfo, bool) {
	i, ok := f.index[name]
	if !ok {
		return TensorInfo{}, false
	}
	return f.Tensors[i], true
}

// Data reads one tensor's raw little-endian bytes.
func (f *File) Data(name string) ([]byte, error) {
	t, ok := f.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("%s: no tensor %q", f.Path, name)
	}
	buf := make([]byte, t.End-t.Begin)
	if _, err := f.r.ReadAt(buf, f.dataStart+t.Begin); err != nil && !(err == io.EOF && len(buf) == 0) {
		return nil, fmt.Errorf("%s: read tensor %q: %w", f.Path, name, err)
	}
	return buf, nil
}

// Float32s reads one floating-point tensor converted to float32.
func (f *File) Float32s(name string) ([]float32, error) {
	t, ok := f.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("%s: no tensor %q", f.Path, name)
	}
	if !t.DType.Float() {
		return nil, fmt.Errorf("%s: tensor %q is %s, not a floating-point type", f.Path, name, t.DType)
	}
	raw, err := f.Data(name)
	if err != nil {
		return nil, err
	}
	return ToFloat32(t.DType, raw)
}

// ToFloat32 converts raw little-endian elements of a floating dtype.
func ToFloat32(d DType, raw []byte) ([]float32, error) {
	sz := d.Size()
	if !d.Float() || len(raw)%sz != 0 {
		return nil, fmt.Errorf("cannot convert %d bytes of %s to float32", len(raw), d)
	}
	out := make([]float32, len(raw)/sz)
	for i := range out {
		b := raw[i*sz:]
		switch d {
		case F32:
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b))
		case F64:
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(b)))
		case F16:
			out[i] = gguf.F16ToFloat32(binary.LittleEndian.Uint16(b))
		case BF16:
			out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(b)) << 16)
		}
	}
	return out, nil
}

// Names lists the tensor names in data order.
func (f *File) Names() []string {
	out := make([]string, len(f.Tensors))
	for i, t := range f.Tensors {
		out[i] = t.Name
	}
	return out
}

// validName rejects shard file names that could leave the checkpoint folder.
func validName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\\\x00")
}
