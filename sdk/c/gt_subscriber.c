/*  gt_subscriber.c — SUB socket plus REPLAY gap filling.

    State: one stream per sequence: the single mode's one sequence, or in
    cluster mode one per shard (GTLP.md §14.4).  Each stream's `last` is the
    highest seq accounted for; `ready` holds events ready for delivery in
    seq order; `held` is a live event that revealed a gap in its stream
    and waits until the replay has filled it.

    With a routed client (several request endpoints) the subscriber also
    follows the MAP: it connects its SUB socket to every broker's events
    endpoint, and to new ones as the map changes (refreshed every
    S_MAP_REFRESH_MS while the events stop, and at each gap).  */
#include "gt_client.h"
#include "gt_subscriber.h"
#include "gt_client_keys.h"

#define GT_SUBSCRIBER_HWM   100000  //  live events buffered at the socket
#define S_MAP_REFRESH_MS    1000    //  map refresh while no event comes
#define S_SINGLE            GT_SHARD_COUNT          //  the stream without shards
#define S_STREAMS           (GT_SHARD_COUNT + 1)

//  One event sequence.
typedef struct {
    bool synced;                    //  last is meaningful
    bool catching_up;               //  replaying history towards the head
    uint64_t last;                  //  highest seq accounted for
} s_stream_t;

struct _gt_subscriber_t {
    zsock_t *sub;                   //  SUB connected to the events endpoints
    zpoller_t *poller;              //  waits on sub
    gt_client_t *client;            //  REPLAY (and MAP) requests
    zlist_t *given;                 //  events endpoints given (strings)
    zlist_t *connected;             //  events endpoints sub connected to (strings)
    bool use_map;                   //  the client is routed: follow the MAP
    bool cluster;                   //  the map says cluster mode
    int64_t map_check_at;           //  mono ms of the next map refresh, 0 = none
    zlist_t *prefixes;              //  subscribed topic prefixes (strings)
    zlist_t *ready;                 //  gt_msg_t events ready to deliver
    gt_msg_t *held;                 //  live event waiting for a gap fill
    bool started;                   //  first recv done (subscribed)
    uint64_t from_seq;              //  history start, 0 = live only
    s_stream_t streams [S_STREAMS]; //  per shard, then the single stream
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

//  Split a comma-separated list of endpoints into list; false if one is
//  not transport://address.
static bool
s_parse_events (zlist_t *list, const char *endpoints)
{
    char *copy = strdup (endpoints);
    assert (copy);
    bool valid = true;
    char *saveptr = NULL;
    for (char *item = strtok_r (copy, ",", &saveptr); item && valid;
         item = strtok_r (NULL, ",", &saveptr)) {
        while (isspace ((unsigned char) *item))
            item++;
        char *end = item + strlen (item);
        while (end > item && isspace ((unsigned char) end [-1]))
            *--end = '\0';
        valid = strstr (item, "://") != NULL;
        if (valid)
            zlist_append (list, item);
    }
    free (copy);
    return valid && zlist_size (list) > 0;
}

gt_subscriber_t *
gt_subscriber_new (const char *events_endpoint, const char *request_endpoint)
{
    if (!request_endpoint)
        return NULL;
    gt_subscriber_t *self = (gt_subscriber_t *) zmalloc (sizeof (gt_subscriber_t));
    assert (self);
    self->client = gt_client_new (request_endpoint, "gt-subscriber");
    self->given = zlist_new ();
    assert (self->given);
    zlist_autofree (self->given);
    self->sub = zsock_new (ZMQ_SUB);
    assert (self->sub);
    zsock_set_rcvhwm (self->sub, GT_SUBSCRIBER_HWM);
    zsock_set_maxmsgsize (self->sub, -1);
    zsock_set_linger (self->sub, 0);
    //  The SUB connects at the first recv, after any CURVE settings.
    //  Without events endpoints, a routed subscriber takes the map's.
    self->use_map = self->client && gt_client_routed (self->client);
    bool valid = self->client
              && (events_endpoint? s_parse_events (self->given, events_endpoint): self->use_map);
    if (!valid) {
        gt_client_destroy (&self->client);
        zlist_destroy (&self->given);
        zsock_destroy (&self->sub);
        free (self);
        return NULL;
    }
    self->connected = zlist_new ();
    assert (self->connected);
    zlist_autofree (self->connected);
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
        zlist_destroy (&self->given);
        zlist_destroy (&self->connected);
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
    return self->streams [S_SINGLE].last;
}

uint64_t
gt_subscriber_last_seq_shard (gt_subscriber_t *self, unsigned shard)
{
    assert (self);
    return shard < GT_SHARD_COUNT? self->streams [shard].last: 0;
}

uint64_t
gt_subscriber_replayed (gt_subscriber_t *self)
{
    assert (self);
    return self->replayed;
}

size_t
gt_subscriber_events_endpoint_count (gt_subscriber_t *self)
{
    assert (self);
    return zlist_size (self->connected);
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

//  Replay the tail of every synced stream soon: events published before
//  a subscription took effect are then not lost.
static void
s_plan_tail_replay (gt_subscriber_t *self)
{
    int64_t at = zclock_mono () + GT_SUBSCRIBER_SETTLE_MS;
    if (!self->tail_check_at || self->tail_check_at > at)
        self->tail_check_at = at;
}

//  Connect the SUB socket to endpoint unless it is already; true if it
//  connected now.
static bool
s_connect_events (gt_subscriber_t *self, const char *endpoint)
{
    for (const char *known = (const char *) zlist_first (self->connected); known;
         known = (const char *) zlist_next (self->connected))
        if (streq (known, endpoint))
            return false;
    if (zsock_connect (self->sub, "%s", endpoint) != 0) {
        s_set_error (self, GT_ERR_INVALID_ARGUMENT, "cannot connect to the events endpoint");
        return false;
    }
    zlist_append (self->connected, (void *) endpoint);
    return true;
}

//  Routed: ask for the MAP and connect to the events endpoints it names
//  that are new; their events published before the subscription took
//  effect come from the tail replay.
static void
s_refresh_map (gt_subscriber_t *self)
{
    if (!self->use_map)
        return;
    self->map_check_at = zclock_mono () + S_MAP_REFRESH_MS;
    gt_msg_t *map = NULL;
    if (gt_client_shard_map (self->client, &map) != GT_OK)
        return;                         //  keep what we have; next time
    self->cluster = map->cluster;
    bool added = false;
    for (size_t index = 0; index < map->broker_count; index++) {
        const char *events = map->brokers [index].events_endpoint;
        if (events && strstr (events, "://"))
            added |= s_connect_events (self, events);
    }
    gt_msg_destroy (&map);
    if (added && self->started)
        s_plan_tail_replay (self);
    self->map_check_at = zclock_mono () + S_MAP_REFRESH_MS;
}

//  Subscribe (everything if no prefix was given) and plan the history.
static void
s_start (gt_subscriber_t *self)
{
    for (const char *endpoint = (const char *) zlist_first (self->given); endpoint;
         endpoint = (const char *) zlist_next (self->given))
        s_connect_events (self, endpoint);
    s_refresh_map (self);
    self->started = true;
    if (zlist_size (self->prefixes) == 0)
        zsock_set_subscribe (self->sub, "");
    if (self->from_seq) {
        //  Cluster mode: every shard's history from that seq
        size_t first = self->cluster? 0: S_SINGLE;
        size_t end = self->cluster? GT_SHARD_COUNT: S_STREAMS;
        for (size_t index = first; index < end; index++) {
            self->streams [index].synced = true;
            self->streams [index].last = self->from_seq - 1;
            self->streams [index].catching_up = true;
        }
        self->tail_check_at = zclock_mono () + GT_SUBSCRIBER_SETTLE_MS;
    }
}

//  The stream of an event: its shard's, or the single one.
static size_t
s_stream_of (const gt_event_t *event)
{
    return event->has_shard && event->shard < GT_SHARD_COUNT? event->shard: S_SINGLE;
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

//  Replay one page of a stream after its last, queueing matching events
//  with seq < stop_seq and accounting for the rest.  Ends the stream's
//  catch-up when the head is reached.  Sets *progress if last moved.
static gt_code_t
s_replay_page (gt_subscriber_t *self, size_t index, uint64_t stop_seq, bool *progress)
{
    s_stream_t *stream = &self->streams [index];
    *progress = false;
    gt_msg_t *reply = NULL;
    gt_code_t code = index == S_SINGLE
                   ? gt_client_replay (self->client, stream->last, GT_MAX_PAGE, &reply)
                   : gt_client_replay_shard (self->client, (unsigned) index, stream->last,
                                             GT_MAX_PAGE, &reply);
    if (code != GT_OK) {
        s_set_error (self, code, gt_client_error (self->client));
        return code;
    }
    for (size_t position = 0; position < reply->event_count; position++) {
        const gt_event_t *event = &reply->events [position];
        if (event->seq <= stream->last
        || (index != S_SINGLE && s_stream_of (event) != index))
            continue;
        if (event->seq >= stop_seq)
            break;
        stream->last = event->seq;
        self->replayed++;
        *progress = true;
        if (s_event_matches (self, event))
            zlist_append (self->ready, s_event_message (event));
    }
    //  A broker that filters REPLAY (CURVE, a service's key: GTLP.md §12)
    //  says how far it read: nothing of ours lies between
    if (reply->has_scanned_seq) {
        uint64_t read_to = reply->scanned_seq < stop_seq ? reply->scanned_seq : stop_seq - 1;
        if (read_to > stream->last) {
            stream->last = read_to;
            *progress = true;
        }
    }
    if (!*progress || stream->last >= reply->last_seq)
        stream->catching_up = false;
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
    size_t index = s_stream_of (&self->held->event);
    s_stream_t *stream = &self->streams [index];
    uint64_t seq = self->held->event.seq;
    if (seq <= stream->last) {
        gt_msg_destroy (&self->held);   //  duplicate (of a replayed event)
        return NULL;
    }
    if (seq == stream->last + 1) {
        stream->last = seq;
        gt_msg_t *event = self->held;
        self->held = NULL;
        return event;
    }
    bool progress;
    *code = s_replay_page (self, index, seq, &progress);
    if (*code == GT_ERR_TOO_OLD) {
        stream->last = seq - 1;         //  those events are gone: skip them
        stream->catching_up = false;
    }
    else
    if (*code == GT_OK && !progress)
        stream->last = seq - 1;         //  the history cannot fill it
    return NULL;
}

//  The first stream still catching up, or -1.
static int
s_catching_up (gt_subscriber_t *self)
{
    for (size_t index = 0; index < S_STREAMS; index++)
        if (self->streams [index].catching_up)
            return (int) index;
    return -1;
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

        int catching_up = s_catching_up (self);
        if (catching_up >= 0) {
            s_stream_t *stream = &self->streams [catching_up];
            bool progress;
            gt_code_t code = s_replay_page (self, (size_t) catching_up, UINT64_MAX, &progress);
            if (code == GT_ERR_TOO_OLD) {
                //  The start is gone: carry on live from the next event
                stream->catching_up = false;
                stream->synced = false;
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
            for (size_t index = 0; index < S_STREAMS; index++)
                if (self->streams [index].synced)
                    self->streams [index].catching_up = true;
            continue;
        }
        if (self->map_check_at && now >= self->map_check_at) {
            s_refresh_map (self);       //  the events stopped: new brokers?
            continue;
        }
        //  Wait for a live event until the deadline, the tail replay or
        //  the map refresh
        int64_t wake = self->tail_check_at;
        if (self->map_check_at && (!wake || self->map_check_at < wake))
            wake = self->map_check_at;
        int wait;
        if (timeout_ms < 0 && !wake)
            wait = -1;
        else {
            int64_t until = timeout_ms < 0? INT64_MAX: deadline;
            if (wake && wake < until)
                until = wake;
            wait = until > now? (until - now > INT_MAX? INT_MAX: (int) (until - now)): 0;
        }
        if (!zpoller_wait (self->poller, wait)) {
            if (zpoller_terminated (self->poller))
                return NULL;
            now = zclock_mono ();
            if (timeout_ms >= 0 && now >= deadline
            &&  !(self->tail_check_at && now >= self->tail_check_at))
                return NULL;            //  plain timeout
            continue;
        }
        gt_msg_t *event = s_recv_live (self);
        if (!event)
            continue;                   //  not a GTLP event: skip
        if (self->map_check_at)
            self->map_check_at = zclock_mono () + S_MAP_REFRESH_MS;
        s_stream_t *stream = &self->streams [s_stream_of (&event->event)];
        if (!stream->synced) {
            stream->synced = true;
            stream->last = event->event.seq - 1;
        }
        else
        if (event->event.seq > stream->last + 1)
            s_refresh_map (self);       //  a gap: its owner may have changed
        self->held = event;
    }
}
