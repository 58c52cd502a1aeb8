/*  gt_admission_test.c — selftest of gt_admission (refusal, pacing, turn size), kept out of the
    production library.  */
#include <czmq.h>
#include "gt_broker.h"
#include "gt_store.h"
#include "gt_admission.h"
#include "gt_broker_selftest.h"

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
