package bindings

// #include <stdlib.h>
// #include "ggml.h"
import "C"

import "github.com/ragtune/ragtune/native"

// The operations below are the part of ggml's op set that ragtune's forward
// and backward graphs use. Each checks the shape rules that ggml would
// otherwise enforce with an abort, and records a failure in the context.

func (ctx *Context) shapeErr(op string, a, b Tensor) Tensor {
	return ctx.fail("%s: incompatible shapes %v and %v", op, a, b)
}

// MulMat is ggml_mul_mat: a [K,M,..] x b [K,N,..] -> [M,N,..], broadcasting a over b's dims 2 and 3.
func (ctx *Context) MulMat(a, b Tensor) Tensor {
	if !ctx.ok(a, b) {
		return Tensor{}
	}
	an, bn := a.Ne(), b.Ne()
	if an[0] != bn[0] || bn[2]%an[2] != 0 || bn[3]%an[3] != 0 || bool(C.ggml_is_transposed(a.t)) {
		return ctx.shapeErr("mul_mat", a, b)
	}
	return Tensor{C.ggml_mul_mat(ctx.c, a.t, b.t)}
}

// OutProd is ggml_out_prod: a [M,K] and b [N,K] -> [M,N].
func (ctx *Context) OutProd(a, b Tensor) Tensor {
	if !ctx.ok(a, b) {
		return Tensor{}
	}
	an, bn := a.Ne(), b.Ne()
	if an[1] != bn[1] || bn[2]%an[2] != 0 || bn[3]%an[3] != 0 {
		return ctx.shapeErr("out_prod", a, b)
	}
	return Tensor{C.ggml_out_prod(ctx.c, a.t, b.t)}
}

// TransposeF32 is aᵀ (dimensions 0 and 1 swapped) as a contiguous f32
// tensor, a dequantized if quantized: one pass of ragtune's own kernel
// (native/transpose.c) where ggml needs a cast and an element-wise strided
// copy. a's rows must be contiguous; its other strides are free.
func (ctx *Context) TransposeF32(a Tensor) Tensor {
	if !ctx.ok(a) {
		return Tensor{}
	}
	if !rowsContiguous(a.t) {
		return ctx.fail("transpose_f32: the rows of %v are not contiguous", a)
	}
	args := [1]*C.struct_ggml_tensor{a.t}
	ne := a.Ne()
	return Tensor{C.ggml_custom_4d(ctx.c, C.GGML_TYPE_F32, C.int64_t(ne[1]), C.int64_t(ne[0]), C.int64_t(ne[2]), C.int64_t(ne[3]),
		&args[0], 1, C.ggml_custom_op_t(native.TransposeF32()), C.GGML_N_TASKS_MAX, nil)}
}

// rowsContiguous reports whether each row of t (dimension 0) is packed.
func rowsContiguous(t *C.struct_ggml_tensor) bool {
	return t.nb[0] == C.size_t(C.ggml_type_size(t._type))
}

func (ctx *Context) binary(op string, a, b Tensor, f func(*C.struct_ggml_context, *C.struct_ggml_tensor, *C.struct_ggml_tensor) *C.struct_ggml_tensor) Tensor {
	if !ctx.ok(a, b) {
		return Tensor{}
	}
	if !bool(C.ggml_can_repeat(b.t, a.t)) {
		return ctx.shapeErr(op, a, b)
	}
	return Tensor{f(ctx.c, a.t, b.t)}
}

// Add is a + b, with b broadcast over a.
func (ctx *Context) Add(a, b Tensor) Tensor {
	return ctx.binary("add", a, b, func(c *C.struct_ggml_context, x, y *C.struct_ggml_tensor) *C.struct_ggml_tensor {
		return C.ggml_add(c, x, y)
	})
}

// Sub is a - b, with b broadcast over a (its backward needs b of a's shape).
func (ctx *Context) Sub(a, b Tensor) Tensor {
	return ctx.binary("sub", a, b, func(c *C.struct_ggml_context, x, y *C.struct_ggml_tensor) *C.struct_ggml_tensor {
		return C.ggml_sub(c, x, y)
	})
}

// Mul is a * b elementwise, with b broadcast over a.
func (ctx *Context) Mul(a, b Tensor) Tensor {
	return ctx.binary("mul", a, b, func(c *C.struct_ggml_context, x, y *C.struct_ggml_tensor) *C.struct_ggml_tensor {
		return C.ggml_mul(c, x, y)
	})
}

// Div is a / b elementwise, with b broadcast over a.
func (ctx *Context) Div(a, b Tensor) Tensor {
	return ctx.binary("div", a, b, func(c *C.struct_ggml_context, x, y *C.struct_ggml_tensor) *C.struct_ggml_tensor {
		return C.ggml_div(c, x, y)
	})
}

// Repeat broadcasts a to b's shape.
func (ctx *Context) Repeat(a, b Tensor) Tensor {
	if !ctx.ok(a, b) {
		return Tensor{}
	}
	if !bool(C.ggml_can_repeat(a.t, b.t)) {
		return ctx.shapeErr("repeat", a, b)
	}
	return Tensor{C.ggml_repeat(ctx.c, a.t, b.t)}
}

// Repeat4D tiles a to the given shape; every dimension must be a multiple of a's.
func (ctx *Context) Repeat4D(a Tensor, ne0, ne1, ne2, ne3 int) Tensor {
	if !ctx.ok(a) {
		return Tensor{}
	}
	an := a.Ne()
	for i, n := range [4]int{ne0, ne1, ne2, ne3} {
		if n <= 0 || an[i] == 0 || n%an[i] != 0 {
			return ctx.fail("repeat %v to [%d,%d,%d,%d]: not a multiple", a, ne0, ne1, ne2, ne3)
		}
	}
	return Tensor{C.ggml_repeat_4d(ctx.c, a.t, C.int64_t(ne0), C.int64_t(ne1), C.int64_t(ne2), C.int64_t(ne3))}
}

// Scale is a * s.
func (ctx *Context) Scale(a Tensor, s float32) Tensor {
	if !ctx.ok(a) {
		return Tensor{}
	}
	return Tensor{C.ggml_scale(ctx.c, a.t, C.float(s))}
}

// ScaleBias is a * s + b.
func (ctx *Context) ScaleBias(a Tensor, s, b float32) Tensor {
	if !ctx.ok(a) {
		return Tensor{}
	}
	return Tensor{C.ggml_scale_bias(ctx.c, a.t, C.float(s), C.float(b))}
}

func (ctx *Context) unary(a Tensor, f func(*C.struct_ggml_context, *C.struct_ggml_tensor) *C.struct_ggml_tensor) Tensor {
	if !ctx.ok(a) {
		return Tensor{}
	}
	return Tensor{f(ctx.c, a.t)}
}

// Sqr is a².
func (ctx *Context) Sqr(a Tensor) Tensor {
	return ctx.unary(a, func(c *C.struct_ggml_context, x *C.struct_ggml_tensor) *C.struct_ggml_tensor { return C.ggml_sqr(c, x) })
}

// Sqrt is √a.
func (ctx *Context) Sqrt(a Tensor) Tensor {
	return ctx.unary(a, func(c *C.struct_ggml_context, x *C.struct_ggml_tensor) *C.struct_ggml_tensor {
		return C.ggml_sqrt(c, x)
	})
}

// Exp is eᵃ.
func (ctx *Context) Exp(a Tensor) Tensor {
	return ctx.unary(a, func(c *C.struct_ggml_context, x *C.struct_ggml_tensor) *C.struct_ggml_tensor { return C.ggml_exp(c, x) })
}

// Log is ln a.
func (ctx *Context) Log(a Tensor) Tensor {
	return ctx.unary(a, func(c *C.struct_ggml_context, x *C.struct_ggml_tensor) *C.struct_ggml_tensor { return C.ggml_log(c, x) })
}

// Neg is -a.
func (ctx *Context) Neg(a Tensor) Tensor {
	return ctx.unary(a, func(c *C.struct_ggml_context, x *C.struct_ggml_tensor) *C.struct_ggml_tensor { return C.ggml_neg(c, x) })
}

// Softplus is ln(1+eᵃ) (ggml returns a itself above 20).
func (ctx *Context) Softplus(a Tensor) Tensor {
	return ctx.unary(a, func(c *C.struct_ggml_context, x *C.struct_ggml_tensor) *C.struct_ggml_tensor {
		return C.ggml_softplus(c, x)
	})
}

// Silu is a·σ(a).
func (ctx *Context) Silu(a Tensor) Tensor {
	return ctx.unary(a, func(c *C.struct_ggml_context, x *C.struct_ggml_tensor) *C.struct_ggml_tensor {
		return C.ggml_silu(c, x)
	})
}

// Gelu is ggml's tanh-approximation GELU (no backward in this ggml).
func (ctx *Context) Gelu(a Tensor) Tensor {
	return ctx.unary(a, func(c *C.struct_ggml_context, x *C.struct_ggml_tensor) *C.struct_ggml_tensor {
		return C.ggml_gelu(c, x)
	})
}

// Relu is max(a, 0).
func (ctx *Context) Relu(a Tensor) Tensor {
	return ctx.unary(a, func(c *C.struct_ggml_context, x *C.struct_ggml_tensor) *C.struct_ggml_tensor {
		return C.ggml_relu(c, x)
	})
}

// SumRows sums along dimension 0: [n,a,b,c] -> [1,a,b,c].
func (ctx *Context) SumRows(a Tensor) Tensor {
	return ctx.unary(a, func(c *C.struct_ggml_context, x *C.struct_ggml_tensor) *C.struct_ggml_tensor {
		return C.ggml_sum_rows(c, x)
	})
}

// Sum sums every element into a scalar.
func (ctx *Context) Sum(a Tensor) Tensor {
	return ctx.unary(a, func(c *C.struct_ggml_context, x *C.struct_ggml_tensor) *C.struct_ggml_tensor { return C.ggml_sum(c, x) })
}

// Cont makes a contiguous copy.
func (ctx *Context) Cont(a Tensor) Tensor {
	return ctx.unary(a, func(c *C.struct_ggml_context, x *C.struct_ggml_tensor) *C.struct_ggml_tensor {
		return C.ggml_cont(c, x)
	})
}

// Transpose swaps dimensions 0 and 1 (a view).
func (ctx *Context) Transpose(a Tensor) Tensor {
	return ctx.unary(a, func(c *C.struct_ggml_context, x *C.struct_ggml_tensor) *C.struct_ggml_tensor {
		return C.ggml_transpose(c, x)
	})
}

// Norm is ggml_norm (LayerNorm without gain/bias; no backward in this ggml).
func (ctx *Context) Norm(a Tensor, eps float32) Tensor {
	if !ctx.ok(a) {
		return Tensor{}
	}
	return Tensor{C.ggml_norm(ctx.c, a.t, C.float(eps))}
}

// RMSNorm is a / sqrt(mean(a²) + eps) along dimension 0.
func (ctx *Context) RMSNorm(a Tensor, eps float32) Tensor {
	if !ctx.ok(a) {
		return Tensor{}
	}
	return Tensor{C.ggml_rms_norm(ctx.c, a.t, C.float(eps))}
}

// Cast converts to another type.
func (ctx *Context) Cast(a Tensor, typ Type) Tensor {
	if !ctx.ok(a) {
		return Tensor{}
	}
	return Tensor{C.ggml_cast(ctx.c, a.t, C.enum_ggml_type(typ))}
}

// Cpy copies a into b (same number of elements) and returns b's view.
func (ctx *Context) Cpy(a, b Tensor) Tensor {
	if !ctx.ok(a, b) {
		return Tensor{}
	}
	if a.Nelements() != b.Nelements() {
		return ctx.shapeErr("cpy", a, b)
	}
	return Tensor{C.ggml_cpy(ctx.c, a.t, b.t)}
}

// GetRows gathers rows of a [n,rows,..] by the I32 indices in b.
func (ctx *Context) GetRows(a, b Tensor) Tensor {
	if !ctx.ok(a, b) {
		return Tensor{}
	}
	an, bn := a.Ne(), b.Ne()
	if b.Type() != TypeI32 || an[2] != bn[1] || an[3] != bn[2] || bn[3] != 1 {
		return ctx.shapeErr("get_rows", a, b)
	}
	return Tensor{C.ggml_get_rows(ctx.c, a.t, b.t)}
}

// Reshape gives a contiguous tensor new dimensions (1 to 4).
func (ctx *Context) Reshape(a Tensor, ne ...int) Tensor {
	if !ctx.ok(a) {
		return Tensor{}
	}
	n := 1
	for _, d := range ne {
		n *= d
	}
	if n != a.Nelements() || !bool(C.ggml_is_contiguous(a.t)) || len(ne) < 1 || len(ne) > 4 {
		return ctx.fail("reshape: cannot reshape %v to %v", a, ne)
	}
	switch len(ne) {
	case 1:
		return Tensor{C.ggml_reshape_1d(ctx.c, a.t, C.int64_t(ne[0]))}
	case 2:
		return Tensor{C.ggml_reshape_2d(ctx.c, a.t, C.int64_t(ne[0]), C.int64_t(ne[1]))}
	case 3:
		return Tensor{C.ggml_reshape_3d(ctx.c, a.t, C.int64_t(ne[0]), C.int64_t(ne[1]), C.int64_t(ne[2]))}
	default:
		return Tensor{C.ggml_reshape_4d(ctx.c, a.t, C.int64_t(ne[0]), C.int64_t(ne[1]), C.int64_t(ne[2]), C.int64_t(ne[3]))}
	}
}

// View makes a strided view of a: ne has 1 to 4 dimensions, nb the strides of
// dimensions 1.. (one fewer than ne), offset in bytes.
func (ctx *Context) View(a Tensor, ne []int, nb []int, offset int) Tensor {
	if !ctx.ok(a) {
		return Tensor{}
	}
	if len(ne) < 1 || len(ne) > 4 || len(nb) != len(ne)-1 || offset < 0 {
		return ctx.fail("view of %v: bad arguments ne=%v nb=%v", a, ne, nb)
	}
	last := offset + a.Type().RowSize(ne[0])
	for i := 1; i < len(ne); i++ {
		last += (ne[i] - 1) * nb[i-1]
	}
	if last > a.Nbytes() {
		return ctx.fail("view of %v: ne=%v nb=%v offset=%d reaches past its %d bytes", a, ne, nb, offset, a.Nbytes())
	}
	o := C.size_t(offset)
	switch len(ne) {
	case 1:
		return Tensor{C.ggml_view_1d(ctx.c, a.t, C.int64_t(ne[0]), o)}
	case 2:
		return Tensor{C.ggml_view_2d(ctx.c, a.t, C.int64_t(ne[0]), C.int64_t(ne[1]), C.size_t(nb[0]), o)}
	case 3:
		return Tensor{C.ggml_view_3d(ctx.c, a.t, C.int64_t(ne[0]), C.int64_t(ne[1]), C.int64_t(ne[2]), C.size_t(nb[0]), C.size_t(nb[1]), o)}
	default:
		return Tensor{C.ggml_view_4d(ctx.c, a.t, C.int64_t(ne[0]), C.int64_t(ne[1]), C.int64_t(ne[2]), C.int64_t(ne[3]), C.size_t(nb[0]), C.size_t(nb[1]), C.size_t(nb[2]), o)}
	}
}

// Permute moves dimension i of a to position axes[i].
func (ctx *Context) Permute(a Tensor, axes [4]int) Tensor {
	if !ctx.ok(a) {
		return Tensor{}
	}
	seen := 0
	for _, x := range axes {
		if x < 0 || x > 3 || seen&(1<<x) != 0 {
			return ctx.fail("permute %v: bad axes %v", a, axes)
		}
		seen |= 1 << x
	}
	return Tensor{C.ggml_permute(ctx.c, a.t, C.int(axes[0]), C.int(axes[1]), C.int(axes[2]), C.int(axes[3]))}
}

// SoftMaxExt is softmax(a*scale + mask) along dimension 0; mask may be nil.
func (ctx *Context) SoftMaxExt(a, mask Tensor, scale float32) Tensor {
	if !ctx.ok(a) {
		return Tensor{}
	}
	var m *C.struct_ggml_tensor
	if !mask.IsNil() {
		an, mn := a.Ne(), mask.Ne()
		if (mask.Type() != TypeF32 && mask.Type() != TypeF16) || mn[0] != an[0] || mn[1] < an[1] || an[2]%mn[2] != 0 || an[3]%mn[3] != 0 {
			return ctx.shapeErr("soft_max_ext", a, mask)
		}
		m = mask.t
	}
	if !bool(C.ggml_is_contiguous(a.t)) {
		return ctx.fail("soft_max_ext: %v is not contiguous", a)
	}
	return Tensor{C.ggml_soft_max_ext(ctx.c, a.t, m, C.float(scale), 0)}
}

// RopeNorm applies rotary position embeddings on adjacent pairs (llama's
// mode 0) to a [headDim, heads, tokens(, seqs)] with I32 positions pos,
// one for every token of every sequence.
func (ctx *Context) RopeNorm(a, pos Tensor, nDims int, freqBase float32, nCtxOrig int) Tensor {
	return ctx.rope(a, pos, nDims, 0, freqBase, nCtxOrig)
}

// RopeNeox applies rotary position embeddings on the two halves of each
// head (GPT-NeoX's mode, used by qwen3, nomic-bert and gemma).
func (ctx *Context) RopeNeox(a, pos Tensor, nDims int, freqBase float32, nCtxOrig int) Tensor {
	return ctx.rope(a, pos, nDims, C.GGML_ROPE_TYPE_NEOX, freqBase, nCtxOrig)
}

// rope folds a 4-D input's sequences into its token dimension, so that pos
// holds a position for every row. ggml's CPU kernel would reuse pos[S] for
// each sequence of a [d, heads, S, B] input, but its Vulkan kernel indexes
// pos by the flattened row (reading past pos for every sequence after the
// first); the 3-D form means the same on every backend.
func (ctx *Context) rope(a, pos Tensor, nDims int, mode C.int, freqBase float32, nCtxOrig int) Tensor {
	if !ctx.ok(a, pos) {
		return Tensor{}
	}
	ne := a.Ne()
	if pos.Type() != TypeI32 || pos.Ne()[0] != ne[2]*ne[3] {
		return ctx.shapeErr("rope (one position per token of every sequence)", a, pos)
	}
	if nb := a.Nb(); nb[3] != ne[2]*nb[2] {
		a = Tensor{C.ggml_cont(ctx.c, a.t)}
	}
	nb := a.Nb()
	flat := C.ggml_view_3d(ctx.c, a.t, C.int64_t(ne[0]), C.int64_t(ne[1]), C.int64_t(ne[2]*ne[3]), C.size_t(nb[1]), C.size_t(nb[2]), 0)
	r := C.ggml_rope_ext(ctx.c, flat, pos.t, nil, C.int(nDims), mode, C.int(nCtxOrig), C.float(freqBase), 1, 0, 1, 32, 1)
	return Tensor{C.ggml_reshape_4d(ctx.c, r, C.int64_t(ne[0]), C.int64_t(ne[1]), C.int64_t(ne[2]), C.int64_t(ne[3]))}
}

// SwigluSplit is silu(a) * b, the form with a backward pass.
func (ctx *Context) SwigluSplit(a, b Tensor) Tensor {
	if !ctx.ok(a, b) {
		return Tensor{}
	}
	if !bool(C.ggml_are_same_shape(a.t, b.t)) {
		return ctx.shapeErr("swiglu", a, b)
	}
	return Tensor{C.ggml_swiglu_split(ctx.c, a.t, b.t)}
}

// CrossEntropyLoss is the mean over rows of -Σ labels·log softmax(logits).
func (ctx *Context) CrossEntropyLoss(logits, labels Tensor) Tensor {
	if !ctx.ok(logits, labels) {
		return Tensor{}
	}
	if !bool(C.ggml_are_same_shape(logits.t, labels.t)) {
		return ctx.shapeErr("cross_entropy_loss", logits, labels)
	}
	return Tensor{C.ggml_cross_entropy_loss(ctx.c, logits.t, labels.t)}
}

// OptStepAdamW updates param in place from grad with moments m, v and the
// seven hyperparameters in params (alpha, beta1, beta2, eps, wd, 1/(1-β1ᵗ), 1/(1-β2ᵗ)).
func (ctx *Context) OptStepAdamW(param, grad, m, v, params Tensor) Tensor {
	if !ctx.ok(param, grad, m, v, params) {
		return Tensor{}
	}
	if !bool(C.ggml_are_same_shape(param.t, grad.t)) || !bool(C.ggml_are_same_shape(param.t, m.t)) || !bool(C.ggml_are_same_shape(param.t, v.t)) || params.Nelements() != 7 {
		return ctx.shapeErr("opt_step_adamw", param, grad)
	}
	if param.t.flags&C.GGML_TENSOR_FLAG_PARAM == 0 {
		return ctx.fail("opt_step_adamw: %v is not a parameter", param)
	}
	return Tensor{C.ggml_opt_step_adamw(ctx.c, param.t, grad.t, m.t, v.t, params.t)}
}

// AddInPlace is a += b, with b broadcast over a: the result is a view of a,
// whose memory the compute overwrites (a gradient accumulator, say).
func (ctx *Context) AddInPlace(a, b Tensor) Tensor {
	return ctx.binary("add_inplace", a, b, func(c *C.struct_ggml_context, x, y *C.struct_ggml_tensor) *C.struct_ggml_tensor {
		return C.ggml_add_inplace(c, x, y)
	})
}

// MulInPlace is a *= b, with b broadcast over a: the result is a view of a.
func (ctx *Context) MulInPlace(a, b Tensor) Tensor {
	return ctx.binary("mul_inplace", a, b, func(c *C.struct_ggml_context, x, y *C.struct_ggml_tensor) *C.struct_ggml_tensor {
		return C.ggml_mul_inplace(c, x, y)
	})
}

// Clamp limits every element of a to [lo, hi].
func (ctx *Context) Clamp(a Tensor, lo, hi float32) Tensor {
	if !ctx.ok(a) {
		return Tensor{}
	}
	if lo > hi {
		return ctx.fail("clamp: lower bound %g above upper bound %g", lo, hi)
	}
	return Tensor{C.ggml_clamp(ctx.c, a.t, C.float(lo), C.float(hi))}
}
