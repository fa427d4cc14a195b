// Package mapview turns embeddings of a data set's queries and documents
// into 2-D maps (retrieval/embmap's PCA and UMAP), one per model and
// method, and writes them as a self-contained interactive page (viz.html,
// ECharts inlined, no network), JSON and CSV, or as chart options for the
// study report.
//
// A View holds the items (sampled queries and documents, see Sample), which
// query judges which document relevant (links), and the maps. Item i has
// point i in every map, so the same query can be followed from the base
// model's map to the tuned one's.
package mapview

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strconv"

	"github.com/ragtune/ragtune/bindings/safefile"
	"github.com/ragtune/ragtune/retrieval/embmap"
)

// Item groups, which colour the maps.
const (
	GroupQuery    = "query"
	GroupRelevant = "relevant document" // judged relevant to a sampled query
	GroupOther    = "other document"
)

// Item is one mapped text.
type Item struct {
	ID    string `json:"id"`
	Group string `json:"group"`
	Text  string `json:"text"`
}

// IsQuery tells queries from documents.
func (it Item) IsQuery() bool { return it.Group == GroupQuery }

// Map is one 2-D map of every item.
type Map struct {
	Model  string         `json:"model"`  // e.g. "base", "tuned"
	Method string         `json:"method"` // "pca" or "umap"
	Points []embmap.Point `json:"points"`
	// Explained is PCA's share of variance per axis.
	Explained []float64 `json:"explained,omitempty"`
	// Trustworthiness at k = 10 (embmap.Trustworthiness) over up to
	// TrustSample items: how well the map keeps neighbourhoods.
	Trustworthiness float64 `json:"trustworthiness"`
}

// View is everything a page shows.
type View struct {
	Title string   `json:"title"`
	Items []Item   `json:"items"`
	Links [][2]int `json:"links"` // (query item, relevant document item)
	Maps  []Map    `json:"maps"`
	Notes []string `json:"notes,omitempty"` // how the items were chosen
}

// Methods of Compute.
const (
	PCA  = "pca"
	UMAP = "umap"
)

// TrustSample bounds the points over which trustworthiness is measured
// (it costs n² distances in the embedding space).
const TrustSample = 1000

// Options of Compute.
type Options struct {
	Methods []string // PCA and/or UMAP
	UMAP    embmap.UMAPOptions
	// Progress, when set, hears each map's stage and progress.
	Progress func(label string, done, total int)
}

// Compute maps the vectors of one model (vectors[i] belongs to v.Items[i])
// with each method and appends the maps to v.
func (v *View) Compute(model string, vectors [][]float32, opts Options) error {
	if len(vectors) != len(v.Items) {
		return fmt.Errorf("mapview: %d vectors for %d items", len(vectors), len(v.Items))
	}
	for _, method := range opts.Methods {
		m := Map{Model: model, Method: method}
		switch method {
		case PCA:
			p, err := embmap.PCA(vectors)
			if err != nil {
				return fmt.Errorf("%s %s: %w", model, method, err)
			}
			m.Points, m.Explained = p.Points, p.Explained[:]
		case UMAP:
			uo := opts.UMAP
			if opts.Progress != nil {
				uo.Progress = func(stage string, done, total int) {
					opts.Progress(fmt.Sprintf("%s umap %s", model, stage), done, total)
				}
			}
			pts, err := embmap.UMAP(vectors, uo)
			if err != nil {
				return fmt.Errorf("%s %s: %w", model, method, err)
			}
			m.Points = pts
		default:
			return fmt.Errorf("mapview: unknown method %q (want %s or %s)", method, PCA, UMAP)
		}
		tw, err := trust(vectors, m.Points, opts.UMAP.Seed)
		if err != nil {
			return fmt.Errorf("%s %s: %w", model, method, err)
		}
		m.Trustworthiness = tw
		v.Maps = append(v.Maps, m)
	}
	return nil
}

// trust measures trustworthiness at k = 10 over a seeded sample of at most
// TrustSample points (0 when there are too few points for k = 10).
func trust(vectors [][]float32, points []embmap.Point, seed uint64) (float64, error) {
	idx := make([]int, len(vectors))
	for i := range idx {
		idx[i] = i
	}
	if len(idx) > TrustSample {
		rng := rand.New(rand.NewPCG(seed, 0x7a57))
		rng.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
		idx = idx[:TrustSample]
		slices.Sort(idx)
	}
	if len(idx) < 25 {
		return 0, nil
	}
	vs, ps := make([][]float32, len(idx)), make([]embmap.Point, len(idx))
	for i, j := range idx {
		vs[i], ps[i] = vectors[j], points[j]
	}
	return embmap.Trustworthiness(vs, ps, 10)
}

// WriteJSON writes the view as one JSON document.
func (v *View) WriteJSON(path string) error {
	return safefile.Write(path, func(w io.Writer) error {
		return json.NewEncoder(w).Encode(v)
	})
}

// WriteCSV writes one row per map and item: model, method, group, id, x, y.
func (v *View) WriteCSV(path string) error {
	return safefile.Write(path, func(w io.Writer) error {
		cw := csv.NewWriter(w)
		if err := cw.Write([]string{"model", "method", "group", "id", "x", "y"}); err != nil {
			return err
		}
		for _, m := range v.Maps {
			for i, p := range m.Points {
				it := v.Items[i]
				row := []string{m.Model, m.Method, it.Group, it.ID, strconv.FormatFloat(p.X, 'g', 8, 64), strconv.FormatFloat(p.Y, 'g', 8, 64)}
				if err := cw.Write(row); err != nil {
					return err
				}
			}
		}
		cw.Flush()
		return cw.Error()
	})
}
