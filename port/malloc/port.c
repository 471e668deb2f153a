/*
 * Malloc port: every hook of include/smpmem/port.h for a process whose
 * threads are many, preempted and migrated at will (the front end is
 * malloc.c; the design is argued in port/malloc/README.md).
 *
 * A virtual CPU (vCPU) is an owner word (vcpu.h).  A thread owns one for
 * the whole of each front-end call; a cross-call to vCPU k takes k's owner
 * word itself and runs fn on the calling thread.  Since only an owner
 * touches a vCPU's caches, "interrupts off" needs no state but a counter.
 *
 * Waiting rules (why nothing deadlocks):
 *   - a thread waits for an owner word only in smpm_enter_slow (owning
 *     nothing), in a cross-call (having given its own vCPU back first, and
 *     holding only lower-numbered targets of the same nest), and in fork
 *     prepare (taking all, in increasing order, owning nothing);
 *   - a thread that owns a vCPU as its own waits for nothing but smpmem
 *     spinlocks, whose holders wait for no owner word (the core never
 *     cross-calls with a spinlock held).
 * So every wait for owner words is in increasing vCPU order by a thread
 * that holds only lower ones, and no cycle can form.
 *
 * Lock order: fork prepare takes the init gate (malloc.c), then the owner
 * words 0..ncpu-1; core spinlocks are only ever taken with an owner word.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/mman.h>
#include <smpmem/port.h>
#include <smpmem/pmm.h>
#include <smpmem/spinlock.h>
#include "vcpu.h"
#include "malloc_internal.h"
#include "../linux/discard.h"

struct smpm_vcpu smpm_vcpus[SMP_MAX_CPUS];
int smpm_ncpu = 1;
ptrdiff_t smpm_rseq_cpu;
__thread struct smpm_thread smpm_self __attribute__((tls_model("initial-exec"))) = { -1, 0, 0, 0 };
__thread int smpm_last __attribute__((tls_model("initial-exec")));
/* The token of the thread holding every vCPU between fork prepare and the
 * parent/child handler, else 0. */
static _Atomic uintptr_t smpm_fork_holder;
_Atomic int smpm_stop_pending;

/* glibc >= 2.35 registers rseq for every thread and says where the area is
 * (weak: older C libraries simply give no hint and we fall back). */
extern const ptrdiff_t __rseq_offset __attribute__((weak));
extern const unsigned int __rseq_size __attribute__((weak));

/* The vCPUs no CPU this process may run on prefers (vcpu_map.h): where a
 * thread goes when its own core's vCPU is held. */
static uint64_t smpm_spares;
uint8_t smpm_vcpu_of[SMPM_CPU_IDS];

void smpm_vcpu_setup(int ncpu)
{
    smpm_ncpu = ncpu;
#if defined(__x86_64__)
    if (&__rseq_size && &__rseq_offset && __rseq_size >= 8 && __rseq_offset != 0)
        smpm_rseq_cpu = __rseq_offset + 4;            /* struct rseq: cpu_id_start, cpu_id */
#endif
    uint64_t all = ncpu >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << ncpu) - 1;
    unsigned char allowed[SMPM_CPU_IDS] = { 0 };
    cpu_set_t set;
    if (smpm_rseq_cpu && sched_getaffinity(0, sizeof set, &set) == 0)
        for (int c = 0; c < CPU_SETSIZE && c < SMPM_CPU_IDS; c++)
            allowed[c] = CPU_ISSET(c, &set) != 0;
    smpm_spares = all & ~smpm_map_cpus(allowed, ncpu, smpm_vcpu_of);
}

_Noreturn void smpm_pop_underflow(void)
{
    smp_port_panic("smpmem: pop_off: interrupts popped more often than pushed");
}

static int try_take(int k, uintptr_t me)
{
    uintptr_t free_word = 0;
    return atomic_load_explicit(&smpm_vcpus[k].owner, memory_order_relaxed) == 0 &&
           atomic_compare_exchange_strong_explicit(&smpm_vcpus[k].owner, &free_word, me,
                                                   memory_order_acquire, memory_order_relaxed);
}

static void give_back(int k)
{
    atomic_store_explicit(&smpm_vcpus[k].owner, 0, memory_order_release);
}

/* Wait for vCPU k itself (cross-calls, fork).  If it is not free at once,
 * say so in smpm_stop_pending: entering threads then stand back (vcpu.h,
 * smpm_enter_slow), so a holder's exit leaves the word to us instead of to
 * the next entry, and each wait ends once the current holder's call does. */
static void take_exactly(int k, uintptr_t me)
{
    if (atomic_load_explicit(&smpm_vcpus[k].owner, memory_order_relaxed) == me)
        smp_port_panic("smpmem: cross-call to a vCPU this thread already holds (nesting order)");
    if (try_take(k, me))
        return;
    atomic_fetch_add_explicit(&smpm_stop_pending, 1, memory_order_seq_cst);
    for (unsigned spins = 0; !try_take(k, me); spins++)
        if (spins >= 16)
            sched_yield();
        else
            __builtin_ia32_pause();
    atomic_fetch_sub_explicit(&smpm_stop_pending, 1, memory_order_release);
}

static int stop_pending(void)
{
    return atomic_load_explicit(&smpm_stop_pending, memory_order_relaxed) != 0;
}

/* The preferred vCPU is taken: almost always by a thread the kernel
 * preempted inside malloc (two running threads prefer the same vCPU only
 * if the process may run on more cores than there are vCPUs), which keeps
 * it until it runs again, for a whole time slice.  Any free vCPU will do,
 * but not all are equal.  Each other vCPU some core prefers is that core's
 * threads' preferred one: taking it displaces them in
 * turn (a cascade: with the scan that went want, want+1, ... over 4 vCPUs
 * on 2 cores, 60% of larson's entries took the slow path) and makes two
 * cores write the same magazines.  So try, in order: the spare this
 * thread fell back to last time (its magazines hold what it freed there),
 * the other spares (no core prefers them), then any. */
static int take_some(int want, uintptr_t me)
{
    int last = smpm_last;
    if (last != want && (smpm_spares >> last & 1) && try_take(last, me))
        return last;
    for (uint64_t m = smpm_spares; m; m &= m - 1) {
        int k = __builtin_ctzll(m);
        if (try_take(k, me))
            return k;
    }
    for (int i = 0; i < smpm_ncpu; i++) {
        int k = want + i < smpm_ncpu ? want + i : want + i - smpm_ncpu;
        if (try_take(k, me))
            return k;
    }
    return -1;
}

void smpm_enter_slow(int want)
{
    struct smpm_thread *t = &smpm_self;
    uintptr_t me = smpm_token();
    if (atomic_load_explicit(&smpm_fork_holder, memory_order_relaxed) == me) {
        t->cur = want;             /* an atfork handler allocating: we hold them all */
        t->borrowed = 1;
        return;
    }
    /* The fast path may have taken want and seen a waiter: stand back. */
    if (atomic_load_explicit(&smpm_vcpus[want].owner, memory_order_relaxed) == me)
        give_back(want);
    for (unsigned round = 0;; round++) {
        int k = stop_pending() ? -1 : take_some(want, me);
        if (k >= 0 && stop_pending()) {
            give_back(k);          /* a waiter came while we took it */
            k = -1;
        }
        if (k >= 0) {
            t->cur = k;
            smpm_last = k;
            atomic_store_explicit(&smpm_vcpus[k].displaced,   /* ours now: no RMW needed */
                                  atomic_load_explicit(&smpm_vcpus[k].displaced, memory_order_relaxed) + 1,
                                  memory_order_relaxed);
            return;
        }
        if (round >= 2)
            sched_yield();         /* every vCPU is held: let a holder run */
        else
            __builtin_ia32_pause();
    }
}

void smpm_exit_slow(void)
{
    smpm_self.borrowed = 0;        /* the fork holder keeps every vCPU */
}

/*
 * Cross-call: take vCPU cpu's owner word and run fn here.
 *   Exclusion: an owner word is held by one thread at a time, and a thread
 *     is in cpu's sections only while it holds cpu's word; taking it is an
 *     acquire and giving it back a release, so writes are seen both ways.
 *   Progress: a vCPU nobody is inside is free at once; a holder keeps it
 *     only for one front-end call (or one fn), as a CPU its pushed section.
 *   No deadlock: the outermost cross-call gives this thread's own vCPU back
 *     before waiting, so others can have it; the core re-reads its CPU id
 *     afterwards, and we come back on whichever vCPU is free (preferring
 *     the old one).
 *   Nesting: inner calls keep the outer targets (the world stays stopped)
 *     and wait only for higher ones.
 */
void smp_port_cross_call(int cpu, void (*fn)(int cpu, void *arg), void *arg)
{
    struct smpm_thread *t = &smpm_self;
    uintptr_t me = smpm_token();
    int saved = t->cur;
    if (atomic_load_explicit(&smpm_fork_holder, memory_order_relaxed) == me) {
        t->cur = cpu;              /* we hold every vCPU already */
        fn(cpu, arg);
        t->cur = saved;
        return;
    }
    int outer = t->xdepth++ == 0;
    if (outer && saved >= 0)
        give_back(saved);
    take_exactly(cpu, me);
    t->cur = cpu;                  /* spinlocks fn takes are held in cpu's name */
    fn(cpu, arg);
    give_back(cpu);
    t->xdepth--;
    if (outer && saved >= 0)
        smpm_enter_slow(saved);
    else
        t->cur = saved;
}

/* ---- fork: no owner word and no core lock held in the child ------------ */

void smpm_fork_prepare(void)
{
    uintptr_t me = smpm_token();
    for (int k = 0; k < smpm_ncpu; k++)
        take_exactly(k, me);
    atomic_store_explicit(&smpm_fork_holder, me, memory_order_relaxed);
}

void smpm_fork_release(int child)
{
    atomic_store_explicit(&smpm_fork_holder, 0, memory_order_relaxed);
    /* In the child, threads that were waiting for a word (a cross-call
     * this fork held up) are gone; their count must go with them. */
    if (child)
        atomic_store_explicit(&smpm_stop_pending, 0, memory_order_relaxed);
    for (int k = smpm_ncpu - 1; k >= 0; k--)
        give_back(k);
}

/* ---- the rest of the hooks ---------------------------------------------- */

/* The heap is one private anonymous mapping (malloc.c): DONTNEED drops its
 * resident pages (port/linux/discard.h), and the next touch maps zeroed
 * ones.  On failure they just stay. */
void smp_port_discard(void *p, size_t len)
{
    (void)linux_discard(p, len);
}

void smp_port_relax(void)
{
    /* The lock holder may be running on the other core (pause), or be
     * preempted on ours (yield now and then). */
    static __thread unsigned n __attribute__((tls_model("initial-exec")));
    if (++n % 32)
        __builtin_ia32_pause();
    else
        sched_yield();
}

/* Reports go to stderr: stdout belongs to the program. */
void smp_port_write(const char *text, size_t len)
{
    while (len) {
        ssize_t w = write(2, text, len);
        if (w <= 0)
            return;
        text += w;
        len -= (size_t)w;
    }
}

_Noreturn void smp_port_panic(const char *message)
{
    /* The core's messages name smpmem, the place and the address already. */
    size_t n = 0;
    while (message[n])
        n++;
    smp_port_write(message, n);
    smp_port_write("\n", 1);
    abort();
}

/* Sleep and wakeup serve only the buffer cache, which this library does
 * not contain; port.h allows spurious returns, so a yield between release
 * and reacquire is a correct sleep and wakeup has nothing to do. */
void smp_port_sleep(void *chan, struct smp_spinlock *lk)
{
    (void)chan;
    smp_lock_release(lk);
    sched_yield();
    smp_lock_acquire(lk);
}

void smp_port_wakeup(void *chan)
{
    (void)chan;
}
