package embmap

import (
	"math"
	"math/rand/v2"
	"slices"
	"syscall"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// clusters draws perClass points around each of classes centres in dim
// dimensions: centres ~ N(0, 10²) per coordinate, points = centre + N(0, 1),
// so clusters sit ~20x their own radius apart.
func clusters(classes, perClass, dim int, seed uint64) ([][]float32, []int) {
	rng := rand.New(rand.NewPCG(seed, 7))
	var vecs [][]float32
	var labels []int
	for c := range classes {
		centre := make([]float64, dim)
		for j := range centre {
			centre[j] = rng.NormFloat64() * 10
		}
		for range perClass {
			v := make([]float32, dim)
			for j := range v {
				v[j] = float32(centre[j] + rng.NormFloat64())
			}
			vecs = append(vecs, v)
			labels = append(labels, c)
		}
	}
	return vecs, labels
}

// TestPCAEqualsEigenReference checks PCA (an SVD of the centred data)
// against an independent route: the eigenvectors of the covariance matrix.
func TestPCAEqualsEigenReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	const n, dim = 300, 12
	vecs := make([][]float32, n)
	for i := range vecs {
		v := make([]float32, dim)
		for j := range v {
			// Distinct variances per axis plus a correlation, so the top
			// two directions are well defined and not the axes.
			v[j] = float32(rng.NormFloat64()*float64(dim-j) + 3)
		}
		v[1] += 0.5 * v[0]
		vecs[i] = v
	}
	got, err := PCA(vecs)
	if err != nil {
		t.Fatal(err)
	}
	x := mat.NewDense(n, dim, nil)
	for j := range dim {
		var m float64
		for i := range n {
			m += float64(vecs[i][j])
		}
		m /= n
		for i := range n {
			x.Set(i, j, float64(vecs[i][j])-m)
		}
	}
	var cov mat.SymDense
	cov.SymOuterK(1, x.T())
	var eig mat.EigenSym
	if !eig.Factorize(&cov, true) {
		t.Fatal("eigen decomposition failed")
	}
	values := eig.Values(nil) // ascending
	var vectors mat.Dense
	eig.VectorsTo(&vectors)
	var trace float64
	for _, v := range values {
		trace += v
	}
	for c := range 2 {
		col := dim - 1 - c
		ref := mat.Col(nil, col, &vectors)
		flipSign(ref)
		for j := range dim {
			if math.Abs(ref[j]-got.Components[c][j]) > 1e-9 {
				t.Fatalf("component %d entry %d: %g, reference %g", c, j, got.Components[c][j], ref[j])
			}
		}
		if want := values[col] / trace; math.Abs(got.Explained[c]-want) > 1e-12 {
			t.Fatalf("explained[%d] = %g, want %g", c, got.Explained[c], want)
		}
		for i := range n {
			want := mat.Dot(x.RowView(i), mat.NewVecDense(dim, ref))
			have := got.Points[i].X
			if c == 1 {
				have = got.Points[i].Y
			}
			if math.Abs(have-want) > 1e-9*(1+math.Abs(want)) {
				t.Fatalf("point %d coordinate %d: %g, reference %g", i, c, have, want)
			}
		}
	}
}

// TestPCALine: points on a line map to their centred positions along it
// (scaled by the direction's length), and the second coordinate is 0.
func TestPCALine(t *testing.T) {
	dir := []float32{1, 2, 2} // length 3
	var vecs [][]float32
	for _, s := range []float32{-2, 0, 1, 5} {
		vecs = append(vecs, []float32{1 + s*dir[0], -1 + s*dir[1], 4 + s*dir[2]})
	}
	got, err := PCA(vecs)
	if err != nil {
		t.Fatal(err)
	}
	// mean of s is 1; the largest entry of dir is positive, so x = 3(s−1).
	for i, want := range []float64{-9, -3, 0, 12} {
		if math.Abs(got.Points[i].X-want) > 1e-5 || math.Abs(got.Points[i].Y) > 1e-5 {
			t.Fatalf("point %d = %+v, want (%g, 0)", i, got.Points[i], want)
		}
	}
	if got.Explained[0] < 1-1e-9 || got.Explained[1] != 0 {
		t.Fatalf("explained = %v, want [1 0]", got.Explained)
	}
}

func TestBadVectors(t *testing.T) {
	for name, vecs := range map[string][][]float32{
		"empty":  nil,
		"ragged": {{1, 2}, {1}},
		"nan":    {{1, 2}, {float32(math.NaN()), 0}},
	} {
		if _, err := PCA(vecs); err == nil {
			t.Errorf("PCA(%s): no error", name)
		}
		if _, err := UMAP(vecs, UMAPOptions{}); err == nil {
			t.Errorf("UMAP(%s): no error", name)
		}
	}
}

// TestFitCurve: umap-learn's find_ab_params gives a = 1.5769, b = 0.8951
// for spread 1, min_dist 0.1 (the same least-squares problem).
func TestFitCurve(t *testing.T) {
	a, b, err := fitCurve(1, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(a-1.5769) > 2e-4 || math.Abs(b-0.8951) > 2e-4 {
		t.Fatalf("a, b = %.5f, %.5f; want 1.5769, 0.8951", a, b)
	}
	if _, _, err := fitCurve(1, 2); err == nil {
		t.Fatal("min-dist > spread accepted")
	}
}

// TestSmoothDistances: each point's memberships sum to log2(k+1), and the
// nearest neighbour has membership 1.
func TestSmoothDistances(t *testing.T) {
	vecs, _ := clusters(3, 20, 5, 1)
	flat, n, dim, _ := flatten(vecs)
	nb := exactKNN(flat, n, dim, 7, nil)
	rho, sigma := smoothDistances(nb)
	for i := range n {
		var sum float64
		for r := range nb.k {
			sum += math.Exp(-math.Max(0, nb.dist[i*nb.k+r]-rho[i]) / sigma[i])
		}
		if math.Abs(sum-3) > 1e-4 {
			t.Fatalf("point %d: memberships sum to %g, want log2(8) = 3", i, sum)
		}
		if rho[i] != nb.dist[i*nb.k] {
			t.Fatalf("point %d: rho %g, nearest distance %g", i, rho[i], nb.dist[i*nb.k])
		}
	}
}

// TestExactKNN compares the kernel-based search with a plain sort.
func TestExactKNN(t *testing.T) {
	vecs, _ := clusters(4, 30, 16, 2)
	flat, n, dim, _ := flatten(vecs)
	const k = 6
	nb := exactKNN(flat, n, dim, k, nil)
	for i := range n {
		others := make([]int, 0, n-1)
		for j := range n {
			if j != i {
				others = append(others, j)
			}
		}
		slices.SortStableFunc(others, func(a, b int) int {
			da, db := distance(vecs[i], vecs[a]), distance(vecs[i], vecs[b])
			switch {
			case da < db:
				return -1
			case da > db:
				return 1
			}
			return 0
		})
		for r := range k {
			if int(nb.index[i*k+r]) != others[r] {
				t.Fatalf("point %d neighbour %d: %d, want %d", i, r, nb.index[i*k+r], others[r])
			}
		}
	}
}

// TestFuzzyGraph: weights are symmetric, in (0, 1], and follow the fuzzy
// union of the two directed memberships.
func TestFuzzyGraph(t *testing.T) {
	vecs, _ := clusters(3, 15, 4, 5)
	flat, n, dim, _ := flatten(vecs)
	nb := exactKNN(flat, n, dim, 5, nil)
	edges := fuzzyGraph(nb)
	rho, sigma := smoothDistances(nb)
	member := func(i, j int) float64 {
		for r := range nb.k {
			if int(nb.index[i*nb.k+r]) == j {
				return math.Exp(-math.Max(0, nb.dist[i*nb.k+r]-rho[i]) / sigma[i])
			}
		}
		return 0
	}
	w := map[[2]int32]float64{}
	for _, e := range edges {
		w[[2]int32{e.from, e.to}] = e.weight
	}
	for key, v := range w {
		if back := w[[2]int32{key[1], key[0]}]; back != v {
			t.Fatalf("edge %v: %g one way, %g the other", key, v, back)
		}
		a, b := member(int(key[0]), int(key[1])), member(int(key[1]), int(key[0]))
		if want := a + b - a*b; math.Abs(v-want) > 1e-12 || v <= 0 || v > 1 {
			t.Fatalf("edge %v: weight %g, want %g", key, v, want)
		}
	}
}

// TestTrustworthinessHandComputed: five points on a line at 0..4 and a map
// that swaps the two ends. With k = 1 the map neighbours are 0→3 (true rank
// 3), 1→2 (rank 2), 2→1 (rank 1), 3→0 (rank 4), 4→1 (rank 3): penalty
// 2+1+0+3+2 = 8, T = 1 − 2/(5·1·6)·8 = 7/15.
func TestTrustworthinessHandComputed(t *testing.T) {
	var vecs [][]float32
	for i := range 5 {
		vecs = append(vecs, []float32{float32(i)})
	}
	ident := []Point{{0, 0}, {1, 0}, {2, 0}, {3, 0}, {4, 0}}
	if got, err := Trustworthiness(vecs, ident, 1); err != nil || got != 1 {
		t.Fatalf("identity map: T = %v (%v), want 1", got, err)
	}
	swapped := []Point{{4, 0}, {1, 0}, {2, 0}, {3, 0}, {0, 0}}
	got, err := Trustworthiness(vecs, swapped, 1)
	if err != nil || math.Abs(got-7.0/15) > 1e-12 {
		t.Fatalf("swapped map: T = %v (%v), want 7/15", got, err)
	}
	if _, err := Trustworthiness(vecs, swapped, 3); err == nil {
		t.Fatal("k >= n/2 accepted")
	}
}

// knnAccuracy is the leave-one-out accuracy of a k-nearest-neighbour vote
// in the map: how well the map keeps the labels apart.
func knnAccuracy(points []Point, labels []int, k int) float64 {
	right := 0
	for i := range points {
		votes := map[int]int{}
		for _, j := range mapNeighbours(points, i, k) {
			votes[labels[j]]++
		}
		best, bestN := -1, -1
		for l, c := range votes {
			if c > bestN || (c == bestN && l < best) {
				best, bestN = l, c
			}
		}
		if best == labels[i] {
			right++
		}
	}
	return float64(right) / float64(len(points))
}

// TestUMAPClusters: the known answer. Ten well-separated Gaussian clusters
// in 384 dimensions keep their neighbourhoods (trustworthiness at k = 10 of
// at least 0.9) and stay apart in the map (a 10-NN vote recovers the
// cluster of at least 99% of the points). The same seed gives the same map.
func TestUMAPClusters(t *testing.T) {
	vecs, labels := clusters(10, 60, 384, 11)
	opts := UMAPOptions{Seed: 42, Epochs: 200}
	points, err := UMAP(vecs, opts)
	if err != nil {
		t.Fatal(err)
	}
	tw, err := Trustworthiness(vecs, points, 10)
	if err != nil {
		t.Fatal(err)
	}
	acc := knnAccuracy(points, labels, 10)
	t.Logf("UMAP, 600 points: trustworthiness(10) %.4f, 10-NN label accuracy %.4f", tw, acc)
	if tw < 0.9 {
		t.Errorf("trustworthiness %.4f < 0.9", tw)
	}
	if acc < 0.99 {
		t.Errorf("10-NN accuracy %.4f < 0.99: clusters mix", acc)
	}
	again, err := UMAP(vecs, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(points, again) {
		t.Error("same seed, different map")
	}
	random, err := UMAP(vecs, UMAPOptions{Seed: 42, Epochs: 200, RandomInit: true})
	if err != nil {
		t.Fatal(err)
	}
	if acc := knnAccuracy(random, labels, 10); acc < 0.99 {
		t.Errorf("random init: 10-NN accuracy %.4f < 0.99", acc)
	}
	// PCA, for contrast, is measured and logged, not required.
	p, _ := PCA(vecs)
	ptw, _ := Trustworthiness(vecs, p.Points, 10)
	t.Logf("PCA, same data: trustworthiness(10) %.4f, 10-NN accuracy %.4f", ptw, knnAccuracy(p.Points, labels, 10))
}

func TestUMAPTiny(t *testing.T) {
	for n := 1; n <= 4; n++ {
		vecs, _ := clusters(1, n, 3, 9)
		points, err := UMAP(vecs, UMAPOptions{})
		if err != nil || len(points) != n {
			t.Fatalf("n = %d: %d points, %v", n, len(points), err)
		}
		for _, p := range points {
			if math.IsNaN(p.X) || math.IsNaN(p.Y) {
				t.Fatalf("n = %d: NaN in %v", n, points)
			}
		}
	}
}

// TestUMAPDuplicates: identical vectors (the same text twice, or a whole
// degenerate set) give finite maps.
func TestUMAPDuplicates(t *testing.T) {
	same := make([][]float32, 40)
	for i := range same {
		same[i] = []float32{1, 2, 3}
	}
	vecs, _ := clusters(2, 20, 8, 4)
	vecs = append(vecs, vecs[:10]...)
	for name, vs := range map[string][][]float32{"all identical": same, "ten repeated": vecs} {
		points, err := UMAP(vs, UMAPOptions{Epochs: 30})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, p := range points {
			if math.IsNaN(p.X) || math.IsNaN(p.Y) || math.IsInf(p.X, 0) || math.IsInf(p.Y, 0) {
				t.Fatalf("%s: non-finite point %v", name, p)
			}
		}
	}
}

// BenchmarkUMAP10k maps 10,000 embeddings of 384 dimensions (10 clusters),
// umap-learn's default 500 epochs. Besides wall time it reports the
// process's CPU seconds per map, which a shared machine disturbs less.
func BenchmarkUMAP10k(b *testing.B) {
	vecs, _ := clusters(10, 1000, 384, 1)
	benchCPU(b, func() error {
		_, err := UMAP(vecs, UMAPOptions{Seed: 1})
		return err
	})
}

// BenchmarkPCA10k maps the same 10,000 x 384 embeddings with PCA.
func BenchmarkPCA10k(b *testing.B) {
	vecs, _ := clusters(10, 1000, 384, 1)
	benchCPU(b, func() error {
		_, err := PCA(vecs)
		return err
	})
}

func benchCPU(b *testing.B, fn func() error) {
	cpu := func() float64 {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
	}
	start, n := cpu(), 0
	for b.Loop() {
		if err := fn(); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric((cpu()-start)/float64(n), "cpu-s/op")
}
