package bindings_test

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/ragtune/ragtune/bindings"
	"github.com/ragtune/ragtune/bindings/llamaref"
	"github.com/ragtune/ragtune/tune/modelinit"
)

// chatML is the Jinja template Qwen and many other chat models ship;
// llama.cpp recognises it by its <|im_start|> marker.
const chatML = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"

var generatorTexts = []string{
	"the package manager installs python modules and their dependencies",
	"a library for parsing command line arguments in scripts",
	"tools to convert images between formats and resize them",
	"documentation for the network time protocol daemon",
	"fonts with wide coverage of scripts and symbols",
	"a daemon that watches files and runs commands when they change",
}

// tinyGenerator writes a random llama model with a chat template: its
// replies are noise, which is all the plumbing needs.
func tinyGenerator(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gen.gguf")
	_, err := modelinit.Write(path, modelinit.Options{Arch: "llama", Texts: generatorTexts, Vocab: 400, Ctx: 512, Dim: 64, FF: 128, Seed: 7, ChatTemplate: chatML})
	if err != nil {
		t.Fatal(err)
	}
	return path
}

func loadGenerator(t testing.TB, path string, nseq int) (*bindings.LlamaModel, *bindings.Generator) {
	t.Helper()
	m, err := bindings.LoadGeneratorModel(path, bindings.Device{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	g, err := m.NewGenerator(bindings.GeneratorOptions{NSeqMax: nseq, NCtx: 256, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	return m, g
}

func chatPrompt(t testing.TB, m *bindings.LlamaModel, user string) string {
	t.Helper()
	p, err := bindings.ApplyChatTemplate(m.ChatTemplate(), []bindings.ChatMessage{{Role: "system", Content: "Write a search query."}, {Role: "user", Content: user}}, true)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestChatTemplate(t *testing.T) {
	m, _ := loadGenerator(t, tinyGenerator(t), 1)
	if m.ChatTemplate() != chatML {
		t.Fatalf("chat template read back as %q", m.ChatTemplate())
	}
	got := chatPrompt(t, m, "fonts")
	want := "<|im_start|>system\nWrite a search query.<|im_end|>\n<|im_start|>user\nfonts<|im_end|>\n<|im_start|>assistant\n"
	if got != want {
		t.Fatalf("chatml prompt\n got %q\nwant %q", got, want)
	}
	if p, err := bindings.ApplyChatTemplate("llama3", []bindings.ChatMessage{{Role: "user", Content: "hi"}}, true); err != nil || !strings.Contains(p, "<|start_header_id|>user<|end_header_id|>") {
		t.Fatalf("built-in llama3 template: %q, %v", p, err)
	}
	if _, err := bindings.ApplyChatTemplate("{{ no template llama.cpp knows }}", []bindings.ChatMessage{{Role: "user", Content: "hi"}}, true); err == nil {
		t.Fatal("an unknown template was accepted")
	}
	if _, err := bindings.ApplyChatTemplate("", nil, true); err == nil {
		t.Fatal("an empty template was accepted")
	}
	if !slices.Contains(bindings.BuiltinChatTemplates(), "chatml") {
		t.Fatalf("built-in templates %v lack chatml", bindings.BuiltinChatTemplates())
	}
}

func TestLoadGeneratorRefusesEncoder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bert.gguf")
	if _, err := modelinit.Write(path, modelinit.Options{Arch: "bert", Texts: generatorTexts, Vocab: 200}); err != nil {
		t.Fatal(err)
	}
	if _, err := bindings.LoadGeneratorModel(path, bindings.Device{}); err == nil || !strings.Contains(err.Error(), "encoder") {
		t.Fatalf("bert loaded as a generator: %v", err)
	}
}

var noisy = bindings.Sampling{Temperature: 1, TopK: 40, TopP: 0.95, MinP: 0.01, RepeatPenalty: 1.1, RepeatLastN: 64}

func generate(t *testing.T, g *bindings.Generator, s bindings.Sampling, reqs ...bindings.Request) []bindings.Reply {
	t.Helper()
	out, _, err := g.Generate(context.Background(), s, reqs)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestGenerateIsSeeded(t *testing.T) {
	m, g := loadGenerator(t, tinyGenerator(t), 1)
	p := chatPrompt(t, m, generatorTexts[0])
	a := generate(t, g, noisy, bindings.Request{Prompt: p, Seed: 1, MaxTokens: 24})[0]
	b := generate(t, g, noisy, bindings.Request{Prompt: p, Seed: 1, MaxTokens: 24})[0]
	c := generate(t, g, noisy, bindings.Request{Prompt: p, Seed: 2, MaxTokens: 24})[0]
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("same seed, different replies:\n%q\n%q", a.Text, b.Text)
	}
	if reflect.DeepEqual(a.Tokens, c.Tokens) {
		t.Fatalf("seeds 1 and 2 gave the same reply %q", a.Text)
	}
	if len(a.Tokens) == 0 || len(a.Tokens) > 24 || (a.Stop == bindings.StopLength) != (len(a.Tokens) == 24) {
		t.Fatalf("reply of %d tokens, stop %q, budget 24", len(a.Tokens), a.Stop)
	}
	if a.PromptTokens == 0 {
		t.Fatal("no prompt tokens counted")
	}
}

// TestGenerateMatchesLlamaLoop holds the generator, one prompt at a time,
// against llama.cpp's plain decode loop with the same sampler chain: the
// same tokens, bit for bit.
func TestGenerateMatchesLlamaLoop(t *testing.T) {
	path := tinyGenerator(t)
	m, g := loadGenerator(t, path, 1)
	ref, err := llamaref.Open(path, 256, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	for _, s := range []bindings.Sampling{noisy, {Temperature: 0, TopP: 1, RepeatPenalty: 1.3, RepeatLastN: 16}} {
		for seed := uint32(1); seed <= 3; seed++ {
			p := chatPrompt(t, m, generatorTexts[seed])
			got := generate(t, g, s, bindings.Request{Prompt: p, Seed: seed, MaxTokens: 32})[0]
			toks, err := m.Tokenize(p, false, true)
			if err != nil {
				t.Fatal(err)
			}
			want, err := ref.Generate(append([]int32{m.BOS()}, toks...), s, seed, 32)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Tokens, want) {
				t.Fatalf("sampling %+v seed %d:\n got %v\nwant %v", s, seed, got.Tokens, want)
			}
		}
	}
}

// TestBatchedEqualsOneAtATime: each sequence has its own sampler chain and
// KV stream, so a reply does not depend on what it was batched with.
func TestBatchedEqualsOneAtATime(t *testing.T) {
	path := tinyGenerator(t)
	m, g4 := loadGenerator(t, path, 4)
	_, g1 := loadGenerator(t, path, 1)
	var reqs []bindings.Request
	for i, text := range generatorTexts[:4] {
		reqs = append(reqs, bindings.Request{Prompt: chatPrompt(t, m, text), Seed: uint32(10 + i), MaxTokens: 20 + 3*i})
	}
	batched := generate(t, g4, noisy, reqs...)
	for i, r := range reqs {
		one := generate(t, g1, noisy, r)[0]
		if !reflect.DeepEqual(batched[i], one) {
			t.Fatalf("request %d: batched %v (%s), alone %v (%s)", i, batched[i].Tokens, batched[i].Stop, one.Tokens, one.Stop)
		}
	}
}

func TestGenerateStopsAndBudgets(t *testing.T) {
	m, g := loadGenerator(t, tinyGenerator(t), 2)
	p := chatPrompt(t, m, generatorTexts[2])
	greedy := bindings.Sampling{Temperature: 0, TopP: 1, RepeatPenalty: 1.5, RepeatLastN: 64}
	full := generate(t, g, greedy, bindings.Request{Prompt: p, MaxTokens: 40})[0]
	if len(full.Text) < 8 {
		t.Fatalf("reply too short to cut: %q", full.Text)
	}
	stop := full.Text[len(full.Text)/2 : len(full.Text)/2+3]
	cut := generate(t, g, greedy, bindings.Request{Prompt: p, MaxTokens: 40, Stop: []string{"never appears", stop}})[0]
	if want := full.Text[:strings.Index(full.Text, stop)]; cut.Text != want || cut.Stop != bindings.StopString {
		t.Fatalf("stop %q: got %q (%s), want %q", stop, cut.Text, cut.Stop, want)
	}
	short := generate(t, g, greedy, bindings.Request{Prompt: p, MaxTokens: 3})[0]
	if len(short.Tokens) != 3 || short.Stop != bindings.StopLength || !reflect.DeepEqual(short.Tokens, full.Tokens[:3]) {
		t.Fatalf("budget 3: %v (%s), full reply starts %v", short.Tokens, short.Stop, full.Tokens[:3])
	}
	long := strings.Repeat(generatorTexts[0]+" ", 40)
	both := generate(t, g, greedy, bindings.Request{Prompt: chatPrompt(t, m, long), MaxTokens: 8}, bindings.Request{Prompt: p, MaxTokens: 3})
	if both[0].Stop != bindings.StopPrompt || len(both[0].Tokens) != 0 || !reflect.DeepEqual(both[1], short) {
		t.Fatalf("an over-long prompt beside a short one: %+v / %+v", both[0], both[1])
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := g.Generate(ctx, greedy, []bindings.Request{{Prompt: p, MaxTokens: 5}}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: %v", err)
	}
	if _, _, err := g.Generate(context.Background(), bindings.Sampling{Temperature: 1, TopP: 0}, []bindings.Request{{Prompt: p, MaxTokens: 5}}); err == nil {
		t.Fatal("top-p 0 accepted")
	}
}
