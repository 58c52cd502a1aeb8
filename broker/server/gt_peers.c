/*  gt_peers.c — per-connection accounting of owed replies; the contract
    is in gt_peers.h.

    Every request looks its peer up twice (admit, then owe), and requests
    of a few busy connections come interleaved: a small cache, one slot per
    value of an id's last byte (modulo S_CACHE_SLOTS: ZeroMQ's own ids end
    in a counter), remembers an id's hash and its record, so that most
    lookups are one compare instead of a SipHash and a probe.  A slot says
    the truth about its id: it is filled from the table when it takes an
    id, and kept so when that id's record is made (owe) or freed (settle).
    Ids that share a slot only take turns in it.  */
#include <czmq.h>
#include <sys/random.h>
#include "gt_table.h"
#include "gt_peers.h"

//  ROUTER routing ids are at most 255 bytes (ZMTP)
#define S_MAX_ID        255
//  Routing ids remembered with their hash and record (a power of two)
#define S_CACHE_SLOTS   8
_Static_assert ((S_CACHE_SLOTS & (S_CACHE_SLOTS - 1)) == 0, "S_CACHE_SLOTS: a power of two");

struct gt_peer_t {
    uint64_t hash;                  //  keyed hash of the routing id
    uint64_t pending;               //  replies owed, not yet handed to libzmq
    uint64_t queued_bytes;          //  of those, bytes waiting in the backlog
    uint64_t queued;                //  of those, replies waiting in the backlog
    uint8_t size;                   //  routing id bytes
    uint8_t id [];                  //  routing id
};

//  A routing id looked up lately
typedef struct {
    uint8_t id [S_MAX_ID];          //  the routing id
    size_t size;                    //  its bytes (0: an empty slot)
    uint64_t hash;                  //  its keyed hash
    gt_peer_t *peer;                //  its record, or NULL while it owes nothing
} s_cached_t;

struct gt_peers_t {
    gt_table_t *table;              //  gt_peer_t by routing id
    uint8_t hash_key [16];          //  SipHash key (client-chosen ids)
    uint64_t max_pending;           //  GC_CONNECTION_MAX_PENDING
    uint64_t max_queued_bytes;      //  GC_CONNECTION_MAX_QUEUED_BYTES
    uint64_t queued_bytes;          //  sum over the peers
    s_cached_t cache [S_CACHE_SLOTS];   //  ids looked up lately, by their last byte
};

typedef struct {
    const void *id;                 //  routing id looked up
    size_t size;                    //  its bytes
} s_key_t;

static uint64_t
s_entry_hash (const void *entry, void *ctx)
{
    (void) ctx;
    return ((const gt_peer_t *) entry)->hash;
}

static bool
s_entry_match (const void *entry, const void *key)
{
    const gt_peer_t *peer = (const gt_peer_t *) entry;
    const s_key_t *wanted = (const s_key_t *) key;
    return peer->size == wanted->size && memcmp (peer->id, wanted->id, wanted->size) == 0;
}

gt_peers_t *
gt_peers_new (uint64_t max_pending, uint64_t max_queued_bytes)
{
    assert (max_pending > 0 && max_queued_bytes > 0);
    gt_peers_t *self = (gt_peers_t *) zmalloc (sizeof (gt_peers_t));
    assert (self);
    self->table = gt_table_new (s_entry_hash, NULL);
    assert (self->table);
    if (getrandom (self->hash_key, sizeof (self->hash_key), 0) != (ssize_t) sizeof (self->hash_key))
        memset (self->hash_key, 0, sizeof (self->hash_key));   //  still correct, only guessable
    self->max_pending = max_pending;
    self->max_queued_bytes = max_queued_bytes;
    return self;
}

static void
s_free_entry (void *entry, void *arg)
{
    (void) arg;
    free (entry);
}

void
gt_peers_destroy (gt_peers_t **self_p)
{
    assert (self_p);
    gt_peers_t *self = *self_p;
    if (self) {
        gt_table_foreach (self->table, s_free_entry, NULL);
        gt_table_destroy (&self->table);
        free (self);
        *self_p = NULL;
    }
}

//  The cache slot of an id (NULL for the empty id, never cached); size
//  is at most S_MAX_ID
static s_cached_t *
s_cache_slot (gt_peers_t *self, const void *id, size_t size)
{
    if (size == 0)
        return NULL;
    return &self->cache [((const uint8_t *) id) [size - 1] & (S_CACHE_SLOTS - 1)];
}

static bool
s_cache_holds (const s_cached_t *cached, const void *id, size_t size)
{
    return cached && cached->size == size && memcmp (cached->id, id, size) == 0;
}

static gt_peer_t *
s_lookup (gt_peers_t *self, const void *id, size_t size, uint64_t *hash_p)
{
    if (size > S_MAX_ID)
        size = S_MAX_ID;
    s_cached_t *cached = s_cache_slot (self, id, size);
    if (s_cache_holds (cached, id, size)) {
        if (hash_p)
            *hash_p = cached->hash;
        return cached->peer;
    }
    uint64_t hash = gt_siphash (self->hash_key, id, size);
    if (hash_p)
        *hash_p = hash;
    gt_peer_t *peer = NULL;
    if (gt_table_size (self->table) > 0) {
        s_key_t key = { id, size };
        peer = (gt_peer_t *) gt_table_lookup (self->table, hash, s_entry_match, &key);
    }
    if (cached) {
        memcpy (cached->id, id, size);
        cached->size = size;
        cached->hash = hash;
        cached->peer = peer;
    }
    return peer;
}

gt_peer_verdict_t
gt_peers_admit (gt_peers_t *self, const void *id, size_t size)
{
    assert (self);
    if (gt_table_size (self->table) == 0)
        return GT_PEER_ADMIT;       //  nobody owes anything: the common case
    gt_peer_t *peer = s_lookup (self, id, size, NULL);
    if (!peer || (peer->pending < self->max_pending && peer->queued_bytes < self->max_queued_bytes))
        return GT_PEER_ADMIT;
    return peer->queued > 0 ? GT_PEER_SHED : GT_PEER_REFUSE;
}

gt_peer_t *
gt_peers_owe (gt_peers_t *self, const void *id, size_t size)
{
    assert (self);
    uint64_t hash;
    gt_peer_t *peer = s_lookup (self, id, size, &hash);
    if (!peer) {
        if (size > S_MAX_ID)
            size = S_MAX_ID;
        peer = (gt_peer_t *) zmalloc (sizeof (gt_peer_t) + size);
        assert (peer);
        peer->hash = hash;
        peer->size = (uint8_t) size;
        memcpy (peer->id, id, size);
        gt_table_insert (self->table, hash, peer);
        s_cached_t *cached = s_cache_slot (self, peer->id, size);
        if (s_cache_holds (cached, peer->id, size))
            cached->peer = peer;
    }
    peer->pending++;
    return peer;
}

void
gt_peers_queued (gt_peers_t *self, gt_peer_t *peer, size_t size)
{
    assert (self && peer);
    peer->queued++;
    peer->queued_bytes += size;
    self->queued_bytes += size;
}

void
gt_peers_unqueued (gt_peers_t *self, gt_peer_t *peer, size_t size)
{
    assert (self && peer && peer->queued > 0 && peer->queued_bytes >= size);
    peer->queued--;
    peer->queued_bytes -= size;
    self->queued_bytes -= size;
}

void
gt_peers_settle (gt_peers_t *self, gt_peer_t *peer)
{
    assert (self && peer && peer->pending > 0);
    if (--peer->pending == 0) {
        assert (peer->queued == 0 && peer->queued_bytes == 0);
        bool removed = gt_table_remove (self->table, peer->hash, peer);
        assert (removed);
        s_cached_t *cached = s_cache_slot (self, peer->id, peer->size);
        if (cached && cached->peer == peer)
            cached->peer = NULL;
        free (peer);
    }
}

size_t
gt_peers_count (gt_peers_t *self)
{
    assert (self);
    return gt_table_size (self->table);
}

uint64_t
gt_peers_queued_bytes (gt_peers_t *self)
{
    assert (self);
    return self->queued_bytes;
}
