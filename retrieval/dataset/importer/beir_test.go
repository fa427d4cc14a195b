package importer

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/ragtune/ragtune/retrieval/dataset"
	"github.com/ragtune/ragtune/retrieval/dataset/export"
	"github.com/ragtune/ragtune/retrieval/shareddata"
)

func TestImportMiniBEIR(t *testing.T) {
	dir := shareddata.Dir(t, "debian-packages/mini")
	d, rep, err := Import(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Format != BEIR || len(d.Corpus) != 6000 || rep.SkippedTotal() != 0 {
		t.Fatalf("format %s, %d docs, skipped %v", rep.Format, len(d.Corpus), rep.Skipped)
	}
	if s := d.Splits(); !reflect.DeepEqual(s, []string{dataset.Train, dataset.Validation}) {
		t.Fatalf("splits %v", s)
	}
	if n := len(d.SplitQueries(dataset.Train)); n != 1400 {
		t.Fatalf("%d train queries, want 1400", n)
	}
	if n := len(d.SplitQueries(dataset.Validation)); n != 300 {
		t.Fatalf("%d validation queries, want 300", n)
	}
	pairs, err := d.Pairs(dataset.Train)
	if err != nil || len(pairs) != len(d.Qrels[dataset.Train]) {
		t.Fatalf("%d pairs for %d qrels: %v", len(pairs), len(d.Qrels[dataset.Train]), err)
	}
	// Save, reopen and export to BEIR: each step keeps the data set whole.
	out := t.TempDir()
	if err := d.Save(out); err != nil {
		t.Fatal(err)
	}
	back, err := dataset.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, d) {
		t.Fatal("Save/Open changed the data set")
	}
	exp := t.TempDir()
	if _, err := export.JSONL(d, exp); err != nil {
		t.Fatal(err)
	}
	again, _, err := Import(exp, Options{})
	if err != nil {
		t.Fatal(err)
	}
	again.Source = d.Source
	if !reflect.DeepEqual(again, d) {
		t.Fatal("export then import changed the data set")
	}
}

// beirFolder writes a small BEIR folder; edit changes one of its files.
func beirFolder(t *testing.T, edit map[string]string) string {
	dir := t.TempDir()
	files := map[string]string{
		"corpus.jsonl.gz": `{"_id": "d1", "title": "T", "text": "one", "metadata": {"url": "u", "n": 3}}
{"_id": 2, "text": "two"}

{"_id": "d3", "title": "", "text": ""}
`,
		"queries.jsonl": `{"_id": "q1", "text": "first"}
{"_id": "q2", "text": "second", "metadata": {}}
`,
		"qrels/train.tsv": "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\t2\t0\n",
		"qrels/dev.tsv":   "q2\t2\t2\r\n",
	}
	for k, v := range edit {
		files[k] = v
	}
	for name, content := range files {
		if content != "" {
			writeFile(t, dir, name, content)
		}
	}
	return dir
}

func TestImportBEIRSmall(t *testing.T) {
	d, _, err := Import(beirFolder(t, nil), Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := &dataset.Dataset{
		Corpus: []dataset.Doc{
			{ID: "d1", Title: "T", Text: "one", Metadata: map[string]string{"url": "u", "n": "3"}},
			{ID: "2", Text: "two"}, {ID: "d3"},
		},
		Queries:  []dataset.Query{{ID: "q1", Text: "first"}, {ID: "q2", Text: "second"}},
		Qrels:    map[string][]dataset.Qrel{dataset.Train: {{QueryID: "q1", DocID: "d1", Score: 1}, {QueryID: "q1", DocID: "2", Score: 0}}, dataset.Validation: {{QueryID: "q2", DocID: "2", Score: 2}}},
		Examples: map[string][]dataset.Example{},
	}
	d.Source = ""
	if !reflect.DeepEqual(d, want) {
		t.Fatalf("got %+v", d)
	}
}

func TestImportBEIRErrors(t *testing.T) {
	cases := []struct {
		name, file, content string
		want                error
		where               string
	}{
		{"broken json", "corpus.jsonl.gz", "{\"_id\": \"d1\", \"text\": \"a\"}\n{\"_id\": \"d2\", \"text\": \n", dataset.ErrBadRecord, "corpus.jsonl.gz:2:"},
		{"missing text", "corpus.jsonl.gz", "{\"_id\": \"d1\", \"title\": \"a\"}\n", dataset.ErrMissingField, `corpus.jsonl.gz:1: field "text"`},
		{"bad utf8", "queries.jsonl", "{\"_id\": \"q1\", \"text\": \"a\xffb\"}\n", dataset.ErrInvalidUTF8, `queries.jsonl:1: field "text"`},
		{"duplicate doc", "corpus.jsonl.gz", "{\"_id\": \"d1\", \"text\": \"a\"}\n{\"_id\": \"d1\", \"text\": \"b\"}\n", dataset.ErrDuplicateID, `corpus.jsonl.gz:2: field "_id"`},
		{"unknown doc", "qrels/train.tsv", "q1\td9\t1\n", dataset.ErrUnknownDoc, `train.tsv:1: field "corpus-id"`},
		{"unknown query", "qrels/train.tsv", "q1\td1\t1\nq7\td1\t1\n", dataset.ErrUnknownQuery, `train.tsv:2: field "query-id"`},
		{"bad score", "qrels/train.tsv", "q1\td1\t1\nq2\td1\tx\n", dataset.ErrBadScore, `train.tsv:2: field "score"`},
		{"short qrel", "qrels/train.tsv", "q1\td1\n", dataset.ErrBadRecord, `train.tsv:1: `},
		{"not an object", "queries.jsonl", "[1,2]\n", dataset.ErrBadRecord, `queries.jsonl:1: `},
	}
	for _, c := range cases {
		dir := beirFolder(t, map[string]string{c.file: c.content})
		_, _, err := Import(dir, Options{})
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.where) {
			t.Errorf("%s: got %v, want %v at %s", c.name, err, c.want, c.where)
		}
		// With SkipBad the same input imports, and the skip is counted.
		_, rep, err := Import(dir, Options{SkipBad: true})
		if err != nil || rep.SkippedTotal() == 0 || len(rep.SkipSamples) == 0 {
			t.Errorf("%s with SkipBad: %v, report %+v", c.name, err, rep)
		}
	}
	// Files given empty content are not written: no qrels at all is an error.
	if _, _, err := Import(beirFolder(t, map[string]string{"qrels/dev.tsv": "", "qrels/train.tsv": ""}), Options{}); err == nil {
		t.Error("folder without qrels accepted")
	}
}
