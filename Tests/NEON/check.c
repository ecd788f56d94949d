// The NEON kernels (Sources/CKernels, path ZK_NEON) against a scalar reference, for every kernel
// shape the catalog architectures use: scripts/check-kernels cross-compiles this file with the
// kernels for aarch64 and runs it under qemu-aarch64, and runs it natively on each x86 path the
// host has (`check avx2`, `check avx512`) under AddressSanitizer and UndefinedBehaviorSanitizer.
//
// Shapes: each distinct convolution of ResNet-18/34/50/101/152, ResNeXt (32x4d, 32x8d, 64x4d),
// Wide ResNet, the dilated ResNet-50 and VGG (with the algorithm Models picks for it: the GEMM,
// the direct 1x1 GEMM, Winograd F(4x4, 3x3) or F(2x2, 3x3), and the GEMM for every 3x3 too), on
// smaller maps than 224x224 (the edges, partial panels and tiles are what differ) and, for the
// largest layers, a range of output channels as a job of Models would run; the Linear layers;
// max pooling. Each reports max |kernel - reference| / max |reference|.

#include "ckernels.h"

#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int path = ZK_NEON;
static int failures = 0, checks = 0;

static float *random_floats(size_t n, unsigned *seed) {
    float *p = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) {
        *seed = *seed * 1664525u + 1013904223u;
        p[i] = (float)((*seed >> 8) & 0xFFFF) / 32768.0f - 1.0f;
    }
    return p;
}

static void report(const char *what, double worst, double scale, double tolerance) {
    const double ratio = scale > 0 ? worst / scale : worst;
    checks++;
    const int ok = ratio <= tolerance && ratio == ratio;
    if (!ok) failures++;
    printf("%-4s %-58s %.2e\n", ok ? "ok" : "FAIL", what, ratio);
}

typedef struct {
    int cin, cout, k, s, p, d, groups, h, batch;
} conv_shape;

/// y = conv(x) in double for output channels [m0, m1) of every group, then bias, residual, ReLU.
static void reference(const conv_shape *c, const float *x, const float *w, const float *bias, const float *res,
                      int m0, int m1, double *y, int oh, int ow) {
    const int cinG = c->cin / c->groups, coutG = c->cout / c->groups;
    for (int n = 0; n < c->batch; n++)
        for (int g = 0; g < c->groups; g++)
            for (int o = m0; o < m1; o++) {
                const int oc = g * coutG + o;
                for (int oy = 0; oy < oh; oy++)
                    for (int ox = 0; ox < ow; ox++) {
                        double sum = bias[oc];
                        for (int i = 0; i < cinG; i++)
                            for (int ki = 0; ki < c->k; ki++) {
                                const int iy = oy * c->s - c->p + ki * c->d;
                                if (iy < 0 || iy >= c->h) continue;
                                for (int kj = 0; kj < c->k; kj++) {
                                    const int ix = ox * c->s - c->p + kj * c->d;
                                    if (ix < 0 || ix >= c->h) continue;
                                    sum += (double)w[(((size_t)oc * cinG + i) * c->k + ki) * c->k + kj] *
                                           x[(((size_t)n * c->cin + g * cinG + i) * c->h + iy) * c->h + ix];
                                }
                            }
                        const size_t at = (((size_t)n * c->cout + oc) * oh + oy) * ow + ox;
                        sum += res[at];
                        y[at] = sum < 0 ? 0 : sum;
                    }
            }
}

enum { GEMM, WINOGRAD4, WINOGRAD2 };

/// One convolution through one algorithm, output channels [m0, m1) of each group, columns in
/// two jobs; compared with the reference.
static void check_conv(const conv_shape *c, int algorithm, int m0, int m1) {
    unsigned seed = (unsigned)(c->cin * 131 + c->cout * 7 + c->k + c->h * 31 + algorithm);
    const int cinG = c->cin / c->groups, coutG = c->cout / c->groups, kk = cinG * c->k * c->k;
    const int oh = (c->h + 2 * c->p - c->d * (c->k - 1) - 1) / c->s + 1, ow = oh, plane = oh * ow;
    const size_t ysize = (size_t)c->batch * c->cout * plane;
    float *x = random_floats((size_t)c->batch * c->cin * c->h * c->h, &seed);
    float *w = random_floats((size_t)c->cout * kk, &seed);
    float *bias = random_floats(c->cout, &seed);
    float *res = random_floats(ysize, &seed);
    float *y = calloc(ysize, sizeof(float));
    double *ref = calloc(ysize, sizeof(double));
    for (int i = 0; i < c->cout * kk; i++) w[i] *= 1.0f / sqrtf((float)kk);
    reference(c, x, w, bias, res, m0, m1, ref, oh, ow);
    const char *name = "gemm";
    if (algorithm == GEMM) {
        const size_t size = zk_packed_a_count(path, coutG, kk);
        float *packed = malloc(sizeof(float) * size * c->groups);
        for (int g = 0; g < c->groups; g++) zk_pack_a(path, coutG, kk, w + (size_t)g * coutG * kk, kk, packed + g * size);
        const int direct = c->k == 1 && c->s == 1 && c->p == 0;
        if (direct) name = "gemm 1x1";
        for (int n = 0; n < c->batch; n++)
            for (int g = 0; g < c->groups; g++) {
                const long out = ((long)n * c->cout + g * coutG) * plane;
                const float *src = x + ((size_t)n * c->cin + g * cinG) * c->h * c->h;
                zk_epilogue ep = {bias + g * coutG, res + out, plane, 1};
                zk_conv_input in = {src, cinG, c->h, c->h, c->k, c->s, c->p, c->d, oh, ow};
                // Two column jobs, split at a multiple of ZK_NR as Models splits.
                const int half = plane > ZK_NR ? (plane / 2 + ZK_NR - 1) / ZK_NR * ZK_NR : plane;
                const int cuts[3] = {0, half < plane ? half : plane, plane};
                for (int j = 0; j < 2; j++) {
                    if (cuts[j + 1] <= cuts[j]) continue;
                    if (direct)
                        zk_gemm(path, packed + g * size, coutG, kk, m0, m1, src, plane, cuts[j], cuts[j + 1], y + out, plane, &ep);
                    else
                        zk_conv_gemm(path, packed + g * size, coutG, kk, m0, m1, &in, cuts[j], cuts[j + 1], y + out, plane, &ep);
                }
            }
        free(packed);
    } else {
        const int points = algorithm == WINOGRAD4 ? 36 : 16;
        name = algorithm == WINOGRAD4 ? "winograd F(4x4,3x3)" : "winograd F(2x2,3x3)";
        const size_t size = zk_packed_a_count(path, c->cout, c->cin);
        float *u = malloc(sizeof(float) * points * c->cout * c->cin);
        float *packed = malloc(sizeof(float) * points * size);
        if (path != ZK_AVX512) {
            // As Models prepares them: transformed straight into the packed layout, in two jobs.
            memset(packed, 0, sizeof(float) * points * size);
            zk_winograd_pack(path, points, w, c->cout, c->cin, packed, 0, c->cout / 3);
            zk_winograd_pack(path, points, w, c->cout, c->cin, packed, c->cout / 3, c->cout);
        } else {
            if (algorithm == WINOGRAD4) zk_winograd_transform(path, w, c->cout, c->cin, u, 0, c->cout);
            else zk_winograd2_transform(path, w, c->cout, c->cin, u, 0, c->cout);
            for (int xi = 0; xi < points; xi++)
                zk_pack_a(path, c->cout, c->cin, u + (size_t)xi * c->cout * c->cin, c->cin, packed + xi * size);
        }
        const int tiles = c->batch * (algorithm == WINOGRAD4 ? zk_winograd_tiles(path, oh, ow) : zk_winograd2_tiles(path, oh, ow));
        // Blocks cut as Models cuts them for two threads: on the generic core one shared block
        // of up to ZK_WIDE slots; otherwise blocks of at most ZK_NR, an even count where there
        // are units enough, each starting at a multiple of zk_winograd_unit.
        const int unit = zk_winograd_unit(path), units = (tiles + unit - 1) / unit;
        const int m = algorithm == WINOGRAD4 ? 4 : 2;
        int blocks = (tiles + ZK_NR - 1) / ZK_NR;
        if (blocks > 1 && (blocks + 1) / 2 * 2 <= units) blocks = (blocks + 1) / 2 * 2;
        const long count = zk_winograd_v_count(path, m, c->cin, tiles);  // 0: no two-phase route
        if (tiles <= ZK_WIDE && count > 0) blocks = 1;
        zk_epilogue ep = {bias, res, 0, 1};
        const long shared = blocks == 1 ? count : 0;
        if (shared > 0) {
            // One block on the generic core, as Models runs it when its output channels are cut
            // between threads: input channels in two jobs, then the output.
            float *v = malloc(sizeof(float) * shared);
            zk_winograd_input(path, m, c->cin, x, c->h, c->h, c->p, 0, tiles, 0, c->cin / 3, v);
            zk_winograd_input(path, m, c->cin, x, c->h, c->h, c->p, 0, tiles, c->cin / 3, c->cin, v);
            zk_winograd_output(path, m, packed, c->cout, c->cin, v, c->h, c->h, c->p, 0, tiles, m0, m1, y, &ep);
            free(v);
            blocks = 0;
        }
        for (int b = 0; b < blocks; b++) {
            const int t0 = units * b / blocks * unit, end = units * (b + 1) / blocks * unit, t1 = end < tiles ? end : tiles;
            if (t1 <= t0) continue;
            if (algorithm == WINOGRAD4) zk_winograd(path, packed, c->cout, c->cin, x, c->h, c->h, c->p, t0, t1, m0, m1, y, &ep);
            else zk_winograd2(path, packed, c->cout, c->cin, x, c->h, c->h, c->p, t0, t1, m0, m1, y, &ep);
        }
        free(u);
        free(packed);
    }
    double worst = 0, scale = 0;
    for (int n = 0; n < c->batch; n++)
        for (int g = 0; g < c->groups; g++)
            for (int o = m0; o < m1; o++)
                for (int i = 0; i < plane; i++) {
                    const size_t at = ((size_t)n * c->cout + g * coutG + o) * plane + i;
                    const double d = fabs(y[at] - ref[at]);
                    if (d > worst || d != d) worst = d;
                    if (fabs(ref[at]) > scale) scale = fabs(ref[at]);
                }
    char what[128];
    snprintf(what, sizeof what, "%s %d->%d k%d s%d p%d d%d g%d %dx%d n%d rows %d..%d", name, c->cin, c->cout, c->k, c->s,
             c->p, c->d, c->groups, c->h, c->h, c->batch, m0, m1);
    report(what, worst, scale, algorithm == GEMM ? 1e-5 : 1e-4);
    free(x), free(w), free(bias), free(res), free(y), free(ref);
}

/// Output channels [m0, m1) to check: all of them, or for large layers a middle range cut at
/// the path's panel size, keeping each check to a few tens of millions of multiply-adds.
static void check(conv_shape c, int algorithm) {
    const int oh = (c.h + 2 * c.p - c.d * (c.k - 1) - 1) / c.s + 1;
    const int coutG = c.cout / c.groups, mr = zk_mr(path);
    const double per_row = (double)c.batch * c.groups * (c.cin / c.groups) * c.k * c.k * oh * oh;
    int rows = (int)(8e6 / per_row);
    int m0 = 0, m1 = coutG;
    if (rows < coutG) {
        rows = rows < mr ? mr : rows / mr * mr;
        m0 = coutG / 2 / mr * mr;
        m1 = m0 + rows < coutG ? m0 + rows : coutG;
    }
    check_conv(&c, algorithm, m0, m1);
}

static void check_linear(int n, int in, int out, int o0, int o1) {
    unsigned seed = (unsigned)(n * 7 + in + out);
    float *x = random_floats((size_t)n * in, &seed), *w = random_floats((size_t)out * in, &seed);
    float *bias = random_floats(out, &seed), *y = calloc((size_t)n * out, sizeof(float));
    zk_linear(path, w, bias, x, y, n, in, out, o0, o1);
    double worst = 0, scale = 0;
    for (int b = 0; b < n; b++)
        for (int o = o0; o < o1; o++) {
            double sum = bias[o];
            for (int k = 0; k < in; k++) sum += (double)w[(size_t)o * in + k] * x[(size_t)b * in + k];
            const double d = fabs(y[(size_t)b * out + o] - sum);
            if (d > worst || d != d) worst = d;
            if (fabs(sum) > scale) scale = fabs(sum);
        }
    char what[128];
    snprintf(what, sizeof what, "linear %d->%d n%d features %d..%d", in, out, n, o0, o1);
    report(what, worst, scale, 1e-5);
    free(x), free(w), free(bias), free(y);
}

static void check_pool(int channels, int h, int k, int s, int p) {
    unsigned seed = (unsigned)(h * 13 + k);
    const int oh = (h + 2 * p - k) / s + 1;
    float *x = random_floats((size_t)channels * h * h, &seed), *y = calloc((size_t)channels * oh * oh, sizeof(float));
    x[5] = NAN;  // propagates, as in PyTorch
    zk_max_pool(path, x, y, channels, h, h, k, s, p, oh, oh);
    double worst = 0;
    for (int c = 0; c < channels; c++)
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < oh; ox++) {
                float best = -INFINITY;
                for (int i = 0; i < k; i++)
                    for (int j = 0; j < k; j++) {
                        const int iy = oy * s - p + i, ix = ox * s - p + j;
                        if (iy < 0 || iy >= h || ix < 0 || ix >= h) continue;
                        const float v = x[((size_t)c * h + iy) * h + ix];
                        if (v > best || v != v) best = v;
                    }
                const float got = y[((size_t)c * oh + oy) * oh + ox];
                const int same = got == best || (got != got && best != best);
                if (!same) worst = 1;
            }
    char what[128];
    snprintf(what, sizeof what, "max pool %dx%d k%d s%d p%d", h, h, k, s, p);
    report(what, worst, 1, 0);
    free(x), free(y);
}

/// One thread's use of the kernels' scratch buffers: a convolution GEMM (packing B) and a
/// Winograd block, each with the epilogue.
static void *use_scratch(void *unused) {
    (void)unused;
    enum { CIN = 64, COUT = 64, H = 28 };
    unsigned seed = 7;
    float *x = random_floats((size_t)CIN * H * H, &seed), *w = random_floats((size_t)COUT * CIN * 9, &seed);
    float *y = calloc((size_t)COUT * H * H, sizeof(float));
    const size_t size = zk_packed_a_count(path, COUT, CIN * 9), wsize = zk_packed_a_count(path, COUT, CIN);
    float *packed = calloc(size, sizeof(float)), *transformed = calloc(36 * wsize, sizeof(float));
    zk_pack_a(path, COUT, CIN * 9, w, CIN * 9, packed);
    zk_conv_input in = {x, CIN, H, H, 3, 1, 1, 1, H, H};
    zk_conv_gemm(path, packed, COUT, CIN * 9, 0, COUT, &in, 0, H * H, y, H * H, NULL);
    // (Outputs are not checked here: AVX-512's zero weights serve as well as transformed ones.)
    if (path != ZK_AVX512) zk_winograd_pack(path, 36, w, COUT, CIN, transformed, 0, COUT);
    zk_winograd(path, transformed, COUT, CIN, x, H, H, 1, 0, 48, 0, COUT, y, NULL);
    free(x), free(w), free(y), free(packed), free(transformed);
    return NULL;
}

/// The scratch buffers of a thread that ends are freed: 32 threads, one after another, each
/// using them (several hundred KB each); the heap in use must not grow by more than 2 MB.
static void check_scratch_freed(void) {
    pthread_t t;
    pthread_create(&t, NULL, use_scratch, NULL);  // the first: one-time allocations
    pthread_join(t, NULL);
    const size_t before = mallinfo2().uordblks;
    for (int i = 0; i < 32; i++) {
        pthread_create(&t, NULL, use_scratch, NULL);
        pthread_join(t, NULL);
    }
    const double grown = ((double)mallinfo2().uordblks - (double)before) / (1 << 20);
    checks++;
    if (grown > 2) failures++;
    printf("%s scratch buffers of 32 ended threads: heap grew %.2f MB\n", grown > 2 ? "FAIL" : "ok  ", grown);
}

int main(int argc, char **argv) {
    if (argc > 1) path = !strcmp(argv[1], "avx2") ? ZK_AVX2 : !strcmp(argv[1], "avx512") ? ZK_AVX512 : ZK_NEON;
    if (!zk_supports(path)) {
        printf("path %d does not run here\n", path);
        return 2;
    }
    // {cin, cout, k, s, p, d, groups, map, batch}: the maps are smaller than at 224x224.
    static const conv_shape gemm[] = {
        {3, 64, 7, 2, 3, 1, 1, 40, 1},                                  // ResNet conv1
        {3, 64, 3, 1, 1, 1, 1, 24, 1},                                  // VGG conv1
        {64, 128, 3, 2, 1, 1, 1, 28, 1}, {128, 256, 3, 2, 1, 1, 1, 14, 1}, {256, 512, 3, 2, 1, 1, 1, 14, 1},  // basic, stride 2
        {128, 128, 3, 2, 1, 1, 1, 28, 1}, {256, 256, 3, 2, 1, 1, 1, 14, 1}, {512, 512, 3, 2, 1, 1, 1, 14, 1},  // bottleneck
        {64, 128, 1, 2, 0, 1, 1, 28, 1}, {256, 512, 1, 2, 0, 1, 1, 28, 1}, {512, 1024, 1, 2, 0, 1, 1, 14, 1},  // downsample
        {1024, 2048, 1, 2, 0, 1, 1, 14, 1}, {128, 256, 1, 2, 0, 1, 1, 14, 1}, {256, 512, 1, 2, 0, 1, 1, 14, 1},
        {64, 64, 1, 1, 0, 1, 1, 28, 1}, {64, 256, 1, 1, 0, 1, 1, 28, 1}, {256, 64, 1, 1, 0, 1, 1, 28, 1},      // 1x1
        {256, 128, 1, 1, 0, 1, 1, 14, 1}, {128, 512, 1, 1, 0, 1, 1, 14, 1}, {512, 256, 1, 1, 0, 1, 1, 14, 1},
        {256, 1024, 1, 1, 0, 1, 1, 14, 1}, {1024, 512, 1, 1, 0, 1, 1, 7, 1}, {512, 2048, 1, 1, 0, 1, 1, 7, 1},
        {2048, 512, 1, 1, 0, 1, 1, 7, 1}, {1024, 256, 1, 1, 0, 1, 1, 14, 1}, {64, 128, 1, 1, 0, 1, 1, 28, 2},
        {128, 128, 3, 1, 1, 1, 32, 28, 1}, {256, 256, 3, 2, 1, 1, 32, 28, 1}, {512, 512, 3, 1, 1, 1, 32, 14, 1},  // ResNeXt
        {1024, 1024, 3, 2, 1, 1, 32, 14, 1}, {2048, 2048, 3, 1, 1, 1, 32, 7, 1}, {256, 256, 3, 1, 1, 1, 64, 28, 1},
        {256, 256, 3, 1, 2, 2, 1, 14, 1}, {512, 512, 3, 1, 4, 4, 1, 14, 1},                                    // dilated
        {64, 64, 3, 1, 1, 1, 1, 28, 1}, {512, 512, 3, 1, 1, 1, 1, 7, 1},                                      // 3x3 by GEMM
    };
    static const conv_shape winograd[] = {
        {64, 64, 3, 1, 1, 1, 1, 56, 1}, {128, 128, 3, 1, 1, 1, 1, 28, 1}, {256, 256, 3, 1, 1, 1, 1, 14, 1},
        {512, 512, 3, 1, 1, 1, 1, 14, 1}, {64, 128, 3, 1, 1, 1, 1, 30, 1}, {128, 256, 3, 1, 1, 1, 1, 28, 2},
        {256, 512, 3, 1, 1, 1, 1, 14, 1}, {128, 128, 3, 1, 1, 1, 1, 13, 2}, {1024, 1024, 3, 1, 1, 1, 1, 7, 1},
        {256, 256, 3, 1, 1, 1, 1, 56, 1},                                                                   // wide
        {48, 64, 3, 1, 1, 1, 1, 32, 1}, {48, 64, 3, 1, 1, 1, 1, 30, 1},  // one shared block of 64 and 56 (past ZK_NR)
        // Odd maps, whose last tile of a row or column is partial and whose last chunk of 4 floats
        // (core.h) runs past the row; no padding; small maps in a batch; AVX-512's runs of 16
        // slots with a run partly dead (17x17, 33x33: 5 and 9 tiles wide).
        {32, 32, 3, 1, 1, 1, 1, 9, 3}, {32, 48, 3, 1, 1, 1, 1, 17, 1}, {32, 32, 3, 1, 0, 1, 1, 20, 2},
        {32, 32, 3, 1, 1, 1, 1, 6, 4}, {24, 40, 3, 1, 1, 1, 1, 11, 1}, {16, 16, 3, 1, 1, 1, 1, 33, 1},
    };
    static const conv_shape winograd2[] = {
        {512, 512, 3, 1, 1, 1, 1, 7, 1}, {512, 512, 3, 1, 1, 1, 1, 7, 2}, {256, 256, 3, 1, 1, 1, 1, 7, 1},
        {1024, 1024, 3, 1, 1, 1, 1, 7, 1}, {128, 128, 3, 1, 1, 1, 1, 9, 1},
        {128, 128, 3, 1, 1, 1, 1, 9, 2}, {128, 128, 3, 1, 1, 1, 1, 9, 3},    // 50 and 75 tiles: 2 and 3 past a vector
        {32, 32, 3, 1, 1, 1, 1, 40, 1},                                      // rows of 20 tiles: whole runs
    };
    for (size_t i = 0; i < sizeof gemm / sizeof gemm[0]; i++) check(gemm[i], GEMM);
    for (size_t i = 0; i < sizeof winograd / sizeof winograd[0]; i++) check(winograd[i], WINOGRAD4);
    for (size_t i = 0; i < sizeof winograd2 / sizeof winograd2[0]; i++) check(winograd2[i], WINOGRAD2);
    // VGG's classifier and the ResNet heads, batch 1 to 8 (large layers: a job's range of features).
    check_linear(1, 25088, 4096, 1024, 1200);
    check_linear(2, 4096, 4096, 0, 300);
    check_linear(3, 4096, 1000, 0, 1000);
    check_linear(8, 4096, 1000, 496, 1000);
    check_linear(5, 512, 1000, 0, 1000);
    check_linear(1, 2048, 1000, 0, 1000);
    check_linear(7, 2048, 10, 0, 10);
    check_pool(8, 112, 3, 2, 1);  // ResNet
    check_pool(8, 56, 2, 2, 0);   // VGG
    check_pool(4, 15, 3, 1, 1);
    check_pool(4, 7, 2, 2, 0);
    check_scratch_freed();
    printf("%d of %d checks passed\n", checks - failures, checks);
    return failures ? 1 : 0;
}
