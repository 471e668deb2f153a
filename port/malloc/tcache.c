/*
 * The thread cache's slow paths: sorting, refills, draining, the list of
 * caches and the reclaim of all of them (the fast paths and the design:
 * tcache.h).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>
#include <smpmem/pmm.h>
#include "vcpu.h"
#include "tcache.h"
#include "../linux/process_fence.h"

__thread struct tcache smpm_tc __attribute__((tls_model("initial-exec")));
static pthread_key_t tc_key;
static _Atomic int tc_enabled;

/*
 * Reclaim: when the core comes back empty, the blocks in every thread's
 * cache go back to it, not only the caller's -- else up to 95.5 KiB per
 * thread, of threads that may never call malloc again, would stay out of
 * reach and malloc would say ENOMEM with memory to spare.
 *
 * A cache has no lock (its owner's malloc and free would pay one per
 * call); the owner marks the time it touches the cache instead, and the
 * reclaimer stops owners from starting, asymmetrically (as port/hosted does
 * for cross-calls):
 *   owner:      busy = 1;  [compiler barrier]
 *               if (state != TC_ON) { busy = 0; bypass the cache }
 *               ... use the cache ...;  busy = 0 (release)
 *   reclaimer:  every state = TC_HELD;  membarrier();
 *               for each cache: wait until busy == 0, drain it, state = TC_ON (release)
 * membarrier(PRIVATE_EXPEDITED) runs a full barrier on every CPU running a
 * thread of this process, so either the owner's busy = 1 is visible to the
 * reclaimer (which waits for the owner's busy = 0) or the owner's load sees
 * TC_HELD (and it leaves its cache alone until the reclaim is over).  The
 * owner read its state on every call already: its side costs two plain
 * stores; the reclaimer's a system call, once per exhaustion.  An owner
 * waits for nothing: while its cache is held, it calls the core directly.
 * A reclaimer waits only for owners inside their cache, which wait for
 * nothing but vCPUs and core locks, and holds no vCPU while it waits.
 * Where the kernel lacks membarrier, an mprotect does the fence
 * (port/linux/process_fence.h); where neither works, only the caller's own
 * cache goes back.
 *
 * Lock order: tc_list_lock, then vCPUs (the reclaimer drains with kfree;
 * fork prepare takes it before every owner word).  smpm_tc_join and thread
 * exit take it alone, outside the cache.
 */
static pthread_mutex_t tc_list_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tcache *tc_list;
static int tc_fence;                 /* 0 untried, 1 ready, -1 unavailable (under tc_list_lock) */

/* Give n blocks to kfree in one vCPU entry. */
static void tc_give_back(void **blocks, int n)
{
    smpm_enter();
    for (int i = 0; i < n; i++)
        smp_kfree(blocks[i]);
    smpm_exit();
}

/* The buffer is full: sort it into the class arrays; what overflows goes
 * back to the core. */
static void tc_sort(struct tcache *t)
{
    void *over[TC_PENDING];
    int nover = 0;
    static const unsigned char limit[TC_CLASSES] = {
        TC_LIMIT(0), TC_LIMIT(1), TC_LIMIT(2), TC_LIMIT(3),
        TC_LIMIT(4), TC_LIMIT(5), TC_LIMIT(6), TC_LIMIT(7),
    };
    for (int i = 0; i < t->npending; i++) {
        uintptr_t e = t->pending[i];
        unsigned c = (unsigned)e & 15, n = t->n[c];
        void *p = (void *)(e - c);
        if (likely(n < limit[c])) {
            t->slot[c][n] = p;
            t->n[c] = n + 1;
        } else {
            over[nover++] = p;
        }
    }
    t->npending = 0;
    if (nover)
        tc_give_back(over, nover);
}

/* Everything the thread holds back to the core, in one vCPU entry. */
void smpm_tc_drain(struct tcache *t)
{
    smpm_enter();
    for (int i = 0; i < t->npending; i++)
        smp_kfree((void *)(t->pending[i] & ~(uintptr_t)15));
    t->npending = 0;
    for (unsigned c = 0; c < TC_CLASSES; c++) {
        for (unsigned i = 0; i < t->n[c]; i++)
            smp_kfree(t->slot[c][i]);
        t->n[c] = 0;
    }
    smpm_exit();
}

/* Give t's cached blocks back to the core (its owner, or the reclaimer
 * with the owner kept out); 1 if there were any. */
static int tc_give_all(struct tcache *t)
{
    int any = t->npending;
    for (unsigned c = 0; c < TC_CLASSES; c++)
        any |= (int)t->n[c];
    if (any)
        smpm_tc_drain(t);
    return any != 0;
}

/* A full barrier on every CPU running a thread of ours (port/linux); 0 if
 * neither membarrier nor the mprotect fence works here. */
static int fence_all(void)
{
    static struct process_fence fence;
    if (tc_fence == 0)
        tc_fence = process_fence_init(&fence) == 0 ? 1 : -1;
    return tc_fence > 0 && process_fence(&fence) == 0;
}

/* Every thread's cached blocks back, so a retry may find their slabs
 * emptied and coalesced by the core's reclaim (tcache.h). */
int smpm_tc_reclaim_all(void)
{
    int any = 0;
    pthread_mutex_lock(&tc_list_lock);
    for (struct tcache *t = tc_list; t; t = t->next)
        atomic_store_explicit(&t->state, TC_HELD, memory_order_relaxed);
    if (fence_all()) {
        for (struct tcache *t = tc_list; t; t = t->next) {
            while (atomic_load_explicit(&t->busy, memory_order_acquire))
                sched_yield();           /* its owner is between enter and leave */
            any |= tc_give_all(t);
        }
    } else {
        any = tc_give_all(&smpm_tc);     /* no fence: our own cache only (we are not in it) */
    }
    for (struct tcache *t = tc_list; t; t = t->next)
        atomic_store_explicit(&t->state, TC_ON, memory_order_release);
    pthread_mutex_unlock(&tc_list_lock);
    return any;
}

static void tc_thread_exit(void *unused)
{
    (void)unused;
    pthread_mutex_lock(&tc_list_lock);   /* off the list: no reclaimer sees it again */
    if (smpm_tc.prev)
        smpm_tc.prev->next = smpm_tc.next;
    else
        tc_list = smpm_tc.next;
    if (smpm_tc.next)
        smpm_tc.next->prev = smpm_tc.prev;
    atomic_store_explicit(&smpm_tc.state, TC_DEAD, memory_order_relaxed);
    pthread_mutex_unlock(&tc_list_lock);
    smpm_tc_drain(&smpm_tc);
}

int smpm_tc_join(struct tcache *t)
{
    if (atomic_load_explicit(&t->state, memory_order_relaxed) == TC_OFF &&
        atomic_load_explicit(&tc_enabled, memory_order_relaxed)) {
        pthread_setspecific(tc_key, t);   /* a key below 32: no allocation */
        pthread_mutex_lock(&tc_list_lock);
        t->prev = 0;
        t->next = tc_list;
        if (tc_list)
            tc_list->prev = t;
        tc_list = t;
        atomic_store_explicit(&t->state, TC_ON, memory_order_relaxed);
        pthread_mutex_unlock(&tc_list_lock);
    }
    return atomic_load_explicit(&t->state, memory_order_relaxed) == TC_ON;
}

void *smpm_tc_refill(struct tcache *t, unsigned c)
{
    size_t size = (size_t)16 << c;
    unsigned batch = TC_BATCH(c), got = 0;
    smpm_enter();
    while (got < batch) {
        void *p = smp_kalloc(size);
        if (!p)
            break;
        t->slot[c][got++] = p;
    }
    smpm_exit();
    if (!got)
        return 0;
    t->n[c] = got - 1;
    return t->slot[c][got - 1];
}


void smpm_tc_sort_leave(struct tcache *t)
{
    tc_sort(t);
    tc_leave(t);
}

void smpm_tc_setup(int wanted)
{
    if (wanted && pthread_key_create(&tc_key, tc_thread_exit) == 0)
        atomic_store(&tc_enabled, 1);
}

/* No reclaim runs across a fork (the lock comes before every owner word). */
void smpm_tc_fork_prepare(void)
{
    pthread_mutex_lock(&tc_list_lock);
}

void smpm_tc_fork_parent(void)
{
    pthread_mutex_unlock(&tc_list_lock);
}

/* The child has one thread: the other caches' owners are gone (their
 * blocks with them, as a thread's stack is), so the list keeps ours alone. */
void smpm_tc_fork_child(void)
{
    tc_list = 0;
    if (atomic_load_explicit(&smpm_tc.state, memory_order_relaxed) == TC_ON) {
        smpm_tc.next = smpm_tc.prev = 0;
        tc_list = &smpm_tc;
    }
    pthread_mutex_unlock(&tc_list_lock);
}
