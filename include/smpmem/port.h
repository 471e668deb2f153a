/*
 * smpmem port interface: the only functions the freestanding core calls.
 *
 * A kernel implements these hooks once (see port/hosted/ for a pthreads
 * version, port/riscv64/ for bare metal).  Dependency rule: src/ may call
 * these and nothing else outside src/; a port may call the public API in
 * include/smpmem/ (e.g. smp_lock_acquire from its sleep hook).
 */
#ifndef SMPMEM_PORT_H
#define SMPMEM_PORT_H

#include <stddef.h>

struct smp_spinlock;

/* How many pointer words per CPU the core keeps in a port's per-CPU record
 * (optional: SMP_PORT_HAS_CPU_WORDS below). */
#define SMP_CPU_WORDS 2

/*
 * The three hooks on every kalloc/kfree (cpu id, irq push, irq pop) may be
 * inline: build the core with -DSMP_PORT_INLINE='"your_header.h"' and
 * define them there as static inline functions with these exact
 * signatures.  Without it they are ordinary external functions.
 */
#ifdef SMP_PORT_INLINE
#include SMP_PORT_INLINE
#else
/* Index of the CPU running the caller, 0 <= id < the ncpu given to
 * smp_pmm_init.  Only required to be stable while interrupts are pushed off. */
int smp_port_cpu_id(void);

/* Disable interrupts on this CPU and count one level of nesting (xv6's
 * push_off): the first push remembers whether interrupts were enabled.
 * What smpmem relies on: between a push and its pop, nothing else runs on
 * this CPU that could enter smpmem (no interrupt handler that allocates, no
 * other thread), and no cross-called function runs for this CPU.  Where
 * nothing can interrupt (a single-threaded emulator, or a kernel that never
 * allocates in interrupt handlers and cannot be preempted inside smpmem) a
 * per-CPU nesting counter alone meets that -- useful where masking
 * interrupts is expensive (AbstractMachine's native target makes it a
 * system call). */
void smp_port_irq_push(void);

/* Undo one smp_port_irq_push; the last pop restores the remembered state.
 * Must panic on a pop without a matching push (xv6's pop_off). */
void smp_port_irq_pop(void);
#endif

/* Optional, for ports where one lookup serves a push, the CPU id and the
 * matching pop (the hosted port reads one thread-local pointer): a port
 * that defines SMP_PORT_HAS_PUSH_TOKEN provides (inline, through
 * SMP_PORT_INLINE) a type smp_port_token and
 *     smp_port_token smp_port_irq_push_token(int *cpu);
 *     void smp_port_irq_pop_token(smp_port_token token);
 * The first is smp_port_irq_push followed by smp_port_cpu_id (stored in
 * *cpu); it may read the id before pushing only where nothing can move the
 * caller to another CPU between the two.  The second is smp_port_irq_pop,
 * given what the push returned.  The core's fast paths use them, keeping
 * the token in a register between the two; every other path still calls
 * smp_port_irq_push/pop, and a token pop may undo a plain push and the
 * reverse.  cpu may be NULL: the caller does not need the id (the port
 * then need not read it).  A token pop always follows the push that
 * returned its token, so it may skip the underflow check a plain pop
 * makes. */

/* Optional, with SMP_PORT_HAS_PUSH_TOKEN, for ports whose token already
 * points at a per-CPU record: SMP_CPU_WORDS pointer words per CPU that
 * the core owns, so a fast path finds its CPU's caches with one load from
 * the token, with no CPU id, bound test or table.  A port that defines
 * SMP_PORT_HAS_CPU_WORDS provides (inline, through SMP_PORT_INLINE)
 *     void smp_port_set_cpu_word(int cpu, int i, void *p);
 *     void *smp_port_token_word(smp_port_token token, int i);
 *     void smp_port_irq_settle(void);
 * The first sets word i of CPU cpu (0 <= cpu < the ncpu given to
 * pmm_init); the core calls it at pmm_init and pmm_reset, with no CPU
 * inside smpmem.  The second reads word i of the CPU whose push returned
 * token.  Every CPU's words start as the core's smp_cpu_words_idle (the
 * port copies them in at boot, before any CPU calls smpmem), and so does
 * any record whose token is not a CPU's (the hosted port's private record
 * of a cross-call): they point at empty caches that fail every fast-path
 * test, so a fast path needs no NULL test, and its slow path asks
 * smp_port_cpu_id.
 *
 * The words also let the token push skip waiting out a cross-call that
 * holds this CPU (contract 1 of smp_port_cross_call), as a plain push
 * must.  A port may do so if, while it holds a CPU, it makes that CPU's
 * words idle before it checks the CPU is outside every section, ordered
 * against the push as the push's own test would be (the hosted port: the
 * words take the held flag's place in its Dekker pair, port/hosted).  A
 * fast path that reads an idle word then takes its slow path, and every
 * such slow path starts with smp_port_irq_settle(): it returns once no
 * cross-call holds this CPU, with the section still pushed (stepping out
 * of it meanwhile, as a plain push does).  Where the token push waits
 * anyway (riscv64: interrupts off), settle does nothing. */
#ifdef SMP_PORT_HAS_CPU_WORDS
extern void *const smp_cpu_words_idle[SMP_CPU_WORDS];
#endif

/* Optional: who is running -- a thread or process identity, nonzero and
 * unique among the running ones -- so that releasing a sleep lock (brelse)
 * can check the caller is its holder, as xv6's holdingsleep does.  A port
 * that can tell defines SMP_PORT_HAS_SELF and provides it (inline, through
 * SMP_PORT_INLINE, or out of line); without it the holder check is skipped.
 * A CPU id is not enough: a kernel thread may sleep holding the lock and
 * wake on another CPU. */
#ifdef SMP_PORT_HAS_SELF
#ifndef SMP_PORT_INLINE
#include <stdint.h>
uintptr_t smp_port_self(void);
#endif
#endif

/* Optional: [p, p + len) is a free block of 2^SMP_DISCARD_ORDER pages or
 * more (page-aligned) whose contents nobody needs any more: the port may
 * give its backing back -- madvise(MADV_DONTNEED) on a hosted port, the
 * hypervisor's free page reporting in a guest kernel (virtio-balloon).  The
 * range must stay usable: smpmem hands it out again later with no further
 * call, and its contents may then be anything.  Called with no smpmem
 * lock held and outside every section, while nothing else can reach the
 * block: from the CPU that frees it, before it goes back to the zone, or,
 * for a block the zone kept (below), from the CPU whose free pushes it out,
 * with the block taken out of the zone until the call returns.  It must
 * not call into smpmem.  A
 * port that defines SMP_PORT_HAS_DISCARD provides it; without it, nothing
 * is given back (the usual kernel case: the memory is the kernel's). */
#define SMP_DISCARD_ORDER 8            /* 1 MiB */
/* The core remembers the SMP_DISCARD_KEEP such blocks freed last.  One
 * freed again while remembered (a program's 4 MiB buffer, malloc'ed,
 * filled and freed in a loop) keeps its pages instead of faulting every
 * one in again: it goes to the hook only when newer frees push it out,
 * and only if it is still wholly free then.  Kept blocks hold at most
 * SMP_DISCARD_KEEP_PAGES pages and 1/16 of the region together. */
#define SMP_DISCARD_KEEP 4
#define SMP_DISCARD_KEEP_PAGES 8192     /* 32 MiB */
#ifdef SMP_PORT_HAS_DISCARD
#ifndef SMP_PORT_INLINE
#include <stddef.h>
void smp_port_discard(void *p, size_t len);
#endif
#endif

/* Called in spin-wait loops: a CPU pause hint (or a yield on hosted ports).
 * smpmem also spins inside its per-CPU sections (a refill waiting for the
 * zone lock), so relax must not run cross-called functions. */
void smp_port_relax(void);

/* Emit len bytes of text (reports, check violations).  May be called with
 * interrupts off and locks held, so it must not allocate from smpmem. */
void smp_port_write(const char *text, size_t len);

/* Stop the system with a NUL-terminated message naming the fault; never
 * returns. */
_Noreturn void smp_port_panic(const char *message);

/* Atomically release lk and sleep on chan until a smp_port_wakeup(chan)
 * issued after the release; reacquire lk before returning.  Spurious
 * returns are allowed: callers re-check their condition in a loop.
 * smpmem's promise: it calls sleep holding lk and no other smpmem lock,
 * with no push of its own outstanding besides lk's, and never from a
 * cross-called function -- so the implementation may switch to another
 * thread as xv6's sleep does.  Only the buffer cache and sleep locks
 * (src/bio/) sleep; a kernel that uses only pages and kalloc may leave
 * sleep and wakeup empty. */
void smp_port_sleep(void *chan, struct smp_spinlock *lk);

/* Wake every sleeper on chan.  Callers hold the lock that guards the
 * condition they changed, so no wakeup is lost between check and sleep. */
void smp_port_wakeup(void *chan);

/*
 * Ask CPU cpu to let fn(cpu, arg) have its per-CPU state; return when fn has
 * finished.  Not needed (not called) when the core is built with
 * SMP_PERCPU_LOCKED, the fallback for platforms without cross-calls.
 *
 * smpmem's per-CPU caches are protected only by interrupts being pushed
 * off on their own CPU (no lock, no atomic instruction).  Whatever another
 * CPU needs from them (stealing pages, drain, reclaim, pmm_check) it gets
 * through this hook.  The implementation must guarantee:
 *   1. Exclusion: while fn runs, cpu is not between an smp_port_irq_push
 *      and its matching pop, and no other cross-call to cpu runs.  cpu may
 *      be the caller's own CPU.  fn's writes are visible to cpu afterwards,
 *      and cpu's earlier writes are visible to fn.
 *   2. Progress: a CPU that never calls into smpmem again (idle, blocked,
 *      asleep) does not stall the caller; a CPU with interrupts pushed off
 *      delays it only until its pop.
 *   3. No deadlock when CPUs ask each other: while the caller waits (to
 *      start, or for fn), its own CPU can be asked by others, even if the
 *      caller has interrupts pushed off (kalloc may be called so).
 *   4. Nesting: fn may call smp_port_cross_call for another CPU; smpmem
 *      nests only in increasing CPU order (stop-the-world for pmm_check).
 * What smpmem promises in return: it calls the hook only from slow paths,
 * with no smpmem spinlock held and none of its own pushes outstanding; fn
 * never pushes interrupts for its own use except inside smpmem spinlocks,
 * and never calls smp_port_cpu_id to learn which CPU it serves.
 * What the kernel must keep in mind: a page or object allocation may ask
 * other CPUs (steal, reclaim).  A kernel loop that waits with interrupts
 * off outside smpmem -- its own spinlocks, barriers -- must serve
 * cross-calls while it waits (poll the IPI mailbox), or a CPU that calls
 * kalloc holding such a lock (xv6's allocproc holds p->lock) deadlocks
 * against the CPUs spinning on it.  Ports that cannot promise that build
 * with SMP_PERCPU_LOCKED.
 * In a kernel: an IPI whose handler runs fn (or, for the caller's own CPU,
 * a direct call), with the waiting loop serving IPIs addressed to itself.
 * The hosted port: an asymmetric fence (membarrier) and the target's
 * published interrupt depth; see port/hosted/port.c.
 */
void smp_port_cross_call(int cpu, void (*fn)(int cpu, void *arg), void *arg);

#endif
