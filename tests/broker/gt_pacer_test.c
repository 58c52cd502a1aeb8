/*  gt_pacer_test.c — selftest of gt_pacer (the token bucket), kept out of
    the production library.  */
#include <czmq.h>
#include "gt_pacer.h"
#include "gt_broker_selftest.h"

void
gt_pacer_test (bool verbose)
{
    if (verbose)
        printf (" * gt_pacer: ");
    //  A fake clock (ms) drives the bucket
    int64_t now = 1000;
    gt_pacer_t *pacer = gt_pacer_new (50000, 5000, now);
    assert (gt_pacer_available (pacer, now) == 5000);      //  starts full
    gt_pacer_spend (pacer, 5000);
    assert (gt_pacer_available (pacer, now) == 0);
    assert (gt_pacer_wait (pacer, now) == 1);               //  50 per ms
    now += 1;
    assert (gt_pacer_available (pacer, now) == 50);
    gt_pacer_spend (pacer, 20);
    now += 10;
    assert (gt_pacer_available (pacer, now) == 530);
    assert (gt_pacer_available (pacer, now - 5) == 530);    //  the clock never goes back
    now += 1000000;                                         //  a long pause: full, no overflow
    assert (gt_pacer_available (pacer, now) == 5000);
    gt_pacer_destroy (&pacer);
    assert (pacer == NULL);

    //  Slow rates: fractions of a token accumulate
    pacer = gt_pacer_new (3, 1, now);
    gt_pacer_spend (pacer, 1);
    assert (gt_pacer_wait (pacer, now) == 334);             //  ceil (1000 / 3)
    now += 333;
    assert (gt_pacer_available (pacer, now) == 0);
    assert (gt_pacer_wait (pacer, now) == 1);
    now += 1;
    assert (gt_pacer_available (pacer, now) == 1);
    now += 100000;
    assert (gt_pacer_available (pacer, now) == 1);          //  burst 1
    gt_pacer_destroy (&pacer);

    //  Over a simulated second, never more than rate + burst
    pacer = gt_pacer_new (50000, 5000, 0);
    uint64_t total = 0;
    for (int64_t ms = 0; ms <= 1000; ms++) {
        uint64_t take = gt_pacer_available (pacer, ms);
        if (take > 10000)
            take = 10000;
        gt_pacer_spend (pacer, take);
        total += take;
    }
    assert (total == 50000 + 5000);
    gt_pacer_destroy (&pacer);
    if (verbose)
        printf ("OK\n");
}
