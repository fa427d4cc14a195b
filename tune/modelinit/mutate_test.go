package modelinit

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/ragtune/ragtune/bindings"
	"github.com/ragtune/ragtune/bindings/gguf"
)

// TestAcceptedMeansLoadable backs the promise of package gguf: a file that
// passes gguf.Read and gguf.ValidateModel does not crash llama.cpp. Random
// byte changes in the metadata of valid models are either refused by our
// validator or loaded (weights and vocabulary) and used by llama.cpp in this
// very process, where an abort would fail the test run.
func TestAcceptedMeansLoadable(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(11, 12))
	const tries = 400
	for _, arch := range []string{"bert", "llama", "qwen3", "nomic-bert", "gemma-embedding"} {
		layers := 1
		if arch == "gemma-embedding" {
			layers = 6 // its minimum
		}
		data := encodeModel(t, Options{Arch: arch, Texts: tinyTexts, Vocab: 300, Layers: layers, Dim: 32, Heads: 2, FF: 64})
		f, err := gguf.Read(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		meta := int(f.DataOffset)
		accepted := 0
		for i := 0; i < tries; i++ {
			mut := append([]byte(nil), data...)
			for n := 1 + rng.IntN(3); n > 0; n-- {
				mut[rng.IntN(meta)] = byte(rng.UintN(256))
			}
			g, err := gguf.Read(bytes.NewReader(mut), int64(len(mut)))
			if err != nil {
				continue
			}
			if _, err := gguf.ValidateModel(g, ""); err != nil {
				continue
			}
			accepted++
			path := filepath.Join(dir, "mut.gguf")
			if err := os.WriteFile(path, mut, 0o644); err != nil {
				t.Fatal(err)
			}
			m, err := bindings.LoadLlamaModel(path, false)
			if err != nil {
				t.Errorf("%s mutation %d: accepted by ValidateModel, refused by llama.cpp: %v", arch, i, err)
				continue
			}
			if _, err := m.Tokenize("Git is a version control system.", true, true); err != nil {
				t.Errorf("%s mutation %d: tokenize: %v", arch, i, err)
			}
			m.Close()
		}
		t.Logf("%s: %d of %d mutated files accepted and loaded by llama.cpp", arch, accepted, tries)
	}
}
