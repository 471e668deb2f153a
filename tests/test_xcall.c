/* Asking other CPUs (issue 8): steal, drain, reclaim and check reach other
 * CPUs' caches only through smp_port_cross_call (or, in the locked build,
 * their gate locks).  What that must never do: deadlock when CPUs ask each
 * other (even with interrupts pushed off by a held lock), stall on a CPU
 * that never calls smpmem again, or give NULL while memory is free. */
#include "harness.h"
#include <smpmem/pmm.h>
#include <smpmem/pmm_debug.h>
#include <smpmem/spinlock.h>
#include <smpmem/hosted.h>
#include <smpmem/port.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

#define MiB (1UL << 20)
#define NCPU 8

/* Every CPU stops the world (pmm_check, pmm_drain) and steals while it
 * holds a lock of its own, i.e. with interrupts pushed off, as kernel code
 * calling kalloc under a spinlock does.  Passing = finishing (a deadlock
 * hangs the test, which make check reports as a crash) and staying exact. */
static struct smp_spinlock held_lock[NCPU];
static char held_name[NCPU][16];

static void ask_each_other(int cpu, void *arg)
{
    (void)arg;
    struct rng g = rng_for((uint64_t)cpu);
    long rounds = scaled(400);
    for (long r = 0; r < rounds; r++) {
        smp_lock_acquire(&held_lock[cpu]);          /* interrupts off from here */
        switch (rng_below(&g, 3)) {
        case 0:
            CHECK(pmm_check() == 0, "cpu %d: pmm_check failed under mutual asks", cpu);
            break;
        case 1:
            pmm_drain();
            break;
        default: {
            /* Empty this CPU's cache so the next allocation must steal. */
            void *p[40];
            int n = 0;
            for (; n < 40; n++)
                if (!(p[n] = page_alloc(0)))
                    break;
            CHECK(n == 40, "cpu %d: page_alloc gave NULL under low pressure", cpu);
            while (n--)
                page_free(p[n], 0);
        }
        }
        smp_lock_release(&held_lock[cpu]);
        CHECK(smp_hosted_irq_depth() == 0, "cpu %d: interrupts left pushed off", cpu);
    }
}

TEST(cpus_ask_each_other_with_interrupts_off)
{
    pmm_setup(64 * MiB, NCPU);
    for (int c = 0; c < NCPU; c++) {
        snprintf(held_name[c], sizeof held_name[c], "test.held%d", c);
        smp_lock_init(&held_lock[c], held_name[c]);
    }
    run_on_cpus(NCPU, ask_each_other, NULL);
    CHECK(pmm_check() == 0, "check after");
    smp_lock_forget_range(held_lock, held_lock + NCPU);
    pmm_teardown();
}

/* CPUs 1..7 fill their caches and then never call smpmem again (they wait
 * at a barrier); CPU 0 must still get every page (steal) and run
 * pmm_check and pmm_drain without waiting for them. */
static void park_after_caching(int cpu, void *arg)
{
    (void)arg;
    if (cpu != 0) {
        void *p[64];
        for (int i = 0; i < 64; i++)
            p[i] = page_alloc(0);
        for (int i = 0; i < 64; i++)
            if (p[i])
                page_free(p[i], 0);                 /* into this CPU's cache */
        cpus_barrier();                             /* 1: cached */
        cpus_barrier();                             /* 2: parked until CPU 0 is done */
        return;
    }
    cpus_barrier();
    struct smp_pcp_stats st;
    size_t cached = 0;
    for (int c = 1; c < NCPU; c++)
        if (smp_pmm_cpu_stats(c, &st) == 0)
            cached += st.cached_pages;
    CHECK(cached >= (NCPU - 1) * 64UL, "parked CPUs cache %zu pages", cached);
    CHECK(pmm_check() == 0, "check with parked CPUs");
    size_t total = pmm_total_pages(), got = 0;
    void *list = NULL, *p;
    while ((p = page_alloc(0)) != NULL) {
        *(void **)p = list;
        list = p;
        got++;
    }
    CHECK(got == total, "CPU 0 got %zu of %zu pages with the others parked", got, total);
    while (list) {
        p = list;
        list = *(void **)p;
        page_free(p, 0);
    }
    pmm_drain();
    CHECK(pmm_check() == 0, "check after drain");
    cpus_barrier();
}

TEST(parked_cpus_do_not_stall_others)
{
    pmm_setup(64 * MiB, NCPU);
    run_on_cpus(NCPU, park_after_caching, NULL);
    pmm_teardown();
}

/* NULL means exhausted.  CPUs 1..7 churn single pages through their caches
 * (each holds at most HELD + BURST pages at any instant, caching up to a
 * hundred);
 * CPU 0 asks for 512 KiB blocks again and again.  The region has 32 such
 * blocks and the churners hold at most 7 * (HELD + BURST) < 31 pages, so some block
 * holds no page in use: once every cache is taken back it is free, and
 * every request must succeed.  Without the stopped-world reclaim, caches
 * refilled by the churners split the blocks again between a drain and the
 * retry, and requests returned NULL with most of the region free. */
#define HELD 2
#define BURST 2
#define BIG_ORDER 7
_Static_assert(7 * (HELD + BURST) < 31, "pigeonhole: fewer pages held than 512 KiB blocks");
static atomic_int churning;
static void **all_pages;
static size_t all_count;

static void churn_or_ask_big(int cpu, void *arg)
{
    (void)arg;
    struct rng g = rng_for((uint64_t)cpu + 77);
    /* Fragment first: every CPU frees every NCPU-th page into its own
     * cache, in random order (a cache drains its coldest pages, so the ones
     * it keeps are spread over the whole region): every 512 KiB block then
     * has pages cached on some CPU and the zone alone has no such block. */
    size_t mine = 0;
    for (size_t i = (size_t)cpu; i < all_count; i += NCPU)
        all_pages[mine++ * NCPU + (size_t)cpu] = all_pages[i];
    for (size_t k = mine; k > 1; k--) {
        size_t j = rng_below(&g, k);
        void *t = all_pages[j * NCPU + (size_t)cpu];
        all_pages[j * NCPU + (size_t)cpu] = all_pages[(k - 1) * NCPU + (size_t)cpu];
        all_pages[(k - 1) * NCPU + (size_t)cpu] = t;
    }
    for (size_t k = 0; k < mine; k++)
        page_free(all_pages[k * NCPU + (size_t)cpu], 0);
    cpus_barrier();
    if (cpu == 0) {
        long rounds = scaled(2000);
        int nulls = 0;
        for (long r = 0; r < rounds; r++) {
#ifdef SMP_CHECKED
            size_t trailer = 8;         /* the checked build's trailer must fit in the block */
#else
            size_t trailer = 0;
#endif
            void *b = r & 1 ? page_alloc(BIG_ORDER) : kalloc((SMP_PAGE_SIZE << BIG_ORDER) - trailer);
            if (!b) {
                nulls++;
                continue;
            }
            memset(b, 0xa5, 64);
            if (r & 1)
                page_free(b, BIG_ORDER);
            else
                kfree(b);
        }
        CHECK(nulls == 0, "512 KiB requests gave NULL %d of %ld times while a free block existed",
              nulls, rounds);
        atomic_store(&churning, 0);
        return;
    }
    void *held[HELD] = { 0 };
    while (atomic_load(&churning)) {
        int i = (int)rng_below(&g, HELD);
        if (held[i]) {
            page_free(held[i], 0);
            held[i] = NULL;
        } else {
            held[i] = page_alloc(0);
            CHECK(held[i] != NULL, "cpu %d: page_alloc NULL under low pressure", cpu);
        }
        /* A short burst: two more pages through this CPU's cache. */
        void *p[BURST];
        for (int k = 0; k < BURST; k++)
            p[k] = page_alloc(0);
        for (int k = 0; k < BURST; k++)
            if (p[k])
                page_free(p[k], 0);
    }
    for (int i = 0; i < HELD; i++)
        if (held[i])
            page_free(held[i], 0);
}

TEST(null_only_when_exhausted_under_churn)
{
    pmm_setup(16 * MiB, NCPU);
    REQUIRE(pmm_total_pages() >> BIG_ORDER >= 31, "the region holds 31+ blocks of 512 KiB");
    all_pages = malloc(pmm_total_pages() * sizeof *all_pages);
    REQUIRE(all_pages, "malloc");
    all_count = 0;
    void *p;
    while ((p = page_alloc(0)) != NULL)
        all_pages[all_count++] = p;
    CHECK(all_count == pmm_total_pages(), "one CPU took every page (%zu of %zu)", all_count, pmm_total_pages());
    atomic_store(&churning, 1);
    run_on_cpus(NCPU, churn_or_ask_big, NULL);
    free(all_pages);
    CHECK(pmm_check() == 0, "check after");
    pmm_drain();
    CHECK(pmm_free_pages() == pmm_total_pages(), "every page back after drain");
    pmm_teardown();
}

/* A fast path on a CPU that a cross-call holds must wait for the release:
 * its push does not look at the hold itself (port.h, SMP_PORT_HAS_CPU_WORDS),
 * the words it reads next do, and send it to a slow path that waits.  CPU 0
 * holds CPU 1 and, once CPU 1 has announced a call, gives it many chances
 * to run; the call must not return until the hold ends, and must then
 * succeed.  One round per fast path: kalloc, kfree, page_alloc, page_free. */
enum { OP_KALLOC, OP_KFREE, OP_PAGE_ALLOC, OP_PAGE_FREE, OPS };

static void *held_obj, *held_page;

static void warm_cpu1(int cpu, void *arg)
{
    (void)arg;
    if (cpu != 1)
        return;
    void *o[8], *p[8];
    for (int i = 0; i < 8; i++) {
        o[i] = kalloc(64);
        p[i] = page_alloc(0);
    }
    for (int i = 0; i < 8; i++) {
        kfree(o[i]);
        page_free(p[i], 0);
    }
    /* For page_free under the hold.  Taken here: CPU 1 must make no call
     * but the announced one while CPU 0 holds it, or that call would wait
     * for a hold that waits for CPU 1. */
    held_page = page_alloc(0);
}

static atomic_int hold_round, calling, returned, early[OPS];

static void hold_while_calling(int cpu, void *arg)
{
    (void)cpu;
    int op = (int)(intptr_t)arg;
    atomic_store(&hold_round, op + 1);              /* CPU 1 may call now */
    while (atomic_load(&calling) != op + 1)
        sched_yield();
    for (int i = 0; i < 2000; i++) {
        if (atomic_load(&returned) == op + 1)
            atomic_store(&early[op], 1);
        sched_yield();
    }
}

static void hold_and_call(int cpu, void *arg)
{
    (void)arg;
    for (int op = 0; op < OPS; op++) {
        if (cpu == 0) {
            smp_port_cross_call(1, hold_while_calling, (void *)(intptr_t)op);
            /* Hold again only once CPU 1's call has returned: a call still
             * waiting for this hold to end would wait for the next one,
             * which waits for that call (a deadlock of the test's own). */
            while (atomic_load(&returned) != op + 1)
                sched_yield();
            continue;
        }
        while (atomic_load(&hold_round) != op + 1)
            sched_yield();
        atomic_store(&calling, op + 1);
        switch (op) {
        case OP_KALLOC: held_obj = kalloc(64); break;
        case OP_KFREE: kfree(held_obj); break;
        case OP_PAGE_ALLOC: {
            void *p = page_alloc(0);
            CHECK(p != NULL, "page_alloc after the hold");
            page_free(p, 0);
            break;
        }
        case OP_PAGE_FREE: page_free(held_page, 0); break;
        }
        atomic_store(&returned, op + 1);
        if (op == OP_KALLOC)
            CHECK(held_obj != NULL, "kalloc after the hold");
    }
}

TEST(fast_paths_wait_while_their_cpu_is_held)
{
    pmm_setup(64 * MiB, 2);
    atomic_store(&hold_round, 0);
    atomic_store(&calling, 0);
    atomic_store(&returned, 0);
    static const char *const names[OPS] = { "kalloc", "kfree", "page_alloc", "page_free" };
    /* Warm CPU 1's caches, so each call would finish on its fast path. */
    run_on_cpus(2, warm_cpu1, NULL);
    run_on_cpus(2, hold_and_call, NULL);
    for (int op = 0; op < OPS; op++)
        CHECK(!atomic_load(&early[op]), "%s returned while its CPU was held", names[op]);
    CHECK(pmm_check() == 0, "check after");
    pmm_teardown();
}

int main(void)
{
    return RUN_TESTS(cpus_ask_each_other_with_interrupts_off, parked_cpus_do_not_stall_others,
                     null_only_when_exhausted_under_churn, fast_paths_wait_while_their_cpu_is_held);
}
