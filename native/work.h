#pragma once
#include <stdint.h>
#include <string.h>

// thread_range is the [*lo, *hi) part of n units of work that thread ith
// of nth computes: contiguous, the same size for every thread but the last.
static inline void thread_range(int64_t n, int ith, int nth, int64_t * lo, int64_t * hi) {
    const int64_t per = (n + nth - 1) / nth;
    *lo = per * ith < n ? per * ith : n;
    *hi = *lo + per < n ? *lo + per : n;
}

// userdata_f32 is the float whose bits a kernel's userdata carries.
static inline float userdata_f32(void * userdata) {
    const uint32_t bits = (uint32_t) (uintptr_t) userdata;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}
