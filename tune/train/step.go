package train

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"

	"github.com/ragtune/ragtune/bindings"
	"github.com/ragtune/ragtune/tune/model"
)

// Loss names.
const (
	LossMNRL    = "mnrl"    // MultipleNegativesRanking / InfoNCE with in-batch negatives
	LossTriplet = "triplet" // max(0, ‖a−p‖ − ‖a−n‖ + margin)
)

// LossConfig chooses the objective.
type LossConfig struct {
	Name   string
	Scale  float32 // MNRL: cosine similarities are multiplied by this (20 as in sentence-transformers)
	Margin float32 // triplet margin (5 as in sentence-transformers, Euclidean distance)
}

// Batch is one micro-batch of tokenized examples. Docs holds the N positives
// first, then the hard negatives: NegPerQuery for each query in query order.
// Triplet loss needs exactly one negative per query.
type Batch struct {
	Queries     [][]int32
	Docs        [][]int32
	NegPerQuery int
}

// Stepper computes the loss of a batch and its gradients with respect to
// the trainable parameters, with graphs cached per padded shape.
type Stepper struct {
	m      *model.Model
	be     *bindings.Backend
	params []*Param
	loss   LossConfig
	pad    int32
	rng    *rand.Rand

	alloc   *bindings.Allocator
	graphs  map[[4]int]*stepGraph
	current *stepGraph
	seedCtx *bindings.Context
	seedBuf *bindings.Buffer
	seed    bindings.Tensor // the loss gradient: a static 1.0
	// maskScratch holds, per worker, one dropout mask on its way to the
	// backend.
	maskScratch [][]float32
	// LastFLOPs is the count of the last graph computed (forward and backward).
	LastFLOPs float64
	// QuerySideOnly embeds documents with the frozen base model.
	QuerySideOnly bool
	// Recompute trades compute for memory: activations are recomputed
	// block by block in the backward pass (see recompute.go).
	Recompute bool
	// Profile, when set, times every node of the step's graphs and the
	// gradient download into it (see Profile).
	Profile *Profile
	// GradCache, when above 0, embeds and differentiates a batch in chunks
	// of this many texts, with in-batch negatives over the whole batch
	// (see gradcache.go). It takes precedence over Recompute.
	GradCache int
	segments  map[segmentKey]*segment
	heads     map[[4]int]*head
	// The optimizer Step applies (SetOptimizer); dev is its state on the
	// device, nil when it runs on the host.
	optim    AdamW
	clipNorm float64
	dev      *deviceAdamW
}

type stepGraph struct {
	ctx      *bindings.Context
	fwd, bwd *bindings.Graph
	q, d     *model.Inputs
	loss     bindings.Tensor
	labels   bindings.Tensor // MNRL only: one-hot targets [docs, queries]
	grads    []bindings.Tensor
	fwdFLOPs float64
	bwdFLOPs float64
}

// tokens counts the batch's tokens: the texts' own, and what its graph
// computes with each side padded to its longest text.
func (b Batch) tokens(ctx int) (own, padded int64) {
	for _, side := range [][][]int32{b.Queries, b.Docs} {
		for _, seq := range side {
			own += int64(len(seq))
		}
		padded += int64(len(side) * maxLen(side, ctx))
	}
	return own, padded
}

// SeqRound is the multiple sequence lengths are padded to, so few graph shapes exist.
const SeqRound = 16

// NewStepper prepares gradient computation for params of m.
func NewStepper(m *model.Model, be *bindings.Backend, params []*Param, loss LossConfig, pad int32, rng *rand.Rand) (*Stepper, error) {
	if loss.Name == "" {
		loss.Name = LossMNRL
	}
	if loss.Scale == 0 {
		loss.Scale = 20
	}
	if loss.Margin == 0 {
		loss.Margin = 5
	}
	if loss.Name != LossMNRL && loss.Name != LossTriplet {
		return nil, fmt.Errorf("unknown loss %q (want %s or %s)", loss.Name, LossMNRL, LossTriplet)
	}
	s := &Stepper{m: m, be: be, params: params, loss: loss, pad: pad, rng: rng, graphs: map[[4]int]*stepGraph{},
		segments: map[segmentKey]*segment{}, heads: map[[4]int]*head{}, optim: DefaultAdamW, clipNorm: 1}
	var err error
	if s.seedCtx, err = bindings.NewContext(2, 0, false); err != nil {
		return nil, err
	}
	s.seed = s.seedCtx.NewTensor(bindings.TypeF32, 1).SetName("loss_grad")
	if s.seedBuf, err = be.AllocTensors(s.seedCtx); err != nil {
		s.seedCtx.Close()
		return nil, err
	}
	if err := s.seed.SetF32([]float32{1}); err != nil {
		return nil, err
	}
	s.alloc = be.NewAllocator()
	return s, nil
}

// Close frees the graphs and buffers.
func (s *Stepper) Close() {
	for _, g := range s.graphs {
		g.ctx.Close()
	}
	for _, g := range s.segments {
		g.ctx.Close()
	}
	for _, h := range s.heads {
		h.ctx.Close()
	}
	if s.dev != nil {
		s.dev.close()
	}
	s.alloc.Close()
	s.seedBuf.Close()
	s.seedCtx.Close()
}

// ComputeBufferBytes is the size of the graph allocator's buffer.
func (s *Stepper) ComputeBufferBytes() int { return s.alloc.BufferSize() }

func roundSeq(n, ctx int) int { return min((n+SeqRound-1)/SeqRound*SeqRound, ctx) }

func (s *Stepper) graph(b Batch) (*stepGraph, error) {
	nq, nd := len(b.Queries), len(b.Docs)
	key := [4]int{maxLen(b.Queries, s.m.Ctx), nq, maxLen(b.Docs, s.m.Ctx), nd}
	if g, ok := s.graphs[key]; ok {
		return g, nil
	}
	g, err := s.build(key[0], nq, key[2], nd)
	if err != nil {
		return nil, err
	}
	s.graphs[key] = g
	return g, nil
}

func (s *Stepper) build(sq, nq, sd, nd int) (*stepGraph, error) {
	forward := func(ctx *bindings.Context) (qIn, dIn *model.Inputs, loss, labels bindings.Tensor, err error) {
		var qEmb, dEmb bindings.Tensor
		qIn, qEmb = s.m.Embed(ctx, sq, nq, s.buildOptions(false))
		dIn, dEmb = s.m.Embed(ctx, sd, nd, s.buildOptions(true))
		loss, labels, err = s.lossOf(ctx, qEmb, dEmb)
		return qIn, dIn, loss, labels, err
	}
	ctx, size, err := s.graphContext(func(ctx *bindings.Context) (bindings.Tensor, error) {
		_, _, loss, _, err := forward(ctx)
		return loss, err
	})
	if err != nil {
		return nil, err
	}
	qIn, dIn, loss, labels, err := forward(ctx)
	if err != nil {
		ctx.Close()
		return nil, err
	}
	fwd, err := ctx.NewGraph(size, false)
	if err == nil {
		err = fwd.Expand(loss)
	}
	var bwd *bindings.Graph
	if err == nil {
		bwd, err = ctx.NewGraph(size, true)
	}
	if err == nil {
		err = bwd.Expand(loss)
	}
	if err == nil {
		err = bwd.BuildBackward(loss, s.seed, s.be)
	}
	if err != nil {
		ctx.Close()
		return nil, fmt.Errorf("building the training graph: %w", err)
	}
	g := &stepGraph{ctx: ctx, fwd: fwd, bwd: bwd, q: qIn, d: dIn, loss: loss, labels: labels}
	for _, p := range s.params {
		gr := bwd.Grad(p.T)
		if gr.IsNil() {
			ctx.Close()
			return nil, fmt.Errorf("parameter %s gets no gradient from the loss", p.Name)
		}
		g.grads = append(g.grads, s.gradOutput(gr))
	}
	if err := s.accumulateOnDevice(ctx, bwd, s.allParams(), g.grads); err != nil {
		ctx.Close()
		return nil, err
	}
	g.fwdFLOPs, g.bwdFLOPs = fwd.FLOPs(), bwd.FLOPs()
	return g, nil
}

// lossOf builds the loss of query embeddings qEmb [E, nq] against
// document embeddings dEmb [E, nd]. MNRL returns its one-hot labels
// [nd, nq] as an input to fill (see setLabels).
func (s *Stepper) lossOf(ctx *bindings.Context, qEmb, dEmb bindings.Tensor) (loss, labels bindings.Tensor, err error) {
	nq, nd := qEmb.Ne()[1], dEmb.Ne()[1]
	switch s.loss.Name {
	case LossMNRL:
		// scores [docs, queries]: column j holds query j's cosine similarity
		// to every document; its label is document j.
		scores := ctx.Scale(ctx.MulMat(dEmb, qEmb), s.loss.Scale)
		labels = ctx.NewTensor(bindings.TypeF32, nd, nq).SetName("labels").SetInput()
		loss = ctx.CrossEntropyLoss(scores, labels)
	case LossTriplet:
		if nd != 2*nq {
			return loss, labels, fmt.Errorf("triplet loss needs one positive and one negative per query, got %d documents for %d queries", nd, nq)
		}
		E := s.m.Dim
		pos := ctx.View(dEmb, []int{E, nq}, []int{dEmb.Nb()[1]}, 0)
		neg := ctx.View(dEmb, []int{E, nq}, []int{dEmb.Nb()[1]}, nq*dEmb.Nb()[1])
		dist := func(a, b bindings.Tensor) bindings.Tensor {
			diff := ctx.Sub(a, ctx.Cont(b))
			return ctx.Sqrt(ctx.ScaleBias(ctx.SumRows(ctx.Sqr(diff)), 1, 1e-12))
		}
		hinge := ctx.Relu(ctx.ScaleBias(ctx.Sub(dist(qEmb, pos), dist(qEmb, neg)), 1, s.loss.Margin))
		loss = ctx.Scale(ctx.Sum(hinge), 1/float32(nq))
	}
	return loss.SetName("loss").SetOutput().SetLoss(), labels, nil
}

// setLabels marks document j as query j's positive.
func setLabels(labels bindings.Tensor) error {
	if labels.IsNil() {
		return nil
	}
	nd, nq := labels.Ne()[0], labels.Ne()[1]
	l := make([]float32, nd*nq)
	for j := 0; j < nq; j++ {
		l[j*nd+j] = 1
	}
	return labels.SetF32(l)
}

func (s *Stepper) upload(g *stepGraph, b Batch, train bool) error {
	if err := g.q.Set(s.m, b.Queries, s.pad); err != nil {
		return fmt.Errorf("queries: %w", err)
	}
	if err := g.d.Set(s.m, b.Docs, s.pad); err != nil {
		return fmt.Errorf("documents: %w", err)
	}
	for _, in := range []*model.Inputs{g.q, g.d} {
		if err := s.setDropout(in, s.dropoutSeeds(in, train)); err != nil {
			return err
		}
	}
	return setLabels(g.labels)
}

// dropoutSeeds draws one seed per dropout mask of in; nil when not
// training (no dropout). A mask is a function of its seed, so recomputation
// regenerates the forward pass's masks instead of keeping them: they are as
// large as a layer's input (150 MB a step for LoRA on q,v of MiniLM at 32
// pairs).
func (s *Stepper) dropoutSeeds(in *model.Inputs, train bool) []uint64 {
	if !train {
		return nil
	}
	seeds := make([]uint64, len(in.Dropout))
	for i := range seeds {
		seeds[i] = s.rng.Uint64()
	}
	return seeds
}

// setDropout uploads in's dropout masks: each element 0 with probability
// p, else 1/(1-p), from its seed; all ones without seeds. The masks are
// drawn on every CPU (the backend's threads are idle meanwhile): they are
// as large as a layer's input, a few percent of a LoRA step when drawn on
// one.
func (s *Stepper) setDropout(in *model.Inputs, seeds []uint64) error {
	workers := min(runtime.GOMAXPROCS(0), len(in.Dropout))
	for len(s.maskScratch) < workers {
		s.maskScratch = append(s.maskScratch, nil)
	}
	errs := make([]error, len(in.Dropout))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(in.Dropout); i += workers {
				dm := in.Dropout[i]
				n := dm.T.Nelements()
				if cap(s.maskScratch[w]) < n {
					s.maskScratch[w] = make([]float32, n)
				}
				mask := s.maskScratch[w][:n]
				if seeds == nil {
					for j := range mask {
						mask[j] = 1
					}
				} else {
					fillMask(mask, seeds[i], dm.P)
				}
				errs[i] = dm.T.SetF32(mask)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// fillMask draws a dropout mask from its seed: 0 with probability p (to
// 1/65536), else 1/(1-p). Each 64-bit draw gives four elements.
func fillMask(mask []float32, seed uint64, p float32) {
	src := rand.NewPCG(seed, 0x6d61736b)
	keep := 1 / (1 - p)
	threshold := uint64(math.Round(float64(p) * 65536))
	for j := 0; j < len(mask); j += 4 {
		bits := src.Uint64()
		for k := j; k < min(j+4, len(mask)); k++ {
			mask[k] = 0
			if bits&0xffff >= threshold {
				mask[k] = keep
			}
			bits >>= 16
		}
	}
}

func (s *Stepper) use(g *stepGraph, gr *bindings.Graph) error {
	if err := s.alloc.Alloc(gr); err != nil {
		return err
	}
	return nil
}

// Loss evaluates the loss without gradients (dropout off).
func (s *Stepper) Loss(b Batch) (float64, error) {
	g, err := s.graph(b)
	if err != nil {
		return 0, err
	}
	if err := s.use(g, g.fwd); err != nil {
		return 0, err
	}
	if err := s.upload(g, b, false); err != nil {
		return 0, err
	}
	if err := s.be.Compute(g.fwd); err != nil {
		return 0, err
	}
	s.LastFLOPs = g.fwdFLOPs
	return float64(g.loss.F32()[0]), nil
}

// Accumulate computes the loss of b and adds weight·∂loss/∂p to every
// parameter's gradient accumulator: its Grad, or on the device path the
// device's (see SetOptimizer). It returns the loss.
func (s *Stepper) Accumulate(b Batch, weight float32) (float64, error) {
	if s.dev != nil {
		if err := s.dev.setWeight(weight); err != nil {
			return 0, err
		}
	}
	if s.GradCache > 0 {
		return s.accumulateCached(b, weight)
	}
	if s.Recompute {
		return s.accumulateRecomputed(b, weight)
	}
	g, err := s.graph(b)
	if err != nil {
		return 0, err
	}
	if err := s.use(g, g.bwd); err != nil {
		return 0, err
	}
	if err := s.upload(g, b, true); err != nil {
		return 0, err
	}
	if err := s.Profile.compute(s.be, g.bwd); err != nil {
		return 0, err
	}
	s.LastFLOPs = g.bwdFLOPs
	loss := float64(g.loss.F32()[0])
	if !math.IsNaN(loss) && !math.IsInf(loss, 0) {
		s.addGrads(s.allParams(), g.grads, weight)
	}
	return loss, nil
}
