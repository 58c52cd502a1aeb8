#include "garbagetruck.h"
void gt_keepalive_test (bool verbose) { (void) verbose; }
