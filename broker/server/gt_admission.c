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

//  --------------------------------------------------------------------------
//  Self test: the decisions on a bare broker state, with a healthy store
//  (memory) and one that cannot write (the loop itself is exercised by
//  tests/test_pgstore.c)

static gt_store_status_t
s_down_flush (void *impl, uint64_t batch)
{
    (void) impl;
    (void) batch;
    return GT_STORE_FAILED;
}

static bool
s_down_healthy (void *impl)
{
    (void) impl;
    return false;
}

void
gt_admission_test (bool verbose)
{
    if (verbose)
        printf (" * gt_admission: ");
    gt_config_t *config = gt_config_new ();
    config->recovery_expiry_rate = 1000;
    gt_store_t *store = gt_store_memory_new ();
    gt_admission_t *self = gt_admission_new (config, store);
    char err [256];

    //  A healthy store: nothing refused
    assert (!gt_admission_refuses (self, GT_CMD_CREATE, err, sizeof (err)));
    assert (gt_admission_requests_per_turn (self) == GT_BROKER_REQUESTS_PER_TURN);
    config->db_group_commit = 0;
    gt_admission_t *one_by_one = gt_admission_new (config, store);
    assert (gt_admission_requests_per_turn (one_by_one) == 1);
    gt_admission_destroy (&one_by_one);

    //  Catch-up: at most the burst (a tenth of the rate), then the rate
    //  (a fake clock in ms)
    int64_t now = 5000;
    assert (gt_admission_timer_budget (self, now) == 100);
    gt_admission_timers_ran (self, 100, true);
    assert (gt_admission_catching_up (self));
    assert (gt_admission_timer_budget (self, now) == 0);
    assert (gt_admission_timer_timeout (self, 0, now) == 1);   //  one token per ms
    assert (gt_admission_timer_timeout (self, 7, now) == 7);
    now += 20;
    assert (gt_admission_timer_budget (self, now) == 20);
    gt_admission_timers_ran (self, 3, false);                  //  nothing left due: caught up
    assert (!gt_admission_catching_up (self));
    assert (gt_admission_timer_budget (self, now) == GT_BROKER_TIMERS_PER_TURN);
    assert (gt_admission_timer_timeout (self, 0, now) == 0);
    assert (gt_admission_timer_timeout (self, -1, now) == -1);
    gt_store_destroy (&store);

    //  A store that cannot write: mutations refused, reads not, no timers
    gt_store_ops_t ops = { .name = "down", .flush = s_down_flush, .healthy = s_down_healthy };
    store = gt_store_new (&ops, NULL);
    gt_admission_set_store (self, store);
    gt_cmd_t mutations [] = { GT_CMD_CREATE, GT_CMD_RENEW, GT_CMD_RELEASE, GT_CMD_RENEW_BATCH, GT_CMD_RETRY };
    for (size_t index = 0; index < sizeof (mutations) / sizeof (mutations [0]); index++)
        assert (gt_admission_refuses (self, mutations [index], err, sizeof (err)));
    assert (strstr (err, "down store cannot write"));
    gt_cmd_t reads [] = { GT_CMD_GET, GT_CMD_LIST, GT_CMD_HEALTH, GT_CMD_STATS, GT_CMD_REPLAY };
    for (size_t index = 0; index < sizeof (reads) / sizeof (reads [0]); index++)
        assert (!gt_admission_refuses (self, reads [index], err, sizeof (err)));
    assert (gt_admission_timer_budget (self, now) == 0);
    assert (gt_admission_timer_timeout (self, 0, now) == -1);
    gt_store_destroy (&store);
    gt_admission_destroy (&self);
    assert (self == NULL);
    gt_config_destroy (&config);
    if (verbose)
        printf ("OK\n");
}
