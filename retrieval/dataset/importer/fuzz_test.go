package importer

import (
	"bytes"
	"path/filepath"
	"testing"
	"unicode/utf8"
)

// The fuzz targets feed arbitrary bytes to each reader: it must return an
// error or a valid data set (Import validates what it returns), never
// panic. Crashers found go to testdata/fuzz/<target>/ and run as tests.

func FuzzJSONL(f *testing.F) {
	f.Add([]byte(`{"_id": "d1", "text": "a", "metadata": {"k": [1]}}` + "\n" + `{"_id": 2, "text": null}`))
	f.Add([]byte(`{"query": "q", "positive": "p", "negative": ["n", 3], "chunk_id": 1.5e3}`))
	f.Add([]byte("{\"a\": \"\xff\"}\n[]\n\"x\"\n{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		readJSONL("in.jsonl", bytes.NewReader(data), func(r *record) error {
			if r.bad != nil {
				return nil
			}
			for k, vs := range r.cells {
				for _, v := range vs {
					if !utf8.ValidString(k) || !utf8.ValidString(v) {
						t.Fatalf("invalid UTF-8 passed through in %q", k)
					}
				}
			}
			return nil
		})
		path := writeFile(t, t.TempDir(), "in.jsonl", string(data))
		for _, skip := range []bool{false, true} {
			Import(path, Options{SkipBad: skip})
			Import(path, Options{Format: ST, SkipBad: skip})
		}
	})
}

func FuzzCSV(f *testing.F) {
	f.Add([]byte(packagesCSV))
	f.Add([]byte("anchor,positive,negative_1\na,\"p\n\"\"x\",n\n"))
	f.Add([]byte("_id,text\n1,\"unterminated\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := writeFile(t, t.TempDir(), "in.csv", string(data))
		for _, skip := range []bool{false, true} {
			Import(path, Options{SkipBad: skip})
			Import(path, Options{SkipBad: skip, DedupDocs: true,
				Columns: Columns{ID: "package", Query: "short_description", Text: "long_description"}})
		}
	})
}

func FuzzBEIR(f *testing.F) {
	f.Add([]byte(`{"_id": "d1", "text": "a"}`), []byte(`{"_id": "q1", "text": "b"}`), []byte("query-id\tcorpus-id\tscore\nq1\td1\t1\n"))
	f.Add([]byte(`{"_id": "d1"}`), []byte(`{"_id": "q1", "text": ""}`), []byte("q1 0 d1 1\nq1\td2\t-1\n"))
	f.Fuzz(func(t *testing.T, corpus, queries, qrels []byte) {
		dir := t.TempDir()
		writeFile(t, dir, "corpus.jsonl", string(corpus))
		writeFile(t, dir, "queries.jsonl.gz", string(queries))
		writeFile(t, dir, filepath.Join("qrels", "dev.tsv"), string(qrels))
		for _, skip := range []bool{false, true} {
			Import(dir, Options{SkipBad: skip})
		}
	})
}
