/*
 * Per-CPU sections and asking another CPU (see percpu.h for the modes).
 *
 * Locks: in locked mode the gates, taken in increasing CPU id by
 * smp_on_all_cpus (and one at a time by smp_on_cpu).  Cross-call mode
 * takes no lock here; the port's cross-call serialises askers.
 */
#include "percpu.h"
#include "fmt.h"

struct smp_percpu smp_percpu;

_Noreturn void smp_bad_cpu(void)
{
    smp_panic("smpmem", "smp_port_cpu_id() outside 0..ncpu-1 given to pmm_init");
}

int smp_section_check(int cpu, int ncpu)
{
#ifdef SMP_PORT_HAS_CPU_WORDS
    /* The fast path's push did not wait out a cross-call holding this CPU
     * (port.h): an idle word sent it here.  Wait before touching a cache. */
    smp_port_irq_settle();
#endif
    if (!smp_cpu_unknown(cpu, ncpu))
        return 0;
    if (ncpu == 0) {
        smp_port_irq_pop();
        return -1;
    }
    smp_bad_cpu();
}

size_t smp_percpu_bytes(int ncpu)
{
#ifdef SMP_PERCPU_LOCKED
    return (size_t)ncpu * sizeof(struct smp_cpu_gate);
#else
    (void)ncpu;
    return 0;
#endif
}

void smp_percpu_init(int ncpu, void *mem)
{
    smp_percpu.ncpu = ncpu;
#ifndef SMP_PERCPU_LOCKED
    (void)mem;                         /* no gates: gate stays NULL (percpu.h) */
#else
    smp_percpu.gate = mem;
    for (int cpu = 0; cpu < ncpu; cpu++) {
        struct smp_cpu_gate *g = &smp_percpu.gate[cpu];
        smp_fmt_name(g->name, sizeof g->name, "kmem.cpu", (uint64_t)cpu);
        smp_lock_init(&g->lock, g->name);
    }
#endif
}

void smp_percpu_publish(int cpu, int word, void *p)
{
#ifdef SMP_PORT_HAS_CPU_WORDS
    smp_port_set_cpu_word(cpu, word, p);
#else
    (void)cpu, (void)word, (void)p;
#endif
}

void smp_percpu_reset(void)
{
    smp_percpu.ncpu = 0;
    smp_percpu.gate = 0;
}

void smp_on_cpu(int cpu, smp_cpu_fn fn, void *arg)
{
#ifdef SMP_PERCPU_LOCKED
    smp_lock_acquire(&smp_percpu.gate[cpu].lock);
    fn(cpu, arg);
    smp_lock_release(&smp_percpu.gate[cpu].lock);
#else
    smp_port_cross_call(cpu, fn, arg);
#endif
}

struct nest {
    smp_cpu_fn fn;
    void *arg;
};

/* Hold CPUs 0..cpu-1 (we are inside their calls); take cpu, then the rest. */
static void hold_from(int cpu, void *arg)
{
    struct nest *n = arg;
    if (cpu + 1 < smp_percpu.ncpu)
        smp_on_cpu(cpu + 1, hold_from, n);
    else
        n->fn(-1, n->arg);
}

void smp_on_all_cpus(smp_cpu_fn fn, void *arg)
{
    struct nest n = { fn, arg };
    smp_on_cpu(0, hold_from, &n);
}
