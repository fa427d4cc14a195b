// Package dataset holds ragtune's retrieval data sets: a corpus of documents,
// queries, graded relevance judgements (qrels) per split, and optional
// training examples (a query with a positive and negatives) per split.
//
// On disk a data set is a folder of Arrow IPC files (see Open and Save):
//
//	dataset.json    manifest: format version, source, counts per split
//	corpus.arrow    _id, title, text, metadata map<string,string>
//	queries.arrow   _id, text
//	qrels.arrow     split, query_id, doc_id, score int32
//	examples.arrow  split, query_id, anchor, positive_id, positive,
//	                negative_ids list<string>, negatives list<string>  (optional)
//
// Importers for CSV, JSONL, BEIR, sentence-transformers and Parquet inputs live
// in the importer sub-package; everything downstream (indexes, evaluation,
// training) reads data sets through this package only.
package dataset

import (
	"fmt"
	"sort"
	"strings"
)

// Canonical split names. A BEIR "dev" split is imported as Validation.
const (
	Train      = "train"
	Validation = "validation"
	Test       = "test"
)

// Doc is one document of the corpus.
type Doc struct {
	ID       string
	Title    string
	Text     string
	Metadata map[string]string
}

// Query is one search query.
type Query struct {
	ID   string
	Text string
	// Generated marks a query written by a generator model (ragtune data
	// augment); nil for real queries. Generated queries are training data
	// only: Validate keeps them out of every split but train, evaluation
	// never judges them, and Resplit keeps them in train.
	Generated *Generation
}

// Generation says how a generated query was made. On disk it is a row of
// generated.arrow (query_id, source "generated", generator, seed, mode, parent).
type Generation struct {
	Generator string // the generator model's file name
	Seed      uint64 // the augment run's seed
	Mode      string // "paraphrase" or "queries"
	// Parent is the query paraphrased (mode paraphrase) or the document the
	// query was written for (mode queries).
	Parent string
}

// Generation modes.
const (
	ModeParaphrase = "paraphrase"
	ModeQueries    = "queries"
)

// GeneratedQueries is the set of generated query ids.
func (d *Dataset) GeneratedQueries() map[string]bool {
	out := map[string]bool{}
	for _, q := range d.Queries {
		if q.Generated != nil {
			out[q.ID] = true
		}
	}
	return out
}

// Qrel is one relevance judgement: Score > 0 means relevant (graded, as in
// TREC and BEIR); Score <= 0 is judged not relevant.
type Qrel struct {
	QueryID string
	DocID   string
	Score   int
}

// Example is one training example: an anchor (query) with a positive and
// optional negatives. NegativeIDs runs parallel to Negatives; an entry is ""
// when that negative text is not a document of the corpus.
type Example struct {
	QueryID     string
	Anchor      string
	PositiveID  string
	Positive    string
	NegativeIDs []string
	Negatives   []string
}

// Dataset is a whole data set in memory. Qrels and Examples are keyed by
// split name. A Dataset is a plain value: it is not safe for concurrent
// mutation, and its methods never cache anything, so callers may edit the
// slices freely between calls.
type Dataset struct {
	Corpus   []Doc
	Queries  []Query
	Qrels    map[string][]Qrel
	Examples map[string][]Example
	// Source says where the data came from (kept in the manifest).
	Source string
}

// DocText is the text a document is embedded, indexed and trained on: the
// title and the text joined by one space when there is a title, as BEIR's
// reference dense retrievers do, so scores compare with published BEIR runs.
func (d *Dataset) DocText(doc Doc) string {
	if t := strings.TrimSpace(doc.Title); t != "" {
		return t + " " + doc.Text
	}
	return doc.Text
}

// Splits lists the splits that have qrels or examples: train, validation and
// test first (those present), then any others alphabetically.
func (d *Dataset) Splits() []string {
	seen := map[string]bool{}
	for s := range d.Qrels {
		seen[s] = true
	}
	for s := range d.Examples {
		seen[s] = true
	}
	return orderSplits(seen)
}

func orderSplits(seen map[string]bool) []string {
	var out, rest []string
	for _, s := range []string{Train, Validation, Test} {
		if seen[s] {
			out = append(out, s)
		}
	}
	for s := range seen {
		if s != Train && s != Validation && s != Test {
			rest = append(rest, s)
		}
	}
	sort.Strings(rest)
	return append(out, rest...)
}

// DocIndex maps document ids to their position in Corpus.
func (d *Dataset) DocIndex() map[string]int {
	m := make(map[string]int, len(d.Corpus))
	for i, doc := range d.Corpus {
		m[doc.ID] = i
	}
	return m
}

// QueryIndex maps query ids to their position in Queries.
func (d *Dataset) QueryIndex() map[string]int {
	m := make(map[string]int, len(d.Queries))
	for i, q := range d.Queries {
		m[q.ID] = i
	}
	return m
}

// Pairs returns the training examples of a split: its explicit Examples when
// it has any, otherwise one Example per (query, relevant document) of its
// qrels (Score > 0), in qrels order, with the query text as Anchor and
// DocText of the document as Positive. Explicit examples are returned as
// stored.
func (d *Dataset) Pairs(split string) ([]Example, error) {
	if ex := d.Examples[split]; len(ex) > 0 {
		return ex, nil
	}
	qrels, ok := d.Qrels[split]
	if !ok {
		return nil, fmt.Errorf("dataset has no split %q (it has %s)", split, strings.Join(d.Splits(), ", "))
	}
	docs, queries := d.DocIndex(), d.QueryIndex()
	var out []Example
	for i, r := range qrels {
		if r.Score <= 0 {
			continue
		}
		qi, ok := queries[r.QueryID]
		if !ok {
			return nil, fmt.Errorf("split %s qrel %d: unknown query %q", split, i+1, r.QueryID)
		}
		di, ok := docs[r.DocID]
		if !ok {
			return nil, fmt.Errorf("split %s qrel %d: unknown document %q", split, i+1, r.DocID)
		}
		out = append(out, Example{
			QueryID:    r.QueryID,
			Anchor:     d.Queries[qi].Text,
			PositiveID: r.DocID,
			Positive:   d.DocText(d.Corpus[di]),
		})
	}
	return out, nil
}

// SplitQueries returns the queries judged in a split, in the order of Queries.
func (d *Dataset) SplitQueries(split string) []Query {
	judged := map[string]bool{}
	for _, r := range d.Qrels[split] {
		judged[r.QueryID] = true
	}
	for _, e := range d.Examples[split] {
		judged[e.QueryID] = true
	}
	var out []Query
	for _, q := range d.Queries {
		if judged[q.ID] {
			out = append(out, q)
		}
	}
	return out
}

// Relevant returns, per real query id, the documents judged relevant
// (Score > 0) in a split with their grades: what evaluation scores against.
// Generated queries are left out (they train, they are never evaluated).
func (d *Dataset) Relevant(split string) map[string]map[string]int {
	out := map[string]map[string]int{}
	gen := d.GeneratedQueries()
	for _, r := range d.Qrels[split] {
		if r.Score <= 0 || gen[r.QueryID] {
			continue
		}
		m := out[r.QueryID]
		if m == nil {
			m = map[string]int{}
			out[r.QueryID] = m
		}
		m[r.DocID] = r.Score
	}
	return out
}
