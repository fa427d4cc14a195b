package index

import (
	"runtime"
	"sync"
)

// Kernel computes the dot products between a batch of query rows and a block
// of document rows; it is the one hot loop of exact search, kept behind an
// interface so that cli can plug in a faster one (ggml's matrix multiply from
// bindings) while retrieval stays free of cgo.
//
// Scores writes out[i*nd+j] = dot(q[i*dim:(i+1)*dim], docs[j*dim:(j+1)*dim])
// for i < nq and j < nd. q, docs and out are row-major and at least nq*dim,
// nd*dim and nq*nd long. Implementations may use many goroutines but must
// return only when out is complete, and must be safe for concurrent calls.
type Kernel interface {
	Scores(q []float32, nq int, docs []float32, nd int, dim int, out []float32)
}

// GoKernel is the kernel written in Go (no cgo). The documents are split
// across goroutines; each goroutine computes register-blocked tiles: on amd64
// with AVX2 and FMA, 3 queries x 4 documents of 8-lane fused multiply-adds
// (Go assembly, kernel_amd64.s); elsewhere, portable scalar tiles of 4
// queries x 2 documents (8 independent accumulators, so the adds do not wait
// on each other and each loaded value is used 2 or 4 times).
type GoKernel struct {
	Threads  int  // goroutines; <= 0 means GOMAXPROCS
	Portable bool // use the scalar tiles even where AVX2 is available
}

// minDocsPerThread keeps goroutine start-up small next to the work it does.
const minDocsPerThread = 256

// Scores implements Kernel.
func (g GoKernel) Scores(q []float32, nq int, docs []float32, nd int, dim int, out []float32) {
	threads := g.Threads
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	threads = max(1, min(threads, nd/minDocsPerThread))
	score := scoreRange
	if haveSIMD && !g.Portable && dim >= 8 {
		score = scoreRangeSIMD
	}
	if threads == 1 {
		score(q, nq, docs, 0, nd, nd, dim, out)
		return
	}
	var wg sync.WaitGroup
	per := (nd + threads - 1) / threads
	for lo := 0; lo < nd; lo += per {
		hi := min(lo+per, nd)
		wg.Go(func() { score(q, nq, docs, lo, hi, nd, dim, out) })
	}
	wg.Wait()
}

// scoreRange fills the columns [lo, hi) of out (row stride nd).
func scoreRange(q []float32, nq int, docs []float32, lo, hi, nd, dim int, out []float32) {
	i := 0
	for ; i+4 <= nq; i += 4 {
		q0 := q[i*dim : (i+1)*dim]
		q1 := q[(i+1)*dim : (i+2)*dim]
		q2 := q[(i+2)*dim : (i+3)*dim]
		q3 := q[(i+3)*dim : (i+4)*dim]
		j := lo
		for ; j+2 <= hi; j += 2 {
			d0 := docs[j*dim : (j+1)*dim]
			d1 := docs[(j+1)*dim : (j+2)*dim]
			s00, s01, s10, s11, s20, s21, s30, s31 := dot4x2(q0, q1, q2, q3, d0, d1)
			out[i*nd+j], out[i*nd+j+1] = s00, s01
			out[(i+1)*nd+j], out[(i+1)*nd+j+1] = s10, s11
			out[(i+2)*nd+j], out[(i+2)*nd+j+1] = s20, s21
			out[(i+3)*nd+j], out[(i+3)*nd+j+1] = s30, s31
		}
		for ; j < hi; j++ {
			d := docs[j*dim : (j+1)*dim]
			out[i*nd+j] = dot(q0, d)
			out[(i+1)*nd+j] = dot(q1, d)
			out[(i+2)*nd+j] = dot(q2, d)
			out[(i+3)*nd+j] = dot(q3, d)
		}
	}
	for ; i < nq; i++ {
		qi := q[i*dim : (i+1)*dim]
		j := lo
		for ; j+4 <= hi; j += 4 {
			a, b, c, d := dot1x4(qi, docs[j*dim:(j+1)*dim], docs[(j+1)*dim:(j+2)*dim],
				docs[(j+2)*dim:(j+3)*dim], docs[(j+3)*dim:(j+4)*dim])
			out[i*nd+j], out[i*nd+j+1], out[i*nd+j+2], out[i*nd+j+3] = a, b, c, d
		}
		for ; j < hi; j++ {
			out[i*nd+j] = dot(qi, docs[j*dim:(j+1)*dim])
		}
	}
}

// dot4x2 returns the 8 dot products of 4 query rows with 2 document rows.
func dot4x2(q0, q1, q2, q3, d0, d1 []float32) (s00, s01, s10, s11, s20, s21, s30, s31 float32) {
	n := len(d0)
	q0, q1, q2, q3, d1 = q0[:n], q1[:n], q2[:n], q3[:n], d1[:n] // bounds checks once
	for k := 0; k < n; k++ {
		a, b := d0[k], d1[k]
		x0, x1, x2, x3 := q0[k], q1[k], q2[k], q3[k]
		s00 += x0 * a
		s01 += x0 * b
		s10 += x1 * a
		s11 += x1 * b
		s20 += x2 * a
		s21 += x2 * b
		s30 += x3 * a
		s31 += x3 * b
	}
	return
}

// dot1x4 returns the dot products of one query row with 4 document rows.
func dot1x4(q, d0, d1, d2, d3 []float32) (s0, s1, s2, s3 float32) {
	n := len(q)
	d0, d1, d2, d3 = d0[:n], d1[:n], d2[:n], d3[:n]
	for k := 0; k < n; k++ {
		x := q[k]
		s0 += x * d0[k]
		s1 += x * d1[k]
		s2 += x * d2[k]
		s3 += x * d3[k]
	}
	return
}

// dot is a 4-way unrolled dot product (4 accumulators hide the add latency).
func dot(a, b []float32) float32 {
	n := len(a)
	b = b[:n]
	var s0, s1, s2, s3 float32
	k := 0
	for ; k+4 <= n; k += 4 {
		s0 += a[k] * b[k]
		s1 += a[k+1] * b[k+1]
		s2 += a[k+2] * b[k+2]
		s3 += a[k+3] * b[k+3]
	}
	for ; k < n; k++ {
		s0 += a[k] * b[k]
	}
	return (s0 + s1) + (s2 + s3)
}
