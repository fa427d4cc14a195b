// Package importer reads retrieval data from the formats people have it in
// (CSV, JSONL, BEIR folders, sentence-transformers tables, Parquet) into a
// dataset.Dataset. Every reader streams its input and decompresses gzip
// (recognised by its magic bytes, whatever the file is called).
//
// Bad input never panics: the first bad record is an error naming file,
// line (or row) and field, or, with Options.SkipBad, it is skipped and
// counted by reason in the Report.
package importer

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ragtune/ragtune/retrieval/dataset"
)

// maxReportedErrors bounds the skipped-record messages kept in a Report.
const maxReportedErrors = 10

// Format names an input format.
type Format string

// Input formats. Auto picks one from the path (folder or file extension)
// and, for tables, from the column names.
const (
	Auto    Format = "auto"
	BEIR    Format = "beir"    // folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv
	CSV     Format = "csv"     // CSV or TSV table, columns mapped by Columns
	JSONL   Format = "jsonl"   // one JSON object a line, columns mapped by Columns
	ST      Format = "st"      // sentence-transformers columns: anchor, positive, negative_1..n
	Parquet Format = "parquet" // Parquet table, columns mapped by Columns
)

// Formats lists the formats Import accepts, for help texts.
var Formats = []Format{Auto, BEIR, CSV, JSONL, ST, Parquet}

// Columns maps table columns to data set fields. A table is read in one of
// two modes:
//
//   - corpus rows (Text set, Positive empty): each row is a document (ID,
//     Title, Text; other scalar columns become metadata); when Query is set,
//     the row's query text judges the row's document relevant. Identical
//     query texts are one query.
//   - pair rows (Query and Positive set): each row is a training pair of
//     texts, with optional Negatives and ids; documents are named by their
//     text unless PositiveID gives an id.
//
// Ids absent from the input are derived from the text, so re-importing a
// file gives the same ids.
type Columns struct {
	ID, Title, Text string
	Query, QueryID  string
	Positive        string
	PositiveID      string
	Negatives       []string
}

func (c Columns) empty() bool {
	return c.ID == "" && c.Title == "" && c.Text == "" && c.Query == "" && c.QueryID == "" &&
		c.Positive == "" && c.PositiveID == "" && len(c.Negatives) == 0
}

// Options control an import.
type Options struct {
	Format Format
	// Columns maps a table's columns; zero means infer from the column
	// names (sentence-transformers, the original JSONL pair format, or a
	// BEIR-style corpus table).
	Columns Columns
	// Corpus is a table of documents that pair rows refer to (by
	// PositiveID, or by identical text).
	Corpus string
	// Split receives the qrels and examples of inputs without splits
	// (default train). BEIR folders take splits from qrels/<split>.tsv.
	Split string
	// Delimiter overrides the CSV field separator (default ',' and '\t'
	// for .tsv files).
	Delimiter rune
	// DedupDocs merges corpus rows with identical text (title and text)
	// into the first one; the merged rows' queries judge that one.
	DedupDocs bool
	// SkipBad skips and counts bad records instead of failing on the first.
	SkipBad bool
	// Encoding of the text inputs (default UTF-8, where bytes that are not
	// UTF-8 are an error); Parquet strings are always UTF-8.
	Encoding Encoding
}

// Report says what an import read and skipped.
type Report struct {
	Format      Format         `json:"format"`
	Docs        int            `json:"docs"`
	Queries     int            `json:"queries"`
	Qrels       int            `json:"qrels"`
	Examples    int            `json:"examples"`
	MergedDocs  int            `json:"merged_docs,omitempty"`
	Skipped     map[string]int `json:"skipped"` // by reason
	SkipSamples []string       `json:"skip_samples,omitempty"`
}

// SkippedTotal counts all skipped records.
func (r *Report) SkippedTotal() int {
	n := 0
	for _, c := range r.Skipped {
		n += c
	}
	return n
}

// Import reads path (a file or a BEIR folder) into a data set.
func Import(path string, opts Options) (*dataset.Dataset, *Report, error) {
	if opts.Split == "" {
		opts.Split = dataset.Train
	}
	format, err := detect(path, opts.Format)
	if err != nil {
		return nil, nil, err
	}
	b := newBuilder(opts.SkipBad, path)
	b.enc = opts.Encoding
	b.report.Format = format
	if format == BEIR {
		err = importBEIR(b, path)
	} else {
		err = importTable(b, path, format, opts)
	}
	if err != nil {
		return nil, nil, err
	}
	return b.finish()
}

// detect resolves Auto from the path: a folder is BEIR, a file goes by its
// extension (after any .gz).
func detect(path string, f Format) (Format, error) {
	if f == "" {
		f = Auto
	}
	st, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if st.IsDir() {
		if f != Auto && f != BEIR {
			return "", fmt.Errorf("%s is a folder; format %s reads a file", path, f)
		}
		if _, err := os.Stat(filepath.Join(path, dataset.ManifestFile)); err == nil {
			return "", fmt.Errorf("%s is already a ragtune dataset folder (it has %s)", path, dataset.ManifestFile)
		}
		return BEIR, nil
	}
	switch f {
	case BEIR:
		return "", fmt.Errorf("format beir reads a folder (corpus.jsonl, queries.jsonl, qrels/); %s is a file", path)
	case Auto, ST:
		switch ext := tableExt(path); ext {
		case ".csv", ".tsv":
			if f == ST {
				return ST, nil
			}
			return CSV, nil
		case ".jsonl", ".json", ".ndjson":
			if f == ST {
				return ST, nil
			}
			return JSONL, nil
		case ".parquet", ".pq":
			if f == ST {
				return ST, nil
			}
			return Parquet, nil
		default:
			return "", fmt.Errorf("cannot tell the format of %s from its name: pass --format csv|jsonl|parquet|st", path)
		}
	case CSV, JSONL, Parquet:
		return f, nil
	}
	return "", fmt.Errorf("unknown format %q (want one of %s)", f, joinFormats())
}

func tableExt(path string) string {
	return strings.ToLower(filepath.Ext(strings.TrimSuffix(strings.TrimSuffix(path, ".gz"), ".GZ")))
}

func joinFormats() string {
	s := make([]string, len(Formats))
	for i, f := range Formats {
		s[i] = string(f)
	}
	return strings.Join(s, ", ")
}

// tableSource picks the reader of a table file: by format, or for ST by
// the file's extension.
func tableSource(path string, f Format, delim rune, enc Encoding) source {
	if f == ST || f == Auto {
		switch tableExt(path) {
		case ".csv", ".tsv":
			f = CSV
		case ".parquet", ".pq":
			f = Parquet
		default:
			f = JSONL
		}
	}
	switch f {
	case CSV:
		if delim == 0 {
			delim = ','
			if tableExt(path) == ".tsv" {
				delim = '\t'
			}
		}
		return csvSource(path, delim, enc)
	case Parquet:
		return parquetSource(path)
	}
	return jsonlSource(path, enc)
}
