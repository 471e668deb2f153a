/*
 * Per-CPU sections: what protects each CPU's caches (page and object layers).
 *
 * A section is the stretch of a fast or slow path that touches this CPU's
 * caches.  How it is protected is chosen at build time, one mode per build:
 *
 *   cross-call (default)  A section is interrupts pushed off, nothing more:
 *                         no lock, no atomic read-modify-write, no fence (a
 *                         kernel's "local lock").  Another CPU that needs
 *                         this CPU's caches (steal, drain, reclaim, check)
 *                         asks through smp_port_cross_call (port.h), whose
 *                         function runs with exclusive access to them.
 *   SMP_PERCPU_LOCKED     For ports without a cross-call primitive (NJU's
 *                         AbstractMachine): a section also holds the CPU's
 *                         gate lock "kmem.cpuN", and asking a CPU means
 *                         taking its gate lock.  Same code paths otherwise.
 *
 * Rules the callers keep (both modes rely on them):
 *   - smp_on_cpu / smp_on_all_cpus are called outside any section of the
 *     caller and with no smpmem spinlock held;
 *   - at such calls this CPU's caches are consistent (another CPU may take
 *     from them while we wait), and code re-reads them afterwards.
 * Lock order (locked mode): gates, in increasing CPU id -> slab class ->
 * depot -> zone.  In cross-call mode a section plays the gate's part.
 */
#ifndef SMPMEM_BASE_PERCPU_H
#define SMPMEM_BASE_PERCPU_H

#include "smpmem/port.h"
#include <stdbool.h>
#include "spinlock_inline.h"

/* Fast paths are inlined into their public entry points (kalloc, kfree,
 * page_alloc, page_free) so each is one leaf function. */
#define SMP_FAST static inline __attribute__((always_inline))

/* Per-CPU structures are aligned to 128 bytes: x86 prefetches cache lines
 * in pairs, so 64-byte alignment would let neighbouring CPUs interfere. */
#define SMP_CPU_ALIGN 128

struct smp_cpu_gate {                  /* locked mode only */
    _Alignas(SMP_CPU_ALIGN) struct smp_spinlock lock;
    char name[16];                     /* "kmem.cpuN" */
};

struct smp_percpu {
    int ncpu;
    struct smp_cpu_gate *gate;         /* ncpu gates in locked mode, else NULL */
};
extern struct smp_percpu smp_percpu;

/* Bytes of gate storage smp_percpu_init needs for ncpu CPUs (0 in
 * cross-call mode). */
size_t smp_percpu_bytes(int ncpu);
/* Set up for ncpu CPUs; mem (SMP_CPU_ALIGN-aligned, smp_percpu_bytes(ncpu)
 * bytes) holds the gates. */
void smp_percpu_init(int ncpu, void *mem);
void smp_percpu_reset(void);

_Noreturn void smp_bad_cpu(void);

/* Whether cpu is outside 0..ncpu-1 (a port bug, or a caller before init
 * where ncpu is 0). */
SMP_FAST bool smp_cpu_unknown(int cpu, int ncpu)
{
    return (unsigned)cpu >= (unsigned)ncpu;
}

/* Where the port keeps the core's per-CPU words (SMP_PORT_HAS_CPU_WORDS,
 * port.h), a fast path finds its CPU's caches from the push's token and
 * needs the CPU id only on its slow path (and, in locked mode, for the
 * gate). */
#if defined(SMP_PORT_HAS_CPU_WORDS) && !defined(SMP_PORT_HAS_PUSH_TOKEN)
#error "SMP_PORT_HAS_CPU_WORDS needs SMP_PORT_HAS_PUSH_TOKEN (port.h)"
#endif
#if !defined(SMP_PORT_HAS_CPU_WORDS) || defined(SMP_PERCPU_LOCKED)
#define SMP_SECTION_HAS_ID 1
#endif

/* A fast path's section: the CPU id (stable until exit) where the fast
 * path needs it, and, where the port offers one (SMP_PORT_HAS_PUSH_TOKEN,
 * port.h), what its pop takes back, so the exit need not look up again
 * what the entry just found. */
struct smp_fast_section {
#ifdef SMP_SECTION_HAS_ID
    int cpu;
#endif
#ifdef SMP_PORT_HAS_PUSH_TOKEN
    smp_port_token token;
#endif
};

/* Enter this CPU's section on a fast path.  The CPU id is not yet checked:
 * the caller finds its caches with smp_section_local, whose caches (or
 * NULL) fail its tests for an unknown id, and its slow path tells.  (A panic call here would cost
 * every fast path a stack frame.)  Leave with smp_section_exit_fast, or,
 * from the slow path it tail-calls, with smp_section_exit(cpu). */
SMP_FAST struct smp_fast_section smp_section_enter_fast(void)
{
    struct smp_fast_section s;
#if defined(SMP_PORT_HAS_PUSH_TOKEN) && defined(SMP_SECTION_HAS_ID)
    s.token = smp_port_irq_push_token(&s.cpu);
#elif defined(SMP_PORT_HAS_PUSH_TOKEN)
    s.token = smp_port_irq_push_token(0);
#else
    smp_port_irq_push();
    s.cpu = smp_port_cpu_id();
#endif
#ifdef SMP_PERCPU_LOCKED
    if (__builtin_expect(!smp_cpu_unknown(s.cpu, smp_percpu.ncpu), 1))
        smp_lock_take_local(&smp_percpu.gate[s.cpu].lock);
#endif
    return s;
}

/* The CPU id inside a fast section, for the slow path it calls. */
SMP_FAST int smp_section_cpu(struct smp_fast_section s)
{
#ifdef SMP_SECTION_HAS_ID
    return s.cpu;
#else
    (void)s;
    return smp_port_cpu_id();          /* stable: we are inside the section */
#endif
}

SMP_FAST void *smp_nonnull(void *p)
{
    if (!p)
        __builtin_unreachable();
    return p;
}

/* This CPU's pointer `word` (the one its layer's fast path starts from:
 * SMP_PCP_WORD, SMP_OBJ_WORD), in a section entered with
 * smp_section_enter_fast.  From the port's words (smp_percpu_publish)
 * where it keeps them: never NULL, an unknown CPU's (also: before init)
 * point at the idle caches (port.h), which fail every fast-path test.
 * Else from the layer's own table of ncpu entries, none NULL, and NULL for
 * an unknown CPU id. */
#ifdef SMP_PORT_HAS_CPU_WORDS
#define smp_section_local(sec, word, table, ncpu) smp_nonnull(smp_port_token_word((sec).token, (word)))
#else
#define smp_section_local(sec, word, table, ncpu) \
    (smp_cpu_unknown((sec).cpu, (ncpu)) ? (void *)0 : smp_nonnull((void *)(table)[(unsigned)(sec).cpu]))
#endif

/* Make p CPU cpu's pointer `word` for smp_section_local (at init and
 * reset, with no CPU inside smpmem). */
void smp_percpu_publish(int cpu, int word, void *p);

/* Enter this CPU's section; returns the CPU id (stable until exit).  The
 * plain push: it waits out a cross-call holding this CPU itself, where a
 * fast path's token push may leave that to the words (port.h). */
SMP_FAST int smp_section_enter(void)
{
    smp_port_irq_push();
    int cpu = smp_port_cpu_id();
    if (__builtin_expect(smp_cpu_unknown(cpu, smp_percpu.ncpu), 0))
        smp_bad_cpu();
#ifdef SMP_PERCPU_LOCKED
    smp_lock_take_local(&smp_percpu.gate[cpu].lock);
#endif
    return cpu;
}

/* A slow path entered from a fast one with an unchecked id.  Its first
 * step: where the port keeps the core's words, wait out a cross-call that
 * holds this CPU (the fast push did not: port.h).  Then 0 if cpu is
 * fine, else -1 after leaving the section (which took no gate) when smpmem
 * is not initialised (ncpu 0: the caller returns its failure), else a
 * panic. */
int smp_section_check(int cpu, int ncpu);

SMP_FAST void smp_section_exit(int cpu)
{
#ifdef SMP_PERCPU_LOCKED
    smp_lock_release_local(&smp_percpu.gate[cpu].lock);
#else
    (void)cpu;
#endif
    smp_port_irq_pop();
}

SMP_FAST void smp_section_exit_fast(struct smp_fast_section s)
{
#ifdef SMP_PERCPU_LOCKED
    smp_lock_release_local(&smp_percpu.gate[s.cpu].lock);
#endif
#ifdef SMP_PORT_HAS_PUSH_TOKEN
    smp_port_irq_pop_token(s.token);
#else
    (void)s;
    smp_port_irq_pop();
#endif
}

/* Run fn(cpu, arg) with exclusive access to cpu's caches, and wait for it.
 * fn must not enter a section; it may take smpmem spinlocks. */
typedef void (*smp_cpu_fn)(int cpu, void *arg);
void smp_on_cpu(int cpu, smp_cpu_fn fn, void *arg);

/* Stop the world: run fn(-1, arg) once, with exclusive access to every
 * CPU's caches at the same time (nested smp_on_cpu in increasing CPU id). */
void smp_on_all_cpus(smp_cpu_fn fn, void *arg);

#endif
