/*  gt_shard_map.c — who owns which shard; the contract is in gt_shard_map.h.  */

#include "gt_shard_map.h"

typedef struct {
    char *broker_id;                //  GC_BROKER_ID
    char *endpoint;                 //  advertised request endpoint
    char *events_endpoint;          //  advertised events endpoint
} s_broker_t;

struct gt_shard_map_t {
    uint64_t map_version;           //  grows with every change of owner
    bool cluster;                   //  the database runs in cluster mode
    s_broker_t *brokers;            //  the live brokers, in the order added
    size_t count;                   //  brokers used
    size_t capacity;                //  brokers allocated
    int16_t owner [GT_SHARD_COUNT]; //  index into brokers of each shard's owner, -1: none
    uint64_t epoch [GT_SHARD_COUNT];    //  the epoch each shard is held at (0: not known)
};

static char *
s_copy (const char *text)
{
    char *copy = strdup (text? text: "");
    assert (copy);
    return copy;
}

gt_shard_map_t *
gt_shard_map_new (uint64_t map_version, bool cluster)
{
    gt_shard_map_t *self = (gt_shard_map_t *) zmalloc (sizeof (gt_shard_map_t));
    assert (self);
    self->map_version = map_version;
    self->cluster = cluster;
    for (unsigned shard = 0; shard < GT_SHARD_COUNT; shard++)
        self->owner [shard] = -1;
    return self;
}

void
gt_shard_map_destroy (gt_shard_map_t **self_p)
{
    assert (self_p);
    gt_shard_map_t *self = *self_p;
    if (self) {
        for (size_t index = 0; index < self->count; index++) {
            free (self->brokers [index].broker_id);
            free (self->brokers [index].endpoint);
            free (self->brokers [index].events_endpoint);
        }
        free (self->brokers);
        free (self);
        *self_p = NULL;
    }
}

gt_shard_map_t *
gt_shard_map_dup (const gt_shard_map_t *self)
{
    assert (self);
    gt_shard_map_t *copy = gt_shard_map_new (self->map_version, self->cluster);
    for (size_t index = 0; index < self->count; index++)
        gt_shard_map_add_broker (copy, self->brokers [index].broker_id, self->brokers [index].endpoint,
                                 self->brokers [index].events_endpoint);
    memcpy (copy->owner, self->owner, sizeof copy->owner);
    memcpy (copy->epoch, self->epoch, sizeof copy->epoch);
    return copy;
}

bool
gt_shard_map_equal (const gt_shard_map_t *self, const gt_shard_map_t *other)
{
    assert (self && other);
    if (self->map_version != other->map_version || self->cluster != other->cluster
    ||  self->count != other->count || memcmp (self->owner, other->owner, sizeof self->owner) != 0
    ||  memcmp (self->epoch, other->epoch, sizeof self->epoch) != 0)
        return false;
    for (size_t index = 0; index < self->count; index++)
        if (!streq (self->brokers [index].broker_id, other->brokers [index].broker_id)
        ||  !streq (self->brokers [index].endpoint, other->brokers [index].endpoint)
        ||  !streq (self->brokers [index].events_endpoint, other->brokers [index].events_endpoint))
            return false;
    return true;
}

size_t
gt_shard_map_add_broker (gt_shard_map_t *self, const char *broker_id,
                         const char *endpoint, const char *events_endpoint)
{
    assert (self);
    assert (broker_id);
    if (self->count == self->capacity) {
        self->capacity = self->capacity? self->capacity * 2: 4;
        self->brokers = (s_broker_t *) realloc (self->brokers, self->capacity * sizeof (s_broker_t));
        assert (self->brokers);
    }
    s_broker_t *broker = &self->brokers [self->count];
    broker->broker_id = s_copy (broker_id);
    broker->endpoint = s_copy (endpoint);
    broker->events_endpoint = s_copy (events_endpoint);
    return self->count++;
}

void
gt_shard_map_assign (gt_shard_map_t *self, size_t broker, unsigned shard)
{
    assert (self);
    assert (broker < self->count && broker <= INT16_MAX);
    assert (shard < GT_SHARD_COUNT);
    self->owner [shard] = (int16_t) broker;
}

uint64_t
gt_shard_map_version (const gt_shard_map_t *self)
{
    assert (self);
    return self->map_version;
}

bool
gt_shard_map_cluster (const gt_shard_map_t *self)
{
    assert (self);
    return self->cluster;
}

size_t
gt_shard_map_brokers (const gt_shard_map_t *self)
{
    assert (self);
    return self->count;
}

const char *
gt_shard_map_broker_id (const gt_shard_map_t *self, size_t broker)
{
    assert (self && broker < self->count);
    return self->brokers [broker].broker_id;
}

const char *
gt_shard_map_endpoint (const gt_shard_map_t *self, size_t broker)
{
    assert (self && broker < self->count);
    return self->brokers [broker].endpoint;
}

const char *
gt_shard_map_events_endpoint (const gt_shard_map_t *self, size_t broker)
{
    assert (self && broker < self->count);
    return self->brokers [broker].events_endpoint;
}

int
gt_shard_map_owner (const gt_shard_map_t *self, unsigned shard)
{
    assert (self);
    assert (shard < GT_SHARD_COUNT);
    return self->owner [shard];
}

void
gt_shard_map_set_epoch (gt_shard_map_t *self, unsigned shard, uint64_t epoch)
{
    assert (self);
    assert (shard < GT_SHARD_COUNT);
    self->epoch [shard] = epoch;
}

uint64_t
gt_shard_map_epoch (const gt_shard_map_t *self, unsigned shard)
{
    assert (self);
    assert (shard < GT_SHARD_COUNT);
    return self->epoch [shard];
}
