#include "matmul.h"
#include "work.h"

#include <stdlib.h>
#include <string.h>

// A tile of output is rows × vectors of VL floats held in registers. Wide
// blocks of columns take 4-vector × 4-row tiles, narrow ones (a 32-wide
// head) 2 × 8: 16 accumulators either way, within AVX-512's 32 registers
// with the loaded vectors; AVX2's 16 registers take half.
#if defined(__AVX512F__)
enum { VL = 16, WIDE_MV = 4, WIDE_NR = 4, NARROW_NR = 8 };
#else
enum { VL = 8, WIDE_MV = 2, WIDE_NR = 4, NARROW_NR = 4 };
#endif
typedef float vec __attribute__((vector_size(VL * sizeof(float))));

enum {
    NCHUNK = 64,          // output rows per unit of work
    MAX_PACK = 1 << 18,   // floats of a slice's packed first operand (1 MiB)
};

// f32 at byte offset i·si + j·sj of p.
static inline float at(const char * p, size_t si, int64_t i, size_t sj, int64_t j) {
    return *(const float *) (p + i * si + j * sj);
}

// A product slice: dst[n][m] = Σ_k A(k, m)·B(n, k), each operand read
// through byte strides (s_k, s_m) and (s_n, s_k).
struct operands {
    const char * a; size_t a_sk, a_sm;
    const char * b; size_t b_sn, b_sk;
};

// tile computes rows [0, nr) × vectors [0, mv) of an output block: pa is
// the packed first operand at the block's first column (K rows of lda
// floats), pb the packed second operand at its first row (nr rows of K
// floats). Columns from mleft on are not stored.
static inline __attribute__((always_inline)) void tile(const int mv, const int nr, int64_t K,
        const float * pa, int64_t lda, const float * pb, float * c, int64_t ldc, int64_t mleft) {
    vec acc[NARROW_NR][WIDE_MV];
#pragma GCC unroll 8
    for (int r = 0; r < nr; r++) {
#pragma GCC unroll 4
        for (int j = 0; j < mv; j++) {
            acc[r][j] = (vec) {0};
        }
    }
    for (int64_t k = 0; k < K; k++) {
        vec a[WIDE_MV];
#pragma GCC unroll 4
        for (int j = 0; j < mv; j++) {
            a[j] = *(const vec *) (pa + k * lda + j * VL);
#if defined(__x86_64__)
            // Keep the row in a register: folded into each FMA as a memory
            // operand, it would be loaded once per output row.
            __asm__("" : "+v"(a[j]));
#endif
        }
#pragma GCC unroll 8
        for (int r = 0; r < nr; r++) {
            const float b = pb[r * K + k];
#pragma GCC unroll 4
            for (int j = 0; j < mv; j++) {
                acc[r][j] += b * a[j];
            }
        }
    }
    for (int r = 0; r < nr; r++) {
        for (int j = 0; j < mv; j++) {
            const int64_t m = j * VL, n = mleft - m < VL ? mleft - m : VL;
            if (n == VL) {
                memcpy(c + r * ldc + m, &acc[r][j], sizeof(vec));
            } else if (n > 0) {
                memcpy(c + r * ldc + m, &acc[r][j], n * sizeof(float));
            }
        }
    }
}

// columns computes rows [0, rows) of the block of mv vectors at pa and c,
// nr rows at a time, then one by one.
static inline __attribute__((always_inline)) void columns(const int mv, const int nr, int64_t rows, int64_t K,
        int64_t Mp, const float * pa, const float * pb, float * c, int64_t ldc, int64_t mleft) {
    int64_t n = 0;
    for (; n + nr <= rows; n += nr) {
        tile(mv, nr, K, pa, Mp, pb + n * K, c + n * ldc, ldc, mleft);
    }
    for (; n < rows; n++) {
        tile(mv, 1, K, pa, Mp, pb + n * K, c + n * ldc, ldc, mleft);
    }
}

// block computes rows [0, rows) of dst over all M columns, rows ldc
// floats apart in c: the wide blocks a row group at a time (its rows of pb
// are read once for all of them), then what is left of the columns a
// block at a time.
static void block(int64_t rows, int64_t K, int64_t M, int64_t Mp, const float * pa, const float * pb, float * c, int64_t ldc) {
    const int64_t nv = Mp / VL, wide = nv / WIDE_MV * WIDE_MV;
    int64_t n = 0;
    for (; n + WIDE_NR <= rows; n += WIDE_NR) {
        for (int64_t v = 0; v < wide; v += WIDE_MV) {
            tile(WIDE_MV, WIDE_NR, K, pa + v * VL, Mp, pb + n * K, c + n * ldc + v * VL, ldc, M - v * VL);
        }
    }
    for (; n < rows; n++) {
        for (int64_t v = 0; v < wide; v += WIDE_MV) {
            tile(WIDE_MV, 1, K, pa + v * VL, Mp, pb + n * K, c + n * ldc + v * VL, ldc, M - v * VL);
        }
    }
    int64_t v = wide;
    for (; v + 2 <= nv; v += 2) {
        columns(2, NARROW_NR, rows, K, Mp, pa + v * VL, pb, c + v * VL, ldc, M - v * VL);
    }
    for (; v < nv; v++) {
        columns(1, NARROW_NR, rows, K, Mp, pa + v * VL, pb, c + v * VL, ldc, M - v * VL);
    }
}

static int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

bool ragtune_products_fit(int64_t m, int64_t k) {
    return m > 0 && k > 0 && k * round_up(m, VL) <= MAX_PACK && k <= MAX_PACK / NCHUNK;
}

// product runs the units of work of thread ith: slice i23 of the batch,
// output rows [n0, n0+NCHUNK). slice(dst, n2, n3, i2, i3) gives a slice's
// operands. With swapped, dst holds the product with its dimensions 1 and
// 2 swapped (ne [M, n2, N, n3]).
static void product(struct ggml_tensor * dst, int ith, int nth, int64_t K, bool swapped,
        struct operands (*slice)(const struct ggml_tensor *, int64_t, int64_t, int64_t, int64_t)) {
    const int64_t M = dst->ne[0], N = dst->ne[swapped ? 2 : 1], n2 = dst->ne[swapped ? 1 : 2], n3 = dst->ne[3];
    // where output row n of slice (i2, i3) goes: c(i2, i3) + n·ldc floats
    const size_t row_nb = dst->nb[swapped ? 2 : 1], i2_nb = dst->nb[swapped ? 1 : 2];
    const int64_t ldc = (int64_t) (row_nb / sizeof(float));
    GGML_ASSERT(dst->type == GGML_TYPE_F32 && ggml_is_contiguous(dst) && ragtune_products_fit(M, K));
    const int64_t Mp = round_up(M, VL), chunks = (N + NCHUNK - 1) / NCHUNK;
    int64_t u0, u1;
    thread_range(n2 * n3 * chunks, ith, nth, &u0, &u1);
    if (u0 >= u1) {
        return;
    }
    // aligned_alloc wants a size that is a multiple of the alignment
    float * pa = aligned_alloc(sizeof(vec), (size_t) round_up((K * Mp + NCHUNK * K) * (int64_t) sizeof(float), sizeof(vec)));
    GGML_ASSERT(pa != NULL);
    float * pb = pa + K * Mp;
    int64_t packed = -1; // the slice pa holds
    for (int64_t u = u0; u < u1; u++) {
        const int64_t i23 = u / chunks, n0 = (u % chunks) * NCHUNK;
        const int64_t nn = N - n0 < NCHUNK ? N - n0 : NCHUNK;
        const int64_t i2 = i23 % n2, i3 = i23 / n2;
        const struct operands o = slice(dst, n2, n3, i2, i3);
        if (packed != i23) {
            // pa[k][m] = A(k, m), the columns past M zero
            for (int64_t k = 0; k < K; k++) {
                float * row = pa + k * Mp;
                if (o.a_sm == sizeof(float)) {
                    memcpy(row, o.a + k * o.a_sk, M * sizeof(float));
                } else {
                    for (int64_t m = 0; m < M; m++) {
                        row[m] = at(o.a, o.a_sk, k, o.a_sm, m);
                    }
                }
                memset(row + M, 0, (Mp - M) * sizeof(float));
            }
            packed = i23;
        }
        // pb[n][k] = B(n0 + n, k)
        for (int64_t n = 0; n < nn; n++) {
            float * row = pb + n * K;
            if (o.b_sk == sizeof(float)) {
                memcpy(row, o.b + (n0 + n) * o.b_sn, K * sizeof(float));
            } else {
                for (int64_t k = 0; k < K; k++) {
                    row[k] = at(o.b, o.b_sn, n0 + n, o.b_sk, k);
                }
            }
        }
        float * c = (float *) ((char *) dst->data + i2 * i2_nb + i3 * dst->nb[3] + n0 * row_nb);
        block(nn, K, M, Mp, pa, pb, c, ldc);
    }
    free(pa);
}

// first is the slice of the first operand that output slice (i2, i3) of
// n2 × n3 reads: ggml broadcasts it over the batch dimensions.
static const char * first(const struct ggml_tensor * dst, int64_t n2, int64_t n3, int64_t i2, int64_t i3) {
    const struct ggml_tensor * a = dst->src[0];
    return (const char *) a->data + i2 / (n2 / a->ne[2]) * a->nb[2] + i3 / (n3 / a->ne[3]) * a->nb[3];
}

static const char * second(const struct ggml_tensor * dst, int64_t i2, int64_t i3) {
    const struct ggml_tensor * b = dst->src[1];
    return (const char *) b->data + i2 * b->nb[2] + i3 * b->nb[3];
}

// mul_mat: A(k, m) = src0[m][k], B(n, k) = src1[n][k].
static struct operands mul_mat_slice(const struct ggml_tensor * dst, int64_t n2, int64_t n3, int64_t i2, int64_t i3) {
    const struct ggml_tensor * a = dst->src[0], * b = dst->src[1];
    return (struct operands) {first(dst, n2, n3, i2, i3), a->nb[0], a->nb[1], second(dst, i2, i3), b->nb[1], b->nb[0]};
}

// out_prod: A(k, m) = src0[k][m], B(n, k) = src1[k][n].
static struct operands out_prod_slice(const struct ggml_tensor * dst, int64_t n2, int64_t n3, int64_t i2, int64_t i3) {
    const struct ggml_tensor * a = dst->src[0], * b = dst->src[1];
    return (struct operands) {first(dst, n2, n3, i2, i3), a->nb[1], a->nb[0], second(dst, i2, i3), b->nb[0], b->nb[1]};
}

void ragtune_mul_mat_f32(struct ggml_tensor * dst, int ith, int nth, void * userdata) {
    product(dst, ith, nth, dst->src[0]->ne[0], userdata != NULL, mul_mat_slice);
}

void ragtune_out_prod_f32(struct ggml_tensor * dst, int ith, int nth, void * userdata) {
    product(dst, ith, nth, dst->src[0]->ne[1], userdata != NULL, out_prod_slice);
}
