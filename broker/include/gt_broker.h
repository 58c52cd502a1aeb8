/*  gt_broker.h — the GarbageTruck broker, as a CZMQ actor.

    zactor_t *broker = zactor_new (gt_broker_actor, config);
        The actor copies the config (gt_config_dup); the caller keeps and
        destroys its own.  The store named by config->storage ("memory" or
        "postgres") is opened in the actor.

    Pipe commands (strings; each answered with one string frame):
        BIND endpoint       bind the ROUTER (requests); reply the port, "-1" on failure
        EVENTS endpoint     bind the PUB (events); reply the port, "-1" on failure
        VERBOSE             log every request; reply "0"
        HWM n               high-water mark of sockets bound later (tests); reply "0"
        STORE word...       passed to the store (its optional control op); only test
                            stores implement it (memory and postgres answer "-1"); reply
                            the store's answer, "-1" if it has none or refuses
        DETACH              only for stores that allow it (test stores; memory and
                            postgres do not): stop delivering callbacks, wait until every
                            batch is durable, and hand the store over: the reply is one
                            pointer frame (zsock_recv "p"), NULL if it cannot; the broker
                            then serves nothing more.  With gt_broker_actor_on_store a new
                            broker recovers from it.
        METRICS endpoint    serve /metrics on an http://host:port (or :*); reply the port, "-1" on failure
        $TERM               stop gracefully (zactor_destroy sends it): no more requests
                            read, batches in flight finished, owed replies sent
                            (GC_SHUTDOWN_LINGER); no reply
        anything else       reply "-1"

    One thread owns every table: no locks.  See gt_broker.c for the loop.  */
#ifndef GT_BROKER_H_INCLUDED
#define GT_BROKER_H_INCLUDED

#include <czmq.h>
#include "gt_config.h"

#ifdef __cplusplus
extern "C" {
#endif

//  Broker loop limits (GTLP.md §10.1)
#define GT_BROKER_REQUESTS_PER_TURN     1000        //  requests drained per loop turn
#define GT_BROKER_TIMERS_PER_TURN       10000       //  expiries processed per loop turn
#define GT_BROKER_HWM                   100000      //  PUB high-water mark (per subscriber)
#define GT_BROKER_PEER_HWM              1000        //  ROUTER high-water marks (per connection, each way)
#define GT_BROKER_BACKLOG_MAX           100000      //  replies queued for full peers
#define GT_BROKER_PAGE_BYTES            (64 * 1024) //  LIST / REPLAY page budget (at least one item)
#define GT_BROKER_SUBSCRIPTION_MAX      4096        //  bytes of one subscription message (events socket)

//  The actor (args is a const gt_config_t *).
void gt_broker_actor (zsock_t *pipe, void *args);

//  The actor on a store the caller opened, which it takes over and
//  recovers from before serving (the daemon: the store gt_storage_open
//  opened; tests: a store of their own, or one another broker handed over
//  with DETACH).
typedef struct gt_store_t gt_store_t;
typedef struct {
    const gt_config_t *config;      //  copied, as for gt_broker_actor
    gt_store_t *store;              //  taken over; recovered from before serving
} gt_broker_args_t;
void gt_broker_actor_on_store (zsock_t *pipe, void *args);

#ifdef __cplusplus
}
#endif
#endif
