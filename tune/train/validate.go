package train

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/ragtune/ragtune/retrieval"
	"github.com/ragtune/ragtune/retrieval/bm25"
	"github.com/ragtune/ragtune/retrieval/dataset"
	"github.com/ragtune/ragtune/retrieval/hybrid"
	"github.com/ragtune/ragtune/retrieval/index"
	"github.com/ragtune/ragtune/retrieval/metrics"
)

// Scores are retrieval metrics of one evaluation, keyed "ndcg@10" etc.
type Scores map[string]float64

// Default validation bounds of `ragtune train` and the built-in study
// objective. Validation embeds its documents once per epoch plus once for
// the base model, and on a large corpus that can cost more than training
// (issue 10: 15 minutes of a 3-step run on 6,000 documents). 1,000 queries
// put the standard error of a mean nDCG near 0.01, and every run validates
// the same queries, so epochs and trials are compared pair by pair; 5,000
// documents (the judged ones of those queries first) are 500 times the
// nDCG@10 cut-off, so the ranking stays a real search, and a pass costs
// about two minutes at the MiniLM shape's speed on 2 cores (BENCHMARKS.md).
const (
	DefaultValQueries = 1000
	DefaultValDocs    = 5000
)

// valSeed fixes the validation sample: every run and every trial on the
// same data set validates on the same queries and documents, whatever its
// training seed, so their scores compare.
const valSeed = 0x76616c

// Sample bounds an evaluation: at most Queries queries (0: all), and at
// most Docs documents (0: the whole corpus): the judged documents of the
// kept queries, which are always kept, plus a seeded sample of the others.
type Sample struct {
	Queries, Docs int
	Seed          uint64
}

// SampleInfo says what an evaluation covers.
type SampleInfo struct {
	Queries      int  `json:"queries"`
	QueriesTotal int  `json:"queries_total"`
	Docs         int  `json:"docs"`
	CorpusDocs   int  `json:"corpus_docs"`
	JudgedDocs   int  `json:"judged_docs"` // of the kept queries, all in Docs
	Sampled      bool `json:"sampled"`     // fewer queries or documents than the split has
}

// Validator measures retrieval quality on one split of a dataset: it embeds
// the corpus (or a sample of it) and the split's queries (or a sample),
// searches exactly (cosine) and averages nDCG, Recall and MRR at each
// cut-off over queries with relevant documents.
type Validator struct {
	Ks      []int
	docIDs  []string
	docs    []string
	queries []dataset.Query
	rel     map[string]map[string]int
	info    SampleInfo
	// docVecs caches the corpus embedding when documents do not change
	// between evaluations (query-side-only adaptation).
	docVecs   [][]float32
	CacheDocs bool
	fusion    *validationFusion // nil: no hybrid scores
}

// validationFusion is what EnableFusion prepares: BM25's run over the
// validator's documents and queries, and what to fuse it with.
type validationFusion struct {
	lexical    hybrid.Run
	lexScores  Scores        // BM25 alone, under "bm25_" names: fixed, so scored once
	given      *hybrid.Spec  // score this spec; nil: choose among candidates
	candidates []hybrid.Spec // for hybrid.Choose
	measure    string        // ndcg, recall or mrr
	k          int
}

// fusionDepth is how many results of each ranking fusion sees.
const fusionDepth = 100

// EnableFusion makes every evaluation also score the model's ranking fused
// with a BM25 ranking of the same documents and queries, under "hybrid_"
// names (hybrid_ndcg@10, ...), with hybrid_weight (the dense weight; 0.5
// for rrf, 1 and 0 for the model or BM25 alone) and hybrid_fused (1 when a
// fusion beat both retrievers, else 0; the single retriever is used then),
// and BM25 alone under "bm25_" names, the baseline the fusion must beat.
// method is "auto" (every method and weight of hybrid.Grid(0.05), chosen
// by metric on these queries), a method of package hybrid with weight (a
// given spec) or a weighted method without one (its weight is chosen).
// metric is e.g. "ndcg@10". BM25 is built once, here.
func (v *Validator) EnableFusion(method string, weight *float64, metric string) error {
	f := &validationFusion{}
	measure, kText, _ := strings.Cut(metric, "@")
	k, err := strconv.Atoi(kText)
	if err != nil || k <= 0 || (measure != "ndcg" && measure != "recall" && measure != "mrr") {
		return fmt.Errorf("fusion metric %q: want ndcg, recall or mrr at a cut-off", metric)
	}
	f.measure, f.k = measure, k
	methods := append([]hybrid.Method{hybrid.MethodRRF}, hybrid.Weighted...)
	if method != "auto" {
		m, err := hybrid.ParseMethod(method)
		if err != nil {
			return err
		}
		spec := hybrid.Spec{Method: m}
		switch {
		case weight != nil && !m.IsWeighted():
			return fmt.Errorf("fusion weight: %s takes none", m)
		case weight != nil:
			spec.Weight = *weight
		}
		if err := spec.Validate(); err != nil {
			return err
		}
		if weight != nil || !m.IsWeighted() {
			f.given = &spec
		}
		methods = []hybrid.Method{m}
	} else if weight != nil {
		return errors.New("fusion weight: give a fusion method with it (wrrf, minmax or zscore)")
	}
	if f.given == nil {
		f.candidates = hybrid.Candidates(methods, hybrid.Grid(0.05), 0)
	}
	bx, err := bm25.Build(v.docIDs, v.docs, bm25.DefaultParams)
	if err != nil {
		return err
	}
	_, texts := v.Texts()
	hits, err := bx.Search(texts, fusionDepth)
	if err != nil {
		return err
	}
	f.lexical = hybrid.Run{}
	for i, q := range v.queries {
		for _, h := range hits[i] {
			f.lexical[q.ID] = append(f.lexical[q.ID], metrics.Result{DocID: h.ID, Score: float64(h.Score)})
		}
	}
	f.lexScores = Scores{}
	for _, k := range v.Ks {
		for _, m := range []string{"ndcg", "recall", "mrr"} {
			f.lexScores[fmt.Sprintf("bm25_%s@%d", m, k)] = v.mean(f.lexical, m, k)
		}
	}
	v.fusion = f
	return nil
}

// hybridScores fuses the model's run with BM25's and scores the result.
func (v *Validator) hybridScores(dense hybrid.Run, s Scores) {
	f := v.fusion
	score := func(run hybrid.Run) float64 { return v.mean(run, f.measure, f.k) }
	var c hybrid.Choice
	if f.given != nil {
		c = hybrid.Choice{Spec: *f.given}
	} else {
		c = hybrid.Choose(dense, f.lexical, score, f.candidates, fusionDepth, "", "")
	}
	fused := hybrid.FuseRuns(c.Spec, dense, f.lexical, fusionDepth)
	for _, k := range v.Ks {
		for _, m := range []string{"ndcg", "recall", "mrr"} {
			s[fmt.Sprintf("hybrid_%s@%d", m, k)] = v.mean(fused, m, k)
		}
	}
	maps.Copy(s, f.lexScores)
	switch c.Method {
	case hybrid.MethodRRF:
		s["hybrid_weight"] = 0.5
	case hybrid.MethodDense:
		s["hybrid_weight"] = 1
	default:
		s["hybrid_weight"] = c.Weight // 0 for BM25 alone
	}
	s["hybrid_fused"] = 0
	if c.Method.IsFusion() {
		s["hybrid_fused"] = 1
	}
}

// mean averages one measure at k over the validator's queries.
func (v *Validator) mean(run hybrid.Run, measure string, k int) float64 {
	fn := map[string]func([]string, map[string]int, int) float64{"ndcg": metrics.NDCG, "recall": metrics.Recall, "mrr": metrics.MRR}[measure]
	var sum float64
	for _, q := range v.queries {
		sum += fn(metrics.IDs(run[q.ID]), v.rel[q.ID], k)
	}
	return sum / float64(len(v.queries))
}

// NewValidator prepares evaluation of split (e.g. "validation") at the
// cut-offs 1, 5, 10 and k, on the whole split and corpus.
func NewValidator(d *dataset.Dataset, split string, k int) (*Validator, error) {
	return NewSampledValidator(d, split, k, Sample{})
}

// NewSampledValidator is NewValidator within the bounds of s. Queries and
// documents keep their order in the dataset.
func NewSampledValidator(d *dataset.Dataset, split string, k int, s Sample) (*Validator, error) {
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
	v.info = SampleInfo{QueriesTotal: len(v.queries), CorpusDocs: len(d.Corpus)}
	if s.Queries > 0 && s.Queries < len(v.queries) {
		keep := seededSubset(len(v.queries), s.Queries, rand.NewPCG(s.Seed, 0x71756572))
		kept := make([]dataset.Query, 0, s.Queries)
		for i, q := range v.queries {
			if keep[i] {
				kept = append(kept, q)
			}
		}
		v.queries = kept
	}
	judged := map[string]bool{}
	kept := map[string]bool{}
	for _, q := range v.queries {
		kept[q.ID] = true
	}
	for _, r := range d.Qrels[split] {
		if kept[r.QueryID] {
			judged[r.DocID] = true
		}
	}
	var keepDoc func(i int, id string) bool
	if s.Docs > 0 && s.Docs < len(d.Corpus) {
		var others []int
		for i, doc := range d.Corpus {
			if !judged[doc.ID] {
				others = append(others, i)
			}
		}
		want := max(0, s.Docs-(len(d.Corpus)-len(others)))
		pick := seededSubset(len(others), min(want, len(others)), rand.NewPCG(s.Seed, 0x646f6373))
		distractor := make(map[int]bool, want)
		for j, i := range others {
			if pick[j] {
				distractor[i] = true
			}
		}
		keepDoc = func(i int, id string) bool { return judged[id] || distractor[i] }
	}
	for i, doc := range d.Corpus {
		if keepDoc == nil || keepDoc(i, doc.ID) {
			v.docIDs = append(v.docIDs, doc.ID)
			v.docs = append(v.docs, d.DocText(doc))
			if judged[doc.ID] {
				v.info.JudgedDocs++
			}
		}
	}
	v.info.Queries, v.info.Docs = len(v.queries), len(v.docs)
	v.info.Sampled = v.info.Queries < v.info.QueriesTotal || v.info.Docs < v.info.CorpusDocs
	return v, nil
}

// seededSubset marks k of n positions, drawn by a seeded shuffle.
func seededSubset(n, k int, src rand.Source) []bool {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	rand.New(src).Shuffle(n, func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
	keep := make([]bool, n)
	for _, i := range idx[:k] {
		keep[i] = true
	}
	return keep
}

// Info says what the validator covers.
func (v *Validator) Info() SampleInfo { return v.info }

// Texts are the documents and queries one evaluation embeds.
func (v *Validator) Texts() (docs, queries []string) {
	queries = make([]string, len(v.queries))
	for i, q := range v.queries {
		queries[i] = q.Text
	}
	return v.docs, queries
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
	_, texts := v.Texts()
	qVecs, err := e.Embed(ctx, texts, retrieval.Query)
	if err != nil {
		return nil, fmt.Errorf("embedding the queries: %w", err)
	}
	depth := 0
	for _, k := range v.Ks {
		depth = max(depth, k)
	}
	if v.fusion != nil {
		depth = max(depth, fusionDepth)
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
	if v.fusion != nil {
		dense := hybrid.Run{}
		for i, q := range v.queries {
			for _, h := range hits[i] {
				dense[q.ID] = append(dense[q.ID], metrics.Result{DocID: h.ID, Score: float64(h.Score)})
			}
		}
		v.hybridScores(dense, s)
	}
	return s, nil
}
