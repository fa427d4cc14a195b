package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/ragtune/ragtune/retrieval"
	"github.com/ragtune/ragtune/retrieval/bm25"
	"github.com/ragtune/ragtune/retrieval/evaluate"
	"github.com/ragtune/ragtune/retrieval/hybrid"
	"github.com/ragtune/ragtune/retrieval/index"
	"github.com/ragtune/ragtune/retrieval/indexdir"
	"github.com/ragtune/ragtune/tune/encoder"
)

func init() {
	register(&ucli.Command{
		Name:  "index",
		Usage: "build, query and describe retrieval indexes (exact vectors, BM25, or both)",
		Subcommands: []*ucli.Command{
			{
				Name:      "build",
				Usage:     "index a corpus with a model (--model), precomputed vectors (--vectors) and/or BM25 (--bm25)",
				ArgsUsage: " ",
				Flags: append(append(modelFlags(),
					&ucli.StringFlag{Name: "corpus", Required: true, Usage: "ragtune dataset folder, BEIR folder or corpus.jsonl[.gz]"},
					&ucli.StringFlag{Name: "out", Required: true, Usage: "index folder to write"},
					&ucli.StringFlag{Name: "vectors", Usage: "EMB.jsonl of the corpus (`ragtune embed` output): matched by _id, else by line"},
					&ucli.BoolFlag{Name: "bm25", Usage: "build a BM25 index (with --model or --vectors too: a hybrid index, fused as --fusion says)"},
					&ucli.StringFlag{Name: "metric", Value: string(index.Cosine), Usage: "vector similarity: cosine or dot"},
					&ucli.Float64Flag{Name: "k1", Value: bm25.DefaultParams.K1, Usage: "BM25 term-frequency saturation"},
					&ucli.Float64Flag{Name: "b", Value: bm25.DefaultParams.B, Usage: "BM25 length normalisation"},
					&ucli.BoolFlag{Name: "stopwords", Usage: "BM25: drop English stopwords"},
					&ucli.BoolFlag{Name: "json", Usage: "print a JSON summary"},
					&ucli.BoolFlag{Name: "quiet", Usage: "no progress line"},
				), fusionFlags()...),
				Action: runIndexBuild,
			},
			{
				Name:      "query",
				Usage:     "search an index with query texts",
				ArgsUsage: "TEXT...",
				Flags: append(modelFlags(),
					&ucli.StringFlag{Name: "index", Required: true, Usage: "index folder"},
					&ucli.IntFlag{Name: "k", Value: 10, Usage: "results per query"},
					&ucli.BoolFlag{Name: "json", Usage: "print JSON"},
				),
				Action: runIndexQuery,
			},
			{
				Name:      "info",
				Usage:     "describe an index folder",
				ArgsUsage: "[INDEX_DIR]",
				Flags: []ucli.Flag{
					&ucli.StringFlag{Name: "index", Usage: "index folder (or give it as the argument)"},
					&ucli.BoolFlag{Name: "json", Usage: "print JSON"},
				},
				Action: runIndexInfo,
			},
		},
	})
}

type indexBuildSummary struct {
	*indexdir.Summary
	Out     string  `json:"out"`
	Seconds float64 `json:"seconds"`
}

func runIndexBuild(c *ucli.Context) error {
	start := time.Now()
	model, vectorsPath, useBM25 := c.String("model"), c.String("vectors"), c.Bool("bm25")
	if model != "" && vectorsPath != "" {
		return errors.New("index build: --model and --vectors exclude each other")
	}
	if model == "" && vectorsPath == "" && !useBM25 {
		return errors.New("index build: say what to index: --model M.gguf, --vectors EMB.jsonl and/or --bm25")
	}
	fusion, err := parseFusionFlags(c)
	if err != nil {
		return err
	}
	if !(useBM25 && (model != "" || vectorsPath != "")) && (!fusion.auto || fusion.weight) {
		return errors.New("index build: --fusion is for a hybrid index (--bm25 with --model or --vectors)")
	}
	metric, err := index.ParseMetric(c.String("metric"))
	if err != nil {
		return fmt.Errorf("--metric: %w", err)
	}
	docs, err := evaluate.LoadCorpus(c.String("corpus"))
	if err != nil {
		return err
	}
	opts := indexdir.Options{Metric: metric, Corpus: c.String("corpus")}
	ids := make([]string, len(docs))
	for i, d := range docs {
		ids[i] = d.ID
	}
	var encode evaluate.QueryEncoder // queries of the validation split, to choose the fusion
	switch {
	case vectorsPath != "":
		vs, err := index.ReadVectors(vectorsPath)
		if err != nil {
			return err
		}
		if opts.Vectors, err = index.MatchVectors(ids, vs, "corpus"); err != nil {
			return fmt.Errorf("%s: %w", vectorsPath, err)
		}
		opts.Embedder = &index.EmbedderSpec{Vectors: vectorsPath}
	case model != "":
		enc, err := openEmbedder(c)
		if err != nil {
			return err
		}
		defer enc.Close()
		texts := make([]string, len(docs))
		for i, d := range docs {
			texts[i] = evaluate.DocText(d)
		}
		bar := newProgress("embed corpus", len(texts), c.Bool("quiet") || c.Bool("json"))
		opts.Vectors, err = indexdir.EmbedTexts(context.Background(), enc, texts, retrieval.Document, max(c.Int("batch"), 1)*8,
			func(done int) { bar.Update(done, "") })
		bar.Done()
		if err != nil {
			return err
		}
		opts.Embedder = &index.EmbedderSpec{Model: model, Adapter: c.String("adapter"), Normalize: c.Bool("normalize"),
			QueryInstruction: c.String("query-instruction")}
		encode = evaluate.EmbedQueries(enc)
	}
	if useBM25 {
		opts.BM25 = &bm25.Params{K1: c.Float64("k1"), B: c.Float64("b"), Stopwords: c.Bool("stopwords")}
	}
	sum, err := indexdir.Build(c.String("out"), docs, opts)
	if err != nil {
		return err
	}
	if sum.Manifest.Kind == index.Hybrid {
		if sum.Manifest.Fusion, err = buildFusion(c, fusion, encode); err != nil {
			return err
		}
	}
	out := indexBuildSummary{Summary: sum, Out: c.String("out"), Seconds: time.Since(start).Seconds()}
	if c.Bool("json") {
		return printJSON(c.App.Writer, out)
	}
	printIndexSummary(c.App.Writer, sum)
	fmt.Fprintf(c.App.Writer, "built %s in %.2fs\n", out.Out, out.Seconds)
	return nil
}

// buildFusion chooses a new hybrid folder's fusion on the validation split
// of --corpus, when it has one and the queries can be embedded (not with
// --vectors), and records it; with nothing to choose on, a fusion the flags
// fix is recorded as given, and auto records nothing (eval chooses later).
func buildFusion(c *ucli.Context, req fusionRequest, encode evaluate.QueryEncoder) (*hybrid.Choice, error) {
	dir := c.String("out")
	var val *judgments
	if encode != nil {
		var err error
		if val, err = loadValidation(c.String("corpus")); err != nil {
			return nil, err
		}
	}
	var choice *hybrid.Choice
	switch given := req.given(); {
	case val == nil && given != nil:
		choice = &hybrid.Choice{Spec: *given, Chosen: hybrid.ChosenGiven}
	case val == nil && !req.auto:
		return nil, fmt.Errorf("--fusion %s without --fusion-weight chooses the weight on the validation split of --corpus with --model: give --fusion-weight", req.spec.Method)
	case val == nil:
		return nil, nil
	default:
		parts, err := indexdir.OpenParts(dir, encode, nil)
		if err != nil {
			return nil, err
		}
		if choice, err = resolveFusion(c, parts, req, nil, val); err != nil {
			return nil, err
		}
	}
	return choice, indexdir.RecordFusion(dir, choice)
}

func printIndexSummary(w io.Writer, s *indexdir.Summary) {
	m := s.Manifest
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "kind\t%s\n", m.Kind)
	fmt.Fprintf(tw, "documents\t%d\n", m.Count)
	if m.Corpus != "" {
		fmt.Fprintf(tw, "corpus\t%s\n", m.Corpus)
	}
	if m.HasDense() {
		fmt.Fprintf(tw, "vectors\t%d dims, %s\n", m.Dim, m.Metric)
		if e := m.Embedder; e != nil && e.Model != "" {
			fmt.Fprintf(tw, "model\t%s (adapter %q, normalize %v)\n", e.Model, e.Adapter, e.Normalize)
		} else if e != nil {
			fmt.Fprintf(tw, "vectors from\t%s\n", e.Vectors)
		}
	}
	if s.BM25 != nil {
		fmt.Fprintf(tw, "bm25\tk1 %g, b %g, stopwords %v, %d terms\n", s.BM25.K1, s.BM25.B, s.BM25.Stopwords, s.BM25Terms)
	}
	tw.Flush()
	switch {
	case m.Fusion != nil:
		fmt.Fprintln(w, m.Fusion.Summary())
	case m.Kind == index.Hybrid:
		fmt.Fprintln(w, "fusion: not chosen yet (eval chooses it on the validation split of --data, else uses rrf)")
	}
}

func runIndexInfo(c *ucli.Context) error {
	dir := c.String("index")
	if dir == "" {
		dir = c.Args().First()
	}
	if dir == "" {
		return errors.New("index info: give the index folder (--index DIR or as the argument)")
	}
	sum, err := indexdir.Info(dir)
	if err != nil {
		return err
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, sum)
	}
	printIndexSummary(c.App.Writer, sum)
	return nil
}

// queryEncoder returns how to turn query texts into vectors for an index
// folder's manifest: the model given with --model, else the one recorded in
// the manifest (with its adapter, normalisation and query instruction).
// The encoder is nil when neither exists (BM25 folders, --vectors
// folders); close the io.Closer, when not nil, after use.
func queryEncoder(c *ucli.Context, m *index.Manifest) (evaluate.QueryEncoder, io.Closer, error) {
	if !m.HasDense() {
		return nil, nil, nil
	}
	if c.String("model") != "" {
		enc, err := openEmbedder(c)
		if err != nil {
			return nil, nil, err
		}
		return evaluate.EmbedQueries(enc), closerFunc(enc.Close), nil
	}
	e := m.Embedder
	if e == nil || e.Model == "" {
		return nil, nil, nil
	}
	opts := encoderOptions(c)
	opts.Adapter, opts.Normalize, opts.QueryInstruction = e.Adapter, e.Normalize, e.QueryInstruction
	enc, err := encoder.Open(e.Model, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("open the index's model: %w", err)
	}
	return evaluate.EmbedQueries(enc), closerFunc(enc.Close), nil
}

type closerFunc func()

func (f closerFunc) Close() error { f(); return nil }

type queryResult struct {
	Query   string       `json:"query"`
	Results []queryHitJS `json:"results"`
}

type queryHitJS struct {
	DocID string  `json:"doc_id"`
	Score float64 `json:"score"`
	Text  string  `json:"text,omitempty"`
}

func runIndexQuery(c *ucli.Context) error {
	texts := c.Args().Slice()
	if len(texts) == 0 {
		return errors.New("index query: give one or more query texts")
	}
	dir := c.String("index")
	m, err := index.ReadManifest(dir)
	if err != nil {
		return err
	}
	encode, closer, err := queryEncoder(c, m)
	if err != nil {
		return err
	}
	if closer != nil {
		defer closer.Close()
	}
	r, _, err := indexdir.Open(dir, encode, nil, evaluate.RunDepth)
	if err != nil {
		return err
	}
	queries := make([]evaluate.Query, len(texts))
	for i, t := range texts {
		queries[i] = evaluate.Query{ID: fmt.Sprint(i), Text: t}
	}
	res, err := r.Retrieve(context.Background(), queries, c.Int("k"))
	if err != nil {
		return err
	}
	docs, err := index.LoadDocs(dir)
	if err != nil {
		return err
	}
	out := make([]queryResult, len(texts))
	for i, t := range texts {
		out[i] = queryResult{Query: t, Results: []queryHitJS{}}
		for _, h := range res[i] {
			out[i].Results = append(out[i].Results, queryHitJS{DocID: h.DocID, Score: h.Score, Text: docs[h.DocID]})
		}
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, out)
	}
	for _, q := range out {
		fmt.Fprintf(c.App.Writer, "query: %s\n", q.Query)
		for r, h := range q.Results {
			fmt.Fprintf(c.App.Writer, "%3d  %-20s %9.4f  %s\n", r+1, h.DocID, h.Score, snippet(h.Text, 70))
		}
	}
	return nil
}

// snippet shortens text to one line of at most n runes.
func snippet(text string, n int) string {
	text = strings.Join(strings.Fields(text), " ")
	if r := []rune(text); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return text
}
