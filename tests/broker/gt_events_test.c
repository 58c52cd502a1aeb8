/*  gt_events_test.c — selftest of gt_events: numbering, rollback of
    unpublished events, publishing on PUB, the history and REPLAY, recovery.  */
#include <czmq.h>
#include "gt_events.h"
#include "gt_broker_selftest.h"

static void
s_test_lease (gt_lease_info_t *lease, const char *service)
{
    memset (lease, 0, sizeof (*lease));
    strcpy (lease->id, "00112233445566778899aabbccddeeff");
    lease->object_id = "object";
    lease->object_type = GT_TYPE_TEMPORARY_FILE;
    lease->service_id = (char *) service;
    lease->state = GT_STATE_ACTIVE;
    lease->fence = 1;
    lease->ttl_ms = 1000;
    lease->created_at = lease->renewed_at = 1700000000000ULL;
    lease->expires_at = lease->created_at + 1000;
}

//  The seqs of a REPLAY reply body (freed), checked: its rid, an
//  unfiltered page ending at its last event (or at last_seq if empty),
//  every event of service svc and, with a shard (>= 0), of that shard.
static size_t
s_decoded_seqs (void *data, size_t size, uint64_t rid, int shard, uint64_t *seqs, uint64_t *last_seq)
{
    char err [128];
    gt_msg_t *reply = NULL;
    uint64_t decoded_rid = 0;
    gt_code_t decoded = gt_msg_decode (data, size, GT_MSG_REPLY, &reply, &decoded_rid, err, sizeof (err));
    free (data);
    assert (decoded == GT_OK);
    assert (reply->rid == rid && reply->events_present && reply->has_last_seq && reply->has_scanned_seq);
    assert (reply->scanned_seq == (reply->event_count ? reply->events [reply->event_count - 1].seq
                                                      : reply->last_seq));
    *last_seq = reply->last_seq;
    size_t count = reply->event_count;
    for (size_t i = 0; i < count; i++) {
        seqs [i] = reply->events [i].seq;
        assert (streq (reply->events [i].lease.service_id, "svc"));
        assert (shard < 0 ? !reply->events [i].has_shard
                          : reply->events [i].has_shard && reply->events [i].shard == (unsigned) shard);
    }
    gt_msg_destroy (&reply);
    return count;
}

//  A REPLAY's seqs (single mode); code as answered.
static size_t
s_replay_seqs (gt_events_t *events, uint64_t after, size_t limit, size_t budget,
               uint64_t *seqs, uint64_t *last_seq, gt_code_t *code)
{
    void *data;
    size_t size;
    char err [128];
    *code = gt_events_replay (events, 7, after, NULL, limit, budget, &data, &size, err, sizeof (err));
    return *code == GT_OK ? s_decoded_seqs (data, size, 7, -1, seqs, last_seq) : 0;
}

//  The seqs of a REPLAY of one shard (cluster mode); code as answered.
static size_t
s_replay_shard_seqs (gt_events_t *events, unsigned shard, uint64_t after, uint64_t *seqs,
                     uint64_t *last_seq, gt_code_t *code)
{
    void *data;
    size_t size;
    char err [128];
    *code = gt_events_replay_shard (events, 9, shard, after, NULL, 100, 65536, &data, &size, err, sizeof (err));
    return *code == GT_OK ? s_decoded_seqs (data, size, 9, (int) shard, seqs, last_seq) : 0;
}

//  Cluster mode: a sequence per shard, the shard in the body, rollback per
//  shard, REPLAY by shard, a history shared by the shards, forgetting one.
static void
s_test_sharded (void)
{
    //  Two objects in different shards
    char ids [2][24];
    unsigned shards [2];
    snprintf (ids [0], sizeof ids [0], "object-0");
    shards [0] = gt_shard_of (ids [0]);
    for (int index = 1; ; index++) {
        snprintf (ids [1], sizeof ids [1], "object-%d", index);
        shards [1] = gt_shard_of (ids [1]);
        if (shards [1] != shards [0])
            break;
    }
    gt_lease_info_t a, b;
    s_test_lease (&a, "svc");
    s_test_lease (&b, "svc");
    a.object_id = ids [0];
    b.object_id = ids [1];

    gt_events_t *events = gt_events_new (4);
    assert (!gt_events_sharded (events));
    gt_events_shard (events);
    assert (gt_events_sharded (events));
    const gt_event_record_t *record = gt_events_make (events, GT_EVENT_LEASE_CREATED, &a, GT_REASON_NONE, 1);
    assert (record->order == 1 && record->seq == 1 && record->shard == shards [0]);
    record = gt_events_make (events, GT_EVENT_LEASE_CREATED, &b, GT_REASON_NONE, 1);
    assert (record->order == 2 && record->seq == 1 && record->shard == shards [1]);
    record = gt_events_make (events, GT_EVENT_LEASE_RENEWED, &a, GT_REASON_NONE, 2);
    assert (record->order == 3 && record->seq == 2);
    //  The body carries the shard, after seq
    gt_msg_t *decoded = NULL;
    uint64_t rid;
    char err [128];
    assert (gt_msg_decode (record->body, record->size, GT_MSG_EVENT, &decoded, &rid, err, sizeof err) == GT_OK);
    assert (decoded->event.seq == 2 && decoded->event.has_shard && decoded->event.shard == shards [0]);
    gt_msg_destroy (&decoded);

    //  A failed batch from order 3: the shard's seq 2 is made again
    gt_events_rollback (events, 3);
    assert (gt_events_next_order (events) == 3);
    record = gt_events_make (events, GT_EVENT_LEASE_RELEASED, &a, GT_REASON_NONE, 3);
    assert (record->order == 3 && record->seq == 2);
    assert (gt_events_publish (events, NULL, 3, NULL) == 3);
    assert (gt_events_shard_last_seq (events, shards [0]) == 2);
    assert (gt_events_shard_last_seq (events, shards [1]) == 1);
    uint64_t seqs [16], last = 0;
    gt_code_t code;
    assert (s_replay_shard_seqs (events, shards [0], 0, seqs, &last, &code) == 2 && code == GT_OK);
    assert (seqs [0] == 1 && seqs [1] == 2 && last == 2);
    assert (s_replay_shard_seqs (events, shards [1], 0, seqs, &last, &code) == 1 && seqs [0] == 1 && last == 1);

    //  The history (4) is shared: three more of b push a's first and b's
    //  first out
    for (int i = 0; i < 3; i++)
        gt_events_make (events, GT_EVENT_LEASE_RENEWED, &b, GT_REASON_NONE, 4);
    assert (gt_events_publish (events, NULL, UINT64_MAX, NULL) == 3);
    assert (s_replay_shard_seqs (events, shards [0], 0, seqs, &last, &code) == 0 && code == GT_ERR_TOO_OLD);
    assert (s_replay_shard_seqs (events, shards [0], 1, seqs, &last, &code) == 1 && seqs [0] == 2);
    assert (s_replay_shard_seqs (events, shards [1], 1, seqs, &last, &code) == 3 && seqs [2] == 4 && last == 4);

    //  b's shard goes: its history and numbering with it; a's stays, and
    //  new events push past the emptied slots
    gt_events_forget_shard (events, shards [1]);
    assert (gt_events_shard_last_seq (events, shards [1]) == 0);
    assert (s_replay_shard_seqs (events, shards [1], 0, seqs, &last, &code) == 0 && code == GT_OK && last == 0);
    for (int i = 0; i < 5; i++)
        gt_events_make (events, GT_EVENT_LEASE_RENEWED, &a, GT_REASON_NONE, 5);
    assert (gt_events_publish (events, NULL, UINT64_MAX, NULL) == 5);
    assert (s_replay_shard_seqs (events, shards [0], 3, seqs, &last, &code) == 4 && seqs [3] == 7 && last == 7);

    //  Taken back: restored from the store, numbering continues
    gt_events_restore_shard (events, shards [1], 7, "svc\x1f" "created.UNKNOWN", "\x80", 1);
    gt_events_restore_shard_seq (events, shards [1], 9);
    record = gt_events_make (events, GT_EVENT_LEASE_RENEWED, &b, GT_REASON_NONE, 6);
    assert (record->seq == 10 && record->shard == shards [1]);
    gt_events_destroy (&events);
}

//  The event body gt_msg_encode writes for (seq, kind, at, lease, reason).
static bool
s_body_is (const gt_event_record_t *record, uint64_t seq, gt_event_kind_t kind, uint64_t at,
           const gt_lease_info_t *lease, gt_reason_t reason)
{
    gt_msg_t msg;
    memset (&msg, 0, sizeof (msg));
    msg.kind = GT_MSG_EVENT;
    msg.version = GT_PROTOCOL_VERSION;
    msg.event.seq = seq;
    msg.event.kind = kind;
    msg.event.at = at;
    msg.event.lease = *lease;
    msg.event.reason = reason;
    msgpack_sbuffer expected;
    msgpack_sbuffer_init (&expected);
    assert (gt_msg_encode (&msg, &expected) == 0);
    bool same = record->size == expected.size && memcmp (record->body, expected.data, expected.size) == 0;
    msgpack_sbuffer_destroy (&expected);
    return same;
}

//  An end and its reclaim carry the same lease: the reclaim's body reuses
//  the end's LEASE map and is byte for byte what the codec writes; a
//  reclaim of another lease (or of a changed one) packs its own.
static void
s_test_reclaim_reuses_lease (void)
{
    gt_events_t *events = gt_events_new (16);
    gt_lease_info_t lease;
    s_test_lease (&lease, "svc");
    lease.state = GT_STATE_EXPIRED;
    gt_meta_entry_t meta [] = { { "owner", "alice" } };
    lease.metadata.entries = meta;
    lease.metadata.count = 1;
    const gt_event_record_t *ended = gt_events_make (events, GT_EVENT_LEASE_EXPIRED, &lease, GT_REASON_NONE, 5);
    const gt_event_record_t *reclaimed = gt_events_make (events, GT_EVENT_OBJECT_RECLAIMED, &lease,
                                                         GT_REASON_EXPIRED, 6);
    assert (ended && reclaimed);
    assert (s_body_is (ended, 1, GT_EVENT_LEASE_EXPIRED, 5, &lease, GT_REASON_NONE));
    assert (s_body_is (reclaimed, 2, GT_EVENT_OBJECT_RECLAIMED, 6, &lease, GT_REASON_EXPIRED));
    assert (reclaimed->lease_size == ended->lease_size
            && memcmp ((const char *) reclaimed->body + reclaimed->lease_offset,
                       (const char *) ended->body + ended->lease_offset, ended->lease_size) == 0);

    gt_lease_info_t other = lease;
    other.expires_at++;
    reclaimed = gt_events_make (events, GT_EVENT_OBJECT_RECLAIMED, &other, GT_REASON_RELEASED, 7);
    assert (reclaimed && s_body_is (reclaimed, 3, GT_EVENT_OBJECT_RECLAIMED, 7, &other, GT_REASON_RELEASED));
    //  After publishing, nothing is reused (the bytes may be gone)
    gt_events_publish (events, NULL, UINT64_MAX, NULL);
    reclaimed = gt_events_make (events, GT_EVENT_OBJECT_RECLAIMED, &other, GT_REASON_RELEASED, 8);
    assert (reclaimed && s_body_is (reclaimed, 4, GT_EVENT_OBJECT_RECLAIMED, 8, &other, GT_REASON_RELEASED));
    gt_events_destroy (&events);
}

//  The next event on each of two subscribers: the same topic, the same body
static void
s_recv_alike (zsock_t *subs [2])
{
    char *topics [2];
    zframe_t *bodies [2];
    for (int side = 0; side < 2; side++)
        assert (zsock_recv (subs [side], "sf", &topics [side], &bodies [side]) == 0);
    assert (streq (topics [0], topics [1]));
    assert (zframe_eq (bodies [0], bodies [1]));
    for (int side = 0; side < 2; side++) {
        zstr_free (&topics [side]);
        zframe_destroy (&bodies [side]);
    }
}

//  Deferred encoding: the same events, made by an instance that encodes at
//  once and by one that defers, are published and replayed as the same
//  bytes, whatever optional parts the lease has; the deferred record has
//  no body, and the byte budget of a REPLAY counts the encoded bodies.
static void
s_test_deferred (void)
{
    gt_events_t *eager = gt_events_new (100);
    gt_events_t *deferred = gt_events_new (100);
    gt_events_defer_encoding (deferred);
    zsock_t *pubs [2] = { zsock_new_pub ("inproc://gt-events-eager"), zsock_new_pub ("inproc://gt-events-deferred") };
    zsock_t *subs [2] = { zsock_new_sub (">inproc://gt-events-eager", ""),
                          zsock_new_sub (">inproc://gt-events-deferred", "") };
    assert (pubs [0] && pubs [1] && subs [0] && subs [1]);

    gt_lease_info_t plain, rich, other;
    s_test_lease (&plain, "svc");
    s_test_lease (&rich, "svc");
    s_test_lease (&other, "svc-other");
    rich.object_id = "object-with-everything";
    rich.object_type = GT_TYPE_CUSTOM;
    rich.renewals = 7;
    rich.fence = 1ULL << 40;
    gt_meta_entry_t meta [] = { { "zone", "eu" }, { "owner", "alice" }, { "empty", "" } };
    rich.metadata.entries = meta;
    rich.metadata.count = 3;
    gt_cleanup_t cleanup = { "http://127.0.0.1:1/cleanup", "{\"k\":1}", true, 4, true, 250 };
    rich.cleanup = &cleanup;
    rich.cleanup_status = GT_CLEANUP_DEAD;
    rich.cleanup_attempts = 3;
    rich.cleanup_error = "HTTP 500";
    gt_lease_info_t partial = rich;
    gt_cleanup_t bare = { "http://127.0.0.1:2/c", NULL, false, 0, false, 0 };
    partial.cleanup = &bare;
    partial.cleanup_error = "";         //  present but empty: not sent
    partial.metadata.count = 0;
    partial.metadata.entries = NULL;

    //  An event of the lease the one before carried at the same time
    //  copies that one's record (deferred): with the same lease and time,
    //  and not with a lease one field apart, nor a time one ms apart
    gt_lease_info_t pending = partial;
    pending.cleanup_status = GT_CLEANUP_PENDING;
    struct { gt_event_kind_t kind; const gt_lease_info_t *lease; gt_reason_t reason; uint64_t at; } made [] = {
        { GT_EVENT_LEASE_CREATED, &plain, GT_REASON_NONE, 1000 },
        { GT_EVENT_LEASE_CREATED, &rich, GT_REASON_NONE, 1001 },
        { GT_EVENT_LEASE_RENEWED, &other, GT_REASON_NONE, 1002 },
        { GT_EVENT_LEASE_EXPIRED, &rich, GT_REASON_NONE, 1003 },
        { GT_EVENT_OBJECT_RECLAIMED, &rich, GT_REASON_EXPIRED, 1003 },
        { GT_EVENT_LEASE_RELEASED, &partial, GT_REASON_NONE, 1005 },
        { GT_EVENT_OBJECT_RECLAIMED, &partial, GT_REASON_RELEASED, 1005 },
        { GT_EVENT_LEASE_RENEWED, &plain, GT_REASON_NONE, 1007 },
        { GT_EVENT_LEASE_RELEASED, &partial, GT_REASON_NONE, 1008 },
        { GT_EVENT_OBJECT_RECLAIMED, &pending, GT_REASON_RELEASED, 1008 },
        { GT_EVENT_LEASE_EXPIRED, &plain, GT_REASON_NONE, 1010 },
        { GT_EVENT_OBJECT_RECLAIMED, &plain, GT_REASON_EXPIRED, 1011 },
        { GT_EVENT_OBJECT_RECLAIMED, &plain, GT_REASON_EXPIRED, 1011 },
    };
    size_t count = sizeof (made) / sizeof (made [0]);
    for (size_t i = 0; i < count; i++) {
        const gt_event_record_t *encoded = gt_events_make (eager, made [i].kind, made [i].lease,
                                                           made [i].reason, made [i].at);
        const gt_event_record_t *snapshot = gt_events_make (deferred, made [i].kind, made [i].lease,
                                                            made [i].reason, made [i].at);
        assert (encoded && encoded->body && encoded->size > 0);
        assert (snapshot && !snapshot->body && snapshot->size == 0);
        assert (snapshot->seq == encoded->seq && snapshot->kind == encoded->kind);
        assert (snapshot->topic == NULL && encoded->topic);     //  (deferred: made when it is sent)
        const void *bytes;
        size_t size;
        assert (!gt_events_lease_bytes (deferred, made [i].lease, &bytes, &size));
    }
    //  A lease the codec would refuse is refused when the event is made,
    //  deferred or not, and takes no seq
    gt_lease_info_t broken = rich;
    broken.id [3] = 'X';
    assert (!gt_events_make (eager, GT_EVENT_LEASE_RENEWED, &broken, GT_REASON_NONE, 1));
    broken = rich;
    gt_cleanup_t no_url = cleanup;
    no_url.url = NULL;
    broken.cleanup = &no_url;
    assert (!gt_events_make (deferred, GT_EVENT_LEASE_RENEWED, &broken, GT_REASON_NONE, 1));
    broken = rich;
    broken.cleanup_status = (gt_cleanup_status_t) 99;
    assert (!gt_events_make (deferred, GT_EVENT_LEASE_RENEWED, &broken, GT_REASON_NONE, 1));
    assert (gt_events_next_order (deferred) == count + 1);
    //  A rolled-back deferred event is gone, and its seq is made again
    gt_events_rollback (deferred, count);
    gt_events_make (deferred, made [count - 1].kind, made [count - 1].lease, made [count - 1].reason,
                    made [count - 1].at);
    assert (gt_events_publish (eager, pubs [0], UINT64_MAX, NULL) == count);
    assert (gt_events_publish (deferred, pubs [1], UINT64_MAX, NULL) == count);
    for (size_t i = 0; i < count; i++)
        s_recv_alike (subs);
    //  REPLAY: whole, filtered, and cut by a byte budget, byte for byte
    struct { uint64_t after; const char *prefix; size_t limit, budget; } pages [] = {
        { 0, NULL, 100, 1 << 20 }, { 2, "svc\x1f", 100, 1 << 20 }, { 0, NULL, 3, 1 << 20 },
        { 0, NULL, 100, 300 }, { 1, NULL, 100, 1 }, { 0, "svc-other\x1f", 100, 1 << 20 },
    };
    for (size_t i = 0; i < sizeof (pages) / sizeof (pages [0]); i++) {
        void *data [2];
        size_t size [2];
        char err [128];
        assert (gt_events_replay (eager, 5, pages [i].after, pages [i].prefix, pages [i].limit, pages [i].budget,
                                  &data [0], &size [0], err, sizeof (err)) == GT_OK);
        assert (gt_events_replay (deferred, 5, pages [i].after, pages [i].prefix, pages [i].limit,
                                  pages [i].budget, &data [1], &size [1], err, sizeof (err)) == GT_OK);
        assert (size [0] == size [1] && memcmp (data [0], data [1], size [0]) == 0);
        free (data [0]);
        free (data [1]);
    }
    //  The budget cut: 300 bytes hold fewer than all, and one event at least
    uint64_t seqs [16], last;
    gt_code_t code;
    size_t cut = s_replay_seqs (deferred, 0, 100, 300, seqs, &last, &code);
    assert (code == GT_OK && cut >= 1 && cut < count);
    for (int side = 0; side < 2; side++) {
        zsock_destroy (&subs [side]);
        zsock_destroy (&pubs [side]);
    }
    gt_events_destroy (&eager);
    gt_events_destroy (&deferred);
}

//  Deferred: an object.reclaimed copies the record made last only while it
//  is the ring's newest, of that lease: not once a rollback took it (the
//  newest then another lease's, made at the same time), nor once a publish
//  kept no history (the ring then empty); the bytes are eager's, event for
//  event
static void
s_test_deferred_copies (void)
{
    for (int history = 0; history <= 1; history++) {
        gt_events_t *sides [2] = { gt_events_new (history ? 100 : 0), gt_events_new (history ? 100 : 0) };
        gt_events_defer_encoding (sides [1]);
        //  (endpoints of their own each round: a closed socket's name is
        //  released only once the context reaps it)
        char endpoints [2][64];
        for (int side = 0; side < 2; side++)
            snprintf (endpoints [side], sizeof endpoints [side], "inproc://gt-copies-%d-%d", history, side);
        zsock_t *pubs [2] = { zsock_new_pub (endpoints [0]), zsock_new_pub (endpoints [1]) };
        zsock_t *subs [2] = { zsock_new_sub (endpoints [0], ""), zsock_new_sub (endpoints [1], "") };
        assert (pubs [0] && pubs [1] && subs [0] && subs [1]);
        gt_lease_info_t a, b;
        s_test_lease (&a, "svc");
        s_test_lease (&b, "svc-b");
        strcpy (b.id, "ffeeddccbbaa99887766554433221100");
        b.object_id = "other";
        b.fence = 9;
        for (int side = 0; side < 2; side++) {
            gt_events_t *events = sides [side];
            //  a's expiry, b's at the same time, b's rolled back, then its reclaim
            assert (gt_events_make (events, GT_EVENT_LEASE_EXPIRED, &a, GT_REASON_NONE, 2000));
            const gt_event_record_t *made = gt_events_make (events, GT_EVENT_LEASE_EXPIRED, &b, GT_REASON_NONE, 2000);
            assert (made);
            gt_events_rollback (events, made->order);
            assert (gt_events_make (events, GT_EVENT_OBJECT_RECLAIMED, &b, GT_REASON_EXPIRED, 2000));
            assert (gt_events_publish (events, pubs [side], UINT64_MAX, NULL) == 2);
            //  a's expiry published (kept or not), then its reclaim
            assert (gt_events_make (events, GT_EVENT_LEASE_EXPIRED, &a, GT_REASON_NONE, 3000));
            assert (gt_events_publish (events, pubs [side], UINT64_MAX, NULL) == 1);
            assert (gt_events_make (events, GT_EVENT_OBJECT_RECLAIMED, &a, GT_REASON_EXPIRED, 3000));
            assert (gt_events_publish (events, pubs [side], UINT64_MAX, NULL) == 1);
        }
        for (int event = 0; event < 4; event++)
            s_recv_alike (subs);
        for (int side = 0; side < 2; side++) {
            zsock_destroy (&subs [side]);
            zsock_destroy (&pubs [side]);
            gt_events_destroy (&sides [side]);
        }
    }
}

//  Deferred encoding against eager, history kept and dropped: rounds of
//  events made, some rolled back, some published; the oldest and newest
//  seqs, and REPLAY from the points that matter (TOO_OLD included), byte
//  for byte.  Some leases carry a payload of kilobytes, so that the
//  deferred side's ring wraps and grows many times; one run starts its
//  numbering at a recovered seq.
static void
s_test_deferred_history (void)
{
    gt_lease_info_t leases [4];
    s_test_lease (&leases [0], "svc");
    s_test_lease (&leases [1], "svc-other");
    s_test_lease (&leases [2], "svc");
    leases [2].object_id = "another-object";
    gt_meta_entry_t meta [] = { { "zone", "eu" } };
    leases [2].metadata.entries = meta;
    leases [2].metadata.count = 1;
    s_test_lease (&leases [3], "svc");
    static char payload [2500];
    memset (payload, 'p', sizeof (payload) - 1);
    gt_cleanup_t cleanup = { "http://127.0.0.1:1/cleanup", payload, false, 0, true, 100 };
    leases [3].cleanup = &cleanup;
    leases [3].cleanup_status = GT_CLEANUP_PENDING;
    const size_t histories [] = { 0, 1, 5, 64, 64 };
    for (size_t h = 0; h < sizeof (histories) / sizeof (histories [0]); h++) {
        gt_events_t *sides [2] = { gt_events_new (histories [h]), gt_events_new (histories [h]) };
        gt_events_defer_encoding (sides [1]);
        if (h == 4) {
            gt_events_restore_seq (sides [0], 777);
            gt_events_restore_seq (sides [1], 777);
        }
        uint64_t state = 12345 + h;
        for (int round = 0; round < 400; round++) {
            state = state * 6364136223846793005ULL + 1442695040888963407ULL;
            size_t made = (size_t) (state >> 60) + 1;
            for (size_t i = 0; i < made; i++) {
                const gt_lease_info_t *lease = &leases [(round + i) % 4];
                gt_event_kind_t kind = (gt_event_kind_t) ((round + i) % GT_EVENT_COUNT_);
                const gt_event_record_t *records [2];
                for (int side = 0; side < 2; side++)
                    records [side] = gt_events_make (sides [side], kind, lease, GT_REASON_EXPIRED, 1000 + i);
                assert (records [0] && records [1] && records [0]->seq == records [1]->seq);
                assert (h < 4 || records [0]->seq > 777);
            }
            uint64_t next = gt_events_next_order (sides [0]);
            if ((state >> 50 & 3) == 0) {
                //  Roll back the newest few
                uint64_t from = next - 1 - (state >> 40 & 7);
                if (from > gt_events_last_seq (sides [0])) {
                    gt_events_rollback (sides [0], from);
                    gt_events_rollback (sides [1], from);
                }
            }
            uint64_t up_to = gt_events_next_order (sides [0]) - 1 - (state >> 45 & 1);
            assert (gt_events_publish (sides [0], NULL, up_to, NULL) == gt_events_publish (sides [1], NULL, up_to, NULL));
            assert (gt_events_next_order (sides [0]) == gt_events_next_order (sides [1]));
            assert (gt_events_last_seq (sides [0]) == gt_events_last_seq (sides [1]));
            uint64_t oldest = gt_events_oldest_seq (sides [0]);
            assert (oldest == gt_events_oldest_seq (sides [1]));
            uint64_t last = gt_events_last_seq (sides [0]);
            uint64_t afters [] = { 0, oldest - 1, oldest > 1 ? oldest - 2 : 0, oldest, (oldest + last) / 2,
                                   last, last + 1 };
            for (size_t k = 0; k < sizeof (afters) / sizeof (afters [0]); k++) {
                void *data [2];
                size_t size [2];
                char err [2][128];
                gt_code_t codes [2];
                for (int side = 0; side < 2; side++)
                    codes [side] = gt_events_replay (sides [side], 3, afters [k], round % 2 ? "svc\x1f" : NULL, 100,
                                                     1 << 20, &data [side], &size [side], err [side], sizeof (err [side]));
                assert (codes [0] == codes [1]);
                if (codes [0] == GT_OK) {
                    assert (size [0] == size [1] && memcmp (data [0], data [1], size [0]) == 0);
                    free (data [0]);
                    free (data [1]);
                }
                else
                    assert (codes [0] == GT_ERR_TOO_OLD && streq (err [0], err [1]));
            }
        }
        gt_events_destroy (&sides [0]);
        gt_events_destroy (&sides [1]);
    }
}

void
gt_events_test (bool verbose)
{
    (void) verbose;
    gt_events_t *events = gt_events_new (5);
    gt_lease_info_t lease;
    s_test_lease (&lease, "svc");

    //  Made events wait; numbers are consecutive from 1
    const gt_event_record_t *record = gt_events_make (events, GT_EVENT_LEASE_CREATED, &lease,
                                                      GT_REASON_NONE, 1700000000000ULL);
    assert (record && record->seq == 1);
    assert (streq (record->topic, "svc\x1f" "created.TEMPORARY_FILE"));
    gt_msg_t *decoded = NULL;
    char err [128];
    assert (gt_msg_decode (record->body, record->size, GT_MSG_EVENT, &decoded, NULL, err, sizeof (err)) == GT_OK);
    assert (decoded->event.seq == 1 && decoded->event.kind == GT_EVENT_LEASE_CREATED);
    assert (streq (decoded->event.lease.id, lease.id));
    gt_msg_destroy (&decoded);
    assert (gt_events_make (events, GT_EVENT_LEASE_RENEWED, &lease, GT_REASON_NONE, 1)->seq == 2);
    assert (gt_events_last_seq (events) == 0);

    //  A failed batch: its events go, their numbers are reused
    gt_events_rollback (events, 2);
    assert (gt_events_next_order (events) == 2);
    assert (gt_events_make (events, GT_EVENT_LEASE_EXPIRED, &lease, GT_REASON_NONE, 1)->seq == 2);

    //  Published events are sent and remembered; counted by kind
    zsock_t *pub = zsock_new_pub ("inproc://gt-events-test");
    zsock_t *sub = zsock_new_sub (">inproc://gt-events-test", "");
    assert (pub && sub);
    uint64_t by_kind [GT_EVENT_COUNT_] = { 0 };
    assert (gt_events_publish (events, pub, 1, by_kind) == 1);
    assert (gt_events_publish (events, pub, 10, by_kind) == 1);
    assert (by_kind [GT_EVENT_LEASE_CREATED] == 1 && by_kind [GT_EVENT_LEASE_EXPIRED] == 1);
    assert (gt_events_last_seq (events) == 2);
    char *topic = NULL;
    zframe_t *body = NULL;
    assert (zsock_recv (sub, "sf", &topic, &body) == 0);
    assert (streq (topic, "svc\x1f" "created.TEMPORARY_FILE"));
    zstr_free (&topic);
    zframe_destroy (&body);
    assert (zsock_recv (sub, "sf", &topic, &body) == 0);
    assert (streq (topic, "svc\x1f" "expired.TEMPORARY_FILE"));
    zstr_free (&topic);
    zframe_destroy (&body);

    //  REPLAY: after the newest -> empty; limits; history of 5
    uint64_t seqs [16], last = 0;
    gt_code_t code;
    assert (s_replay_seqs (events, 2, 100, 1 << 20, seqs, &last, &code) == 0);
    assert (code == GT_OK && last == 2);
    assert (s_replay_seqs (events, 0, 100, 1 << 20, seqs, &last, &code) == 2);
    assert (seqs [0] == 1 && seqs [1] == 2);
    for (int i = 0; i < 6; i++)
        gt_events_make (events, GT_EVENT_LEASE_RENEWED, &lease, GT_REASON_NONE, 1);
    gt_events_publish (events, NULL, UINT64_MAX, NULL);
    assert (gt_events_last_seq (events) == 8);
    assert (gt_events_oldest_seq (events) == 4);
    assert (s_replay_seqs (events, 3, 100, 1 << 20, seqs, &last, &code) == 5);
    assert (seqs [0] == 4 && seqs [4] == 8 && last == 8);
    assert (s_replay_seqs (events, 2, 100, 1 << 20, seqs, &last, &code) == 0);
    assert (code == GT_ERR_TOO_OLD);
    assert (s_replay_seqs (events, 4, 2, 1 << 20, seqs, &last, &code) == 2);
    assert (seqs [0] == 5 && seqs [1] == 6);
    //  A tiny byte budget still returns one event
    assert (s_replay_seqs (events, 4, 100, 1, seqs, &last, &code) == 1);
    assert (s_replay_seqs (events, 100, 100, 1 << 20, seqs, &last, &code) == 0);
    assert (code == GT_OK);

    //  More than 15 events use an array 16 header
    gt_events_t *big = gt_events_new (100);
    for (int i = 0; i < 40; i++)
        gt_events_make (big, GT_EVENT_LEASE_RENEWED, &lease, GT_REASON_NONE, 1);
    gt_events_publish (big, NULL, UINT64_MAX, NULL);
    void *data;
    size_t size;
    assert (gt_events_replay (big, 1, 0, NULL, 1000, 1 << 20, &data, &size, err, sizeof (err)) == GT_OK);
    gt_msg_t *reply = NULL;
    assert (gt_msg_decode (data, size, GT_MSG_REPLY, &reply, NULL, err, sizeof (err)) == GT_OK);
    assert (reply->event_count == 40 && reply->events [39].seq == 40);
    gt_msg_destroy (&reply);
    free (data);

    //  A rid whose encoding spells "\xa6events\x90" must not confuse the
    //  reply (a client chooses its rids)
    const uint64_t tricky_rid = 0xA66576656E747390ULL;
    assert (gt_events_replay (big, tricky_rid, 38, NULL, 1000, 1 << 20, &data, &size,
                              err, sizeof (err)) == GT_OK);
    assert (gt_msg_decode (data, size, GT_MSG_REPLY, &reply, NULL, err, sizeof (err)) == GT_OK);
    assert (reply->rid == tricky_rid && reply->event_count == 2 && reply->events [1].seq == 40);
    gt_msg_destroy (&reply);
    free (data);
    gt_events_destroy (&big);

    //  A filtered REPLAY (a service principal, GTLP.md §12) returns only the
    //  topics under its prefix; scanned_seq says how far it read, so the
    //  caller resumes there and not at its last event
    gt_events_t *mixed = gt_events_new (100);
    gt_lease_info_t other;
    s_test_lease (&other, "svc-other");     //  its id starts like "svc"
    for (int i = 1; i <= 30; i++)
        gt_events_make (mixed, GT_EVENT_LEASE_RENEWED, i % 10 == 0 ? &lease : &other, GT_REASON_NONE, 1);
    gt_events_publish (mixed, NULL, UINT64_MAX, NULL);
    assert (gt_events_replay (mixed, 2, 0, "svc\x1f", 2, 1 << 20, &data, &size, err, sizeof (err)) == GT_OK);
    assert (gt_msg_decode (data, size, GT_MSG_REPLY, &reply, NULL, err, sizeof (err)) == GT_OK);
    assert (reply->event_count == 2 && reply->events [0].seq == 10 && reply->events [1].seq == 20);
    assert (reply->last_seq == 30 && reply->scanned_seq == 20);
    gt_msg_destroy (&reply);
    free (data);
    assert (gt_events_replay (mixed, 3, 20, "svc\x1f", 100, 1 << 20, &data, &size, err, sizeof (err)) == GT_OK);
    assert (gt_msg_decode (data, size, GT_MSG_REPLY, &reply, NULL, err, sizeof (err)) == GT_OK);
    assert (reply->event_count == 1 && reply->events [0].seq == 30 && reply->scanned_seq == 30);
    gt_msg_destroy (&reply);
    free (data);
    assert (gt_events_replay (mixed, 4, 0, "nobody\x1f", 100, 1 << 20, &data, &size, err, sizeof (err)) == GT_OK);
    assert (gt_msg_decode (data, size, GT_MSG_REPLY, &reply, NULL, err, sizeof (err)) == GT_OK);
    assert (reply->event_count == 0 && reply->scanned_seq == 30);
    gt_msg_destroy (&reply);
    free (data);
    gt_events_destroy (&mixed);

    //  Recovery continues the numbering and restores the history
    gt_events_t *restored = gt_events_new (10);
    gt_events_restore (restored, 41, "svc\x1f" "created.UNKNOWN", "\x80", 1);
    gt_events_restore_seq (restored, 50);
    assert (gt_events_last_seq (restored) == 50);
    assert (gt_events_make (restored, GT_EVENT_LEASE_CREATED, &lease, GT_REASON_NONE, 1)->seq == 51);
    gt_events_destroy (&restored);

    s_test_sharded ();
    s_test_reclaim_reuses_lease ();
    s_test_deferred ();
    s_test_deferred_copies ();
    s_test_deferred_history ();
    zsock_destroy (&sub);
    zsock_destroy (&pub);
    gt_events_destroy (&events);
    assert (events == NULL);
}
