package augment

import (
	"context"
	"fmt"
	"math"

	"github.com/ragtune/ragtune/retrieval"
	"github.com/ragtune/ragtune/retrieval/dataset"
	"github.com/ragtune/ragtune/retrieval/topk"
)

// EmbeddingRanker ranks the corpus by cosine similarity under an embedding
// model: the consistency filter with --filter-model. The corpus is embedded
// once, here.
func EmbeddingRanker(ctx context.Context, emb retrieval.Embedder, d *dataset.Dataset) (dataset.Ranker, error) {
	texts := make([]string, len(d.Corpus))
	for i, doc := range d.Corpus {
		texts[i] = d.DocText(doc)
	}
	docs, err := emb.Embed(ctx, texts, retrieval.Document)
	if err != nil {
		return nil, fmt.Errorf("embed the corpus: %w", err)
	}
	for _, v := range docs {
		unit(v)
	}
	return &embeddingRanker{ctx: ctx, emb: emb, d: d, docs: docs}, nil
}

type embeddingRanker struct {
	ctx  context.Context
	emb  retrieval.Embedder
	d    *dataset.Dataset
	docs [][]float32
}

func (r *embeddingRanker) Search(queries []string, k int) ([][]dataset.Hit, error) {
	qs, err := r.emb.Embed(r.ctx, queries, retrieval.Query)
	if err != nil {
		return nil, fmt.Errorf("embed the generated queries: %w", err)
	}
	out := make([][]dataset.Hit, len(qs))
	for i, q := range qs {
		unit(q)
		best := topk.New(k)
		for j, dv := range r.docs {
			var s float32
			for x := range q {
				s += q[x] * dv[x]
			}
			best.Push(int32(j), s)
		}
		for _, h := range best.Sorted() {
			out[i] = append(out[i], dataset.Hit{DocID: r.d.Corpus[h.Row].ID, Score: float64(h.Score)})
		}
	}
	return out, nil
}

func unit(v []float32) {
	var n float64
	for _, x := range v {
		n += float64(x) * float64(x)
	}
	if n > 0 {
		s := float32(1 / math.Sqrt(n))
		for i := range v {
			v[i] *= s
		}
	}
}
