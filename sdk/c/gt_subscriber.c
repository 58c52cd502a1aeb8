/*  gt_subscriber.c — SUB socket plus REPLAY gap filling.

    State: `last` is the highest seq accounted for; `ready` holds events
    ready for delivery in seq order; `held` is a live event that revealed a
    gap and waits until the replay has filled it.  */
#include "gt_client.h"
#include "gt_subscriber.h"
#include "gt_client_keys.h"

#define GT_SUBSCRIBER_HWM   100000  //  live events buffered at the socket

struct _gt_subscriber_t {
    zsock_t *sub;                   //  SUB connected to the events endpoint
    zpoller_t *poller;              //  waits on sub
    gt_client_t *client;            //  REPLAY requests
    char *events_endpoint;          //  where sub connects
    zlist_t *prefixes;              //  subscribed topic prefixes (strings)
    zlist_t *ready;                 //  gt_msg_t events ready to deliver
    gt_msg_t *held;                 //  live event waiting for a gap fill
    bool started;                   //  first recv done (subscribed)
    bool synced;                    //  last is meaningful
    bool catching_up;               //  replaying history towards the head
    uint64_t from_seq;              //  history start, 0 = live only
    uint64_t last;                  //  highest seq accounted for
    int64_t tail_check_at;          //  mono ms of the tail replay, 0 = none
    uint64_t replayed;              //  events obtained through REPLAY
    gt_code_t code;                 //  why the last recv returned NULL
    char *error;                    //  text for code, "" if none
};

static void
s_set_error (gt_subscriber_t *self, gt_code_t code, const char *text)
{
    self->code = code;
    free (self->error);
    self->error = strdup (text);
    assert (self->error);
}

gt_subscriber_t *
gt_subscriber_new (const char *events_endpoint, const char *request_endpoint)
{
    if (!events_endpoint || !request_endpoint)
        return NULL;
    gt_subscriber_t *self = (gt_subscriber_t *) zmalloc (sizeof (gt_subscriber_t));
    assert (self);
    self->client = gt_client_new (request_endpoint, "gt-subscriber");
    self->sub = zsock_new (ZMQ_SUB);
    assert (self->sub);
    zsock_set_rcvhwm (self->sub, GT_SUBSCRIBER_HWM);
    zsock_set_maxmsgsize (self->sub, -1);
    zsock_set_linger (self->sub, 0);
    //  The SUB connects at the first recv, after any CURVE settings
    if (!self->client || !strstr (events_endpoint, "://")) {
        gt_client_destroy (&self->client);
        zsock_destroy (&self->sub);
        free (self);
        return NULL;
    }
    self->events_endpoint = strdup (events_endpoint);
    assert (self->events_endpoint);
    self->poller = zpoller_new (self->sub, NULL);
    self->prefixes = zlist_new ();
    zlist_autofree (self->prefixes);
    self->ready = zlist_new ();
    self->error = strdup ("");
    assert (self->poller && self->prefixes && self->ready && self->error);
    return self;
}

void
gt_subscriber_destroy (gt_subscriber_t **self_p)
{
    assert (self_p);
    gt_subscriber_t *self = *self_p;
    if (self) {
        gt_msg_t *event;
        while ((event = (gt_msg_t *) zlist_pop (self->ready)))
            gt_msg_destroy (&event);
        zlist_destroy (&self->ready);
        gt_msg_destroy (&self->held);
        zlist_destroy (&self->prefixes);
        zpoller_destroy (&self->poller);
        zsock_destroy (&self->sub);
        gt_client_destroy (&self->client);
        free (self->events_endpoint);
        free (self->error);
        free (self);
        *self_p = NULL;
    }
}

int
gt_subscriber_set_curve (gt_subscriber_t *self, const char *server_key, const char *client_cert)
{
    assert (self);
    assert (!self->started);
    char err [512];
    gt_client_keys_t *keys = gt_client_keys_new (server_key, client_cert, err, sizeof (err));
    if (!keys) {
        if (*err)
            s_set_error (self, GT_ERR_INVALID_ARGUMENT, err);
        return *err ? -1 : 0;
    }
    gt_client_keys_apply (keys, self->sub);
    gt_client_keys_destroy (&keys);
    return gt_client_set_curve (self->client, server_key, client_cert);
}

void
gt_subscriber_subscribe (gt_subscriber_t *self, const char *prefix)
{
    assert (self);
    assert (prefix);
    zlist_append (self->prefixes, (void *) prefix);
    zsock_set_subscribe (self->sub, prefix);
}

void
gt_subscriber_set_from_seq (gt_subscriber_t *self, uint64_t from_seq)
{
    assert (self);
    assert (!self->started);
    self->from_seq = from_seq > 0? from_seq: 1;
}

void
gt_subscriber_set_timeout (gt_subscriber_t *self, int timeout_ms)
{
    assert (self);
    gt_client_set_timeout (self->client, timeout_ms);
}

gt_code_t
gt_subscriber_code (gt_subscriber_t *self)
{
    assert (self);
    return self->code;
}

const char *
gt_subscriber_error (gt_subscriber_t *self)
{
    assert (self);
    return self->error;
}

uint64_t
gt_subscriber_last_seq (gt_subscriber_t *self)
{
    assert (self);
    return self->last;
}

uint64_t
gt_subscriber_replayed (gt_subscriber_t *self)
{
    assert (self);
    return self->replayed;
}

bool
gt_subscriber_matches (gt_subscriber_t *self, const char *topic)
{
    assert (self);
    assert (topic);
    if (zlist_size (self->prefixes) == 0)
        return true;
    const char *prefix = (const char *) zlist_first (self->prefixes);
    while (prefix) {
        if (strncmp (topic, prefix, strlen (prefix)) == 0)
            return true;
        prefix = (const char *) zlist_next (self->prefixes);
    }
    return false;
}

//  Subscribe (everything if no prefix was given) and plan the history.
static void
s_start (gt_subscriber_t *self)
{
    self->started = true;
    if (zsock_connect (self->sub, "%s", self->events_endpoint) != 0)
        s_set_error (self, GT_ERR_INVALID_ARGUMENT, "cannot connect to the events endpoint");
    if (zlist_size (self->prefixes) == 0)
        zsock_set_subscribe (self->sub, "");
    if (self->from_seq) {
        self->synced = true;
        self->last = self->from_seq - 1;
        self->catching_up = true;
        self->tail_check_at = zclock_mono () + GT_SUBSCRIBER_SETTLE_MS;
    }
}

//  A deep copy of a replayed event as a message of its own.
static gt_msg_t *
s_event_message (const gt_event_t *event)
{
    gt_msg_t *msg = gt_msg_new (GT_MSG_EVENT);
    assert (msg);
    msg->event.seq = event->seq;
    msg->event.has_shard = event->has_shard;
    msg->event.shard = event->shard;
    msg->event.kind = event->kind;
    msg->event.at = event->at;
    msg->event.reason = event->reason;
    gt_lease_info_copy (&msg->event.lease, &event->lease);
    return msg;
}

static bool
s_event_matches (gt_subscriber_t *self, const gt_event_t *event)
{
    char topic [GT_MAX_SERVICE_ID + 64];
    if (gt_event_topic (topic, sizeof (topic), event->kind,
                        event->lease.object_type, event->lease.service_id) < 0)
        return false;
    return gt_subscriber_matches (self, topic);
}

//  Replay one page after last, queueing matching events with seq < stop_seq
//  and accounting for the rest.  Ends the catch-up when the head is
//  reached.  Sets *progress if last moved.
static gt_code_t
s_replay_page (gt_subscriber_t *self, uint64_t stop_seq, bool *progress)
{
    *progress = false;
    gt_msg_t *reply = NULL;
    gt_code_t code = gt_client_replay (self->client, self->last, GT_MAX_PAGE, &reply);
    if (code != GT_OK) {
        s_set_error (self, code, gt_client_error (self->client));
        return code;
    }
    for (size_t index = 0; index < reply->event_count; index++) {
        const gt_event_t *event = &reply->events [index];
        if (event->seq <= self->last)
            continue;
        if (event->seq >= stop_seq)
            break;
        self->last = event->seq;
        self->replayed++;
        *progress = true;
        if (s_event_matches (self, event))
            zlist_append (self->ready, s_event_message (event));
    }
    //  A broker that filters REPLAY (CURVE, a service's key: GTLP.md §12)
    //  says how far it read: nothing of ours lies between
    if (reply->has_scanned_seq) {
        uint64_t read_to = reply->scanned_seq < stop_seq ? reply->scanned_seq : stop_seq - 1;
        if (read_to > self->last) {
            self->last = read_to;
            *progress = true;
        }
    }
    if (!*progress || self->last >= reply->last_seq)
        self->catching_up = false;
    gt_msg_destroy (&reply);
    return GT_OK;
}

//  Read one live event from the SUB socket, or NULL if it is malformed.
static gt_msg_t *
s_recv_live (gt_subscriber_t *self)
{
    zmsg_t *msg = zmsg_recv (self->sub);
    if (!msg)
        return NULL;
    gt_msg_t *event = NULL;
    zframe_t *body = zmsg_last (msg);
    if (zmsg_size (msg) == 2 && body) {
        char err [256];
        gt_msg_decode (zframe_data (body), zframe_size (body), GT_MSG_EVENT,
                       &event, NULL, err, sizeof (err));
    }
    zmsg_destroy (&msg);
    return event;
}

//  Deliver the held live event if the gap before it is filled; else fill
//  one page of it.  Returns the event to deliver, or NULL (then check
//  *code: GT_OK means "go on").
static gt_msg_t *
s_advance_held (gt_subscriber_t *self, gt_code_t *code)
{
    *code = GT_OK;
    uint64_t seq = self->held->event.seq;
    if (seq <= self->last) {
        gt_msg_destroy (&self->held);   //  duplicate of a replayed event
        return NULL;
    }
    if (seq == self->last + 1) {
        self->last = seq;
        gt_msg_t *event = self->held;
        self->held = NULL;
        return event;
    }
    bool progress;
    *code = s_replay_page (self, seq, &progress);
    if (*code == GT_ERR_TOO_OLD) {
        self->last = seq - 1;           //  those events are gone: skip them
        self->catching_up = false;
    }
    else
    if (*code == GT_OK && !progress)
        self->last = seq - 1;           //  the history cannot fill it
    return NULL;
}

gt_msg_t *
gt_subscriber_recv (gt_subscriber_t *self, int timeout_ms)
{
    assert (self);
    s_set_error (self, GT_OK, "");
    if (!self->started)
        s_start (self);
    int64_t deadline = zclock_mono () + (timeout_ms > 0? timeout_ms: 0);

    while (true) {
        if (zlist_size (self->ready))
            return (gt_msg_t *) zlist_pop (self->ready);

        if (self->catching_up) {
            bool progress;
            gt_code_t code = s_replay_page (self, UINT64_MAX, &progress);
            if (code == GT_ERR_TOO_OLD) {
                //  The start is gone: carry on live from the next event
                self->catching_up = false;
                self->synced = false;
                self->tail_check_at = 0;
            }
            if (code != GT_OK)
                return NULL;
            continue;
        }
        if (self->held) {
            gt_code_t code;
            gt_msg_t *event = s_advance_held (self, &code);
            if (event)
                return event;
            if (code != GT_OK)
                return NULL;
            continue;
        }
        int64_t now = zclock_mono ();
        if (self->tail_check_at && now >= self->tail_check_at) {
            self->tail_check_at = 0;
            self->catching_up = true;
            continue;
        }
        //  Wait for a live event until the deadline or the tail replay
        int wait;
        if (timeout_ms < 0 && !self->tail_check_at)
            wait = -1;
        else {
            int64_t until = timeout_ms < 0? INT64_MAX: deadline;
            if (self->tail_check_at && self->tail_check_at < until)
                until = self->tail_check_at;
            wait = until > now? (int) (until - now): 0;
        }
        if (!zpoller_wait (self->poller, wait)) {
            if (zpoller_terminated (self->poller))
                return NULL;
            if (timeout_ms >= 0 && zclock_mono () >= deadline
            &&  !(self->tail_check_at && zclock_mono () >= self->tail_check_at))
                return NULL;            //  plain timeout
            continue;
        }
        gt_msg_t *event = s_recv_live (self);
        if (!event)
            continue;                   //  not a GTLP event: skip
        if (!self->synced) {
            self->synced = true;
            self->last = event->event.seq - 1;
        }
        self->held = event;
    }
}
