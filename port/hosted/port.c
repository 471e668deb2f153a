/*
 * Hosted port: POSIX threads stand for CPUs.
 *
 * A thread binds to a virtual CPU (thread-local id); "interrupts off" is a
 * thread-local nesting counter that pop checks, like xv6's push_off/pop_off.
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
#include <smpmem/port.h>
#include <smpmem/spinlock.h>
#include <smpmem/hosted.h>
#include <smpmem/pmm.h>

/* Read inline by the core through port_inline.h (SMP_PORT_INLINE). */
_Thread_local int smp_hosted_cpu;
_Thread_local int smp_hosted_noff;

_Noreturn void smp_hosted_pop_underflow(void)
{
    smp_port_panic("pop_off: interrupts popped more often than pushed");
}

#ifndef SMP_PORT_INLINE
int smp_port_cpu_id(void) { return smp_hosted_cpu; }
void smp_port_irq_push(void) { smp_hosted_noff++; }
void smp_port_irq_pop(void)
{
    if (smp_hosted_noff <= 0)
        smp_hosted_pop_underflow();
    smp_hosted_noff--;
}
#endif

int smp_hosted_irq_depth(void) { return smp_hosted_noff; }

void smp_hosted_bind_cpu(int cpu)
{
    if (cpu < 0 || cpu >= SMP_MAX_CPUS)
        smp_port_panic("smp_hosted_bind_cpu: cpu out of range");
    if (smp_hosted_noff)
        smp_port_panic("smp_hosted_bind_cpu: called with interrupts pushed off");
    smp_hosted_cpu = cpu;
}

void smp_port_relax(void)
{
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
