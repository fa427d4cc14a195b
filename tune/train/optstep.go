package train

import (
	"errors"
	"math"
	"time"

	"github.com/ragtune/ragtune/bindings"
)

// The optimizer step: AdamW with global-norm clipping, either on the
// training device (deviceAdamW: gradients accumulate there, nothing but
// the norm comes back) or in Go over host copies (optim.go: each
// micro-batch's gradients are downloaded, the parameters uploaded after
// the step). The device runs it wherever ggml has the operations for it,
// the CPU included, where ggml's threads beat the Go loop (BENCHMARKS.md).

// SetOptimizer chooses AdamW's hyperparameters and the clipping norm (0 or
// less: no clipping) for Step, and where it runs: on the device when
// onDevice and the backend can, else on the host. Call it before the
// first Accumulate; it reports whether the optimizer runs on the device.
func (s *Stepper) SetOptimizer(o AdamW, clipNorm float64, onDevice bool) (bool, error) {
	if len(s.graphs)+len(s.segments)+len(s.heads) > 0 {
		return false, errors.New("set the optimizer before the first step: the step's graphs are built")
	}
	s.optim, s.clipNorm = o, clipNorm
	if s.dev != nil {
		s.dev.close()
		s.dev = nil
	}
	if !onDevice {
		return false, nil
	}
	d, err := newDeviceAdamW(s.be, s.params, o, clipNorm)
	if err != nil {
		return false, err
	}
	s.dev = d
	return d != nil, nil
}

// OnDevice reports whether the optimizer runs on the device.
func (s *Stepper) OnDevice() bool { return s.dev != nil }

// Step clips the gradients accumulated since the last step and applies
// AdamW step t (1-based) at base learning rate lr. It returns the global
// gradient norm before clipping. On the host, a norm that is not finite
// leaves the parameters as they were; on the device they are updated
// regardless, and the caller stops (the run diverged).
func (s *Stepper) Step(t int, lr float64) (float64, error) {
	if s.dev != nil {
		return s.deviceStep(t, lr)
	}
	t0 := time.Now()
	norm := ClipGrads(s.params, s.clipNorm)
	if math.IsNaN(norm) || math.IsInf(norm, 0) {
		return norm, nil
	}
	s.optim.Update(s.params, t, lr)
	s.Profile.since(phaseOptimizer, "clipping and AdamW (Go)", t0)
	t0 = time.Now()
	for _, p := range s.params {
		if err := p.upload(); err != nil {
			return 0, err
		}
	}
	s.Profile.since(phaseOptimizer, "parameter upload", t0)
	return norm, nil
}

func (s *Stepper) deviceStep(t int, lr float64) (float64, error) {
	d := s.dev
	t0 := time.Now()
	if err := d.setHyperparameters(t, lr); err != nil {
		return 0, err
	}
	if err := s.alloc.Alloc(d.graph); err != nil {
		return 0, err
	}
	s.Profile.since(phaseOptimizer, "AdamW set-up", t0)
	if err := s.Profile.compute(s.be, d.graph); err != nil {
		return 0, err
	}
	t0 = time.Now()
	norm := float64(d.norm.F32()[0])
	d.accBuf.Clear()
	s.Profile.since(phaseOptimizer, "norm download, accumulator reset", t0)
	return norm, nil
}

// SyncHost brings every Param's host copies (Data, M, V) up to date with
// the device, for a checkpoint; a no-op on the host path.
func (s *Stepper) SyncHost() {
	if s.dev != nil {
		s.dev.download(true)
	}
}

// SyncValues brings every Param's host values (Data) up to date with the
// device, for an export, which needs no moments: downloading them would
// make two more host copies of the trainable tensors at the end of the run.
func (s *Stepper) SyncValues() {
	if s.dev != nil {
		s.dev.download(false)
	}
}

// LoadState writes every Param's host copies (Data, and M, V on the
// device path) into backend memory: a run resumed from a checkpoint.
func (s *Stepper) LoadState() error {
	if s.dev != nil {
		return s.dev.upload()
	}
	for _, p := range s.params {
		if err := p.upload(); err != nil {
			return err
		}
	}
	return nil
}

// gradOutput marks a parameter's gradient node to be kept for download on
// the host path; the device path consumes it inside the graph, so its
// memory may be reused.
func (s *Stepper) gradOutput(g bindings.Tensor) bindings.Tensor {
	if s.dev == nil {
		g.SetOutput()
	}
	return g
}

// accumulateOnDevice appends the device's gradient accumulation to a
// backward graph, for the parameters idx whose gradient nodes are grads.
func (s *Stepper) accumulateOnDevice(ctx *bindings.Context, gr *bindings.Graph, idx []int, grads []bindings.Tensor) error {
	if s.dev == nil {
		return nil
	}
	return s.dev.accumulate(ctx, gr, idx, grads)
}

// allParams lists the indices of every parameter.
func (s *Stepper) allParams() []int {
	idx := make([]int, len(s.params))
	for i := range idx {
		idx[i] = i
	}
	return idx
}
