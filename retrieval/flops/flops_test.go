package flops

import (
	"math"
	"testing"
)

func TestMiniLMByHand(t *testing.T) {
	// all-MiniLM-L6-v2: bert, 6 layers, d 384, 12 heads of 32, ff 1536.
	a, err := Uniform("bert", 6, 384, 12, 0, 1536, 30522)
	if err != nil {
		t.Fatal(err)
	}
	p := a.Forward(128)
	// Per layer: projections 4·2·384² = 1,179,648; scores 2·12·(32+32)·128 = 196,608;
	// ffn 2·2·384·1536 = 2,359,296.
	if p.AttnProj != 6*1179648 || p.AttnScores != 6*196608 || p.FFN != 6*2359296 {
		t.Fatalf("per token %+v", p)
	}
	e, err := a.Estimate(1e6, 128, 8)
	if err != nil {
		t.Fatal(err)
	}
	fwd := 6.0 * (1179648 + 196608 + 2359296) * 1e6
	if e.Forward != fwd || e.FullFT != 3*fwd {
		t.Fatalf("forward %g full %g", e.Forward, e.FullFT)
	}
	if f := 2.0/3 + 16.0/384; math.Abs(e.LoRAFactor-f) > 1e-15 || math.Abs(e.LoRA-f*3*fwd) > 1 {
		t.Fatalf("lora factor %g total %g", e.LoRAFactor, e.LoRA)
	}
	// Matrix parameters: 6·(4·384² + 2·384·1536) = 10,616,832 (MiniLM has ~22.7M
	// with its 11.7M embedding table).
	if m, emb := a.Params(); m != 10616832 || emb != 30522*384 {
		t.Fatalf("params %g %g", m, emb)
	}
}

func TestLlamaGQA(t *testing.T) {
	// Mistral-7B shapes: 32 layers, d 4096, 32 heads, 8 kv heads, ff 14336.
	a, err := Uniform("llama", 32, 4096, 32, 8, 14336, 32000)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := a.Params()
	if math.Abs(m-6.98e9) > 0.01e9 { // 7.24B total minus 2·32000·4096 embeddings/head
		t.Fatalf("matrix params %g, want about 6.98e9", m)
	}
	p := a.Forward(1)
	// Causal with S = 1: each token attends to (1+1)/2 = 1 position.
	if want := 32 * 2 * 32 * (128 + 128) * 1.0; p.AttnScores != want {
		t.Fatalf("scores %g, want %g", p.AttnScores, want)
	}
	if p.AttnProj+p.FFN != 2*m {
		t.Fatalf("matrix FLOPs %g, want 2 × params %g", p.AttnProj+p.FFN, 2*m)
	}
}

func TestQwen3WideHeads(t *testing.T) {
	// Qwen3-Embedding-0.6B: 28 layers, d 1024, 16 heads and 8 kv heads of
	// 128 (wider than 1024/16), ff 3072; its card says 0.44B non-embedding
	// parameters.
	a, err := Uniform("qwen3", 28, 1024, 16, 8, 3072, 151669)
	if err != nil {
		t.Fatal(err)
	}
	if a, err = a.WithHeadDim(128); err != nil {
		t.Fatal(err)
	}
	// Per layer: 1024·(2048+1024+1024) + 2048·1024 + 3·1024·3072 = 15,728,640.
	if m, _ := a.Params(); m != 28*15728640 {
		t.Fatalf("matrix params %g, want %d", m, 28*15728640)
	}
	p := a.Forward(3)
	// Causal: (3+1)/2 = 2 positions on average, 16 heads of 128+128.
	if want := 28 * 2 * 16 * 256 * 2.0; p.AttnScores != want {
		t.Fatalf("scores %g, want %g", p.AttnScores, want)
	}
	if _, err := a.WithHeadDim(0); err == nil {
		t.Error("head size 0 accepted")
	}
}

func TestNomicBert(t *testing.T) {
	// nomic-embed-text v1.5: 12 layers, d 768, 12 heads, SwiGLU ff 3072,
	// bidirectional: 137M parameters, 23.4M of them embeddings (30528 × 768).
	a, err := Uniform("nomic-bert", 12, 768, 12, 0, 3072, 30528)
	if err != nil {
		t.Fatal(err)
	}
	m, emb := a.Params()
	// Per layer: 4·768² + 3·768·3072 = 9,437,184.
	if m != 12*9437184 || emb != 30528*768 {
		t.Fatalf("params %g %g", m, emb)
	}
	if p := a.Forward(8); p.AttnScores != 12*2*12*(64+64)*8 {
		t.Fatalf("scores %g: nomic-bert attends to every position", p.AttnScores)
	}
}

func TestUniformErrors(t *testing.T) {
	for _, c := range [][7]any{
		{"gpt2", 1, 8, 2, 2, 8, 0}, {"bert", 0, 8, 2, 2, 8, 0}, {"bert", 1, 9, 2, 2, 8, 0}, {"llama", 1, 8, 4, 3, 8, 0},
	} {
		if _, err := Uniform(c[0].(string), c[1].(int), c[2].(int), c[3].(int), c[4].(int), c[5].(int), c[6].(int)); err == nil {
			t.Errorf("%v accepted", c)
		}
	}
}
