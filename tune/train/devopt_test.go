package train

import (
	"math"
	"testing"

	"github.com/ragtune/ragtune/bindings"
	"github.com/ragtune/ragtune/bindings/gguf"
	"github.com/ragtune/ragtune/tune/model"
)

// optimizerTol bounds the device optimizer's difference from the host's,
// per tensor: max |device − host| over max |host|, for the parameters and
// both moments, and the relative difference of the gradient norm. The
// formulas are the same; ggml computes the step, the norm and the clipping
// factor in float32 where Go uses float64.
const optimizerTol = 1e-6

// TestDeviceOptimizerMatchesHost trains the same LoRA+ DoRA adapter (weight
// decay on A and B, none on the magnitudes; B at 4x the rate) three steps
// of two micro-batches each, with AdamW in Go and on the CPU backend
// (deviceAdamW), clipping active and inactive, for each way of computing
// the step (whole graph, recomputation, GradCache). After each step the
// host run takes the device run's state, so every step compares the two
// optimizers on the same gradients (otherwise a rounding difference in one
// step changes the next step's gradients, which Adam's normalisation
// amplifies for the smallest ones: 1.7e-6 after three steps).
func TestDeviceOptimizerMatchesHost(t *testing.T) {
	queries, docs := miniPairs(t, 200)
	path := writeTiny(t, "bert", gguf.F32, append(queries, docs...))
	for _, mode := range []string{"whole", "recompute", "grad-cache"} {
		for _, clip := range []float64{1e-3, 1e6} {
			name := mode + map[bool]string{true: "/clipped", false: "/unclipped"}[clip < 1]
			t.Run(name, func(t *testing.T) {
				worst := compareOptimizers(t, "", path, queries, docs, loraPlusDoRA(t), mode, clip)
				t.Logf("worst relative difference %.2e", worst)
			})
		}
	}
	// Full fine-tuning: the parameters are the model's own weights, with
	// no weight decay on biases and norms.
	t.Run("full/clipped", func(t *testing.T) {
		worst := compareOptimizers(t, "", path, queries, docs, fullTraining(t), "whole", 1e-3)
		t.Logf("worst relative difference %.2e", worst)
	})
}

// loraPlusDoRA makes a DoRA adapter on q and ffn_down with LoRA+ (B at 4x).
func loraPlusDoRA(t *testing.T) func(m *model.Model, be *bindings.Backend) []*Param {
	return variantParams(t, LoRAConfig{LRBRatio: 4, DoRA: true, Targets: []string{"attn_q", "ffn_down"}}, nil)
}

// fullTraining makes every weight of the model trainable.
func fullTraining(t *testing.T) func(m *model.Model, be *bindings.Backend) []*Param {
	return func(m *model.Model, be *bindings.Backend) []*Param {
		params, err := FullParams(m)
		if err != nil {
			t.Fatal(err)
		}
		return params
	}
}

// compareOptimizers runs the comparison on a device ("" is the CPU): the
// host optimizer and the device one, each over gradients computed on that
// device, and returns the worst relative difference seen.
func compareOptimizers(t *testing.T, device, path string, queries, docs []string, makeParams func(m *model.Model, be *bindings.Backend) []*Param,
	mode string, clip float64) float64 {
	opt := DefaultAdamW
	opt.WeightDecay = 0.1 // large enough to show in three steps
	var steppers [2]*Stepper
	var full Batch
	for i, onDevice := range []bool{false, true} {
		f := newFixtureOn(t, device, path, model.LoadOptions{}, LossConfig{}, makeParams, queries, docs)
		t.Cleanup(f.close)
		f.step.Recompute = mode == "recompute"
		if mode == "grad-cache" {
			f.step.GradCache = 2
		}
		got, err := f.step.SetOptimizer(opt, clip, onDevice)
		if err != nil {
			t.Fatal(err)
		}
		if got != onDevice {
			t.Fatalf("optimizer on the device: %v, want %v (%s)", got, onDevice, f.be.Name())
		}
		steppers[i], full = f.step, f.batch
		if i == 1 {
			defer func() { t.Log(f.be.Usage().Summary()) }()
		}
	}
	host, dev := steppers[0], steppers[1]
	// A second, smaller micro-batch: another graph shape.
	part := Batch{Queries: full.Queries[:3], Docs: full.Docs[:3]}
	worst := 0.0
	for step := 1; step <= 3; step++ {
		var norms [2]float64
		for i, s := range steppers {
			for _, b := range []Batch{full, part} {
				if _, err := s.Accumulate(b, 0.5); err != nil {
					t.Fatal(err)
				}
			}
			n, err := s.Step(step, 1e-2)
			if err != nil {
				t.Fatal(err)
			}
			norms[i] = n
		}
		if clip < 1 && norms[0] <= clip {
			t.Fatalf("norm %g: clipping at %g is not active", norms[0], clip)
		}
		rel := math.Abs(norms[1]-norms[0]) / norms[0]
		worst = max(worst, rel)
		if !(rel <= optimizerTol) {
			t.Errorf("step %d: gradient norm %.9g on the device, %.9g on the host", step, norms[1], norms[0])
		}
		dev.SyncHost()
		for i, p := range dev.params {
			q := host.params[i]
			for _, pair := range []struct {
				what      string
				got, want []float32
			}{{"values", p.Data, q.Data}, {"m", p.M, q.M}, {"v", p.V, q.V}} {
				rel := maxRelDiff(pair.got, pair.want)
				worst = max(worst, rel)
				if !(rel <= optimizerTol) {
					t.Errorf("step %d: %s %s differ by %.3g (max |Δ| / max |host|), want <= %g", step, p.Name, pair.what, rel, optimizerTol)
				}
				copy(pair.want, pair.got)
			}
		}
		if err := host.LoadState(); err != nil {
			t.Fatal(err)
		}
	}
	return worst
}

// maxRelDiff is max |a − b| over max |b|.
func maxRelDiff(a, b []float32) float64 {
	var diff, scale float64
	for i := range b {
		diff = max(diff, math.Abs(float64(a[i])-float64(b[i])))
		scale = max(scale, math.Abs(float64(b[i])))
	}
	if scale == 0 {
		return diff
	}
	return diff / scale
}
