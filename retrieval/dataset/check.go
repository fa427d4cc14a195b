package dataset

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Problem kinds found by Check.
const (
	ProblemEmptyText     = "empty_text"           // empty or whitespace-only document, query or example text
	ProblemBlankLines    = "repeated_blank_lines" // two or more blank lines in a row
	ProblemDuplicateText = "duplicate_text"       // same normalised text as an earlier document or query
	ProblemDuplicateID   = "duplicate_id"
	ProblemTooLong       = "too_long"        // more tokens than CheckOptions.MaxTokens
	ProblemDanglingID    = "dangling_id"     // a qrel or example naming a missing query or document
	ProblemNoRelevant    = "no_relevant_doc" // a judged query with no relevant document
	ProblemSplitLeak     = "split_leak"      // a query text or relevant document in several splits
	ProblemInvalidUTF8   = "invalid_utf8"
)

// Problem is one finding of Check, located by file (the Arrow file of the
// data set) and 1-based row as Save writes them.
type Problem struct {
	Kind   string `json:"kind"`
	File   string `json:"file"`
	Row    int    `json:"row,omitempty"`
	ID     string `json:"id,omitempty"`
	Field  string `json:"field,omitempty"`
	Detail string `json:"detail"`
}

func (p Problem) String() string {
	loc := p.File
	if p.Row > 0 {
		loc += fmt.Sprintf(":%d", p.Row)
	}
	s := loc + ": " + p.Kind
	if p.ID != "" {
		s += fmt.Sprintf(" (id %q)", p.ID)
	}
	if p.Field != "" {
		s += fmt.Sprintf(" field %q", p.Field)
	}
	return s + ": " + p.Detail
}

// CheckOptions control Check.
type CheckOptions struct {
	// MaxTokens flags documents longer than this many tokens (0: no limit).
	MaxTokens int
	// CountTokens counts a text's tokens; nil counts whitespace-separated
	// words (pass a model tokenizer's count to check against its context).
	CountTokens func(string) int
	// Keep bounds the problems listed per kind (all are counted).
	Keep int
}

// CheckReport lists what Check found.
type CheckReport struct {
	Counts   map[string]int `json:"counts"` // by kind
	Problems []Problem      `json:"problems"`
	Tokens   string         `json:"tokens"` // what MaxTokens counted
}

// Total counts all problems found.
func (r *CheckReport) Total() int {
	n := 0
	for _, c := range r.Counts {
		n += c
	}
	return n
}

var blankLines = regexp.MustCompile(`\n[ \t\r\f\v]*\n[ \t\r\f\v]*\n`)

// Check looks for the data problems the original work fixed by hand: empty
// or whitespace-only texts, repeated blank lines, duplicate texts and ids,
// over-long documents, ids pointing nowhere, judged queries with nothing
// relevant, and leaks between splits. It works on data sets that Validate
// would reject too (see Read).
func (d *Dataset) Check(opts CheckOptions) *CheckReport {
	rep := &CheckReport{Counts: map[string]int{}, Tokens: "whitespace words"}
	if opts.CountTokens == nil {
		opts.CountTokens = func(s string) int { return len(strings.Fields(s)) }
	} else {
		rep.Tokens = "model tokens"
	}
	if opts.Keep == 0 {
		opts.Keep = 20
	}
	add := func(p Problem) {
		rep.Counts[p.Kind]++
		if rep.Counts[p.Kind] <= opts.Keep {
			rep.Problems = append(rep.Problems, p)
		}
	}
	docIDs, docTexts := map[string]int{}, map[string]string{}
	for i, doc := range d.Corpus {
		p := Problem{File: CorpusFile, Row: i + 1, ID: doc.ID}
		text := d.DocText(doc)
		if prev, dup := docIDs[doc.ID]; dup {
			p.Kind, p.Field, p.Detail = ProblemDuplicateID, "_id", fmt.Sprintf("also on row %d", prev)
			add(p)
		} else {
			docIDs[doc.ID] = i + 1
		}
		switch {
		case strings.TrimSpace(text) == "":
			p.Kind, p.Field, p.Detail = ProblemEmptyText, "text", "empty or whitespace only"
			add(p)
			continue
		case blankLines.MatchString(doc.Text):
			p.Kind, p.Field, p.Detail = ProblemBlankLines, "text", "two or more blank lines in a row"
			add(p)
		}
		norm := NormalizeText(text)
		if first, dup := docTexts[norm]; dup {
			p.Kind, p.Field, p.Detail = ProblemDuplicateText, "text", fmt.Sprintf("same text as document %q", first)
			add(p)
		} else {
			docTexts[norm] = doc.ID
		}
		if opts.MaxTokens > 0 {
			if n := opts.CountTokens(text); n > opts.MaxTokens {
				p.Kind, p.Field, p.Detail = ProblemTooLong, "text", fmt.Sprintf("%d tokens, limit %d", n, opts.MaxTokens)
				add(p)
			}
		}
	}
	queryIDs, queryTexts := map[string]int{}, map[string]string{}
	for i, q := range d.Queries {
		p := Problem{File: QueriesFile, Row: i + 1, ID: q.ID, Field: "text"}
		if prev, dup := queryIDs[q.ID]; dup {
			p.Kind, p.Field, p.Detail = ProblemDuplicateID, "_id", fmt.Sprintf("also on row %d", prev)
			add(p)
		} else {
			queryIDs[q.ID] = i + 1
		}
		norm := NormalizeText(q.Text)
		switch first, dup := queryTexts[norm]; {
		case norm == "":
			p.Kind, p.Detail = ProblemEmptyText, "empty or whitespace only"
			add(p)
		case dup:
			p.Kind, p.Detail = ProblemDuplicateText, fmt.Sprintf("same text as query %q", first)
			add(p)
		default:
			queryTexts[norm] = q.ID
		}
	}
	row := 0
	for _, s := range d.Splits() {
		relevant := map[string]bool{}
		for _, r := range d.Qrels[s] {
			row++
			p := Problem{Kind: ProblemDanglingID, File: QrelsFile, Row: row}
			if _, ok := queryIDs[r.QueryID]; !ok {
				p.ID, p.Field, p.Detail = r.QueryID, "query_id", "no such query"
				add(p)
			}
			if _, ok := docIDs[r.DocID]; !ok {
				p.ID, p.Field, p.Detail = r.DocID, "doc_id", "no such document"
				add(p)
			}
			if r.Score > 0 {
				relevant[r.QueryID] = true
			}
		}
		for _, q := range d.SplitQueries(s) {
			if !relevant[q.ID] && len(d.Examples[s]) == 0 {
				add(Problem{Kind: ProblemNoRelevant, File: QrelsFile, ID: q.ID, Detail: "judged in split " + s + " with no relevant document"})
			}
		}
	}
	row = 0
	for _, s := range d.Splits() {
		for _, e := range d.Examples[s] {
			row++
			p := Problem{File: ExamplesFile, Row: row}
			if strings.TrimSpace(e.Anchor) == "" || strings.TrimSpace(e.Positive) == "" {
				p.Kind, p.Field, p.Detail = ProblemEmptyText, "anchor", "empty anchor or positive"
				add(p)
			}
			for _, ref := range append([]string{e.PositiveID}, e.NegativeIDs...) {
				if _, ok := docIDs[ref]; ref != "" && !ok {
					p.Kind, p.ID, p.Field, p.Detail = ProblemDanglingID, ref, "positive_id or negative_ids", "no such document"
					add(p)
				}
			}
			if _, ok := queryIDs[e.QueryID]; e.QueryID != "" && !ok {
				p.Kind, p.ID, p.Field, p.Detail = ProblemDanglingID, e.QueryID, "query_id", "no such query"
				add(p)
			}
		}
	}
	for _, l := range d.Leaks() {
		add(Problem{Kind: ProblemSplitLeak, File: QrelsFile, ID: l.Key, Field: l.Kind, Detail: "in splits " + strings.Join(l.Splits, ", ")})
	}
	sort.SliceStable(rep.Problems, func(i, j int) bool { return rep.Problems[i].Kind < rep.Problems[j].Kind })
	return rep
}
