package index

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"unicode/utf8"
)

// Vector is one line of an EMB.jsonl file, the output of `ragtune embed`:
//
//	{"_id"?: "doc-1", "i": 0, "n_tokens": 12, "embedding": [0.1, ...]}
//
// ID is "" when the line has no "_id"; then I (the line index of the text in
// the embedded input) identifies it.
type Vector struct {
	ID        string
	I         int
	NTokens   int
	Embedding []float32
}

// LineError says which line of which file is bad and why.
type LineError struct {
	Path  string
	Line  int
	Field string
	Err   error
}

func (e *LineError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s:%d: field %q: %v", e.Path, e.Line, e.Field, e.Err)
	}
	return fmt.Sprintf("%s:%d: %v", e.Path, e.Line, e.Err)
}

func (e *LineError) Unwrap() error { return e.Err }

// ReadVectors reads an EMB.jsonl file (gzip-compressed when it ends in .gz).
func ReadVectors(path string) ([]Vector, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		gz, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		defer gz.Close()
		r = gz
	}
	return ParseVectors(path, r)
}

// ParseVectors reads EMB.jsonl lines from r; path only names the input in
// errors. Blank lines are skipped. Every vector must have the length of the
// first, finite values, and a unique "_id" (when present) and "i".
func ParseVectors(path string, r io.Reader) ([]Vector, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	var out []Vector
	seenID := map[string]int{}
	seenI := map[int]int{}
	for line := 1; ; line++ {
		raw, err := br.ReadBytes('\n')
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		if len(bytes.TrimSpace(raw)) > 0 {
			v, ferr := parseVectorLine(raw)
			if ferr != nil {
				ferr.Path, ferr.Line = path, line
				return nil, ferr
			}
			if len(out) > 0 && len(v.Embedding) != len(out[0].Embedding) {
				return nil, &LineError{path, line, "embedding", fmt.Errorf("%d dimensions, line %d has %d", len(v.Embedding), seenI[out[0].I], len(out[0].Embedding))}
			}
			if v.ID != "" {
				if prev, dup := seenID[v.ID]; dup {
					return nil, &LineError{path, line, "_id", fmt.Errorf("duplicate id %q (first on line %d)", v.ID, prev)}
				}
				seenID[v.ID] = line
			}
			if prev, dup := seenI[v.I]; dup {
				return nil, &LineError{path, line, "i", fmt.Errorf("duplicate index %d (first on line %d)", v.I, prev)}
			}
			seenI[v.I] = line
			out = append(out, v)
		}
		if err == io.EOF {
			return out, nil
		}
	}
}

func parseVectorLine(raw []byte) (Vector, *LineError) {
	if !utf8.Valid(raw) {
		return Vector{}, &LineError{Err: errors.New("invalid UTF-8")}
	}
	var rec struct {
		ID        *json.RawMessage `json:"_id"`
		I         *int             `json:"i"`
		NTokens   int              `json:"n_tokens"`
		Embedding []float64        `json:"embedding"`
	}
	if err := json.Unmarshal(raw, &rec); err != nil {
		return Vector{}, &LineError{Err: fmt.Errorf("bad JSON: %w", err)}
	}
	v := Vector{NTokens: rec.NTokens}
	if rec.ID != nil {
		id, err := idString(*rec.ID)
		if err != nil {
			return Vector{}, &LineError{Field: "_id", Err: err}
		}
		v.ID = id
	}
	if rec.I == nil {
		return Vector{}, &LineError{Field: "i", Err: errors.New("missing")}
	}
	if *rec.I < 0 {
		return Vector{}, &LineError{Field: "i", Err: fmt.Errorf("negative index %d", *rec.I)}
	}
	v.I = *rec.I
	if len(rec.Embedding) == 0 {
		return Vector{}, &LineError{Field: "embedding", Err: errors.New("missing or empty")}
	}
	v.Embedding = make([]float32, len(rec.Embedding))
	for j, x := range rec.Embedding {
		f := float32(x)
		if math.IsInf(float64(f), 0) {
			return Vector{}, &LineError{Field: "embedding", Err: fmt.Errorf("component %d (%g) overflows float32", j, x)}
		}
		v.Embedding[j] = f
	}
	return v, nil
}

// idString accepts a JSON string or number as an id (BEIR files use both).
func idString(raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		if s == "" {
			return "", errors.New("empty id")
		}
		return s, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil {
		return n.String(), nil
	}
	return "", fmt.Errorf("id must be a string or a number, got %s", raw)
}

// MatchVectors lines vectors up with ids (the documents or queries they were
// embedded from): by "_id" when the vectors carry one, else by "i", the
// position in ids. Every id must get exactly one vector; what ("corpus",
// "queries") names the ids in errors.
func MatchVectors(ids []string, vs []Vector, what string) ([][]float32, error) {
	pos := make(map[string]int, len(ids))
	for i, id := range ids {
		pos[id] = i
	}
	out := make([][]float32, len(ids))
	for _, v := range vs {
		i := v.I
		if v.ID != "" {
			var ok bool
			if i, ok = pos[v.ID]; !ok {
				return nil, fmt.Errorf("vector with _id %q: no such id in the %s", v.ID, what)
			}
		} else if i >= len(ids) {
			return nil, fmt.Errorf("vector with i = %d: the %s has only %d entries", v.I, what, len(ids))
		}
		if out[i] != nil {
			return nil, fmt.Errorf("two vectors for %s entry %q", what, ids[i])
		}
		out[i] = v.Embedding
	}
	for i, v := range out {
		if v == nil {
			return nil, fmt.Errorf("no vector for %s entry %q (entry %d)", what, ids[i], i)
		}
	}
	return out, nil
}
