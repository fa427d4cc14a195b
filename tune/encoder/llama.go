package encoder

import (
	"cmp"

	"github.com/ragtune/ragtune/bindings"
	"github.com/ragtune/ragtune/retrieval"
	"github.com/ragtune/ragtune/tune/model"
)

// llamaEngine runs llama.cpp's own embedding path. llama.cpp packs a batch's
// texts into one attention over all of their tokens (masked), so it is
// fastest with few texts per call; Options.Batch sets how many.
type llamaEngine struct {
	m      *bindings.LlamaModel
	c      *bindings.LlamaContext
	ad     *bindings.LlamaAdapter
	dim    int
	device string // the device's backend name, as Usage reports it
}

func newLlamaEngine(path string, cfg model.Config, opts Options) (*llamaEngine, error) {
	dev, err := bindings.SelectDevice(cmp.Or(opts.Device, "cpu"))
	if err != nil {
		return nil, err
	}
	m, err := bindings.LoadLlamaModelOn(path, dev)
	if err != nil {
		return nil, err
	}
	pool := bindings.Pooling(cfg.Pooling)
	c, err := m.NewEmbeddingContext(bindings.LlamaContextOptions{
		Pooling: pool,
		NCtx:    cfg.Ctx * opts.Batch,
		NSeqMax: opts.Batch,
		Threads: opts.Threads,
		Exact:   opts.Exact,
	})
	if err != nil {
		m.Close()
		return nil, err
	}
	e := &llamaEngine{m: m, c: c, dim: cfg.Dim, device: dev.Name()}
	if opts.Adapter != "" {
		if e.ad, err = m.LoadAdapter(opts.Adapter); err == nil {
			err = c.SetAdapter(e.ad, opts.AdapterScale)
		}
		if err != nil {
			e.close()
			return nil, err
		}
	}
	return e, nil
}

func (e *llamaEngine) embed(seqs [][]int32, _ retrieval.TextKind) ([][]float32, error) {
	return e.c.EmbedPooled(seqs)
}

func (e *llamaEngine) close() {
	e.c.Close()
	if e.ad != nil {
		e.ad.Close()
	}
	e.m.Close()
}
