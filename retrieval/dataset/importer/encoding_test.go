package importer

import (
	"errors"
	"strings"
	"testing"

	"github.com/ragtune/ragtune/retrieval/dataset"
)

// A Latin-1 file is refused as UTF-8 (naming file and line) and converted,
// byte for byte, only when its encoding is named.
func TestImportEncoding(t *testing.T) {
	// "café" and "naïve" in Latin-1 (0xE9, 0xEF); 0x80 is € in Windows-1252
	// and a C1 control in ISO 8859-1.
	corpus := "{\"_id\": \"d1\", \"text\": \"caf\xe9 au lait\"}\n{\"_id\": \"d2\", \"text\": \"na\xefve, 5 \x80\"}\n"
	dir := beirFolder(t, map[string]string{
		"corpus.jsonl.gz": corpus,
		"queries.jsonl":   "{\"_id\": \"q1\", \"text\": \"first\"}\n{\"_id\": \"q2\", \"text\": \"second\"}\n",
		"qrels/train.tsv": "q1\td1\t1\n",
		"qrels/dev.tsv":   "q2\td2\t1\n",
	})
	_, _, err := Import(dir, Options{})
	if !errors.Is(err, dataset.ErrInvalidUTF8) || !strings.Contains(err.Error(), "corpus.jsonl.gz:1:") {
		t.Fatalf("UTF-8 import of a Latin-1 file: got %v, want invalid UTF-8 at corpus.jsonl.gz:1", err)
	}
	for _, c := range []struct {
		enc  Encoding
		want string
	}{{Latin1, "naïve, 5 \u0080"}, {Windows1252, "naïve, 5 €"}} {
		d, _, err := Import(dir, Options{Encoding: c.enc})
		if err != nil {
			t.Fatalf("%s: %v", c.enc, err)
		}
		if d.Corpus[0].Text != "café au lait" || d.Corpus[1].Text != c.want {
			t.Errorf("%s: got %q, %q", c.enc, d.Corpus[0].Text, d.Corpus[1].Text)
		}
	}

	csv := writeFile(t, t.TempDir(), "p.csv", "query,positive\ncaf\xe9,good doc\n")
	if _, _, err := Import(csv, Options{}); !errors.Is(err, dataset.ErrInvalidUTF8) || !strings.Contains(err.Error(), "p.csv:2:") {
		t.Errorf("CSV: got %v, want invalid UTF-8 at p.csv:2", err)
	}
	d, _, err := Import(csv, Options{Encoding: Latin1})
	if err != nil || d.Queries[0].Text != "café" {
		t.Errorf("CSV latin1: %v, %+v", err, d)
	}
}

func TestParseEncoding(t *testing.T) {
	for name, want := range map[string]Encoding{"": UTF8, "UTF8": UTF8, "ISO-8859-1": Latin1, "cp1252": Windows1252} {
		if got, err := ParseEncoding(name); err != nil || got != want {
			t.Errorf("%q: %v %v", name, got, err)
		}
	}
	if _, err := ParseEncoding("ebcdic"); err == nil {
		t.Error("ebcdic accepted")
	}
}
