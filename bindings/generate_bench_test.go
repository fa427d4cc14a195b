package bindings_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ragtune/ragtune/bindings"
	"github.com/ragtune/ragtune/bindings/llamaref"
	"github.com/ragtune/ragtune/tune/modelinit"
)

// BenchmarkGenerate measures generated tokens per second on one model and
// one sampler chain: ragtune's generator one prompt at a time and batched,
// and llama.cpp's plain decode loop (llamaref) one prompt at a time.
// The model: llama, 4 layers, width 256, FF 1024, a 2,000-token vocabulary
// (random weights: the speed of a small model, not of a chat model's text).
// RAGTUNE_BENCH_THREADS sets the threads (default 2; ggml's threads spin
// at barriers, so on a loaded shared machine 1 measures more truly).
func BenchmarkGenerate(b *testing.B) {
	const prompts, budget = 8, 32
	threads := 2
	if v, err := strconv.Atoi(os.Getenv("RAGTUNE_BENCH_THREADS")); err == nil && v > 0 {
		threads = v
	}
	path := filepath.Join(b.TempDir(), "gen.gguf")
	var texts []string
	for i := range 200 {
		texts = append(texts, fmt.Sprintf("%s number %d of the benchmark corpus", generatorTexts[i%len(generatorTexts)], i))
	}
	if _, err := modelinit.Write(path, modelinit.Options{Arch: "llama", Texts: texts, Vocab: 2000, Layers: 4, Dim: 256, Heads: 8, FF: 1024, Ctx: 512, ChatTemplate: chatML}); err != nil {
		b.Fatal(err)
	}
	m, err := bindings.LoadGeneratorModel(path, bindings.Device{})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	// llama.cpp's default chain; both paths sample the same tokens (a test
	// checks it), so they do the same work.
	s := bindings.Sampling{Temperature: 0.8, TopK: 40, TopP: 0.95, MinP: 0.05, RepeatPenalty: 1.1, RepeatLastN: 64}
	var reqs []bindings.Request
	for i := range prompts {
		p, err := bindings.ApplyChatTemplate(m.ChatTemplate(), []bindings.ChatMessage{{Role: "user", Content: "Write a query for: " + strings.Repeat(texts[i]+" ", 3)}}, true)
		if err != nil {
			b.Fatal(err)
		}
		reqs = append(reqs, bindings.Request{Prompt: p, Seed: uint32(i + 1), MaxTokens: budget})
	}
	for _, batch := range []int{1, prompts} {
		b.Run(fmt.Sprintf("ragtune/batch=%d", batch), func(b *testing.B) {
			g, err := m.NewGenerator(bindings.GeneratorOptions{NSeqMax: batch, NCtx: 256, Threads: threads})
			if err != nil {
				b.Fatal(err)
			}
			defer g.Close()
			tokens := 0
			b.ResetTimer()
			cpu := cpuTime()
			for range b.N {
				for lo := 0; lo < len(reqs); lo += batch {
					_, st, err := g.Generate(context.Background(), s, reqs[lo:lo+batch])
					if err != nil {
						b.Fatal(err)
					}
					tokens += st.Tokens
				}
			}
			reportSpeed(b, tokens, cpu)
		})
	}
	b.Run("llama.cpp-loop/batch=1", func(b *testing.B) {
		ref, err := llamaref.Open(path, 256, threads)
		if err != nil {
			b.Fatal(err)
		}
		defer ref.Close()
		var toks [][]int32
		for _, r := range reqs {
			t, err := m.Tokenize(r.Prompt, false, true)
			if err != nil {
				b.Fatal(err)
			}
			toks = append(toks, append([]int32{m.BOS()}, t...))
		}
		tokens := 0
		b.ResetTimer()
		cpu := cpuTime()
		for range b.N {
			for i, r := range reqs {
				out, err := ref.Generate(toks[i], s, r.Seed, r.MaxTokens)
				if err != nil {
					b.Fatal(err)
				}
				tokens += len(out)
			}
		}
		reportSpeed(b, tokens, cpu)
	})
}

// reportSpeed reports tokens per wall second and per CPU second of the
// process (the steadier figure on a shared, loaded machine).
func reportSpeed(b *testing.B, tokens int, cpuStart time.Duration) {
	b.ReportMetric(float64(tokens)/b.Elapsed().Seconds(), "tokens/s")
	b.ReportMetric(float64(tokens)/(cpuTime()-cpuStart).Seconds(), "tokens/cpu-s")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
