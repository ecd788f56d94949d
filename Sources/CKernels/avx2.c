// The generic kernels (core.h) for AVX2 + FMA: 8 lanes, 16 ymm registers, a 6 x 16 register
// tile (12 accumulators, 2 B vectors, 1 broadcast).

#include "internal.h"

#if ZK_X86
#define VL 8
#define MR 6
#define NV 2
#define ACC 8
#define EVEN 0, 2, 4, 6, 8, 10, 12, 14
#define NAME(x) zk_avx2_##x
#define TGT __attribute__((target("avx2,fma")))
#include "core.h"
#endif
