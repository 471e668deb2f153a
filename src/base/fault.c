/*
 * Fault injection (include/smpmem/fault.h), compiled only with
 * -DSMP_FAULT_INJECT.  Each kind counts the calls of its fault points since
 * it was armed; calls nth .. nth + times - 1 fail (times 0: all from nth).
 *
 * Locks: none; the counters are relaxed atomics (a fault point may be
 * reached on any CPU, under the zone lock or not).  Arming is configuration:
 * done while no other CPU is inside smpmem.
 */
#include "fault.h"

#ifdef SMP_FAULT_INJECT
#include <stdatomic.h>

static struct {
    atomic_ulong calls, failed;
    unsigned long nth, times;     /* nth 0: disarmed */
} kinds[SMP_FAULT_KINDS];

void smp_fault_arm(enum smp_fault kind, unsigned long nth, unsigned long times)
{
    atomic_store_explicit(&kinds[kind].calls, 0, memory_order_relaxed);
    atomic_store_explicit(&kinds[kind].failed, 0, memory_order_relaxed);
    kinds[kind].nth = nth;
    kinds[kind].times = times;
}

void smp_fault_disarm(enum smp_fault kind)
{
    kinds[kind].nth = 0;
}

unsigned long smp_fault_calls(enum smp_fault kind)
{
    return atomic_load_explicit(&kinds[kind].calls, memory_order_relaxed);
}

unsigned long smp_fault_failed(enum smp_fault kind)
{
    return atomic_load_explicit(&kinds[kind].failed, memory_order_relaxed);
}

int smp_fault_point(enum smp_fault kind)
{
    unsigned long n = atomic_fetch_add_explicit(&kinds[kind].calls, 1, memory_order_relaxed) + 1;
    unsigned long nth = kinds[kind].nth, times = kinds[kind].times;
    if (!nth || n < nth || (times && n >= nth + times))
        return 0;
    atomic_fetch_add_explicit(&kinds[kind].failed, 1, memory_order_relaxed);
    return 1;
}
#else
typedef int smp_fault_unused;   /* ISO C wants a declaration in every file */
#endif
