#pragma once
#include "ggml.h"

// Fused element-wise kernels for training on the CPU, each a
// ggml_custom_op_t over contiguous f32 tensors. ggml's autodiff cannot
// differentiate a custom op: bindings.Graph.BuildBackward stands ops with a
// backward in for them while it builds the backward pass, then puts these
// kernels in place of the stand-ins and their backward nodes.

// ragtune_gelu_f32: dst = gelu(src[0]), the tanh approximation
// 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³))), computed in f32 (ggml's own
// GELU rounds its input to f16 on the CPU).
void ragtune_gelu_f32(struct ggml_tensor * dst, int ith, int nth, void * userdata);

// ragtune_gelu_back_f32: dst = src[0] · gelu'(src[1]) (the gradient dy and
// gelu's input x, kept in f16 for the backward: bindings.Graph.BuildBackward
// stores it so). x is clamped to ±30, where gelu' is 0 or 1 to float
// precision, so an input past f16's range (±inf) still gets its gradient.
void ragtune_gelu_back_f32(struct ggml_tensor * dst, int ith, int nth, void * userdata);

// ragtune_norm_back_f32: the gradient of LayerNorm without gain and bias
// (ggml_norm) over rows of src[1] = x, given src[0] = dy:
// dx = (dy - mean(dy) - x̂·mean(dy·x̂)) / σ, x̂ = (x - μ)/σ,
// σ = √(var + eps). userdata carries eps's float bits.
void ragtune_norm_back_f32(struct ggml_tensor * dst, int ith, int nth, void * userdata);

// ragtune_norm_f32: dst = (x - μ)/√(var + eps) over rows of src[0] = x
// (ggml_norm, LayerNorm without gain and bias), in f32 with vectorized sums
// (ggml's sums in double, one element at a time). userdata carries eps's
// float bits.
void ragtune_norm_f32(struct ggml_tensor * dst, int ith, int nth, void * userdata);

// ragtune_soft_max_f32: dst = softmax(src[0]·scale + src[1]) over rows, as
// ggml_soft_max_ext without ALiBi or sinks: src[1] (the mask, f32, or
// absent) is broadcast over dimensions 2 and 3 as ggml broadcasts it.
// userdata carries scale's float bits. One pass per row for the maximum,
// one for exp and the sum, one to normalise, each vectorized (ggml's runs
// six, one of them scalar).
void ragtune_soft_max_f32(struct ggml_tensor * dst, int ith, int nth, void * userdata);

// ragtune_soft_max_back_f32: the gradient of ragtune_soft_max_f32 over rows,
// given src[0] = dy and src[1] = y, the softmax's output:
// dx = scale·y⊙(dy - y·dy), as ggml's SOFT_MAX_BACK without ALiBi. Each
// row's dot product is taken before the row is written, so dst may share
// memory with either operand (ggml's CPU kernel may not share it with y).
// userdata carries scale's float bits.
void ragtune_soft_max_back_f32(struct ggml_tensor * dst, int ith, int nth, void * userdata);
