/*  gt_leases_journal.c — the lease engine's undo journal (commit and
    rollback of what gt_leases_tables.c recorded) and recovery from a store.  */
#include <czmq.h>
#include <sys/random.h>
#include "gt_wheel.h"
#include "gt_table.h"
#include "gt_leases.h"
#include "gt_leases_internal.h"

//  --------------------------------------------------------------------------
//  Journal: commit and rollback

static void
s_commit_entry (gt_leases_t *self, s_journal_t *entry)
{
    switch (entry->type) {
        case J_LEASE_GONE:
            gt_leases_lease_free (self, (gt_lease_t *) entry->ptr);
            break;
        case J_OBJECT_GONE:
            gt_leases_object_free ((s_object_t *) entry->ptr);
            break;
        case J_SERVICE_GONE:
            gt_leases_service_free_slot (self, entry->u.service.index);
            break;
        case J_CLEANUPS_DROPPED:
            gt_leases_cleanup_list_free ((s_cleanup_node_t *) entry->ptr);
            break;
        case J_PENDING_GONE:
            gt_leases_pending_free ((s_pending_t *) entry->ptr);
            break;
        case J_CLEANUP_OLD:
            free (entry->u.cleanup.error);
            entry->u.cleanup.error = NULL;
            break;
        default:
            break;                  //  nothing was deferred
    }
}

static void
s_undo_entry (gt_leases_t *self, s_journal_t *entry)
{
    switch (entry->type) {
        case J_LEASE_NEW: {
            gt_lease_t *lease = (gt_lease_t *) entry->ptr;
            gt_leases_lease_unlink (self, lease);
            gt_leases_lease_free (self, lease);
            break;
        }
        case J_LEASE_OLD: {
            gt_lease_t *lease = (gt_lease_t *) entry->ptr;
            gt_wheel_cancel (self->lease_wheel, &lease->timer);
            memcpy ((uint8_t *) lease + S_LEASE_IMAGE_OFFSET, entry->u.lease_image, S_LEASE_IMAGE_SIZE);
            if (entry->armed)
                gt_wheel_arm (self->lease_wheel, &lease->timer, entry->deadline);
            break;
        }
        case J_LEASE_GONE: {
            gt_lease_t *lease = (gt_lease_t *) entry->ptr;
            gt_leases_lease_link (self, lease);
            gt_wheel_arm (self->lease_wheel, &lease->timer, entry->deadline);
            break;
        }
        case J_OBJECT_NEW: {
            s_object_t *object = (s_object_t *) entry->ptr;
            gt_table_remove (self->objects, gt_leases_object_hash_of (self, object->id), object);
            gt_leases_object_free (object);
            break;
        }
        case J_OBJECT_OLD: {
            s_object_t *object = (s_object_t *) entry->ptr;
            object->refs = entry->u.object.refs;
            object->active = entry->u.object.active;
            object->fence = entry->u.object.fence;
            if (object->ext) {
                object->ext->cleanups = entry->u.object.cleanups;
                object->ext->pending = entry->u.object.pending;
            }
            else
                assert (!entry->u.object.cleanups && !entry->u.object.pending);
            break;
        }
        case J_OBJECT_GONE: {
            s_object_t *object = (s_object_t *) entry->ptr;
            gt_table_insert (self->objects, gt_leases_object_hash_of (self, object->id), object);
            break;
        }
        case J_SERVICE_NEW: {
            uint32_t index = entry->u.service.index;
            zhashx_delete (self->service_index, self->services [index].name);
            gt_leases_service_free_slot (self, index);
            break;
        }
        case J_SERVICE_OLD: {
            s_service_t *service = &self->services [entry->u.service.index];
            service->active = entry->u.service.active;
            service->refs = entry->u.service.refs;
            break;
        }
        case J_SERVICE_GONE: {
            uint32_t index = entry->u.service.index;
            zhashx_insert (self->service_index, self->services [index].name,
                           (void *) (uintptr_t) (index + 1));
            break;
        }
        case J_CLEANUP_NEW: {
            s_cleanup_node_t *node = (s_cleanup_node_t *) entry->ptr;
            node->next = NULL;
            gt_leases_cleanup_list_free (node);
            break;
        }
        case J_CLEANUPS_DROPPED:
            break;                  //  the object's before-image restores the list
        case J_PENDING_NEW: {
            s_pending_t *pending = (s_pending_t *) entry->ptr;
            gt_wheel_cancel (self->object_wheel, &pending->timer);
            gt_leases_pending_free (pending);
            break;
        }
        case J_PENDING_GONE: {
            s_pending_t *pending = (s_pending_t *) entry->ptr;
            gt_wheel_arm (self->object_wheel, &pending->timer, entry->deadline);
            break;
        }
        case J_CLEANUP_OLD: {
            s_lease_ext_t *ext = ((gt_lease_t *) entry->ptr)->ext;
            free (ext->cleanup_error);
            ext->cleanup_status = entry->u.cleanup.status;
            ext->cleanup_attempts = entry->u.cleanup.attempts;
            ext->cleanup_error = entry->u.cleanup.error;
            entry->u.cleanup.error = NULL;
            break;
        }
    }
}

void
gt_leases_journal (gt_leases_t *self, bool enabled)
{
    assert (self);
    if (!enabled)
        gt_leases_commit (self, gt_leases_mark (self));
    self->journaling = enabled;
}

gt_leases_mark_t
gt_leases_mark (gt_leases_t *self)
{
    assert (self);
    gt_leases_mark_t mark;
    mark.position = self->journal_base + self->journal_tail;
    mark.stats = self->stats;
    return mark;
}

void
gt_leases_commit (gt_leases_t *self, gt_leases_mark_t mark)
{
    assert (self);
    while (self->journal_base + self->journal_head < mark.position) {
        assert (self->journal_head < self->journal_tail);
        s_commit_entry (self, &self->journal [self->journal_head++]);
    }
    if (self->journal_head == self->journal_tail) {
        self->journal_base += self->journal_tail;
        self->journal_head = self->journal_tail = 0;
    }
}

void
gt_leases_rollback (gt_leases_t *self, gt_leases_mark_t mark)
{
    assert (self);
    assert (mark.position >= self->journal_base + self->journal_head);
    while (self->journal_base + self->journal_tail > mark.position)
        s_undo_entry (self, &self->journal [--self->journal_tail]);
    //  Gauges go back; the fence high-water mark and lateness history stay
    self->stats.active_leases = mark.stats.active_leases;
    self->stats.retained_leases = mark.stats.retained_leases;
    self->stats.active_objects = mark.stats.active_objects;
    self->stats.pending_reclaims = mark.stats.pending_reclaims;
    self->stats.services = mark.stats.services;
}

//  --------------------------------------------------------------------------
//  Cleanup callback state

void
gt_leases_cleanup_set (gt_leases_t *self, gt_lease_t *lease, gt_cleanup_status_t status,
                       uint32_t attempts, const char *error, bool journaled)
{
    s_lease_ext_t *ext = lease->ext;
    assert (ext && ext->cleanup);
    if (journaled && self->journaling) {
        s_journal_t *entry = gt_leases_journal_push (self, J_CLEANUP_OLD, lease);
        entry->u.cleanup.status = ext->cleanup_status;
        entry->u.cleanup.attempts = ext->cleanup_attempts;
        entry->u.cleanup.error = ext->cleanup_error;       //  the entry owns it now
    }
    else
        free (ext->cleanup_error);
    ext->cleanup_status = (uint8_t) status;
    ext->cleanup_attempts = attempts;
    ext->cleanup_error = error && *error ? strdup (error) : NULL;
    //  Held past its retention until delivered: retention starts again now
    if (status == GT_CLEANUP_DELIVERED && lease->state != GT_STATE_ACTIVE)
        gt_wheel_arm (self->lease_wheel, &lease->timer, self->mono + self->retention_ms);
}

bool
gt_leases_set_cleanup (gt_leases_t *self, const char *lease_id, gt_cleanup_status_t status,
                       uint32_t attempts, const char *error, bool journaled)
{
    assert (self);
    uint8_t id [16];
    gt_lease_t *lease = lease_id && gt_leases_id_parse (lease_id, id) ? gt_leases_lease_find (self, id) : NULL;
    if (!lease || !lease->ext || !lease->ext->cleanup || (int) status < 0 || status >= GT_CLEANUP_STATUS_COUNT_)
        return false;
    gt_leases_cleanup_set (self, lease, status, attempts, error, journaled);
    return true;
}

bool
gt_leases_record (gt_leases_t *self, const char *lease_id)
{
    assert (self);
    uint8_t id [16];
    gt_lease_t *lease = lease_id && gt_leases_id_parse (lease_id, id) ? gt_leases_lease_find (self, id) : NULL;
    if (lease)
        gt_leases_put (self, lease);
    return lease != NULL;
}

//  --------------------------------------------------------------------------
//  Recovery

static uint64_t
s_mono_for_wall (gt_leases_t *self, uint64_t wall)
{
    return wall > self->wall ? self->mono + (wall - self->wall) : self->mono;
}

gt_code_t
gt_leases_restore_lease (gt_leases_t *self, const gt_lease_info_t *info,
                         const char *idempotency_key, char *err, size_t err_size)
{
    assert (self);
    assert (info);
    uint8_t id [16];
    if (!gt_leases_id_parse (info->id, id) || !info->object_id || !info->service_id
    || info->state >= GT_STATE_COUNT_ || info->object_type >= GT_TYPE_COUNT_) {
        snprintf (err, err_size, "stored lease %.32s is malformed", info->id);
        return GT_ERR_INVALID_ARGUMENT;
    }
    if (gt_leases_lease_find (self, id)) {
        snprintf (err, err_size, "stored lease %s appears twice", info->id);
        return GT_ERR_INVALID_ARGUMENT;
    }
    bool active = info->state == GT_STATE_ACTIVE;
    uint32_t service = gt_leases_service_acquire (self, info->service_id);
    self->services [service].refs++;
    if (active)
        self->services [service].active++;

    s_object_t *object = gt_leases_object_acquire (self, info->object_id);
    if (info->fence > object->fence) {
        //  A later life: cleanups of the earlier one are not this life's
        object->fence = info->fence;
        gt_leases_object_drop_cleanups (self, object);
    }
    if (info->fence > self->stats.last_fence)
        self->stats.last_fence = info->fence;
    object->refs++;
    if (active && object->active++ == 0)
        self->stats.active_objects++;
    if (info->cleanup && info->fence == object->fence)
        gt_leases_object_add_cleanup (self, object, info->cleanup, id);

    gt_lease_t *lease = gt_leases_lease_alloc (self);
    gt_timer_init (&lease->timer);
    memcpy (lease->id, id, sizeof (id));
    lease->object = object;
    lease->ext = gt_leases_ext_new (self, &info->metadata, info->cleanup, idempotency_key);
    if (lease->ext && lease->ext->cleanup && info->cleanup_status > GT_CLEANUP_NONE
    && info->cleanup_status < GT_CLEANUP_STATUS_COUNT_) {
        lease->ext->cleanup_status = (uint8_t) info->cleanup_status;
        lease->ext->cleanup_attempts = info->cleanup_attempts > UINT32_MAX ? UINT32_MAX
                                     : (uint32_t) info->cleanup_attempts;
        lease->ext->cleanup_error = info->cleanup_error && *info->cleanup_error
                                  ? strdup (info->cleanup_error) : NULL;
    }
    lease->created_at = info->created_at;
    lease->renewed_at = info->renewed_at;
    lease->state = info->state;
    lease->type = info->object_type;
    gt_leases_set_service (lease, service);
    lease->serial = self->next_serial++;
    lease->fence = info->fence;
    lease->ttl_ms = info->ttl_ms > UINT32_MAX ? UINT32_MAX : (uint32_t) info->ttl_ms;
    lease->renewals = info->renewals > UINT32_MAX ? UINT32_MAX : (uint32_t) info->renewals;
    if (!active)
        gt_leases_set_ended_at (lease, info->expires_at);
    gt_leases_lease_link (self, lease);
    uint64_t deadline = active ? s_mono_for_wall (self, info->expires_at)
                               : s_mono_for_wall (self, info->expires_at + self->retention_ms);
    gt_wheel_arm (self->lease_wheel, &lease->timer, deadline);
    if (active)
        self->stats.active_leases++;
    else
        self->stats.retained_leases++;
    return GT_OK;
}

void
gt_leases_restore_object (gt_leases_t *self, const char *object_id, uint64_t fence,
                          uint64_t pending_at, gt_reason_t reason, const char *last_lease_id)
{
    assert (self);
    assert (object_id);
    if (fence > self->stats.last_fence)
        self->stats.last_fence = fence;
    s_object_t *object = gt_leases_object_find (self, object_id);
    if (!pending_at || (object && object->active > 0)) {
        //  Only its fence matters: never hand it out again
        if (object && fence > object->fence)
            object->fence = fence;
        else
        if (!object && fence >= self->fence_floor)
            self->fence_floor = fence + 1;
        return;
    }
    object = gt_leases_object_acquire (self, object_id);
    if (fence > object->fence)
        object->fence = fence;
    s_pending_t *pending = (s_pending_t *) zmalloc (sizeof (s_pending_t));
    assert (pending);
    gt_timer_init (&pending->timer);
    pending->object = object;
    pending->reason = reason;
    pending->at = pending_at;
    uint8_t id [16];
    gt_lease_t *last = last_lease_id && gt_leases_id_parse (last_lease_id, id) ? gt_leases_lease_find (self, id) : NULL;
    if (last) {
        gt_lease_info_t info;
        gt_leases_info (self, last, &info);
        gt_lease_info_copy (&pending->last, &info);
    }
    else {
        //  The last lease is gone: report what we still know
        gt_lease_info_t info;
        memset (&info, 0, sizeof (info));
        if (last_lease_id && strlen (last_lease_id) == GT_LEASE_ID_LEN)
            memcpy (info.id, last_lease_id, GT_LEASE_ID_LEN + 1);
        info.object_id = (char *) object_id;
        info.service_id = (char *) "";
        info.state = reason == GT_REASON_RELEASED ? GT_STATE_RELEASED : GT_STATE_EXPIRED;
        info.fence = object->fence;
        gt_lease_info_copy (&pending->last, &info);
    }
    gt_leases_object_ext (object)->pending = pending;
    object->refs++;
    self->stats.pending_reclaims++;
    gt_wheel_arm (self->object_wheel, &pending->timer, s_mono_for_wall (self, pending_at));
}

void
gt_leases_restore_fence_floor (gt_leases_t *self, uint64_t floor)
{
    assert (self);
    if (floor > self->fence_floor)
        self->fence_floor = floor;
}

