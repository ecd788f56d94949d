// The public entry points of include/ckernels.h: each runs the kernels of the current path
// (AVX-512: gemm.c, winograd.c, linear.c, pool2d.c; AVX2 and NEON: core.h through avx2.c and
// neon.c), plus what every path shares: the path choice, packing A, the Winograd weight transform.

#include "ckernels.h"
#include "internal.h"

#include <math.h>
#include <stdlib.h>

int zk_available(void) {
#if ZK_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw");
#else
    return 0;
#endif
}

int zk_supports(int path) {
    switch (path) {
    case ZK_BLAS: return 1;
    case ZK_AVX512: return zk_available();
#if ZK_X86
    case ZK_AVX2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
#if defined(__aarch64__)
    case ZK_NEON: return 1;
#endif
    default: return 0;
    }
}

int zk_best(void) {
    static const int order[] = {ZK_AVX512, ZK_AVX2, ZK_NEON};
    for (int i = 0; i < 3; i++)
        if (zk_supports(order[i])) return order[i];
    return ZK_BLAS;
}

int zk_mr(int path) { return path == ZK_AVX2 ? 6 : 8; }

// ---------------------------------------------------------------------------------------
// Packed A: for each 256-row block of K (the kernels' KC), for each zk_mr()-row panel, kc
// steps of zk_mr() floats, so that one call reads its A in one sequential stream.

enum { KC = 256 };

size_t zk_packed_a_count(int path, int m, int k) {
    const int mr = zk_mr(path);
    return (size_t)((m + mr - 1) / mr) * mr * (size_t)k;
}

void zk_pack_a(int path, int m, int k, const float *a, long lda, float *packed) {
    const int mr = zk_mr(path), mpad = (m + mr - 1) / mr * mr;
    for (int k0 = 0; k0 < k; k0 += KC) {
        const int kc = k - k0 < KC ? k - k0 : KC;
        for (int p = 0; p < mpad; p += mr) {
            float *panel = packed + (size_t)k0 * mpad + (size_t)p * kc;
            for (int i = 0; i < mr; i++) {
                const float *row = a + (p + i) * lda + k0;
                if (p + i < m) {
                    for (int kk = 0; kk < kc; kk++) panel[kk * mr + i] = row[kk];
                } else {
                    for (int kk = 0; kk < kc; kk++) panel[kk * mr + i] = 0.0f;
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The kernels of the current path.

// Each ISA's generic kernels exist only where they compile (avx2.c on x86-64, neon.c on aarch64).
#if ZK_X86
#define AVX2(call) case ZK_AVX2: zk_avx2_##call; break;
#else
#define AVX2(call)
#endif
#if defined(__aarch64__)
#define NEON(call) case ZK_NEON: zk_neon_##call; break;
#else
#define NEON(call)
#endif

#define ROUTE(call)                                                                                                \
    switch (path) {                                                                                                \
    case ZK_AVX512: zk512_##call; break;                                                                           \
    AVX2(call)                                                                                                     \
    NEON(call)                                                                                                     \
    default: break;                                                                                                \
    }

void zk_conv_gemm(int path, const float *packed_a, int m, int k, int m0, int m1, const zk_conv_input *input, int n0, int n1,
                  float *c, long ldc, const zk_epilogue *epilogue) {
    ROUTE(conv_gemm(packed_a, m, k, m0, m1, input, n0, n1, c, ldc, epilogue))
}

void zk_gemm(int path, const float *packed_a, int m, int k, int m0, int m1, const float *b, long ldb, int n0, int n1, float *c,
             long ldc, const zk_epilogue *epilogue) {
    ROUTE(gemm(packed_a, m, k, m0, m1, b, ldb, n0, n1, c, ldc, epilogue))
}

void zk_winograd(int path, const float *transformed, int cout, int cin, const float *x, int height, int width, int padding,
                 int tile0, int tile1, int m0, int m1, float *y, const zk_epilogue *epilogue) {
    ROUTE(winograd(transformed, cout, cin, x, height, width, padding, tile0, tile1, m0, m1, y, epilogue))
}

void zk_winograd2(int path, const float *transformed, int cout, int cin, const float *x, int height, int width, int padding,
                  int tile0, int tile1, int m0, int m1, float *y, const zk_epilogue *epilogue) {
    ROUTE(winograd2(transformed, cout, cin, x, height, width, padding, tile0, tile1, m0, m1, y, epilogue))
}

void zk_linear(int path, const float *w, const float *bias, const float *x, float *y, int n, int in, int out, int o0, int o1) {
    ROUTE(linear(w, bias, x, y, n, in, out, o0, o1))
}

long zk_winograd_v_count(int path, int m, int cin, int tiles) {
#if ZK_X86
    if (path == ZK_AVX2) return zk_avx2_winograd_v_count(m, cin, tiles);
#endif
#if defined(__aarch64__)
    if (path == ZK_NEON) return zk_neon_winograd_v_count(m, cin, tiles);
#endif
    return 0;
}

void zk_winograd_input(int path, int m, int cin, const float *x, int height, int width, int padding, int tile0,
                       int tile1, int c0, int c1, float *v) {
    switch (path) {
    AVX2(winograd_input(m, cin, x, height, width, padding, tile0, tile1, c0, c1, v))
    NEON(winograd_input(m, cin, x, height, width, padding, tile0, tile1, c0, c1, v))
    default: break;
    }
}

void zk_winograd_output(int path, int m, const float *transformed, int cout, int cin, const float *v, int height,
                        int width, int padding, int tile0, int tile1, int m0, int m1, float *y,
                        const zk_epilogue *epilogue) {
    switch (path) {
    AVX2(winograd_output(m, transformed, cout, cin, v, height, width, padding, tile0, tile1, m0, m1, y, epilogue))
    NEON(winograd_output(m, transformed, cout, cin, v, height, width, padding, tile0, tile1, m0, m1, y, epilogue))
    default: break;
    }
}

// AVX-512 numbers its tiles in runs of 16 (winograd.c); the generic core plainly.
int zk_winograd_tiles(int path, int oh, int ow) {
    return path == ZK_AVX512 ? zk512_winograd_tiles(oh, ow) : ((oh + 3) / 4) * ((ow + 3) / 4);
}

int zk_winograd2_tiles(int path, int oh, int ow) { return ((oh + 1) / 2) * ((ow + 1) / 2); }

int zk_winograd_unit(int path) { return path == ZK_NEON ? 12 : 16; }

/// u [P * P][cout][cin] = G g G^T in double, for output channels [o0, o1): F(4x4, 3x3) (P = 6)
/// or F(2x2, 3x3) (P = 4), with the G of winograd.c.
static void transform(int m, const float *weight, int cout, int cin, float *u, int o0, int o1) {
    static const double G4[6][3] = {
        {1.0 / 4, 0, 0},          {-1.0 / 6, -1.0 / 6, -1.0 / 6}, {-1.0 / 6, 1.0 / 6, -1.0 / 6},
        {1.0 / 24, 1.0 / 12, 1.0 / 6}, {1.0 / 24, -1.0 / 12, 1.0 / 6}, {0, 0, 1},
    };
    static const double G2[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
    const int P = m + 2;
    const double(*G)[3] = m == 4 ? G4 : G2;
    for (int o = o0; o < o1; o++)
        for (int i = 0; i < cin; i++) {
            const float *g = weight + ((size_t)o * cin + i) * 9;
            double t[6][3];
            for (int r = 0; r < P; r++)
                for (int c = 0; c < 3; c++) t[r][c] = G[r][0] * g[c] + G[r][1] * g[3 + c] + G[r][2] * g[6 + c];
            for (int r = 0; r < P; r++)
                for (int c = 0; c < P; c++)
                    u[((size_t)(r * P + c) * cout + o) * cin + i] =
                        (float)(t[r][0] * G[c][0] + t[r][1] * G[c][1] + t[r][2] * G[c][2]);
        }
}

void zk_winograd_pack(int path, int points, const float *weight, int cout, int cin, float *packed, int o0, int o1) {
    static const double G4[6][3] = {
        {1.0 / 4, 0, 0},          {-1.0 / 6, -1.0 / 6, -1.0 / 6}, {-1.0 / 6, 1.0 / 6, -1.0 / 6},
        {1.0 / 24, 1.0 / 12, 1.0 / 6}, {1.0 / 24, -1.0 / 12, 1.0 / 6}, {0, 0, 1},
    };
    static const double G2[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
    const int P = points == 36 ? 6 : 4;
    const double(*G)[3] = P == 6 ? G4 : G2;
    const int mr = zk_mr(path), mpad = (cout + mr - 1) / mr * mr;
    const size_t size = (size_t)mpad * cin;
    for (int o = o0; o < o1; o++) {
        const int p = o / mr * mr;
        for (int i = 0; i < cin; i++) {
            // Where (o, i) of each matrix lies in zk_pack_a's layout.
            const int k0 = i / KC * KC, kc = cin - k0 < KC ? cin - k0 : KC;
            float *at = packed + (size_t)k0 * mpad + (size_t)p * kc + (size_t)(i - k0) * mr + (o - p);
            const float *g = weight + ((size_t)o * cin + i) * 9;
            double t[6][3];
            for (int r = 0; r < P; r++)
                for (int c = 0; c < 3; c++) t[r][c] = G[r][0] * g[c] + G[r][1] * g[3 + c] + G[r][2] * g[6 + c];
            for (int r = 0; r < P; r++)
                for (int c = 0; c < P; c++)
                    at[(size_t)(r * P + c) * size] = (float)(t[r][0] * G[c][0] + t[r][1] * G[c][1] + t[r][2] * G[c][2]);
        }
    }
}

void zk_winograd_transform(int path, const float *weight, int cout, int cin, float *u, int o0, int o1) {
    if (path == ZK_AVX512) zk512_winograd_transform(weight, cout, cin, u, o0, o1);
    else transform(4, weight, cout, cin, u, o0, o1);
}

void zk_winograd2_transform(int path, const float *weight, int cout, int cin, float *u, int o0, int o1) {
    if (path == ZK_AVX512) zk512_winograd2_transform(weight, cout, cin, u, o0, o1);
    else transform(2, weight, cout, cin, u, o0, o1);
}

// Max pooling: exact on every path, so the OpenBLAS path pools with the best SIMD the CPU has.
void zk_max_pool(int path, const float *x, float *y, long planes, int H, int W, int kernel, int stride, int padding, int oh,
                 int ow) {
    if (path == ZK_BLAS) path = zk_best();
    const int simd = (stride == 1 || stride == 2) && padding < kernel;
    if (path == ZK_AVX512 || path == ZK_BLAS || !simd) {
        zk512_max_pool(x, y, planes, H, W, kernel, stride, padding, oh, ow);
        return;
    }
    float *row = aligned_alloc(64, sizeof(float) * (size_t)(((ow - 1) * stride + kernel + 32 + 15) / 16 * 16));
    if (!row) {
        zk512_max_pool(x, y, planes, H, W, kernel, stride, padding, oh, ow);
        return;
    }
    for (long p = 0; p < planes; p++) {
        const float *plane = x + p * H * W;
        float *out = y + p * oh * ow;
#if ZK_X86
        zk_avx2_max_pool_plane(plane, out, H, W, kernel, stride, padding, oh, ow, row);
#elif defined(__aarch64__)
        zk_neon_max_pool_plane(plane, out, H, W, kernel, stride, padding, oh, ow, row);
#endif
    }
    free(row);
}
