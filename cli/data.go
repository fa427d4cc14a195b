package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	ucli "github.com/urfave/cli/v2"

	"github.com/ragtune/ragtune/retrieval/dataset"
	"github.com/ragtune/ragtune/retrieval/dataset/export"
	"github.com/ragtune/ragtune/retrieval/dataset/importer"
	"github.com/ragtune/ragtune/retrieval/evaluate"
	"github.com/ragtune/ragtune/retrieval/index"
	"github.com/ragtune/ragtune/retrieval/indexdir"
)

func init() {
	dataFlag := &ucli.StringFlag{Name: "data", Usage: "dataset folder (or the first argument)"}
	outFlag := &ucli.StringFlag{Name: "out", Usage: "dataset folder to write (may be --data itself)", Required: true}
	jsonFlag := &ucli.BoolFlag{Name: "json", Usage: "print JSON"}
	seedFlag := &ucli.Uint64Flag{Name: "seed", Value: 1, Usage: "random seed"}
	register(&ucli.Command{
		Name:  "data",
		Usage: "import, split, mine negatives, sample, describe, check, export and augment datasets",
		Subcommands: []*ucli.Command{
			{
				Name:      "import",
				Usage:     "read CSV, JSONL, BEIR, sentence-transformers or Parquet data into a dataset folder",
				ArgsUsage: " ",
				Description: "Formats: beir (folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv; dev becomes validation),\n" +
					"csv/jsonl/parquet tables read as documents (--text-col, optional --id-col, --title-col, --query-col)\n" +
					"or as pairs (--query-col, --positive-col, --negative-col...), st (anchor, positive, negative_1..n).\n" +
					"Without column flags, columns are recognised by name. Gzip is detected by content.",
				Flags: []ucli.Flag{
					&ucli.StringFlag{Name: "in", Usage: "input file or BEIR folder", Required: true},
					outFlag,
					&ucli.StringFlag{Name: "format", Value: "auto", Usage: "auto|beir|csv|jsonl|st|parquet"},
					&ucli.StringFlag{Name: "corpus", Usage: "documents that pair rows point to (id and text columns)"},
					&ucli.StringFlag{Name: "split", Value: dataset.Train, Usage: "split of inputs that have none"},
					&ucli.StringFlag{Name: "id-col", Usage: "document id column"},
					&ucli.StringFlag{Name: "title-col", Usage: "document title column"},
					&ucli.StringFlag{Name: "text-col", Usage: "document text column"},
					&ucli.StringFlag{Name: "query-col", Usage: "query text column"},
					&ucli.StringFlag{Name: "query-id-col", Usage: "query id column"},
					&ucli.StringFlag{Name: "positive-col", Usage: "positive text column (pair rows)"},
					&ucli.StringFlag{Name: "positive-id-col", Usage: "positive document id column (pair rows)"},
					&ucli.StringSliceFlag{Name: "negative-col", Usage: "negative text column (repeat or comma-separate)"},
					&ucli.StringFlag{Name: "delimiter", Usage: "CSV field separator (default , and tab for .tsv)"},
					&ucli.BoolFlag{Name: "dedup-docs", Usage: "merge document rows with identical text"},
					&ucli.BoolFlag{Name: "skip-bad", Usage: "skip bad records, count and report them"},
					&ucli.StringFlag{Name: "encoding", Value: "utf-8", Usage: "character encoding of text inputs: utf-8 (bytes that are not UTF-8 are an error), latin1 or windows-1252 (converted to UTF-8)"},
					jsonFlag,
				},
				Action: runDataImport,
			},
			{
				Name:      "split",
				Usage:     "re-split judged queries into train/validation/test, seeded, with a leak check",
				ArgsUsage: "[DATASET_DIR]",
				Flags: []ucli.Flag{dataFlag, outFlag,
					&ucli.Float64Flag{Name: "train", Value: dataset.DefaultSplit.Train, Usage: "fraction of queries for train"},
					&ucli.Float64Flag{Name: "validation", Value: dataset.DefaultSplit.Validation, Usage: "fraction for validation"},
					&ucli.Float64Flag{Name: "test", Value: dataset.DefaultSplit.Test, Usage: "fraction for test"},
					seedFlag,
					&ucli.BoolFlag{Name: "allow-leak", Usage: "split query by query even if splits then share query texts or relevant documents"},
					jsonFlag,
				},
				Action: runDataSplit,
			},
			{
				Name:      "negatives",
				Usage:     "add random or hard (BM25 or index-mined) negatives to a split's examples",
				ArgsUsage: "[DATASET_DIR]",
				Flags: append([]ucli.Flag{dataFlag, outFlag,
					&ucli.StringFlag{Name: "split", Value: dataset.Train, Usage: "split whose examples get negatives"},
					&ucli.StringFlag{Name: "mode", Value: "hard", Usage: "hard|random"},
					&ucli.StringFlag{Name: "index", Usage: "mine with this index folder (default: BM25 over the corpus)"},
					&ucli.IntFlag{Name: "num", Value: 1, Usage: "negatives per example"},
					&ucli.IntFlag{Name: "range-min", Value: 0, Usage: "skip this many best-ranked non-relevant documents"},
					&ucli.IntFlag{Name: "range-max", Value: 50, Usage: "consider only this many best-ranked non-relevant documents"},
					&ucli.Float64Flag{Name: "relative-margin", Usage: "drop candidates scoring above (1-m) x the positive's score"},
					&ucli.Float64Flag{Name: "absolute-margin", Usage: "drop candidates scoring above the positive's score minus m"},
					&ucli.StringFlag{Name: "sampling", Value: "top", Usage: "top|random: which candidates of the window to take"},
					seedFlag, jsonFlag,
				}, modelFlags()...),
				Action: runDataNegatives,
			},
			{
				Name:      "fewshot",
				Usage:     "keep a seeded subset of a split's queries (N or a fraction)",
				ArgsUsage: "[DATASET_DIR]",
				Flags: []ucli.Flag{dataFlag, outFlag,
					&ucli.StringFlag{Name: "split", Value: dataset.Train, Usage: "split to subsample"},
					&ucli.IntFlag{Name: "n", Usage: "number of queries to keep"},
					&ucli.Float64Flag{Name: "fraction", Usage: "fraction of queries to keep (when --n is 0)"},
					seedFlag, jsonFlag,
				},
				Action: runDataFewShot,
			},
			{
				Name:      "stats",
				Usage:     "describe a dataset: sizes, text lengths, splits",
				ArgsUsage: "[DATASET_DIR]",
				Flags:     []ucli.Flag{dataFlag, jsonFlag},
				Action:    runDataStats,
			},
			{
				Name:      "check",
				Usage:     "find empty texts, repeated blank lines, duplicates, over-long texts, dangling ids and split leaks; exit 1 on any",
				ArgsUsage: "[DATASET_DIR]",
				Flags: []ucli.Flag{dataFlag,
					&ucli.IntFlag{Name: "max-tokens", Value: 512, Usage: "flag documents longer than this many whitespace words (0: off)"},
					&ucli.StringSliceFlag{Name: "ignore", Usage: "problem kinds that do not fail the check (repeat or comma-separate)"},
					&ucli.IntFlag{Name: "keep", Value: 20, Usage: "problems listed per kind"},
					jsonFlag,
				},
				Action: runDataCheck,
			},
			{
				Name:      "export",
				Usage:     "write a dataset as JSONL (BEIR layout + sentence-transformers pairs) or Parquet",
				ArgsUsage: "[DATASET_DIR]",
				Flags: []ucli.Flag{dataFlag,
					&ucli.StringFlag{Name: "out", Usage: "folder to write", Required: true},
					&ucli.StringFlag{Name: "format", Value: "jsonl", Usage: "jsonl|parquet"},
					&ucli.StringSliceFlag{Name: "split", Usage: "splits to export (default all)"},
					jsonFlag,
				},
				Action: runDataExport,
			},
			dataAugmentCommand(dataFlag, outFlag, jsonFlag, seedFlag),
		},
	})
}

// dataDir is --data or the first argument.
func dataDir(c *ucli.Context) (string, error) {
	if d := c.String("data"); d != "" {
		return d, nil
	}
	if c.NArg() > 0 {
		return c.Args().First(), nil
	}
	return "", errors.New("name the dataset folder: --data DIR or as the first argument")
}

func openData(c *ucli.Context) (*dataset.Dataset, error) {
	dir, err := dataDir(c)
	if err != nil {
		return nil, err
	}
	return dataset.Open(dir)
}

// splitList reads a repeatable, comma-separable flag.
func splitList(vals []string) []string {
	var out []string
	for _, v := range vals {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

func runDataImport(c *ucli.Context) error {
	enc, err := importer.ParseEncoding(c.String("encoding"))
	if err != nil {
		return fmt.Errorf("--encoding: %w", err)
	}
	opts := importer.Options{
		Encoding: enc,
		Format:   importer.Format(c.String("format")),
		Corpus:   c.String("corpus"),
		Split:    c.String("split"),
		Columns: importer.Columns{
			ID: c.String("id-col"), Title: c.String("title-col"), Text: c.String("text-col"),
			Query: c.String("query-col"), QueryID: c.String("query-id-col"),
			Positive: c.String("positive-col"), PositiveID: c.String("positive-id-col"),
			Negatives: splitList(c.StringSlice("negative-col")),
		},
		DedupDocs: c.Bool("dedup-docs"),
		SkipBad:   c.Bool("skip-bad"),
	}
	if d := c.String("delimiter"); d != "" {
		if d == `\t` {
			d = "\t"
		}
		r, size := utf8.DecodeRuneInString(d)
		if size != len(d) {
			return fmt.Errorf("--delimiter %q: want one character", d)
		}
		opts.Delimiter = r
	}
	d, rep, err := importer.Import(c.String("in"), opts)
	if errors.Is(err, dataset.ErrInvalidUTF8) && enc == importer.UTF8 {
		return fmt.Errorf("%w (if the file is Latin-1 or Windows-1252 text, pass --encoding latin1 or --encoding windows-1252 to convert it)", err)
	}
	if err != nil {
		return err
	}
	if err := d.Save(c.String("out")); err != nil {
		return err
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, struct {
			Out string `json:"out"`
			*importer.Report
			Splits map[string]dataset.SplitCount `json:"splits"`
		}{c.String("out"), rep, d.Manifest().Splits})
	}
	w := c.App.Writer
	fmt.Fprintf(w, "imported %s (%s) into %s: %d documents, %d queries\n", c.String("in"), rep.Format, c.String("out"), rep.Docs, rep.Queries)
	printSplitCounts(w, d)
	if rep.MergedDocs > 0 {
		fmt.Fprintf(w, "merged %d documents with identical text\n", rep.MergedDocs)
	}
	if n := rep.SkippedTotal(); n > 0 {
		fmt.Fprintf(w, "skipped %d bad records:", n)
		for _, k := range sortedKeys(rep.Skipped) {
			fmt.Fprintf(w, " %s %d;", k, rep.Skipped[k])
		}
		fmt.Fprintln(w)
		for _, s := range rep.SkipSamples {
			fmt.Fprintln(w, "  "+s)
		}
	}
	return nil
}

func printSplitCounts(w io.Writer, d *dataset.Dataset) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "split\tqueries\tqrels\texamples")
	m := d.Manifest()
	for _, s := range d.Splits() {
		sc := m.Splits[s]
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\n", s, sc.Queries, sc.Qrels, sc.Examples)
	}
	tw.Flush()
}

func runDataSplit(c *ucli.Context) error {
	d, err := openData(c)
	if err != nil {
		return err
	}
	opts := dataset.SplitOptions{Train: c.Float64("train"), Validation: c.Float64("validation"), Test: c.Float64("test"),
		Seed: c.Uint64("seed"), AllowLeak: c.Bool("allow-leak")}
	out, rep, err := d.Resplit(opts)
	if err != nil {
		return err
	}
	if err := out.Save(c.String("out")); err != nil {
		return err
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, map[string]any{"out": c.String("out"), "splits": out.Manifest().Splits, "leaks": len(rep.Leaks),
			"generated_kept": rep.GeneratedKept, "generated_dropped": rep.GeneratedDropped})
	}
	printSplitCounts(c.App.Writer, out)
	if rep.GeneratedKept+rep.GeneratedDropped > 0 {
		fmt.Fprintf(c.App.Writer, "generated queries: %d kept in train, %d dropped (their source query or a relevant document went to validation or test)\n", rep.GeneratedKept, rep.GeneratedDropped)
	}
	if len(rep.Leaks) > 0 {
		fmt.Fprintf(c.App.Writer, "warning: %d query texts or relevant documents are shared across splits (--allow-leak)\n", len(rep.Leaks))
	}
	return nil
}

func runDataFewShot(c *ucli.Context) error {
	d, err := openData(c)
	if err != nil {
		return err
	}
	out, err := d.FewShot(c.String("split"), c.Int("n"), c.Float64("fraction"), c.Uint64("seed"))
	if err != nil {
		return err
	}
	if err := out.Save(c.String("out")); err != nil {
		return err
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, map[string]any{"out": c.String("out"), "splits": out.Manifest().Splits})
	}
	printSplitCounts(c.App.Writer, out)
	return nil
}

// retrieverRanker ranks with any index folder (dense, BM25 or hybrid).
type retrieverRanker struct{ r evaluate.Retriever }

func (r retrieverRanker) Search(queries []string, k int) ([][]dataset.Hit, error) {
	qs := make([]evaluate.Query, len(queries))
	for i, q := range queries {
		qs[i] = evaluate.Query{ID: fmt.Sprint(i), Text: q}
	}
	res, err := r.r.Retrieve(context.Background(), qs, k)
	if err != nil {
		return nil, err
	}
	out := make([][]dataset.Hit, len(res))
	for i, hits := range res {
		out[i] = make([]dataset.Hit, len(hits))
		for j, h := range hits {
			out[i][j] = dataset.Hit{DocID: h.DocID, Score: h.Score}
		}
	}
	return out, nil
}

func runDataNegatives(c *ucli.Context) error {
	d, err := openData(c)
	if err != nil {
		return err
	}
	opts := dataset.NegativeOptions{Split: c.String("split"), Count: c.Int("num"), Seed: c.Uint64("seed"),
		RangeMin: c.Int("range-min"), RangeMax: c.Int("range-max"),
		RelativeMargin: c.Float64("relative-margin"), AbsoluteMargin: c.Float64("absolute-margin")}
	switch c.String("sampling") {
	case "top":
	case "random":
		opts.Random = true
	default:
		return fmt.Errorf("--sampling %q: want top or random", c.String("sampling"))
	}
	var (
		out *dataset.Dataset
		rep dataset.NegativeReport
		by  string
	)
	switch c.String("mode") {
	case "random":
		by = "random"
		out, rep, err = d.RandomNegatives(opts)
	case "hard":
		var ranker dataset.Ranker
		var closer io.Closer
		if ranker, by, closer, err = negativeRanker(c, d); err != nil {
			return err
		}
		if closer != nil {
			defer closer.Close()
		}
		out, rep, err = d.HardNegatives(ranker, opts)
	default:
		return fmt.Errorf("--mode %q: want hard or random", c.String("mode"))
	}
	if err != nil {
		return err
	}
	if err := out.Save(c.String("out")); err != nil {
		return err
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, struct {
			Out    string `json:"out"`
			Ranker string `json:"ranker"`
			dataset.NegativeReport
		}{c.String("out"), by, rep})
	}
	w := c.App.Writer
	fmt.Fprintf(w, "%d examples of split %s, %d negatives (%s); %d examples without negatives, %d candidates dropped by the margin, %d positives not ranked\n",
		rep.Examples, opts.Split, rep.Negatives, by, rep.WithoutNegatives, rep.FilteredByMargin, rep.PositiveNotRanked)
	if rep.PositiveScores.N+rep.NegativeScores.N > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "scores\tn\tmean\tmin\tp25\tmedian\tmax\t")
		for _, row := range []struct {
			name string
			s    dataset.ScoreSummary
		}{{"positive", rep.PositiveScores}, {"negative", rep.NegativeScores}} {
			s := row.s
			fmt.Fprintf(tw, "%s\t%d\t%.4g\t%.4g\t%.4g\t%.4g\t%.4g\t\n", row.name, s.N, s.Mean, s.Min, s.P25, s.Median, s.Max)
		}
		tw.Flush()
	}
	return nil
}

// negativeRanker is --index's retriever, or BM25 over the dataset's corpus;
// closer (may be nil) releases the index's model.
func negativeRanker(c *ucli.Context, d *dataset.Dataset) (r dataset.Ranker, name string, closer io.Closer, err error) {
	if dir := c.String("index"); dir != "" {
		m, err := index.ReadManifest(dir)
		if err != nil {
			return nil, "", nil, err
		}
		encode, closer, err := queryEncoder(c, m)
		if err != nil {
			return nil, "", nil, err
		}
		r, _, err := indexdir.Open(dir, encode, nil, c.Int("range-max")*2)
		if err != nil {
			if closer != nil {
				closer.Close()
			}
			return nil, "", nil, err
		}
		return retrieverRanker{r}, "index " + dir, closer, nil
	}
	if r, err = d.BM25Ranker(); err != nil {
		return nil, "", nil, err
	}
	return r, "bm25", nil, nil
}

func runDataStats(c *ucli.Context) error {
	d, err := openData(c)
	if err != nil {
		return err
	}
	st := d.Stats()
	if c.Bool("json") {
		return printJSON(c.App.Writer, st)
	}
	w := c.App.Writer
	fmt.Fprintf(w, "%d documents (%d with a title, %d never relevant), %d queries\n", st.Docs, st.DocsWithTitle, st.NeverRelevant, st.Queries)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "words\tmin\tmean\tmedian\tp95\tmax\t")
	for _, row := range []struct {
		name string
		s    dataset.LengthSummary
	}{{"documents", st.DocWords}, {"queries", st.QueryWords}} {
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%d\t%d\t%d\t\n", row.name, row.s.Min, row.s.Mean, row.s.Median, row.s.P95, row.s.Max)
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "split\tqueries\tqrels\trelevant\trel/query\texamples\tneg/example\t")
	for _, s := range d.Splits() {
		ss := st.Splits[s]
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.2f\t%d\t%.2f\t\n", s, ss.Queries, ss.Qrels, ss.Relevant, ss.RelevantPerQuery, ss.Examples, ss.NegativesPerExample)
	}
	return tw.Flush()
}

func runDataCheck(c *ucli.Context) error {
	dir, err := dataDir(c)
	if err != nil {
		return err
	}
	d, err := dataset.Read(dir)
	if err != nil {
		return err
	}
	rep := d.Check(dataset.CheckOptions{MaxTokens: c.Int("max-tokens"), Keep: c.Int("keep")})
	ignored := map[string]bool{}
	for _, k := range splitList(c.StringSlice("ignore")) {
		ignored[k] = true
	}
	failing := 0
	for k, n := range rep.Counts {
		if !ignored[k] {
			failing += n
		}
	}
	if c.Bool("json") {
		if err := printJSON(c.App.Writer, struct {
			*dataset.CheckReport
			Failing int `json:"failing"`
		}{rep, failing}); err != nil {
			return err
		}
	} else {
		w := c.App.Writer
		for _, p := range rep.Problems {
			fmt.Fprintln(w, p.String())
		}
		kinds := sortedKeys(rep.Counts)
		if len(kinds) == 0 {
			fmt.Fprintf(w, "%s: no problems (%d documents, %d queries)\n", dir, len(d.Corpus), len(d.Queries))
		}
		for _, k := range kinds {
			note := ""
			if ignored[k] {
				note = " (ignored)"
			}
			fmt.Fprintf(w, "%s: %d%s\n", k, rep.Counts[k], note)
		}
	}
	if failing > 0 {
		return &ExitError{Code: 1, Err: fmt.Errorf("%s: %d problems", dir, failing)}
	}
	return nil
}

func runDataExport(c *ucli.Context) error {
	d, err := openData(c)
	if err != nil {
		return err
	}
	var files export.Files
	switch f := c.String("format"); f {
	case "jsonl":
		files, err = export.JSONL(d, c.String("out"), splitList(c.StringSlice("split"))...)
	case "parquet":
		files, err = export.Parquet(d, c.String("out"), splitList(c.StringSlice("split"))...)
	default:
		return fmt.Errorf("--format %q: want jsonl or parquet", f)
	}
	if err != nil {
		return err
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, map[string]any{"out": c.String("out"), "files": files})
	}
	for _, f := range files {
		fmt.Fprintln(c.App.Writer, f)
	}
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
