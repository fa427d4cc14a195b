package cli

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// TestTrainDoRAAndMinedNegatives runs the two training variants that
// change what a run writes or reads: DoRA, which exports a merged
// model.gguf that embed takes as a model and adapter merge refuses as an
// adapter; and hard negatives re-mined by the model every 2 steps.
func TestTrainDoRAAndMinedNegatives(t *testing.T) {
	p, mustRun := smallTrainingSetup(t, 32, 16)
	common := []string{"--model", p("m.gguf"), "--data", p("ds"), "--batch", "8", "--max-seq", "32", "--rank", "4", "--threads", "2", "--json"}

	out := mustRun(append([]string{"train", "--out", p("dora"), "--method", "dora", "--max-steps", "3", "--lr", "1e-2"}, common...)...)
	var dora struct {
		Steps  int
		Output string
	}
	if err := json.Unmarshal([]byte(out), &dora); err != nil || dora.Steps != 3 || dora.Output != p("dora/model.gguf") {
		t.Fatalf("dora run %+v (%v), want 3 steps and a merged model.gguf", dora, err)
	}
	if _, err := os.Stat(p("dora/adapter.gguf")); err == nil {
		t.Fatal("a DoRA run wrote an adapter.gguf")
	}
	os.WriteFile(p("texts.jsonl"), []byte(`{"text":"a text editor"}`+"\n"), 0o644)
	mustRun("embed", "--model", dora.Output, "--in", p("texts.jsonl"), "--out", p("emb.jsonl"))
	_, _, err := runApp(t, "adapter", "merge", p("m.gguf"), dora.Output, p("merged.gguf"))
	if err == nil || !strings.Contains(err.Error(), "DoRA") {
		t.Fatalf("adapter merge of a DoRA model: %v, want a refusal that says DoRA", err)
	}

	// An untrained model scores every document close to the positive, so
	// the margin would drop them all: --negative-margin 0 turns it off.
	out = mustRun(append([]string{"train", "--out", p("mined"), "--negatives-from", "model", "--remine-every", "2", "--max-steps", "4",
		"--negative-margin", "0", "--lr", "1e-3"}, common...)...)
	var mined struct {
		Steps   int
		Minings int                                `json:"negative_minings"`
		Negs    *struct{ Negatives, Examples int } `json:"mined_negatives"`
	}
	if err := json.Unmarshal([]byte(out), &mined); err != nil || mined.Steps != 4 || mined.Minings != 2 || mined.Negs == nil || mined.Negs.Negatives == 0 {
		t.Fatalf("mined run %s (%v): want 4 steps, minings at steps 0 and 2, and mined negatives", out, err)
	}
	if _, _, err := runApp(t, append([]string{"train", "--out", p("bad"), "--negatives-from", "tfidf"}, common...)...); err == nil || !strings.Contains(err.Error(), "tfidf") {
		t.Fatalf("--negatives-from tfidf: %v", err)
	}
}
