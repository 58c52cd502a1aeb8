/*  gt_subscriber.h — a complete, ordered view of the broker's event stream.

    A SUB socket receives live events for the subscribed topic prefixes; a
    client (DEALER) on the request endpoint fetches what the SUB socket
    missed with REPLAY.  The subscriber tracks the last sequence number it
    has accounted for and delivers every matching event exactly once, in
    seq order:

    *  a live event with seq <= last is a duplicate and is dropped;
    *  a live event with seq > last + 1 reveals a gap (events lost at the
       socket, or events of other topics): the subscriber replays from
       last + 1 up to it, delivers the replayed events whose topic matches
       a subscribed prefix (gt_event_topic), then the live one;
    *  with a start sequence (gt_subscriber_set_from_seq) it subscribes
       first, replays the history from that seq, then continues live.

    Without a start sequence, delivery begins with the first live event
    received (nothing before it is replayed).

    Because ZeroMQ subscriptions propagate asynchronously, events published
    just after the history replay may miss the new subscription; the
    subscriber therefore replays once more, GT_SUBSCRIBER_SETTLE_MS after
    subscribing, so that the tail of the history is never lost even when no
    later event would reveal the gap.

    Errors: gt_subscriber_recv returns NULL with gt_subscriber_code():
      GT_OK            nothing arrived within the timeout (or interrupted);
      GT_ERR_TOO_OLD   the missing history is no longer retained: the
                       events up to the next live one are lost.  The
                       subscriber skips past them and carries on; the caller
                       should re-synchronise its state (e.g. with LIST);
      other codes      the REPLAY failed (e.g. GT_ERR_UNAVAILABLE on a
                       timeout): nothing is lost, the next recv retries.
    gt_subscriber_error() has the text.

    Several brokers (docs/CLUSTER.md, "Client routing"; GTLP.md §14.4).
    Both endpoints may be comma-separated lists.  With several request
    endpoints the REPLAY client is routed (gt_client.h) and the subscriber
    follows the MAP: it subscribes on the events endpoint of every broker
    in it, and on new ones as the map changes (refreshed every second
    while no event comes, and at each gap; a new connection is followed by
    a replay of the tail, GT_SUBSCRIBER_SETTLE_MS later).  Each sequence is
    tracked on its own: the single mode's one sequence, or in cluster mode
    (events carry a shard) one per shard, whose gaps are filled with
    REPLAY of that shard from its owner (gt_client_replay_shard).  An event
    whose seq is not above the last of its sequence is a duplicate and is
    dropped.  With a start sequence in cluster mode (the map says so), the
    history of every shard is replayed from that seq.  */
#ifndef GT_SUBSCRIBER_H_INCLUDED
#define GT_SUBSCRIBER_H_INCLUDED

#include <czmq.h>
#include "gt_msg.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GT_SUBSCRIBER_SETTLE_MS     500     //  delay of the tail replay

typedef struct _gt_subscriber_t gt_subscriber_t;

//  Create a subscriber: SUB to events_endpoint (e.g. "tcp://127.0.0.1:50052"),
//  REPLAY requests to request_endpoint ("tcp://127.0.0.1:50051"); either
//  may be a comma-separated list.  With several request endpoints
//  events_endpoint may be NULL: the events endpoints of the MAP's brokers
//  are used.  Returns NULL if an endpoint is invalid (or missing).
//  Talk CURVE on both sockets (gt_client_set_curve: NULL arguments take
//  GT_SERVER_KEY / GT_CLIENT_CERT); before the first recv.  0, or -1 with
//  gt_subscriber_error saying why.  A CURVE broker sends a service's key
//  only its own service's events, whatever it subscribes to (GTLP.md §12).
int gt_subscriber_set_curve (gt_subscriber_t *self, const char *server_key, const char *client_cert);

gt_subscriber_t *gt_subscriber_new (const char *events_endpoint,
                                    const char *request_endpoint);

//  Destroy the subscriber and undelivered events; nulls the pointer.
void gt_subscriber_destroy (gt_subscriber_t **self_p);

//  Add a topic prefix ("expired.", "reclaimed.TEMPORARY_FILE.", "" for
//  everything).  Call before the first recv; with no prefix at all the
//  subscriber receives everything.
void gt_subscriber_subscribe (gt_subscriber_t *self, const char *prefix);

//  Start with the history: deliver events with seq >= from_seq (1 = from
//  the oldest event), then continue live.  Call before the first recv.
void gt_subscriber_set_from_seq (gt_subscriber_t *self, uint64_t from_seq);

//  Timeout of each REPLAY request in ms (default 5000).
void gt_subscriber_set_timeout (gt_subscriber_t *self, int timeout_ms);

//  Receive the next event, waiting up to timeout_ms (-1: forever, 0: no
//  wait).  Returns a message of kind GT_MSG_EVENT (the event is
//  msg->event) that the caller destroys with gt_msg_destroy, or NULL (see
//  gt_subscriber_code).  The REPLAY requests it may make wait up to their
//  own timeout (gt_subscriber_set_timeout), not timeout_ms.
gt_msg_t *gt_subscriber_recv (gt_subscriber_t *self, int timeout_ms);

//  Why the last recv returned NULL: GT_OK for a plain timeout.
gt_code_t gt_subscriber_code (gt_subscriber_t *self);
const char *gt_subscriber_error (gt_subscriber_t *self);

//  The last sequence number accounted for (delivered or filtered out);
//  0 before anything was received.  Single mode (events without a shard).
uint64_t gt_subscriber_last_seq (gt_subscriber_t *self);

//  The same for one shard's sequence (cluster mode); 0 for a shard past 255.
uint64_t gt_subscriber_last_seq_shard (gt_subscriber_t *self, unsigned shard);

//  Number of events endpoints the SUB socket is connected to (those
//  given, then those of the MAP); 0 before the first recv.
size_t gt_subscriber_events_endpoint_count (gt_subscriber_t *self);

//  Number of events obtained through REPLAY (delivered or filtered out).
uint64_t gt_subscriber_replayed (gt_subscriber_t *self);

//  True if topic starts with one of the subscribed prefixes (or no prefix
//  was given).
bool gt_subscriber_matches (gt_subscriber_t *self, const char *topic);

#ifdef __cplusplus
}
#endif
#endif
