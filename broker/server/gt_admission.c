/*  gt_admission.c — refusal, timer pacing and the turn size; the contract
    is in gt_admission.h.  */
#include <czmq.h>
#include "gt_broker.h"
#include "gt_pacer.h"
#include "gt_admission.h"
#include "gt_log.h"

struct gt_admission_t {
    gt_store_t *store;              //  borrowed; NULL if none
    uint64_t recovery_expiry_rate;  //  GC_RECOVERY_EXPIRY_RATE
    bool group_commit;              //  GC_DB_GROUP_COMMIT
    gt_pacer_t *catchup;            //  paces due timers after the start, NULL before and after
    bool caught_up;                 //  the catch-up is over
    uint64_t catchup_fired;         //  timers run during the catch-up
    int64_t catchup_started;        //  zclock_mono when it began
};

gt_admission_t *
gt_admission_new (const gt_config_t *config, gt_store_t *store)
{
    assert (config);
    gt_admission_t *self = (gt_admission_t *) zmalloc (sizeof (gt_admission_t));
    assert (self);
    self->store = store;
    self->recovery_expiry_rate = config->recovery_expiry_rate;
    self->group_commit = config->db_group_commit != 0;
    return self;
}

void
gt_admission_destroy (gt_admission_t **self_p)
{
    assert (self_p);
    gt_admission_t *self = *self_p;
    if (self) {
        gt_pacer_destroy (&self->catchup);
        free (self);
        *self_p = NULL;
    }
}

void
gt_admission_set_store (gt_admission_t *self, gt_store_t *store)
{
    assert (self);
    self->store = store;
}

bool
gt_admission_catching_up (gt_admission_t *self)
{
    assert (self);
    return self->catchup != NULL;
}

bool
gt_admission_refuses (gt_admission_t *self, gt_cmd_t cmd, char *err, size_t err_size)
{
    bool mutates = cmd == GT_CMD_CREATE || cmd == GT_CMD_RENEW || cmd == GT_CMD_RELEASE
                || cmd == GT_CMD_RENEW_BATCH || cmd == GT_CMD_RETRY;
    if (!mutates || !self->store || gt_store_healthy (self->store))
        return false;
    snprintf (err, err_size, "the %s store cannot write now (it is reconnecting): nothing was "
              "changed; retry later", gt_store_name (self->store));
    return true;
}

size_t
gt_admission_requests_per_turn (gt_admission_t *self)
{
    return self->group_commit ? GT_BROKER_REQUESTS_PER_TURN : 1;
}

//  The catch-up pacer, made at the first turn
static gt_pacer_t *
s_pacer (gt_admission_t *self, int64_t now)
{
    if (!self->catchup && !self->caught_up) {
        uint64_t rate = self->recovery_expiry_rate ? self->recovery_expiry_rate : 1;
        uint64_t burst = rate / 10;
        if (burst > GT_BROKER_TIMERS_PER_TURN)
            burst = GT_BROKER_TIMERS_PER_TURN;
        if (burst < 1)
            burst = 1;
        self->catchup = gt_pacer_new (rate, burst, now);
        self->catchup_started = zclock_mono ();
    }
    return self->catchup;
}

size_t
gt_admission_timer_budget (gt_admission_t *self, int64_t now)
{
    if (self->store && !gt_store_healthy (self->store))
        return 0;
    gt_pacer_t *pacer = s_pacer (self, now);
    if (!pacer)
        return GT_BROKER_TIMERS_PER_TURN;
    uint64_t available = gt_pacer_available (pacer, now);
    return available < GT_BROKER_TIMERS_PER_TURN ? (size_t) available : GT_BROKER_TIMERS_PER_TURN;
}

void
gt_admission_timers_ran (gt_admission_t *self, size_t ran, bool due)
{
    if (!self->catchup)
        return;
    gt_pacer_spend (self->catchup, ran);
    self->catchup_fired += ran;
    if (!due && (!self->store || gt_store_healthy (self->store))) {
        //  Nothing overdue any more: from now on timers run as they fall due
        gt_pacer_destroy (&self->catchup);
        self->caught_up = true;
        if (self->catchup_fired > 0)
            gt_log_info ("broker", "caught up after the start: %" PRIu64 " due timers (expiries, purges, "
                         "reclaims) ran in %" PRId64 " ms", self->catchup_fired,
                         zclock_mono () - self->catchup_started);
    }
}

int64_t
gt_admission_timer_timeout (gt_admission_t *self, int64_t wheel_timeout, int64_t now)
{
    if (self->store && !gt_store_healthy (self->store))
        return -1;                  //  the store's reconnect notice wakes us
    if (wheel_timeout == 0 && self->catchup)
        return gt_pacer_wait (self->catchup, now);
    return wheel_timeout;
}
