/*  gt_client.h — placeholder until the C SDK lands.  */
#ifndef GT_CLIENT_H_INCLUDED
#define GT_CLIENT_H_INCLUDED
#include <stdbool.h>
void gt_client_test (bool verbose);
#endif
