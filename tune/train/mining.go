package train

import (
	"context"
	"fmt"

	"github.com/ragtune/ragtune/retrieval"
	"github.com/ragtune/ragtune/retrieval/dataset"
	"github.com/ragtune/ragtune/retrieval/index"
)

// Sources of mined hard negatives (Config.NegativesFrom).
const (
	NegativesBM25  = "bm25"  // BM25 over the dataset's corpus, mined once
	NegativesModel = "model" // the model being trained, re-mined as it learns
)

// DefaultNegativeMargin is the relative margin of mining's false-negative
// filter: a candidate scored above 95% of the positive's score is dropped
// as a likely unjudged positive (sentence-transformers' relative_margin).
const DefaultNegativeMargin = 0.05

// miningDepth is how deep each query's ranking is read for candidates: deep
// enough that the positive is usually in it, so its score is known.
const miningDepth = 100

// miner gives the training examples hard negatives mined with a Ranker,
// through dataset.HardNegatives (judged-relevant documents never become
// negatives; candidates within the margin of the positive are dropped).
// An example left with fewer than it needs is topped up with random
// negatives, so that one example does not take the hard negatives away
// from its whole batch (a batch uses as many as its poorest example has).
type miner struct {
	data   *dataset.Dataset
	opts   dataset.NegativeOptions
	random map[[2]string][]string // seeded random negatives by (query, positive)
	encode func(string) ([]int32, error)
	// Report is the last mining's.
	Report dataset.NegativeReport
}

func newMiner(d *dataset.Dataset, cfg Config, encode func(string) ([]int32, error)) (*miner, error) {
	switch cfg.NegativesFrom {
	case NegativesBM25, NegativesModel:
	default:
		return nil, fmt.Errorf("negatives from %q: want %s or %s", cfg.NegativesFrom, NegativesBM25, NegativesModel)
	}
	if cfg.RemineEvery < 0 {
		return nil, fmt.Errorf("remine-every %d: want a number of steps, or 0 for every epoch", cfg.RemineEvery)
	}
	opts := dataset.NegativeOptions{Split: cfg.TrainSplit, Count: cfg.Negatives, Seed: cfg.Seed,
		RangeMax: min(miningDepth, max(len(d.Corpus), 1)), RelativeMargin: max(cfg.NegativeMargin, 0)}
	rd, _, err := d.RandomNegatives(opts)
	if err != nil {
		return nil, err
	}
	pairs, err := rd.Pairs(opts.Split)
	if err != nil {
		return nil, err
	}
	m := &miner{data: d, opts: opts, random: map[[2]string][]string{}, encode: encode}
	for _, p := range pairs {
		m.random[[2]string{p.QueryID, p.PositiveID}] = p.Negatives
	}
	return m, nil
}

// mine ranks with r and replaces the negatives of examples (matched by
// query and positive) with the mined ones, tokenized.
func (m *miner) mine(r dataset.Ranker, examples []Example) error {
	mined, rep, err := m.data.HardNegatives(r, m.opts)
	if err != nil {
		return err
	}
	pairs, err := mined.Pairs(m.opts.Split)
	if err != nil {
		return err
	}
	byKey := map[[2]string][]string{}
	for _, p := range pairs {
		byKey[[2]string{p.QueryID, p.PositiveID}] = p.Negatives
	}
	for i := range examples {
		key := [2]string{examples[i].QueryID, examples[i].PositiveID}
		texts := byKey[key]
		if short := m.opts.Count - len(texts); short > 0 {
			random := m.random[key]
			texts = append(texts[:len(texts):len(texts)], random[:min(short, len(random))]...)
		}
		negs := make([][]int32, len(texts))
		for j, t := range texts {
			if negs[j], err = m.encode(t); err != nil {
				return err
			}
		}
		examples[i].Negatives = negs
	}
	m.Report = rep
	return nil
}

// modelRanker ranks the corpus by cosine similarity of the live model's
// embeddings (queries embedded as queries, documents as documents).
type modelRanker struct {
	ctx context.Context
	run *run
}

func (mr modelRanker) Search(queries []string, k int) ([][]dataset.Hit, error) {
	enc := mr.run.encoder()
	defer enc.Close()
	d := mr.run.data
	ids := make([]string, len(d.Corpus))
	texts := make([]string, len(d.Corpus))
	for i, doc := range d.Corpus {
		ids[i], texts[i] = doc.ID, d.DocText(doc)
	}
	docs, err := enc.Embed(mr.ctx, texts, retrieval.Document)
	if err != nil {
		return nil, err
	}
	ix, err := index.Build(index.Cosine, ids, docs)
	if err != nil {
		return nil, err
	}
	qv, err := enc.Embed(mr.ctx, queries, retrieval.Query)
	if err != nil {
		return nil, err
	}
	res, err := ix.Search(qv, k)
	if err != nil {
		return nil, err
	}
	out := make([][]dataset.Hit, len(res))
	for i, hits := range res {
		out[i] = make([]dataset.Hit, len(hits))
		for j, h := range hits {
			out[i][j] = dataset.Hit{DocID: h.ID, Score: float64(h.Score)}
		}
	}
	return out, nil
}

// remine mines the examples' negatives again when the configuration says
// it is due: BM25 once, before the first step; the model before every
// epoch, or every RemineEvery steps. A resumed run mines again with the
// restored model.
func (r *run) remine(ctx context.Context, step int, epochStart, first bool) error {
	if r.miner == nil {
		return nil
	}
	due := first
	if r.cfg.NegativesFrom == NegativesModel {
		if n := r.cfg.RemineEvery; n > 0 {
			due = due || step%n == 0
		} else {
			due = due || epochStart
		}
	}
	if !due {
		return nil
	}
	var rk dataset.Ranker = modelRanker{ctx: ctx, run: r}
	if r.cfg.NegativesFrom == NegativesBM25 {
		var err error
		if rk, err = r.data.BM25Ranker(); err != nil {
			return err
		}
	}
	if err := r.miner.mine(rk, r.examples); err != nil {
		return fmt.Errorf("mining negatives at step %d: %w", step, err)
	}
	r.mined++
	return nil
}
