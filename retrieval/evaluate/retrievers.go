package evaluate

import (
	"context"
	"fmt"

	"github.com/ragtune/ragtune/retrieval"
	"github.com/ragtune/ragtune/retrieval/bm25"
	"github.com/ragtune/ragtune/retrieval/hybrid"
	"github.com/ragtune/ragtune/retrieval/index"
	"github.com/ragtune/ragtune/retrieval/metrics"
)

// Retriever answers a batch of queries with up to k results each, best first.
type Retriever interface {
	Retrieve(ctx context.Context, queries []Query, k int) ([][]metrics.Result, error)
}

// QueryEncoder turns queries into vectors for a dense index.
type QueryEncoder func(ctx context.Context, queries []Query) ([][]float32, error)

// EmbedQueries encodes query texts with an Embedder (kind Query).
func EmbedQueries(e retrieval.Embedder) QueryEncoder {
	return func(ctx context.Context, queries []Query) ([][]float32, error) {
		texts := make([]string, len(queries))
		for i, q := range queries {
			texts[i] = q.Text
		}
		vs, err := e.Embed(ctx, texts, retrieval.Query)
		if err != nil {
			return nil, fmt.Errorf("embed queries: %w", err)
		}
		if len(vs) != len(texts) {
			return nil, fmt.Errorf("embed queries: %d vectors for %d texts", len(vs), len(texts))
		}
		return vs, nil
	}
}

// LookupQueries encodes queries by looking their ids up among precomputed
// vectors (see index.MatchVectors).
func LookupQueries(byID map[string][]float32) QueryEncoder {
	return func(_ context.Context, queries []Query) ([][]float32, error) {
		out := make([][]float32, len(queries))
		for i, q := range queries {
			v, ok := byID[q.ID]
			if !ok {
				return nil, fmt.Errorf("no query vector for query %q", q.ID)
			}
			out[i] = v
		}
		return out, nil
	}
}

// Dense searches an exact vector index.
type Dense struct {
	Index  *index.Index
	Encode QueryEncoder
}

// Retrieve implements Retriever.
func (d Dense) Retrieve(ctx context.Context, queries []Query, k int) ([][]metrics.Result, error) {
	vs, err := d.Encode(ctx, queries)
	if err != nil {
		return nil, err
	}
	hits, err := d.Index.Search(vs, k)
	if err != nil {
		return nil, err
	}
	out := make([][]metrics.Result, len(hits))
	for i, hs := range hits {
		out[i] = make([]metrics.Result, len(hs))
		for j, h := range hs {
			out[i][j] = metrics.Result{DocID: h.ID, Score: float64(h.Score)}
		}
	}
	return out, nil
}

// Lexical searches a BM25 index with the query texts.
type Lexical struct {
	Index *bm25.Index
}

// Retrieve implements Retriever.
func (l Lexical) Retrieve(_ context.Context, queries []Query, k int) ([][]metrics.Result, error) {
	texts := make([]string, len(queries))
	for i, q := range queries {
		texts[i] = q.Text
	}
	hits, err := l.Index.Search(texts, k)
	if err != nil {
		return nil, err
	}
	out := make([][]metrics.Result, len(hits))
	for i, hs := range hits {
		out[i] = make([]metrics.Result, len(hs))
		for j, h := range hs {
			out[i][j] = metrics.Result{DocID: h.ID, Score: float64(h.Score)}
		}
	}
	return out, nil
}

// Fused fuses a dense and a lexical retriever's top Depth results as Spec
// says (package hybrid; the zero Spec is plain RRF).
type Fused struct {
	Dense, Lexical Retriever
	Spec           hybrid.Spec
	Depth          int
}

// Retrieve implements Retriever.
func (f Fused) Retrieve(ctx context.Context, queries []Query, k int) ([][]metrics.Result, error) {
	depth := max(f.Depth, k)
	spec := f.Spec
	if spec.Method == "" {
		spec.Method = hybrid.MethodRRF
	}
	dense, err := f.Dense.Retrieve(ctx, queries, depth)
	if err != nil {
		return nil, err
	}
	lexical, err := f.Lexical.Retrieve(ctx, queries, depth)
	if err != nil {
		return nil, err
	}
	out := make([][]metrics.Result, len(queries))
	for i := range queries {
		out[i] = spec.Fuse(dense[i], lexical[i], k)
	}
	return out, nil
}

// Retrieve runs every query through r in batches of batch queries and
// collects a Run; progress (may be nil) hears after each batch.
func Retrieve(ctx context.Context, r Retriever, queries []Query, k, batch int, progress func(done int)) (Run, error) {
	if batch <= 0 {
		batch = 256
	}
	run := make(Run, len(queries))
	for lo := 0; lo < len(queries); lo += batch {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hi := min(lo+batch, len(queries))
		res, err := r.Retrieve(ctx, queries[lo:hi], k)
		if err != nil {
			return nil, err
		}
		for i, q := range queries[lo:hi] {
			run[q.ID] = res[i]
		}
		if progress != nil {
			progress(hi)
		}
	}
	return run, nil
}
