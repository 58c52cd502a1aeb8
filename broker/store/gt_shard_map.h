/*  gt_shard_map.h — who owns which shard: the answer to MAP (GTLP.md §14.2).

    A value object: built by whoever reads the ownership (the PostgreSQL
    store's ownership thread, from gt_shards and gt_brokers; the broker
    itself for a store without ownership), then only read.  It lists the
    live brokers in the order added (the builder adds them by broker_id),
    each with its endpoints and the shards it owns; a shard no broker
    owns has no owner in the map.  A shard is owned by at most one broker
    of the map (assigning it again moves it).

    map_version grows whenever a shard changes owner (the PostgreSQL store
    uses the sum of the shards' epochs; a single broker without a database
    has version 0).  cluster says whether the database runs in cluster
    mode (GTLP.md §14.1).  */
#ifndef GT_SHARD_MAP_H_INCLUDED
#define GT_SHARD_MAP_H_INCLUDED

#include <czmq.h>
#include "gt_proto.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gt_shard_map_t gt_shard_map_t;

//  An empty map (no broker, no owner).
gt_shard_map_t *gt_shard_map_new (uint64_t map_version, bool cluster);
//  Destroy; nulls the pointer.
void gt_shard_map_destroy (gt_shard_map_t **self_p);
//  A copy.
gt_shard_map_t *gt_shard_map_dup (const gt_shard_map_t *self);
//  True when both say the same (version, mode, brokers, owners).
bool gt_shard_map_equal (const gt_shard_map_t *self, const gt_shard_map_t *other);

//  Add a broker (strings copied; NULL endpoints as ""); returns its index.
size_t gt_shard_map_add_broker (gt_shard_map_t *self, const char *broker_id,
                                const char *endpoint, const char *events_endpoint);
//  Make broker (an index) the owner of shard.
void gt_shard_map_assign (gt_shard_map_t *self, size_t broker, unsigned shard);

uint64_t gt_shard_map_version (const gt_shard_map_t *self);
bool gt_shard_map_cluster (const gt_shard_map_t *self);
//  Number of brokers, and each one's fields (index < that number).
size_t gt_shard_map_brokers (const gt_shard_map_t *self);
const char *gt_shard_map_broker_id (const gt_shard_map_t *self, size_t broker);
const char *gt_shard_map_endpoint (const gt_shard_map_t *self, size_t broker);
const char *gt_shard_map_events_endpoint (const gt_shard_map_t *self, size_t broker);
//  The index of shard's owner, or -1 when it has none.
int gt_shard_map_owner (const gt_shard_map_t *self, unsigned shard);
//  The epoch its owner holds shard at (0: not known, or no owner).
void gt_shard_map_set_epoch (gt_shard_map_t *self, unsigned shard, uint64_t epoch);
uint64_t gt_shard_map_epoch (const gt_shard_map_t *self, unsigned shard);

#ifdef __cplusplus
}
#endif
#endif
