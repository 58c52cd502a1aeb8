#include "gt_proto.h"
void gt_proto_test (bool verbose) { (void) verbose; }
