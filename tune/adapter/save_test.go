package adapter

import (
	"bytes"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ragtune/ragtune/bindings/gguf"
)

// randomPair makes a pair with every value non-zero, so a test that merges
// or applies it is never vacuous.
func randomPair(rng *rand.Rand, base string, in, out, r int) Pair {
	p := Pair{Base: base, In: in, Out: out, Rank: r, A: make([]float32, in*r), B: make([]float32, r*out)}
	for i := range p.A {
		p.A[i] = float32(rng.NormFloat64()*0.1) + 0.01
	}
	for i := range p.B {
		p.B[i] = float32(rng.NormFloat64()*0.1) + 0.01
	}
	return p
}

func TestSaveWritesLlamaCppLayout(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pairs := []Pair{
		randomPair(rng, "blk.0.attn_q.weight", 8, 12, 4),
		randomPair(rng, "blk.0.ffn_up.weight", 8, 16, 4),
		randomPair(rng, "blk.1.attn_q.weight", 8, 12, 4),
	}
	path := filepath.Join(t.TempDir(), "a.gguf")
	if err := Save(path, "bert", 8, pairs, map[string]string{"general.name": "test", "ragtune.train.loss": "0.25"}); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for key, want := range map[string]string{keyGeneralType: "adapter", keyArch: "bert", keyAdapterType: "lora", "general.name": "test"} {
		if got, _, err := f.String(key); err != nil || got != want {
			t.Errorf("%s = %q (%v), want %q", key, got, err, want)
		}
	}
	v, _ := f.Get(keyAlpha)
	if v.Type != gguf.TypeFloat32 || v.Any() != float32(8) {
		t.Errorf("alpha stored as %s %v, want f32 8", v.TypeName(), v)
	}
	if r, _, err := f.Uint32(KeyRank); err != nil || r != 4 {
		t.Errorf("%s = %d (%v)", KeyRank, r, err)
	}
	if kinds, _, _ := f.Strings(KeyTargets); !slices.Equal(kinds, []string{"attn_q", "ffn_up"}) {
		t.Errorf("%s = %v", KeyTargets, kinds)
	}
	if f.Alignment != 32 || f.DataOffset%32 != 0 {
		t.Errorf("alignment %d, data at %d", f.Alignment, f.DataOffset)
	}
	// ggml pads the last tensor too: the file ends on the alignment.
	if st, _ := os.Stat(path); st.Size()%32 != 0 {
		t.Errorf("file size %d is not padded to 32", st.Size())
	}
	for _, p := range pairs {
		a, _ := f.Tensor(p.Base + ".lora_a")
		b, _ := f.Tensor(p.Base + ".lora_b")
		if a.Type != gguf.F32 || !slices.Equal(a.Dims, []int64{int64(p.In), int64(p.Rank)}) {
			t.Errorf("%s: %s %v", a.Name, a.Type, a.Dims)
		}
		if b.Type != gguf.F32 || !slices.Equal(b.Dims, []int64{int64(p.Rank), int64(p.Out)}) {
			t.Errorf("%s: %s %v", b.Name, b.Type, b.Dims)
		}
		if got, _ := f.Float32s(a.Name); !slices.Equal(got, p.A) {
			t.Errorf("%s: values differ", a.Name)
		}
		if got, _ := f.Float32s(b.Name); !slices.Equal(got, p.B) {
			t.Errorf("%s: values differ", b.Name)
		}
	}

	info, err := Inspect(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Arch != "bert" || info.Alpha != 8 || len(info.Pairs) != 3 || !slices.Equal(info.Ranks(), []int{4}) {
		t.Errorf("inspect: %+v", info)
	}
	if p := info.Pairs[1]; p.Base != "blk.0.ffn_up.weight" || p.In != 8 || p.Out != 16 || p.Scale(info.Alpha, 0.5) != 1 {
		t.Errorf("pair 1: %+v scale %v", p, p.Scale(info.Alpha, 0.5))
	}
	if info.Meta["ragtune.train.loss"] != "0.25" || info.Meta[KeyRank] != "4" {
		t.Errorf("meta: %v", info.Meta)
	}
}

func TestSaveRefusesWhatLlamaCppCannotUse(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	good := randomPair(rng, "blk.0.attn_q.weight", 8, 12, 4)
	nan := randomPair(rng, "blk.0.attn_k.weight", 8, 12, 4)
	nan.B[5] = float32(math.NaN())
	short := good
	short.A = short.A[:7]
	for _, c := range []struct {
		name  string
		arch  string
		alpha float32
		pairs []Pair
		meta  map[string]string
		want  string
	}{
		{"no arch", "", 1, []Pair{good}, nil, "architecture"},
		{"no pairs", "bert", 1, nil, nil, "no LoRA pairs"},
		{"negative alpha", "bert", -1, []Pair{good}, nil, "alpha"},
		{"short A", "bert", 1, []Pair{short}, nil, "blk.0.attn_q.weight: lora_a has 7 values"},
		{"NaN", "bert", 1, []Pair{nan}, nil, "blk.0.attn_k.weight.lora_b: value 5 is NaN"},
		{"bias", "bert", 1, []Pair{{Base: "blk.0.attn_q.bias", In: 1, Out: 1, Rank: 1, A: []float32{1}, B: []float32{1}}}, nil, "must end in .weight"},
		{"embedding", "bert", 1, []Pair{{Base: "token_embd.weight", In: 1, Out: 1, Rank: 1, A: []float32{1}, B: []float32{1}}}, nil, "token embedding"},
		{"duplicate", "bert", 1, []Pair{good, good}, nil, "duplicate tensor"},
		{"reserved key", "bert", 1, []Pair{good}, map[string]string{"adapter.lora.alpha": "3"}, "reserved"},
	} {
		path := filepath.Join(t.TempDir(), "a.gguf")
		err := Save(path, c.arch, c.alpha, c.pairs, c.meta)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want it to mention %q", c.name, err, c.want)
		}
		if _, statErr := os.Stat(path); statErr == nil {
			t.Errorf("%s: a file was written despite the error", c.name)
		}
	}
}

func TestInspectRefusesMalformedAdapters(t *testing.T) {
	f32 := func(n int) []byte { return make([]byte, 4*n) }
	for _, c := range []struct {
		name  string
		build func(b *gguf.Builder)
		want  string
	}{
		{"not an adapter", func(b *gguf.Builder) { b.MustSet(keyGeneralType, gguf.Of("model")) }, "not a LoRA adapter"},
		{"alpha as f64", func(b *gguf.Builder) { b.MustSet(keyAlpha, gguf.Of(float64(8))) }, "adapter.lora.alpha"},
		{"full weight", func(b *gguf.Builder) {
			b.AddTensor("blk.0.attn_q.weight", gguf.F32, []int64{8, 12}, f32(96))
		}, "only <weight>.lora_a"},
		{"half pair", func(b *gguf.Builder) {
			b.AddTensor("blk.1.attn_q.weight.lora_a", gguf.F32, []int64{8, 4}, f32(32))
		}, "only one of blk.1.attn_q.weight.lora_a"},
		{"rank mismatch", func(b *gguf.Builder) {
			b.AddTensor("blk.1.attn_q.weight.lora_a", gguf.F32, []int64{8, 4}, f32(32))
			b.AddTensor("blk.1.attn_q.weight.lora_b", gguf.F32, []int64{2, 12}, f32(24))
		}, "different ranks (4, 2)"},
	} {
		b, err := build("bert", 4, []Pair{randomPair(rand.New(rand.NewPCG(1, 1)), "blk.0.attn_k.weight", 8, 12, 4)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		c.build(b)
		path := filepath.Join(t.TempDir(), "a.gguf")
		if err := b.WriteFile(path); err != nil {
			t.Fatal(err)
		}
		if _, err := Inspect(path); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want it to mention %q", c.name, err, c.want)
		}
	}
}

// FuzzInspect: any bytes that the GGUF reader accepts are either a valid
// adapter description or an error, never a panic.
func FuzzInspect(f *testing.F) {
	rng := rand.New(rand.NewPCG(1, 2))
	b, err := build("llama", 2, []Pair{randomPair(rng, "blk.0.attn_q.weight", 4, 4, 1), randomPair(rng, "blk.0.ffn_up.weight", 2, 3, 1)}, map[string]string{"general.name": "seed"})
	if err != nil {
		f.Fatal(err)
	}
	var seed bytes.Buffer
	if _, err := b.WriteTo(&seed); err != nil {
		f.Fatal(err)
	}
	f.Add(seed.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := gguf.Read(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		info, err := inspect(g)
		if err != nil {
			return
		}
		for _, p := range info.Pairs {
			if p.Rank < 1 || p.In < 1 || p.Out < 1 {
				t.Fatalf("pair %+v accepted with a non-positive size", p)
			}
		}
	})
}

// TestRankOneAdapter: the writer stores a rank-1 lora_a [in, 1] as 1-D, as
// ggml does; reading it back takes the missing dim as 1, as llama.cpp does.
func TestRankOneAdapter(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	path := filepath.Join(t.TempDir(), "r1.gguf")
	if err := Save(path, "bert", 2, []Pair{randomPair(rng, "blk.0.ffn_up.weight", 8, 12, 1)}, nil); err != nil {
		t.Fatal(err)
	}
	info, err := Inspect(path)
	if err != nil {
		t.Fatal(err)
	}
	if p := info.Pairs[0]; p.Rank != 1 || p.In != 8 || p.Out != 12 || !slices.Equal(p.A.Dims, []int64{8, 1}) {
		t.Errorf("pair %+v", p)
	}
}
