#include "garbagetruck.h"
void gt_client_test (bool verbose) { (void) verbose; }
