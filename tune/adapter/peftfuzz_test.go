package adapter

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/ragtune/ragtune/tune/modelinit"
)

// FuzzImportPEFT: any adapter_config.json and adapter_model.safetensors
// bytes give an error or an adapter that llama.cpp's checks accept, never a
// panic.
func FuzzImportPEFT(f *testing.F) {
	dir := f.TempDir()
	base := filepath.Join(dir, "bert.gguf")
	texts := []string{"apt installs packages", "git tracks source code", "vim edits text files"}
	if _, err := modelinit.Write(base, modelinit.Options{Arch: "bert", Texts: texts, Vocab: 200, Layers: 1, Dim: 32, Heads: 2, FF: 64}); err != nil {
		f.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	ad := filepath.Join(dir, "a.gguf")
	pairs := []Pair{randomPair(rng, "blk.0.attn_q.weight", 32, 32, 2), randomPair(rng, "blk.0.ffn_up.weight", 32, 64, 1)}
	if err := Save(ad, "bert", 4, pairs, nil); err != nil {
		f.Fatal(err)
	}
	seed := filepath.Join(dir, "peft")
	if _, err := ExportPEFT(ad, seed, PEFTOptions{}); err != nil {
		f.Fatal(err)
	}
	cfg, _ := os.ReadFile(filepath.Join(seed, PEFTConfigFile))
	weights, _ := os.ReadFile(filepath.Join(seed, PEFTWeightsFile))
	f.Add(cfg, weights)
	f.Add([]byte(`{"peft_type":"LORA","r":1,"lora_alpha":1,"use_rslora":true}`), weights[:len(weights)/2])

	f.Fuzz(func(t *testing.T, cfg, weights []byte) {
		in := t.TempDir()
		if err := os.WriteFile(filepath.Join(in, PEFTConfigFile), cfg, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(in, PEFTWeightsFile), weights, 0o644); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "out.gguf")
		if _, err := ImportPEFT(in, out, base); err != nil {
			return
		}
		if _, err := Inspect(out); err != nil {
			t.Fatalf("imported adapter refused: %v", err)
		}
	})
}
