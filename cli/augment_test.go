package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ragtune/ragtune/retrieval/dataset"
)

const testChatML = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"

// TestAugmentTrainEval is the path from documents without training queries
// to a tuned model: import, augment --mode queries with a tiny (noise)
// generator, split, train on the generated pairs, evaluate on the test
// split, which augmentation never touches.
func TestAugmentTrainEval(t *testing.T) {
	tmp := t.TempDir()
	p := func(name string) string { return filepath.Join(tmp, name) }
	mustRun := func(args ...string) string {
		t.Helper()
		out, err := runCLI(t, args...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return out
	}
	topics := []string{"python", "image", "network", "font", "archive", "editor", "debugger", "spell", "web", "mail", "audio", "video", "shell", "database", "compiler", "backup"}
	beir := p("beir")
	os.MkdirAll(filepath.Join(beir, "qrels"), 0o755)
	var corpus, queries strings.Builder
	for i, topic := range topics {
		fmt.Fprintf(&corpus, `{"_id":"d%d","title":"%s tools","text":"the %s package provides %s utilities and a library for %s work"}`+"\n", i, topic, topic, topic, topic)
	}
	qrels := map[string]*strings.Builder{"validation": {}, "test": {}}
	for i := range 6 {
		fmt.Fprintf(&queries, `{"_id":"q%d","text":"%s utilities"}`+"\n", i, topics[i])
		split := "validation"
		if i >= 3 {
			split = "test"
		}
		b := qrels[split]
		if b.Len() == 0 {
			b.WriteString("query-id\tcorpus-id\tscore\n")
		}
		fmt.Fprintf(b, "q%d\td%d\t1\n", i, i)
	}
	os.WriteFile(filepath.Join(beir, "corpus.jsonl"), []byte(corpus.String()), 0o644)
	os.WriteFile(filepath.Join(beir, "queries.jsonl"), []byte(queries.String()), 0o644)
	for s, b := range qrels {
		os.WriteFile(filepath.Join(beir, "qrels", s+".tsv"), []byte(b.String()), 0o644)
	}
	corpusFile := filepath.Join(beir, "corpus.jsonl")
	mustRun("model", "init", "--arch", "llama", "--corpus", corpusFile, "--out", p("gen.gguf"), "--vocab", "400", "--ctx", "512", "--chat-template", testChatML)
	mustRun("model", "init", "--arch", "bert", "--corpus", corpusFile, "--out", p("emb.gguf"), "--vocab", "300", "--dim", "32", "--ff", "64")
	mustRun("data", "import", "--in", beir, "--out", p("ds"))

	if _, err := runCLI(t, "data", "augment", p("ds"), "--out", p("x"), "--generator", p("gen.gguf"), "--mode", "paraphrase"); err == nil || !strings.Contains(err.Error(), "no judged queries") {
		t.Fatalf("paraphrasing a dataset without train queries: %v", err)
	}
	if _, err := runCLI(t, "data", "augment", p("ds"), "--out", p("ds"), "--generator", p("gen.gguf"), "--mode", "queries"); err == nil {
		t.Fatal("--out equal to the input accepted")
	}
	if _, err := runCLI(t, "data", "augment", p("ds"), "--out", p("x"), "--generator", p("emb.gguf"), "--mode", "queries", "--device", "cpu"); err == nil || !strings.Contains(err.Error(), "encoder") {
		t.Fatalf("a bert model as the generator: %v", err)
	}
	// The dataset argument first, flags after it.
	out := mustRun("data", "augment", p("ds"), "--out", p("ds2"), "--generator", p("gen.gguf"), "--mode", "queries", "--num", "2",
		"--filter-k", "0", "--max-tokens", "8", "--batch", "4", "--threads", "1", "--device", "cpu", "--json")
	var rep struct {
		Items    int                           `json:"items"`
		HeldOut  int                           `json:"held_out"`
		Requests int                           `json:"requests"`
		Kept     int                           `json:"kept"`
		Filtered map[string]int                `json:"filtered"`
		Splits   map[string]dataset.SplitCount `json:"splits"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	// The 6 documents judged in validation and test are not written for;
	// noise shares no words with its document, so BM25's consistency
	// filter is off here (tune/augment tests it).
	if rep.Items != 10 || rep.HeldOut != 6 || rep.Requests != 20 || rep.Kept == 0 || rep.Filtered["inconsistent"] != 0 || rep.Splits["train"].Queries != rep.Kept {
		t.Fatalf("augment report:\n%s", out)
	}
	// The consistency filter with an embedding model instead of BM25.
	out = mustRun("data", "augment", p("ds"), "--out", p("ds-emb"), "--generator", p("gen.gguf"), "--mode", "queries", "--sample", "4", "--num", "1",
		"--filter-model", p("emb.gguf"), "--filter-k", "16", "--max-tokens", "8", "--threads", "1", "--device", "cpu", "--json")
	var embRep struct {
		Items    int            `json:"items"`
		Kept     int            `json:"kept"`
		Filtered map[string]int `json:"filtered"`
	}
	if err := json.Unmarshal([]byte(out), &embRep); err != nil || embRep.Items != 4 || embRep.Kept+embRep.Filtered["empty"] != 4 {
		t.Fatalf("--filter-model with k = the whole corpus keeps every non-empty reply: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(p("ds2"), augmentJournal)); err != nil {
		t.Fatal(err)
	}
	orig, err := dataset.Open(p("ds"))
	if err != nil {
		t.Fatal(err)
	}
	aug, err := dataset.Open(p("ds2"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{dataset.Validation, dataset.Test} {
		if !reflect.DeepEqual(aug.Qrels[s], orig.Qrels[s]) {
			t.Fatalf("split %s changed by augment", s)
		}
	}
	if n := len(aug.GeneratedQueries()); n != rep.Kept {
		t.Fatalf("%d generated queries marked, %d kept", n, rep.Kept)
	}

	// data split keeps the generated queries in train.
	out = mustRun("data", "split", p("ds2"), "--out", p("ds3"), "--train", "0.34", "--validation", "0.33", "--test", "0.33", "--json")
	var split struct {
		Kept    int `json:"generated_kept"`
		Dropped int `json:"generated_dropped"`
	}
	if err := json.Unmarshal([]byte(out), &split); err != nil || split.Kept+split.Dropped != rep.Kept || split.Dropped != 0 {
		t.Fatalf("split of the augmented dataset: %v\n%s", err, out)
	}
	resplit, err := dataset.Open(p("ds3"))
	if err != nil {
		t.Fatal(err)
	}
	gen := resplit.GeneratedQueries()
	for _, s := range []string{dataset.Validation, dataset.Test} {
		for _, r := range resplit.Qrels[s] {
			if gen[r.QueryID] {
				t.Fatalf("generated query %s in %s", r.QueryID, s)
			}
		}
	}

	// train takes the augmented dataset as it is.
	mustRun("train", "--model", p("emb.gguf"), "--data", p("ds2"), "--out", p("run"), "--max-steps", "2", "--batch", "4",
		"--max-seq", "32", "--rank", "4", "--threads", "1", "--device", "cpu")
	if _, err := os.Stat(filepath.Join(p("run"), "adapter.gguf")); err != nil {
		t.Fatal(err)
	}
	mustRun("index", "build", "--corpus", p("ds2"), "--model", p("emb.gguf"), "--adapter", filepath.Join(p("run"), "adapter.gguf"), "--out", p("ix"), "--threads", "1", "--device", "cpu")
	for _, ds := range []string{p("ds"), p("ds2")} {
		var ev struct {
			Metrics map[string]float64 `json:"metrics"`
			Queries int                `json:"queries"`
		}
		out = mustRun("eval", "--index", p("ix"), "--data", ds, "--split", "test", "--json", "--threads", "1", "--device", "cpu")
		if err := json.Unmarshal([]byte(out), &ev); err != nil || ev.Queries != 3 {
			t.Fatalf("eval on %s: %v\n%s", ds, err, out)
		}
	}
	// Evaluation never judges generated queries: train has no real ones.
	var ev struct {
		Queries int `json:"queries"`
	}
	out = mustRun("eval", "--index", p("ix"), "--data", p("ds2"), "--split", "train", "--json", "--threads", "1", "--device", "cpu")
	if err := json.Unmarshal([]byte(out), &ev); err != nil || ev.Queries != 0 {
		t.Fatalf("eval of a train split holding only generated queries: %v\n%s", err, out)
	}
}
