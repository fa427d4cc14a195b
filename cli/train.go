package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/ragtune/ragtune/retrieval/dataset"
	"github.com/ragtune/ragtune/tune/energy"
	"github.com/ragtune/ragtune/tune/hpo/objective"
	"github.com/ragtune/ragtune/tune/train"
)

// exitDiverged is the exit status of a run whose loss became NaN or infinite.
const exitDiverged = 3

func trainFlags() []ucli.Flag {
	return []ucli.Flag{
		&ucli.StringFlag{Name: "model", Required: true, Usage: "base GGUF model"},
		&ucli.StringFlag{Name: "data", Required: true, Usage: "dataset folder (ragtune data import)"},
		&ucli.StringFlag{Name: "out", Required: true, Usage: "run folder: adapter.gguf or model.gguf, logs, checkpoints"},
		&ucli.StringFlag{Name: "method", Value: train.MethodLoRA, Usage: "lora, qlora (frozen quantized base), dora (lora with --dora) or full"},
		&ucli.StringFlag{Name: "quant", Usage: "qlora: quantize a float base in memory to q4_0 (default), q4_k or q8_0"},
		&ucli.IntFlag{Name: "grad-cache", Usage: "GradCache: embed and differentiate each batch in chunks of N texts, so in-batch negatives span the whole --batch while memory holds one chunk (0: off)"},
		&ucli.StringFlag{Name: "recompute", Value: "auto", Usage: "recompute activations block by block in the backward pass (gradient checkpointing: far less memory, about a third more compute): on, off, or auto (on for qlora)"},
		&ucli.StringFlag{Name: "loss", Value: train.LossMNRL, Usage: "mnrl (in-batch negatives + hard negatives) or triplet"},
		&ucli.Float64Flag{Name: "scale", Value: 20, Usage: "mnrl: similarity scale, 1/temperature (20: temperature 0.05)"},
		&ucli.Float64Flag{Name: "margin", Value: 5, Usage: "triplet: margin (Euclidean distance)"},
		&ucli.IntFlag{Name: "negatives", Value: 1, Usage: "mnrl: hard negatives per query, when the data has them or --negatives-from mines them"},
		&ucli.StringFlag{Name: "negatives-from", Usage: "mine hard negatives while training: bm25 (over the dataset's corpus, once) or model (the model being trained, re-mined every epoch or --remine-every steps)"},
		&ucli.IntFlag{Name: "remine-every", Usage: "--negatives-from model: mine again every N optimizer steps (0: every epoch)"},
		&ucli.Float64Flag{Name: "negative-margin", Value: train.DefaultNegativeMargin, Usage: "mining: drop candidates scored above (1 - margin) x the positive's score, likely unjudged positives (0: off)"},
		&ucli.IntFlag{Name: "epochs", Value: 1},
		&ucli.IntFlag{Name: "max-steps", Usage: "stop after this many optimizer steps"},
		&ucli.Float64Flag{Name: "lr", Usage: "peak learning rate (default 1e-3 for lora/qlora, 2e-5 for full)"},
		&ucli.IntFlag{Name: "batch", Value: 16, Usage: "pairs per micro-batch (in-batch negatives)"},
		&ucli.IntFlag{Name: "accum", Value: 1, Usage: "micro-batches per optimizer step"},
		&ucli.Float64Flag{Name: "warmup", Value: 0.1, Usage: "warmup as a fraction of the steps"},
		&ucli.StringFlag{Name: "scheduler", Value: train.SchedLinear, Usage: "linear, cosine or constant"},
		&ucli.IntFlag{Name: "rank", Value: 16, Usage: "LoRA rank"},
		&ucli.Float64Flag{Name: "alpha", Usage: "LoRA alpha (default: 2 x rank)"},
		&ucli.Float64Flag{Name: "dropout", Value: 0.1, Usage: "LoRA dropout"},
		&ucli.StringFlag{Name: "targets", Usage: "LoRA targets, some of " + strings.Join(train.TargetKinds, ",") + " (default: every linear layer of the model)"},
		&ucli.StringFlag{Name: "lora-scaling", Value: train.ScalingStandard, Usage: "LoRA scale: standard (alpha/rank) or rslora (alpha/sqrt(rank))"},
		&ucli.Float64Flag{Name: "lr-b-ratio", Value: train.DefaultLRBRatio, Usage: "LoRA+: B learns at this multiple of --lr (1: the same rate as A)"},
		&ucli.BoolFlag{Name: "dora", Usage: "DoRA: train a magnitude per output unit besides the LoRA direction; writes a merged model.gguf (a GGUF adapter cannot hold DoRA)"},
		&ucli.BoolFlag{Name: "query-side-only", Usage: "adapt queries only; documents use the frozen base (embed the corpus once)"},
		&ucli.IntFlag{Name: "max-seq", Value: 128, Usage: "cut texts to this many tokens"},
		&ucli.BoolFlag{Name: "bucket-by-length", Usage: "batch texts of similar length together (seeded), so batches pad less"},
		&ucli.Float64Flag{Name: "weight-decay", Value: 0.01},
		&ucli.Float64Flag{Name: "clip", Value: 1, Usage: "clip the gradient norm to this (0: off)"},
		&ucli.IntFlag{Name: "checkpoint-every", Usage: "also checkpoint every N steps"},
		&ucli.IntFlag{Name: "eval-k", Value: 10, Usage: "validation cut-off k (nDCG@k, Recall@k, MRR@k)"},
		&ucli.StringFlag{Name: "val", Usage: "split to validate on (default: validation, when the dataset has it); none: do not validate"},
		&ucli.BoolFlag{Name: "no-val", Usage: "do not validate (same as --val none): each epoch's model is the output"},
		&ucli.IntFlag{Name: "val-queries", Value: train.DefaultValQueries, Usage: "validate on a seeded sample of this many queries (0: all)"},
		&ucli.IntFlag{Name: "val-docs", Value: train.DefaultValDocs, Usage: "validate on at most this many documents: the judged ones of the validation queries, always, and a seeded sample of the others (0: the whole corpus)"},
		&ucli.Uint64Flag{Name: "seed", Value: 1},
		&ucli.IntFlag{Name: "threads", Value: defaultThreads()},
		deviceFlag(),
		&ucli.BoolFlag{Name: "profile", Usage: "time every step after the first by ggml op and part of the model (forward, backward, optimizer; FLOPs, GFLOP/s, share of the step): a table after the summary, \"profile\" in --json; steps run a few percent slower"},
	}
}

func init() {
	register(&ucli.Command{
		Name:      "train",
		Usage:     "fine-tune an embedding model (LoRA, QLoRA or full) on a dataset's train split",
		ArgsUsage: " ",
		Flags: append(append(trainFlags(), energyFlags()...),
			&ucli.BoolFlag{Name: "json", Usage: "print a JSON summary"},
			&ucli.BoolFlag{Name: "quiet", Usage: "no progress line"},
		),
		Action: runTrain,
	})
}

func trainConfig(c *ucli.Context) train.Config {
	alpha := c.Float64("alpha")
	if alpha == 0 {
		alpha = 2 * float64(c.Int("rank"))
	}
	opt := train.DefaultAdamW
	opt.WeightDecay = c.Float64("weight-decay")
	var targets []string
	for _, t := range strings.Split(c.String("targets"), ",") {
		if t = strings.TrimSpace(t); t != "" {
			targets = append(targets, t)
		}
	}
	method, dora := c.String("method"), c.Bool("dora")
	if method == "dora" {
		method, dora = train.MethodLoRA, true
	}
	margin := c.Float64("negative-margin")
	if margin == 0 {
		margin = -1 // the flag's 0 is off; the Config's 0 is the default
	}
	valSplit, noVal := c.String("val"), c.Bool("no-val")
	if valSplit == "none" {
		valSplit, noVal = "", true
	}
	return train.Config{
		Method: method, Quant: c.String("quant"), Recompute: c.String("recompute"), GradCache: c.Int("grad-cache"),
		LoRA: train.LoRAConfig{Rank: c.Int("rank"), Alpha: float32(alpha), Dropout: float32(c.Float64("dropout")), Targets: targets,
			Scaling: c.String("lora-scaling"), LRBRatio: c.Float64("lr-b-ratio"), DoRA: dora},
		Loss:   train.LossConfig{Name: c.String("loss"), Scale: float32(c.Float64("scale")), Margin: float32(c.Float64("margin"))},
		Epochs: c.Int("epochs"), MaxSteps: c.Int("max-steps"), LR: c.Float64("lr"), Batch: c.Int("batch"), Accum: c.Int("accum"),
		Warmup: c.Float64("warmup"), Scheduler: c.String("scheduler"), MaxSeq: c.Int("max-seq"), Negatives: c.Int("negatives"),
		NegativesFrom: c.String("negatives-from"), RemineEvery: c.Int("remine-every"), NegativeMargin: margin,
		ClipNorm: c.Float64("clip"), Optim: opt, Seed: c.Uint64("seed"), Threads: c.Int("threads"),
		CheckpointN: c.Int("checkpoint-every"), QuerySideOnly: c.Bool("query-side-only"), BucketByLength: c.Bool("bucket-by-length"), EvalK: c.Int("eval-k"),
		EvalSplit: valSplit, NoVal: noVal, ValQueries: c.Int("val-queries"), ValDocs: c.Int("val-docs"),
		Energy: energyOptions(c), Profile: c.Bool("profile"),
	}
}

func runTrain(c *ucli.Context) error {
	d, err := dataset.Open(c.String("data"))
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	quiet := c.Bool("quiet") || c.Bool("json")
	bar := newProgress("train", 0, quiet)
	hooks := train.Hooks{
		Validation: func(p train.ValidationPlan) {
			if !quiet {
				fmt.Fprintf(c.App.ErrWriter, "validation: %s; %d passes embed %d texts, about %s at %.0f texts/s (measured)\n",
					formatSample(p.SampleInfo), p.Passes, p.Texts, formatSeconds(p.EstimatedSeconds), p.TextsPerSecond)
			}
		},
		Step: func(p train.Progress) {
			bar.total = p.TotalSteps
			bar.Update(p.Step, fmt.Sprintf("epoch %d loss %.4f lr %.2e %.1f pairs/s %.0f tokens/s", p.Epoch, p.Loss, p.LR, p.PairsPerSec, p.TokensPerSec))
		},
		Epoch: func(e train.EpochEvent) error {
			bar.Done()
			if !quiet {
				fmt.Fprintf(c.App.ErrWriter, "epoch %d (step %d): %s\n", e.Epoch, e.Step, formatScores(e.Scores, c.Int("eval-k")))
			}
			return nil
		},
	}
	cfg := trainConfig(c)
	dev, err := selectDevice(c)
	if err != nil {
		return err
	}
	cfg.Device = dev.Spec()
	res, err := train.Run(ctx, c.String("model"), d, c.String("out"), cfg, hooks)
	bar.Done()
	var div *train.DivergedError
	if errors.As(err, &div) {
		return &ExitError{Code: exitDiverged, Err: err}
	}
	if err != nil {
		return err
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, res)
	}
	w := c.App.Writer
	fmt.Fprintf(w, "trained %d steps (%d pairs, %d epochs) in %.1fs; final loss %.4f\n", res.Steps, res.Pairs, res.Epochs, res.WallSeconds, res.FinalLoss)
	if res.PairsPerSec > 0 {
		fmt.Fprintf(w, "throughput: %.3g pairs/s, %.4g tokens/s in the training steps\n", res.PairsPerSec, res.TokensPerSec)
	}
	if res.PaddedTokens > 0 {
		fmt.Fprintf(w, "tokens: %d, %d with padding (%.0f%%)\n", res.Tokens, res.PaddedTokens, 100*float64(res.Tokens)/float64(res.PaddedTokens))
	}
	if res.Base != nil && res.Best != nil {
		fmt.Fprintf(w, "validation: base %s\n            best %s (epoch %d)\n", formatScores(res.Base.Scores, c.Int("eval-k")), formatScores(res.Best.Scores, c.Int("eval-k")), res.Best.Epoch)
		if !res.ImprovedOverBase {
			fmt.Fprintln(w, "no epoch improved on the base model: the output holds the best epoch, which is not better than the base")
		}
	}
	if v := res.Validation; v != nil && v.Sampled {
		fmt.Fprintf(w, "            on a sample: %s (--val-queries, --val-docs)\n", formatSample(v.SampleInfo))
	}
	if res.Energy != nil {
		fmt.Fprintf(w, "energy %s -> emissions.csv\n", formatEnergy(res.Energy))
	}
	fmt.Fprintf(w, "peak RSS %.0f MiB, weights %.1f MiB (%s), compute buffer %.0f MiB (%s), %.3g training FLOPs -> %s\n",
		float64(res.PeakRSSBytes)/(1<<20), float64(res.WeightBytes)/(1<<20), res.Precision, float64(res.ComputeBytes)/(1<<20), res.StepMode, res.TrainFLOPs, res.Output)
	fmt.Fprintln(w, res.Usage.Summary())
	if res.Profile != nil {
		fmt.Fprintln(w)
		res.Profile.WriteTables(w)
	}
	return nil
}

// formatSample is "300 of 1,000 queries, 2,000 of 6,000 documents (412 judged)".
func formatSample(s train.SampleInfo) string {
	return fmt.Sprintf("%d of %d queries, %d of %d documents (%d judged)", s.Queries, s.QueriesTotal, s.Docs, s.CorpusDocs, s.JudgedDocs)
}

// formatSeconds is "45s" or "12.5 min".
func formatSeconds(s float64) string {
	if s < 120 {
		return fmt.Sprintf("%.0fs", s)
	}
	return fmt.Sprintf("%.1f min", s/60)
}

// formatScores lists the scores at one cut-off, "mrr@10 0.41, ndcg@10 0.45, ...".
func formatScores(s train.Scores, cutoff int) string {
	suffix := fmt.Sprintf("@%d", cutoff)
	keys := make([]string, 0, len(s))
	for k := range s {
		if strings.HasSuffix(k, suffix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %.4f", k, s[k])
	}
	return strings.Join(parts, ", ")
}

func init() {
	newTrainObjective = func(spec map[string]any, dir string, eo energy.Options) (objective.Objective, error) {
		o, err := train.NewObjective(spec, dir)
		if err != nil {
			return nil, err
		}
		o.Base.Energy = eo
		return o, nil
	}
}
