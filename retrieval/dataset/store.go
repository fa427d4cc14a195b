package dataset

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/ragtune/ragtune/bindings/safefile"
)

// File names inside a data set folder.
const (
	ManifestFile = "dataset.json"
	CorpusFile   = "corpus.arrow"
	QueriesFile  = "queries.arrow"
	QrelsFile    = "qrels.arrow"
	ExamplesFile = "examples.arrow"
	// GeneratedFile marks generated queries (present only when there are some).
	GeneratedFile = "generated.arrow"
)

// SourceGenerated is the source column of generated.arrow.
const SourceGenerated = "generated"

// FormatName and FormatVersion identify the folder layout in the manifest;
// Open refuses versions it does not know.
const (
	FormatName    = "ragtune-dataset"
	FormatVersion = 1
)

var (
	corpusSchema = arrow.NewSchema([]arrow.Field{
		{Name: "_id", Type: arrow.BinaryTypes.String},
		{Name: "title", Type: arrow.BinaryTypes.String},
		{Name: "text", Type: arrow.BinaryTypes.String},
		{Name: "metadata", Type: stringMap, Nullable: true},
	}, nil)
	queriesSchema = arrow.NewSchema([]arrow.Field{
		{Name: "_id", Type: arrow.BinaryTypes.String},
		{Name: "text", Type: arrow.BinaryTypes.String},
	}, nil)
	qrelsSchema = arrow.NewSchema([]arrow.Field{
		{Name: "split", Type: arrow.BinaryTypes.String},
		{Name: "query_id", Type: arrow.BinaryTypes.String},
		{Name: "doc_id", Type: arrow.BinaryTypes.String},
		{Name: "score", Type: arrow.PrimitiveTypes.Int32},
	}, nil)
	examplesSchema = arrow.NewSchema([]arrow.Field{
		{Name: "split", Type: arrow.BinaryTypes.String},
		{Name: "query_id", Type: arrow.BinaryTypes.String},
		{Name: "anchor", Type: arrow.BinaryTypes.String},
		{Name: "positive_id", Type: arrow.BinaryTypes.String},
		{Name: "positive", Type: arrow.BinaryTypes.String},
		{Name: "negative_ids", Type: stringList},
		{Name: "negatives", Type: stringList},
	}, nil)
	generatedSchema = arrow.NewSchema([]arrow.Field{
		{Name: "query_id", Type: arrow.BinaryTypes.String},
		{Name: "source", Type: arrow.BinaryTypes.String},
		{Name: "generator", Type: arrow.BinaryTypes.String},
		{Name: "seed", Type: arrow.PrimitiveTypes.Uint64},
		{Name: "mode", Type: arrow.BinaryTypes.String},
		{Name: "parent", Type: arrow.BinaryTypes.String},
	}, nil)
)

// Manifest is dataset.json: what the folder holds, for humans and for a
// quick look without reading the Arrow files.
type Manifest struct {
	Format  string                `json:"format"`
	Version int                   `json:"version"`
	Source  string                `json:"source,omitempty"`
	Docs    int                   `json:"docs"`
	Queries int                   `json:"queries"`
	Splits  map[string]SplitCount `json:"splits"`
	// Files holds the size and checksum of each Arrow file, checked by Open.
	Files map[string]FileSum `json:"files"`
}

// SplitCount counts a split's judged queries, qrels and explicit examples.
type SplitCount struct {
	Queries  int `json:"queries"`
	Qrels    int `json:"qrels"`
	Examples int `json:"examples,omitempty"`
}

// Manifest summarises the data set as Save writes it.
func (d *Dataset) Manifest() Manifest {
	m := Manifest{Format: FormatName, Version: FormatVersion, Source: d.Source,
		Docs: len(d.Corpus), Queries: len(d.Queries), Splits: map[string]SplitCount{}}
	for _, s := range d.Splits() {
		m.Splits[s] = SplitCount{Queries: len(d.SplitQueries(s)), Qrels: len(d.Qrels[s]), Examples: len(d.Examples[s])}
	}
	return m
}

// Save writes the data set into dir (created if needed). Each file is
// written atomically; the manifest goes last, so a folder with a manifest
// always has complete Arrow files next to it. examples.arrow is written only
// when there are explicit examples (and removed when there are none, so a
// folder never keeps stale ones).
func (d *Dataset) Save(dir string) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("save %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	m := d.Manifest()
	m.Files = map[string]FileSum{}
	var err error
	m.Files[CorpusFile], err = writeArrowFile(filepath.Join(dir, CorpusFile), corpusSchema, len(d.Corpus), func(b *array.RecordBuilder, i int) {
		doc := d.Corpus[i]
		b.Field(0).(*array.StringBuilder).Append(doc.ID)
		b.Field(1).(*array.StringBuilder).Append(doc.Title)
		b.Field(2).(*array.StringBuilder).Append(doc.Text)
		appendMap(b.Field(3), doc.Metadata)
	})
	if err != nil {
		return err
	}
	m.Files[QueriesFile], err = writeArrowFile(filepath.Join(dir, QueriesFile), queriesSchema, len(d.Queries), func(b *array.RecordBuilder, i int) {
		b.Field(0).(*array.StringBuilder).Append(d.Queries[i].ID)
		b.Field(1).(*array.StringBuilder).Append(d.Queries[i].Text)
	})
	if err != nil {
		return err
	}
	type qrelRow struct {
		split string
		Qrel
	}
	var qrels []qrelRow
	for _, s := range d.Splits() {
		for _, r := range d.Qrels[s] {
			qrels = append(qrels, qrelRow{s, r})
		}
	}
	m.Files[QrelsFile], err = writeArrowFile(filepath.Join(dir, QrelsFile), qrelsSchema, len(qrels), func(b *array.RecordBuilder, i int) {
		r := qrels[i]
		b.Field(0).(*array.StringBuilder).Append(r.split)
		b.Field(1).(*array.StringBuilder).Append(r.QueryID)
		b.Field(2).(*array.StringBuilder).Append(r.DocID)
		b.Field(3).(*array.Int32Builder).Append(int32(r.Score))
	})
	if err != nil {
		return err
	}
	type exampleRow struct {
		split string
		Example
	}
	var examples []exampleRow
	for _, s := range d.Splits() {
		for _, e := range d.Examples[s] {
			examples = append(examples, exampleRow{s, e})
		}
	}
	exPath := filepath.Join(dir, ExamplesFile)
	if len(examples) == 0 {
		if err := os.Remove(exPath); err != nil && !errNotExist(err) {
			return err
		}
	} else {
		m.Files[ExamplesFile], err = writeArrowFile(exPath, examplesSchema, len(examples), func(b *array.RecordBuilder, i int) {
			e := examples[i]
			b.Field(0).(*array.StringBuilder).Append(e.split)
			b.Field(1).(*array.StringBuilder).Append(e.QueryID)
			b.Field(2).(*array.StringBuilder).Append(e.Anchor)
			b.Field(3).(*array.StringBuilder).Append(e.PositiveID)
			b.Field(4).(*array.StringBuilder).Append(e.Positive)
			appendStrings(b.Field(5), e.NegativeIDs)
			appendStrings(b.Field(6), e.Negatives)
		})
		if err != nil {
			return err
		}
	}
	var generated []Query
	for _, q := range d.Queries {
		if q.Generated != nil {
			generated = append(generated, q)
		}
	}
	genPath := filepath.Join(dir, GeneratedFile)
	if len(generated) == 0 {
		if err := os.Remove(genPath); err != nil && !errNotExist(err) {
			return err
		}
	} else {
		m.Files[GeneratedFile], err = writeArrowFile(genPath, generatedSchema, len(generated), func(b *array.RecordBuilder, i int) {
			q, g := generated[i], generated[i].Generated
			b.Field(0).(*array.StringBuilder).Append(q.ID)
			b.Field(1).(*array.StringBuilder).Append(SourceGenerated)
			b.Field(2).(*array.StringBuilder).Append(g.Generator)
			b.Field(3).(*array.Uint64Builder).Append(g.Seed)
			b.Field(4).(*array.StringBuilder).Append(g.Mode)
			b.Field(5).(*array.StringBuilder).Append(g.Parent)
		})
		if err != nil {
			return err
		}
	}
	manifest, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return safefile.WriteBytes(filepath.Join(dir, ManifestFile), append(manifest, '\n'))
}

var errNoFile = errors.New("file not listed")

// Open reads a data set folder written by Save and validates it (unique
// ids, qrels and examples pointing at existing queries and documents).
func Open(dir string) (*Dataset, error) {
	d, err := Read(dir)
	if err != nil {
		return nil, err
	}
	if err := d.validate(dir); err != nil {
		return nil, fmt.Errorf("open dataset %s: %w", dir, err)
	}
	return d, nil
}

// Read reads a data set folder like Open but does not validate its
// contents, for tools that report problems (Check) instead of refusing.
// The files themselves must still be intact.
func Read(dir string) (*Dataset, error) {
	raw, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		if errNotExist(err) {
			return nil, fmt.Errorf("open dataset %s: no %s (not a ragtune dataset folder; create one with `ragtune data import`)", dir, ManifestFile)
		}
		return nil, fmt.Errorf("open dataset %s: %w", dir, err)
	}
	var m Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, &InputError{Path: filepath.Join(dir, ManifestFile), Err: err}
	}
	if m.Format != FormatName || m.Version != FormatVersion {
		return nil, &InputError{Path: filepath.Join(dir, ManifestFile), Field: "version",
			Err: fmt.Errorf("format %q version %d, this ragtune reads %q version %d", m.Format, m.Version, FormatName, FormatVersion)}
	}
	d := &Dataset{Source: m.Source, Qrels: map[string][]Qrel{}, Examples: map[string][]Example{}}
	read := func(file string, schema *arrow.Schema, each func(int, row) error) error {
		sum, ok := m.Files[file]
		if !ok {
			return &InputError{Path: filepath.Join(dir, ManifestFile), Field: "files", Err: fmt.Errorf("%w: no entry for %s", errNoFile, file)}
		}
		return readArrowFile(filepath.Join(dir, file), sum, schema, each)
	}
	err = read(CorpusFile, corpusSchema, func(_ int, r row) error {
		d.Corpus = append(d.Corpus, Doc{ID: r.str("_id"), Title: r.str("title"), Text: r.str("text"), Metadata: r.strMap("metadata")})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("open dataset %s: %w", dir, err)
	}
	err = read(QueriesFile, queriesSchema, func(_ int, r row) error {
		d.Queries = append(d.Queries, Query{ID: r.str("_id"), Text: r.str("text")})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("open dataset %s: %w", dir, err)
	}
	err = read(QrelsFile, qrelsSchema, func(_ int, r row) error {
		s := r.str("split")
		d.Qrels[s] = append(d.Qrels[s], Qrel{QueryID: r.str("query_id"), DocID: r.str("doc_id"), Score: r.int("score")})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("open dataset %s: %w", dir, err)
	}
	err = read(ExamplesFile, examplesSchema, func(_ int, r row) error {
		s := r.str("split")
		d.Examples[s] = append(d.Examples[s], Example{QueryID: r.str("query_id"), Anchor: r.str("anchor"),
			PositiveID: r.str("positive_id"), Positive: r.str("positive"),
			NegativeIDs: r.strs("negative_ids"), Negatives: r.strs("negatives")})
		return nil
	})
	if err != nil && !errors.Is(err, errNoFile) {
		return nil, fmt.Errorf("open dataset %s: %w", dir, err)
	}
	queries := d.QueryIndex()
	err = read(GeneratedFile, generatedSchema, func(rowNum int, r row) error {
		id := r.str("query_id")
		i, ok := queries[id]
		switch {
		case !ok:
			return &InputError{Path: filepath.Join(dir, GeneratedFile), Line: rowNum, Field: "query_id", Err: fmt.Errorf("%w %q", ErrUnknownQuery, id)}
		case r.str("source") != SourceGenerated:
			return &InputError{Path: filepath.Join(dir, GeneratedFile), Line: rowNum, Field: "source", Err: fmt.Errorf("%q, want %q", r.str("source"), SourceGenerated)}
		}
		d.Queries[i].Generated = &Generation{Generator: r.str("generator"), Seed: r.uint64("seed"), Mode: r.str("mode"), Parent: r.str("parent")}
		return nil
	})
	if err != nil && !errors.Is(err, errNoFile) {
		return nil, fmt.Errorf("open dataset %s: %w", dir, err)
	}
	return d, nil
}

// Validate checks what Open and every consumer rely on: ids are non-empty,
// valid UTF-8 and unique; every qrel names an existing query and document;
// examples name existing queries and positives, with parallel negative lists.
// The error names the Arrow file and the row Save would write it to.
func (d *Dataset) Validate() error { return d.validate("") }

func (d *Dataset) validate(dir string) error {
	at := func(file string, row int, field string, err error) error {
		return &InputError{Path: filepath.Join(dir, file), Line: row, Field: field, Err: err}
	}
	docs := make(map[string]bool, len(d.Corpus))
	for i, doc := range d.Corpus {
		if err := checkID(doc.ID, docs); err != nil {
			return at(CorpusFile, i+1, "_id", err)
		}
		if !utf8.ValidString(doc.Title) {
			return at(CorpusFile, i+1, "title", ErrInvalidUTF8)
		}
		if !utf8.ValidString(doc.Text) {
			return at(CorpusFile, i+1, "text", ErrInvalidUTF8)
		}
	}
	queries := make(map[string]bool, len(d.Queries))
	for i, q := range d.Queries {
		if err := checkID(q.ID, queries); err != nil {
			return at(QueriesFile, i+1, "_id", err)
		}
		if !utf8.ValidString(q.Text) {
			return at(QueriesFile, i+1, "text", ErrInvalidUTF8)
		}
	}
	gen := d.GeneratedQueries()
	row := 0
	for _, s := range d.Splits() {
		seen := map[[2]string]bool{}
		for _, r := range d.Qrels[s] {
			row++
			switch {
			case s == "":
				return at(QrelsFile, row, "split", ErrEmptyField)
			case gen[r.QueryID] && s != Train:
				return at(QrelsFile, row, "split", fmt.Errorf("%w: generated query %q is judged in split %s", ErrGeneratedOutsideTrain, r.QueryID, s))
			case !queries[r.QueryID]:
				return at(QrelsFile, row, "query_id", fmt.Errorf("%w %q", ErrUnknownQuery, r.QueryID))
			case !docs[r.DocID]:
				return at(QrelsFile, row, "doc_id", fmt.Errorf("%w %q", ErrUnknownDoc, r.DocID))
			case seen[[2]string{r.QueryID, r.DocID}]:
				return at(QrelsFile, row, "doc_id", fmt.Errorf("%w: query %q judges document %q twice in split %s", ErrDuplicateID, r.QueryID, r.DocID, s))
			}
			seen[[2]string{r.QueryID, r.DocID}] = true
		}
	}
	row = 0
	for _, s := range d.Splits() {
		for _, e := range d.Examples[s] {
			row++
			switch {
			case s == "":
				return at(ExamplesFile, row, "split", ErrEmptyField)
			case e.QueryID != "" && !queries[e.QueryID]:
				return at(ExamplesFile, row, "query_id", fmt.Errorf("%w %q", ErrUnknownQuery, e.QueryID))
			case gen[e.QueryID] && s != Train:
				return at(ExamplesFile, row, "split", fmt.Errorf("%w: generated query %q is an example of split %s", ErrGeneratedOutsideTrain, e.QueryID, s))
			case e.PositiveID != "" && !docs[e.PositiveID]:
				return at(ExamplesFile, row, "positive_id", fmt.Errorf("%w %q", ErrUnknownDoc, e.PositiveID))
			case len(e.NegativeIDs) != 0 && len(e.NegativeIDs) != len(e.Negatives):
				return at(ExamplesFile, row, "negative_ids", fmt.Errorf("%d ids for %d negatives", len(e.NegativeIDs), len(e.Negatives)))
			case e.Anchor == "" || e.Positive == "":
				return at(ExamplesFile, row, "anchor", fmt.Errorf("%w: anchor and positive must be set", ErrEmptyField))
			}
			for _, id := range e.NegativeIDs {
				if id != "" && !docs[id] {
					return at(ExamplesFile, row, "negative_ids", fmt.Errorf("%w %q", ErrUnknownDoc, id))
				}
			}
		}
	}
	return nil
}

func checkID(id string, seen map[string]bool) error {
	switch {
	case id == "":
		return ErrEmptyField
	case !utf8.ValidString(id):
		return ErrInvalidUTF8
	case seen[id]:
		return fmt.Errorf("%w %q", ErrDuplicateID, id)
	}
	seen[id] = true
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
