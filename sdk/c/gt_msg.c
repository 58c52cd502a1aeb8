#include "gt_msg.h"
void gt_msg_test (bool verbose) { (void) verbose; }
