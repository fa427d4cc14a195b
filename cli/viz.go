package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/ragtune/ragtune/retrieval"
	"github.com/ragtune/ragtune/retrieval/dataset"
	"github.com/ragtune/ragtune/retrieval/embmap"
	"github.com/ragtune/ragtune/retrieval/evaluate"
	"github.com/ragtune/ragtune/retrieval/index"
	"github.com/ragtune/ragtune/tune/encoder"
	"github.com/ragtune/ragtune/tune/mapview"
)

func init() {
	register(&ucli.Command{
		Name:      "viz",
		Usage:     "2-D maps (PCA, UMAP) of a split's queries and documents, base and tuned model side by side",
		ArgsUsage: " ",
		Flags: append(modelFlags(),
			&ucli.StringFlag{Name: "data", Required: true, Usage: "ragtune dataset or BEIR folder"},
			&ucli.StringFlag{Name: "split", Value: dataset.Validation, Usage: "split whose judged queries are mapped"},
			&ucli.StringFlag{Name: "tuned-model", Usage: "tuned model GGUF (full fine-tuning or merged); --adapter applies to it, or to --model without it"},
			&ucli.StringFlag{Name: "base-doc-vectors", Usage: "EMB.jsonl of the corpus with _id (instead of --model)"},
			&ucli.StringFlag{Name: "base-query-vectors", Usage: "EMB.jsonl of the queries with _id (instead of --model)"},
			&ucli.StringFlag{Name: "tuned-doc-vectors", Usage: "EMB.jsonl of the corpus by the tuned model (instead of --adapter/--tuned-model)"},
			&ucli.StringFlag{Name: "tuned-query-vectors", Usage: "EMB.jsonl of the queries by the tuned model"},
			&ucli.StringFlag{Name: "method", Value: "both", Usage: "pca, umap or both"},
			&ucli.IntFlag{Name: "queries", Value: 200, Usage: "judged queries mapped (seeded sample)"},
			&ucli.IntFlag{Name: "sample", Value: 2000, Usage: "corpus documents mapped: the sampled queries' relevant ones plus a seeded sample of others"},
			&ucli.Uint64Flag{Name: "seed", Value: 1, Usage: "seed of the samples and of UMAP"},
			&ucli.StringFlag{Name: "metric", Value: "cosine", Usage: "cosine (vectors normalised first) or euclidean"},
			&ucli.IntFlag{Name: "neighbors", Value: 15, Usage: "UMAP neighbourhood size"},
			&ucli.Float64Flag{Name: "min-dist", Value: 0.1, Usage: "UMAP minimum distance"},
			&ucli.IntFlag{Name: "epochs", Usage: "UMAP epochs (default 500 up to 10,000 points, else 200)"},
			&ucli.StringFlag{Name: "out", Required: true, Usage: "folder for viz.html, maps.json and maps.csv"},
			&ucli.BoolFlag{Name: "wizmap", Usage: "also write WizMap's data and grid files per map (OUT/wizmap/)"},
			&ucli.BoolFlag{Name: "json", Usage: "print a JSON summary"},
			&ucli.BoolFlag{Name: "quiet", Usage: "no progress line"},
		),
		Action: runViz,
	})
}

type vizMap struct {
	Model           string    `json:"model"`
	Method          string    `json:"method"`
	Trustworthiness float64   `json:"trustworthiness"`
	Explained       []float64 `json:"explained,omitempty"`
}

type vizSummary struct {
	Queries   int      `json:"queries"`
	Documents int      `json:"documents"`
	Maps      []vizMap `json:"maps"`
	Seconds   float64  `json:"seconds"`
	Files     []string `json:"files"`
	Notes     []string `json:"notes"`
}

// vizSource is one model's vectors: an encoder or precomputed files.
type vizSource struct {
	name              string
	model, adapter    string
	docVecs, queryVec string
}

func runViz(c *ucli.Context) error {
	start := time.Now()
	var methods []string
	switch m := c.String("method"); m {
	case "both":
		methods = []string{mapview.PCA, mapview.UMAP}
	case mapview.PCA, mapview.UMAP:
		methods = []string{m}
	default:
		return fmt.Errorf("--method %q: want pca, umap or both", m)
	}
	metric := c.String("metric")
	if metric != "cosine" && metric != "euclidean" {
		return fmt.Errorf("--metric %q: want cosine or euclidean", metric)
	}
	sources, err := vizSources(c)
	if err != nil {
		return err
	}
	queries, qrels, err := evaluate.LoadJudged(c.String("data"), c.String("split"))
	if err != nil {
		return err
	}
	corpus, err := evaluate.LoadCorpus(c.String("data"))
	if err != nil {
		return err
	}
	view := mapview.Sample(queries, qrels, corpus, c.Int("queries"), c.Int("sample"), c.Uint64("seed"))
	if len(view.Items) == 0 {
		return fmt.Errorf("viz: split %q of %s has no judged query with a relevant document in the corpus", c.String("split"), c.String("data"))
	}
	view.Title = fmt.Sprintf("Embedding maps: %s, split %s", filepath.Base(filepath.Clean(c.String("data"))), c.String("split"))
	view.Notes = append(view.Notes, fmt.Sprintf("distance: %s; UMAP with %d neighbours, min-dist %g, seed %d", metric, c.Int("neighbors"), c.Float64("min-dist"), c.Uint64("seed")))
	quiet := c.Bool("quiet") || c.Bool("json")
	for _, src := range sources {
		vecs, err := sourceVectors(c, src, view.Items, quiet)
		if err != nil {
			return err
		}
		if metric == "cosine" {
			vecs = embmap.Normalize(vecs)
		}
		bar := newProgress(src.name, 0, quiet)
		err = view.Compute(src.name, vecs, mapview.Options{
			Methods: methods,
			UMAP:    embmap.UMAPOptions{Neighbors: c.Int("neighbors"), MinDist: c.Float64("min-dist"), Epochs: c.Int("epochs"), Seed: c.Uint64("seed")},
			Progress: func(label string, done, total int) {
				bar.label, bar.total = label, total
				bar.Update(done, "")
			},
		})
		bar.Done()
		if err != nil {
			return err
		}
	}
	dir := c.String("out")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	sum := vizSummary{Notes: view.Notes}
	for _, f := range []struct {
		name  string
		write func(string) error
	}{{"viz.html", view.WriteHTML}, {"maps.json", view.WriteJSON}, {"maps.csv", view.WriteCSV}} {
		p := filepath.Join(dir, f.name)
		if err := f.write(p); err != nil {
			return err
		}
		sum.Files = append(sum.Files, p)
	}
	if c.Bool("wizmap") {
		wdir := filepath.Join(dir, "wizmap")
		if err := os.MkdirAll(wdir, 0o755); err != nil {
			return err
		}
		for _, m := range view.Maps {
			base := filepath.Join(wdir, m.Model+"-"+m.Method)
			if err := view.WriteWizMap(m, base+".ndjson", base+"-grid.json"); err != nil {
				return err
			}
			sum.Files = append(sum.Files, base+".ndjson", base+"-grid.json")
		}
	}
	for _, it := range view.Items {
		if it.IsQuery() {
			sum.Queries++
		} else {
			sum.Documents++
		}
	}
	for _, m := range view.Maps {
		sum.Maps = append(sum.Maps, vizMap{Model: m.Model, Method: m.Method, Trustworthiness: m.Trustworthiness, Explained: m.Explained})
	}
	sum.Seconds = time.Since(start).Seconds()
	if c.Bool("json") {
		return printJSON(c.App.Writer, sum)
	}
	w := c.App.Writer
	fmt.Fprintf(w, "mapped %d queries and %d documents in %.1fs\n", sum.Queries, sum.Documents, sum.Seconds)
	for _, m := range sum.Maps {
		fmt.Fprintf(w, "  %-6s %-4s trustworthiness(10) %.3f", m.Model, m.Method, m.Trustworthiness)
		if len(m.Explained) == 2 {
			fmt.Fprintf(w, ", variance %.1f%% + %.1f%%", 100*m.Explained[0], 100*m.Explained[1])
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "-> %s (open it in a browser; works offline), maps.json, maps.csv\n", filepath.Join(dir, "viz.html"))
	return nil
}

// vizSources reads which models to map: the base (--model or
// --base-*-vectors) and, when given, the tuned one (--adapter and/or
// --tuned-model, or --tuned-*-vectors).
func vizSources(c *ucli.Context) ([]vizSource, error) {
	base := vizSource{name: "base", model: c.String("model"), docVecs: c.String("base-doc-vectors"), queryVec: c.String("base-query-vectors")}
	tuned := vizSource{name: "tuned", model: c.String("tuned-model"), adapter: c.String("adapter"),
		docVecs: c.String("tuned-doc-vectors"), queryVec: c.String("tuned-query-vectors")}
	if tuned.model == "" && tuned.adapter != "" {
		tuned.model = base.model
	}
	check := func(s vizSource, modelFlag string) (bool, error) {
		vecs := s.docVecs != "" || s.queryVec != ""
		switch {
		case vecs && (s.docVecs == "" || s.queryVec == ""):
			return false, fmt.Errorf("viz: give both --%s-doc-vectors and --%s-query-vectors", s.name, s.name)
		case vecs && s.model != "":
			return false, fmt.Errorf("viz: %s vectors exclude %s", s.name, modelFlag)
		}
		return vecs || s.model != "", nil
	}
	hasBase, err := check(base, "--model")
	if err != nil {
		return nil, err
	}
	if !hasBase {
		return nil, errors.New("viz: give --model M.gguf (or --base-doc-vectors and --base-query-vectors)")
	}
	hasTuned, err := check(tuned, "--adapter/--tuned-model")
	if err != nil {
		return nil, err
	}
	if hasTuned {
		return []vizSource{base, tuned}, nil
	}
	return []vizSource{base}, nil
}

// sourceVectors returns one vector per item from the source.
func sourceVectors(c *ucli.Context, src vizSource, items []mapview.Item, quiet bool) ([][]float32, error) {
	if src.model == "" {
		docs, err := vectorsByID(src.docVecs)
		if err != nil {
			return nil, err
		}
		qs, err := vectorsByID(src.queryVec)
		if err != nil {
			return nil, err
		}
		out := make([][]float32, len(items))
		for i, it := range items {
			from, path := docs, src.docVecs
			if it.IsQuery() {
				from, path = qs, src.queryVec
			}
			if out[i] = from[it.ID]; out[i] == nil {
				return nil, fmt.Errorf("%s: no vector with _id %q", path, it.ID)
			}
		}
		return out, nil
	}
	opts := encoderOptions(c)
	opts.Adapter = src.adapter
	opts.Normalize = false // the map normalises (or not) by --metric
	enc, err := encoder.Open(src.model, opts)
	if err != nil {
		return nil, err
	}
	defer enc.Close()
	out := make([][]float32, len(items))
	bar := newProgress("embed "+src.name, len(items), quiet)
	defer bar.Done()
	chunk := max(c.Int("batch"), 1) * 8
	for lo := 0; lo < len(items); {
		// Queries and documents are embedded apart (queries may get an
		// instruction); items list all queries first.
		isQuery := items[lo].IsQuery()
		hi := lo
		for hi < len(items) && hi-lo < chunk && items[hi].IsQuery() == isQuery {
			hi++
		}
		texts := make([]string, hi-lo)
		for i := range texts {
			texts[i] = items[lo+i].Text
		}
		kind := retrieval.Document
		if isQuery {
			kind = retrieval.Query
		}
		vecs, err := enc.Embed(context.Background(), texts, kind)
		if err != nil {
			return nil, fmt.Errorf("embed with %s: %w", src.model, err)
		}
		copy(out[lo:], vecs)
		lo = hi
		bar.Update(hi, "")
	}
	return out, nil
}

func vectorsByID(path string) (map[string][]float32, error) {
	vs, err := index.ReadVectors(path)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]float32, len(vs))
	for _, v := range vs {
		if v.ID == "" {
			return nil, fmt.Errorf("%s: line %d has no _id; viz matches vectors by id", path, v.I+1)
		}
		out[v.ID] = v.Embedding
	}
	return out, nil
}
