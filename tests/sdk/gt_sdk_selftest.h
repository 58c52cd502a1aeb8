/*  gt_sdk_selftest.h — the selftests of libgarbagetruck's modules.

    They live here, in the test-only library gtsdktest, and not in the
    library itself: an installed libgarbagetruck carries no test code.
    Each uses the public API only (plus the scripted ROUTER of
    gt_test_router.h), but gt_jitter_test, whose module is private to the
    library; failures are asserts.  */
#ifndef GT_SDK_SELFTEST_H_INCLUDED
#define GT_SDK_SELFTEST_H_INCLUDED

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

//  Names, tables, topics and validators of gt_proto.h
void gt_proto_test (bool verbose);
//  The codec: round trips, every vector in proto-spec/vectors (found via
//  the GT_VECTORS_DIR environment variable or the compiled-in source path),
//  rejections, robustness
void gt_msg_test (bool verbose);
//  gt_client against a scripted ROUTER
void gt_client_test (bool verbose);
//  gt_subscriber against a PUB socket of the test
void gt_subscriber_test (bool verbose);
//  gt_keepalive against a scripted ROUTER
void gt_keepalive_test (bool verbose);
//  gt_jitter (private to the library, the keep-alive's jitter): bounds, and
//  two sources made at once draw different intervals
void gt_jitter_test (bool verbose);
//  gt_webhook: known signatures (one computed with the Python SDK), the
//  callback vectors of proto-spec/vectors/callbacks, what verify refuses
void gt_webhook_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
