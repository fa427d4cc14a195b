package train

import (
	"context"
	"fmt"

	"github.com/ragtune/ragtune/retrieval"
	"github.com/ragtune/ragtune/retrieval/dataset"
	"github.com/ragtune/ragtune/retrieval/index"
	"github.com/ragtune/ragtune/retrieval/metrics"
)

// Scores are retrieval metrics of one evaluation, keyed "ndcg@10" etc.
type Scores map[string]float64

// Validator measures retrieval quality on one split of a dataset: it embeds
// the corpus and the split's queries, searches exactly (cosine) and averages
// nDCG, Recall and MRR at each cut-off over queries with relevant documents.
type Validator struct {
	Ks      []int
	docIDs  []string
	docs    []string
	queries []dataset.Query
	rel     map[string]map[string]int
	// docVecs caches the corpus embedding when documents do not change
	// between evaluations (query-side-only adaptation).
	docVecs   [][]float32
	CacheDocs bool
}

// NewValidator prepares evaluation of split (e.g. "validation") at the
// cut-offs 1, 5, 10 and k.
func NewValidator(d *dataset.Dataset, split string, k int) (*Validator, error) {
	v := &Validator{Ks: []int{1, 5, 10}, rel: d.Relevant(split)}
	if k != 1 && k != 5 && k != 10 {
		v.Ks = append(v.Ks, k)
	}
	for _, q := range d.SplitQueries(split) {
		if len(v.rel[q.ID]) > 0 {
			v.queries = append(v.queries, q)
		}
	}
	if len(v.queries) == 0 {
		return nil, fmt.Errorf("split %q has no queries with relevant documents", split)
	}
	for _, doc := range d.Corpus {
		v.docIDs = append(v.docIDs, doc.ID)
		v.docs = append(v.docs, d.DocText(doc))
	}
	return v, nil
}

// Queries is the number of evaluated queries.
func (v *Validator) Queries() int { return len(v.queries) }

// Evaluate embeds with e and scores the ranking.
func (v *Validator) Evaluate(ctx context.Context, e retrieval.Embedder) (Scores, error) {
	docVecs := v.docVecs
	if docVecs == nil {
		var err error
		if docVecs, err = e.Embed(ctx, v.docs, retrieval.Document); err != nil {
			return nil, fmt.Errorf("embedding the corpus: %w", err)
		}
		if v.CacheDocs {
			v.docVecs = docVecs
		}
	}
	ix, err := index.Build(index.Cosine, v.docIDs, docVecs)
	if err != nil {
		return nil, err
	}
	texts := make([]string, len(v.queries))
	for i, q := range v.queries {
		texts[i] = q.Text
	}
	qVecs, err := e.Embed(ctx, texts, retrieval.Query)
	if err != nil {
		return nil, fmt.Errorf("embedding the queries: %w", err)
	}
	depth := 0
	for _, k := range v.Ks {
		depth = max(depth, k)
	}
	hits, err := ix.Search(qVecs, depth)
	if err != nil {
		return nil, err
	}
	s := Scores{}
	for i, q := range v.queries {
		ranking := make([]string, len(hits[i]))
		for j, h := range hits[i] {
			ranking[j] = h.ID
		}
		rel := v.rel[q.ID]
		for _, k := range v.Ks {
			s[fmt.Sprintf("ndcg@%d", k)] += metrics.NDCG(ranking, rel, k)
			s[fmt.Sprintf("recall@%d", k)] += metrics.Recall(ranking, rel, k)
			s[fmt.Sprintf("mrr@%d", k)] += metrics.MRR(ranking, rel, k)
		}
	}
	for n := range s {
		s[n] /= float64(len(v.queries))
	}
	return s, nil
}
