// Package indexdir builds and opens whole index folders (INDEX_DIR): the
// documents' texts, a dense index (package index), a BM25 index (package
// bm25) or both, and the manifest that says which and how a hybrid folder
// fuses them; Open turns a folder back into an evaluate.Retriever, and
// ChooseFusion picks a hybrid folder's fusion on judged queries.
package indexdir

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/ragtune/ragtune/retrieval"
	"github.com/ragtune/ragtune/retrieval/bm25"
	"github.com/ragtune/ragtune/retrieval/evaluate"
	"github.com/ragtune/ragtune/retrieval/hybrid"
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
// evaluate.LookupQueries); a hybrid folder fuses its dense and BM25 rankings
// of depth results each as its manifest's fusion says (RRF when unset).
func Open(dir string, encode evaluate.QueryEncoder, kernel index.Kernel, depth int) (evaluate.Retriever, *index.Manifest, error) {
	p, err := OpenParts(dir, encode, kernel)
	if err != nil {
		return nil, nil, err
	}
	var spec hybrid.Spec
	if f := p.Manifest.Fusion; f != nil {
		spec = f.Spec
	}
	return p.Retriever(spec, depth), p.Manifest, nil
}

// Parts are the retrievers of an index folder; Dense or Lexical is nil when
// the folder lacks it.
type Parts struct {
	Manifest       *index.Manifest
	Dense, Lexical evaluate.Retriever
}

// OpenParts loads an index folder's retrievers, unfused (see Open for encode).
func OpenParts(dir string, encode evaluate.QueryEncoder, kernel index.Kernel) (*Parts, error) {
	m, err := index.ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	p := &Parts{Manifest: m}
	if m.HasDense() {
		if encode == nil {
			return nil, fmt.Errorf("%s: a %s index needs query vectors (a model or --query-vectors)", dir, m.Kind)
		}
		ix, err := index.Open(dir, m)
		if err != nil {
			return nil, err
		}
		ix.Kernel = kernel
		p.Dense = evaluate.Dense{Index: ix, Encode: encode}
	}
	if m.HasBM25() {
		bx, err := bm25.Open(dir)
		if err != nil {
			return nil, err
		}
		p.Lexical = evaluate.Lexical{Index: bx}
	}
	return p, nil
}

// Retriever is the folder's one retriever, or for a hybrid folder the
// fusion spec says (a single-retriever spec skips the other part).
func (p *Parts) Retriever(spec hybrid.Spec, depth int) evaluate.Retriever {
	switch {
	case p.Lexical == nil || spec.Method == hybrid.MethodDense:
		return p.Dense
	case p.Dense == nil || spec.Method == hybrid.MethodBM25:
		return p.Lexical
	}
	return evaluate.Fused{Dense: p.Dense, Lexical: p.Lexical, Spec: spec, Depth: depth}
}

// FusionOptions say what ChooseFusion tries.
type FusionOptions struct {
	Methods []hybrid.Method // candidate methods (nil: rrf and every weighted one)
	Weights []float64       // dense weights tried (nil: hybrid.Grid(0.05))
	Given   *hybrid.Spec    // score this spec only and keep it, beaten or not
	Metric  string          // what to maximise (default "ndcg@10")
	Split   string          // names the judged queries in the record
	Depth   int             // results per retriever and per fused list (default evaluate.RunDepth)
	// Progress (may be nil) hears how many of the 2×len(queries) retrievals are done.
	Progress func(done, total int)
}

// DefaultFusionMetric is what fusion maximises unless told otherwise.
const DefaultFusionMetric = "ndcg@10"

// ChooseFusion runs the judged queries through both parts of a hybrid
// folder and chooses the fusion by opts.Metric against qrels (hybrid.Choose:
// a fusion only when it beats the better single retriever). With opts.Given
// it scores that spec and the single retrievers and records the spec as given.
func (p *Parts) ChooseFusion(ctx context.Context, queries []evaluate.Query, qrels evaluate.Qrels, opts FusionOptions) (*hybrid.Choice, error) {
	if p.Dense == nil || p.Lexical == nil {
		return nil, errors.New("choose fusion: the index is not hybrid")
	}
	if opts.Metric == "" {
		opts.Metric = DefaultFusionMetric
	}
	name, kText, ok := strings.Cut(opts.Metric, "@")
	ks, err := evaluate.ParseKs(kText)
	if !ok || err != nil || len(ks) != 1 || !knownMeasure(name) {
		return nil, fmt.Errorf("fusion metric %q: want a measure at one cut-off, e.g. ndcg@10", opts.Metric)
	}
	if opts.Depth <= 0 {
		opts.Depth = evaluate.RunDepth
	}
	judged, _ := evaluate.JudgedQueries(queries, qrels)
	if len(judged) == 0 {
		return nil, fmt.Errorf("choose fusion: no judged query of split %q has a text", opts.Split)
	}
	runs := make([]evaluate.Run, 2)
	for i, r := range []evaluate.Retriever{p.Dense, p.Lexical} {
		runs[i], err = evaluate.Retrieve(ctx, r, judged, opts.Depth, 256, func(done int) {
			if opts.Progress != nil {
				opts.Progress(i*len(judged)+done, 2*len(judged))
			}
		})
		if err != nil {
			return nil, err
		}
	}
	score := func(run hybrid.Run) float64 { return evaluate.Evaluate(run, qrels, ks).Metrics[opts.Metric] }
	var candidates []hybrid.Spec
	switch {
	case opts.Given != nil:
		candidates = []hybrid.Spec{*opts.Given}
	default:
		methods, weights := opts.Methods, opts.Weights
		if methods == nil {
			methods = append([]hybrid.Method{hybrid.MethodRRF}, hybrid.Weighted...)
		}
		if weights == nil {
			weights = hybrid.Grid(0.05)
		}
		candidates = hybrid.Candidates(methods, weights, 0)
	}
	c := hybrid.Choose(runs[0], runs[1], score, candidates, opts.Depth, opts.Split, opts.Metric)
	if opts.Given != nil {
		c.Spec, c.Score, c.Chosen = *opts.Given, c.Candidates[0].Score, hybrid.ChosenGiven
	}
	return &c, nil
}

func knownMeasure(name string) bool {
	for _, m := range evaluate.Measures {
		if m.Name == name {
			return true
		}
	}
	return false
}

// RecordFusion writes choice into the folder's manifest (atomically).
func RecordFusion(dir string, choice *hybrid.Choice) error {
	m, err := index.ReadManifest(dir)
	if err != nil {
		return err
	}
	m.Fusion = choice
	return index.WriteManifest(dir, *m)
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
