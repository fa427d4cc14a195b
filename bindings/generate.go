package bindings

// #include <stdlib.h>
// #include "llama.h"
import "C"

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unsafe"
)

// LoadGeneratorModel loads a GGUF with llama.cpp for text generation, its
// layers on dev (the CPU when dev is the CPU or the zero Device).
func LoadGeneratorModel(path string, dev Device) (*LlamaModel, error) {
	lm, err := LoadLlamaModelOn(path, dev)
	if err != nil {
		return nil, err
	}
	arch := lm.meta("general.architecture")
	if lm.HasEncoder() || lm.meta(arch+".attention.causal") == "false" {
		lm.Close()
		return nil, fmt.Errorf("%s is an encoder model (%s, attention not causal): generation needs a decoder (a chat model such as llama, qwen, mistral, gemma)", path, arch)
	}
	return lm, nil
}

// meta is a metadata value as llama.cpp prints it ("" when absent).
func (m *LlamaModel) meta(key string) string {
	ckey := C.CString(key)
	defer C.free(unsafe.Pointer(ckey))
	buf := make([]byte, 256)
	n := C.llama_model_meta_val_str(m.m, ckey, (*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)))
	if n < 0 {
		return ""
	}
	return string(buf[:min(int(n), len(buf)-1)])
}

// ChatTemplate is the model's tokenizer.chat_template ("" when it has none).
func (m *LlamaModel) ChatTemplate() string {
	p := C.llama_model_chat_template(m.m, nil)
	if p == nil {
		return ""
	}
	return C.GoString(p)
}

// AddsBOS reports whether prompts start with BOS (tokenizer.ggml.add_bos_token).
func (m *LlamaModel) AddsBOS() bool { return bool(C.llama_vocab_get_add_bos(m.vocab)) }

// ChatMessage is one turn of a chat: role "system", "user" or "assistant".
type ChatMessage struct {
	Role, Content string
}

// ApplyChatTemplate formats a chat with llama.cpp's llama_chat_apply_template:
// tmpl is a model's Jinja template (recognised by its markers, not run) or the
// name of one of llama.cpp's built-in templates ("chatml", "llama3", ...).
// addAssistant ends the text where the assistant's reply starts.
func ApplyChatTemplate(tmpl string, msgs []ChatMessage, addAssistant bool) (string, error) {
	if tmpl == "" {
		return "", errors.New("no chat template: the model has no tokenizer.chat_template (name one of llama.cpp's built-in templates, e.g. chatml, llama3, mistral-v7, gemma)")
	}
	ctmpl := C.CString(tmpl)
	defer C.free(unsafe.Pointer(ctmpl))
	cmsgs := (*C.struct_llama_chat_message)(C.calloc(C.size_t(max(len(msgs), 1)), C.size_t(unsafe.Sizeof(C.struct_llama_chat_message{}))))
	defer C.free(unsafe.Pointer(cmsgs))
	view := unsafe.Slice(cmsgs, max(len(msgs), 1))
	size := 0
	for i, msg := range msgs {
		view[i].role = C.CString(msg.Role)
		view[i].content = C.CString(msg.Content)
		defer C.free(unsafe.Pointer(view[i].role))
		defer C.free(unsafe.Pointer(view[i].content))
		size += len(msg.Role) + len(msg.Content)
	}
	n := 2*size + 256
	for {
		buf := (*C.char)(C.malloc(C.size_t(n)))
		got := C.llama_chat_apply_template(ctmpl, cmsgs, C.size_t(len(msgs)), C.bool(addAssistant), buf, C.int32_t(n))
		if got < 0 {
			C.free(unsafe.Pointer(buf))
			return "", fmt.Errorf("llama.cpp does not support this chat template (it recognises built-in templates only; see llama_chat_builtin_templates): %.80q", tmpl)
		}
		if int(got) <= n {
			s := C.GoStringN(buf, got)
			C.free(unsafe.Pointer(buf))
			return s, nil
		}
		C.free(unsafe.Pointer(buf))
		n = int(got)
	}
}

// BuiltinChatTemplates lists the names of llama.cpp's built-in chat templates.
func BuiltinChatTemplates() []string {
	n := C.llama_chat_builtin_templates(nil, 0)
	if n <= 0 {
		return nil
	}
	names := (**C.char)(C.calloc(C.size_t(n), C.size_t(unsafe.Sizeof((*C.char)(nil)))))
	defer C.free(unsafe.Pointer(names))
	C.llama_chat_builtin_templates(names, C.size_t(n))
	out := make([]string, int(n))
	for i, p := range unsafe.Slice(names, int(n)) {
		out[i] = C.GoString(p)
	}
	return out
}

// Sampling is llama.cpp's sampler chain, applied in this order (as its
// common sampling does): repetition penalty, top-k, top-p, min-p,
// temperature, then a seeded draw. Temperature <= 0 takes the most likely
// token (the penalty still applies).
type Sampling struct {
	Temperature   float32 // 0: greedy
	TopK          int     // 0: off
	TopP          float32 // 1: off
	MinP          float32 // 0: off
	RepeatPenalty float32 // 1: off
	RepeatLastN   int     // tokens the penalty looks back over (-1: the context)
}

// DefaultSampling is llama.cpp's own default chain (llama-cli's).
var DefaultSampling = Sampling{Temperature: 0.8, TopK: 40, TopP: 0.95, MinP: 0.05, RepeatPenalty: 1.0, RepeatLastN: 64}

func (s Sampling) check() error {
	switch {
	case s.TopK < 0:
		return fmt.Errorf("top-k %d must be >= 0", s.TopK)
	case !(s.TopP > 0 && s.TopP <= 1):
		return fmt.Errorf("top-p %g must be in (0, 1]", s.TopP)
	case !(s.MinP >= 0 && s.MinP < 1):
		return fmt.Errorf("min-p %g must be in [0, 1)", s.MinP)
	case !(s.RepeatPenalty > 0):
		return fmt.Errorf("repetition penalty %g must be > 0", s.RepeatPenalty)
	case s.RepeatLastN < -1:
		return fmt.Errorf("repetition window %d must be >= -1", s.RepeatLastN)
	case s.Temperature != s.Temperature:
		return errors.New("temperature is NaN")
	}
	return nil
}

// chain builds the sampler chain for one sequence.
func (s Sampling) chain(seed uint32) *C.struct_llama_sampler {
	p := C.llama_sampler_chain_default_params()
	p.no_perf = true
	c := C.llama_sampler_chain_init(p)
	if s.RepeatPenalty != 1 {
		C.llama_sampler_chain_add(c, C.llama_sampler_init_penalties(C.int32_t(s.RepeatLastN), C.float(s.RepeatPenalty), 0, 0))
	}
	if s.Temperature <= 0 {
		C.llama_sampler_chain_add(c, C.llama_sampler_init_greedy())
		return c
	}
	if s.TopK > 0 {
		C.llama_sampler_chain_add(c, C.llama_sampler_init_top_k(C.int32_t(s.TopK)))
	}
	if s.TopP < 1 {
		C.llama_sampler_chain_add(c, C.llama_sampler_init_top_p(C.float(s.TopP), 1))
	}
	if s.MinP > 0 {
		C.llama_sampler_chain_add(c, C.llama_sampler_init_min_p(C.float(s.MinP), 1))
	}
	C.llama_sampler_chain_add(c, C.llama_sampler_init_temp(C.float(s.Temperature)))
	C.llama_sampler_chain_add(c, C.llama_sampler_init_dist(C.uint32_t(seed)))
	return c
}

// GeneratorOptions configure a generation context.
type GeneratorOptions struct {
	NSeqMax int // prompts decoded together (one KV stream each)
	NCtx    int // tokens per sequence: prompt plus reply (0: the model's context)
	Threads int
}

// Generator is a llama.cpp context that generates replies to many prompts
// at once: one llama_batch carries every live sequence, one token each per
// step after the prompts.
type Generator struct {
	c     *C.struct_llama_context
	model *LlamaModel
	opts  GeneratorOptions
}

// NewGenerator makes a generation context on the model.
func (m *LlamaModel) NewGenerator(opts GeneratorOptions) (*Generator, error) {
	if opts.NCtx <= 0 {
		opts.NCtx = m.NCtxTrain()
	}
	opts.NSeqMax = max(opts.NSeqMax, 1)
	opts.Threads = max(opts.Threads, 1)
	p := C.llama_context_default_params()
	total := opts.NCtx * opts.NSeqMax
	p.n_ctx = C.uint32_t(total)
	p.n_batch = C.uint32_t(total)
	p.n_ubatch = C.uint32_t(min(total, 512))
	p.n_seq_max = C.uint32_t(opts.NSeqMax)
	p.n_threads = C.int32_t(opts.Threads)
	p.n_threads_batch = C.int32_t(opts.Threads)
	p.no_perf = true
	m.avoidDeviceFlaws(&p)
	nativeLog()
	c := C.llama_init_from_model(m.m, p)
	if c == nil {
		return nil, nativeError("llama.cpp could not create a generation context")
	}
	return &Generator{c: c, model: m, opts: opts}, nil
}

// Close frees the context.
func (g *Generator) Close() {
	if g != nil && g.c != nil {
		C.llama_free(g.c)
		g.c = nil
	}
}

// Request is one prompt to answer.
type Request struct {
	Prompt    string   // the whole prompt text, chat template already applied
	Seed      uint32   // seeds the sampler's draw: same seed, same reply
	MaxTokens int      // reply budget in tokens
	Stop      []string // the reply ends before the first of these
}

// Stop reasons of a Reply.
const (
	StopEOG    = "eog"    // the model ended its turn
	StopString = "stop"   // a stop string appeared
	StopLength = "length" // the token budget ran out
	StopPrompt = "prompt" // the prompt did not fit the context: nothing generated
)

// Reply is the answer to one Request.
type Reply struct {
	// Text is valid UTF-8: bytes that are not (a reply cut inside a
	// character, a noise model's byte tokens) become U+FFFD.
	Text         string
	Tokens       []int32 // sampled tokens (the stop token and any stop string's tokens included)
	PromptTokens int
	Stop         string
}

// GenerateStats count what one Generate call did.
type GenerateStats struct {
	PromptTokens, Tokens int
	PromptTime, Time     time.Duration // prompt processing; token generation
}

// Generate answers up to NSeqMax requests together. A prompt that leaves no
// room for its reply in a sequence's context gets Stop == StopPrompt. The
// context is checked between decode steps.
func (g *Generator) Generate(ctx context.Context, sampling Sampling, reqs []Request) ([]Reply, GenerateStats, error) {
	var stats GenerateStats
	if err := sampling.check(); err != nil {
		return nil, stats, err
	}
	if len(reqs) > g.opts.NSeqMax {
		return nil, stats, fmt.Errorf("%d requests, the generator decodes at most %d together", len(reqs), g.opts.NSeqMax)
	}
	type seq struct {
		id      int // llama seq id and index into reqs
		pos     int
		sampler *C.struct_llama_sampler
		out     int // index of this sequence's logits in the last batch
		text    strings.Builder
	}
	replies := make([]Reply, len(reqs))
	var all, live []*seq
	defer func() {
		for _, s := range all {
			if s.sampler != nil {
				C.llama_sampler_free(s.sampler)
			}
		}
	}()
	prompts := make([][]int32, len(reqs))
	total := 0
	for i, r := range reqs {
		if r.MaxTokens <= 0 {
			return nil, stats, fmt.Errorf("request %d: token budget %d must be positive", i, r.MaxTokens)
		}
		toks, err := g.model.promptTokens(r.Prompt)
		if err != nil {
			return nil, stats, fmt.Errorf("request %d: %w", i, err)
		}
		replies[i].PromptTokens = len(toks)
		if len(toks) == 0 || len(toks)+r.MaxTokens > g.opts.NCtx {
			replies[i].Stop = StopPrompt
			continue
		}
		prompts[i] = toks
		total += len(toks)
		all = append(all, &seq{id: i, pos: len(toks), sampler: sampling.chain(r.Seed)})
	}
	live = append(live, all...)
	if len(live) == 0 {
		return replies, stats, nil
	}
	batch := C.llama_batch_init(C.int32_t(max(total, len(reqs))), 0, 1)
	defer C.llama_batch_free(batch)
	tok := unsafe.Slice(batch.token, max(total, len(reqs)))
	pos := unsafe.Slice(batch.pos, len(tok))
	nseq := unsafe.Slice(batch.n_seq_id, len(tok))
	seqID := unsafe.Slice(batch.seq_id, len(tok))
	logits := unsafe.Slice(batch.logits, len(tok))
	put := func(k int, id int32, p, s int, out bool) {
		tok[k], pos[k], nseq[k] = C.llama_token(id), C.llama_pos(p), 1
		*seqID[k] = C.llama_seq_id(s)
		logits[k] = 0
		if out {
			logits[k] = 1
		}
	}
	decode := func(n int) error {
		batch.n_tokens = C.int32_t(n)
		nativeLog()
		if rc := C.llama_decode(g.c, batch); rc != 0 {
			return nativeError(fmt.Sprintf("llama.cpp failed to decode a batch of %d tokens (code %d)", n, int(rc)))
		}
		return nil
	}

	C.llama_memory_clear(C.llama_get_memory(g.c), true)
	start := time.Now()
	k := 0
	for _, s := range live {
		for p, id := range prompts[s.id] {
			put(k, id, p, s.id, p == len(prompts[s.id])-1)
			k++
		}
		s.out = k - 1
	}
	if err := decode(k); err != nil {
		return nil, stats, err
	}
	stats.PromptTokens = total
	stats.PromptTime = time.Since(start)

	start = time.Now()
	piece := make([]byte, 256)
	for len(live) > 0 {
		if err := ctx.Err(); err != nil {
			return nil, stats, err
		}
		next := live[:0]
		k = 0
		for _, s := range live {
			id := int32(C.llama_sampler_sample(s.sampler, g.c, C.int32_t(s.out)))
			r := &replies[s.id]
			r.Tokens = append(r.Tokens, id)
			stats.Tokens++
			done := ""
			if C.llama_vocab_is_eog(g.model.vocab, C.llama_token(id)) {
				done = StopEOG
			} else {
				n := C.llama_token_to_piece(g.model.vocab, C.llama_token(id), (*C.char)(unsafe.Pointer(&piece[0])), C.int32_t(len(piece)), 0, false)
				if n < 0 {
					return nil, stats, fmt.Errorf("token %d has a piece of %d bytes", id, -n)
				}
				before := s.text.Len()
				s.text.Write(piece[:n])
				if cut, ok := findStop(s.text.String(), before, reqs[s.id].Stop); ok {
					r.Text = s.text.String()[:cut]
					done = StopString
				} else if len(r.Tokens) >= reqs[s.id].MaxTokens {
					done = StopLength
				}
			}
			if done != "" {
				r.Stop = done
				if done != StopString {
					r.Text = s.text.String()
				}
				r.Text = strings.ToValidUTF8(r.Text, "\uFFFD")
				C.llama_sampler_free(s.sampler)
				s.sampler = nil
				continue
			}
			put(k, id, s.pos, s.id, true)
			s.pos++
			s.out = k
			k++
			next = append(next, s)
		}
		live = next
		if k > 0 {
			if err := decode(k); err != nil {
				return nil, stats, err
			}
		}
	}
	stats.Time = time.Since(start)
	return replies, stats, nil
}

// promptTokens tokenizes a templated prompt: special tokens written in it
// (the template's markers) become their ids, and BOS leads when the
// vocabulary asks for it and the template did not write one; EOS is never
// appended (some embedding vocabularies ask for it).
func (m *LlamaModel) promptTokens(prompt string) ([]int32, error) {
	if prompt == "" {
		return nil, nil
	}
	toks, err := m.Tokenize(prompt, false, true)
	if err != nil {
		return nil, err
	}
	if bos := m.BOS(); m.AddsBOS() && bos >= 0 && (len(toks) == 0 || toks[0] != bos) {
		toks = append([]int32{bos}, toks...)
	}
	return toks, nil
}

// findStop finds the earliest stop string that ends at or after byte from of
// text (only the new piece can complete one) and returns where it starts.
func findStop(text string, from int, stops []string) (int, bool) {
	best := -1
	for _, s := range stops {
		if s == "" {
			continue
		}
		lo := max(0, from-len(s)+1)
		if i := strings.Index(text[lo:], s); i >= 0 && (best < 0 || lo+i < best) {
			best = lo + i
		}
	}
	return best, best >= 0
}
