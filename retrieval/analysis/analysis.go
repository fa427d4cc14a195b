// Package analysis compares two runs on the same judged queries (a base and
// a tuned model, or any two systems) the way the original work's failure
// analysis scripts did: which queries got better or worse and why, what
// each run ranked for them, how many failures each run has by cause, and
// whether the mean differences are significant (evaluate's paired
// randomisation test).
//
// A query fails in a run when no relevant document is among its top
// FailureK results. Causes that the data can tell, counted per run (one
// query may have several):
//
//   - not_in_top_100: no relevant document anywhere in the run's list
//     (runs keep evaluate.RunDepth = 100 results);
//   - near_duplicate_above: a document in the top FailureK that is not
//     judged relevant is a near-duplicate of a relevant one: their token
//     sets (BM25's tokenizer) have a Jaccard similarity of at least
//     NearDuplicate (0.8 by default; identical normalised texts score 1);
//   - no_shared_word: the query shares no token with any of its relevant
//     documents (BM25's tokenizer, English stopwords dropped), so nothing
//     lexical links them;
//   - other: none of the above.
package analysis

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/ragtune/ragtune/retrieval/bm25"
	"github.com/ragtune/ragtune/retrieval/evaluate"
	"github.com/ragtune/ragtune/retrieval/metrics"
)

// Failure causes, as named in reports and JSON.
const (
	CauseNotRetrieved  = "not_in_top_100"
	CauseNearDuplicate = "near_duplicate_above"
	CauseNoSharedWord  = "no_shared_word"
	CauseOther         = "other"
)

// Causes lists the failure causes in report order.
var Causes = []string{CauseNotRetrieved, CauseNearDuplicate, CauseNoSharedWord, CauseOther}

// Input is what Compare reads. Docs maps document ids to their text (title
// and text, as embedded); documents missing from it have no text to show
// or compare. Queries without a judgment are ignored.
type Input struct {
	Queries      []evaluate.Query
	Qrels        evaluate.Qrels
	Docs         map[string]string
	RunA, RunB   evaluate.Run
	NameA, NameB string // e.g. "base" and "tuned"
}

// Options tune Compare; zero values take the defaults.
type Options struct {
	Metric        string  // the metric queries are sorted by (default ndcg@10)
	Ks            []int   // cut-offs of the metric table (default 1, 5, 10)
	FailureK      int     // a query fails without a relevant document in this top (default 10)
	Top           int     // results listed per run and query (default 5)
	NearDuplicate float64 // token-set Jaccard threshold (default 0.8)
	Show          int     // improved and worsened queries listed, each (default 10; < 0: all)
	Trials        int     // randomisation test permutations (default 10,000)
	Seed          uint64  // of the randomisation test (default 1)
}

func (o Options) withDefaults() Options {
	if o.Metric == "" {
		o.Metric = "ndcg@10"
	}
	if len(o.Ks) == 0 {
		o.Ks = []int{1, 5, 10}
	}
	if o.FailureK <= 0 {
		o.FailureK = 10
	}
	if o.Top <= 0 {
		o.Top = 5
	}
	if o.NearDuplicate == 0 {
		o.NearDuplicate = 0.8
	}
	if o.Show == 0 {
		o.Show = 10
	}
	if o.Trials <= 0 {
		o.Trials = 10000
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	return o
}

// Report is the result of Compare. Differences are B minus A.
type Report struct {
	NameA     string          `json:"name_a"`
	NameB     string          `json:"name_b"`
	Metric    string          `json:"metric"`
	Queries   int             `json:"queries"`
	Improved  int             `json:"improved"`
	Worsened  int             `json:"worsened"`
	Unchanged int             `json:"unchanged"`
	Metrics   []MetricDelta   `json:"metrics"`
	Failures  [2]FailureCount `json:"failures"` // A, then B
	// Better and Worse list the most improved and most worsened queries
	// (largest change first); Options.Show bounds their length.
	Better   []QueryChange `json:"better"`
	Worse    []QueryChange `json:"worse"`
	PerQuery []QueryDelta  `json:"per_query"` // every scored query, by id
	// NearDuplicate and FailureK record the definitions used.
	NearDuplicate float64 `json:"near_duplicate_jaccard"`
	FailureK      int     `json:"failure_k"`
}

// MetricDelta is one metric's means and the paired test of their difference.
type MetricDelta struct {
	Name string  `json:"name"`
	A    float64 `json:"a"`
	B    float64 `json:"b"`
	Diff float64 `json:"diff"` // mean of B − A per query
	P    float64 `json:"p"`    // two-sided, paired randomisation test
}

// FailureCount counts one run's failed queries and their causes.
type FailureCount struct {
	Run    string         `json:"run"`
	Failed int            `json:"failed"`
	Causes map[string]int `json:"causes"`
}

// QueryDelta is one query's main metric in both runs.
type QueryDelta struct {
	ID    string  `json:"id"`
	A     float64 `json:"a"`
	B     float64 `json:"b"`
	Delta float64 `json:"delta"`
}

// QueryChange is one query seen through both runs.
type QueryChange struct {
	QueryDelta
	Text     string `json:"text"`
	Relevant []Doc  `json:"relevant"`
	// FirstRelevant is the 1-based rank of the first relevant document in
	// each run, 0 when the run does not list one.
	FirstRelevantA int      `json:"first_relevant_a"`
	FirstRelevantB int      `json:"first_relevant_b"`
	TopA           []Hit    `json:"top_a"`
	TopB           []Hit    `json:"top_b"`
	CausesA        []string `json:"causes_a,omitempty"` // when the query fails in A
	CausesB        []string `json:"causes_b,omitempty"`
}

// Doc is a document with its text.
type Doc struct {
	ID   string `json:"id"`
	Text string `json:"text"`
}

// Hit is one ranked result.
type Hit struct {
	Doc
	Score    float64 `json:"score"`
	Relevant bool    `json:"relevant"`
	// NearDuplicate is set on a non-relevant result that is a
	// near-duplicate of a relevant document.
	NearDuplicate bool `json:"near_duplicate,omitempty"`
}

// Compare analyses two runs over the judged queries of in.Qrels that have
// at least one relevant document (evaluate's rule; a query missing from a
// run scores 0 there).
func Compare(in Input, opts Options) (*Report, error) {
	opts = opts.withDefaults()
	if len(in.Qrels) == 0 {
		return nil, errors.New("analysis: no judgments")
	}
	if !(opts.NearDuplicate > 0 && opts.NearDuplicate <= 1) {
		return nil, fmt.Errorf("analysis: near-duplicate threshold %g, want (0, 1]", opts.NearDuplicate)
	}
	mk, err := metricCutoff(opts.Metric)
	if err != nil {
		return nil, err
	}
	ks := []int{mk} // evaluate counts a repeated cut-off twice: keep each once
	for _, k := range opts.Ks {
		if !slices.Contains(ks, k) {
			ks = append(ks, k)
		}
	}
	repA := evaluate.Evaluate(in.RunA, in.Qrels, ks)
	repB := evaluate.Evaluate(in.RunB, in.Qrels, ks)
	if repA.Queries == 0 {
		return nil, errors.New("analysis: no judged query has a relevant document")
	}
	out := &Report{NameA: in.NameA, NameB: in.NameB, Metric: opts.Metric, Queries: repA.Queries,
		NearDuplicate: opts.NearDuplicate, FailureK: opts.FailureK}
	for _, k := range opts.Ks {
		for _, m := range evaluate.Measures {
			name := evaluate.MetricName(m.Name, k)
			a, b := evaluate.Paired(repB, repA, name) // B's values first: diff = B − A
			diff, p, err := evaluate.RandomizationTest(a, b, opts.Trials, opts.Seed)
			if err != nil {
				return nil, err
			}
			out.Metrics = append(out.Metrics, MetricDelta{Name: name, A: repA.Metrics[name], B: repB.Metrics[name], Diff: diff, P: p})
		}
	}
	text := map[string]string{}
	for _, q := range in.Queries {
		text[q.ID] = q.Text
	}
	a := newAnalyser(in, opts)
	out.Failures = [2]FailureCount{{Run: in.NameA, Causes: map[string]int{}}, {Run: in.NameB, Causes: map[string]int{}}}
	var changes []QueryChange
	for _, qid := range sortedKeys(repA.PerQuery) {
		d := QueryDelta{ID: qid, A: repA.PerQuery[qid][opts.Metric], B: repB.PerQuery[qid][opts.Metric]}
		d.Delta = d.B - d.A
		out.PerQuery = append(out.PerQuery, d)
		c := a.query(d, text[qid])
		for i, causes := range [2][]string{c.CausesA, c.CausesB} {
			if len(causes) > 0 {
				out.Failures[i].Failed++
				for _, cause := range causes {
					out.Failures[i].Causes[cause]++
				}
			}
		}
		switch {
		case d.Delta > 1e-12:
			out.Improved++
			changes = append(changes, c)
		case d.Delta < -1e-12:
			out.Worsened++
			changes = append(changes, c)
		default:
			out.Unchanged++
		}
	}
	// Largest changes first; ties by query id, for stable output.
	sort.SliceStable(changes, func(i, j int) bool { return math.Abs(changes[i].Delta) > math.Abs(changes[j].Delta) })
	for _, c := range changes {
		list := &out.Worse
		if c.Delta > 0 {
			list = &out.Better
		}
		if opts.Show < 0 || len(*list) < opts.Show {
			*list = append(*list, c)
		}
	}
	return out, nil
}

// analyser holds what per-query analysis shares: token sets, cached per text.
type analyser struct {
	in     Input
	opts   Options
	tok    *bm25.Tokenizer
	tokens map[string]map[string]bool // doc id -> token set
}

func newAnalyser(in Input, opts Options) *analyser {
	return &analyser{in: in, opts: opts, tok: bm25.NewTokenizer(true), tokens: map[string]map[string]bool{}}
}

func (a *analyser) docTokens(id string) map[string]bool {
	if s, ok := a.tokens[id]; ok {
		return s
	}
	s := tokenSet(a.tok, a.in.Docs[id])
	a.tokens[id] = s
	return s
}

func tokenSet(tok *bm25.Tokenizer, text string) map[string]bool {
	s := map[string]bool{}
	for _, t := range tok.Tokens(text) {
		s[t] = true
	}
	return s
}

// Jaccard is |a ∩ b| / |a ∪ b| of two token sets; two empty sets score 0.
func Jaccard(a, b map[string]bool) float64 {
	if len(a) > len(b) {
		a, b = b, a
	}
	inter := 0
	for t := range a {
		if b[t] {
			inter++
		}
	}
	union := len(a) + len(b) - inter
	if union == 0 {
		return 0
	}
	return float64(inter) / float64(union)
}

// query builds the QueryChange of one query.
func (a *analyser) query(d QueryDelta, text string) QueryChange {
	rel := a.in.Qrels[d.ID]
	c := QueryChange{QueryDelta: d, Text: text}
	for _, did := range sortedKeys(rel) {
		if rel[did] > 0 {
			c.Relevant = append(c.Relevant, Doc{ID: did, Text: a.in.Docs[did]})
		}
	}
	var failA, failB bool
	c.TopA, c.FirstRelevantA, failA = a.ranked(a.in.RunA[d.ID], rel)
	c.TopB, c.FirstRelevantB, failB = a.ranked(a.in.RunB[d.ID], rel)
	if failA {
		c.CausesA = a.causes(a.in.RunA[d.ID], rel, text, c.FirstRelevantA)
	}
	if failB {
		c.CausesB = a.causes(a.in.RunB[d.ID], rel, text, c.FirstRelevantB)
	}
	return c
}

// ranked sorts a run's results as evaluate scores them and returns the top
// Top hits, the rank of the first relevant document and whether the query
// fails (no relevant document in the top FailureK).
func (a *analyser) ranked(res []metrics.Result, rel map[string]int) (top []Hit, first int, fails bool) {
	sorted := append([]metrics.Result(nil), res...)
	metrics.SortTrec(sorted)
	for i, r := range sorted {
		if rel[r.DocID] > 0 {
			first = i + 1
			break
		}
	}
	for _, r := range sorted[:min(a.opts.Top, len(sorted))] {
		h := Hit{Doc: Doc{ID: r.DocID, Text: a.in.Docs[r.DocID]}, Score: r.Score, Relevant: rel[r.DocID] > 0}
		h.NearDuplicate = !h.Relevant && a.nearDuplicate(r.DocID, rel)
		top = append(top, h)
	}
	return top, first, first == 0 || first > a.opts.FailureK
}

// nearDuplicate reports whether document id is a near-duplicate of one of
// the relevant documents.
func (a *analyser) nearDuplicate(id string, rel map[string]int) bool {
	ts := a.docTokens(id)
	for did, g := range rel {
		if g > 0 && did != id && Jaccard(ts, a.docTokens(did)) >= a.opts.NearDuplicate {
			return true
		}
	}
	return false
}

// causes names why a failed query failed (see the package doc).
func (a *analyser) causes(res []metrics.Result, rel map[string]int, query string, first int) []string {
	var out []string
	if first == 0 {
		out = append(out, CauseNotRetrieved)
	}
	sorted := append([]metrics.Result(nil), res...)
	metrics.SortTrec(sorted)
	for _, r := range sorted[:min(a.opts.FailureK, len(sorted))] {
		if rel[r.DocID] <= 0 && a.nearDuplicate(r.DocID, rel) {
			out = append(out, CauseNearDuplicate)
			break
		}
	}
	qt := tokenSet(a.tok, query)
	shared := false
	for did, g := range rel {
		if g > 0 && Jaccard(qt, a.docTokens(did)) > 0 {
			shared = true
			break
		}
	}
	if !shared {
		out = append(out, CauseNoSharedWord)
	}
	if len(out) == 0 {
		out = append(out, CauseOther)
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// metricCutoff checks a metric name such as "ndcg@10" and returns its k.
func metricCutoff(name string) (int, error) {
	measure, cut, ok := strings.Cut(name, "@")
	k, err := strconv.Atoi(cut)
	if ok && err == nil && k > 0 {
		for _, m := range evaluate.Measures {
			if m.Name == measure {
				return k, nil
			}
		}
	}
	return 0, fmt.Errorf("analysis: unknown metric %q (want measure@k, e.g. ndcg@10, recall@5, mrr@10)", name)
}
