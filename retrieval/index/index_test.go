package index

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/ragtune/ragtune/retrieval/arrowfile"
)

func randVectors(rng *rand.Rand, n, dim int) [][]float32 {
	out := make([][]float32, n)
	for i := range out {
		out[i] = make([]float32, dim)
		for j := range out[i] {
			out[i][j] = float32(rng.NormFloat64())
		}
	}
	return out
}

// bruteForce ranks every document for q in float64: the reference.
func bruteForce(ids []string, vecs [][]float32, q []float32, metric Metric, k int) []string {
	type scored struct {
		id string
		s  float64
	}
	norm := func(v []float32) float64 {
		if metric == Dot {
			return 1
		}
		var s float64
		for _, x := range v {
			s += float64(x) * float64(x)
		}
		return 1 / math.Sqrt(s)
	}
	all := make([]scored, len(ids))
	for i, v := range vecs {
		var s float64
		for j := range v {
			s += float64(v[j]) * float64(q[j])
		}
		all[i] = scored{ids[i], s * norm(v) * norm(q)}
	}
	sort.Slice(all, func(a, b int) bool {
		if all[a].s != all[b].s {
			return all[a].s > all[b].s
		}
		return all[a].id < all[b].id
	})
	out := make([]string, k)
	for i := range out {
		out[i] = all[i].id
	}
	return out
}

func TestSearchMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, metric := range []Metric{Cosine, Dot} {
		for _, n := range []int{1, 5, 9000} { // 9000 spans two document blocks
			dim := 24
			vecs := randVectors(rng, n, dim)
			ids := make([]string, n)
			for i, p := range rng.Perm(n) { // ids in shuffled order
				ids[i] = fmt.Sprintf("d%05d", p)
			}
			queries := randVectors(rng, 130, dim) // spans two query batches
			ix, err := Build(metric, append([]string(nil), ids...), vecs)
			if err != nil {
				t.Fatal(err)
			}
			res, err := ix.Search(queries, 10)
			if err != nil {
				t.Fatal(err)
			}
			k := min(10, n)
			for qi, q := range queries {
				want := bruteForce(ids, vecs, q, metric, k)
				if len(res[qi]) != k {
					t.Fatalf("%s n=%d query %d: %d hits, want %d", metric, n, qi, len(res[qi]), k)
				}
				for r := range want {
					if res[qi][r].ID != want[r] {
						t.Fatalf("%s n=%d query %d rank %d: %s, want %s", metric, n, qi, r, res[qi][r].ID, want[r])
					}
				}
			}
		}
	}
}

func TestTiesBreakByID(t *testing.T) {
	// Four identical vectors: every score ties, so the order is the id order.
	v := []float32{1, 2, 3}
	ix, err := Build(Cosine, []string{"c", "a", "d", "b"}, [][]float32{v, v, v, v})
	if err != nil {
		t.Fatal(err)
	}
	res, err := ix.Search([][]float32{{3, 2, 1}}, 3)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range res[0] {
		got = append(got, h.ID)
	}
	if strings.Join(got, ",") != "a,b,c" {
		t.Fatalf("tie order %v, want a,b,c", got)
	}
}

func TestBuildErrors(t *testing.T) {
	for name, c := range map[string]struct {
		ids  []string
		vecs [][]float32
		want string
	}{
		"ragged":    {[]string{"a", "b"}, [][]float32{{1, 2}, {1}}, "vector 1 (id \"b\") has 1 dimensions"},
		"duplicate": {[]string{"a", "a"}, [][]float32{{1}, {2}}, "duplicate id \"a\""},
		"zero":      {[]string{"a"}, [][]float32{{0, 0}}, "zero vector"},
		"empty id":  {[]string{""}, [][]float32{{1}}, "empty id"},
		"count":     {[]string{"a"}, nil, "1 ids for 0 vectors"},
	} {
		_, err := Build(Cosine, c.ids, c.vecs)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to mention %q", name, err, c.want)
		}
	}
}

func TestSaveOpenRoundTrip(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(9, 10))
	n, dim := arrowfile.RowsPerBatch+5, 8 // two record batches
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("doc-%d", i)
	}
	ix, err := Build(Cosine, ids, randVectors(rng, n, dim))
	if err != nil {
		t.Fatal(err)
	}
	if err := ix.Save(dir); err != nil {
		t.Fatal(err)
	}
	m := Manifest{Kind: Dense, Count: ix.Len(), Metric: ix.Metric(), Dim: ix.Dim()}
	if err := WriteManifest(dir, m); err != nil {
		t.Fatal(err)
	}
	got, err := ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	ix2, err := Open(dir, got)
	if err != nil {
		t.Fatal(err)
	}
	if ix2.Len() != n || ix2.Dim() != dim {
		t.Fatalf("reopened %d x %d, want %d x %d", ix2.Len(), ix2.Dim(), n, dim)
	}
	for i := 0; i < n; i += 997 {
		if ix2.IDs()[i] != ix.IDs()[i] || fmt.Sprint(ix2.Vector(i)) != fmt.Sprint(ix.Vector(i)) {
			t.Fatalf("row %d differs after reopening", i)
		}
	}

	if err := SaveDocs(dir, []string{"b", "a"}, []string{"text b", "text a"}); err != nil {
		t.Fatal(err)
	}
	docs, err := LoadDocs(dir)
	if err != nil || docs["a"] != "text a" || docs["b"] != "text b" {
		t.Fatalf("LoadDocs = %v, %v", docs, err)
	}

	// A damaged vectors file and a lying manifest give errors, not panics.
	bad := got
	bad.Count = n + 1
	if _, err := Open(dir, bad); err == nil || !strings.Contains(err.Error(), "manifest says") {
		t.Errorf("count mismatch: %v", err)
	}
	data, _ := os.ReadFile(filepath.Join(dir, VectorsFile))
	for _, cut := range []int{10, len(data) / 2, len(data) - 10} {
		os.WriteFile(filepath.Join(dir, VectorsFile), data[:cut], 0o644)
		if _, err := Open(dir, got); err == nil {
			t.Errorf("vectors file cut at %d bytes opened without error", cut)
		}
	}
	os.WriteFile(filepath.Join(dir, ManifestFile), []byte(`{"format":"ragtune-index","version":1,"kind":"dense","metric":"l2","dim":8}`), 0o644)
	if _, err := ReadManifest(dir); err == nil || !strings.Contains(err.Error(), "metric") {
		t.Errorf("bad metric: %v", err)
	}
	os.WriteFile(filepath.Join(dir, ManifestFile), []byte(`{"format":"ragtune-index","version":1,"kind":"bm25","fusion":{"method":"minmax","weight":2,"chosen":"given"}}`), 0o644)
	if _, err := ReadManifest(dir); err == nil || !strings.Contains(err.Error(), `field "fusion": fusion weight 2`) {
		t.Errorf("bad fusion: %v", err)
	}
}
