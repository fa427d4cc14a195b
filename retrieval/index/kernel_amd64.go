package index

import "golang.org/x/sys/cpu"

// haveSIMD reports whether the AVX2+FMA tiles in kernel_amd64.s can run here.
var haveSIMD = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// dot3x4AVX2 writes the 12 dot products of 3 query rows with 4 document rows
// over their first n floats (n a positive multiple of 8) into out, row-major.
//
//go:noescape
func dot3x4AVX2(q0, q1, q2, d0, d1, d2, d3 *float32, n int, out *[12]float32)

// dot1x4AVX2 writes the 4 dot products of one query row with 4 document rows
// over their first n floats (n a positive multiple of 8) into out.
//
//go:noescape
func dot1x4AVX2(q, d0, d1, d2, d3 *float32, n int, out *[4]float32)

// scoreRangeSIMD is scoreRange on AVX2 tiles. The loops go documents
// outside, queries inside: a group of 4 documents is read from memory once
// and meets every query while it sits in L1, and the query batch stays in L2.
func scoreRangeSIMD(q []float32, nq int, docs []float32, lo, hi, nd, dim int, out []float32) {
	n8 := dim &^ 7
	var t12 [12]float32
	var t4 [4]float32
	j := lo
	for ; j+4 <= hi; j += 4 {
		d0, d1, d2, d3 := docs[j*dim:(j+1)*dim], docs[(j+1)*dim:(j+2)*dim], docs[(j+2)*dim:(j+3)*dim], docs[(j+3)*dim:(j+4)*dim]
		i := 0
		for ; i+3 <= nq; i += 3 {
			q0, q1, q2 := q[i*dim:(i+1)*dim], q[(i+1)*dim:(i+2)*dim], q[(i+2)*dim:(i+3)*dim]
			dot3x4AVX2(&q0[0], &q1[0], &q2[0], &d0[0], &d1[0], &d2[0], &d3[0], n8, &t12)
			if n8 < dim { // the last dim%8 lanes
				for r, qr := range [3][]float32{q0, q1, q2} {
					for c, dc := range [4][]float32{d0, d1, d2, d3} {
						t12[r*4+c] += dot(qr[n8:], dc[n8:])
					}
				}
			}
			for r := range 3 {
				copy(out[(i+r)*nd+j:(i+r)*nd+j+4], t12[r*4:r*4+4])
			}
		}
		for ; i < nq; i++ {
			qi := q[i*dim : (i+1)*dim]
			dot1x4AVX2(&qi[0], &d0[0], &d1[0], &d2[0], &d3[0], n8, &t4)
			if n8 < dim {
				for c, dc := range [4][]float32{d0, d1, d2, d3} {
					t4[c] += dot(qi[n8:], dc[n8:])
				}
			}
			copy(out[i*nd+j:i*nd+j+4], t4[:])
		}
	}
	for ; j < hi; j++ {
		d := docs[j*dim : (j+1)*dim]
		for i := range nq {
			out[i*nd+j] = dot(q[i*dim:(i+1)*dim], d)
		}
	}
}
