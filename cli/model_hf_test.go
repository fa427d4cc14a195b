package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ragtune/ragtune/bindings/gguf"
)

// TestModelExportConvert: a model made by model init, exported as a
// sentence-transformers folder and converted back, has the same tensors;
// flags work before and after the positional arguments.
func TestModelExportConvert(t *testing.T) {
	dir := t.TempDir()
	corpus := writeCorpus(t, dir)
	for _, arch := range []string{"bert", "llama"} {
		orig := filepath.Join(dir, arch+".gguf")
		if _, err := runCLI(t, "model", "init", "--arch", arch, "--corpus", corpus, "--out", orig, "--layers", "1", "--dim", "32", "--heads", "2", "--ff", "64", "--vocab", "300"); err != nil {
			t.Fatal(err)
		}
		st := filepath.Join(dir, arch+"-st")
		out, err := runCLI(t, "model", "export", orig, "--hf", st, "--normalize")
		if err != nil || !strings.Contains(out, "sentence-transformers folder") {
			t.Fatalf("export: %v\n%s", err, out)
		}
		back := filepath.Join(dir, arch+"-back.gguf")
		out, err = runCLI(t, "model", "convert", "--json", "--type", "f32", st, back)
		if err != nil {
			t.Fatalf("convert: %v\n%s", err, out)
		}
		var rep struct {
			Arch      string `json:"arch"`
			Tensors   int    `json:"tensors"`
			Normalize bool   `json:"normalize"`
		}
		if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Arch != arch || !rep.Normalize {
			t.Fatalf("convert --json: %v\n%s", err, out)
		}
		a, err := gguf.Open(orig)
		if err != nil {
			t.Fatal(err)
		}
		b, err := gguf.Open(back)
		if err != nil {
			t.Fatal(err)
		}
		if len(a.Tensors) != len(b.Tensors) || rep.Tensors != len(a.Tensors) {
			t.Fatalf("%s: %d tensors, converted back %d", arch, len(a.Tensors), len(b.Tensors))
		}
		for _, ta := range a.Tensors {
			da, _ := a.TensorData(ta.Name)
			db, err := b.TensorData(ta.Name)
			if err != nil || string(da) != string(db) {
				t.Errorf("%s: tensor %s differs after export and convert (%v)", arch, ta.Name, err)
			}
		}
		ta, _, _ := a.Strings("tokenizer.ggml.tokens")
		tb, _, _ := b.Strings("tokenizer.ggml.tokens")
		if strings.Join(ta, "\x00") != strings.Join(tb, "\x00") {
			t.Errorf("%s: vocabulary differs after export and convert", arch)
		}
		a.Close()
		b.Close()
	}
	os.RemoveAll(filepath.Join(dir, "bert-st", "config.json"))
	if _, err := runCLI(t, "model", "convert", filepath.Join(dir, "bert-st"), filepath.Join(dir, "x.gguf")); err == nil || !strings.Contains(err.Error(), "no config.json") {
		t.Errorf("folder without config.json: %v", err)
	}
}
