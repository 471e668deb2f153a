/* The riscv64 kernel's test suite: groups of TEST()s in the hosted tests'
 * style (tests/harness.h), run on every hart QEMU was given. */
#ifndef SMPMEM_RV_SUITE_H
#define SMPMEM_RV_SUITE_H

#include "../../../tests/harness.h"
#include "../../../tests/kalloc_util.h"
#include "../kernel/kernel.h"
#include <smpmem/port.h>

#define MiB (1UL << 20)
#define NCPU (boot.ncpu)

/* Bytes region_map can still give. */
size_t region_available(void);
/* Print the last line, "N passed, N failed"; returns the failures. */
int suite_total(void);

/* Test groups (each returns its failures). */
int suite_pages(void);
int suite_kalloc(void);
int suite_irq(void);
int suite_bcache(void);
/* A closing run of everything, then the lock table (xv6 format). */
void suite_lock_table(void);

/* A region of `bytes` handed to smp_pmm_init for NCPU CPUs; torn down by
 * suite_region_done (pmm_reset, then the memory goes back). */
char *suite_region(size_t bytes);
void suite_region_done(void);

/* A raw spinlock for test bookkeeping, kept out of the lock report. */
struct tlock { atomic_int v; };
static inline void tlock_acquire(struct tlock *l)
{
    smp_port_irq_push();
    while (atomic_exchange_explicit(&l->v, 1, memory_order_acquire)) {
        rv_xcall_poll();            /* outside smpmem: serve who asks us */
        smp_port_relax();
    }
}
static inline void tlock_release(struct tlock *l)
{
    atomic_store_explicit(&l->v, 0, memory_order_release);
    smp_port_irq_pop();
}

#endif
