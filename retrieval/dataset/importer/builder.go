package importer

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/ragtune/ragtune/retrieval/dataset"
)

// builder accumulates a data set from streamed records, enforcing what
// dataset.Validate requires as it goes, so that every problem is reported at
// the input position that caused it (or counted, with SkipBad).
type builder struct {
	d          *dataset.Dataset
	report     *Report
	skipBad    bool
	docs       map[string]int // id -> index in Corpus
	docsByText map[string]int // dataset.DocText -> index, for formats that name documents by text
	queries    map[string]int // id -> index in Queries
	qrelSeen   map[string]map[[2]string]bool
	enc        Encoding // of the text inputs
}

func newBuilder(skipBad bool, source string) *builder {
	return &builder{
		d:          &dataset.Dataset{Source: source, Qrels: map[string][]dataset.Qrel{}, Examples: map[string][]dataset.Example{}},
		report:     &Report{Skipped: map[string]int{}},
		skipBad:    skipBad,
		docs:       map[string]int{},
		docsByText: map[string]int{},
		queries:    map[string]int{},
		qrelSeen:   map[string]map[[2]string]bool{},
	}
}

// bad handles a bad record: with SkipBad it is counted (by reason) and
// nil returned so the import goes on; otherwise the error ends the import.
func (b *builder) bad(err error) error {
	if !b.skipBad {
		return err
	}
	reason := "malformed record"
	for _, known := range []error{dataset.ErrDuplicateID, dataset.ErrUnknownDoc, dataset.ErrUnknownQuery,
		dataset.ErrMissingField, dataset.ErrEmptyField, dataset.ErrInvalidUTF8, dataset.ErrBadScore} {
		if errors.Is(err, known) {
			reason = known.Error()
			break
		}
	}
	b.report.Skipped[reason]++
	if len(b.report.SkipSamples) < maxReportedErrors {
		b.report.SkipSamples = append(b.report.SkipSamples, err.Error())
	}
	return nil
}

// addDoc adds a document with an explicit id; a second document with the
// same id is bad input at pos. added is false when the row was skipped.
func (b *builder) addDoc(doc dataset.Doc, pos *record, idField string) (added bool, err error) {
	if doc.ID == "" {
		return false, b.bad(pos.errAt(idField, dataset.ErrEmptyField))
	}
	if _, dup := b.docs[doc.ID]; dup {
		return false, b.bad(pos.errAt(idField, fmt.Errorf("%w %q", dataset.ErrDuplicateID, doc.ID)))
	}
	b.insertDoc(doc)
	return true, nil
}

func (b *builder) insertDoc(doc dataset.Doc) int {
	i := len(b.d.Corpus)
	b.d.Corpus = append(b.d.Corpus, doc)
	b.docs[doc.ID] = i
	if _, ok := b.docsByText[b.d.DocText(doc)]; !ok {
		b.docsByText[b.d.DocText(doc)] = i
	}
	return i
}

// docForText returns the id of the document with this text, adding one with
// a content-derived id when there is none (sentence-transformers rows name
// documents by their text only).
func (b *builder) docForText(text string) string {
	if i, ok := b.docsByText[text]; ok {
		return b.d.Corpus[i].ID
	}
	id := contentID("d", text)
	if _, taken := b.docs[id]; taken {
		// The hash id is taken by a document with another text: an explicit
		// id that happens to look like ours. Extend until unique.
		for n := 2; ; n++ {
			if _, taken := b.docs[fmt.Sprintf("%s-%d", id, n)]; !taken {
				id = fmt.Sprintf("%s-%d", id, n)
				break
			}
		}
	}
	b.insertDoc(dataset.Doc{ID: id, Text: text})
	return id
}

// queryForText returns the id of the query with this text (identical query
// texts are one query), adding it when new. id may be given by the input.
func (b *builder) queryFor(id, text string) string {
	if id == "" {
		id = contentID("q", text)
	}
	if _, ok := b.queries[id]; !ok {
		b.queries[id] = len(b.d.Queries)
		b.d.Queries = append(b.d.Queries, dataset.Query{ID: id, Text: text})
	}
	return id
}

// addQuery adds a query with an explicit id; duplicates are an error at pos.
func (b *builder) addQuery(q dataset.Query, pos *record, idField string) error {
	if q.ID == "" {
		return b.bad(pos.errAt(idField, dataset.ErrEmptyField))
	}
	if _, dup := b.queries[q.ID]; dup {
		return b.bad(pos.errAt(idField, fmt.Errorf("%w %q", dataset.ErrDuplicateID, q.ID)))
	}
	b.queries[q.ID] = len(b.d.Queries)
	b.d.Queries = append(b.d.Queries, q)
	return nil
}

// addQrel adds a judgement; the same (query, document) twice in a split keeps
// the first (pair files repeat a pair once per negative).
func (b *builder) addQrel(split string, r dataset.Qrel) {
	seen := b.qrelSeen[split]
	if seen == nil {
		seen = map[[2]string]bool{}
		b.qrelSeen[split] = seen
	}
	key := [2]string{r.QueryID, r.DocID}
	if seen[key] {
		return
	}
	seen[key] = true
	b.d.Qrels[split] = append(b.d.Qrels[split], r)
}

// finish drops empty example maps and validates the result (a last safety
// net: the checks above should have caught everything at its position).
func (b *builder) finish() (*dataset.Dataset, *Report, error) {
	for s, ex := range b.d.Examples {
		if len(ex) == 0 {
			delete(b.d.Examples, s)
		}
	}
	if err := b.d.Validate(); err != nil {
		return nil, nil, err
	}
	b.report.Docs, b.report.Queries = len(b.d.Corpus), len(b.d.Queries)
	for _, s := range b.d.Splits() {
		b.report.Qrels += len(b.d.Qrels[s])
		b.report.Examples += len(b.d.Examples[s])
	}
	return b.d, b.report, nil
}

// contentID derives a stable id from a text, so importing the same file
// twice gives the same ids.
func contentID(prefix, text string) string {
	h := sha256.Sum256([]byte(text))
	return prefix + hex.EncodeToString(h[:6])
}
