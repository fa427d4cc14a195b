package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/ragtune/ragtune/bindings"
	"github.com/ragtune/ragtune/retrieval"
	"github.com/ragtune/ragtune/retrieval/dataset"
	"github.com/ragtune/ragtune/tune/encoder"
	"github.com/ragtune/ragtune/tune/energy"
	"github.com/ragtune/ragtune/tune/model"
)

// Methods.
const (
	MethodLoRA  = "lora"
	MethodQLoRA = "qlora"
	MethodFull  = "full"
)

// Config is everything a training run is made of.
type Config struct {
	Method    string // lora, qlora, full
	Quant     string // qlora on a float base: q4_0 (default), q4_k, q8_0
	LoRA      LoRAConfig
	Loss      LossConfig
	Epochs    int
	MaxSteps  int // optimizer steps; 0: Epochs decide
	LR        float64
	Batch     int // examples per micro-batch
	Accum     int // micro-batches per optimizer step
	Warmup    float64
	Scheduler string
	MaxSeq    int
	Negatives int // hard negatives per query for MNRL, when the data has them
	// NegativesFrom mines the hard negatives while training: "bm25" (once)
	// or "model" (the live model, every epoch or every RemineEvery steps);
	// "" uses the dataset's own. NegativeMargin is mining's relative
	// false-negative margin (0: DefaultNegativeMargin, below 0: off).
	NegativesFrom  string  `json:",omitempty"`
	RemineEvery    int     `json:",omitempty"`
	NegativeMargin float64 `json:",omitempty"`
	ClipNorm       float64
	Optim          AdamW
	Seed           uint64
	Threads        int
	CheckpointN    int  // also checkpoint every N optimizer steps (0: at epoch ends only)
	QuerySideOnly  bool // adapt queries only; documents use the frozen base
	// BucketByLength batches texts of similar length together (seeded like
	// the shuffle), so batches pad less; see epochBatches.
	BucketByLength bool `json:",omitempty"`
	// Recompute is "on", "off" or "auto" (on for qlora): recompute
	// activations block by block in the backward pass (gradient
	// checkpointing), for about a third more compute and a compute buffer
	// of one block's activations instead of the whole model's.
	Recompute string
	// GradCache, when above 0, embeds and differentiates each micro-batch
	// in chunks of this many texts: in-batch negatives span the whole
	// batch, memory holds one chunk's activations.
	GradCache  int
	EvalK      int
	EvalSplit  string // "validation" when the dataset has it
	TrainSplit string
	// TrainFraction keeps a seeded random part of the training examples
	// (few-shot studies); 0 or 1 keeps all.
	TrainFraction float64
	// Device is where the model runs, as --device names it ("" is the
	// CPU); a run may resume on another device.
	Device string `json:"-"`
	// Validation bounds (see Sample): at most ValQueries queries (0: all)
	// and ValDocs documents (0: the whole corpus); NoVal skips validation.
	// The same bounds apply to test-split evaluations of the objective.
	ValQueries int  `json:",omitempty"`
	ValDocs    int  `json:",omitempty"`
	NoVal      bool `json:",omitempty"`
	// Fusion, when set, also scores every validation fused with BM25
	// ("hybrid_" metrics, see Validator.EnableFusion): "auto" or a method of
	// package hybrid, at FusionWeight when given. Scoring only: a run may
	// resume with another.
	Fusion       string   `json:"-"`
	FusionWeight *float64 `json:"-"`
	// HostOptimizer keeps AdamW in Go over host copies of the parameters
	// even where the device could run it (see Stepper.SetOptimizer); a
	// run may resume with either.
	HostOptimizer bool `json:"-"`
	// Profile times every step after the first (which builds the graphs
	// and touches the compute buffer for the first time), by ggml op and
	// by part of the model; the run's Result carries it.
	Profile bool `json:"-"`
	// Energy configures the run's energy meter (not part of the
	// configuration a checkpoint must match).
	Energy energy.Options `json:"-"`
}

// Defaults fills unset fields.
func (c *Config) Defaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	if c.Method == "" {
		c.Method = MethodLoRA
	}
	if c.Method == MethodQLoRA && c.Quant == "" {
		c.Quant = "q4_0"
	}
	def(&c.Epochs, 1)
	def(&c.Batch, 16)
	def(&c.Accum, 1)
	def(&c.MaxSeq, 128)
	def(&c.Threads, 1)
	def(&c.EvalK, 10)
	def(&c.LoRA.Rank, 16)
	if c.LR == 0 {
		c.LR = 2e-5
		if c.Method != MethodFull {
			// LoRA's recipe, measured on the demo's domain shift (README):
			// 1e-3 with LoRA+ (B at 16x) on every linear layer.
			c.LR = 1e-3
		}
	}
	if c.LoRA.LRBRatio == 0 {
		c.LoRA.LRBRatio = DefaultLRBRatio
	}
	if c.Scheduler == "" {
		c.Scheduler = SchedLinear
	}
	if c.ClipNorm == 0 {
		c.ClipNorm = 1
	}
	if c.Optim == (AdamW{}) {
		c.Optim = DefaultAdamW
	}
	if c.TrainSplit == "" {
		c.TrainSplit = "train"
	}
	if c.Negatives == 0 {
		c.Negatives = 1
	}
	if c.NegativesFrom != "" && c.NegativeMargin == 0 {
		c.NegativeMargin = DefaultNegativeMargin
	}
	if c.Recompute == "" {
		c.Recompute = "auto"
	}
}

// recompute resolves Recompute for the method; GradCache already bounds
// memory by its chunk, so auto leaves recomputation off with it.
func (c *Config) recompute() (bool, error) {
	if c.GradCache < 0 {
		return false, fmt.Errorf("grad-cache %d: want a chunk size, or 0 for off", c.GradCache)
	}
	switch c.Recompute {
	case "on":
		if c.GradCache > 0 {
			return false, errors.New("recompute on and grad-cache: choose one (GradCache recomputes each chunk already)")
		}
		return true, nil
	case "off":
		return false, nil
	case "auto":
		return c.Method == MethodQLoRA && c.GradCache == 0, nil
	}
	return false, fmt.Errorf("recompute %q: want on, off or auto", c.Recompute)
}

// Progress is reported after every optimizer step.
type Progress struct {
	Step, TotalSteps, Epoch int
	Loss, LR                float64
	PairsPerSec             float64
	TokensPerSec            float64 // the texts' own tokens, padding left out
	Elapsed                 time.Duration
}

// EpochResult is the validation of one epoch (epoch 0: the base model).
type EpochResult struct {
	Epoch  int    `json:"epoch"`
	Step   int    `json:"step"`
	Scores Scores `json:"scores"`
}

// Result summarises a run.
type Result struct {
	Steps            int           `json:"steps"`
	Epochs           int           `json:"epochs"`
	FinalLoss        float64       `json:"final_loss"`
	Base             *EpochResult  `json:"base,omitempty"`
	Best             *EpochResult  `json:"best,omitempty"`
	History          []EpochResult `json:"history,omitempty"`
	ImprovedOverBase bool          `json:"improved_over_base"`
	PeakRSSBytes     int64         `json:"peak_rss_bytes"`
	WeightBytes      int           `json:"weight_bytes"`
	ComputeBytes     int           `json:"compute_buffer_bytes"`
	WallSeconds      float64       `json:"wall_seconds"`
	// PairsPerSec and TokensPerSec are the training steps' throughput (the
	// set-up, validation, exports and checkpoints left out), as
	// train_log.csv's last row has it.
	PairsPerSec  float64 `json:"pairs_per_s"`
	TokensPerSec float64 `json:"tokens_per_s"`
	TrainFLOPs   float64 `json:"train_flops"`
	Pairs        int     `json:"pairs"`
	// Tokens are the texts' tokens the run's steps embedded; PaddedTokens
	// what the graphs computed (each side padded to its longest text).
	Tokens          int64  `json:"tokens"`
	PaddedTokens    int64  `json:"padded_tokens"`
	Output          string `json:"output"`
	ResumedFromStep int    `json:"resumed_from_step,omitempty"`
	TrainableParams int    `json:"trainable_params"`
	// Memory mode of the step: "whole graph", "recompute" or "grad-cache N".
	StepMode string `json:"step_mode"`
	// Precision is the type the model's layer weights are held in and,
	// for a frozen f16, bf16 or quantized base, the type of the
	// transposed copies its backward products read:
	// "f16 base, bf16 backward", "q4_0 base, f32 backward", "f32".
	Precision string `json:"precision"`
	// Optimizer is where AdamW ran: "device" (the training backend, the
	// CPU included) or "host" (Go over host copies).
	Optimizer string `json:"optimizer"`
	// NegativeMinings counts the minings of hard negatives while training;
	// MinedNegatives reports the last one.
	NegativeMinings int                     `json:"negative_minings,omitempty"`
	MinedNegatives  *dataset.NegativeReport `json:"mined_negatives,omitempty"`
	// The device, its peak memory in ggml's buffers and the ops that fell
	// back to the CPU (device, peak_device_bytes, cpu_fallback_ops).
	bindings.Usage
	// Validation is what validation covered and was expected to cost.
	Validation *ValidationPlan `json:"validation,omitempty"`
	// Energy is the run's energy and emissions (also a row of
	// RUN_DIR/emissions.csv).
	Energy *energy.Report `json:"energy,omitempty"`
	// Profile is where the steps' time went (Config.Profile).
	Profile *Profile `json:"profile,omitempty"`
}

// ValidationPlan is what validation will cost, said before training.
type ValidationPlan struct {
	SampleInfo
	Passes int `json:"passes"` // the base model's and one per epoch
	// Texts is what all passes embed (documents once when they are cached).
	Texts int `json:"texts"`
	// TextsPerSecond is measured on a few of the documents with the model.
	TextsPerSecond   float64 `json:"texts_per_second"`
	EstimatedSeconds float64 `json:"estimated_seconds"`
}

// DivergedError reports a loss that became NaN or infinite.
type DivergedError struct {
	Step int
	Loss float64
}

func (e *DivergedError) Error() string {
	return fmt.Sprintf("diverged (loss %v at step %d)", e.Loss, e.Step)
}

// Hooks let a caller follow a run. Step runs after every optimizer step;
// Epoch after every validation (a non-nil error stops the run with it, so a
// hyperparameter search can prune); Validation once before training, with
// what validation will cost.
type Hooks struct {
	Step       func(Progress)
	Epoch      func(EpochEvent) error
	Validation func(ValidationPlan)
}

// EpochEvent is one epoch's validation, with a way to score the model of
// that moment on another split (e.g. test, whenever validation improves).
type EpochEvent struct {
	EpochResult
	Improved bool // best validation so far, the base model included
	Evaluate func(ctx context.Context, split string) (Scores, error)
}

// Run trains modelPath on d and writes RUN_DIR/adapter.gguf (lora, qlora)
// or RUN_DIR/model.gguf (full), with checkpoints, logs and validation. A run
// directory that holds a checkpoint of the same configuration resumes.
// Every run that starts training adds its energy to RUN_DIR/emissions.csv
// (and samples RUN_DIR/gpu_power_log.csv when there are GPUs), whether it
// ends well or not.
func Run(ctx context.Context, modelPath string, d *dataset.Dataset, outDir string, cfg Config, hooks Hooks) (*Result, error) {
	cfg.Defaults()
	start := time.Now()
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, err
	}
	eopts := cfg.Energy
	eopts.GPULog = filepath.Join(outDir, "gpu_power_log.csv")
	meter := energy.Start(eopts)
	r, err := newRun(modelPath, d, outDir, cfg)
	if err != nil {
		meter.Stop()
		return nil, err
	}
	defer r.close()
	res, err := r.loop(ctx, hooks)
	rep, merr := meter.Stop()
	merr = errors.Join(merr, energy.AppendEmissions(filepath.Join(outDir, "emissions.csv"), rep, "ragtune", filepath.Base(outDir)))
	if res != nil {
		res.WallSeconds = time.Since(start).Seconds()
		res.PeakRSSBytes = PeakRSS()
		res.Usage = r.be.Usage()
		res.Energy = &rep
	}
	if err == nil && merr != nil {
		err = fmt.Errorf("energy accounting: %w", merr)
	}
	return res, err
}

type run struct {
	cfg      Config
	dir      string
	path     string
	be       *bindings.Backend
	m        *model.Model
	lora     *LoRASet
	params   []*Param
	tok      *encoder.Tokenizer
	step     *Stepper
	examples []Example
	miner    *miner // nil unless negatives are mined while training
	mined    int    // minings done
	val      *Validator
	data     *dataset.Dataset
	rng      *rand.Rand
	log      *csvLog
}

func newRun(modelPath string, d *dataset.Dataset, outDir string, cfg Config) (*run, error) {
	r := &run{cfg: cfg, dir: outDir, path: modelPath, data: d}
	if _, err := cfg.recompute(); err != nil {
		return nil, err
	}
	var err error
	if r.be, err = bindings.OpenBackend(cfg.Device, cfg.Threads); err != nil {
		return nil, err
	}
	segmented := r.be.TrainingSupported(true) // asks the device's driver once
	if cfg.Recompute == "auto" && segmented != nil {
		// QLoRA's default recomputation is refused on this device: the
		// base stays quantized without it.
		cfg.Recompute, r.cfg.Recompute = "off", "off"
	}
	recompute, _ := cfg.recompute()
	if (recompute || cfg.GradCache > 0) && segmented != nil {
		r.close()
		return nil, segmented
	}
	// A device multiplies f16 and bf16 weights itself (half the memory of
	// f32 and, on CUDA, tensor cores); the CPU's kernels are f32, and full
	// fine-tuning and DoRA read and update the weights as f32.
	opts := model.LoadOptions{WidenF16: r.be.IsCPU() || cfg.Method == MethodFull || cfg.LoRA.DoRA}
	switch cfg.Method {
	case MethodQLoRA:
		opts.Quantize = cfg.Quant
	case MethodLoRA, MethodFull:
	default:
		r.close()
		return nil, fmt.Errorf("unknown method %q (want lora, qlora or full)", cfg.Method)
	}
	if r.m, err = model.Load(modelPath, r.be, opts); err != nil {
		r.close()
		return nil, err
	}
	if cfg.Method == MethodLoRA && r.hasQuantizedLayers() {
		r.close()
		return nil, fmt.Errorf("%s has quantized weights: train it with --method qlora", modelPath)
	}
	r.rng = rand.New(rand.NewPCG(cfg.Seed, 0x6c6f7261))
	if cfg.Method == MethodFull {
		r.params, err = FullParams(r.m)
	} else {
		r.lora, err = AttachLoRA(r.m, r.be, cfg.LoRA, r.rng)
		if err == nil {
			r.params = r.lora.Params
		}
	}
	if err != nil {
		r.close()
		return nil, err
	}
	if r.tok, err = encoder.NewTokenizer(modelPath, r.m.Config, cfg.MaxSeq); err != nil {
		r.close()
		return nil, err
	}
	pairs, err := d.Pairs(cfg.TrainSplit)
	if err != nil {
		r.close()
		return nil, err
	}
	if f := cfg.TrainFraction; f > 0 && f < 1 {
		keep := max(1, int(math.Ceil(f*float64(len(pairs)))))
		rand.New(rand.NewPCG(cfg.Seed, 0x66726163)).Shuffle(len(pairs), func(i, j int) { pairs[i], pairs[j] = pairs[j], pairs[i] })
		pairs = pairs[:keep]
	}
	if len(pairs) == 0 {
		r.close()
		return nil, fmt.Errorf("the dataset has no %q examples", cfg.TrainSplit)
	}
	var corpus, corpusIDs []string
	for _, doc := range d.Corpus {
		corpus = append(corpus, d.DocText(doc))
		corpusIDs = append(corpusIDs, doc.ID)
	}
	encode := func(s string) ([]int32, error) {
		ids, _, err := r.tok.Encode(s)
		return ids, err
	}
	if r.examples, err = tokenizeExamples(pairs, encode, cfg.Loss.Name == LossTriplet, corpus, corpusIDs, cfg.Seed); err != nil {
		r.close()
		return nil, err
	}
	if cfg.NegativesFrom != "" {
		if r.miner, err = newMiner(d, cfg, encode); err != nil {
			r.close()
			return nil, err
		}
	}
	if r.step, err = NewStepper(r.m, r.be, r.params, cfg.Loss, 0, r.rng); err != nil {
		r.close()
		return nil, err
	}
	if _, err := r.step.SetOptimizer(cfg.Optim, cfg.ClipNorm, !cfg.HostOptimizer); err != nil {
		r.close()
		return nil, err
	}
	r.step.QuerySideOnly = cfg.QuerySideOnly
	r.step.Recompute = recompute
	r.step.GradCache = cfg.GradCache
	split := cfg.EvalSplit
	if split == "" {
		for _, s := range d.Splits() {
			if s == "validation" {
				split = s
			}
		}
	}
	if split != "" && !cfg.NoVal {
		if r.val, err = NewSampledValidator(d, split, cfg.EvalK, cfg.valSample()); err != nil {
			r.close()
			return nil, err
		}
		r.val.CacheDocs = cfg.QuerySideOnly
		if cfg.Fusion != "" {
			if err := r.val.EnableFusion(cfg.Fusion, cfg.FusionWeight, fmt.Sprintf("ndcg@%d", cfg.EvalK)); err != nil {
				r.close()
				return nil, fmt.Errorf("fusion: %w", err)
			}
		}
	}
	return r, nil
}

// precision is Result.Precision, from the first layer weight's type.
func (r *run) precision() string {
	ls := r.m.Linears()
	if len(ls) == 0 || ls[0].W.Type() == bindings.TypeF32 {
		return "f32"
	}
	return fmt.Sprintf("%s base, %s backward", ls[0].W.Type(), r.be.WeightGradType())
}

func (r *run) hasQuantizedLayers() bool {
	for _, l := range r.m.Linears() {
		if l.W.Type().IsQuantized() {
			return true
		}
	}
	return false
}

func (r *run) close() {
	if r.log != nil {
		r.log.Close()
	}
	if r.step != nil {
		r.step.Close()
	}
	if r.tok != nil {
		r.tok.Close()
	}
	if r.lora != nil {
		r.lora.Close()
	}
	if r.m != nil {
		r.m.Close()
	}
	if r.be != nil {
		r.be.Close()
	}
}

// evaluate scores the live model on the validation split.
func (r *run) evaluate(ctx context.Context) (Scores, error) {
	return r.evaluateWith(ctx, r.val)
}

// encoder embeds with the live model.
func (r *run) encoder() *encoder.Encoder {
	return encoder.FromModel(r.m, r.be, r.tok, encoder.Options{Threads: r.cfg.Threads, Batch: 32, QueryOnlyAdapter: r.cfg.QuerySideOnly})
}

func (r *run) evaluateWith(ctx context.Context, v *Validator) (Scores, error) {
	enc := r.encoder()
	defer enc.Close()
	return v.Evaluate(ctx, enc)
}

// evaluateSplit scores the live model on any split of the dataset.
func (r *run) evaluateSplit(ctx context.Context, split string) (Scores, error) {
	v, err := NewSampledValidator(r.data, split, r.cfg.EvalK, r.cfg.valSample())
	if err != nil {
		return nil, err
	}
	return r.evaluateWith(ctx, v)
}

func (c *Config) valSample() Sample {
	return Sample{Queries: c.ValQueries, Docs: c.ValDocs, Seed: valSeed}
}

// planValidation says what validation will embed over passes evaluations
// and how long that should take, from the speed of the model on a few of
// the documents.
func (r *run) planValidation(ctx context.Context, passes int) (ValidationPlan, error) {
	p := ValidationPlan{SampleInfo: r.val.Info(), Passes: passes}
	docPasses := passes
	if r.val.CacheDocs {
		docPasses = min(passes, 1)
	}
	p.Texts = p.Docs*docPasses + p.Queries*passes
	// Documents spread over the sample, so their lengths are typical.
	docs, _ := r.val.Texts()
	probe := make([]string, min(len(docs), 32))
	for i := range probe {
		probe[i] = docs[i*len(docs)/len(probe)]
	}
	enc := r.encoder()
	defer enc.Close()
	start := time.Now()
	if _, err := enc.Embed(ctx, probe, retrieval.Document); err != nil {
		return p, fmt.Errorf("measuring embedding speed: %w", err)
	}
	if sec := time.Since(start).Seconds(); sec > 0 {
		p.TextsPerSecond = float64(len(probe)) / sec
		p.EstimatedSeconds = float64(p.Texts) / p.TextsPerSecond
	}
	return p, nil
}

func (r *run) loop(ctx context.Context, hooks Hooks) (*Result, error) {
	cfg := r.cfg
	perEpoch := 0
	for range epochBatches(r.examples, cfg.Batch, cfg.Seed, 0, cfg.BucketByLength) {
		perEpoch++
	}
	stepsPerEpoch := (perEpoch + cfg.Accum - 1) / cfg.Accum
	total := stepsPerEpoch * cfg.Epochs
	if cfg.MaxSteps > 0 && cfg.MaxSteps < total {
		total = cfg.MaxSteps
	}
	warmup := int(math.Round(cfg.Warmup * float64(total)))
	res := &Result{Pairs: len(r.examples), WeightBytes: r.m.WeightBytes(), StepMode: "whole graph", Optimizer: "host"}
	if r.step.OnDevice() {
		res.Optimizer = "device"
	}
	switch {
	case r.step.GradCache > 0:
		res.StepMode = fmt.Sprintf("grad-cache %d", r.step.GradCache)
	case r.step.Recompute:
		res.StepMode = "recompute"
	}
	res.Precision = r.precision()
	for _, p := range r.params {
		res.TrainableParams += len(p.Data)
	}
	st, err := r.resume()
	if err != nil {
		return nil, err
	}
	if st.Step > 0 {
		res.ResumedFromStep = st.Step
	}
	if r.log, err = openCSVLog(filepath.Join(r.dir, "train_log.csv"), st.Step); err != nil {
		return nil, err
	}
	if r.val != nil {
		passes := min(cfg.Epochs, (total+stepsPerEpoch-1)/stepsPerEpoch) - st.Epoch
		if st.Base == nil {
			passes++
		}
		plan, err := r.planValidation(ctx, max(passes, 0))
		if err != nil {
			return nil, err
		}
		res.Validation = &plan
		if hooks.Validation != nil {
			hooks.Validation(plan)
		}
	}
	if r.val != nil && st.Base == nil {
		s, err := r.evaluate(ctx)
		if err != nil {
			return nil, err
		}
		st.Base = &EpochResult{Epoch: 0, Step: 0, Scores: s}
		st.History = append(st.History, *st.Base)
		if err := appendEvalLog(r.dir, *st.Base); err != nil {
			return nil, err
		}
	}
	started := time.Now()
	// stepping is the time spent in training steps: the rates leave out
	// validation, exports and checkpoints between them.
	pairsDone, tokensDone, stepping := 0, int64(0), time.Duration(0)
	for epoch := st.Epoch; epoch < cfg.Epochs && st.Step < total; epoch++ {
		batches := epochBatches(r.examples, cfg.Batch, cfg.Seed, epoch, cfg.BucketByLength)
		for bi := st.Batch; bi < len(batches) && st.Step < total; {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			stepStart := time.Now()
			if err := r.remine(ctx, st.Step, bi == 0, r.mined == 0); err != nil {
				return nil, err
			}
			var prof *Profile
			if cfg.Profile && (st.Step > res.ResumedFromStep || total-st.Step == 1) {
				if res.Profile == nil {
					res.Profile = NewProfile()
				}
				prof = res.Profile
				prof.StartStep()
			}
			r.step.Profile = prof
			var lossSum float64
			n := 0
			for ; n < cfg.Accum && bi < len(batches); n, bi = n+1, bi+1 {
				idx := batches[bi]
				b := makeBatch(r.examples, idx, r.negatives(idx))
				// Dropout masks come from a stream fixed by the step, so a
				// resumed run draws what an uninterrupted one would.
				r.step.rng = rand.New(rand.NewPCG(cfg.Seed, uint64(st.Step)<<16|uint64(n)))
				loss, err := r.step.Accumulate(b, 1/float32(cfg.Accum))
				if err != nil {
					return nil, fmt.Errorf("step %d: %w", st.Step+1, err)
				}
				if math.IsNaN(loss) || math.IsInf(loss, 0) {
					return res, &DivergedError{Step: st.Step + 1, Loss: loss}
				}
				lossSum += loss
				pairsDone += len(idx)
				tokens, padded := b.tokens(r.m.Ctx)
				tokensDone += tokens
				res.Tokens += tokens
				res.PaddedTokens += padded
				res.TrainFLOPs += r.step.LastFLOPs
			}
			lr, err := LearningRate(cfg.Scheduler, cfg.LR, st.Step, total, warmup)
			if err != nil {
				return nil, err
			}
			norm, err := r.step.Step(st.Step+1, lr)
			if err != nil {
				return nil, fmt.Errorf("step %d: %w", st.Step+1, err)
			}
			if math.IsNaN(norm) || math.IsInf(norm, 0) {
				return res, &DivergedError{Step: st.Step + 1, Loss: norm}
			}
			if prof != nil {
				prof.EndStep()
			}
			st.Step++
			st.Batch = bi
			st.Loss = lossSum / float64(n)
			elapsed := time.Since(started)
			stepping += time.Since(stepStart)
			rate := float64(pairsDone) / stepping.Seconds()
			tokenRate := float64(tokensDone) / stepping.Seconds()
			res.PairsPerSec, res.TokensPerSec = rate, tokenRate
			if err := r.log.Write(st.Step, epoch+1, st.Loss, lr, norm, rate, elapsed.Seconds(), tokenRate); err != nil {
				return nil, err
			}
			if hooks.Step != nil {
				hooks.Step(Progress{Step: st.Step, TotalSteps: total, Epoch: epoch + 1, Loss: st.Loss, LR: lr, PairsPerSec: rate,
					TokensPerSec: tokenRate, Elapsed: elapsed})
			}
			if cfg.CheckpointN > 0 && st.Step%cfg.CheckpointN == 0 && bi < len(batches) {
				if err := r.checkpoint(st); err != nil {
					return nil, err
				}
			}
		}
		st.Epoch, st.Batch = epoch+1, 0
		if r.val != nil {
			s, err := r.evaluate(ctx)
			if err != nil {
				return nil, err
			}
			er := EpochResult{Epoch: epoch + 1, Step: st.Step, Scores: s}
			st.History = append(st.History, er)
			if err := appendEvalLog(r.dir, er); err != nil {
				return nil, err
			}
			key := fmt.Sprintf("ndcg@%d", cfg.EvalK)
			improved := s[key] > st.Base.Scores[key] && (st.Best == nil || s[key] > st.Best.Scores[key])
			if hooks.Epoch != nil {
				if err := hooks.Epoch(EpochEvent{EpochResult: er, Improved: improved, Evaluate: r.evaluateSplit}); err != nil {
					return res, err
				}
			}
			if st.Best == nil || s[key] > st.Best.Scores[key] {
				st.Best = &er
				if err := r.export(r.outputPath()); err != nil {
					return nil, err
				}
			}
		} else if err := r.export(r.outputPath()); err != nil {
			return nil, err
		}
		if err := r.checkpoint(st); err != nil {
			return nil, err
		}
	}
	if st.Best == nil && r.val == nil {
		if err := r.export(r.outputPath()); err != nil {
			return nil, err
		}
	}
	res.Steps, res.Epochs, res.FinalLoss = st.Step, st.Epoch, st.Loss
	res.Base, res.Best, res.History = st.Base, st.Best, st.History
	key := fmt.Sprintf("ndcg@%d", cfg.EvalK)
	res.ImprovedOverBase = st.Best != nil && st.Base != nil && st.Best.Scores[key] > st.Base.Scores[key]
	res.ComputeBytes = r.step.ComputeBufferBytes()
	if res.Profile != nil {
		res.Profile.Finish()
	}
	if r.miner != nil {
		res.NegativeMinings, res.MinedNegatives = r.mined, &r.miner.Report
	}
	res.Output = r.outputPath()
	return res, nil
}

func (r *run) negatives(idx []int) int {
	if r.cfg.Loss.Name == LossTriplet {
		return 1
	}
	return negativesFor(r.examples, idx, r.cfg.Negatives)
}

func (r *run) outputPath() string {
	if r.cfg.Method == MethodFull || r.cfg.LoRA.DoRA {
		return filepath.Join(r.dir, "model.gguf")
	}
	return filepath.Join(r.dir, "adapter.gguf")
}
