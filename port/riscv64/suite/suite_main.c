/*
 * The suite the kernel runs after boot (bootarg "demo" runs demo.c instead):
 * every group on every hart, then one more mixed run on a live region with
 * the buffer cache, whose locks are printed in xv6's statslock format, and
 * the last line "N passed, N failed".  QEMU's exit code is 0 iff none failed.
 */
#include "suite.h"
#include <smpmem/bcache.h>
#include <smpmem/spinlock.h>

int suite_main(void)
{
    kprintf("smpmem suite: %d harts, scale %ld%%\n", NCPU, bootarg_num("scale", 100));
    suite_pages();
    suite_kalloc();
    suite_irq();
    suite_bcache();
    suite_lock_table();
    return suite_total() ? 1 : 0;
}
