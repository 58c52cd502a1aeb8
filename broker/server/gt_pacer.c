/*  gt_pacer.c — token bucket; the contract is in gt_pacer.h.

    Credit is kept in thousandths of a token, so that a rate below 1000 per
    second still adds credit every millisecond without floating point.  */
#include <czmq.h>
#include "gt_pacer.h"

struct gt_pacer_t {
    uint64_t rate;                  //  tokens per second = thousandths per ms
    uint64_t cap;                   //  burst, in thousandths
    uint64_t credit;                //  available, in thousandths
    int64_t now;                    //  clock of the last refill (ms)
};

gt_pacer_t *
gt_pacer_new (uint64_t rate, uint64_t burst, int64_t now_ms)
{
    assert (rate >= 1 && burst >= 1);
    assert (burst <= UINT64_MAX / 1000 && rate <= UINT64_MAX / 1000);
    gt_pacer_t *self = (gt_pacer_t *) zmalloc (sizeof (gt_pacer_t));
    assert (self);
    self->rate = rate;
    self->cap = burst * 1000;
    self->credit = self->cap;
    self->now = now_ms;
    return self;
}

void
gt_pacer_destroy (gt_pacer_t **self_p)
{
    assert (self_p);
    free (*self_p);
    *self_p = NULL;
}

static void
s_refill (gt_pacer_t *self, int64_t now_ms)
{
    if (now_ms <= self->now)
        return;
    uint64_t elapsed = (uint64_t) (now_ms - self->now);
    self->now = now_ms;
    uint64_t room = self->cap - self->credit;
    //  elapsed * rate may overflow after a long pause: the bucket is full anyway
    if (elapsed >= room / self->rate + 1)
        self->credit = self->cap;
    else
        self->credit += elapsed * self->rate;
}

uint64_t
gt_pacer_available (gt_pacer_t *self, int64_t now_ms)
{
    assert (self);
    s_refill (self, now_ms);
    return self->credit / 1000;
}

void
gt_pacer_spend (gt_pacer_t *self, uint64_t count)
{
    assert (self);
    assert (count <= self->credit / 1000);
    self->credit -= count * 1000;
}

int64_t
gt_pacer_wait (gt_pacer_t *self, int64_t now_ms)
{
    assert (self);
    s_refill (self, now_ms);
    if (self->credit >= 1000)
        return 0;
    uint64_t missing = 1000 - self->credit;
    return (int64_t) ((missing + self->rate - 1) / self->rate);
}
