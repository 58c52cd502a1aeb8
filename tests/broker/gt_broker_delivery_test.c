/*  gt_broker_delivery_test.c — selftest of gt_broker_delivery (the
    broker's side of cleanup callbacks), kept out of the production
    library: the parts that need no broker (the integration tests in
    tests/test_delivery.c drive the rest over the wire).

    Beyond gt_broker_delivery.h it reads gt_broker_delivery_private.h (not
    installed): the settings taken from config, the engine started on
    first use, and the indexes of the records by job id and by lease id.  */
#include <czmq.h>
#include "gt_config.h"
#include "gt_broker_delivery.h"
#include "gt_broker_delivery_private.h"
#include "gt_broker_selftest.h"

//  --------------------------------------------------------------------------
//  Selftest

void
gt_broker_delivery_test (bool verbose)
{
    if (verbose)
        printf (" * gt_broker_delivery: ");
    gt_config_t *config = gt_config_new ();
    config->cleanup_timeout_ms = 250;
    config->callback_concurrency = 8;
    config->callback_per_host = 2;
    config->callback_max_pending = 10;
    gt_config_set_callback_secret (config, "s3cret");
    gt_broker_delivery_t *self = gt_broker_delivery_new (config);
    gt_config_destroy (&config);
    assert (self);
    assert (self->settings.timeout_ms == 250 && self->settings.max_concurrent == 8);
    assert (self->settings.max_per_host == 2 && self->settings.max_pending == 10);
    assert (self->settings.max_retries == 3 && self->settings.retry_delay_ms == 5000);
    assert (streq (self->settings.secret, "s3cret"));
    //  The engine starts only when needed
    assert (gt_broker_delivery_sock (self) == NULL);
    assert (gt_broker_delivery_engine (self) && gt_broker_delivery_sock (self) != NULL);
    gt_broker_delivery_counters_t counters;
    gt_broker_delivery_counters (self, &counters);
    assert (counters.pending == 0 && counters.delivered == 0);
    //  Records are found by job id
    s_callback_t *record = (s_callback_t *) zmalloc (sizeof (s_callback_t));
    assert (record);
    record->job_id = 1ULL << 40;
    strcpy (record->lease_id, "0123456789abcdef0123456789abcdef");
    record->url = strdup ("http://127.0.0.1:9/x");
    gt_broker_delivery_index (self, record);
    uint64_t key = 1ULL << 40;
    assert (zhashx_lookup (self->by_job, &key) == record);
    assert (zhashx_lookup (self->by_lease, "0123456789abcdef0123456789abcdef") == record);
    gt_broker_delivery_forget (self, record);
    assert (zhashx_size (self->by_job) == 0 && zhashx_size (self->by_lease) == 0);
    gt_broker_delivery_stop (self);
    assert (gt_broker_delivery_sock (self) == NULL && !gt_broker_delivery_engine (self));
    gt_broker_delivery_destroy (&self);
    assert (self == NULL);
    if (verbose)
        printf ("OK\n");
}
