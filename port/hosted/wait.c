/*
 * The hosted push's slow path: this virtual CPU is held by a cross-call
 * (port.c).  Publish depth 0 (we are outside every section, so the asker
 * may proceed), wait for the release, publish `depth` again and re-check.
 * Rare, so a full fence on this side is fine.
 * On x86-64 the inline push reaches it through wait_x86_64.S.
 */
#include <sched.h>
#include <smpmem/port.h>

void smp_hosted_wait_released(struct smp_hosted_vcpu *v, int depth)
{
    do {
        atomic_store_explicit(&v->noff, 0, memory_order_release);
        while (atomic_load_explicit(&v->held, memory_order_acquire))
            sched_yield();
        atomic_store_explicit(&v->noff, depth, memory_order_seq_cst);
        atomic_thread_fence(memory_order_seq_cst);
    } while (atomic_load_explicit(&v->held, memory_order_seq_cst));
}
