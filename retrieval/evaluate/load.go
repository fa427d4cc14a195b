package evaluate

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/ragtune/ragtune/retrieval/dataset"
)

// LoadCorpus reads the documents of a ragtune dataset folder (with
// dataset.json), a BEIR folder (corpus.jsonl or corpus.jsonl.gz) or a BEIR
// corpus.jsonl file.
func LoadCorpus(path string) ([]Doc, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return ReadCorpus(path)
	}
	if exists(filepath.Join(path, dataset.ManifestFile)) {
		ds, err := dataset.Open(path)
		if err != nil {
			return nil, err
		}
		docs := make([]Doc, len(ds.Corpus))
		for i, d := range ds.Corpus {
			docs[i] = Doc{ID: d.ID, Title: d.Title, Text: d.Text}
		}
		return docs, nil
	}
	for _, name := range []string{"corpus.jsonl", "corpus.jsonl.gz"} {
		if p := filepath.Join(path, name); exists(p) {
			return ReadCorpus(p)
		}
	}
	return nil, fmt.Errorf("%s: neither a ragtune dataset (%s) nor a BEIR folder (corpus.jsonl)", path, dataset.ManifestFile)
}

// LoadJudged reads the queries and the qrels of one split from a ragtune
// dataset folder or a BEIR folder (queries.jsonl[.gz], qrels/<split>.tsv;
// a BEIR "dev" split answers to "validation" too).
func LoadJudged(dir, split string) ([]Query, Qrels, error) {
	if exists(filepath.Join(dir, dataset.ManifestFile)) {
		ds, err := dataset.Open(dir)
		if err != nil {
			return nil, nil, err
		}
		judged, ok := ds.Qrels[split]
		if !ok {
			return nil, nil, fmt.Errorf("dataset %s has no split %q (it has %v)", dir, split, ds.Splits())
		}
		qrels := Qrels{}
		gen := ds.GeneratedQueries() // training data only, never judged
		for _, r := range judged {
			if gen[r.QueryID] {
				continue
			}
			if qrels[r.QueryID] == nil {
				qrels[r.QueryID] = map[string]int{}
			}
			qrels[r.QueryID][r.DocID] = r.Score
		}
		queries := make([]Query, len(ds.Queries))
		for i, q := range ds.Queries {
			queries[i] = Query{ID: q.ID, Text: q.Text}
		}
		return queries, qrels, nil
	}
	var qpath string
	for _, name := range []string{"queries.jsonl", "queries.jsonl.gz"} {
		if p := filepath.Join(dir, name); exists(p) {
			qpath = p
		}
	}
	if qpath == "" {
		return nil, nil, fmt.Errorf("%s: neither a ragtune dataset (%s) nor a BEIR folder (queries.jsonl)", dir, dataset.ManifestFile)
	}
	names := []string{split}
	if split == dataset.Validation {
		names = append(names, "dev")
	}
	for _, name := range names {
		for _, ext := range []string{".tsv", ".tsv.gz"} {
			if p := filepath.Join(dir, "qrels", name+ext); exists(p) {
				queries, err := ReadQueries(qpath)
				if err != nil {
					return nil, nil, err
				}
				qrels, err := ReadQrels(p)
				return queries, qrels, err
			}
		}
	}
	return nil, nil, fmt.Errorf("%s: no qrels/%s.tsv", dir, split)
}

// JudgedQueries keeps the queries that qrels mentions, in input order, and
// counts the qrels queries that have no text.
func JudgedQueries(queries []Query, qrels Qrels) (judged []Query, missingText int) {
	have := map[string]bool{}
	for _, q := range queries {
		if _, ok := qrels[q.ID]; ok && !have[q.ID] {
			have[q.ID] = true
			judged = append(judged, q)
		}
	}
	for qid := range qrels {
		if !have[qid] {
			missingText++
		}
	}
	return judged, missingText
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
