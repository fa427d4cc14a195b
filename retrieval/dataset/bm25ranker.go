package dataset

import "github.com/ragtune/ragtune/retrieval/bm25"

// bm25Ranker ranks a corpus with an in-memory BM25 index.
type bm25Ranker struct{ ix *bm25.Index }

// BM25Ranker ranks d's corpus (title and text) with BM25's default
// parameters: the lexical miner of HardNegatives.
func (d *Dataset) BM25Ranker() (Ranker, error) {
	ids := make([]string, len(d.Corpus))
	texts := make([]string, len(d.Corpus))
	for i, doc := range d.Corpus {
		ids[i], texts[i] = doc.ID, d.DocText(doc)
	}
	ix, err := bm25.Build(ids, texts, bm25.DefaultParams)
	if err != nil {
		return nil, err
	}
	return bm25Ranker{ix}, nil
}

func (r bm25Ranker) Search(queries []string, k int) ([][]Hit, error) {
	res, err := r.ix.Search(queries, k)
	if err != nil {
		return nil, err
	}
	out := make([][]Hit, len(res))
	for i, hits := range res {
		out[i] = make([]Hit, len(hits))
		for j, h := range hits {
			out[i][j] = Hit{DocID: h.ID, Score: float64(h.Score)}
		}
	}
	return out, nil
}
