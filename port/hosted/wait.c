/*
 * The hosted push's slow path: this virtual CPU is held by a cross-call
 * (port.c).  Publish depth 0 (we are outside every section, so the asker
 * may proceed), wait for the release, publish `depth` again and re-check.
 * Rare, so a full fence on this side is fine.
 * On x86-64 the inline push reaches smp_hosted_push_held through
 * wait_x86_64.S.
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

void smp_hosted_push_held(struct smp_hosted_vcpu *v)
{
    /* The push has counted itself.  Nested (depth > 1), this thread was
     * already inside a section when the asker looked, so the asker waits
     * for our outermost pop: nothing to do.  At depth 1 we must step back. */
    int depth = atomic_load_explicit(&v->noff, memory_order_relaxed);
    if (depth == 1)
        smp_hosted_wait_released(v, 1);
}
