// nghttp2 for frontend HTTP/2 (wired now, used when ALB mode lands).
#ifndef SLUICE_CNGHTTP2_SHIM_H
#define SLUICE_CNGHTTP2_SHIM_H
#include <nghttp2/nghttp2.h>
#endif
