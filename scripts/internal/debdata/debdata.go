// Package debdata reads the shared debian-packages data set in its BEIR
// layout and writes slices of it, for the scripts that cut the demo's data
// and the quality benchmark's families out of it.
package debdata

import (
	"bufio"
	"compress/gzip"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ragtune/ragtune/bindings/safefile"
)

// Doc is a corpus line.
type Doc struct {
	ID    string `json:"_id"`
	Title string `json:"title"`
	Text  string `json:"text"`
}

// Query is a queries line.
type Query struct {
	ID   string `json:"_id"`
	Text string `json:"text"`
}

// ReadPackages calls each with every row of packages.csv.gz (package,
// short_description, long_description), its header skipped.
func ReadPackages(path string, each func(pkg, synopsis, description string)) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	r := csv.NewReader(gz)
	for line := 1; ; line++ {
		rec, err := r.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if line == 1 || len(rec) != 3 {
			continue // the header
		}
		each(rec[0], rec[1], rec[2])
	}
}

// ReadJSONL calls each with every line of a gzipped JSONL file.
func ReadJSONL[T any](path string, each func(T)) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	sc := bufio.NewScanner(gz)
	sc.Buffer(nil, 1<<24)
	for n := 1; sc.Scan(); n++ {
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			return fmt.Errorf("%s:%d: %w", path, n, err)
		}
		each(v)
	}
	return sc.Err()
}

// ReadQrels adds a BEIR qrels file (with its header line) to into: query id
// to the ids of its relevant documents.
func ReadQrels(path string, into map[string][]string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	for n, line := range strings.Split(strings.TrimSpace(string(data)), "\n")[1:] {
		f := strings.Split(line, "\t")
		if len(f) != 3 {
			return fmt.Errorf("%s:%d: want 3 tab-separated fields", path, n+2)
		}
		into[f[0]] = append(into[f[0]], f[1])
	}
	return nil
}

// WriteJSONL writes items one JSON object a line, atomically.
func WriteJSONL[T any](path string, items []T) error {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	for _, it := range items {
		if err := enc.Encode(it); err != nil {
			return err
		}
	}
	return safefile.WriteBytes(path, []byte(b.String()))
}

// WriteQrels writes a BEIR qrels file for queries, in their order.
func WriteQrels(path string, queries []string, qrels map[string][]string) error {
	var b strings.Builder
	b.WriteString("query-id\tcorpus-id\tscore\n")
	for _, q := range queries {
		for _, d := range qrels[q] {
			fmt.Fprintf(&b, "%s\t%s\t1\n", q, d)
		}
	}
	return safefile.WriteBytes(path, []byte(b.String()))
}
