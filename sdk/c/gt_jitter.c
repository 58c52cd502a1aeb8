/*  gt_jitter.c — jitter from a per-instance SplitMix64 generator seeded
    from getrandom(2).  The contract is in gt_jitter.h.  */
#include "gt_jitter.h"
#include <czmq.h>
#include <sys/random.h>

struct _gt_jitter_t {
    uint64_t state;                 //  SplitMix64 state: advances by a constant per draw
};

//  The next 64 bits: SplitMix64 (Steele, Lea and Flood, "Fast splittable
//  pseudorandom number generators", OOPSLA 2014): a Weyl sequence, each
//  term mixed by two xor-shift-multiply rounds.
static uint64_t
s_next (gt_jitter_t *self)
{
    uint64_t mixed = (self->state += 0x9e3779b97f4a7c15ULL);
    mixed = (mixed ^ (mixed >> 30)) * 0xbf58476d1ce4e5b9ULL;
    mixed = (mixed ^ (mixed >> 27)) * 0x94d049bb133111ebULL;
    return mixed ^ (mixed >> 31);
}

gt_jitter_t *
gt_jitter_new (void)
{
    gt_jitter_t *self = (gt_jitter_t *) zmalloc (sizeof (gt_jitter_t));
    assert (self);
    uint8_t *seed = (uint8_t *) &self->state;
    size_t filled = 0;
    while (filled < sizeof (self->state)) {
        ssize_t rc = getrandom (seed + filled, sizeof (self->state) - filled, 0);
        if (rc > 0)
            filled += (size_t) rc;
        else
        if (rc == -1 && errno == EINTR)
            continue;
        else
            break;
    }
    if (filled < sizeof (self->state)) {
        //  No getrandom (a kernel before 3.17, a seccomp filter): still
        //  different per instance and per process
        self->state ^= (uint64_t) zclock_usecs ()
                     ^ ((uint64_t) getpid () << 32)
                     ^ (uint64_t) (uintptr_t) self;
    }
    return self;
}

void
gt_jitter_destroy (gt_jitter_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        free (*self_p);
        *self_p = NULL;
    }
}

int64_t
gt_jitter_spread (gt_jitter_t *self, int64_t value, double fraction)
{
    assert (self);
    assert (fraction >= 0 && fraction <= 1);
    if (value <= 0)
        return value;
    //  In double, value * fraction may round above value: never past it
    double product = (double) value * fraction;
    int64_t spread = product >= (double) value? value: (int64_t) product;
    if (spread == 0)
        return value;
    //  The modulo favours some values by at most range / 2^64: nothing
    uint64_t range = 2 * (uint64_t) spread + 1;
    return value - spread + (int64_t) (s_next (self) % range);
}

int64_t
gt_jitter_share (gt_jitter_t *self, uint64_t whole, double share, double jitter)
{
    assert (share >= 0 && share <= 1);
    return gt_jitter_spread (self, (int64_t) ((double) whole * share + 0.5), jitter);
}
