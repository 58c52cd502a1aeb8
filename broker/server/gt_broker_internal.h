/*  gt_broker_internal.h — the broker actor's private state, shared by
    gt_broker.c, gt_broker_stats.c and the selftest.  */
#ifndef GT_BROKER_INTERNAL_H_INCLUDED
#define GT_BROKER_INTERNAL_H_INCLUDED

#include "gt_peers.h"

//  Frames accepted in one request (envelope + body)
#define S_MAX_FRAMES    64

//  A request's envelope: count frames, each stored as uint32 size + bytes.
typedef struct {
    size_t count;                   //  frames
    uint8_t data [];                //  packed frames
} s_envelope_t;

typedef struct s_reply_t s_reply_t;
struct s_reply_t {
    s_reply_t *next;                //  next in a batch or in the backlog
    s_envelope_t *envelope;         //  echoed in front of the body
    uint64_t rid;                   //  the request's id (to re-answer UNAVAILABLE)
    gt_cmd_t cmd;                   //  the request's command
    gt_code_t code;                 //  the reply's code
    void *body;                     //  encoded reply
    size_t size;                    //  its bytes
    int64_t received;               //  zclock_usecs when the request was read (metrics)
    gt_peer_t *peer;                //  the peer's record while the reply is owed (held or queued), else NULL
};

//  The changes of one loop turn, on their way to the store.
typedef struct {
    uint64_t id;                    //  batch number, from 1
    gt_leases_mark_t mark;          //  journal position at the start
    gt_leases_mark_t end_mark;      //  journal position at the flush
    uint64_t first_seq;             //  first event seq this batch may own
    uint64_t last_seq;              //  last event seq it made (first_seq - 1: none)
    s_reply_t *replies;             //  held replies, in order
    s_reply_t **replies_tail;       //  where the next one goes
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
    uint64_t batches_flushed;       //  batches handed to the store
    uint64_t batches_failed;        //  batches the store failed
    uint64_t reclaims_handed;       //  reclaimed objects handed to delivery
    uint64_t cleanups_handed;       //  cleanups handed to delivery
    uint64_t turns;                 //  loop turns
} s_counters_t;

typedef struct _gt_broker_delivery_t gt_broker_delivery_t;
typedef struct gt_metrics_t gt_metrics_t;
typedef struct _gt_broker_metrics_t gt_broker_metrics_t;
typedef struct gt_admission_t gt_admission_t;

typedef struct {
    zsock_t *pipe;                  //  actor pipe
    gt_config_t *config;            //  own copy
    zsock_t *router;                //  requests, once bound
    zsock_t *pub;                   //  events, once bound
    gt_store_t *store;              //  NULL if it could not be opened
    gt_broker_delivery_t *delivery; //  cleanup callbacks (gt_broker_delivery.c)
    gt_metrics_t *metrics;          //  figures for /metrics and STATS (gt_broker_metrics.c)
    gt_broker_metrics_t *broker_metrics;    //  snapshots, the HTTP endpoint, STATS figures (gt_broker_metrics.h)
    gt_leases_t *leases;            //  the tables
    gt_events_t *events;            //  numbering, history
    s_batch_t *current;             //  the batch of this turn
    zlistx_t *flight;               //  s_batch_t flushed, not yet released
    uint64_t batch_counter;         //  last batch id
    s_reply_t *backlog;             //  replies waiting for a full peer
    s_reply_t **backlog_tail;       //  where the next one goes
    size_t backlog_count;           //  how many
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
    bool verbose;                   //  log every request
    bool terminated;                //  $TERM received: a graceful stop, then the loop ends
} s_broker_t;

//  Build the STATS list (names sorted by the encoder); caller frees the array.
gt_stat_t *gt_broker_stats_build (s_broker_t *self, size_t *count_p);

//  Set the lease engine's clocks to now.
void gt_broker_clock (s_broker_t *self);

//  gt_broker_requests.c: handle one decoded request; returns the encoded
//  reply body (caller frees) and its code.
gt_code_t gt_broker_handle (s_broker_t *self, const gt_msg_t *request, void **body_p, size_t *size_p);
//  Encode an error reply body (caller frees); message trimmed to valid UTF-8.
void gt_broker_error_body (uint64_t rid, gt_code_t code, const char *message,
                           void **data_p, size_t *size_p);

#endif
