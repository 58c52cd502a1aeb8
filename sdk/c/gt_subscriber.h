/*  gt_subscriber.h — placeholder until the C SDK lands.  */
#ifndef GT_SUBSCRIBER_H_INCLUDED
#define GT_SUBSCRIBER_H_INCLUDED
#include <stdbool.h>
void gt_subscriber_test (bool verbose);
#endif
