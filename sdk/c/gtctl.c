#include "garbagetruck.h"
int main (void) { return 0; }
