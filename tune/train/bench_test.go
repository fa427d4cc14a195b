package train

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ragtune/ragtune/bindings"
	"github.com/ragtune/ragtune/bindings/gguf"
	"github.com/ragtune/ragtune/tune/encoder"
	"github.com/ragtune/ragtune/tune/model"
	"github.com/ragtune/ragtune/tune/modelinit"
)

// The training-step benchmarks use the all-MiniLM-L6-v2 shape the issue's
// PyTorch reference was measured on: bert, 6 layers, 384 wide, 12 heads,
// FF 1536, sequences of 128 tokens, 32 (query, document) pairs per step
// (64 sequences, 8,192 tokens), 2 threads. One op is one optimizer step:
// forward, backward, clipping and AdamW, on the device (here the CPU
// backend's threads: Stepper.SetOptimizer), or with hostOptim in Go
// (gradient download, Go loop, parameter upload).
//
//	. scripts/env.sh && go test ./tune/train -run '^$' -bench 'TrainStep|MatMulPeak' -benchtime 3x
//
// RAGTUNE_BENCH_THREADS overrides the thread count; RAGTUNE_BENCH_PROFILE=1
// profiles the timed steps (train --profile's tables, in the log; the
// timed compute runs each node alone, so the step is a little slower). On a shared machine
// the wall time of 2 threads swings with other load (ggml's threads spin
// at barriers while a sibling is descheduled); cpu-s/step at 1 thread is
// the figure that stays put.
const (
	benchLayers = 6
	benchDim    = 384
	benchHeads  = 12
	benchFF     = 1536
	benchSeq    = 128
	benchPairs  = 32
)

func benchThreads() int {
	if n, err := strconv.Atoi(os.Getenv("RAGTUNE_BENCH_THREADS")); err == nil && n > 0 {
		return n
	}
	return 2
}

// cpuTime is the CPU time (user and system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var (
	benchVocabOnce sync.Once
	benchVocab     *modelinit.Vocab
	benchVocabErr  error
)

// miniLMPath writes a MiniLM-shaped f32 bert GGUF whose WordPiece
// vocabulary (30,522 at most) is learnt from the mini corpus once per process.
func miniLMPath(b *testing.B) string {
	qs, ds := miniPairs(b, 1400)
	benchVocabOnce.Do(func() { benchVocab, benchVocabErr = modelinit.BuildWordPiece(append(qs, ds...), 30522) })
	if benchVocabErr != nil {
		b.Fatal(benchVocabErr)
	}
	path := filepath.Join(b.TempDir(), "minilm.gguf")
	o := modelinit.Options{Arch: "bert", Vocabulary: benchVocab, Layers: benchLayers, Dim: benchDim, Heads: benchHeads,
		FF: benchFF, Ctx: 512, Seed: 1, Type: gguf.F32}
	if _, err := modelinit.Write(path, o); err != nil {
		b.Fatal(err)
	}
	return path
}

// fullBatch tokenizes real queries and documents and fills every sequence
// to exactly benchSeq tokens (repeating its own tokens), so the padded
// shape, and with it the work, is that of the reference run.
func fullBatch(b *testing.B, path string, cfg model.Config) Batch {
	tok, err := encoder.NewTokenizer(path, cfg, benchSeq)
	if err != nil {
		b.Fatal(err)
	}
	defer tok.Close()
	qs, ds := miniPairs(b, benchPairs)
	fill := func(text string) []int32 {
		ids, _, err := tok.Encode(text)
		if err != nil {
			b.Fatal(err)
		}
		out := make([]int32, benchSeq)
		for i := range out {
			out[i] = ids[i%len(ids)]
		}
		return out
	}
	var batch Batch
	for i := range qs {
		batch.Queries = append(batch.Queries, fill(qs[i]))
		batch.Docs = append(batch.Docs, fill(ds[i]))
	}
	return batch
}

func BenchmarkTrainStep(b *testing.B) {
	cases := []struct {
		name      string
		quant     string // QLoRA: base quantized in memory
		full      bool
		recompute bool
		hostOptim bool // AdamW in Go over host copies
	}{
		{name: "lora_r16_qv_f32"},
		{name: "qlora_r16_qv_q8_0", quant: "q8_0"},
		{name: "qlora_r16_qv_q4_0", quant: "q4_0"},
		{name: "full_f32", full: true},
		{name: "full_f32_host_adamw", full: true, hostOptim: true},
		// What `train --method qlora` runs by default: activations recomputed.
		{name: "qlora_r16_qv_q4_0_recompute", quant: "q4_0", recompute: true},
		{name: "lora_r16_qv_f32_recompute", recompute: true},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			path := miniLMPath(b)
			be, err := bindings.NewCPUBackend(benchThreads())
			if err != nil {
				b.Fatal(err)
			}
			defer be.Close()
			m, err := model.Load(path, be, model.LoadOptions{Quantize: c.quant})
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			rng := rand.New(rand.NewPCG(1, 2))
			var params []*Param
			if c.full {
				if params, err = FullParams(m); err != nil {
					b.Fatal(err)
				}
			} else {
				// PEFT's usual setting and the reference's: r=16 on q and v, alpha 32, dropout 0.1.
				lora, err := AttachLoRA(m, be, LoRAConfig{Rank: 16, Alpha: 32, Dropout: 0.1, Targets: []string{"attn_q", "attn_v"}}, rng)
				if err != nil {
					b.Fatal(err)
				}
				defer lora.Close()
				params = lora.Params
			}
			s, err := NewStepper(m, be, params, LossConfig{}, 0, rng)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			s.Recompute = c.recompute
			if _, err := s.SetOptimizer(DefaultAdamW, 1, !c.hostOptim); err != nil {
				b.Fatal(err)
			}
			batch := fullBatch(b, path, m.Config)
			t := 0
			step := func() {
				t++
				if _, err := s.Accumulate(batch, 1); err != nil {
					b.Fatal(err)
				}
				if _, err := s.Step(t, 1e-5); err != nil {
					b.Fatal(err)
				}
			}
			// The first step builds and allocates the graph and touches the
			// compute buffer's pages for the first time; keep it out.
			step()
			var prof *Profile
			if os.Getenv("RAGTUNE_BENCH_PROFILE") == "1" {
				prof = NewProfile()
				s.Profile = prof
			}
			cpu0 := cpuTime()
			for b.Loop() {
				if prof != nil {
					prof.StartStep()
				}
				step()
				if prof != nil {
					prof.EndStep()
				}
			}
			if prof != nil {
				prof.Finish()
				// On stderr: go test cuts a benchmark's log to a few lines.
				fmt.Fprintf(os.Stderr, "%s\n", b.Name())
				prof.WriteTables(os.Stderr)
			}
			b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N), "cpu-s/step")
			sec := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(benchPairs/sec, "pairs/s")
			b.ReportMetric(s.LastFLOPs/sec/1e9, "GFLOP/s")
			b.ReportMetric(s.LastFLOPs/1e9, "GFLOP/step")
			b.ReportMetric(float64(s.ComputeBufferBytes())/(1<<20), "compute-MiB")
		})
	}
}

// BenchmarkMatMulPeak measures what ggml's CPU kernels reach on this
// machine with 2 threads: the f32 matrix product (the training step's
// forward and input-gradient work, ggml's tiled sgemm path), and OUT_PROD,
// the op autodiff uses for weight gradients (f32) and for input gradients
// through a frozen quantized weight (QLoRA), at the FFN shape of one MiniLM
// step (384 x 1536 weight, 8,192 tokens).
func BenchmarkMatMulPeak(b *testing.B) {
	const in, out, tokens = benchDim, benchFF, benchSeq * 2 * benchPairs
	const attnFLOPs, loraFLOPs = 2 * benchDim * benchSeq * tokens, 2 * benchDim * 16 * tokens
	cases := []struct {
		name   string
		build  func(ctx *bindings.Context) (bindings.Tensor, []bindings.Tensor)
		flops  float64
		native bool // run by ragtune's kernels (UseNativeKernels), as CPU training graphs do
	}{
		{"mul_mat_f32_2048cube", func(ctx *bindings.Context) (bindings.Tensor, []bindings.Tensor) {
			a := ctx.NewTensor(bindings.TypeF32, 2048, 2048)
			x := ctx.NewTensor(bindings.TypeF32, 2048, 2048)
			return ctx.MulMat(a, x), []bindings.Tensor{a, x}
		}, 2 * 2048 * 2048 * 2048, false},
		{"mul_mat_f32_ffn_up", func(ctx *bindings.Context) (bindings.Tensor, []bindings.Tensor) {
			w := ctx.NewTensor(bindings.TypeF32, in, out)
			x := ctx.NewTensor(bindings.TypeF32, in, tokens)
			return ctx.MulMat(w, x), []bindings.Tensor{w, x}
		}, 2 * in * out * tokens, false},
		{"out_prod_f32_weight_grad", func(ctx *bindings.Context) (bindings.Tensor, []bindings.Tensor) {
			x := ctx.NewTensor(bindings.TypeF32, in, tokens)
			g := ctx.NewTensor(bindings.TypeF32, out, tokens)
			return ctx.OutProd(x, g), []bindings.Tensor{x, g}
		}, 2 * in * out * tokens, false},
		{"out_prod_f32_input_grad", outProdInputGrad(bindings.TypeF32), 2 * in * out * tokens, false},
		{"out_prod_q8_0_input_grad", outProdInputGrad(bindings.TypeQ8_0), 2 * in * out * tokens, false},
		{"out_prod_q4_0_input_grad", outProdInputGrad(bindings.TypeQ4_0), 2 * in * out * tokens, false},
		// The same input gradients as matrix products over a transposed
		// copy of the frozen weight (what a rewrite of OUT_PROD would run).
		{"mul_mat_f32_input_grad_wT", mulMatInputGrad(bindings.TypeF32), 2 * in * out * tokens, false},
		{"mul_mat_q8_0_input_grad_wT", mulMatInputGrad(bindings.TypeQ8_0), 2 * in * out * tokens, false},
		{"mul_mat_q4_0_input_grad_wT", mulMatInputGrad(bindings.TypeQ4_0), 2 * in * out * tokens, false},
		// The weight gradient as a matrix product over tokens: both
		// operands transposed into contiguous copies first (copies timed).
		{"mul_mat_f32_weight_grad_cont", func(ctx *bindings.Context) (bindings.Tensor, []bindings.Tensor) {
			x := ctx.NewTensor(bindings.TypeF32, in, tokens)
			g := ctx.NewTensor(bindings.TypeF32, out, tokens)
			return ctx.MulMat(ctx.Cont(ctx.Transpose(x)), ctx.Cont(ctx.Transpose(g))), []bindings.Tensor{x, g}
		}, 2 * in * out * tokens, false},
		// Attention at the step's shape: 64 texts x 12 heads of 128x128
		// scores over 32-wide heads.
		{"mul_mat_f32_attn_scores", attnScores, attnFLOPs, false},
		{"mul_mat_f32_attn_scores_cont", func(ctx *bindings.Context) (bindings.Tensor, []bindings.Tensor) {
			k := ctx.NewTensor(bindings.TypeF32, benchDim/benchHeads, benchSeq, benchHeads, 2*benchPairs)
			q := ctx.NewTensor(bindings.TypeF32, benchDim/benchHeads, benchSeq, benchHeads, 2*benchPairs)
			return ctx.MulMat(k, q), []bindings.Tensor{k, q}
		}, attnFLOPs, false},
		{"mul_mat_f32_attn_values", attnValues, attnFLOPs, false},
		{"native_attn_scores", attnScores, attnFLOPs, true},
		{"native_attn_values", attnValues, attnFLOPs, true},
		{"mul_mat_f32_lora_down", loraDown, loraFLOPs, false},
		{"native_lora_down", loraDown, loraFLOPs, true},
		{"mul_mat_f32_lora_up", loraUp, loraFLOPs, false},
		{"native_lora_up", loraUp, loraFLOPs, true},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			be, err := bindings.NewCPUBackend(benchThreads())
			if err != nil {
				b.Fatal(err)
			}
			defer be.Close()
			ctx, err := bindings.NewContext(16, 16, false)
			if err != nil {
				b.Fatal(err)
			}
			defer ctx.Close()
			y, ins := c.build(ctx)
			g, err := ctx.NewGraph(16, false)
			if err == nil {
				err = g.Expand(y)
			}
			if err == nil && c.native {
				err = g.UseNativeKernels()
			}
			if err != nil {
				b.Fatal(err)
			}
			buf, err := be.AllocTensors(ctx)
			if err != nil {
				b.Fatal(err)
			}
			defer buf.Close()
			r := rand.New(rand.NewPCG(3, 4))
			for _, t := range ins {
				v := make([]float32, t.Nelements())
				for i := range v {
					v[i] = r.Float32()*2 - 1
				}
				if t.Type() == bindings.TypeF32 {
					err = t.SetF32(v)
				} else {
					var q []byte
					if q, err = bindings.Quantize(t.Type(), v, t.Ne()[1], t.Ne()[0]); err == nil {
						err = t.SetBytes(q)
					}
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			if err := be.Compute(g); err != nil { // warm: first touch of the output pages
				b.Fatal(err)
			}
			for b.Loop() {
				if err := be.Compute(g); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(c.flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// attnScores is QKᵀ at the step's shape, K read through the permuted view
// the model reads it by: 64 texts x 12 heads of 128x128 scores over
// 32-wide heads.
func attnScores(ctx *bindings.Context) (bindings.Tensor, []bindings.Tensor) {
	k := ctx.NewTensor(bindings.TypeF32, benchDim/benchHeads, benchHeads, benchSeq, 2*benchPairs)
	q := ctx.NewTensor(bindings.TypeF32, benchDim/benchHeads, benchSeq, benchHeads, 2*benchPairs)
	return ctx.MulMat(ctx.Permute(k, [4]int{0, 2, 1, 3}), q), []bindings.Tensor{k, q}
}

// loraDown and loraUp are a rank-16 adapter's two products over a step's tokens.
func loraDown(ctx *bindings.Context) (bindings.Tensor, []bindings.Tensor) {
	a := ctx.NewTensor(bindings.TypeF32, benchDim, 16)
	x := ctx.NewTensor(bindings.TypeF32, benchDim, benchSeq*2*benchPairs)
	return ctx.MulMat(a, x), []bindings.Tensor{a, x}
}

func loraUp(ctx *bindings.Context) (bindings.Tensor, []bindings.Tensor) {
	b := ctx.NewTensor(bindings.TypeF32, 16, benchDim)
	h := ctx.NewTensor(bindings.TypeF32, 16, benchSeq*2*benchPairs)
	return ctx.MulMat(b, h), []bindings.Tensor{b, h}
}

// attnValues is P·V at the step's shape.
func attnValues(ctx *bindings.Context) (bindings.Tensor, []bindings.Tensor) {
	vT := ctx.NewTensor(bindings.TypeF32, benchSeq, benchDim/benchHeads, benchHeads, 2*benchPairs)
	p := ctx.NewTensor(bindings.TypeF32, benchSeq, benchSeq, benchHeads, 2*benchPairs)
	return ctx.MulMat(vT, p), []bindings.Tensor{vT, p}
}

// outProdInputGrad is the backward of y = W·x with respect to x when W
// (in x out) is frozen: OUT_PROD(W, gradᵀ), as ggml's autodiff builds it.
func outProdInputGrad(typ bindings.Type) func(ctx *bindings.Context) (bindings.Tensor, []bindings.Tensor) {
	return func(ctx *bindings.Context) (bindings.Tensor, []bindings.Tensor) {
		w := ctx.NewTensor(typ, benchDim, benchFF)
		g := ctx.NewTensor(bindings.TypeF32, benchFF, benchSeq*2*benchPairs)
		return ctx.OutProd(w, ctx.Transpose(g)), []bindings.Tensor{w, g}
	}
}

// mulMatInputGrad is the same input gradient as outProdInputGrad, computed
// as Wᵀ·grad with Wᵀ (out x in) stored transposed ahead of time.
func mulMatInputGrad(typ bindings.Type) func(ctx *bindings.Context) (bindings.Tensor, []bindings.Tensor) {
	return func(ctx *bindings.Context) (bindings.Tensor, []bindings.Tensor) {
		wT := ctx.NewTensor(typ, benchFF, benchDim)
		g := ctx.NewTensor(bindings.TypeF32, benchFF, benchSeq*2*benchPairs)
		return ctx.MulMat(wT, g), []bindings.Tensor{wT, g}
	}
}
