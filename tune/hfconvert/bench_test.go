package hfconvert

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ragtune/ragtune/bindings/gguf"
	"github.com/ragtune/ragtune/bindings/safetensors"
	"github.com/ragtune/ragtune/tune/modelinit"
)

// BenchmarkConvert converts a llama-shaped bf16 checkpoint of about 17 M
// parameters (E 512, 4 layers, FF 1408, 8000-row embedding) and reports the
// throughput and the peak Go heap against the largest tensor's float32 size:
// streaming keeps the peak near a few times that, whatever the model's size.
func BenchmarkConvert(b *testing.B) {
	const E, L, F, V, H = 512, 4, 1408, 8000, 8
	dir := filepath.Join(b.TempDir(), "hf")
	must(b, os.MkdirAll(dir, 0o755))
	v, err := modelinit.BuildSentencePiece(corpus, 400)
	must(b, err)
	m := &spmModel{ModelType: spmBPE, AddDummy: true}
	for i, tok := range v.Tokens {
		m.Pieces = append(m.Pieces, spmPiece{Text: tok, Score: v.Scores[i], Type: v.Types[i]})
	}
	must(b, os.WriteFile(filepath.Join(dir, "tokenizer.model"), encodeSPM(m), 0o644))
	writeTestJSON(b, filepath.Join(dir, "config.json"), map[string]any{
		"architectures": []string{"MistralModel"}, "hidden_size": E, "num_hidden_layers": L, "num_attention_heads": H,
		"num_key_value_heads": H / 4, "intermediate_size": F, "max_position_embeddings": 512, "rms_norm_eps": 1e-5,
	})
	c := newCheckpoint(1)
	c.add("embed_tokens.weight", c.normal(V*E, 0, 0.02), V, E)
	for l := 0; l < L; l++ {
		p := fmt.Sprintf("layers.%d.", l)
		c.vec(p+"input_layernorm.weight", E, 1)
		c.mat(p+"self_attn.q_proj.weight", E, E)
		c.mat(p+"self_attn.k_proj.weight", E/4, E)
		c.mat(p+"self_attn.v_proj.weight", E/4, E)
		c.mat(p+"self_attn.o_proj.weight", E, E)
		c.vec(p+"post_attention_layernorm.weight", E, 1)
		c.mat(p+"mlp.gate_proj.weight", F, E)
		c.mat(p+"mlp.up_proj.weight", F, E)
		c.mat(p+"mlp.down_proj.weight", E, F)
	}
	c.vec("norm.weight", E, 1)
	var params int64
	for _, n := range c.names {
		params += int64(len(c.vals[n]))
	}
	c.write(b, dir, safetensors.BF16, 3)
	c.vals = nil // the checkpoint lives on disk only
	runtime.GC()
	out := filepath.Join(b.TempDir(), "m.gguf")
	for _, typ := range []gguf.TensorType{gguf.F16, gguf.Q8_0} {
		b.Run(typ.String(), func(b *testing.B) {
			var peak atomic.Uint64
			stop := make(chan struct{})
			go func() {
				var ms runtime.MemStats
				for {
					select {
					case <-stop:
						return
					case <-time.After(2 * time.Millisecond):
						runtime.ReadMemStats(&ms)
						if ms.HeapInuse > peak.Load() {
							peak.Store(ms.HeapInuse)
						}
					}
				}
			}()
			for b.Loop() {
				if _, err := Convert(dir, out, Options{Type: typ}); err != nil {
					b.Fatal(err)
				}
			}
			close(stop)
			b.ReportMetric(float64(params)/1e6/(b.Elapsed().Seconds()/float64(b.N)), "Mparams/s")
			b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
			b.ReportMetric(float64(V*E*4)/(1<<20), "largest-tensor-f32-MiB")
		})
	}
}
