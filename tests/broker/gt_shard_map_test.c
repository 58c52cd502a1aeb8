/*  gt_shard_map_test.c — selftest of the shard map value object.  */
#include <czmq.h>
#include "gt_shard_map.h"
#include "gt_broker_selftest.h"

void
gt_shard_map_test (bool verbose)
{
    printf (" * gt_shard_map: ");
    if (verbose)
        printf ("\n");

    //  Empty: no broker, no owner
    gt_shard_map_t *map = gt_shard_map_new (514, true);
    assert (gt_shard_map_version (map) == 514 && gt_shard_map_cluster (map));
    assert (gt_shard_map_brokers (map) == 0);
    for (unsigned shard = 0; shard < GT_SHARD_COUNT; shard++)
        assert (gt_shard_map_owner (map, shard) == -1);

    //  Brokers in the order added; NULL endpoints read as ""
    assert (gt_shard_map_add_broker (map, "broker-a", "tcp://10.0.0.1:50051", "tcp://10.0.0.1:50052") == 0);
    assert (gt_shard_map_add_broker (map, "broker-b", NULL, NULL) == 1);
    for (size_t index = 2; index < 9; index++) {
        char name [16];
        snprintf (name, sizeof name, "broker-%zu", index);
        assert (gt_shard_map_add_broker (map, name, "", "") == index);   //  grows past 4
    }
    assert (gt_shard_map_brokers (map) == 9);
    assert (streq (gt_shard_map_broker_id (map, 0), "broker-a"));
    assert (streq (gt_shard_map_endpoint (map, 0), "tcp://10.0.0.1:50051"));
    assert (streq (gt_shard_map_events_endpoint (map, 0), "tcp://10.0.0.1:50052"));
    assert (streq (gt_shard_map_endpoint (map, 1), "") && streq (gt_shard_map_events_endpoint (map, 1), ""));
    assert (streq (gt_shard_map_broker_id (map, 8), "broker-8"));

    //  One owner per shard: assigning again moves it
    gt_shard_map_assign (map, 0, 0);
    gt_shard_map_assign (map, 0, 255);
    gt_shard_map_assign (map, 1, 7);
    gt_shard_map_assign (map, 0, 7);
    assert (gt_shard_map_owner (map, 0) == 0 && gt_shard_map_owner (map, 255) == 0);
    assert (gt_shard_map_owner (map, 7) == 0 && gt_shard_map_owner (map, 8) == -1);

    //  Epochs: 0 until set
    assert (gt_shard_map_epoch (map, 7) == 0);
    gt_shard_map_set_epoch (map, 7, 70000);
    assert (gt_shard_map_epoch (map, 7) == 70000 && gt_shard_map_epoch (map, 8) == 0);

    //  A copy is equal; any difference makes it unequal
    gt_shard_map_t *copy = gt_shard_map_dup (map);
    assert (gt_shard_map_epoch (copy, 7) == 70000);
    gt_shard_map_set_epoch (copy, 7, 70001);
    assert (!gt_shard_map_equal (map, copy));
    gt_shard_map_destroy (&copy);
    copy = gt_shard_map_dup (map);
    assert (gt_shard_map_equal (map, copy) && gt_shard_map_equal (copy, map));
    gt_shard_map_assign (copy, 1, 7);
    assert (!gt_shard_map_equal (map, copy));
    gt_shard_map_destroy (&copy);
    assert (copy == NULL);
    copy = gt_shard_map_dup (map);
    gt_shard_map_add_broker (copy, "broker-z", "", "");
    assert (!gt_shard_map_equal (map, copy));
    gt_shard_map_destroy (&copy);
    gt_shard_map_t *other = gt_shard_map_new (515, true);
    gt_shard_map_t *again = gt_shard_map_new (514, true);
    gt_shard_map_t *single = gt_shard_map_new (514, false);
    assert (!gt_shard_map_equal (other, again) && !gt_shard_map_equal (single, again));
    gt_shard_map_add_broker (again, "broker-a", "tcp://10.0.0.1:50051", "tcp://other:1");
    gt_shard_map_t *first = gt_shard_map_new (514, true);
    gt_shard_map_add_broker (first, "broker-a", "tcp://10.0.0.1:50051", "tcp://10.0.0.1:50052");
    assert (!gt_shard_map_equal (first, again));          //  the events endpoint differs
    gt_shard_map_destroy (&first);
    gt_shard_map_destroy (&other);
    gt_shard_map_destroy (&again);
    gt_shard_map_destroy (&single);
    gt_shard_map_destroy (&map);
    assert (map == NULL);
    gt_shard_map_destroy (&map);                            //  NULL is fine
    printf ("OK\n");
}
