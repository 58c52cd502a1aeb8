/*  gt_broker_selftest.h — the selftests of the broker's lower layers
    (core, observe, store, delivery).

    They live here, in the test-only library gtbrokertest, and not in the
    libraries gtcore, gtobserve, gtstore and gtdelivery: the daemon and
    whatever is installed carry no test code.  Each uses its module's API
    (gt_wheel's selftest also reads gt_wheel_private.h, and
    gt_broker_delivery's gt_broker_delivery_private.h, headers that are
    not installed); failures are asserts.  */
#ifndef GT_BROKER_SELFTEST_H_INCLUDED
#define GT_BROKER_SELFTEST_H_INCLUDED

#include <czmq.h>

#ifdef __cplusplus
extern "C" {
#endif

//  core: the timer wheel (fake clock: boundaries, cancel, random
//  operations against a reference, throughput)
void gt_wheel_test (bool verbose);
//  core: the hash table and SipHash
void gt_table_test (bool verbose);
//  core: small records without an allocator header each
void gt_slabs_test (bool verbose);
void gt_records_test (bool verbose);
//  core: settings from defaults, environment and flags; the effective
//  configuration with secrets hidden
void gt_config_test (bool verbose);
//  core: the undo log
void gt_journal_test (bool verbose);
//  core: the lease engine (fake clock)
void gt_leases_test (bool verbose);
//  core: compact event records in a ring of bytes
void gt_event_ring_test (bool verbose);
//  core: event numbering, publishing, history, REPLAY
void gt_events_test (bool verbose);
//  observe: log lines, text and JSON
void gt_log_test (bool verbose);
//  observe: fixed-bucket histograms
void gt_histogram_test (bool verbose);
//  observe: the table of figures
void gt_figures_test (bool verbose);
//  observe: collection, snapshots, the Prometheus text
void gt_metrics_test (bool verbose);
//  observe: the HTTP endpoint (/metrics, /healthz, /readyz)
void gt_metrics_http_test (bool verbose);
//  store: the seam and the memory store
void gt_store_test (bool verbose);
void gt_shard_map_test (bool verbose);
//  delivery: jobs, bodies, the cleanup URL policy
void gt_callback_test (bool verbose);
//  delivery: the HTTP engine against the HTTP test server (gthttptest)
void gt_delivery_test (bool verbose);

//  server (the actor and the modules it wires together)
void gt_peers_test (bool verbose);
void gt_reply_test (bool verbose);
void gt_subscriptions_test (bool verbose);
void gt_pacer_test (bool verbose);
void gt_admission_test (bool verbose);
void gt_broker_test (bool verbose);
void gt_broker_metrics_test (bool verbose);
//  server: the broker's side of cleanup callbacks (settings, engine start,
//  record indexes; reads gt_broker_delivery_private.h)
void gt_broker_delivery_test (bool verbose);

//  A fixture of gt_metrics_test and gt_metrics_http_test: an actor (args:
//  the gt_metrics_t) standing in for the broker loop.  It polls the wake
//  fd and publishes the scratch snapshot as the test left it, adding 1 to
//  its STATS "test_publications" each time.
void gt_metrics_test_broker (zsock_t *pipe, void *args);

#ifdef __cplusplus
}
#endif
#endif
