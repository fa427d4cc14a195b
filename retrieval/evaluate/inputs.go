package evaluate

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ragtune/ragtune/retrieval/dataset"
)

// Query is one query to run.
type Query struct {
	ID   string
	Text string
}

// Qrels maps query id -> document id -> graded relevance (> 0 relevant).
type Qrels map[string]map[string]int

// openMaybeGzip opens path, decompressing it when its name ends in .gz.
func openMaybeGzip(path string) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	if !strings.HasSuffix(path, ".gz") {
		return f, nil
	}
	gz, err := gzip.NewReader(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return struct {
		io.Reader
		io.Closer
	}{gz, f}, nil
}

// eachLine calls fn with every non-blank line of r (1-based numbers), with
// no limit on line length.
func eachLine(path string, r io.Reader, fn func(line int, text []byte) error) error {
	br := bufio.NewReaderSize(r, 1<<20)
	for line := 1; ; line++ {
		raw, err := br.ReadBytes('\n')
		if err != nil && err != io.EOF {
			return &dataset.InputError{Path: path, Line: line, Err: err}
		}
		if t := bytes.TrimSpace(raw); len(t) > 0 {
			if !utf8.Valid(t) {
				return &dataset.InputError{Path: path, Line: line, Err: dataset.ErrInvalidUTF8}
			}
			if ferr := fn(line, t); ferr != nil {
				return ferr
			}
		}
		if err == io.EOF {
			return nil
		}
	}
}

// jsonID reads an "_id" that BEIR files write as a string or a number.
func jsonID(raw json.RawMessage) (string, error) {
	if len(raw) == 0 {
		return "", dataset.ErrMissingField
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if strings.TrimSpace(s) == "" {
			return "", dataset.ErrEmptyField
		}
		return s, nil
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String(), nil
	}
	return "", fmt.Errorf("want a string or a number, got %s", raw)
}

// ReadQueries reads a BEIR queries.jsonl file ({"_id", "text"} a line,
// gzip-aware). Duplicate ids are errors.
func ReadQueries(path string) ([]Query, error) {
	f, err := openMaybeGzip(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseQueries(path, f)
}

// ParseQueries is ReadQueries on a reader; path names it in errors.
func ParseQueries(path string, r io.Reader) ([]Query, error) {
	var out []Query
	seen := map[string]int{}
	err := eachLine(path, r, func(line int, text []byte) error {
		var rec struct {
			ID   json.RawMessage `json:"_id"`
			Text *string         `json:"text"`
		}
		if err := json.Unmarshal(text, &rec); err != nil {
			return &dataset.InputError{Path: path, Line: line, Err: fmt.Errorf("%w: %v", dataset.ErrBadRecord, err)}
		}
		id, err := jsonID(rec.ID)
		if err != nil {
			return &dataset.InputError{Path: path, Line: line, Field: "_id", Err: err}
		}
		if rec.Text == nil {
			return &dataset.InputError{Path: path, Line: line, Field: "text", Err: dataset.ErrMissingField}
		}
		if prev, dup := seen[id]; dup {
			return &dataset.InputError{Path: path, Line: line, Field: "_id", Err: fmt.Errorf("%w %q (first on line %d)", dataset.ErrDuplicateID, id, prev)}
		}
		seen[id] = line
		out = append(out, Query{ID: id, Text: *rec.Text})
		return nil
	})
	return out, err
}

// Doc is one corpus document as read from a BEIR corpus.jsonl.
type Doc struct {
	ID, Title, Text string
}

// ReadCorpus reads a BEIR corpus.jsonl file ({"_id", "title"?, "text"} a
// line, gzip-aware). Duplicate ids are errors.
func ReadCorpus(path string) ([]Doc, error) {
	f, err := openMaybeGzip(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Doc
	seen := map[string]int{}
	err = eachLine(path, f, func(line int, text []byte) error {
		var rec struct {
			ID    json.RawMessage `json:"_id"`
			Title string          `json:"title"`
			Text  *string         `json:"text"`
		}
		if err := json.Unmarshal(text, &rec); err != nil {
			return &dataset.InputError{Path: path, Line: line, Err: fmt.Errorf("%w: %v", dataset.ErrBadRecord, err)}
		}
		id, err := jsonID(rec.ID)
		if err != nil {
			return &dataset.InputError{Path: path, Line: line, Field: "_id", Err: err}
		}
		if rec.Text == nil {
			return &dataset.InputError{Path: path, Line: line, Field: "text", Err: dataset.ErrMissingField}
		}
		if prev, dup := seen[id]; dup {
			return &dataset.InputError{Path: path, Line: line, Field: "_id", Err: fmt.Errorf("%w %q (first on line %d)", dataset.ErrDuplicateID, id, prev)}
		}
		seen[id] = line
		out = append(out, Doc{ID: id, Title: rec.Title, Text: *rec.Text})
		return nil
	})
	return out, err
}

// ReadQrels reads a qrels file, gzip-aware: BEIR's tab-separated
// "query-id corpus-id score" (an optional header line), or TREC's
// whitespace-separated "query-id iteration doc-id score".
// A (query, document) pair given twice is an error.
func ReadQrels(path string) (Qrels, error) {
	f, err := openMaybeGzip(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseQrels(path, f)
}

// ParseQrels is ReadQrels on a reader; path names it in errors.
func ParseQrels(path string, r io.Reader) (Qrels, error) {
	q := Qrels{}
	first := true
	err := eachLine(path, r, func(line int, text []byte) error {
		fields := strings.Fields(string(text))
		if first {
			first = false
			if len(fields) >= 1 && strings.EqualFold(fields[0], "query-id") {
				return nil // the BEIR header
			}
		}
		var qid, did, score string
		switch len(fields) {
		case 3:
			qid, did, score = fields[0], fields[1], fields[2]
		case 4:
			qid, did, score = fields[0], fields[2], fields[3]
		default:
			return &dataset.InputError{Path: path, Line: line, Err: fmt.Errorf("%w: %d fields, want 3 (query-id corpus-id score) or 4 (TREC)", dataset.ErrBadRecord, len(fields))}
		}
		g, err := strconv.Atoi(score)
		if err != nil {
			return &dataset.InputError{Path: path, Line: line, Field: "score", Err: fmt.Errorf("%w: %q", dataset.ErrBadScore, score)}
		}
		if q[qid] == nil {
			q[qid] = map[string]int{}
		}
		if _, dup := q[qid][did]; dup {
			return &dataset.InputError{Path: path, Line: line, Err: fmt.Errorf("%w: query %q judges document %q twice", dataset.ErrDuplicateID, qid, did)}
		}
		q[qid][did] = g
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(q) == 0 {
		return nil, &dataset.InputError{Path: path, Err: errors.New("no judgments")}
	}
	return q, nil
}

// DocText is the text a document is indexed and embedded with: the title and
// the text joined by one space when there is a title (dataset.DocText's rule).
func DocText(d Doc) string {
	var ds dataset.Dataset
	return ds.DocText(dataset.Doc{ID: d.ID, Title: d.Title, Text: d.Text})
}
