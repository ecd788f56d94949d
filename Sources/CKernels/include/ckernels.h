#ifndef ZOO_CKERNELS_H
#define ZOO_CKERNELS_H

// CPU kernels for Models (Sources/Models/CKernels.swift is the one Swift file that calls
// them): convolution GEMM, Winograd F(4x4, 3x3) and F(2x2, 3x3), small-batch Linear, max
// pooling, and the fork-join pool that runs them on several threads (threads.c).
//
// Three instruction sets, chosen at run time: every entry point takes the path to run first
// (dispatch.c routes it; on ZK_BLAS the GEMM entry points do nothing):
// AVX-512 (gemm.c, winograd.c, linear.c, pool2d.c: intrinsics, masks and permutes), and AVX2+FMA
// and NEON, both compiled from one vector-width-generic core (core.h over clang's vector
// extensions; avx2.c, neon.c). The designs are the same on all three:
//
// A convolution's weights are the GEMM's A [M = out/groups, K = in/groups * k * k] (PyTorch's
// [out, in/groups, k, k] read row-major), packed once in panels of zk_mr() rows; B is the
// im2col matrix [K, N = oH * oW], never stored: each panel of it is packed straight from the
// input image, in blocks of about 528 columns that stay in L2 while each panel of A (in L1)
// runs against them, so A is read once per block. C = A * B is written in place into the NCHW
// output, with the bias, an optional residual and an optional ReLU applied to the registers
// before the single store.
//
// The packed layouts depend on the path (its register tile): pack for the path that runs.

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// The kernel paths. ZK_BLAS: none of the convolution kernels (Models uses OpenBLAS).
enum { ZK_BLAS = 0, ZK_AVX2 = 1, ZK_AVX512 = 2, ZK_NEON = 3 };

/// 1 when this CPU (and OS) runs the AVX-512 kernels.
int zk_available(void);

/// 1 when this CPU runs `path` (ZK_BLAS always).
int zk_supports(int path);

/// The fastest path this CPU runs.
int zk_best(void);

/// Rows of A per packed panel on `path` (8 on AVX-512 and NEON, 6 on AVX2).
int zk_mr(int path);

/// ZK_NR: columns per block of a job split and tiles per Winograd block of a layer cut into
/// several blocks (on every path).
/// ZK_MR: the most rows per packed panel on any path.
/// ZK_WIDE: the most tile slots of a Winograd block on the generic core (AVX2, NEON), whose
/// two-phase route shares one block of up to this many between threads.
enum { ZK_MR = 8, ZK_NR = 48, ZK_WIDE = 64 };

/// Floats needed to pack an m x k A matrix (rows padded to a multiple of zk_mr(path)).
size_t zk_packed_a_count(int path, int m, int k);

/// Packs row-major A (m x k, leading dimension lda): per block of K, zk_mr(path)-row panels, each
/// k-major, so that a product reads A in one sequential stream.
void zk_pack_a(int path, int m, int k, const float *a, long lda, float *packed);

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

/// Rows m0 ..< m1 (m0 a multiple of zk_mr(path)) and columns n0 ..< n1 of C = A * B with the
/// epilogue, where A is m x k packed by zk_pack_a and B the im2col of `input`. C, the bias and
/// the residual are indexed from row 0 and column 0: C + row * ldc + col.
void zk_conv_gemm(int path, const float *packed_a, int m, int k, int m0, int m1, const zk_conv_input *input,
                  int n0, int n1, float *c, long ldc, const zk_epilogue *epilogue);

/// Same with B an explicit row-major matrix [k, ldb].
void zk_gemm(int path, const float *packed_a, int m, int k, int m0, int m1, const float *b, long ldb,
             int n0, int n1, float *c, long ldc, const zk_epilogue *epilogue);

/// Winograd F(4x4, 3x3) for 3x3, stride-1, undilated, ungrouped convolutions.
/// Weights: 36 transformed [cout, cin] matrices, each packed as by zk_pack_a.
/// The transform for output channels [o0, o1): u [36][cout][cin] = G g G^T, unpacked
/// (zk_pack_a then packs each of the 36 matrices).
void zk_winograd_transform(int path, const float *weight, int cout, int cin, float *u, int o0, int o1);

/// The transform and zk_pack_a in one pass, for output channels [o0, o1) of the `points` (36 for
/// F(4x4, 3x3), 16 for F(2x2, 3x3)) packed matrices, each zk_packed_a_count(path, cout, cin)
/// floats, zeroed beforehand (padding rows stay zero). In double; not for ZK_AVX512, whose
/// transform above is in float.
void zk_winograd_pack(int path, int points, const float *weight, int cout, int cin, float *packed, int o0, int o1);

/// Tile slots per image for 4x4 output tiles: the ceil(oh / 4) * ceil(ow / 4) tiles, and on
/// AVX-512, on maps at least 12 tiles wide, the dead slots of winograd.c's runs of 16 slots
/// (which keep each vector of slots a run of tiles in one row).
int zk_winograd_tiles(int path, int out_height, int out_width);

/// The slots a block of zk_winograd or zk_winograd2 should start at a multiple of: where
/// winograd.c's runs start, and whole panels of the path's GEMM (16 on AVX-512 and AVX2, 12 on
/// NEON). Other starts are correct, only slower.
int zk_winograd_unit(int path);

/// One block of at most ZK_NR (on ZK_AVX2 and ZK_NEON ZK_WIDE) consecutive tile slots
/// [tile0, tile1) of the whole batch (slots are numbered image by image, row by row, as
/// zk_winograd_tiles counts them), output channels [m0, m1) (m0 a multiple of zk_mr(path)).
/// x: [n, cin, height, width]; y: [n, cout, oh, ow] with oh = height + 2 * padding - 2 (same for
/// width); the epilogue's bias is indexed by absolute channel and its residual is laid out as y.
void zk_winograd(int path, const float *transformed, int cout, int cin, const float *x, int height, int width, int padding,
                 int tile0, int tile1, int m0, int m1, float *y, const zk_epilogue *epilogue);

/// zk_winograd (m = 4) or zk_winograd2 (m = 2) in two phases, for a block whose output channels
/// are cut between threads (so that none repeats the input transform): zk_winograd_input
/// transforms input channels [c0, c1) of the block's tiles into v, which holds
/// zk_winograd_v_count(path, m, cin, tile1 - tile0) floats; once every channel is in,
/// zk_winograd_output makes output channels [m0, m1) from v, as zk_winograd does. The generic
/// core only (ZK_AVX2, ZK_NEON): for other paths the count is 0 and both do nothing.
long zk_winograd_v_count(int path, int m, int cin, int tiles);
void zk_winograd_input(int path, int m, int cin, const float *x, int height, int width, int padding, int tile0,
                       int tile1, int c0, int c1, float *v);
void zk_winograd_output(int path, int m, const float *transformed, int cout, int cin, const float *v, int height,
                        int width, int padding, int tile0, int tile1, int m0, int m1, float *y,
                        const zk_epilogue *epilogue);

/// Output features [o0, o1) of a Linear layer: y[b, o] = bias[o] + x[b, :] . w[o, :] for
/// x [n, in], w [out, in] (PyTorch's layout, used as is), y [n, out]; bias may be NULL.
void zk_linear(int path, const float *w, const float *bias, const float *x, float *y, int n, int in, int out, int o0, int o1);

/// A job of zk_parallel.
typedef void (*zk_job_fn)(void *context, int job);

/// Runs fn(context, 0 ..< jobs) on `threads` threads (the caller and persistent workers), each
/// running its contiguous share of the indices in order and then what is left of the others';
/// returns when all are done. One round at a time (a caller waits for another's round to end);
/// a call from inside a job runs all its jobs on the calling thread.
void zk_parallel(int threads, int jobs, zk_job_fn fn, void *context);

/// zk_parallel, except that while another caller's round runs it runs all the jobs on the
/// calling thread instead of waiting: for work done under a lock that a job of that round may
/// be waiting for.
void zk_parallel_nowait(int threads, int jobs, zk_job_fn fn, void *context);

/// Winograd F(2x2, 3x3), for maps too small for F(4x4, 3x3): the same contract with 16
/// transformed matrices and 2x2 output tiles (ceil(oh / 2) * ceil(ow / 2) per image).
void zk_winograd2_transform(int path, const float *weight, int cout, int cin, float *u, int o0, int o1);
int zk_winograd2_tiles(int path, int out_height, int out_width);
void zk_winograd2(int path, const float *transformed, int cout, int cin, const float *x, int height, int width, int padding,
                  int tile0, int tile1, int m0, int m1, float *y, const zk_epilogue *epilogue);

/// Max pooling of `planes` planes (no dilation, -inf padding, floor mode); NaN propagates.
void zk_max_pool(int path, const float *x, float *y, long planes, int height, int width,
                 int kernel, int stride, int padding, int out_height, int out_width);

#ifdef __cplusplus
}
#endif

#endif
