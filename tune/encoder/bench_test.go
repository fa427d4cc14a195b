package encoder

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/ragtune/ragtune/bindings"
	"github.com/ragtune/ragtune/bindings/gguf"
	"github.com/ragtune/ragtune/retrieval"
	"github.com/ragtune/ragtune/retrieval/shareddata"
	"github.com/ragtune/ragtune/tune/modelinit"
)

// Embedding throughput, ours against llama.cpp's engine in the same run, on
// a MiniLM-shaped bert (6 layers, 384 wide, 12 heads, FF 1536, context 512)
// and real texts (the first documents of the mini corpus, cut at 512
// tokens). llama.cpp attends across a whole packed batch, so it runs at
// several texts per call and the comparison is against its best; ours runs
// at several batch sizes.
//
//	go test -run XXX -bench EmbedThroughput -benchtime 1x ./tune/encoder
//
// Environment: RAGTUNE_BENCH_TEXTS (documents, default 256),
// RAGTUNE_BENCH_THREADS (default 2).
func BenchmarkEmbedThroughput(b *testing.B) {
	docs := corpusDocs(b)
	n := envInt(b, "RAGTUNE_BENCH_TEXTS", 256)
	threads := envInt(b, "RAGTUNE_BENCH_THREADS", 2)
	if n > len(docs) {
		n = len(docs)
	}
	// One vocabulary for both weight types, learnt from the whole corpus as
	// `ragtune model init` would.
	vocab, err := modelinit.BuildWordPiece(docs, 30522)
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	for _, typ := range []gguf.TensorType{gguf.F32, gguf.Q8_0} {
		path := filepath.Join(dir, fmt.Sprintf("minilm-%s.gguf", bindings.Type(typ)))
		o := modelinit.Options{Arch: "bert", Vocabulary: vocab, Layers: 6, Dim: 384, Heads: 12, FF: 1536, Ctx: 512, Seed: 1, Type: typ}
		if _, err := modelinit.Write(path, o); err != nil {
			b.Fatal(err)
		}
		seqs := benchTokens(b, path, docs[:n])
		// llama.cpp with its defaults (flash attention, F16 K/V), and exact
		// (no flash attention, F32 K/V: what parity compares against).
		engines := []struct {
			name    string
			engine  string
			exact   bool
			batches []int
		}{
			{"llama.cpp/texts", EngineLlama, false, []int{1, 8, 32}},
			{"llama.cpp-exact/texts", EngineLlama, true, []int{1, 8}},
			{"ggml/batch", EngineGGML, false, []int{8, 16, 32, 64}},
		}
		for _, eng := range engines {
			for _, batch := range eng.batches {
				name := fmt.Sprintf("%s/%s=%d", bindings.Type(typ), eng.name, batch)
				b.Run(name, func(b *testing.B) {
					benchEmbed(b, path, seqs, Options{Engine: eng.engine, Threads: threads, Batch: batch, Exact: eng.exact})
				})
			}
		}
	}
}

// benchEmbed embeds every sequence once per iteration and reports tokens/s
// and texts/s (real tokens, not padding).
func benchEmbed(b *testing.B, path string, seqs [][]int32, opts Options) {
	enc, err := Open(path, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer enc.Close()
	tokens := 0
	for _, s := range seqs {
		tokens += len(s)
	}
	ctx := context.Background()
	cpu0 := cpuSeconds(b)
	b.ResetTimer()
	for b.Loop() {
		if _, err := enc.EmbedTokens(ctx, seqs, retrieval.Document); err != nil {
			b.Fatal(err)
		}
	}
	sec := b.Elapsed().Seconds()
	b.ReportMetric(float64(tokens*b.N)/sec, "tokens/s")
	b.ReportMetric(float64(len(seqs)*b.N)/sec, "texts/s")
	// CPU time per 1k tokens moves less than wall time on a shared machine
	// (though ggml's threads also spin at barriers while a sibling waits).
	b.ReportMetric((cpuSeconds(b)-cpu0)/float64(tokens*b.N)*1000, "cpu-s/ktok")
	if opts.Engine == EngineGGML {
		b.ReportMetric(100*float64(paddedTokens(enc, seqs)-tokens)/float64(tokens), "pad%")
	}
}

// paddedTokens counts the tokens the ggml engine computes, padding
// included, for seqs cut into batches as EmbedTokens cuts them.
func paddedTokens(enc *Encoder, seqs [][]int32) int {
	order := make([]int, len(seqs))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return len(seqs[order[a]]) < len(seqs[order[b]]) })
	padded := 0
	for lo, hi := 0, 0; lo < len(order); lo = hi {
		hi = enc.batchEnd(seqs, order, lo)
		padded += (hi - lo) * min(paddedLen(len(seqs[order[hi-1]])), enc.cfg.Ctx)
	}
	return padded
}

// cpuSeconds is the process's user+system CPU time so far.
func cpuSeconds(b *testing.B) float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// benchTokens tokenizes texts with the model's tokenizer, cut at its context.
func benchTokens(b *testing.B, path string, texts []string) [][]int32 {
	cfg, err := readConfig(path)
	if err != nil {
		b.Fatal(err)
	}
	tok, err := NewTokenizer(path, cfg, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer tok.Close()
	seqs := make([][]int32, len(texts))
	tokens, cut := 0, 0
	for i, t := range texts {
		ids, truncated, err := tok.Encode(t)
		if err != nil {
			b.Fatalf("text %d: %v", i, err)
		}
		seqs[i] = ids
		tokens += len(ids)
		if truncated {
			cut++
		}
	}
	b.Logf("%d texts, %d tokens (mean %.0f), %d cut at %d", len(seqs), tokens, float64(tokens)/float64(len(seqs)), cut, tok.MaxTokens())
	return seqs
}

// corpusDocs reads every document text of the mini corpus.
func corpusDocs(b *testing.B) []string {
	dir := shareddata.Dir(b, "debian-packages", "mini")
	f, err := os.Open(filepath.Join(dir, "corpus.jsonl"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var docs []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<24)
	for line := 1; sc.Scan(); line++ {
		var d struct{ Text string }
		if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
			b.Fatalf("%s line %d: %v", f.Name(), line, err)
		}
		docs = append(docs, d.Text)
	}
	if err := sc.Err(); err != nil {
		b.Fatal(err)
	}
	return docs
}

func envInt(b *testing.B, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 {
		b.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return v
}
