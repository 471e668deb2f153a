/*
 * Threads standing for CPUs: the one runner shared by tests, benchmarks and
 * the demo.
 *
 *   static void work(int cpu, void *arg) { ... this CPU's share ... }
 *   double secs = vcpus_run(0, 4, work, &state);   // CPUs 0..3 at once
 *
 * vcpus_run (vcpus_smp.c) binds thread i to smpmem's virtual CPU first + i
 * with smp_hosted_bind_cpu.  vcpus_run_with (vcpus.c) is the same runner
 * with hooks of the caller's choosing and no smpmem in it, for programs
 * that must not link the library (the peer allocators' benchmark binaries).
 *
 * A run: n threads start; each calls hooks->enter(cpu), then all meet at a
 * barrier; each stamps its start, runs fn(cpu, arg), stamps its end, calls
 * hooks->leave(cpu), and meets the others at a second barrier before it
 * exits (so an early finisher's thread teardown, e.g. an allocator
 * returning its thread cache, does not run during the others' work).
 * The call returns when every thread has exited.
 *
 * Returns the seconds from the earliest start stamp to the latest end stamp
 * (CLOCK_MONOTONIC).  Not the caller's release time: with more threads than
 * cores a thread may be descheduled right after the barrier.
 *
 * Thread safety: one run at a time per process (runs may not nest or
 * overlap).  1 <= n <= VCPUS_MAX; a bad n or a failed pthread_create prints
 * a message and exits(1): a run with fewer CPUs than asked proves nothing.
 */
#ifndef SMPMEM_SUPPORT_VCPUS_H
#define SMPMEM_SUPPORT_VCPUS_H

#define VCPUS_MAX 64

typedef void vcpu_fn(int cpu, void *arg);

struct vcpus_hooks {
    void (*enter)(int cpu);   /* on the new thread, first; NULL: nothing */
    int (*leave)(int cpu);    /* after fn; non-zero = the thread broke a rule
                                 (counted, see vcpus_broken); NULL: nothing */
};

/* Run fn on threads standing for CPUs first .. first+n-1 (see above). */
double vcpus_run_with(const struct vcpus_hooks *hooks, int first, int n,
                      vcpu_fn *fn, void *arg);

/* Run fn on smpmem's virtual CPUs first .. first+n-1: enter binds each
 * thread (smp_hosted_bind_cpu); leave counts a thread that returns from fn
 * with interrupts still pushed off. */
double vcpus_run(int first, int n, vcpu_fn *fn, void *arg);

/* Benchmarks: from now on, when a run has no more threads than the CPUs
 * this process may use (sched_getaffinity), start thread i on the i-th of
 * them and keep it there.
 * Without it a new thread starts beside its creator and the kernel moves
 * it to an idle core only later: on a 2-core machine a 2-thread run of
 * 50 ms spent its first milliseconds on one core in some rounds and not in
 * others, which made 2-thread medians swing by 1.4x (bench_bcache's hits).
 * Runs with more threads than CPUs stay unpinned: as threads finish, the
 * kernel must move the rest onto the idle cores.  Tests leave it off, so
 * the scheduler varies their interleavings.
 * BENCH_PIN=0 in the environment leaves it off.  Returns the number of
 * host CPUs used (0: off, or pinning unavailable). */
int vcpus_pin_threads(void);

/* Pin the calling thread where a run's thread i would be pinned (the i-th
 * CPU this process may use), for work that runs outside vcpus_run (a
 * forked process).  Returns 1 if pinned, 0 if pinning is off (no
 * vcpus_pin_threads, BENCH_PIN=0) or i is past the CPUs. */
int vcpus_pin_self(int i);

/* Seconds thread i (0 .. n-1) of the last run spent in fn, from its own
 * start to its own end; NAN for i out of range. */
double vcpus_thread_seconds(int i);

/* Called from fn: wait until every thread of the current run is here. */
void vcpus_barrier(void);

/* Threads of the last run whose leave hook returned non-zero, and the
 * lowest such CPU in *cpu (when not NULL and the count is not 0). */
int vcpus_broken(int *cpu);

#endif
