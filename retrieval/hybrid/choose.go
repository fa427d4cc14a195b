package hybrid

import (
	"fmt"
	"math"
	"sort"

	"github.com/ragtune/ragtune/retrieval/metrics"
)

// Run is ranked results per query id, best first (evaluate.Run's shape).
type Run = map[string][]metrics.Result

// Scorer measures a run on judged queries (e.g. mean nDCG@10 on the
// validation split); larger is better.
type Scorer func(Run) float64

// Candidate is one spec tried by Choose and its score.
type Candidate struct {
	Spec
	Score float64 `json:"score"`
}

// How a Choice came about.
const (
	ChosenOnSplit = "split"   // best on judged queries (Choice.Split names them)
	ChosenGiven   = "given"   // named by the user
	ChosenDefault = "default" // nothing to choose on: plain RRF
)

// Choice is the fusion an index or a run uses, and why: the candidates'
// scores on the split it was chosen on and those of each retriever alone.
type Choice struct {
	Spec
	Chosen     string      `json:"chosen"`
	Split      string      `json:"split,omitempty"`
	Metric     string      `json:"metric,omitempty"`
	Queries    int         `json:"queries,omitempty"`
	Score      float64     `json:"score,omitempty"` // Spec's score
	Dense      float64     `json:"dense,omitempty"` // the dense ranking alone
	BM25       float64     `json:"bm25,omitempty"`  // the BM25 ranking alone
	Candidates []Candidate `json:"candidates,omitempty"`
}

// Grid returns the weights step, 2·step, ... below 1 (e.g. 0.05 to 0.95).
// The ends are left out on purpose: w = 1 is the dense ranking and w = 0 the
// BM25 ranking, which Choose scores as they are.
func Grid(step float64) []float64 {
	var ws []float64
	for i := 1; float64(i)*step < 1-1e-9; i++ {
		ws = append(ws, math.Round(float64(i)*step*1e6)/1e6)
	}
	return ws
}

// Candidates lists plain RRF (when methods has it) and every weighted method
// of methods at every weight, in that order.
func Candidates(methods []Method, weights []float64, k float64) []Spec {
	var out []Spec
	for _, m := range methods {
		if m == MethodRRF {
			out = append(out, Spec{Method: MethodRRF, K: k})
		}
	}
	for _, m := range Weighted {
		for _, want := range methods {
			if want == m {
				for _, w := range weights {
					out = append(out, Spec{Method: m, Weight: w, K: k})
				}
			}
		}
	}
	return out
}

// Choose scores the dense run, the BM25 run and each candidate's fusion of
// them (each query's lists fused by Fuse, cut to depth), and returns the best
// fusion only if it scores strictly above the better single retriever;
// otherwise that retriever (dense on a tie). So the choice is never worse than
// either retriever on the runs it was chosen on. Among equal fusions the
// first candidate wins. split and metric only label the record.
func Choose(dense, lexical Run, score Scorer, candidates []Spec, depth int, split, metric string) Choice {
	c := Choice{Chosen: ChosenOnSplit, Split: split, Metric: metric, Queries: len(queryIDs(dense, lexical))}
	c.Dense, c.BM25 = score(dense), score(lexical)
	c.Spec, c.Score = Spec{Method: MethodDense}, c.Dense
	if c.BM25 > c.Dense {
		c.Spec, c.Score = Spec{Method: MethodBM25}, c.BM25
	}
	for _, spec := range candidates {
		s := score(FuseRuns(spec, dense, lexical, depth))
		c.Candidates = append(c.Candidates, Candidate{Spec: spec, Score: s})
	}
	if best := c.BestCandidate(); best != nil && best.Score > c.Score {
		c.Spec, c.Score = best.Spec, best.Score
	}
	return c
}

// BestCandidate is the first candidate with the highest score (nil: none).
func (c Choice) BestCandidate() *Candidate {
	var best *Candidate
	for i := range c.Candidates {
		if best == nil || c.Candidates[i].Score > best.Score {
			best = &c.Candidates[i]
		}
	}
	return best
}

// FuseRuns fuses every query of two runs by spec, keeping depth results.
func FuseRuns(spec Spec, dense, lexical Run, depth int) Run {
	out := Run{}
	for _, qid := range queryIDs(dense, lexical) {
		out[qid] = spec.Fuse(dense[qid], lexical[qid], depth)
	}
	return out
}

func queryIDs(runs ...Run) []string {
	seen := map[string]bool{}
	var ids []string
	for _, r := range runs {
		for qid := range r {
			if !seen[qid] {
				seen[qid] = true
				ids = append(ids, qid)
			}
		}
	}
	sort.Strings(ids)
	return ids
}

// Summary says in one line what is used and why, e.g.
//
//	fusion: minmax w=0.70 (validation ndcg@10 0.741 vs BM25 0.724, dense 0.536)
//	fusion: none beat BM25 on validation (ndcg@10 0.724; best fusion zscore w=0.40 0.719); using BM25
func (c Choice) Summary() string {
	switch c.Chosen {
	case ChosenGiven:
		if c.Metric == "" {
			return fmt.Sprintf("fusion: %s (given)", c.Spec)
		}
		return fmt.Sprintf("fusion: %s (given; %s %s %.3f vs BM25 %.3f, dense %.3f)", c.Spec, c.Split, c.Metric, c.Score, c.BM25, c.Dense)
	case ChosenDefault:
		return fmt.Sprintf("fusion: %s (no validation split to choose on)", c.Spec)
	}
	if c.Method.IsFusion() {
		return fmt.Sprintf("fusion: %s (%s %s %.3f vs BM25 %.3f, dense %.3f)", c.Spec, c.Split, c.Metric, c.Score, c.BM25, c.Dense)
	}
	name, other, otherScore := "BM25", "dense", c.Dense
	if c.Method == MethodDense {
		name, other, otherScore = "dense", "BM25", c.BM25
	}
	best := ""
	if b := c.BestCandidate(); b != nil {
		best = fmt.Sprintf("; best fusion %s %.3f", b.Spec, b.Score)
	}
	return fmt.Sprintf("fusion: none beat %s on %s (%s %.3f, %s %.3f%s); using %s", name, c.Split, c.Metric, c.Score, other, otherScore, best, name)
}
