package hpo

import (
	"fmt"
	"math/bits"
	"math/rand/v2"
)

// sobolBits is the resolution of the generated points (2^-30), as in SciPy.
const sobolBits = 30

// sobolPoly is one row of the direction-number table (sobol_directions.go).
type sobolPoly struct {
	poly uint32   // primitive polynomial, leading and trailing coefficients included
	m    []uint32 // initial direction numbers m_1..m_s
}

// sobolSequence is the Sobol low-discrepancy sequence with Joe and Kuo's
// direction numbers, in Gray-code order: the same points, in the same
// order, as scipy.stats.qmc.Sobol(d, scramble=False). Point k is the XOR of
// the direction integers selected by the bits of k's Gray code, so any point
// is computed directly from its index (what fast_forward does in SciPy).
type sobolSequence struct {
	v     [][sobolBits]uint32 // direction integers per dimension
	shift []uint32            // digital shift per dimension (zero unless scrambled)
}

// newSobolSequence builds the direction integers for the first dims dimensions.
func newSobolSequence(dims int) (*sobolSequence, error) {
	if dims < 1 || dims > len(joeKuo) {
		return nil, fmt.Errorf("sobol: %d dimensions asked; 1 to %d supported", dims, len(joeKuo))
	}
	s := &sobolSequence{v: make([][sobolBits]uint32, dims), shift: make([]uint32, dims)}
	for j := range dims {
		s.v[j] = directionIntegers(joeKuo[j])
	}
	return s, nil
}

// directionIntegers expands one table row with the Bratley–Fox recurrence
//
//	m_i = m_{i-s} XOR (m_{i-s} << s) XOR (XOR over k=1..s-1 of a_k·(m_{i-k} << k))
//
// where a_k are the interior coefficients of the polynomial of degree s,
// and returns v_i = m_i << (bits-1-i).
func directionIntegers(row sobolPoly) [sobolBits]uint32 {
	var m [sobolBits]uint32
	s := bits.Len32(row.poly) - 1
	if s == 0 { // van der Corput: every m_i is 1
		for i := range m {
			m[i] = 1
		}
	} else {
		copy(m[:s], row.m)
		for i := s; i < sobolBits; i++ {
			x := m[i-s] ^ (m[i-s] << s)
			for k := 1; k < s; k++ {
				if row.poly>>(s-k)&1 == 1 {
					x ^= m[i-k] << k
				}
			}
			m[i] = x
		}
	}
	var v [sobolBits]uint32
	for i := range v {
		v[i] = m[i] << (sobolBits - 1 - i)
	}
	return v
}

// point writes the index-th point (index < 2^30) into out, one value in
// [0, 1) per dimension.
func (s *sobolSequence) point(index uint64, out []float64) {
	gray := index ^ (index >> 1)
	for j := range s.v {
		x := s.shift[j]
		for g, i := gray, 0; g != 0; g, i = g>>1, i+1 {
			if g&1 == 1 {
				x ^= s.v[j][i]
			}
		}
		out[j] = float64(x) / (1 << sobolBits)
	}
}

// scramble applies a linear matrix scramble and a digital shift (LMS+shift,
// Matoušek 1998; the kind SciPy uses): each dimension's direction integers
// are multiplied by a random lower-triangular binary matrix with a unit
// diagonal, and its points XORed with a random shift. The result keeps the
// net structure but is randomized; it is not bit-identical to SciPy's,
// whose draws come from NumPy's generator.
func (s *sobolSequence) scramble(rng *rand.Rand) {
	for j := range s.v {
		var lower [sobolBits]uint32 // row r: bits c ≤ r (bit position counted from the top)
		for r := range lower {
			row := uint32(1) << (sobolBits - 1 - r) // unit diagonal
			for c := 0; c < r; c++ {
				if rng.IntN(2) == 1 {
					row |= 1 << (sobolBits - 1 - c)
				}
			}
			lower[r] = row
		}
		for i, v := range s.v[j] {
			var out uint32
			for r, row := range lower {
				if bits.OnesCount32(row&v)&1 == 1 {
					out |= 1 << (sobolBits - 1 - r)
				}
			}
			s.v[j][i] = out
		}
		s.shift[j] = uint32(rng.Uint64()) & (1<<sobolBits - 1)
	}
}
