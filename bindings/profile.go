package bindings

// #include <stdbool.h>
// #include <stdint.h>
// #include <stdlib.h>
// #include <time.h>
// #include "ggml.h"
// #include "ggml-backend.h"
//
// // A node clock, filled by the scheduler's eval callback: the scheduler
// // computes the graph up to every node the callback asks for, then calls
// // it again, so the time between two calls is the nodes computed between.
// typedef struct {
//     struct ggml_tensor ** nodes;
//     int64_t * ns;
//     int n, cap;
//     int64_t last;
// } ragtune_node_clock;
//
// static int64_t ragtune_now_ns(void) {
//     struct timespec ts;
//     clock_gettime(CLOCK_MONOTONIC, &ts);
//     return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
// }
//
// static bool ragtune_is_noop(const struct ggml_tensor * t) {
//     switch (t->op) {
//     case GGML_OP_NONE: case GGML_OP_VIEW: case GGML_OP_RESHAPE:
//     case GGML_OP_PERMUTE: case GGML_OP_TRANSPOSE:
//         return true;
//     default:
//         return false;
//     }
// }
//
// // Views cost nothing: they are computed with the next node, not alone.
// static bool ragtune_time_node(struct ggml_tensor * t, bool ask, void * user) {
//     ragtune_node_clock * c = user;
//     if (ask) {
//         return !ragtune_is_noop(t);
//     }
//     int64_t now = ragtune_now_ns();
//     if (c->n < c->cap) {
//         c->nodes[c->n] = t;
//         c->ns[c->n] = now - c->last;
//         c->n++;
//     }
//     c->last = now;
//     return true;
// }
//
// static void ragtune_clock_start(ragtune_node_clock * c) {
//     c->n = 0;
//     c->last = ragtune_now_ns();
// }
//
// static void ragtune_sched_time_nodes(ggml_backend_sched_t s, ragtune_node_clock * c) {
//     ggml_backend_sched_set_eval_callback(s, c ? ragtune_time_node : NULL, c);
// }
import "C"

import (
	"errors"
	"unsafe"

	"github.com/ragtune/ragtune/native"
)

// NodeTime is the wall time of one computing node of a timed compute.
type NodeTime struct {
	Node    Tensor
	Seconds float64
}

// ComputeTimed evaluates a graph placed by an Allocator like Compute, and
// times every node that computes (views are free and are not listed). The
// scheduler then runs the nodes one at a time, each as its own ggml
// compute with its threads started and joined, so the step runs a few
// percent slower than untimed; a node's time includes that start.
func (b *Backend) ComputeTimed(g *Graph) ([]NodeTime, error) {
	a := g.alloc
	if a == nil || a.current != g.g {
		return nil, errors.New("timed compute: allocate the graph first")
	}
	n := int(C.ggml_graph_n_nodes(g.g))
	c := (*C.ragtune_node_clock)(C.calloc(1, C.size_t(unsafe.Sizeof(C.ragtune_node_clock{}))))
	defer C.free(unsafe.Pointer(c))
	c.nodes = (**C.struct_ggml_tensor)(C.calloc(C.size_t(max(n, 1)), C.size_t(unsafe.Sizeof(uintptr(0)))))
	defer C.free(unsafe.Pointer(c.nodes))
	c.ns = (*C.int64_t)(C.calloc(C.size_t(max(n, 1)), 8))
	defer C.free(unsafe.Pointer(c.ns))
	c.cap = C.int(n)
	C.ragtune_sched_time_nodes(a.sched, c)
	defer C.ragtune_sched_time_nodes(a.sched, nil)
	C.ragtune_clock_start(c)
	if err := b.Compute(g); err != nil {
		return nil, err
	}
	nodes := unsafe.Slice(c.nodes, n)[:c.n]
	ns := unsafe.Slice(c.ns, n)[:c.n]
	out := make([]NodeTime, len(nodes))
	for i := range nodes {
		out[i] = NodeTime{Node: Tensor{nodes[i]}, Seconds: float64(ns[i]) / 1e9}
	}
	return out, nil
}

// OpDesc is the node's operation as ggml describes it: the op's name, or
// for a unary op the function's (SILU, EXP, ...); ragtune's own kernels
// by theirs.
func (t Tensor) OpDesc() string {
	if k := kernels[kernelOf(t.t)].desc; k != "" {
		return k
	}
	return C.GoString(C.ggml_op_desc(t.t))
}

// Src is the node's i-th operand (a nil Tensor when it has none).
func (t Tensor) Src(i int) Tensor {
	if i < 0 || i >= C.GGML_MAX_SRC {
		return Tensor{}
	}
	return Tensor{t.t.src[i]}
}

// IsCopy reports whether the node only moves data: a copy, a
// contiguous copy or a duplicate, or ragtune's transpose kernel.
func (t Tensor) IsCopy() bool {
	switch t.t.op {
	case C.GGML_OP_CPY, C.GGML_OP_CONT, C.GGML_OP_DUP:
		return true
	case C.GGML_OP_CUSTOM:
		return kernelOf(t.t) == native.TransposeF32()
	}
	return false
}
