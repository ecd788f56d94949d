#ifndef ZOO_COPENBLAS_SHIM_H
#define ZOO_COPENBLAS_SHIM_H
#include <cblas.h>
#endif
