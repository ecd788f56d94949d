// Shared by the CKernels sources only (not part of the module's public header).

#ifndef ZOO_CKERNELS_INTERNAL_H
#define ZOO_CKERNELS_INTERNAL_H

#include "ckernels.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#define ZK_X86 1
#include <immintrin.h>
#else
#define ZK_X86 0
#endif

/// One ISA's kernels, each with the contract of the zk_ entry point of the same name
/// (include/ckernels.h); dispatch.c picks the set. zk512_: the AVX-512 files; zk_avx2_, zk_neon_:
/// core.h compiled by avx2.c and neon.c (x86-64 and aarch64 only; elsewhere never called).
#define ZK_DECLARE(P)                                                                                               \
    void P##conv_gemm(const float *packed_a, int m, int k, int m0, int m1, const zk_conv_input *input, int n0,      \
                      int n1, float *c, long ldc, const zk_epilogue *epilogue);                                      \
    void P##gemm(const float *packed_a, int m, int k, int m0, int m1, const float *b, long ldb, int n0, int n1,      \
                 float *c, long ldc, const zk_epilogue *epilogue);                                                   \
    void P##winograd(const float *transformed, int cout, int cin, const float *x, int height, int width,             \
                     int padding, int tile0, int tile1, int m0, int m1, float *y, const zk_epilogue *epilogue);      \
    void P##winograd2(const float *transformed, int cout, int cin, const float *x, int height, int width,            \
                      int padding, int tile0, int tile1, int m0, int m1, float *y, const zk_epilogue *epilogue);     \
    void P##linear(const float *w, const float *bias, const float *x, float *y, int n, int in, int out, int o0,       \
                   int o1);
ZK_DECLARE(zk512_)
/// The generic core's Winograd in two phases (zk_winograd_input, zk_winograd_output).
#define ZK_DECLARE_PHASES(P)                                                                                        \
    long P##winograd_v_count(int m, int cin, int tiles);                                                            \
    void P##winograd_input(int m, int cin, const float *x, int height, int width, int padding, int tile0, int tile1, \
                           int c0, int c1, float *v);                                                                \
    void P##winograd_output(int m, const float *transformed, int cout, int cin, const float *v, int height,          \
                            int width, int padding, int tile0, int tile1, int m0, int m1, float *y,                  \
                            const zk_epilogue *epilogue);
ZK_DECLARE_PHASES(zk_avx2_)
ZK_DECLARE_PHASES(zk_neon_)
ZK_DECLARE(zk_avx2_)
ZK_DECLARE(zk_neon_)

int zk512_winograd_tiles(int out_height, int out_width);
int zk512_winograd2_tiles(int out_height, int out_width);
void zk512_winograd_transform(const float *weight, int cout, int cin, float *u, int o0, int o1);
void zk512_winograd2_transform(const float *weight, int cout, int cin, float *u, int o0, int o1);
void zk512_max_pool(const float *x, float *y, long planes, int height, int width, int kernel, int stride,
                    int padding, int out_height, int out_width);

/// One plane of max pooling, stride 1 or 2, padding < kernel; `row`: zk_pool_row_floats(...) floats.
void zk_avx2_max_pool_plane(const float *plane, float *out, int H, int W, int kernel, int stride, int padding,
                            int oh, int ow, float *row);
void zk_neon_max_pool_plane(const float *plane, float *out, int H, int W, int kernel, int stride, int padding,
                            int oh, int ow, float *row);

#define TARGET __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,fma,bmi2")))
#define INLINE static inline __attribute__((always_inline))

#if ZK_X86
/// The mask of the first `count` of 16 lanes (all for 16 or more, none for 0 or less).
TARGET INLINE __mmask16 lanes(int count) {
    return count >= 16 ? (__mmask16)0xFFFF : count <= 0 ? (__mmask16)0 : (__mmask16)((1u << count) - 1);
}

#endif

/// One column of a tile stored through the epilogue, as the kernels' narrow edge (`columns`)
/// stores it: c[i * ldc] (+)= column[i] for rows i < mr, then on the last K block the bias,
/// the residual (res[i * ldr]) and ReLU.
static inline void zk_store_column(const float *column, float *c, long ldc, int mr, int accumulate, int last,
                                   const float *bias, const float *res, long ldr, int relu) {
    for (int i = 0; i < mr; i++) {
        float x = column[i];
        if (accumulate) x += c[i * ldc];
        if (last) {
            if (bias) x += bias[i];
            if (res) x += res[i * ldr];
            if (relu && x < 0) x = 0;
        }
        c[i * ldc] = x;
    }
}

/// The calling thread's scratch buffer `slot` of at least `count` floats, 64-byte aligned: kept
/// for the thread's next call, grown when too small, freed when the thread exits (threads.c).
/// NULL when out of memory. One slot is in use at a time per purpose: packing B (gemm.c,
/// core.h) and a Winograd block's V and M (winograd.c, core.h).
enum { ZK_SCRATCH_PACK, ZK_SCRATCH_WINOGRAD, ZK_SCRATCH_SLOTS };
float *zk_scratch(int slot, size_t count);

/// A `columns` kernel for one count of columns (gemm.c, core.h).
typedef void (*zk_columns_fn)(int kc, const float *a, const float *b, long ldb, float *c, long ldc, int mr,
                              int accumulate, int last, const float *bias, const float *res, long ldr, int relu);

/// Defines columns##R: the including file's `columns` kernel for R columns, compiled with the
/// target attribute ATTR (one zk_columns_fn per count, so each count's loops unroll).
#define ZK_COLUMNS_FN(ATTR, R)                                                                                  \
    ATTR static void columns##R(int kc, const float *a, const float *b, long ldb, float *c, long ldc, int mr,   \
                                int accumulate, int last, const float *bias, const float *res, long ldr,        \
                                int relu) {                                                                     \
        columns(R, kc, a, b, ldb, c, ldc, mr, accumulate, last, bias, res, ldr, relu);                          \
    }

/// Rows m0 ..< m1 of A * B with B one pre-packed panel: k rows of 16 * ceil(w / 16) floats;
/// here C points at row m0 (C + (row - m0) * ldc + col), and no epilogue is applied.
/// (gemm.c; the Winograd kernels run their GEMMs through it.)
void zk_gemm_panel(const float *packed_a, int m, int k, int m0, int m1, const float *panel, int w,
                   float *c, long ldc);


#endif
