package train

import (
	"fmt"
	"math"
	"slices"

	"github.com/ragtune/ragtune/bindings"
)

// deviceAdamW is the optimizer on the training backend: for every trainable
// tensor, an accumulator of the micro-batches' weighted gradients and
// AdamW's moments, in buffers of the device beside the parameters. The
// step graphs add weight·gradient to the accumulators (see accumulate),
// and one graph clips by the global norm and runs ggml's OPT_STEP_ADAMW
// over every tensor (see step), so no gradient or parameter crosses to the
// host during training; only the norm does, one float per step. Host
// copies (Param.Data, M, V) are brought up to date when a checkpoint or an
// export needs them (download) and written back on resume (upload).
//
// ggml's kernel computes AdamW as optim.go does: m and v in float32, then
// w·(1−α·wd) − α·(m·β1h)/(√(v·β2h)+ε) with α the group's rate and
// β1h = 1/(1−β1ᵗ), β2h = 1/(1−β2ᵗ); only the last line is float32 there
// where Go computes the step in float64.
type deviceAdamW struct {
	be       *bindings.Backend
	params   []*Param
	opt      AdamW
	clipNorm float64

	accCtx, stateCtx *bindings.Context
	accBuf, stateBuf *bindings.Buffer // accumulators alone, so one clear resets them
	acc, m, v        []bindings.Tensor
	// weightRows holds, per row length of the parameters, a row filled with
	// the micro-batch's weight: ggml multiplies by a broadcast row at
	// vector speed, by a broadcast scalar one element per call.
	weightRows map[int]bindings.Tensor
	weightNow  float32
	maxNorm    bindings.Tensor // ClipNorm, when clipping
	groups     []adamwGroup

	graphCtx *bindings.Context
	graph    *bindings.Graph
	norm     bindings.Tensor
}

// adamwGroup is a parameter group: tensors that share a learning-rate
// scale and whether weight decay applies, and so OPT_STEP_ADAMW's seven
// hyperparameters (one tensor each: a device may need its operands
// aligned, which views into one tensor are not).
type adamwGroup struct {
	lrScale float64
	decay   bool
	hparams bindings.Tensor
}

// Names of the optimizer's nodes, which the profile books to its phase.
const (
	optimNodePrefix = "optim/"
	partAccumulate  = "gradient accumulation"
	partClip        = "global norm and clipping"
	partAdamW       = "AdamW"
)

func optimName(part string) string { return optimNodePrefix + part }

// newDeviceAdamW allocates the optimizer's state on be for params and
// builds its step graph. It returns nil, without error, when the device
// cannot run it: an operation it lacks, or a parameter outside its memory
// (the update is in place).
func newDeviceAdamW(be *bindings.Backend, params []*Param, opt AdamW, clipNorm float64) (*deviceAdamW, error) {
	for _, p := range params {
		if !be.Holds(p.T) || p.T.Type() != bindings.TypeF32 {
			return nil, nil
		}
	}
	d := &deviceAdamW{be: be, params: params, opt: opt, clipNorm: clipNorm, weightNow: float32(math.NaN())}
	if err := d.allocate(); err != nil {
		d.close()
		return nil, err
	}
	if err := d.build(); err != nil {
		d.close()
		return nil, err
	}
	if !d.supported() {
		d.close()
		return nil, nil
	}
	return d, nil
}

// allocate makes the accumulators (zeroed), the moments (zeroed), the
// groups' hyperparameters and the constants.
func (d *deviceAdamW) allocate() error {
	var err error
	if d.accCtx, err = bindings.NewContext(len(d.params)+1, 0, false); err != nil {
		return err
	}
	if d.stateCtx, err = bindings.NewContext(3*len(d.params)+8, 0, false); err != nil {
		return err
	}
	for _, p := range d.params {
		ne := p.T.Ne()
		d.acc = append(d.acc, d.accCtx.NewTensor(bindings.TypeF32, ne[:]...).SetName(optimName("acc ")+p.Name))
		d.m = append(d.m, d.stateCtx.NewTensor(bindings.TypeF32, ne[:]...).SetName(optimName("m ")+p.Name))
		d.v = append(d.v, d.stateCtx.NewTensor(bindings.TypeF32, ne[:]...).SetName(optimName("v ")+p.Name))
	}
	for _, p := range d.params {
		if d.groupOf(p) < 0 {
			d.groups = append(d.groups, adamwGroup{lrScale: p.LRScale, decay: p.Decay,
				hparams: d.stateCtx.NewTensor(bindings.TypeF32, 7).SetName(optimName("hparams"))})
		}
	}
	d.weightRows = map[int]bindings.Tensor{}
	for _, p := range d.params {
		if n := p.T.Ne()[0]; d.weightRows[n].IsNil() {
			d.weightRows[n] = d.stateCtx.NewTensor(bindings.TypeF32, n).SetName(optimName("weight"))
		}
	}
	if d.clipNorm > 0 {
		d.maxNorm = d.stateCtx.NewTensor(bindings.TypeF32, 1).SetName(optimName("max_norm"))
	}
	if d.accBuf, err = d.be.AllocTensors(d.accCtx); err != nil {
		return err
	}
	if d.stateBuf, err = d.be.AllocTensors(d.stateCtx); err != nil {
		return err
	}
	d.accBuf.Clear()
	d.stateBuf.Clear()
	if d.clipNorm > 0 {
		return d.maxNorm.SetF32([]float32{float32(d.clipNorm)})
	}
	return nil
}

// groupOf is the index of p's parameter group, or -1 before it has one.
func (d *deviceAdamW) groupOf(p *Param) int {
	for i, g := range d.groups {
		if g.lrScale == p.LRScale && g.decay == p.Decay {
			return i
		}
	}
	return -1
}

// build makes the step graph: the global norm of the accumulated
// gradients, PyTorch's clip_grad_norm_ factor min(1, max/(norm+1e-6))
// applied to them in place, and AdamW on every tensor.
func (d *deviceAdamW) build() error {
	// Room for Expand's count, which includes the norm's nodes again.
	size := 16*len(d.params) + 64
	var err error
	if d.graphCtx, err = bindings.NewContext(2*size, size, false); err != nil {
		return err
	}
	ctx := d.graphCtx
	var sumSq bindings.Tensor
	for _, a := range d.acc {
		s := ctx.Sum(ctx.Sqr(a).SetName(optimName(partClip))).SetName(optimName(partClip))
		if sumSq.IsNil() {
			sumSq = s
		} else {
			sumSq = ctx.Add(sumSq, s)
		}
		sumSq.SetName(optimName(partClip))
	}
	d.norm = ctx.Sqrt(sumSq).SetName(optimName(partClip)).SetOutput()
	var factor bindings.Tensor
	if d.clipNorm > 0 {
		ratio := ctx.Div(d.maxNorm, ctx.ScaleBias(d.norm, 1, 1e-6).SetName(optimName(partClip))).SetName(optimName(partClip))
		factor = ctx.Clamp(ratio, 0, 1).SetName(optimName(partClip))
	}
	if d.graph, err = ctx.NewGraph(size, false); err != nil {
		return err
	}
	if err := d.graph.Expand(d.norm); err != nil {
		return err
	}
	factorRows := map[int]bindings.Tensor{}
	for i, p := range d.params {
		grad := d.acc[i]
		if !factor.IsNil() {
			n := p.T.Ne()[0]
			if factorRows[n].IsNil() {
				factorRows[n] = ctx.Repeat(factor, d.weightRows[n]).SetName(optimName(partClip))
			}
			grad = ctx.MulInPlace(grad, factorRows[n]).SetName(optimName(partClip))
		}
		hp := d.groups[d.groupOf(p)].hparams
		step := ctx.OptStepAdamW(p.T, grad, d.m[i], d.v[i], hp).SetName(optimName(partAdamW))
		if err := d.graph.Expand(step); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// supported reports whether the device runs every node of the step graph
// and of the accumulation.
func (d *deviceAdamW) supported() bool {
	for i := 0; i < d.graph.NumNodes(); i++ {
		if !d.be.SupportsOp(d.graph.Node(i)) {
			return false
		}
	}
	ctx, err := bindings.NewContext(8, 0, false)
	if err != nil {
		return false
	}
	defer ctx.Close()
	// The accumulation's nodes, over the largest accumulator as a
	// stand-in for its gradient (same shape and type).
	largest := d.acc[0]
	for _, a := range d.acc {
		if a.Nelements() > largest.Nelements() {
			largest = a
		}
	}
	scaled := ctx.Mul(largest, d.weightRows[largest.Ne()[0]])
	add := ctx.AddInPlace(largest, scaled)
	return ctx.Err() == nil && d.be.SupportsOp(scaled) && d.be.SupportsOp(add)
}

// accumulate appends acc += weight·grad to a backward graph for the
// parameters it differentiates (indices into params, with their gradient
// nodes), so the micro-batch's gradients never leave the device.
func (d *deviceAdamW) accumulate(ctx *bindings.Context, gr *bindings.Graph, idx []int, grads []bindings.Tensor) error {
	for k, i := range idx {
		scaled := ctx.Mul(grads[k], d.weightRows[grads[k].Ne()[0]]).SetName(optimName(partAccumulate))
		if err := gr.Expand(ctx.AddInPlace(d.acc[i], scaled).SetName(optimName(partAccumulate))); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// setWeight sets the weight of the micro-batch about to be accumulated.
func (d *deviceAdamW) setWeight(w float32) error {
	if w == d.weightNow {
		return nil
	}
	for n, row := range d.weightRows {
		if err := row.SetF32(slices.Repeat([]float32{w}, n)); err != nil {
			return err
		}
	}
	d.weightNow = w
	return nil
}

// setHyperparameters writes each group's OPT_STEP_ADAMW parameters for
// step t (1-based) at base learning rate lr.
func (d *deviceAdamW) setHyperparameters(t int, lr float64) error {
	c1 := 1 / (1 - math.Pow(d.opt.Beta1, float64(t)))
	c2 := 1 / (1 - math.Pow(d.opt.Beta2, float64(t)))
	for _, g := range d.groups {
		alpha := lr
		if g.lrScale > 0 {
			alpha *= g.lrScale
		}
		wd := 0.0
		if g.decay {
			wd = d.opt.WeightDecay
		}
		hp := []float32{float32(alpha), float32(d.opt.Beta1), float32(d.opt.Beta2), float32(d.opt.Eps), float32(wd), float32(c1), float32(c2)}
		if err := g.hparams.SetF32(hp); err != nil {
			return err
		}
	}
	return nil
}

// download brings the host values (Data) up to date, and the AdamW
// moments (M, V) too when moments.
func (d *deviceAdamW) download(moments bool) {
	for i, p := range d.params {
		copy(p.Data, p.T.F32())
		if moments {
			p.ensureMoments()
			copy(p.M, d.m[i].F32())
			copy(p.V, d.v[i].F32())
		}
	}
}

// upload writes the host copies (Data, M, V) into the device's tensors
// (a resumed run).
func (d *deviceAdamW) upload() error {
	for i, p := range d.params {
		p.ensureMoments()
		for _, e := range []error{p.upload(), d.m[i].SetF32(p.M), d.v[i].SetF32(p.V)} {
			if e != nil {
				return fmt.Errorf("%s: %w", p.Name, e)
			}
		}
	}
	return nil
}

func (d *deviceAdamW) close() {
	d.graphCtx.Close()
	d.accBuf.Close()
	d.stateBuf.Close()
	d.accCtx.Close()
	d.stateCtx.Close()
}
