package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeCorpus(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "corpus.jsonl")
	body := `{"_id":"1","title":"git","text":"Git is a fast, scalable, distributed revision control system."}
{"_id":"2","title":"","text":"This package provides the GNU assembler and the GNU linker."}
{"_id":"3","title":"","text":"Python 3 bindings for the revision control library."}
`
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestModelInitInfoQuantize(t *testing.T) {
	dir := t.TempDir()
	corpus := writeCorpus(t, dir)
	bert := filepath.Join(dir, "bert.gguf")
	out, err := runCLI(t, "model", "init", "--arch", "bert", "--corpus", corpus, "--out", bert, "--layers", "1", "--dim", "32", "--heads", "2", "--ff", "64", "--ctx", "16", "--vocab", "200", "--pooling", "cls", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Arch, Pooling, Kind      string
		Layers, Dim, FF, Context int
		Vocab                    int
		TensorTypes              map[string]int `json:"tensor_types"`
	}
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("init --json: %v\n%s", err, out)
	}
	if info.Arch != "bert" || info.Kind != "model" || info.Layers != 1 || info.Dim != 32 || info.FF != 64 || info.Context != 16 || info.Pooling != "cls" || info.Vocab == 0 {
		t.Errorf("init summary %+v", info)
	}

	// Flags after and before the positional arguments.
	q1, q2 := filepath.Join(dir, "q1.gguf"), filepath.Join(dir, "q2.gguf")
	if out, err = runCLI(t, "model", "quantize", bert, q1, "--type", "q8_0"); err != nil || !strings.Contains(out, "re-encoded as q8_0") {
		t.Fatalf("quantize (trailing flag): %v\n%s", err, out)
	}
	if _, err = runCLI(t, "model", "quantize", "--type", "q8_0", "--json", bert, q2); err != nil {
		t.Fatalf("quantize (leading flag): %v", err)
	}
	a, _ := os.ReadFile(q1)
	b, _ := os.ReadFile(q2)
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Error("quantize output depends on flag order")
	}
	if out, err = runCLI(t, "model", "info", q1); err != nil || !strings.Contains(out, "mostly Q8_0 (7)") || !strings.Contains(out, "pooling:     cls") {
		t.Errorf("info: %v\n%s", err, out)
	}
	if _, err = runCLI(t, "model", "quantize", bert, q1, "--type", "q4_1"); err == nil {
		t.Error("quantize --type q4_1 accepted")
	}

	// A truncated model is refused with the byte offset; a garbage file too.
	trunc := filepath.Join(dir, "trunc.gguf")
	os.WriteFile(trunc, a[:len(a)/2], 0o644)
	if _, err = runCLI(t, "model", "info", trunc); err == nil || !strings.Contains(err.Error(), "extends past the end of the file") {
		t.Errorf("truncated: %v", err)
	}
	if _, err = runCLI(t, "model", "info", corpus); err == nil || !strings.Contains(err.Error(), "not a GGUF file") {
		t.Errorf("garbage: %v", err)
	}
}

func TestModelInitRefusals(t *testing.T) {
	dir := t.TempDir()
	corpus := writeCorpus(t, dir)
	m := filepath.Join(dir, "m.gguf")
	for _, c := range []struct {
		args  []string
		wants string
	}{
		{[]string{"--arch", "bert", "--type", "q4_k"}, "multiples of 256"},
		{[]string{"--arch", "llama", "--pooling", "mean"}, "pool the last token"},
		{[]string{"--arch", "bert", "--type", "q9"}, "unknown tensor type"},
		{[]string{"--arch", "t5"}, `--arch "t5"`},
	} {
		args := append([]string{"model", "init", "--corpus", corpus, "--out", m}, c.args...)
		if _, err := runCLI(t, args...); err == nil || !strings.Contains(err.Error(), c.wants) {
			t.Errorf("%v: %v, want %q", c.args, err, c.wants)
		}
	}
	if _, err := os.Stat(m); !os.IsNotExist(err) {
		t.Error("a refused init left a file behind")
	}
	if _, err := runCLI(t, "model", "init", "--arch", "bert", "--corpus", filepath.Join(dir, "none.txt"), "--out", m); err == nil || !strings.Contains(err.Error(), "--corpus") {
		t.Errorf("missing corpus: %v", err)
	}
}
