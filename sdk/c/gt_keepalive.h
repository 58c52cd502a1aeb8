/*  gt_keepalive.h — placeholder until the C SDK lands.  */
#ifndef GT_KEEPALIVE_H_INCLUDED
#define GT_KEEPALIVE_H_INCLUDED
#include <stdbool.h>
void gt_keepalive_test (bool verbose);
#endif
