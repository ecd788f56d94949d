// Small-batch Linear layers on AVX-512 (see include/ckernels.h): Y[b, o] = bias[o] + sum_k
// X[b, k] W[o, k] for o in [o0, o1), reading each weight once per 8 images (W is the largest
// array of VGG by far and a batch-1 Linear is a matrix-vector product: no packing, as OpenBLAS's
// sgemm would do on every call). K is cut into chunks whose X rows stay in L1 while R rows of W
// stream past them, R x B dot products at a time in registers.

#include "ckernels.h"
#include "internal.h"

#if ZK_X86

enum { LINEAR_CHUNK = 1024 };

TARGET INLINE void linear_block(const int R, const int B, const float *w, long ldw, const float *x, long ldx, int kc,
                                float *y, long ldy) {
    __m512 acc[R][B];
    for (int r = 0; r < R; r++)
        for (int b = 0; b < B; b++) acc[r][b] = _mm512_setzero_ps();
    int k = 0;
    for (; k + 16 <= kc; k += 16) {
        __m512 xv[B];
        for (int b = 0; b < B; b++) xv[b] = _mm512_loadu_ps(x + b * ldx + k);
        for (int r = 0; r < R; r++) {
            const __m512 wv = _mm512_loadu_ps(w + r * ldw + k);
            for (int b = 0; b < B; b++) acc[r][b] = _mm512_fmadd_ps(wv, xv[b], acc[r][b]);
        }
    }
    if (k < kc) {
        const __mmask16 mk = lanes(kc - k);
        __m512 xv[B];
        for (int b = 0; b < B; b++) xv[b] = _mm512_maskz_loadu_ps(mk, x + b * ldx + k);
        for (int r = 0; r < R; r++) {
            const __m512 wv = _mm512_maskz_loadu_ps(mk, w + r * ldw + k);
            for (int b = 0; b < B; b++) acc[r][b] = _mm512_fmadd_ps(wv, xv[b], acc[r][b]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int b = 0; b < B; b++) y[b * ldy + r] += _mm512_reduce_add_ps(acc[r][b]);
}

TARGET void zk512_linear(const float *w, const float *bias, const float *x, float *y, int n, int in, int out, int o0,
                      int o1) {
    for (int b = 0; b < n; b++)
        for (int o = o0; o < o1; o++) y[(long)b * out + o] = bias ? bias[o] : 0.0f;
    for (int b0 = 0; b0 < n; b0 += 8) {
        const int nb = n - b0 < 8 ? n - b0 : 8;
        const int R = nb == 1 ? 16 : nb == 2 ? 8 : nb <= 4 ? 4 : 2;
        const float *xb = x + (long)b0 * in;
        float *yb = y + (long)b0 * out;
        for (int k0 = 0; k0 < in; k0 += LINEAR_CHUNK) {
            const int kc = in - k0 < LINEAR_CHUNK ? in - k0 : LINEAR_CHUNK;
            int o = o0;
            for (; o + R <= o1; o += R) {
                const float *wo = w + (long)o * in + k0;
                switch (nb) {
                case 1: linear_block(16, 1, wo, in, xb + k0, in, kc, yb + o, out); break;
                case 2: linear_block(8, 2, wo, in, xb + k0, in, kc, yb + o, out); break;
                case 3: linear_block(4, 3, wo, in, xb + k0, in, kc, yb + o, out); break;
                case 4: linear_block(4, 4, wo, in, xb + k0, in, kc, yb + o, out); break;
                case 5: linear_block(2, 5, wo, in, xb + k0, in, kc, yb + o, out); break;
                case 6: linear_block(2, 6, wo, in, xb + k0, in, kc, yb + o, out); break;
                case 7: linear_block(2, 7, wo, in, xb + k0, in, kc, yb + o, out); break;
                default: linear_block(2, 8, wo, in, xb + k0, in, kc, yb + o, out); break;
                }
            }
            for (; o < o1; o++) {
                const float *wo = w + (long)o * in + k0;
                for (int b = 0; b < nb; b++) linear_block(1, 1, wo, in, xb + (long)b * in + k0, in, kc, yb + (long)b * out + o, out);
            }
        }
    }
}

#else  // not x86-64: dispatch.c never calls this.

void zk512_linear(const float *w, const float *bias, const float *x, float *y, int n, int in, int out, int o0, int o1) {}

#endif
