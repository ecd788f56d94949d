#ifndef ZOO_CZIP_SHIM_H
#define ZOO_CZIP_SHIM_H
#include <zip.h>
#endif
