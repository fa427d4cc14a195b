// Package indexdir builds and opens whole index folders (INDEX_DIR): the
// documents' texts, a dense index (package index), a BM25 index (package
// bm25) or both, and the manifest that says which; Open turns a folder back
// into an evaluate.Retriever.
package indexdir

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/ragtune/ragtune/retrieval"
	"github.com/ragtune/ragtune/retrieval/bm25"
	"github.com/ragtune/ragtune/retrieval/evaluate"
	"github.com/ragtune/ragtune/retrieval/index"
)

// Options says what to build. At least one of Vectors and BM25 is set.
type Options struct {
	// Vectors are the documents' vectors, parallel to the docs (nil: no dense index).
	Vectors [][]float32
	Metric  index.Metric
	// Embedder records how Vectors were made (model, adapter, or an EMB.jsonl).
	Embedder *index.EmbedderSpec
	// BM25 builds a lexical index with these parameters (nil: none).
	BM25 *bm25.Params
	// Corpus names where the documents came from, for the manifest.
	Corpus string
}

// Summary describes a built or opened folder.
type Summary struct {
	Manifest  *index.Manifest `json:"manifest"`
	BM25      *bm25.Params    `json:"bm25,omitempty"`
	BM25Terms int             `json:"bm25_terms,omitempty"`
}

// Build writes an index folder for docs into dir (created if needed). The
// manifest is written last, so an interrupted build leaves no valid folder.
func Build(dir string, docs []evaluate.Doc, opts Options) (*Summary, error) {
	if opts.Vectors == nil && opts.BM25 == nil {
		return nil, errors.New("build index: nothing to build (want vectors, BM25 or both)")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	ids, texts := make([]string, len(docs)), make([]string, len(docs))
	for i, d := range docs {
		ids[i], texts[i] = d.ID, evaluate.DocText(d)
	}
	m := index.Manifest{Count: len(docs), Corpus: opts.Corpus}
	sum := &Summary{Manifest: &m}
	if opts.Vectors != nil {
		ix, err := index.Build(opts.Metric, append([]string(nil), ids...), opts.Vectors)
		if err != nil {
			return nil, err
		}
		if err := ix.Save(dir); err != nil {
			return nil, err
		}
		m.Kind, m.Metric, m.Dim, m.Embedder = index.Dense, ix.Metric(), ix.Dim(), opts.Embedder
	}
	if opts.BM25 != nil {
		bx, err := bm25.Build(ids, texts, *opts.BM25)
		if err != nil {
			return nil, err
		}
		if err := bx.Save(dir); err != nil {
			return nil, err
		}
		p := bx.Params()
		sum.BM25, sum.BM25Terms = &p, bx.Terms()
		if m.Kind == index.Dense {
			m.Kind = index.Hybrid
		} else {
			m.Kind = index.BM25
		}
	}
	if err := index.SaveDocs(dir, ids, texts); err != nil {
		return nil, err
	}
	if err := index.WriteManifest(dir, m); err != nil {
		return nil, err
	}
	return sum, nil
}

// Info reads a folder's manifest and, for a lexical index, its parameters.
func Info(dir string) (*Summary, error) {
	m, err := index.ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	sum := &Summary{Manifest: m}
	if m.HasBM25() {
		bx, err := bm25.Open(dir)
		if err != nil {
			return nil, err
		}
		p := bx.Params()
		sum.BM25, sum.BM25Terms = &p, bx.Terms()
	}
	return sum, nil
}

// Open loads an index folder as a Retriever. A folder with vectors needs
// encode to turn queries into vectors (see evaluate.EmbedQueries and
// evaluate.LookupQueries); a hybrid folder fuses the dense and the BM25
// rankings of depth results each by reciprocal rank.
func Open(dir string, encode evaluate.QueryEncoder, kernel index.Kernel, depth int) (evaluate.Retriever, *index.Manifest, error) {
	m, err := index.ReadManifest(dir)
	if err != nil {
		return nil, nil, err
	}
	var parts []evaluate.Retriever
	if m.HasDense() {
		if encode == nil {
			return nil, nil, fmt.Errorf("%s: a %s index needs query vectors (a model or --query-vectors)", dir, m.Kind)
		}
		ix, err := index.Open(dir, m)
		if err != nil {
			return nil, nil, err
		}
		ix.Kernel = kernel
		parts = append(parts, evaluate.Dense{Index: ix, Encode: encode})
	}
	if m.HasBM25() {
		bx, err := bm25.Open(dir)
		if err != nil {
			return nil, nil, err
		}
		parts = append(parts, evaluate.Lexical{Index: bx})
	}
	if len(parts) == 1 {
		return parts[0], m, nil
	}
	return evaluate.Fused{Parts: parts, Depth: depth}, m, nil
}

// EmbedTexts embeds texts in chunks of chunk with e, calling progress (may
// be nil) with the number done after each chunk.
func EmbedTexts(ctx context.Context, e retrieval.Embedder, texts []string, kind retrieval.TextKind, chunk int, progress func(done int)) ([][]float32, error) {
	chunk = max(chunk, 1)
	out := make([][]float32, 0, len(texts))
	for lo := 0; lo < len(texts); lo += chunk {
		hi := min(lo+chunk, len(texts))
		vs, err := e.Embed(ctx, texts[lo:hi], kind)
		if err != nil {
			return nil, fmt.Errorf("embed texts %d-%d: %w", lo+1, hi, err)
		}
		if len(vs) != hi-lo {
			return nil, fmt.Errorf("embed texts %d-%d: %d vectors for %d texts", lo+1, hi, len(vs), hi-lo)
		}
		out = append(out, vs...)
		if progress != nil {
			progress(hi)
		}
	}
	return out, nil
}
