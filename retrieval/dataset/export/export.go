// Package export writes a data set out in formats other tools read:
//
//   - JSONL: a BEIR folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv),
//     which `ragtune data import`, `ragtune index build` and `ragtune eval`
//     read back, plus pairs-<split>.jsonl per split in sentence-transformers
//     columns (anchor, positive, negative_1..n) for trainers elsewhere;
//   - Parquet: the same tables as corpus.parquet, queries.parquet,
//     qrels.parquet (split, query-id, corpus-id, score) and
//     pairs-<split>.parquet.
//
// Every file is written atomically.
package export

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/ragtune/ragtune/bindings/safefile"
	"github.com/ragtune/ragtune/retrieval/dataset"
)

// Files lists what an export wrote, relative to its folder.
type Files []string

// JSONL writes the BEIR layout and the sentence-transformers pair files of
// the given splits (all splits when none) into dir.
func JSONL(d *dataset.Dataset, dir string, splits ...string) (Files, error) {
	splits, err := pick(d, splits)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "qrels"), 0o755); err != nil {
		return nil, err
	}
	var files Files
	write := func(name string, fill func(enc *json.Encoder) error) error {
		files = append(files, name)
		return safefile.Write(filepath.Join(dir, name), func(w io.Writer) error {
			enc := json.NewEncoder(w)
			enc.SetEscapeHTML(false)
			return fill(enc)
		})
	}
	err = write("corpus.jsonl", func(enc *json.Encoder) error {
		for _, doc := range d.Corpus {
			row := map[string]any{"_id": doc.ID, "title": doc.Title, "text": doc.Text}
			if len(doc.Metadata) > 0 {
				row["metadata"] = doc.Metadata
			}
			if err := enc.Encode(row); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = write("queries.jsonl", func(enc *json.Encoder) error {
		for _, q := range d.Queries {
			if err := enc.Encode(queryLine(q)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, s := range splits {
		name := filepath.Join("qrels", s+".tsv")
		files = append(files, name)
		err := safefile.Write(filepath.Join(dir, name), func(w io.Writer) error {
			if _, err := io.WriteString(w, "query-id\tcorpus-id\tscore\n"); err != nil {
				return err
			}
			for _, r := range d.Qrels[s] {
				if _, err := fmt.Fprintf(w, "%s\t%s\t%d\n", r.QueryID, r.DocID, r.Score); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		pairs, err := d.Pairs(s)
		if err != nil {
			return nil, err
		}
		negs := maxNegatives(pairs)
		err = write("pairs-"+s+".jsonl", func(enc *json.Encoder) error {
			for _, p := range pairs {
				row := map[string]string{"anchor": p.Anchor, "positive": p.Positive}
				for i, n := range p.Negatives {
					row[negativeColumn(i, negs)] = n
				}
				if err := enc.Encode(row); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return files, nil
}

// negativeColumn names the i-th negative column the sentence-transformers
// way: "negative" when rows have one negative, else negative_1..n.
func negativeColumn(i, count int) string {
	if count == 1 {
		return "negative"
	}
	return "negative_" + strconv.Itoa(i+1)
}

func maxNegatives(pairs []dataset.Example) int {
	n := 0
	for _, p := range pairs {
		n = max(n, len(p.Negatives))
	}
	return n
}

// pick checks the requested splits exist (all splits when none requested).
func pick(d *dataset.Dataset, splits []string) ([]string, error) {
	all := d.Splits()
	if len(splits) == 0 {
		return all, nil
	}
	for _, s := range splits {
		found := false
		for _, a := range all {
			found = found || a == s
		}
		if !found {
			return nil, fmt.Errorf("dataset has no split %q (it has %v)", s, all)
		}
	}
	return splits, nil
}

// generatedMark is a generated query's mark in queries.jsonl, which the
// BEIR importer reads back, so a round trip keeps it training data only.
type generatedMark struct {
	Source    string `json:"source"`
	Generator string `json:"generator"`
	Seed      uint64 `json:"seed"`
	Mode      string `json:"mode"`
	Parent    string `json:"parent"`
}

func queryLine(q dataset.Query) any {
	if g := q.Generated; g != nil {
		return struct {
			ID        string        `json:"_id"`
			Text      string        `json:"text"`
			Generated generatedMark `json:"generated"`
		}{q.ID, q.Text, generatedMark{dataset.SourceGenerated, g.Generator, g.Seed, g.Mode, g.Parent}}
	}
	return map[string]string{"_id": q.ID, "text": q.Text}
}
