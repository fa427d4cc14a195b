package adapter

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ragtune/ragtune/bindings/gguf"
)

// fusedBase is a base with one fused qkv weight (bert-like sizes: 2 heads of
// 8, in 16) for the joins of the import; ValidateModel is not needed here.
func fusedBase(t *testing.T) *baseModel {
	t.Helper()
	b := gguf.NewBuilder()
	b.MustSet("general.architecture", gguf.Of("bert"))
	if err := b.AddTensor("blk.0.attn_qkv.weight", gguf.F32, []int64{16, 48}, make([]byte, 4*16*48)); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "fused.gguf")
	if err := b.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return &baseModel{f: f, hp: gguf.Hparams{Arch: "bert", Heads: []uint32{2}, HeadsKV: []uint32{2}, HeadDimK: 8, HeadDimV: 8}}
}

func randomValues(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return v
}

// delta is s·B·A as [out][in] in float64.
func delta(A, B []float32, s float64, in, out, r int) []float64 {
	d := make([]float64, out*in)
	for o := 0; o < out; o++ {
		for i := 0; i < in; i++ {
			var x float64
			for k := 0; k < r; k++ {
				x += float64(B[o*r+k]) * float64(A[k*in+i])
			}
			d[o*in+i] = s * x
		}
	}
	return d
}

// TestJoinQKVUndoesTheSplit: the q, k and v modules ExportPEFT makes of a
// fused pair join back into that pair bit for bit.
func TestJoinQKVUndoesTheSplit(t *testing.T) {
	base := fusedBase(t)
	rng := rand.New(rand.NewPCG(3, 4))
	const r = 3
	p := PairInfo{Base: "blk.0.attn_qkv.weight", In: 16, Out: 48, Rank: r}
	A, B := randomValues(rng, r*16), randomValues(rng, 48*r)
	mods, err := splitQKV("bert", p, A, B, base)
	if err != nil {
		t.Fatal(err)
	}
	var parts []*importedPair
	for i, m := range mods {
		parts = append(parts, &importedPair{module: m.name, to: target{p.Base, i}, a: m.a, b: m.b, in: m.in, out: m.out, rank: m.rank, scale: 2.0 / r})
	}
	got, notes, err := joinQKV(base, p.Base, parts, 2)
	if err != nil || len(notes) > 0 {
		t.Fatalf("%v %v", err, notes)
	}
	if got.Rank != r || !slices.Equal(got.A, A) || !slices.Equal(got.B, B) {
		t.Errorf("joined pair is not the fused one: rank %d", got.Rank)
	}
}

// TestJoinQKVStacksRanks: q, k and v modules with their own A (as PEFT
// trains them on a model with separate projections) join into one pair of
// rank r_q+r_k+r_v whose update, at the file's alpha/r, is each module's
// own update at its own PEFT scale; a missing module adds nothing.
func TestJoinQKVStacksRanks(t *testing.T) {
	base := fusedBase(t)
	rng := rand.New(rand.NewPCG(5, 6))
	ranks := map[int]int{0: 2, 2: 4} // q and v; no k
	var parts []*importedPair
	for part, r := range ranks {
		parts = append(parts, &importedPair{module: fmt.Sprint("part", part), to: target{"blk.0.attn_qkv.weight", part},
			a: randomValues(rng, r*16), b: randomValues(rng, 16*r), in: 16, out: 16, rank: r, scale: 8 / float64(r)})
	}
	const alpha = 8
	got, _, err := joinQKV(base, "blk.0.attn_qkv.weight", parts, alpha)
	if err != nil {
		t.Fatal(err)
	}
	if got.Rank != 6 || got.Out != 48 {
		t.Fatalf("rank %d out %d, want 6 and 48", got.Rank, got.Out)
	}
	d := delta(got.A, got.B, alpha/6.0, 16, 48, 6)
	for _, p := range parts {
		want := delta(p.a, p.b, p.scale, 16, 16, p.rank)
		for o := 0; o < 16; o++ {
			for i := 0; i < 16; i++ {
				if g := d[(16*p.to.part+o)*16+i]; math.Abs(g-want[o*16+i]) > 1e-5 {
					t.Fatalf("part %d row %d col %d: %v, want %v", p.to.part, o, i, g, want[o*16+i])
				}
			}
		}
	}
	for i := 16 * 16; i < 32*16; i++ {
		if d[i] != 0 {
			t.Fatalf("k rows changed: %v at %d", d[i], i)
		}
	}
}
