// Package native holds ragtune's own C kernels, run by ggml as custom ops.
package native

// #cgo CFLAGS: -fopenmp-simd
// #include "transpose.h"
// #include "fused.h"
import "C"

import (
	"unsafe"

	// ggml, which the kernels call, compiled through cgo.
	_ "github.com/ollama/ollama/llama/llama.cpp/src"
)

// TransposeF32 is the address of a ggml_custom_op_t writing the transpose
// of its one argument as contiguous f32, dequantizing on the way; see
// transpose.h for the shapes.
func TransposeF32() unsafe.Pointer { return C.ragtune_transpose_f32 }

// Gelu, GeluBack and NormBack are the addresses of the fused training
// kernels' ggml_custom_op_t functions; see fused.h.
func Gelu() unsafe.Pointer     { return C.ragtune_gelu_f32 }
func GeluBack() unsafe.Pointer { return C.ragtune_gelu_back_f32 }
func NormBack() unsafe.Pointer { return C.ragtune_norm_back_f32 }
