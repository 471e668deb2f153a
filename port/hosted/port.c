/*
 * Hosted port: POSIX threads stand for CPUs.
 *
 * A thread binds to a virtual CPU (thread-local id); "interrupts off" is a
 * nesting counter per virtual CPU that pop checks, like xv6's push_off/
 * pop_off, published so that cross-calls can wait for it (port_inline.h).
 * sleep/wakeup use a small table of mutex+condvar pairs hashed by channel,
 * with a generation count so a wakeup between releasing the caller's lock
 * and waiting is never lost.
 *
 * Lock order inside sleep/wakeup: the caller's smp_spinlock -> bucket mutex.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/mman.h>
#include <smpmem/port.h>
#include <smpmem/spinlock.h>
#include <smpmem/hosted.h>
#include <smpmem/pmm.h>
#include "../linux/discard.h"
#include "../linux/process_fence.h"

/* One record per virtual CPU; threads point at theirs (port_inline.h). */
static struct smp_hosted_vcpu vcpus[SMP_MAX_CPUS];
static pthread_mutex_t xmu[SMP_MAX_CPUS];     /* serialises cross-calls to a CPU */
static pthread_once_t xcall_once = PTHREAD_ONCE_INIT;

_Thread_local struct smp_hosted_vcpu *smp_hosted_self SMP_HOSTED_TLS = &vcpus[0];
_Thread_local int smp_hosted_cpu SMP_HOSTED_TLS;
/* This thread's private record while it runs a cross-called function. */
static _Thread_local struct smp_hosted_vcpu acting;

/* Reached by a call from the middle of a fast path whose stack may be
 * misaligned (port_inline.h): realign before calling anything. */
__attribute__((force_align_arg_pointer)) _Noreturn void smp_hosted_pop_underflow(void)
{
    smp_port_panic("pop_off: interrupts popped more often than pushed");
}

void smp_port_set_cpu_word(int cpu, int i, void *p)
{
    atomic_store_explicit(&vcpus[cpu].words[i], p, memory_order_release);
}

static void words_idle(struct smp_hosted_vcpu *v)
{
    for (int w = 0; w < SMP_CPU_WORDS; w++)
        atomic_store_explicit(&v->words[w], smp_cpu_words_idle[w], memory_order_seq_cst);
}

/* Every record's words start idle (port.h), before main and so before any
 * thread can call smpmem. */
__attribute__((constructor)) static void vcpus_init(void)
{
    for (int i = 0; i < SMP_MAX_CPUS; i++)
        words_idle(&vcpus[i]);
}

int smp_hosted_irq_depth(void)
{
    return atomic_load_explicit(&smp_hosted_self->noff, memory_order_relaxed);
}

void smp_hosted_bind_cpu(int cpu)
{
    if (cpu < 0 || cpu >= SMP_MAX_CPUS)
        smp_port_panic("smp_hosted_bind_cpu: cpu out of range");
    if (smp_hosted_irq_depth())
        smp_port_panic("smp_hosted_bind_cpu: called with interrupts pushed off");
    smp_hosted_cpu = cpu;
    smp_hosted_self = &vcpus[cpu];
    vcpus[cpu].cpu = cpu;
}

/* ---- the process-wide fence behind cross-calls (port/linux) ------------ */
#ifndef SMP_HOSTED_SYMMETRIC
static struct process_fence fence;
#endif

static void xcall_init(void)
{
    for (int i = 0; i < SMP_MAX_CPUS; i++)
        pthread_mutex_init(&xmu[i], NULL);
#ifndef SMP_HOSTED_SYMMETRIC
    if (process_fence_init(&fence))
        smp_port_panic("hosted port: no membarrier and no page for the mprotect fence");
#endif
}

static void xcall_fence(void)
{
#ifdef SMP_HOSTED_SYMMETRIC
    /* The owner's side is seq_cst already (port_inline.h). */
#else
    if (process_fence(&fence))
        smp_port_panic("hosted port: the process-wide fence (membarrier or mprotect) failed");
#endif
}

/*
 * Cross-call: fn runs on the calling thread while the target CPU is held
 * outside its sections.  The caller first "opens" its own CPU (publishes
 * depth 0 and counts its own pushes in a private record): while it waits
 * and while fn runs it touches no cache of its own CPU, so others may hold
 * that CPU meanwhile -- two CPUs asking each other cannot deadlock.
 * Askers serialise per target on xmu and nest only in increasing CPU order.
 * Holding a CPU: held = 1, its words idle (port_inline.h), process-wide
 * fence, wait until its published depth is 0; the owner's next plain push
 * then sees held and waits, and its next fast path an idle word, which
 * sends it to a slow path that waits (smp_port_irq_settle).  Releasing:
 * the words back, then held = 0, both releases.  The
 * caller's own CPU is held by xmu alone (its thread is right here).
 */
void smp_port_cross_call(int cpu, void (*fn)(int cpu, void *arg), void *arg)
{
    pthread_once(&xcall_once, xcall_init);
    struct smp_hosted_vcpu *mine = &vcpus[smp_hosted_cpu], *self = smp_hosted_self;
    struct smp_hosted_vcpu *t = &vcpus[cpu];
    int depth = atomic_load_explicit(&self->noff, memory_order_relaxed);
    if (self == mine)
        atomic_store_explicit(&mine->noff, 0, memory_order_release);    /* open */
    acting.cpu = smp_hosted_cpu;
    words_idle(&acting);
    smp_hosted_self = &acting;
    pthread_mutex_lock(&xmu[cpu]);
    void *words[SMP_CPU_WORDS];
    if (t != mine) {
        atomic_store_explicit(&t->held, 1, memory_order_seq_cst);
        for (int w = 0; w < SMP_CPU_WORDS; w++)
            words[w] = atomic_load_explicit(&t->words[w], memory_order_relaxed);
        words_idle(t);
        xcall_fence();
        while (atomic_load_explicit(&t->noff, memory_order_seq_cst) != 0)
            sched_yield();
    }
    fn(cpu, arg);
    if (t != mine) {
        for (int w = 0; w < SMP_CPU_WORDS; w++)
            atomic_store_explicit(&t->words[w], words[w], memory_order_release);
        atomic_store_explicit(&t->held, 0, memory_order_release);
    }
    pthread_mutex_unlock(&xmu[cpu]);
    smp_hosted_self = self;
    if (self == mine && depth) {                                       /* close */
        atomic_store_explicit(&mine->noff, depth, memory_order_seq_cst);
        atomic_thread_fence(memory_order_seq_cst);
        if (atomic_load_explicit(&mine->held, memory_order_seq_cst))
            smp_hosted_wait_released(mine, depth);
    }
}

static atomic_ulong discarded;

/* The region is private memory of this process: DONTNEED drops its
 * resident pages (port/linux/discard.h), and the next touch maps zeroed
 * ones.  A failure (a region that is not ordinary memory) only means the
 * pages stay.  The count is of ranges handed over, resident or not. */
void smp_port_discard(void *p, size_t len)
{
    if (linux_discard(p, len) == 0)
        atomic_fetch_add_explicit(&discarded, len, memory_order_relaxed);
}

unsigned long smp_hosted_discarded_bytes(void)
{
    return atomic_load_explicit(&discarded, memory_order_relaxed);
}

static atomic_ulong relax_calls;

unsigned long smp_hosted_relax_calls(void)
{
    return atomic_load_explicit(&relax_calls, memory_order_relaxed);
}

void smp_port_relax(void)
{
    atomic_fetch_add_explicit(&relax_calls, 1, memory_order_relaxed);
    /* Threads outnumber cores here: a spinning waiter yields so the holder
     * (possibly descheduled on this core) can run. */
    sched_yield();
}

void smp_port_write(const char *text, size_t len)
{
    fwrite(text, 1, len, stdout);
    fflush(stdout);
}

_Noreturn void smp_port_panic(const char *message)
{
    fprintf(stderr, "panic: %s\n", message);
    fflush(stderr);
    abort();
}

#define SLEEP_BUCKETS 64

static struct sleep_bucket {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned long generation;
} buckets[SLEEP_BUCKETS];
static pthread_once_t buckets_once = PTHREAD_ONCE_INIT;

static void buckets_init(void)
{
    for (int i = 0; i < SLEEP_BUCKETS; i++) {
        pthread_mutex_init(&buckets[i].mu, NULL);
        pthread_cond_init(&buckets[i].cv, NULL);
    }
}

static struct sleep_bucket *bucket_of(void *chan)
{
    pthread_once(&buckets_once, buckets_init);
    uintptr_t h = (uintptr_t)chan;
    h ^= h >> 17;
    h *= 0x9e3779b97f4a7c15ULL;
    return &buckets[(h >> 32) % SLEEP_BUCKETS];
}

void smp_port_sleep(void *chan, struct smp_spinlock *lk)
{
    struct sleep_bucket *b = bucket_of(chan);
    pthread_mutex_lock(&b->mu);
    unsigned long gen = b->generation;
    smp_lock_release(lk);
    while (b->generation == gen)
        pthread_cond_wait(&b->cv, &b->mu);
    pthread_mutex_unlock(&b->mu);
    smp_lock_acquire(lk);
}

void smp_port_wakeup(void *chan)
{
    struct sleep_bucket *b = bucket_of(chan);
    pthread_mutex_lock(&b->mu);
    b->generation++;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
}
