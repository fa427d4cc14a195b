#pragma once
#include "ggml.h"

// ragtune_transpose_f32 is a ggml_custom_op_t: dst (f32, contiguous,
// ne [R, C, n2, n3]) = src[0]ᵀ, src[0] having ne [C, R, n2, n3], any ggml
// type whose rows are contiguous (f32 or quantized), any row strides.
void ragtune_transpose_f32(struct ggml_tensor * dst, int ith, int nth, void * userdata);
