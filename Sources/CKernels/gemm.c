// AVX-512 GEMM for convolutions: see include/ckernels.h.
//
// Blocking (one thread): for each block of 11 48-column panels of B and each KC-row block of
// K, every 8-row panel of the pre-packed A (read in one sequential stream) runs against each
// panel in an 8 x 48 register tile (24 zmm accumulators; 16- and 32-column variants, and the
// last 1 to 8 columns of a panel in a narrow kernel, 8 rows by one column at a time). A convolution's B is packed
// from the image into a thread-local buffer (KC x 528 floats) that stays in L2; a plain matrix
// (a 1x1 convolution) is read in place. C accumulates in place between K blocks; the epilogue
// is applied in registers on the last K block.

#include "ckernels.h"
#include "internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>


#ifndef KCV
#define KCV 256
#endif
enum { MR = ZK_MR, NR = ZK_NR, KC = KCV };

#ifndef PREFETCH_C
#define PREFETCH_C 1
#endif

// zk_available, zk_packed_a_count and zk_pack_a (the layout a_panel reads) are in dispatch.c.

/// The panel of rows i ..< i + MR for the K block starting at k0 (of kc rows).
static inline __attribute__((unused)) const float *a_panel(const float *packed, int m, int k0, int kc, int i) {
    const int mpad = (m + MR - 1) / MR * MR;
    return packed + (size_t)k0 * mpad + (size_t)i * kc;
}

#if ZK_X86

/// dst[0..count) = src[0..count), count <= 48 or any: masked 16-float chunks.
TARGET INLINE void copy_floats(float *dst, const float *src, int count) {
    int j = 0;
    for (; j + 16 <= count; j += 16) _mm512_storeu_ps(dst + j, _mm512_loadu_ps(src + j));
    if (j < count) {
        __mmask16 mk = lanes(count - j);
        _mm512_mask_storeu_ps(dst + j, mk, _mm512_maskz_loadu_ps(mk, src + j));
    }
}

TARGET INLINE void zero_floats(float *dst, int count) {
    int j = 0;
    __m512 z = _mm512_setzero_ps();
    for (; j + 16 <= count; j += 16) _mm512_storeu_ps(dst + j, z);
    if (j < count) _mm512_mask_storeu_ps(dst + j, lanes(count - j), z);
}

/// Most rows copy_stride2_rows builds from one window: row kj reads window floats 2i + kj, i < 16,
/// up to 47.
enum { MAX_ROWS2 = 17 };

/// `rows` rows of B of a stride-2 convolution that read the same input row (a kernel row's, kj =
/// 0 ..< rows; or one row), over `seg` outputs: row kj gets line[ix0 + kj + 2t] for t < seg where
/// that lies inside the row (0 <= . < W), else 0; the rows are `pitch` floats apart. `line` is NULL
/// for an input row outside the image (all zeros). Each 16 outputs load the 48-float window they
/// share once (padding masked to 0) and take every row's even lanes from it: rows <= MAX_ROWS2. Packing
/// a kernel row at once, not row by row, measured 0.78-0.82 on ResNet's 7x7 stem and 0.84-0.94 on
/// its 3x3 stride-2 layers.
TARGET INLINE void copy_stride2_rows(const float *line, int W, int ix0, int seg, int rows, float *out, long pitch) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    for (int t = 0; t < seg; t += 16) {
        const __mmask16 keep = lanes(seg - t);
        if (!line) {
            for (int kj = 0; kj < rows; kj++) _mm512_mask_storeu_ps(out + kj * pitch + t, keep, _mm512_setzero_ps());
            continue;
        }
        // v[q] lane e: line[e0 + e], e0 = ix0 + 2t + 16q, where inside the row (v[2] only for rows > 2).
        __m512 v[3];
        v[2] = _mm512_setzero_ps();
        for (int q = 0; q < (rows > 2 ? 3 : 2); q++) {
            const int e0 = ix0 + 2 * t + 16 * q, lo = e0 < 0 ? -e0 : 0;
            const __mmask16 inside = lanes(W - e0) & (__mmask16)~lanes(lo);
            // The address of lane 0 may lie outside the row; masked lanes are not read.
            v[q] = inside ? _mm512_maskz_loadu_ps(inside, (const float *)((uintptr_t)line + (intptr_t)e0 * 4)) : _mm512_setzero_ps();
        }
        for (int kj = 0; kj < rows; kj++) {
            // Lane i of row kj: window float 2i + kj, in v[0..1] below 32, in v[2] from there.
            const __m512i at = _mm512_add_epi32(even, _mm512_set1_epi32(kj));
            __m512 row = _mm512_permutex2var_ps(v[0], at, v[1]);
            if (kj >= 2) {
                const __mmask16 high = (__mmask16)~lanes((33 - kj) / 2);
                row = _mm512_mask_permutexvar_ps(row, high, _mm512_sub_epi32(at, _mm512_set1_epi32(32)), v[2]);
            }
            _mm512_mask_storeu_ps(out + kj * pitch + t, keep, row);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Packing one panel of B: rows k0 ..< k0 + kc, columns n ..< n + w, into rows of `width`
// floats (w rounded up to a multiple of 16, the tail zeroed).

TARGET static void pack_conv(const zk_conv_input *in, int k0, int kc, int n, int w, int width, float *dst) {
    const int kk = in->kernel * in->kernel, ks = in->kernel;
    const int s = in->stride, pad = in->padding, d = in->dilation;
    const int H = in->height, W = in->width, ow = in->out_width;
    const int oy0 = n / ow, ox0 = n % ow;
    int ch = k0 / kk, rem = k0 % kk;
    int ki = rem / ks, kj = rem % ks;
    for (int r = 0; r < kc;) {
        const float *plane = in->data + (long)ch * H * W;
        float *out = dst + (long)r * width;
        // Stride 2: a whole kernel row at once (ks rows of B that read the same input row) where
        // the block holds it; otherwise one row.
        const int rows = s == 2 && d == 1 && kj == 0 && r + ks <= kc && ks <= MAX_ROWS2 ? ks : 1;
        int oy = oy0, ox = ox0, j = 0;
        while (j < w) {
            const int seg = w - j < ow - ox ? w - j : ow - ox, iy = oy * s - pad + ki * d;
            const int ix0 = ox * s - pad + kj * d;
            const float *line = iy < 0 || iy >= H ? NULL : plane + (long)iy * W;
            float *o = out + j;
            if (s == 2) {
                copy_stride2_rows(line, W, ix0, seg, rows, o, width);
            } else if (!line) {
                zero_floats(o, seg);
            } else if (s == 1) {
                int lo = ix0 < 0 ? -ix0 : 0;
                int hi = W - ix0 < seg ? W - ix0 : seg;
                if (lo > seg) lo = seg;
                if (hi < lo) hi = lo;
                zero_floats(o, lo);
                copy_floats(o + lo, line + ix0 + lo, hi - lo);
                zero_floats(o + hi, seg - hi);
            } else {
                for (int t = 0; t < seg; t++) {
                    int ix = ix0 + t * s;
                    o[t] = ix >= 0 && ix < W ? line[ix] : 0.0f;
                }
            }
            j += seg;
            ox = 0;
            oy++;
        }
        for (int row = 0; row < rows; row++) zero_floats(out + (long)row * width + w, width - w);
        r += rows;
        kj += rows;  // rows is ks only from kj == 0
        if (kj == ks) {
            kj = 0;
            if (++ki == ks) {
                ki = 0;
                ch++;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The 8 x (16 * NV) register tile.

TARGET INLINE void tile(const int NV, int kc, const float *restrict a, const float *restrict b, long ldb, float *c, long ldc,
                        int mr, int nr, int accumulate, int last, const float *bias, const float *res, long ldr,
                        int relu) {
    const __mmask16 m_last = lanes(nr - 16 * (NV - 1));
    __m512 acc0[MR], acc1[MR], acc2[MR];
    for (int i = 0; i < MR; i++) {
        acc0[i] = _mm512_setzero_ps();
        if (NV > 1) acc1[i] = _mm512_setzero_ps();
        if (NV > 2) acc2[i] = _mm512_setzero_ps();
    }
    // Bring in what the stores will read (C to accumulate, the residual) while the products run.
    if (PREFETCH_C) {
        for (int i = 0; i < mr; i++) {
            const float *p = c + i * ldc;
            _mm_prefetch((const char *)p, _MM_HINT_ET0);
            if (NV > 1) _mm_prefetch((const char *)(p + 16), _MM_HINT_ET0);
            if (NV > 2) _mm_prefetch((const char *)(p + 32), _MM_HINT_ET0);
            if (last && res) {
                _mm_prefetch((const char *)(res + i * ldr), _MM_HINT_T0);
                if (NV > 1) _mm_prefetch((const char *)(res + i * ldr + 16), _MM_HINT_T0);
                if (NV > 2) _mm_prefetch((const char *)(res + i * ldr + 32), _MM_HINT_T0);
            }
        }
    }
    for (int k = 0; k < kc; k++) {
        // The last vector of a partial tile reads only its columns (B read in place has no padding).
        __m512 b0 = NV == 1 ? _mm512_maskz_loadu_ps(m_last, b) : _mm512_loadu_ps(b), b1, b2;
        if (NV > 1) b1 = NV == 2 ? _mm512_maskz_loadu_ps(m_last, b + 16) : _mm512_loadu_ps(b + 16);
        if (NV > 2) b2 = _mm512_maskz_loadu_ps(m_last, b + 32);
        for (int i = 0; i < MR; i++) {
            __m512 av = _mm512_set1_ps(a[i]);
            acc0[i] = _mm512_fmadd_ps(av, b0, acc0[i]);
            if (NV > 1) acc1[i] = _mm512_fmadd_ps(av, b1, acc1[i]);
            if (NV > 2) acc2[i] = _mm512_fmadd_ps(av, b2, acc2[i]);
        }
        _mm_prefetch((const char *)(a + 16 * MR), _MM_HINT_T0);
        a += MR;
        b += ldb;
    }
    const __mmask16 m0 = lanes(nr), m1 = lanes(nr - 16), m2 = lanes(nr - 32);
    const __m512 zero = _mm512_setzero_ps();
    for (int i = 0; i < MR; i++) {
        if (i >= mr) break;
        float *row = c + i * ldc;
        __m512 v0 = acc0[i], v1 = zero, v2 = zero;
        if (NV > 1) v1 = acc1[i];
        if (NV > 2) v2 = acc2[i];
        if (accumulate) {
            v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, row));
            if (NV > 1) v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, row + 16));
            if (NV > 2) v2 = _mm512_add_ps(v2, _mm512_maskz_loadu_ps(m2, row + 32));
        }
        if (last) {
            if (bias) {
                __m512 bv = _mm512_set1_ps(bias[i]);
                v0 = _mm512_add_ps(v0, bv);
                if (NV > 1) v1 = _mm512_add_ps(v1, bv);
                if (NV > 2) v2 = _mm512_add_ps(v2, bv);
            }
            if (res) {
                const float *rr = res + i * ldr;
                v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, rr));
                if (NV > 1) v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, rr + 16));
                if (NV > 2) v2 = _mm512_add_ps(v2, _mm512_maskz_loadu_ps(m2, rr + 32));
            }
            if (relu) {
                v0 = _mm512_max_ps(v0, zero);
                if (NV > 1) v1 = _mm512_max_ps(v1, zero);
                if (NV > 2) v2 = _mm512_max_ps(v2, zero);
            }
        }
        _mm512_mask_storeu_ps(row, m0, v0);
        if (NV > 1) _mm512_mask_storeu_ps(row + 16, m1, v1);
        if (NV > 2) _mm512_mask_storeu_ps(row + 32, m2, v2);
    }
}

TARGET static void tile1(int kc, const float *a, const float *b, long ldb, float *c, long ldc, int mr, int nr, int accumulate,
                         int last, const float *bias, const float *res, long ldr, int relu) {
    tile(1, kc, a, b, ldb, c, ldc, mr, nr, accumulate, last, bias, res, ldr, relu);
}
TARGET static void tile2(int kc, const float *a, const float *b, long ldb, float *c, long ldc, int mr, int nr, int accumulate,
                         int last, const float *bias, const float *res, long ldr, int relu) {
    tile(2, kc, a, b, ldb, c, ldc, mr, nr, accumulate, last, bias, res, ldr, relu);
}
TARGET static void tile3(int kc, const float *a, const float *b, long ldb, float *c, long ldc, int mr, int nr, int accumulate,
                         int last, const float *bias, const float *res, long ldr, int relu) {
    tile(3, kc, a, b, ldb, c, ldc, mr, nr, accumulate, last, bias, res, ldr, relu);
}

/// The last few columns of a tile (R <= 8): C[0..mr, 0..R) from the 8 rows of the A panel as one
/// 8-float vector per K step, times each column's B broadcast, in (R <= 4 ? 4 : 2) partial sums
/// over K so the FMAs do not wait on each other. A 16-lane tile would spend 16 lanes per column.
TARGET INLINE void columns(const int R, int kc, const float *restrict a, const float *restrict b, long ldb, float *c,
                           long ldc, int mr, int accumulate, int last, const float *bias, const float *res, long ldr,
                           int relu) {
    enum { U = 4 };
    const int parts = R <= 4 ? 4 : 2;
    __m256 acc[U][8];
    for (int u = 0; u < U; u++)
        for (int j = 0; j < R; j++) acc[u][j] = _mm256_setzero_ps();
    int k = 0;
    for (; k + parts <= kc; k += parts) {
        for (int u = 0; u < parts; u++) {
            const __m256 av = _mm256_loadu_ps(a + (k + u) * MR);
            const float *row = b + (k + u) * ldb;
            for (int j = 0; j < R; j++) acc[u][j] = _mm256_fmadd_ps(av, _mm256_set1_ps(row[j]), acc[u][j]);
        }
    }
    for (; k < kc; k++) {
        const __m256 av = _mm256_loadu_ps(a + k * MR);
        for (int j = 0; j < R; j++) acc[0][j] = _mm256_fmadd_ps(av, _mm256_set1_ps(b[k * ldb + j]), acc[0][j]);
    }
    for (int j = 0; j < R; j++) {
        __m256 sum = acc[0][j];
        for (int u = 1; u < parts; u++) sum = _mm256_add_ps(sum, acc[u][j]);
        float column[MR];
        _mm256_storeu_ps(column, sum);
        zk_store_column(column, c + j, ldc, mr, accumulate, last, bias, res ? res + j : NULL, ldr, relu);
    }
}

ZK_COLUMNS_FN(TARGET, 1) ZK_COLUMNS_FN(TARGET, 2) ZK_COLUMNS_FN(TARGET, 3) ZK_COLUMNS_FN(TARGET, 4)
ZK_COLUMNS_FN(TARGET, 5) ZK_COLUMNS_FN(TARGET, 6) ZK_COLUMNS_FN(TARGET, 7) ZK_COLUMNS_FN(TARGET, 8)
static const zk_columns_fn columns_of[9] = {NULL,      columns1, columns2, columns3, columns4,
                                         columns5, columns6, columns7, columns8};

/// One tile of w <= 48 columns: whole 16-column vectors in the register tile, and a rest of up to
/// 8 columns (the 1 of a 7x7 map's 49, the 4 of 14x14's 196) in `columns`; a wider rest is a
/// masked vector of the tile.
TARGET static void run_tile(int kc, const float *a, const float *b, long ldb, float *c, long ldc, int mr, int w,
                            int accumulate, int last, const float *bias, const float *res, long ldr, int relu) {
    const int rest = w % 16 <= 8 ? w % 16 : 0, whole = w - rest;
    switch ((whole + 15) / 16) {
    case 3: tile3(kc, a, b, ldb, c, ldc, mr, whole, accumulate, last, bias, res, ldr, relu); break;
    case 2: tile2(kc, a, b, ldb, c, ldc, mr, whole, accumulate, last, bias, res, ldr, relu); break;
    case 1: tile1(kc, a, b, ldb, c, ldc, mr, whole, accumulate, last, bias, res, ldr, relu); break;
    default: break;
    }
    if (rest) columns_of[rest](kc, a, b + whole, ldb, c + whole, ldc, mr, accumulate, last, bias,
                               res ? res + whole : NULL, ldr, relu);
}

// ---------------------------------------------------------------------------------------

/// Column panels per B block: KC x NC floats (528 KB) stay in L2 while each 8-row panel of A,
/// in L1, runs against all of them, so A is read once per NC columns.
enum { NC_PANELS = 11, NC = NC_PANELS * NR };

TARGET static void drive(const float *packed_a, int m, int k, int m0, int m1, const zk_conv_input *conv, const float *b,
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
            // A convolution's B is packed from the image; a plain matrix is read in place.
            for (int p = 0; conv && p < panels; p++) {
                const int n = nb + p * NR, w = n1 - n < NR ? n1 - n : NR, nv = (w + 15) / 16;
                pack_conv(conv, k0, kc, n, w, nv * 16, buf + (long)p * kc * NR);
            }
            const int acc = k0 > 0, last = k0 + kc == k;
            for (int i = m0; i < m1; i += MR) {
                const int mr = m1 - i < MR ? m1 - i : MR;
                const float *ap = a_panel(packed_a, m, k0, kc, i);
                const float *bp = bias ? bias + i : NULL;
                for (int p = 0; p < panels; p++) {
                    const int n = nb + p * NR, w = n1 - n < NR ? n1 - n : NR, nv = (w + 15) / 16;
                    const float *panel = conv ? buf + (long)p * kc * NR : b + (long)k0 * ldb + n;
                    const long ldp = conv ? nv * 16 : ldb;
                    float *cp = c + i * ldc + n;
                    const float *rp = res ? res + i * ldr + n : NULL;
                    run_tile(kc, ap, panel, ldp, cp, ldc, mr, w, acc, last, bp, rp, ldr, relu);
                }
            }
        }
    }
}

/// C = packedA * B for one B panel already in the packed layout: k rows of 16 * nv floats.
/// Used by the Winograd path, whose input transform writes its panels directly.
void zk_gemm_panel(const float *packed_a, int m, int k, int m0, int m1, const float *panel, int w, float *c, long ldc) {
    const int nv = (w + 15) / 16;
    for (int k0 = 0; k0 < k; k0 += KC) {
        const int kc = k - k0 < KC ? k - k0 : KC;
        const float *bp = panel + (long)k0 * nv * 16;
        const int acc = k0 > 0, last = k0 + kc == k;
        for (int i = m0; i < m1; i += MR) {
            const int mr = m1 - i < MR ? m1 - i : MR;
            const float *ap = a_panel(packed_a, m, k0, kc, i);
            float *cp = c + (i - m0) * ldc;
            switch (nv) {
            case 3: tile3(kc, ap, bp, nv * 16, cp, ldc, mr, w, acc, last, NULL, NULL, 0, 0); break;
            case 2: tile2(kc, ap, bp, nv * 16, cp, ldc, mr, w, acc, last, NULL, NULL, 0, 0); break;
            default: tile1(kc, ap, bp, nv * 16, cp, ldc, mr, w, acc, last, NULL, NULL, 0, 0); break;
            }
        }
    }
}

void zk512_conv_gemm(const float *packed_a, int m, int k, int m0, int m1, const zk_conv_input *input, int n0, int n1,
                  float *c, long ldc, const zk_epilogue *epilogue) {
    drive(packed_a, m, k, m0, m1, input, NULL, 0, n0, n1, c, ldc, epilogue);
}

void zk512_gemm(const float *packed_a, int m, int k, int m0, int m1, const float *b, long ldb, int n0, int n1, float *c,
             long ldc, const zk_epilogue *epilogue) {
    drive(packed_a, m, k, m0, m1, NULL, b, ldb, n0, n1, c, ldc, epilogue);
}

#else  // not x86-64: dispatch.c never calls these.

void zk_gemm_panel(const float *packed_a, int m, int k, int m0, int m1, const float *panel, int w, float *c, long ldc) {}
void zk512_conv_gemm(const float *packed_a, int m, int k, int m0, int m1, const zk_conv_input *input, int n0, int n1,
                  float *c, long ldc, const zk_epilogue *epilogue) {}
void zk512_gemm(const float *packed_a, int m, int k, int m0, int m1, const float *b, long ldb, int n0, int n1, float *c,
             long ldc, const zk_epilogue *epilogue) {}

#endif
