package index

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	chromem "github.com/philippgille/chromem-go"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

// Benchmarks of the embedded index against chromem-go on random unit
// vectors of 384 dimensions (the size of all-MiniLM-L6-v2 and bge-small).
// Sizes come from RAGTUNE_BENCH_SIZES (comma-separated, default 100000);
// 1,000,000 vectors take 1.5 GB per copy, so run that size on purpose:
//
//	RAGTUNE_BENCH_SIZES=100000,1000000 go test ./retrieval/index -run '^$' -bench . -benchtime 3x

const benchDim = 384

func benchSizes(b *testing.B) []int {
	var sizes []int
	for _, s := range strings.Split(cmpOr(os.Getenv("RAGTUNE_BENCH_SIZES"), "100000"), ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			b.Fatalf("RAGTUNE_BENCH_SIZES: bad size %q", s)
		}
		sizes = append(sizes, n)
	}
	return sizes
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// benchData caches one random unit-vector matrix per size across benchmarks.
var benchData = struct {
	sync.Mutex
	m map[int][]float32
}{m: map[int][]float32{}}

func unitVectors(n int, seed uint64) []float32 {
	benchData.Lock()
	defer benchData.Unlock()
	if v, ok := benchData.m[n]; ok && seed == 1 {
		return v
	}
	rng := rand.New(rand.NewPCG(seed, 99))
	v := make([]float32, n*benchDim)
	for i := range n {
		row := v[i*benchDim : (i+1)*benchDim]
		var s float64
		for j := range row {
			x := rng.NormFloat64()
			row[j] = float32(x)
			s += x * x
		}
		inv := float32(1 / math.Sqrt(s))
		for j := range row {
			row[j] *= inv
		}
	}
	if seed == 1 {
		benchData.m[n] = v
	}
	return v
}

func benchIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("doc-%07d", i)
	}
	return ids
}

func rows(flat []float32, n int) [][]float32 {
	out := make([][]float32, n)
	for i := range out {
		out[i] = flat[i*benchDim : (i+1)*benchDim : (i+1)*benchDim]
	}
	return out
}

// BenchmarkBuild: vectors in memory -> searchable index (ours: checks, sort
// by id, normalisation; chromem-go: AddDocuments with given embeddings).
func BenchmarkBuild(b *testing.B) {
	for _, n := range benchSizes(b) {
		data := unitVectors(n, 1)
		b.Run(fmt.Sprintf("ragtune/n=%d", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := Build(Cosine, benchIDs(n), rows(data, n)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "vectors/s")
		})
		b.Run(fmt.Sprintf("chromem/n=%d", n), func(b *testing.B) {
			for b.Loop() {
				newChromem(b, n, data)
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "vectors/s")
		})
	}
}

func newChromem(b *testing.B, n int, data []float32) *chromem.Collection {
	db := chromem.NewDB()
	noEmbed := func(context.Context, string) ([]float32, error) {
		return nil, errors.New("benchmark documents carry their embeddings")
	}
	col, err := db.CreateCollection("bench", nil, noEmbed)
	if err != nil {
		b.Fatal(err)
	}
	ids := benchIDs(n)
	docs := make([]chromem.Document, n)
	for i := range docs {
		docs[i] = chromem.Document{ID: ids[i], Embedding: data[i*benchDim : (i+1)*benchDim : (i+1)*benchDim], Content: ids[i]}
	}
	if err := col.AddDocuments(context.Background(), docs, runtime.GOMAXPROCS(0)); err != nil {
		b.Fatal(err)
	}
	return col
}

// BenchmarkSearch: top-10 for 96 queries, either in one batched call or one
// query per call; chromem-go answers one query per call.
func BenchmarkSearch(b *testing.B) {
	const nq, k = 96, 10
	queries := rows(unitVectors(nq, 2), nq)
	for _, n := range benchSizes(b) {
		data := unitVectors(n, 1)
		ix, err := FromMatrix(Cosine, benchDim, benchIDs(n), append([]float32(nil), data...))
		if err != nil {
			b.Fatal(err)
		}
		report := func(b *testing.B) {
			qps := float64(nq) * float64(b.N) / b.Elapsed().Seconds()
			b.ReportMetric(qps, "queries/s")
			b.ReportMetric(2*float64(n)*benchDim*qps/1e9, "GFLOP/s")
		}
		b.Run(fmt.Sprintf("ragtune-batched/n=%d", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := ix.Search(queries, k); err != nil {
					b.Fatal(err)
				}
			}
			report(b)
		})
		b.Run(fmt.Sprintf("ragtune-single/n=%d", n), func(b *testing.B) {
			for b.Loop() {
				for _, q := range queries {
					if _, err := ix.Search([][]float32{q}, k); err != nil {
						b.Fatal(err)
					}
				}
			}
			report(b)
		})
		b.Run(fmt.Sprintf("ragtune-portable-batched/n=%d", n), func(b *testing.B) {
			ix.Kernel = GoKernel{Portable: true}
			defer func() { ix.Kernel = nil }()
			for b.Loop() {
				if _, err := ix.Search(queries, k); err != nil {
					b.Fatal(err)
				}
			}
			report(b)
		})
		col := newChromem(b, n, data)
		b.Run(fmt.Sprintf("chromem-single/n=%d", n), func(b *testing.B) {
			ctx := context.Background()
			for b.Loop() {
				for _, q := range queries {
					if _, err := col.QueryEmbedding(ctx, q, k, nil, nil); err != nil {
						b.Fatal(err)
					}
				}
			}
			report(b)
		})
	}
}

// BenchmarkPeak measures matrix-multiply peaks of this machine, to rate the
// search throughput against: gonum's pure-Go Sgemm (blas32) on 1024³, and
// this package's kernel on a block that fits in L2 (no memory traffic).
func BenchmarkPeak(b *testing.B) {
	const m = 1024
	a, c := blas32.General{Rows: m, Cols: m, Stride: m, Data: unitVectors(m*m/benchDim+1, 3)[:m*m]}, blas32.General{Rows: m, Cols: m, Stride: m, Data: make([]float32, m*m)}
	b.Run("gonum-sgemm/1024", func(b *testing.B) {
		for b.Loop() {
			blas32.Gemm(blas.NoTrans, blas.Trans, 1, a, a, 0, c)
		}
		b.ReportMetric(2*m*m*m*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	})
	const nq, nd = 96, 1024 // 150 KB of queries, 1.5 MB of documents
	q, d := unitVectors(nq, 4), unitVectors(nd, 5)
	out := make([]float32, nq*nd)
	b.Run("ragtune-kernel-in-cache", func(b *testing.B) {
		for b.Loop() {
			GoKernel{}.Scores(q, nq, d, nd, benchDim, out)
		}
		b.ReportMetric(2*nq*nd*benchDim*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	})
}
