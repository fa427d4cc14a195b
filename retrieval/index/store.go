package index

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/ragtune/ragtune/bindings/safefile"
	"github.com/ragtune/ragtune/retrieval/arrowfile"
	"github.com/ragtune/ragtune/retrieval/hybrid"
)

// An index folder (INDEX_DIR) holds:
//
//	manifest.json  what the folder holds (Manifest)
//	docs.arrow     id, text: every document's text, rows by id (for top-10
//	               files and `index query`)
//	vectors.arrow  id, embedding fixed_size_list<float32>[dim], rows by id
//	               (dense and hybrid indexes; vectors normalised under cosine)
//	bm25_*.arrow   the lexical index (package bm25; bm25 and hybrid indexes)
//
// Every file is written atomically (temp file, sync, rename); the manifest
// goes last, so a folder with a manifest is complete.
const (
	ManifestFile = "manifest.json"
	DocsFile     = "docs.arrow"
	VectorsFile  = "vectors.arrow"

	manifestFormat  = "ragtune-index"
	manifestVersion = 1
)

// Kind says which retrievers an index folder holds.
type Kind string

const (
	Dense  Kind = "dense"  // vectors.arrow
	BM25   Kind = "bm25"   // bm25_*.arrow
	Hybrid Kind = "hybrid" // both, fused as Manifest.Fusion says (RRF when unset)
)

// Manifest describes an index folder.
type Manifest struct {
	Format   string        `json:"format"`
	Version  int           `json:"version"`
	Kind     Kind          `json:"kind"`
	Count    int           `json:"count"`
	Metric   Metric        `json:"metric,omitempty"`
	Dim      int           `json:"dim,omitempty"`
	Embedder *EmbedderSpec `json:"embedder,omitempty"`
	Corpus   string        `json:"corpus,omitempty"` // where the documents came from
	// Fusion is how a hybrid folder fuses its two rankings, and why
	// (chosen on a validation split, or given).
	Fusion *hybrid.Choice `json:"fusion,omitempty"`
}

// EmbedderSpec records how the document vectors were made, so that queries
// can be embedded the same way at search time.
type EmbedderSpec struct {
	Model     string `json:"model,omitempty"`   // GGUF path, when ragtune embedded the corpus
	Adapter   string `json:"adapter,omitempty"` // LoRA adapter GGUF path
	Normalize bool   `json:"normalize"`
	// QueryInstruction prefixes query texts (instruction-tuned embedders).
	QueryInstruction string `json:"query_instruction,omitempty"`
	Vectors          string `json:"vectors,omitempty"` // EMB.jsonl path, when vectors came precomputed
}

// HasDense reports whether the folder holds vectors.
func (m *Manifest) HasDense() bool { return m.Kind == Dense || m.Kind == Hybrid }

// HasBM25 reports whether the folder holds a lexical index.
func (m *Manifest) HasBM25() bool { return m.Kind == BM25 || m.Kind == Hybrid }

// WriteManifest writes dir/manifest.json, filling Format and Version.
func WriteManifest(dir string, m Manifest) error {
	m.Format, m.Version = manifestFormat, manifestVersion
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return safefile.WriteBytes(filepath.Join(dir, ManifestFile), append(data, '\n'))
}

// ReadManifest reads and checks dir/manifest.json.
func ReadManifest(dir string) (*Manifest, error) {
	path := filepath.Join(dir, ManifestFile)
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s is not an index folder (no %s)", dir, ManifestFile)
		}
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if m.Format != manifestFormat {
		return nil, fmt.Errorf("%s: format %q, want %q", path, m.Format, manifestFormat)
	}
	if m.Version != manifestVersion {
		return nil, fmt.Errorf("%s: version %d, this ragtune reads version %d", path, m.Version, manifestVersion)
	}
	switch m.Kind {
	case Dense, BM25, Hybrid:
	default:
		return nil, fmt.Errorf("%s: field \"kind\": unknown kind %q", path, m.Kind)
	}
	if m.HasDense() {
		if _, err := ParseMetric(string(m.Metric)); err != nil {
			return nil, fmt.Errorf("%s: field \"metric\": %w", path, err)
		}
		if m.Dim <= 0 {
			return nil, fmt.Errorf("%s: field \"dim\": %d", path, m.Dim)
		}
	}
	if m.Fusion != nil {
		if err := m.Fusion.Validate(); err != nil {
			return nil, fmt.Errorf("%s: field \"fusion\": %w", path, err)
		}
	}
	return &m, nil
}

// Save writes dir/vectors.arrow. The caller writes the manifest afterwards
// (WriteManifest), with Metric, Dim and Count from this index.
func (ix *Index) Save(dir string) error {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.BinaryTypes.String},
		{Name: "embedding", Type: arrow.FixedSizeListOf(int32(ix.dim), arrow.PrimitiveTypes.Float32)},
	}, nil)
	return arrowfile.Write(filepath.Join(dir, VectorsFile), schema, len(ix.ids), func(b *array.RecordBuilder, lo, hi int) {
		b.Field(0).(*array.StringBuilder).AppendValues(ix.ids[lo:hi], nil)
		lb := b.Field(1).(*array.FixedSizeListBuilder)
		vb := lb.ValueBuilder().(*array.Float32Builder)
		for i := lo; i < hi; i++ {
			lb.Append(true)
		}
		vb.AppendValues(ix.vecs[lo*ix.dim:hi*ix.dim], nil)
	})
}

// Open loads the vectors of an index folder; m is its manifest.
func Open(dir string, m *Manifest) (*Index, error) {
	if !m.HasDense() {
		return nil, fmt.Errorf("%s: a %s index has no vectors", dir, m.Kind)
	}
	path := filepath.Join(dir, VectorsFile)
	ix := &Index{metric: m.Metric, dim: m.Dim, ids: make([]string, 0, m.Count), vecs: make([]float32, 0, m.Count*m.Dim)}
	err := arrowfile.Read(path, func(_ arrow.Metadata, rec arrow.RecordBatch) error {
		if rec.NumCols() != 2 {
			return fmt.Errorf("%d columns, want id and embedding", rec.NumCols())
		}
		ids, ok := rec.Column(0).(*array.String)
		if !ok {
			return fmt.Errorf("column \"id\" is %s, want utf8", rec.Column(0).DataType())
		}
		emb, ok := rec.Column(1).(*array.FixedSizeList)
		if !ok {
			return fmt.Errorf("column \"embedding\" is %s, want fixed_size_list<float32>", rec.Column(1).DataType())
		}
		if n := emb.DataType().(*arrow.FixedSizeListType).Len(); int(n) != m.Dim {
			return fmt.Errorf("column \"embedding\" has %d dimensions, the manifest says %d", n, m.Dim)
		}
		vals, ok := emb.ListValues().(*array.Float32)
		if !ok {
			return fmt.Errorf("column \"embedding\" holds %s, want float32", emb.ListValues().DataType())
		}
		all := vals.Float32Values()
		for r := 0; r < int(rec.NumRows()); r++ {
			if ids.IsNull(r) || emb.IsNull(r) {
				return fmt.Errorf("row %d: null id or embedding", len(ix.ids)+1)
			}
			start := (emb.Offset() + r) * m.Dim
			if start+m.Dim > len(all) {
				return fmt.Errorf("row %d: embedding values cut short", len(ix.ids)+1)
			}
			ix.ids = append(ix.ids, ids.Value(r))
			ix.vecs = append(ix.vecs, all[start:start+m.Dim]...)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(ix.ids) != m.Count {
		return nil, fmt.Errorf("%s: %d rows, the manifest says %d", path, len(ix.ids), m.Count)
	}
	for i, id := range ix.ids {
		if i > 0 && ix.ids[i-1] >= id {
			return nil, fmt.Errorf("%s: row %d: id %q is not after %q (rows must be sorted and unique)", path, i+1, id, ix.ids[i-1])
		}
		if err := checkVector(ix.Vector(i), ix.metric); err != nil {
			return nil, fmt.Errorf("%s: row %d (id %q): %w", path, i+1, id, err)
		}
	}
	return ix, nil
}

// SaveDocs writes dir/docs.arrow from parallel ids and texts (sorted by id
// on the way; the inputs are not modified).
func SaveDocs(dir string, ids, texts []string) error {
	if len(ids) != len(texts) {
		return fmt.Errorf("save docs: %d ids for %d texts", len(ids), len(texts))
	}
	order := make([]int, len(ids))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return ids[order[a]] < ids[order[b]] })
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.BinaryTypes.String},
		{Name: "text", Type: arrow.BinaryTypes.String},
	}, nil)
	return arrowfile.Write(filepath.Join(dir, DocsFile), schema, len(ids), func(b *array.RecordBuilder, lo, hi int) {
		for _, i := range order[lo:hi] {
			b.Field(0).(*array.StringBuilder).Append(ids[i])
			b.Field(1).(*array.StringBuilder).Append(texts[i])
		}
	})
}

// LoadDocs reads dir/docs.arrow into a map from id to text.
func LoadDocs(dir string) (map[string]string, error) {
	docs := map[string]string{}
	err := arrowfile.Read(filepath.Join(dir, DocsFile), func(_ arrow.Metadata, rec arrow.RecordBatch) error {
		if rec.NumCols() != 2 {
			return fmt.Errorf("%d columns, want id and text", rec.NumCols())
		}
		ids, ok1 := rec.Column(0).(*array.String)
		texts, ok2 := rec.Column(1).(*array.String)
		if !ok1 || !ok2 {
			return errors.New("columns id and text must be utf8")
		}
		for r := 0; r < int(rec.NumRows()); r++ {
			docs[ids.Value(r)] = texts.Value(r)
		}
		return nil
	})
	return docs, err
}
