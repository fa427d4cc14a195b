// Package llamaref is llama.cpp's plain generation loop, driven the way
// llama.cpp's own simple example drives its C API: one prompt at a time, one
// llama_decode per token, a sampler chain built per call. Tests and
// benchmarks hold ragtune's batched generator (bindings.Generator) against
// it; nothing else uses it.
package llamaref

// #include <stdlib.h>
// #include "llama.h"
import "C"

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/ragtune/ragtune/bindings"
)

// Ref is a model with a one-sequence context.
type Ref struct {
	m *C.struct_llama_model
	c *C.struct_llama_context
}

// Open loads a model (after bindings has initialised llama.cpp) on the CPU
// with a context of nctx tokens.
func Open(path string, nctx, threads int) (*Ref, error) {
	mp := C.llama_model_default_params()
	mp.n_gpu_layers = 0
	mp.use_extra_bufts = false
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	m := C.llama_model_load_from_file(cpath, mp)
	if m == nil {
		return nil, fmt.Errorf("llama.cpp could not load %s", path)
	}
	cp := C.llama_context_default_params()
	cp.n_ctx = C.uint32_t(nctx)
	cp.n_batch = C.uint32_t(nctx)
	cp.n_ubatch = C.uint32_t(min(nctx, 512))
	cp.n_threads = C.int32_t(threads)
	cp.n_threads_batch = C.int32_t(threads)
	c := C.llama_init_from_model(m, cp)
	if c == nil {
		C.llama_model_free(m)
		return nil, errors.New("llama.cpp could not create a context")
	}
	return &Ref{m: m, c: c}, nil
}

// Close frees the context and the model.
func (r *Ref) Close() {
	C.llama_free(r.c)
	C.llama_model_free(r.m)
}

// Generate samples up to maxTokens tokens after prompt, stopping after an
// end-of-generation token, and returns the sampled tokens.
func (r *Ref) Generate(prompt []int32, s bindings.Sampling, seed uint32, maxTokens int) ([]int32, error) {
	sp := C.llama_sampler_chain_default_params()
	chain := C.llama_sampler_chain_init(sp)
	defer C.llama_sampler_free(chain)
	if s.RepeatPenalty != 1 {
		C.llama_sampler_chain_add(chain, C.llama_sampler_init_penalties(C.int32_t(s.RepeatLastN), C.float(s.RepeatPenalty), 0, 0))
	}
	if s.Temperature <= 0 {
		C.llama_sampler_chain_add(chain, C.llama_sampler_init_greedy())
	} else {
		if s.TopK > 0 {
			C.llama_sampler_chain_add(chain, C.llama_sampler_init_top_k(C.int32_t(s.TopK)))
		}
		if s.TopP < 1 {
			C.llama_sampler_chain_add(chain, C.llama_sampler_init_top_p(C.float(s.TopP), 1))
		}
		if s.MinP > 0 {
			C.llama_sampler_chain_add(chain, C.llama_sampler_init_min_p(C.float(s.MinP), 1))
		}
		C.llama_sampler_chain_add(chain, C.llama_sampler_init_temp(C.float(s.Temperature)))
		C.llama_sampler_chain_add(chain, C.llama_sampler_init_dist(C.uint32_t(seed)))
	}
	C.llama_memory_clear(C.llama_get_memory(r.c), true)
	// Token arrays live in C memory: the batch carries a pointer to them.
	cp := (*C.llama_token)(C.malloc(C.size_t(len(prompt)+1) * C.size_t(unsafe.Sizeof(C.llama_token(0)))))
	defer C.free(unsafe.Pointer(cp))
	toks := unsafe.Slice(cp, len(prompt)+1)
	for i, t := range prompt {
		toks[i] = C.llama_token(t)
	}
	batch := C.llama_batch_get_one(cp, C.int32_t(len(prompt)))
	vocab := C.llama_model_get_vocab(r.m)
	var out []int32
	next := &toks[len(prompt)]
	for len(out) < maxTokens {
		if rc := C.llama_decode(r.c, batch); rc != 0 {
			return nil, fmt.Errorf("llama_decode failed (code %d)", int(rc))
		}
		id := C.llama_sampler_sample(chain, r.c, -1)
		out = append(out, int32(id))
		if C.llama_vocab_is_eog(vocab, id) {
			break
		}
		*next = id
		batch = C.llama_batch_get_one(next, 1)
	}
	return out, nil
}
