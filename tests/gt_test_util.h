/*  gt_test_util.h — helpers for the integration tests: an embedded broker
    over TCP loopback, raw DEALER/SUB sockets, the shared codec.  (No C
    client library on purpose: these tests check the broker on the wire.)

    Waiting is always on a socket with a deadline, never a sleep.

    The store is chosen by GT_TEST_STORE: "memory" (default), "test" (the
    asynchronous test store of gt_test_store.h, which holds replies until
    its batch is durable), "postgres" (each gt_test_config gets a fresh
    database on the server DATABASE_URL names, dropped when the process
    exits; without DATABASE_URL the test exits GT_TEST_SKIPPED).  "test" is
    a mark for gt_test_broker_start only: the broker itself opens memory and
    postgres, and refuses any other name.  */
#ifndef GT_TEST_UTIL_H_INCLUDED
#define GT_TEST_UTIL_H_INCLUDED

#include <czmq.h>
#include "gt_msg.h"
#include "gt_config.h"
#include "gt_broker.h"

#ifdef __cplusplus
extern "C" {
#endif

//  How long any wait may take before the test fails (ms).
#define GT_TEST_TIMEOUT     5000
//  Exit code of a test that cannot run here (ctest SKIP_RETURN_CODE)
#define GT_TEST_SKIPPED     77

typedef struct {
    zactor_t *actor;                //  the broker
    char requests [64];             //  tcp://127.0.0.1:port of the ROUTER
    char events [64];               //  tcp://127.0.0.1:port of the PUB
    uint64_t next_rid;              //  rid counter for gt_test_call
} gt_test_broker_t;

//  A config for tests: min lease 50 ms, default 30 s, max 60 s, retention
//  10 s, the store from GT_TEST_STORE (postgres: a fresh database per call;
//  brokers started on the same config share it, as after a restart).
gt_config_t *gt_test_config (void);
//  Start a broker (the config is copied) bound on 127.0.0.1 ephemeral ports.
//  config->storage "test": on a new test store (gt_test_store_new), which
//  the broker takes over; else on the store the broker opens by config.
gt_test_broker_t *gt_test_broker_start (const gt_config_t *config);
void gt_test_broker_stop (gt_test_broker_t **self_p);
//  Restarts without PostgreSQL: take the test store from a running broker
//  (DETACH: everything durable first; the broker serves nothing more; NULL
//  if its store cannot be handed over), and start a broker that recovers
//  from a store (and takes it over).
gt_store_t *gt_test_broker_detach (gt_test_broker_t *self);
gt_test_broker_t *gt_test_broker_start_on_store (const gt_config_t *config, gt_store_t *store);
//  Send a pipe command to the broker; returns its reply (freed by caller).
char *gt_test_broker_command (gt_test_broker_t *self, const char *command, const char *arg1,
                              const char *arg2);

//  A DEALER connected to the broker.
zsock_t *gt_test_dealer (gt_test_broker_t *self);
//  A SUB connected to the broker's events with the given prefix, returned
//  once the subscription is known to work (a probe lease's event arrived;
//  probes belong to service "gt-test-probe" and are skipped by the helpers).
zsock_t *gt_test_sub (gt_test_broker_t *self, const char *prefix);

//  Send a request (rid assigned if 0) and wait for the reply with that rid
//  (other replies are discarded).  NULL on timeout.  The request may point
//  at borrowed strings.
gt_msg_t *gt_test_call (gt_test_broker_t *self, zsock_t *dealer, gt_msg_t *request);
//  Shorthands; each returns the reply and asserts one came.
gt_msg_t *gt_test_create (gt_test_broker_t *self, zsock_t *dealer, const char *object_id,
                          const char *service_id, uint64_t ttl_ms);
gt_msg_t *gt_test_renew (gt_test_broker_t *self, zsock_t *dealer, const char *lease_id,
                         const char *service_id, uint64_t ttl_ms);
gt_msg_t *gt_test_release (gt_test_broker_t *self, zsock_t *dealer, const char *lease_id,
                           const char *service_id, bool retain);
gt_msg_t *gt_test_get (gt_test_broker_t *self, zsock_t *dealer, const char *lease_id);
gt_msg_t *gt_test_simple (gt_test_broker_t *self, zsock_t *dealer, gt_cmd_t cmd);
//  Value of a STATS counter (asserts it exists).
uint64_t gt_test_stat (gt_test_broker_t *self, zsock_t *dealer, const char *name);

//  A request as a new message with version 1 and the command set.
gt_msg_t gt_test_request (gt_cmd_t cmd);

//  Wait for the next event (probe events skipped), or NULL at the deadline
//  (timeout_ms from now).  *topic_p gets the topic (caller frees), may be NULL.
gt_msg_t *gt_test_event (zsock_t *sub, int timeout_ms, char **topic_p);
//  Wait for the next event, probes included (for sequence checks).
gt_msg_t *gt_test_event_all (zsock_t *sub, int timeout_ms, char **topic_p);
//  Wait for an event of this kind for this lease (others discarded).
gt_msg_t *gt_test_await_event (zsock_t *sub, gt_event_kind_t kind, const char *lease_id, int timeout_ms);
//  True if no event other than probes arrives within quiet_ms.
bool gt_test_no_event (zsock_t *sub, int quiet_ms);

//  Raw frames: send a multipart message of count frames; receive one
//  message (all frames; caller destroys) with a deadline.
void gt_test_send_frames (zsock_t *dealer, const void **data, const size_t *sizes, size_t count);
zmsg_t *gt_test_recv (zsock_t *sock, int timeout_ms);
//  Decode the last frame of a reply message (asserts it decodes).
gt_msg_t *gt_test_decode_reply (zmsg_t *msg);

//  Current wall clock ms (for timing assertions on events).
uint64_t gt_test_now (void);

#ifdef __cplusplus
}
#endif
#endif
