package hfconvert

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ragtune/ragtune/bindings/gguf"
	"github.com/ragtune/ragtune/bindings/safetensors"
)

// TestMalformedFolders: each broken folder is refused with an error naming
// the file and what is wrong, and an existing output file is left alone.
func TestMalformedFolders(t *testing.T) {
	write := func(path, body string) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			must(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, path)), 0o755))
			must(t, os.WriteFile(filepath.Join(dir, path), []byte(body), 0o644))
		}
	}
	cases := []struct {
		name  string
		spoil func(t *testing.T, dir string)
		want  []string
	}{
		{"unknown architecture", write("config.json", `{"architectures": ["GPT2LMHeadModel"], "hidden_size": 64}`), []string{"config.json", `"GPT2LMHeadModel"`, "BertModel"}},
		{"config not JSON", write("config.json", `{"architectures": [`), []string{"config.json"}},
		{"bad field", write("config.json", `{"architectures": ["BertModel"], "hidden_size": "wide", "num_hidden_layers": 2}`), []string{"config.json", `"hidden_size"`}},
		{"missing field", write("config.json", `{"architectures": ["BertModel"], "hidden_size": 64}`), []string{"config.json", "num_hidden_layers"}},
		{"no tokenizer", func(t *testing.T, dir string) { must(t, os.Remove(filepath.Join(dir, "vocab.txt"))) }, []string{"no tokenizer"}},
		{"empty vocab line", write("vocab.txt", "[PAD]\n\n[UNK]\n"), []string{"vocab.txt:2", "empty token"}},
		{"tokenizer.json model", write("tokenizer.json", `{"model": {"type": "WordLevel", "vocab": {}}}`), []string{"tokenizer.json", `"WordLevel"`}},
		{"BPE pre-tokenizer", write("tokenizer.json", `{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "\\w+"}}}`), []string{"tokenizer.json", "pre-tokenizer not recognised"}},
		{"corrupt tokenizer.model", func(t *testing.T, dir string) {
			must(t, os.Remove(filepath.Join(dir, "vocab.txt")))
			write("tokenizer.model", "\x0a\xff\xff\xff\x0f")(t, dir)
		}, []string{"tokenizer.model", "claims"}},
		{"two pooling modes", write("1_Pooling/config.json", `{"pooling_mode_mean_tokens": true, "pooling_mode_cls_token": true}`), []string{"1_Pooling/config.json", "2 pooling modes"}},
		{"max pooling", write("1_Pooling/config.json", `{"pooling_mode_max_tokens": true}`), []string{"1_Pooling/config.json", "pooling_mode_max_tokens"}},
		{"unknown module", write("modules.json", `[{"idx": 0, "path": "", "type": "sentence_transformers.models.CNN"}]`), []string{"modules.json", "CNN"}},
		{"dense on bert", write("modules.json", `[{"idx": 0, "path": "", "type": "sentence_transformers.models.Transformer"}, {"idx": 1, "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}, {"idx": 2, "path": "2_Dense", "type": "sentence_transformers.models.Dense"}]`), []string{"Dense", "gemma-embedding"}},
		{"no pooling", func(t *testing.T, dir string) { must(t, os.Remove(filepath.Join(dir, "modules.json"))) }, []string{"Pooling module", "--pooling"}},
		{"truncated weights", func(t *testing.T, dir string) {
			p := filepath.Join(dir, safetensors.SingleFile)
			st, _ := os.Stat(p)
			must(t, os.Truncate(p, st.Size()-10))
		}, []string{"model.safetensors"}},
		{"no weights", func(t *testing.T, dir string) { must(t, os.Remove(filepath.Join(dir, safetensors.SingleFile))) }, []string{"no model.safetensors"}},
		{"stray tensor", func(t *testing.T, dir string) {
			b := safetensors.NewBuilder()
			must(t, b.AddFloat32s("encoder.layer.0.attention.self.rotary.weight", safetensors.F32, []int64{2}, []float32{1, 2}))
			must(t, b.WriteFile(filepath.Join(dir, safetensors.SingleFile)))
		}, []string{`"encoder.layer.0.attention.self.rotary.weight"`, "no GGUF tensor"}},
		{"missing tensor", func(t *testing.T, dir string) {
			path := filepath.Join(dir, safetensors.SingleFile)
			f, err := safetensors.Open(path)
			must(t, err)
			b := safetensors.NewBuilder()
			for _, ti := range f.Tensors {
				if ti.Name != "encoder.layer.1.attention.self.key.bias" {
					raw, err := f.Data(ti.Name)
					must(t, err)
					must(t, b.Add(ti.Name, ti.DType, ti.Shape, func() ([]byte, error) { return raw, nil }))
				}
			}
			f.Close()
			must(t, b.WriteFile(path))
		}, []string{"loader checks", "blk.1.attn_k.bias"}},
		{"missing shard", write(safetensors.IndexFile, `{"weight_map": {"embeddings.word_embeddings.weight": "model-00002-of-00002.safetensors"}}`), []string{"model-00002-of-00002.safetensors"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "hf")
			bertFolder(t, dir, safetensors.F32, 1)
			c.spoil(t, dir)
			out := filepath.Join(t.TempDir(), "m.gguf")
			must(t, os.WriteFile(out, []byte("keep"), 0o644))
			_, err := Convert(dir, out, Options{})
			if err == nil {
				t.Fatal("converted a broken folder")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if got, _ := os.ReadFile(out); string(got) != "keep" {
				t.Error("a failed conversion replaced the output file")
			}
			if left, _ := os.ReadDir(filepath.Dir(out)); len(left) != 1 {
				t.Errorf("a failed conversion left %d files behind", len(left)-1)
			}
		})
	}
}

// TestExportRefuses: adapters and architectures without a Hugging Face form
// are refused by name.
func TestExportRefuses(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ arch, typ, want string }{
		{"bert", "adapter", "merge it first"},
		{"gpt2", "model", `architecture "gpt2"`},
	} {
		b := gguf.NewBuilder()
		b.MustSet("general.architecture", gguf.Of(c.arch))
		b.MustSet("general.type", gguf.Of(c.typ))
		path := filepath.Join(dir, c.arch+".gguf")
		must(t, b.WriteFile(path))
		if _, err := Export(path, filepath.Join(dir, "out"), ExportOptions{}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %s: %v, want %q", c.arch, c.typ, err, c.want)
		}
	}
	if _, err := Export(filepath.Join(dir, "none.gguf"), filepath.Join(dir, "out"), ExportOptions{DType: "Q4"}); err == nil || !strings.Contains(err.Error(), "dtype Q4") {
		t.Errorf("dtype: %v", err)
	}
}
