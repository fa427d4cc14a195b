package importer

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ragtune/ragtune/retrieval/dataset"
)

// record is one row of a tabular input (a CSV row, a JSON object line, a
// Parquet row), with its cells by column name. Scalar cells hold one string;
// list cells (JSON arrays, Parquet lists) hold several. bad is set instead
// when the row itself could not be read (broken JSON, wrong field count).
type record struct {
	path  string
	line  int
	cells map[string][]string
	// objects holds JSON object cells (BEIR "metadata") flattened to strings.
	objects map[string]map[string]string
	// cols gives a CSV cell's column for error positions.
	cols map[string]int
	// header lists the table's columns for formats that have a fixed set
	// (CSV, Parquet), so even a bad row tells which columns exist.
	header []string
	bad    *dataset.InputError
}

// errAt builds an error positioned at this record and field.
func (r *record) errAt(field string, err error) *dataset.InputError {
	return &dataset.InputError{Path: r.path, Line: r.line, Col: r.cols[field], Field: field, Err: err}
}

// has reports whether the row has the column at all.
func (r *record) has(col string) bool {
	_, ok := r.cells[col]
	return ok
}

// str returns a scalar cell ("" when absent); a list cell is an error.
func (r *record) str(col string) (string, error) {
	v := r.cells[col]
	switch len(v) {
	case 0:
		return "", nil
	case 1:
		return v[0], nil
	}
	return "", r.errAt(col, fmt.Errorf("%w: a list where one value was expected", dataset.ErrBadRecord))
}

// need returns a scalar cell that must be present and not blank.
func (r *record) need(col string) (string, error) {
	if !r.has(col) {
		return "", r.errAt(col, dataset.ErrMissingField)
	}
	v, err := r.str(col)
	if err == nil && strings.TrimSpace(v) == "" {
		err = r.errAt(col, dataset.ErrEmptyField)
	}
	return v, err
}

// source streams records to each; it returns read errors that end the
// stream (I/O, a broken gzip stream), and hands bad rows to each as records
// with bad set so the caller decides whether to skip them.
type source func(each func(*record) error) error

// openMaybeGzip opens path, decompressing it when it starts with the gzip
// magic bytes (whatever its name says).
func openMaybeGzip(path string, enc Encoding) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(f, 1<<20)
	magic, _ := br.Peek(2)
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, &dataset.InputError{Path: path, Err: fmt.Errorf("gzip: %w", err)}
		}
		return struct {
			io.Reader
			io.Closer
		}{enc.reader(zr), f}, nil
	}
	return struct {
		io.Reader
		io.Closer
	}{enc.reader(br), f}, nil
}

// jsonlSource reads one JSON object a line. Blank lines are ignored.
func jsonlSource(path string, enc Encoding) source {
	return func(each func(*record) error) error {
		rc, err := openMaybeGzip(path, enc)
		if err != nil {
			return err
		}
		defer rc.Close()
		return readJSONL(path, rc, each)
	}
}

func readJSONL(path string, r io.Reader, each func(*record) error) error {
	br := bufio.NewReaderSize(r, 1<<20)
	for line := 1; ; line++ {
		raw, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(raw)) > 0 {
			if err := each(parseJSONLine(path, line, raw)); err != nil {
				return err
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return &dataset.InputError{Path: path, Line: line, Err: err}
		}
	}
}

func parseJSONLine(path string, line int, raw []byte) *record {
	rec := &record{path: path, line: line, cells: map[string][]string{}}
	bad := func(field string, err error) *record {
		rec.bad = &dataset.InputError{Path: path, Line: line, Field: field, Err: err}
		return rec
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			rec.bad = &dataset.InputError{Path: path, Line: line, Col: int(se.Offset), Err: fmt.Errorf("%w: broken JSON: %v", dataset.ErrBadRecord, err)}
			return rec
		}
		return bad("", fmt.Errorf("%w: want one JSON object a line: %v", dataset.ErrBadRecord, err))
	}
	// encoding/json silently replaces invalid UTF-8 with U+FFFD; check the
	// raw bytes of each value so bad input is reported, not mangled.
	for _, key := range sortedKeys(obj) {
		v := obj[key]
		if !utf8.ValidString(key) {
			return bad(strings.ToValidUTF8(key, "?"), dataset.ErrInvalidUTF8)
		}
		if !utf8.Valid(v) {
			return bad(key, dataset.ErrInvalidUTF8)
		}
		switch first := firstByte(v); first {
		case 'n': // null: as if absent
		case '[':
			var items []json.RawMessage
			if err := json.Unmarshal(v, &items); err != nil {
				return bad(key, fmt.Errorf("%w: %v", dataset.ErrBadRecord, err))
			}
			list := []string{}
			for _, it := range items {
				s, err := scalar(it)
				if err != nil {
					return bad(key, err)
				}
				list = append(list, s)
			}
			rec.cells[key] = list
		case '{':
			var m map[string]json.RawMessage
			if err := json.Unmarshal(v, &m); err != nil {
				return bad(key, fmt.Errorf("%w: %v", dataset.ErrBadRecord, err))
			}
			obj := map[string]string{}
			for k, it := range m {
				s, err := scalar(it)
				if err != nil {
					// Nested structure inside metadata: keep it as JSON text.
					s = string(it)
				}
				obj[k] = s
			}
			if rec.objects == nil {
				rec.objects = map[string]map[string]string{}
			}
			rec.objects[key] = obj
		default:
			s, err := scalar(v)
			if err != nil {
				return bad(key, err)
			}
			rec.cells[key] = []string{s}
		}
	}
	return rec
}

func firstByte(v []byte) byte {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return 0
	}
	return v[0]
}

// scalar turns a JSON string, number or boolean into its text: ids are often
// numbers (chunk_id 17), and their text is what an id means.
func scalar(v json.RawMessage) (string, error) {
	switch firstByte(v) {
	case '"':
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return "", fmt.Errorf("%w: %v", dataset.ErrBadRecord, err)
		}
		return s, nil
	case 't', 'f', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return string(bytes.TrimSpace(v)), nil
	}
	return "", fmt.Errorf("%w: want a string or number, got %.20s", dataset.ErrBadRecord, v)
}

// csvSource reads a CSV (or, with comma '\t', TSV) file with a header row.
// Quoted fields may span lines; positions are those of encoding/csv.
func csvSource(path string, comma rune, enc Encoding) source {
	return func(each func(*record) error) error {
		rc, err := openMaybeGzip(path, enc)
		if err != nil {
			return err
		}
		defer rc.Close()
		cr := csv.NewReader(rc)
		cr.Comma = comma
		cr.FieldsPerRecord = -1 // checked below, to name the row and keep going
		header, err := cr.Read()
		if err == io.EOF {
			return &dataset.InputError{Path: path, Line: 1, Err: errors.New("empty file: want a header row")}
		}
		if err != nil {
			return csvError(path, err)
		}
		header = append([]string(nil), header...)
		for i, h := range header {
			if i == 0 {
				h = strings.TrimPrefix(h, "\ufeff") // byte-order mark
			}
			header[i] = strings.TrimSpace(h)
			if !utf8.ValidString(header[i]) {
				return &dataset.InputError{Path: path, Line: 1, Col: i + 1, Err: fmt.Errorf("header: %w", dataset.ErrInvalidUTF8)}
			}
		}
		if dup := firstDuplicate(header); dup != "" {
			return &dataset.InputError{Path: path, Line: 1, Field: dup, Err: fmt.Errorf("%w: column named twice in the header", dataset.ErrDuplicateID)}
		}
		for {
			fields, err := cr.Read()
			if err == io.EOF {
				return nil
			}
			var rec *record
			if err != nil {
				var pe *csv.ParseError
				if !errors.As(err, &pe) {
					return csvError(path, err)
				}
				rec = &record{path: path, line: pe.Line, header: header, bad: csvError(path, err).(*dataset.InputError)}
			} else {
				line, _ := cr.FieldPos(0)
				rec = &record{path: path, line: line, header: header, cells: map[string][]string{}, cols: map[string]int{}}
				if len(fields) != len(header) {
					rec.bad = &dataset.InputError{Path: path, Line: line, Err: fmt.Errorf("%w: %d fields, the header has %d", dataset.ErrBadRecord, len(fields), len(header))}
				}
				for i := 0; rec.bad == nil && i < len(fields); i++ {
					_, col := cr.FieldPos(i)
					if !utf8.ValidString(fields[i]) {
						rec.bad = &dataset.InputError{Path: path, Line: line, Col: col, Field: header[i], Err: dataset.ErrInvalidUTF8}
					}
					rec.cells[header[i]] = []string{fields[i]}
					rec.cols[header[i]] = col
				}
			}
			if err := each(rec); err != nil {
				return err
			}
		}
	}
}

func csvError(path string, err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return &dataset.InputError{Path: path, Line: pe.Line, Col: pe.Column, Err: fmt.Errorf("%w: %v", dataset.ErrBadRecord, pe.Err)}
	}
	return &dataset.InputError{Path: path, Err: err}
}

func firstDuplicate(names []string) string {
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			return n
		}
		seen[n] = true
	}
	return ""
}

// columnsOf lists the columns of the first few records, for detection and
// for error messages that say which columns exist.
func columnsOf(src source) ([]string, error) {
	seen := map[string]bool{}
	n := 0
	errStop := errors.New("stop")
	err := src(func(r *record) error {
		for _, c := range r.header {
			seen[c] = true
		}
		if r.bad != nil {
			return nil
		}
		for c := range r.cells {
			seen[c] = true
		}
		for c := range r.objects {
			seen[c] = true
		}
		if n++; n >= 20 {
			return errStop
		}
		return nil
	})
	if err != nil && err != errStop {
		return nil, err
	}
	return sortedKeys(seen), nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// negativeColumns picks the sentence-transformers negative columns among
// cols: "negative", "negatives", then negative_1, negative_2, ... in
// numeric order.
func negativeColumns(cols []string) []string {
	var out []string
	type numbered struct {
		name string
		n    int
	}
	var nums []numbered
	for _, c := range cols {
		switch {
		case c == "negative" || c == "negatives":
			out = append(out, c)
		case strings.HasPrefix(c, "negative_"):
			if n, err := strconv.Atoi(strings.TrimPrefix(c, "negative_")); err == nil {
				nums = append(nums, numbered{c, n})
			}
		}
	}
	sort.Slice(nums, func(i, j int) bool { return nums[i].n < nums[j].n })
	for _, n := range nums {
		out = append(out, n.name)
	}
	return out
}
