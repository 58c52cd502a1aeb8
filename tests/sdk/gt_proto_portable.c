/*  gt_proto_portable.c — gt_proto's selftest against gt_proto.c built
    without SSE2 (-mno-sse2): the lease-id conversions that machines other
    than x86-64 (arm64, ...) run, which no other build here compiles.  */
#include "gt_sdk_selftest.h"

int
main (void)
{
    gt_proto_test (true);
    return 0;
}
