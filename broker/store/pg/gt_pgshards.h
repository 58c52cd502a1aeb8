/*  gt_pgshards.h — shard ownership in PostgreSQL: acquire, renew, release.

    Several brokers may run on one database (docs/CLUSTER.md).  Which of
    them acts on which shard is decided by the rows of gt_shards (migration
    004): owner, epoch, owned_until on PostgreSQL's clock.  This module is
    a thread (zactor) with its own connection that keeps this broker's
    ownership:

    * Acquire.  In single mode a broker owns every shard or none: it takes
      all 256 in one transaction (rows locked in shard order, FOR UPDATE),
      and only when each is free (owner NULL), expired (owned_until <
      now()) or already its own (owner = broker_id: a restart of the same
      broker takes over at once).  Another broker's expired shards are
      taken when their lease ran out while this broker's connection (so
      the database) had been up for a reconnect delay, a renewal period
      and the margin: the owner's own doing.  A lease that ran out earlier
      (PostgreSQL itself was away, and every lease ran out on its clock)
      is taken only once this connection is a lease and a reconnect delay
      old: the owners, alive, try again within a reconnect delay and renew
      within a lease, and taking their shards before would fail them over
      for nothing.  Every acquired row's epoch is raised by
      one.  A broker that cannot acquire is a standby: it tries again every
      acquire_ms and whenever another broker releases (LISTEN gt_shards).
    * Renew.  Every renew_ms it extends owned_until = now() + lease_ms for
      the shards it holds at the epochs it acquired, and heartbeats its
      gt_brokers row (endpoint, events_endpoint, seen_until).  A shard the
      renewal does not find (epoch raised, owner changed) is lost: LOST.
    * Self-fencing.  gt_pgshards_valid_until is the monotonic time until
      which the broker may act: t + lease_ms - margin_ms, where t is the
      monotonic clock read BEFORE the last successful acquire or renew was
      sent.  PostgreSQL's clock can therefore give a shard away only after
      the broker stopped acting on it (clocks run at the same rate; the
      margin covers their drift).  Past it the broker refuses mutations and
      fires no timers until a renewal succeeds again.
    * Release (graceful stop): owner = NULL on its shards and NOTIFY
      gt_shards in one transaction, so a standby acquires at once.

    Cluster mode (options.cluster, GTLP.md §14.1): a broker holds a SHARE.
    Every acquire_ms (and on a NOTIFY) it heartbeats, counts the live
    brokers (gt_brokers seen until now or later: n), and takes free,
    expired or its own shards up to ceil (256 / n), skipping rows another
    broker is taking at that moment (SKIP LOCKED), lowest shards first,
    each at its epoch + 1: ACQUIRED names only the new ones.  When it holds
    more than its share (a broker joined) it asks the broker to hand the
    surplus over (SHED, the highest shards); the broker stops acting on
    them, makes what it wrote durable, forgets them, and calls
    gt_pgshards_release_shards; only then is the next surplus named.  A
    dead broker's shards run out and the others' shares grow to take them.

    The epoch is what fences.  The writer's every transaction starts with
    gt_prove_epochs (004_shards.sql), which fails it unless this broker
    still holds each shard it writes at the epoch it acquired; in single
    mode gt_prove_epoch_single (007), shard 0's row alone, since every
    acquisition and release there writes all the rows.  A broker
    that was paused or cut off past its lease can therefore never commit
    again for a shard another broker took.

    Losing the database: the thread reconnects with backoff (100 ms doubling
    to renew_ms, at most 2 s) and renews as soon as it is back; meanwhile
    valid_until runs out and the broker fences itself.  If nobody took the shards meanwhile
    (same epoch), the renewal succeeds and the broker goes on: nothing else
    can have acted on them.  Statements run with lock_timeout and
    statement_timeout of renew_ms, so a renewal never waits behind a stuck
    transaction for longer than that.

    Notices, in order, on gt_pgshards_sock (poll it; read with
    gt_pgshards_recv):
        ACQUIRED   shards (bitmap) and their epochs: the broker may load and act on them
        LOST       shards (bitmap): taken by another broker; never act on them again
        STATE      connected or not, with a text (for logs and HEALTH)
        MAP        who owns which shard (gt_shards, the live gt_brokers), read
                   after every acquisition attempt and renewal, sent when it
                   changed; the notice carries a map the receiver destroys
    The defaults imply the failover time: a dead owner's shards are free
    lease_ms after its last renewal; a standby polling every acquire_ms
    takes them at most acquire_ms later, i.e. 3.5 s, plus the load, when
    the database was up and the standby connected to it at least a
    reconnect delay, a renewal period and the margin before the lease ran
    out; otherwise a lease and a reconnect delay after it connected (see
    Acquire).  */
#ifndef GT_PGSHARDS_H_INCLUDED
#define GT_PGSHARDS_H_INCLUDED

#include <czmq.h>
#include "gt_proto.h"
#include "gt_shard_map.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gt_pgshards_t gt_pgshards_t;

//  Bytes of a bitmap with one bit per shard (bit s % 8 of byte s / 8)
#define GT_PGSHARDS_BITMAP      (GT_SHARD_COUNT / 8)

typedef struct {
    const char *broker_id;          //  GC_BROKER_ID: unique per broker (required)
    const char *endpoint;           //  advertised request endpoint (gt_brokers.endpoint); NULL: ""
    const char *events_endpoint;    //  advertised events endpoint; NULL: ""
    int64_t lease_ms;               //  ownership lease; default 3000
    int64_t renew_ms;               //  renewal period (< lease_ms - margin_ms); default 1000
    int64_t margin_ms;              //  self-fencing margin; default 500
    int64_t acquire_ms;             //  standby's acquisition poll; default 500
    bool cluster;                   //  cluster mode: a share of the shards, not all or none (see above)
    bool endpoint_pending;          //  cluster mode: endpoint is not where clients reach it until
                                    //  gt_pgshards_advertise (a port of 0, bound later): no share before
} gt_pgshards_options_t;

typedef enum {
    GT_PGSHARDS_ACQUIRED = 0,       //  shards acquired (epochs valid for them)
    GT_PGSHARDS_LOST,               //  shards lost to another broker
    GT_PGSHARDS_STATE,              //  connection state changed
    GT_PGSHARDS_SHED,               //  cluster mode: hand these over (gt_pgshards_release_shards)
    GT_PGSHARDS_MAP                 //  who owns what changed (map)
} gt_pgshards_notice_kind_t;

typedef struct {
    gt_pgshards_notice_kind_t kind; //  what happened
    uint8_t shards [GT_PGSHARDS_BITMAP];    //  ACQUIRED / LOST: the shards concerned
    uint64_t epochs [GT_SHARD_COUNT];       //  ACQUIRED: epoch of each shard in shards
    bool connected;                 //  STATE: connected (else lost)
    char text [256];                //  STATE: detail; LOST: who took them; SHED: why; else empty
    gt_shard_map_t *map;            //  MAP: the new map, the receiver's to destroy; else NULL
} gt_pgshards_notice_t;

//  Fill options with the defaults (broker_id NULL: the caller sets it).
void gt_pgshards_options_init (gt_pgshards_options_t *options);

//  Start the thread.  conninfo: key=value or URL (the store's, see
//  gt_store_pg_conninfo); options are copied.  Returns NULL if options
//  are invalid (no broker_id, renew_ms + margin_ms >= lease_ms).  The
//  thread connects by itself (STATE notices tell how it goes).
gt_pgshards_t *gt_pgshards_new (const char *conninfo, const gt_pgshards_options_t *options);
//  Stop the thread; nulls the pointer.  Does NOT release the shards (a
//  crash-like stop: they expire); call gt_pgshards_release first for a
//  graceful one.
void gt_pgshards_destroy (gt_pgshards_t **self_p);

//  The socket notices arrive on: poll it for input.
zsock_t *gt_pgshards_sock (gt_pgshards_t *self);
//  Receive one notice (blocks: poll first).  0, or -1 if interrupted.
int gt_pgshards_recv (gt_pgshards_t *self, gt_pgshards_notice_t *notice);

//  Monotonic ms (zclock_mono) until which the broker may act on its
//  shards; 0 while it holds none.  Any thread may read it.
int64_t gt_pgshards_valid_until (gt_pgshards_t *self);

//  Graceful release: stop renewing, set owner = NULL on every shard this
//  broker holds at its epochs, NOTIFY gt_shards; waits up to timeout_ms.
//  Returns the number of shards released, -1 if it could not (then they
//  expire after lease_ms).  The caller must have stopped writing first.
int gt_pgshards_release (gt_pgshards_t *self, int64_t timeout_ms);

//  Cluster mode: hand these shards over (owner NULL at their epochs,
//  NOTIFY gt_shards), after a SHED notice named them and the broker
//  stopped acting on them; waits up to timeout_ms.  The others stay held.
//  Returns the number released, -1 if it could not (they run out).
int gt_pgshards_release_shards (gt_pgshards_t *self, const uint8_t *shards, int64_t timeout_ms);

//  Record another advertised endpoint (events: the events one) from the
//  next heartbeat on, which comes at once; NULL or "" keeps the current.
void gt_pgshards_advertise (gt_pgshards_t *self, bool events, const char *endpoint);

//  Bitmap helpers
static inline bool
gt_pgshards_has (const uint8_t *bitmap, unsigned shard)
{
    return (bitmap [shard / 8] >> (shard % 8)) & 1;
}
static inline void
gt_pgshards_set (uint8_t *bitmap, unsigned shard)
{
    bitmap [shard / 8] |= (uint8_t) (1u << (shard % 8));
}

#ifdef __cplusplus
}
#endif
#endif
