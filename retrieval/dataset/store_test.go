package dataset

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func sample() *Dataset {
	return &Dataset{
		Source: "test",
		Corpus: []Doc{
			{ID: "d1", Title: "Git", Text: "version control", Metadata: map[string]string{"package": "git", "section": "vcs"}},
			{ID: "d2", Text: "a text editor"},
			{ID: "d3", Text: "ünïcode\n\nparagraphs"},
		},
		Queries: []Query{{ID: "q1", Text: "vcs"}, {ID: "q2", Text: "editor"}, {ID: "q3", Text: "unicode"}},
		Qrels: map[string][]Qrel{
			Train:      {{"q1", "d1", 2}, {"q1", "d2", 0}, {"q2", "d2", 1}},
			Validation: {{"q3", "d3", 1}},
		},
		Examples: map[string][]Example{
			Train: {{QueryID: "q1", Anchor: "vcs", PositiveID: "d1", Positive: "Git version control",
				NegativeIDs: []string{"d2", ""}, Negatives: []string{"a text editor", "not in corpus"}}},
		},
	}
}

func TestSaveOpenRoundTrip(t *testing.T) {
	dir := t.TempDir()
	d := sample()
	if err := d.Save(dir); err != nil {
		t.Fatal(err)
	}
	got, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, d) {
		t.Fatalf("round trip differs:\n got %+v\nwant %+v", got, d)
	}
	if s := got.Splits(); !reflect.DeepEqual(s, []string{Train, Validation}) {
		t.Fatalf("splits %v", s)
	}
	m := got.Manifest()
	if m.Docs != 3 || m.Splits[Train].Qrels != 3 || m.Splits[Train].Queries != 2 || m.Splits[Train].Examples != 1 {
		t.Fatalf("manifest %+v", m)
	}
	// Saving without examples removes a stale examples.arrow.
	d.Examples = nil
	if err := d.Save(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, ExamplesFile)); !os.IsNotExist(err) {
		t.Fatalf("stale examples file: %v", err)
	}
	if got, err = Open(dir); err != nil || len(got.Examples) != 0 {
		t.Fatalf("reopen: %v %v", got.Examples, err)
	}
}

func TestSaveOpenEmpty(t *testing.T) {
	dir := t.TempDir()
	if err := (&Dataset{}).Save(dir); err != nil {
		t.Fatal(err)
	}
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Corpus)+len(d.Queries)+len(d.Qrels) != 0 {
		t.Fatalf("not empty: %+v", d)
	}
}

func TestPairsFromQrels(t *testing.T) {
	d := sample()
	d.Examples = nil
	pairs, err := d.Pairs(Train)
	if err != nil {
		t.Fatal(err)
	}
	want := []Example{
		{QueryID: "q1", Anchor: "vcs", PositiveID: "d1", Positive: "Git version control"},
		{QueryID: "q2", Anchor: "editor", PositiveID: "d2", Positive: "a text editor"},
	}
	if !reflect.DeepEqual(pairs, want) {
		t.Fatalf("pairs %+v", pairs)
	}
	if _, err := d.Pairs(Test); err == nil {
		t.Fatal("missing split accepted")
	}
}

func TestValidateNamesFileRowField(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(*Dataset)
		want  error
		field string
		row   int
	}{
		{"duplicate doc", func(d *Dataset) { d.Corpus[2].ID = "d1" }, ErrDuplicateID, "_id", 3},
		{"empty query id", func(d *Dataset) { d.Queries[1].ID = "" }, ErrEmptyField, "_id", 2},
		{"bad utf8", func(d *Dataset) { d.Corpus[1].Text = "a\xffb" }, ErrInvalidUTF8, "text", 2},
		{"unknown doc", func(d *Dataset) { d.Qrels[Validation][0].DocID = "nope" }, ErrUnknownDoc, "doc_id", 4},
		{"unknown query", func(d *Dataset) { d.Qrels[Train][1].QueryID = "nope" }, ErrUnknownQuery, "query_id", 2},
		{"duplicate qrel", func(d *Dataset) { d.Qrels[Train][1].DocID = "d1" }, ErrDuplicateID, "doc_id", 2},
		{"unknown negative", func(d *Dataset) { d.Examples[Train][0].NegativeIDs[1] = "x" }, ErrUnknownDoc, "negative_ids", 1},
	}
	for _, c := range cases {
		d := sample()
		c.edit(d)
		err := d.Validate()
		var ie *InputError
		if !errors.Is(err, c.want) || !errors.As(err, &ie) || ie.Field != c.field || ie.Line != c.row {
			t.Errorf("%s: got %v", c.name, err)
		}
		if err := d.Save(t.TempDir()); err == nil {
			t.Errorf("%s: Save accepted an invalid dataset", c.name)
		}
	}
}

func TestOpenRejectsCorruptFiles(t *testing.T) {
	dir := t.TempDir()
	if err := sample().Save(dir); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, CorpusFile)
	raw, _ := os.ReadFile(path)
	// Flip bytes all over the file: the checksum catches every one before
	// arrow-go parses the file.
	for i := 0; i < len(raw); i += 7 {
		bad := append([]byte(nil), raw...)
		bad[i] ^= 0xff
		if err := os.WriteFile(path, bad, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "corrupt since it was written") {
			t.Fatalf("byte %d flipped: %v", i, err)
		}
	}
	os.WriteFile(path, []byte("not arrow"), 0o644)
	if _, err := Open(dir); err == nil {
		t.Fatal("garbage accepted")
	}
	if _, err := Open(t.TempDir()); err == nil {
		t.Fatal("empty folder accepted")
	}
}
