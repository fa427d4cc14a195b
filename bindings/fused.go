package bindings

// #include <stdint.h>
// #include <string.h>
// #include "ggml.h"
//
// // ggml_custom_op_params (ggml-impl.h) begins with the kernel's address.
// static void * rt_custom_fun(const struct ggml_tensor * t) {
//     void * f;
//     memcpy(&f, t->op_params, sizeof f);
//     return f;
// }
//
// // rt_become_custom turns node into a custom op running fun over its two
// // operands, with data as the kernel's userdata: the parameters come from
// // a throwaway node ggml builds, so their layout stays ggml's business.
// static void rt_become_custom(struct ggml_context * ctx, struct ggml_tensor * node, ggml_custom_op_t fun, uint32_t data) {
//     struct ggml_tensor * args[2] = {node->src[0], node->src[1]};
//     struct ggml_tensor * t = ggml_custom_4d(ctx, node->type, node->ne[0], node->ne[1], node->ne[2], node->ne[3],
//         args, 2, fun, GGML_N_TASKS_MAX, (void *) (uintptr_t) data);
//     node->op = t->op;
//     memcpy(node->op_params, t->op_params, sizeof node->op_params);
// }
import "C"

import (
	"errors"
	"math"
	"unsafe"

	"github.com/ragtune/ragtune/native"
)

// GeluFused is gelu(a) (the tanh approximation, in f32) by ragtune's CPU
// kernel, differentiable: BuildBackward gives it its fused backward. Build
// it only into graphs that run on the CPU (a device would hand the node
// back to the CPU scheduler by scheduler).
func (ctx *Context) GeluFused(a Tensor) Tensor {
	if !ctx.ok(a) {
		return Tensor{}
	}
	if a.Type() != TypeF32 {
		return ctx.fail("gelu: %v is not f32", a)
	}
	if !bool(C.ggml_is_contiguous(a.t)) {
		a = Tensor{C.ggml_cont(ctx.c, a.t)}
	}
	args := [1]*C.struct_ggml_tensor{a.t}
	ne := a.Ne()
	return Tensor{C.ggml_custom_4d(ctx.c, C.GGML_TYPE_F32, C.int64_t(ne[0]), C.int64_t(ne[1]), C.int64_t(ne[2]), C.int64_t(ne[3]),
		&args[0], 1, C.ggml_custom_op_t(native.Gelu()), C.GGML_N_TASKS_MAX, nil)}
}

// A standIn is a forward node whose op ggml's autodiff cannot differentiate,
// dressed while BuildBackward runs as an op whose backward node has the
// same operands as the fused kernel that replaces it afterwards:
//
//	ragtune's GELU   as SILU:     SILU_BACK(dy, x)     -> ragtune gelu_back(dy, x)
//	ggml's NORM      as RMS_NORM: RMS_NORM_BACK(dy, x) -> ragtune norm_back(dy, x)
//
// (LayerNorm without gain is ggml's NORM; its backward differs from
// RMS_NORM's only in the centring, which the kernel adds.)
type standIn struct {
	node   *C.struct_ggml_tensor
	op     C.enum_ggml_op
	params [len(C.struct_ggml_tensor{}.op_params)]C.int32_t
	back   C.enum_ggml_op // the stand-in's backward op
	kernel unsafe.Pointer // the fused backward kernel
	data   uint32         // its userdata: NORM's eps bits
}

// dressStandIns gives the graph's fused forward nodes their stand-in ops.
func (g *Graph) dressStandIns() []standIn {
	var out []standIn
	for i := 0; i < int(C.ggml_graph_n_nodes(g.g)); i++ {
		node := C.ggml_graph_node(g.g, C.int(i))
		s := standIn{node: node, op: node.op, params: node.op_params}
		switch {
		case kernelOf(node) == native.Gelu():
			s.back, s.kernel = C.GGML_OP_SILU_BACK, native.GeluBack()
			node.op = C.GGML_OP_UNARY
			node.op_params[0] = C.int32_t(C.GGML_UNARY_OP_SILU)
		case node.op == C.GGML_OP_NORM:
			s.back, s.kernel = C.GGML_OP_RMS_NORM_BACK, native.NormBack()
			s.data = uint32(node.op_params[0]) // eps, as float bits
			node.op = C.GGML_OP_RMS_NORM
		default:
			continue
		}
		out = append(out, s)
	}
	return out
}

// undressStandIns gives the forward nodes their own ops back and turns the
// stand-ins' backward nodes into the fused backward kernels. A backward node
// is a stand-in's when it reads that node's gradient and input.
func (g *Graph) undressStandIns(ins []standIn) error {
	if len(ins) == 0 {
		return nil
	}
	type key struct{ grad, x *C.struct_ggml_tensor }
	backOf := map[key]standIn{}
	for _, s := range ins {
		s.node.op, s.node.op_params = s.op, s.params
		if grad := C.ggml_graph_get_grad(g.g, s.node); grad != nil {
			backOf[key{grad, s.node.src[0]}] = s
		}
	}
	for i := 0; i < int(C.ggml_graph_n_nodes(g.g)); i++ {
		node := C.ggml_graph_node(g.g, C.int(i))
		s, ok := backOf[key{node.src[0], node.src[1]}]
		if !ok || node.op != s.back {
			continue
		}
		if g.ctx.room() < C.ggml_tensor_overhead() {
			return errors.New("ggml context too small for the fused backward kernels: raise maxTensors")
		}
		C.rt_become_custom(g.ctx.c, node, C.ggml_custom_op_t(s.kernel), C.uint32_t(s.data))
	}
	return nil
}

// UseNativeKernels hands nodes of a graph that runs on the CPU to
// ragtune's kernels where those are faster than ggml's: batched f32 matrix
// products (attention's QKᵀ and P·V, forward and backward: two to three
// times ggml's speed on those many small slices) and 2-D ones over a short
// reduction (a LoRA adapter's up product and its input gradient),
// attention's scaled, masked softmax and its gradient, and LayerNorm's
// normalisation (ggml_norm). BuildBackward calls it for CPU training graphs, after
// autodiff, which needs the nodes' own ops; call it for forward graphs.
func (g *Graph) UseNativeKernels() error {
	for i := 0; i < int(C.ggml_graph_n_nodes(g.g)); i++ {
		node := C.ggml_graph_node(g.g, C.int(i))
		kernel, data := nativeProduct(node), uint32(0)
		if kernel == nil {
			kernel, data = nativeSoftMax(node)
		}
		if kernel == nil {
			kernel, data = nativeSoftMaxBack(node)
		}
		if kernel == nil {
			kernel, data = nativeNorm(node)
		}
		if kernel == nil {
			continue
		}
		if g.ctx.room() < C.ggml_tensor_overhead() {
			return errors.New("ggml context too small for ragtune's CPU kernels: raise maxTensors")
		}
		C.rt_become_custom(g.ctx.c, node, C.ggml_custom_op_t(kernel), C.uint32_t(data))
	}
	return g.swapProductOutputs()
}

// swapProductOutputs gives each ggml_cont(ggml_permute(p, 0, 2, 1, 3)) of
// one of ragtune's products p that nothing else reads to the product
// itself, writing its result in that order (attention's output and its q,
// k and v gradients going back to [head, heads, tokens, texts]): ggml's
// copy, a head's row at a time, goes, and p and its view leave the graph.
// It is skipped where the context has no room to relist the graph, and
// for the forward nodes of a training graph: a forward graph of the same
// nodes (the training step's loss, a recomputed segment) lists p too.
func (g *Graph) swapProductOutputs() error {
	n := int(C.ggml_graph_n_nodes(g.g))
	readers := g.readCounts(nil)
	var conts []*C.struct_ggml_tensor
	for i := 0; i < n; i++ {
		c := C.ggml_graph_node(g.g, C.int(i))
		if c.op != C.GGML_OP_CONT || c._type != C.GGML_TYPE_F32 || g.forward[c] {
			continue
		}
		v := c.src[0]
		if v.op != C.GGML_OP_PERMUTE || v.op_params[0] != 0 || v.op_params[1] != 2 || v.op_params[2] != 1 || v.op_params[3] != 3 || readers[v] != 1 {
			continue
		}
		if k := kernelOf(v.src[0]); (k == native.MulMatF32() || k == native.OutProdF32()) && readers[v.src[0]] == 1 {
			conts = append(conts, c)
		}
	}
	if len(conts) == 0 || g.ctx.room() < C.size_t(len(conts))*C.ggml_tensor_overhead()+C.ggml_graph_overhead_custom(C.size_t(C.ggml_graph_size(g.g)), false) {
		return nil
	}
	drop := map[*C.struct_ggml_tensor]bool{}
	for _, c := range conts {
		v := c.src[0]
		p := v.src[0]
		c.src[0], c.src[1] = p.src[0], p.src[1]
		C.rt_become_custom(g.ctx.c, c, C.ggml_custom_op_t(kernelOf(p)), 1)
		drop[v], drop[p] = true, true
	}
	return g.relist(0, nil, drop)
}

// nativeSoftMax is ragtune's kernel for a SOFT_MAX node and its userdata
// (the scale's float bits), or nil where ggml's serves: ALiBi, sinks,
// other types, strided rows.
func nativeSoftMax(node *C.struct_ggml_tensor) (unsafe.Pointer, uint32) {
	x, mask := node.src[0], node.src[1]
	if node.op != C.GGML_OP_SOFT_MAX || node._type != C.GGML_TYPE_F32 || node.src[2] != nil ||
		x._type != C.GGML_TYPE_F32 || x.nb[0] != 4 || mask != nil && (mask._type != C.GGML_TYPE_F32 || mask.nb[0] != 4) {
		return nil, 0
	}
	// op_params: scale, max_bias (ggml_soft_max_ext)
	if maxBias := math.Float32frombits(uint32(node.op_params[1])); maxBias != 0 {
		return nil, 0
	}
	return native.SoftMax(), uint32(node.op_params[0])
}

// nativeSoftMaxBack is ragtune's kernel for a SOFT_MAX_BACK node and its
// userdata (the scale's float bits), or nil where ggml's serves: ALiBi,
// other types, strided rows. Unlike ggml's CPU kernel it is alias-safe, and
// a custom node is never computed in place anyway, so the probabilities it
// reads need not be pinned as graph outputs (BuildBackward).
func nativeSoftMaxBack(node *C.struct_ggml_tensor) (unsafe.Pointer, uint32) {
	dy, y := node.src[0], node.src[1]
	if node.op != C.GGML_OP_SOFT_MAX_BACK || node._type != C.GGML_TYPE_F32 ||
		dy._type != C.GGML_TYPE_F32 || y._type != C.GGML_TYPE_F32 ||
		!bool(C.ggml_is_contiguous(dy)) || !bool(C.ggml_is_contiguous(y)) {
		return nil, 0
	}
	// op_params: scale, max_bias (ggml_soft_max_ext_back)
	if maxBias := math.Float32frombits(uint32(node.op_params[1])); maxBias != 0 {
		return nil, 0
	}
	return native.SoftMaxBack(), uint32(node.op_params[0])
}

// nativeNorm is ragtune's kernel for a NORM node (LayerNorm without gain)
// and its userdata (eps's float bits), or nil for other types and strided
// inputs.
func nativeNorm(node *C.struct_ggml_tensor) (unsafe.Pointer, uint32) {
	if node.op != C.GGML_OP_NORM || node._type != C.GGML_TYPE_F32 ||
		node.src[0]._type != C.GGML_TYPE_F32 || !bool(C.ggml_is_contiguous(node.src[0])) {
		return nil, 0
	}
	return native.Norm(), uint32(node.op_params[0])
}

// shortReduction is the longest reduction a 2-D product gets ragtune's
// kernel for: ggml's tiled sgemm ends each output with a horizontal sum,
// which over a LoRA rank's 16 products makes it 5x slower than the kernel
// (BenchmarkMatMulPeak lora_up); over longer ones sgemm is as fast or
// faster.
const shortReduction = 32

// nativeProduct is ragtune's kernel for a MUL_MAT or OUT_PROD node, or nil
// where ggml's own serves: 2-D products over long reductions (projections,
// weight gradients) keep ggml's tiled sgemm, other types and oversized
// slices ggml's kernels.
func nativeProduct(node *C.struct_ggml_tensor) unsafe.Pointer {
	a, b := node.src[0], node.src[1]
	if node._type != C.GGML_TYPE_F32 || a == nil || b == nil || a._type != C.GGML_TYPE_F32 || b._type != C.GGML_TYPE_F32 {
		return nil
	}
	var k C.int64_t
	var kernel unsafe.Pointer
	switch node.op {
	case C.GGML_OP_MUL_MAT:
		k, kernel = a.ne[0], native.MulMatF32()
	case C.GGML_OP_OUT_PROD:
		k, kernel = a.ne[1], native.OutProdF32()
	default:
		return nil
	}
	if node.ne[2]*node.ne[3] == 1 && k > shortReduction || !native.ProductFits(int64(node.ne[0]), int64(k)) {
		return nil
	}
	return kernel
}

// kernelOf is the address of the kernel a CUSTOM node runs, or nil.
func kernelOf(t *C.struct_ggml_tensor) unsafe.Pointer {
	if t.op != C.GGML_OP_CUSTOM {
		return nil
	}
	return C.rt_custom_fun(t)
}

// kernelInfo describes one of ragtune's kernels: how OpDesc names it and,
// for a kernel computing a ggml op in that op's place (UseNativeKernels),
// the op's name, which Op gives.
type kernelInfo struct{ desc, op string }

var kernels = map[unsafe.Pointer]kernelInfo{
	native.TransposeF32(): {"TRANSPOSE_F32 (ragtune)", ""},
	native.Gelu():         {"GELU_F32 (ragtune)", ""},
	native.GeluBack():     {"GELU_BACK_F32 (ragtune)", ""},
	native.NormBack():     {"NORM_BACK_F32 (ragtune)", ""},
	native.MulMatF32():    {"MUL_MAT (ragtune)", "MUL_MAT"},
	native.OutProdF32():   {"OUT_PROD (ragtune)", "OUT_PROD"},
	native.SoftMax():      {"SOFT_MAX (ragtune)", "SOFT_MAX"},
	native.SoftMaxBack():  {"SOFT_MAX_BACK (ragtune)", "SOFT_MAX_BACK"},
	native.Norm():         {"NORM_F32 (ragtune)", "NORM"},
}
