package dataset

import (
	"sort"
	"strings"
)

// Stats describes a data set: sizes, text lengths in whitespace words, and
// per split the judged queries and relevant documents.
type Stats struct {
	Docs          int                   `json:"docs"`
	DocsWithTitle int                   `json:"docs_with_title"`
	Queries       int                   `json:"queries"`
	DocWords      LengthSummary         `json:"doc_words"`
	QueryWords    LengthSummary         `json:"query_words"`
	NeverRelevant int                   `json:"docs_never_relevant"`
	Splits        map[string]SplitStats `json:"splits"`
}

// SplitStats describes one split.
type SplitStats struct {
	Queries             int     `json:"queries"`
	Qrels               int     `json:"qrels"`
	Relevant            int     `json:"relevant"`
	RelevantPerQuery    float64 `json:"relevant_per_query"`
	Examples            int     `json:"examples"`
	NegativesPerExample float64 `json:"negatives_per_example"`
}

// LengthSummary describes text lengths.
type LengthSummary struct {
	Min    int     `json:"min"`
	Mean   float64 `json:"mean"`
	Median int     `json:"median"`
	P95    int     `json:"p95"`
	Max    int     `json:"max"`
}

func lengths(texts func(yield func(string))) LengthSummary {
	var n []int
	texts(func(s string) { n = append(n, len(strings.Fields(s))) })
	if len(n) == 0 {
		return LengthSummary{}
	}
	sort.Ints(n)
	sum := 0
	for _, x := range n {
		sum += x
	}
	at := func(p float64) int { return n[int(p*float64(len(n)-1)+0.5)] }
	return LengthSummary{Min: n[0], Mean: float64(sum) / float64(len(n)), Median: at(0.5), P95: at(0.95), Max: n[len(n)-1]}
}

// Stats computes the data set's statistics.
func (d *Dataset) Stats() Stats {
	st := Stats{Docs: len(d.Corpus), Queries: len(d.Queries), Splits: map[string]SplitStats{}}
	st.DocWords = lengths(func(yield func(string)) {
		for _, doc := range d.Corpus {
			yield(d.DocText(doc))
		}
	})
	st.QueryWords = lengths(func(yield func(string)) {
		for _, q := range d.Queries {
			yield(q.Text)
		}
	})
	relevant := map[string]bool{}
	for _, doc := range d.Corpus {
		if strings.TrimSpace(doc.Title) != "" {
			st.DocsWithTitle++
		}
	}
	for _, s := range d.Splits() {
		ss := SplitStats{Queries: len(d.SplitQueries(s)), Qrels: len(d.Qrels[s]), Examples: len(d.Examples[s])}
		for _, r := range d.Qrels[s] {
			if r.Score > 0 {
				ss.Relevant++
				relevant[r.DocID] = true
			}
		}
		negs := 0
		for _, e := range d.Examples[s] {
			negs += len(e.Negatives)
			relevant[e.PositiveID] = true
		}
		if ss.Queries > 0 {
			ss.RelevantPerQuery = float64(ss.Relevant) / float64(ss.Queries)
		}
		if ss.Examples > 0 {
			ss.NegativesPerExample = float64(negs) / float64(ss.Examples)
		}
		st.Splits[s] = ss
	}
	for _, doc := range d.Corpus {
		if !relevant[doc.ID] {
			st.NeverRelevant++
		}
	}
	return st
}
