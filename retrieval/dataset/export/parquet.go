package export

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/ragtune/ragtune/bindings/safefile"
	"github.com/ragtune/ragtune/retrieval/dataset"
)

const rowGroupRows = 16384

func stringFields(names ...string) []arrow.Field {
	f := make([]arrow.Field, len(names))
	for i, n := range names {
		f[i] = arrow.Field{Name: n, Type: arrow.BinaryTypes.String, Nullable: true}
	}
	return f
}

// Parquet writes corpus, queries, qrels and per-split pair tables as
// Parquet files (zstd-compressed) into dir.
func Parquet(d *dataset.Dataset, dir string, splits ...string) (Files, error) {
	splits, err := pick(d, splits)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var files Files
	write := func(name string, fields []arrow.Field, n int, fill func(b *array.RecordBuilder, i int)) error {
		files = append(files, name)
		return writeParquet(filepath.Join(dir, name), arrow.NewSchema(fields, nil), n, fill)
	}
	str := func(b *array.RecordBuilder, col int, v string) { b.Field(col).(*array.StringBuilder).Append(v) }
	err = write("corpus.parquet", stringFields("_id", "title", "text"), len(d.Corpus), func(b *array.RecordBuilder, i int) {
		str(b, 0, d.Corpus[i].ID)
		str(b, 1, d.Corpus[i].Title)
		str(b, 2, d.Corpus[i].Text)
	})
	if err != nil {
		return nil, err
	}
	err = write("queries.parquet", stringFields("_id", "text"), len(d.Queries), func(b *array.RecordBuilder, i int) {
		str(b, 0, d.Queries[i].ID)
		str(b, 1, d.Queries[i].Text)
	})
	if err != nil {
		return nil, err
	}
	type qrelRow struct {
		split string
		dataset.Qrel
	}
	var qrels []qrelRow
	for _, s := range splits {
		for _, r := range d.Qrels[s] {
			qrels = append(qrels, qrelRow{s, r})
		}
	}
	qrelFields := append(stringFields("split", "query-id", "corpus-id"), arrow.Field{Name: "score", Type: arrow.PrimitiveTypes.Int32})
	err = write("qrels.parquet", qrelFields, len(qrels), func(b *array.RecordBuilder, i int) {
		str(b, 0, qrels[i].split)
		str(b, 1, qrels[i].QueryID)
		str(b, 2, qrels[i].DocID)
		b.Field(3).(*array.Int32Builder).Append(int32(qrels[i].Score))
	})
	if err != nil {
		return nil, err
	}
	for _, s := range splits {
		pairs, err := d.Pairs(s)
		if err != nil {
			return nil, err
		}
		negs := maxNegatives(pairs)
		names := []string{"anchor", "positive"}
		for i := 0; i < negs; i++ {
			names = append(names, negativeColumn(i, negs))
		}
		err = write("pairs-"+s+".parquet", stringFields(names...), len(pairs), func(b *array.RecordBuilder, i int) {
			p := pairs[i]
			str(b, 0, p.Anchor)
			str(b, 1, p.Positive)
			for j := 0; j < negs; j++ {
				if j < len(p.Negatives) {
					str(b, 2+j, p.Negatives[j])
				} else {
					b.Field(2 + j).AppendNull()
				}
			}
		})
		if err != nil {
			return nil, err
		}
	}
	return files, nil
}

func writeParquet(path string, schema *arrow.Schema, n int, fill func(b *array.RecordBuilder, i int)) error {
	return safefile.Write(path, func(w io.Writer) error {
		props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Zstd), parquet.WithMaxRowGroupLength(rowGroupRows))
		fw, err := pqarrow.NewFileWriter(schema, w, props, pqarrow.DefaultWriterProps())
		if err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
		defer b.Release()
		for start := 0; start < n; start += rowGroupRows {
			for i := start; i < min(start+rowGroupRows, n); i++ {
				fill(b, i)
			}
			rec := b.NewRecordBatch()
			err := fw.Write(rec)
			rec.Release()
			if err != nil {
				return fmt.Errorf("write %s: %w", path, err)
			}
		}
		if err := fw.Close(); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		return nil
	})
}
