/*  gt_leases.c — the lease engine (see gt_leases.h for the contract):
    lifecycle, requests, lease ends and reclaims, LIST, timers.
    The tables are in gt_leases_tables.c, undo and recovery in
    gt_leases_journal.c.

    Timers: lease_wheel holds each lease's node (expiry while ACTIVE, purge
    once ended); object_wheel holds pending reclaims (grace period).  */
#include <czmq.h>
#include <sys/random.h>
#include "gt_wheel.h"
#include "gt_table.h"
#include "gt_leases.h"
#include "gt_leases_internal.h"
#include "gt_callback.h"

_Static_assert (sizeof (struct gt_lease_t) == 104, "a lease must stay 104 bytes (1M leases in 200 MB)");

//  --------------------------------------------------------------------------
//  Lifecycle


//  One random SipHash key per process for the string-keyed zhashx tables
//  (zhashx hashers take no context).  Without entropy the key stays zero:
//  hashing still works, only unkeyed.
static uint8_t s_string_hash_key [16];
static pthread_once_t s_string_hash_once = PTHREAD_ONCE_INIT;

static void
s_string_hash_init (void)
{
    if (getrandom (s_string_hash_key, sizeof (s_string_hash_key), 0) != (ssize_t) sizeof (s_string_hash_key))
        memset (s_string_hash_key, 0, sizeof (s_string_hash_key));
}

static size_t
s_string_hash (const void *key)
{
    pthread_once (&s_string_hash_once, s_string_hash_init);
    const char *text = (const char *) key;
    return (size_t) gt_siphash (s_string_hash_key, text, strlen (text));
}

gt_leases_t *
gt_leases_new (const gt_config_t *config, const gt_leases_hooks_t *hooks,
               uint64_t mono_ms, uint64_t wall_ms)
{
    assert (config);
    gt_leases_t *self = (gt_leases_t *) zmalloc (sizeof (gt_leases_t));
    assert (self);
    self->default_ttl = config->default_lease_ms;
    self->min_ttl = config->min_lease_ms;
    self->max_ttl = config->max_lease_ms;
    self->max_per_service = config->max_leases_per_service;
    self->grace_ms = config->grace_ms;
    self->retention_ms = config->lease_retention_ms;
    self->default_retries = config->cleanup_max_retries;
    self->default_retry_delay = config->cleanup_retry_delay_ms;
    if (config->callback_allow)
        self->allow = strdup (config->callback_allow);
    if (hooks)
        self->hooks = *hooks;
    self->mono = mono_ms;
    self->wall = wall_ms;
    self->lease_wheel = gt_wheel_new (mono_ms);
    self->object_wheel = gt_wheel_new (mono_ms);
    self->ids = gt_table_new (gt_leases_lease_hash, self);
    self->objects = gt_table_new (gt_leases_object_hash, self);
    self->service_index = zhashx_new ();
    self->keys = zhashx_new ();
    //  Both are keyed by strings a client chooses: hash them with keyed
    //  SipHash, as the lease and object tables do, not CZMQ's fixed hash
    //  (which lets a client force collisions)
    zhashx_set_key_hasher (self->service_index, s_string_hash);
    zhashx_set_key_hasher (self->keys, s_string_hash);
    self->next_serial = 1;
    self->fence_floor = 1;
    gt_leases_random_fill (self);
    gt_leases_random_bytes (self, self->hash_key, sizeof (self->hash_key));
    return self;
}

static void
s_free_object_entry (void *entry, void *arg)
{
    (void) arg;
    s_object_t *object = (s_object_t *) entry;
    if (object->ext) {
        gt_leases_cleanup_list_free (object->ext->cleanups);
        object->ext->cleanups = NULL;
        if (object->ext->pending) {
            gt_leases_pending_free (object->ext->pending);
            object->ext->pending = NULL;
        }
    }
    gt_leases_object_free (object);
}

void
gt_leases_destroy (gt_leases_t **self_p)
{
    assert (self_p);
    gt_leases_t *self = *self_p;
    if (!self)
        return;
    gt_leases_journal (self, false);        //  frees what was deferred
    for (size_t i = 0; i < self->order_count; i++)
        if (!S_IS_HOLE (self->order [i]))
            gt_leases_lease_free (self, (gt_lease_t *) self->order [i]);
    free (self->order);
    while (self->slabs) {
        s_slab_t *slab = self->slabs;
        self->slabs = slab->next;
        free (slab);
    }
    gt_table_foreach (self->objects, s_free_object_entry, NULL);
    gt_table_destroy (&self->objects);
    gt_table_destroy (&self->ids);
    for (size_t i = 0; i < self->service_count; i++)
        free (self->services [i].name);
    free (self->services);
    free (self->service_free);
    zhashx_destroy (&self->service_index);
    zhashx_destroy (&self->keys);
    free (self->allow);
    gt_wheel_destroy (&self->lease_wheel);
    gt_wheel_destroy (&self->object_wheel);
    free (self->journal);
    free (self);
    *self_p = NULL;
}

void
gt_leases_clock (gt_leases_t *self, uint64_t mono_ms, uint64_t wall_ms)
{
    assert (self);
    //  The monotonic clock never goes back; guard against a careless caller
    if (mono_ms > self->mono)
        self->mono = mono_ms;
    self->wall = wall_ms;
}

//  --------------------------------------------------------------------------
//  Requests

gt_code_t
gt_leases_check_ttl (gt_leases_t *self, uint64_t ttl_ms, char *err, size_t err_size)
{
    assert (self);
    if (ttl_ms < self->min_ttl || ttl_ms > self->max_ttl) {
        snprintf (err, err_size, "ttl_ms %" PRIu64 " is outside [%" PRIu64 ", %" PRIu64 "]",
                  ttl_ms, self->min_ttl, self->max_ttl);
        return GT_ERR_INVALID_ARGUMENT;
    }
    return GT_OK;
}

static gt_code_t
s_check_cleanup (gt_leases_t *self, const gt_cleanup_t *cleanup, char *err, size_t err_size)
{
    const char *url = cleanup->url;
    if (!gt_callback_url_allowed (NULL, url)) {
        snprintf (err, err_size, "cleanup.url must be an http:// or https:// URL with a host, "
                  "at most %d bytes, without blanks", GT_MAX_URL);
        return GT_ERR_INVALID_ARGUMENT;
    }
    if (self->allow && !gt_callback_url_allowed (self->allow, url)) {
        snprintf (err, err_size, "cleanup.url '%.200s%s' is not allowed: it must start with one of "
                  "the broker's GC_CALLBACK_ALLOW prefixes (%.300s)", url, strlen (url) > 200 ? "..." : "",
                  self->allow);
        return GT_ERR_INVALID_ARGUMENT;
    }
    if ((cleanup->has_max_retries && cleanup->max_retries > GT_MAX_RETRIES_LIMIT)
    || (cleanup->has_retry_delay && cleanup->retry_delay_ms > GT_MAX_RETRY_DELAY_MS)) {
        snprintf (err, err_size, "cleanup retries or delay out of range");
        return GT_ERR_INVALID_ARGUMENT;
    }
    return GT_OK;
}

s_lease_ext_t *
gt_leases_ext_new (gt_leases_t *self, const gt_meta_t *metadata, const gt_cleanup_t *cleanup,
           const char *idempotency_key)
{
    bool has_meta = metadata && metadata->count > 0;
    if (!has_meta && !cleanup && !idempotency_key)
        return NULL;
    s_lease_ext_t *ext = (s_lease_ext_t *) zmalloc (sizeof (s_lease_ext_t));
    assert (ext);
    if (has_meta) {
        ext->metadata.entries = (gt_meta_entry_t *) calloc (metadata->count, sizeof (gt_meta_entry_t));
        assert (ext->metadata.entries);
        for (size_t i = 0; i < metadata->count; i++) {
            ext->metadata.entries [i].key = strdup (metadata->entries [i].key);
            ext->metadata.entries [i].value = strdup (metadata->entries [i].value);
        }
        ext->metadata.count = metadata->count;
    }
    if (cleanup) {
        ext->cleanup = (gt_cleanup_t *) zmalloc (sizeof (gt_cleanup_t));
        assert (ext->cleanup);
        ext->cleanup->url = strdup (cleanup->url);
        ext->cleanup->payload = cleanup->payload ? strdup (cleanup->payload) : NULL;
        //  In a LEASE map retries and delay are always present
        ext->cleanup->has_max_retries = true;
        ext->cleanup->max_retries = cleanup->has_max_retries
                                  ? cleanup->max_retries : (uint32_t) self->default_retries;
        ext->cleanup->has_retry_delay = true;
        ext->cleanup->retry_delay_ms = cleanup->has_retry_delay
                                     ? cleanup->retry_delay_ms : self->default_retry_delay;
    }
    if (idempotency_key)
        ext->idempotency_key = strdup (idempotency_key);
    return ext;
}

//  Take one reference on an object for a new ACTIVE lease: opens a new
//  life (new fence) if the object was not live, and cancels a pending
//  reclaim (the life goes on, same fence).
static void
s_object_join (gt_leases_t *self, s_object_t *object)
{
    gt_leases_object_touch (self, object);
    s_pending_t *pending = gt_leases_object_pending (object);
    bool opens = object->active == 0 && !pending;
    if (pending) {
        //  A new lease during the grace period cancels the reclaim
        uint64_t deadline = pending->timer.deadline;
        gt_wheel_cancel (self->object_wheel, &pending->timer);
        object->ext->pending = NULL;
        object->refs--;
        self->stats.pending_reclaims--;
        if (self->journaling) {
            s_journal_t *entry = gt_leases_journal_push (self, J_PENDING_GONE, pending);
            entry->deadline = deadline;
        }
        else
            gt_leases_pending_free (pending);
    }
    if (opens) {
        //  Stale cleanups of an earlier life (restored after its reclaim)
        gt_leases_object_drop_cleanups (self, object);
        object->fence = object->fence ? object->fence + 1 : self->fence_floor;
        if (object->fence > self->stats.last_fence)
            self->stats.last_fence = object->fence;
    }
    if (object->active++ == 0)
        self->stats.active_objects++;
    object->refs++;
}

gt_code_t
gt_leases_create (gt_leases_t *self, const gt_msg_t *request,
                  gt_lease_t **lease_p, char *err, size_t err_size)
{
    assert (self);
    assert (request);
    *lease_p = NULL;
    const char *object_id = request->object_id;
    const char *service_id = request->service_id;
    size_t object_len = object_id ? strlen (object_id) : 0;
    size_t service_len = service_id ? strlen (service_id) : 0;
    if (object_len == 0 || object_len > GT_MAX_OBJECT_ID) {
        snprintf (err, err_size, "object_id must be 1 .. %d bytes", GT_MAX_OBJECT_ID);
        return GT_ERR_INVALID_ARGUMENT;
    }
    if (service_len == 0 || service_len > GT_MAX_SERVICE_ID) {
        snprintf (err, err_size, "service_id must be 1 .. %d bytes", GT_MAX_SERVICE_ID);
        return GT_ERR_INVALID_ARGUMENT;
    }
    gt_object_type_t type = request->has_object_type ? request->object_type : GT_TYPE_UNKNOWN;
    if ((int) type < 0 || type >= GT_TYPE_COUNT_) {
        snprintf (err, err_size, "object_type is unknown");
        return GT_ERR_INVALID_ARGUMENT;
    }
    uint64_t ttl = request->has_ttl ? request->ttl_ms : self->default_ttl;
    gt_code_t code = gt_leases_check_ttl (self, ttl, err, err_size);
    if (code != GT_OK)
        return code;
    const char *key = request->idempotency_key;
    if (key && (strlen (key) == 0 || strlen (key) > GT_MAX_IDEMPOTENCY_KEY)) {
        snprintf (err, err_size, "idempotency_key must be 1 .. %d bytes", GT_MAX_IDEMPOTENCY_KEY);
        return GT_ERR_INVALID_ARGUMENT;
    }
    if (request->cleanup) {
        code = s_check_cleanup (self, request->cleanup, err, err_size);
        if (code != GT_OK)
            return code;
    }
    uint32_t service;
    bool service_known = gt_leases_service_find (self, service_id, &service);
    if (key && service_known) {
        char composed [S_KEY_BUFFER];
        gt_leases_idempotency_key (self, service, key, composed, sizeof (composed));
        gt_lease_t *earlier = (gt_lease_t *) zhashx_lookup (self->keys, composed);
        if (earlier) {
            if (!streq (earlier->object->id, object_id)) {
                snprintf (err, err_size, "idempotency_key was used for object '%s'", earlier->object->id);
                return GT_ERR_CONFLICT;
            }
            *lease_p = earlier;
            return GT_OK;
        }
    }
    if (service_known && self->services [service].active >= self->max_per_service) {
        snprintf (err, err_size, "service '%s' holds %" PRIu64 " active leases (GC_MAX_LEASES_PER_SERVICE)",
                  service_id, self->max_per_service);
        return GT_ERR_QUOTA_EXCEEDED;
    }

    if (!service_known && self->service_free_count == 0 && self->service_count >= S_MAX_SERVICES) {
        snprintf (err, err_size, "too many distinct services (%u)", S_MAX_SERVICES);
        return GT_ERR_QUOTA_EXCEEDED;
    }

    //  Valid: apply
    service = gt_leases_service_acquire (self, service_id);
    gt_leases_service_touch (self, service);
    self->services [service].active++;
    self->services [service].refs++;

    uint8_t id [16];
    do
        gt_leases_random_bytes (self, id, sizeof (id));
    while (gt_leases_lease_find (self, id));
    s_object_t *object = gt_leases_object_acquire (self, object_id);
    bool was_live = object->active > 0 || gt_leases_object_pending (object);
    s_object_join (self, object);
    if (request->cleanup)
        gt_leases_object_add_cleanup (self, object, request->cleanup, id);

    gt_lease_t *lease = gt_leases_lease_alloc (self);
    gt_timer_init (&lease->timer);
    memcpy (lease->id, id, sizeof (id));
    lease->object = object;
    lease->ext = gt_leases_ext_new (self, request->has_metadata ? &request->metadata : NULL,
                           request->cleanup, key);
    lease->created_at = self->wall;
    lease->renewed_at = self->wall;
    lease->state = GT_STATE_ACTIVE;
    lease->type = type;
    gt_leases_set_service (lease, service);
    lease->serial = self->next_serial++;
    lease->fence = object->fence;
    lease->ttl_ms = (uint32_t) ttl;
    lease->renewals = 0;
    gt_leases_lease_link (self, lease);
    gt_wheel_arm (self->lease_wheel, &lease->timer, self->mono + ttl);
    if (self->journaling)
        gt_leases_journal_push (self, J_LEASE_NEW, lease);
    self->stats.active_leases++;

    if (!was_live)
        gt_leases_object_put (self, object);
    gt_leases_put (self, lease);
    gt_leases_emit (self, GT_EVENT_LEASE_CREATED, lease, self->wall);
    *lease_p = lease;
    return GT_OK;
}

//  Find a lease the caller may change: NOT_FOUND, PERMISSION_DENIED, LEASE_ENDED.
static gt_code_t
s_lease_for_change (gt_leases_t *self, const char *lease_id, const char *service_id,
                    gt_lease_t **lease_p, char *err, size_t err_size)
{
    gt_lease_t *lease;
    gt_code_t code = gt_leases_get (self, lease_id, &lease, err, err_size);
    if (code != GT_OK)
        return code;
    if (!service_id || !streq (self->services [gt_leases_service_of (lease)].name, service_id)) {
        snprintf (err, err_size, "lease %s belongs to another service", lease_id);
        return GT_ERR_PERMISSION_DENIED;
    }
    if (lease->state != GT_STATE_ACTIVE) {
        snprintf (err, err_size, "lease %s has %s", lease_id,
                  lease->state == GT_STATE_RELEASED ? "been released" : "expired");
        return GT_ERR_LEASE_ENDED;
    }
    *lease_p = lease;
    return GT_OK;
}

gt_code_t
gt_leases_renew (gt_leases_t *self, const char *lease_id, const char *service_id,
                 bool has_ttl, uint64_t ttl_ms, gt_lease_t **lease_p, char *err, size_t err_size)
{
    assert (self);
    *lease_p = NULL;
    gt_lease_t *lease;
    gt_code_t code = s_lease_for_change (self, lease_id, service_id, &lease, err, err_size);
    if (code != GT_OK)
        return code;
    uint64_t ttl = has_ttl ? ttl_ms : lease->ttl_ms;
    code = gt_leases_check_ttl (self, ttl, err, err_size);
    if (code != GT_OK)
        return code;
    gt_leases_lease_touch (self, lease, false);
    lease->renewed_at = self->wall;
    lease->ttl_ms = (uint32_t) ttl;
    if (lease->renewals < UINT32_MAX)
        lease->renewals++;
    gt_wheel_arm (self->lease_wheel, &lease->timer, self->mono + ttl);
    gt_leases_put (self, lease);
    gt_leases_emit (self, GT_EVENT_LEASE_RENEWED, lease, self->wall);
    *lease_p = lease;
    return GT_OK;
}

//  Reclaim an object now: event, cleanups to delivery, life over.
//  not_before: the event's time is never earlier (the end of the last
//  lease, plus the grace period when there was one).
static void
s_reclaim (gt_leases_t *self, s_object_t *object, const gt_lease_info_t *last, gt_reason_t reason,
           uint64_t not_before)
{
    uint64_t at = self->wall > not_before ? self->wall : not_before;
    if (self->hooks.event)
        self->hooks.event (self->hooks.ctx, GT_EVENT_OBJECT_RECLAIMED, last, reason, at);
    //  The life's cleanups, newest first in the list: collect them so that
    //  callbacks go out in registration order
    s_cleanup_node_t *stack [64];
    s_cleanup_node_t **nodes = stack;
    size_t count = 0, cap = 64;
    for (s_cleanup_node_t *node = object->ext ? object->ext->cleanups : NULL; node; node = node->next) {
        if (count == cap) {
            cap *= 2;
            s_cleanup_node_t **bigger = (s_cleanup_node_t **) malloc (cap * sizeof (*bigger));
            assert (bigger);
            memcpy (bigger, nodes, count * sizeof (*bigger));
            if (nodes != stack)
                free (nodes);
            nodes = bigger;
        }
        nodes [count++] = node;
    }
    //  No one to deliver them (engine tests): no callback state either
    for (size_t index = self->hooks.callback ? count : 0; index-- > 0; ) {
        s_cleanup_node_t *node = nodes [index];
        gt_lease_t *owner = gt_leases_lease_find (self, node->owner);
        gt_lease_info_t info;
        if (owner && owner->ext && owner->ext->cleanup) {
            gt_leases_cleanup_set (self, owner, GT_CLEANUP_PENDING, 0, NULL, true);
            gt_leases_info (self, owner, &info);
        }
        else {
            //  Cannot happen while the URL holds its lease; deliver anyway
            info = *last;
            info.cleanup = &node->cleanup;
            info.cleanup_status = GT_CLEANUP_NONE;
            info.cleanup_attempts = 0;
            info.cleanup_error = NULL;
        }
        self->hooks.callback (self->hooks.ctx, &info, reason);
    }
    if (self->hooks.reclaim) {
        const gt_cleanup_t *stack_list [64];
        const gt_cleanup_t **list = count <= 64 ? stack_list
                                  : (const gt_cleanup_t **) malloc (count * sizeof (*list));
        assert (list);
        for (size_t index = 0; index < count; index++)
            list [index] = &nodes [index]->cleanup;
        self->hooks.reclaim (self->hooks.ctx, object->id, object->fence, list, count);
        if (list != stack_list)
            free (list);
    }
    if (nodes != stack)
        free (nodes);
    gt_leases_object_drop_cleanups (self, object);
    gt_leases_object_put (self, object);
}

//  End an ACTIVE lease (released or expired) and what follows from it.
//  fired: the lease's timer was just popped (expiry).
static void
s_lease_end (gt_leases_t *self, gt_lease_t *lease, gt_lease_state_t state, bool retain, bool fired)
{
    uint64_t deadline = gt_leases_expires_at (lease);
    //  Never report an expiry before the deadline (clocks read apart)
    uint64_t ended_at = state == GT_STATE_EXPIRED && self->wall < deadline ? deadline : self->wall;
    gt_leases_lease_touch (self, lease, fired);
    lease->state = state;
    gt_leases_set_ended_at (lease, ended_at);
    gt_wheel_arm (self->lease_wheel, &lease->timer, self->mono + self->retention_ms);
    self->stats.active_leases--;
    self->stats.retained_leases++;

    uint32_t service = gt_leases_service_of (lease);
    gt_leases_service_touch (self, service);
    self->services [service].active--;

    gt_leases_put (self, lease);
    gt_leases_emit (self, state == GT_STATE_RELEASED ? GT_EVENT_LEASE_RELEASED : GT_EVENT_LEASE_EXPIRED,
            lease, ended_at);

    s_object_t *object = lease->object;
    gt_leases_object_touch (self, object);
    assert (object->active > 0);
    if (--object->active > 0)
        return;                     //  others still hold it
    self->stats.active_objects--;
    if (retain) {
        //  Kept on purpose: no cleanup, no reclaim event; the life ends
        gt_leases_object_drop_cleanups (self, object);
        gt_leases_object_put (self, object);
        return;
    }
    gt_lease_info_t last;
    gt_leases_info (self, lease, &last);
    gt_reason_t reason = state == GT_STATE_RELEASED ? GT_REASON_RELEASED : GT_REASON_EXPIRED;
    if (self->grace_ms == 0) {
        s_reclaim (self, object, &last, reason, last.expires_at);
        return;
    }
    s_pending_t *pending = (s_pending_t *) zmalloc (sizeof (s_pending_t));
    assert (pending);
    gt_timer_init (&pending->timer);
    pending->object = object;
    pending->reason = reason;
    pending->at = ended_at + self->grace_ms;
    gt_lease_info_copy (&pending->last, &last);
    gt_leases_object_ext (object)->pending = pending;
    object->refs++;
    self->stats.pending_reclaims++;
    gt_wheel_arm (self->object_wheel, &pending->timer, self->mono + self->grace_ms);
    if (self->journaling)
        gt_leases_journal_push (self, J_PENDING_NEW, pending);
    gt_leases_object_put (self, object);
}

gt_code_t
gt_leases_release (gt_leases_t *self, const char *lease_id, const char *service_id,
                   bool retain, gt_lease_t **lease_p, char *err, size_t err_size)
{
    assert (self);
    *lease_p = NULL;
    gt_lease_t *lease;
    gt_code_t code = s_lease_for_change (self, lease_id, service_id, &lease, err, err_size);
    if (code != GT_OK)
        return code;
    s_lease_end (self, lease, GT_STATE_RELEASED, retain, false);
    *lease_p = lease;
    return GT_OK;
}

gt_code_t
gt_leases_get (gt_leases_t *self, const char *lease_id, gt_lease_t **lease_p,
               char *err, size_t err_size)
{
    assert (self);
    *lease_p = NULL;
    uint8_t id [16];
    if (!gt_leases_id_parse (lease_id, id)) {
        snprintf (err, err_size, "lease_id must be 32 lowercase hex characters");
        return GT_ERR_INVALID_ARGUMENT;
    }
    gt_lease_t *lease = gt_leases_lease_find (self, id);
    if (!lease) {
        snprintf (err, err_size, "no lease %s", lease_id);
        return GT_ERR_NOT_FOUND;
    }
    *lease_p = lease;
    return GT_OK;
}

//  --------------------------------------------------------------------------
//  LIST

//  Leases looked at per LIST call at most, so that a selective filter over
//  a million leases cannot stall the loop; the cursor resumes the scan.
#define S_LIST_SCAN_MAX     100000

gt_code_t
gt_leases_list (gt_leases_t *self, const gt_leases_filter_t *filter,
                const char *cursor, size_t limit, size_t byte_budget,
                gt_lease_t **leases, size_t *count_p, char *next_cursor,
                char *err, size_t err_size)
{
    assert (self);
    assert (leases && count_p && next_cursor);
    *count_p = 0;
    *next_cursor = 0;
    uint64_t after = 0;
    if (cursor) {
        //  Cursor: "c" then the decimal serial of the last lease looked at
        const char *digits = cursor + 1;
        bool valid = cursor [0] == 'c' && *digits && strlen (digits) <= 16;
        for (const char *p = digits; valid && *p; p++)
            valid = *p >= '0' && *p <= '9';
        if (!valid) {
            snprintf (err, err_size, "cursor is not one this broker issued");
            return GT_ERR_INVALID_ARGUMENT;
        }
        after = strtoull (digits, NULL, 10);
        if (after >= self->next_serial) {
            snprintf (err, err_size, "cursor is not one this broker issued");
            return GT_ERR_INVALID_ARGUMENT;
        }
    }
    //  Filters on names resolve once; an unknown name matches nothing
    uint32_t service = 0;
    const s_object_t *object = NULL;
    bool empty = false;
    if (filter && filter->service_id && !gt_leases_service_find (self, filter->service_id, &service))
        empty = true;
    if (filter && filter->object_id && !(object = gt_leases_object_find (self, filter->object_id)))
        empty = true;
    if (empty)
        return GT_OK;

    size_t index = gt_leases_order_lower_bound (self, after + 1);
    size_t scanned = 0, bytes = 0, count = 0;
    uint64_t last_serial = after;
    for (; index < self->order_count; index++) {
        uintptr_t entry = self->order [index];
        if (S_IS_HOLE (entry))
            continue;
        if (count == limit || scanned == S_LIST_SCAN_MAX)
            break;
        gt_lease_t *lease = (gt_lease_t *) entry;
        scanned++;
        bool match = !filter
                  || ((!filter->service_id || gt_leases_service_of (lease) == service)
                   && (!filter->object_id || lease->object == object)
                   && (!filter->has_object_type || lease->type == filter->object_type)
                   && (!filter->has_state || lease->state == filter->state)
                   && (!filter->has_cleanup_status
                       || (lease->ext ? lease->ext->cleanup_status : GT_CLEANUP_NONE)
                          == filter->cleanup_status));
        if (match) {
            size_t size = gt_leases_info_size (lease);
            if (count > 0 && bytes + size > byte_budget)
                break;
            bytes += size;
            leases [count++] = lease;
        }
        last_serial = lease->serial;
    }
    //  More entries left (holes aside): hand out a cursor
    while (index < self->order_count && S_IS_HOLE (self->order [index]))
        index++;
    if (index < self->order_count)
        snprintf (next_cursor, 32, "c%" PRIu64, last_serial);
    *count_p = count;
    return GT_OK;
}

//  --------------------------------------------------------------------------
//  Timers

static void
s_lease_purge (gt_leases_t *self, gt_lease_t *lease)
{
    uint64_t deadline = lease->timer.deadline;
    gt_leases_lease_unlink (self, lease);
    self->stats.retained_leases--;
    if (self->hooks.lease_delete) {
        char id [GT_LEASE_ID_LEN + 1];
        gt_leases_id_format (lease->id, id);
        self->hooks.lease_delete (self->hooks.ctx, id);
    }
    s_object_t *object = lease->object;
    gt_leases_service_unref (self, gt_leases_service_of (lease));
    gt_leases_object_unref (self, object);
    if (self->journaling) {
        s_journal_t *entry = gt_leases_journal_push (self, J_LEASE_GONE, lease);
        entry->deadline = deadline;
    }
    else
        gt_leases_lease_free (self, lease);
}

//  Retention exceptions (GTLP.md §10.5), checked when an ended lease's
//  purge timer fires.  A lease whose callback is PENDING or DEAD stays,
//  without a timer (gt_leases_cleanup_set arms one once it is DELIVERED).
//  A lease whose URL is registered for its object's open life stays until
//  that life ends (its callback will name it): looked at again later.
//  Returns true if the lease stays.
static bool
s_lease_held (gt_leases_t *self, gt_lease_t *lease)
{
    s_lease_ext_t *ext = lease->ext;
    if (!ext || !ext->cleanup || !self->hooks.callback)
        return false;               //  no callbacks, no holds (engine tests)
    if (ext->cleanup_status == GT_CLEANUP_PENDING || ext->cleanup_status == GT_CLEANUP_DEAD) {
        gt_leases_lease_touch (self, lease, true);      //  undo re-arms the timer
        return true;
    }
    s_object_t *object = lease->object;
    if (object->fence != lease->fence || !object->ext
    || !(object->active > 0 || gt_leases_object_pending (object)))
        return false;
    for (s_cleanup_node_t *node = object->ext->cleanups; node; node = node->next)
        if (memcmp (node->owner, lease->id, sizeof (lease->id)) == 0) {
            gt_leases_lease_touch (self, lease, true);
            uint64_t again = self->retention_ms > 1000 ? self->retention_ms : 1000;
            gt_wheel_arm (self->lease_wheel, &lease->timer, self->mono + again);
            return true;
        }
    return false;
}

static void
s_pending_fire (gt_leases_t *self, s_pending_t *pending)
{
    s_object_t *object = pending->object;
    gt_leases_object_touch (self, object);
    object->ext->pending = NULL;
    self->stats.pending_reclaims--;
    if (self->journaling) {
        s_journal_t *entry = gt_leases_journal_push (self, J_PENDING_GONE, pending);
        entry->deadline = pending->timer.deadline;
    }
    s_reclaim (self, object, &pending->last, pending->reason, pending->at);
    object->refs--;
    if (!self->journaling)
        gt_leases_pending_free (pending);
    gt_leases_object_maybe_forget (self, object);
}

size_t
gt_leases_advance (gt_leases_t *self, size_t max)
{
    assert (self);
    gt_wheel_advance (self->lease_wheel, self->mono);
    gt_wheel_advance (self->object_wheel, self->mono);
    size_t done = 0;
    while (done < max) {
        gt_timer_t *timer = gt_wheel_pop (self->lease_wheel);
        if (!timer)
            break;
        gt_lease_t *lease = (gt_lease_t *) timer;        //  the node is the first field
        if (lease->state == GT_STATE_ACTIVE) {
            uint64_t late = self->mono > timer->deadline ? self->mono - timer->deadline : 0;
            if (late > self->stats.expiry_late_max_ms)
                self->stats.expiry_late_max_ms = late;
            int bucket = late == 0 ? 0 : late == 1 ? 1 : late <= 2 ? 2 : late <= 5 ? 3 : late <= 10 ? 4 : 5;
            self->stats.expiry_late [bucket]++;
            s_lease_end (self, lease, GT_STATE_EXPIRED, false, true);
        }
        else
        if (!s_lease_held (self, lease))
            s_lease_purge (self, lease);
        done++;
    }
    while (done < max) {
        gt_timer_t *timer = gt_wheel_pop (self->object_wheel);
        if (!timer)
            break;
        s_pending_fire (self, (s_pending_t *) timer);
        done++;
    }
    return done;
}

int64_t
gt_leases_timeout (gt_leases_t *self)
{
    assert (self);
    int64_t leases = gt_wheel_timeout (self->lease_wheel, self->mono);
    int64_t objects = gt_wheel_timeout (self->object_wheel, self->mono);
    if (leases < 0)
        return objects;
    if (objects < 0)
        return leases;
    return leases < objects ? leases : objects;
}

void
gt_leases_stats (gt_leases_t *self, gt_leases_stats_t *stats)
{
    assert (self);
    *stats = self->stats;
}

