/*  gt_test_store.h — the asynchronous test store: a gt_store_t for tests
    of the durability path.  Test fixture (library gtteststore): linked by
    tests only, never by the daemon, gtctl or an installed library.

    It keeps every durable record in memory (so a broker can recover from
    it), completes batches asynchronously through a socket pair (as the
    PostgreSQL store does through its writer), and can be told to fail.
    A failure reported for a batch fails every batch still in flight with
    it (gt_store.h's contract), and nothing of them is kept.

    Tests choose it by making it and starting the broker on it
    (gt_broker_actor_on_store; gt_test_broker_start does so when
    config->storage is "test", a name the broker itself refuses).  The
    broker knows nothing of it: its STORE pipe command passes the words on
    to the store's control op, which takes
        FAIL n                          fail the next n flushes; reply "0"
        HOLD 1|0                        hold / release completions (to have
                                        several batches in flight); reply "0"
        COUNT LEASES|EVENTS|CALLBACKS   records kept; reply the count
    (anything else: "-1"), and its ops let DETACH hand it over.

    Single-threaded: the broker's thread drives it while a broker runs on
    it; the calls below are for a store no broker runs on (not yet started,
    or handed over with DETACH).  Each asserts the store is a test store.  */
#ifndef GT_TEST_STORE_H_INCLUDED
#define GT_TEST_STORE_H_INCLUDED

#include <czmq.h>
#include "gt_store.h"

#ifdef __cplusplus
extern "C" {
#endif

//  A new, empty test store (its name: "test").
gt_store_t *gt_test_store_new (void);
//  Fail the next count flushes (STORE FAIL count).
void gt_test_store_fail (gt_store_t *store, size_t count);
//  Hold completions until released; releasing signals one completion per
//  batch in flight (STORE HOLD 1|0).
void gt_test_store_hold (gt_store_t *store, bool hold);
//  Records kept: leases, events, outbox rows (STORE COUNT ...).
size_t gt_test_store_leases (gt_store_t *store);
size_t gt_test_store_events (gt_store_t *store);
size_t gt_test_store_callbacks (gt_store_t *store);

//  Selftest.
void gt_test_store_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
