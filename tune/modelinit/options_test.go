package modelinit

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ragtune/ragtune/bindings/gguf"
)

var tinyTexts = []string{
	"Git is a popular version control system.",
	"This package provides the GNU assembler and linker.",
	"Python 3 bindings for the library; café, naïve, 豆腐!",
}

func TestOptionRefusals(t *testing.T) {
	cases := []struct {
		o     Options
		wants string
	}{
		{Options{Arch: "gpt2"}, `--arch "gpt2"`},
		{Options{Arch: "bert", Type: gguf.Q4_K}, "--dim 64, --ff 128 and the attention width 64 must be multiples of 256"},
		{Options{Arch: "gemma-embedding", Layers: 5}, "needs at least 6"},
		{Options{Arch: "bert", Window: 4}, "--window and --dense are for gemma-embedding"},
		{Options{Arch: "bert", HeadDim: 32}, "only qwen3 and gemma-embedding"},
		{Options{Arch: "llama", FusedQKV: true}, "--fused-qkv is for bert"},
		{Options{Arch: "qwen3", Pooling: "none"}, "expected last, mean or cls"},
		{Options{Arch: "qwen3", Vocab: 200}, "too small"},
		{Options{Arch: "bert", Dim: 48, Type: gguf.Q8_0}, "multiples of 32"},
		{Options{Arch: "bert", Heads: 4, KVHeads: 2}, "bert has no grouped-query attention"},
		{Options{Arch: "bert", Pooling: "max"}, `--pooling "max"`},
		{Options{Arch: "llama", Pooling: "cls"}, "pool the last token"},
		{Options{Arch: "llama", Heads: 4, KVHeads: 3}, "not a multiple of --kv-heads"},
		{Options{Arch: "bert", Dim: 30, Heads: 4}, "not divisible by --heads"},
		{Options{Arch: "llama", Dim: 36, Heads: 4}, "must be even"},
		{Options{Arch: "bert", Layers: -1}, "--layers must be positive"},
		{Options{Arch: "bert", Vocab: 3}, "too small"},
		{Options{Arch: "llama", Vocab: 200}, "too small"},
		{Options{Arch: "bert", Type: gguf.Q5_1}, "--type q5_1"},
	}
	for _, c := range cases {
		c.o.Texts = tinyTexts
		_, err := Build(c.o)
		if err == nil || !strings.Contains(err.Error(), c.wants) {
			t.Errorf("%+v: error %v, want %q", c.o, err, c.wants)
		}
	}
	if _, err := Build(Options{Arch: "bert"}); err == nil || !strings.Contains(err.Error(), "corpus is empty") {
		t.Errorf("empty corpus: %v", err)
	}
}

func encodeModel(t *testing.T, o Options) []byte {
	t.Helper()
	r, err := Build(o)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := r.Builder.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestSeedDecidesWeights(t *testing.T) {
	a := encodeModel(t, Options{Arch: "llama", Texts: tinyTexts, Seed: 5})
	b := encodeModel(t, Options{Arch: "llama", Texts: tinyTexts, Seed: 5})
	c := encodeModel(t, Options{Arch: "llama", Texts: tinyTexts, Seed: 6})
	if !bytes.Equal(a, b) {
		t.Error("same seed, different files")
	}
	if bytes.Equal(a, c) {
		t.Error("different seeds, same file")
	}
}

// TestShapesFollowFlags checks keys and shapes of a non-default llama with
// GQA and an output head, and of a bert with CLS pooling, through the reader.
func TestShapesFollowFlags(t *testing.T) {
	data := encodeModel(t, Options{Arch: "llama", Texts: tinyTexts, Layers: 3, Dim: 96, Heads: 6, KVHeads: 2, FF: 160, Ctx: 256, OutputHead: true, Type: gguf.Q8_0})
	f, err := gguf.Read(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	hp, err := gguf.ValidateModel(f, "llama")
	if err != nil {
		t.Fatal(err)
	}
	if hp.Layers != 3 || hp.Embd != 96 || hp.Heads[0] != 6 || hp.HeadsKV[2] != 2 || hp.FF[1] != 160 || hp.Context != 256 || hp.HeadDimK != 16 {
		t.Errorf("hparams %+v", hp)
	}
	k, _ := f.Tensor("blk.1.attn_k.weight")
	out, hasOut := f.Tensor("output.weight")
	norm, _ := f.Tensor("blk.0.ffn_norm.weight")
	if k.Shape() != "[96 32]" || k.Type != gguf.Q8_0 || !hasOut || out.Type != gguf.Q8_0 || norm.Type != gguf.F32 {
		t.Errorf("attn_k %s %s, output %v %s, norm %s", k.Shape(), k.Type, hasOut, out.Type, norm.Type)
	}
	for key, want := range map[string]string{"llama.rope.dimension_count": "16", "tokenizer.ggml.add_eos_token": "true", "general.file_type": "7"} {
		if v, _ := f.Get(key); v.String() != want {
			t.Errorf("%s = %s, want %s", key, v, want)
		}
	}

	data = encodeModel(t, Options{Arch: "bert", Texts: tinyTexts, Pooling: "cls", Ctx: 40, Type: gguf.F16})
	f, err = gguf.Read(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if hp, err = gguf.ValidateModel(f, "bert"); err != nil {
		t.Fatal(err)
	}
	pos, _ := f.Tensor("position_embd.weight")
	up, _ := f.Tensor("blk.1.ffn_up.weight")
	if hp.Pooling != gguf.PoolingCLS || pos.Shape() != "[64 40]" || pos.Type != gguf.F32 || up.Type != gguf.F16 {
		t.Errorf("pooling %d, position_embd %s %s, ffn_up %s", hp.Pooling, pos.Shape(), pos.Type, up.Type)
	}
}

func TestWordPieceVocabulary(t *testing.T) {
	v, err := BuildWordPiece(tinyTexts, 200)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range bertSpecials {
		if v.Tokens[i] != s || v.Types[i] != tokControl {
			t.Errorf("id %d is %q type %d, want %q control", i, v.Tokens[i], v.Types[i], s)
		}
	}
	has := map[string]bool{}
	for _, tok := range v.Tokens {
		if has[tok] {
			t.Errorf("duplicate token %q", tok)
		}
		has[tok] = true
	}
	// Lower-cased, NFD (é = e + U+0301), punctuation and CJK alone.
	for _, tok := range []string{"▁g", "g", "▁.", "▁豆", "\u0301", "▁the"} {
		if !has[tok] {
			t.Errorf("token %q missing", tok)
		}
	}
	for _, tok := range []string{"G", "▁G", "é", "##ing"} {
		if has[tok] {
			t.Errorf("token %q should not exist", tok)
		}
	}
	small, err := BuildWordPiece(tinyTexts, 20)
	if err != nil || len(small.Tokens) > 20 || small.Dropped == 0 {
		t.Errorf("size 20: %d tokens, %d dropped, %v", len(small.Tokens), small.Dropped, err)
	}
}

func TestSentencePieceVocabulary(t *testing.T) {
	v, err := BuildSentencePiece(tinyTexts, 400)
	if err != nil {
		t.Fatal(err)
	}
	if v.Tokens[0] != "<unk>" || v.Tokens[1] != "<s>" || v.Tokens[2] != "</s>" || v.Tokens[3+0x0A] != "<0x0A>" || v.Types[3+0x41] != tokByte {
		t.Errorf("fixed tokens wrong: %q", v.Tokens[:4])
	}
	if len(v.Scores) != len(v.Tokens) {
		t.Fatalf("%d scores for %d tokens", len(v.Scores), len(v.Tokens))
	}
	has := map[string]float32{}
	for i, tok := range v.Tokens {
		has[tok] = v.Scores[i]
	}
	if _, ok := has["▁the"]; !ok {
		t.Error("word ▁the (seen twice) missing")
	}
	if _, ok := has["G"]; !ok {
		t.Error("case should be kept")
	}
}

func TestReadCorpus(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	texts, err := ReadCorpus(write("plain.txt", "one text\n\n second text \n"))
	if err != nil || len(texts) != 2 || texts[1] != " second text " {
		t.Errorf("plain: %q %v", texts, err)
	}
	texts, err = ReadCorpus(write("beir.jsonl", `{"_id":"a","title":"Git","text":"version control"}`+"\n"+`{"text":"plain"}`+"\n"))
	if err != nil || len(texts) != 2 || texts[0] != "Git version control" || texts[1] != "plain" {
		t.Errorf("jsonl: %q %v", texts, err)
	}
	_, err = ReadCorpus(write("bad.jsonl", `{"text":"ok"}`+"\n"+`{"text": 3}`+"\n"))
	if err == nil || !strings.Contains(err.Error(), "bad.jsonl:2:") {
		t.Errorf("bad json: %v", err)
	}
	_, err = ReadCorpus(write("notext.jsonl", `{"body":"x"}`+"\n"))
	if err == nil || !strings.Contains(err.Error(), `notext.jsonl:1: object has no "text"`) {
		t.Errorf("no text: %v", err)
	}
	if _, err = ReadCorpus(write("empty.txt", "\n\n")); err == nil {
		t.Error("empty corpus accepted")
	}
}
