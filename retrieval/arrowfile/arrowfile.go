// Package arrowfile writes and reads the Arrow IPC files of ragtune's index
// folders: atomic writes in bounded record batches, and reads that turn a
// damaged file into an error naming it.
package arrowfile

import (
	"fmt"
	"io"
	"os"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/ragtune/ragtune/bindings/safefile"
)

// RowsPerBatch bounds the memory of one record batch when writing.
const RowsPerBatch = 1 << 14

// Write writes n rows to an Arrow IPC file atomically; fill appends rows
// [lo, hi) to the builder for each record batch.
func Write(path string, schema *arrow.Schema, n int, fill func(b *array.RecordBuilder, lo, hi int)) error {
	return safefile.Write(path, func(w io.Writer) error {
		fw, err := ipc.NewFileWriter(w, ipc.WithSchema(schema))
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
		defer b.Release()
		for lo := 0; lo < n; lo += RowsPerBatch {
			fill(b, lo, min(lo+RowsPerBatch, n))
			rec := b.NewRecordBatch()
			err := fw.Write(rec)
			rec.Release()
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
		}
		if err := fw.Close(); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		return nil
	})
}

// Read calls each with the file's schema metadata and every record batch in
// order. Errors name the file and the batch.
func Read(path string, each func(meta arrow.Metadata, rec arrow.RecordBatch) error) (err error) {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	// The IPC reader trusts the file's metadata; a damaged file must give an
	// error, not take the process down.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: damaged Arrow file: %v", path, r)
		}
	}()
	r, err := ipc.NewFileReader(f)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer r.Close()
	meta := r.Schema().Metadata()
	for i := 0; i < r.NumRecords(); i++ {
		rec, err := r.RecordBatch(i)
		if err != nil {
			return fmt.Errorf("%s: record batch %d: %w", path, i, err)
		}
		if err := each(meta, rec); err != nil {
			return fmt.Errorf("%s: record batch %d: %w", path, i, err)
		}
	}
	return nil
}
