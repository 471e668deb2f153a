/* Allocation in interrupt context: every hart's timer handler allocates and
 * frees objects (kept across ticks, so they interleave with the main loop's
 * own blocks in the same magazines) and pages, while every hart's main loop
 * hammers the same per-CPU caches.  The handler runs at push depth 0 (the
 * port only takes interrupts there), so it may call smpmem like any code. */
#include "suite.h"
#include <smpmem/pmm.h>

#define HELD 8

static struct irq_cpu {
    _Alignas(64) void *held[HELD];
    size_t size[HELD];
    uint64_t tag[HELD];
    unsigned pos;
    struct prng g;
    long ops, pages, nulls, bad;
} irq[RV_MAX_HARTS];

static void tick_alloc(int cpu)
{
    struct irq_cpu *s = &irq[cpu];
    unsigned slot = s->pos++ % HELD;
    if (s->held[slot]) {
        if (!stamp_intact(s->held[slot], s->size[slot], s->tag[slot]))
            s->bad++;
        smp_kfree(s->held[slot]);
        s->held[slot] = 0;
    }
    size_t size = 1 + prng_below(&s->g, prng_below(&s->g, 8) ? 2048 : 16384);
    void *p = smp_kalloc(size);
    if (p) {
        if (!aligned_for(p, size))
            s->bad++;
        s->held[slot] = p;
        s->size[slot] = size;
        s->tag[slot] = prng_next(&s->g);
        stamp(p, size, s->tag[slot]);
    } else {
        s->nulls++;
    }
    unsigned order = (unsigned)prng_below(&s->g, 3);
    uint64_t *pg = smp_page_alloc(order);
    if (pg) {
        uint64_t t = prng_next(&s->g), last = (4096UL << order) / 8 - 1;
        pg[0] = t;
        pg[last] = ~t;
        if (pg[0] != t || pg[last] != ~t)
            s->bad++;
        smp_page_free(pg, order);
        s->pages++;
    } else {
        s->nulls++;
    }
    s->ops++;
}

static void release_held(int cpu, void *arg)
{
    (void)arg;
    smp_port_irq_push();               /* the handler cannot run here meanwhile */
    struct irq_cpu *s = &irq[cpu];
    for (int i = 0; i < HELD; i++)
        if (s->held[i]) {
            if (!stamp_intact(s->held[i], s->size[i], s->tag[i]))
                s->bad++;
            smp_kfree(s->held[i]);
            s->held[i] = 0;
        }
    smp_port_irq_pop();
}

#define MIN_TICKS 25

static void hammer(int cpu, void *arg)
{
    long iters = *(long *)arg;
    struct rng g = rng_for((uint64_t)cpu);
    uint64_t deadline = rv_time() + 20 * RV_TIMEBASE_HZ;
    for (long it = 0; it < iters || irq[cpu].ops < MIN_TICKS; it++) {
        if (rv_time() > deadline) {
            CHECK(0, "cpu %d: only %ld timer allocations in 20 s", cpu, irq[cpu].ops);
            break;
        }
        void *p[8];
        size_t sz[8];
        for (int i = 0; i < 8; i++) {
            sz[i] = 1 + rng_below(&g, 3000);
            p[i] = smp_kalloc(sz[i]);
            CHECK(p[i], "cpu %d: kalloc NULL", cpu);
            if (p[i])
                stamp(p[i], sz[i], (uint64_t)it * 8 + (uint64_t)i);
        }
        void *pg = smp_page_alloc(0);
        CHECK(pg, "cpu %d: page_alloc NULL", cpu);
        for (int i = 0; i < 8; i++)
            if (p[i]) {
                CHECK(stamp_intact(p[i], sz[i], (uint64_t)it * 8 + (uint64_t)i),
                      "cpu %d: block %p overwritten (by an interrupt handler?)", cpu, p[i]);
                smp_kfree(p[i]);
            }
        if (pg)
            smp_page_free(pg, 0);
    }
}

TEST(timer_handlers_allocate_while_harts_hammer)
{
    suite_region(64 * MiB);
    for (int c = 0; c < NCPU; c++) {
        irq[c] = (struct irq_cpu){ .g = prng_seed(test_seed(), 1000 + (uint64_t)c) };
    }
    long iters = scaled(20000);
    timer_set_period_us(500);
    timer_hook = tick_alloc;
    run_on_cpus(NCPU, hammer, &iters);
    timer_hook = 0;
    timer_set_period_us((unsigned long)bootarg_num("tick", 2000));
    run_on_cpus(NCPU, release_held, 0);
    long ops = 0, pages = 0, nulls = 0, bad = 0;
    for (int c = 0; c < NCPU; c++) {
        CHECK(irq[c].ops >= MIN_TICKS, "cpu %d: %ld allocations in its timer handler", c, irq[c].ops);
        ops += irq[c].ops;
        pages += irq[c].pages;
        nulls += irq[c].nulls;
        bad += irq[c].bad;
    }
    kprintf("  timer handlers: %ld ticks with kalloc+kfree, %ld page alloc+free, %ld NULLs, %ld bad\n",
            ops, pages, nulls, bad);
    CHECK(bad == 0, "%ld corrupted or misaligned blocks in interrupt context", bad);
    CHECK(nulls == 0, "%ld NULLs in interrupt context with memory to spare", nulls);
    smp_pmm_drain();
    CHECK(smp_pmm_check() == 0, "pmm_check");
    CHECK(smp_pmm_free_pages() == smp_pmm_total_pages(), "pages lost");
    suite_region_done();
}

int suite_irq(void)
{
    return RUN_TESTS(timer_handlers_allocate_while_harts_hammer);
}
