package importer

import (
	"fmt"
	"slices"
	"strings"

	"github.com/ragtune/ragtune/retrieval/dataset"
)

// Column names recognised when Columns is left empty.
var (
	idNames   = []string{"_id", "id", "doc_id", "chunk_id", "corpus-id"}
	textNames = []string{"text", "chunk", "content", "document", "passage", "body"}
)

// inferColumns maps columns by their names: sentence-transformers (anchor,
// positive, negative_1..n), the original JSONL pair format (query, positive,
// negative, chunk_id), or a corpus table (_id or id, title, text).
func inferColumns(path string, cols []string, st bool) (Columns, error) {
	has := func(c string) bool { return slices.Contains(cols, c) }
	first := func(names []string) string {
		for _, n := range names {
			if has(n) {
				return n
			}
		}
		return ""
	}
	switch {
	case has("anchor") || st:
		if !has("anchor") || !has("positive") {
			return Columns{}, fmt.Errorf("%s: sentence-transformers format needs columns anchor and positive; it has %s", path, strings.Join(cols, ", "))
		}
		return Columns{Query: "anchor", Positive: "positive", Negatives: negativeColumns(cols)}, nil
	case has("query") && has("positive"):
		c := Columns{Query: "query", Positive: "positive", Negatives: negativeColumns(cols)}
		if has("chunk_id") {
			c.PositiveID = "chunk_id"
		}
		if has("query_id") {
			c.QueryID = "query_id"
		}
		return c, nil
	case first(textNames) != "":
		c := Columns{ID: first(idNames), Text: first(textNames)}
		if has("title") {
			c.Title = "title"
		}
		return c, nil
	}
	return Columns{}, fmt.Errorf("%s: cannot tell what this table holds from its columns (%s): pass --text-col for documents, or --query-col and --positive-col for pairs",
		path, strings.Join(cols, ", "))
}

// importTable reads a CSV, JSONL or Parquet table (and its corpus file).
func importTable(b *builder, path string, format Format, opts Options) error {
	src := tableSource(path, format, opts.Delimiter, b.enc)
	names, err := columnsOf(src)
	if err != nil {
		return err
	}
	cols := opts.Columns
	if cols.empty() {
		if cols, err = inferColumns(path, names, format == ST); err != nil {
			return err
		}
	}
	if err := checkColumns(path, cols, names); err != nil {
		return err
	}
	if opts.Corpus != "" {
		if cols.Positive == "" {
			return fmt.Errorf("--corpus goes with pair rows (query and positive columns); %s is read as documents", path)
		}
		if err := importCorpus(b, opts.Corpus, opts.Delimiter); err != nil {
			return err
		}
	}
	hasCorpus := opts.Corpus != ""
	return src(func(r *record) error {
		if r.bad != nil {
			return b.bad(r.bad)
		}
		if cols.Positive != "" {
			return addPairRow(b, r, cols, opts.Split, hasCorpus)
		}
		return addCorpusRow(b, r, cols, opts)
	})
}

// checkColumns rejects mappings that cannot work, before reading rows:
// mapped columns must exist in the table (names: its columns, as seen in
// the first rows).
func checkColumns(path string, c Columns, names []string) error {
	if len(names) == 0 {
		return fmt.Errorf("%s: no records", path)
	}
	for _, col := range append([]string{c.ID, c.Title, c.Text, c.Query, c.QueryID, c.Positive, c.PositiveID}, c.Negatives...) {
		if col != "" && !slices.Contains(names, col) {
			return &dataset.InputError{Path: path, Field: col,
				Err: fmt.Errorf("%w: the table's columns are %s", dataset.ErrMissingField, strings.Join(names, ", "))}
		}
	}
	switch {
	case c.Positive != "" && c.Query == "":
		return fmt.Errorf("%s: a positive column needs a query column (--query-col)", path)
	case c.Positive == "" && c.Text == "":
		return fmt.Errorf("%s: map a text column (--text-col) for documents, or --query-col and --positive-col for pairs", path)
	case c.Positive == "" && len(c.Negatives) > 0:
		return fmt.Errorf("%s: negative columns go with pair rows (--positive-col)", path)
	}
	return nil
}

// importCorpus reads the documents that pair rows refer to.
func importCorpus(b *builder, path string, delim rune) error {
	src := tableSource(path, Auto, delim, b.enc)
	names, err := columnsOf(src)
	if err != nil {
		return err
	}
	c, err := inferColumns(path, names, false)
	if err != nil || c.Text == "" || c.ID == "" {
		return fmt.Errorf("corpus %s: want an id column (%s) and a text column (%s); it has %s",
			path, strings.Join(idNames, ", "), strings.Join(textNames, ", "), strings.Join(names, ", "))
	}
	return src(func(r *record) error {
		if r.bad != nil {
			return b.bad(r.bad)
		}
		return addCorpusRow(b, r, c, Options{})
	})
}

// addCorpusRow adds one document row and, when mapped, its query.
func addCorpusRow(b *builder, r *record, c Columns, opts Options) error {
	text, err := r.str(c.Text)
	if err == nil && !r.has(c.Text) {
		err = r.errAt(c.Text, dataset.ErrMissingField)
	}
	if err != nil {
		return b.bad(err)
	}
	doc := dataset.Doc{Text: text}
	if doc.Title, err = r.str(c.Title); err != nil {
		return b.bad(err)
	}
	if c.ID != "" {
		if doc.ID, err = r.need(c.ID); err != nil {
			return b.bad(err)
		}
	} else {
		doc.ID = contentID("d", b.d.DocText(doc))
	}
	mapped := map[string]bool{c.ID: true, c.Title: true, c.Text: true, c.Query: true, c.QueryID: true}
	for _, name := range sortedKeys(r.cells) {
		if v := r.cells[name]; !mapped[name] && len(v) == 1 && v[0] != "" {
			if doc.Metadata == nil {
				doc.Metadata = map[string]string{}
			}
			doc.Metadata[name] = v[0]
		}
	}
	for k, v := range r.objects["metadata"] {
		if doc.Metadata == nil {
			doc.Metadata = map[string]string{}
		}
		doc.Metadata[k] = v
	}
	docID := doc.ID
	if i, dup := b.docsByText[b.d.DocText(doc)]; dup && opts.DedupDocs {
		docID = b.d.Corpus[i].ID
		b.report.MergedDocs++
	} else if added, err := b.addDoc(doc, r, c.ID); !added {
		return err // nil when the row was skipped
	}
	if c.Query == "" {
		return nil
	}
	q, err := r.str(c.Query)
	if err != nil {
		return b.bad(err)
	}
	if strings.TrimSpace(q) == "" {
		return nil // a document without a query
	}
	qid, err := r.str(c.QueryID)
	if err != nil {
		return b.bad(err)
	}
	b.addQrel(opts.Split, dataset.Qrel{QueryID: b.queryFor(qid, q), DocID: docID, Score: 1})
	return nil
}

// addPairRow adds one (query, positive, negatives...) row.
func addPairRow(b *builder, r *record, c Columns, split string, hasCorpus bool) error {
	q, err := r.need(c.Query)
	if err != nil {
		return b.bad(err)
	}
	pos, err := r.need(c.Positive)
	if err != nil {
		return b.bad(err)
	}
	qid, err := r.str(c.QueryID)
	if err != nil {
		return b.bad(err)
	}
	if i, ok := b.queries[qid]; ok && qid != "" && b.d.Queries[i].Text != q {
		return b.bad(r.errAt(c.QueryID, fmt.Errorf("%w %q: names two different query texts", dataset.ErrDuplicateID, qid)))
	}
	posID, err := r.str(c.PositiveID)
	if err != nil {
		return b.bad(err)
	}
	switch _, known := b.docs[posID]; {
	case posID == "":
		posID = b.docForText(pos)
	case !known && hasCorpus:
		return b.bad(r.errAt(c.PositiveID, fmt.Errorf("%w %q: not in the corpus file", dataset.ErrUnknownDoc, posID)))
	case !known:
		b.insertDoc(dataset.Doc{ID: posID, Text: pos})
	}
	ex := dataset.Example{QueryID: b.queryFor(qid, q), Anchor: q, PositiveID: posID, Positive: pos}
	for _, col := range c.Negatives {
		for _, neg := range r.cells[col] {
			if strings.TrimSpace(neg) == "" {
				continue
			}
			ex.Negatives = append(ex.Negatives, neg)
			ex.NegativeIDs = append(ex.NegativeIDs, b.docForText(neg))
		}
	}
	b.addQrel(split, dataset.Qrel{QueryID: ex.QueryID, DocID: posID, Score: 1})
	if len(c.Negatives) > 0 {
		b.d.Examples[split] = append(b.d.Examples[split], ex)
	}
	return nil
}
