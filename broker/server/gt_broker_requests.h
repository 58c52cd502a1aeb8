/*  gt_broker_requests.h — one decoded request applied to the broker's
    tables (the lease engine, through its API), and the encoded reply body.
    The actor reads, admits and decodes the request, and decides when the
    reply leaves (at once for a read, when its batch is durable for a
    change): this module only answers it.  Runs in the broker's thread, on
    parts it borrows from the actor.  */
#ifndef GT_BROKER_REQUESTS_H_INCLUDED
#define GT_BROKER_REQUESTS_H_INCLUDED

#include <czmq.h>
#include "gt_msg.h"
#include "gt_config.h"
#include "gt_leases.h"
#include "gt_events.h"
#include "gt_store.h"
#include "gt_admission.h"
#include "gt_broker_delivery.h"
#include "gt_principals.h"

typedef struct _gt_broker_requests_t gt_broker_requests_t;

//  The broker's STATS list now (names static; the caller frees the array).
typedef gt_stat_t *(gt_broker_requests_stats_fn) (void *ctx, size_t *count_p);

//  What a request may touch (all borrowed; store may be NULL).
typedef struct {
    gt_leases_t *leases;
    gt_events_t *events;
    gt_store_t *store;
    gt_admission_t *admission;
    gt_broker_delivery_t *delivery;
    gt_broker_requests_stats_fn *stats;
    void *stats_ctx;
} gt_broker_requests_parts_t;

//  Settings from config (copied); started: zclock_mono of the broker's start.
gt_broker_requests_t *gt_broker_requests_new (const gt_config_t *config, int64_t started,
                                              const gt_broker_requests_parts_t *parts);
void gt_broker_requests_destroy (gt_broker_requests_t **self_p);
//  The store changed (NULL: handed over, or lost at the start).
void gt_broker_requests_set_store (gt_broker_requests_t *self, gt_store_t *store);

//  The MAP answered when the store has no view of its own (a single
//  broker: every shard its own); borrowed, NULL until the broker bound.
void gt_broker_requests_set_own_map (gt_broker_requests_t *self, const gt_shard_map_t *map);

//  Handle one decoded request of caller (the CURVE principal; NULL
//  without CURVE: the request acts as the service it names); returns its
//  code and the encoded reply body.  With a caller,
//  its role's rules apply first (gt_access.h).  The reply body is
//  appended to body (the caller's reused buffer: no allocation per reply).
gt_code_t gt_broker_requests_handle (gt_broker_requests_t *self, const gt_msg_t *request,
                                     const gt_principal_t *caller, msgpack_sbuffer *body);
//  Append an error reply body; message trimmed to valid UTF-8.
void gt_broker_error_body (uint64_t rid, gt_code_t code, const char *message, msgpack_sbuffer *body);

#endif
