// The generic kernels (core.h) for NEON (AArch64's baseline): 4 lanes, 32 registers, an
// 8 x 12 register tile (24 accumulators, 3 B vectors, 1 broadcast).

#include "internal.h"

#if defined(__aarch64__)
#define VL 4
#define MR 8
#define NV 3
#define ACC 16
#define EVEN 0, 2, 4, 6
#define NAME(x) zk_neon_##x
#define TGT
#include "core.h"
#endif
