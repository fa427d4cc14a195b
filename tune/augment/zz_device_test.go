package augment

import (
	"context"
	"slices"
	"testing"

	"github.com/ragtune/ragtune/bindings"
	"github.com/ragtune/ragtune/bindings/devicetest"
)

// This file's name makes its test the package's last (go test runs files
// in name order): it loads the test device's backend library, which must
// not reach the CPU tests.
//
// TestGenerateOnDevice samples with every layer of the tiny chat model on
// the test device ($RAGTUNE_DEVICE, default vulkan) and on the CPU, a few
// seeded prompts at once, and wants the same tokens: a seeded draw changes
// only where the backends' rounding moves a probability across it. On
// lavapipe llama.cpp's flash attention is turned off (its shaders crash
// lavapipe's compiler), which this run exercises.
func TestGenerateOnDevice(t *testing.T) {
	var reqs []bindings.Request
	for i, q := range docTexts[:3] {
		p, err := bindings.ApplyChatTemplate(chatML, []bindings.ChatMessage{{Role: "user", Content: "rewrite: " + q}}, true)
		if err != nil {
			t.Fatal(err)
		}
		reqs = append(reqs, bindings.Request{Prompt: p, Seed: uint32(i + 1), MaxTokens: 12})
	}
	replies := func(d bindings.Device) []bindings.Reply {
		m, err := bindings.LoadGeneratorModel(tinyGenerator(t), d)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		g, err := m.NewGenerator(bindings.GeneratorOptions{NSeqMax: len(reqs), NCtx: 512, Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		out, _, err := g.Generate(context.Background(), bindings.DefaultSampling, reqs)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	// The CPU's replies first, before the device's library is loaded (with
	// it loaded, CPU sampling was once seen to draw other tokens:
	// docs/ARCHITECTURE.md).
	want := replies(bindings.Device{})
	dev := devicetest.Device(t)
	got := replies(dev)
	for i := range reqs {
		t.Logf("%s: %q (cpu %q)", dev.Name(), got[i].Text, want[i].Text)
		if len(got[i].Tokens) == 0 || !slices.Equal(got[i].Tokens, want[i].Tokens) {
			t.Errorf("prompt %d: tokens %v on %s, %v on the CPU", i, got[i].Tokens, dev.Name(), want[i].Tokens)
		}
	}
}
