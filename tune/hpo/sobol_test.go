package hpo

import (
	"math"
	"math/rand/v2"
	"testing"
)

// scipyFirst16 is scipy.stats.qmc.Sobol(5, scramble=False).random(16)
// (SciPy 1.10.1, the generator behind Optuna 3.1's QMCSampler).
var scipyFirst16 = [16][5]float64{
	{0, 0, 0, 0, 0},
	{0.5, 0.5, 0.5, 0.5, 0.5},
	{0.75, 0.25, 0.25, 0.25, 0.75},
	{0.25, 0.75, 0.75, 0.75, 0.25},
	{0.375, 0.375, 0.625, 0.875, 0.375},
	{0.875, 0.875, 0.125, 0.375, 0.875},
	{0.625, 0.125, 0.875, 0.625, 0.625},
	{0.125, 0.625, 0.375, 0.125, 0.125},
	{0.1875, 0.3125, 0.9375, 0.4375, 0.5625},
	{0.6875, 0.8125, 0.4375, 0.9375, 0.0625},
	{0.9375, 0.0625, 0.6875, 0.1875, 0.3125},
	{0.4375, 0.5625, 0.1875, 0.6875, 0.8125},
	{0.3125, 0.1875, 0.3125, 0.5625, 0.9375},
	{0.8125, 0.6875, 0.8125, 0.0625, 0.4375},
	{0.5625, 0.4375, 0.0625, 0.8125, 0.1875},
	{0.0625, 0.9375, 0.5625, 0.3125, 0.6875},
}

func TestSobolMatchesSciPy(t *testing.T) {
	seq, err := newSobolSequence(5)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]float64, 5)
	for i, want := range scipyFirst16 {
		seq.point(uint64(i), got)
		for j := range want {
			if got[j] != want[j] {
				t.Fatalf("point %d dim %d = %v, want %v", i, j, got[j], want[j])
			}
		}
	}
	// Far points in high dimensions, from SciPy's fast_forward(k).random(1).
	for _, c := range []struct {
		dims, index, from int
		want              []float64
	}{
		{1024, 1000, 1019, []float64{0.9326171875, 0.5751953125, 0.2939453125, 0.1376953125, 0.7138671875}},
		{40, 777, 30, []float64{0.5419921875, 0.8994140625, 0.1123046875, 0.0029296875, 0.8056640625,
			0.9462890625, 0.4619140625, 0.3505859375, 0.3427734375, 0.3583984375}},
	} {
		seq, err := newSobolSequence(c.dims)
		if err != nil {
			t.Fatal(err)
		}
		p := make([]float64, c.dims)
		seq.point(uint64(c.index), p)
		for k, w := range c.want {
			if p[c.from+k] != w {
				t.Errorf("point %d dim %d = %v, want %v", c.index, c.from+k, p[c.from+k], w)
			}
		}
	}
}

// TestSobolMatchesBitByBit checks the first 8 dimensions over 1024 points
// against a deliberately naive construction from Joe and Kuo's published
// rows (d, s, a, m_i): direction numbers as explicit binary digits, points
// as sums of digits over the bits of the Gray code, no shared code.
func TestSobolMatchesBitByBit(t *testing.T) {
	rows := []struct {
		s, a int
		m    []int
	}{
		{0, 0, nil}, // van der Corput
		{1, 0, []int{1}},
		{2, 1, []int{1, 3}},
		{3, 1, []int{1, 3, 1}},
		{3, 2, []int{1, 1, 1}},
		{4, 1, []int{1, 1, 3, 3}},
		{4, 4, []int{1, 3, 5, 13}},
		{5, 2, []int{1, 1, 5, 5, 17}},
	}
	const nbits = 30
	// digits[j][i][b] = b-th binary digit (weight 2^-(b+1)) of v_i for dim j.
	digits := make([][][nbits]int, len(rows))
	for j, r := range rows {
		m := make([]int, nbits)
		for i := range m {
			switch {
			case r.s == 0:
				m[i] = 1
			case i < r.s:
				m[i] = r.m[i]
			default:
				x := m[i-r.s] ^ (m[i-r.s] << r.s)
				for k := 1; k < r.s; k++ {
					if (r.a>>(r.s-1-k))&1 == 1 {
						x ^= m[i-k] << k
					}
				}
				m[i] = x
			}
		}
		digits[j] = make([][nbits]int, nbits)
		for i := range nbits {
			// v_i = m_i / 2^(i+1): digit b is bit (i-b) of m_i.
			for b := 0; b <= i; b++ {
				digits[j][i][b] = (m[i] >> (i - b)) & 1
			}
		}
	}
	seq, _ := newSobolSequence(len(rows))
	got := make([]float64, len(rows))
	for n := range 1024 {
		seq.point(uint64(n), got)
		g := n ^ (n >> 1)
		for j := range rows {
			var acc [nbits]int
			for i := range nbits {
				if (g>>i)&1 == 1 {
					for b := range nbits {
						acc[b] ^= digits[j][i][b]
					}
				}
			}
			want := 0.0
			for b := range nbits {
				want += float64(acc[b]) * math.Ldexp(1, -(b+1))
			}
			if got[j] != want {
				t.Fatalf("point %d dim %d = %v, naive %v", n, j, got[j], want)
			}
		}
	}
}

func TestSobolScrambleKeepsStratification(t *testing.T) {
	seq, _ := newSobolSequence(3)
	seq.scramble(rand.New(rand.NewPCG(1, 2)))
	p := make([]float64, 3)
	// A (0, m, s)-net property: the first 2^k points of each dimension put
	// exactly one point in each of the 2^k equal intervals.
	for j := range 3 {
		seen := make([]bool, 64)
		for i := range 64 {
			seq.point(uint64(i), p)
			seen[int(p[j]*64)] = true
		}
		for c, ok := range seen {
			if !ok {
				t.Fatalf("scrambled dim %d: interval %d/64 empty", j, c)
			}
		}
	}
	seq.point(0, p)
	if p[0] == 0 && p[1] == 0 {
		t.Fatalf("scrambled first point is still the origin")
	}
}

func TestSobolDimensionLimit(t *testing.T) {
	if _, err := newSobolSequence(len(joeKuo) + 1); err == nil {
		t.Fatal("want an error past the table")
	}
}
