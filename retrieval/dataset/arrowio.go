package dataset

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/ragtune/ragtune/bindings/safefile"
)

// batchRows bounds the rows per Arrow record batch, so writing a large corpus
// never holds a second full copy of it in builders.
const batchRows = 16384

var (
	stringList = arrow.ListOf(arrow.BinaryTypes.String)
	stringMap  = arrow.MapOf(arrow.BinaryTypes.String, arrow.BinaryTypes.String)
)

// FileSum is the size and CRC-32C of a file as written. Open checks it before
// parsing, because arrow-go's IPC reader trusts the lengths inside the file:
// a corrupt file can make it allocate without bound (a fatal, unrecoverable
// out-of-memory), so damaged files must be caught before they reach it.
type FileSum struct {
	Bytes  int64  `json:"bytes"`
	CRC32C string `json:"crc32c"`
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// summingWriter computes a FileSum of everything written through it.
type summingWriter struct {
	w   io.Writer
	n   int64
	crc uint32
}

func (s *summingWriter) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	s.n += int64(n)
	s.crc = crc32.Update(s.crc, castagnoli, p[:n])
	return n, err
}

func (s *summingWriter) sum() FileSum { return FileSum{Bytes: s.n, CRC32C: fmt.Sprintf("%08x", s.crc)} }

// checkFileSum verifies a file against the sum recorded when it was written.
func checkFileSum(path string, want FileSum) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	s := &summingWriter{w: io.Discard}
	if _, err := io.Copy(s, f); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if got := s.sum(); got != want {
		return &InputError{Path: path, Err: fmt.Errorf("file changed or corrupt since it was written: %d bytes, crc32c %s; the manifest says %d bytes, crc32c %s",
			got.Bytes, got.CRC32C, want.Bytes, want.CRC32C)}
	}
	return nil
}

// writeArrowFile writes n rows to an Arrow IPC file atomically; fill appends
// row i to the builder's columns in schema order.
func writeArrowFile(path string, schema *arrow.Schema, n int, fill func(b *array.RecordBuilder, i int)) (FileSum, error) {
	var sum FileSum
	err := safefile.Write(path, func(out io.Writer) error {
		w := &summingWriter{w: out}
		defer func() { sum = w.sum() }()
		fw, err := ipc.NewFileWriter(w, ipc.WithSchema(schema), ipc.WithAllocator(memory.DefaultAllocator))
		if err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
		defer b.Release()
		for start := 0; start < n || (n == 0 && start == 0); start += batchRows {
			end := min(start+batchRows, n)
			for i := start; i < end; i++ {
				fill(b, i)
			}
			rec := b.NewRecordBatch()
			err := fw.Write(rec)
			rec.Release()
			if err != nil {
				return fmt.Errorf("write %s: %w", path, err)
			}
			if n == 0 {
				break
			}
		}
		if err := fw.Close(); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		return nil
	})
	return sum, err
}

func appendStrings(b array.Builder, vs []string) {
	lb := b.(*array.ListBuilder)
	lb.Append(true)
	vb := lb.ValueBuilder().(*array.StringBuilder)
	for _, v := range vs {
		vb.Append(v)
	}
}

func appendMap(b array.Builder, m map[string]string) {
	mb := b.(*array.MapBuilder)
	if len(m) == 0 {
		mb.AppendNull()
		return
	}
	mb.Append(true)
	kb, ib := mb.KeyBuilder().(*array.StringBuilder), mb.ItemBuilder().(*array.StringBuilder)
	for _, k := range sortedKeys(m) {
		kb.Append(k)
		ib.Append(m[k])
	}
}

// row reads the typed cells of one row of a record batch by column name.
type row struct {
	cols map[string]arrow.Array
	i    int
}

func (r row) str(name string) string {
	a, ok := r.cols[name].(*array.String)
	if !ok || a.IsNull(r.i) {
		return ""
	}
	return strings.Clone(a.Value(r.i))
}

func (r row) int(name string) int {
	a, ok := r.cols[name].(*array.Int32)
	if !ok || a.IsNull(r.i) {
		return 0
	}
	return int(a.Value(r.i))
}

func (r row) uint64(name string) uint64 {
	a, ok := r.cols[name].(*array.Uint64)
	if !ok || a.IsNull(r.i) {
		return 0
	}
	return a.Value(r.i)
}

func (r row) strs(name string) []string {
	a, ok := r.cols[name].(*array.List)
	if !ok || a.IsNull(r.i) {
		return nil
	}
	vals, ok := a.ListValues().(*array.String)
	if !ok {
		return nil
	}
	start, end := a.ValueOffsets(r.i)
	out := make([]string, 0, end-start)
	for j := start; j < end; j++ {
		out = append(out, strings.Clone(vals.Value(int(j))))
	}
	return out
}

func (r row) strMap(name string) map[string]string {
	a, ok := r.cols[name].(*array.Map)
	if !ok || a.IsNull(r.i) {
		return nil
	}
	keys, kok := a.Keys().(*array.String)
	items, iok := a.Items().(*array.String)
	if !kok || !iok {
		return nil
	}
	start, end := a.ValueOffsets(r.i)
	out := make(map[string]string, end-start)
	for j := start; j < end; j++ {
		out[strings.Clone(keys.Value(int(j)))] = strings.Clone(items.Value(int(j)))
	}
	return out
}

// readArrowFile reads every row of an Arrow IPC file whose schema must have
// the fields of want (by name and type; extra columns are ignored). each gets
// the 1-based row number. The file must match sum (see FileSum).
func readArrowFile(path string, sum FileSum, want *arrow.Schema, each func(rowNum int, r row) error) (err error) {
	if err := checkFileSum(path, sum); err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	// Past the checksum the file is as written, but arrow-go panics rather
	// than erring on some inconsistencies: keep those errors too.
	defer func() {
		if p := recover(); p != nil {
			err = &InputError{Path: path, Err: fmt.Errorf("corrupt Arrow file: %v", p)}
		}
	}()
	fr, err := ipc.NewFileReader(f, ipc.WithAllocator(memory.DefaultAllocator))
	if err != nil {
		return &InputError{Path: path, Err: fmt.Errorf("not an Arrow IPC file: %w", err)}
	}
	defer fr.Close()
	have := fr.Schema()
	for _, w := range want.Fields() {
		idx := have.FieldIndices(w.Name)
		if len(idx) == 0 {
			return &InputError{Path: path, Field: w.Name, Err: ErrMissingField}
		}
		if got := have.Field(idx[0]).Type; !arrow.TypeEqual(got, w.Type) {
			return &InputError{Path: path, Field: w.Name, Err: fmt.Errorf("type %s, want %s", got, w.Type)}
		}
	}
	rowNum := 0
	for i := 0; i < fr.NumRecords(); i++ {
		rec, err := fr.RecordBatchAt(i)
		if err != nil {
			return &InputError{Path: path, Line: rowNum + 1, Err: err}
		}
		cols := map[string]arrow.Array{}
		for _, w := range want.Fields() {
			col := rec.Column(have.FieldIndices(w.Name)[0])
			if v, ok := col.(interface{ ValidateFull() error }); ok {
				if err := v.ValidateFull(); err != nil {
					rec.Release()
					return &InputError{Path: path, Line: rowNum + 1, Field: w.Name, Err: fmt.Errorf("corrupt column: %w", err)}
				}
			}
			cols[w.Name] = col
		}
		n := int(rec.NumRows())
		for j := 0; j < n; j++ {
			rowNum++
			if err := each(rowNum, row{cols: cols, i: j}); err != nil {
				rec.Release()
				return err
			}
		}
		rec.Release()
	}
	return nil
}

// errNotExist reports whether err means a missing file.
func errNotExist(err error) bool { return errors.Is(err, os.ErrNotExist) }
