package train

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ragtune/ragtune/bindings"
	"github.com/ragtune/ragtune/bindings/devicetest"
	"github.com/ragtune/ragtune/bindings/gguf"
	"github.com/ragtune/ragtune/retrieval/dataset"
	"github.com/ragtune/ragtune/tune/model"
)

// The tests below run on the test device ($RAGTUNE_DEVICE, default vulkan)
// and skip without it (fail in CI, see devicetest). Their data is made
// here, not read from the shared data set: scripts/gpu-check runs them on
// a lent machine that has only the test binaries.

// synthPairs makes n seeded (query, document) pairs that share a topic.
func synthPairs(n int) (queries, docs []string) {
	r := rand.New(rand.NewPCG(11, 12))
	words := func(k int) string {
		w := make([]string, k)
		for i := range w {
			w[i] = fmt.Sprintf("w%d", r.IntN(300))
		}
		return strings.Join(w, " ")
	}
	for range n {
		topic := words(3)
		queries = append(queries, "how do I use "+topic)
		docs = append(docs, topic+" is a package: "+words(8+r.IntN(24)))
	}
	return queries, docs
}

// synthDataset is a train split of n synthetic pairs.
func synthDataset(n int) *dataset.Dataset {
	queries, docs := synthPairs(n)
	d := &dataset.Dataset{Qrels: map[string][]dataset.Qrel{}}
	for i := range queries {
		qid, did := fmt.Sprintf("q%d", i), fmt.Sprintf("d%d", i)
		d.Queries = append(d.Queries, dataset.Query{ID: qid, Text: queries[i]})
		d.Corpus = append(d.Corpus, dataset.Doc{ID: did, Text: docs[i]})
		d.Qrels["train"] = append(d.Qrels["train"], dataset.Qrel{QueryID: qid, DocID: did, Score: 1})
	}
	return d
}

// TestDeviceLoRAGradients checks a LoRA step on the device against finite
// differences of the device's own loss, on an f32 and an f16 base. On this
// synthetic data the gradients are small (|g| about 1e-3), so single
// elements move the f32 loss less than its rounding: the check is
// directional (checkDirectional, step 0.3; an element-wise check gave 7e-2
// to 0.35 even on the CPU, whatever the step). Tolerances, of |g|: f32
// 2e-2 (measured: lavapipe 6.8e-3, the CPU as the device 2.9e-3); f16 5e-2
// (lavapipe 3.5e-2, CPU 6.9e-3: the device multiplies the f16 weights with
// activations rounded to f16, so the loss being differenced carries f16
// rounding).
func TestDeviceLoRAGradients(t *testing.T) {
	dev := devicetest.Device(t)
	queries, docs := synthPairs(200)
	for _, c := range []struct {
		typ gguf.TensorType
		tol float64
	}{{gguf.F32, 2e-2}, {gguf.F16, 5e-2}} {
		t.Run(bindings.Type(c.typ).String(), func(t *testing.T) {
			path := writeTiny(t, "bert", c.typ, append(queries, docs...))
			f := newFixtureOn(t, dev.Spec(), path, model.LoadOptions{}, LossConfig{}, loraParams(0, "attn_q"), queries, docs)
			defer f.close()
			checkDirectional(t, f, f.step.params, 0.3, c.tol)
			t.Log(f.be.Usage().Summary())
		})
	}
}

// TestDeviceGradientsMatchCPU compares the gradients of one step on the
// device with the CPU's: LoRA on f32 bases; LoRA on an f16 base, which the
// device keeps f16 (the CPU widens it to f32); and QLoRA, whose frozen base
// stays quantized in device memory. The device's backward products
// through a frozen f16 or quantized base read transposed copies made by
// ggml's ops, in bf16 where the device multiplies bf16
// (Backend.WeightGradType); the CPU's, f32 copies by ragtune's transpose
// kernel.
// Tolerances (relative L2 per parameter): f32 1e-2, the finite-difference
// checks' own (measured on lavapipe: bert 5.7e-3, llama 1.7e-3, loss
// 1e-3: Vulkan multiplies f32 with f16 operands, and the backward
// compounds it over the layers); quantized 8e-2 (lavapipe: q8_0 bert
// 5.2e-2, q4_0 llama 2.1e-2), because both backends quantize the
// activations for quantized products, each in its own way, as
// TestQuantizedBaseGradients allows against the f32 twin; f16 1e-2
// (lavapipe: bf16 copies, llama 4.5e-3).
func TestDeviceGradientsMatchCPU(t *testing.T) {
	dev := devicetest.Device(t)
	queries, docs := synthPairs(200)
	texts := append(queries, docs...)
	for _, c := range []struct {
		name string
		arch string
		typ  gguf.TensorType
		tol  float64
	}{
		{"lora-bert-f32", "bert", gguf.F32, 1e-2},
		{"lora-llama-f32", "llama", gguf.F32, 1e-2},
		{"lora-llama-f16", "llama", gguf.F16, 1e-2},
		{"lora-llama-bf16", "llama", gguf.BF16, 1e-2},
		{"qlora-bert-q8_0", "bert", gguf.Q8_0, 8e-2},
		{"qlora-llama-q4_0", "llama", gguf.Q4_0, 8e-2},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := writeTiny(t, c.arch, c.typ, texts)
			targets := []string{"attn_q", "attn_v", "ffn_down"}
			grads := func(device string) ([][]float32, float64, *fixture) {
				// As training loads it: widened to f32 on the CPU only.
				opts := model.LoadOptions{WidenF16: device == "cpu"}
				f := newFixtureOn(t, device, path, opts, LossConfig{}, loraParams(0, targets...), queries, docs)
				loss, err := f.step.Accumulate(f.batch, 1)
				if err != nil {
					t.Fatal(err)
				}
				var out [][]float32
				for _, p := range f.step.params {
					out = append(out, append([]float32(nil), p.Grad...))
				}
				return out, loss, f
			}
			want, wantLoss, cpu := grads("cpu")
			defer cpu.close()
			got, gotLoss, f := grads(dev.Spec())
			defer f.close()
			if w := f.m.Linears()[0].W; w.Type() != bindings.Type(c.typ) {
				t.Errorf("%s holds %s on %s, want the file's %s", w.Name(), w.Type(), dev.Name(), c.typ)
			}
			t.Logf("loss: cpu %.6f, %s %.6f; %s", wantLoss, dev.Name(), gotLoss, f.be.Usage().Summary())
			if math.Abs(gotLoss-wantLoss) > c.tol*math.Abs(wantLoss) {
				t.Errorf("loss %.6f on %s, %.6f on the CPU", gotLoss, dev.Name(), wantLoss)
			}
			worst := 0.0
			for i, p := range f.step.params {
				var num, den float64
				for j := range want[i] {
					d := float64(got[i][j] - want[i][j])
					num += d * d
					den += float64(want[i][j]) * float64(want[i][j])
				}
				rel := math.Sqrt(num / den)
				worst = max(worst, rel)
				if !(rel <= c.tol) {
					t.Errorf("%s: relative L2 difference %.3g from the CPU, want <= %g", p.Name, rel, c.tol)
				}
			}
			t.Logf("worst relative L2 gradient difference %.2e", worst)
			if fb := f.be.Fallbacks(); fb["CUSTOM"] > 0 {
				t.Errorf("ragtune's CPU transpose kernel ran in a device graph: %v", fb)
			}
		})
	}
}

// TestDeviceOptimizerMatchesHostOnDevice is TestDeviceOptimizerMatchesHost
// on the device (the whole-graph step: segmented ones are refused on
// Vulkan, bindings.TrainingSupported): the host optimizer and the device's
// each over the device's gradients, LoRA+ with DoRA and full fine-tuning.
func TestDeviceOptimizerMatchesHostOnDevice(t *testing.T) {
	dev := devicetest.Device(t)
	queries, docs := synthPairs(200)
	path := writeTiny(t, "bert", gguf.F32, append(queries, docs...))
	for _, c := range []struct {
		name   string
		params func(t *testing.T) func(m *model.Model, be *bindings.Backend) []*Param
		clip   float64
	}{
		{"lora/clipped", loraPlusDoRA, 1e-3},
		{"lora/unclipped", loraPlusDoRA, 1e6},
		{"full/clipped", fullTraining, 1e-3},
	} {
		t.Run(c.name, func(t *testing.T) {
			worst := compareOptimizers(t, dev.Spec(), path, queries, docs, c.params(t), "whole", c.clip)
			t.Logf("worst relative difference %.2e", worst)
		})
	}
}

// TestDeviceTrainingTracksCPU runs a few optimizer steps of LoRA in one
// graph per step, QLoRA with its default (recomputation where the device
// allows it: Backend.TrainingSupported), and LoRA with recomputation and
// with grad-cache (skipped where the device refuses segmented graphs) on
// the device and on the CPU from the same seed:
// the optimizer is AdamW on each backend (checked against the host's by
// TestDeviceOptimizerMatchesHostOnDevice), so the losses must agree step
// by step. Tolerance: 1% relative
// (AdamW's first steps move each parameter by about the learning rate
// whatever the gradient's size, so rounding differences of tiny gradient
// elements grow a little).
func TestDeviceTrainingTracksCPU(t *testing.T) {
	dev := devicetest.Device(t)
	d := synthDataset(32)
	qs, ds := synthPairs(300)
	paths := map[gguf.TensorType]string{}
	for _, typ := range []gguf.TensorType{gguf.F32, gguf.F16, gguf.BF16} {
		paths[typ] = writeTiny(t, "bert", typ, append(qs, ds...))
	}
	for _, c := range []struct {
		name, method, recompute string
		gradCache               int
		base                    gguf.TensorType
	}{
		{"lora", MethodLoRA, "off", 0, gguf.F32},
		{"qlora", MethodQLoRA, "auto", 0, gguf.F32},
		{"lora/recompute", MethodLoRA, "on", 0, gguf.F32},
		{"lora/grad-cache", MethodLoRA, "off", 4, gguf.F32},
		{"lora/f16", MethodLoRA, "off", 0, gguf.F16},
		{"lora/bf16", MethodLoRA, "off", 0, gguf.BF16},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := paths[c.base]
			segmented := c.recompute == "on" || c.gradCache > 0
			losses := func(device string) ([]float64, *Result) {
				cfg := smallConfig()
				cfg.Method, cfg.Device, cfg.Epochs, cfg.NoVal = c.method, device, 1, true
				cfg.Recompute, cfg.GradCache = c.recompute, c.gradCache
				var ls []float64
				res, err := Run(context.Background(), path, d, t.TempDir(), cfg, Hooks{Step: func(p Progress) { ls = append(ls, p.Loss) }})
				if err != nil && segmented && device != "cpu" && strings.Contains(err.Error(), "refused") {
					t.Skip(err)
				}
				if err != nil {
					t.Fatal(err)
				}
				return ls, res
			}
			got, res := losses(dev.Spec())
			want, cpu := losses("cpu")
			t.Logf("precision: cpu %q, %s %q", cpu.Precision, dev.Name(), res.Precision)
			if c.base != gguf.F32 {
				// The device trains on the f16/bf16 base as it is; the CPU widens it.
				be, err := dev.NewBackend(1)
				if err != nil {
					t.Fatal(err)
				}
				wantPrec := fmt.Sprintf("%s base, %s backward", bindings.Type(c.base), be.WeightGradType())
				be.Close()
				if res.Precision != wantPrec || cpu.Precision != "f32" {
					t.Errorf("precision: %s %q, cpu %q; want %q and \"f32\"", dev.Name(), res.Precision, cpu.Precision, wantPrec)
				}
			}
			if len(got) != len(want) || len(got) == 0 {
				t.Fatalf("%d steps on %s, %d on the CPU", len(got), dev.Name(), len(want))
			}
			worst := 0.0
			for i := range want {
				worst = max(worst, math.Abs(got[i]-want[i])/math.Abs(want[i]))
			}
			t.Logf("losses cpu %.5f, %s %.5f: worst relative difference %.2e; %s", want, dev.Name(), got, worst, res.Usage.Summary())
			if !(worst <= 1e-2) {
				t.Errorf("losses drift from the CPU's by %.3g (relative), want <= 1e-2", worst)
			}
			if res.Device != dev.Name() || res.PeakDeviceBytes <= 0 || res.Optimizer != "device" {
				t.Errorf("result: device %q, peak %d bytes, optimizer on the %s", res.Device, res.PeakDeviceBytes, res.Optimizer)
			}
		})
	}
}
