package modelinit

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ragtune/ragtune/bindings"
	"github.com/ragtune/ragtune/bindings/gguf"
)

func writeModel(t *testing.T, dir string, o Options) string {
	t.Helper()
	if o.Texts == nil {
		o.Texts = tinyTexts
	}
	path := filepath.Join(dir, o.Arch+"-src.gguf")
	if _, err := Write(path, o); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestQuantize(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		arch      string
		dim, ff   int
		typ       gguf.TensorType
		fallbacks int
	}{
		{"bert", 64, 128, gguf.F16, 0},
		{"bert", 64, 128, gguf.Q8_0, 0},
		{"llama", 64, 128, gguf.Q4_0, 0},
		{"llama", 256, 512, gguf.Q4_K, 0},
		// ffn_down rows are FF=384 long: not whole Q4_K blocks, so Q5_0.
		{"bert", 256, 384, gguf.Q4_K, 2},
	}
	for _, c := range cases {
		t.Run(c.arch+"/"+c.typ.String(), func(t *testing.T) {
			src := writeModel(t, dir, Options{Arch: c.arch, Dim: c.dim, FF: c.ff})
			out := filepath.Join(dir, c.arch+"-"+c.typ.String()+".gguf")
			rep, err := Quantize(src, out, c.typ)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Fallbacks) != c.fallbacks {
				t.Errorf("fallbacks %v", rep.Fallbacks)
			}
			f, err := gguf.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := gguf.ValidateModel(f, c.arch); err != nil {
				t.Fatal(err)
			}
			if ft, _, _ := f.Uint32("general.file_type"); gguf.FileType(ft) != FileTypeOf(c.typ) {
				t.Errorf("file_type %d", ft)
			}
			orig, err := gguf.Open(src)
			if err != nil {
				t.Fatal(err)
			}
			defer orig.Close()
			for _, ti := range f.Tensors {
				want := c.typ
				switch {
				case len(ti.Dims) == 1 || ti.Name == "position_embd.weight" || ti.Name == "token_types.weight":
					want = gguf.F32
				case c.typ == gguf.Q4_K && ti.Dims[0]%256 != 0:
					want = gguf.Q5_0
				}
				if ti.Type != want {
					t.Errorf("%s is %s, want %s", ti.Name, ti.Type, want)
				}
				a, _ := orig.Float32s(ti.Name)
				b, err := f.Float32s(ti.Name)
				if err != nil {
					t.Fatal(err)
				}
				if rel := relErr(a, b); rel > 0.2 {
					t.Errorf("%s: relative error %.3f after %s", ti.Name, rel, ti.Type)
				}
			}
			m, err := bindings.LoadLlamaModel(out, false)
			if err != nil {
				t.Fatal(err)
			}
			m.Close()
		})
	}
}

func relErr(a, b []float32) float64 {
	var d, n float64
	for i := range a {
		d += float64(a[i]-b[i]) * float64(a[i]-b[i])
		n += float64(a[i]) * float64(a[i])
	}
	return math.Sqrt(d / n)
}

func TestQuantizeRefusals(t *testing.T) {
	dir := t.TempDir()
	odd := writeModel(t, dir, Options{Arch: "bert", Dim: 48, Heads: 4, FF: 96})
	_, err := Quantize(odd, filepath.Join(dir, "o.gguf"), gguf.Q8_0)
	if err == nil || !strings.Contains(err.Error(), "rows of 48 elements, not a multiple of the q8_0 block size 32") {
		t.Errorf("48-wide to q8_0: %v", err)
	}
	q := filepath.Join(dir, "q.gguf")
	if _, err := Write(q, Options{Arch: "bert", Texts: tinyTexts, Type: gguf.Q8_0}); err != nil {
		t.Fatal(err)
	}
	_, err = Quantize(q, filepath.Join(dir, "o.gguf"), gguf.Q4_0)
	if err == nil || !strings.Contains(err.Error(), "already q8_0") {
		t.Errorf("requantize: %v", err)
	}
	if _, err = Quantize(q, filepath.Join(dir, "o.gguf"), gguf.Q5_1); err == nil {
		t.Error("q5_1 accepted")
	}
	ad := filepath.Join(dir, "adapter.gguf")
	if err := tinyAdapter().WriteFile(ad); err != nil {
		t.Fatal(err)
	}
	if _, err = Quantize(ad, filepath.Join(dir, "o.gguf"), gguf.Q8_0); err == nil || !strings.Contains(err.Error(), "adapter") {
		t.Errorf("adapter: %v", err)
	}
}

func tinyAdapter() *gguf.Builder {
	b := gguf.NewBuilder()
	b.MustSet("general.architecture", gguf.Of("bert"))
	b.MustSet("general.type", gguf.Of("adapter"))
	b.MustSet("adapter.type", gguf.Of("lora"))
	b.MustSet("adapter.lora.alpha", gguf.Of(float32(16)))
	const E, r = 64, 8
	for _, n := range []string{"blk.0.attn_q.weight", "blk.0.attn_v.weight"} {
		b.AddTensor(n+".lora_a", gguf.F32, []int64{E, r}, make([]byte, 4*E*r))
		b.AddTensor(n+".lora_b", gguf.F32, []int64{r, E}, make([]byte, 4*E*r))
	}
	return b
}

func TestDescribe(t *testing.T) {
	dir := t.TempDir()
	path := writeModel(t, dir, Options{Arch: "llama", Type: gguf.Q8_0})
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	in := Describe(f)
	if in.Kind != "model" || in.Arch != "llama" || in.Layers != 2 || in.KVHeads != 2 || in.HeadDim != 16 || in.Pooling != "last" ||
		in.Tokenizer != "llama" || in.FileType != "mostly Q8_0" || in.TensorTypes["q8_0"] != 15 || in.Problem != "" {
		t.Errorf("%+v", in)
	}
	if !strings.Contains(in.Text(), "mostly Q8_0 (7)") {
		t.Errorf("text:\n%s", in.Text())
	}
	ad := filepath.Join(dir, "adapter.gguf")
	if err := tinyAdapter().WriteFile(ad); err != nil {
		t.Fatal(err)
	}
	g, err := gguf.Open(ad)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	in = Describe(g)
	if in.Kind != "adapter" || in.Adapter == nil || len(in.Adapter.Pairs) != 2 || in.Adapter.Rank != 8 || *in.Adapter.Alpha != 16 ||
		in.Adapter.Pairs[1].Target != "blk.0.attn_v.weight" || len(in.Adapter.Problems) != 0 {
		t.Errorf("%+v %+v", in, in.Adapter)
	}
	if !strings.Contains(in.Text(), "lora, 2 pairs, rank 8, alpha 16") {
		t.Errorf("text:\n%s", in.Text())
	}
}
