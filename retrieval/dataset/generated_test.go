package dataset_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/ragtune/ragtune/retrieval/dataset"
	"github.com/ragtune/ragtune/retrieval/dataset/export"
	"github.com/ragtune/ragtune/retrieval/dataset/importer"
)

// augmented has real queries q1..q6 over documents d1..d6 and generated ones:
// g1 paraphrases q1, g2 was written for d1 (q1's document), g3 for d7,
// which no real query judges, and g4 for d2 (q2's).
func augmented() *dataset.Dataset {
	d := &dataset.Dataset{Qrels: map[string][]dataset.Qrel{}, Examples: map[string][]dataset.Example{}}
	for _, id := range []string{"1", "2", "3", "4", "5", "6", "7"} {
		d.Corpus = append(d.Corpus, dataset.Doc{ID: "d" + id, Text: "document " + id})
		if id != "7" {
			d.Queries = append(d.Queries, dataset.Query{ID: "q" + id, Text: "query " + id})
			d.Qrels[dataset.Train] = append(d.Qrels[dataset.Train], dataset.Qrel{QueryID: "q" + id, DocID: "d" + id, Score: 1})
		}
	}
	gen := func(id, text, mode, parent, doc string) {
		d.Queries = append(d.Queries, dataset.Query{ID: id, Text: text, Generated: &dataset.Generation{Generator: "gen.gguf", Seed: 9, Mode: mode, Parent: parent}})
		d.Qrels[dataset.Train] = append(d.Qrels[dataset.Train], dataset.Qrel{QueryID: id, DocID: doc, Score: 1})
	}
	gen("g1", "query one again", dataset.ModeParaphrase, "q1", "d1")
	gen("g2", "what is document one", dataset.ModeQueries, "d1", "d1")
	gen("g3", "what is document seven", dataset.ModeQueries, "d7", "d7")
	gen("g4", "what is document two", dataset.ModeQueries, "d2", "d2")
	return d
}

func TestGeneratedMarksRoundTrip(t *testing.T) {
	d := augmented()
	dir := t.TempDir()
	if err := d.Save(dir); err != nil {
		t.Fatal(err)
	}
	back, err := dataset.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Queries, d.Queries) {
		t.Fatalf("queries and their marks changed on the way through disk:\n%+v", back.Queries)
	}
	// Without generated queries the file goes away.
	d.Queries = d.Queries[:6]
	d.Qrels[dataset.Train] = d.Qrels[dataset.Train][:6]
	if err := d.Save(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, dataset.GeneratedFile)); !os.IsNotExist(err) {
		t.Fatalf("stale %s: %v", dataset.GeneratedFile, err)
	}
}

func TestGeneratedOnlyInTrain(t *testing.T) {
	d := augmented()
	d.Qrels[dataset.Validation] = []dataset.Qrel{{QueryID: "g3", DocID: "d7", Score: 1}}
	err := d.Save(t.TempDir())
	var ie *dataset.InputError
	if !errors.Is(err, dataset.ErrGeneratedOutsideTrain) || !errors.As(err, &ie) || ie.Path != dataset.QrelsFile || ie.Field != "split" {
		t.Fatalf("generated query judged in validation: %v", err)
	}
	d = augmented()
	d.Examples[dataset.Test] = []dataset.Example{{QueryID: "g1", Anchor: "query one again", PositiveID: "d1", Positive: "document 1"}}
	if err := d.Validate(); !errors.Is(err, dataset.ErrGeneratedOutsideTrain) {
		t.Fatalf("generated example in test: %v", err)
	}
}

func TestEvaluationSkipsGenerated(t *testing.T) {
	rel := augmented().Relevant(dataset.Train)
	if len(rel) != 6 || rel["g1"] != nil || rel["q1"]["d1"] != 1 {
		t.Fatalf("relevant judgements of train: %v", rel)
	}
}

// TestResplitKeepsGeneratedInTrain deals the real queries many ways: the
// generated ones are never dealt, and stay in train unless their source
// query or document went elsewhere.
func TestResplitKeepsGeneratedInTrain(t *testing.T) {
	d := augmented()
	real := augmented()
	real.Queries = real.Queries[:6]
	real.Qrels[dataset.Train] = real.Qrels[dataset.Train][:6]
	sawDrop, sawKeep := false, false
	for seed := uint64(1); seed <= 30; seed++ {
		opts := dataset.SplitOptions{Train: 0.5, Validation: 0.25, Test: 0.25, Seed: seed}
		out, rep, err := d.Resplit(opts)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		// The real queries are dealt as if there were no generated ones.
		alone, _, err := real.Resplit(opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{dataset.Validation, dataset.Test} {
			if !reflect.DeepEqual(out.Qrels[s], alone.Qrels[s]) {
				t.Fatalf("seed %d: generated queries changed the deal of %s: %v, alone %v", seed, s, out.Qrels[s], alone.Qrels[s])
			}
		}
		if err := out.Validate(); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		split := map[string]string{}
		for _, s := range out.Splits() {
			for _, r := range out.Qrels[s] {
				split[r.QueryID] = s
			}
		}
		if split["g3"] != dataset.Train {
			t.Fatalf("seed %d: g3 (its document judged by no real query) is in %q", seed, split["g3"])
		}
		wantDropped := 0
		for _, c := range []struct{ real, gen string }{{"q1", "g1"}, {"q1", "g2"}, {"q2", "g4"}} {
			inTrain := split[c.real] == dataset.Train
			if inTrain && split[c.gen] != dataset.Train || !inTrain && split[c.gen] != "" {
				t.Fatalf("seed %d: %s in %s, %s in %q", seed, c.real, split[c.real], c.gen, split[c.gen])
			}
			if !inTrain {
				wantDropped++
			}
		}
		if wantDropped > 0 {
			sawDrop = true
		} else {
			sawKeep = true
		}
		if rep.GeneratedDropped != wantDropped || rep.GeneratedKept != 4-wantDropped || len(out.Queries) != 10-wantDropped {
			t.Fatalf("seed %d: report %+v, %d queries", seed, rep, len(out.Queries))
		}
		if n := len(out.SplitQueries(dataset.Train)) - (4 - wantDropped); n != 3 {
			t.Fatalf("seed %d: %d real queries in train, want 3 of 6", seed, n)
		}
	}
	if !sawDrop || !sawKeep {
		t.Fatal("30 seeds never moved q1 both ways")
	}
}

func TestFewShotSamplesRealQueries(t *testing.T) {
	d := augmented()
	for seed := uint64(1); seed <= 10; seed++ {
		out, err := d.FewShot(dataset.Train, 2, 0, seed)
		if err != nil {
			t.Fatal(err)
		}
		kept := map[string]bool{}
		for _, r := range out.Qrels[dataset.Train] {
			kept[r.QueryID] = true
		}
		real := 0
		for _, q := range d.Queries[:6] {
			if kept[q.ID] {
				real++
			}
		}
		if real != 2 || !kept["g2"] || !kept["g3"] || !kept["g4"] || kept["g1"] != kept["q1"] {
			t.Fatalf("seed %d kept %v", seed, kept)
		}
	}
}

// TestGeneratedMarksSurviveExport: data export writes the marks into
// queries.jsonl and data import reads them back, so a round trip cannot turn
// generated queries into real ones.
func TestGeneratedMarksSurviveExport(t *testing.T) {
	d := augmented()
	dir := t.TempDir()
	if _, err := export.JSONL(d, dir); err != nil {
		t.Fatal(err)
	}
	back, _, err := importer.Import(dir, importer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Queries, d.Queries) {
		t.Fatalf("queries after export and import:\n%+v", back.Queries)
	}
	bad := filepath.Join(t.TempDir(), "beir")
	os.MkdirAll(filepath.Join(bad, "qrels"), 0o755)
	os.WriteFile(filepath.Join(bad, "corpus.jsonl"), []byte(`{"_id":"d1","text":"x"}`+"\n"), 0o644)
	os.WriteFile(filepath.Join(bad, "queries.jsonl"), []byte(`{"_id":"q1","text":"y"}`+"\n"+`{"_id":"g1","text":"z","generated":{"source":"generated","seed":"x"}}`+"\n"), 0o644)
	os.WriteFile(filepath.Join(bad, "qrels", "train.tsv"), []byte("q1\td1\t1\n"), 0o644)
	_, _, err = importer.Import(bad, importer.Options{})
	var ie *dataset.InputError
	if !errors.As(err, &ie) || ie.Line != 2 || ie.Field != "generated" {
		t.Fatalf("a bad mark: %v", err)
	}
}
