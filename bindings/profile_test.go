package bindings

import (
	"math/rand/v2"
	"testing"
)

// TestComputeTimed checks that a timed compute gives the untimed results,
// times every computing node once in graph order and leaves views out, and
// that the scheduler runs untimed again afterwards.
func TestComputeTimed(t *testing.T) {
	be, err := NewCPUBackend(2)
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	ctx, _ := NewContext(16, 32, false)
	defer ctx.Close()
	a := ctx.NewTensor(TypeF32, 64, 32).SetInput()
	x := ctx.NewTensor(TypeF32, 64, 48).SetInput()
	// a view between two computing nodes
	y := ctx.SumRows(ctx.Sqr(ctx.Cont(ctx.Transpose(ctx.MulMat(a, x))))).SetOutput()
	g, _ := ctx.NewGraph(32, false)
	if err := g.Expand(y); err != nil {
		t.Fatal(err)
	}
	alloc := be.NewAllocator()
	defer alloc.Close()
	if _, err := be.ComputeTimed(g); err == nil {
		t.Fatal("timed compute of a graph never allocated: want an error")
	}
	// Inputs are uploaded before every compute: the allocator may reuse
	// their memory once read.
	fill := func() {
		r := rand.New(rand.NewPCG(1, 2))
		for _, in := range []Tensor{a, x} {
			v := make([]float32, in.Nelements())
			for i := range v {
				v[i] = r.Float32()
			}
			if err := in.SetF32(v); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := alloc.Alloc(g); err != nil {
		t.Fatal(err)
	}
	fill()
	if err := be.Compute(g); err != nil {
		t.Fatal(err)
	}
	want := y.F32()
	fill()
	times, err := be.ComputeTimed(g)
	if err != nil {
		t.Fatal(err)
	}
	var computing []Tensor
	for i := 0; i < g.NumNodes(); i++ {
		if n := g.Node(i); n.FLOPs() > 0 || n.IsCopy() {
			computing = append(computing, n)
		}
	}
	if len(times) != len(computing) {
		t.Fatalf("%d nodes timed, graph has %d computing nodes", len(times), len(computing))
	}
	for i, nt := range times {
		if nt.Node != computing[i] || nt.Seconds <= 0 {
			t.Fatalf("timing %d: %v %.3gs, want node %v with a positive time", i, nt.Node, nt.Seconds, computing[i])
		}
	}
	if got := y.F32(); !equalF32(got, want) {
		t.Fatalf("timed compute gave %v, untimed %v", got[:4], want[:4])
	}
	// The callback is gone: an untimed compute after a timed one still works.
	fill()
	if err := be.Compute(g); err != nil || !equalF32(y.F32(), want) {
		t.Fatalf("untimed compute after a timed one: %v", err)
	}
}

func equalF32(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
