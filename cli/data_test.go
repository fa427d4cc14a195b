package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ragtune/ragtune/retrieval/dataset"
	"github.com/ragtune/ragtune/retrieval/shareddata"
)

// TestDataCommands walks the data workflow on the shared mini set: import,
// stats, split, negatives (BM25 and random), few-shot, check, export and
// re-import, with flags both before and after positional arguments.
func TestDataCommands(t *testing.T) {
	mini := shareddata.Dir(t, "debian-packages", "mini")
	tmp := t.TempDir()
	ds := filepath.Join(tmp, "ds")
	out, err := runCLI(t, "data", "import", "--in", mini, "--out", ds, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var imp struct {
		Docs   int                           `json:"docs"`
		Splits map[string]dataset.SplitCount `json:"splits"`
	}
	if err := json.Unmarshal([]byte(out), &imp); err != nil || imp.Docs != 6000 || imp.Splits[dataset.Validation].Queries != 300 {
		t.Fatalf("import --json: %v\n%s", err, out)
	}
	out, err = runCLI(t, "data", "stats", ds, "--json")
	var st dataset.Stats
	if err != nil || json.Unmarshal([]byte(out), &st) != nil || st.Queries != 1700 {
		t.Fatalf("stats: %v\n%s", err, out)
	}
	split := filepath.Join(tmp, "split")
	if out, err = runCLI(t, "data", "split", ds, "--out", split, "--seed", "3"); err != nil || !strings.Contains(out, "test") {
		t.Fatalf("split: %v\n%s", err, out)
	}
	neg := filepath.Join(tmp, "neg")
	out, err = runCLI(t, "data", "negatives", "--data", split, "--out", neg, "--num", "2", "--range-max", "20")
	if err != nil || !strings.Contains(out, "positive") || !strings.Contains(out, "negative") || !strings.Contains(out, "bm25") {
		t.Fatalf("negatives: %v\n%s", err, out)
	}
	if out, err = runCLI(t, "data", "negatives", neg, "--out", neg, "--mode", "random", "--split", dataset.Validation); err != nil {
		t.Fatalf("random negatives: %v\n%s", err, out)
	}
	d, err := dataset.Open(neg)
	if err != nil || len(d.Examples[dataset.Train]) == 0 || len(d.Examples[dataset.Validation]) == 0 {
		t.Fatalf("negatives saved: %v", err)
	}
	few := filepath.Join(tmp, "few")
	if out, err = runCLI(t, "data", "fewshot", neg, "--out", few, "--n", "25", "--json"); err != nil || !strings.Contains(out, `"queries": 25`) {
		t.Fatalf("fewshot: %v\n%s", err, out)
	}
	// The mini set has a few over-long and near-duplicate texts, and its
	// published split shares one relevant document between train and
	// validation: check fails until those kinds are ignored.
	if out, err = runCLI(t, "data", "check", ds); err == nil || ExitCode(err) != 1 || !strings.Contains(out, "too_long") {
		t.Fatalf("check: %v\n%s", err, out)
	}
	if out, err = runCLI(t, "data", "check", ds, "--ignore", "too_long,duplicate_text", "--ignore", "split_leak"); err != nil {
		t.Fatalf("check --ignore: %v\n%s", err, out)
	}
	exp := filepath.Join(tmp, "exp")
	if out, err = runCLI(t, "data", "export", few, "--out", exp); err != nil || !strings.Contains(out, "pairs-train.jsonl") {
		t.Fatalf("export: %v\n%s", err, out)
	}
	back := filepath.Join(tmp, "back")
	if out, err = runCLI(t, "data", "import", "--in", filepath.Join(exp, "pairs-train.jsonl"), "--out", back, "--format", "st"); err != nil {
		t.Fatalf("re-import pairs: %v\n%s", err, out)
	}
	if _, err = runCLI(t, "data", "export", few, "--out", filepath.Join(tmp, "pq"), "--format", "parquet", "--split", "train"); err != nil {
		t.Fatal(err)
	}
}

func TestDataImportErrors(t *testing.T) {
	tmp := t.TempDir()
	bad := filepath.Join(tmp, "bad.jsonl")
	os.WriteFile(bad, []byte("{\"anchor\": \"a\", \"positive\": \"p\"}\n{\"anchor\": \"b\", \"positive\": \n"), 0o644)
	_, err := runCLI(t, "data", "import", "--in", bad, "--out", filepath.Join(tmp, "x"))
	if err == nil || !strings.Contains(err.Error(), "bad.jsonl:2:") {
		t.Fatalf("broken line: %v", err)
	}
	out, err := runCLI(t, "data", "import", "--in", bad, "--out", filepath.Join(tmp, "x"), "--skip-bad")
	if err != nil || !strings.Contains(out, "skipped 1 bad records") {
		t.Fatalf("--skip-bad: %v\n%s", err, out)
	}
	csvPath := filepath.Join(tmp, "t.tsv")
	os.WriteFile(csvPath, []byte("name\tsynopsis\tbody\nvim\teditor\tVi IMproved\n"), 0o644)
	out, err = runCLI(t, "data", "import", "--in", csvPath, "--out", filepath.Join(tmp, "t"),
		"--id-col", "name", "--query-col", "synopsis", "--text-col", "body", "--json")
	if err != nil || !strings.Contains(out, `"docs": 1`) {
		t.Fatalf("tsv: %v\n%s", err, out)
	}
	if _, err = runCLI(t, "data", "stats", filepath.Join(tmp, "nothing")); err == nil {
		t.Fatal("missing dataset accepted")
	}
}
