package encoder

import (
	"fmt"
	"testing"

	"github.com/ragtune/ragtune/bindings/gguf"
)

// TestBatchBounds checks how sorted texts are cut into batches: every text
// once, at most Options.Batch texts, and for the ggml engine at most
// batchTokens padded tokens unless a text is alone.
func TestBatchBounds(t *testing.T) {
	lens := []int{3, 9, 17, 40, 100, 300, 500, 511, 512, 512, 512, 512, 512, 512, 512, 512}
	seqs := make([][]int32, len(lens))
	order := make([]int, len(lens))
	for i, n := range lens {
		seqs[i] = make([]int32, n)
		order[i] = i
	}
	for _, tc := range []struct {
		eng   engine
		batch int
		want  []int // batch ends
	}{
		{&graphEngine{}, 64, []int{8, 16}}, // 8 x 512 padded tokens each
		{&graphEngine{}, 4, []int{4, 8, 12, 16}},
		{&llamaEngine{}, 5, []int{5, 10, 15, 16}},
	} {
		e := &Encoder{opts: Options{Batch: tc.batch}, eng: tc.eng}
		var got []int
		for lo := 0; lo < len(order); lo = got[len(got)-1] {
			got = append(got, e.batchEnd(seqs, order, lo))
			hi := got[len(got)-1]
			if hi <= lo || hi-lo > tc.batch {
				t.Fatalf("%T batch %d: batch [%d, %d)", tc.eng, tc.batch, lo, hi)
			}
			if _, ok := tc.eng.(*graphEngine); ok && hi-lo > 1 && (hi-lo)*paddedLen(lens[hi-1]) > batchTokens {
				t.Errorf("batch [%d, %d) pads to %d tokens > %d", lo, hi, (hi-lo)*paddedLen(lens[hi-1]), batchTokens)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%T batch %d: batch ends %v, want %v", tc.eng, tc.batch, got, tc.want)
		}
	}
}

// TestBatchingDoesNotChangeEmbeddings embeds the same texts one at a time
// and in padded batches: per-sequence attention with masks must make them
// agree to rounding.
func TestBatchingDoesNotChangeEmbeddings(t *testing.T) {
	texts := realTexts(t, 40)
	path := tinyModel(t, "bert", gguf.F32, texts)
	embed := func(batch int) [][]float32 {
		v, _ := embedTexts(t, path, Options{Threads: 1, Batch: batch}, texts)
		return v
	}
	one, many := embed(1), embed(64)
	for i := range texts {
		if c := cosine(one[i], many[i]); c < 0.99999 {
			t.Errorf("text %d: cosine %.7f between batch 1 and batch 64", i, c)
		}
	}
}
