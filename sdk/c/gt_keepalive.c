/*  gt_keepalive.c — background renewal of many leases with RENEW_BATCH.

    The actor owns a gt_client.  With one endpoint it uses its pipelined
    API: batches go out with gt_client_send, replies come back on the
    client's socket and are matched to the batch by rid.  A routed client
    (several endpoints, or after a MOVED) renews with blocking
    gt_client_renew_leases calls instead, which follow the owners of the
    leases' shards (docs/CLUSTER.md, "Client routing"); each call is
    bounded by the earliest deadline of its leases.  All waiting is a
    zpoller timeout computed from the leases' next renewal times and
    deadlines.  */
#include "gt_client.h"
#include "gt_keepalive.h"
#include "gt_jitter.h"

//  One lease kept alive.
typedef struct {
    char id [GT_LEASE_ID_LEN + 1];  //  the lease id
    uint64_t ttl_ms;                //  TTL requested at each renewal
    int64_t deadline;               //  mono ms it expires unless renewed
    int64_t next_due;               //  mono ms of the next renewal request
} s_lease_t;

//  One RENEW_BATCH in flight.
typedef struct {
    int64_t sent_at;                //  mono ms the request was sent
    uint64_t ttl_ms;                //  TTL it asked for
    size_t count;                   //  number of lease ids
    char (*ids) [GT_LEASE_ID_LEN + 1];  //  the lease ids it carried
} s_batch_t;

//  The actor's state.
typedef struct {
    zsock_t *pipe;                  //  to the caller
    gt_client_t *client;            //  our DEALER connection
    zpoller_t *poller;              //  pipe + client socket
    zhashx_t *leases;               //  id -> s_lease_t
    zhashx_t *batches;              //  rid (decimal string) -> s_batch_t
    zlist_t *reports;               //  "id:CODE" strings not yet on the pipe
    bool terminated;                //  $TERM received
    bool routed;                    //  blocking routed calls, not the pipelined API
    int timeout;                    //  the client's own timeout (a routed call's longest)
    gt_jitter_t *jitter;            //  spreads the renewal intervals (a seed of its own)
} s_agent_t;

//  The public handle.
struct _gt_keepalive_t {
    zactor_t *actor;                //  the agent's thread
    zpoller_t *poller;              //  waits for LOST reports
};

static void
s_batch_destroy (void **item_p)
{
    s_batch_t *batch = (s_batch_t *) *item_p;
    if (batch) {
        free (batch->ids);
        free (batch);
        *item_p = NULL;
    }
}

static void
s_lease_destroy (void **item_p)
{
    free (*item_p);
    *item_p = NULL;
}

//  Renewal interval: a third of the TTL (GT_KEEPALIVE_TTL_FRACTION),
//  jittered by up to ±10 % (GT_KEEPALIVE_JITTER).
static int64_t
s_interval (s_agent_t *self, uint64_t ttl_ms)
{
    int64_t interval = gt_jitter_share (self->jitter, ttl_ms, GT_KEEPALIVE_TTL_FRACTION, GT_KEEPALIVE_JITTER);
    return interval > 0? interval: 1;
}

//  How long to wait for a reply before sending the renewal again.
static int64_t
s_retry_after (uint64_t ttl_ms)
{
    int64_t retry = (int64_t) (ttl_ms / 6);
    return retry > 0? retry: 1;
}

//  Codes after which renewing again cannot succeed.  MOVED and TRY_AGAIN
//  (a cluster, GTLP.md §14.3) are not: the owner changes or comes back.
static bool
s_code_is_final (gt_code_t code)
{
    return code != GT_ERR_UNAVAILABLE && code != GT_ERR_QUOTA_EXCEEDED
        && code != GT_ERR_INTERNAL && code != GT_ERR_MOVED && code != GT_ERR_TRY_AGAIN;
}

//  How soon a routed renewal that failed goes again: the call itself
//  already retried for up to its timeout.
static int64_t
s_routed_retry_after (uint64_t ttl_ms)
{
    int64_t retry = s_retry_after (ttl_ms);
    return retry < 250? retry: 250;
}

//  Renew with the routed client instead of the pipelined API from now on:
//  a MOVED showed that the leases live in a cluster.
static void
s_become_routed (s_agent_t *self)
{
    if (self->routed)
        return;
    zpoller_remove (self->poller, gt_client_sock (self->client));
    gt_client_set_routed (self->client, true);
    self->routed = true;
    zhashx_purge (self->batches);       //  their replies will be discarded
}

//  Drop a lease and queue its LOST report.
static void
s_lose (s_agent_t *self, const char *lease_id, gt_code_t code)
{
    char *report = zsys_sprintf ("%s:%s", lease_id, gt_code_name (code));
    assert (report);
    zlist_append (self->reports, report);
    zhashx_delete (self->leases, lease_id);
}

//  Put queued reports on the pipe without ever blocking.
static void
s_flush_reports (s_agent_t *self)
{
    void *handle = zsock_resolve (self->pipe);
    char *report;
    while ((report = (char *) zlist_first (self->reports))) {
        //  A multipart message is accepted or refused as a whole at its
        //  first frame, so only the first send can fail.
        if (zmq_send (handle, "LOST", 4, ZMQ_DONTWAIT | ZMQ_SNDMORE) == -1)
            break;
        zmq_send (handle, report, GT_LEASE_ID_LEN, ZMQ_SNDMORE);
        const char *code = report + GT_LEASE_ID_LEN + 1;
        zmq_send (handle, code, strlen (code), 0);
        zlist_remove (self->reports, report);
        free (report);
    }
}

//  Compare leases by TTL, for grouping into batches.
static int
s_compare_ttl (const void *a, const void *b)
{
    const s_lease_t *left = *(const s_lease_t *const *) a;
    const s_lease_t *right = *(const s_lease_t *const *) b;
    return (left->ttl_ms > right->ttl_ms) - (left->ttl_ms < right->ttl_ms);
}

//  Send one RENEW_BATCH for leases [0 .. count-1], all with the same TTL.
static void
s_send_batch (s_agent_t *self, s_lease_t **leases, size_t count, int64_t now)
{
    s_batch_t *batch = (s_batch_t *) zmalloc (sizeof (s_batch_t));
    batch->ids = calloc (count, sizeof (*batch->ids));
    char **ids = (char **) calloc (count, sizeof (char *));
    assert (batch && batch->ids && ids);
    batch->sent_at = now;
    batch->ttl_ms = leases [0]->ttl_ms;
    batch->count = count;
    for (size_t index = 0; index < count; index++) {
        memcpy (batch->ids [index], leases [index]->id, GT_LEASE_ID_LEN + 1);
        ids [index] = batch->ids [index];
        leases [index]->next_due = now + s_retry_after (leases [index]->ttl_ms);
    }
    gt_msg_t request;
    memset (&request, 0, sizeof (request));
    request.kind = GT_MSG_REQUEST;
    request.cmd = GT_CMD_RENEW_BATCH;
    request.lease_ids = ids;
    request.lease_id_count = count;
    request.has_ttl = true;
    request.ttl_ms = batch->ttl_ms;
    uint64_t rid = gt_client_send (self->client, &request);
    free (ids);
    if (rid == 0) {
        //  Not even queued: the retry time set above tries again
        void *item = batch;
        s_batch_destroy (&item);
        return;
    }
    char key [24];
    snprintf (key, sizeof (key), "%" PRIu64, rid);
    zhashx_insert (self->batches, key, batch);
}

//  Renew leases [0 .. count-1], all with the same TTL, with one routed
//  (blocking) RENEW_BATCH call, bounded by their earliest deadline.
static void
s_renew_routed (s_agent_t *self, s_lease_t **leases, size_t count)
{
    int64_t sent_at = zclock_mono ();
    uint64_t ttl_ms = leases [0]->ttl_ms;
    int64_t earliest = INT64_MAX;
    const char **ids = (const char **) calloc (count, sizeof (char *));
    char (*copies) [GT_LEASE_ID_LEN + 1] = calloc (count, sizeof (*copies));
    assert (ids && copies);
    for (size_t index = 0; index < count; index++) {
        memcpy (copies [index], leases [index]->id, GT_LEASE_ID_LEN + 1);
        ids [index] = copies [index];
        if (leases [index]->deadline < earliest)
            earliest = leases [index]->deadline;
    }
    int64_t budget = earliest - sent_at;
    if (budget > self->timeout)
        budget = self->timeout;
    gt_client_set_timeout (self->client, budget > 0? (int) budget: 1);
    gt_msg_t *reply = NULL;
    gt_code_t code = gt_client_renew_leases (self->client, ids, count, ttl_ms, &reply);
    gt_client_set_timeout (self->client, self->timeout);
    int64_t now = zclock_mono ();
    //  Leases are looked up again: nothing else runs meanwhile, but a
    //  loss below removes them from the table
    for (size_t index = 0; index < count; index++) {
        s_lease_t *lease = (s_lease_t *) zhashx_lookup (self->leases, copies [index]);
        if (!lease)
            continue;
        gt_code_t outcome = code;
        if (code == GT_OK) {
            outcome = GT_ERR_UNAVAILABLE;       //  no result for it: try again
            for (size_t result = 0; result < reply->result_count; result++)
                if (streq (reply->results [result].lease_id, lease->id)) {
                    outcome = reply->results [result].code;
                    break;
                }
        }
        if (outcome == GT_OK) {
            //  The renewal counts from before the call: never later than
            //  the broker's own deadline
            int64_t deadline = sent_at + (int64_t) ttl_ms;
            if (deadline > lease->deadline)
                lease->deadline = deadline;
            lease->next_due = sent_at + s_interval (self, lease->ttl_ms);
        }
        else
        if (s_code_is_final (outcome) && lease->ttl_ms == ttl_ms)
            s_lose (self, lease->id, outcome);
        else
            lease->next_due = now + s_routed_retry_after (lease->ttl_ms);
    }
    gt_msg_destroy (&reply);
    free (copies);
    free (ids);
}

//  When a lease is due, send every lease due within a tenth of its TTL,
//  grouped by TTL, in batches of at most GT_MAX_BATCH.
static void
s_send_due (s_agent_t *self, int64_t now)
{
    bool any_due = false;
    s_lease_t *lease;
    for (lease = (s_lease_t *) zhashx_first (self->leases); lease;
         lease = (s_lease_t *) zhashx_next (self->leases))
        if (lease->next_due <= now) {
            any_due = true;
            break;
        }
    if (!any_due)
        return;

    size_t due_count = 0;
    s_lease_t **due = (s_lease_t **) calloc (zhashx_size (self->leases), sizeof (s_lease_t *));
    assert (due);
    for (lease = (s_lease_t *) zhashx_first (self->leases); lease;
         lease = (s_lease_t *) zhashx_next (self->leases))
        if (lease->next_due <= now + (int64_t) (lease->ttl_ms / 10))
            due [due_count++] = lease;
    qsort (due, due_count, sizeof (s_lease_t *), s_compare_ttl);

    size_t start = 0;
    while (start < due_count) {
        size_t end = start + 1;
        while (end < due_count && end - start < GT_MAX_BATCH
           &&  due [end]->ttl_ms == due [start]->ttl_ms)
            end++;
        if (self->routed)
            s_renew_routed (self, due + start, end - start);
        else
            s_send_batch (self, due + start, end - start, now);
        start = end;
    }
    free (due);
}

//  Apply a RENEW_BATCH reply to the leases it names.
static void
s_handle_reply (s_agent_t *self, gt_msg_t *reply, int64_t now)
{
    char key [24];
    snprintf (key, sizeof (key), "%" PRIu64, reply->rid);
    s_batch_t *batch = (s_batch_t *) zhashx_lookup (self->batches, key);
    if (!batch)
        return;                         //  forgotten batch: nothing to learn
    bool moved = false;                 //  a lease lives on another broker
    if (reply->code == GT_OK) {
        for (size_t index = 0; index < reply->result_count; index++) {
            gt_renew_result_t *result = &reply->results [index];
            s_lease_t *lease = (s_lease_t *) zhashx_lookup (self->leases, result->lease_id);
            if (!lease)
                continue;
            if (result->code == GT_OK) {
                int64_t deadline = batch->sent_at + (int64_t) batch->ttl_ms;
                if (deadline > lease->deadline)
                    lease->deadline = deadline;
                lease->next_due = batch->sent_at + s_interval (self, lease->ttl_ms);
            }
            else
            if (s_code_is_final (result->code))
                s_lose (self, lease->id, result->code);
            else {
                lease->next_due = now + s_retry_after (lease->ttl_ms);
                moved |= result->code == GT_ERR_MOVED;
            }
        }
    }
    else {
        //  The whole batch failed
        for (size_t index = 0; index < batch->count; index++) {
            s_lease_t *lease = (s_lease_t *) zhashx_lookup (self->leases, batch->ids [index]);
            if (!lease)
                continue;
            if (s_code_is_final (reply->code) && lease->ttl_ms == batch->ttl_ms)
                s_lose (self, lease->id, reply->code);
            else
                lease->next_due = now + s_retry_after (lease->ttl_ms);
        }
        moved = reply->code == GT_ERR_MOVED;
    }
    zhashx_delete (self->batches, key);
    if (moved)
        s_become_routed (self);
}

//  Report the leases whose deadline passed without a renewal, and forget
//  batches whose replies can no longer help.
static void
s_check_deadlines (s_agent_t *self, int64_t now)
{
    zlist_t *lost = zlist_new ();
    s_lease_t *lease;
    for (lease = (s_lease_t *) zhashx_first (self->leases); lease;
         lease = (s_lease_t *) zhashx_next (self->leases))
        if (now >= lease->deadline)
            zlist_append (lost, lease->id);
    const char *lease_id;
    while ((lease_id = (const char *) zlist_pop (lost)))
        s_lose (self, lease_id, GT_ERR_UNAVAILABLE);
    zlist_destroy (&lost);

    zlist_t *stale = zlist_new ();
    zlist_autofree (stale);
    s_batch_t *batch;
    for (batch = (s_batch_t *) zhashx_first (self->batches); batch;
         batch = (s_batch_t *) zhashx_next (self->batches))
        if (now >= batch->sent_at + (int64_t) batch->ttl_ms)
            zlist_append (stale, (void *) zhashx_cursor (self->batches));
    char *key;
    while ((key = (char *) zlist_pop (stale))) {
        zhashx_delete (self->batches, key);
        free (key);
    }
    zlist_destroy (&stale);
}

//  Milliseconds until something is due, -1 for nothing.
static int
s_next_wake (s_agent_t *self, int64_t now)
{
    int64_t wake = INT64_MAX;
    s_lease_t *lease;
    for (lease = (s_lease_t *) zhashx_first (self->leases); lease;
         lease = (s_lease_t *) zhashx_next (self->leases)) {
        if (lease->next_due < wake)
            wake = lease->next_due;
        if (lease->deadline < wake)
            wake = lease->deadline;
    }
    if (zlist_size (self->reports) && wake > now + 10)
        wake = now + 10;                //  retry a full pipe soon
    if (wake == INT64_MAX)
        return -1;
    if (wake <= now)
        return 0;
    return wake - now > INT_MAX? INT_MAX: (int) (wake - now);
}

//  Handle one command from the caller.
static void
s_handle_command (s_agent_t *self)
{
    zmsg_t *msg = zmsg_recv (self->pipe);
    if (!msg) {
        self->terminated = true;        //  interrupted
        return;
    }
    char *command = zmsg_popstr (msg);
    char *lease_id = zmsg_popstr (msg);
    char *ttl = zmsg_popstr (msg);
    if (command && streq (command, "$TERM"))
        self->terminated = true;
    else
    if (command && streq (command, "ADD") && lease_id && ttl) {
        s_lease_t *lease = (s_lease_t *) zhashx_lookup (self->leases, lease_id);
        if (!lease) {
            lease = (s_lease_t *) zmalloc (sizeof (s_lease_t));
            assert (lease);
            snprintf (lease->id, sizeof (lease->id), "%s", lease_id);
            zhashx_insert (self->leases, lease_id, lease);
        }
        int64_t now = zclock_mono ();
        lease->ttl_ms = strtoull (ttl, NULL, 10);
        lease->deadline = now + (int64_t) lease->ttl_ms;
        lease->next_due = now + s_interval (self, lease->ttl_ms);
    }
    else
    if (command && streq (command, "REMOVE") && lease_id)
        zhashx_delete (self->leases, lease_id);
    free (command);
    free (lease_id);
    free (ttl);
    zmsg_destroy (&msg);
}

static void
s_agent (zsock_t *pipe, void *args)
{
    s_agent_t self;
    memset (&self, 0, sizeof (self));
    self.pipe = pipe;
    self.client = (gt_client_t *) args;     //  handed over by gt_keepalive_new
    self.routed = gt_client_routed (self.client);
    self.timeout = gt_client_timeout (self.client);
    //  Routed, the replies come back inside blocking calls
    self.poller = self.routed? zpoller_new (pipe, NULL)
                             : zpoller_new (pipe, gt_client_sock (self.client), NULL);
    self.leases = zhashx_new ();
    zhashx_set_destructor (self.leases, s_lease_destroy);
    self.batches = zhashx_new ();
    zhashx_set_destructor (self.batches, s_batch_destroy);
    self.reports = zlist_new ();
    self.jitter = gt_jitter_new ();
    assert (self.poller && self.leases && self.batches && self.reports && self.jitter);
    zsock_signal (pipe, 0);

    while (!self.terminated) {
        int64_t now = zclock_mono ();
        void *which = zpoller_wait (self.poller, s_next_wake (&self, now));
        if (zpoller_terminated (self.poller))
            break;
        now = zclock_mono ();
        if (which == pipe)
            s_handle_command (&self);
        else
        if (which && !self.routed && which == gt_client_sock (self.client)) {
            gt_msg_t *reply;
            while ((reply = gt_client_recv (self.client, 0))) {
                s_handle_reply (&self, reply, now);
                gt_msg_destroy (&reply);
            }
        }
        s_check_deadlines (&self, now);
        s_send_due (&self, now);
        s_flush_reports (&self);
    }
    char *report;
    while ((report = (char *) zlist_pop (self.reports)))
        free (report);
    zlist_destroy (&self.reports);
    gt_jitter_destroy (&self.jitter);
    zhashx_destroy (&self.batches);
    zhashx_destroy (&self.leases);
    zpoller_destroy (&self.poller);
    gt_client_destroy (&self.client);
}

gt_keepalive_t *
gt_keepalive_new (const char *endpoint, const char *service_id)
{
    if (!service_id)
        return NULL;
    return gt_keepalive_new_curve (endpoint, service_id, NULL, NULL);
}

gt_keepalive_t *
gt_keepalive_new_curve (const char *endpoint, const char *service_id,
                        const char *server_key, const char *client_cert)
{
    //  The client is made here so that a bad argument fails the call; the
    //  agent takes it over (zactor_new is a full memory barrier).
    gt_client_t *client = gt_client_new (endpoint, service_id);
    if (client && gt_client_set_curve (client, server_key, client_cert) != 0)
        gt_client_destroy (&client);
    if (!client)
        return NULL;
    gt_keepalive_t *self = (gt_keepalive_t *) zmalloc (sizeof (gt_keepalive_t));
    assert (self);
    self->actor = zactor_new (s_agent, client);
    assert (self->actor);
    self->poller = zpoller_new (self->actor, NULL);
    assert (self->poller);
    return self;
}

void
gt_keepalive_destroy (gt_keepalive_t **self_p)
{
    assert (self_p);
    gt_keepalive_t *self = *self_p;
    if (self) {
        zpoller_destroy (&self->poller);
        zactor_destroy (&self->actor);
        free (self);
        *self_p = NULL;
    }
}

int
gt_keepalive_add (gt_keepalive_t *self, const char *lease_id, uint64_t ttl_ms)
{
    assert (self);
    if (!lease_id || !gt_lease_id_valid (lease_id) || ttl_ms == 0)
        return -1;
    char ttl [24];
    snprintf (ttl, sizeof (ttl), "%" PRIu64, ttl_ms);
    return zstr_sendx (self->actor, "ADD", lease_id, ttl, NULL);
}

int
gt_keepalive_remove (gt_keepalive_t *self, const char *lease_id)
{
    assert (self);
    if (!lease_id || !gt_lease_id_valid (lease_id))
        return -1;
    return zstr_sendx (self->actor, "REMOVE", lease_id, NULL);
}

int
gt_keepalive_recv_lost (gt_keepalive_t *self, int timeout_ms,
                        char lease_id [GT_LEASE_ID_LEN + 1], gt_code_t *code_p)
{
    assert (self);
    assert (lease_id && code_p);
    if (!zpoller_wait (self->poller, timeout_ms))
        return -1;
    char *command = NULL, *id = NULL, *code = NULL;
    if (zstr_recvx (self->actor, &command, &id, &code, NULL) < 0)
        return -1;
    int rc = -1;
    if (command && streq (command, "LOST") && id && code
    &&  gt_lease_id_valid (id) && gt_code_parse (code, code_p)) {
        snprintf (lease_id, GT_LEASE_ID_LEN + 1, "%s", id);
        rc = 0;
    }
    zstr_free (&command);
    zstr_free (&id);
    zstr_free (&code);
    return rc;
}

zsock_t *
gt_keepalive_sock (gt_keepalive_t *self)
{
    assert (self);
    return zactor_sock (self->actor);
}
