/*  gt_event_ring_test.c — selftest of gt_event_ring: every record kept,
    through appends of many sizes, drops at both ends, wraps and growth,
    encodes to exactly the bytes gt_msg_encode makes of the event it was
    made from, with the topic gt_event_topic makes; ids the codec would
    refuse are refused; the bytes stay bounded by what is kept.  */
#include <czmq.h>
#include "gt_event_ring.h"
#include "gt_broker_selftest.h"

#define S_TEST_STEPS    60000       //  operations of the random walk
#define S_TEST_KEEP(step)   (20 + (step) / 50)  //  records kept at most (the "history"): more and more, so the ring grows while it wraps
#define S_TEST_SEQS     (S_TEST_STEPS + 1)

//  One event, rebuilt from (seq, variant) whenever it is needed: so the
//  test keeps only the variant of each seq, not the event
typedef struct {
    gt_event_kind_t kind;
    gt_reason_t reason;
    uint64_t at;
    gt_lease_info_t lease;
    gt_cleanup_t cleanup;
    gt_meta_entry_t meta [6];
    char object_id [64];
    char service_id [48];
    char error [32];
    char payload [600];
    char strings [6][2][24];
} s_test_event_t;

static uint64_t
s_next (uint64_t *state)
{
    //  splitmix64: a fixed stream per (seq, variant)
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static void
s_test_event (s_test_event_t *event, uint64_t seq, unsigned variant)
{
    memset (event, 0, sizeof (*event));
    uint64_t state = seq * 1000003 + variant;
    gt_lease_info_t *lease = &event->lease;
    event->kind = (gt_event_kind_t) (s_next (&state) % GT_EVENT_COUNT_);
    event->reason = event->kind == GT_EVENT_OBJECT_RECLAIMED ? GT_REASON_EXPIRED : GT_REASON_NONE;
    uint64_t shape = s_next (&state);
    //  Times in every order, near each other or far apart
    event->at = 1700000000000ULL + s_next (&state) % 100000;
    lease->created_at = shape & 1 ? event->at - s_next (&state) % 5000 : event->at + s_next (&state) % 7;
    lease->renewed_at = lease->created_at + s_next (&state) % 3000;
    lease->expires_at = shape & 2 ? lease->renewed_at + s_next (&state) % 100000 : lease->renewed_at - 1;
    if ((shape & 0xF0) == 0x10)
        lease->created_at = s_next (&state) >> 20;     //  (far from the rest: large deltas)
    for (int i = 0; i < 16; i++)
        snprintf (lease->id + 2 * i, 3, "%02x", (unsigned) (s_next (&state) & 0xFF));
    snprintf (event->object_id, sizeof (event->object_id), "obj-%" PRIu64 "-%u", seq, variant);
    snprintf (event->service_id, sizeof (event->service_id), "svc-%u", (unsigned) (shape >> 8) % 5);
    lease->object_id = event->object_id;
    lease->service_id = event->service_id;
    lease->object_type = (gt_object_type_t) ((shape >> 12) % GT_TYPE_COUNT_);
    lease->state = (gt_lease_state_t) ((shape >> 16) % 3);
    lease->fence = s_next (&state) >> (shape >> 20 & 63);
    lease->ttl_ms = 1000 + s_next (&state) % 100000;
    lease->renewals = shape & 4 ? s_next (&state) % 100 : 0;
    if (shape & 8) {
        lease->cleanup = &event->cleanup;
        event->cleanup.url = "http://127.0.0.1:9/cleanup";
        if (shape & 0x100) {
            //  Long payloads sometimes: records of many sizes
            size_t length = s_next (&state) % (sizeof (event->payload) - 1);
            memset (event->payload, 'p', length);
            event->cleanup.payload = event->payload;
        }
        event->cleanup.has_max_retries = (shape & 0x200) != 0;
        event->cleanup.max_retries = (uint32_t) (s_next (&state) % 10);
        event->cleanup.has_retry_delay = (shape & 0x400) != 0;
        event->cleanup.retry_delay_ms = s_next (&state) % 100000;
        lease->cleanup_status = (gt_cleanup_status_t) (1 + (shape >> 24) % (GT_CLEANUP_STATUS_COUNT_ - 1));
        lease->cleanup_attempts = s_next (&state) % 5;
        if (shape & 0x800) {
            snprintf (event->error, sizeof (event->error), "HTTP %u", 500 + (unsigned) (shape % 4));
            lease->cleanup_error = event->error;
        }
    }
    size_t meta_count = (shape >> 32) % 7;
    for (size_t i = 0; i < meta_count; i++) {
        snprintf (event->strings [i][0], sizeof (event->strings [i][0]), "key%zu", i);
        snprintf (event->strings [i][1], sizeof (event->strings [i][1]), "value-%" PRIu64, s_next (&state) % 1000);
        event->meta [i].key = event->strings [i][0];
        event->meta [i].value = event->strings [i][1];
    }
    lease->metadata.entries = meta_count ? event->meta : NULL;
    lease->metadata.count = meta_count;
}

//  The record of seq holds exactly the event (seq, variant)
static bool
s_test_holds (gt_event_ring_t *ring, uint64_t seq, unsigned variant, msgpack_sbuffer *got, msgpack_sbuffer *want)
{
    s_test_event_t event;
    s_test_event (&event, seq, variant);
    gt_msg_t msg;
    memset (&msg, 0, sizeof (msg));
    msg.kind = GT_MSG_EVENT;
    msg.version = GT_PROTOCOL_VERSION;
    msg.event.seq = seq;
    msg.event.kind = event.kind;
    msg.event.at = event.at;
    msg.event.reason = event.reason;
    msg.event.lease = event.lease;
    msgpack_sbuffer_clear (want);
    msgpack_sbuffer_clear (got);
    assert (gt_msg_encode (&msg, want) == 0);
    if (gt_event_ring_encode (ring, seq, got) != 0
    ||  got->size != want->size || memcmp (got->data, want->data, want->size) != 0)
        return false;
    char expected [256];
    int expected_length = gt_event_topic (expected, sizeof (expected), event.kind, event.lease.object_type,
                                          event.lease.service_id);
    size_t length;
    const char *topic = gt_event_ring_topic (ring, seq, &length);
    return expected_length >= 0 && length == (size_t) expected_length && streq (topic, expected)
        && gt_event_ring_kind (ring, seq) == event.kind;
}

//  The topic is made again for each record whatever was asked before it:
//  one kind, with services (one the start of another) and types in turn,
//  asked in an order that leaves a made topic to be reused or not
static void
s_test_topics_in_turn (void)
{
    gt_event_ring_t *ring = gt_event_ring_new ();
    const char *services [] = { "svc", "svc-b", "svc", "svd", "svc", "svc-b" };
    gt_object_type_t types [] = { GT_TYPE_CUSTOM, GT_TYPE_CUSTOM, GT_TYPE_TEMPORARY_FILE,
                                  GT_TYPE_CUSTOM, GT_TYPE_CUSTOM, GT_TYPE_CUSTOM };
    size_t count = sizeof (services) / sizeof (services [0]);
    s_test_event_t event;
    for (size_t i = 0; i < count; i++) {
        s_test_event (&event, 1 + i, 0);
        event.kind = GT_EVENT_LEASE_RENEWED;
        event.reason = GT_REASON_NONE;
        event.lease.service_id = (char *) services [i];
        event.lease.object_type = types [i];
        assert (gt_event_ring_append (ring, event.kind, &event.lease, event.reason, event.at));
    }
    size_t order [] = { 0, 1, 0, 2, 2, 3, 4, 0, 5, 1, 3 };
    for (size_t k = 0; k < sizeof (order) / sizeof (order [0]); k++) {
        size_t i = order [k];
        char expected [64];
        int length = gt_event_topic (expected, sizeof (expected), GT_EVENT_LEASE_RENEWED, types [i], services [i]);
        size_t size;
        const char *topic = gt_event_ring_topic (ring, 1 + i, &size);
        assert (length > 0 && size == (size_t) length && streq (topic, expected));
    }
    gt_event_ring_destroy (&ring);
}

//  A plain event (no cleanup, no metadata) whose record takes exactly
//  size bytes (base: what a record with an empty object id takes), its
//  object id a run of one letter
static void
s_test_append_sized (gt_event_ring_t *ring, size_t base, size_t size, char letter)
{
    static char object_id [4096];
    assert (size >= base && size - base < sizeof (object_id));
    memset (object_id, letter, size - base);
    object_id [size - base] = '\0';
    gt_lease_info_t lease;
    memset (&lease, 0, sizeof (lease));
    strcpy (lease.id, "00112233445566778899aabbccddeeff");
    lease.object_id = object_id;
    lease.service_id = "svc";
    lease.created_at = lease.renewed_at = 1700000000000ULL;
    lease.expires_at = lease.created_at + 1000;
    size_t used = gt_event_ring_used (ring);
    assert (gt_event_ring_append (ring, GT_EVENT_LEASE_CREATED, &lease, GT_REASON_NONE, lease.created_at));
    assert (base == 0 || gt_event_ring_used (ring) == used + size);
}

//  Every record of the ring is a sized one, object ids in letters from
//  'a' on by seq from first
static bool
s_test_sized_hold (gt_event_ring_t *ring, uint64_t first_seq)
{
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    bool held = true;
    for (uint64_t seq = gt_event_ring_first (ring); held && seq < gt_event_ring_end (ring); seq++) {
        msgpack_sbuffer_clear (&body);
        gt_msg_t *event = NULL;
        char err [128];
        held = gt_event_ring_encode (ring, seq, &body) == 0
            && gt_msg_decode (body.data, body.size, GT_MSG_EVENT, &event, NULL, err, sizeof (err)) == GT_OK
            && event->event.seq == seq
            && event->event.lease.object_id [0] == (char) ('a' + (seq - first_seq) % 26);
        if (held) {
            const char *id = event->event.lease.object_id;
            held = strspn (id, (char []) { id [0], 0 }) == strlen (id);
        }
        gt_msg_destroy (&event);
    }
    msgpack_sbuffer_destroy (&body);
    return held;
}

//  A new ring filled with records of record bytes (object ids 'a', 'b'
//  ... by seq from 1) until fewer than room bytes are left at its end;
//  *seq_p is the last seq, *size_p the ring's bytes
static gt_event_ring_t *
s_test_filled (size_t base, size_t record, size_t room, uint64_t *seq_p, size_t *size_p)
{
    gt_event_ring_t *ring = gt_event_ring_new ();
    uint64_t seq = 1;
    s_test_append_sized (ring, base, record, 'a');
    size_t size = gt_event_ring_bytes (ring);
    while (size - gt_event_ring_used (ring) >= room)
        s_test_append_sized (ring, base, record, (char) ('a' + seq++ % 26));
    *seq_p = seq;
    *size_p = size;
    return ring;
}

//  Records that fit exactly where they go, and ones a byte too long:
//  at the end of the bytes, at the start before the oldest (a wrap),
//  and between the newest and the oldest once wrapped.  A record a byte
//  too long for a place never goes there (the ring grows instead).
static void
s_test_boundaries (void)
{
    //  What a record takes beyond its object id
    gt_event_ring_t *ring = gt_event_ring_new ();
    s_test_append_sized (ring, 0, 0, 'a');
    size_t base = gt_event_ring_used (ring);
    gt_event_ring_destroy (&ring);
    const size_t record = base + 100;

    for (int too_long = 0; too_long < 2; too_long++) {
        //  The end: records until less than two are left, then one that
        //  takes exactly what is left (or a byte more)
        uint64_t seq;
        size_t size;
        ring = s_test_filled (base, record, 2 * record, &seq, &size);
        size_t left = size - gt_event_ring_used (ring);
        s_test_append_sized (ring, base, left + too_long, (char) ('a' + seq++ % 26));
        assert (s_test_sized_hold (ring, 1));
        assert ((gt_event_ring_bytes (ring) == size) == !too_long);
        gt_event_ring_destroy (&ring);

        //  The start: the oldest three gone, the end too short for the
        //  next, which takes what the three left (or a byte more)
        ring = s_test_filled (base, record, record, &seq, &size);
        assert (size - gt_event_ring_used (ring) < record);
        gt_event_ring_drop_before (ring, 4);
        s_test_append_sized (ring, base, 3 * record + too_long, (char) ('a' + seq++ % 26));
        assert (s_test_sized_hold (ring, 1));
        assert ((gt_event_ring_bytes (ring) == size) == !too_long);
        gt_event_ring_destroy (&ring);

        //  Between: wrapped with one record at the start and the oldest
        //  three gone, the next takes the two left (or a byte more); the
        //  end left too short for a record, but not for a small one
        ring = s_test_filled (base, record, 2 * record, &seq, &size);
        s_test_append_sized (ring, base, size - gt_event_ring_used (ring) - (base + 10),
                             (char) ('a' + seq++ % 26));
        gt_event_ring_drop_before (ring, 4);
        s_test_append_sized (ring, base, record, (char) ('a' + seq++ % 26));    //  wraps
        assert (gt_event_ring_bytes (ring) == size);
        s_test_append_sized (ring, base, 2 * record + too_long, (char) ('a' + seq++ % 26));
        assert (s_test_sized_hold (ring, 1));
        assert ((gt_event_ring_bytes (ring) == size) == !too_long);
        //  A rollback of the two after the wrap: the end is where the
        //  records before it end, and a record that fits there goes there
        gt_event_ring_drop_from (ring, seq - 1);
        seq -= 2;
        assert (gt_event_ring_end (ring) == seq + 1 && s_test_sized_hold (ring, 1));
        size_t at_end = size - 3 * record - gt_event_ring_used (ring);
        assert (at_end == base + 10);
        if (!too_long) {
            s_test_append_sized (ring, base, at_end, (char) ('a' + seq++ % 26));
            //  ... and the start is free again for what the oldest three left
            s_test_append_sized (ring, base, 3 * record, (char) ('a' + seq++ % 26));
            assert (gt_event_ring_bytes (ring) == size && s_test_sized_hold (ring, 1));
        }
        gt_event_ring_destroy (&ring);
    }
}

//  An event appended again (another kind and reason, the newest record's
//  lease and time) is the very record a full append of it makes, through
//  wraps, growth, rollbacks and restarts: two rings, one by each way, encode alike and use as
//  many bytes; an empty ring or a topic too long keeps nothing
static void
s_test_again (void)
{
    gt_event_ring_t *again = gt_event_ring_new ();
    gt_event_ring_t *whole = gt_event_ring_new ();
    assert (!gt_event_ring_append_again (again, GT_EVENT_OBJECT_RECLAIMED, GT_REASON_EXPIRED));
    assert (gt_event_ring_end (again) == 1);
    msgpack_sbuffer got, want;
    msgpack_sbuffer_init (&got);
    msgpack_sbuffer_init (&want);
    uint64_t state = 11;
    size_t copies = 0;
    for (uint64_t seq = 1; seq < 6000; seq++) {
        s_test_event_t event;
        s_test_event (&event, seq, 0);
        assert (gt_event_ring_append (again, event.kind, &event.lease, event.reason, event.at));
        assert (gt_event_ring_append (whole, event.kind, &event.lease, event.reason, event.at));
        if (s_next (&state) % 2) {
            seq++;
            gt_event_kind_t kind = (gt_event_kind_t) (s_next (&state) % GT_EVENT_COUNT_);
            gt_reason_t reason = kind == GT_EVENT_OBJECT_RECLAIMED
                               ? (s_next (&state) % 2 ? GT_REASON_EXPIRED : GT_REASON_RELEASED) : GT_REASON_NONE;
            assert (gt_event_ring_append_again (again, kind, reason));
            assert (gt_event_ring_append (whole, kind, &event.lease, reason, event.at));
            copies++;
        }
        //  Now and then the newest few rolled back, or everything dropped
        uint64_t roll = s_next (&state) % 50;
        if (roll < 4 && gt_event_ring_end (whole) - gt_event_ring_first (whole) > 3) {
            uint64_t from = gt_event_ring_end (whole) - 1 - roll % 3;
            gt_event_ring_drop_from (whole, from);
            gt_event_ring_drop_from (again, from);
        }
        else
        if (roll == 4) {
            gt_event_ring_restart (whole, gt_event_ring_end (whole));
            gt_event_ring_restart (again, gt_event_ring_end (again));
            assert (!gt_event_ring_append_again (again, GT_EVENT_OBJECT_RECLAIMED, GT_REASON_EXPIRED));
        }
        //  A history of 50 to 150: the rings wrap, and grow now and then
        uint64_t keep = 50 + s_next (&state) % 100;
        uint64_t end = gt_event_ring_end (whole);
        assert (gt_event_ring_end (again) == end);
        if (end - gt_event_ring_first (whole) > keep) {
            gt_event_ring_drop_before (whole, end - keep);
            gt_event_ring_drop_before (again, end - keep);
        }
        assert (gt_event_ring_used (again) == gt_event_ring_used (whole));
        for (uint64_t at = gt_event_ring_first (whole); at < end; at += 1 + s_next (&state) % 7) {
            msgpack_sbuffer_clear (&got);
            msgpack_sbuffer_clear (&want);
            assert (gt_event_ring_encode (again, at, &got) == 0 && gt_event_ring_encode (whole, at, &want) == 0);
            assert (got.size == want.size && memcmp (got.data, want.data, got.size) == 0);
            size_t got_size, want_size;
            char topic [GT_EVENT_RING_TOPIC_MAX + 1];
            snprintf (topic, sizeof topic, "%s", gt_event_ring_topic (whole, at, &want_size));
            assert (streq (gt_event_ring_topic (again, at, &got_size), topic) && got_size == want_size);
            assert (gt_event_ring_kind (again, at) == gt_event_ring_kind (whole, at));
        }
    }
    assert (copies > 1000);
    //  The longest service a topic of "created" holds is too long for one
    //  of "reclaimed": nothing kept
    s_test_event_t event;
    s_test_event (&event, 9000, 0);
    char topic [256];
    char long_service [GT_EVENT_RING_TOPIC_MAX + 1];
    size_t fits = GT_EVENT_RING_TOPIC_MAX - (size_t) gt_event_topic (topic, sizeof (topic), GT_EVENT_LEASE_CREATED,
                                                                     event.lease.object_type, "");
    memset (long_service, 's', fits);
    long_service [fits] = '\0';
    event.lease.service_id = long_service;
    uint64_t end = gt_event_ring_end (again);
    assert (gt_event_ring_append (again, GT_EVENT_LEASE_CREATED, &event.lease, GT_REASON_NONE, event.at));
    assert (!gt_event_ring_append_again (again, GT_EVENT_OBJECT_RECLAIMED, GT_REASON_EXPIRED));
    assert (gt_event_ring_end (again) == end + 1);
    assert (gt_event_ring_append_again (again, GT_EVENT_LEASE_RENEWED, GT_REASON_NONE));
    assert (gt_event_ring_end (again) == end + 2);
    msgpack_sbuffer_destroy (&got);
    msgpack_sbuffer_destroy (&want);
    gt_event_ring_destroy (&again);
    gt_event_ring_destroy (&whole);
}

static void
s_test_append (gt_event_ring_t *ring, uint64_t seq, unsigned variant)
{
    s_test_event_t event;
    s_test_event (&event, seq, variant);
    assert (gt_event_ring_end (ring) == seq);
    assert (gt_event_ring_append (ring, event.kind, &event.lease, event.reason, event.at));
    assert (gt_event_ring_end (ring) == seq + 1);
}

void
gt_event_ring_test (bool verbose)
{
    printf (" * gt_event_ring: ");
    msgpack_sbuffer got, want;
    msgpack_sbuffer_init (&got);
    msgpack_sbuffer_init (&want);

    //  Empty: first == end == 1.  A topic too long keeps nothing; an id
    //  the codec refuses is kept, and refused when it is encoded
    gt_event_ring_t *ring = gt_event_ring_new ();
    assert (gt_event_ring_first (ring) == 1 && gt_event_ring_end (ring) == 1);
    s_test_event_t event;
    s_test_event (&event, 1, 0);
    char long_service [GT_EVENT_RING_TOPIC_MAX + 1];
    memset (long_service, 's', GT_EVENT_RING_TOPIC_MAX);
    long_service [GT_EVENT_RING_TOPIC_MAX] = '\0';
    event.lease.service_id = long_service;
    assert (!gt_event_ring_append (ring, event.kind, &event.lease, event.reason, event.at));
    assert (gt_event_ring_end (ring) == 1);
    //  (the longest service that fits: the topic takes 255 bytes)
    char topic [256];
    size_t fits = GT_EVENT_RING_TOPIC_MAX - (size_t) gt_event_topic (topic, sizeof (topic), event.kind,
                                                                     event.lease.object_type, "");
    long_service [fits] = '\0';
    assert (gt_event_ring_append (ring, event.kind, &event.lease, event.reason, event.at));
    size_t topic_size;
    assert (strlen (gt_event_ring_topic (ring, 1, &topic_size)) == GT_EVENT_RING_TOPIC_MAX
            && topic_size == GT_EVENT_RING_TOPIC_MAX);
    msgpack_sbuffer_clear (&got);
    assert (gt_event_ring_encode (ring, 1, &got) == 0);
    gt_msg_t *decoded = NULL;
    char err [128];
    assert (gt_msg_decode (got.data, got.size, GT_MSG_EVENT, &decoded, NULL, err, sizeof (err)) == GT_OK);
    assert (streq (decoded->event.lease.service_id, long_service));
    gt_msg_destroy (&decoded);
    s_test_event (&event, 2, 0);
    event.lease.id [5] = 'G';
    assert (gt_event_ring_append (ring, event.kind, &event.lease, event.reason, event.at));
    assert (gt_event_ring_end (ring) == 3);
    assert (gt_event_ring_encode (ring, 2, &got) == -1);
    //  Restart: the numbering goes on from there
    gt_event_ring_restart (ring, 41);
    assert (gt_event_ring_first (ring) == 41 && gt_event_ring_end (ring) == 41);
    s_test_append (ring, 41, 0);
    assert (s_test_holds (ring, 41, 0, &got, &want));
    gt_event_ring_destroy (&ring);
    assert (ring == NULL);

    s_test_boundaries ();
    s_test_topics_in_turn ();
    s_test_again ();

    //  A random walk: appends, the oldest dropped past S_TEST_KEEP, the
    //  newest dropped (a rollback, its seqs made again as other events)
    //  now and then; every record kept is checked against its event, often
    //  and whenever the ring has grown
    ring = gt_event_ring_new ();
    unsigned *variants = (unsigned *) zmalloc (S_TEST_SEQS * 2 * sizeof (unsigned));
    uint64_t state = 7;
    size_t max_bytes = 0;
    size_t rollbacks = 0;
    size_t growths = 0;
    for (size_t step = 0; step < S_TEST_STEPS; step++) {
        uint64_t end = gt_event_ring_end (ring);
        uint64_t choice = s_next (&state) % 100;
        if (choice < 3 && end > gt_event_ring_first (ring)) {
            //  Roll back up to 20 of the newest
            uint64_t kept = end - gt_event_ring_first (ring);
            uint64_t from = end - 1 - s_next (&state) % (kept < 20 ? kept : 20);
            gt_event_ring_drop_from (ring, from);
            assert (gt_event_ring_end (ring) == from);
            rollbacks++;
        }
        else {
            assert (end < S_TEST_SEQS * 2);
            variants [end]++;
            s_test_append (ring, end, variants [end]);
        }
        end = gt_event_ring_end (ring);
        if (end - gt_event_ring_first (ring) > S_TEST_KEEP (step))
            gt_event_ring_drop_before (ring, end - S_TEST_KEEP (step));
        if (step % 97 == 0 || step + 1 == S_TEST_STEPS || gt_event_ring_bytes (ring) != max_bytes)
            for (uint64_t seq = gt_event_ring_first (ring); seq < gt_event_ring_end (ring); seq++)
                assert (s_test_holds (ring, seq, variants [seq], &got, &want));
        if (gt_event_ring_bytes (ring) != max_bytes) {
            assert (gt_event_ring_bytes (ring) > max_bytes);
            max_bytes = gt_event_ring_bytes (ring);
            growths++;
        }
    }
    assert (rollbacks > 100);
    assert (growths >= 5);
    //  The bytes stay near what the records kept (up to ~1 kB each) need:
    //  the ring reuses its space rather than growing forever
    assert (max_bytes < 2 * S_TEST_KEEP (S_TEST_STEPS) * 1100);
    //  Dropping everything empties it; appending starts again
    uint64_t end = gt_event_ring_end (ring);
    gt_event_ring_drop_before (ring, end);
    assert (gt_event_ring_first (ring) == end && gt_event_ring_end (ring) == end);
    variants [end]++;
    s_test_append (ring, end, variants [end]);
    assert (s_test_holds (ring, end, variants [end], &got, &want));
    gt_event_ring_drop_from (ring, end);
    assert (gt_event_ring_first (ring) == end && gt_event_ring_end (ring) == end);
    gt_event_ring_destroy (&ring);
    free (variants);

    msgpack_sbuffer_destroy (&got);
    msgpack_sbuffer_destroy (&want);
    if (verbose)
        printf ("(largest ring %zu bytes, %zu growths) ", max_bytes, growths);
    printf ("OK\n");
}
