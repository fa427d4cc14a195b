package dataset

import (
	"fmt"
	"math/rand/v2"
	"sort"
)

// Hit is one ranked document.
type Hit struct {
	DocID string
	Score float64
}

// Ranker ranks the corpus for many queries at once, best first (BM25, an
// embedding index). cli wires the concrete ones; dataset never imports them.
type Ranker interface {
	Search(queries []string, k int) ([][]Hit, error)
}

// NegativeOptions control RandomNegatives and HardNegatives.
type NegativeOptions struct {
	Split string
	Count int // negatives per example
	Seed  uint64
	// RangeMin and RangeMax bound the candidate window of HardNegatives:
	// ranks [RangeMin, RangeMax) of the ranking with the query's relevant
	// documents removed (0-based), as sentence-transformers'
	// mine_hard_negatives range_min and range_max.
	RangeMin, RangeMax int
	// RelativeMargin keeps a candidate only if its score is at most
	// (1 - RelativeMargin) times the positive's score, and AbsoluteMargin only
	// if it is at most the positive's score minus AbsoluteMargin
	// (sentence-transformers' relative_margin, absolute_margin): candidates
	// scored near the positive are likely unjudged positives. 0 turns a
	// filter off. When the positive is not in the ranking at all, its score
	// is taken as the lowest score retrieved, which filters conservatively.
	RelativeMargin, AbsoluteMargin float64
	// Random samples Count candidates from the window instead of taking
	// the best ranked.
	Random bool
}

// NegativeReport summarises mined negatives.
type NegativeReport struct {
	Examples          int          `json:"examples"`
	WithoutNegatives  int          `json:"examples_without_negatives"`
	Negatives         int          `json:"negatives"`
	FilteredByMargin  int          `json:"filtered_by_margin"`
	PositiveNotRanked int          `json:"positives_not_ranked"`
	PositiveScores    ScoreSummary `json:"positive_scores"`
	NegativeScores    ScoreSummary `json:"negative_scores"`
}

// ScoreSummary describes a set of scores.
type ScoreSummary struct {
	N      int     `json:"n"`
	Mean   float64 `json:"mean"`
	Min    float64 `json:"min"`
	P25    float64 `json:"p25"`
	Median float64 `json:"median"`
	Max    float64 `json:"max"`
}

func summarize(xs []float64) ScoreSummary {
	if len(xs) == 0 {
		return ScoreSummary{}
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	sum := 0.0
	for _, x := range s {
		sum += x
	}
	q := func(p float64) float64 { return s[int(p*float64(len(s)-1)+0.5)] }
	return ScoreSummary{N: len(s), Mean: sum / float64(len(s)), Min: s[0], P25: q(0.25), Median: q(0.5), Max: s[len(s)-1]}
}

// relevantByQuery lists every document judged relevant to each query in any
// split, plus example positives: none of them may become a negative.
func (d *Dataset) relevantByQuery() map[string]map[string]bool {
	out := map[string]map[string]bool{}
	add := func(q, doc string) {
		if out[q] == nil {
			out[q] = map[string]bool{}
		}
		out[q][doc] = true
	}
	for _, s := range d.Splits() {
		for _, r := range d.Qrels[s] {
			if r.Score > 0 {
				add(r.QueryID, r.DocID)
			}
		}
		for _, e := range d.Examples[s] {
			if e.PositiveID != "" {
				add(e.QueryID, e.PositiveID)
			}
		}
	}
	return out
}

// withNegatives returns a copy of d whose split has the given examples.
func (d *Dataset) withNegatives(split string, ex []Example) *Dataset {
	out := *d
	out.Examples = map[string][]Example{}
	for s, e := range d.Examples {
		out.Examples[s] = e
	}
	out.Examples[split] = ex
	return &out
}

// RandomNegatives gives each example of the split Count documents drawn
// uniformly from the corpus, never one relevant to its query.
func (d *Dataset) RandomNegatives(opts NegativeOptions) (*Dataset, NegativeReport, error) {
	pairs, err := d.Pairs(opts.Split)
	if err != nil {
		return nil, NegativeReport{}, err
	}
	if opts.Count < 1 {
		return nil, NegativeReport{}, fmt.Errorf("negatives per example: %d, want >= 1", opts.Count)
	}
	rel := d.relevantByQuery()
	rng := rand.New(rand.NewPCG(opts.Seed, 0x9e6a))
	rep := NegativeReport{Examples: len(pairs)}
	out := make([]Example, len(pairs))
	for i, p := range pairs {
		p.NegativeIDs, p.Negatives = nil, nil
		taken := map[int]bool{}
		// Bounded tries: a tiny corpus may hold fewer eligible documents.
		for try := 0; len(p.Negatives) < opts.Count && try < 20*opts.Count && len(d.Corpus) > 0; try++ {
			j := rng.IntN(len(d.Corpus))
			doc := d.Corpus[j]
			if taken[j] || rel[p.QueryID][doc.ID] || doc.ID == p.PositiveID {
				continue
			}
			taken[j] = true
			p.NegativeIDs = append(p.NegativeIDs, doc.ID)
			p.Negatives = append(p.Negatives, d.DocText(doc))
		}
		rep.Negatives += len(p.Negatives)
		if len(p.Negatives) == 0 {
			rep.WithoutNegatives++
		}
		out[i] = p
	}
	return d.withNegatives(opts.Split, out), rep, nil
}

// HardNegatives gives each example of the split up to Count negatives
// mined with r: the query's relevant documents are removed from its
// ranking, the window [RangeMin, RangeMax) is kept, candidates too close
// to the positive's score are dropped, and the best (or, with Random, a
// seeded sample) are taken. The report compares positive and negative
// scores.
func (d *Dataset) HardNegatives(r Ranker, opts NegativeOptions) (*Dataset, NegativeReport, error) {
	pairs, err := d.Pairs(opts.Split)
	if err != nil {
		return nil, NegativeReport{}, err
	}
	switch {
	case opts.Count < 1:
		return nil, NegativeReport{}, fmt.Errorf("negatives per example: %d, want >= 1", opts.Count)
	case opts.RangeMin < 0 || opts.RangeMax <= opts.RangeMin:
		return nil, NegativeReport{}, fmt.Errorf("rank window [%d, %d) is empty", opts.RangeMin, opts.RangeMax)
	case opts.RelativeMargin < 0 || opts.RelativeMargin >= 1 || opts.AbsoluteMargin < 0:
		return nil, NegativeReport{}, fmt.Errorf("margins: relative %g (want 0 <= m < 1), absolute %g (want >= 0)", opts.RelativeMargin, opts.AbsoluteMargin)
	}
	rel := d.relevantByQuery()
	docs := d.DocIndex()
	// One search per distinct query, deep enough to hold the window after
	// its relevant documents are removed.
	var texts []string
	slot := map[string]int{}
	extra := 0
	for _, p := range pairs {
		if _, ok := slot[p.QueryID]; !ok {
			slot[p.QueryID] = len(texts)
			texts = append(texts, p.Anchor)
			extra = max(extra, len(rel[p.QueryID]))
		}
	}
	var ranked [][]Hit
	if len(texts) > 0 {
		if ranked, err = r.Search(texts, opts.RangeMax+extra); err != nil {
			return nil, NegativeReport{}, fmt.Errorf("mine negatives: %w", err)
		}
		if len(ranked) != len(texts) {
			return nil, NegativeReport{}, fmt.Errorf("mine negatives: ranker answered %d of %d queries", len(ranked), len(texts))
		}
	}
	rng := rand.New(rand.NewPCG(opts.Seed, 0x4a7d))
	rep := NegativeReport{Examples: len(pairs)}
	var posScores, negScores []float64
	out := make([]Example, len(pairs))
	for i, p := range pairs {
		hits := ranked[slot[p.QueryID]]
		posScore, found := 0.0, false
		for _, h := range hits {
			if h.DocID == p.PositiveID {
				posScore, found = h.Score, true
				break
			}
		}
		if !found {
			rep.PositiveNotRanked++
			if len(hits) > 0 {
				posScore = hits[len(hits)-1].Score
			}
		} else {
			posScores = append(posScores, posScore)
		}
		var window []Hit
		for _, h := range hits {
			if !rel[p.QueryID][h.DocID] && h.DocID != p.PositiveID {
				window = append(window, h)
			}
		}
		window = window[min(opts.RangeMin, len(window)):min(opts.RangeMax, len(window))]
		var cands []Hit
		for _, h := range window {
			if (opts.RelativeMargin > 0 && h.Score > posScore*(1-opts.RelativeMargin)) ||
				(opts.AbsoluteMargin > 0 && h.Score > posScore-opts.AbsoluteMargin) {
				rep.FilteredByMargin++
				continue
			}
			cands = append(cands, h)
		}
		if opts.Random {
			rng.Shuffle(len(cands), func(a, b int) { cands[a], cands[b] = cands[b], cands[a] })
		}
		p.NegativeIDs, p.Negatives = nil, nil
		for _, h := range cands[:min(opts.Count, len(cands))] {
			j, ok := docs[h.DocID]
			if !ok {
				return nil, NegativeReport{}, fmt.Errorf("mine negatives: ranker returned %q, which is not in the corpus", h.DocID)
			}
			p.NegativeIDs = append(p.NegativeIDs, h.DocID)
			p.Negatives = append(p.Negatives, d.DocText(d.Corpus[j]))
			negScores = append(negScores, h.Score)
		}
		rep.Negatives += len(p.Negatives)
		if len(p.Negatives) == 0 {
			rep.WithoutNegatives++
		}
		out[i] = p
	}
	rep.PositiveScores, rep.NegativeScores = summarize(posScores), summarize(negScores)
	return d.withNegatives(opts.Split, out), rep, nil
}
