package bm25

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/ragtune/ragtune/retrieval/arrowfile"
)

// Files of a BM25 index inside an index folder.
const (
	DocsFile  = "bm25_docs.arrow"  // id utf8, length int32; rows by id; params in schema metadata
	TermsFile = "bm25_terms.arrow" // term utf8, rows list<int32>, tfs list<int32>; terms sorted
)

// Save writes the index's two files into dir.
func (ix *Index) Save(dir string) error {
	meta := arrow.NewMetadata(
		[]string{"k1", "b", "stopwords", "avg_len"},
		[]string{
			strconv.FormatFloat(ix.params.K1, 'g', -1, 64),
			strconv.FormatFloat(ix.params.B, 'g', -1, 64),
			strconv.FormatBool(ix.params.Stopwords),
			strconv.FormatFloat(ix.avgLen, 'g', -1, 64),
		})
	docSchema := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.BinaryTypes.String},
		{Name: "length", Type: arrow.PrimitiveTypes.Int32},
	}, &meta)
	err := arrowfile.Write(filepath.Join(dir, DocsFile), docSchema, len(ix.ids), func(b *array.RecordBuilder, lo, hi int) {
		b.Field(0).(*array.StringBuilder).AppendValues(ix.ids[lo:hi], nil)
		b.Field(1).(*array.Int32Builder).AppendValues(ix.lengths[lo:hi], nil)
	})
	if err != nil {
		return err
	}
	terms := make([]string, 0, len(ix.postings))
	for t := range ix.postings {
		terms = append(terms, t)
	}
	sort.Strings(terms)
	termSchema := arrow.NewSchema([]arrow.Field{
		{Name: "term", Type: arrow.BinaryTypes.String},
		{Name: "rows", Type: arrow.ListOf(arrow.PrimitiveTypes.Int32)},
		{Name: "tfs", Type: arrow.ListOf(arrow.PrimitiveTypes.Int32)},
	}, nil)
	return arrowfile.Write(filepath.Join(dir, TermsFile), termSchema, len(terms), func(b *array.RecordBuilder, lo, hi int) {
		tb := b.Field(0).(*array.StringBuilder)
		rb, fb := b.Field(1).(*array.ListBuilder), b.Field(2).(*array.ListBuilder)
		rv, fv := rb.ValueBuilder().(*array.Int32Builder), fb.ValueBuilder().(*array.Int32Builder)
		for _, t := range terms[lo:hi] {
			tb.Append(t)
			rb.Append(true)
			fb.Append(true)
			for _, p := range ix.postings[t] {
				rv.Append(p.row)
				fv.Append(p.tf)
			}
		}
	})
}

// Open loads the BM25 index saved in dir.
func Open(dir string) (*Index, error) {
	ix := &Index{postings: map[string][]posting{}}
	docsPath := filepath.Join(dir, DocsFile)
	haveMeta := false
	err := arrowfile.Read(docsPath, func(meta arrow.Metadata, rec arrow.RecordBatch) error {
		if !haveMeta {
			if err := ix.readMeta(meta); err != nil {
				return err
			}
			haveMeta = true
		}
		ids, ok1 := rec.Column(0).(*array.String)
		lens, ok2 := rec.Column(1).(*array.Int32)
		if rec.NumCols() != 2 || !ok1 || !ok2 {
			return errors.New("want columns id utf8, length int32")
		}
		for r := 0; r < int(rec.NumRows()); r++ {
			if n := len(ix.ids); n > 0 && ix.ids[n-1] >= ids.Value(r) {
				return fmt.Errorf("row %d: id %q is not after %q", n+1, ids.Value(r), ix.ids[n-1])
			}
			if lens.Value(r) < 0 {
				return fmt.Errorf("row %d: negative length", len(ix.ids)+1)
			}
			ix.ids = append(ix.ids, ids.Value(r))
			ix.lengths = append(ix.lengths, lens.Value(r))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(ix.ids) == 0 {
		return nil, fmt.Errorf("%s: no documents", docsPath)
	}
	termsPath := filepath.Join(dir, TermsFile)
	err = arrowfile.Read(termsPath, func(_ arrow.Metadata, rec arrow.RecordBatch) error {
		terms, ok1 := rec.Column(0).(*array.String)
		rows, ok2 := rec.Column(1).(*array.List)
		tfs, ok3 := rec.Column(2).(*array.List)
		if rec.NumCols() != 3 || !ok1 || !ok2 || !ok3 {
			return errors.New("want columns term utf8, rows list<int32>, tfs list<int32>")
		}
		rv, ok1 := rows.ListValues().(*array.Int32)
		fv, ok2 := tfs.ListValues().(*array.Int32)
		if !ok1 || !ok2 {
			return errors.New("rows and tfs must hold int32")
		}
		for r := 0; r < int(rec.NumRows()); r++ {
			term := terms.Value(r)
			lo, hi := rows.ValueOffsets(r)
			flo, fhi := tfs.ValueOffsets(r)
			if hi-lo != fhi-flo || lo < 0 || hi > int64(rv.Len()) || flo < 0 || fhi > int64(fv.Len()) || lo > hi {
				return fmt.Errorf("term %q: rows and tfs lists do not match", term)
			}
			list := make([]posting, hi-lo)
			for j := range list {
				row, tf := rv.Value(int(lo)+j), fv.Value(int(flo)+j)
				if row < 0 || int(row) >= len(ix.ids) || tf <= 0 {
					return fmt.Errorf("term %q: posting (row %d, tf %d) out of range", term, row, tf)
				}
				list[j] = posting{row: row, tf: tf}
			}
			ix.postings[term] = list
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ix, nil
}

func (ix *Index) readMeta(meta arrow.Metadata) error {
	get := func(key string) (string, error) {
		i := meta.FindKey(key)
		if i < 0 {
			return "", fmt.Errorf("schema metadata lacks %q", key)
		}
		return meta.Values()[i], nil
	}
	var err error
	num := func(key string) float64 {
		s, e := get(key)
		if e == nil {
			var v float64
			v, e = strconv.ParseFloat(s, 64)
			if e == nil {
				return v
			}
		}
		err = errors.Join(err, fmt.Errorf("metadata %q: %w", key, e))
		return 0
	}
	ix.params.K1, ix.params.B, ix.avgLen = num("k1"), num("b"), num("avg_len")
	s, e := get("stopwords")
	if e == nil {
		ix.params.Stopwords, e = strconv.ParseBool(s)
	}
	if e != nil {
		err = errors.Join(err, fmt.Errorf("metadata \"stopwords\": %w", e))
	}
	if err != nil {
		return err
	}
	if !(ix.avgLen > 0) {
		return fmt.Errorf("metadata \"avg_len\": %g", ix.avgLen)
	}
	return ix.params.Validate()
}
