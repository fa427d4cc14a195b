package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	ucli "github.com/urfave/cli/v2"

	"github.com/ragtune/ragtune/retrieval/dataset"
	"github.com/ragtune/ragtune/retrieval/evaluate"
	"github.com/ragtune/ragtune/retrieval/hybrid"
	"github.com/ragtune/ragtune/retrieval/indexdir"
)

// fusionFlags say how a hybrid index (dense + BM25) fuses its rankings;
// `index build` and `eval` share them.
func fusionFlags() []ucli.Flag {
	return []ucli.Flag{
		&ucli.StringFlag{Name: "fusion", Value: "auto", Usage: "hybrid index: rrf, wrrf, minmax, zscore, dense, bm25, or auto (the index's recorded choice, else chosen on the validation split)"},
		&ucli.Float64Flag{Name: "fusion-weight", Usage: "dense weight w of wrrf, minmax or zscore, 0 to 1 (BM25 gets 1-w; default: chosen on the validation split)"},
		&ucli.StringFlag{Name: "fusion-metric", Value: indexdir.DefaultFusionMetric, Usage: "what the validation choice maximises"},
	}
}

// fusionRequest is what the fusion flags ask for.
type fusionRequest struct {
	auto   bool
	spec   hybrid.Spec // method (and weight, when weight)
	weight bool        // --fusion-weight given
	metric string
}

func parseFusionFlags(c *ucli.Context) (fusionRequest, error) {
	r := fusionRequest{auto: c.String("fusion") == "auto", weight: c.IsSet("fusion-weight"), metric: c.String("fusion-metric")}
	if !r.auto {
		m, err := hybrid.ParseMethod(c.String("fusion"))
		if err != nil {
			return r, fmt.Errorf("--fusion: %w", err)
		}
		r.spec.Method = m
	}
	if r.weight {
		if !r.spec.Method.IsWeighted() {
			return r, errors.New("--fusion-weight: give it with --fusion wrrf, minmax or zscore")
		}
		r.spec.Weight = c.Float64("fusion-weight")
		if err := r.spec.Validate(); err != nil {
			return r, fmt.Errorf("--fusion-weight: %w", err)
		}
	}
	return r, nil
}

// given is the spec the flags fix completely (nil: something is chosen).
func (r fusionRequest) given() *hybrid.Spec {
	if r.auto || (r.spec.Method.IsWeighted() && !r.weight) {
		return nil
	}
	return &r.spec
}

// judgments are the queries and qrels of one split.
type judgments struct {
	split   string
	queries []evaluate.Query
	qrels   evaluate.Qrels
}

// loadValidation reads the validation split of a ragtune dataset or BEIR
// folder; nil when path is neither or has no such split.
func loadValidation(path string) (*judgments, error) {
	if st, err := os.Stat(path); err != nil || !st.IsDir() {
		return nil, nil
	}
	has := false
	if _, err := os.Stat(filepath.Join(path, dataset.ManifestFile)); err == nil {
		d, err := dataset.Open(path)
		if err != nil {
			return nil, err
		}
		_, has = d.Qrels[dataset.Validation]
	} else {
		for _, name := range []string{"validation.tsv", "validation.tsv.gz", "dev.tsv", "dev.tsv.gz"} {
			if _, err := os.Stat(filepath.Join(path, "qrels", name)); err == nil {
				has = true
			}
		}
	}
	if !has {
		return nil, nil
	}
	queries, qrels, err := evaluate.LoadJudged(path, dataset.Validation)
	if err != nil {
		return nil, err
	}
	return &judgments{split: dataset.Validation, queries: queries, qrels: qrels}, nil
}

// resolveFusion decides how a hybrid folder fuses: as the flags fix it;
// else the folder's recorded choice (auto); else chosen on val (when not
// nil); else plain RRF. A weighted method without a weight has its weight
// chosen on val and needs it.
func resolveFusion(c *ucli.Context, parts *indexdir.Parts, req fusionRequest, recorded *hybrid.Choice, val *judgments) (*hybrid.Choice, error) {
	given := req.given()
	switch {
	case req.auto && recorded != nil:
		return recorded, nil
	case val == nil && given != nil:
		return &hybrid.Choice{Spec: *given, Chosen: hybrid.ChosenGiven}, nil
	case val == nil && !req.auto:
		return nil, fmt.Errorf("--fusion %s without --fusion-weight chooses the weight on a validation split, and there is none here: give --fusion-weight", req.spec.Method)
	case val == nil:
		return &hybrid.Choice{Spec: hybrid.Spec{Method: hybrid.MethodRRF}, Chosen: hybrid.ChosenDefault}, nil
	}
	opts := indexdir.FusionOptions{Given: given, Metric: req.metric, Split: val.split}
	if !req.auto && given == nil {
		opts.Methods = []hybrid.Method{req.spec.Method}
	}
	bar := newProgress("fusion on "+val.split, 0, c.Bool("quiet") || c.Bool("json"))
	defer bar.Done()
	opts.Progress = func(done, total int) { bar.total = total; bar.Update(done, "") }
	return parts.ChooseFusion(context.Background(), val.queries, val.qrels, opts)
}
