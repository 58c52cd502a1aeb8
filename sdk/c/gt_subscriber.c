#include "garbagetruck.h"
void gt_subscriber_test (bool verbose) { (void) verbose; }
