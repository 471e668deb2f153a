/*
 * smpmem port for bare-metal riscv64 in S-mode under OpenSBI (QEMU virt):
 * the hooks of include/smpmem/port.h not inlined by riscv_port_inline.h.
 *
 *   relax       the Zihintpause `pause` hint (a harmless fence elsewhere).
 *   write       16550 UART, polled, whole calls kept together by a console
 *               lock (a bare flag taken with interrupts pushed off, so an
 *               interrupt handler that prints cannot deadlock on it).
 *   panic       prints "panic: ..." and powers off with exit code 3.
 *   sleep       no threads here: release the lock, spin (with interrupts as
 *               the caller had them) until the channel's wakeup generation
 *               moves, serving cross-calls meanwhile; reacquire.
 *   cross_call  a request queue per hart and an IPI (SBI sPI), below.
 *
 * Locks: a hart's cross-call queue lock and the console flag are leaves,
 * taken with interrupts off, never held while waiting.
 */
#include <smpmem/port.h>
#include <smpmem/spinlock.h>
#include "riscv.h"
#include "uart.h"

struct rv_hart rv_harts[RV_MAX_HARTS];
_Static_assert(sizeof rv_harts[0].smp_words / sizeof(void *) == SMP_CPU_WORDS, "the core's words (port.h)");

void smp_port_set_cpu_word(int cpu, int i, void *p)
{
    rv_harts[cpu].smp_words[i] = p;
}

void rv_port_boot(void)
{
    for (int h = 0; h < RV_MAX_HARTS; h++)
        for (int w = 0; w < SMP_CPU_WORDS; w++)
            rv_harts[h].smp_words[w] = smp_cpu_words_idle[w];
}

_Noreturn void rv_pop_bad(const char *why) { smp_port_panic(why); }

void smp_port_relax(void)
{
    __asm__ volatile(".4byte 0x0100000f" ::: "memory");    /* pause */
}

/* ---- console ------------------------------------------------------------ */
static atomic_int console_owner = -1;     /* hart holding the console, or -1 */

void smp_port_write(const char *text, size_t len)
{
    int me = (int)rv_tp(), free = -1;
    smp_port_irq_push();
    while (!atomic_compare_exchange_weak_explicit(&console_owner, &free, me,
                                                  memory_order_acquire, memory_order_relaxed)) {
        free = -1;
        smp_port_relax();
    }
    uart_write(text, len);
    atomic_store_explicit(&console_owner, -1, memory_order_release);
    smp_port_irq_pop();
}

_Noreturn void rv_poweroff(int code)
{
    /* sifive_test: 0x5555 = pass; (code << 16) | 0x3333 = fail with code. */
    *(volatile uint32_t *)VIRT_TEST = code ? ((uint32_t)code << 16) | 0x3333 : 0x5555;
    sbi_call(SBI_EXT_SRST, 0, 0, code ? 1 : 0, 0);        /* shutdown, reason */
    for (;;)
        rv_wfi();
}

_Noreturn void smp_port_panic(const char *message)
{
    static const char prefix[] = "panic: ";
    rv_intr_off();
    int me = (int)rv_tp(), free = -1;
    /* Take the console, but not forever: its holder may be what failed. */
    for (long spins = 0; spins < 10000000; spins++) {
        if (atomic_load_explicit(&console_owner, memory_order_relaxed) == me)
            break;
        if (atomic_compare_exchange_weak_explicit(&console_owner, &free, me,
                                                  memory_order_acquire, memory_order_relaxed))
            break;
        free = -1;
    }
    size_t n = 0;
    while (message[n])
        n++;
    uart_write("\n", 1);
    uart_write(prefix, sizeof prefix - 1);
    uart_write(message, n);
    uart_write("\n", 1);
    rv_poweroff(3);
}

/* ---- cross-calls -----------------------------------------------------------
 * The asker queues a request (on its own stack) on the target hart, raises
 * an IPI and waits.  The target runs queued requests one at a time in its
 * IPI handler, which it can only take with SIE set, i.e. at depth 0,
 * outside every section; or in its own waiting loops (a cross-call, a
 * sleep, a barrier or lock of the kernel), which are outside smpmem
 * sections too.  While one fn runs (`serving`) the hart serves no other,
 * so the two never overlap on one hart's caches.
 *
 * Askers hold nothing while they wait (the queue lock is held only to link
 * and unlink), and poll their own queue: two harts asking each other
 * serve each other.  A waiting hart that is serving blocks others only
 * until its fn returns, and smpmem nests calls only in increasing hart
 * order, so chains of waits (pmm_check stops the world by nesting) end at
 * the highest hart.  A first version held a per-target mailbox lock while
 * waiting; it deadlocked when the waiting hart served a stop-the-world
 * chain that needed that very mailbox.
 *
 * For the caller's own hart fn runs right here, interrupts off, `serving`
 * set (no one else's fn runs here meanwhile); fn may nest further calls. */
static void qlock(struct rv_hart *h)
{
    while (atomic_exchange_explicit(&h->qlock, 1, memory_order_acquire))
        smp_port_relax();
}

static void qunlock(struct rv_hart *h)
{
    atomic_store_explicit(&h->qlock, 0, memory_order_release);
}

/* Interrupts are off in every caller (handler, waiting loops). */
void rv_xcall_poll(void)
{
    int me = (int)rv_tp();
    struct rv_hart *h = &rv_harts[me];
    while (!h->serving && atomic_load_explicit(&h->head, memory_order_relaxed)) {
        qlock(h);
        struct rv_xreq *r = atomic_load_explicit(&h->head, memory_order_relaxed);
        if (r) {
            atomic_store_explicit(&h->head, r->next, memory_order_relaxed);
            if (!r->next)
                h->tail = 0;
        }
        qunlock(h);
        if (!r)
            return;
        h->serving = 1;
        r->fn(me, r->arg);
        h->serving = 0;
        h->xcalls_served++;
        atomic_store_explicit(&r->done, 1, memory_order_release);
    }
}

void smp_port_cross_call(int cpu, void (*fn)(int cpu, void *arg), void *arg)
{
    if ((unsigned)cpu >= RV_MAX_HARTS)
        smp_port_panic("smp_port_cross_call: no such hart");
    smp_port_irq_push();
    int me = (int)rv_tp();
    if (cpu == me) {
        struct rv_hart *h = &rv_harts[me];
        int was = h->serving;
        h->serving = 1;
        fn(cpu, arg);
        h->serving = was;
    } else {
        struct rv_hart *t = &rv_harts[cpu];
        struct rv_xreq r = { fn, arg, 0, 0 };
        qlock(t);
        if (t->tail)
            t->tail->next = &r;
        else
            atomic_store_explicit(&t->head, &r, memory_order_relaxed);
        t->tail = &r;
        qunlock(t);
        sbi_send_ipi_one((unsigned long)cpu);
        while (!atomic_load_explicit(&r.done, memory_order_acquire)) {
            rv_xcall_poll();
            smp_port_relax();
        }
    }
    smp_port_irq_pop();
}

/* ---- sleep / wakeup --------------------------------------------------------
 * A generation counter per hashed channel.  The sleeper reads it while
 * holding lk; every wakeup(chan) is issued under the lock guarding the
 * condition, so one issued after our release moves the counter we watch.
 * Sharing a counter between channels only causes spurious returns. */
#define WAKE_SLOTS 64
static atomic_ulong wake_gen[WAKE_SLOTS];

static atomic_ulong *gen_of(void *chan)
{
    uintptr_t h = (uintptr_t)chan;
    h = (h ^ (h >> 17)) * 0x9e3779b97f4a7c15ULL;
    return &wake_gen[(h >> 40) % WAKE_SLOTS];
}

void smp_port_sleep(void *chan, struct smp_spinlock *lk)
{
    atomic_ulong *g = gen_of(chan);
    unsigned long seen = atomic_load_explicit(g, memory_order_acquire);
    smp_lock_release(lk);
    while (atomic_load_explicit(g, memory_order_acquire) == seen) {
        /* Interrupts may be off (a caller that pushed them): others may
         * still ask this hart, and sleepers are outside smpmem sections. */
        smp_port_irq_push();
        rv_xcall_poll();
        smp_port_irq_pop();
        smp_port_relax();
    }
    smp_lock_acquire(lk);
}

void smp_port_wakeup(void *chan)
{
    atomic_fetch_add_explicit(gen_of(chan), 1, memory_order_release);
}
