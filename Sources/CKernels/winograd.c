// Winograd F(4x4, 3x3) (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks",
// 2015): a 4x4 output tile from a 6x6 input tile with 36 multiplications per input/output
// channel pair instead of 144.
//
//   Y = A^T [ (G g G^T) (.) (B^T d B) ] A, summed over input channels,
//
// which for all channels at once is 36 GEMMs: M[xi] = U[xi] [cout, cin] * V[xi] [cin, tiles].
// Tiles are processed in blocks of up to 48 (one GEMM panel): the input transform gathers 16
// tiles per vector and writes V straight into packed-panel layout, the GEMMs run through
// zk_gemm_panel, and the output transform applies bias, residual and ReLU before storing 4-float
// rows of each tile. Transformed weights are computed in double once, at load.

#include "ckernels.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#if ZK_X86

enum { TILES = ZK_NR, VECS = ZK_NR / 16 };

// Tile numbering. Each image's 4x4 output tiles are numbered in "slots". On maps at least 12
// tiles wide each tile row is cut into runs of at most 16 consecutive tiles, each run owning
// 16 slots (the rest dead): a vector of 16 slots is then one run, whose 6x6 input patches are
// read with contiguous row loads and shuffles. On narrower maps slots are simply the tiles,
// row by row (a run there would leave most lanes dead), and the patches are gathered.
typedef struct {
    int tw, th, runs, run_len, slots;
} tiling;

static tiling tiling_for(int oh, int ow) {
    tiling t;
    t.tw = (ow + 3) / 4;
    t.th = (oh + 3) / 4;
    if (t.tw >= 12) {
        t.runs = (t.tw + 15) / 16;
        t.run_len = (t.tw + t.runs - 1) / t.runs;
        t.slots = t.th * t.runs * 16;
    } else {
        t.runs = 0;
        t.run_len = 0;
        t.slots = t.th * t.tw;
    }
    return t;
}

/// The tile of slot `s` of an image: 1 and its row and column, or 0 for a dead slot.
static int slot_tile(const tiling *t, int s, int *ty, int *tx) {
    if (!t->runs) {
        *ty = s / t->tw;
        *tx = s % t->tw;
        return 1;
    }
    const int per_row = t->runs * 16, rem = s % per_row, lane = rem % 16;
    *ty = s / per_row;
    *tx = (rem / 16) * t->run_len + lane;
    return lane < t->run_len && *tx < t->tw;
}

int zk512_winograd_tiles(int oh, int ow) { return tiling_for(oh, ow).slots; }

// G g G^T, 16 input channels at a time (float32: G's entries 1/4, 1/6, 1/12, 1/24 round the
// weights by about 1e-7, far below the transform's own error).
TARGET void zk512_winograd_transform(const float *weight, int cout, int cin, float *u, int o0, int o1) {
    static const float G[6][3] = {
        {1.0f / 4, 0, 0},
        {-1.0f / 6, -1.0f / 6, -1.0f / 6},
        {-1.0f / 6, 1.0f / 6, -1.0f / 6},
        {1.0f / 24, 1.0f / 12, 1.0f / 6},
        {1.0f / 24, -1.0f / 12, 1.0f / 6},
        {0, 0, 1},
    };
    const __m512i nine = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                            _mm512_set1_epi32(9));
    for (int o = o0; o < o1; o++) {
        for (int i = 0; i < cin; i += 16) {
            const __mmask16 mk = cin - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (cin - i)) - 1);
            const float *g = weight + ((size_t)o * cin + i) * 9;
            __m512 gv[9];
            for (int e = 0; e < 9; e++)
                gv[e] = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), mk, _mm512_add_epi32(nine, _mm512_set1_epi32(e)), g, 4);
            __m512 t[6][3];
            for (int r = 0; r < 6; r++)
                for (int c = 0; c < 3; c++)
                    t[r][c] = _mm512_fmadd_ps(_mm512_set1_ps(G[r][0]), gv[c],
                                              _mm512_fmadd_ps(_mm512_set1_ps(G[r][1]), gv[3 + c],
                                                              _mm512_mul_ps(_mm512_set1_ps(G[r][2]), gv[6 + c])));
            for (int r = 0; r < 6; r++)
                for (int c = 0; c < 6; c++) {
                    __m512 v = _mm512_fmadd_ps(t[r][0], _mm512_set1_ps(G[c][0]),
                                               _mm512_fmadd_ps(t[r][1], _mm512_set1_ps(G[c][1]),
                                                               _mm512_mul_ps(t[r][2], _mm512_set1_ps(G[c][2]))));
                    _mm512_mask_storeu_ps(u + ((size_t)(r * 6 + c) * cout + o) * cin + i, mk, v);
                }
        }
    }
}

/// r = B^T d for one column of six vectors.
#define INPUT_1D(d0, d1, d2, d3, d4, d5, r0, r1, r2, r3, r4, r5)                              \
    do {                                                                                        \
        __m512 four = _mm512_set1_ps(4.0f), five = _mm512_set1_ps(5.0f), two = _mm512_set1_ps(2.0f); \
        __m512 t1 = _mm512_fnmadd_ps(four, d2, d4), t2 = _mm512_fnmadd_ps(four, d1, d3);        \
        __m512 t3 = _mm512_sub_ps(d4, d2), t4 = _mm512_mul_ps(two, _mm512_sub_ps(d3, d1));     \
        r0 = _mm512_add_ps(_mm512_fnmadd_ps(five, d2, _mm512_mul_ps(four, d0)), d4);           \
        r1 = _mm512_add_ps(t1, t2);                                                             \
        r2 = _mm512_sub_ps(t1, t2);                                                             \
        r3 = _mm512_add_ps(t3, t4);                                                             \
        r4 = _mm512_sub_ps(t3, t4);                                                             \
        r5 = _mm512_add_ps(_mm512_fnmadd_ps(five, d3, _mm512_mul_ps(four, d1)), d5);           \
    } while (0)

/// s = A^T m for one column of six vectors.
#define OUTPUT_1D(m0, m1, m2, m3, m4, m5, s0, s1, s2, s3)                                      \
    do {                                                                                        \
        __m512 a = _mm512_add_ps(m1, m2), b = _mm512_sub_ps(m1, m2);                           \
        __m512 c = _mm512_add_ps(m3, m4), d = _mm512_sub_ps(m3, m4);                           \
        s0 = _mm512_add_ps(_mm512_add_ps(m0, a), c);                                            \
        s1 = _mm512_fmadd_ps(_mm512_set1_ps(2.0f), d, b);                                       \
        s2 = _mm512_fmadd_ps(_mm512_set1_ps(4.0f), c, a);                                       \
        s3 = _mm512_add_ps(_mm512_fmadd_ps(_mm512_set1_ps(8.0f), d, b), m5);                   \
    } while (0)

TARGET static inline __mmask16 in_range(__m512i v, int limit) {
    // 0 <= v < limit
    return _mm512_cmpge_epi32_mask(v, _mm512_setzero_si512()) & _mm512_cmplt_epi32_mask(v, _mm512_set1_epi32(limit));
}

TARGET void zk512_winograd(const float *transformed, int cout, int cin, const float *x, int H, int W, int pad, int tile0,
                        int tile1, int m0, int m1, float *y, const zk_epilogue *ep) {
    const int OH = H + 2 * pad - 2, OW = W + 2 * pad - 2;
    const tiling tl = tiling_for(OH, OW);
    const int T = tl.slots;
    const int w = tile1 - tile0, nv = (w + 15) / 16, width = nv * 16, mm = m1 - m0;
    const long plane = (long)H * W, oplane = (long)OH * OW;
    const size_t packed = zk_packed_a_count(ZK_AVX512, cout, cin);
    float *V = zk_scratch(ZK_SCRATCH_WINOGRAD, (size_t)36 * width * (cin + mm));
    if (!V) return;
    float *M = V + (size_t)36 * cin * width;

    // Per slot: where its 6x6 input patch starts, which patch rows and columns are inside the
    // image, and where its 4x4 output tile goes (no rows for a dead slot). A vector that is one
    // run ("contiguous") is read by rows instead: from image `run_image`, patch rows starting
    // at run_y, columns from run_x.
    __m512i in_offset[VECS];
    __mmask16 row_in[VECS][6], col_in[VECS][6];
    int contiguous[VECS], run_image[VECS], run_y[VECS], run_x[VECS];
    __mmask16 run_cols[VECS][5];
    int out_offset[TILES], out_rows[TILES], out_cols[TILES];
    for (int v = 0; v < nv; v++) {
        int img[16], iy[16], ix[16];
        __mmask16 valid = 0;
        for (int l = 0; l < 16; l++) {
            const int g = tile0 + v * 16 + l, t = v * 16 + l;
            int ty = 0, tx = 0, im = 0, live = 0;
            if (g < tile1) {
                im = g / T;
                live = slot_tile(&tl, g % T, &ty, &tx);
            }
            if (live) valid |= (__mmask16)(1u << l);
            img[l] = im;
            iy[l] = 4 * ty - pad;
            ix[l] = 4 * tx - pad;
            out_offset[t] = (int)(im * cout * oplane + (long)(4 * ty) * OW + 4 * tx);
            out_rows[t] = !live ? 0 : OH - 4 * ty < 4 ? OH - 4 * ty : 4;
            out_cols[t] = !live ? 0 : OW - 4 * tx < 4 ? OW - 4 * tx : 4;
        }
        __m512i vy = _mm512_loadu_si512(iy), vx = _mm512_loadu_si512(ix), vi = _mm512_loadu_si512(img);
        in_offset[v] = _mm512_add_epi32(_mm512_mullo_epi32(vi, _mm512_set1_epi32((int)(cin * plane))),
                                        _mm512_add_epi32(_mm512_mullo_epi32(vy, _mm512_set1_epi32(W)), vx));
        for (int r = 0; r < 6; r++) {
            row_in[v][r] = valid & in_range(_mm512_add_epi32(vy, _mm512_set1_epi32(r)), H);
            col_in[v][r] = in_range(_mm512_add_epi32(vx, _mm512_set1_epi32(r)), W);
        }
        // One run: the slots start a run (slot numbers a multiple of 16) in rows mode.
        contiguous[v] = tl.runs && (tile0 + v * 16) % 16 == 0;
        run_image[v] = img[0];
        run_y[v] = iy[0];
        run_x[v] = ix[0];
        for (int k = 0; k < 5; k++) {
            // Columns run_x + 16k + lane inside [0, W).
            const __m512i cols = _mm512_add_epi32(_mm512_set1_epi32(ix[0] + 16 * k),
                                                  _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
            run_cols[v][k] = in_range(cols, W);
        }
    }

    // Input transform: V[xi][c][slot] = (B^T d B)[xi].
    const __m512 zero = _mm512_setzero_ps();
    const __m512i quad = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 0, 4, 8, 12, 16, 20, 24, 28);
    for (int c = 0; c < cin; c++) {
        for (int v = 0; v < nv; v++) {
            float *out = V + (size_t)c * width + v * 16;
            const size_t step = (size_t)cin * width;
            if (contiguous[v]) {
                // Row r of the 16 patches is 80 consecutive input floats from run_x: column j of
                // patch l is float 4l + j, picked out with two-source permutes.
                const float *chan = x + (long)run_image[v] * cin * plane + (long)c * plane;
                __m512 e[6][6];
                for (int r = 0; r < 6; r++) {
                    const int yy = run_y[v] + r;
                    __m512 d[6];
                    if (yy < 0 || yy >= H) {
                        for (int j = 0; j < 6; j++) d[j] = zero;
                    } else {
                        const float *line = chan + (long)yy * W + run_x[v];
                        __m512 a[5];
                        for (int k = 0; k < 5; k++) a[k] = _mm512_maskz_loadu_ps(run_cols[v][k], line + 16 * k);
                        for (int j = 0; j < 4; j++) {
                            const __m512i idx = _mm512_add_epi32(quad, _mm512_set1_epi32(j));
                            d[j] = _mm512_mask_blend_ps((__mmask16)0xFF00, _mm512_permutex2var_ps(a[0], idx, a[1]),
                                                        _mm512_permutex2var_ps(a[2], idx, a[3]));
                        }
                        d[4] = _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(a[4]), _mm512_castps_si512(d[0]), 1));
                        const __m512i a4 = _mm512_alignr_epi32(_mm512_castps_si512(a[4]), _mm512_castps_si512(a[4]), 1);
                        d[5] = _mm512_castsi512_ps(_mm512_alignr_epi32(a4, _mm512_castps_si512(d[1]), 1));
                    }
                    INPUT_1D(d[0], d[1], d[2], d[3], d[4], d[5], e[r][0], e[r][1], e[r][2], e[r][3], e[r][4], e[r][5]);
                }
                for (int j = 0; j < 6; j++) {
                    __m512 r0, r1, r2, r3, r4, r5;
                    INPUT_1D(e[0][j], e[1][j], e[2][j], e[3][j], e[4][j], e[5][j], r0, r1, r2, r3, r4, r5);
                    _mm512_store_ps(out + (0 * 6 + j) * step, r0);
                    _mm512_store_ps(out + (1 * 6 + j) * step, r1);
                    _mm512_store_ps(out + (2 * 6 + j) * step, r2);
                    _mm512_store_ps(out + (3 * 6 + j) * step, r3);
                    _mm512_store_ps(out + (4 * 6 + j) * step, r4);
                    _mm512_store_ps(out + (5 * 6 + j) * step, r5);
                }
                continue;
            }
            const __m512i base = _mm512_add_epi32(in_offset[v], _mm512_set1_epi32((int)(c * plane)));
            __m512 t[6][6];
            for (int j = 0; j < 6; j++) {
                __m512 d[6];
                for (int r = 0; r < 6; r++) {
                    __m512i idx = _mm512_add_epi32(base, _mm512_set1_epi32(r * W + j));
                    d[r] = _mm512_mask_i32gather_ps(zero, row_in[v][r] & col_in[v][j], idx, x, 4);
                }
                INPUT_1D(d[0], d[1], d[2], d[3], d[4], d[5], t[0][j], t[1][j], t[2][j], t[3][j], t[4][j], t[5][j]);
            }
            for (int i = 0; i < 6; i++) {
                __m512 r0, r1, r2, r3, r4, r5;
                INPUT_1D(t[i][0], t[i][1], t[i][2], t[i][3], t[i][4], t[i][5], r0, r1, r2, r3, r4, r5);
                _mm512_store_ps(out + (i * 6 + 0) * step, r0);
                _mm512_store_ps(out + (i * 6 + 1) * step, r1);
                _mm512_store_ps(out + (i * 6 + 2) * step, r2);
                _mm512_store_ps(out + (i * 6 + 3) * step, r3);
                _mm512_store_ps(out + (i * 6 + 4) * step, r4);
                _mm512_store_ps(out + (i * 6 + 5) * step, r5);
            }
        }
    }

    // The 36 products.
    for (int xi = 0; xi < 36; xi++) {
        zk_gemm_panel(transformed + xi * packed, cout, cin, m0, m1, V + (size_t)xi * cin * width, w,
                      M + (size_t)xi * mm * width, width);
    }

    // Output transform with the epilogue.
    const float *bias = ep ? ep->bias : NULL;
    const float *res = ep ? ep->residual : NULL;
    const int relu = ep ? ep->relu : 0;
    for (int o = m0; o < m1; o++) {
        const __m512 bv = _mm512_set1_ps(bias ? bias[o] : 0.0f);
        for (int v = 0; v < nv; v++) {
            const float *src = M + (size_t)(o - m0) * width + v * 16;
            const size_t step = (size_t)mm * width;
            __m512 t[4][6];
            for (int j = 0; j < 6; j++) {
                __m512 m[6];
                for (int r = 0; r < 6; r++) m[r] = _mm512_load_ps(src + (r * 6 + j) * step);
                OUTPUT_1D(m[0], m[1], m[2], m[3], m[4], m[5], t[0][j], t[1][j], t[2][j], t[3][j]);
            }
            // q[i][k]: row i of the tiles; 128-bit lane L holds the 4 columns of tile 4L + k.
            // (Kept in registers and taken apart with extracts: storing them to memory and
            // reading 16-byte pieces back stalled on store forwarding.)
            __m512 q[4][4];
            for (int i = 0; i < 4; i++) {
                __m512 s0, s1, s2, s3;
                OUTPUT_1D(t[i][0], t[i][1], t[i][2], t[i][3], t[i][4], t[i][5], s0, s1, s2, s3);
                s0 = _mm512_add_ps(s0, bv);
                s1 = _mm512_add_ps(s1, bv);
                s2 = _mm512_add_ps(s2, bv);
                s3 = _mm512_add_ps(s3, bv);
                __m512 ab_lo = _mm512_unpacklo_ps(s0, s1), ab_hi = _mm512_unpackhi_ps(s0, s1);
                __m512 cd_lo = _mm512_unpacklo_ps(s2, s3), cd_hi = _mm512_unpackhi_ps(s2, s3);
                q[i][0] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(ab_lo), _mm512_castps_pd(cd_lo)));
                q[i][1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(ab_lo), _mm512_castps_pd(cd_lo)));
                q[i][2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(ab_hi), _mm512_castps_pd(cd_hi)));
                q[i][3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(ab_hi), _mm512_castps_pd(cd_hi)));
            }
            const int lanes = w - v * 16 < 16 ? w - v * 16 : 16;
            const __m128 zero4 = _mm_setzero_ps();
#define STORE_ROW(I, L, K)                                                                    \
    if ((I) < out_rows[t]) {                                                                  \
        __m128 r = _mm512_extractf32x4_ps(q[I][K], L);                                        \
        const long at = base + (long)(I) * OW;                                                \
        if (res) r = _mm_add_ps(r, _mm_maskz_loadu_ps(cols, res + at));                       \
        if (relu) r = _mm_max_ps(r, zero4);                                                   \
        _mm_mask_storeu_ps(y + at, cols, r);                                                  \
    }
#define STORE_TILE(L, K)                                                                      \
    if (4 * (L) + (K) < lanes) {                                                              \
        const int t = v * 16 + 4 * (L) + (K);                                                 \
        const long base = out_offset[t] + (long)o * oplane;                                   \
        const __mmask8 cols = (__mmask8)((1u << out_cols[t]) - 1);                            \
        STORE_ROW(0, L, K) STORE_ROW(1, L, K) STORE_ROW(2, L, K) STORE_ROW(3, L, K)           \
    }
            STORE_TILE(0, 0) STORE_TILE(0, 1) STORE_TILE(0, 2) STORE_TILE(0, 3)
            STORE_TILE(1, 0) STORE_TILE(1, 1) STORE_TILE(1, 2) STORE_TILE(1, 3)
            STORE_TILE(2, 0) STORE_TILE(2, 1) STORE_TILE(2, 2) STORE_TILE(2, 3)
            STORE_TILE(3, 0) STORE_TILE(3, 1) STORE_TILE(3, 2) STORE_TILE(3, 3)
#undef STORE_TILE
#undef STORE_ROW
        }
    }
}

// ---------------------------------------------------------------------------------------
// Winograd F(2x2, 3x3): 16 multiplications per 2x2 output tile and channel pair instead of 36.
// For maps too small for F(4x4, 3x3) to fill a panel (7x7: 4 tiles of 4x4, but 16 of 2x2),
// where the direct GEMM would pad 49 columns to 64. Same structure as above.
//
//   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1],
//   A^T = [1 1 1 0; 0 1 -1 -1].

int zk512_winograd2_tiles(int oh, int ow) { return ((oh + 1) / 2) * ((ow + 1) / 2); }

void zk512_winograd2_transform(const float *weight, int cout, int cin, float *u, int o0, int o1) {
    static const double G[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
    for (int o = o0; o < o1; o++) {
        for (int i = 0; i < cin; i++) {
            const float *g = weight + ((size_t)o * cin + i) * 9;
            double t[4][3];
            for (int r = 0; r < 4; r++)
                for (int c = 0; c < 3; c++) t[r][c] = G[r][0] * g[c] + G[r][1] * g[3 + c] + G[r][2] * g[6 + c];
            for (int r = 0; r < 4; r++)
                for (int c = 0; c < 4; c++)
                    u[((size_t)(r * 4 + c) * cout + o) * cin + i] =
                        (float)(t[r][0] * G[c][0] + t[r][1] * G[c][1] + t[r][2] * G[c][2]);
        }
    }
}

#define INPUT2_1D(d0, d1, d2, d3, r0, r1, r2, r3)                                               \
    do {                                                                                        \
        r0 = _mm512_sub_ps(d0, d2);                                                             \
        r1 = _mm512_add_ps(d1, d2);                                                             \
        r2 = _mm512_sub_ps(d2, d1);                                                             \
        r3 = _mm512_sub_ps(d1, d3);                                                             \
    } while (0)

TARGET void zk512_winograd2(const float *transformed, int cout, int cin, const float *x, int H, int W, int pad, int tile0,
                         int tile1, int m0, int m1, float *y, const zk_epilogue *ep) {
    const int OH = H + 2 * pad - 2, OW = W + 2 * pad - 2;
    const int tw = (OW + 1) / 2, T = ((OH + 1) / 2) * tw;
    const int w = tile1 - tile0, nv = (w + 15) / 16, width = nv * 16, mm = m1 - m0;
    const long plane = (long)H * W, oplane = (long)OH * OW;
    const size_t packed = zk_packed_a_count(ZK_AVX512, cout, cin);
    float *V = zk_scratch(ZK_SCRATCH_WINOGRAD, (size_t)16 * width * (cin + mm));
    if (!V) return;
    float *M = V + (size_t)16 * cin * width;

    __m512i in_offset[VECS];
    __mmask16 row_in[VECS][4], col_in[VECS][4];
    int out_offset[TILES], out_rows[TILES], out_cols[TILES];
    for (int v = 0; v < nv; v++) {
        int img[16], iy[16], ix[16];
        __mmask16 valid = 0;
        for (int l = 0; l < 16; l++) {
            int g = tile0 + v * 16 + l;
            int t = v * 16 + l;
            if (g < tile1) valid |= (__mmask16)(1u << l);
            else g = tile0;
            int im = g / T, r = g % T, ty = r / tw, tx = r % tw;
            img[l] = im;
            iy[l] = 2 * ty - pad;
            ix[l] = 2 * tx - pad;
            out_offset[t] = (int)(im * cout * oplane + (long)(2 * ty) * OW + 2 * tx);
            out_rows[t] = OH - 2 * ty < 2 ? OH - 2 * ty : 2;
            out_cols[t] = OW - 2 * tx < 2 ? OW - 2 * tx : 2;
        }
        __m512i vy = _mm512_loadu_si512(iy), vx = _mm512_loadu_si512(ix), vi = _mm512_loadu_si512(img);
        in_offset[v] = _mm512_add_epi32(_mm512_mullo_epi32(vi, _mm512_set1_epi32((int)(cin * plane))),
                                        _mm512_add_epi32(_mm512_mullo_epi32(vy, _mm512_set1_epi32(W)), vx));
        for (int r = 0; r < 4; r++) {
            row_in[v][r] = valid & in_range(_mm512_add_epi32(vy, _mm512_set1_epi32(r)), H);
            col_in[v][r] = in_range(_mm512_add_epi32(vx, _mm512_set1_epi32(r)), W);
        }
    }

    const __m512 zero = _mm512_setzero_ps();
    for (int c = 0; c < cin; c++) {
        for (int v = 0; v < nv; v++) {
            const __m512i base = _mm512_add_epi32(in_offset[v], _mm512_set1_epi32((int)(c * plane)));
            __m512 t[4][4];
            for (int j = 0; j < 4; j++) {
                __m512 d[4];
                for (int r = 0; r < 4; r++) {
                    __m512i idx = _mm512_add_epi32(base, _mm512_set1_epi32(r * W + j));
                    d[r] = _mm512_mask_i32gather_ps(zero, row_in[v][r] & col_in[v][j], idx, x, 4);
                }
                INPUT2_1D(d[0], d[1], d[2], d[3], t[0][j], t[1][j], t[2][j], t[3][j]);
            }
            float *out = V + (size_t)c * width + v * 16;
            const size_t step = (size_t)cin * width;
            for (int i = 0; i < 4; i++) {
                __m512 r0, r1, r2, r3;
                INPUT2_1D(t[i][0], t[i][1], t[i][2], t[i][3], r0, r1, r2, r3);
                _mm512_store_ps(out + (i * 4 + 0) * step, r0);
                _mm512_store_ps(out + (i * 4 + 1) * step, r1);
                _mm512_store_ps(out + (i * 4 + 2) * step, r2);
                _mm512_store_ps(out + (i * 4 + 3) * step, r3);
            }
        }
    }

    for (int xi = 0; xi < 16; xi++) {
        zk_gemm_panel(transformed + xi * packed, cout, cin, m0, m1, V + (size_t)xi * cin * width, w,
                      M + (size_t)xi * mm * width, width);
    }

    const float *bias = ep ? ep->bias : NULL;
    const float *res = ep ? ep->residual : NULL;
    const int relu = ep ? ep->relu : 0;
    float rows[2][2][16] __attribute__((aligned(64)));
    for (int o = m0; o < m1; o++) {
        const __m512 bv = _mm512_set1_ps(bias ? bias[o] : 0.0f);
        for (int v = 0; v < nv; v++) {
            const float *src = M + (size_t)(o - m0) * width + v * 16;
            const size_t step = (size_t)mm * width;
            __m512 t[2][4];
            for (int j = 0; j < 4; j++) {
                __m512 m0v = _mm512_load_ps(src + (0 * 4 + j) * step), m1v = _mm512_load_ps(src + (1 * 4 + j) * step);
                __m512 m2v = _mm512_load_ps(src + (2 * 4 + j) * step), m3v = _mm512_load_ps(src + (3 * 4 + j) * step);
                t[0][j] = _mm512_add_ps(_mm512_add_ps(m0v, m1v), m2v);
                t[1][j] = _mm512_sub_ps(_mm512_sub_ps(m1v, m2v), m3v);
            }
            for (int i = 0; i < 2; i++) {
                __m512 s0 = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(t[i][0], t[i][1]), t[i][2]), bv);
                __m512 s1 = _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(t[i][1], t[i][2]), t[i][3]), bv);
                _mm512_store_ps(rows[i][0], s0);
                _mm512_store_ps(rows[i][1], s1);
            }
            const int lanes16 = w - v * 16 < 16 ? w - v * 16 : 16;
            for (int l = 0; l < lanes16; l++) {
                const int t = v * 16 + l;
                const long base = out_offset[t] + (long)o * oplane;
                for (int i = 0; i < out_rows[t]; i++) {
                    for (int j = 0; j < out_cols[t]; j++) {
                        const long at = base + (long)i * OW + j;
                        float value = rows[i][j][l];
                        if (res) value += res[at];
                        if (relu && value < 0) value = 0;
                        y[at] = value;
                    }
                }
            }
        }
    }
}

#else  // not x86-64: dispatch.c never calls these.

int zk512_winograd_tiles(int oh, int ow) { return ((oh + 3) / 4) * ((ow + 3) / 4); }
void zk512_winograd_transform(const float *weight, int cout, int cin, float *u, int o0, int o1) {}
void zk512_winograd(const float *transformed, int cout, int cin, const float *x, int height, int width, int padding,
                 int tile0, int tile1, int m0, int m1, float *y, const zk_epilogue *epilogue) {}
int zk512_winograd2_tiles(int oh, int ow) { return ((oh + 1) / 2) * ((ow + 1) / 2); }
void zk512_winograd2_transform(const float *weight, int cout, int cin, float *u, int o0, int o1) {}
void zk512_winograd2(const float *transformed, int cout, int cin, const float *x, int height, int width, int padding,
                  int tile0, int tile1, int m0, int m1, float *y, const zk_epilogue *epilogue) {}

#endif
