package train

import (
	"fmt"
	"math"
)

// AdamW holds the optimizer's hyperparameters (decoupled weight decay, as
// in PyTorch's AdamW and ggml's opt_step_adamw).
type AdamW struct {
	Beta1, Beta2, Eps, WeightDecay float64
}

// DefaultAdamW are PyTorch's (and sentence-transformers') defaults.
var DefaultAdamW = AdamW{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01}

// Update applies one AdamW step number t (1-based) with learning rate lr to
// every parameter from its accumulated Grad, then clears Grad. A parameter
// with an LRScale (its group's factor, LoRA+) steps at lr·LRScale, its
// decoupled weight decay included, as in PyTorch's parameter groups.
func (o AdamW) Update(params []*Param, t int, baseLR float64) {
	c1 := 1 / (1 - math.Pow(o.Beta1, float64(t)))
	c2 := 1 / (1 - math.Pow(o.Beta2, float64(t)))
	b1, b2 := float32(o.Beta1), float32(o.Beta2)
	for _, p := range params {
		lr := baseLR
		if p.LRScale > 0 {
			lr *= p.LRScale
		}
		decay := float32(1)
		if p.Decay {
			decay = float32(1 - lr*o.WeightDecay)
		}
		p.ensureMoments()
		for i, g := range p.Grad {
			m := b1*p.M[i] + (1-b1)*g
			v := b2*p.V[i] + (1-b2)*g*g
			p.M[i], p.V[i] = m, v
			step := lr * (float64(m) * c1) / (math.Sqrt(float64(v)*c2) + o.Eps)
			p.Data[i] = p.Data[i]*decay - float32(step)
			p.Grad[i] = 0
		}
	}
}

// GradNorm is the global L2 norm of the accumulated gradients.
func GradNorm(params []*Param) float64 {
	var s float64
	for _, p := range params {
		for _, g := range p.Grad {
			s += float64(g) * float64(g)
		}
	}
	return math.Sqrt(s)
}

// ClipGrads scales all gradients so their global norm is at most maxNorm
// (PyTorch's clip_grad_norm_: by min(1, maxNorm/(norm+1e-6))); it returns
// the norm before clipping.
func ClipGrads(params []*Param, maxNorm float64) float64 {
	n := GradNorm(params)
	if f := float32(maxNorm / (n + 1e-6)); maxNorm > 0 && f < 1 {
		for _, p := range params {
			for i := range p.Grad {
				p.Grad[i] *= f
			}
		}
	}
	return n
}

// Schedule names.
const (
	SchedLinear   = "linear"
	SchedCosine   = "cosine"
	SchedConstant = "constant"
)

// LearningRate is the rate at optimizer step t (0-based) of total steps:
// linear warmup over warmup steps, then linear decay to 0, half-cosine
// decay to 0, or constant (transformers' get_*_schedule_with_warmup).
func LearningRate(sched string, base float64, t, total, warmup int) (float64, error) {
	if t < warmup {
		return base * float64(t+1) / float64(warmup+1), nil
	}
	rest := max(total-warmup, 1)
	progress := float64(t-warmup) / float64(rest)
	switch sched {
	case SchedConstant:
		return base, nil
	case SchedLinear, "":
		return base * max(0, 1-progress), nil
	case SchedCosine:
		return base * 0.5 * (1 + math.Cos(math.Pi*progress)), nil
	}
	return 0, fmt.Errorf("unknown scheduler %q (want linear, cosine or constant)", sched)
}
