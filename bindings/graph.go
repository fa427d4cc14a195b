package bindings

// #include <stdlib.h>
// #include "ggml.h"
// #include "ggml-backend.h"
// #include "ggml-cpu.h"
// #include "ggml-alloc.h"
import "C"

import (
	"errors"
	"fmt"
	"slices"
	"unsafe"

	"github.com/ragtune/ragtune/native"
)

// Graph is a computation graph built in a Context.
type Graph struct {
	g   *C.struct_ggml_cgraph
	ctx *Context
	// withGrads is the graph ggml's autodiff built, kept for Grad lookups
	// after BuildBackward replaced g by its rewritten copy.
	withGrads *C.struct_ggml_cgraph
	// alloc is the allocator that placed the graph last (nil when its
	// tensors all have memory of their own).
	alloc *Allocator
	// forward holds the nodes of the forward pass once BuildBackward ran.
	forward map[*C.struct_ggml_tensor]bool
	// listed holds the tensors of g that Expand has seen: its nodes, kept
	// up to date by counting from listedNodes, and the leaves it added.
	listed      map[*C.struct_ggml_tensor]bool
	listedNodes int
	listedOf    *C.struct_ggml_cgraph
}

// NewGraph makes an empty graph of at most size nodes; grads reserves room
// for a backward pass.
func (ctx *Context) NewGraph(size int, grads bool) (*Graph, error) {
	if ctx.err != nil {
		return nil, ctx.err
	}
	need := C.ggml_graph_overhead_custom(C.size_t(size), C.bool(grads))
	if ctx.room() < need {
		return nil, fmt.Errorf("ggml context too small for a graph of %d nodes", size)
	}
	return &Graph{g: C.ggml_new_graph_custom(ctx.c, C.size_t(size), C.bool(grads)), ctx: ctx}, nil
}

// Expand adds t and everything it depends on.
func (g *Graph) Expand(t Tensor) error {
	if g.ctx.err != nil {
		return g.ctx.err
	}
	if t.t == nil {
		return errors.New("expand: nil tensor")
	}
	// ggml asserts when a graph overflows; count the new nodes first.
	if n := countNew(t.t, g.listedTensors()); int(C.ggml_graph_n_nodes(g.g))+n > int(C.ggml_graph_size(g.g)) {
		g.listed = nil // it now holds tensors the graph does not
		return fmt.Errorf("graph of %d nodes is too small for %d more", int(C.ggml_graph_size(g.g)), n)
	}
	C.ggml_build_forward_expand(g.g, t.t)
	return nil
}

// listedTensors is the set of g's nodes (and leaves Expand added), for
// countNew to skip: counting them again would make graphs that many
// expansions share (an accumulation per parameter) look many times their
// size.
func (g *Graph) listedTensors() map[*C.struct_ggml_tensor]bool {
	n := int(C.ggml_graph_n_nodes(g.g))
	if g.listed == nil || g.listedOf != g.g || g.listedNodes > n {
		g.listed, g.listedNodes, g.listedOf = map[*C.struct_ggml_tensor]bool{}, 0, g.g
	}
	for ; g.listedNodes < n; g.listedNodes++ {
		g.listed[C.ggml_graph_node(g.g, C.int(g.listedNodes))] = true
	}
	return g.listed
}

// countNew is an upper bound of the nodes that expanding t adds (leaves
// count too), marking what it counts in seen.
func countNew(t *C.struct_ggml_tensor, seen map[*C.struct_ggml_tensor]bool) int {
	if t == nil || seen[t] {
		return 0
	}
	seen[t] = true
	n := 1
	for i := 0; i < C.GGML_MAX_SRC; i++ {
		n += countNew(t.src[i], seen)
	}
	return n
}

// BuildBackward appends the backward pass of a graph that will run on
// the backend on. The loss (marked with SetLoss) gets the static 1.0 seed
// in lossGrad; parameter gradients are ordinary nodes recomputed on every
// compute, so there is nothing to zero between steps.
//
// ragtune's fused GELU and ggml's NORM (LayerNorm without gain) get
// ragtune's fused backward kernels, which run on the CPU only; GELU's
// reads its input from an f16 copy (halveGeluInputs). The backward
// recomputes attention's probabilities instead of keeping the forward's
// (recomputeProbabilities).
//
// It also applies the allocator workaround from the training probe: the
// CPU kernels of RMS_NORM_BACK and SOFT_MAX_BACK are not alias-safe, and the
// graph allocator may compute them in place over an input, silently
// corrupting gradients; keeping those inputs as outputs prevents reuse.
// Nodes that ragtune's kernels took over need no such pin, nor do
// SOFT_MAX_BACK nodes a device runs (CUDA's and Vulkan's kernels take a
// row's dot product before writing any of it).
func (g *Graph) BuildBackward(loss, lossGrad Tensor, on *Backend) error {
	if g.ctx.err != nil {
		return g.ctx.err
	}
	n := int(C.ggml_graph_n_nodes(g.g))
	accs := (**C.struct_ggml_tensor)(C.calloc(C.size_t(n), C.size_t(unsafe.Sizeof(uintptr(0)))))
	defer C.free(unsafe.Pointer(accs))
	slots := unsafe.Slice(accs, n)
	found := false
	for i := 0; i < n; i++ {
		if C.ggml_graph_node(g.g, C.int(i)) == loss.t {
			slots[i] = lossGrad.t
			found = true
		}
	}
	if !found {
		return errors.New("backward: loss is not a node of the graph")
	}
	if 2*n+64 > int(C.ggml_graph_size(g.g)) {
		return fmt.Errorf("graph of %d nodes is too small for the backward pass of %d forward nodes", int(C.ggml_graph_size(g.g)), n)
	}
	g.forward = make(map[*C.struct_ggml_tensor]bool, n)
	for i := 0; i < n; i++ {
		g.forward[C.ggml_graph_node(g.g, C.int(i))] = true
	}
	fused := g.dressStandIns()
	C.ggml_build_backward_expand(g.ctx.c, g.g, accs)
	if err := g.undressStandIns(fused); err != nil {
		return err
	}
	after, added, err := g.halveGeluInputs()
	if err != nil {
		return err
	}
	recomputed, err := g.recomputeProbabilities(on)
	if err != nil {
		return err
	}
	if added += recomputed; added > 0 {
		if err := g.relist(added, after, nil); err != nil {
			return err
		}
	}
	if on.IsCPU() {
		if err := g.UseNativeKernels(); err != nil {
			return err
		}
	}
	for i := 0; i < int(C.ggml_graph_n_nodes(g.g)); i++ {
		node := C.ggml_graph_node(g.g, C.int(i))
		switch node.op {
		case C.GGML_OP_RMS_NORM_BACK:
			C.ggml_set_output(node.src[0])
		case C.GGML_OP_SOFT_MAX_BACK:
			if !on.runs(node) {
				C.ggml_set_output(node.src[1])
			}
		}
	}
	return g.outProdsAsMulMat(on)
}

// recomputeProbabilities gives the backward pass its own copy of each
// attention softmax over a product (softmax(kᵀq·scale + mask)), computed
// from the product's operands just before the backward first reads it. The
// forward's probabilities, S·S per head and text and the largest
// activation of an encoder layer, are then freed as soon as P·V has read
// them instead of being kept through the forward pass: at MiniLM's shape
// (seq 128, 32 pairs) 300 MB of a LoRA step's 1.3 GB compute buffer, for
// one more QKᵀ product and softmax per layer (k and q are kept for their
// own gradients anyway). On a device, only where the device runs the
// softmax's gradient: as the CPU's fallback, ggml's kernel would need the
// probabilities pinned to the end of the graph (BuildBackward).
func (g *Graph) recomputeProbabilities(on *Backend) (added int, err error) {
	n := int(C.ggml_graph_n_nodes(g.g))
	readers := map[*C.struct_ggml_tensor][]*C.struct_ggml_tensor{}
	for i := 0; i < n; i++ {
		node := C.ggml_graph_node(g.g, C.int(i))
		if g.forward[node] {
			continue
		}
		for j := 0; j < C.GGML_MAX_SRC; j++ {
			if src := node.src[j]; src != nil && src.op == C.GGML_OP_SOFT_MAX && g.forward[src] {
				readers[src] = append(readers[src], node)
			}
		}
	}
	for i := 0; i < n; i++ {
		p := C.ggml_graph_node(g.g, C.int(i))
		scores := p.src[0]
		if len(readers[p]) == 0 || scores.op != C.GGML_OP_MUL_MAT || p.src[2] != nil {
			continue
		}
		if !on.IsCPU() && slices.ContainsFunc(readers[p], func(r *C.struct_ggml_tensor) bool {
			return r.op == C.GGML_OP_SOFT_MAX_BACK && !on.runs(r)
		}) {
			continue
		}
		if g.ctx.room() < 2*C.ggml_tensor_overhead() {
			return 0, errors.New("ggml context too small to recompute attention's probabilities: raise maxTensors")
		}
		again := C.ggml_soft_max_ext(g.ctx.c, C.ggml_mul_mat(g.ctx.c, scores.src[0], scores.src[1]), p.src[1], 1, 0)
		again.op_params = p.op_params // scale, max_bias
		for _, node := range readers[p] {
			for j := 0; j < C.GGML_MAX_SRC; j++ {
				if node.src[j] == p {
					node.src[j] = again
				}
			}
			if node.view_src == p {
				node.view_src = again
			}
		}
		added += 2
	}
	return added, nil
}

// halveGeluInputs gives the backward node of each of ragtune's fused GELUs
// an f16 copy of the GELU's input, made in the forward just after the GELU
// (the second map), instead of the f32 input: that input, the FFN's up
// projection (four times a layer's width per token), is then freed with
// the forward, and the backward keeps half its size. gelu' is evaluated at
// the input rounded to f16 (relative error 2⁻¹¹), as mixed-precision
// training keeps activations. It returns the nodes it added.
func (g *Graph) halveGeluInputs() (after map[*C.struct_ggml_tensor]*C.struct_ggml_tensor, added int, err error) {
	geluOf := map[*C.struct_ggml_tensor]*C.struct_ggml_tensor{} // input -> forward GELU
	n := int(C.ggml_graph_n_nodes(g.g))
	for i := 0; i < n; i++ {
		node := C.ggml_graph_node(g.g, C.int(i))
		if kernelOf(node) == native.Gelu() {
			geluOf[node.src[0]] = node
		}
	}
	after = map[*C.struct_ggml_tensor]*C.struct_ggml_tensor{}
	for i := 0; i < n; i++ {
		node := C.ggml_graph_node(g.g, C.int(i))
		gelu := geluOf[node.src[1]]
		if kernelOf(node) != native.GeluBack() || gelu == nil {
			continue
		}
		half := after[gelu]
		if half == nil {
			if g.ctx.room() < C.ggml_tensor_overhead() {
				return nil, 0, errors.New("ggml context too small for f16 copies of GELU inputs: raise maxTensors")
			}
			half = C.ggml_cast(g.ctx.c, node.src[1], C.GGML_TYPE_F16)
			after[gelu] = half
			g.forward[half] = true
			added++
		}
		node.src[1] = half
	}
	return after, added, nil
}

// relist replaces g by a copy listing its nodes in the same order, where
// operands that a rewrite added to a node come just before their first
// reader and each node of after right after its key: the order decides
// when the allocator places them. Nodes in drop that no node outside drop
// reads any more are left out: a product a rewrite replaced, or a view
// (ggml's allocator frees a tensor only once every view of it in the graph
// has been read, so an unread view would pin its tensor to the end of the
// graph).
func (g *Graph) relist(added int, after map[*C.struct_ggml_tensor]*C.struct_ggml_tensor, drop map[*C.struct_ggml_tensor]bool) error {
	n, size := int(C.ggml_graph_n_nodes(g.g)), int(C.ggml_graph_size(g.g))
	if n+added > size {
		return fmt.Errorf("graph of %d nodes is too small for the %d nodes its backward rewrites add", size, added)
	}
	if g.ctx.room() < C.ggml_graph_overhead_custom(C.size_t(size), false) {
		return errors.New("ggml context too small to relist the backward graph: raise maxTensors")
	}
	var read map[*C.struct_ggml_tensor]int
	if len(drop) > 0 {
		read = g.readCounts(drop)
	}
	out := C.ggml_new_graph_custom(g.ctx.c, C.size_t(size), false)
	for i := 0; i < n; i++ {
		node := C.ggml_graph_node(g.g, C.int(i))
		if drop[node] && read[node] == 0 {
			continue
		}
		C.ggml_build_forward_expand(out, node)
		if next := after[node]; next != nil {
			C.ggml_build_forward_expand(out, next)
		}
	}
	if g.withGrads == nil {
		g.withGrads = g.g
	}
	g.g = out
	return nil
}

// readCounts is how many operands of the graph's nodes, those in skip
// left out, are each tensor.
func (g *Graph) readCounts(skip map[*C.struct_ggml_tensor]bool) map[*C.struct_ggml_tensor]int {
	counts := map[*C.struct_ggml_tensor]int{}
	for i := 0; i < int(C.ggml_graph_n_nodes(g.g)); i++ {
		if node := C.ggml_graph_node(g.g, C.int(i)); !skip[node] {
			for _, src := range node.src {
				counts[src]++
			}
		}
	}
	return counts
}

// runs reports whether a device (not the CPU) runs node itself rather
// than handing it to the CPU backend.
func (b *Backend) runs(node *C.struct_ggml_tensor) bool {
	return !b.IsCPU() && bool(C.ggml_backend_supports_op(b.b, node))
}

// outProdsAsMulMat rewrites the OUT_PROD nodes (the backward of a matrix
// product) as a MUL_MAT of transposed copies of their operands. ggml's CPU
// OUT_PROD runs at a third of the speed of its tiled sgemm and dequantizes
// a quantized operand block by block for every output row (QLoRA's frozen
// weights: a tenth); the copies cost one pass over each operand. Other
// devices keep the OUT_PROD nodes they run (CUDA's, on f32: cuBLAS reads
// transposed operands as they are) and get the rest rewritten with ggml's
// own copies, which every backend has (Vulkan has no OUT_PROD at all;
// CUDA's takes no f16, bf16 or quantized weight). The node keeps its
// identity, so gradients and their consumers are unchanged; the copies are
// placed just before it.
func (g *Graph) outProdsAsMulMat(on *Backend) error {
	// Tensors a rewrite makes, at most, for each operand: a dequantizing
	// cast, a conversion tried, two casts in its stead, a transpose and
	// its copy.
	const tensorsPerRewrite = 12
	n := int(C.ggml_graph_n_nodes(g.g))
	rewrite := func(node *C.struct_ggml_tensor) bool {
		return node.op == C.GGML_OP_OUT_PROD && !on.runs(node)
	}
	rewrites := 0
	for i := 0; i < n; i++ {
		if rewrite(C.ggml_graph_node(g.g, C.int(i))) {
			rewrites++
		}
	}
	if rewrites == 0 {
		return nil
	}
	if g.ctx.room() < C.size_t(rewrites*tensorsPerRewrite)*C.ggml_tensor_overhead() {
		return errors.New("ggml context too small to rewrite the backward products: raise maxTensors")
	}
	bypassed := map[*C.struct_ggml_tensor]bool{} // transposed views whose source a product now reads
	listed := g.listedTensors()
	added := 0 // the copies' nodes (and the weights, leaves, once each): what relist must make room for
	for i := 0; i < n; i++ {
		node := C.ggml_graph_node(g.g, C.int(i))
		if rewrite(node) {
			// out_prod(a [M,K], b [N,K]) = mul_mat(aᵀ [K,M], bᵀ [K,N]) -> [M,N]
			for _, x := range node.src[:2] {
				if x.op == C.GGML_OP_TRANSPOSE {
					bypassed[x] = true
				}
			}
			a, b := g.ctx.transposedOperand(node.src[0], on), g.ctx.transposedOperand(node.src[1], on)
			added += countNew(a, listed) + countNew(b, listed)
			node.op = C.GGML_OP_MUL_MAT
			node.src[0], node.src[1] = a, b
		}
	}
	return g.relist(added, nil, bypassed)
}

// transposedOperand is a contiguous tensor holding xᵀ (dimensions 0 and 1
// swapped) for a rewritten backward product: x's own source when x is a
// transposed view of a contiguous f32 tensor; on the CPU, an f32 copy by
// ragtune's transpose kernel; else a copy by ggml's ops. An f32 operand
// (activations, gradients) stays f32; a frozen weight (f16, bf16 or
// quantized) becomes on.WeightGradType(): dequantized and converted whole
// first, then transposed within one type, because CUDA transposes by tiles
// only when source and destination types agree (its converting copies read
// a transposed source element by element). Where the device cannot convert
// the weight's type to the target directly (Vulkan: f16 to bf16), it goes
// through f32.
func (ctx *Context) transposedOperand(x *C.struct_ggml_tensor, on *Backend) *C.struct_ggml_tensor {
	if x.op == C.GGML_OP_TRANSPOSE && x.src[0]._type == C.GGML_TYPE_F32 && bool(C.ggml_is_contiguous(x.src[0])) {
		return x.src[0]
	}
	if on.IsCPU() && rowsContiguous(x) {
		return ctx.TransposeF32(Tensor{x}).t
	}
	if to := C.enum_ggml_type(on.WeightGradType()); x._type != C.GGML_TYPE_F32 && x._type != to {
		if bool(C.ggml_is_quantized(x._type)) {
			x = C.ggml_cast(ctx.c, x, C.GGML_TYPE_F32)
		}
		if x._type != to {
			direct := C.ggml_cast(ctx.c, x, to)
			if !on.runs(direct) && x._type != C.GGML_TYPE_F32 {
				direct = C.ggml_cast(ctx.c, C.ggml_cast(ctx.c, x, C.GGML_TYPE_F32), to)
			}
			x = direct
		}
	}
	return C.ggml_cont(ctx.c, C.ggml_transpose(ctx.c, x))
}

// Grad is the gradient node of t, or a nil Tensor when t gets none.
func (g *Graph) Grad(t Tensor) Tensor {
	if g.withGrads != nil {
		return Tensor{C.ggml_graph_get_grad(g.withGrads, t.t)}
	}
	return Tensor{C.ggml_graph_get_grad(g.g, t.t)}
}

// NumNodes is the number of nodes in the graph.
func (g *Graph) NumNodes() int { return int(C.ggml_graph_n_nodes(g.g)) }

// Node returns the i-th node (negative i counts from the end).
func (g *Graph) Node(i int) Tensor { return Tensor{C.ggml_graph_node(g.g, C.int(i))} }

// FLOPs counts the floating-point operations of one compute of the graph
// (the sum of its nodes' FLOPs).
func (g *Graph) FLOPs() float64 {
	var total float64
	for i := 0; i < g.NumNodes(); i++ {
		total += g.Node(i).FLOPs()
	}
	return total
}

// FLOPs counts the floating-point operations of computing the node: 2·M·N·K
// for a matrix product (MUL_MAT, OUT_PROD) and one per output element for
// every other node that computes (copies and views count none).
func (t Tensor) FLOPs() float64 {
	n := t.t
	switch t.Op() {
	case "MUL_MAT":
		return 2 * float64(n.src[0].ne[0]) * float64(C.ggml_nelements(n))
	case "OUT_PROD":
		return 2 * float64(n.src[0].ne[1]) * float64(C.ggml_nelements(n))
	}
	switch n.op {
	case C.GGML_OP_NONE, C.GGML_OP_VIEW, C.GGML_OP_RESHAPE, C.GGML_OP_PERMUTE, C.GGML_OP_TRANSPOSE,
		C.GGML_OP_CONT, C.GGML_OP_CPY, C.GGML_OP_DUP:
		return 0
	}
	return float64(C.ggml_nelements(n))
}

// InForward reports whether node t belongs to the graph's forward pass:
// every node of a graph without a backward pass, else the nodes that were
// there when BuildBackward ran.
func (g *Graph) InForward(t Tensor) bool {
	return g.forward == nil || g.forward[t.t]
}

// SetBytes uploads raw bytes into the tensor's backend memory.
func (t Tensor) SetBytes(data []byte) error {
	if t.t == nil || t.t.buffer == nil && t.t.view_src == nil {
		return fmt.Errorf("tensor %v has no memory", t)
	}
	if len(data) != t.Nbytes() {
		return fmt.Errorf("tensor %v holds %d bytes, got %d", t, t.Nbytes(), len(data))
	}
	if len(data) > 0 {
		C.ggml_backend_tensor_set(t.t, unsafe.Pointer(&data[0]), 0, C.size_t(len(data)))
	}
	return nil
}

// SetF32 uploads float32 values into an F32 tensor.
func (t Tensor) SetF32(data []float32) error {
	if t.t != nil && t.Type() != TypeF32 {
		return fmt.Errorf("tensor %v is not f32", t)
	}
	return t.SetBytes(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(data))), 4*len(data)))
}

// SetI32 uploads int32 values into an I32 tensor.
func (t Tensor) SetI32(data []int32) error {
	if t.t != nil && t.Type() != TypeI32 {
		return fmt.Errorf("tensor %v is not i32", t)
	}
	return t.SetBytes(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(data))), 4*len(data)))
}

// Bytes downloads the tensor's data.
func (t Tensor) Bytes() []byte {
	out := make([]byte, t.Nbytes())
	if len(out) > 0 {
		C.ggml_backend_tensor_get(t.t, unsafe.Pointer(&out[0]), 0, C.size_t(len(out)))
	}
	return out
}

// F32 downloads an F32 tensor's values.
func (t Tensor) F32() []float32 {
	out := make([]float32, t.Nelements())
	if t.Type() == TypeF32 && len(out) > 0 {
		C.ggml_backend_tensor_get(t.t, unsafe.Pointer(&out[0]), 0, C.size_t(4*len(out)))
	}
	return out
}

// Zero sets the tensor's memory to zeros.
func (t Tensor) Zero() {
	C.ggml_backend_tensor_memset(t.t, 0, 0, C.size_t(t.Nbytes()))
}
