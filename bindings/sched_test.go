package bindings

import (
	"strings"
	"testing"
)

// TestSchedulerAccounting checks the scheduler path's bookkeeping on the
// CPU device: the peak counts weights and compute buffers held together
// and survives their release, a graph computed after another one was
// allocated is refused instead of running on stale placements, and the CPU
// device reports no fallback.
func TestSchedulerAccounting(t *testing.T) {
	be, err := NewCPUBackend(1)
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	wctx, _ := NewContext(2, 0, false)
	defer wctx.Close()
	w := wctx.NewTensor(TypeF32, 1000)
	wbuf, err := be.AllocTensors(wctx)
	if err != nil {
		t.Fatal(err)
	}
	w.SetF32(make([]float32, 1000))
	build := func(n int) (*Context, *Graph, Tensor) {
		ctx, _ := NewContext(8, 16, false)
		x := ctx.NewTensor(TypeF32, n).SetInput()
		y := ctx.Scale(ctx.Sqr(x), 2)
		g, _ := ctx.NewGraph(16, false)
		if err := g.Expand(y); err != nil {
			t.Fatal(err)
		}
		return ctx, g, x
	}
	c1, g1, x1 := build(1 << 16)
	defer c1.Close()
	c2, g2, _ := build(8)
	defer c2.Close()
	alloc := be.NewAllocator()
	if err := alloc.Alloc(g1); err != nil {
		t.Fatal(err)
	}
	x1.SetF32(make([]float32, 1<<16))
	if err := be.Compute(g1); err != nil {
		t.Fatal(err)
	}
	held := int64(wbuf.Size() + alloc.BufferSize())
	if alloc.BufferSize() < 4<<16 || be.PeakDeviceBytes() != held {
		t.Fatalf("peak %d bytes, compute buffer %d: want weights + compute buffer = %d", be.PeakDeviceBytes(), alloc.BufferSize(), held)
	}
	if err := alloc.Alloc(g2); err != nil {
		t.Fatal(err)
	}
	if err := be.Compute(g1); err == nil || !strings.Contains(err.Error(), "allocate it again") {
		t.Fatalf("computing a graph placed before another: err %v", err)
	}
	alloc.Close()
	wbuf.Close()
	small, _ := NewContext(2, 0, false)
	defer small.Close()
	small.NewTensor(TypeF32, 4)
	sbuf, err := be.AllocTensors(small)
	if err != nil {
		t.Fatal(err)
	}
	defer sbuf.Close()
	u := be.Usage()
	if u.PeakDeviceBytes != held || u.Device != "CPU" || len(u.Fallbacks) != 0 {
		t.Fatalf("usage after release %+v: want the earlier peak %d on CPU, no fallback", u, held)
	}
}
