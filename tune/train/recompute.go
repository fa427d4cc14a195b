package train

import (
	"fmt"
	"math"
	"time"

	"github.com/ragtune/ragtune/bindings"
	"github.com/ragtune/ragtune/tune/model"
)

// Training with recomputation (gradient checkpointing): the step runs one
// graph per segment of the model (token embedding, each block, pooling and
// loss) and keeps only the hidden states between segments (on the host) and
// the seeds of the dropout masks. The backward pass recomputes each block's
// activations from its input just before differentiating it, so the compute
// buffer holds one block's activations instead of all of them, for one more
// forward pass of work.

// segment is the graph of one model segment on one side of the batch.
type segment struct {
	ctx      *bindings.Context
	fwd, bwd *bindings.Graph // bwd is nil when nothing below needs a gradient
	in       *model.Inputs
	x        bindings.Tensor // hidden states in; nil for the token embedding
	out      bindings.Tensor // hidden states out (embeddings for wholeModel)
	gOut     bindings.Tensor // input: the loss's gradient with respect to out
	gx       bindings.Tensor // the loss's gradient with respect to x
	params   []int           // indices into Stepper.params that get a gradient here
	grads    []bindings.Tensor
	fwdFLOPs float64
	bwdFLOPs float64
}

// head is the graph from both sides' last hidden states to the loss.
type head struct {
	ctx      *bindings.Context
	bwd      *bindings.Graph
	q, d     *model.Inputs
	hq, hd   bindings.Tensor // inputs: last hidden states of queries and documents
	gq, gd   bindings.Tensor // their gradients
	loss     bindings.Tensor
	labels   bindings.Tensor
	params   []int
	grads    []bindings.Tensor
	bwdFLOPs float64
}

// Segment indices: inputSegment, then 0..layers-1 for the blocks;
// wholeModel is tokens to pooled embeddings in one graph (GradCache chunks).
const (
	inputSegment = -1
	wholeModel   = -2
)

type segmentKey struct {
	docs        bool // the documents' side (no adapters under query-side-only)
	S, B, index int
}

// side is one side of a batch between the forward and the backward pass.
type side struct {
	docs    bool
	seqs    [][]int32
	S       int
	hidden  [][]float32 // hidden[l] is block l's input; the last is the top block's output
	dropout [][]uint64  // the seeds of each block's dropout masks
}

// buildOptions are the options of the step's model graphs, the documents'
// when docs. The fused kernels run on the CPU only; devices get the
// compositions of ops they have.
func (s *Stepper) buildOptions(docs bool) model.BuildOptions {
	return model.BuildOptions{Trainable: true, Fused: s.be.IsCPU(), Normalize: s.loss.Name == LossMNRL,
		SkipAdapters: docs && s.QuerySideOnly}
}

// segment returns the cached graph of one segment, building it on first use.
func (s *Stepper) segment(k segmentKey) (*segment, error) {
	if g, ok := s.segments[k]; ok {
		return g, nil
	}
	opts := s.buildOptions(k.docs)
	embed := func(ctx *bindings.Context) (in *model.Inputs, x, out bindings.Tensor) {
		switch k.index {
		case inputSegment:
			in, out = s.m.EmbedInput(ctx, k.S, k.B, opts)
			return in, x, out
		case wholeModel:
			in, out = s.m.Embed(ctx, k.S, k.B, opts)
			return in, x, out
		}
		x = ctx.NewTensor(bindings.TypeF32, s.m.Dim, k.S*k.B).SetName("hidden_in").SetInput().SetParam()
		in, out = s.m.EmbedLayer(ctx, k.S, k.B, k.index, x, opts)
		return in, x, out
	}
	ctx, size, err := s.graphContext(func(ctx *bindings.Context) (bindings.Tensor, error) { _, _, out := embed(ctx); return out, nil })
	if err != nil {
		return nil, err
	}
	g := &segment{ctx: ctx}
	g.in, g.x, g.out = embed(ctx)
	g.out.SetOutput()
	if g.fwd, err = ctx.NewGraph(size, false); err == nil {
		err = g.fwd.Expand(g.out)
	}
	if err != nil {
		ctx.Close()
		return nil, fmt.Errorf("building the graph of segment %d: %w", k.index, err)
	}
	g.fwdFLOPs = g.fwd.FLOPs()
	if g.params = s.paramsIn(g.fwd); len(g.params) > 0 || !g.x.IsNil() {
		// The backward graph differentiates ⟨out, gOut⟩: its gradient with
		// respect to x and to the parameters is the chain rule's product.
		g.gOut = ctx.NewTensor(bindings.TypeF32, g.out.Ne()[0], g.out.Ne()[1]).SetName("out_grad").SetInput()
		dot := ctx.Sum(ctx.Mul(g.out, g.gOut)).SetLoss()
		if g.bwd, err = ctx.NewGraph(size, true); err == nil {
			err = g.bwd.Expand(dot)
		}
		if err == nil {
			err = g.bwd.BuildBackward(dot, s.seed, s.be)
		}
		if err != nil {
			ctx.Close()
			return nil, fmt.Errorf("building the backward graph of segment %d: %w", k.index, err)
		}
		if !g.x.IsNil() {
			g.gx = g.bwd.Grad(g.x).SetOutput()
		}
		for _, i := range g.params {
			g.grads = append(g.grads, s.gradOutput(g.bwd.Grad(s.params[i].T)))
		}
		if err := s.accumulateOnDevice(ctx, g.bwd, g.params, g.grads); err != nil {
			ctx.Close()
			return nil, err
		}
		g.bwdFLOPs = g.bwd.FLOPs()
	}
	if s.be.IsCPU() && g.bwd == nil {
		// A segment without a backward graph shares no nodes with one
		// (BuildBackward gave those theirs): its forward needs its own.
		// Those with one must not: the forward graph would rewrite nodes
		// the backward graph lists too.
		if err := g.fwd.UseNativeKernels(); err != nil {
			ctx.Close()
			return nil, err
		}
	}
	s.segments[k] = g
	return g, nil
}

// graphContext is a context for a step's or a segment's graphs, and their
// node budget: the forward pass that build makes, built once in a scratch
// context to count the nodes, grows about fourfold with the backward pass
// and its rewrite (bindings.Graph.BuildBackward says when that is not
// enough), plus the device's gradient accumulation. Segment graphs are
// many; their metadata counts in the memory recomputation is for.
func (s *Stepper) graphContext(build func(ctx *bindings.Context) (bindings.Tensor, error)) (*bindings.Context, int, error) {
	const scratch = 1 << 14
	sc, err := bindings.NewContext(scratch, scratch, false)
	if err != nil {
		return nil, 0, err
	}
	defer sc.Close()
	out, err := build(sc)
	var g *bindings.Graph
	if err == nil {
		g, err = sc.NewGraph(scratch, false)
	}
	if err == nil {
		err = g.Expand(out)
	}
	if err != nil {
		return nil, 0, err
	}
	size := 4*g.NumNodes() + 256 + 4*len(s.params)
	// Tensors: the forward pass, its backward and the backward's rewrite.
	ctx, err := bindings.NewContext(3*size, size, true)
	return ctx, size, err
}

// paramsIn lists the parameters that graph g reads.
func (s *Stepper) paramsIn(g *bindings.Graph) []int {
	in := map[bindings.Tensor]bool{}
	for i := 0; i < g.NumNodes(); i++ {
		in[g.Node(i)] = true
	}
	var idx []int
	for i, p := range s.params {
		if in[p.T] {
			idx = append(idx, i)
		}
	}
	return idx
}

// headGraph returns the cached graph from last hidden states to the loss;
// with sq and sd 0, from pooled embeddings (GradCache).
func (s *Stepper) headGraph(sq, nq, sd, nd int) (*head, error) {
	key := [4]int{sq, nq, sd, nd}
	if h, ok := s.heads[key]; ok {
		return h, nil
	}
	size := 1024 + 8*len(s.params)
	ctx, err := bindings.NewContext(3*size, size, true)
	if err != nil {
		return nil, err
	}
	h := &head{ctx: ctx}
	pooled := sq == 0
	h.hq = ctx.NewTensor(bindings.TypeF32, s.m.Dim, max(sq, 1)*nq).SetName("query_hidden").SetInput().SetParam()
	h.hd = ctx.NewTensor(bindings.TypeF32, s.m.Dim, max(sd, 1)*nd).SetName("doc_hidden").SetInput().SetParam()
	qEmb, dEmb := h.hq, h.hd
	if !pooled {
		h.q, qEmb = s.m.EmbedOutput(ctx, sq, nq, h.hq, s.buildOptions(false))
		h.d, dEmb = s.m.EmbedOutput(ctx, sd, nd, h.hd, s.buildOptions(true))
	}
	if h.loss, h.labels, err = s.lossOf(ctx, qEmb, dEmb); err == nil {
		if h.bwd, err = ctx.NewGraph(size, true); err == nil {
			err = h.bwd.Expand(h.loss)
		}
	}
	if err == nil {
		err = h.bwd.BuildBackward(h.loss, s.seed, s.be)
	}
	if err != nil {
		ctx.Close()
		return nil, fmt.Errorf("building the loss graph: %w", err)
	}
	h.gq, h.gd = h.bwd.Grad(h.hq).SetOutput(), h.bwd.Grad(h.hd).SetOutput()
	h.params = s.paramsIn(h.bwd)
	for _, i := range h.params {
		h.grads = append(h.grads, s.gradOutput(h.bwd.Grad(s.params[i].T)))
	}
	if err := s.accumulateOnDevice(ctx, h.bwd, h.params, h.grads); err != nil {
		ctx.Close()
		return nil, err
	}
	h.bwdFLOPs = h.bwd.FLOPs()
	s.heads[key] = h
	return h, nil
}

// forward runs one side through every segment, keeping the hidden states.
func (s *Stepper) forward(sd *side) error {
	B := len(sd.seqs)
	g, err := s.segment(segmentKey{docs: sd.docs, S: sd.S, B: B, index: inputSegment})
	if err != nil {
		return err
	}
	if err := s.computeSegment(g, g.fwd, sd.seqs, nil, nil, nil); err != nil {
		return err
	}
	sd.hidden = [][]float32{g.out.F32()}
	for l := range s.m.Layers {
		if g, err = s.segment(segmentKey{docs: sd.docs, S: sd.S, B: B, index: l}); err != nil {
			return err
		}
		seeds := s.dropoutSeeds(g.in, true)
		if err := s.computeSegment(g, g.fwd, sd.seqs, seeds, sd.hidden[l], nil); err != nil {
			return err
		}
		sd.dropout = append(sd.dropout, seeds)
		sd.hidden = append(sd.hidden, g.out.F32())
	}
	return nil
}

// backward propagates gTop, the loss's gradient with respect to the side's
// last hidden states, down the segments, recomputing each one, and adds
// weight times each parameter's gradient to its Grad.
func (s *Stepper) backward(sd *side, gTop []float32, weight float32) error {
	B := len(sd.seqs)
	// The lowest segment with parameters: nothing below it needs gradients.
	lowest := len(s.m.Layers)
	for l := len(s.m.Layers) - 1; l >= inputSegment; l-- {
		g, err := s.segment(segmentKey{docs: sd.docs, S: sd.S, B: B, index: l})
		if err != nil {
			return err
		}
		if len(g.params) > 0 {
			lowest = l
		}
	}
	grad := gTop
	for l := len(s.m.Layers) - 1; l >= lowest; l-- {
		g, _ := s.segment(segmentKey{docs: sd.docs, S: sd.S, B: B, index: l})
		var x []float32
		var seeds []uint64
		if l != inputSegment {
			x, seeds = sd.hidden[l], sd.dropout[l]
		}
		if err := s.computeSegment(g, g.bwd, sd.seqs, seeds, x, grad); err != nil {
			return err
		}
		s.addGrads(g.params, g.grads, weight)
		if l > lowest {
			grad = g.gx.F32()
		}
	}
	return nil
}

// computeSegment allocates and computes one of g's graphs with its inputs.
func (s *Stepper) computeSegment(g *segment, gr *bindings.Graph, seqs [][]int32, seeds []uint64, x, gOut []float32) error {
	if err := s.alloc.Alloc(gr); err != nil {
		return err
	}
	if err := g.in.Set(s.m, seqs, s.pad); err != nil {
		return err
	}
	if err := s.setDropout(g.in, seeds); err != nil {
		return err
	}
	if x != nil {
		if err := g.x.SetF32(x); err != nil {
			return err
		}
	}
	if gOut != nil {
		if err := g.gOut.SetF32(gOut); err != nil {
			return err
		}
	}
	if err := s.Profile.compute(s.be, gr); err != nil {
		return err
	}
	if gr == g.bwd {
		s.LastFLOPs += g.bwdFLOPs
	} else {
		s.LastFLOPs += g.fwdFLOPs
	}
	return nil
}

// addGrads adds weight times the downloaded gradients to the parameters'
// Grad; on the device path the graphs accumulated them already.
func (s *Stepper) addGrads(params []int, grads []bindings.Tensor, weight float32) {
	if s.dev != nil {
		return
	}
	defer s.Profile.since(phaseOptimizer, "gradient download", time.Now())
	for k, i := range params {
		p := s.params[i]
		p.ensureGrad()
		for j, x := range grads[k].F32() {
			p.Grad[j] += weight * x
		}
	}
}

// accumulateRecomputed is Accumulate with recomputation.
func (s *Stepper) accumulateRecomputed(b Batch, weight float32) (float64, error) {
	s.LastFLOPs = 0
	q := &side{seqs: b.Queries, S: maxLen(b.Queries, s.m.Ctx)}
	d := &side{docs: true, seqs: b.Docs, S: maxLen(b.Docs, s.m.Ctx)}
	for _, sd := range []*side{q, d} {
		if err := s.forward(sd); err != nil {
			return 0, err
		}
	}
	h, err := s.headGraph(q.S, len(q.seqs), d.S, len(d.seqs))
	if err != nil {
		return 0, err
	}
	loss, gq, gd, err := s.computeHead(h, q.seqs, d.seqs, q.hidden[len(q.hidden)-1], d.hidden[len(d.hidden)-1], weight)
	if err != nil || gq == nil {
		return loss, err
	}
	if err := s.backward(q, gq, weight); err != nil {
		return 0, err
	}
	return loss, s.backward(d, gd, weight)
}

// computeHead computes the loss from both sides' top values (hidden states,
// or embeddings for a pooled head), adds the head's parameter gradients and
// returns the gradients with respect to those values: nil when the loss is
// not finite (the caller reports the divergence).
func (s *Stepper) computeHead(h *head, qSeqs, dSeqs [][]int32, q, d []float32, weight float32) (loss float64, gq, gd []float32, err error) {
	if err := s.alloc.Alloc(h.bwd); err != nil {
		return 0, nil, nil, err
	}
	if h.q != nil {
		if err := h.q.Set(s.m, qSeqs, s.pad); err != nil {
			return 0, nil, nil, fmt.Errorf("queries: %w", err)
		}
		if err := h.d.Set(s.m, dSeqs, s.pad); err != nil {
			return 0, nil, nil, fmt.Errorf("documents: %w", err)
		}
	}
	for _, e := range []error{h.hq.SetF32(q), h.hd.SetF32(d), setLabels(h.labels)} {
		if e != nil {
			return 0, nil, nil, e
		}
	}
	if err := s.Profile.compute(s.be, h.bwd); err != nil {
		return 0, nil, nil, err
	}
	s.LastFLOPs += h.bwdFLOPs
	loss = float64(h.loss.F32()[0])
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		return loss, nil, nil, nil
	}
	s.addGrads(h.params, h.grads, weight)
	return loss, h.gq.F32(), h.gd.F32(), nil
}

// maxLen is the padded length of a side: its longest sequence, rounded up.
func maxLen(seqs [][]int32, ctx int) int {
	n := 0
	for _, q := range seqs {
		n = max(n, len(q))
	}
	return roundSeq(n, ctx)
}
