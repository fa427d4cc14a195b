// Package bm25 is the lexical baseline: Okapi BM25 over an inverted index,
// persisted as Arrow IPC files next to the other files of an index folder.
//
// Scoring (the Lucene/Pyserini form, with the (k1+1) factor kept):
//
//	score(q, d) = sum over query tokens t of
//	    idf(t) * tf(t,d) * (k1+1) / (tf(t,d) + k1 * (1 - b + b * |d| / avgdl))
//	idf(t)    = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))
//
// A token repeated in the query counts once per repetition, as in a
// bag-of-words Lucene query. Defaults are k1 = 0.9, b = 0.4, Pyserini's
// BM25 defaults for the BEIR baselines; Elasticsearch's (the BEIR paper's
// own BM25 runs) are k1 = 1.2, b = 0.75. Unlike Lucene, document lengths are
// exact (Lucene stores them lossily in one byte), so scores can differ from
// Pyserini's in the last digits and near-ties may order differently.
package bm25

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"sort"
	"sync"

	"github.com/ragtune/ragtune/retrieval/topk"
)

// Params are the BM25 and tokenizer settings of an index.
type Params struct {
	K1        float64 `json:"k1"`
	B         float64 `json:"b"`
	Stopwords bool    `json:"stopwords"` // drop English stopwords
}

// DefaultParams are Pyserini's BM25 defaults, without stopword removal.
var DefaultParams = Params{K1: 0.9, B: 0.4}

// Validate checks the ranges BM25 is defined on.
func (p Params) Validate() error {
	if !(p.K1 >= 0) || math.IsInf(p.K1, 0) {
		return fmt.Errorf("bm25: k1 = %g, want >= 0", p.K1)
	}
	if !(p.B >= 0 && p.B <= 1) {
		return fmt.Errorf("bm25: b = %g, want 0 <= b <= 1", p.B)
	}
	return nil
}

// posting is one (document row, term frequency) entry of a term's list.
type posting struct {
	row int32
	tf  int32
}

// Index is a BM25 index. Search is safe for concurrent use.
type Index struct {
	params   Params
	ids      []string // ascending; row i is ids[i]
	lengths  []int32  // tokens per document
	avgLen   float64
	postings map[string][]posting // by row ascending
}

// Hit is one search result.
type Hit struct {
	ID    string
	Score float32
}

// Build indexes parallel ids and texts (ids unique and non-empty).
func Build(ids, texts []string, p Params) (*Index, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if len(ids) != len(texts) {
		return nil, fmt.Errorf("bm25: %d ids for %d texts", len(ids), len(texts))
	}
	if len(ids) == 0 {
		return nil, errors.New("bm25: no documents")
	}
	order := make([]int, len(ids))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return ids[order[a]] < ids[order[b]] })
	ix := &Index{params: p, ids: make([]string, len(ids)), lengths: make([]int32, len(ids)), postings: map[string][]posting{}}
	tok := NewTokenizer(p.Stopwords)
	var total int64
	tf := map[string]int32{}
	for row, i := range order {
		if ids[i] == "" {
			return nil, fmt.Errorf("bm25: document %d has an empty id", i)
		}
		if row > 0 && ids[i] == ix.ids[row-1] {
			return nil, fmt.Errorf("bm25: duplicate document id %q", ids[i])
		}
		ix.ids[row] = ids[i]
		clear(tf)
		toks := tok.Tokens(texts[i])
		for _, t := range toks {
			tf[t]++
		}
		for t, n := range tf {
			ix.postings[t] = append(ix.postings[t], posting{row: int32(row), tf: n})
		}
		ix.lengths[row] = int32(len(toks))
		total += int64(len(toks))
	}
	ix.avgLen = float64(total) / float64(len(ids))
	return ix, nil
}

// Params returns the index's settings.
func (ix *Index) Params() Params { return ix.params }

// Len returns the number of documents.
func (ix *Index) Len() int { return len(ix.ids) }

// Terms returns the vocabulary size.
func (ix *Index) Terms() int { return len(ix.postings) }

// Search returns the k best documents for each query text, best first;
// documents sharing no token with a query are never returned, so a query may
// get fewer than k hits. Ties go to the smaller document id.
func (ix *Index) Search(queries []string, k int) ([][]Hit, error) {
	if k <= 0 {
		return nil, fmt.Errorf("bm25 search: k = %d, want >= 1", k)
	}
	out := make([][]Hit, len(queries))
	workers := max(1, min(runtime.GOMAXPROCS(0), len(queries)))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			acc := make([]float32, len(ix.ids)) // per-worker score accumulator
			var touched []int32
			tok := NewTokenizer(ix.params.Stopwords)
			for qi := w; qi < len(queries); qi += workers {
				touched = ix.accumulate(tok.Tokens(queries[qi]), acc, touched[:0])
				sel := topk.New(k)
				for _, row := range touched {
					sel.Push(row, acc[row])
					acc[row] = 0
				}
				hits := sel.Sorted()
				res := make([]Hit, len(hits))
				for r, h := range hits {
					res[r] = Hit{ID: ix.ids[h.Row], Score: h.Score}
				}
				out[qi] = res
			}
		})
	}
	wg.Wait()
	return out, nil
}

// accumulate adds each query token's BM25 contribution into acc and returns
// the rows it touched.
func (ix *Index) accumulate(tokens []string, acc []float32, touched []int32) []int32 {
	n := float64(len(ix.ids))
	k1, b := ix.params.K1, ix.params.B
	for _, t := range tokens {
		list := ix.postings[t]
		if len(list) == 0 {
			continue
		}
		df := float64(len(list))
		idf := math.Log(1 + (n-df+0.5)/(df+0.5))
		for _, p := range list {
			tf := float64(p.tf)
			norm := k1 * (1 - b + b*float64(ix.lengths[p.row])/ix.avgLen)
			if acc[p.row] == 0 {
				touched = append(touched, p.row)
			}
			acc[p.row] += float32(idf * tf * (k1 + 1) / (tf + norm))
		}
	}
	return touched
}
