package dataset

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
)

// SplitOptions control Resplit.
type SplitOptions struct {
	// Train, Validation and Test are the fractions of judged queries per
	// split; they must be >= 0 and sum to 1.
	Train, Validation, Test float64
	Seed                    uint64
	// AllowLeak assigns queries one by one; otherwise queries that share a
	// normalised text or a relevant document always land in the same split.
	AllowLeak bool
}

// DefaultSplit is the original work's 70/15/15 split.
var DefaultSplit = SplitOptions{Train: 0.7, Validation: 0.15, Test: 0.15, Seed: 1}

// Leak is something two or more splits share: a query text (normalised by
// NormalizeText) or a relevant document.
type Leak struct {
	Kind   string   `json:"kind"` // "query_text" or "relevant_doc"
	Key    string   `json:"key"`  // the normalised text or the document id
	Splits []string `json:"splits"`
}

// NormalizeText is how texts are compared for leaks and duplicates: lower
// case, whitespace runs collapsed, trimmed.
func NormalizeText(s string) string { return strings.Join(strings.Fields(strings.ToLower(s)), " ") }

// SplitReport says what Resplit did besides dealing the real queries.
type SplitReport struct {
	Leaks []Leak
	// Generated queries stay in train (GeneratedKept) unless the query they
	// paraphrase, their text or one of their relevant documents was dealt to
	// another split: those would leak it, so they are dropped
	// (GeneratedDropped).
	GeneratedKept, GeneratedDropped int
}

// Resplit pools the judged real queries of all splits and deals them out
// again, seeded, by the given fractions; qrels and explicit examples follow
// their query. Without AllowLeak, connected queries (same normalised text, or
// a shared relevant document) move as one group, so no split can see
// another's query or positive; the result is checked with Leaks either way.
// Generated queries are never dealt: see SplitReport.
func (d *Dataset) Resplit(opts SplitOptions) (*Dataset, SplitReport, error) {
	var rep SplitReport
	fr := []float64{opts.Train, opts.Validation, opts.Test}
	sum := 0.0
	for _, f := range fr {
		if f < 0 || math.IsNaN(f) {
			return nil, rep, fmt.Errorf("split fractions must be >= 0, got %v", fr)
		}
		sum += f
	}
	if math.Abs(sum-1) > 1e-6 {
		return nil, rep, fmt.Errorf("split fractions sum to %g, want 1", sum)
	}
	names := []string{Train, Validation, Test}

	// Judged real queries in Queries order, so the outcome depends on the
	// seed only.
	gen := d.GeneratedQueries()
	judged := map[string]bool{}
	for _, s := range d.Splits() {
		for _, r := range d.Qrels[s] {
			judged[r.QueryID] = true
		}
		for _, e := range d.Examples[s] {
			judged[e.QueryID] = true
		}
	}
	var qids []string
	for _, q := range d.Queries {
		if judged[q.ID] && !gen[q.ID] {
			qids = append(qids, q.ID)
		}
	}
	groups := d.queryGroups(qids, opts.AllowLeak)
	rng := rand.New(rand.NewPCG(opts.Seed, 0x5eed5eed))
	rng.Shuffle(len(groups), func(i, j int) { groups[i], groups[j] = groups[j], groups[i] })

	// Deal groups to the split furthest below its target share.
	target := make([]float64, 3)
	for i, f := range fr {
		target[i] = f * float64(len(qids))
	}
	count := make([]float64, 3)
	splitOf := map[string]string{}
	for _, g := range groups {
		best, bestGap := -1, math.Inf(-1)
		for i := range names {
			if target[i] == 0 {
				continue
			}
			if gap := (target[i] - count[i]) / target[i]; gap > bestGap {
				best, bestGap = i, gap
			}
		}
		count[best] += float64(len(g))
		for _, q := range g {
			splitOf[q] = names[best]
		}
	}
	heldOut := map[string]bool{} // documents relevant to a real query outside train
	for _, s := range d.Splits() {
		for _, r := range d.Qrels[s] {
			if r.Score > 0 && !gen[r.QueryID] && splitOf[r.QueryID] != Train {
				heldOut[r.DocID] = true
			}
		}
		for _, e := range d.Examples[s] {
			if e.PositiveID != "" && !gen[e.QueryID] && splitOf[e.QueryID] != Train {
				heldOut[e.PositiveID] = true
			}
		}
	}
	heldOutText := map[string]bool{}
	for _, q := range d.Queries {
		if judged[q.ID] && q.Generated == nil && splitOf[q.ID] != Train {
			heldOutText[NormalizeText(q.Text)] = true
		}
	}
	drop := map[string]bool{}
	for _, q := range d.Queries {
		g := q.Generated
		if g != nil && (heldOutText[NormalizeText(q.Text)] || g.Mode == ModeParaphrase && judged[g.Parent] && splitOf[g.Parent] != Train) {
			drop[q.ID] = true
		}
	}
	for _, s := range d.Splits() {
		for _, r := range d.Qrels[s] {
			if gen[r.QueryID] && r.Score > 0 && heldOut[r.DocID] {
				drop[r.QueryID] = true
			}
		}
		for _, e := range d.Examples[s] {
			if gen[e.QueryID] && heldOut[e.PositiveID] {
				drop[e.QueryID] = true
			}
		}
	}
	for q := range gen {
		splitOf[q] = Train
	}
	out := &Dataset{Corpus: d.Corpus, Queries: d.Queries, Source: d.Source,
		Qrels: map[string][]Qrel{}, Examples: map[string][]Example{}}
	if len(drop) > 0 {
		out.Queries = nil
		for _, q := range d.Queries {
			if !drop[q.ID] {
				out.Queries = append(out.Queries, q)
			}
		}
	}
	rep.GeneratedDropped = len(drop)
	rep.GeneratedKept = len(gen) - len(drop)
	for _, s := range d.Splits() {
		for _, r := range d.Qrels[s] {
			if !drop[r.QueryID] {
				out.Qrels[splitOf[r.QueryID]] = append(out.Qrels[splitOf[r.QueryID]], r)
			}
		}
		for _, e := range d.Examples[s] {
			if !drop[e.QueryID] {
				out.Examples[splitOf[e.QueryID]] = append(out.Examples[splitOf[e.QueryID]], e)
			}
		}
	}
	rep.Leaks = out.Leaks()
	if len(rep.Leaks) > 0 && !opts.AllowLeak {
		return nil, rep, fmt.Errorf("split leaks %d query texts or documents across splits", len(rep.Leaks))
	}
	return out, rep, nil
}

// queryGroups groups query ids that must share a split (union-find over
// normalised texts and relevant documents); with allowLeak every query is
// its own group. Groups keep qids order.
func (d *Dataset) queryGroups(qids []string, allowLeak bool) [][]string {
	parent := make([]int, len(qids))
	for i := range parent {
		parent[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	if !allowLeak {
		pos := make(map[string]int, len(qids))
		for i, q := range qids {
			pos[q] = i
		}
		text := map[string]string{}
		for _, q := range d.Queries {
			text[q.ID] = q.Text
		}
		owner := map[string]int{} // key -> first query index holding it
		link := func(key string, i int) {
			if j, ok := owner[key]; ok {
				parent[find(i)] = find(j)
			} else {
				owner[key] = i
			}
		}
		for i, q := range qids {
			link("t\x00"+NormalizeText(text[q]), i)
		}
		// Only the queries being dealt link (generated ones are not).
		for _, s := range d.Splits() {
			for _, r := range d.Qrels[s] {
				if i, ok := pos[r.QueryID]; ok && r.Score > 0 {
					link("d\x00"+r.DocID, i)
				}
			}
			for _, e := range d.Examples[s] {
				if i, ok := pos[e.QueryID]; ok && e.PositiveID != "" {
					link("d\x00"+e.PositiveID, i)
				}
			}
		}
	}
	byRoot := map[int][]string{}
	var roots []int
	for i, q := range qids {
		r := find(i)
		if _, ok := byRoot[r]; !ok {
			roots = append(roots, r)
		}
		byRoot[r] = append(byRoot[r], q)
	}
	groups := make([][]string, len(roots))
	for i, r := range roots {
		groups[i] = byRoot[r]
	}
	return groups
}

// Leaks lists query texts and relevant documents (qrels with Score > 0 and
// example positives) that appear in more than one split.
func (d *Dataset) Leaks() []Leak {
	text := map[string]string{}
	for _, q := range d.Queries {
		text[q.ID] = NormalizeText(q.Text)
	}
	where := map[[2]string]map[string]bool{}
	note := func(kind, key, split string) {
		if key == "" {
			return // unknown or blank queries are Check's business, not leaks
		}
		k := [2]string{kind, key}
		if where[k] == nil {
			where[k] = map[string]bool{}
		}
		where[k][split] = true
	}
	for _, s := range d.Splits() {
		for _, r := range d.Qrels[s] {
			note("query_text", text[r.QueryID], s)
			if r.Score > 0 {
				note("relevant_doc", r.DocID, s)
			}
		}
		for _, e := range d.Examples[s] {
			note("query_text", NormalizeText(e.Anchor), s)
			if e.PositiveID != "" {
				note("relevant_doc", e.PositiveID, s)
			}
		}
	}
	var leaks []Leak
	for k, splits := range where {
		if len(splits) > 1 {
			leaks = append(leaks, Leak{Kind: k[0], Key: k[1], Splits: orderSplits(splits)})
		}
	}
	sort.Slice(leaks, func(i, j int) bool {
		if leaks[i].Kind != leaks[j].Kind {
			return leaks[i].Kind < leaks[j].Kind
		}
		return leaks[i].Key < leaks[j].Key
	})
	return leaks
}

// FewShot keeps a seeded subset of a split's real queries (n of them, or
// when n is 0 the fraction frac, at least one), with their qrels and
// examples; other splits and the corpus stay as they are.
func (d *Dataset) FewShot(split string, n int, frac float64, seed uint64) (*Dataset, error) {
	var qs []Query
	for _, q := range d.SplitQueries(split) {
		if q.Generated == nil {
			qs = append(qs, q)
		}
	}
	if len(qs) == 0 {
		return nil, fmt.Errorf("split %q has no queries (splits: %s)", split, strings.Join(d.Splits(), ", "))
	}
	if n == 0 {
		if !(frac > 0 && frac <= 1) {
			return nil, fmt.Errorf("few-shot fraction %g, want 0 < f <= 1", frac)
		}
		n = max(1, int(math.Round(frac*float64(len(qs)))))
	}
	if n < 0 || n > len(qs) {
		return nil, fmt.Errorf("few-shot size %d, split %s has %d queries", n, split, len(qs))
	}
	rng := rand.New(rand.NewPCG(seed, 0xf00d))
	perm := rng.Perm(len(qs))
	keep := map[string]bool{}
	for _, i := range perm[:n] {
		keep[qs[i].ID] = true
	}
	// Generated queries go with the query they paraphrase; the ones written
	// for documents stay.
	for _, q := range d.Queries {
		if g := q.Generated; g != nil && (g.Mode != ModeParaphrase || keep[g.Parent]) {
			keep[q.ID] = true
		}
	}
	out := &Dataset{Corpus: d.Corpus, Queries: d.Queries, Source: d.Source, Qrels: map[string][]Qrel{}, Examples: map[string][]Example{}}
	for s, rs := range d.Qrels {
		for _, r := range rs {
			if s != split || keep[r.QueryID] {
				out.Qrels[s] = append(out.Qrels[s], r)
			}
		}
	}
	for s, es := range d.Examples {
		for _, e := range es {
			if s != split || keep[e.QueryID] {
				out.Examples[s] = append(out.Examples[s], e)
			}
		}
	}
	return out, nil
}
