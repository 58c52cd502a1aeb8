/*  gt_store_test.c — selftest of the store seam and the memory store, and
    of how the seam passes ops on (a store of the test's own that counts
    what reaches it).  */
#include <czmq.h>
#include "gt_store.h"
#include "gt_broker_selftest.h"

typedef struct {
    size_t records;                 //  lease/object/event/outbox calls that reached it
    size_t flushes;                 //  flushes
    int last_argc;                  //  words of the last control
    char last_word [32];            //  its first word
    bool destroyed;                 //  destroy ran
} s_counting_t;

static void
s_counting_destroy (void *impl)
{
    ((s_counting_t *) impl)->destroyed = true;
}

static void
s_counting_lease_delete (void *impl, const char *lease_id, unsigned shard)
{
    (void) shard;
    (void) lease_id;
    ((s_counting_t *) impl)->records++;
}

static void
s_counting_callback_delete (void *impl, uint64_t job_id, unsigned shard)
{
    (void) shard;
    (void) job_id;
    ((s_counting_t *) impl)->records++;
}

static gt_store_status_t
s_counting_flush (void *impl, uint64_t batch)
{
    (void) batch;
    ((s_counting_t *) impl)->flushes++;
    return GT_STORE_DONE;
}

static int
s_counting_control (void *impl, int argc, const char *argv [])
{
    s_counting_t *counting = (s_counting_t *) impl;
    counting->last_argc = argc;
    snprintf (counting->last_word, sizeof (counting->last_word), "%s", argc > 0 ? argv [0] : "");
    if (argc == 1 && streq (argv [0], "ANSWER"))
        return 42;
    return argc == 1 && streq (argv [0], "OK") ? 0 : -7;
}

void
gt_store_test (bool verbose)
{
    (void) verbose;
    char err [256];

    //  Memory store: synchronous, wants no records
    gt_store_t *store = gt_store_memory_new ();
    assert (streq (gt_store_name (store), "memory"));
    assert (!gt_store_records (store));
    assert (!gt_store_async (store));
    assert (gt_store_healthy (store));
    assert (gt_store_flush (store, 1) == GT_STORE_DONE);
    assert (gt_store_completion_sock (store) == NULL);
    uint64_t batch = 0;
    bool durable = false;
    assert (gt_store_completion (store, &batch, &durable) == -1);
    gt_store_loader_t nothing = { NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL };
    assert (gt_store_recover (store, &nothing, err, sizeof (err)) == 0);
    gt_store_figures_t figures;
    gt_store_figures (store, &figures);
    assert (figures.batch_size.count == 0 && figures.commit_us.count == 0);
    //  It takes no commands and cannot be handed over
    const char *words [] = { "FAIL", "1" };
    assert (gt_store_control (store, 2, words) == -1);
    assert (!gt_store_detachable (store));
    gt_store_destroy (&store);
    assert (store == NULL);

    //  The memory store keeps no outbox
    store = gt_store_memory_new ();
    assert (!gt_store_outbox (store));
    gt_store_callback_t row = { 7, "0123456789abcdef0123456789abcdef", "http://127.0.0.1:9/x", "{}",
                                3, 100, 0, GT_CLEANUP_PENDING, 0, "", 0 };
    gt_store_callback_put (store, &row);        //  ignored
    gt_store_destroy (&store);

    //  A store of one's own: the ops present are called, the others skipped
    s_counting_t counting;
    memset (&counting, 0, sizeof (counting));
    gt_store_ops_t ops = {
        .name = "counting",
        .destroy = s_counting_destroy,
        .lease_delete = s_counting_lease_delete,
        .callback_delete = s_counting_callback_delete,
        .flush = s_counting_flush,
        .control = s_counting_control,
        .detachable = true,
    };
    store = gt_store_new (&ops, &counting);
    assert (streq (gt_store_name (store), "counting"));
    assert (gt_store_records (store) && !gt_store_async (store));
    assert (!gt_store_outbox (store));           //  callback_put absent
    gt_store_lease_delete (store, row.lease_id, 0);
    gt_store_object_delete (store, "object-1", 3);      //  no op: skipped
    gt_store_callback_delete (store, 7, 0);
    assert (counting.records == 2);
    assert (gt_store_flush (store, 1) == GT_STORE_DONE && counting.flushes == 1);
    //  Commands reach the store with their words; a refusal is -1
    const char *answer [] = { "ANSWER" };
    assert (gt_store_control (store, 1, answer) == 42);
    const char *ok [] = { "OK" };
    assert (gt_store_control (store, 1, ok) == 0);
    assert (gt_store_control (store, 2, words) == -1);
    assert (counting.last_argc == 2 && streq (counting.last_word, "FAIL"));
    assert (gt_store_control (store, 0, NULL) == -1 && counting.last_argc == 0);
    assert (gt_store_detachable (store));
    gt_store_destroy (&store);
    assert (store == NULL && counting.destroyed);
}
