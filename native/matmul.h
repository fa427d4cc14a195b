#pragma once
#include "ggml.h"

// Batched f32 matrix products for training on the CPU: the attention
// products (QKᵀ, P·V) and their gradients, many small matrices (128×128
// scores over 32- to 128-wide heads) on which ggml's CPU kernels reduce
// along the short head dimension with a horizontal sum per output. These
// pack each slice's operands and broadcast one operand's elements over
// vectors of the other's rows instead, so no output needs a horizontal sum.
// Both are ggml_custom_op_t over f32 operands with any strides; the result
// is contiguous; the first operand may be broadcast over the batch
// dimensions 2 and 3 as ggml allows. A non-NULL userdata writes the result
// with its dimensions 1 and 2 swapped (dst ne [M, n2, N, n3]): the product
// followed by ggml_cont(ggml_permute(·, 0, 2, 1, 3)), as attention's
// output and its q, k, v gradients go back to [head, heads, tokens, texts].

// ragtune_mul_mat_f32: dst = ggml_mul_mat(src[0], src[1]):
// src[0] ne [K, M, a2, a3], src[1] ne [K, N, n2, n3], dst ne [M, N, n2, n3],
// dst[n][m] = Σ_k src0[m][k]·src1[n][k].
void ragtune_mul_mat_f32(struct ggml_tensor * dst, int ith, int nth, void * userdata);

// ragtune_out_prod_f32: dst = ggml_out_prod(src[0], src[1]):
// src[0] ne [M, K, a2, a3], src[1] ne [N, K, n2, n3], dst ne [M, N, n2, n3],
// dst[n][m] = Σ_k src0[k][m]·src1[k][n].
void ragtune_out_prod_f32(struct ggml_tensor * dst, int ith, int nth, void * userdata);

// ragtune_products_fit reports whether one slice of a product with m
// output columns (dst ne[0]) and reduction length k fits the kernels'
// packing buffers (per thread and per call, at most a few MiB).
bool ragtune_products_fit(int64_t m, int64_t k);
