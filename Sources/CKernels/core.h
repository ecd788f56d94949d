// The vector-width-generic kernels: the designs of the AVX-512 files (gemm.c, winograd.c,
// linear.c, pool2d.c) written once over clang's vector extensions, and compiled once per ISA by
// a file that defines, before including this one:
//
//   VL          floats per vector (8 for AVX2, 4 for NEON)
//   MR, NV      the register tile: MR rows of A times NV vectors of B (NR = NV * VL columns)
//   ACC         accumulators the small-batch Linear may keep (about half the registers)
//   EVEN        VL constant indices 0, 2, 4, ... (stride-2 loads)
//   NAME(x)     the ISA's name for function x (zk_avx2_x, zk_neon_x)
//   TGT         the target attribute the functions need (empty where the baseline has them)
//
// Each ISA's functions follow the contracts of include/ckernels.h (dispatch.c routes the public
// entry points to them), with A packed in MR-row panels and Winograd tiles numbered plainly,
// image by image and row by row. Edges go through small stack buffers instead of masks.

#include "ckernels.h"
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NR (NV * VL)
#define KC 256

typedef float vf __attribute__((ext_vector_type(VL)));
typedef float vfu __attribute__((ext_vector_type(VL), aligned(4)));
typedef int vi __attribute__((ext_vector_type(VL)));

#define AI static inline __attribute__((always_inline)) TGT

AI vf load(const float *p) { return *(const vfu *)p; }
AI void store(float *p, vf v) { *(vfu *)p = v; }
AI vf splat(float x) {
    vf v = x;
    return v;
}
AI vf fma_(vf a, vf b, vf c) { return __builtin_elementwise_fma(a, b, c); }
AI vf select_(vi take_a, vf a, vf b) { return (vf)(((vi)a & take_a) | ((vi)b & ~take_a)); }
AI vf max0(vf a) { return select_(a > splat(0.0f), a, splat(0.0f)); }
/// max(a, b) with NaN propagating, as PyTorch's max pooling.
AI vf max_nan(vf a, vf b) { return select_((a > b) | (a != a), a, b); }

// ---------------------------------------------------------------------------------------
// The MR x (nv * VL) register tile: C[0..mr, 0..nv * VL) (+)= A panel * B panel (kc rows of ldb
// floats), then on the last K block bias, residual and ReLU, all before the single store.

AI void tile(const int nv, int kc, const float *restrict a, const float *restrict b, long ldb, float *c, long ldc,
             int mr, int accumulate, int last, const float *bias, const float *res, long ldr, int relu) {
    vf acc[MR][NV];
    for (int i = 0; i < MR; i++)
        for (int v = 0; v < nv; v++) acc[i][v] = splat(0.0f);
    for (int k = 0; k < kc; k++) {
        vf bv[NV];
        for (int v = 0; v < nv; v++) bv[v] = load(b + v * VL);
        // A streams from memory (weights are read once per forward): ask for it 16 steps ahead,
        // as gemm.c does. Layers whose A is used for few columns measured 0.90-0.92 (7x7 maps).
        __builtin_prefetch(a + 16 * MR);
        for (int i = 0; i < MR; i++) {
            const vf av = splat(a[i]);
            for (int v = 0; v < nv; v++) acc[i][v] = fma_(av, bv[v], acc[i][v]);
        }
        a += MR;
        b += ldb;
    }
    for (int i = 0; i < MR; i++) {
        if (i >= mr) break;
        float *row = c + i * ldc;
        for (int v = 0; v < nv; v++) {
            vf x = acc[i][v];
            if (accumulate) x += load(row + v * VL);
            if (last) {
                if (bias) x += splat(bias[i]);
                if (res) x += load(res + i * ldr + v * VL);
                if (relu) x = max0(x);
            }
            store(row + v * VL, x);
        }
    }
}

#define TILE_FN(N)                                                                                              \
    TGT static void tile##N(int kc, const float *a, const float *b, long ldb, float *c, long ldc, int mr,       \
                            int accumulate, int last, const float *bias, const float *res, long ldr, int relu) {   \
        tile(N, kc, a, b, ldb, c, ldc, mr, accumulate, last, bias, res, ldr, relu);                            \
    }
TILE_FN(1)
#if NV >= 2
TILE_FN(2)
#endif
#if NV >= 3
TILE_FN(3)
#endif

/// The last R < VL columns of a tile: C[0..mr, 0..R) with the MR rows of the A panel as RV
/// vectors per K step and each column's B broadcast, in two partial sums over K so the FMAs do
/// not wait on each other. (A whole vector per column would spend VL lanes on one column: a
/// 7x7 map's 49th column, a 14x14 map's last 4.) Lanes past MR hold the next step's rows and
/// are dropped; the last step is read through a copy, as its vector would run past the panel.
AI void columns(const int R, int kc, const float *restrict a, const float *restrict b, long ldb, float *c, long ldc,
                int mr, int accumulate, int last, const float *bias, const float *res, long ldr, int relu) {
    enum { RV = (MR + VL - 1) / VL };
    vf acc[2][RV][VL];
    for (int u = 0; u < 2; u++)
        for (int r = 0; r < RV; r++)
            for (int j = 0; j < R; j++) acc[u][r][j] = splat(0.0f);
    int k = 0;
    for (; k + 2 < kc; k += 2)
        for (int u = 0; u < 2; u++)
            for (int r = 0; r < RV; r++) {
                const vf av = load(a + (k + u) * MR + r * VL);
                for (int j = 0; j < R; j++) acc[u][r][j] = fma_(av, splat(b[(k + u) * ldb + j]), acc[u][r][j]);
            }
    for (; k < kc; k++) {
        float copy[RV * VL] = {0};
        const float *step = a + k * MR;
        if (k == kc - 1 && RV * VL > MR) step = memcpy(copy, step, sizeof(float) * MR);
        for (int r = 0; r < RV; r++) {
            const vf av = load(step + r * VL);
            for (int j = 0; j < R; j++) acc[0][r][j] = fma_(av, splat(b[k * ldb + j]), acc[0][r][j]);
        }
    }
    for (int j = 0; j < R; j++) {
        float column[RV * VL];
        for (int r = 0; r < RV; r++) store(column + r * VL, acc[0][r][j] + acc[1][r][j]);
        zk_store_column(column, c + j, ldc, mr, accumulate, last, bias, res ? res + j : NULL, ldr, relu);
    }
}

ZK_COLUMNS_FN(TGT, 1) ZK_COLUMNS_FN(TGT, 2) ZK_COLUMNS_FN(TGT, 3)
#if VL > 4
ZK_COLUMNS_FN(TGT, 4) ZK_COLUMNS_FN(TGT, 5) ZK_COLUMNS_FN(TGT, 6) ZK_COLUMNS_FN(TGT, 7)
#endif
static const zk_columns_fn columns_of[VL] = {NULL, columns1, columns2, columns3,
#if VL > 4
                                          columns4, columns5, columns6, columns7
#endif
};

/// One tile of nr <= NR columns: whole vectors in the register tile, the rest (< VL columns)
/// in `columns`. No load reaches past column nr, so B may be read in place.
TGT static void run_tile(int kc, const float *a, const float *b, long ldb, float *c, long ldc, int mr, int nr,
                         int accumulate, int last, const float *bias, const float *res, long ldr, int relu) {
    const int rest = nr % VL, whole = nr - rest;
    switch (whole / VL) {
#if NV >= 3
    case 3: tile3(kc, a, b, ldb, c, ldc, mr, accumulate, last, bias, res, ldr, relu); break;
#endif
#if NV >= 2
    case 2: tile2(kc, a, b, ldb, c, ldc, mr, accumulate, last, bias, res, ldr, relu); break;
#endif
    case 1: tile1(kc, a, b, ldb, c, ldc, mr, accumulate, last, bias, res, ldr, relu); break;
    default: break;
    }
    if (rest) columns_of[rest](kc, a, b + whole, ldb, c + whole, ldc, mr, accumulate, last, bias,
                               res ? res + whole : NULL, ldr, relu);
}

/// The panel of rows i ..< i + MR for the K block starting at k0 (of kc rows): zk_pack_a's layout.
static inline const float *a_panel(const float *packed, int m, int k0, int kc, int i) {
    const int mpad = (m + MR - 1) / MR * MR;
    return packed + (size_t)k0 * mpad + (size_t)i * kc;
}

// ---------------------------------------------------------------------------------------
// Packing B: rows of the block (columns n ..< n + w of im2col rows k0 + r) are built in
// contiguous rows, then cut into the NR-column panels (kc x NR floats each, the last zero-padded).

enum { NC_PANELS = (528 + NR - 1) / NR, NC = NC_PANELS * NR, GROUP = 7, PACK_AHEAD = 8 };

/// `rows` rows of B of a stride-2 convolution that read the same input row `line` (NULL: a row
/// outside the image) over `seg` outputs: row kj gets line[ix0 + kj + 2t], 0 outside the row,
/// rows `pitch` floats apart, each written up to VL - 1 floats past `seg`. The span they read is
/// copied once into a zero-padded buffer, so every row is whole vectors with no bounds to check.
AI void stride2_rows(const float *line, int W, int ix0, int seg, int rows, float *out, long pitch) {
    if (!line) {
        for (int kj = 0; kj < rows; kj++) memset(out + kj * pitch, 0, sizeof(float) * seg);
        return;
    }
    float span[2 * (NC + VL) + GROUP];
    const int whole = (seg + VL - 1) / VL * VL, n = 2 * whole + rows;
    int lo = ix0 < 0 ? -ix0 : 0, hi = W - ix0;
    if (lo > n) lo = n;
    if (hi > n) hi = n;
    if (hi < lo) hi = lo;
    memset(span, 0, sizeof(float) * lo);
    if (hi > lo) memcpy(span + lo, line + ix0 + lo, sizeof(float) * (hi - lo));
    memset(span + hi, 0, sizeof(float) * (n - hi));
    for (int kj = 0; kj < rows; kj++)
        for (int t = 0; t < seg; t += VL)
            store(out + kj * pitch + t, __builtin_shufflevector(load(span + kj + 2 * t), load(span + kj + 2 * t + VL), EVEN));
}

/// Builds im2col rows from kidx on (a stride-2 convolution's whole kernel row of ks rows, which
/// read the same input rows, where `avail` rows are left in the block; otherwise one row) over
/// columns n ..< n + w into out[0], out[1], ...; returns how many.
TGT static int conv_rows(const zk_conv_input *in, int kidx, int avail, int n, int w, float (*out)[NC + NR]) {
    const int kk = in->kernel * in->kernel, ks = in->kernel;
    const int s = in->stride, pad = in->padding, d = in->dilation;
    const int H = in->height, W = in->width, ow = in->out_width;
    const int ch = kidx / kk, ki = kidx % kk / ks, kj = kidx % ks;
    const int rows = s == 2 && d == 1 && kj == 0 && ks <= GROUP && ks <= avail ? ks : 1;
    const float *plane = in->data + (long)ch * H * W;
    int oy = n / ow, ox = n % ow, j = 0;
    while (j < w) {
        const int seg = w - j < ow - ox ? w - j : ow - ox;
        const int iy = oy * s - pad + ki * d, ix0 = ox * s - pad + kj * d;
        const float *line = iy < 0 || iy >= H ? NULL : plane + (long)iy * W;
        float *o = out[0] + j;
        if (s == 2) {
            stride2_rows(line, W, ix0, seg, rows, o, NC + NR);
        } else if (!line) {
            memset(o, 0, sizeof(float) * seg);
        } else {
            // Outputs t in [lo, hi) read inside the row: 0 <= ix0 + s t < W.
            int lo = ix0 < 0 ? (-ix0 + s - 1) / s : 0;
            int hi = ix0 < W ? (W - ix0 + s - 1) / s : 0;
            if (hi > seg) hi = seg;
            if (lo > hi) lo = hi;
            memset(o, 0, sizeof(float) * lo);
            if (s == 1) {
                memcpy(o + lo, line + ix0 + lo, sizeof(float) * (hi - lo));
            } else {
                const float *src = line + ix0;
                for (int t = lo; t < hi; t++) o[t] = src[t * s];
            }
            memset(o + hi, 0, sizeof(float) * (seg - hi));
        }
        j += seg;
        ox = 0;
        oy++;
    }
    return rows;
}

/// Packs rows k0 ..< k0 + kc, columns nb ..< nb + nbw, of B (the convolution's im2col matrix,
/// or the plain matrix b) into NR-column panels (kc x NR floats each, the last zero-padded).
TGT static void pack_block(const zk_conv_input *conv, const float *b, long ldb, int k0, int kc, int nb, int nbw,
                           float *buf) {
    float rows[GROUP][NC + NR];
    const int padded = (nbw + NR - 1) / NR * NR;
    for (int r = 0; r < kc;) {
        const int count = conv ? conv_rows(conv, k0 + r, kc - r, nb, nbw, rows) : 1;
        for (int q = 0; q < count; q++, r++) {
            // A row built here (not read in place) has its padding zeroed.
            float *row = conv ? rows[q] : NULL;
            const float *src = row;
            if (!conv) {
                src = b + (long)(k0 + r) * ldb + nb;
                // The row PACK_AHEAD below, a cache line at a time: rows ldb floats apart are
                // strides the hardware prefetcher does not follow far enough ahead.
                if (r + PACK_AHEAD < kc)
                    for (int x = 0; x < nbw; x += 64 / (int)sizeof(float)) __builtin_prefetch(src + PACK_AHEAD * ldb + x);
                if (padded != nbw) src = row = memcpy(rows[0], src, sizeof(float) * nbw);
            }
            if (row) memset(row + nbw, 0, sizeof(float) * (padded - nbw));
            for (int p = 0; p * NR < padded; p++) {
                float *dst = buf + (long)p * kc * NR + (long)r * NR;
                for (int v = 0; v < NV; v++) store(dst + v * VL, load(src + p * NR + v * VL));
            }
        }
    }
}

TGT static void drive(const float *packed_a, int m, int k, int m0, int m1, const zk_conv_input *conv, const float *b,
                      long ldb, int n0, int n1, float *c, long ldc, const zk_epilogue *ep) {
    float *buf = zk_scratch(ZK_SCRATCH_PACK, (size_t)KC * NC);
    if (!buf) return;
    const float *bias = ep ? ep->bias : NULL;
    const float *res = ep ? ep->residual : NULL;
    const long ldr = ep ? ep->ldr : 0;
    const int relu = ep ? ep->relu : 0;
    for (int nb = n0; nb < n1; nb += NC) {
        const int nbw = n1 - nb < NC ? n1 - nb : NC;
        const int panels = (nbw + NR - 1) / NR;
        for (int k0 = 0; k0 < k; k0 += KC) {
            const int kc = k - k0 < KC ? k - k0 : KC;
            pack_block(conv, b, ldb, k0, kc, nb, nbw, buf);
            const int acc = k0 > 0, last = k0 + kc == k;
            for (int i = m0; i < m1; i += MR) {
                const int mr = m1 - i < MR ? m1 - i : MR;
                const float *ap = a_panel(packed_a, m, k0, kc, i);
                const float *bp = bias ? bias + i : NULL;
                for (int p = 0; p < panels; p++) {
                    const int n = nb + p * NR, w = n1 - n < NR ? n1 - n : NR;
                    const float *rp = res ? res + i * ldr + n : NULL;
                    run_tile(kc, ap, buf + (long)p * kc * NR, NR, c + i * ldc + n, ldc, mr, w, acc, last, bp, rp, ldr,
                             relu);
                }
            }
        }
    }
}

TGT void NAME(conv_gemm)(const float *packed_a, int m, int k, int m0, int m1, const zk_conv_input *input, int n0,
                         int n1, float *c, long ldc, const zk_epilogue *epilogue) {
    drive(packed_a, m, k, m0, m1, input, NULL, 0, n0, n1, c, ldc, epilogue);
}

TGT void NAME(gemm)(const float *packed_a, int m, int k, int m0, int m1, const float *b, long ldb, int n0, int n1,
                    float *c, long ldc, const zk_epilogue *epilogue) {
    drive(packed_a, m, k, m0, m1, NULL, b, ldb, n0, n1, c, ldc, epilogue);
}

// ---------------------------------------------------------------------------------------
// Winograd F(4x4, 3x3) and F(2x2, 3x3) (see winograd.c for the algebra), one driver for both:
// `m` output rows and columns per tile from a (m + 2) x (m + 2) input patch. A block of up to
// ZK_WIDE tiles is transformed VL tiles per vector into V [P * P][cin][width] (width: the tiles
// rounded up to VL), multiplied by the P * P packed weight matrices panel by panel into M, and
// transformed back with the epilogue.
//
// Each 4 lanes of a vector (a group) hold 4 tiles. A patch row of each tile is loaded as
// chunks of 4 floats (its columns 0..3, and for F(4x4) 4..7), and a 4x4 transpose within each
// group turns the chunks of the group's 4 tiles into 4 column vectors; on the way out the same
// transpose turns output columns back into each tile's rows of 4 floats. Tiles are numbered
// plainly (image by image, row by row) and need not be neighbours.

enum { PMAX = 6, G = VL / 4 };

#if VL == 4
#define GROUPS(F) F(0)
#elif VL == 8
#define GROUPS(F) F(0), F(4)
#elif VL == 16
#define GROUPS(F) F(0), F(4), F(8), F(12)
#else
#error "core.h: VL must be 4, 8 or 16"
#endif
// Shuffle indices, per group of 4 lanes starting at lane b (the second source's lanes from VL).
#define UNPACK_LO(b) b, VL + b, b + 1, VL + b + 1
#define UNPACK_HI(b) b + 2, VL + b + 2, b + 3, VL + b + 3
#define LOW_PAIRS(b) b, b + 1, VL + b, VL + b + 1
#define HIGH_PAIRS(b) b + 2, b + 3, VL + b + 2, VL + b + 3

typedef float v4 __attribute__((ext_vector_type(4)));
typedef float v4u __attribute__((ext_vector_type(4), aligned(4)));
typedef int v4i __attribute__((ext_vector_type(4)));

/// The 4x4 transpose within each group of 4 lanes: group g of d[j], lane i = group g of a[i], lane j.
AI void transpose4(const vf *a, vf *d) {
    const vf t0 = __builtin_shufflevector(a[0], a[1], GROUPS(UNPACK_LO)), t1 = __builtin_shufflevector(a[0], a[1], GROUPS(UNPACK_HI));
    const vf t2 = __builtin_shufflevector(a[2], a[3], GROUPS(UNPACK_LO)), t3 = __builtin_shufflevector(a[2], a[3], GROUPS(UNPACK_HI));
    d[0] = __builtin_shufflevector(t0, t2, GROUPS(LOW_PAIRS));
    d[1] = __builtin_shufflevector(t0, t2, GROUPS(HIGH_PAIRS));
    d[2] = __builtin_shufflevector(t1, t3, GROUPS(LOW_PAIRS));
    d[3] = __builtin_shufflevector(t1, t3, GROUPS(HIGH_PAIRS));
}

/// The vector whose group g is c[g].
AI vf join_groups(const v4 *c) {
#if VL == 4
    return c[0];
#elif VL == 8
    return __builtin_shufflevector(c[0], c[1], 0, 1, 2, 3, 4, 5, 6, 7);
#else
    typedef float v8 __attribute__((ext_vector_type(8)));
    const v8 lo = __builtin_shufflevector(c[0], c[1], 0, 1, 2, 3, 4, 5, 6, 7);
    const v8 hi = __builtin_shufflevector(c[2], c[3], 0, 1, 2, 3, 4, 5, 6, 7);
    return __builtin_shufflevector(lo, hi, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
#endif
}

/// Group g of the vector (g < G).
AI v4 group_of(vf q, int g) {
#if VL == 4
    (void)g;
    return q;
#elif VL == 8
    return g == 0 ? __builtin_shufflevector(q, q, 0, 1, 2, 3) : __builtin_shufflevector(q, q, 4, 5, 6, 7);
#else
    return g == 0 ? __builtin_shufflevector(q, q, 0, 1, 2, 3)
         : g == 1 ? __builtin_shufflevector(q, q, 4, 5, 6, 7)
         : g == 2 ? __builtin_shufflevector(q, q, 8, 9, 10, 11)
                  : __builtin_shufflevector(q, q, 12, 13, 14, 15);
#endif
}

/// r = B^T d for one column of P vectors.
AI void input_1d(int m, const vf *d, vf *r) {
    if (m == 4) {
        const vf t1 = fma_(splat(-4.0f), d[2], d[4]), t2 = fma_(splat(-4.0f), d[1], d[3]);
        const vf t3 = d[4] - d[2], t4 = splat(2.0f) * (d[3] - d[1]);
        r[0] = fma_(splat(-5.0f), d[2], splat(4.0f) * d[0]) + d[4];
        r[1] = t1 + t2;
        r[2] = t1 - t2;
        r[3] = t3 + t4;
        r[4] = t3 - t4;
        r[5] = fma_(splat(-5.0f), d[3], splat(4.0f) * d[1]) + d[5];
    } else {
        r[0] = d[0] - d[2];
        r[1] = d[1] + d[2];
        r[2] = d[2] - d[1];
        r[3] = d[1] - d[3];
    }
}

/// s = A^T x for one column of P vectors.
AI void output_1d(int m, const vf *x, vf *s) {
    if (m == 4) {
        const vf a = x[1] + x[2], b = x[1] - x[2], c = x[3] + x[4], d = x[3] - x[4];
        s[0] = (x[0] + a) + c;
        s[1] = fma_(splat(2.0f), d, b);
        s[2] = fma_(splat(4.0f), c, a);
        s[3] = fma_(splat(8.0f), d, b) + x[5];
    } else {
        s[0] = (x[0] + x[1]) + x[2];
        s[1] = (x[1] - x[2]) - x[3];
    }
}

/// C rows m0 ..< m1 (C at row m0) = packed A * one B block of w columns, rows of ldb floats.
TGT static void gemm_block(const float *packed_a, int m, int k, int m0, int m1, const float *b, long ldb, int w, float *c,
                           long ldc) {
    for (int k0 = 0; k0 < k; k0 += KC) {
        const int kc = k - k0 < KC ? k - k0 : KC;
        const int acc = k0 > 0, last = k0 + kc == k;
        for (int i = m0; i < m1; i += MR) {
            const int mr = m1 - i < MR ? m1 - i : MR;
            const float *ap = a_panel(packed_a, m, k0, kc, i);
            for (int n = 0; n < w; n += NR) {
                run_tile(kc, ap, b + (long)k0 * ldb + n, ldb, c + (i - m0) * ldc + n, ldc, mr, w - n < NR ? w - n : NR,
                         acc, last, NULL, NULL, 0, 0);
            }
        }
    }
}

/// Floats ix ..< ix + 4 of an image row of W floats, zero outside it. A chunk across an edge
/// is the row's first or last 4 floats shifted, in registers (an edge copied to memory and read
/// back in other sizes stalls on store forwarding); rows under 4 floats are read one by one.
AI v4 chunk_at(const float *line, int W, int ix) {
    if (ix >= 0 && ix + 4 <= W) return *(const v4u *)(line + ix);
    const v4 z = 0.0f;
    if (ix + 4 <= 0 || ix >= W) return z;
    if (W >= 4 && ix < 0) {
        const v4 v = *(const v4u *)line;  // lane j of the chunk: v[j + ix]
        return ix == -1 ? __builtin_shufflevector(z, v, 0, 4, 5, 6)
             : ix == -2 ? __builtin_shufflevector(z, v, 0, 1, 4, 5)
                        : __builtin_shufflevector(z, v, 0, 1, 2, 4);
    }
    if (W >= 4) {
        const v4 v = *(const v4u *)(line + W - 4);  // lane j of the chunk: v[j + past]
        const int past = ix + 4 - W;
        return past == 1 ? __builtin_shufflevector(z, v, 5, 6, 7, 0)
             : past == 2 ? __builtin_shufflevector(z, v, 6, 7, 0, 1)
                         : __builtin_shufflevector(z, v, 7, 0, 1, 2);
    }
    v4 v = z;
    for (int j = 0; j < 4; j++)
        if (ix + j >= 0 && ix + j < W) v[j] = line[ix + j];
    return v;
}

/// A block of tiles [tile0, tile1) of a Winograd convolution: sizes, and per tile where its
/// patch starts in its image's first input channel (an address only when `inside`: every float
/// its chunks read lies in the image), its top-left input pixel, and its output offset in its
/// image's first output channel and extent (no rows for a lane past the block).
typedef struct {
    int PP, H, W, OW, w, width;
    long plane, oplane;
    int iy[ZK_WIDE], ix[ZK_WIDE], inside[ZK_WIDE], out_rows[ZK_WIDE], out_cols[ZK_WIDE];
    long in_offset[ZK_WIDE], out_offset[ZK_WIDE];
} wblock;

AI void block_of(const int m, int cout, int cin, int H, int W, int pad, int tile0, int tile1, wblock *b) {
    const int P = m + 2, span = m == 4 ? 8 : 4;  // floats a patch row is loaded as
    const int OH = H + 2 * pad - 2, OW = W + 2 * pad - 2;
    const int tw = (OW + m - 1) / m, T = ((OH + m - 1) / m) * tw;
    const int w = tile1 - tile0, width = (w + VL - 1) / VL * VL;
    const long plane = (long)H * W, oplane = (long)OH * OW;
    *b = (wblock){.PP = P * P, .H = H, .W = W, .OW = OW, .w = w, .width = width, .plane = plane, .oplane = oplane};
    for (int t = 0; t < width; t++) {
        const int g = tile0 + t < tile1 ? tile0 + t : -1;
        const int im = g < 0 ? 0 : g / T, s = g < 0 ? 0 : g % T, ty = s / tw, tx = s % tw;
        b->iy[t] = m * ty - pad;
        b->ix[t] = m * tx - pad;
        b->in_offset[t] = (long)im * cin * plane + (long)b->iy[t] * W + b->ix[t];
        b->inside[t] = g >= 0 && b->iy[t] >= 0 && b->ix[t] >= 0 && b->iy[t] + P <= H && b->ix[t] + span <= W;
        b->out_offset[t] = im * cout * oplane + (long)(m * ty) * OW + m * tx;
        b->out_rows[t] = g < 0 ? 0 : OH - m * ty < m ? OH - m * ty : m;
        b->out_cols[t] = g < 0 ? 0 : OW - m * tx < m ? OW - m * tx : m;
    }
}

/// Input transform of channels [c0, c1): V[xi][c][t] = (B^T d B)[xi], V [P * P][cin][width].
AI void input_transform(const int m, const wblock *b, int cin, const float *x, int c0, int c1, float *V) {
    const int P = m + 2, H = b->H, W = b->W, width = b->width;
    const size_t step = (size_t)cin * width;
    for (int c = c0; c < c1; c++) {
        const float *chan = x + (long)c * b->plane;
        for (int v = 0; v < width; v += VL) {
            vf e[PMAX][PMAX];
            for (int r = 0; r < P; r++) {
                // Lane 4g + k: tile v + 4g + k's row r as chunks lo (columns 0..3), hi (4..7).
                // (Unrolled, so that the chunks stay in registers: spilled as 4 floats and read
                // back as a vector, they stall on store forwarding.)
                v4 lo[4][G], hi[4][G];
#pragma clang loop unroll(full)
                for (int g = 0; g < G; g++)
#pragma clang loop unroll(full)
                    for (int k = 0; k < 4; k++) {
                        const int t = v + 4 * g + k;
                        const long at = b->in_offset[t] + (long)r * W;
                        if (b->inside[t]) {
                            lo[k][g] = *(const v4u *)(chan + at);
                            if (m == 4) hi[k][g] = *(const v4u *)(chan + at + 4);
                        } else if (b->out_rows[t] > 0 && b->iy[t] + r >= 0 && b->iy[t] + r < H) {
                            const float *line = chan + (at - b->ix[t]);
                            lo[k][g] = chunk_at(line, W, b->ix[t]);
                            if (m == 4) hi[k][g] = chunk_at(line, W, b->ix[t] + 4);
                        } else {
                            lo[k][g] = 0.0f;
                            if (m == 4) hi[k][g] = 0.0f;
                        }
                    }
                vf a[4], d[PMAX];
                for (int k = 0; k < 4; k++) a[k] = join_groups(lo[k]);
                transpose4(a, d);
                if (m == 4) {
                    vf bq[4], q[4];
                    for (int k = 0; k < 4; k++) bq[k] = join_groups(hi[k]);
                    transpose4(bq, q);
                    d[4] = q[0];
                    d[5] = q[1];
                }
                input_1d(m, d, e[r]);
            }
            float *out = V + (size_t)c * width + v;
            for (int j = 0; j < P; j++) {
                vf d[PMAX], r[PMAX];
                for (int i = 0; i < P; i++) d[i] = e[i][j];
                input_1d(m, d, r);
                for (int i = 0; i < P; i++) store(out + (size_t)(i * P + j) * step, r[i]);
            }
        }
    }
}

/// Output channels [m0, m1) of the block from its V: the P * P products into M
/// [P * P][m1 - m0][width], then the output transform with the epilogue.
AI void multiply_output(const int m, const wblock *b, const float *transformed, int cout, int cin, const float *V,
                        int m0, int m1, float *M, float *y, const zk_epilogue *ep) {
    const int P = m + 2, OW = b->OW, w = b->w, width = b->width, mm = m1 - m0;
    const long oplane = b->oplane;
    const size_t packed = (size_t)((cout + MR - 1) / MR) * MR * cin, step = (size_t)cin * width;
    for (int xi = 0; xi < P * P; xi++)
        gemm_block(transformed + xi * packed, cout, cin, m0, m1, V + (size_t)xi * step, width, w,
                   M + (size_t)xi * mm * width, width);

    // Output transform with the epilogue.
    const float *bias = ep ? ep->bias : NULL;
    const float *res = ep ? ep->residual : NULL;
    const int relu = ep ? ep->relu : 0;
    const size_t ostep = (size_t)mm * width;
    for (int o = m0; o < m1; o++) {
        const vf bv = splat(bias ? bias[o] : 0.0f);
        for (int v = 0; v < width && v < w; v += VL) {
            const float *src = M + (size_t)(o - m0) * width + v;
            vf t[4][PMAX], s[4][4];
            for (int j = 0; j < P; j++) {
                vf col[PMAX], u[4];
                for (int r = 0; r < P; r++) col[r] = load(src + (size_t)(r * P + j) * ostep);
                output_1d(m, col, u);
                for (int i = 0; i < m; i++) t[i][j] = u[i];
            }
            for (int i = 0; i < m; i++) {
                output_1d(m, t[i], s[i]);
                for (int j = 0; j < m; j++) s[i][j] += bv;
                for (int j = m; j < 4; j++) s[i][j] = splat(0.0f);
            }
            for (int i = 0; i < m; i++) {
                // Chunk k of group g of q: row i of tile v + 4g + k, its m floats first.
                vf q[4];
                transpose4(s[i], q);
                for (int g = 0; g < G; g++)
                    for (int k = 0; k < 4; k++) {
                        const int tile = v + 4 * g + k, cols = b->out_cols[tile];
                        if (i >= b->out_rows[tile]) continue;
                        const long at = b->out_offset[tile] + (long)o * oplane + (long)i * OW;
                        v4 value = group_of(q[k], g);
                        if (cols == 4) {
                            if (res) value += *(const v4u *)(res + at);
                            if (relu) value = (v4)((v4i)value & ~(value < 0));  // NaN stays, as below
                            *(v4u *)(y + at) = value;
                        } else {
                            for (int j = 0; j < cols; j++) {
                                float one = value[j];
                                if (res) one += res[at + j];
                                if (relu && one < 0) one = 0;
                                y[at + j] = one;
                            }
                        }
                    }
            }
        }
    }
}

AI void winograd(const int m, const float *transformed, int cout, int cin, const float *x, int H, int W, int pad,
                 int tile0, int tile1, int m0, int m1, float *y, const zk_epilogue *ep) {
    wblock b;
    block_of(m, cout, cin, H, W, pad, tile0, tile1, &b);
    float *V = zk_scratch(ZK_SCRATCH_WINOGRAD, (size_t)b.PP * b.width * (cin + (m1 - m0)));
    if (!V) return;
    input_transform(m, &b, cin, x, 0, cin, V);
    multiply_output(m, &b, transformed, cout, cin, V, m0, m1, V + (size_t)b.PP * cin * b.width, y, ep);
}

TGT void NAME(winograd)(const float *transformed, int cout, int cin, const float *x, int H, int W, int pad, int tile0,
                        int tile1, int m0, int m1, float *y, const zk_epilogue *ep) {
    winograd(4, transformed, cout, cin, x, H, W, pad, tile0, tile1, m0, m1, y, ep);
}

TGT void NAME(winograd2)(const float *transformed, int cout, int cin, const float *x, int H, int W, int pad, int tile0,
                         int tile1, int m0, int m1, float *y, const zk_epilogue *ep) {
    winograd(2, transformed, cout, cin, x, H, W, pad, tile0, tile1, m0, m1, y, ep);
}

TGT long NAME(winograd_v_count)(int m, int cin, int tiles) {
    return (long)(m + 2) * (m + 2) * cin * ((tiles + VL - 1) / VL * VL);
}

TGT void NAME(winograd_input)(int m, int cin, const float *x, int H, int W, int pad, int tile0, int tile1, int c0, int c1,
                              float *v) {
    wblock b;
    block_of(m == 4 ? 4 : 2, 0, cin, H, W, pad, tile0, tile1, &b);
    if (m == 4) input_transform(4, &b, cin, x, c0, c1, v);
    else input_transform(2, &b, cin, x, c0, c1, v);
}

TGT void NAME(winograd_output)(int m, const float *transformed, int cout, int cin, const float *v, int H, int W, int pad,
                               int tile0, int tile1, int m0, int m1, float *y, const zk_epilogue *ep) {
    wblock b;
    block_of(m == 4 ? 4 : 2, cout, cin, H, W, pad, tile0, tile1, &b);
    float *M = zk_scratch(ZK_SCRATCH_WINOGRAD, (size_t)b.PP * b.width * (m1 - m0));
    if (!M) return;
    if (m == 4) multiply_output(4, &b, transformed, cout, cin, v, m0, m1, M, y, ep);
    else multiply_output(2, &b, transformed, cout, cin, v, m0, m1, M, y, ep);
}

// ---------------------------------------------------------------------------------------
// Small-batch Linear (see linear.c): R rows of W times B images in registers, K in L1 chunks.

enum { LINEAR_CHUNK = 1024 };

AI void linear_block(const int R, const int B, const float *w, long ldw, const float *x, long ldx, int kc, float *y,
                     long ldy) {
    vf acc[R][B];
    for (int r = 0; r < R; r++)
        for (int b = 0; b < B; b++) acc[r][b] = splat(0.0f);
    int k = 0;
    for (; k + VL <= kc; k += VL) {
        vf xv[B];
        for (int b = 0; b < B; b++) xv[b] = load(x + b * ldx + k);
        for (int r = 0; r < R; r++) {
            const vf wv = load(w + r * ldw + k);
            for (int b = 0; b < B; b++) acc[r][b] = fma_(wv, xv[b], acc[r][b]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int b = 0; b < B; b++) {
            float sum = 0;
            for (int l = 0; l < VL; l++) sum += acc[r][b][l];
            for (int kk = k; kk < kc; kk++) sum += w[r * ldw + kk] * x[b * ldx + kk];
            y[b * ldy + r] += sum;
        }
}

#define LIN_R(B) (ACC / (B) > 0 ? ACC / (B) : 1)

TGT void NAME(linear)(const float *w, const float *bias, const float *x, float *y, int n, int in, int out, int o0,
                      int o1) {
    for (int b = 0; b < n; b++)
        for (int o = o0; o < o1; o++) y[(long)b * out + o] = bias ? bias[o] : 0.0f;
    for (int b0 = 0; b0 < n; b0 += 8) {
        const int nb = n - b0 < 8 ? n - b0 : 8;
        const int R = nb == 1 ? LIN_R(1) : nb == 2 ? LIN_R(2) : nb <= 4 ? LIN_R(4) : LIN_R(8);
        const float *xb = x + (long)b0 * in;
        float *yb = y + (long)b0 * out;
        for (int k0 = 0; k0 < in; k0 += LINEAR_CHUNK) {
            const int kc = in - k0 < LINEAR_CHUNK ? in - k0 : LINEAR_CHUNK;
            int o = o0;
            for (; o + R <= o1; o += R) {
                const float *wo = w + (long)o * in + k0;
                switch (nb) {
                case 1: linear_block(LIN_R(1), 1, wo, in, xb + k0, in, kc, yb + o, out); break;
                case 2: linear_block(LIN_R(2), 2, wo, in, xb + k0, in, kc, yb + o, out); break;
                case 3: linear_block(LIN_R(4), 3, wo, in, xb + k0, in, kc, yb + o, out); break;
                case 4: linear_block(LIN_R(4), 4, wo, in, xb + k0, in, kc, yb + o, out); break;
                case 5: linear_block(LIN_R(8), 5, wo, in, xb + k0, in, kc, yb + o, out); break;
                case 6: linear_block(LIN_R(8), 6, wo, in, xb + k0, in, kc, yb + o, out); break;
                case 7: linear_block(LIN_R(8), 7, wo, in, xb + k0, in, kc, yb + o, out); break;
                default: linear_block(LIN_R(8), 8, wo, in, xb + k0, in, kc, yb + o, out); break;
                }
            }
            for (; o < o1; o++) {
                const float *wo = w + (long)o * in + k0;
                for (int b = 0; b < nb; b++)
                    linear_block(1, 1, wo, in, xb + (long)b * in + k0, in, kc, yb + (long)b * out + o, out);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Max pooling, strides 1 and 2 (pool2d.c's design): per output row the maximum over the
// window's rows into a -inf padded row, then over its columns, VL outputs at a time.

TGT void NAME(max_pool_plane)(const float *plane, float *out, int H, int W, int kernel, int stride, int padding, int oh,
                              int ow, float *row) {
    const int span = (ow - 1) * stride + kernel;
    const int width = span + 2 * VL;
    const vf ninf = splat(-INFINITY);
    for (int oy = 0; oy < oh; oy++) {
        int y0 = oy * stride - padding, y1 = y0 + kernel;
        if (y0 < 0) y0 = 0;
        if (y1 > H) y1 = H;
        for (int j = 0; j < width; j += VL) store(row + j, ninf);
        const int cols = W < span - padding ? W : span - padding;  // input columns the outputs read
        int x = 0;
        for (; x + VL <= cols; x += VL) {
            vf m = ninf;
            for (int iy = y0; iy < y1; iy++) m = max_nan(m, load(plane + (long)iy * W + x));
            store(row + x + padding, m);
        }
        for (; x < cols; x++) {
            float m = -INFINITY;
            for (int iy = y0; iy < y1; iy++) {
                const float v = plane[(long)iy * W + x];
                if (v > m || v != v) m = v;
            }
            row[x + padding] = m;
        }
        float *o = out + (long)oy * ow;
        for (int ox = 0; ox < ow; ox += VL) {
            vf m = ninf;
            for (int j = 0; j < kernel; j++) {
                const float *src = row + ox * stride + j;
                const vf v = stride == 1 ? load(src) : __builtin_shufflevector(load(src), load(src + VL), EVEN);
                m = max_nan(m, v);
            }
            if (ox + VL <= ow) {
                store(o + ox, m);
            } else {
                float tmp[VL];
                store(tmp, m);
                for (int l = 0; ox + l < ow; l++) o[ox + l] = tmp[l];
            }
        }
    }
}

#undef NR
#undef KC
#undef AI
#undef GROUPS
#undef UNPACK_LO
#undef UNPACK_HI
#undef LOW_PAIRS
#undef HIGH_PAIRS

