package importer

import (
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ragtune/ragtune/retrieval/dataset"
	"github.com/ragtune/ragtune/retrieval/dataset/export"
)

const packagesCSV = `package,short_description,long_description,section
vim,"Vi IMproved - enhanced vi editor","Vim is an almost compatible version of the UNIX editor Vi.

Many new features have been added: multi level undo, syntax
highlighting, ""quoted"" words.",editors
git,fast version control,"Git is a distributed VCS.",vcs
git-doc,fast version control,"Documentation for Git.",doc
nano,,"A small editor.",editors
`

func TestImportCSVCorpusWithQueries(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"p.csv", "p.csv.gz", "p-gzip-without-extension.csv"} {
		path := writeFile(t, dir, name, packagesCSV)
		if strings.Contains(name, "without") {
			// gzip is recognised by its content, not its name
			gz := writeFile(t, dir, "tmp.gz", packagesCSV)
			path = filepath.Join(dir, name)
			copyFile(t, gz, path)
		}
		d, rep, err := Import(path, Options{Columns: Columns{ID: "package", Query: "short_description", Text: "long_description"}})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if rep.Docs != 4 || rep.Queries != 2 || rep.Qrels != 3 {
			t.Fatalf("%s: report %+v", name, rep)
		}
		vim := d.Corpus[0]
		if vim.ID != "vim" || !strings.Contains(vim.Text, "\n\nMany new") || !strings.Contains(vim.Text, `"quoted"`) ||
			!reflect.DeepEqual(vim.Metadata, map[string]string{"section": "editors"}) {
			t.Fatalf("%s: multi-line quoted field read as %+v", name, vim)
		}
		// Identical query texts are one query judging both documents.
		gitQuery := contentID("q", "fast version control")
		if rel := d.Relevant(dataset.Train)[gitQuery]; len(rel) != 2 || rel["git"] != 1 || rel["git-doc"] != 1 {
			t.Fatalf("%s: git query judges %v", name, rel)
		}
	}
}

func TestImportCSVErrors(t *testing.T) {
	cols := Columns{ID: "package", Query: "short_description", Text: "long_description"}
	cases := []struct {
		name, content string
		cols          Columns
		want          error
		where         string
	}{
		{"missing column", "package,long_description\nvim,editor\n", cols, dataset.ErrMissingField, `p.csv: field "short_description"`},
		{"field count", "package,short_description,long_description\nvim,a,b\ngit,a\n", cols, dataset.ErrBadRecord, `p.csv:3: `},
		{"bad utf8", "package,short_description,long_description\nvim,a\xff,b\n", cols, dataset.ErrInvalidUTF8, `p.csv:2:5: field "short_description"`},
		{"bare quote", "package,short_description,long_description\nvim,a \"x\" b,c\n", cols, dataset.ErrBadRecord, `p.csv:2:7: `},
		{"duplicate id", "package,short_description,long_description\nvim,a,b\nvim,c,d\n", cols, dataset.ErrDuplicateID, `p.csv:3:1: field "package"`},
		{"empty id", "package,short_description,long_description\n,a,b\n", cols, dataset.ErrEmptyField, `p.csv:2:1: field "package"`},
	}
	for _, c := range cases {
		path := writeFile(t, t.TempDir(), "p.csv", c.content)
		_, _, err := Import(path, Options{Columns: c.cols})
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.where) {
			t.Errorf("%s: got %v, want %v at %s", c.name, err, c.want, c.where)
		}
		if c.want == dataset.ErrMissingField {
			continue // a wrong mapping is no bad row to skip
		}
		_, rep, err := Import(path, Options{Columns: c.cols, SkipBad: true})
		if err != nil || rep.SkippedTotal() != 1 {
			t.Errorf("%s with SkipBad: %v, report %+v", c.name, err, rep)
		}
	}
	path := writeFile(t, t.TempDir(), "p.csv", "a,b\n1,2\n")
	if _, _, err := Import(path, Options{}); err == nil || !strings.Contains(err.Error(), "--text-col") {
		t.Errorf("unknown columns: %v", err)
	}
	if _, _, err := Import(writeFile(t, t.TempDir(), "p.csv", ""), Options{Columns: cols}); err == nil {
		t.Error("empty file accepted")
	}
}

// The original work's JSONL: one {"query","positive","negative","chunk_id"}
// line per example, with a corpus file of chunks.
func TestImportOriginalJSONL(t *testing.T) {
	dir := t.TempDir()
	corpus := writeFile(t, dir, "chunks.jsonl", `{"chunk_id": 1, "text": "Git is a VCS."}
{"chunk_id": 2, "text": "Vim is an editor."}
{"chunk_id": 3, "text": "Nano is an editor."}
`)
	pairs := writeFile(t, dir, "train.jsonl", `{"query": "what is git", "positive": "Git is a VCS.", "negative": "Vim is an editor.", "chunk_id": 1}
{"query": "an editor", "positive": "Vim is an editor.", "negative": ["Nano is an editor.", "unseen text"], "chunk_id": 2}
{"query": "an editor", "positive": "Vim is an editor.", "negative": null, "chunk_id": 2}
`)
	d, rep, err := Import(pairs, Options{Corpus: corpus})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Format != JSONL || len(d.Corpus) != 4 || len(d.Queries) != 2 || len(d.Qrels[dataset.Train]) != 2 {
		t.Fatalf("report %+v", rep)
	}
	ex := d.Examples[dataset.Train]
	if len(ex) != 3 || ex[0].PositiveID != "1" || !reflect.DeepEqual(ex[0].NegativeIDs, []string{"2"}) ||
		!reflect.DeepEqual(ex[1].NegativeIDs, []string{"3", contentID("d", "unseen text")}) || len(ex[2].Negatives) != 0 {
		t.Fatalf("examples %+v", ex)
	}
	bad := writeFile(t, dir, "bad.jsonl", `{"query": "q", "positive": "p", "chunk_id": 9}`+"\n")
	if _, _, err := Import(bad, Options{Corpus: corpus}); !errors.Is(err, dataset.ErrUnknownDoc) || !strings.Contains(err.Error(), `bad.jsonl:1: field "chunk_id"`) {
		t.Fatalf("unknown chunk: %v", err)
	}
	blank := writeFile(t, dir, "blank.jsonl", `{"query": " ", "positive": "p"}`+"\n")
	if _, _, err := Import(blank, Options{}); !errors.Is(err, dataset.ErrEmptyField) {
		t.Fatalf("blank query: %v", err)
	}
}

// sentence-transformers columns in JSONL, CSV and Parquet give the same
// data set; export writes them back.
func TestImportSentenceTransformers(t *testing.T) {
	dir := t.TempDir()
	jsonl := writeFile(t, dir, "st.jsonl.gz", `{"anchor": "a1", "positive": "p1", "negative_1": "n1", "negative_2": "n2"}
{"anchor": "a2", "positive": "p2", "negative_1": "p1", "negative_2": ""}
`)
	csvPath := writeFile(t, dir, "st.csv", "anchor,positive,negative_2,negative_1\na1,p1,n2,n1\na2,p2,,p1\n")
	want, _, err := Import(jsonl, Options{Format: ST, Split: dataset.Validation})
	if err != nil {
		t.Fatal(err)
	}
	ex := want.Examples[dataset.Validation]
	if len(want.Corpus) != 4 || len(ex) != 2 || !reflect.DeepEqual(ex[0].Negatives, []string{"n1", "n2"}) ||
		!reflect.DeepEqual(ex[1].NegativeIDs, []string{ex[0].PositiveID}) {
		t.Fatalf("st import: %+v", want)
	}
	got, _, err := Import(csvPath, Options{Split: dataset.Validation})
	if err != nil {
		t.Fatal(err)
	}
	got.Source = want.Source
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("csv differs:\n%+v\n%+v", got, want)
	}
	pq := t.TempDir()
	if _, err := export.Parquet(want, pq); err != nil {
		t.Fatal(err)
	}
	got, rep, err := Import(filepath.Join(pq, "pairs-validation.parquet"), Options{Split: dataset.Validation})
	if err != nil {
		t.Fatal(err)
	}
	got.Source = want.Source
	if rep.Format != Parquet || !reflect.DeepEqual(got, want) {
		t.Fatalf("parquet differs:\n%+v\n%+v", got, want)
	}
	// The corpus table exported as Parquet reads back as documents.
	corpus, _, err := Import(filepath.Join(pq, "corpus.parquet"), Options{})
	if err != nil || !reflect.DeepEqual(corpus.Corpus, want.Corpus) {
		t.Fatalf("corpus.parquet: %v", err)
	}
	js := t.TempDir()
	if _, err := export.JSONL(want, js); err != nil {
		t.Fatal(err)
	}
	got, _, err = Import(filepath.Join(js, "pairs-validation.jsonl"), Options{Split: dataset.Validation})
	if err != nil {
		t.Fatal(err)
	}
	got.Source = want.Source
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("jsonl export differs:\n%+v\n%+v", got, want)
	}
}

func TestImportParquetCorrupt(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "x.parquet", "PAR1 this is not parquet PAR1")
	if _, _, err := Import(path, Options{}); err == nil {
		t.Fatal("garbage parquet accepted")
	}
}
