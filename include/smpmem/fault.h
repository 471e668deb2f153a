/*
 * Fault injection, TEST-ONLY: exists when the core is built with
 * -DSMP_FAULT_INJECT (make FAULT=1; make faults runs tests/test_faults.c
 * so).  A fault point is a place in the core that may fail for real (a
 * buddy allocation that finds nothing); armed, it fails on demand, so a
 * test can prove every such failure reaches the API as NULL or an error
 * code and leaves nothing leaked or inconsistent.  In other builds the
 * points compile to nothing (src/base/fault.h).
 *
 * Thread safety: the counters are atomic; arm and disarm while no other
 * CPU is inside smpmem.
 */
#ifndef SMPMEM_FAULT_H
#define SMPMEM_FAULT_H

enum smp_fault {
    SMP_FAULT_BUDDY,     /* smp_buddy_alloc_locked finds no block: every refill
                          * of a CPU cache, new slab and large block */
    SMP_FAULT_KINDS
};

#ifdef SMP_FAULT_INJECT
/* From now on, the nth call (1 = the next) of the kind's fault points fails,
 * and so do the times - 1 calls after it (times 0: every call from the nth
 * on).  Resets the kind's call count. */
void smp_fault_arm(enum smp_fault kind, unsigned long nth, unsigned long times);
/* Stop failing; counting goes on. */
void smp_fault_disarm(enum smp_fault kind);
/* Calls of the kind's fault points since the last arm, and how many failed. */
unsigned long smp_fault_calls(enum smp_fault kind);
unsigned long smp_fault_failed(enum smp_fault kind);
#endif

#endif
