/*  print_sdk_defaults.c — prints the C SDK's defaults, as its headers
    export them, on one JSON line:

        {"default_timeout_ms": 5000, "keepalive_ttl_fraction": 0.33333333333333331, "keepalive_jitter": 0.10000000000000001}

    tests/sdk_defaults/test_sdk_defaults.py runs it (as
    $GT_BUILD_DIR/tests/sdk_defaults/gt_print_sdk_defaults) and compares
    with what the Python and Go SDKs export.  Doubles are printed with
    %.17g, which reads back as the same double.  Links libgarbagetruck
    alone (tests/CMakeLists.txt, target gt_print_sdk_defaults).  */
#include <garbagetruck.h>

int
main (void)
{
    printf ("{\"default_timeout_ms\": %d, \"keepalive_ttl_fraction\": %.17g, \"keepalive_jitter\": %.17g}\n",
            GT_CLIENT_DEFAULT_TIMEOUT_MS,
            GT_KEEPALIVE_TTL_FRACTION,
            GT_KEEPALIVE_JITTER);
    return 0;
}
