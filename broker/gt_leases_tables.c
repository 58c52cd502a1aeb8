/*  gt_leases_tables.c — the lease engine's tables and their primitives:
    ids, creation order, services, objects, allocation, and the journal's
    before-images.  Every mutation of a table goes through here, so that
    with the journal on each one is recorded (see gt_leases.h).

    Tables:
      ids        gt_table of leases by their 128-bit id
      objects    gt_table of object records by object id (SipHash, keyed)
      order      array of leases in creation order (for LIST); a removed
                 lease leaves a "hole" that remembers its serial, so the
                 array stays sorted by serial and a cursor resumes with a
                 binary search; holes are squeezed out when they are many
      services   array of interned service ids (a lease keeps a 24-bit index)
      keys       zhashx "service-index:idempotency-key" -> lease  */
#include <czmq.h>
#include <sys/random.h>
#include "gt_wheel.h"
#include "gt_table.h"
#include "gt_leases.h"
#include "gt_leases_internal.h"

//  --------------------------------------------------------------------------
//  Small helpers

void
gt_leases_random_fill (gt_leases_t *self)
{
    size_t filled = 0;
    while (filled < sizeof (self->random)) {
        ssize_t rc = getrandom (self->random + filled, sizeof (self->random) - filled, 0);
        if (rc < 0 && errno == EINTR)
            continue;
        assert (rc > 0);            //  no CSPRNG is an environment error
        filled += (size_t) rc;
    }
    self->random_used = 0;
}

void
gt_leases_random_bytes (gt_leases_t *self, uint8_t *out, size_t size)
{
    assert (size <= sizeof (self->random));
    if (self->random_used + size > sizeof (self->random))
        gt_leases_random_fill (self);
    memcpy (out, self->random + self->random_used, size);
    //  Never hand the same bytes out twice
    memset (self->random + self->random_used, 0, size);
    self->random_used += size;
}

static const char s_hex_digits [] = "0123456789abcdef";

void
gt_leases_id_format (const uint8_t id [16], char *out)
{
    for (int i = 0; i < 16; i++) {
        out [2 * i] = s_hex_digits [id [i] >> 4];
        out [2 * i + 1] = s_hex_digits [id [i] & 15];
    }
    out [32] = 0;
}

bool
gt_leases_id_parse (const char *text, uint8_t id [16])
{
    if (!text)
        return false;
    for (int i = 0; i < 32; i++) {
        char c = text [i];
        int nibble;
        if (c >= '0' && c <= '9')
            nibble = c - '0';
        else
        if (c >= 'a' && c <= 'f')
            nibble = c - 'a' + 10;
        else
            return false;
        if (i % 2 == 0)
            id [i / 2] = (uint8_t) (nibble << 4);
        else
            id [i / 2] |= (uint8_t) nibble;
    }
    return text [32] == 0;
}

static uint64_t
s_lease_hash_of (const uint8_t *id)
{
    uint64_t hash;
    memcpy (&hash, id, sizeof (hash));
    return hash;
}

uint64_t
gt_leases_lease_hash (const void *entry, void *ctx)
{
    (void) ctx;
    return s_lease_hash_of (((const gt_lease_t *) entry)->id);
}

static bool
s_lease_match (const void *entry, const void *key)
{
    return memcmp (((const gt_lease_t *) entry)->id, key, 16) == 0;
}

uint64_t
gt_leases_object_hash_of (gt_leases_t *self, const char *object_id)
{
    return gt_siphash (self->hash_key, object_id, strlen (object_id));
}

uint64_t
gt_leases_object_hash (const void *entry, void *ctx)
{
    return gt_leases_object_hash_of ((gt_leases_t *) ctx, ((const s_object_t *) entry)->id);
}

static bool
s_object_match (const void *entry, const void *key)
{
    return streq (((const s_object_t *) entry)->id, (const char *) key);
}

uint32_t
gt_leases_service_of (const gt_lease_t *lease)
{
    return (uint32_t) lease->service_hi << 16 | (uint32_t) lease->service_lo;
}

void
gt_leases_set_service (gt_lease_t *lease, uint32_t index)
{
    lease->service_hi = (index >> 16) & 0xff;
    lease->service_lo = index & 0xffff;
}

uint64_t
gt_leases_expires_at (const gt_lease_t *lease)
{
    if (lease->state == GT_STATE_ACTIVE)
        return (uint64_t) lease->renewed_at + lease->ttl_ms;
    return (uint64_t) lease->renewed_at + ((uint64_t) lease->end_hi << 16 | lease->end_lo);
}

void
gt_leases_set_ended_at (gt_lease_t *lease, uint64_t ended_at)
{
    uint64_t delta = ended_at > lease->renewed_at ? ended_at - lease->renewed_at : 0;
    if (delta > UINT32_MAX)
        delta = UINT32_MAX;
    lease->end_hi = (delta >> 16) & 0xffff;
    lease->end_lo = delta & 0xffff;
}

//  --------------------------------------------------------------------------
//  Creation order (LIST)


static uint64_t
s_order_serial (uintptr_t entry)
{
    return S_IS_HOLE (entry) ? (uint64_t) (entry >> 1) : ((gt_lease_t *) entry)->serial;
}

//  Index of the first entry whose serial is >= serial.
size_t
gt_leases_order_lower_bound (gt_leases_t *self, uint64_t serial)
{
    size_t low = 0, high = self->order_count;
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        if (s_order_serial (self->order [middle]) < serial)
            low = middle + 1;
        else
            high = middle;
    }
    return low;
}

static void
s_order_grow (gt_leases_t *self)
{
    if (self->order_count < self->order_cap)
        return;
    size_t cap = self->order_cap < 64 ? 64 : self->order_cap + self->order_cap / 2;
    self->order = (uintptr_t *) realloc (self->order, cap * sizeof (uintptr_t));
    assert (self->order);
    self->order_cap = cap;
}

static void
s_order_insert (gt_leases_t *self, gt_lease_t *lease)
{
    //  The common case: a new lease, newest of all
    if (self->order_count == 0
    || s_order_serial (self->order [self->order_count - 1]) < lease->serial) {
        s_order_grow (self);
        self->order [self->order_count++] = (uintptr_t) lease;
        return;
    }
    size_t index = gt_leases_order_lower_bound (self, lease->serial);
    if (index < self->order_count && self->order [index] == S_HOLE (lease->serial)) {
        self->order [index] = (uintptr_t) lease;       //  fill its own hole
        self->order_holes--;
        return;
    }
    s_order_grow (self);
    memmove (self->order + index + 1, self->order + index,
             (self->order_count - index) * sizeof (uintptr_t));
    self->order [index] = (uintptr_t) lease;
    self->order_count++;
}

static void
s_order_remove (gt_leases_t *self, gt_lease_t *lease)
{
    size_t index = gt_leases_order_lower_bound (self, lease->serial);
    assert (index < self->order_count && self->order [index] == (uintptr_t) lease);
    self->order [index] = S_HOLE (lease->serial);
    self->order_holes++;
    //  Trailing holes go at once; others when they are half the array
    while (self->order_count && S_IS_HOLE (self->order [self->order_count - 1])) {
        self->order_count--;
        self->order_holes--;
    }
    if (self->order_holes > 64 && self->order_holes * 2 > self->order_count) {
        size_t kept = 0;
        for (size_t i = 0; i < self->order_count; i++)
            if (!S_IS_HOLE (self->order [i]))
                self->order [kept++] = self->order [i];
        self->order_count = kept;
        self->order_holes = 0;
        if (self->order_cap > 1024 && kept * 4 < self->order_cap) {
            self->order_cap = kept * 2;
            self->order = (uintptr_t *) realloc (self->order, self->order_cap * sizeof (uintptr_t));
            assert (self->order);
        }
    }
}

//  --------------------------------------------------------------------------
//  Freeing

static void
s_cleanup_clear (gt_cleanup_t *cleanup)
{
    free (cleanup->url);
    free (cleanup->payload);
}

void
gt_leases_cleanup_list_free (s_cleanup_node_t *node)
{
    while (node) {
        s_cleanup_node_t *next = node->next;
        s_cleanup_clear (&node->cleanup);
        free (node);
        node = next;
    }
}

static void
s_lease_ext_free (s_lease_ext_t *ext)
{
    if (!ext)
        return;
    for (size_t i = 0; i < ext->metadata.count; i++) {
        free (ext->metadata.entries [i].key);
        free (ext->metadata.entries [i].value);
    }
    free (ext->metadata.entries);
    if (ext->cleanup) {
        s_cleanup_clear (ext->cleanup);
        free (ext->cleanup);
    }
    free (ext->idempotency_key);
    free (ext->cleanup_error);
    free (ext);
}

//  Leases come from slabs of S_SLAB_LEASES: no allocator header per lease
//  (8 bytes of 112 at a million leases).  Under AddressSanitizer each lease
//  is its own allocation, so use-after-free is still caught.
#if defined (__SANITIZE_ADDRESS__)
#   define S_LEASE_SLABS    0
#else
#   define S_LEASE_SLABS    1
#endif

gt_lease_t *
gt_leases_lease_alloc (gt_leases_t *self)
{
#if S_LEASE_SLABS
    if (!self->free_leases) {
        s_slab_t *slab = (s_slab_t *) malloc (sizeof (s_slab_t));
        assert (slab);
        slab->next = self->slabs;
        self->slabs = slab;
        for (size_t i = 0; i < S_SLAB_LEASES; i++) {
            *(gt_lease_t **) &slab->leases [i] = self->free_leases;
            self->free_leases = &slab->leases [i];
        }
    }
    gt_lease_t *lease = self->free_leases;
    self->free_leases = *(gt_lease_t **) lease;
    memset (lease, 0, sizeof (gt_lease_t));
    return lease;
#else
    (void) self;
    gt_lease_t *lease = (gt_lease_t *) zmalloc (sizeof (gt_lease_t));
    assert (lease);
    return lease;
#endif
}

void
gt_leases_lease_free (gt_leases_t *self, gt_lease_t *lease)
{
    s_lease_ext_free (lease->ext);
#if S_LEASE_SLABS
    *(gt_lease_t **) lease = self->free_leases;
    self->free_leases = lease;
#else
    (void) self;
    free (lease);
#endif
}

void
gt_leases_object_free (s_object_t *object)
{
    if (object->ext) {
        assert (object->ext->cleanups == NULL);
        assert (object->ext->pending == NULL);
        free (object->ext);
    }
    free (object);
}

void
gt_leases_pending_free (s_pending_t *pending)
{
    gt_lease_info_clear (&pending->last);
    free (pending);
}

void
gt_leases_service_free_slot (gt_leases_t *self, uint32_t index)
{
    free (self->services [index].name);
    self->services [index].name = NULL;
    self->service_free [self->service_free_count++] = index;
}

//  --------------------------------------------------------------------------
//  Journal: record before-images; defer frees while journaling

s_journal_t *
gt_leases_journal_push (gt_leases_t *self, s_journal_type_t type, void *ptr)
{
    if (self->journal_tail == self->journal_cap) {
        if (self->journal_head > 0) {
            //  Slide the live entries down rather than grow
            memmove (self->journal, self->journal + self->journal_head,
                     (self->journal_tail - self->journal_head) * sizeof (s_journal_t));
            self->journal_base += self->journal_head;
            self->journal_tail -= self->journal_head;
            self->journal_head = 0;
        }
        if (self->journal_tail == self->journal_cap) {
            self->journal_cap = self->journal_cap ? self->journal_cap * 2 : 256;
            self->journal = (s_journal_t *) realloc (self->journal, self->journal_cap * sizeof (s_journal_t));
            assert (self->journal);
        }
    }
    s_journal_t *entry = &self->journal [self->journal_tail++];
    memset (entry, 0, sizeof (*entry));
    entry->type = type;
    entry->ptr = ptr;
    return entry;
}

//  Before changing a lease's fields or timer.  fired: its timer was just
//  popped (it counts as armed at its old deadline, so undo re-arms it).
void
gt_leases_lease_touch (gt_leases_t *self, gt_lease_t *lease, bool fired)
{
    if (!self->journaling)
        return;
    s_journal_t *entry = gt_leases_journal_push (self, J_LEASE_OLD, lease);
    memcpy (entry->u.lease_image, (uint8_t *) lease + S_LEASE_IMAGE_OFFSET, S_LEASE_IMAGE_SIZE);
    entry->armed = fired || gt_timer_armed (&lease->timer);
    entry->deadline = lease->timer.deadline;
}

void
gt_leases_object_touch (gt_leases_t *self, s_object_t *object)
{
    if (!self->journaling)
        return;
    s_journal_t *entry = gt_leases_journal_push (self, J_OBJECT_OLD, object);
    entry->u.object.refs = object->refs;
    entry->u.object.active = object->active;
    entry->u.object.fence = object->fence;
    entry->u.object.cleanups = object->ext ? object->ext->cleanups : NULL;
    entry->u.object.pending = object->ext ? object->ext->pending : NULL;
}

void
gt_leases_service_touch (gt_leases_t *self, uint32_t index)
{
    if (!self->journaling)
        return;
    s_journal_t *entry = gt_leases_journal_push (self, J_SERVICE_OLD, NULL);
    entry->u.service.index = index;
    entry->u.service.active = self->services [index].active;
    entry->u.service.refs = self->services [index].refs;
}

//  --------------------------------------------------------------------------
//  Services

bool
gt_leases_service_find (gt_leases_t *self, const char *name, uint32_t *index_p)
{
    void *value = zhashx_lookup (self->service_index, name);
    if (!value)
        return false;
    *index_p = (uint32_t) ((uintptr_t) value - 1);
    return true;
}

uint32_t
gt_leases_service_acquire (gt_leases_t *self, const char *name)
{
    uint32_t index;
    if (gt_leases_service_find (self, name, &index))
        return index;
    if (self->service_free_count)
        index = self->service_free [--self->service_free_count];
    else {
        if (self->service_count == self->service_cap) {
            self->service_cap = self->service_cap ? self->service_cap * 2 : 16;
            assert (self->service_cap <= S_MAX_SERVICES);
            self->services = (s_service_t *) realloc (self->services, self->service_cap * sizeof (s_service_t));
            self->service_free = (uint32_t *) realloc (self->service_free, self->service_cap * sizeof (uint32_t));
            assert (self->services && self->service_free);
        }
        index = (uint32_t) self->service_count++;
    }
    self->services [index].name = strdup (name);
    self->services [index].active = 0;
    self->services [index].refs = 0;
    zhashx_insert (self->service_index, name, (void *) (uintptr_t) (index + 1));
    self->stats.services++;
    if (self->journaling)
        gt_leases_journal_push (self, J_SERVICE_NEW, NULL)->u.service.index = index;
    return index;
}

void
gt_leases_service_unref (gt_leases_t *self, uint32_t index)
{
    gt_leases_service_touch (self, index);
    assert (self->services [index].refs > 0);
    if (--self->services [index].refs > 0)
        return;
    zhashx_delete (self->service_index, self->services [index].name);
    self->stats.services--;
    if (self->journaling)
        gt_leases_journal_push (self, J_SERVICE_GONE, NULL)->u.service.index = index;
    else
        gt_leases_service_free_slot (self, index);
}

//  --------------------------------------------------------------------------
//  Objects

s_object_t *
gt_leases_object_find (gt_leases_t *self, const char *object_id)
{
    return (s_object_t *) gt_table_lookup (self->objects, gt_leases_object_hash_of (self, object_id),
                                           s_object_match, object_id);
}

s_object_t *
gt_leases_object_acquire (gt_leases_t *self, const char *object_id)
{
    s_object_t *object = gt_leases_object_find (self, object_id);
    if (object)
        return object;
    size_t size = strlen (object_id);
    object = (s_object_t *) malloc (sizeof (s_object_t) + size + 1);
    assert (object);
    object->refs = 0;
    object->active = 0;
    object->fence = 0;
    object->ext = NULL;
    memcpy (object->id, object_id, size + 1);
    gt_table_insert (self->objects, gt_leases_object_hash_of (self, object_id), object);
    if (self->journaling)
        gt_leases_journal_push (self, J_OBJECT_NEW, object);
    return object;
}

s_object_ext_t *
gt_leases_object_ext (s_object_t *object)
{
    if (!object->ext) {
        object->ext = (s_object_ext_t *) zmalloc (sizeof (s_object_ext_t));
        assert (object->ext);
    }
    return object->ext;
}

s_pending_t *
gt_leases_object_pending (const s_object_t *object)
{
    return object->ext ? object->ext->pending : NULL;
}

//  Forget an object record once nothing refers to it.
void
gt_leases_object_maybe_forget (gt_leases_t *self, s_object_t *object)
{
    if (object->refs > 0)
        return;
    assert (object->active == 0 && !gt_leases_object_pending (object));
    //  Cleanups of a life that ended without a reclaim (restored from a
    //  store after the reclaim) belong to no one now
    gt_leases_object_drop_cleanups (self, object);
    gt_table_remove (self->objects, gt_leases_object_hash_of (self, object->id), object);
    //  A later lease on this id starts above every fence it had
    if (object->fence >= self->fence_floor)
        self->fence_floor = object->fence + 1;
    if (self->hooks.object_delete)
        self->hooks.object_delete (self->hooks.ctx, object->id, object->fence);
    if (self->journaling)
        gt_leases_journal_push (self, J_OBJECT_GONE, object);
    else
        gt_leases_object_free (object);
}

void
gt_leases_object_unref (gt_leases_t *self, s_object_t *object)
{
    gt_leases_object_touch (self, object);
    assert (object->refs > 0);
    object->refs--;
    gt_leases_object_maybe_forget (self, object);
}

void
gt_leases_object_put (gt_leases_t *self, s_object_t *object)
{
    if (!self->hooks.object_put)
        return;
    s_pending_t *pending = gt_leases_object_pending (object);
    self->hooks.object_put (self->hooks.ctx, object->id, object->fence,
                            object->active > 0 || pending != NULL,
                            pending ? pending->at : 0,
                            pending ? pending->reason : GT_REASON_NONE,
                            pending ? pending->last.id : NULL);
}

//  Drop the cleanups of an object's life (they were handed over, or the
//  object was retained).
void
gt_leases_object_drop_cleanups (gt_leases_t *self, s_object_t *object)
{
    if (!object->ext || !object->ext->cleanups)
        return;
    s_cleanup_node_t *list = object->ext->cleanups;
    object->ext->cleanups = NULL;
    if (self->journaling)
        gt_leases_journal_push (self, J_CLEANUPS_DROPPED, list);
    else
        gt_leases_cleanup_list_free (list);
}

//  Register a lease's cleanup with its object's life, once per URL: the
//  first lease to register a URL in a life is the one its callback names.
void
gt_leases_object_add_cleanup (gt_leases_t *self, s_object_t *object, const gt_cleanup_t *cleanup,
                              const uint8_t owner [16])
{
    for (s_cleanup_node_t *node = object->ext ? object->ext->cleanups : NULL; node; node = node->next)
        if (streq (node->cleanup.url, cleanup->url))
            return;
    s_cleanup_node_t *node = (s_cleanup_node_t *) zmalloc (sizeof (s_cleanup_node_t));
    assert (node);
    node->cleanup = *cleanup;
    node->cleanup.url = strdup (cleanup->url);
    node->cleanup.payload = cleanup->payload ? strdup (cleanup->payload) : NULL;
    memcpy (node->owner, owner, sizeof (node->owner));
    s_object_ext_t *ext = gt_leases_object_ext (object);
    node->next = ext->cleanups;
    ext->cleanups = node;
    if (self->journaling)
        gt_leases_journal_push (self, J_CLEANUP_NEW, node);
}

//  --------------------------------------------------------------------------
//  Lease linking

void
gt_leases_idempotency_key (gt_leases_t *self, uint32_t service, const char *key, char *buffer, size_t size)
{
    (void) self;
    snprintf (buffer, size, "%u:%s", service, key);
}

//  Put a lease into the id table, the order, and the key table.
void
gt_leases_lease_link (gt_leases_t *self, gt_lease_t *lease)
{
    gt_table_insert (self->ids, s_lease_hash_of (lease->id), lease);
    s_order_insert (self, lease);
    if (lease->ext && lease->ext->idempotency_key) {
        char key [S_KEY_BUFFER];
        gt_leases_idempotency_key (self, gt_leases_service_of (lease), lease->ext->idempotency_key, key, sizeof (key));
        zhashx_insert (self->keys, key, lease);
    }
}

void
gt_leases_lease_unlink (gt_leases_t *self, gt_lease_t *lease)
{
    bool removed = gt_table_remove (self->ids, s_lease_hash_of (lease->id), lease);
    assert (removed);
    s_order_remove (self, lease);
    if (lease->ext && lease->ext->idempotency_key) {
        char key [S_KEY_BUFFER];
        gt_leases_idempotency_key (self, gt_leases_service_of (lease), lease->ext->idempotency_key, key, sizeof (key));
        zhashx_delete (self->keys, key);
    }
    gt_wheel_cancel (self->lease_wheel, &lease->timer);
}

gt_lease_t *
gt_leases_lease_find (gt_leases_t *self, const uint8_t id [16])
{
    return (gt_lease_t *) gt_table_lookup (self->ids, s_lease_hash_of (id), s_lease_match, id);
}

//  --------------------------------------------------------------------------
//  Views

void
gt_leases_info (gt_leases_t *self, const gt_lease_t *lease, gt_lease_info_t *info)
{
    assert (self);
    assert (lease);
    memset (info, 0, sizeof (*info));
    gt_leases_id_format (lease->id, info->id);
    info->object_id = (char *) lease->object->id;
    info->object_type = (gt_object_type_t) lease->type;
    info->service_id = self->services [gt_leases_service_of (lease)].name;
    info->state = (gt_lease_state_t) lease->state;
    info->fence = lease->fence;
    info->ttl_ms = lease->ttl_ms;
    info->created_at = lease->created_at;
    info->renewed_at = lease->renewed_at;
    info->expires_at = gt_leases_expires_at (lease);
    info->renewals = lease->renewals;
    if (lease->ext) {
        info->metadata = lease->ext->metadata;
        info->cleanup = lease->ext->cleanup;
        info->cleanup_status = (gt_cleanup_status_t) lease->ext->cleanup_status;
        info->cleanup_attempts = lease->ext->cleanup_attempts;
        info->cleanup_error = lease->ext->cleanup_error;
    }
}

size_t
gt_leases_info_size (const gt_lease_t *lease)
{
    //  Keys, numbers and enums take well under 300 bytes; add the strings
    size_t size = 300 + strlen (lease->object->id) + GT_MAX_SERVICE_ID;
    if (lease->ext) {
        for (size_t i = 0; i < lease->ext->metadata.count; i++)
            size += strlen (lease->ext->metadata.entries [i].key)
                  + strlen (lease->ext->metadata.entries [i].value) + 10;
        if (lease->ext->cleanup) {
            size += strlen (lease->ext->cleanup->url) + 60;
            if (lease->ext->cleanup->payload)
                size += strlen (lease->ext->cleanup->payload) + 10;
        }
        if (lease->ext->cleanup_error)
            size += strlen (lease->ext->cleanup_error) + 60;
    }
    return size;
}

void
gt_leases_emit (gt_leases_t *self, gt_event_kind_t kind, const gt_lease_t *lease, uint64_t at)
{
    if (!self->hooks.event)
        return;
    gt_lease_info_t info;
    gt_leases_info (self, lease, &info);
    self->hooks.event (self->hooks.ctx, kind, &info, GT_REASON_NONE, at);
}

void
gt_leases_put (gt_leases_t *self, const gt_lease_t *lease)
{
    if (!self->hooks.lease_put)
        return;
    gt_lease_info_t info;
    gt_leases_info (self, lease, &info);
    self->hooks.lease_put (self->hooks.ctx, &info, lease->ext ? lease->ext->idempotency_key : NULL);
}

