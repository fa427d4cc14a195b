#include "transpose.h"
#include "work.h"

#include <string.h>

// The work is cut into tiles of TILE_ROWS source rows by TILE_COLS source
// columns: a tile is dequantized (or copied) into an L1-sized buffer, then
// written out column by column, TILE_ROWS contiguous floats at a time (one
// cache line). TILE_COLS is a multiple of every ggml block size (32, 256).
enum { TILE_ROWS = 16, TILE_COLS = 256 };

void ragtune_transpose_f32(struct ggml_tensor * dst, int ith, int nth, void * userdata) {
    (void) userdata;
    const struct ggml_tensor * src = dst->src[0];
    const int64_t C = src->ne[0], R = src->ne[1], n2 = src->ne[2], n3 = src->ne[3];
    const int64_t blck = ggml_blck_size(src->type);
    const size_t  blck_bytes = ggml_type_size(src->type);
    ggml_to_float_t to_float = src->type == GGML_TYPE_F32 ? NULL : ggml_get_type_traits(src->type)->to_float;

    float tile[TILE_ROWS * TILE_COLS];
    const int64_t row_blocks = (R + TILE_ROWS - 1) / TILE_ROWS;
    const int64_t blocks = row_blocks * n2 * n3;
    // Contiguous ranges of blocks per thread: each thread writes its own
    // stripes of the output.
    int64_t b0, b1;
    thread_range(blocks, ith, nth, &b0, &b1);
    for (int64_t b = b0; b < b1; b++) {
        const int64_t i23 = b / row_blocks, r0 = (b % row_blocks) * TILE_ROWS;
        const int64_t i2 = i23 % n2, i3 = i23 / n2;
        const int64_t rn = R - r0 < TILE_ROWS ? R - r0 : TILE_ROWS;
        const char * base = (const char *) src->data + i2 * src->nb[2] + i3 * src->nb[3];
        float * out = (float *) dst->data + (i3 * n2 + i2) * R * C;
        for (int64_t c0 = 0; c0 < C; c0 += TILE_COLS) {
            const int64_t cn = C - c0 < TILE_COLS ? C - c0 : TILE_COLS;
            for (int64_t r = 0; r < rn; r++) {
                const char * row = base + (r0 + r) * src->nb[1] + (c0 / blck) * blck_bytes;
                if (to_float) {
                    to_float(row, tile + r * TILE_COLS, cn);
                } else {
                    memcpy(tile + r * TILE_COLS, row, cn * sizeof(float));
                }
            }
            for (int64_t c = 0; c < cn; c++) {
                float * o = out + (c0 + c) * R + r0;
                for (int64_t r = 0; r < rn; r++) {
                    o[r] = tile[r * TILE_COLS + c];
                }
            }
        }
    }
}
