package evaluate

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"

	"github.com/ragtune/ragtune/bindings/safefile"
	"github.com/ragtune/ragtune/retrieval/dataset"
	"github.com/ragtune/ragtune/retrieval/metrics"
)

// Run holds ranked results per query id, best first.
type Run map[string][]metrics.Result

// RunDepth is how many results per query a run file keeps.
const RunDepth = 100

// runLine is one line of a run file:
//
//	{"query_id": "q1", "results": [{"doc_id": "d3", "score": 0.83}, ...]}
type runLine struct {
	QueryID string           `json:"query_id"`
	Results []metrics.Result `json:"results"`
}

// WriteRun writes run as JSONL, queries in id order, each cut to depth results.
func WriteRun(path string, run Run, depth int) error {
	return safefile.Write(path, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		for _, qid := range sortedKeys(run) {
			res := run[qid]
			if depth > 0 && len(res) > depth {
				res = res[:depth]
			}
			if err := enc.Encode(runLine{QueryID: qid, Results: res}); err != nil {
				return err
			}
		}
		return nil
	})
}

// ReadRun reads a run file written by WriteRun (or by anyone else in that
// shape, gzip-aware).
func ReadRun(path string) (Run, error) {
	f, err := openMaybeGzip(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseRun(path, f)
}

// ParseRun is ReadRun on a reader; path names it in errors. A query given
// twice, a document given twice for one query, an empty id or a non-finite
// score is an error naming the line.
func ParseRun(path string, r io.Reader) (Run, error) {
	run := Run{}
	err := eachLine(path, r, func(line int, text []byte) error {
		var rec struct {
			QueryID json.RawMessage `json:"query_id"`
			Results []struct {
				DocID json.RawMessage `json:"doc_id"`
				Score *float64        `json:"score"`
			} `json:"results"`
		}
		if err := json.Unmarshal(text, &rec); err != nil {
			return &dataset.InputError{Path: path, Line: line, Err: fmt.Errorf("%w: %v", dataset.ErrBadRecord, err)}
		}
		qid, err := jsonID(rec.QueryID)
		if err != nil {
			return &dataset.InputError{Path: path, Line: line, Field: "query_id", Err: err}
		}
		if _, dup := run[qid]; dup {
			return &dataset.InputError{Path: path, Line: line, Field: "query_id", Err: fmt.Errorf("%w %q", dataset.ErrDuplicateID, qid)}
		}
		res := make([]metrics.Result, 0, len(rec.Results))
		seen := map[string]bool{}
		for i, x := range rec.Results {
			field := fmt.Sprintf("results[%d]", i)
			did, err := jsonID(x.DocID)
			if err != nil {
				return &dataset.InputError{Path: path, Line: line, Field: field + ".doc_id", Err: err}
			}
			if x.Score == nil || math.IsNaN(*x.Score) || math.IsInf(*x.Score, 0) {
				return &dataset.InputError{Path: path, Line: line, Field: field + ".score", Err: fmt.Errorf("missing or not a finite number")}
			}
			if seen[did] {
				return &dataset.InputError{Path: path, Line: line, Field: field + ".doc_id", Err: fmt.Errorf("%w %q for query %q", dataset.ErrDuplicateID, did, qid)}
			}
			seen[did] = true
			res = append(res, metrics.Result{DocID: did, Score: *x.Score})
		}
		run[qid] = res
		return nil
	})
	if err != nil {
		return nil, err
	}
	return run, nil
}

// Top10Line is one line of the original work's per-query top10_*.jsonl file.
type Top10Line struct {
	QueryID        string    `json:"query_id"`
	Query          string    `json:"query"`
	RetrievedIDs   []string  `json:"retrieved_ids"`
	RetrievedTexts []string  `json:"retrieved_texts"`
	Scores         []float64 `json:"scores"`
	RelevantIDs    []string  `json:"relevant_ids"`
}

// WriteTop10 writes one Top10Line per evaluated query (in id order): its
// text, the top 10 results with their texts (from docs; "" when unknown) and
// scores, and its relevant document ids.
func WriteTop10(path string, queries []Query, run Run, qrels Qrels, docs map[string]string) error {
	text := make(map[string]string, len(queries))
	for _, q := range queries {
		text[q.ID] = q.Text
	}
	return safefile.Write(path, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		for _, qid := range sortedKeys(run) {
			res := run[qid]
			if len(res) > 10 {
				res = res[:10]
			}
			l := Top10Line{QueryID: qid, Query: text[qid], RetrievedIDs: []string{}, RetrievedTexts: []string{}, Scores: []float64{}, RelevantIDs: []string{}}
			for _, r := range res {
				l.RetrievedIDs = append(l.RetrievedIDs, r.DocID)
				l.RetrievedTexts = append(l.RetrievedTexts, docs[r.DocID])
				l.Scores = append(l.Scores, r.Score)
			}
			for did, g := range qrels[qid] {
				if g > 0 {
					l.RelevantIDs = append(l.RelevantIDs, did)
				}
			}
			sort.Strings(l.RelevantIDs)
			if err := enc.Encode(l); err != nil {
				return err
			}
		}
		return nil
	})
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
