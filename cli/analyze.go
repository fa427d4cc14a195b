package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	ucli "github.com/urfave/cli/v2"

	"github.com/ragtune/ragtune/bindings/safefile"
	"github.com/ragtune/ragtune/retrieval/analysis"
	"github.com/ragtune/ragtune/retrieval/dataset"
	"github.com/ragtune/ragtune/retrieval/evaluate"
)

func init() {
	register(&ucli.Command{
		Name:      "analyze",
		Usage:     "failure analysis of two runs on the same queries: what got better or worse, and why",
		ArgsUsage: " ",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "run-a", Required: true, Usage: "run file of the first system (e.g. the base model), from eval --run-out"},
			&ucli.StringFlag{Name: "run-b", Required: true, Usage: "run file of the second system (e.g. the tuned model)"},
			&ucli.StringFlag{Name: "name-a", Value: "base", Usage: "name of run A in the output"},
			&ucli.StringFlag{Name: "name-b", Value: "tuned", Usage: "name of run B in the output"},
			&ucli.StringFlag{Name: "data", Usage: "ragtune dataset or BEIR folder: queries, qrels of --split and the corpus"},
			&ucli.StringFlag{Name: "split", Value: dataset.Validation, Usage: "split of --data"},
			&ucli.StringFlag{Name: "queries", Usage: "queries.jsonl[.gz] (instead of --data)"},
			&ucli.StringFlag{Name: "qrels", Usage: "qrels TSV (instead of --data)"},
			&ucli.StringFlag{Name: "corpus", Usage: "corpus.jsonl[.gz] or dataset folder for document texts (instead of --data)"},
			&ucli.StringFlag{Name: "metric", Value: "ndcg@10", Usage: "metric that orders queries into better and worse"},
			&ucli.StringFlag{Name: "k", Value: "1,5,10", Usage: "cut-offs of the metric table"},
			&ucli.IntFlag{Name: "failure-k", Value: 10, Usage: "a query fails without a relevant document in this top"},
			&ucli.IntFlag{Name: "top", Value: 5, Usage: "results shown per run and query"},
			&ucli.Float64Flag{Name: "near-duplicate", Value: 0.8, Usage: "token-set Jaccard similarity from which two documents are near-duplicates"},
			&ucli.IntFlag{Name: "show", Value: 10, Usage: "better and worse queries listed, each (-1: all)"},
			&ucli.IntFlag{Name: "trials", Value: 10000, Usage: "randomisation test permutations"},
			&ucli.Uint64Flag{Name: "seed", Value: 1, Usage: "seed of the randomisation test"},
			&ucli.StringFlag{Name: "out", Usage: "folder for analysis.html (self-contained) and analysis.json"},
			&ucli.BoolFlag{Name: "json", Usage: "print JSON"},
		},
		Action: runAnalyze,
	})
}

func runAnalyze(c *ucli.Context) error {
	ks, err := evaluate.ParseKs(c.String("k"))
	if err != nil {
		return fmt.Errorf("--k: %w", err)
	}
	if c.Int("show") == 0 {
		return errors.New("analyze: --show 0 lists nothing; give a count or -1 for all")
	}
	docs, err := analyzeDocs(c)
	if err != nil {
		return err
	}
	queries, qrels, err := loadJudgments(c)
	if err != nil {
		return err
	}
	in := analysis.Input{Queries: queries, Qrels: qrels, Docs: docs, NameA: c.String("name-a"), NameB: c.String("name-b")}
	if in.RunA, err = evaluate.ReadRun(c.String("run-a")); err != nil {
		return err
	}
	if in.RunB, err = evaluate.ReadRun(c.String("run-b")); err != nil {
		return err
	}
	rep, err := analysis.Compare(in, analysis.Options{
		Metric: c.String("metric"), Ks: ks, FailureK: c.Int("failure-k"), Top: c.Int("top"),
		NearDuplicate: c.Float64("near-duplicate"), Show: c.Int("show"), Trials: c.Int("trials"), Seed: c.Uint64("seed"),
	})
	if err != nil {
		return err
	}
	if dir := c.String("out"); dir != "" {
		if err := writeAnalysis(dir, rep); err != nil {
			return err
		}
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, rep)
	}
	printAnalysis(c.App.Writer, rep)
	if dir := c.String("out"); dir != "" {
		fmt.Fprintf(c.App.Writer, "wrote %s and %s\n", filepath.Join(dir, "analysis.html"), filepath.Join(dir, "analysis.json"))
	}
	return nil
}

// analyzeDocs reads the document texts: the corpus of --data, or --corpus.
func analyzeDocs(c *ucli.Context) (map[string]string, error) {
	path := c.String("data")
	if p := c.String("corpus"); p != "" {
		if path != "" {
			return nil, errors.New("analyze: --data excludes --corpus")
		}
		path = p
	}
	if path == "" {
		return nil, errors.New("analyze: give --data DATASET_DIR (or --queries, --qrels and --corpus)")
	}
	corpus, err := evaluate.LoadCorpus(path)
	if err != nil {
		return nil, err
	}
	docs := make(map[string]string, len(corpus))
	for _, d := range corpus {
		docs[d.ID] = evaluate.DocText(d)
	}
	return docs, nil
}

func writeAnalysis(dir string, rep *analysis.Report) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := rep.WritePage(filepath.Join(dir, "analysis.html")); err != nil {
		return err
	}
	return safefile.Write(filepath.Join(dir, "analysis.json"), func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	})
}

func printAnalysis(w io.Writer, rep *analysis.Report) {
	fmt.Fprintf(w, "%d queries, %s against %s by %s: %d better, %d worse, %d unchanged\n\n",
		rep.Queries, rep.NameB, rep.NameA, rep.Metric, rep.Improved, rep.Worsened, rep.Unchanged)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "metric\t%s\t%s\tdiff\tp\t\n", rep.NameA, rep.NameB)
	for _, m := range rep.MainMetrics() {
		fmt.Fprintf(tw, "%s\t%.4f\t%.4f\t%+.4f\t%.3g\t\n", m.Name, m.A, m.B, m.Diff, m.P)
	}
	tw.Flush()
	fmt.Fprintf(w, "(diff: %s minus %s, mean per query; p: paired randomisation test; --json has every measure)\n\n", rep.NameB, rep.NameA)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "failures (no relevant in top %d)\t%s\t%s\t\n", rep.FailureK, rep.NameA, rep.NameB)
	fmt.Fprintf(tw, "failed queries\t%d\t%d\t\n", rep.Failures[0].Failed, rep.Failures[1].Failed)
	for _, cause := range analysis.Causes {
		fmt.Fprintf(tw, "  %s\t%d\t%d\t\n", cause, rep.Failures[0].Causes[cause], rep.Failures[1].Causes[cause])
	}
	tw.Flush()
	fmt.Fprintf(w, "(near-duplicate: token-set Jaccard >= %.2f with a relevant document; a query may have several causes)\n", rep.NearDuplicate)
	for _, part := range []struct {
		title string
		list  []analysis.QueryChange
	}{{"better with " + rep.NameB, rep.Better}, {"worse with " + rep.NameB, rep.Worse}} {
		fmt.Fprintf(w, "\n%s (%d shown):\n", part.title, len(part.list))
		for _, q := range part.list {
			fmt.Fprintf(w, "%+.4f  %s  %q\n", q.Delta, q.ID, truncateText(q.Text, 70))
			fmt.Fprintf(w, "    first relevant: %s -> %s; relevant: %s\n", rankOrDash(q.FirstRelevantA), rankOrDash(q.FirstRelevantB), docIDs(q.Relevant))
			fmt.Fprintf(w, "    %s: %s\n", rep.NameA, hitList(q.TopA, q.CausesA))
			fmt.Fprintf(w, "    %s: %s\n", rep.NameB, hitList(q.TopB, q.CausesB))
		}
	}
	fmt.Fprintln(w, "\n(* relevant, ~ near-duplicate of a relevant document)")
}

func rankOrDash(r int) string {
	if r == 0 {
		return "-"
	}
	return fmt.Sprint(r)
}

func docIDs(docs []analysis.Doc) string {
	ids := make([]string, len(docs))
	for i, d := range docs {
		ids[i] = d.ID
	}
	return strings.Join(ids, " ")
}

func hitList(hits []analysis.Hit, causes []string) string {
	parts := make([]string, len(hits))
	for i, h := range hits {
		mark := ""
		switch {
		case h.Relevant:
			mark = "*"
		case h.NearDuplicate:
			mark = "~"
		}
		parts[i] = h.ID + mark
	}
	s := strings.Join(parts, " ")
	if len(causes) > 0 {
		s += "  [failed: " + strings.Join(causes, ", ") + "]"
	}
	return s
}

// truncateText cuts s to n runes with an ellipsis.
func truncateText(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
