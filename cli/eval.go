package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	ucli "github.com/urfave/cli/v2"

	"github.com/ragtune/ragtune/retrieval/dataset"
	"github.com/ragtune/ragtune/retrieval/evaluate"
	"github.com/ragtune/ragtune/retrieval/hybrid"
	"github.com/ragtune/ragtune/retrieval/index"
	"github.com/ragtune/ragtune/retrieval/indexdir"
)

func init() {
	register(&ucli.Command{
		Name:      "eval",
		Usage:     "retrieve for judged queries and report nDCG, recall, precision, MRR, MAP and hit rate",
		ArgsUsage: " ",
		Flags: append(append(modelFlags(),
			&ucli.StringFlag{Name: "index", Usage: "index folder to search (or --run)"},
			&ucli.StringFlag{Name: "run", Usage: "score an existing run file instead of searching an index"},
			&ucli.StringFlag{Name: "queries", Usage: "queries.jsonl[.gz] ({\"_id\", \"text\"})"},
			&ucli.StringFlag{Name: "qrels", Usage: "qrels TSV (query-id corpus-id score) or TREC qrels"},
			&ucli.StringFlag{Name: "data", Usage: "ragtune dataset or BEIR folder: queries and qrels of --split"},
			&ucli.StringFlag{Name: "split", Value: dataset.Validation, Usage: "split of --data to evaluate"},
			&ucli.StringFlag{Name: "query-vectors", Usage: "EMB.jsonl of the queries, for an index built from --vectors"},
			&ucli.StringFlag{Name: "k", Value: "1,5,10", Usage: "cut-offs"},
			&ucli.StringFlag{Name: "run-out", Usage: "write the run (top 100 per query) as JSONL"},
			&ucli.StringFlag{Name: "top10-out", Usage: "write per-query top-10 results with texts and relevant ids (JSONL)"},
			&ucli.IntFlag{Name: "ci", Usage: "bootstrap resamples for 95% confidence intervals (0: none)"},
			&ucli.StringFlag{Name: "compare", Usage: "run file of another system: paired randomisation test per metric"},
			&ucli.IntFlag{Name: "trials", Value: 10000, Usage: "randomisation test permutations"},
			&ucli.Uint64Flag{Name: "seed", Value: 1, Usage: "seed of the bootstrap and the randomisation test"},
			&ucli.BoolFlag{Name: "json", Usage: "print JSON"},
			&ucli.BoolFlag{Name: "quiet", Usage: "no progress line"},
		), fusionFlags()...),
		Action: runEval,
	})
}

// evalOutput is the --json document; "metrics" and "queries" are the contract.
type evalOutput struct {
	*evaluate.Report
	QueriesWithoutText int                    `json:"queries_without_text,omitempty"`
	UnknownDocs        int                    `json:"judged_docs_not_in_index,omitempty"`
	CI                 map[string]evaluate.CI `json:"ci,omitempty"`
	Compare            map[string]comparison  `json:"compare,omitempty"`
	// Fusion is how a hybrid index fused its rankings, and why.
	Fusion *hybrid.Choice `json:"fusion,omitempty"`
	// FusionRecorded: this eval chose the fusion and wrote it into the index's manifest.
	FusionRecorded bool `json:"fusion_recorded,omitempty"`
}

type comparison struct {
	Diff    float64 `json:"diff"` // this run minus the other, mean over shared queries
	P       float64 `json:"p"`
	Queries int     `json:"queries"`
}

func runEval(c *ucli.Context) error {
	ks, err := evaluate.ParseKs(c.String("k"))
	if err != nil {
		return fmt.Errorf("--k: %w", err)
	}
	queries, qrels, err := loadJudgments(c)
	if err != nil {
		return err
	}
	judged, missingText := evaluate.JudgedQueries(queries, qrels)
	if missingText > 0 {
		// Unrunnable queries would score 0; leave them out and say so.
		have := map[string]bool{}
		for _, q := range judged {
			have[q.ID] = true
		}
		for qid := range qrels {
			if !have[qid] {
				delete(qrels, qid)
			}
		}
	}
	out := evalOutput{QueriesWithoutText: missingText}
	var run evaluate.Run
	var docs map[string]string
	switch {
	case c.String("run") != "" && c.String("index") != "":
		return errors.New("eval: --index and --run exclude each other")
	case c.String("run") != "":
		if run, err = evaluate.ReadRun(c.String("run")); err != nil {
			return err
		}
	case c.String("index") != "":
		if run, err = searchIndex(c, judged, &out); err != nil {
			return err
		}
		if docs, err = index.LoadDocs(c.String("index")); err != nil {
			return err
		}
		out.UnknownDocs = countUnknown(qrels, docs)
	default:
		return errors.New("eval: give --index INDEX_DIR (or --run RUN.jsonl)")
	}
	out.Report = evaluate.Evaluate(run, qrels, ks)
	if n := c.Int("ci"); n > 0 {
		out.CI = map[string]evaluate.CI{}
		for name := range out.Metrics {
			if out.CI[name], err = evaluate.BootstrapCI(out.Values(name), 0.95, n, c.Uint64("seed")); err != nil {
				return err
			}
		}
	}
	if p := c.String("compare"); p != "" {
		other, err := evaluate.ReadRun(p)
		if err != nil {
			return err
		}
		rep2 := evaluate.Evaluate(other, qrels, ks)
		out.Compare = map[string]comparison{}
		for name := range out.Metrics {
			a, b := evaluate.Paired(out.Report, rep2, name)
			diff, pv, err := evaluate.RandomizationTest(a, b, c.Int("trials"), c.Uint64("seed"))
			if err != nil {
				return fmt.Errorf("compare with %s: %w", p, err)
			}
			out.Compare[name] = comparison{Diff: diff, P: pv, Queries: len(a)}
		}
	}
	if p := c.String("run-out"); p != "" {
		if err := evaluate.WriteRun(p, run, evaluate.RunDepth); err != nil {
			return err
		}
	}
	if p := c.String("top10-out"); p != "" {
		if err := evaluate.WriteTop10(p, judged, run, qrels, docs); err != nil {
			return err
		}
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, out)
	}
	if out.Fusion != nil {
		fmt.Fprintln(c.App.Writer, out.Fusion.Summary())
		if out.FusionRecorded {
			fmt.Fprintf(c.App.Writer, "fusion recorded in %s\n", filepath.Join(c.String("index"), index.ManifestFile))
		}
	}
	printEvalTable(c.App.Writer, out, ks)
	return nil
}

// loadJudgments reads the queries and qrels from --data/--split or from
// --queries and --qrels.
func loadJudgments(c *ucli.Context) ([]evaluate.Query, evaluate.Qrels, error) {
	if d := c.String("data"); d != "" {
		if c.String("queries") != "" || c.String("qrels") != "" {
			return nil, nil, errors.New("eval: --data excludes --queries and --qrels")
		}
		return evaluate.LoadJudged(d, c.String("split"))
	}
	if c.String("queries") == "" || c.String("qrels") == "" {
		return nil, nil, errors.New("eval: give --queries and --qrels (or --data DATASET_DIR --split NAME)")
	}
	queries, err := evaluate.ReadQueries(c.String("queries"))
	if err != nil {
		return nil, nil, err
	}
	qrels, err := evaluate.ReadQrels(c.String("qrels"))
	return queries, qrels, err
}

// searchIndex runs the judged queries through the index folder; a hybrid
// folder's fusion goes into out.
func searchIndex(c *ucli.Context, judged []evaluate.Query, out *evalOutput) (evaluate.Run, error) {
	dir := c.String("index")
	m, err := index.ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	fusion, err := parseFusionFlags(c)
	if err != nil {
		return nil, err
	}
	if m.Kind != index.Hybrid && (!fusion.auto || fusion.weight) {
		return nil, fmt.Errorf("--fusion: %s is a %s index, not hybrid", dir, m.Kind)
	}
	var encode evaluate.QueryEncoder
	var byID map[string][]float32 // query vectors given, when they are
	if p := c.String("query-vectors"); p != "" {
		vs, err := index.ReadVectors(p)
		if err != nil {
			return nil, err
		}
		ids := make([]string, len(judged))
		for i, q := range judged {
			ids[i] = q.ID
		}
		if byID, err = matchQueryVectors(c, ids, vs); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		encode = evaluate.LookupQueries(byID)
	} else {
		var closer io.Closer
		if encode, closer, err = queryEncoder(c, m); err != nil {
			return nil, err
		}
		if closer != nil {
			defer closer.Close()
		}
	}
	parts, err := indexdir.OpenParts(dir, encode, nil)
	if err != nil {
		return nil, err
	}
	var spec hybrid.Spec
	if m.Kind == index.Hybrid {
		if out.Fusion, out.FusionRecorded, err = evalFusion(c, dir, parts, fusion, byID); err != nil {
			return nil, err
		}
		spec = out.Fusion.Spec
	}
	r := parts.Retriever(spec, evaluate.RunDepth)
	bar := newProgress("eval", len(judged), c.Bool("quiet") || c.Bool("json"))
	defer bar.Done()
	return evaluate.Retrieve(context.Background(), r, judged, evaluate.RunDepth, 256, func(done int) { bar.Update(done, "") })
}

// evalFusion resolves a hybrid folder's fusion for eval, on the validation
// split of --data when there is one (and, with --query-vectors, vectors for
// all its queries). A choice made here on validation is written into the
// folder's manifest, so that a later eval (of the test split) uses it
// without looking at test.
func evalFusion(c *ucli.Context, dir string, parts *indexdir.Parts, req fusionRequest, byID map[string][]float32) (*hybrid.Choice, bool, error) {
	var val *judgments
	if d := c.String("data"); d != "" {
		var err error
		if val, err = loadValidation(d); err != nil {
			return nil, false, err
		}
	}
	if val != nil && byID != nil {
		judged, _ := evaluate.JudgedQueries(val.queries, val.qrels)
		for _, q := range judged {
			if _, ok := byID[q.ID]; !ok {
				val = nil // no vectors to choose with
				break
			}
		}
	}
	recorded := parts.Manifest.Fusion
	choice, err := resolveFusion(c, parts, req, recorded, val)
	if err != nil {
		return nil, false, err
	}
	if req.auto && recorded == nil && choice.Chosen == hybrid.ChosenOnSplit {
		if err := indexdir.RecordFusion(dir, choice); err != nil {
			return nil, false, err
		}
		return choice, true, nil
	}
	return choice, false, nil
}

// matchQueryVectors maps query ids to vectors. Vectors carrying an _id match
// by id; vectors without one match by line index in the --queries file (all
// its queries, not only the judged ones), as `ragtune embed` numbers them.
func matchQueryVectors(c *ucli.Context, judgedIDs []string, vs []index.Vector) (map[string][]float32, error) {
	out := map[string][]float32{}
	if len(vs) > 0 && vs[0].ID != "" {
		for _, v := range vs {
			out[v.ID] = v.Embedding
		}
		return out, nil
	}
	all, _, err := loadJudgments(c)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(all))
	for i, q := range all {
		ids[i] = q.ID
	}
	if len(vs) != len(ids) {
		return nil, fmt.Errorf("%d vectors without _id for %d queries: cannot match them by line", len(vs), len(ids))
	}
	matched, err := index.MatchVectors(ids, vs, "queries")
	if err != nil {
		return nil, err
	}
	for i, id := range ids {
		out[id] = matched[i]
	}
	return out, nil
}

// countUnknown counts judged-relevant documents that the index lacks (they
// can never be retrieved; usually a corpus/qrels mismatch).
func countUnknown(qrels evaluate.Qrels, docs map[string]string) int {
	n := 0
	for _, rel := range qrels {
		for did, g := range rel {
			if _, ok := docs[did]; !ok && g > 0 {
				n++
			}
		}
	}
	return n
}

func printEvalTable(w io.Writer, out evalOutput, ks []int) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	var head strings.Builder
	head.WriteString("\t")
	for _, k := range ks {
		fmt.Fprintf(&head, "@%d\t", k)
	}
	fmt.Fprintln(tw, head.String())
	for _, m := range evaluate.Measures {
		var row strings.Builder
		row.WriteString(m.Name + "\t")
		for _, k := range ks {
			name := evaluate.MetricName(m.Name, k)
			cell := fmt.Sprintf("%.4f", out.Metrics[name])
			if ci, ok := out.CI[name]; ok {
				cell += fmt.Sprintf(" [%.4f, %.4f]", ci.Low, ci.High)
			}
			if cmp, ok := out.Compare[name]; ok {
				cell += fmt.Sprintf(" (%+.4f p=%.3g)", cmp.Diff, cmp.P)
			}
			row.WriteString(cell + "\t")
		}
		fmt.Fprintln(tw, row.String())
	}
	tw.Flush()
	fmt.Fprintf(w, "%d queries scored", out.Queries)
	notes := []string{}
	if out.NoRelevant > 0 {
		notes = append(notes, fmt.Sprintf("%d without relevant documents left out", out.NoRelevant))
	}
	if out.QueriesWithoutText > 0 {
		notes = append(notes, fmt.Sprintf("%d judged queries without text left out", out.QueriesWithoutText))
	}
	if out.MissingFromRun > 0 {
		notes = append(notes, fmt.Sprintf("%d missing from the run scored 0", out.MissingFromRun))
	}
	if out.UnknownDocs > 0 {
		notes = append(notes, fmt.Sprintf("%d relevant documents not in the index", out.UnknownDocs))
	}
	sort.Strings(notes)
	if len(notes) > 0 {
		fmt.Fprintf(w, " (%s)", strings.Join(notes, "; "))
	}
	fmt.Fprintln(w)
	if out.CI != nil {
		fmt.Fprintln(w, "[low, high]: 95% bootstrap confidence interval")
	}
	if out.Compare != nil {
		fmt.Fprintln(w, "(diff p=): this run minus --compare, paired randomisation test")
	}
}
