package train

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ragtune/ragtune/retrieval/dataset"
	"github.com/ragtune/ragtune/tune/hpo/objective"
)

// Objective is a study's built-in objective: fine-tune with the trial's
// parameters, report validation scores after every epoch (for pruning), and
// return the best epoch's scores with the run's cost. It also scores the
// test split, when the dataset has one, whenever validation improves.
type Objective struct {
	Model string // base GGUF
	Data  string // dataset folder
	Out   string // trial runs go to Out/trial-N
	Base  Config // fixed settings; trial parameters override them
	data  *dataset.Dataset
}

// NewObjective reads a sweep's objective.train mapping: model, data, out
// (default "trials"), and any fixed training setting under the names of the
// `ragtune train` flags. Relative paths are taken from dir. Validation is
// bounded as `ragtune train` bounds it (val_queries, val_docs, no_val).
// Each validation is also scored fused with BM25 (hybrid_ndcg@10, ...;
// fusion: auto by default, or a method with fusion_weight, tunable like
// any parameter; fusion: off for none).
func NewObjective(spec map[string]any, dir string) (*Objective, error) {
	o := &Objective{Out: "trials", Base: Config{ValQueries: DefaultValQueries, ValDocs: DefaultValDocs, Fusion: "auto"}}
	fixed := map[string]any{}
	for k, v := range spec {
		switch k {
		case "model", "data", "out":
			s, ok := v.(string)
			if !ok || s == "" {
				return nil, fmt.Errorf("objective.train.%s: want a path, got %v", k, v)
			}
			if !filepath.IsAbs(s) {
				s = filepath.Join(dir, s)
			}
			switch k {
			case "model":
				o.Model = s
			case "data":
				o.Data = s
			default:
				o.Out = s
			}
		default:
			fixed[k] = v
		}
	}
	if !filepath.IsAbs(o.Out) {
		o.Out = filepath.Join(dir, o.Out)
	}
	if o.Model == "" || o.Data == "" {
		return nil, errors.New("objective.train needs model and data")
	}
	if err := applyParams(&o.Base, fixed); err != nil {
		return nil, fmt.Errorf("objective.train: %w", err)
	}
	d, err := dataset.Open(o.Data)
	if err != nil {
		return nil, err
	}
	o.data = d
	return o, nil
}

// applyParams sets Config fields from parameter values named like the
// `ragtune train` flags (lr, batch, epochs, warmup, scheduler, accum, rank,
// alpha, dropout, targets, train_fraction, ...).
func applyParams(c *Config, params map[string]any) error {
	for name, v := range params {
		num, isNum := toFloat(v)
		str := fmt.Sprint(v)
		need := func() error {
			if !isNum {
				return fmt.Errorf("parameter %s: want a number, got %v", name, v)
			}
			return nil
		}
		switch strings.ReplaceAll(name, "-", "_") {
		case "lr":
			c.LR = num
		case "batch", "batch_size":
			c.Batch = int(num)
		case "epochs":
			c.Epochs = int(num)
		case "max_steps":
			c.MaxSteps = int(num)
		case "warmup", "warmup_ratio":
			c.Warmup = num
		case "accum", "gradient_accumulation":
			c.Accum = int(num)
		case "rank", "lora_rank":
			c.LoRA.Rank = int(num)
		case "alpha", "lora_alpha":
			c.LoRA.Alpha = float32(num)
		case "dropout", "lora_dropout":
			c.LoRA.Dropout = float32(num)
		case "max_seq":
			c.MaxSeq = int(num)
		case "negatives":
			c.Negatives = int(num)
		case "threads":
			c.Threads = int(num)
		case "seed":
			c.Seed = uint64(num)
		case "eval_k":
			c.EvalK = int(num)
		case "clip":
			c.ClipNorm = num
		case "weight_decay":
			c.Optim = DefaultAdamW
			c.Optim.WeightDecay = num
		case "train_fraction":
			c.TrainFraction = num
		case "fusion": // "off" drops the hybrid_ scores
			c.Fusion, isNum = str, true
			if str == "off" {
				c.Fusion = ""
			}
		case "fusion_weight":
			c.FusionWeight = &num
		case "val_queries":
			c.ValQueries = int(num)
		case "val_docs":
			c.ValDocs = int(num)
		case "scale":
			c.Loss.Scale = float32(num)
		case "margin":
			c.Loss.Margin = float32(num)
		case "scheduler":
			c.Scheduler, isNum = str, true
		case "method":
			c.Method, isNum = str, true
		case "quant":
			c.Quant, isNum = str, true
		case "recompute":
			c.Recompute, isNum = str, true
		case "device":
			c.Device, isNum = str, true
		case "grad_cache":
			c.GradCache = int(num)
		case "loss":
			c.Loss.Name, isNum = str, true
		case "targets":
			c.LoRA.Targets, isNum = strings.Split(str, ","), true
		case "lora_scaling":
			c.LoRA.Scaling, isNum = str, true
		case "lr_b_ratio":
			c.LoRA.LRBRatio = num
		case "dora":
			b, ok := v.(bool)
			if !ok {
				return fmt.Errorf("parameter %s: want true or false, got %v", name, v)
			}
			c.LoRA.DoRA, isNum = b, true
		case "negatives_from":
			c.NegativesFrom, isNum = str, true
		case "remine_every":
			c.RemineEvery = int(num)
		case "negative_margin":
			c.NegativeMargin = num
		case "query_side_only", "no_val":
			b, ok := v.(bool)
			if !ok {
				return fmt.Errorf("parameter %s: want true or false, got %v", name, v)
			}
			if name == "no_val" {
				c.NoVal, isNum = b, true
			} else {
				c.QuerySideOnly, isNum = b, true
			}
		default:
			return fmt.Errorf("unknown training parameter %q", name)
		}
		if err := need(); err != nil {
			return err
		}
	}
	return nil
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int64:
		return float64(x), true
	case int:
		return float64(x), true
	case string:
		f, err := strconv.ParseFloat(x, 64)
		return f, err == nil
	}
	return 0, false
}

// Run implements objective.Objective.
func (o *Objective) Run(ctx context.Context, t objective.Trial, report objective.ReportFunc) (objective.Result, error) {
	cfg := o.Base
	if err := applyParams(&cfg, t.Params); err != nil {
		return nil, objective.Failf("%v", err)
	}
	if cfg.Seed == 0 {
		cfg.Seed = uint64(t.Number) + 1
	}
	out := filepath.Join(o.Out, fmt.Sprintf("trial-%d", t.Number))
	// A retried trial starts over: its number is new, but be safe.
	os.RemoveAll(out)
	test := map[string]float64{}
	hasTest := false
	for _, s := range o.data.Splits() {
		hasTest = hasTest || s == "test"
	}
	start := time.Now()
	res, err := Run(ctx, o.Model, o.data, out, cfg, Hooks{Epoch: func(e EpochEvent) error {
		if report(e.Epoch, e.Scores) {
			return objective.ErrPruned
		}
		if e.Improved && hasTest {
			s, err := e.Evaluate(ctx, "test")
			if err != nil {
				return err
			}
			for k, v := range s {
				test["test_"+k] = v
			}
		}
		return nil
	}})
	var div *DivergedError
	switch {
	case errors.As(err, &div):
		return nil, objective.Failf("%v", div)
	case errors.Is(err, objective.ErrPruned):
		// A pruned trial's cost is kept too (the runner stores it).
		return costs(res), objective.ErrPruned
	case err != nil && ctx.Err() != nil:
		return nil, err
	case err != nil:
		return nil, objective.Failf("%v", err)
	}
	result := costs(res)
	result["train_seconds"] = time.Since(start).Seconds()
	result["steps"] = float64(res.Steps)
	result["final_loss"] = res.FinalLoss
	result["output"] = res.Output
	result["improved"] = res.ImprovedOverBase
	result["trainable_params"] = float64(res.TrainableParams)
	result["pairs_per_s"], result["tokens_per_s"] = res.PairsPerSec, res.TokensPerSec
	result["precision"] = res.Precision
	// The original work's max_vram_gb, from ggml's buffers.
	result["peak_device_bytes"], result["device"] = float64(res.PeakDeviceBytes), res.Device
	if v := res.Validation; v != nil {
		result["val_queries"], result["val_docs"] = float64(v.Queries), float64(v.Docs)
	}
	if res.Best != nil {
		for k, v := range res.Best.Scores {
			result[k] = v
		}
		result["best_epoch"] = float64(res.Best.Epoch)
	}
	if res.Base != nil {
		for k, v := range res.Base.Scores {
			if strings.HasPrefix(k, "bm25_") { // BM25 alone: the same for every model
				result[k] = v
				continue
			}
			result["base_"+k] = v
		}
	}
	for k, v := range test {
		result[k] = v
	}
	return result, nil
}

// costs is what a run spent, pruned or not: FLOPs, peak memory, energy
// and emissions.
func costs(res *Result) objective.Result {
	if res == nil {
		return nil
	}
	out := objective.Result{
		"train_flops":    res.TrainFLOPs,
		"peak_rss_bytes": float64(res.PeakRSSBytes),
	}
	if e := res.Energy; e != nil {
		out["energy_kwh"], out["emissions_kg"], out["energy_method"] = e.EnergyKWh, e.EmissionsKg, e.Method
	}
	return out
}
