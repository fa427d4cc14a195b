package bindings

// #include <stdlib.h>
// #include "ggml.h"
// #include "ggml-backend.h"
import "C"

import (
	"errors"
	"fmt"
)

// Allocator places graphs' intermediate tensors and runs them, through
// ggml's backend scheduler: every node goes to the device unless the
// device lacks its operation, in which case it runs on the CPU backend,
// and the scheduler copies tensors across at the boundaries. Inputs
// (tensors marked SetInput and placed by the allocator) live on the device
// too (pinInputs).
//
// Several graphs may share one allocator and its compute buffers; allocate
// a graph again before computing it after another one was allocated.
type Allocator struct {
	be       *Backend
	sched    C.ggml_backend_sched_t
	capacity int                   // tensors the scheduler's tables hold
	current  *C.struct_ggml_cgraph // the graph allocated last
	// The current graph's node operands, as built and as split. ggml's
	// scheduler re-points the operands a node reads from another backend to
	// copies in its own context, which the next split frees; a cached graph
	// allocated again after another one would read freed tensors (on any
	// device but the CPU, which has no splits). So the split operands are
	// put in place only while the graph computes.
	built, split []operands
	device       int64 // bytes of the device's compute buffer, as accounted
}

// NewAllocator makes a graph allocator for the backend.
func (b *Backend) NewAllocator() *Allocator { return &Allocator{be: b} }

// Alloc assigns memory (and a backend) to every node of g, growing the
// buffers if needed.
func (a *Allocator) Alloc(g *Graph) error {
	g.forgetPlacement()
	// The scheduler's tables must hold every node and leaf.
	if need := 2 * int(C.ggml_graph_size(g.g)); a.sched == nil || a.capacity < need {
		a.freeSched()
		backends := []C.ggml_backend_t{a.be.b}
		if !a.be.IsCPU() {
			backends = append(backends, a.be.cpu)
		}
		a.sched = C.ggml_backend_sched_new(&backends[0], nil, C.int(len(backends)), C.size_t(need), false, false)
		if a.sched == nil {
			return errors.New("ggml backend scheduler failed to start")
		}
		a.capacity = need
	}
	C.ggml_backend_sched_reset(a.sched)
	if !a.be.IsCPU() {
		a.pinInputs(g)
	}
	a.current = nil
	a.built = nodeSrcs(g.g, a.built)
	if !bool(C.ggml_backend_sched_alloc_graph(a.sched, g.g)) {
		setNodeSrcs(a.built)
		return fmt.Errorf("allocating the compute buffer on %s failed (out of memory?)", a.be.Name())
	}
	a.current, g.alloc = g.g, a
	a.split = nodeSrcs(g.g, a.split)
	setNodeSrcs(a.built)
	dev := int64(C.ggml_backend_sched_get_buffer_size(a.sched, a.be.b))
	a.be.account(dev - a.device)
	a.device = dev
	if !a.be.IsCPU() {
		a.be.noteFallbacks(a.fallbacks(g))
	}
	return nil
}

// pinInputs places g's inputs on the device. The scheduler would put them
// on the CPU, its last backend, and with them the nodes that read them
// before any weight does: in a recomputed segment's graph, whose inputs are
// hidden states and gradients rather than token ids, whole attention
// products and their copies ran on the CPU.
func (a *Allocator) pinInputs(g *Graph) {
	for i := 0; i < int(C.ggml_graph_n_nodes(g.g)); i++ {
		for _, s := range C.ggml_graph_node(g.g, C.int(i)).src {
			if s != nil && s.flags&C.GGML_TENSOR_FLAG_INPUT != 0 && s.buffer == nil && s.view_src == nil {
				C.ggml_backend_sched_set_tensor_backend(a.sched, s, a.be.b)
			}
		}
	}
}

// fallbacks counts g's computing nodes that the scheduler put on the CPU, by op.
func (a *Allocator) fallbacks(g *Graph) map[string]int {
	counts := map[string]int{}
	for i := 0; i < int(C.ggml_graph_n_nodes(g.g)); i++ {
		n := C.ggml_graph_node(g.g, C.int(i))
		switch n.op {
		case C.GGML_OP_NONE, C.GGML_OP_VIEW, C.GGML_OP_RESHAPE, C.GGML_OP_PERMUTE, C.GGML_OP_TRANSPOSE:
			continue
		}
		if C.ggml_backend_sched_get_tensor_backend(a.sched, n) == a.be.cpu {
			counts[C.GoString(C.ggml_op_desc(n))]++
		}
	}
	return counts
}

// BufferSize is the size of the compute buffers in bytes (the device's,
// plus the CPU's for the operations that fell back).
func (a *Allocator) BufferSize() int {
	if a.sched == nil {
		return 0
	}
	n := C.ggml_backend_sched_get_buffer_size(a.sched, a.be.b)
	if !a.be.IsCPU() {
		n += C.ggml_backend_sched_get_buffer_size(a.sched, a.be.cpu)
	}
	return int(n)
}

// Close frees the allocator and its buffers.
func (a *Allocator) Close() {
	if a != nil {
		a.freeSched()
	}
}

func (a *Allocator) freeSched() {
	if a.sched != nil {
		C.ggml_backend_sched_free(a.sched)
		a.sched, a.current = nil, nil
		a.be.account(-a.device)
		a.device = 0
	}
}

// Compute evaluates a graph: through the scheduler that allocated it last,
// or, for a graph whose tensors all have memory of their own, directly on
// the device.
func (b *Backend) Compute(g *Graph) error {
	var st C.enum_ggml_status
	switch a := g.alloc; {
	case a == nil:
		st = C.ggml_backend_graph_compute(b.b, g.g)
	case a.current != g.g:
		return errors.New("compute: another graph was allocated since this one: allocate it again")
	default:
		setNodeSrcs(a.split)
		st = C.ggml_backend_sched_graph_compute(a.sched, g.g)
		setNodeSrcs(a.built)
	}
	if st != C.GGML_STATUS_SUCCESS {
		return fmt.Errorf("ggml graph compute on %s failed (status %d)", b.Name(), int(st))
	}
	return nil
}

// operands is a node with its operands. Nodes are recorded by address:
// the scheduler lets a backend reorder the graph's nodes (Vulkan does).
type operands struct {
	node *C.struct_ggml_tensor
	src  [C.GGML_MAX_SRC]*C.struct_ggml_tensor
}

// nodeSrcs appends the operands of g's nodes to buf[:0].
func nodeSrcs(g *C.struct_ggml_cgraph, buf []operands) []operands {
	buf = buf[:0]
	for i := 0; i < int(C.ggml_graph_n_nodes(g)); i++ {
		n := C.ggml_graph_node(g, C.int(i))
		buf = append(buf, operands{node: n, src: n.src})
	}
	return buf
}

// setNodeSrcs gives the recorded nodes their recorded operands.
func setNodeSrcs(ops []operands) {
	for _, o := range ops {
		o.node.src = o.src
	}
}
