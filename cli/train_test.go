package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ragtune/ragtune/retrieval/shareddata"
)

// writeSmallBEIR copies a slice of the mini data set into a BEIR folder: the
// documents judged for the first train and validation qrels plus 150 others,
// so a training run with validation takes seconds.
func writeSmallBEIR(t *testing.T, dir string, nTrain, nVal int) {
	t.Helper()
	src := shareddata.Dir(t, "debian-packages", "mini")
	lines := func(name string) []string {
		f, err := os.Open(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var out []string
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<24)
		for sc.Scan() {
			out = append(out, sc.Text())
		}
		return out
	}
	keepDoc, keepQuery := map[string]bool{}, map[string]bool{}
	os.MkdirAll(filepath.Join(dir, "qrels"), 0o755)
	for split, n := range map[string]int{"train": nTrain, "validation": nVal} {
		ls := lines(filepath.Join("qrels", split+".tsv"))
		ls = ls[:min(n+1, len(ls))]
		for _, l := range ls[1:] {
			f := strings.Fields(l)
			keepQuery[f[0]], keepDoc[f[1]] = true, true
		}
		os.WriteFile(filepath.Join(dir, "qrels", split+".tsv"), []byte(strings.Join(ls, "\n")+"\n"), 0o644)
	}
	filter := func(name string, keep map[string]bool, extra int) {
		var out []string
		for _, l := range lines(name) {
			var r struct {
				ID string `json:"_id"`
			}
			json.Unmarshal([]byte(l), &r)
			if keep[r.ID] || extra > 0 {
				if !keep[r.ID] {
					extra--
				}
				out = append(out, l)
			}
		}
		os.WriteFile(filepath.Join(dir, name), []byte(strings.Join(out, "\n")+"\n"), 0o644)
	}
	filter("corpus.jsonl", keepDoc, 150)
	filter("queries.jsonl", keepQuery, 0)
}

// TestTrainEmbedTuneEndToEnd runs the main job through the commands: model
// init, data import, train (LoRA), embed with the adapter, a two-trial study
// with the built-in training objective, and a diverging run's exit code.
func TestTrainEmbedTuneEndToEnd(t *testing.T) {
	p, mustRun := smallTrainingSetup(t, 64, 40)

	out := mustRun("train", "--model", p("m.gguf"), "--data", p("ds"), "--out", p("run"), "--epochs", "1",
		"--batch", "8", "--max-seq", "32", "--lr", "1e-3", "--rank", "4", "--threads", "2", "--json",
		"--val-queries", "20", "--val-docs", "100", "--carbon-intensity", "50")
	var res struct {
		Steps      int
		Output     string
		Best       *struct{ Scores map[string]float64 }
		Validation *struct{ Queries, Docs, JudgedDocs, Passes int }
		Energy     *struct {
			EnergyKWh       float64 `json:"energy_kwh"`
			EmissionsKg     float64 `json:"emissions_kg"`
			CarbonIntensity float64 `json:"carbon_intensity_g_per_kwh"`
			Method          string
		}
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("train --json %q: %v", out, err)
	}
	if res.Steps != 8 || res.Best == nil || res.Best.Scores["ndcg@10"] <= 0 || filepath.Base(res.Output) != "adapter.gguf" {
		t.Fatalf("train result %+v", res)
	}
	if v := res.Validation; v == nil || v.Queries != 20 || v.Docs != max(100, v.JudgedDocs) || v.Passes != 2 {
		t.Errorf("validation %+v, want 20 queries and at most 100 documents beyond the judged ones", v)
	}
	if e := res.Energy; e == nil || e.EnergyKWh <= 0 || e.CarbonIntensity != 50 || e.Method == "" {
		t.Errorf("energy %+v", e)
	}
	if rows := readCSV(t, p("run/emissions.csv")); len(rows) != 2 || rows[0][5] != "emissions" {
		t.Errorf("emissions.csv %v", rows)
	}
	// Without --json: the cost of validation before training, energy after.
	_, errOut, err := runApp(t, "train", "--model", p("m.gguf"), "--data", p("ds"), "--out", p("run-noval"), "--max-steps", "2",
		"--batch", "8", "--max-seq", "32", "--rank", "4", "--threads", "2", "--val", "none")
	if err != nil || strings.Contains(errOut, "validation:") {
		t.Errorf("--val none: %v\n%s", err, errOut)
	}
	textOut, errOut, err := runApp(t, "train", "--model", p("m.gguf"), "--data", p("ds"), "--out", p("run-text"), "--max-steps", "2",
		"--batch", "8", "--max-seq", "32", "--rank", "4", "--threads", "2", "--val-docs", "100")
	if err != nil || !strings.Contains(errOut, "validation: 40 of 40 queries") || !strings.Contains(errOut, "texts/s (measured)") ||
		!strings.Contains(textOut, "on a sample: 40 of 40 queries, 100 of") || !strings.Contains(textOut, "g CO2eq (475 g/kWh; cpu ") {
		t.Errorf("train's text output: %v\nstdout:\n%s\nstderr:\n%s", err, textOut, errOut)
	}

	// QLoRA recomputes activations by default: same steps, a smaller compute buffer.
	var lora, qlora struct {
		Steps         int
		ComputeBuffer int    `json:"compute_buffer_bytes"`
		StepMode      string `json:"step_mode"`
	}
	json.Unmarshal([]byte(out), &lora)
	qout := mustRun("train", "--model", p("m.gguf"), "--data", p("ds"), "--out", p("run-q"), "--method", "qlora", "--quant", "q8_0",
		"--epochs", "1", "--batch", "8", "--max-seq", "32", "--lr", "1e-3", "--rank", "4", "--threads", "2", "--json")
	if err := json.Unmarshal([]byte(qout), &qlora); err != nil || qlora.Steps != lora.Steps || qlora.ComputeBuffer >= lora.ComputeBuffer ||
		lora.StepMode != "whole graph" || qlora.StepMode != "recompute" {
		t.Fatalf("qlora %+v (%v) against lora %+v: want the same steps in a smaller compute buffer", qlora, err, lora)
	}
	var cached struct {
		Steps         int
		ComputeBuffer int    `json:"compute_buffer_bytes"`
		StepMode      string `json:"step_mode"`
	}
	cout := mustRun("train", "--model", p("m.gguf"), "--data", p("ds"), "--out", p("run-gc"), "--grad-cache", "3",
		"--epochs", "1", "--batch", "8", "--max-seq", "32", "--lr", "1e-3", "--rank", "4", "--threads", "2", "--json")
	if err := json.Unmarshal([]byte(cout), &cached); err != nil || cached.Steps != lora.Steps || cached.ComputeBuffer >= lora.ComputeBuffer ||
		cached.StepMode != "grad-cache 3" {
		t.Fatalf("--grad-cache 3 %+v (%v) against lora %+v: want the same steps in a smaller compute buffer", cached, err, lora)
	}
	for _, bad := range [][]string{{"--recompute", "sometimes"}, {"--recompute", "on", "--grad-cache", "4"}} {
		args := append([]string{"train", "--model", p("m.gguf"), "--data", p("ds"), "--out", p("bad")}, bad...)
		if _, _, err := runApp(t, args...); err == nil || !strings.Contains(err.Error(), "recompute") {
			t.Fatalf("%v: %v", bad, err)
		}
	}

	os.WriteFile(p("texts.jsonl"), []byte(`{"_id":"a","text":"a text editor"}`+"\n"+`{"text":"version control"}`+"\n"), 0o644)
	mustRun("embed", "--model", p("m.gguf"), "--adapter", res.Output, "--in", p("texts.jsonl"), "--out", p("emb.jsonl"))
	emb, _ := os.ReadFile(p("emb.jsonl"))
	if n := strings.Count(string(emb), "\"embedding\":["); n != 2 || !strings.HasPrefix(string(emb), `{"_id":"a","i":0,`) {
		t.Fatalf("embed output:\n%s", emb)
	}

	sweep := fmt.Sprintf(`study: e2e
objectives:
  - {metric: ndcg@5, direction: maximize}
  - {metric: train_flops, direction: minimize}
sampler:
  seed: 3
  schedule: [{name: random, trials: 2}]
space:
  lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
  rank: {type: categorical, choices: [2, 4]}
objective:
  train: {model: %s, data: %s, epochs: 1, batch: 8, max_seq: 32, threads: 2}
`, p("m.gguf"), p("ds"))
	os.WriteFile(p("sweep.yaml"), []byte(sweep), 0o644)
	db := "sqlite:///" + p("study.db")
	mustRun("tune", "run", "--config", p("sweep.yaml"), "--storage", db, "--quiet")
	status := mustRun("tune", "status", "--storage", db, "--study", "e2e", "--json")
	if !strings.Contains(status, `"COMPLETE": 2`) && !strings.Contains(status, `"complete": 2`) {
		t.Fatalf("study status: %s", status)
	}
	if _, err := os.Stat(p(filepath.Join("trials", "trial-1", "adapter.gguf"))); err != nil {
		t.Error(err)
	}
	mustRun("tune", "export", "--storage", db, "--study", "e2e", "--out", p("export"))
	rows := readCSV(t, p("export/trial_results_log.csv"))
	col := slices.Index(rows[0], "energy_kwh")
	for _, r := range rows[1:] {
		if col < 0 || r[col] == "" || r[col] == "0" {
			t.Errorf("trial_results_log.csv: no energy for trial %s (header %v)", r[0], rows[0])
		}
	}

	_, _, err = runApp(t, "train", "--model", p("m.gguf"), "--data", p("ds"), "--out", p("diverge"), "--method", "full",
		"--lr", "1e6", "--clip", "0", "--batch", "8", "--max-seq", "32", "--quiet")
	if ExitCode(err) != exitDiverged || !strings.Contains(fmt.Sprint(err), "diverged (loss") {
		t.Fatalf("diverging run: exit %d, %v", ExitCode(err), err)
	}
}

// smallTrainingSetup makes what the end-to-end training tests start from, in
// a temporary folder: a small BEIR folder (writeSmallBEIR), a tiny bert
// m.gguf with a vocabulary learnt from it and the dataset ds. It returns a
// path maker for that folder and a runner that fails the test on an error.
func smallTrainingSetup(t *testing.T, queries, docs int) (p func(string) string, mustRun func(...string) string) {
	t.Helper()
	dir := t.TempDir()
	beir := filepath.Join(dir, "beir")
	writeSmallBEIR(t, beir, queries, docs)
	p = func(name string) string { return filepath.Join(dir, name) }
	mustRun = func(args ...string) string {
		t.Helper()
		out, errOut, err := runApp(t, args...)
		if err != nil {
			t.Fatalf("ragtune %s: %v\n%s", strings.Join(args, " "), err, errOut)
		}
		return out
	}
	mustRun("model", "init", "--arch", "bert", "--corpus", filepath.Join(beir, "corpus.jsonl"), "--out", p("m.gguf"),
		"--layers", "2", "--dim", "64", "--heads", "4", "--ff", "128", "--ctx", "64", "--vocab", "800")
	mustRun("data", "import", "--in", beir, "--out", p("ds"))
	return p, mustRun
}
