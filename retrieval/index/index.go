// Package index is ragtune's embedded vector index: exact (brute-force)
// search over one contiguous row-major matrix of float32 vectors, persisted
// as Arrow IPC files in an index folder (see Save and Open).
//
// Ranking is deterministic: higher score first, and on equal scores the
// smaller document id (byte order) first. Rows are kept sorted by document
// id, so this is "lower row first" (package topk).
//
// Many queries are searched at once: the kernel scores a batch of queries
// against a block of documents in one matrix product, so each document vector
// is read from memory once per batch instead of once per query.
package index

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"sort"
	"sync"

	"github.com/ragtune/ragtune/retrieval/topk"
)

// Metric is how a query and a document vector are compared.
type Metric string

const (
	// Cosine compares directions: vectors are normalised to unit length when
	// they enter the index (documents) or a search (queries), and the score
	// is their dot product, in [-1, 1].
	Cosine Metric = "cosine"
	// Dot is the raw inner product, for models trained with it.
	Dot Metric = "dot"
)

// ParseMetric checks a metric name.
func ParseMetric(s string) (Metric, error) {
	switch Metric(s) {
	case Cosine, Dot:
		return Metric(s), nil
	}
	return "", fmt.Errorf("unknown metric %q (want cosine or dot)", s)
}

// Hit is one search result.
type Hit struct {
	ID    string
	Score float32
}

// Index is an exact vector index. Search is safe for concurrent use; the
// index is immutable once built.
type Index struct {
	metric Metric
	dim    int
	ids    []string  // ascending, unique
	vecs   []float32 // len(ids)*dim; row i belongs to ids[i]

	// Kernel scores query batches against document blocks; nil means GoKernel{}.
	Kernel Kernel
}

// Build makes an index from ids and their vectors (all of one length). Rows
// are reordered by id. Duplicate ids, empty ids, non-finite values, ragged
// vectors and (with Cosine) zero vectors are errors that name the position.
func Build(metric Metric, ids []string, vectors [][]float32) (*Index, error) {
	if len(ids) != len(vectors) {
		return nil, fmt.Errorf("build index: %d ids for %d vectors", len(ids), len(vectors))
	}
	if len(ids) == 0 {
		return nil, errors.New("build index: no vectors")
	}
	dim := len(vectors[0])
	flat := make([]float32, 0, len(ids)*dim)
	for i, v := range vectors {
		if len(v) != dim {
			return nil, fmt.Errorf("build index: vector %d (id %q) has %d dimensions, vector 0 has %d", i, ids[i], len(v), dim)
		}
		flat = append(flat, v...)
	}
	return FromMatrix(metric, dim, ids, flat)
}

// FromMatrix is Build for vectors already in one row-major matrix; it takes
// ownership of ids and flat (both are reordered in place).
func FromMatrix(metric Metric, dim int, ids []string, flat []float32) (*Index, error) {
	if _, err := ParseMetric(string(metric)); err != nil {
		return nil, fmt.Errorf("build index: %w", err)
	}
	if dim <= 0 {
		return nil, fmt.Errorf("build index: dimension %d", dim)
	}
	if len(flat) != len(ids)*dim {
		return nil, fmt.Errorf("build index: %d floats for %d ids of dimension %d", len(flat), len(ids), dim)
	}
	for i, id := range ids {
		if id == "" {
			return nil, fmt.Errorf("build index: vector %d has an empty id", i)
		}
	}
	if err := prepareRows(flat, len(ids), dim, metric, ids); err != nil {
		return nil, err
	}
	ix := &Index{metric: metric, dim: dim}
	ix.ids, ix.vecs = sortRows(ids, flat, dim)
	for i := 1; i < len(ix.ids); i++ {
		if ix.ids[i] == ix.ids[i-1] {
			return nil, fmt.Errorf("build index: duplicate id %q", ix.ids[i])
		}
	}
	return ix, nil
}

// prepareRows checks every row (checkVector) and, under Cosine, normalises
// it in place, in parallel across GOMAXPROCS goroutines. The error, if any,
// is the one of the lowest bad row, as a sequential pass would report.
func prepareRows(flat []float32, n, dim int, metric Metric, ids []string) error {
	workers := max(1, min(runtime.GOMAXPROCS(0), n/1024))
	errs := make([]error, workers)
	per := (n + workers - 1) / workers
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w * per; i < min(n, (w+1)*per); i++ {
				row := flat[i*dim : (i+1)*dim]
				if err := checkVector(row, metric); err != nil {
					errs[w] = fmt.Errorf("build index: vector %d (id %q): %w", i, ids[i], err)
					return
				}
				if metric == Cosine {
					normalize(row)
				}
			}
		})
	}
	wg.Wait()
	return firstError(errs)
}

func firstError(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// sortRows orders ids ascending and permutes the matrix rows to match.
func sortRows(ids []string, flat []float32, dim int) ([]string, []float32) {
	if sort.StringsAreSorted(ids) {
		return ids, flat
	}
	perm := make([]int, len(ids))
	for i := range perm {
		perm[i] = i
	}
	sort.Slice(perm, func(a, b int) bool { return ids[perm[a]] < ids[perm[b]] })
	sortedIDs := make([]string, len(ids))
	sorted := make([]float32, len(flat))
	for to, from := range perm {
		sortedIDs[to] = ids[from]
		copy(sorted[to*dim:(to+1)*dim], flat[from*dim:(from+1)*dim])
	}
	return sortedIDs, sorted
}

// checkVector rejects values that would poison every score: NaN, ±Inf, and a
// zero vector under Cosine (it has no direction).
func checkVector(v []float32, metric Metric) error {
	var norm float64
	for j, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return fmt.Errorf("component %d is %v", j, x)
		}
		norm += float64(x) * float64(x)
	}
	if metric == Cosine && norm == 0 {
		return errors.New("zero vector has no direction for cosine")
	}
	return nil
}

func normalize(v []float32) {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	if math.Abs(s-1) < 1e-7 { // already unit length: keep the caller's exact values
		return
	}
	inv := 1 / math.Sqrt(s)
	for j := range v {
		v[j] = float32(float64(v[j]) * inv)
	}
}

// Metric returns how the index compares vectors.
func (ix *Index) Metric() Metric { return ix.metric }

// Dim returns the vector length.
func (ix *Index) Dim() int { return ix.dim }

// Len returns the number of documents.
func (ix *Index) Len() int { return len(ix.ids) }

// IDs returns the document ids in row order (ascending). Do not modify.
func (ix *Index) IDs() []string { return ix.ids }

// Vector returns row i's stored vector (normalised under Cosine). Do not modify.
func (ix *Index) Vector(i int) []float32 { return ix.vecs[i*ix.dim : (i+1)*ix.dim] }

// Batch sizes of Search: queryBatch queries (their vectors stay in L2 while a
// document block streams past) against docBlock documents per kernel call
// (the score block, queryBatch*docBlock floats, is the only scratch memory).
const (
	queryBatch = 96
	docBlock   = 8192
)

// Search returns the k best documents for each query, best first. Queries
// must have the index's dimension and finite values; under Cosine they are
// normalised (a copy; the caller's slices are not changed).
func (ix *Index) Search(queries [][]float32, k int) ([][]Hit, error) {
	if k <= 0 {
		return nil, fmt.Errorf("search: k = %d, want >= 1", k)
	}
	k = min(k, len(ix.ids))
	q := make([]float32, len(queries)*ix.dim)
	for i, v := range queries {
		if len(v) != ix.dim {
			return nil, fmt.Errorf("search: query %d has %d dimensions, the index has %d", i, len(v), ix.dim)
		}
		if err := checkVector(v, ix.metric); err != nil {
			return nil, fmt.Errorf("search: query %d: %w", i, err)
		}
		row := q[i*ix.dim : (i+1)*ix.dim]
		copy(row, v)
		if ix.metric == Cosine {
			normalize(row)
		}
	}
	out := make([][]Hit, len(queries))
	for lo := 0; lo < len(queries); lo += queryBatch {
		hi := min(lo+queryBatch, len(queries))
		for i, sel := range ix.searchBatch(q[lo*ix.dim:hi*ix.dim], hi-lo, k) {
			hits := sel.Sorted()
			res := make([]Hit, len(hits))
			for r, h := range hits {
				res[r] = Hit{ID: ix.ids[h.Row], Score: h.Score}
			}
			out[lo+i] = res
		}
	}
	return out, nil
}

// searchBatch scores nq prepared query rows against every document block and
// keeps each query's top k. Selection is split across goroutines by query.
func (ix *Index) searchBatch(q []float32, nq, k int) []*topk.Selector {
	kernel := ix.Kernel
	if kernel == nil {
		kernel = GoKernel{}
	}
	sels := make([]*topk.Selector, nq)
	for i := range sels {
		sels[i] = topk.New(k)
	}
	n := len(ix.ids)
	scores := make([]float32, nq*min(docBlock, n))
	workers := min(runtime.GOMAXPROCS(0), nq)
	for lo := 0; lo < n; lo += docBlock {
		nd := min(docBlock, n-lo)
		kernel.Scores(q, nq, ix.vecs[lo*ix.dim:(lo+nd)*ix.dim], nd, ix.dim, scores)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := w; i < nq; i += workers {
					sels[i].PushScores(int32(lo), scores[i*nd:(i+1)*nd])
				}
			})
		}
		wg.Wait()
	}
	return sels
}
