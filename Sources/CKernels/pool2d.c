// Max pooling (nn.MaxPool2d / F.max_pool2d): AVX-512 for strides 1 and 2 where available,
// scalar otherwise. See include/ckernels.h.

#include "ckernels.h"
#include "internal.h"

#include <math.h>
#include <stdlib.h>

#if ZK_X86

/// NaN-propagating max: PyTorch's max pool returns NaN if any input is NaN (vmaxps alone
/// returns its second operand when either is NaN).
TARGET INLINE __m512 max_nan(__m512 a, __m512 b) {
    return _mm512_mask_mov_ps(_mm512_max_ps(a, b), _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q), a);
}

/// Stride 1 or 2: per output row, the maximum over the window's rows into a -inf padded row,
/// then over the window's columns, 16 outputs at a time (stride 2 splits even and odd lanes).
TARGET static void max_pool_simd(const float *plane, float *out, int H, int W, int kernel, int stride, int padding,
                                 int oh, int ow, float *row) {
    const int span = (ow - 1) * stride + kernel;   // padded columns the outputs read
    const int width = span + 32;                   // room for whole-vector reads
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    for (int oy = 0; oy < oh; oy++) {
        int y0 = oy * stride - padding, y1 = y0 + kernel;
        if (y0 < 0) y0 = 0;
        if (y1 > H) y1 = H;
        // row[j] = max over rows of input column j - padding (-inf outside the image).
        for (int j = 0; j < width; j += 16) _mm512_storeu_ps(row + j, ninf);
        for (int x = 0; x < W && x + padding < span; x += 16) {
            const int n = (W - x < 16 ? W - x : 16);
            const int room = span - (x + padding);
            const __mmask16 mk = lanes(n < room ? n : room);
            __m512 m = ninf;
            for (int iy = y0; iy < y1; iy++) m = max_nan(m, _mm512_mask_loadu_ps(ninf, mk, plane + iy * W + x));
            _mm512_mask_storeu_ps(row + x + padding, mk, m);
        }
        float *o = out + oy * ow;
        for (int ox = 0; ox < ow; ox += 16) {
            const __mmask16 mk = lanes(ow - ox);
            __m512 m = ninf;
            for (int j = 0; j < kernel; j++) {
                const float *src = row + ox * stride + j;
                __m512 v = stride == 1 ? _mm512_loadu_ps(src)
                                       : _mm512_permutex2var_ps(_mm512_loadu_ps(src), even, _mm512_loadu_ps(src + 16));
                m = max_nan(m, v);
            }
            _mm512_mask_storeu_ps(o + ox, mk, m);
        }
    }
}

#endif

static void max_pool_scalar(const float *plane, float *out, int H, int W, int kernel, int stride, int padding,
                            int oh, int ow) {
    for (int oy = 0; oy < oh; oy++) {
        int y0 = oy * stride - padding, y1 = y0 + kernel;
        if (y0 < 0) y0 = 0;
        if (y1 > H) y1 = H;
        for (int ox = 0; ox < ow; ox++) {
            int x0 = ox * stride - padding, x1 = x0 + kernel;
            if (x0 < 0) x0 = 0;
            if (x1 > W) x1 = W;
            float best = -INFINITY;
            for (int iy = y0; iy < y1; iy++)
                for (int ix = x0; ix < x1; ix++) {
                    float v = plane[iy * W + ix];
                    if (v > best || v != v) best = v;
                }
            out[oy * ow + ox] = best;
        }
    }
}

void zk512_max_pool(const float *x, float *y, long planes, int H, int W, int kernel, int stride, int padding, int oh,
                 int ow) {
    float *row = NULL;
#if ZK_X86
    if (zk_available() && (stride == 1 || stride == 2) && padding < kernel)
        row = aligned_alloc(64, sizeof(float) * (size_t)(((ow - 1) * stride + kernel + 32 + 15) / 16 * 16));
#endif
    for (long p = 0; p < planes; p++) {
#if ZK_X86
        if (row) {
            max_pool_simd(x + p * H * W, y + p * oh * ow, H, W, kernel, stride, padding, oh, ow, row);
            continue;
        }
#endif
        max_pool_scalar(x + p * H * W, y + p * oh * ow, H, W, kernel, stride, padding, oh, ow);
    }
    free(row);
}

