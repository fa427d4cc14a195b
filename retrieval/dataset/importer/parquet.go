package importer

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/ragtune/ragtune/retrieval/dataset"
)

// parquetSource streams the rows of a Parquet file (gzip-wrapped files are
// decompressed into memory first, since Parquet needs random access). Lines
// in its errors are 1-based row numbers.
func parquetSource(path string) source {
	return func(each func(*record) error) (err error) {
		var in parquet.ReaderAtSeeker
		rc, err := openMaybeGzip(path, UTF8)
		if err != nil {
			return err
		}
		if f, ok := rc.(interface{ Close() error }); ok {
			defer f.Close()
		}
		if plain, err := os.Open(path); err == nil && !isGzip(plain) {
			defer plain.Close()
			in = plain
		} else {
			if plain != nil {
				plain.Close()
			}
			raw, err := io.ReadAll(rc)
			if err != nil {
				return &dataset.InputError{Path: path, Err: err}
			}
			in = bytes.NewReader(raw)
		}
		// The Parquet reader panics on some malformed files; input must not.
		defer func() {
			if p := recover(); p != nil {
				err = &dataset.InputError{Path: path, Err: fmt.Errorf("corrupt Parquet file: %v", p)}
			}
		}()
		pr, err := file.NewParquetReader(in)
		if err != nil {
			return &dataset.InputError{Path: path, Err: fmt.Errorf("not a Parquet file: %w", err)}
		}
		defer pr.Close()
		fr, err := pqarrow.NewFileReader(pr, pqarrow.ArrowReadProperties{BatchSize: 4096}, memory.DefaultAllocator)
		if err != nil {
			return &dataset.InputError{Path: path, Err: err}
		}
		rr, err := fr.GetRecordReader(context.Background(), nil, nil)
		if err != nil {
			return &dataset.InputError{Path: path, Err: err}
		}
		defer rr.Release()
		row := 0
		for rr.Next() {
			rec := rr.RecordBatch()
			schema := rec.Schema()
			header := make([]string, schema.NumFields())
			for c := range header {
				header[c] = schema.Field(c).Name
			}
			for i := 0; i < int(rec.NumRows()); i++ {
				row++
				r := &record{path: path, line: row, header: header, cells: map[string][]string{}}
				for c := 0; c < int(rec.NumCols()); c++ {
					name := schema.Field(c).Name
					vals, ok, err := cellStrings(rec.Column(c), i)
					if err != nil {
						r.bad = r.errAt(name, err)
						break
					}
					if ok {
						r.cells[name] = vals
					}
				}
				if err := each(r); err != nil {
					return err
				}
			}
		}
		if err := rr.Err(); err != nil && err != io.EOF {
			return &dataset.InputError{Path: path, Line: row + 1, Err: err}
		}
		return nil
	}
}

func isGzip(f *os.File) bool {
	var magic [2]byte
	n, _ := f.ReadAt(magic[:], 0)
	return n == 2 && magic[0] == 0x1f && magic[1] == 0x8b
}

// cellStrings renders cell i of a column as text: strings as they are,
// numbers and booleans in decimal, lists item by item. ok is false for a null.
func cellStrings(col arrow.Array, i int) (vals []string, ok bool, err error) {
	if col.IsNull(i) {
		return nil, false, nil
	}
	switch a := col.(type) {
	case array.ListLike:
		start, end := a.ValueOffsets(i)
		items := a.ListValues()
		vals = []string{}
		for j := int(start); j < int(end); j++ {
			if items.IsNull(j) {
				continue
			}
			s, err := scalarString(items, j)
			if err != nil {
				return nil, false, err
			}
			vals = append(vals, s)
		}
		return vals, true, nil
	}
	s, err := scalarString(col, i)
	return []string{s}, err == nil, err
}

func scalarString(col arrow.Array, i int) (string, error) {
	var s string
	switch a := col.(type) {
	case *array.String:
		s = a.Value(i)
	case *array.LargeString:
		s = a.Value(i)
	case *array.StringView:
		s = a.Value(i)
	case *array.Binary:
		s = string(a.Value(i))
	case *array.LargeBinary:
		s = string(a.Value(i))
	case *array.Dictionary:
		return scalarString(a.Dictionary(), a.GetValueIndex(i))
	case *array.Int8, *array.Int16, *array.Int32, *array.Int64,
		*array.Uint8, *array.Uint16, *array.Uint32, *array.Uint64,
		*array.Float32, *array.Float64, *array.Boolean:
		return col.ValueStr(i), nil
	default:
		return "", fmt.Errorf("%w: unsupported column type %s", dataset.ErrBadRecord, col.DataType())
	}
	if !utf8.ValidString(s) {
		return "", dataset.ErrInvalidUTF8
	}
	return string([]byte(s)), nil // copy out of the Arrow buffer
}
