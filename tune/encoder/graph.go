package encoder

import (
	"fmt"

	"github.com/ragtune/ragtune/retrieval"

	"github.com/ragtune/ragtune/bindings"
	"github.com/ragtune/ragtune/bindings/gguf"
	"github.com/ragtune/ragtune/tune/adapter"
	"github.com/ragtune/ragtune/tune/model"
)

// readConfig validates a model file as llama.cpp would, so a malformed model
// is a Go error before any native code reads it.
func readConfig(path string) (model.Config, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return model.Config{}, err
	}
	defer f.Close()
	if _, err := gguf.ValidateModel(f, ""); err != nil {
		return model.Config{}, err
	}
	return model.ReadConfig(f)
}

// graphEngine runs ragtune's own graph. Graphs are built per padded shape
// (sequence length rounded up to a multiple of seqRound, batch size) and
// kept; one allocator's compute buffer serves them all.
type graphEngine struct {
	be      *bindings.Backend
	m       *model.Model
	ad      *adapter.Adapter
	alloc   *bindings.Allocator
	graphs  map[graphKey]*compiled
	pad     int32
	current *compiled
	// borrowed: m and be belong to the caller (FromModel).
	borrowed  bool
	queryOnly bool
}

// graphKey is a padded shape and whether adapters are left out.
type graphKey struct {
	S, B int
	base bool
}

type compiled struct {
	ctx *bindings.Context
	g   *bindings.Graph
	in  *model.Inputs
	out bindings.Tensor
}

// seqRound is 16 because ggml's tiled f32 matmul (tinyBLAS, AVX-512)
// wants the shared dimension a multiple of 16; the scores x values product
// shares S.
const seqRound = 16

// paddedLen is the graph length a sequence of n tokens runs at.
func paddedLen(n int) int { return (n + seqRound - 1) / seqRound * seqRound }

func newGraphEngine(path string, tok *Tokenizer, opts Options) (*graphEngine, error) {
	be, err := bindings.OpenBackend(opts.Device, opts.Threads)
	if err != nil {
		return nil, err
	}
	m, err := model.Load(path, be, model.LoadOptions{})
	if err != nil {
		be.Close()
		return nil, err
	}
	e := &graphEngine{be: be, m: m, alloc: be.NewAllocator(), graphs: map[graphKey]*compiled{}, queryOnly: opts.QueryOnlyAdapter}
	if opts.Adapter != "" {
		if e.ad, err = adapter.Load(opts.Adapter, m, be, opts.AdapterScale); err != nil {
			e.close()
			return nil, err
		}
	}
	return e, nil
}

func (e *graphEngine) close() {
	for _, c := range e.graphs {
		c.ctx.Close()
	}
	e.alloc.Close()
	if e.borrowed {
		return
	}
	if e.ad != nil {
		e.ad.Close()
	}
	e.m.Close()
	e.be.Close()
}

func (e *graphEngine) graph(key graphKey) (*compiled, error) {
	if c, ok := e.graphs[key]; ok {
		return c, nil
	}
	nodes := 64 + 64*len(e.m.Layers) + 16*len(e.m.Adapters) // DoRA: about 16 nodes a layer
	ctx, err := bindings.NewContext(nodes, nodes, false)
	if err != nil {
		return nil, err
	}
	in, out := e.m.Embed(ctx, key.S, key.B, model.BuildOptions{SkipAdapters: key.base})
	out.SetOutput()
	g, err := ctx.NewGraph(nodes, false)
	if err == nil {
		err = g.Expand(out)
	}
	if err == nil && e.be.IsCPU() {
		err = g.UseNativeKernels()
	}
	if err != nil {
		ctx.Close()
		return nil, fmt.Errorf("building the embedding graph: %w", err)
	}
	c := &compiled{ctx: ctx, g: g, in: in, out: out}
	e.graphs[key] = c
	return c, nil
}

func (e *graphEngine) embed(seqs [][]int32, kind retrieval.TextKind) ([][]float32, error) {
	S := 0
	for _, s := range seqs {
		S = max(S, len(s))
	}
	S = min(paddedLen(S), e.m.Ctx)
	c, err := e.graph(graphKey{S: S, B: len(seqs), base: e.queryOnly && kind == retrieval.Document})
	if err != nil {
		return nil, err
	}
	if c != e.current {
		if err := e.alloc.Alloc(c.g); err != nil {
			return nil, err
		}
		e.current = c
	}
	if err := c.in.Set(e.m, seqs, e.pad); err != nil {
		return nil, err
	}
	if err := e.be.Compute(c.g); err != nil {
		return nil, err
	}
	flat := c.out.F32()
	dim := e.m.Dim
	out := make([][]float32, len(seqs))
	for i := range out {
		out[i] = flat[i*dim : (i+1)*dim : (i+1)*dim]
	}
	return out, nil
}
