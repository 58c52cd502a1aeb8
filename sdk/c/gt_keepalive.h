/*  gt_keepalive.h — keeps a set of leases alive in the background.

    An actor (zactor) with its own DEALER connection renews each lease at
    about a third of its TTL (GT_KEEPALIVE_TTL_FRACTION), with up to ±10 %
    jitter (GT_KEEPALIVE_JITTER) so that leases added together
    spread out, grouping the leases that are due at about the same time
    into RENEW_BATCH requests (one per TTL, up to 10,000 ids).  Each
    renewal asks for the TTL given to gt_keepalive_add.  The jitter is
    drawn from a random source of each keepalive's own, seeded from
    getrandom(2): keep-alives and processes started at the same moment do
    not renew in lockstep.  The Python and Go SDKs use the same defaults.

    A lease is LOST, and dropped from the set, when
      *  the broker refuses its renewal for good: LEASE_ENDED, NOT_FOUND,
         PERMISSION_DENIED, or INVALID_ARGUMENT (e.g. a TTL out of bounds);
      *  or no renewal succeeded before its deadline (the time of the last
         successful renewal request + TTL): reported as UNAVAILABLE.
    Transient failures (UNAVAILABLE, QUOTA_EXCEEDED, INTERNAL, no reply) are
    retried until the deadline.

    Each loss is reported on the actor's pipe as a message of three string
    frames: "LOST", lease id, code name (e.g. "LEASE_ENDED").  Read it with
    gt_keepalive_recv_lost, or poll gt_keepalive_sock (self) for input.  If
    the caller does not read them, the reports queue inside the actor (they
    are never dropped).

    gt_keepalive_add / _remove are asynchronous commands to the actor,
    processed in order.  add assumes the lease was just created or renewed
    (its first renewal is a third of the TTL from now); adding a lease id
    again replaces its TTL.

    Several brokers (docs/CLUSTER.md): the endpoint may be a list
    ("tcp://a:50051,tcp://b:50051").  The actor then renews through a
    routed client, which follows each lease's owner across a failover: one
    blocking RENEW_BATCH call at a time (split by owner inside the client),
    each bounded by the earliest deadline of its leases; a renewal that
    keeps failing is retried until the lease's own deadline.  MOVED and
    TRY_AGAIN are transient; with one endpoint, a MOVED switches the actor
    to the routed client (gt_client_set_routed).  While a routed call runs
    the actor does not read commands, so gt_keepalive_destroy may wait for
    it (at most the client's timeout, 5 s).  */
#ifndef GT_KEEPALIVE_H_INCLUDED
#define GT_KEEPALIVE_H_INCLUDED

#include <czmq.h>
#include "gt_proto.h"

#ifdef __cplusplus
extern "C" {
#endif

//  A lease is renewed every ttl * GT_KEEPALIVE_TTL_FRACTION, spread by up
//  to ± GT_KEEPALIVE_JITTER of that (uniformly): the same values as the
//  Python and Go SDKs' KEEPALIVE_TTL_FRACTION / KeepAliveTTLFraction and
//  KEEPALIVE_JITTER / KeepAliveJitter (tests/sdk_defaults compares them)
#define GT_KEEPALIVE_TTL_FRACTION       (1.0 / 3)
#define GT_KEEPALIVE_JITTER             0.10

typedef struct _gt_keepalive_t gt_keepalive_t;

//  Start a keepalive actor talking to endpoint (one, or a comma-separated
//  list) as service_id (the leases' owner); with GT_SERVER_KEY and
//  GT_CLIENT_CERT set, over CURVE.  Returns NULL if an argument is invalid.
gt_keepalive_t *gt_keepalive_new (const char *endpoint, const char *service_id);
//  The same with explicit CURVE settings (gt_client_set_curve; NULL takes
//  the environment); service_id may be NULL: the key's service.
gt_keepalive_t *gt_keepalive_new_curve (const char *endpoint, const char *service_id,
                                        const char *server_key, const char *client_cert);

//  Stop the actor (no more renewals; the leases then expire at the
//  broker unless released); nulls the pointer.
void gt_keepalive_destroy (gt_keepalive_t **self_p);

//  Keep lease_id alive with renewals of ttl_ms (> 0).  Returns 0, or -1 if
//  the lease id is not 32 lowercase hex characters or ttl_ms is 0.
int gt_keepalive_add (gt_keepalive_t *self, const char *lease_id, uint64_t ttl_ms);

//  Stop renewing lease_id (no LOST report for it).  Returns 0, or -1 if
//  the lease id is malformed.  Unknown ids are ignored.
int gt_keepalive_remove (gt_keepalive_t *self, const char *lease_id);

//  Wait up to timeout_ms (-1: forever) for a LOST report.  Returns 0 and
//  fills lease_id (33 bytes) and *code_p, or -1 on timeout/interrupt.
int gt_keepalive_recv_lost (gt_keepalive_t *self, int timeout_ms,
                            char lease_id [GT_LEASE_ID_LEN + 1], gt_code_t *code_p);

//  The actor's pipe: readable when a LOST report is waiting.
zsock_t *gt_keepalive_sock (gt_keepalive_t *self);

#ifdef __cplusplus
}
#endif
#endif
