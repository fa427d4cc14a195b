// Package evaluate runs queries through a retriever and scores the run
// against relevance judgments: per-query and mean metrics (package metrics),
// run and top-10 files, bootstrap confidence intervals and a paired
// randomisation test between two runs.
//
// Scoring follows trec_eval (as pytrec_eval and BEIR do): each query's
// results are re-sorted by score descending, then document id descending,
// before any measure is taken, so a run file scores the same whatever order
// its lines list results in; the queries scored are those with at least one
// relevant document in the qrels (the others are excluded and counted), and
// a judged query missing from the run scores 0.
package evaluate

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/ragtune/ragtune/retrieval/metrics"
)

// Measure is one named metric function.
type Measure struct {
	Name string
	Fn   func(ranking []string, rel map[string]int, k int) float64
}

// Measures are the measures Evaluate reports at every cut-off, in print order.
var Measures = []Measure{
	{"ndcg", metrics.NDCG},
	{"recall", metrics.Recall},
	{"precision", metrics.Precision},
	{"mrr", metrics.MRR},
	{"map", metrics.AP},
	{"hit", metrics.Hit},
}

// MetricName is the key of a measure at a cut-off, e.g. "ndcg@10".
func MetricName(measure string, k int) string { return measure + "@" + strconv.Itoa(k) }

// ParseKs reads a cut-off list such as "1,5,10" (sorted, deduplicated).
func ParseKs(s string) ([]int, error) {
	seen := map[int]bool{}
	var ks []int
	for _, part := range strings.Split(s, ",") {
		k, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil || k <= 0 {
			return nil, fmt.Errorf("cut-off %q: want a positive integer", part)
		}
		if !seen[k] {
			seen[k] = true
			ks = append(ks, k)
		}
	}
	sort.Ints(ks)
	return ks, nil
}

// Report is the result of Evaluate.
type Report struct {
	// Metrics are means over the scored queries, keyed like "ndcg@10".
	Metrics map[string]float64 `json:"metrics"`
	// Queries is how many queries were scored.
	Queries int `json:"queries"`
	// NoRelevant counts judged queries left out because no document of
	// theirs has a grade > 0 (their nDCG and recall are undefined).
	NoRelevant int `json:"no_relevant"`
	// MissingFromRun counts scored queries that the run has no line for (they score 0).
	MissingFromRun int `json:"missing_from_run"`
	// NotJudged counts run queries that the qrels do not mention (ignored).
	NotJudged int `json:"not_judged"`
	// PerQuery holds every scored query's metrics, for significance tests.
	PerQuery map[string]map[string]float64 `json:"-"`
}

// Evaluate scores run against qrels at the cut-offs ks.
func Evaluate(run Run, qrels Qrels, ks []int) *Report {
	rep := &Report{Metrics: map[string]float64{}, PerQuery: map[string]map[string]float64{}}
	for qid := range run {
		if _, ok := qrels[qid]; !ok {
			rep.NotJudged++
		}
	}
	for _, qid := range sortedKeys(qrels) {
		rel := qrels[qid]
		if metrics.NumRelevant(rel) == 0 {
			rep.NoRelevant++
			continue
		}
		res, ok := run[qid]
		if !ok {
			rep.MissingFromRun++
		}
		sorted := append([]metrics.Result(nil), res...)
		metrics.SortTrec(sorted)
		ranking := metrics.IDs(sorted)
		per := map[string]float64{}
		for _, k := range ks {
			for _, m := range Measures {
				v := m.Fn(ranking, rel, k)
				per[MetricName(m.Name, k)] = v
				rep.Metrics[MetricName(m.Name, k)] += v
			}
		}
		rep.PerQuery[qid] = per
		rep.Queries++
	}
	if rep.Queries > 0 {
		for name := range rep.Metrics {
			rep.Metrics[name] /= float64(rep.Queries)
		}
	}
	return rep
}

// Values returns one metric's per-query values in query id order, for the
// statistics in stats.go.
func (r *Report) Values(metric string) []float64 {
	out := make([]float64, 0, len(r.PerQuery))
	for _, qid := range sortedKeys(r.PerQuery) {
		out = append(out, r.PerQuery[qid][metric])
	}
	return out
}

// Paired returns one metric's values for the queries both reports scored,
// in query id order.
func Paired(a, b *Report, metric string) (va, vb []float64) {
	for _, qid := range sortedKeys(a.PerQuery) {
		if pb, ok := b.PerQuery[qid]; ok {
			va = append(va, a.PerQuery[qid][metric])
			vb = append(vb, pb[metric])
		}
	}
	return va, vb
}
