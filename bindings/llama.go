package bindings

// #include <stdlib.h>
// #include "llama.h"
// void ragtune_log_sink(enum ggml_log_level level, const char *text, void *user_data);
// size_t ragtune_log_take(char *buf, size_t cap);
// static void ragtune_set_log(void) { llama_log_set(ragtune_log_sink, NULL); }
import "C"

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"unsafe"
)

var initOnce sync.Once

// initNative silences llama.cpp's logging (kept for error messages) and
// initialises its backends once per process.
func initNative() {
	initOnce.Do(func() {
		C.ragtune_set_log()
		C.llama_backend_init()
	})
}

// nativeLog returns and clears what llama.cpp and ggml logged as warnings or errors.
func nativeLog() string {
	buf := make([]byte, 2048)
	n := C.ragtune_log_take((*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)))
	return strings.TrimSpace(string(buf[:n]))
}

func nativeError(what string) error {
	if msg := nativeLog(); msg != "" {
		return fmt.Errorf("%s: %s", what, lastLines(msg, 3))
	}
	return errors.New(what)
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "; ")
}

// LlamaModel is a model loaded by llama.cpp itself: the reference forward
// pass in tests, the tokenizer, and the second embedding engine.
type LlamaModel struct {
	m     *C.struct_llama_model
	vocab *C.struct_llama_vocab
	dev   Device // the GPU its layers are on; the zero Device for the CPU
}

// LoadLlamaModel loads a GGUF file with llama.cpp on the CPU; vocabOnly
// skips the weights (tokenization only). Callers validate the file with
// bindings/gguf first: llama.cpp aborts on some malformed inputs.
func LoadLlamaModel(path string, vocabOnly bool) (*LlamaModel, error) {
	return loadLlamaModel(path, vocabOnly, Device{})
}

// LoadLlamaModelOn loads a GGUF file with llama.cpp with every layer on
// dev (llama.cpp's own offload), or on the CPU when dev is the CPU or the
// zero Device.
func LoadLlamaModelOn(path string, dev Device) (*LlamaModel, error) {
	return loadLlamaModel(path, false, dev)
}

func loadLlamaModel(path string, vocabOnly bool, dev Device) (*LlamaModel, error) {
	initNative()
	if dev.d != nil && dev.IsCPU() {
		dev = Device{}
	}
	params := C.llama_model_default_params()
	params.vocab_only = C.bool(vocabOnly)
	params.use_extra_bufts = false
	// The devices llama.cpp may use, NULL-terminated: dev alone, or none
	// (an empty list; NULL would mean every loaded GPU, which llama.cpp
	// uses for the ops it offloads even with no layers there).
	devices := (*[2]C.ggml_backend_dev_t)(C.calloc(2, C.size_t(unsafe.Sizeof(uintptr(0)))))
	defer C.free(unsafe.Pointer(devices))
	params.devices = &devices[0]
	params.n_gpu_layers = 0
	if dev.d != nil {
		devices[0] = dev.d
		params.n_gpu_layers = C.int32_t(C.INT32_MAX) // every layer, the output's too
		params.split_mode = C.LLAMA_SPLIT_MODE_NONE
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	nativeLog()
	m := C.llama_model_load_from_file(cpath, params)
	if m == nil {
		return nil, nativeError("llama.cpp could not load " + path)
	}
	return &LlamaModel{m: m, vocab: C.llama_model_get_vocab(m), dev: dev}, nil
}

// avoidDeviceFlaws adjusts a context's parameters to the model's device:
// ggml's flash-attention shaders crash lavapipe (a segfault deep in a
// recursion of its compiler thread; Mesa 25.0.7, LLVM 15), so attention
// runs unfused there.
func (m *LlamaModel) avoidDeviceFlaws(p *C.struct_llama_context_params) {
	if m.dev.d != nil && isLavapipe(m.dev.Description(), m.dev.Driver()) {
		p.flash_attn_type = C.LLAMA_FLASH_ATTN_TYPE_DISABLED
	}
}

// Close frees the model.
func (m *LlamaModel) Close() {
	if m != nil && m.m != nil {
		C.llama_model_free(m.m)
		m.m = nil
	}
}

// NEmbd is the model's hidden size.
func (m *LlamaModel) NEmbd() int { return int(C.llama_model_n_embd(m.m)) }

// NCtxTrain is the context length the model was trained with.
func (m *LlamaModel) NCtxTrain() int { return int(C.llama_model_n_ctx_train(m.m)) }

// HasEncoder reports whether the model runs llama_encode (bert) rather than llama_decode.
func (m *LlamaModel) HasEncoder() bool { return bool(C.llama_model_has_encoder(m.m)) }

// VocabSize is the number of tokens.
func (m *LlamaModel) VocabSize() int { return int(C.llama_vocab_n_tokens(m.vocab)) }

// TokenText is the vocabulary entry of a token id.
func (m *LlamaModel) TokenText(id int32) string {
	return C.GoString(C.llama_vocab_get_text(m.vocab, C.llama_token(id)))
}

// Special token ids (-1 when the vocabulary has none).
func (m *LlamaModel) BOS() int32 { return int32(C.llama_vocab_bos(m.vocab)) }
func (m *LlamaModel) EOS() int32 { return int32(C.llama_vocab_eos(m.vocab)) }
func (m *LlamaModel) SEP() int32 { return int32(C.llama_vocab_sep(m.vocab)) }

// AddsEOS reports whether tokenization appends EOS (tokenizer.ggml.add_eos_token).
func (m *LlamaModel) AddsEOS() bool { return bool(C.llama_vocab_get_add_eos(m.vocab)) }

// Tokenize runs llama.cpp's tokenizer. addSpecial adds BOS/CLS and EOS/SEP as
// the vocabulary says; parseSpecial turns written special tokens into their ids.
func (m *LlamaModel) Tokenize(text string, addSpecial, parseSpecial bool) ([]int32, error) {
	ctext := C.CString(text)
	defer C.free(unsafe.Pointer(ctext))
	n := len(text) + 8
	for {
		out := make([]int32, n)
		got := C.llama_tokenize(m.vocab, ctext, C.int32_t(len(text)), (*C.llama_token)(unsafe.Pointer(&out[0])), C.int32_t(n), C.bool(addSpecial), C.bool(parseSpecial))
		if got >= 0 {
			return out[:got], nil
		}
		if int(-got) <= n {
			return nil, nativeError("llama.cpp tokenization failed")
		}
		n = int(-got)
	}
}

// Pooling is llama.cpp's pooling type.
type Pooling int

const (
	PoolingUnspecified Pooling = C.LLAMA_POOLING_TYPE_UNSPECIFIED
	PoolingNone        Pooling = C.LLAMA_POOLING_TYPE_NONE
	PoolingMean        Pooling = C.LLAMA_POOLING_TYPE_MEAN
	PoolingCLS         Pooling = C.LLAMA_POOLING_TYPE_CLS
	PoolingLast        Pooling = C.LLAMA_POOLING_TYPE_LAST
)

// LlamaContextOptions configure an embedding context.
type LlamaContextOptions struct {
	Pooling Pooling // PoolingUnspecified: the model's own
	NCtx    int     // tokens per call (0: the model's context length)
	NSeqMax int     // texts per call
	Threads int
	// Exact turns off flash attention and keeps the KV cache in F32, so the
	// result is comparable to an f32 reference (llama.cpp's defaults round K/V to f16).
	Exact bool
}

// LlamaContext is a llama.cpp inference context in embedding mode.
type LlamaContext struct {
	c       *C.struct_llama_context
	model   *LlamaModel
	opts    LlamaContextOptions
	encoder bool
}

// NewEmbeddingContext makes a context that returns pooled embeddings.
func (m *LlamaModel) NewEmbeddingContext(opts LlamaContextOptions) (*LlamaContext, error) {
	if opts.NCtx <= 0 {
		opts.NCtx = m.NCtxTrain()
	}
	if opts.NSeqMax <= 0 {
		opts.NSeqMax = 1
	}
	if opts.Threads <= 0 {
		opts.Threads = 1
	}
	p := C.llama_context_default_params()
	p.n_ctx = C.uint32_t(opts.NCtx)
	p.n_batch = C.uint32_t(opts.NCtx)
	p.n_ubatch = C.uint32_t(opts.NCtx)
	p.n_seq_max = C.uint32_t(opts.NSeqMax)
	p.n_threads = C.int32_t(opts.Threads)
	p.n_threads_batch = C.int32_t(opts.Threads)
	p.embeddings = true
	p.pooling_type = C.enum_llama_pooling_type(opts.Pooling)
	p.no_perf = true
	p.kv_unified = true
	if opts.Exact {
		p.flash_attn_type = C.LLAMA_FLASH_ATTN_TYPE_DISABLED
		p.type_k = C.GGML_TYPE_F32
		p.type_v = C.GGML_TYPE_F32
	}
	m.avoidDeviceFlaws(&p)
	nativeLog()
	c := C.llama_init_from_model(m.m, p)
	if c == nil {
		return nil, nativeError("llama.cpp could not create an embedding context")
	}
	return &LlamaContext{c: c, model: m, opts: opts, encoder: m.HasEncoder()}, nil
}

// Close frees the context.
func (lc *LlamaContext) Close() {
	if lc != nil && lc.c != nil {
		C.llama_free(lc.c)
		lc.c = nil
	}
}

// EmbedPooled runs one batch of token sequences through llama.cpp and returns
// one pooled vector per sequence. Every token is flagged as an output: the
// vendored decode pools correctly only then.
func (lc *LlamaContext) EmbedPooled(seqs [][]int32) ([][]float32, error) {
	total := 0
	for i, s := range seqs {
		if len(s) == 0 {
			return nil, fmt.Errorf("sequence %d is empty", i)
		}
		total += len(s)
	}
	if len(seqs) > lc.opts.NSeqMax || total > lc.opts.NCtx {
		return nil, fmt.Errorf("batch of %d sequences and %d tokens exceeds the context (%d sequences, %d tokens)", len(seqs), total, lc.opts.NSeqMax, lc.opts.NCtx)
	}
	batch := C.llama_batch_init(C.int32_t(total), 0, 1)
	defer C.llama_batch_free(batch)
	tok := unsafe.Slice(batch.token, total)
	pos := unsafe.Slice(batch.pos, total)
	nseq := unsafe.Slice(batch.n_seq_id, total)
	seqID := unsafe.Slice(batch.seq_id, total)
	out := unsafe.Slice(batch.logits, total)
	k := 0
	for s, ids := range seqs {
		for p, id := range ids {
			tok[k] = C.llama_token(id)
			pos[k] = C.llama_pos(p)
			nseq[k] = 1
			*seqID[k] = C.llama_seq_id(s)
			out[k] = 1
			k++
		}
	}
	batch.n_tokens = C.int32_t(total)
	C.llama_memory_clear(C.llama_get_memory(lc.c), true)
	nativeLog()
	var rc C.int32_t
	if lc.encoder {
		rc = C.llama_encode(lc.c, batch)
	} else {
		rc = C.llama_decode(lc.c, batch)
	}
	if rc != 0 {
		return nil, nativeError(fmt.Sprintf("llama.cpp failed to embed the batch (code %d)", int(rc)))
	}
	dim := lc.model.NEmbd()
	res := make([][]float32, len(seqs))
	for s := range seqs {
		p := C.llama_get_embeddings_seq(lc.c, C.llama_seq_id(s))
		if p == nil {
			return nil, nativeError("llama.cpp returned no pooled embedding (pooling none?)")
		}
		res[s] = append([]float32(nil), unsafe.Slice((*float32)(unsafe.Pointer(p)), dim)...)
	}
	return res, nil
}

// LlamaAdapter is a LoRA adapter loaded by llama.cpp.
type LlamaAdapter struct{ a *C.struct_llama_adapter_lora }

// LoadAdapter loads a LoRA adapter GGUF for this model with llama.cpp's own loader.
func (m *LlamaModel) LoadAdapter(path string) (*LlamaAdapter, error) {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	nativeLog()
	a := C.llama_adapter_lora_init(m.m, cpath)
	if a == nil {
		return nil, nativeError("llama.cpp could not load adapter " + path)
	}
	return &LlamaAdapter{a: a}, nil
}

// Close frees the adapter (after every context using it is closed).
func (a *LlamaAdapter) Close() {
	if a != nil && a.a != nil {
		C.llama_adapter_lora_free(a.a)
		a.a = nil
	}
}

// SetAdapter applies an adapter with the given user scale to this context.
func (lc *LlamaContext) SetAdapter(a *LlamaAdapter, scale float32) error {
	if C.llama_set_adapter_lora(lc.c, a.a, C.float(scale)) != 0 {
		return nativeError("llama.cpp could not apply the adapter")
	}
	return nil
}
