#include "suite.h"
int suite_bcache(void) { return 0; }
