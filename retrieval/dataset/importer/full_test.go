package importer

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ragtune/ragtune/retrieval/dataset"
	"github.com/ragtune/ragtune/retrieval/shareddata"
)

// The full debian-packages inputs import in about a second each on the team
// machine, so they are ordinary tests.

func TestImportFullBEIR(t *testing.T) {
	d, rep, err := Import(shareddata.Dir(t, "debian-packages/beir"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Corpus) != 54851 || rep.SkippedTotal() != 0 {
		t.Fatalf("%d docs (want 54,851), skipped %v", len(d.Corpus), rep.Skipped)
	}
	for _, s := range []string{dataset.Train, dataset.Validation} {
		if len(d.SplitQueries(s)) == 0 {
			t.Fatalf("split %s has no queries", s)
		}
	}
	t.Logf("%d docs, %d queries, train %d, validation %d queries", len(d.Corpus), len(d.Queries),
		len(d.SplitQueries(dataset.Train)), len(d.SplitQueries(dataset.Validation)))
}

func TestImportPackagesCSV(t *testing.T) {
	path := shareddata.Dir(t, "debian-packages/packages.csv.gz")
	cols := Columns{ID: "package", Query: "short_description", Text: "long_description"}
	// Some packages appear once per architecture: as ids they clash.
	_, _, err := Import(path, Options{Columns: cols})
	if !errors.Is(err, dataset.ErrDuplicateID) || !strings.Contains(err.Error(), `packages.csv.gz:11587:1: field "package": duplicate id "default-jdk"`) {
		t.Fatalf("got %v", err)
	}
	d, rep, err := Import(path, Options{Columns: cols, SkipBad: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Format != CSV || rep.Skipped[dataset.ErrDuplicateID.Error()] != 49 || len(d.Corpus) != 57198-49 {
		t.Fatalf("format %s, %d docs, skipped %v", rep.Format, len(d.Corpus), rep.Skipped)
	}
	// Without an id column documents are named by content; identical
	// descriptions merge into one document, as the BEIR folder was built.
	cols.ID = ""
	d, rep, err = Import(path, Options{Columns: cols, DedupDocs: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.MergedDocs == 0 || len(d.Corpus)+rep.MergedDocs != 57198 {
		t.Fatalf("dedup: %d docs + %d merged", len(d.Corpus), rep.MergedDocs)
	}
	t.Logf("%d distinct documents, %d queries, %d qrels", len(d.Corpus), len(d.Queries), len(d.Qrels[dataset.Train]))
}

// BenchmarkImportBEIR imports the full debian-packages BEIR folder (gzipped
// JSONL, 54,851 documents); MB/s counts the compressed input.
func BenchmarkImportBEIR(b *testing.B) {
	dir := shareddata.Dir(b, "debian-packages", "beir")
	var bytes int64
	for _, f := range []string{"corpus.jsonl.gz", "queries.jsonl.gz", "qrels/train.tsv", "qrels/validation.tsv"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err == nil {
			bytes += st.Size()
		}
	}
	b.SetBytes(bytes)
	for b.Loop() {
		if _, _, err := Import(dir, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSaveBEIR writes the imported folder as Arrow IPC (with fsyncs).
func BenchmarkSaveBEIR(b *testing.B) {
	d, _, err := Import(shareddata.Dir(b, "debian-packages", "beir"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	out := b.TempDir()
	for b.Loop() {
		if err := d.Save(out); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpenBEIR reopens the saved dataset folder (Arrow IPC).
func BenchmarkOpenBEIR(b *testing.B) {
	d, _, err := Import(shareddata.Dir(b, "debian-packages", "beir"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	out := b.TempDir()
	if err := d.Save(out); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := dataset.Open(out); err != nil {
			b.Fatal(err)
		}
	}
}
