/* kalloc/kfree on every hart, the hosted test_kalloc_smp modules scaled for
 * TCG: small (1 B - 4 KiB, slabs and magazines), page (4 KiB - 16 KiB, the
 * buddy through kalloc) and mixed (up to 1 MiB).  Every block is stamped
 * and checked for natural alignment; a quarter of the frees are remote
 * (the block goes to another hart's inbox, which that hart frees). */
#include "suite.h"
#include <smpmem/pmm.h>

enum kind { SMALL, PAGE, MIXED };

struct blk { void *p; size_t size; uint64_t tag; };

#define INBOX 256
struct cpu_state {
    struct blk *live;
    size_t n;
    struct tlock lock;                 /* guards inbox/in_n */
    struct blk inbox[INBOX];
    size_t in_n;
    long frees, remote, large_nulls;
};

static struct {
    enum kind kind;
    long iters;
    size_t cap;
    struct cpu_state cpu[RV_MAX_HARTS];
} run;

static size_t size_for(struct rng *g)
{
    switch (run.kind) {
    case SMALL: return 1 + rng_below(g, 4096);
    case PAGE:  return 4097 + rng_below(g, 16384 - 4096);
    default: {
        uint64_t r = rng_below(g, 100);
        if (r < 70) return 1 + rng_below(g, 4096);
        if (r < 99) return 4097 + rng_below(g, 60 * 1024);
        return 65 * 1024 + rng_below(g, 959 * 1024);
    }
    }
}

static void free_checked(int cpu, struct blk b)
{
    CHECK(stamp_intact(b.p, b.size, b.tag), "cpu %d: block %p (%lu bytes) overwritten", cpu, b.p,
          (unsigned long)b.size);
    smp_kfree(b.p);
    run.cpu[cpu].frees++;
}

static void drain_inbox(int cpu)
{
    struct cpu_state *s = &run.cpu[cpu];
    struct blk took[INBOX];
    tlock_acquire(&s->lock);
    size_t n = s->in_n;
    for (size_t i = 0; i < n; i++)
        took[i] = s->inbox[i];
    s->in_n = 0;
    tlock_release(&s->lock);
    for (size_t i = 0; i < n; i++)
        free_checked(cpu, took[i]);
}

static int give_away(int to, struct blk b)
{
    struct cpu_state *s = &run.cpu[to];
    tlock_acquire(&s->lock);
    int ok = s->in_n < INBOX;
    if (ok)
        s->inbox[s->in_n++] = b;
    tlock_release(&s->lock);
    return ok;
}

static void module_cpu(int cpu, void *arg)
{
    (void)arg;
    struct cpu_state *s = &run.cpu[cpu];
    struct rng g = rng_for((uint64_t)cpu);
    for (long it = 0; it < run.iters; it++) {
        if (s->n < run.cap && (s->n == 0 || rng_below(&g, 100) < 55)) {
            size_t size = size_for(&g);
            void *p = smp_kalloc(size);
            if (!p) {
                if (size > 64 * 1024)
                    s->large_nulls++;
                else
                    CHECK(0, "cpu %d: kalloc(%lu) NULL under low pressure", cpu, (unsigned long)size);
                continue;
            }
            CHECK(aligned_for(p, size), "cpu %d: kalloc(%lu) = %p not naturally aligned", cpu,
                  (unsigned long)size, p);
            struct blk b = { p, size, rng_next(&g) };
            stamp(p, size, b.tag);
            s->live[s->n++] = b;
        } else {
            size_t i = rng_below(&g, s->n);
            struct blk b = s->live[i];
            s->live[i] = s->live[--s->n];
            int to = NCPU > 1 && rng_below(&g, 4) == 0 ? (cpu + 1 + (int)rng_below(&g, (uint64_t)NCPU - 1)) % NCPU : cpu;
            if (to != cpu) {
                CHECK(stamp_intact(b.p, b.size, b.tag), "cpu %d: block %p overwritten", cpu, b.p);
                if (give_away(to, b)) {
                    s->remote++;
                    continue;
                }
            }
            free_checked(cpu, b);
        }
        if ((it & 63) == 0)
            drain_inbox(cpu);
    }
    while (s->n)
        free_checked(cpu, s->live[--s->n]);
    cpus_barrier();                   /* no one gives blocks away any more */
    drain_inbox(cpu);
}

static void module(enum kind kind, size_t region, long iters, size_t cap, const char *name)
{
    suite_region(region);
    run.kind = kind;
    run.iters = iters;
    run.cap = cap;
    for (int c = 0; c < NCPU; c++) {
        struct cpu_state *s = &run.cpu[c];
        s->live = region_map(cap * sizeof(struct blk), 0);
        s->n = s->in_n = 0;
        s->frees = s->remote = s->large_nulls = 0;
        atomic_store(&s->lock.v, 0);
    }
    run_on_cpus(NCPU, module_cpu, 0);
    long frees = 0, remote = 0, nulls = 0;
    for (int c = 0; c < NCPU; c++) {
        frees += run.cpu[c].frees;
        remote += run.cpu[c].remote;
        nulls += run.cpu[c].large_nulls;
    }
    kprintf("  %s: %ld frees, %ld remote, %ld large NULLs\n", name, frees, remote, nulls);
    smp_pmm_drain();
    CHECK(smp_pmm_check() == 0, "pmm_check after the %s module", name);
    CHECK(smp_pmm_free_pages() == smp_pmm_total_pages(), "%s: pages lost: %lu of %lu free", name,
          (unsigned long)smp_pmm_free_pages(), (unsigned long)smp_pmm_total_pages());
    for (int c = NCPU - 1; c >= 0; c--)
        region_unmap(run.cpu[c].live, cap * sizeof(struct blk), 0);
    suite_region_done();
}

/* Small: 8 harts x 2000 blocks of 2.7 KiB on average (the classes up to
 * 4 KiB) hold about 43 MiB, two thirds of the region: low pressure. */
TEST(small_module) { module(SMALL, 64 * MiB, scaled(40000), 2000, "small"); }
/* Page: 8 x 300 blocks of 13 KiB on average (orders 1 and 2) hold about
 * 31 MiB, a third of the region. */
TEST(page_module) { module(PAGE, 96 * MiB, scaled(20000), 300, "page"); }
TEST(mixed_module) { module(MIXED, 128 * MiB, scaled(20000), 150, "mixed"); }

int suite_kalloc(void)
{
    return RUN_TESTS(small_module, page_module, mixed_module);
}
