/*  gt_leases.c — the lease engine's operations (see gt_leases.h for the
    contract): requests, lease ends and reclaims, LIST, timers, callback
    state, journal control and recovery.

    What a request does is decided here; the records it changes and their
    undo are gt_lease_tables' (every change of a record goes through its
    _touch or one of its add/remove calls first), the figures for metrics
    gt_lease_census'.  Neither calls back up.

    Timers: lease_wheel holds each lease's node (expiry while ACTIVE, purge
    once ended); object_wheel holds pending reclaims (grace period).  The
    engine owns both and arms them; the tables borrow them to cancel and
    restore nodes.  */
#include <czmq.h>
#include "gt_wheel.h"
#include "gt_lease_tables.h"
#include "gt_lease_census.h"
#include "gt_leases.h"

struct gt_leases_t {
    uint64_t default_ttl;           //  GC_DEFAULT_LEASE_DURATION, ms
    uint64_t min_ttl;               //  GC_MIN_LEASE_DURATION, ms
    uint64_t max_ttl;               //  GC_MAX_LEASE_DURATION, ms
    uint64_t max_per_service;       //  GC_MAX_LEASES_PER_SERVICE
    uint64_t max_leases;            //  GC_MAX_LEASES (at most GT_LEASE_MAX)
    uint64_t grace_ms;              //  GC_CLEANUP_GRACE_PERIOD, ms
    uint64_t retention_ms;          //  GC_LEASE_RETENTION, ms
    uint64_t default_retries;       //  GC_CLEANUP_MAX_RETRIES
    uint64_t default_retry_delay;   //  GC_CLEANUP_RETRY_DELAY, ms
    gt_leases_hooks_t hooks;        //  where outputs go
    uint64_t mono;                  //  current monotonic ms
    uint64_t wall;                  //  current wall ms
    gt_wheel_t *lease_wheel;        //  lease expiry and purge timers
    gt_wheel_t *object_wheel;       //  pending reclaim timers
    gt_lease_tables_t *tables;      //  leases, objects, services and their journal
    gt_leases_stats_t stats;        //  gauges and counters (services: the tables count them)
    gt_leases_stats_t forgotten;    //  what gt_leases_forget_shards took off the gauges so far
    size_t restore_from;            //  creation order's end when the current load began
};

//  --------------------------------------------------------------------------
//  Lifecycle

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
    self->max_leases = config->max_leases < GT_LEASE_MAX ? config->max_leases : GT_LEASE_MAX;
    self->grace_ms = config->grace_ms;
    self->retention_ms = config->lease_retention_ms;
    self->default_retries = config->cleanup_max_retries;
    self->default_retry_delay = config->cleanup_retry_delay_ms;
    if (hooks)
        self->hooks = *hooks;
    self->mono = mono_ms;
    self->wall = wall_ms;
    self->lease_wheel = gt_wheel_new (mono_ms);
    self->object_wheel = gt_wheel_new (mono_ms);
    self->tables = gt_lease_tables_new (self->lease_wheel, self->object_wheel);
    return self;
}

void
gt_leases_destroy (gt_leases_t **self_p)
{
    assert (self_p);
    gt_leases_t *self = *self_p;
    if (!self)
        return;
    //  The tables free the records whose nodes are on the wheels: first
    gt_lease_tables_destroy (&self->tables);
    gt_wheel_destroy (&self->lease_wheel);
    gt_wheel_destroy (&self->object_wheel);
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
//  Outputs

//  What a lease has only when the client gave it
static const char *
s_idempotency_key (gt_leases_t *self, const gt_lease_t *lease)
{
    const gt_lease_ext_t *ext = gt_lease_tables_ext (self->tables, lease);
    return ext ? ext->idempotency_key : NULL;
}

static gt_cleanup_status_t
s_cleanup_status (gt_leases_t *self, const gt_lease_t *lease)
{
    const gt_lease_ext_t *ext = gt_lease_tables_ext (self->tables, lease);
    return ext ? (gt_cleanup_status_t) ext->cleanup_status : GT_CLEANUP_NONE;
}

static void
s_put (gt_leases_t *self, const gt_lease_t *lease, bool created)
{
    if (!self->hooks.lease_put)
        return;
    gt_lease_info_t info;
    gt_lease_tables_info (self->tables, lease, &info);
    self->hooks.lease_put (self->hooks.ctx, &info, s_idempotency_key (self, lease), created);
}

//  A lease changed: its record for the store and its event, both from one
//  copy of its fields, left in *info for a caller that needs it next (an
//  end's reclaim)
static void
s_changed (gt_leases_t *self, const gt_lease_t *lease, bool created, gt_event_kind_t kind, uint64_t at,
           gt_lease_info_t *info)
{
    gt_lease_tables_info (self->tables, lease, info);
    if (self->hooks.lease_put)
        self->hooks.lease_put (self->hooks.ctx, info, s_idempotency_key (self, lease), created);
    if (self->hooks.event)
        self->hooks.event (self->hooks.ctx, kind, info, GT_REASON_NONE, at);
}

static void
s_object_put (gt_leases_t *self, gt_lease_object_t *object)
{
    if (!self->hooks.object_put)
        return;
    gt_lease_pending_t *pending = gt_lease_tables_object_pending (self->tables, object);
    self->hooks.object_put (self->hooks.ctx, object->id, object->fence,
                            object->active > 0 || pending != NULL,
                            pending ? pending->at : 0,
                            pending ? pending->reason : GT_REASON_NONE,
                            pending ? pending->last.id : NULL);
}

//  Forget an object record once nothing refers to it; the store forgets
//  it too (its fence stays retired: the tables' fence floor)
static void
s_object_maybe_forget (gt_leases_t *self, gt_lease_object_t *object)
{
    if (object->refs > 0)
        return;
    if (self->hooks.object_delete)
        self->hooks.object_delete (self->hooks.ctx, object->id, object->fence);
    gt_lease_tables_object_forget (self->tables, object);
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

gt_code_t
gt_leases_check_spec (gt_leases_t *self, const gt_lease_spec_t *spec, char *err, size_t err_size)
{
    assert (self);
    assert (spec);
    size_t object_len = spec->object_id ? strlen (spec->object_id) : 0;
    size_t service_len = spec->service_id ? strlen (spec->service_id) : 0;
    if (object_len == 0 || object_len > GT_MAX_OBJECT_ID) {
        snprintf (err, err_size, "object_id must be 1 .. %d bytes", GT_MAX_OBJECT_ID);
        return GT_ERR_INVALID_ARGUMENT;
    }
    if (service_len == 0 || service_len > GT_MAX_SERVICE_ID) {
        snprintf (err, err_size, "service_id must be 1 .. %d bytes", GT_MAX_SERVICE_ID);
        return GT_ERR_INVALID_ARGUMENT;
    }
    if ((int) spec->object_type < 0 || spec->object_type >= GT_TYPE_COUNT_) {
        snprintf (err, err_size, "object_type is unknown");
        return GT_ERR_INVALID_ARGUMENT;
    }
    uint64_t ttl = spec->has_ttl ? spec->ttl_ms : self->default_ttl;
    gt_code_t code = gt_leases_check_ttl (self, ttl, err, err_size);
    if (code != GT_OK)
        return code;
    const char *key = spec->idempotency_key;
    if (key && (strlen (key) == 0 || strlen (key) > GT_MAX_IDEMPOTENCY_KEY)) {
        snprintf (err, err_size, "idempotency_key must be 1 .. %d bytes", GT_MAX_IDEMPOTENCY_KEY);
        return GT_ERR_INVALID_ARGUMENT;
    }
    return GT_OK;
}

//  A lease's own copy of its cleanup has retries and delay always present
//  (as a LEASE map shows them): absent ones take the configured defaults.
static gt_cleanup_t
s_cleanup_resolved (gt_leases_t *self, const gt_cleanup_t *cleanup)
{
    gt_cleanup_t resolved = *cleanup;
    resolved.has_max_retries = true;
    resolved.max_retries = cleanup->has_max_retries ? cleanup->max_retries : (uint32_t) self->default_retries;
    resolved.has_retry_delay = true;
    resolved.retry_delay_ms = cleanup->has_retry_delay ? cleanup->retry_delay_ms : self->default_retry_delay;
    return resolved;
}

//  Take one reference on an object for a new ACTIVE lease: opens a new
//  life (new fence) if the object was not live, and cancels a pending
//  reclaim (the life goes on, same fence).
static void
s_object_join (gt_leases_t *self, gt_lease_object_t *object)
{
    gt_lease_tables_object_touch (self->tables, object);
    bool pending = gt_lease_tables_object_pending (self->tables, object) != NULL;
    bool opens = object->active == 0 && !pending;
    if (pending) {
        //  A new lease during the grace period cancels the reclaim
        gt_lease_pending_t *cancelled = gt_lease_tables_pending_detach (self->tables, object);
        object->refs--;
        self->stats.pending_reclaims--;
        gt_lease_tables_pending_release (self->tables, cancelled);
    }
    if (opens) {
        //  Stale cleanups of an earlier life (restored after its reclaim)
        gt_lease_tables_object_drop_cleanups (self->tables, object);
        object->fence = object->fence ? (uint64_t) object->fence + 1 : gt_lease_tables_fence_floor (self->tables);
        if (object->fence > self->stats.last_fence)
            self->stats.last_fence = object->fence;
    }
    if (object->active++ == 0)
        self->stats.active_objects++;
    object->refs++;
}

gt_code_t
gt_leases_create (gt_leases_t *self, const gt_lease_spec_t *spec,
                  gt_lease_t **lease_p, char *err, size_t err_size)
{
    assert (self);
    assert (spec);
    *lease_p = NULL;
    gt_code_t code = gt_leases_check_spec (self, spec, err, err_size);
    if (code != GT_OK)
        return code;
    const gt_cleanup_t *cleanup = spec->cleanup;
    if (cleanup
    && ((cleanup->has_max_retries && cleanup->max_retries > GT_MAX_RETRIES_LIMIT)
     || (cleanup->has_retry_delay && cleanup->retry_delay_ms > GT_MAX_RETRY_DELAY_MS))) {
        snprintf (err, err_size, "cleanup retries or delay out of range");
        return GT_ERR_INVALID_ARGUMENT;
    }
    const char *object_id = spec->object_id;
    const char *service_id = spec->service_id;
    const char *key = spec->idempotency_key;
    uint64_t ttl = spec->has_ttl ? spec->ttl_ms : self->default_ttl;
    gt_lease_tables_t *tables = self->tables;

    uint32_t service;
    bool service_known = gt_lease_tables_service_find (tables, service_id, &service);
    if (key && service_known) {
        gt_lease_t *earlier = gt_lease_tables_key_find (tables, service, key);
        if (earlier) {
            if (!streq (earlier->object->id, object_id)) {
                snprintf (err, err_size, "idempotency_key was used for object '%s'", earlier->object->id);
                return GT_ERR_CONFLICT;
            }
            *lease_p = earlier;
            return GT_OK;
        }
    }
    if (service_known && gt_lease_tables_service_active (tables, service) >= self->max_per_service) {
        snprintf (err, err_size, "service '%s' holds %" PRIu64 " active leases (GC_MAX_LEASES_PER_SERVICE)",
                  service_id, self->max_per_service);
        return GT_ERR_QUOTA_EXCEEDED;
    }
    if (!service_known && !gt_lease_tables_service_room (tables)) {
        snprintf (err, err_size, "too many distinct services (%u)", GT_LEASE_MAX_SERVICES);
        return GT_ERR_QUOTA_EXCEEDED;
    }
    if (gt_lease_tables_lease_count (tables) >= self->max_leases) {
        snprintf (err, err_size, "the broker holds %zu leases, active and ended; GC_MAX_LEASES is %" PRIu64,
                  gt_lease_tables_lease_count (tables), self->max_leases);
        return GT_ERR_QUOTA_EXCEEDED;
    }

    //  Valid: apply (a service not known yet gets its slot now)
    if (!service_known)
        service = gt_lease_tables_service_acquire (tables, service_id);
    gt_lease_tables_service_hold (tables, service, true);

    uint8_t id [16];
    gt_lease_tables_new_id (tables, gt_shard_of (object_id), id);
    gt_lease_object_t *object = gt_lease_tables_object_acquire (tables, object_id);
    bool was_live = object->active > 0 || gt_lease_tables_object_pending (tables, object);
    s_object_join (self, object);
    if (cleanup)
        gt_lease_tables_object_add_cleanup (tables, object, cleanup, id);

    gt_lease_t *lease = gt_lease_tables_lease_alloc (tables);
    memcpy (lease->id, id, sizeof (id));
    lease->object = object;
    gt_cleanup_t resolved;
    if (cleanup)
        resolved = s_cleanup_resolved (self, cleanup);
    gt_lease_tables_lease_ext (tables, lease, spec->metadata, cleanup ? &resolved : NULL, key);
    lease->created_at = self->wall;
    lease->renewed_at = self->wall;
    lease->state = GT_STATE_ACTIVE;
    lease->type = spec->object_type;
    gt_lease_tables_set_service (lease, service);
    lease->fence = object->fence;
    lease->ttl_ms = (uint32_t) ttl;
    lease->renewals = 0;
    gt_lease_tables_lease_add (tables, lease);
    gt_wheel_arm (self->lease_wheel, &lease->timer, self->mono + ttl);
    self->stats.active_leases++;

    if (!was_live)
        s_object_put (self, object);
    gt_lease_info_t info;
    s_changed (self, lease, true, GT_EVENT_LEASE_CREATED, self->wall, &info);
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
    uint32_t service = gt_lease_tables_service_of (lease);
    if (!service_id || !streq (gt_lease_tables_service_name (self->tables, service), service_id)) {
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
    gt_lease_tables_lease_touch (self->tables, lease, false);
    lease->renewed_at = self->wall;
    lease->ttl_ms = (uint32_t) ttl;
    if (lease->renewals < UINT32_MAX)
        lease->renewals++;
    gt_wheel_arm (self->lease_wheel, &lease->timer, self->mono + ttl);
    gt_lease_info_t info;
    s_changed (self, lease, false, GT_EVENT_LEASE_RENEWED, self->wall, &info);
    *lease_p = lease;
    return GT_OK;
}

//  Set a lease's callback state.  journaled: a change a request makes,
//  undone with its batch; otherwise a fact delivery reported, never undone.
static void
s_cleanup_set (gt_leases_t *self, gt_lease_t *lease, gt_cleanup_status_t status,
               uint32_t attempts, const char *error, bool journaled)
{
    gt_lease_ext_t *ext = gt_lease_tables_ext (self->tables, lease);
    assert (ext && ext->cleanup);
    if (journaled)
        gt_lease_tables_cleanup_touch (self->tables, lease);   //  may take the old error
    free (ext->cleanup_error);
    ext->cleanup_status = (uint8_t) status;
    ext->cleanup_attempts = attempts;
    ext->cleanup_error = error && *error ? strdup (error) : NULL;
    //  Held past its retention until delivered: retention starts again now
    if (status == GT_CLEANUP_DELIVERED && lease->state != GT_STATE_ACTIVE)
        gt_wheel_arm (self->lease_wheel, &lease->timer, self->mono + self->retention_ms);
}

//  Reclaim an object now: event, cleanups to delivery, life over.
//  not_before: the event's time is never earlier (the end of the last
//  lease, plus the grace period when there was one).
static void
s_reclaim (gt_leases_t *self, gt_lease_object_t *object, const gt_lease_info_t *last, gt_reason_t reason,
           uint64_t not_before)
{
    uint64_t at = self->wall > not_before ? self->wall : not_before;
    if (self->hooks.event)
        self->hooks.event (self->hooks.ctx, GT_EVENT_OBJECT_RECLAIMED, last, reason, at);
    //  The life's cleanups, newest first in the list: collect them so that
    //  callbacks go out in registration order
    gt_lease_cleanup_node_t *stack [64];
    gt_lease_cleanup_node_t **nodes = stack;
    size_t count = 0, cap = 64;
    gt_lease_object_ext_t *object_ext = gt_lease_tables_object_ext (self->tables, object);
    for (gt_lease_cleanup_node_t *node = object_ext ? object_ext->cleanups : NULL; node; node = node->next) {
        if (count == cap) {
            cap *= 2;
            gt_lease_cleanup_node_t **bigger = (gt_lease_cleanup_node_t **) malloc (cap * sizeof (*bigger));
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
        gt_lease_cleanup_node_t *node = nodes [index];
        gt_lease_t *owner = gt_lease_tables_lease_find (self->tables, node->owner);
        gt_lease_info_t info;
        const gt_lease_ext_t *owner_ext = owner ? gt_lease_tables_ext (self->tables, owner) : NULL;
        if (owner_ext && owner_ext->cleanup) {
            s_cleanup_set (self, owner, GT_CLEANUP_PENDING, 0, NULL, true);
            gt_lease_tables_info (self->tables, owner, &info);
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
    gt_lease_tables_object_drop_cleanups (self->tables, object);
    s_object_put (self, object);
}

//  End an ACTIVE lease (released or expired) and what follows from it.
//  fired: the lease's timer was just popped (expiry).
static void
s_lease_end (gt_leases_t *self, gt_lease_t *lease, gt_lease_state_t state, bool retain, bool fired)
{
    gt_lease_tables_t *tables = self->tables;
    uint64_t deadline = gt_lease_tables_expires_at (lease);
    //  Never report an expiry before the deadline (clocks read apart)
    uint64_t ended_at = state == GT_STATE_EXPIRED && self->wall < deadline ? deadline : self->wall;
    gt_lease_tables_lease_touch (tables, lease, fired);
    lease->state = state;
    gt_lease_tables_set_ended_at (lease, ended_at);
    gt_wheel_arm (self->lease_wheel, &lease->timer, self->mono + self->retention_ms);
    self->stats.active_leases--;
    self->stats.retained_leases++;
    gt_lease_tables_service_end (tables, gt_lease_tables_service_of (lease));

    //  last: the lease as it ended, for its event and for the reclaim below
    gt_lease_info_t last;
    s_changed (self, lease, false, state == GT_STATE_RELEASED ? GT_EVENT_LEASE_RELEASED : GT_EVENT_LEASE_EXPIRED,
               ended_at, &last);

    gt_lease_object_t *object = lease->object;
    gt_lease_tables_object_touch (tables, object);
    assert (object->active > 0);
    if (--object->active > 0)
        return;                     //  others still hold it
    self->stats.active_objects--;
    if (retain) {
        //  Kept on purpose: no cleanup, no reclaim event; the life ends
        gt_lease_tables_object_drop_cleanups (tables, object);
        s_object_put (self, object);
        return;
    }
    gt_reason_t reason = state == GT_STATE_RELEASED ? GT_REASON_RELEASED : GT_REASON_EXPIRED;
    if (self->grace_ms == 0) {
        s_reclaim (self, object, &last, reason, last.expires_at);
        return;
    }
    gt_lease_pending_t *pending = gt_lease_tables_pending_add (tables, object, reason,
                                                               ended_at + self->grace_ms, &last);
    self->stats.pending_reclaims++;
    gt_wheel_arm (self->object_wheel, &pending->timer, self->mono + self->grace_ms);
    s_object_put (self, object);
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
    if (!gt_lease_id_parse (lease_id, id)) {
        snprintf (err, err_size, "lease_id must be 32 lowercase hex characters");
        return GT_ERR_INVALID_ARGUMENT;
    }
    gt_lease_t *lease = gt_lease_tables_lease_find (self->tables, id);
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
        if (after >= gt_lease_tables_next_serial (self->tables)) {
            snprintf (err, err_size, "cursor is not one this broker issued");
            return GT_ERR_INVALID_ARGUMENT;
        }
    }
    //  Filters on names resolve once; an unknown name matches nothing
    uint32_t service = 0;
    const gt_lease_object_t *object = NULL;
    bool empty = false;
    if (filter && filter->service_id && !gt_lease_tables_service_find (self->tables, filter->service_id, &service))
        empty = true;
    if (filter && filter->object_id && !(object = gt_lease_tables_object_find (self->tables, filter->object_id)))
        empty = true;
    if (empty)
        return GT_OK;

    size_t index = gt_lease_tables_order_seek (self->tables, after + 1);
    size_t scanned = 0, bytes = 0, count = 0;
    uint64_t last_serial = after;
    bool more = false;              //  a lease is left after the page
    gt_lease_t *lease;
    while ((lease = gt_lease_tables_order_next (self->tables, &index))) {
        if (count == limit || scanned == S_LIST_SCAN_MAX) {
            more = true;
            break;
        }
        scanned++;
        bool match = !filter
                  || ((!filter->service_id || gt_lease_tables_service_of (lease) == service)
                   && (!filter->object_id || lease->object == object)
                   && (!filter->has_object_type || lease->type == filter->object_type)
                   && (!filter->has_state || lease->state == filter->state)
                   && (!filter->has_cleanup_status
                       || s_cleanup_status (self, lease) == filter->cleanup_status));
        if (match) {
            size_t size = gt_lease_tables_info_size (self->tables, lease);
            if (count > 0 && bytes + size > byte_budget) {
                more = true;
                break;
            }
            bytes += size;
            leases [count++] = lease;
        }
        last_serial = lease->serial;
    }
    if (more)
        snprintf (next_cursor, 32, "c%" PRIu64, last_serial);
    *count_p = count;
    return GT_OK;
}

//  --------------------------------------------------------------------------
//  Timers

static void
s_lease_purge (gt_leases_t *self, gt_lease_t *lease)
{
    self->stats.retained_leases--;
    if (self->hooks.lease_delete) {
        char id [GT_LEASE_ID_LEN + 1];
        gt_lease_id_format (lease->id, id);
        self->hooks.lease_delete (self->hooks.ctx, id, lease->object->id);
    }
    gt_lease_object_t *object = lease->object;
    gt_lease_tables_service_unref (self->tables, gt_lease_tables_service_of (lease));
    gt_lease_tables_object_touch (self->tables, object);
    assert (object->refs > 0);
    object->refs--;
    s_object_maybe_forget (self, object);
    gt_lease_tables_lease_remove (self->tables, lease);
}

//  Retention exceptions (GTLP.md §10.5), checked when an ended lease's
//  purge timer fires.  A lease whose callback is PENDING or DEAD stays,
//  without a timer (s_cleanup_set arms one once it is DELIVERED).
//  A lease whose URL is registered for its object's open life stays until
//  that life ends (its callback will name it): looked at again later.
//  Returns true if the lease stays.
static bool
s_lease_held (gt_leases_t *self, gt_lease_t *lease)
{
    gt_lease_ext_t *ext = gt_lease_tables_ext (self->tables, lease);
    if (!ext || !ext->cleanup || !self->hooks.callback)
        return false;               //  no callbacks, no holds (engine tests)
    if (ext->cleanup_status == GT_CLEANUP_PENDING || ext->cleanup_status == GT_CLEANUP_DEAD) {
        gt_lease_tables_lease_touch (self->tables, lease, true);       //  undo re-arms the timer
        return true;
    }
    gt_lease_object_t *object = lease->object;
    gt_lease_object_ext_t *object_ext = gt_lease_tables_object_ext (self->tables, object);
    if (object->fence != lease->fence || !object_ext || !(object->active > 0 || object_ext->pending))
        return false;
    for (gt_lease_cleanup_node_t *node = object_ext->cleanups; node; node = node->next)
        if (memcmp (node->owner, lease->id, sizeof (lease->id)) == 0) {
            gt_lease_tables_lease_touch (self->tables, lease, true);
            uint64_t again = self->retention_ms > 1000 ? self->retention_ms : 1000;
            gt_wheel_arm (self->lease_wheel, &lease->timer, self->mono + again);
            return true;
        }
    return false;
}

static void
s_pending_fire (gt_leases_t *self, gt_lease_pending_t *pending)
{
    gt_lease_object_t *object = pending->object;
    gt_lease_tables_object_touch (self->tables, object);
    gt_lease_tables_pending_detach (self->tables, object);
    self->stats.pending_reclaims--;
    s_reclaim (self, object, &pending->last, pending->reason, pending->at);
    object->refs--;
    gt_lease_tables_pending_release (self->tables, pending);
    s_object_maybe_forget (self, object);
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
            uint64_t late = self->mono > gt_timer_deadline (timer) ? self->mono - gt_timer_deadline (timer) : 0;
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
        s_pending_fire (self, (gt_lease_pending_t *) timer);
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

//  --------------------------------------------------------------------------
//  Figures and views

void
gt_leases_stats (gt_leases_t *self, gt_leases_stats_t *stats)
{
    assert (self);
    *stats = self->stats;
    stats->services = gt_lease_tables_service_count (self->tables);
}

void
gt_leases_census_services (gt_leases_t *self, gt_leases_service_fn *fn, void *ctx)
{
    assert (self);
    gt_lease_census_services (self->tables, fn, ctx);
}

void
gt_leases_census_types (gt_leases_t *self, uint64_t counts [GT_TYPE_COUNT_])
{
    assert (self);
    gt_lease_census_types (self->tables, counts);
}

void
gt_leases_info (gt_leases_t *self, const gt_lease_t *lease, gt_lease_info_t *info)
{
    assert (self);
    gt_lease_tables_info (self->tables, lease, info);
}

//  --------------------------------------------------------------------------
//  Cleanup callback state

bool
gt_leases_set_cleanup (gt_leases_t *self, const char *lease_id, gt_cleanup_status_t status,
                       uint32_t attempts, const char *error, bool journaled)
{
    assert (self);
    uint8_t id [16];
    gt_lease_t *lease = lease_id && gt_lease_id_parse (lease_id, id)
                      ? gt_lease_tables_lease_find (self->tables, id) : NULL;
    const gt_lease_ext_t *ext = lease ? gt_lease_tables_ext (self->tables, lease) : NULL;
    if (!ext || !ext->cleanup || (int) status < 0 || status >= GT_CLEANUP_STATUS_COUNT_)
        return false;
    s_cleanup_set (self, lease, status, attempts, error, journaled);
    return true;
}

bool
gt_leases_record (gt_leases_t *self, const char *lease_id)
{
    assert (self);
    uint8_t id [16];
    gt_lease_t *lease = lease_id && gt_lease_id_parse (lease_id, id)
                      ? gt_lease_tables_lease_find (self->tables, id) : NULL;
    if (lease)
        s_put (self, lease, false);
    return lease != NULL;
}

//  --------------------------------------------------------------------------
//  Journal

void
gt_leases_journal (gt_leases_t *self, bool enabled)
{
    assert (self);
    gt_lease_tables_journal (self->tables, enabled);
}

gt_leases_mark_t
gt_leases_mark (gt_leases_t *self)
{
    assert (self);
    gt_leases_mark_t mark;
    mark.position = gt_lease_tables_position (self->tables);
    gt_leases_stats (self, &mark.stats);
    mark.forgotten = self->forgotten;
    return mark;
}

void
gt_leases_commit (gt_leases_t *self, gt_leases_mark_t mark)
{
    assert (self);
    gt_lease_tables_commit (self->tables, mark.position);
}

void
gt_leases_rollback (gt_leases_t *self, gt_leases_mark_t mark)
{
    assert (self);
    gt_lease_tables_rollback (self->tables, mark.position);
    //  Gauges go back, less what was forgotten since the mark (undo does
    //  not bring it back); the fence high-water mark and lateness history
    //  stay (the service count is the tables', undone with them)
    self->stats.active_leases = mark.stats.active_leases
                              - (self->forgotten.active_leases - mark.forgotten.active_leases);
    self->stats.retained_leases = mark.stats.retained_leases
                                - (self->forgotten.retained_leases - mark.forgotten.retained_leases);
    self->stats.active_objects = mark.stats.active_objects
                               - (self->forgotten.active_objects - mark.forgotten.active_objects);
    self->stats.pending_reclaims = mark.stats.pending_reclaims
                                 - (self->forgotten.pending_reclaims - mark.forgotten.pending_reclaims);
}

//  --------------------------------------------------------------------------
//  Handing shards over

size_t
gt_leases_forget_shards (gt_leases_t *self, const uint8_t shards [GT_SHARD_COUNT / 8])
{
    assert (self);
    assert (shards);
    gt_lease_tables_forgotten_t gone = { 0, 0, 0, 0 };
    gt_lease_tables_forget_shards (self->tables, shards, &gone);
    assert (gone.active_leases <= self->stats.active_leases
         && gone.retained_leases <= self->stats.retained_leases
         && gone.active_objects <= self->stats.active_objects
         && gone.pending_reclaims <= self->stats.pending_reclaims);
    self->stats.active_leases -= gone.active_leases;
    self->stats.retained_leases -= gone.retained_leases;
    self->stats.active_objects -= gone.active_objects;
    self->stats.pending_reclaims -= gone.pending_reclaims;
    self->forgotten.active_leases += gone.active_leases;
    self->forgotten.retained_leases += gone.retained_leases;
    self->forgotten.active_objects += gone.active_objects;
    self->forgotten.pending_reclaims += gone.pending_reclaims;
    return gone.active_leases + gone.retained_leases;
}

//  --------------------------------------------------------------------------
//  Recovery

static uint64_t
s_mono_for_wall (gt_leases_t *self, uint64_t wall)
{
    return wall > self->wall ? self->mono + (wall - self->wall) : self->mono;
}

void
gt_leases_restore_begin (gt_leases_t *self)
{
    assert (self);
    self->restore_from = gt_lease_tables_order_mark (self->tables);
}

void
gt_leases_restore_end (gt_leases_t *self)
{
    assert (self);
    if (!gt_lease_tables_order_settle (self->tables, self->restore_from))
        return;
    //  Deadlines already past went to the wheel's expired list as the
    //  leases came, and it fires first in, first out: line them up again
    //  oldest first, the order the catch-up expires them in (and so which
    //  lease an object's reclaim names as its last)
    size_t index = self->restore_from;
    gt_lease_t *lease;
    while ((lease = gt_lease_tables_order_next (self->tables, &index)))
        if (gt_timer_armed (&lease->timer) && gt_timer_deadline (&lease->timer) <= self->mono)
            gt_wheel_arm (self->lease_wheel, &lease->timer, gt_timer_deadline (&lease->timer));
}

void
gt_leases_restore_expect (gt_leases_t *self, size_t leases)
{
    assert (self);
    gt_lease_tables_reserve (self->tables, leases);
}

void
gt_leases_restore_ahead (gt_leases_t *self, const uint8_t id [16],
                         const char *object_id, size_t object_id_len)
{
    assert (self);
    gt_lease_tables_prefetch (self->tables, id, object_id, object_id_len);
}

gt_code_t
gt_leases_restore_lease (gt_leases_t *self, const gt_lease_info_t *info,
                         const char *idempotency_key, char *err, size_t err_size)
{
    assert (self);
    assert (info);
    gt_lease_tables_t *tables = self->tables;
    uint8_t id [16];
    if (!gt_lease_id_parse (info->id, id) || !info->object_id || !info->service_id
    || info->state >= GT_STATE_COUNT_ || info->object_type >= GT_TYPE_COUNT_
    || info->fence > GT_LEASE_FENCE_MAX) {
        snprintf (err, err_size, "stored lease %.32s is malformed", info->id);
        return GT_ERR_INVALID_ARGUMENT;
    }
    if (gt_lease_tables_lease_find (tables, id)) {
        snprintf (err, err_size, "stored lease %s appears twice", info->id);
        return GT_ERR_INVALID_ARGUMENT;
    }
    if (gt_lease_tables_lease_count (tables) >= GT_LEASE_MAX) {
        //  Past GC_MAX_LEASES is loaded (creates are refused until under it)
        snprintf (err, err_size, "stored lease %s is past the %u leases a broker holds", info->id, GT_LEASE_MAX);
        return GT_ERR_QUOTA_EXCEEDED;
    }
    bool active = info->state == GT_STATE_ACTIVE;
    uint32_t service = gt_lease_tables_service_acquire (tables, info->service_id);
    gt_lease_tables_service_hold (tables, service, active);

    gt_lease_object_t *object = gt_lease_tables_object_acquire (tables, info->object_id);
    if (info->fence > object->fence) {
        //  A later life: cleanups of the earlier one are not this life's
        object->fence = info->fence;
        gt_lease_tables_object_drop_cleanups (tables, object);
    }
    if (info->fence > self->stats.last_fence)
        self->stats.last_fence = info->fence;
    object->refs++;
    if (active && object->active++ == 0)
        self->stats.active_objects++;
    if (info->cleanup && info->fence == object->fence)
        gt_lease_tables_object_restore_cleanup (tables, object, info->cleanup, id, info->created_at);

    gt_lease_t *lease = gt_lease_tables_lease_alloc (tables);
    memcpy (lease->id, id, sizeof (id));
    lease->object = object;
    gt_cleanup_t resolved;
    if (info->cleanup)
        resolved = s_cleanup_resolved (self, info->cleanup);
    gt_lease_ext_t *ext = gt_lease_tables_lease_ext (tables, lease, &info->metadata,
                                                     info->cleanup ? &resolved : NULL, idempotency_key);
    if (ext && ext->cleanup && info->cleanup_status > GT_CLEANUP_NONE
    && info->cleanup_status < GT_CLEANUP_STATUS_COUNT_) {
        ext->cleanup_status = (uint8_t) info->cleanup_status;
        ext->cleanup_attempts = info->cleanup_attempts > UINT32_MAX ? UINT32_MAX
                              : (uint32_t) info->cleanup_attempts;
        ext->cleanup_error = info->cleanup_error && *info->cleanup_error
                           ? strdup (info->cleanup_error) : NULL;
    }
    lease->created_at = info->created_at;
    lease->renewed_at = info->renewed_at;
    lease->state = info->state;
    lease->type = info->object_type;
    gt_lease_tables_set_service (lease, service);
    lease->fence = info->fence;
    lease->ttl_ms = info->ttl_ms > UINT32_MAX ? UINT32_MAX : (uint32_t) info->ttl_ms;
    lease->renewals = info->renewals > UINT32_MAX ? UINT32_MAX : (uint32_t) info->renewals;
    if (!active)
        gt_lease_tables_set_ended_at (lease, info->expires_at);
    gt_lease_tables_lease_add (tables, lease);
    uint64_t deadline = active ? s_mono_for_wall (self, info->expires_at)
                               : s_mono_for_wall (self, info->expires_at + self->retention_ms);
    gt_wheel_arm (self->lease_wheel, &lease->timer, deadline);
    if (active)
        self->stats.active_leases++;
    else
        self->stats.retained_leases++;
    return GT_OK;
}

gt_code_t
gt_leases_restore_object (gt_leases_t *self, const char *object_id, uint64_t fence,
                          uint64_t pending_at, gt_reason_t reason, const char *last_lease_id,
                          char *err, size_t err_size)
{
    assert (self);
    assert (object_id);
    if (fence > GT_LEASE_FENCE_MAX) {
        snprintf (err, err_size, "stored object %s has fence %" PRIu64 ", beyond %" PRIu64,
                  object_id, fence, GT_LEASE_FENCE_MAX);
        return GT_ERR_INVALID_ARGUMENT;
    }
    gt_lease_tables_t *tables = self->tables;
    if (fence > self->stats.last_fence)
        self->stats.last_fence = fence;
    gt_lease_object_t *object = gt_lease_tables_object_find (tables, object_id);
    if (!pending_at || (object && object->active > 0)) {
        //  Only its fence matters: never hand it out again
        if (object && fence > object->fence)
            object->fence = fence;
        else
        if (!object)
            gt_lease_tables_raise_fence_floor (tables, fence + 1);
        return GT_OK;
    }
    object = gt_lease_tables_object_acquire (tables, object_id);
    if (fence > object->fence)
        object->fence = fence;
    uint8_t id [16];
    gt_lease_t *last = last_lease_id && gt_lease_id_parse (last_lease_id, id)
                     ? gt_lease_tables_lease_find (tables, id) : NULL;
    gt_lease_info_t info;
    if (last)
        gt_lease_tables_info (tables, last, &info);
    else {
        //  The last lease is gone: report what we still know
        memset (&info, 0, sizeof (info));
        if (last_lease_id && strlen (last_lease_id) == GT_LEASE_ID_LEN)
            memcpy (info.id, last_lease_id, GT_LEASE_ID_LEN + 1);
        info.object_id = (char *) object_id;
        info.service_id = (char *) "";
        info.state = reason == GT_REASON_RELEASED ? GT_STATE_RELEASED : GT_STATE_EXPIRED;
        info.fence = object->fence;
    }
    gt_lease_pending_t *pending = gt_lease_tables_pending_add (tables, object, reason, pending_at, &info);
    self->stats.pending_reclaims++;
    gt_wheel_arm (self->object_wheel, &pending->timer, s_mono_for_wall (self, pending_at));
    return GT_OK;
}

gt_code_t
gt_leases_restore_fence_floor (gt_leases_t *self, uint64_t floor, char *err, size_t err_size)
{
    assert (self);
    if (floor > GT_LEASE_FENCE_MAX + 1) {
        snprintf (err, err_size, "stored fence counter %" PRIu64 " is beyond %" PRIu64,
                  floor - 1, GT_LEASE_FENCE_MAX);
        return GT_ERR_INVALID_ARGUMENT;
    }
    gt_lease_tables_raise_fence_floor (self->tables, floor);
    return GT_OK;
}
