#include "fused.h"
#include "work.h"

#include "ggml-cpu.h"

#include <math.h>

// exp for the sigmoid inside GELU, written so the compiler vectorizes the
// loops that call it (libm's expf is a call per element): 2^n·p(r) with
// r = x - n·ln2, |r| ≤ ln2/2, p the degree-6 Taylor polynomial (relative
// error below 2e-7). x is clamped where 2^n would leave float's range;
// there the sigmoid is 0 or 1 to float precision anyway.
static inline float exp_approx(float x) {
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    // round to nearest by the float-precision trick (vectorizes everywhere)
    const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    const float r = (x - n * 0.693145751953125f) - n * 1.428606765330187e-6f;
    float p = 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    union { uint32_t u; float f; } s = { (uint32_t) ((int32_t) n + 127) << 23 };
    return p * s.f;
}

enum { CHUNK = 64 }; // elements per unit of work: whole cache lines per thread

// chunk is the [*lo, *hi) range of n elements thread ith of nth computes.
static void chunk(int64_t n, int ith, int nth, int64_t * lo, int64_t * hi) {
    thread_range((n + CHUNK - 1) / CHUNK, ith, nth, lo, hi);
    *lo = *lo * CHUNK < n ? *lo * CHUNK : n;
    *hi = *hi * CHUNK < n ? *hi * CHUNK : n;
}

#define GELU_C 0.7978845608028654f // √(2/π)
#define GELU_A 0.044715f

// sigma2u is σ(2u), u = √(2/π)(v + 0.044715v³): gelu(v) = v·σ(2u), since
// 0.5·(1 + tanh u) = σ(2u).
static inline float sigma2u(float v) {
    return 1 / (1 + exp_approx(-2 * GELU_C * v * (1 + GELU_A * v * v)));
}

void ragtune_gelu_f32(struct ggml_tensor * dst, int ith, int nth, void * userdata) {
    (void) userdata;
    GGML_ASSERT(ggml_is_contiguous(dst->src[0]) && ggml_is_contiguous(dst));
    const float * x = (const float *) dst->src[0]->data;
    float * y = (float *) dst->data;
    int64_t lo, hi;
    chunk(ggml_nelements(dst), ith, nth, &lo, &hi);
#pragma omp simd
    for (int64_t i = lo; i < hi; i++) {
        y[i] = x[i] * sigma2u(x[i]);
    }
}

void ragtune_gelu_back_f32(struct ggml_tensor * dst, int ith, int nth, void * userdata) {
    (void) userdata;
    const struct ggml_tensor * src = dst->src[1];
    GGML_ASSERT(src->type == GGML_TYPE_F16);
    GGML_ASSERT(ggml_is_contiguous(dst->src[0]) && ggml_is_contiguous(src) && ggml_is_contiguous(dst));
    const float * dy = (const float *) dst->src[0]->data;
    const ggml_fp16_t * x16 = (const ggml_fp16_t *) src->data;
    float * dx = (float *) dst->data;
    int64_t lo, hi;
    chunk(ggml_nelements(dst), ith, nth, &lo, &hi);
    float x[CHUNK];
    for (int64_t b = lo; b < hi; b += CHUNK) {
        const int64_t n = hi - b < CHUNK ? hi - b : CHUNK;
        ggml_cpu_fp16_to_fp32(x16 + b, x, n);
        // d/dx x·σ(2u) = s + x·s(1-s)·2u', s = σ(2u), u' = √(2/π)(1 + 3·0.044715x²)
#pragma omp simd
        for (int64_t i = 0; i < n; i++) {
            const float v = x[i] < -30.0f ? -30.0f : (x[i] > 30.0f ? 30.0f : x[i]);
            const float s = sigma2u(v);
            const float du2 = 2 * GELU_C * (1 + 3 * GELU_A * v * v);
            dx[b + i] = dy[b + i] * (s + v * s * (1 - s) * du2);
        }
    }
}

void ragtune_norm_back_f32(struct ggml_tensor * dst, int ith, int nth, void * userdata) {
    const float eps = userdata_f32(userdata);
    const struct ggml_tensor * g = dst->src[0];
    const struct ggml_tensor * src = dst->src[1];
    GGML_ASSERT(ggml_is_contiguous(g) && ggml_is_contiguous(src) && ggml_is_contiguous(dst));
    const int64_t E = src->ne[0], rows = ggml_nrows(src);
    for (int64_t r = ith; r < rows; r += nth) {
        const float * x = (const float *) ((const char *) src->data + r * src->nb[1]);
        const float * dy = (const float *) ((const char *) g->data + r * g->nb[1]);
        float * dx = (float *) ((char *) dst->data + r * dst->nb[1]);
        float sum = 0;
#pragma omp simd reduction(+ : sum)
        for (int64_t i = 0; i < E; i++) {
            sum += x[i];
        }
        const float mean = sum / E;
        float var = 0, sdy = 0, sdyx = 0;
#pragma omp simd reduction(+ : var, sdy, sdyx)
        for (int64_t i = 0; i < E; i++) {
            const float c = x[i] - mean;
            var += c * c;
            sdy += dy[i];
            sdyx += dy[i] * c;
        }
        const float rstd = 1 / sqrtf(var / E + eps);
        // mean(dy·x̂) = rstd·mean(dy·(x-μ))
        const float mdy = sdy / E, mdyx = sdyx / E * rstd;
#pragma omp simd
        for (int64_t i = 0; i < E; i++) {
            dx[i] = rstd * (dy[i] - mdy - (x[i] - mean) * rstd * mdyx);
        }
    }
}

void ragtune_soft_max_f32(struct ggml_tensor * dst, int ith, int nth, void * userdata) {
    const float scale = userdata_f32(userdata);
    const struct ggml_tensor * x = dst->src[0];
    const struct ggml_tensor * mask = dst->src[1];
    GGML_ASSERT(ggml_is_contiguous(dst) && x->nb[0] == sizeof(float) && (mask == NULL || mask->nb[0] == sizeof(float)));
    const int64_t n = x->ne[0], n1 = x->ne[1], n2 = x->ne[2];
    int64_t r0, r1;
    thread_range(ggml_nrows(x), ith, nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        const int64_t i1 = r % n1, i2 = r / n1 % n2, i3 = r / (n1 * n2);
        const float * xp = (const float *) ((const char *) x->data + i1 * x->nb[1] + i2 * x->nb[2] + i3 * x->nb[3]);
        float * y = (float *) dst->data + r * n;
        float max = -INFINITY;
        if (mask) {
            const float * m = (const float *) ((const char *) mask->data + i1 * mask->nb[1] +
                i2 % mask->ne[2] * mask->nb[2] + i3 % mask->ne[3] * mask->nb[3]);
#pragma omp simd reduction(max : max)
            for (int64_t i = 0; i < n; i++) {
                y[i] = xp[i] * scale + m[i];
                max = y[i] > max ? y[i] : max;
            }
        } else {
#pragma omp simd reduction(max : max)
            for (int64_t i = 0; i < n; i++) {
                y[i] = xp[i] * scale;
                max = y[i] > max ? y[i] : max;
            }
        }
        float sum = 0;
#pragma omp simd reduction(+ : sum)
        for (int64_t i = 0; i < n; i++) {
            // exactly 0 below e^-87 (masked scores: -inf), as expf gives
            const float d = y[i] - max, e = exp_approx(d);
            y[i] = d < -87.0f ? 0.0f : e;
            sum += y[i];
        }
        const float inv = 1 / sum;
#pragma omp simd
        for (int64_t i = 0; i < n; i++) {
            y[i] *= inv;
        }
    }
}

void ragtune_soft_max_back_f32(struct ggml_tensor * dst, int ith, int nth, void * userdata) {
    const float scale = userdata_f32(userdata);
    const struct ggml_tensor * g = dst->src[0];
    const struct ggml_tensor * p = dst->src[1];
    GGML_ASSERT(ggml_is_contiguous(g) && ggml_is_contiguous(p) && ggml_is_contiguous(dst));
    const int64_t n = dst->ne[0];
    int64_t r0, r1;
    thread_range(ggml_nrows(dst), ith, nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        const float * dy = (const float *) g->data + r * n;
        const float * y = (const float *) p->data + r * n;
        float * dx = (float *) dst->data + r * n;
        float dot = 0;
#pragma omp simd reduction(+ : dot)
        for (int64_t i = 0; i < n; i++) {
            dot += y[i] * dy[i];
        }
#pragma omp simd
        for (int64_t i = 0; i < n; i++) {
            dx[i] = scale * y[i] * (dy[i] - dot);
        }
    }
}

void ragtune_norm_f32(struct ggml_tensor * dst, int ith, int nth, void * userdata) {
    const float eps = userdata_f32(userdata);
    const struct ggml_tensor * src = dst->src[0];
    GGML_ASSERT(ggml_is_contiguous(src) && ggml_is_contiguous(dst));
    const int64_t E = src->ne[0];
    int64_t r0, r1;
    thread_range(ggml_nrows(src), ith, nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        const float * x = (const float *) src->data + r * E;
        float * y = (float *) dst->data + r * E;
        float sum = 0;
#pragma omp simd reduction(+ : sum)
        for (int64_t i = 0; i < E; i++) {
            sum += x[i];
        }
        const float mean = sum / E;
        float var = 0;
#pragma omp simd reduction(+ : var)
        for (int64_t i = 0; i < E; i++) {
            const float c = x[i] - mean;
            var += c * c;
        }
        const float rstd = 1 / sqrtf(var / E + eps);
#pragma omp simd
        for (int64_t i = 0; i < E; i++) {
            y[i] = (x[i] - mean) * rstd;
        }
    }
}
