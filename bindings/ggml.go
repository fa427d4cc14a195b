package bindings

// #cgo CXXFLAGS: -std=c++17
// #include <stdlib.h>
// #include "ggml.h"
// #include "ggml-backend.h"
// #include "ggml-cpu.h"
// #include "ggml-alloc.h"
import "C"

import (
	"errors"
	"fmt"
	"strings"
	"unsafe"

	// llama.cpp, ggml and ggml's CPU backend, compiled through cgo.
	_ "github.com/ollama/ollama/llama/llama.cpp/src"
)

// Type is a ggml tensor element type.
type Type int

// The ggml types ragtune reads, writes or computes with (values of enum ggml_type).
const (
	TypeF32  Type = C.GGML_TYPE_F32
	TypeF16  Type = C.GGML_TYPE_F16
	TypeQ4_0 Type = C.GGML_TYPE_Q4_0
	TypeQ4_1 Type = C.GGML_TYPE_Q4_1
	TypeQ5_0 Type = C.GGML_TYPE_Q5_0
	TypeQ5_1 Type = C.GGML_TYPE_Q5_1
	TypeQ8_0 Type = C.GGML_TYPE_Q8_0
	TypeQ4_K Type = C.GGML_TYPE_Q4_K
	TypeQ6_K Type = C.GGML_TYPE_Q6_K
	TypeI32  Type = C.GGML_TYPE_I32
	TypeBF16 Type = C.GGML_TYPE_BF16
)

// String is ggml's own name for the type ("f32", "q4_0", ...).
func (t Type) String() string {
	if t < 0 || t >= C.GGML_TYPE_COUNT {
		return fmt.Sprintf("type(%d)", int(t))
	}
	name := C.ggml_type_name(C.enum_ggml_type(t))
	if name == nil {
		return fmt.Sprintf("type(%d)", int(t))
	}
	return C.GoString(name)
}

// ParseType maps a name such as "q8_0" to its Type.
func ParseType(name string) (Type, error) {
	for t := Type(0); t < C.GGML_TYPE_COUNT; t++ {
		if strings.EqualFold(t.String(), name) && t.BlockSize() > 0 {
			return t, nil
		}
	}
	return 0, fmt.Errorf("unknown tensor type %q", name)
}

// BlockSize is the number of elements per quantization block (1 for plain types).
func (t Type) BlockSize() int { return int(C.ggml_blck_size(C.enum_ggml_type(t))) }

// TypeSize is the byte size of one block.
func (t Type) TypeSize() int { return int(C.ggml_type_size(C.enum_ggml_type(t))) }

// IsQuantized reports whether the type stores blocks of quantized values.
func (t Type) IsQuantized() bool { return bool(C.ggml_is_quantized(C.enum_ggml_type(t))) }

// RowSize is the byte size of a row of n elements.
func (t Type) RowSize(n int) int { return int(C.ggml_row_size(C.enum_ggml_type(t), C.int64_t(n))) }

// Context holds tensor and graph descriptors. ragtune always creates contexts
// with no_alloc: tensor data lives in backend buffers (see Backend), so a
// context is small metadata that Close frees at once.
//
// Graph-building methods never abort the process on bad shapes: the first
// invalid operation is recorded (Err) and turns every later operation into a
// no-op returning a nil Tensor, so a graph builder can check once at the end.
type Context struct {
	c   *C.struct_ggml_context
	err error
}

// NewContext makes a context with room for maxTensors tensor descriptors and
// graphs of up to maxNodes nodes (with gradients when grads is true).
func NewContext(maxTensors, maxNodes int, grads bool) (*Context, error) {
	initNative()
	size := C.size_t(maxTensors)*C.ggml_tensor_overhead() + C.ggml_graph_overhead_custom(C.size_t(maxNodes), C.bool(grads))*2
	c := C.ggml_init(C.struct_ggml_init_params{mem_size: size, mem_buffer: nil, no_alloc: true})
	if c == nil {
		return nil, errors.New("ggml_init failed")
	}
	return &Context{c: c}, nil
}

// Close frees the context and every tensor descriptor in it.
func (ctx *Context) Close() {
	if ctx != nil && ctx.c != nil {
		// The tensors' addresses come back in later contexts: one left in
		// persistent would make a graph allocator's tensor there pass for
		// persistent and keep a pointer into a freed buffer.
		for t := C.ggml_get_first_tensor(ctx.c); t != nil; t = C.ggml_get_next_tensor(ctx.c, t) {
			persistent.Delete(t)
		}
		C.ggml_free(ctx.c)
		ctx.c = nil
	}
}

// Err is the first error met while building in this context.
func (ctx *Context) Err() error { return ctx.err }

func (ctx *Context) fail(format string, args ...any) Tensor {
	if ctx.err == nil {
		ctx.err = fmt.Errorf(format, args...)
	}
	return Tensor{}
}

// room is the context's unused metadata memory.
func (ctx *Context) room() C.size_t { return C.ggml_get_mem_size(ctx.c) - C.ggml_used_mem(ctx.c) }

// ok reports whether building may go on with the given operands.
func (ctx *Context) ok(ts ...Tensor) bool {
	if ctx.err != nil {
		return false
	}
	for _, t := range ts {
		if t.t == nil {
			ctx.fail("nil tensor operand")
			return false
		}
	}
	if ctx.room() < C.ggml_tensor_overhead() {
		ctx.fail("ggml context full: raise maxTensors")
		return false
	}
	return true
}

// Tensor is a ggml tensor descriptor owned by its Context.
type Tensor struct{ t *C.struct_ggml_tensor }

// IsNil reports whether the tensor is the result of a failed operation.
func (t Tensor) IsNil() bool { return t.t == nil }

// Ne returns the four dimensions (ne[0] is the contiguous one).
func (t Tensor) Ne() [4]int {
	return [4]int{int(t.t.ne[0]), int(t.t.ne[1]), int(t.t.ne[2]), int(t.t.ne[3])}
}

// Nb returns the four strides in bytes.
func (t Tensor) Nb() [4]int {
	return [4]int{int(t.t.nb[0]), int(t.t.nb[1]), int(t.t.nb[2]), int(t.t.nb[3])}
}

// Type is the element type.
func (t Tensor) Type() Type { return Type(t.t._type) }

// Op is the name of the operation that computes the tensor ("NONE" for a
// leaf); a node one of ragtune's kernels computes in place of a ggml op
// (UseNativeKernels) is named by that op (MUL_MAT, OUT_PROD, SOFT_MAX, NORM).
func (t Tensor) Op() string {
	if op := kernels[kernelOf(t.t)].op; op != "" {
		return op
	}
	return C.GoString(C.ggml_op_name(t.t.op))
}

// Name is the tensor's name.
func (t Tensor) Name() string { return C.GoString(&t.t.name[0]) }

// Nelements is the number of elements.
func (t Tensor) Nelements() int { return int(C.ggml_nelements(t.t)) }

// Nbytes is the byte size of the tensor's data.
func (t Tensor) Nbytes() int { return int(C.ggml_nbytes(t.t)) }

// SetName names the tensor (names longer than ggml's limit are cut).
func (t Tensor) SetName(name string) Tensor {
	if t.t != nil {
		cs := C.CString(name)
		C.ggml_set_name(t.t, cs)
		C.free(unsafe.Pointer(cs))
	}
	return t
}

// SetInput marks a tensor whose data the caller uploads before each compute.
func (t Tensor) SetInput() Tensor {
	if t.t != nil {
		C.ggml_set_input(t.t)
	}
	return t
}

// SetOutput marks a tensor whose data must survive the compute (never reused).
func (t Tensor) SetOutput() Tensor {
	if t.t != nil {
		C.ggml_set_output(t.t)
	}
	return t
}

// SetParam marks a trainable tensor.
func (t Tensor) SetParam() Tensor {
	if t.t != nil {
		C.ggml_set_param(t.t)
	}
	return t
}

// SetLoss marks the scalar loss tensor.
func (t Tensor) SetLoss() Tensor {
	if t.t != nil {
		C.ggml_set_loss(t.t)
	}
	return t
}

func (t Tensor) String() string {
	if t.t == nil {
		return "<nil tensor>"
	}
	ne := t.Ne()
	return fmt.Sprintf("%s[%d,%d,%d,%d %s]", t.Name(), ne[0], ne[1], ne[2], ne[3], t.Type())
}

// NewTensor creates a tensor descriptor with 1 to 4 dimensions.
func (ctx *Context) NewTensor(typ Type, ne ...int) Tensor {
	if !ctx.ok() {
		return Tensor{}
	}
	if len(ne) < 1 || len(ne) > 4 {
		return ctx.fail("new tensor: %d dimensions", len(ne))
	}
	for _, n := range ne {
		if n < 0 {
			return ctx.fail("new tensor: negative dimension in %v", ne)
		}
	}
	if bs := typ.BlockSize(); bs <= 0 || ne[0]%bs != 0 {
		return ctx.fail("new tensor: ne0=%d is not a multiple of %s's block size %d", ne[0], typ, bs)
	}
	var cne [4]C.int64_t
	for i, n := range ne {
		cne[i] = C.int64_t(n)
	}
	return Tensor{C.ggml_new_tensor(ctx.c, C.enum_ggml_type(typ), C.int(len(ne)), &cne[0])}
}

// Tensors lists the tensors of a context in creation order.
func (ctx *Context) Tensors() []Tensor {
	var out []Tensor
	for t := C.ggml_get_first_tensor(ctx.c); t != nil; t = C.ggml_get_next_tensor(ctx.c, t) {
		out = append(out, Tensor{t})
	}
	return out
}
