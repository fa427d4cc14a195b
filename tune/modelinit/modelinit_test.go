package modelinit

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ragtune/ragtune/bindings"
	"github.com/ragtune/ragtune/bindings/gguf"
)

// sharedCorpus returns the mini Debian corpus, skipping the test when the
// shared data is absent (unless RAGTUNE_REQUIRE_SHARED=1).
func sharedCorpus(t testing.TB) string {
	t.Helper()
	p := filepath.Join("..", "..", "..", "shared", "data", "debian-packages", "mini", "corpus.jsonl")
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("RAGTUNE_REQUIRE_SHARED") == "1" {
			t.Fatalf("shared data missing: %v", err)
		}
		t.Skipf("shared data absent (%v)", err)
	}
	return p
}

func sharedTexts(t testing.TB, n int) []string {
	texts, err := ReadCorpus(sharedCorpus(t))
	if err != nil {
		t.Fatal(err)
	}
	if n > 0 && n < len(texts) {
		texts = texts[:n]
	}
	return texts
}

// TestLlamaCppLoadsEveryModel: for both architectures and every weight type,
// the file passes our validator, llama.cpp loads it (weights included), and
// llama.cpp's tokenizer covers real texts with few unknown tokens.
func TestLlamaCppLoadsEveryModel(t *testing.T) {
	texts := sharedTexts(t, 0)
	train, held := texts[:800], texts[5900:5950]
	dir := t.TempDir()
	for _, arch := range []string{"bert", "llama", "qwen3", "nomic-bert", "bert+qkv", "gemma-embedding"} {
		build := map[string]func([]string, int) (*Vocab, error){"llama": BuildSentencePiece, "qwen3": BuildByteBPE, "gemma-embedding": BuildSentencePiece}[arch]
		if build == nil {
			build = BuildWordPiece
		}
		vocab, err := build(train, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, typ := range []gguf.TensorType{gguf.F32, gguf.F16, gguf.Q8_0, gguf.Q4_0, gguf.Q4_K} {
			t.Run(arch+"/"+typ.String(), func(t *testing.T) {
				o := Options{Vocabulary: vocab, Type: typ}
				o.Arch, o.FusedQKV = strings.CutSuffix(arch, "+qkv")
				if typ == gguf.Q4_K {
					o.Dim, o.FF = 256, 256
				}
				if arch == "gemma-embedding" {
					o.Dense = o.Dim * 2
				}
				path := filepath.Join(dir, arch+"-"+typ.String()+".gguf")
				res, err := Write(path, o)
				if err != nil {
					t.Fatal(err)
				}
				f, err := gguf.Open(path)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				hp, err := gguf.ValidateModel(f, o.Arch)
				if err != nil {
					t.Fatal(err)
				}
				if hp.Vocab != len(res.Vocab.Tokens) || hp.Vocab < 900 {
					t.Errorf("vocabulary of %d tokens (built %d)", hp.Vocab, len(res.Vocab.Tokens))
				}
				m, err := bindings.LoadLlamaModel(path, false)
				if err != nil {
					t.Fatal(err)
				}
				defer m.Close()
				if m.NEmbd() != int(hp.Embd) || m.VocabSize() != hp.Vocab {
					t.Errorf("llama.cpp sees n_embd %d, vocab %d", m.NEmbd(), m.VocabSize())
				}
				checkTokenization(t, m, tokenizerOf(o.Arch), held)
				checkForward(t, m, tokenizerOf(o.Arch))
			})
		}
	}
}

// tokenizerOf names the family whose tokenizer arch uses: nomic-bert's
// is bert's.
func tokenizerOf(arch string) string {
	if arch == "nomic-bert" {
		return "bert"
	}
	if arch == "gemma-embedding" {
		return "llama"
	}
	return arch
}

func checkTokenization(t *testing.T, m *bindings.LlamaModel, arch string, texts []string) {
	var total, unknown int
	for _, text := range texts {
		ids, err := m.Tokenize(text, true, false)
		if err != nil {
			t.Fatal(err)
		}
		if arch == "bert" {
			if ids[0] != bertCLS || ids[len(ids)-1] != bertSEP {
				t.Fatalf("bert tokens do not start with [CLS] and end with [SEP]: %v", ids[:3])
			}
		} else if arch == "llama" && (ids[0] != spmBOS || ids[len(ids)-1] != spmEOS) {
			t.Fatalf("llama tokens do not start with <s> and end with </s>: %v", ids[:3])
		} else if arch == "qwen3" && (ids[len(ids)-1] != m.EOS() || m.TokenText(ids[0]) == "<|endoftext|>") {
			t.Fatalf("qwen3 tokens must end with <|endoftext|> and start with none: %v", ids)
		}
		for _, id := range ids {
			total++
			// Unknown: [UNK] for WordPiece; for SPM a byte-fallback token
			// other than newline and tab, which SPM always writes as bytes.
			if (arch == "bert" && id == bertUnk) || (arch == "llama" && id >= 3 && id < 259 && id != 3+'\n' && id != 3+'\t') {
				unknown++
			}
		}
		if total > 0 && len(ids) > 2 && len(ids) > 4*len(strings.Fields(text))+4 {
			t.Errorf("%d tokens for %d words: the vocabulary hardly merges", len(ids), len(strings.Fields(text)))
		}
	}
	if frac := float64(unknown) / float64(total); frac > 0.01 {
		t.Errorf("%s: %d of %d tokens unknown (%.2f%%)", arch, unknown, total, 100*frac)
	}
	t.Logf("%s: %d tokens, %d unknown", arch, total, unknown)
}

// checkForward runs llama.cpp's own embedding pass on one text: the model's
// tensors are all usable by its graph.
func checkForward(t *testing.T, m *bindings.LlamaModel, arch string) {
	pool := bindings.PoolingUnspecified
	if arch != "bert" {
		pool = bindings.PoolingLast
	}
	ctx, err := m.NewEmbeddingContext(bindings.LlamaContextOptions{Pooling: pool, Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer ctx.Close()
	ids, err := m.Tokenize("Git is a version control system.", true, false)
	if err != nil {
		t.Fatal(err)
	}
	vecs, err := ctx.EmbedPooled([][]int32{ids})
	if err != nil {
		t.Fatal(err)
	}
	if len(vecs) != 1 || len(vecs[0]) != m.NEmbd() {
		t.Fatalf("llama.cpp returned %d vectors", len(vecs))
	}
	var norm float64
	for _, x := range vecs[0] {
		if x != x {
			t.Fatal("NaN in llama.cpp's embedding")
		}
		norm += float64(x) * float64(x)
	}
	if norm == 0 {
		t.Fatal("zero embedding")
	}
}
