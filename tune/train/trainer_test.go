package train

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ragtune/ragtune/bindings/gguf"
	"github.com/ragtune/ragtune/retrieval/dataset"
	"github.com/ragtune/ragtune/retrieval/dataset/importer"
	"github.com/ragtune/ragtune/retrieval/shareddata"
	"github.com/ragtune/ragtune/tune/adapter"
)

// miniSlice imports the mini data set and keeps n training queries and the
// first 120 validation queries, so a run takes seconds.
func miniSlice(t *testing.T, n int) *dataset.Dataset {
	dir := shareddata.Dir(t, "debian-packages", "mini")
	d, _, err := importer.Import(dir, importer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d.Qrels["train"] = d.Qrels["train"][:n]
	d.Qrels["validation"] = d.Qrels["validation"][:120]
	// The judged documents and 300 others make a corpus that is quick to embed.
	keep := map[string]bool{}
	for _, qrels := range d.Qrels {
		for _, q := range qrels {
			keep[q.DocID] = true
		}
	}
	var corpus []dataset.Doc
	for i, doc := range d.Corpus {
		if keep[doc.ID] || i < 300 {
			corpus = append(corpus, doc)
		}
	}
	d.Corpus = corpus
	return d
}

func smallConfig() Config {
	return Config{Method: MethodLoRA, LoRA: LoRAConfig{Rank: 4, Alpha: 8, Dropout: 0.1}, Epochs: 2, LR: 1e-3, Batch: 8,
		MaxSeq: 32, Threads: 2, Seed: 5, Warmup: 0.1, EvalK: 10}
}

func TestRunWritesAdapterLogsAndCheckpoint(t *testing.T) {
	d := miniSlice(t, 48)
	qs, ds := miniPairs(t, 300)
	model := writeTiny(t, "bert", gguf.F32, append(qs, ds...))
	out := t.TempDir()
	res, err := Run(context.Background(), model, d, out, smallConfig(), Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Steps != 12 || res.Base == nil || res.Best == nil || len(res.History) != 3 {
		t.Fatalf("unexpected result %+v", res)
	}
	for _, f := range []string{"adapter.gguf", "train_log.csv", "eval_log.csv", "checkpoint/state.json"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
	info, err := adapter.Inspect(filepath.Join(out, "adapter.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	if info.Alpha != 8 || len(info.Pairs) != 12 { // every linear layer by default: 6 kinds x 2 layers
		t.Errorf("adapter: alpha %v, %d pairs", info.Alpha, len(info.Pairs))
	}
	if res.TrainFLOPs <= 0 || res.PeakRSSBytes <= 0 || res.ComputeBytes <= 0 {
		t.Errorf("missing accounting: %+v", res)
	}
}

// TestResumeEqualsUninterrupted kills a run after step 5 (checkpointing
// every step) and resumes it: the final parameters must equal those of a
// run that was never interrupted, bit for bit, with the optimizer on the
// device (its state downloaded to checkpoints and uploaded on resume) and
// on the host.
func TestResumeEqualsUninterrupted(t *testing.T) {
	d := miniSlice(t, 48)
	qs, ds := miniPairs(t, 300)
	model := writeTiny(t, "bert", gguf.F32, append(qs, ds...))
	for _, where := range []string{"device", "host"} {
		t.Run(where, func(t *testing.T) {
			cfg := smallConfig()
			cfg.HostOptimizer = where == "host"
			testResume(t, model, d, cfg, where)
		})
	}
}

func testResume(t *testing.T, model string, d *dataset.Dataset, cfg Config, where string) {
	cfg.CheckpointN = 1
	straight := t.TempDir()
	res, err := Run(context.Background(), model, d, straight, cfg, Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Optimizer != where {
		t.Fatalf("the optimizer ran on the %s, want %s", res.Optimizer, where)
	}
	killed := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	_, err = Run(ctx, model, d, killed, cfg, Hooks{Step: func(p Progress) {
		if p.Step == 5 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("want a cancelled run, got %v", err)
	}
	res, err = Run(context.Background(), model, d, killed, cfg, Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	if res.ResumedFromStep != 5 || res.Steps != 12 {
		t.Fatalf("resumed from %d, %d steps", res.ResumedFromStep, res.Steps)
	}
	a, _ := os.ReadFile(filepath.Join(straight, "adapter.gguf"))
	b, _ := os.ReadFile(filepath.Join(killed, "adapter.gguf"))
	if string(a) != string(b) {
		t.Error("resumed run's adapter differs from the uninterrupted run's")
	}
	if _, err := Run(context.Background(), model, d, killed, Config{Method: MethodFull, Threads: 2}, Hooks{}); err == nil {
		t.Error("a run folder of another configuration was resumed")
	}
}

func TestDivergingRunFails(t *testing.T) {
	d := miniSlice(t, 48)
	qs, ds := miniPairs(t, 300)
	model := writeTiny(t, "bert", gguf.F32, append(qs, ds...))
	cfg := smallConfig()
	cfg.Method, cfg.LR, cfg.ClipNorm, cfg.Epochs = MethodFull, 1e6, -1, 1
	_, err := Run(context.Background(), model, d, t.TempDir(), cfg, Hooks{})
	var div *DivergedError
	if !errors.As(err, &div) {
		t.Fatalf("want a divergence error, got %v", err)
	}
	t.Log(err)
}
