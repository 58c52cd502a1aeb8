#include "gt_wheel.h"
void gt_wheel_test (bool verbose) { (void) verbose; }
