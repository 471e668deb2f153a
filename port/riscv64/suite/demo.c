/* make qemu: placeholder until the demo lands. */
#include "suite.h"
int demo_main(void) { kprintf("demo\n"); return 0; }
