/*  gt_wheel_private.h — what gt_wheel's selftest (tests/broker) reads
    beyond gt_wheel.h.  Not installed, not for the broker.

    The geometry (gt_wheel.h: five levels of 64 slots), so that the test
    can aim at level boundaries, and a count of slot drains (cascades and
    expiries of a whole slot), so that it can prove that gt_wheel_advance
    crosses an idle gap in a few drains instead of one per millisecond.  */
#ifndef GT_WHEEL_PRIVATE_H_INCLUDED
#define GT_WHEEL_PRIVATE_H_INCLUDED

#include "gt_wheel.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GT_WHEEL_LEVEL_BITS     6       //  bits per level: 64 slots
#define GT_WHEEL_LEVELS         5       //  levels

//  Slots drained since the wheel was created.
size_t gt_wheel_drains (gt_wheel_t *self);

#ifdef __cplusplus
}
#endif
#endif
