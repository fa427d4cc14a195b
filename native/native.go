// Package native holds ragtune's own C kernels, run by ggml as custom ops.
package native

// #cgo CFLAGS: -fopenmp-simd
// #include "transpose.h"
// #include "fused.h"
// #include "matmul.h"
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

// Norm is the address of the LayerNorm (ggml_norm) kernel; see fused.h.
func Norm() unsafe.Pointer { return C.ragtune_norm_f32 }

// SoftMax and SoftMaxBack are the addresses of the scaled, masked softmax
// kernel and its gradient; see fused.h.
func SoftMax() unsafe.Pointer     { return C.ragtune_soft_max_f32 }
func SoftMaxBack() unsafe.Pointer { return C.ragtune_soft_max_back_f32 }

// MulMatF32 and OutProdF32 are the addresses of the batched product
// kernels' ggml_custom_op_t functions; see matmul.h.
func MulMatF32() unsafe.Pointer  { return C.ragtune_mul_mat_f32 }
func OutProdF32() unsafe.Pointer { return C.ragtune_out_prod_f32 }

// ProductFits reports whether MulMatF32 and OutProdF32 take a product with
// m output columns and reduction length k.
func ProductFits(m, k int64) bool { return bool(C.ragtune_products_fit(C.int64_t(m), C.int64_t(k))) }
