/*  gt_broker.c — the broker actor: one thread, one loop, every table.

    One loop turn:
      1. zmq_poll on the pipe, the ROUTER and (asynchronous stores) the
         store's completion socket, with a timeout from the timer wheel
         (0 when work is left over from the previous turn);
      2. pipe commands; store completions (release or roll back batches);
      3. drain up to GT_BROKER_REQUESTS_PER_TURN requests without blocking,
         applying each to the tables at once;
      4. advance the wheel to now and run up to GT_BROKER_TIMERS_PER_TURN
         due timers (expiries, purges, reclaims);
      5. flush the turn's batch to the store: replies and events wait until
         it is durable (memory store: at once);
      6. send what became durable; retry replies queued for full peers.

    Timing (GTLP.md §10.1): the poll timeout is gt_wheel_timeout in whole
    ms on the clock the wheel compares against (zclock_mono), never rounded
    down, and turns with leftover work poll with 0.  A deadline D fires on
    the first turn whose clock reads >= D: at most the 1 ms slot (where the
    clock stood within its ms when the loop slept) plus the turn's
    processing late; never early.  Lateness is measured per expiry
    (STATS expiry_late_*).

    Replies are never lost without a trace: a peer that is gone
    (EHOSTUNREACH under ROUTER_MANDATORY) counts replies_dropped; a peer
    whose pipe is full (EAGAIN) gets its reply queued and retried every
    turn; a queue overflow drops with a counter and a log line.  */
#include <czmq.h>
#include <malloc.h>
#include "gt_broker.h"
#include "gt_leases.h"
#include "gt_events.h"
#include "gt_store.h"
#include "gt_storage.h"
#include "gt_broker_delivery.h"
#include "gt_broker_metrics.h"
#include "gt_log.h"
#include "gt_admission.h"
#include "gt_broker_requests.h"
#include "gt_broker_stats.h"
#include "gt_figures.h"
#include "gt_peers.h"
#include "gt_curve.h"
#include "gt_reply.h"
#include "gt_subscriptions.h"

//  --------------------------------------------------------------------------
//  The actor's state (private to this file)

//  Frames accepted in one request (envelope + body)
#define S_MAX_FRAMES    64

//  Free reply blocks kept for reuse (gt_reply.h): 4,096 of about 600 bytes
#define S_REPLY_POOL_MAX    4096

//  The frames of one request as read: frames [0 .. count-2] its envelope
//  (only the routing id if it had too many), frames [count-1] its body.
typedef struct {
    zmq_msg_t frames [S_MAX_FRAMES];    //  as libzmq gave them
    size_t count;                   //  frames read (kept)
    bool too_many;                  //  more than S_MAX_FRAMES: refused
} s_request_t;

//  The changes of one loop turn, on their way to the store.
typedef struct {
    uint64_t id;                    //  batch number, from 1
    gt_leases_mark_t mark;          //  journal position at the start
    gt_leases_mark_t end_mark;      //  journal position at the flush
    uint64_t first_seq;             //  first event seq this batch may own
    uint64_t last_seq;              //  last event seq it made (first_seq - 1: none)
    gt_reply_t *replies;             //  held replies, in order
    gt_reply_t **replies_tail;       //  where the next one goes
    size_t reclaims;                //  objects reclaimed (for delivery)
    size_t cleanups;                //  their cleanups, deduplicated
    bool dirty;                     //  something to make durable
    bool durable;                   //  the store said so (waiting for older batches)
} s_batch_t;

//  Counters for STATS (GTLP.md §5.8): kept from the first turn.
typedef struct {
    uint64_t requests;              //  requests received (malformed included)
    uint64_t requests_by_cmd [GT_CMD_COUNT_];   //  decoded ones by command
    uint64_t errors;                //  error replies
    uint64_t errors_by_code [GT_CODE_COUNT_];   //  by code
    uint64_t malformed;             //  requests that did not decode
    uint64_t events_published;      //  events sent on PUB
    uint64_t events_by_kind [GT_EVENT_COUNT_];  //  by kind
    uint64_t replies_sent;          //  replies handed to libzmq
    uint64_t replies_dropped;       //  peer gone, or backlog full
    uint64_t replies_queued;        //  replies that met a full peer pipe
    uint64_t backlog_overflows;     //  replies dropped because the backlog was full
    uint64_t refused_unread;        //  requests refused: their connection had too many unread replies
    uint64_t shed_unread;           //  requests dropped unanswered: the same, and its pipe full
    uint64_t key_revoked;           //  requests refused: their key is no longer trusted
    uint64_t batches_flushed;       //  batches handed to the store
    uint64_t batches_failed;        //  batches the store failed
    uint64_t reclaims_handed;       //  reclaimed objects handed to delivery
    uint64_t cleanups_handed;       //  cleanups handed to delivery
    uint64_t turns;                 //  loop turns
} s_counters_t;


typedef struct {
    zsock_t *pipe;                  //  actor pipe
    gt_config_t *config;            //  own copy
    zsock_t *router;                //  requests, once bound
    zsock_t *pub;                   //  events, once bound (an XPUB; in manual mode with CURVE)
    gt_subscriptions_t *subscriptions;      //  plaintext: the topics subscribed to (gt_subscriptions.h)
    bool pub_called_since_read;     //  a call on pub that may take subscriptions in came after the last read
    gt_curve_t *curve;              //  CURVE security (gt_curve.h), or NULL without
    bool curve_failed;              //  GC_CURVE_CERT was set and CURVE could not be set up: bind nothing
    long curve_wait;                //  ms until curve wants its next tick
    gt_store_t *store;              //  NULL if it could not be opened
    gt_broker_delivery_t *delivery; //  cleanup callbacks (gt_broker_delivery.c)
    gt_metrics_t *metrics;          //  figures for /metrics and STATS (gt_broker_metrics.c)
    gt_broker_metrics_t *broker_metrics;    //  snapshots, the HTTP endpoint, STATS figures (gt_broker_metrics.h)
    gt_leases_t *leases;            //  the tables
    gt_events_t *events;            //  numbering, history
    s_batch_t *current;             //  the batch of this turn
    zlistx_t *flight;               //  s_batch_t flushed, not yet released
    uint64_t batch_counter;         //  last batch id
    gt_reply_t *backlog;             //  replies waiting for a full peer
    gt_reply_t **backlog_tail;       //  where the next one goes
    size_t backlog_count;           //  how many
    gt_msg_decoder_t *decoder;      //  decodes each request into the same message (no allocation)
    gt_reply_pool_t *reply_pool;    //  free reply blocks (gt_reply.h)
    msgpack_sbuffer reply_body;     //  each reply body is encoded here, then copied into its block
    gt_peers_t *peers;              //  what each connection makes us hold (gt_peers.h)
    uint64_t freed_bytes;           //  reply bytes dropped for gone peers since the last trim
    int64_t trim_at;                //  zclock_mono of the next malloc_trim, 0 if none due
    s_counters_t counters;          //  for STATS
    int hwm;                        //  PUB high-water mark of sockets bound from now on
    int peer_hwm;                   //  ROUTER high-water marks (per connection) of sockets bound from now on
    int64_t started;                //  zclock_mono at start
    bool more_requests;             //  requests were left for the next turn
    bool more_timers;               //  due timers were left for the next turn
    gt_admission_t *admission;      //  refusal while the store is down, timer pacing (gt_admission.h)
    gt_broker_requests_t *requests; //  a request applied, its reply encoded (gt_broker_requests.h)
    bool verbose;                   //  log every request
    bool terminated;                //  $TERM received: a graceful stop, then the loop ends
    bool stepped_down;              //  the store's shards went to another broker: act on nothing
    char *advertised [2];           //  where clients reach it: requests, events (after a bind), or NULL
    int64_t ownership_retry_at;     //  cluster mode: a failed load is tried again from then (mono ms)
    uint64_t ownership_changes;     //  cluster mode: loads and handovers applied (the metrics recount)
    uint64_t load_skipped;          //  stored leases the current load could not restore
    gt_shard_map_t *own_map;        //  MAP without a store's view: this broker, every shard
} s_broker_t;


//  --------------------------------------------------------------------------
//  Replies

static void
s_count_reply (s_broker_t *self, const gt_reply_t *reply)
{
    if (reply->code != GT_OK) {
        self->counters.errors++;
        if (reply->code < GT_CODE_COUNT_)
            self->counters.errors_by_code [reply->code]++;
    }
}

//  The reply will not be sent at once: count it as owed to its peer.
static void
s_reply_owe (s_broker_t *self, gt_reply_t *reply)
{
    if (!reply->peer) {
        size_t size;
        const void *id = gt_reply_peer_id (reply, &size);
        reply->peer = gt_peers_owe (self->peers, id, size);
    }
}

//  The reply leaves the broker (sent, or dropped): settle its peer.
static void
s_reply_done (s_broker_t *self, gt_reply_t **reply_p)
{
    gt_reply_t *reply = *reply_p;
    if (reply->peer)
        gt_peers_settle (self->peers, reply->peer);
    gt_reply_recycle (self->reply_pool, reply_p);
}

//  Send now, or queue for a full peer; count the outcome.  Takes the reply.
static void
s_deliver_reply (s_broker_t *self, gt_reply_t *reply)
{
    s_count_reply (self, reply);
    int rc = self->router ? gt_reply_send (reply, zsock_resolve (self->router)) : -1;
    if (rc == 0) {
        self->counters.replies_sent++;
        gt_metrics_request_done (self->metrics, reply->cmd, reply->received);
    }
    if (rc == 1) {
        if (self->backlog_count < GT_BROKER_BACKLOG_MAX) {
            s_reply_owe (self, reply);
            reply->queued_bytes = gt_reply_bytes (reply);
            gt_peers_queued (self->peers, reply->peer, reply->queued_bytes);
            reply->next = NULL;
            *self->backlog_tail = reply;
            self->backlog_tail = &reply->next;
            self->backlog_count++;
            self->counters.replies_queued++;
            return;
        }
        self->counters.replies_dropped++;
        self->counters.backlog_overflows++;
        if (self->counters.backlog_overflows == 1 || self->counters.backlog_overflows % 10000 == 0)
            gt_log_warn ("broker", "reply backlog full (%d): dropped reply rid=%" PRIu64
                         " (%" PRIu64 " dropped so far)", GT_BROKER_BACKLOG_MAX, reply->rid,
                         self->counters.backlog_overflows);
    }
    else
    if (rc == -1)
        self->counters.replies_dropped++;
    s_reply_done (self, &reply);
}

//  A peer that left with replies queued: they and libzmq's pipe to it were
//  freed, but glibc keeps freed memory in its arenas.  Past 1 MiB, hand it
//  back to the system a second later (once libzmq's I/O thread has freed
//  the pipe as well).
#define S_TRIM_THRESHOLD    (1024 * 1024)
#define S_TRIM_DELAY_MS     1000

static void
s_note_freed (s_broker_t *self, size_t bytes)
{
    self->freed_bytes += bytes;
    if (self->freed_bytes >= S_TRIM_THRESHOLD && !self->trim_at)
        self->trim_at = zclock_mono () + S_TRIM_DELAY_MS;
}

static void
s_trim_memory (s_broker_t *self)
{
    if (self->trim_at && zclock_mono () >= self->trim_at) {
        malloc_trim (0);
        self->trim_at = 0;
        self->freed_bytes = 0;
    }
}

//  Retry queued replies: each at most once per turn.
static void
s_retry_backlog (s_broker_t *self)
{
    size_t attempts = self->backlog_count;
    while (attempts-- && self->backlog) {
        gt_reply_t *reply = self->backlog;
        self->backlog = reply->next;
        if (!self->backlog)
            self->backlog_tail = &self->backlog;
        self->backlog_count--;
        int rc = gt_reply_send (reply, zsock_resolve (self->router));
        if (rc == 0) {
            self->counters.replies_sent++;
            gt_metrics_request_done (self->metrics, reply->cmd, reply->received);
        }
        if (rc == 1) {
            reply->next = NULL;
            *self->backlog_tail = reply;
            self->backlog_tail = &reply->next;
            self->backlog_count++;
            continue;
        }
        size_t bytes = reply->queued_bytes;
        if (rc == -1) {
            self->counters.replies_dropped++;
            s_note_freed (self, bytes);
        }
        gt_peers_unqueued (self->peers, reply->peer, bytes);
        s_reply_done (self, &reply);
    }
}

//  --------------------------------------------------------------------------
//  Batches

static s_batch_t *
s_batch_current (s_broker_t *self)
{
    if (!self->current) {
        s_batch_t *batch = (s_batch_t *) zmalloc (sizeof (s_batch_t));
        assert (batch);
        batch->id = ++self->batch_counter;
        batch->mark = gt_leases_mark (self->leases);
        batch->first_seq = gt_events_next_order (self->events);
        batch->last_seq = batch->first_seq - 1;
        batch->replies_tail = &batch->replies;
        self->current = batch;
    }
    return self->current;
}

static void
s_batch_add_reply (s_batch_t *batch, gt_reply_t *reply)
{
    reply->next = NULL;
    *batch->replies_tail = reply;
    batch->replies_tail = &reply->next;
    batch->dirty = true;
}

static void
s_batch_destroy (s_batch_t **batch_p)
{
    s_batch_t *batch = *batch_p;
    if (batch) {
        while (batch->replies) {
            gt_reply_t *reply = batch->replies;
            batch->replies = reply->next;
            gt_reply_destroy (&reply);
        }
        free (batch);
        *batch_p = NULL;
    }
}

//  Read the subscription notifications waiting on the events socket.
//  libzmq takes subscriptions in only inside calls on that socket that
//  process its commands (a send, a receive, a bind, ZMQ_EVENTS: so it stays
//  out of the plaintext poll list), so after a read the set stays complete
//  until such a call: a read before a publish that follows one (or a bind;
//  pub_called_since_read) and one a turn (which keeps an idle broker's
//  notifications from piling up) are enough.  Each read costs libzmq two
//  system calls even when nothing waits.
static void
s_subscriptions_read (s_broker_t *self)
{
    if (self->subscriptions && self->pub) {
        gt_subscriptions_read (self->subscriptions, self->pub);
        self->pub_called_since_read = false;
    }
}

//  The batch is durable: publish its events, send its replies, hand its
//  reclaims to delivery.
static void
s_batch_release (s_broker_t *self, s_batch_t *batch)
{
    //  What was subscribed to until now decides what is sent
    if (self->pub_called_since_read)
        s_subscriptions_read (self);
    //  Nobody subscribed: no socket, so that no event's topic is even
    //  made to be matched (they are numbered, kept and counted all the same)
    zsock_t *pub = self->subscriptions && gt_subscriptions_none (self->subscriptions) ? NULL : self->pub;
    if (batch->last_seq >= batch->first_seq) {
        self->counters.events_published += gt_events_publish (self->events, pub, batch->last_seq,
                                                              self->counters.events_by_kind);
        if (pub && self->subscriptions)
            self->pub_called_since_read = true;
    }
    while (batch->replies) {
        gt_reply_t *reply = batch->replies;
        batch->replies = reply->next;
        s_deliver_reply (self, reply);
    }
    //  Its reclaims' cleanup callbacks (and RETRYs) go to delivery now
    self->counters.reclaims_handed += batch->reclaims;
    self->counters.cleanups_handed += batch->cleanups;
    //  Submitting may dead-letter (a full queue): the leases show it, at now
    gt_leases_clock (self->leases, (uint64_t) zclock_mono (), (uint64_t) zclock_time ());
    gt_broker_delivery_durable (self->delivery, batch->id);
    gt_leases_commit (self->leases, batch->end_mark);
}

//  The store failed this batch: undo it and every later one (the store
//  fails those too), answer all their requests UNAVAILABLE, drop their
//  events.  Older batches stay in flight.
static void
s_batch_fail_from (s_broker_t *self, s_batch_t *failed)
{
    self->counters.batches_failed++;
    uint64_t failed_id = failed->id;
    gt_leases_rollback (self->leases, failed->mark);
    gt_events_rollback (self->events, failed->first_seq);
    size_t undone = 0;
    while (true) {
        s_batch_t *batch = (s_batch_t *) zlistx_last (self->flight);
        assert (batch);             //  failed is in the list
        zlistx_detach_cur (self->flight);
        while (batch->replies) {
            gt_reply_t *reply = batch->replies;
            batch->replies = reply->next;
            msgpack_sbuffer_clear (&self->reply_body);
            gt_broker_error_body (reply->rid, GT_ERR_UNAVAILABLE,
                "the store could not make the change durable; nothing was changed", &self->reply_body);
            reply = gt_reply_rebody (self->reply_pool, reply, self->reply_body.data, self->reply_body.size);
            reply->code = GT_ERR_UNAVAILABLE;
            s_deliver_reply (self, reply);
        }
        undone++;
        bool last = batch == failed;
        s_batch_destroy (&batch);
        if (last)
            break;
    }
    gt_broker_delivery_failed (self->delivery, failed_id);
    gt_log_warn ("broker", "the store failed batch %" PRIu64 ": rolled back %zu batch(es)",
                 failed_id, undone);
}

//  End of turn: hand the batch to the store.
static void
s_flush (s_broker_t *self)
{
    s_batch_t *batch = self->current;
    if (!batch)
        return;
    self->current = NULL;
    batch->end_mark = gt_leases_mark (self->leases);
    if (!batch->dirty && batch->end_mark.position == batch->mark.position) {
        s_batch_destroy (&batch);
        return;
    }
    gt_store_status_t status = gt_store_flush (self->store, batch->id);
    self->counters.batches_flushed++;
    if (status == GT_STORE_DONE && zlistx_size (self->flight) == 0) {
        s_batch_release (self, batch);
        s_batch_destroy (&batch);
        return;
    }
    zlistx_add_end (self->flight, batch);
    if (status == GT_STORE_FAILED)
        s_batch_fail_from (self, batch);
    else
    if (status == GT_STORE_DONE) {
        //  Durable at once but behind others: released in order later
        batch->durable = true;
    }
}

//  Release the leading batches that are durable, in order.
static void
s_release_durable (s_broker_t *self)
{
    //  A durable batch is published and answered only while the broker
    //  still owns its shards: after a pause past the ownership lease it
    //  waits for the renewal, or is dropped if another broker took them
    //  (which loaded the batch and serves it now)
    if (self->store && gt_store_fenced (self->store))
        return;
    s_batch_t *batch;
    while ((batch = (s_batch_t *) zlistx_first (self->flight)) && batch->durable) {
        zlistx_detach (self->flight, NULL);
        s_batch_release (self, batch);
        s_batch_destroy (&batch);
    }
}

static void
s_handle_completions (s_broker_t *self)
{
    uint64_t id;
    bool durable;
    while (gt_store_completion (self->store, &id, &durable) == 0) {
        s_batch_t *batch = NULL;
        for (s_batch_t *b = (s_batch_t *) zlistx_first (self->flight); b;
             b = (s_batch_t *) zlistx_next (self->flight))
            if (b->id == id) {
                batch = b;
                break;
            }
        if (!batch)
            continue;               //  already rolled back with an earlier failure
        if (!durable) {
            s_batch_fail_from (self, batch);
            continue;
        }
        batch->durable = true;
        s_release_durable (self);
    }
}

//  --------------------------------------------------------------------------
//  Engine hooks: everything a mutation produces joins the current batch

static void
s_hook_event (void *ctx, gt_event_kind_t kind, const gt_lease_info_t *lease,
              gt_reason_t reason, uint64_t at)
{
    s_broker_t *self = (s_broker_t *) ctx;
    s_batch_t *batch = s_batch_current (self);
    gt_metrics_lease_event (self->metrics, kind, lease);
    const gt_event_record_t *record = gt_events_make (self->events, kind, lease, reason, at);
    if (!record) {
        gt_log_error ("broker", "cannot encode %s event of lease %s", gt_event_kind_name (kind), lease->id);
        return;
    }
    batch->last_seq = record->order;
    batch->dirty = true;
    if (record->body)               //  (deferred encoding: the store takes no events)
        gt_store_event (self->store, record->shard, record->seq, kind, at, record->topic, record->body,
                        record->size);
}

static void
s_hook_lease_put (void *ctx, const gt_lease_info_t *lease, const char *key, bool created)
{
    s_broker_t *self = (s_broker_t *) ctx;
    s_batch_current (self)->dirty = true;
    if (created)
        gt_store_lease_create (self->store, lease, key);
    else
        gt_store_lease_put (self->store, lease, key);
}

static void
s_hook_lease_delete (void *ctx, const char *lease_id, const char *object_id)
{
    s_broker_t *self = (s_broker_t *) ctx;
    s_batch_current (self)->dirty = true;
    gt_store_lease_delete (self->store, lease_id, gt_shard_of (object_id));
}

static void
s_hook_object_put (void *ctx, const char *object_id, uint64_t fence, bool live,
                   uint64_t pending_at, gt_reason_t reason, const char *last_lease_id)
{
    s_broker_t *self = (s_broker_t *) ctx;
    s_batch_current (self)->dirty = true;
    gt_store_object_t object = { object_id, fence, live, pending_at, reason, last_lease_id };
    gt_store_object_put (self->store, &object);
}

static void
s_hook_object_delete (void *ctx, const char *object_id, uint64_t fence)
{
    s_broker_t *self = (s_broker_t *) ctx;
    s_batch_current (self)->dirty = true;
    gt_store_object_delete (self->store, object_id, fence);
}

static void
s_hook_reclaim (void *ctx, const char *object_id, uint64_t fence,
                const gt_cleanup_t *const *cleanups, size_t count)
{
    (void) object_id;
    (void) fence;
    (void) cleanups;
    s_broker_t *self = (s_broker_t *) ctx;
    s_batch_t *batch = s_batch_current (self);
    batch->reclaims++;
    batch->cleanups += count;
    batch->dirty = true;
}

//  --------------------------------------------------------------------------
//  Requests (what each one does: gt_broker_requests.c)

static void
s_clock (s_broker_t *self)
{
    gt_leases_clock (self->leases, (uint64_t) zclock_mono (), (uint64_t) zclock_time ());
}

//  Receive one multipart message into request; false if none waiting.
static bool
s_recv_request (s_broker_t *self, s_request_t *request)
{
    void *router = zsock_resolve (self->router);
    zmq_msg_t *frames = request->frames;
    request->count = 0;
    request->too_many = false;
    zmq_msg_init (&frames [0]);
    if (zmq_msg_recv (&frames [0], router, ZMQ_DONTWAIT) == -1) {
        zmq_msg_close (&frames [0]);
        return false;
    }
    size_t count = 1;
    while (zmq_msg_more (&frames [count - 1])) {
        if (count == S_MAX_FRAMES) {
            //  Absurd envelope: keep the routing id and the last frame
            request->too_many = true;
            zmq_msg_t extra;
            zmq_msg_init (&extra);
            zmq_msg_recv (&extra, router, 0);
            zmq_msg_close (&frames [count - 1]);
            zmq_msg_init (&frames [count - 1]);
            zmq_msg_move (&frames [count - 1], &extra);
            zmq_msg_close (&extra);
            continue;
        }
        zmq_msg_init (&frames [count]);
        zmq_msg_recv (&frames [count], router, 0);     //  parts of a message arrive together
        count++;
    }
    if (request->too_many) {
        //  Envelope: the routing id only; body: the last frame
        zmq_msg_move (&frames [1], &frames [count - 1]);
        for (size_t index = 2; index < count; index++)
            zmq_msg_close (&frames [index]);
        count = 2;
    }
    request->count = count;
    return true;
}

static void
s_request_close (s_request_t *request)
{
    for (size_t index = 0; index < request->count; index++)
        zmq_msg_close (&request->frames [index]);
    request->count = 0;
}

static void
s_drain_requests (s_broker_t *self)
{
    self->more_requests = false;
    if (!self->router)
        return;
    size_t per_turn = gt_admission_requests_per_turn (self->admission);
    s_request_t frames;
    msgpack_sbuffer *body = &self->reply_body;
    for (size_t handled = 0; handled < per_turn; handled++) {
        if (!s_recv_request (self, &frames))
            return;
        self->counters.requests++;
        int64_t received = zclock_usecs ();
        zmq_msg_t *payload = &frames.frames [frames.count - 1];
        //  A connection that does not read its replies gets no more work
        //  done for it (gt_peers.h)
        gt_peer_verdict_t verdict = gt_peers_admit (self->peers, zmq_msg_data (&frames.frames [0]),
                                                    zmq_msg_size (&frames.frames [0]));
        if (verdict == GT_PEER_SHED) {
            self->counters.shed_unread++;
            if (self->counters.shed_unread == 1 || self->counters.shed_unread % 10000 == 0)
                gt_log_warn ("broker", "a connection does not read its replies: its requests are dropped "
                             "unanswered (%" PRIu64 " so far)", self->counters.shed_unread);
            s_request_close (&frames);
            continue;
        }
        msgpack_sbuffer_clear (body);
        gt_code_t code;
        uint64_t rid = 0;
        gt_cmd_t cmd = GT_CMD_NONE;
        char err [512];
        err [0] = '\0';
        const gt_msg_t *request = NULL;
        if (frames.too_many) {
            code = GT_ERR_INVALID_ARGUMENT;
            snprintf (err, sizeof (err), "too many frames (at most %d)", S_MAX_FRAMES);
        }
        else
            code = gt_msg_decoder_decode (self->decoder, zmq_msg_data (payload), zmq_msg_size (payload),
                                          GT_MSG_REQUEST, &request, &rid, err, sizeof (err));
        //  With CURVE, who is calling is looked up on every request, so a
        //  key removed from GC_CURVE_CLIENTS stops working on open connections
        const gt_principal_t *caller = NULL;
        if (self->curve)
            caller = gt_curve_caller (self->curve, zmq_msg_gets (payload, "User-Id"));
        bool immediate = true;
        if (code == GT_OK && verdict == GT_PEER_REFUSE) {
            rid = request->rid;
            cmd = request->cmd;
            self->counters.refused_unread++;
            code = GT_ERR_UNAVAILABLE;
            snprintf (err, sizeof (err), "too many unread replies on this connection (at most %" PRIu64
                      " requests waiting, %" PRIu64 " bytes queued): nothing was changed; read the "
                      "replies, then retry", self->config->connection_max_pending,
                      self->config->connection_max_queued_bytes);
            gt_broker_error_body (rid, code, err, body);
        }
        else
        if (code == GT_OK && self->curve && !caller) {
            rid = request->rid;
            cmd = request->cmd;
            self->counters.key_revoked++;
            code = GT_ERR_PERMISSION_DENIED;
            snprintf (err, sizeof (err), "this connection's key is no longer trusted by the broker "
                      "(it was removed from GC_CURVE_CLIENTS): nothing was done");
            gt_broker_error_body (rid, code, err, body);
        }
        else
        if (code == GT_OK) {
            rid = request->rid;
            cmd = request->cmd;
            if (cmd < GT_CMD_COUNT_)
                self->counters.requests_by_cmd [cmd]++;
            //  Reads are served from memory at once, whatever the store is
            //  doing (GTLP.md §11): only changes wait for their batch
            immediate = cmd == GT_CMD_HEALTH || cmd == GT_CMD_STATS || cmd == GT_CMD_GET
                     || cmd == GT_CMD_LIST || cmd == GT_CMD_REPLAY;
            code = gt_broker_requests_handle (self->requests, request, caller, body);
            //  Refused unapplied (store down): nothing to wait for
            if (code == GT_ERR_UNAVAILABLE)
                immediate = true;
            if (self->verbose)
                gt_log_debug ("broker", "%s rid=%" PRIu64 " -> %s", gt_cmd_name (cmd), rid, gt_code_name (code));
        }
        else {
            self->counters.malformed++;
            if (self->verbose)
                gt_log_debug ("broker", "bad request rid=%" PRIu64 ": %s: %s", rid, gt_code_name (code), err);
            gt_broker_error_body (rid, code, err, body);
        }
        gt_reply_t *reply = gt_reply_new (self->reply_pool, frames.frames, frames.count - 1,
                                          body->data, body->size);
        s_request_close (&frames);
        reply->rid = rid;
        reply->cmd = cmd;
        reply->code = code;
        reply->received = received;
        if (immediate)
            s_deliver_reply (self, reply);
        else {
            s_reply_owe (self, reply);
            s_batch_add_reply (s_batch_current (self), reply);
        }
    }
    self->more_requests = true;
}

//  --------------------------------------------------------------------------
//  Timers

static void
s_fire_timers (s_broker_t *self)
{
    s_clock (self);
    //  None while the store cannot write; paced in the catch-up after a start
    int64_t now = zclock_mono ();
    size_t budget = gt_admission_timer_budget (self->admission, now);
    size_t ran = budget ? gt_leases_advance (self->leases, budget) : 0;
    bool due = gt_leases_timeout (self->leases) == 0;
    gt_admission_timers_ran (self->admission, ran, due);
    self->more_timers = due && gt_admission_timer_budget (self->admission, now) > 0;
}

//  Poll timeout in ms: 0 if work is left, else until the wheel needs us.
static long
s_poll_timeout (s_broker_t *self)
{
    if (self->more_requests || self->more_timers)
        return 0;
    //  Changes made between turns (delivery outcomes) go to the store now
    if (self->current && self->current->dirty)
        return 0;
    s_clock (self);
    int64_t timeout = gt_admission_timer_timeout (self->admission, gt_leases_timeout (self->leases), zclock_mono ());
    if (self->backlog_count && (timeout < 0 || timeout > 1))
        timeout = 1;                //  retry queued replies every ms
    //  Cluster mode: shards to take on or hand over: look again soon
    if (self->store && gt_store_ownership_pending (self->store) && (timeout < 0 || timeout > 50))
        timeout = 50;
    //  Fenced (ownership not renewed): look again soon, to release what
    //  waits once the renewal lands
    if (self->store && gt_store_fenced (self->store) && (timeout < 0 || timeout > 50))
        timeout = 50;
    if (self->curve && (timeout < 0 || timeout > self->curve_wait))
        timeout = self->curve_wait;     //  the next look at GC_CURVE_CLIENTS
    if (self->trim_at) {
        int64_t until_trim = self->trim_at - zclock_mono ();
        if (until_trim < 0)
            until_trim = 0;
        if (timeout < 0 || timeout > until_trim)
            timeout = until_trim;
    }
    //  Waking early is harmless (the wheel never fires early); cap it so
    //  zmq_poll never sees a huge value
    if (timeout > 3600 * 1000)
        timeout = 3600 * 1000;
    return gt_metrics_poll_timeout (self->metrics, zclock_mono (), (long) timeout);
}

//  --------------------------------------------------------------------------
//  Pipe

//  Bind through libzmq, not zsock_bind: for "tcp://host:*" libzmq lets the
//  kernel choose the port, whereas CZMQ scans upwards from 49152 and so hands
//  a just-stopped broker's port to the next one, where that broker's clients
//  would silently reconnect.  Returns the bound port, or -1.
//  gt_events_wanted_fn: someone subscribed to a prefix of the topic
static bool
s_event_wanted (void *ctx, const char *topic, size_t size)
{
    return gt_subscriptions_wanted (((s_broker_t *) ctx)->subscriptions, topic, size);
}

static int
s_bind (zsock_t *sock, const char *endpoint, char *last, size_t last_size)
{
    *last = 0;
    if (zmq_bind (zsock_resolve (sock), endpoint) == -1)
        return -1;
    size_t size = last_size;
    if (zmq_getsockopt (zsock_resolve (sock), ZMQ_LAST_ENDPOINT, last, &size) == -1) {
        *last = 0;
        return 0;
    }
    const char *colon = strrchr (last, ':');
    return colon ? atoi (colon + 1) : 0;
}

//  What clients are told for a bound endpoint (the MAP, GTLP.md §14.2):
//  the endpoint libzmq reports, with a wildcard address replaced by this
//  host's name (a client cannot connect to 0.0.0.0).
static char *
s_advertised (const char *bound)
{
    const char *host = strstr (bound, "://");
    const char *colon = strrchr (bound, ':');
    if (!host || !colon || colon < host + 3)
        return strdup (bound);              //  ipc://, inproc://: as they are
    host += 3;
    size_t length = (size_t) (colon - host);
    bool wildcard = (length == 1 && *host == '*') || (length == 7 && strncmp (host, "0.0.0.0", 7) == 0)
                 || (length == 4 && strncmp (host, "[::]", 4) == 0);
    if (!wildcard)
        return strdup (bound);
    char name [256] = "localhost";
    if (gethostname (name, sizeof name) != 0)
        snprintf (name, sizeof name, "localhost");
    name [sizeof name - 1] = 0;
    return zsys_sprintf ("%.*s%s%s", (int) (host - bound), bound, name, colon);
}

//  The MAP this broker answers when its store has no view of its own: it
//  owns every shard (version 0, single mode).
static void
s_own_map (s_broker_t *self)
{
    gt_shard_map_destroy (&self->own_map);
    self->own_map = gt_shard_map_new (0, false);
    char *identity = NULL;
    if (!self->config->broker_id) {
        char name [256] = "localhost";
        if (gethostname (name, sizeof name) != 0)
            snprintf (name, sizeof name, "localhost");
        name [sizeof name - 1] = 0;
        //  host:port as the store says it, with the port really bound
        const char *colon = self->advertised [0] ? strrchr (self->advertised [0], ':') : NULL;
        int port = colon ? atoi (colon + 1) : self->config->port;
        identity = zsys_sprintf ("%s:%d", name, port);
    }
    size_t broker = gt_shard_map_add_broker (self->own_map, identity? identity: self->config->broker_id,
                                             self->advertised [0], self->advertised [1]);
    for (unsigned shard = 0; shard < GT_SHARD_COUNT; shard++)
        gt_shard_map_assign (self->own_map, broker, shard);
    zstr_free (&identity);
    gt_broker_requests_set_own_map (self->requests, self->own_map);
}

//  DETACH: stop delivering, make everything durable and hand the store
//  over, if its ops allow that (gt_store_detachable: test stores only);
//  NULL if it cannot be (a store that does not allow it, completions held).
static gt_store_t *
s_detach (s_broker_t *self)
{
    if (!self->store || !gt_store_detachable (self->store))
        return NULL;
    gt_broker_delivery_stop (self->delivery);
    s_flush (self);
    zsock_t *completions = gt_store_completion_sock (self->store);
    if (completions) {
        zpoller_t *poller = zpoller_new (completions, NULL);
        int64_t deadline = zclock_mono () + 5000;
        while (zlistx_size (self->flight) > 0 && zclock_mono () < deadline)
            if (zpoller_wait (poller, 100))
                s_handle_completions (self);
        zpoller_destroy (&poller);
    }
    s_flush (self);                 //  what releasing those batches recorded
    if (zlistx_size (self->flight) > 0 || self->current)
        return NULL;                //  completions held
    gt_store_t *store = self->store;
    self->store = NULL;
    gt_admission_set_store (self->admission, NULL);
    gt_broker_requests_set_store (self->requests, NULL);
    gt_broker_delivery_set_store (self->delivery, NULL);
    gt_broker_metrics_attach (self->broker_metrics, self->leases, NULL);
    return store;
}

static void
s_handle_pipe (s_broker_t *self)
{
    zmsg_t *msg = zmsg_recv (self->pipe);
    if (!msg) {
        self->terminated = true;
        return;
    }
    char *command = zmsg_popstr (msg);
    if (!command) {
        zmsg_destroy (&msg);
        return;
    }
    if (streq (command, "$TERM"))
        self->terminated = true;
    else
    if (streq (command, "BIND") || streq (command, "EVENTS")) {
        char *endpoint = zmsg_popstr (msg);
        int port = -1;
        bool events = streq (command, "EVENTS");
        bool allowed = true;
        if (endpoint && self->curve_failed) {
            gt_log_error ("broker", "not binding %s: CURVE (GC_CURVE_CERT) could not be set up", endpoint);
            allowed = false;
        }
        else
        if (endpoint && !self->store) {
            gt_log_error ("broker", "not binding %s: the broker has no store (it could not be opened or "
                          "recovered, or was handed over)", endpoint);
            allowed = false;
        }
        else
        if (endpoint && !self->curve && !self->config->insecure && !gt_config_endpoint_is_local (endpoint)) {
            //  Secure by default (GTLP.md §12): the daemon says this at start
            //  (gt_config_check); an embedding program meets it here
            gt_log_error ("broker", "not binding %s: beyond loopback only with CURVE (GC_CURVE_CERT) or "
                          "with GC_INSECURE=1", endpoint);
            allowed = false;
        }
        if (endpoint && self->store && allowed) {
            zsock_t **sock = events ? &self->pub : &self->router;
            bool created = *sock == NULL;
            if (created) {
                //  Events go through an XPUB: without CURVE so that an event
                //  nobody subscribed to is not sent (gt_subscriptions.h); with
                //  CURVE in manual mode, the broker deciding what each
                //  subscriber receives (gt_curve.h)
                *sock = zsock_new (events ? ZMQ_XPUB : ZMQ_ROUTER);
                assert (*sock);
                if (events && !self->curve && !self->subscriptions) {
                    self->subscriptions = gt_subscriptions_new ();
                    gt_events_set_wanted (self->events, s_event_wanted, self);
                }
                zsock_set_linger (*sock, 0);
                zsock_set_sndhwm (*sock, events ? self->hwm : self->peer_hwm);
                if (!events) {
                    zsock_set_rcvhwm (*sock, self->peer_hwm);
                    zsock_set_router_mandatory (*sock, 1);
                    zsock_set_maxmsgsize (*sock, GT_MAX_BODY_SIZE + 4096);
                }
                else
                    zsock_set_maxmsgsize (*sock, GT_BROKER_SUBSCRIPTION_MAX);
                if (events && self->curve)
                    zsock_set_xpub_manual (*sock, 1);
                if (self->curve)
                    gt_curve_secure (self->curve, *sock, events ? "events" : "requests");
            }
            char bound [256];
            port = s_bind (*sock, endpoint, bound, sizeof bound);
            if (events && self->subscriptions)
                self->pub_called_since_read = true;     //  binding processes its commands
            if (port == -1) {
                gt_log_error ("broker", "cannot bind %s: %s", endpoint, zmq_strerror (zmq_errno ()));
                if (created)
                    zsock_destroy (sock);       //  bound nowhere: as if never made
            }
            else
            if (*bound) {
                //  The first bind of each socket is what clients are told
                char **advertised = &self->advertised [events ? 1 : 0];
                if (!*advertised) {
                    *advertised = s_advertised (bound);
                    gt_store_advertise (self->store, events, *advertised);
                    s_own_map (self);
                }
            }
        }
        zstr_sendf (self->pipe, "%d", port);
        zstr_free (&endpoint);
    }
    else
    if (streq (command, "HWM")) {
        char *value = zmsg_popstr (msg);
        int hwm = value ? atoi (value) : 0;
        if (hwm > 0)
            self->hwm = self->peer_hwm = hwm;
        zstr_send (self->pipe, hwm > 0 ? "0" : "-1");
        zstr_free (&value);
    }
    else
    if (streq (command, "METRICS")) {
        char *endpoint = zmsg_popstr (msg);
        zstr_sendf (self->pipe, "%d", gt_broker_metrics_serve (self->broker_metrics, endpoint));
        zstr_free (&endpoint);
    }
    else
    if (streq (command, "VERBOSE")) {
        self->verbose = true;
        zstr_send (self->pipe, "0");
    }
    else
    if (streq (command, "DETACH"))
        zsock_send (self->pipe, "p", s_detach (self));
    else
    if (streq (command, "STORE")) {
        //  The words are the store's (gt_store_control): only test stores
        //  take any; a store without the op, or too many words, is -1
        char *words [8];
        int count = 0;
        while (count < (int) (sizeof (words) / sizeof (words [0])) && zmsg_size (msg) > 0)
            words [count++] = zmsg_popstr (msg);
        int rc = -1;
        if (self->store && count > 0 && zmsg_size (msg) == 0)
            rc = gt_store_control (self->store, count, (const char **) words);
        zstr_sendf (self->pipe, "%d", rc);
        while (count > 0)
            zstr_free (&words [--count]);
    }
    else {
        //  Every command is answered (gt_broker.h), so a caller never hangs
        gt_log_error ("broker", "unknown pipe command '%s'", command);
        zstr_send (self->pipe, "-1");
    }
    zstr_free (&command);
    zmsg_destroy (&msg);
}

//  --------------------------------------------------------------------------
//  Graceful stop

//  Replies held by batches in flight (and the turn's)
static size_t
s_replies_held (s_broker_t *self)
{
    size_t held = 0;
    for (s_batch_t *batch = (s_batch_t *) zlistx_first (self->flight); batch;
         batch = (s_batch_t *) zlistx_next (self->flight))
        for (gt_reply_t *reply = batch->replies; reply; reply = reply->next)
            held++;
    if (self->current)
        for (gt_reply_t *reply = self->current->replies; reply; reply = reply->next)
            held++;
    return held;
}

//  $TERM: read no more requests (those still in libzmq's queues are
//  dropped unread when the socket closes: their clients time out and
//  retry, and nothing of them was applied), finish the batches in flight,
//  send every reply they owe and the backlog, all within
//  GC_SHUTDOWN_LINGER; then give libzmq what is left of it to put the
//  replies on the wire.  No timer fires and no callback starts meanwhile.
static void
s_stop_gracefully (s_broker_t *self)
{
    int64_t started = zclock_mono ();
    int64_t deadline = started + (int64_t) self->config->shutdown_linger_ms;
    uint64_t sent_before = self->counters.replies_sent;
    uint64_t dropped_before = self->counters.replies_dropped;
    size_t owed = s_replies_held (self) + self->backlog_count;
    if (self->store) {
        gt_broker_delivery_stop (self->delivery);
        s_flush (self);
        zsock_t *completions = gt_store_completion_sock (self->store);
        while ((zlistx_size (self->flight) > 0 || self->backlog_count > 0)
            && self->router && zclock_mono () < deadline) {
            long timeout = self->backlog_count ? 1 : (long) (deadline - zclock_mono ());
            if (completions) {
                zmq_pollitem_t item = { zsock_resolve (completions), 0, ZMQ_POLLIN, 0 };
                if (zmq_poll (&item, 1, timeout) == -1 && errno != EINTR)
                    break;
                if (item.revents & ZMQ_POLLIN)
                    s_handle_completions (self);
            }
            else
            if (self->backlog_count)
                zclock_sleep (1);   //  nothing to wait on but a full peer pipe
            s_flush (self);         //  what releasing batches recorded
            s_retry_backlog (self);
        }
    }
    size_t unsent = s_replies_held (self) + self->backlog_count;
    int64_t remaining = deadline - zclock_mono ();
    int linger = remaining > 1000 ? (int) remaining : 1000;
    if (self->router)
        zsock_set_linger (self->router, linger);
    if (self->pub)
        zsock_set_linger (self->pub, linger);
    gt_log_info ("broker", "stopping: %zu replies were owed; %" PRIu64 " sent, %" PRIu64 " could not be "
                 "(peer gone), %zu not sent within the linger (batch unfinished or peer not reading), "
                 "in %" PRId64 " ms", owed, self->counters.replies_sent - sent_before,
                 self->counters.replies_dropped - dropped_before, unsent, zclock_mono () - started);
}

//  --------------------------------------------------------------------------
//  Recovery

//  A lease that cannot be restored (malformed, or past the GT_LEASE_MAX a
//  broker holds) stays in the store, unserved: the first is logged, then
//  the count at the load's end (s_load_end), not a line each
static void
s_load_lease (void *ctx, const gt_lease_info_t *lease, const char *key)
{
    s_broker_t *self = (s_broker_t *) ctx;
    char err [256];
    if (gt_leases_restore_lease (self->leases, lease, key, err, sizeof (err)) != GT_OK
    &&  self->load_skipped++ == 0)
        gt_log_warn ("broker", "recovery skipped a lease: %s", err);
}

static void
s_load_end (s_broker_t *self)
{
    gt_leases_restore_end (self->leases);
    if (self->load_skipped > 1)
        gt_log_warn ("broker", "recovery skipped %" PRIu64 " leases in all (the first is logged above); "
                     "they stay in the store", self->load_skipped);
    self->load_skipped = 0;
}

static void
s_load_expect (void *ctx, uint64_t leases)
{
    gt_leases_restore_expect (((s_broker_t *) ctx)->leases, (size_t) leases);
}

static void
s_load_lease_ahead (void *ctx, const uint8_t id [16], const char *object_id, size_t object_id_len)
{
    gt_leases_restore_ahead (((s_broker_t *) ctx)->leases, id, object_id, object_id_len);
}

static void
s_load_object (void *ctx, const gt_store_object_t *object)
{
    s_broker_t *self = (s_broker_t *) ctx;
    char err [256];
    if (gt_leases_restore_object (self->leases, object->object_id, object->fence, object->pending_at,
                                  object->reason, object->last_lease_id, err, sizeof (err)) != GT_OK)
        gt_log_warn ("broker", "recovery skipped an object: %s", err);
}

static void
s_load_event (void *ctx, uint64_t seq, const char *topic, const void *body, size_t size)
{
    gt_events_restore (((s_broker_t *) ctx)->events, seq, topic, body, size);
}

static void
s_load_counters (void *ctx, uint64_t last_seq, uint64_t fence_counter)
{
    s_broker_t *self = (s_broker_t *) ctx;
    if (!gt_events_sharded (self->events))
        gt_events_restore_seq (self->events, last_seq);
    char err [256];
    if (gt_leases_restore_fence_floor (self->leases, fence_counter + 1, err, sizeof (err)) != GT_OK)
        gt_log_error ("broker", "recovery kept no fence floor: %s", err);
}

//  Cluster mode: the shards' own event histories and numbering
static void
s_load_shard_event (void *ctx, unsigned shard, uint64_t seq, const char *topic, const void *body, size_t size)
{
    gt_events_restore_shard (((s_broker_t *) ctx)->events, shard, seq, topic, body, size);
}

static void
s_load_shard_seq (void *ctx, unsigned shard, uint64_t last_seq)
{
    gt_events_restore_shard_seq (((s_broker_t *) ctx)->events, shard, last_seq);
}


//  Cleanup callbacks (gt_broker_delivery.h): the engine's hook and the
//  outbox rows of a recovery go to it; it writes into the turn's batch
static void
s_hook_callback (void *ctx, const gt_lease_info_t *owner, gt_reason_t reason)
{
    gt_broker_delivery_hook (((s_broker_t *) ctx)->delivery, owner, reason);
}

static void
s_load_callback (void *ctx, const gt_store_callback_t *callback)
{
    gt_broker_delivery_load (((s_broker_t *) ctx)->delivery, callback);
}

//  What a store loads goes into the engine through these
static gt_store_loader_t
s_loader (s_broker_t *self)
{
    gt_store_loader_t loader = { self, s_load_lease, s_load_object, s_load_event, s_load_counters,
                                 s_load_callback, s_load_shard_event, s_load_shard_seq, s_load_expect,
                                 s_load_lease_ahead };
    return loader;
}

static void
s_delivery_put_row (void *ctx, const gt_store_callback_t *row)
{
    s_broker_t *self = (s_broker_t *) ctx;
    s_batch_current (self)->dirty = true;
    gt_store_callback_put (self->store, row);
}

static void
s_delivery_delete_row (void *ctx, uint64_t job_id, unsigned shard)
{
    s_broker_t *self = (s_broker_t *) ctx;
    s_batch_current (self)->dirty = true;
    gt_store_callback_delete (self->store, job_id, shard);
}

static uint64_t
s_delivery_turn (void *ctx, uint64_t *last_seq_p)
{
    s_batch_t *batch = s_batch_current ((s_broker_t *) ctx);
    batch->dirty = true;
    if (last_seq_p)
        *last_seq_p = batch->last_seq;
    return batch->id;
}

//  What the metrics module asks of the broker (gt_broker_metrics.h)
//  The broker's STATS: the figures it owns, by the table's ids
//  A service's callback-secret (its certificate's), or NULL
static const char *
s_callback_secret (void *ctx, const char *service_id)
{
    s_broker_t *self = (s_broker_t *) ctx;
    return self->curve ? gt_curve_callback_secret (self->curve, service_id) : NULL;
}

static gt_stat_t *
s_broker_figures (void *ctx, size_t *count_p)
{
    s_broker_t *self = (s_broker_t *) ctx;
    gt_leases_stats_t engine;
    gt_leases_stats (self->leases, &engine);
    const s_counters_t *c = &self->counters;
    gt_broker_delivery_counters_t callbacks;
    gt_broker_delivery_counters (self->delivery, &callbacks);
    gt_curve_counters_t curve = { 0, 0, 0, 0 };
    if (self->curve)
        gt_curve_counters (self->curve, &curve);

    //  Every figure of the table (gt_figures.h), by its id
    uint64_t values [GT_FIGURE_COUNT_] = {
        [GT_FIGURE_ACTIVE_LEASES] = engine.active_leases,
        [GT_FIGURE_ACTIVE_OBJECTS] = engine.active_objects,
        [GT_FIGURE_LEASES_CREATED] = c->events_by_kind [GT_EVENT_LEASE_CREATED],
        [GT_FIGURE_LEASES_RENEWED] = c->events_by_kind [GT_EVENT_LEASE_RENEWED],
        [GT_FIGURE_LEASES_RELEASED] = c->events_by_kind [GT_EVENT_LEASE_RELEASED],
        [GT_FIGURE_LEASES_EXPIRED] = c->events_by_kind [GT_EVENT_LEASE_EXPIRED],
        [GT_FIGURE_OBJECTS_RECLAIMED] = c->events_by_kind [GT_EVENT_OBJECT_RECLAIMED],
        [GT_FIGURE_EVENTS_PUBLISHED] = c->events_published,
        [GT_FIGURE_LAST_SEQ] = gt_events_last_seq (self->events),
        [GT_FIGURE_REQUESTS] = c->requests,
        [GT_FIGURE_ERRORS] = c->errors,
        [GT_FIGURE_REPLIES_DROPPED] = c->replies_dropped,
        [GT_FIGURE_REQUESTS_MALFORMED] = c->malformed,
        [GT_FIGURE_REPLIES_QUEUED] = c->replies_queued,
        [GT_FIGURE_REPLIES_BACKLOG] = self->backlog_count,
        [GT_FIGURE_REPLIES_BACKLOG_OVERFLOWS] = c->backlog_overflows,
        [GT_FIGURE_REPLIES_BACKLOG_BYTES] = gt_peers_queued_bytes (self->peers),
        [GT_FIGURE_REQUESTS_REFUSED_UNREAD] = c->refused_unread,
        [GT_FIGURE_REQUESTS_SHED_UNREAD] = c->shed_unread,
        [GT_FIGURE_CURVE_PRINCIPALS] = curve.principals,
        [GT_FIGURE_CURVE_HANDSHAKES] = curve.handshakes,
        [GT_FIGURE_CURVE_HANDSHAKES_FAILED] = curve.handshakes_failed,
        [GT_FIGURE_CURVE_KEYS_REFUSED] = curve.keys_refused,
        [GT_FIGURE_REQUESTS_KEY_REVOKED] = c->key_revoked,
        [GT_FIGURE_RETAINED_LEASES] = engine.retained_leases,
        [GT_FIGURE_PENDING_RECLAIMS] = engine.pending_reclaims,
        [GT_FIGURE_SERVICES] = engine.services,
        [GT_FIGURE_LAST_FENCE] = engine.last_fence,
        [GT_FIGURE_EVENT_HISTORY_OLDEST_SEQ] = gt_events_oldest_seq (self->events),
        [GT_FIGURE_EXPIRY_LATE_MAX_MS] = engine.expiry_late_max_ms,
        [GT_FIGURE_EXPIRY_LATE_0MS] = engine.expiry_late [0],
        [GT_FIGURE_EXPIRY_LATE_1MS] = engine.expiry_late [1],
        [GT_FIGURE_EXPIRY_LATE_LE_2MS] = engine.expiry_late [2],
        [GT_FIGURE_EXPIRY_LATE_LE_5MS] = engine.expiry_late [3],
        [GT_FIGURE_EXPIRY_LATE_LE_10MS] = engine.expiry_late [4],
        [GT_FIGURE_EXPIRY_LATE_GT_10MS] = engine.expiry_late [5],
        [GT_FIGURE_STORE_BATCHES] = c->batches_flushed,
        [GT_FIGURE_STORE_BATCHES_FAILED] = c->batches_failed,
        [GT_FIGURE_STORE_BATCHES_IN_FLIGHT] = zlistx_size (self->flight),
        [GT_FIGURE_RECLAIMS_HANDED] = c->reclaims_handed,
        [GT_FIGURE_CLEANUPS_HANDED] = c->cleanups_handed,
        [GT_FIGURE_CALLBACKS_PENDING] = callbacks.pending,
        [GT_FIGURE_CALLBACKS_DELIVERED] = callbacks.delivered,
        [GT_FIGURE_CALLBACKS_DEAD] = callbacks.dead,
        [GT_FIGURE_CALLBACKS_DEAD_LETTERS] = callbacks.dead_letters,
        [GT_FIGURE_CALLBACKS_QUEUE_FULL] = callbacks.queue_full,
        [GT_FIGURE_CALLBACKS_RETRIED] = callbacks.retried,
        [GT_FIGURE_CALLBACKS_RECOVERED] = callbacks.recovered,
        [GT_FIGURE_CALLBACK_ATTEMPTS] = callbacks.attempts,
        [GT_FIGURE_CALLBACK_FAILURES] = callbacks.failures,
        [GT_FIGURE_LOOP_TURNS] = c->turns,
        [GT_FIGURE_UPTIME_MS] = (uint64_t) (zclock_mono () - self->started),
    };
    return gt_broker_stats_build (values, c->requests_by_cmd, c->errors_by_code, self->broker_metrics, count_p);
}

//  Failed batches, plus shards loaded or handed over (cluster mode): each
//  changes the leases without events, so the by-type census is redone
static uint64_t
s_metrics_failures (void *ctx)
{
    s_broker_t *self = (s_broker_t *) ctx;
    return self->counters.batches_failed + self->ownership_changes;
}

static void
s_metrics_bound (void *ctx, bool *requests_p, bool *events_p)
{
    s_broker_t *self = (s_broker_t *) ctx;
    *requests_p = self->router != NULL;
    *events_p = self->pub != NULL;
}

//  --------------------------------------------------------------------------
//  Actor

static s_broker_t *
s_broker_new (zsock_t *pipe, const gt_config_t *config, gt_store_t *store)
{
    s_broker_t *self = (s_broker_t *) zmalloc (sizeof (s_broker_t));
    assert (self);
    self->pipe = pipe;
    self->config = gt_config_dup (config);
    self->verbose = config->verbose;
    self->started = zclock_mono ();
    self->metrics = gt_metrics_new ();
    gt_broker_metrics_source_t source = { self, s_broker_figures, s_metrics_failures, s_metrics_bound };
    self->broker_metrics = gt_broker_metrics_new (self->metrics, &source);
    self->hwm = GT_BROKER_HWM;
    self->peer_hwm = GT_BROKER_PEER_HWM;
    self->peers = gt_peers_new (config->connection_max_pending, config->connection_max_queued_bytes);
    self->backlog_tail = &self->backlog;
    self->decoder = gt_msg_decoder_new ();
    self->reply_pool = gt_reply_pool_new (S_REPLY_POOL_MAX);
    msgpack_sbuffer_init (&self->reply_body);
    self->flight = zlistx_new ();
    zlistx_set_destructor (self->flight, (zlistx_destructor_fn *) s_batch_destroy);
    char err [256] = "";
    self->store = store ? store : gt_storage_open (config, err, sizeof (err));
    if (!self->store)
        gt_log_error ("broker", "%s", err);
    if (config->curve_cert) {
        self->curve = gt_curve_new (config, err, sizeof (err));
        self->curve_failed = !self->curve;
        if (!self->curve)
            gt_log_error ("broker", "%s", err);
    }
    self->events = gt_events_new (config->event_history);
    if (config->cluster)
        gt_events_shard (self->events);     //  numbered per shard (GTLP.md §14.4)
    //  Nothing stores their bodies (cluster mode has a store that does, or
    //  no store at all and does not start)
    if (!config->cluster && !(self->store && gt_store_records (self->store)))
        gt_events_defer_encoding (self->events);
    self->delivery = gt_broker_delivery_new (config);
    if (self->curve)
        gt_broker_delivery_set_secrets (self->delivery, s_callback_secret, self);
    gt_leases_hooks_t hooks = { .ctx = self, .event = s_hook_event, .reclaim = s_hook_reclaim,
                                .callback = s_hook_callback };
    if (self->store && gt_store_records (self->store)) {
        hooks.lease_put = s_hook_lease_put;
        hooks.lease_delete = s_hook_lease_delete;
        hooks.object_put = s_hook_object_put;
        hooks.object_delete = s_hook_object_delete;
    }
    self->leases = gt_leases_new (config, &hooks, (uint64_t) zclock_mono (), (uint64_t) zclock_time ());
    gt_broker_delivery_batch_t delivery_batch = { self, s_delivery_turn, s_delivery_put_row,
                                                  s_delivery_delete_row };
    gt_broker_delivery_attach (self->delivery, self->leases, self->store, &delivery_batch);
    gt_broker_metrics_attach (self->broker_metrics, self->leases, self->store);
    if (self->store) {
        gt_store_loader_t loader = s_loader (self);
        gt_leases_restore_begin (self->leases);
        int rc = gt_store_recover (self->store, &loader, err, sizeof (err));
        s_load_end (self);
        if (rc != 0) {
            gt_log_error ("broker", "recovery failed: %s", err);
            gt_store_destroy (&self->store);
            gt_broker_delivery_set_store (self->delivery, NULL);
            gt_broker_metrics_attach (self->broker_metrics, self->leases, NULL);
        }
    }
    //  Asynchronous stores may fail a batch: keep undo records
    if (self->store && gt_store_async (self->store))
        gt_leases_journal (self->leases, true);
    self->admission = gt_admission_new (config, self->store);
    gt_broker_requests_parts_t parts = { self->leases, self->events, self->store, self->admission,
                                         self->delivery, s_broker_figures, self };
    self->requests = gt_broker_requests_new (config, self->started, &parts);
    return self;
}

static void
s_broker_destroy (s_broker_t **self_p)
{
    s_broker_t *self = *self_p;
    if (!self)
        return;
    gt_broker_metrics_destroy (&self->broker_metrics);     //  its HTTP endpoint reads the figures
    gt_metrics_destroy (&self->metrics);
    gt_broker_delivery_destroy (&self->delivery);
    s_batch_destroy (&self->current);
    zlistx_destroy (&self->flight);
    while (self->backlog) {
        gt_reply_t *reply = self->backlog;
        self->backlog = reply->next;
        gt_reply_destroy (&reply);
    }
    gt_reply_pool_destroy (&self->reply_pool);
    gt_msg_decoder_destroy (&self->decoder);
    msgpack_sbuffer_destroy (&self->reply_body);
    gt_peers_destroy (&self->peers);
    gt_leases_destroy (&self->leases);
    gt_events_destroy (&self->events);
    gt_broker_requests_destroy (&self->requests);
    gt_admission_destroy (&self->admission);
    gt_store_destroy (&self->store);
    zsock_destroy (&self->router);
    zsock_destroy (&self->pub);
    gt_subscriptions_destroy (&self->subscriptions);
    gt_curve_destroy (&self->curve);        //  after its sockets: no moment without the ZAP handler
    gt_config_destroy (&self->config);
    gt_shard_map_destroy (&self->own_map);
    zstr_free (&self->advertised [0]);
    zstr_free (&self->advertised [1]);
    free (self);
    *self_p = NULL;
}

//  Cluster mode (gt_store.h): load the shards the store acquired and hand
//  over those it is giving up, at a quiet point: nothing in flight and
//  nothing recorded, so the journal holds nothing and no batch writes a
//  shard as it changes hands.  True while the broker drains towards that
//  point (it then reads no request and fires no timer).
static bool
s_ownership_work (s_broker_t *self)
{
    if (!gt_store_ownership_pending (self->store) || zclock_mono () < self->ownership_retry_at)
        return false;
    if (zlistx_size (self->flight) || (self->current && self->current->dirty))
        return true;
    uint8_t forget [GT_SHARD_COUNT / 8];
    gt_store_loader_t loader = s_loader (self);
    char err [256] = "";
    //  What is loaded is no change: nothing to undo
    gt_leases_journal (self->leases, false);
    gt_leases_restore_begin (self->leases);
    int rc = gt_store_ownership_apply (self->store, &loader, forget, err, sizeof (err));
    s_load_end (self);
    gt_leases_journal (self->leases, true);
    self->ownership_changes++;
    if (rc != 0) {
        gt_log_warn ("broker", "cannot take the acquired shards on yet (%s): trying again in 1 s; "
                     "their requests are answered TRY_AGAIN meanwhile", err);
        self->ownership_retry_at = zclock_mono () + 1000;
        return false;
    }
    bool any = false;
    for (unsigned index = 0; index < GT_SHARD_COUNT / 8; index++)
        any = any || forget [index];
    if (any) {
        size_t leases = gt_leases_forget_shards (self->leases, forget);
        for (unsigned shard = 0; shard < GT_SHARD_COUNT; shard++)
            if ((forget [shard / 8] >> (shard % 8)) & 1)
                gt_events_forget_shard (self->events, shard);
        gt_broker_delivery_forget_shards (self->delivery, forget);
        gt_store_handed_over (self->store, forget);
        gt_log_info ("broker", "handed shards over: %zu leases forgotten here, served by their new owner", leases);
    }
    return false;
}

//  The store's shards went to another broker (docs/CLUSTER.md): it serves
//  them now, from what this broker made durable.  Nothing more is read,
//  committed, published, answered or called back; the pipe hears it
//  ("STOPPED", unasked: the daemon exits) and then only $TERM.
static void
s_step_down (s_broker_t *self)
{
    gt_log_error ("broker", "stepping down: another broker owns the shards now; %zu batch(es) in flight "
                  "and their replies are dropped (their clients retry there)", zlistx_size (self->flight));
    self->stepped_down = true;
    gt_broker_delivery_stop (self->delivery);
    zstr_send (self->pipe, "STOPPED");
    while (!self->terminated) {
        zmsg_t *msg = zmsg_recv (self->pipe);
        char *command = msg ? zmsg_popstr (msg) : NULL;
        if (!msg || (command && streq (command, "$TERM")))
            self->terminated = true;
        else
            zstr_send (self->pipe, "-1");
        zstr_free (&command);
        zmsg_destroy (&msg);
    }
}

static void
s_broker_run (zsock_t *pipe, const gt_config_t *config, gt_store_t *store)
{
    s_broker_t *self = s_broker_new (pipe, config, store);
    zsock_signal (pipe, 0);
    while (!self->terminated) {
        zmq_pollitem_t items [7 + GT_CURVE_MAX_SOCKS];
        int count = 0;
        items [count++] = (zmq_pollitem_t) { zsock_resolve (self->pipe), 0, ZMQ_POLLIN, 0 };
        int router_item = -1, store_item = -1;
        if (self->router) {
            router_item = count;
            items [count++] = (zmq_pollitem_t) { zsock_resolve (self->router), 0, ZMQ_POLLIN, 0 };
        }
        zsock_t *completions = self->store ? gt_store_completion_sock (self->store) : NULL;
        if (completions) {
            store_item = count;
            items [count++] = (zmq_pollitem_t) { zsock_resolve (completions), 0, ZMQ_POLLIN, 0 };
        }
        zsock_t *outcomes = gt_broker_delivery_sock (self->delivery);
        if (outcomes)
            items [count++] = (zmq_pollitem_t) { zsock_resolve (outcomes), 0, ZMQ_POLLIN, 0 };
        int ownership_item = -1;
        zsock_t *ownership = self->store ? gt_store_ownership_sock (self->store) : NULL;
        if (ownership) {
            ownership_item = count;
            items [count++] = (zmq_pollitem_t) { zsock_resolve (ownership), 0, ZMQ_POLLIN, 0 };
        }
        //  The handshake gate and the subscriptions (CURVE)
        if (self->curve) {
            zsock_t *gate [GT_CURVE_MAX_SOCKS];
            size_t gates = gt_curve_socks (self->curve, gate);
            for (size_t index = 0; index < gates; index++)
                items [count++] = (zmq_pollitem_t) { zsock_resolve (gate [index]), 0, ZMQ_POLLIN, 0 };
            if (self->pub)
                items [count++] = (zmq_pollitem_t) { zsock_resolve (self->pub), 0, ZMQ_POLLIN, 0 };
        }
        int metrics_item = -1;
        int wake_fd = gt_metrics_wake_fd (self->metrics);
        if (wake_fd >= 0) {
            metrics_item = count;
            items [count++] = (zmq_pollitem_t) { NULL, wake_fd, ZMQ_POLLIN, 0 };
        }
        if (zmq_poll (items, count, s_poll_timeout (self)) == -1) {
            if (errno == EINTR)
                continue;
            break;                  //  context terminated
        }
        if (items [0].revents & ZMQ_POLLIN) {
            s_handle_pipe (self);
            if (self->terminated) {
                s_stop_gracefully (self);
                break;
            }
        }
        (void) router_item;
        if (ownership_item >= 0 && (items [ownership_item].revents & ZMQ_POLLIN)
        &&  !gt_store_ownership_read (self->store)) {
            s_step_down (self);
            break;
        }
        if (store_item >= 0 && (items [store_item].revents & ZMQ_POLLIN))
            s_handle_completions (self);
        s_release_durable (self);   //  what waited for a renewal of the shards
        if (metrics_item >= 0 && (items [metrics_item].revents & ZMQ_POLLIN))
            gt_metrics_wake_drain (self->metrics);
        gt_broker_metrics_tick (self->broker_metrics);
        s_subscriptions_read (self);
        if (self->curve) {
            //  Handshakes wait for these answers: before anything else
            self->curve_wait = gt_curve_tick (self->curve);
            for (int subscriptions = 0; self->pub && subscriptions < 1000; subscriptions++)
                if (!gt_curve_subscription (self->curve, self->pub))
                    break;
        }
        if (!self->store)
            continue;
        //  Open the turn's batch before any mutation: its journal mark and
        //  first event seq must precede them
        s_batch_current (self);
        //  Cluster mode: shards to load or hand over first, at a quiet
        //  point; until then no request is read and no timer fires
        if (!s_ownership_work (self)) {
            s_drain_requests (self);
            s_fire_timers (self);
        }
        s_clock (self);             //  outcomes change leases' cleanup state
        gt_broker_delivery_outcomes (self->delivery);
        s_flush (self);
        s_retry_backlog (self);
        s_trim_memory (self);
        self->counters.turns++;
    }
    s_broker_destroy (&self);
}

void
gt_broker_actor (zsock_t *pipe, void *args)
{
    s_broker_run (pipe, (const gt_config_t *) args, NULL);
}

void
gt_broker_actor_on_store (zsock_t *pipe, void *args)
{
    const gt_broker_args_t *broker_args = (const gt_broker_args_t *) args;
    s_broker_run (pipe, broker_args->config, broker_args->store);
}
