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

#define TARGET __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,fma,bmi2")))
#define INLINE static inline __attribute__((always_inline))

#if ZK_X86
/// The mask of the first `count` of 16 lanes (all for 16 or more, none for 0 or less).
TARGET INLINE __mmask16 lanes(int count) {
    return count >= 16 ? (__mmask16)0xFFFF : count <= 0 ? (__mmask16)0 : (__mmask16)((1u << count) - 1);
}
#endif

/// Rows m0 ..< m1 of A * B with B one pre-packed panel: k rows of 16 * ceil(w / 16) floats;
/// here C points at row m0 (C + (row - m0) * ldc + col), and no epilogue is applied.
/// (gemm.c; the Winograd kernels run their GEMMs through it.)
void zk_gemm_panel(const float *packed_a, int m, int k, int m0, int m1, const float *panel, int w,
                   float *c, long ldc);

#endif
