#ifndef ZOO_COPENSSL_SHIM_H
#define ZOO_COPENSSL_SHIM_H
#include <openssl/evp.h>
#endif
