package bm25

import (
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestTokens(t *testing.T) {
	got := NewTokenizer(false).Tokens("Hello, WORLD! Ünïcode-42x  the\tend")
	want := []string{"hello", "world", "ünïcode", "42x", "the", "end"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Tokens = %q, want %q", got, want)
	}
	got = NewTokenizer(true).Tokens("The cat is on the mat")
	if !reflect.DeepEqual(got, []string{"cat", "mat"}) {
		t.Fatalf("with stopwords: %q", got)
	}
}

func TestScoresByHand(t *testing.T) {
	ix, err := Build([]string{"d1", "d2", "d3"}, []string{"the cat sat", "the dog", "cat cat dog"}, DefaultParams)
	if err != nil {
		t.Fatal(err)
	}
	res, err := ix.Search([]string{"cat", "unknownword", "cat dog"}, 10)
	if err != nil {
		t.Fatal(err)
	}
	// N = 3, avgdl = 8/3, k1 = 0.9, b = 0.4; d1 and d3 have 3 tokens, d2 has 2.
	idfCat := math.Log(1 + (3-2+0.5)/(2+0.5))
	norm3 := 0.9 * (1 - 0.4 + 0.4*3/(8.0/3))
	norm2 := 0.9 * (1 - 0.4 + 0.4*2/(8.0/3))
	d3 := idfCat * 2 * 1.9 / (2 + norm3)
	d1 := idfCat * 1 * 1.9 / (1 + norm3)
	check := func(q int, ids []string, scores []float64) {
		t.Helper()
		if len(res[q]) != len(ids) {
			t.Fatalf("query %d: %d hits %+v, want %v", q, len(res[q]), res[q], ids)
		}
		for i := range ids {
			if res[q][i].ID != ids[i] || math.Abs(float64(res[q][i].Score)-scores[i]) > 1e-5 {
				t.Fatalf("query %d rank %d: %+v, want %s %.6f", q, i, res[q][i], ids[i], scores[i])
			}
		}
	}
	check(0, []string{"d3", "d1"}, []float64{d3, d1})
	check(1, nil, nil)
	idfDog := idfCat // dog is also in 2 of 3 documents
	check(2, []string{"d3", "d2", "d1"}, []float64{d3 + idfDog*1.9/(1+norm3), idfDog * 1.9 / (1 + norm2), d1})
}

func TestTiesAndRoundTrip(t *testing.T) {
	ids := []string{"z", "b", "m", "a"}
	texts := []string{"debian package", "debian package", "other words", "debian package"}
	ix, err := Build(ids, texts, Params{K1: 1.2, B: 0.75, Stopwords: true})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := ix.Save(dir); err != nil {
		t.Fatal(err)
	}
	ix2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if ix2.Params() != ix.Params() || ix2.Len() != 4 || ix2.Terms() != ix.Terms() {
		t.Fatalf("reopened %+v %d %d", ix2.Params(), ix2.Len(), ix2.Terms())
	}
	for _, x := range []*Index{ix, ix2} {
		res, err := x.Search([]string{"Debian"}, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(res[0]) != 2 || res[0][0].ID != "a" || res[0][1].ID != "b" || res[0][0].Score != res[0][1].Score {
			t.Fatalf("ties: %+v, want a then b with equal scores", res[0])
		}
	}
	// A truncated file is an error, not a panic.
	p := filepath.Join(dir, TermsFile)
	data, _ := os.ReadFile(p)
	os.WriteFile(p, data[:len(data)/2], 0o644)
	if _, err := Open(dir); err == nil {
		t.Fatal("truncated terms file opened")
	}
}

func TestBuildErrors(t *testing.T) {
	if _, err := Build([]string{"a", "a"}, []string{"x", "y"}, DefaultParams); err == nil || !strings.Contains(err.Error(), `duplicate document id "a"`) {
		t.Errorf("duplicate: %v", err)
	}
	if _, err := Build([]string{"a"}, []string{"x"}, Params{K1: 1, B: 2}); err == nil {
		t.Error("b = 2 accepted")
	}
}
