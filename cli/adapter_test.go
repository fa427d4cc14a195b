package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ragtune/ragtune/bindings/gguf"
	"github.com/ragtune/ragtune/tune/adapter"
	"github.com/ragtune/ragtune/tune/modelinit"
)

// tinyBertWithAdapter writes a tiny bert model and a rank-2 adapter on its
// attn_q weights.
func tinyBertWithAdapter(t *testing.T) (base, ad string) {
	t.Helper()
	dir := t.TempDir()
	base = filepath.Join(dir, "base.gguf")
	texts := []string{"apt installs packages", "git tracks source code", "vim edits text files", "the kernel runs programs"}
	if _, err := modelinit.Write(base, modelinit.Options{Arch: "bert", Texts: texts, Vocab: 200, Layers: 2, Dim: 32, Heads: 2, FF: 64}); err != nil {
		t.Fatal(err)
	}
	var pairs []adapter.Pair
	for _, name := range []string{"blk.0.attn_q.weight", "blk.1.attn_q.weight"} {
		p := adapter.Pair{Base: name, In: 32, Out: 32, Rank: 2, A: make([]float32, 64), B: make([]float32, 64)}
		for i := range p.A {
			p.A[i], p.B[i] = float32(i%7)/10, float32(i%5)/10
		}
		pairs = append(pairs, p)
	}
	ad = filepath.Join(dir, "adapter.gguf")
	if err := adapter.Save(ad, "bert", 4, pairs, map[string]string{"ragtune.method": "lora"}); err != nil {
		t.Fatal(err)
	}
	return base, ad
}

func TestAdapterMergeCommand(t *testing.T) {
	base, ad := tinyBertWithAdapter(t)
	out := filepath.Join(t.TempDir(), "merged.gguf")
	// Flags after the positionals and before them mean the same.
	for _, args := range [][]string{
		{"adapter", "merge", base, ad, out, "--type", "q8_0", "--scale", "0.5", "--json"},
		{"adapter", "merge", "--json", "--type=q8_0", "--scale", "0.5", "--device", "cpu", base, ad, out},
	} {
		text, err := runCLI(t, args...) // the device's line goes to stderr
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		var sum mergeSummary
		if err := json.Unmarshal([]byte(text), &sum); err != nil {
			t.Fatalf("%v: %v in %q", args, err, text)
		}
		if sum.Merged != 2 || sum.Type != "q8_0" || sum.Scale != 0.5 || sum.Out != out || sum.Bytes == 0 || sum.Types["q8_0"] == 0 || sum.Device == "" {
			t.Errorf("%v: summary %+v", args, sum)
		}
	}
	f, err := gguf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if ti, _ := f.Tensor("blk.0.attn_q.weight"); ti.Type != gguf.Q8_0 {
		t.Errorf("merged attn_q is %s", ti.Type)
	}

	text, err := runCLICombined(t, "adapter", "merge", base, ad, filepath.Join(t.TempDir(), "keep.gguf"))
	if err != nil || !strings.Contains(text, "2 weights merged") {
		t.Errorf("text output %q, err %v", text, err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"adapter", "merge", base, ad}, "want BASE.gguf ADAPTER.gguf OUT.gguf, got 2"},
		{[]string{"adapter", "merge", base, ad, base}, "must differ"},
		{[]string{"adapter", "merge", base, ad, out, "--type", "q2_k"}, `unknown output type "q2_k"`},
		{[]string{"adapter", "merge", ad, base, out}, "not a LoRA adapter"},
	} {
		if _, err := runCLICombined(t, c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err %v, want %q", c.args, err, c.want)
		}
	}
}

func TestAdapterInfoCommand(t *testing.T) {
	_, ad := tinyBertWithAdapter(t)
	text, err := runCLICombined(t, "adapter", "info", ad, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var info adapterInfoJSON
	if err := json.Unmarshal([]byte(text), &info); err != nil {
		t.Fatalf("%v in %q", err, text)
	}
	if info.Arch != "bert" || info.Alpha != 4 || info.Rank != 2 || info.Pairs != 2 || info.Params != 256 ||
		len(info.Targets) != 1 || info.Targets[0] != "attn_q" || info.Meta["ragtune.method"] != "lora" {
		t.Errorf("info %+v", info)
	}
	if p := info.Tensors[1]; p.Base != "blk.1.attn_q.weight" || p.In != 32 || p.Out != 32 || p.Scale != 2 || p.Type != "f32" {
		t.Errorf("pair %+v", p)
	}
	text, err = runCLICombined(t, "adapter", "info", ad)
	if err != nil || !strings.Contains(text, "pairs 2, rank 2, alpha 4") || !strings.Contains(text, "blk.1.attn_q.weight") {
		t.Errorf("text %q, err %v", text, err)
	}
}

func TestAdapterExportImportCommands(t *testing.T) {
	base, ad := tinyBertWithAdapter(t)
	dir := filepath.Join(t.TempDir(), "peft")
	// Flags after the positionals and before them mean the same.
	for _, args := range [][]string{
		{"adapter", "export", ad, dir, "--format", "peft", "--model", base, "--base-model", "org/tiny", "--json"},
		{"adapter", "export", "--json", "--model", base, "--base-model=org/tiny", ad, dir},
	} {
		text, err := runCLICombined(t, args...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		var sum exportSummary
		if err := json.Unmarshal([]byte(text), &sum); err != nil {
			t.Fatalf("%v: %v in %q", args, err, text)
		}
		if sum.Format != "peft" || sum.Modules != 2 || sum.Rank != 2 || sum.Alpha != 4 || sum.RSLoRA || sum.DType != "F32" ||
			len(sum.Files) != 2 || sum.Bytes == 0 || strings.Join(sum.TargetModules, ",") != "attention.self.query" {
			t.Errorf("%v: summary %+v", args, sum)
		}
	}
	raw, err := os.ReadFile(filepath.Join(dir, adapter.PEFTConfigFile))
	if err != nil || !strings.Contains(string(raw), `"base_model_name_or_path": "org/tiny"`) {
		t.Errorf("config %s, err %v", raw, err)
	}

	back := filepath.Join(t.TempDir(), "back.gguf")
	text, err := runCLICombined(t, "adapter", "import", dir, back, "--model", base)
	if err != nil || !strings.Contains(text, "2 pairs, alpha 4 (standard scaling)") {
		t.Fatalf("import: %q, %v", text, err)
	}
	for _, name := range []string{"blk.0.attn_q.weight.lora_a", "blk.1.attn_q.weight.lora_b"} {
		if a, b := tensorBytes(t, ad, name), tensorBytes(t, back, name); string(a) != string(b) {
			t.Errorf("%s differs after export and import", name)
		}
	}

	copyDir := t.TempDir()
	text, err = runCLICombined(t, "adapter", "export", ad, copyDir, "--format", "gguf", "--model", base)
	if err != nil || !strings.Contains(text, "checked") {
		t.Fatalf("gguf export: %q, %v", text, err)
	}
	if a, b := readFile(t, ad), readFile(t, filepath.Join(copyDir, adapter.GGUFFile)); string(a) != string(b) {
		t.Error("--format gguf is not a byte-for-byte copy")
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"adapter", "export", ad}, "want ADAPTER.gguf OUT_DIR, got 1"},
		{[]string{"adapter", "export", ad, dir, "--format", "onnx"}, `unknown --format "onnx"`},
		{[]string{"adapter", "export", base, dir}, "not a LoRA adapter"},
		{[]string{"adapter", "import", dir, back}, "--model BASE.gguf is required"},
		{[]string{"adapter", "import", dir, back, "--model", base, "--format", "gguf"}, "only peft is read"},
		{[]string{"adapter", "import", t.TempDir(), back, "--model", base}, "adapter_config.json"},
	} {
		if _, err := runCLICombined(t, c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err %v, want %q", c.args, err, c.want)
		}
	}
}

func tensorBytes(t *testing.T, path, name string) []byte {
	t.Helper()
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := f.TensorData(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
