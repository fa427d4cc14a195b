package chroma

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ragtune/ragtune/retrieval/index"
)

// startChroma runs a real Chroma server from <repo>/.cache/chroma (installed
// by scripts/test-deps) on a free port, and stops it when the test ends. It
// skips when Chroma is not installed, unless RAGTUNE_REQUIRE_SHARED=1.
func startChroma(t *testing.T) *Client {
	t.Helper()
	dir, _ := filepath.Abs("../../.cache/chroma")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", ".bin", "chroma")); err != nil {
		if os.Getenv("RAGTUNE_REQUIRE_SHARED") == "1" {
			t.Fatalf("chroma not installed in %s (run scripts/test-deps): %v", dir, err)
		}
		t.Skipf("chroma not installed in %s (run scripts/test-deps)", dir)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(filepath.Join(dir, "node_modules", ".bin", "chroma"), "run", "--path", t.TempDir(), "--port", fmt.Sprint(port))
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // node starts the server as a child
	logf, _ := os.Create(filepath.Join(t.TempDir(), "chroma.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
	c := New(fmt.Sprintf("http://127.0.0.1:%d", port))
	deadline := time.Now().Add(90 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := c.Heartbeat(ctx)
		cancel()
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logf.Name())
			t.Fatalf("chroma did not answer on port %d: %v\n%s", port, err, log)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// TestSameTopKAsEmbeddedIndex stores the same random vectors in a real
// Chroma collection (cosine, HNSW with a large ef, exact on this size) and
// in the embedded exact index, and expects identical top-10 lists.
func TestSameTopKAsEmbeddedIndex(t *testing.T) {
	c := startChroma(t)
	ctx := context.Background()
	c.Tenant, c.Database = "ragtune_test", "retrieval"
	if err := c.EnsureTenant(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.EnsureDatabase(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.EnsureDatabase(ctx); err != nil { // idempotent
		t.Fatal(err)
	}
	col, err := c.GetOrCreateCollection(ctx, "random-vectors", HNSW{Space: Cosine, EFConstruction: 400, EFSearch: 400, MaxNeighbors: 32})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(11, 12))
	const n, dim, nq, k = 1500, 32, 25, 10 // 1500 spans two add batches
	ids := make([]string, n)
	vecs := make([][]float32, n)
	for i := range vecs {
		ids[i] = fmt.Sprintf("doc-%04d", i)
		vecs[i] = make([]float32, dim)
		for j := range vecs[i] {
			vecs[i][j] = float32(rng.NormFloat64())
		}
	}
	if err := col.Add(ctx, ids, vecs, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := col.Count(ctx); err != nil || got != n {
		t.Fatalf("count = %d, %v; want %d", got, err, n)
	}
	queries := make([][]float32, nq)
	for i := range queries {
		queries[i] = make([]float32, dim)
		for j := range queries[i] {
			queries[i][j] = float32(rng.NormFloat64())
		}
	}
	fromChroma, err := col.Query(ctx, queries, k)
	if err != nil {
		t.Fatal(err)
	}
	ix, err := index.Build(index.Cosine, append([]string(nil), ids...), vecs)
	if err != nil {
		t.Fatal(err)
	}
	fromIndex, err := ix.Search(queries, k)
	if err != nil {
		t.Fatal(err)
	}
	for q := range queries {
		if len(fromChroma[q]) != k {
			t.Fatalf("query %d: chroma gave %d hits", q, len(fromChroma[q]))
		}
		for r := range k {
			a, b := fromChroma[q][r], fromIndex[q][r]
			if a.ID != b.ID {
				t.Fatalf("query %d rank %d: chroma %s (%.5f), index %s (%.5f)", q, r, a.ID, a.Score, b.ID, b.Score)
			}
			if d := a.Score - b.Score; d > 1e-4 || d < -1e-4 {
				t.Fatalf("query %d rank %d: cosine %.6f from chroma, %.6f from the index", q, r, a.Score, b.Score)
			}
		}
	}
	if err := c.DeleteCollection(ctx, "random-vectors"); err != nil {
		t.Fatal(err)
	}
	if _, err := col.Count(ctx); err == nil {
		t.Fatal("deleted collection still counts")
	}
}
