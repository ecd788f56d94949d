#ifndef ZOO_CKERNELS_H
#define ZOO_CKERNELS_H

// AVX-512 kernels for Models (Sources/Models/CKernels.swift is the one Swift file that calls
// them): convolution GEMM (gemm.c), Winograd F(4x4, 3x3) and F(2x2, 3x3) (winograd.c),
// small-batch Linear (linear.c), max pooling (pool2d.c), and the fork-join pool that runs them
// on several threads (threads.c).
//
// A convolution's weights are the GEMM's A [M = out/groups, K = in/groups * k * k] (PyTorch's
// [out, in/groups, k, k] read row-major), packed once; B is the im2col matrix [K, N = oH * oW],
// never stored: each 48-column panel of it is packed straight from the input image, in blocks
// of 11 panels that stay in L2 while each 8-row panel of A (in L1) runs against them, so A is
// read once per 528 columns. C = A * B is written in place into the NCHW output, with the
// bias, an optional residual and an optional ReLU applied to the registers before the single
// store.
//
// The AVX-512 entry points need zk_available() (Models falls back to OpenBLAS without it); on
// other architectures they are empty stubs. zk_max_pool, zk_parallel and the packing and
// counting functions work everywhere.

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// 1 when this CPU (and OS) runs the AVX-512 kernels.
int zk_available(void);

/// Rows of A per packed panel.
enum { ZK_MR = 8, ZK_NR = 48 };

/// Floats needed to pack an m x k A matrix (rows padded to a multiple of ZK_MR).
size_t zk_packed_a_count(int m, int k);

/// Packs row-major A (m x k, leading dimension lda): per block of K, ZK_MR-row panels, each
/// k-major, so that a product reads A in one sequential stream.
void zk_pack_a(int m, int k, const float *a, long lda, float *packed);

/// A convolution input as the implicit B matrix: one image, the channels of one group.
typedef struct {
    const float *data;          // [channels, height, width]
    int channels, height, width;
    int kernel, stride, padding, dilation;
    int out_height, out_width;
} zk_conv_input;

/// The epilogue applied when C is stored: c = relu?(c + bias[row] + residual[row, col]).
typedef struct {
    const float *bias;          // [m] or NULL
    const float *residual;      // [m, ldr] or NULL, same column indexing as C
    long ldr;
    int relu;
} zk_epilogue;

/// Rows m0 ..< m1 (m0 a multiple of ZK_MR) and columns n0 ..< n1 of C = A * B with the
/// epilogue, where A is m x k packed by zk_pack_a and B the im2col of `input`. C, the bias and
/// the residual are indexed from row 0 and column 0: C + row * ldc + col.
void zk_conv_gemm(const float *packed_a, int m, int k, int m0, int m1, const zk_conv_input *input,
                  int n0, int n1, float *c, long ldc, const zk_epilogue *epilogue);

/// Same with B an explicit row-major matrix [k, ldb].
void zk_gemm(const float *packed_a, int m, int k, int m0, int m1, const float *b, long ldb,
             int n0, int n1, float *c, long ldc, const zk_epilogue *epilogue);

/// Winograd F(4x4, 3x3) for 3x3, stride-1, undilated, ungrouped convolutions.
/// Weights: 36 transformed [cout, cin] matrices, each packed as by zk_pack_a.
/// The transform for output channels [o0, o1): u [36][cout][cin] = G g G^T, unpacked
/// (zk_pack_a then packs each of the 36 matrices).
void zk_winograd_transform(const float *weight, int cout, int cin, float *u, int o0, int o1);

/// Output tiles of 4x4 per image: ceil(oh / 4) * ceil(ow / 4).
int zk_winograd_tiles(int out_height, int out_width);

/// One block of at most ZK_NR consecutive tiles [tile0, tile1) of the whole batch (tiles are
/// numbered image by image, row by row), output channels [m0, m1) (m0 a multiple of ZK_MR).
/// x: [n, cin, height, width]; y: [n, cout, oh, ow] with oh = height + 2 * padding - 2 (same for
/// width); the epilogue's bias is indexed by absolute channel and its residual is laid out as y.
void zk_winograd(const float *transformed, int cout, int cin, const float *x, int height, int width, int padding,
                 int tile0, int tile1, int m0, int m1, float *y, const zk_epilogue *epilogue);

/// Output features [o0, o1) of a Linear layer: y[b, o] = bias[o] + x[b, :] . w[o, :] for
/// x [n, in], w [out, in] (PyTorch's layout, used as is), y [n, out]; bias may be NULL.
void zk_linear(const float *w, const float *bias, const float *x, float *y, int n, int in, int out, int o0, int o1);

/// A job of zk_parallel.
typedef void (*zk_job_fn)(void *context, int job);

/// Runs fn(context, 0 ..< jobs) on `threads` threads (the caller and persistent workers), each
/// taking the next job index as it finishes one; returns when all are done. One round at a time.
void zk_parallel(int threads, int jobs, zk_job_fn fn, void *context);

/// Winograd F(2x2, 3x3), for maps too small for F(4x4, 3x3): the same contract with 16
/// transformed matrices and 2x2 output tiles (ceil(oh / 2) * ceil(ow / 2) per image).
void zk_winograd2_transform(const float *weight, int cout, int cin, float *u, int o0, int o1);
int zk_winograd2_tiles(int out_height, int out_width);
void zk_winograd2(const float *transformed, int cout, int cin, const float *x, int height, int width, int padding,
                  int tile0, int tile1, int m0, int m1, float *y, const zk_epilogue *epilogue);

/// Max pooling of `planes` planes (no dilation, -inf padding, floor mode); NaN propagates.
void zk_max_pool(const float *x, float *y, long planes, int height, int width,
                 int kernel, int stride, int padding, int out_height, int out_width);

#ifdef __cplusplus
}
#endif

#endif
