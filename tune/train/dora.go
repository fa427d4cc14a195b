package train

import (
	"fmt"
	"math"
	"strings"

	"github.com/ragtune/ragtune/bindings"
	"github.com/ragtune/ragtune/bindings/gguf"
	"github.com/ragtune/ragtune/tune/adapter"
	"github.com/ragtune/ragtune/tune/model"
)

// magnitudeSuffix names a DoRA magnitude after its base weight.
const magnitudeSuffix = ".dora_m"

// newMagnitude makes the DoRA magnitude of layer l: a trainable [out]
// vector initialised to the norms of W's rows (one per output unit), so
// training starts from the base model exactly.
func newMagnitude(ctx *bindings.Context, l model.Linear) (*Param, error) {
	if l.W.Type() != bindings.TypeF32 {
		return nil, fmt.Errorf("DoRA needs f32 base weights; %s is %s (DoRA does not combine with qlora)", l.Name, l.W.Type())
	}
	in, out := l.W.Ne()[0], l.W.Ne()[1]
	w := l.W.F32()
	mag := make([]float32, out)
	for o := range mag {
		var ss float64
		for _, x := range w[o*in : (o+1)*in] {
			ss += float64(x) * float64(x)
		}
		mag[o] = float32(math.Sqrt(ss))
	}
	t := ctx.NewTensor(bindings.TypeF32, out).SetName(l.Name + magnitudeSuffix)
	t.SetParam()
	// No weight decay: it would pull the magnitudes, the weights' norms,
	// towards zero.
	return newParam(t.Name(), t, mag, false), nil
}

// doraWeights merges every DoRA layer of the run into its base weight
// (adapter.MergeDoRA), by base tensor name.
func (r *run) doraWeights(f *gguf.File) (map[string][]float32, error) {
	mags := map[string]*Param{}
	for _, p := range r.params {
		if base, ok := strings.CutSuffix(p.Name, magnitudeSuffix); ok {
			mags[base] = p
		}
	}
	scale, err := r.lora.Config.Scale()
	if err != nil {
		return nil, err
	}
	out := map[string][]float32{}
	for i := 0; i+1 < len(r.params); i += 2 {
		a, b := r.params[i], r.params[i+1]
		base, ok := strings.CutSuffix(a.Name, ".lora_a")
		if !ok {
			break // the magnitudes follow the pairs
		}
		mag, ok := mags[base]
		if !ok {
			return nil, fmt.Errorf("DoRA layer %s has no magnitude", base)
		}
		W, err := f.Float32s(base)
		if err != nil {
			return nil, err
		}
		in, rank, n := a.T.Ne()[0], a.T.Ne()[1], b.T.Ne()[1]
		adapter.MergeDoRA(W, a.Data, b.Data, mag.Data, scale, in, n, rank)
		out[base] = W
	}
	return out, nil
}
