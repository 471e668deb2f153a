/* Pages on every hart: stamped churn (an overlap is a failure),
 * allocate-everything with cross-CPU frees, one hart taking every page by
 * stealing from idle harts (cross-calls to harts asleep in wfi), harts that
 * all exhaust memory with interrupts pushed off (they must serve each
 * other's cross-calls while they wait), and stop-the-world pmm_drain +
 * pmm_check while the others churn. */
#include "suite.h"
#include "../../../tests/page_churn.h"
#include <smpmem/pmm.h>
#include <smpmem/pmm_debug.h>
#include <smpmem/port.h>

static char *region;
static size_t region_bytes;

char *suite_region(size_t bytes)
{
    region_bytes = bytes;
    region = region_map(bytes, 0);
    if (smp_pmm_init(region, region + bytes, NCPU) != 0)
        smp_port_panic("suite_region: pmm_init failed");
    return region;
}

void suite_region_done(void)
{
    smp_pmm_reset();
    region_unmap(region, region_bytes, 0);
}

static void churn(int cpu, void *arg)
{
    stamped_page_churn(cpu, *(long *)arg);
}

TEST(stamped_churn)
{
    suite_region(64 * MiB);
    long rounds = scaled(3000);
    run_on_cpus(NCPU, churn, &rounds);
    CHECK(smp_pmm_check() == 0, "pmm_check after churn");
    CHECK(smp_pmm_free_pages() == smp_pmm_total_pages(), "pages lost: %lu of %lu free",
          (unsigned long)smp_pmm_free_pages(), (unsigned long)smp_pmm_total_pages());
    suite_region_done();
}

/* --- allocate everything: every CPU takes pages until NULL, stamps each
 * with its own address; then all stamps must be intact (no page twice), the
 * counts must add up, and each CPU frees its neighbour's pages. */
struct grab {
    uint64_t **addr[RV_MAX_HARTS];
    size_t n[RV_MAX_HARTS], cap;
};

static void grab_all(int cpu, void *arg)
{
    struct grab *gr = arg;
    uint64_t *p;
    size_t n = 0;
    while (n < gr->cap && (p = smp_page_alloc(0)) != 0) {
        p[0] = (uint64_t)(uintptr_t)p;
        p[511] = ~(uint64_t)(uintptr_t)p;
        gr->addr[cpu][n++] = p;
    }
    gr->n[cpu] = n;
}

static void check_and_free_neighbour(int cpu, void *arg)
{
    struct grab *gr = arg;
    int from = (cpu + 1) % NCPU;
    cpus_barrier();
    for (size_t i = 0; i < gr->n[from]; i++) {
        uint64_t *p = gr->addr[from][i];
        CHECK(p[0] == (uint64_t)(uintptr_t)p && p[511] == ~(uint64_t)(uintptr_t)p,
              "page %p handed out twice", (void *)p);
        smp_page_free(p, 0);
    }
}

TEST(allocate_everything_then_cross_cpu_free)
{
    suite_region(32 * MiB);
    struct grab gr = { .cap = smp_pmm_total_pages() + 1 };
    for (int c = 0; c < NCPU; c++)
        gr.addr[c] = region_map(gr.cap * sizeof(uint64_t *), 0);
    run_on_cpus(NCPU, grab_all, &gr);
    size_t got = 0;
    for (int c = 0; c < NCPU; c++)
        got += gr.n[c];
    CHECK(got == smp_pmm_total_pages(), "CPUs got %lu pages of %lu", (unsigned long)got,
          (unsigned long)smp_pmm_total_pages());
    run_on_cpus(NCPU, check_and_free_neighbour, &gr);
    CHECK(smp_pmm_check() == 0, "pmm_check");
    CHECK(smp_pmm_free_pages() == smp_pmm_total_pages(), "pages lost");
    for (int c = NCPU - 1; c >= 0; c--)
        region_unmap(gr.addr[c], gr.cap * sizeof(uint64_t *), 0);
    suite_region_done();
}

/* --- stealing: every CPU fills its cache, then CPU 0 alone takes every
 * page: the others are idle in wfi and give theirs up through IPIs. */
static void fill_cache(int cpu, void *arg)
{
    (void)arg;
    (void)cpu;
    void *p[96];
    for (int i = 0; i < 96; i++)
        p[i] = smp_page_alloc(0);
    for (int i = 0; i < 96; i++)
        smp_page_free(p[i], 0);
}

TEST(one_cpu_gets_every_page_by_stealing)
{
    suite_region(32 * MiB);
    run_on_cpus(NCPU, fill_cache, 0);
    struct smp_pcp_stats st;
    size_t cached_elsewhere = 0;
    for (int c = 1; c < NCPU; c++)
        if (smp_pmm_cpu_stats(c, &st) == 0)
            cached_elsewhere += st.cached_pages;
    struct grab gr = { .cap = smp_pmm_total_pages() + 1 };
    gr.addr[0] = region_map(gr.cap * sizeof(uint64_t *), 0);
    run_on_cpus(1, grab_all, &gr);
    CHECK(gr.n[0] == smp_pmm_total_pages(), "cpu 0 got %lu of %lu pages (%lu were cached on others)",
          (unsigned long)gr.n[0], (unsigned long)smp_pmm_total_pages(), (unsigned long)cached_elsewhere);
    if (NCPU > 1)
        CHECK(cached_elsewhere > 0, "the other CPUs cached nothing: stealing not exercised");
    for (size_t i = 0; i < gr.n[0]; i++)
        smp_page_free(gr.addr[0][i], 0);
    CHECK(smp_pmm_check() == 0, "pmm_check");
    region_unmap(gr.addr[0], gr.cap * sizeof(uint64_t *), 0);
    suite_region_done();
}

/* --- every CPU exhausts memory with interrupts pushed off: each must steal
 * from the others while they, too, wait with interrupts off. */
static void grab_all_irqs_off(int cpu, void *arg)
{
    smp_port_irq_push();
    cpus_barrier();
    grab_all(cpu, arg);
    cpus_barrier();
    struct grab *gr = arg;
    for (size_t i = 0; i < gr->n[cpu]; i++)
        smp_page_free(gr->addr[cpu][i], 0);
    smp_port_irq_pop();
}

TEST(everyone_exhausts_memory_with_interrupts_off)
{
    suite_region(16 * MiB);
    run_on_cpus(NCPU, fill_cache, 0);
    struct grab gr = { .cap = smp_pmm_total_pages() + 1 };
    for (int c = 0; c < NCPU; c++)
        gr.addr[c] = region_map(gr.cap * sizeof(uint64_t *), 0);
    run_on_cpus(NCPU, grab_all_irqs_off, &gr);
    size_t got = 0;
    for (int c = 0; c < NCPU; c++)
        got += gr.n[c];
    CHECK(got == smp_pmm_total_pages(), "CPUs got %lu pages of %lu", (unsigned long)got,
          (unsigned long)smp_pmm_total_pages());
    CHECK(smp_pmm_check() == 0, "pmm_check");
    CHECK(smp_pmm_free_pages() == smp_pmm_total_pages(), "pages lost");
    for (int c = NCPU - 1; c >= 0; c--)
        region_unmap(gr.addr[c], gr.cap * sizeof(uint64_t *), 0);
    suite_region_done();
}

/* --- stop the world under load: CPU 0 drains and checks (nested
 * cross-calls through every hart) while the others churn pages and objects. */
static atomic_int churning;

static void check_while_churning(int cpu, void *arg)
{
    long rounds = *(long *)arg;
    if (cpu == 0) {
        int n = 0;
        while (atomic_load(&churning) > 0 || n == 0) {
            smp_pmm_drain();
            CHECK(smp_pmm_check() == 0, "pmm_check under load (round %d)", n);
            n++;
        }
        if (NCPU > 1)
            kprintf("  cpu 0 ran pmm_drain + pmm_check %d times while %d harts churned\n", n,
                    NCPU - 1);
        return;
    }
    struct rng g = rng_for((uint64_t)cpu);
    for (long r = 0; r < rounds; r++) {
        void *p[16];
        size_t sz[16];
        int order[16];                  /* -1: from kalloc */
        for (int i = 0; i < 16; i++) {
            sz[i] = 1 + rng_below(&g, 6000);
            order[i] = rng_below(&g, 4) ? -1 : (int)rng_below(&g, 3);
            p[i] = order[i] < 0 ? smp_kalloc(sz[i]) : smp_page_alloc((unsigned)order[i]);
            if (p[i])
                stamp(p[i], sz[i] < 4096 ? sz[i] : 4096, (uint64_t)cpu * 1000 + (uint64_t)i);
        }
        for (int i = 0; i < 16; i++) {
            if (!p[i])
                continue;
            CHECK(stamp_intact(p[i], sz[i] < 4096 ? sz[i] : 4096, (uint64_t)cpu * 1000 + (uint64_t)i),
                  "cpu %d: block %p overwritten", cpu, p[i]);
            if (order[i] < 0)
                smp_kfree(p[i]);
            else
                smp_page_free(p[i], (unsigned)order[i]);
        }
    }
    atomic_fetch_sub(&churning, 1);
}

TEST(drain_and_check_while_cpus_churn)
{
    suite_region(32 * MiB);
    long rounds = scaled(2000);
    atomic_store(&churning, NCPU - 1);
    run_on_cpus(NCPU, check_while_churning, &rounds);
    smp_pmm_drain();
    CHECK(smp_pmm_check() == 0, "pmm_check");
    CHECK(smp_pmm_free_pages() == smp_pmm_total_pages(), "pages lost");
    suite_region_done();
}

int suite_pages(void)
{
    return RUN_TESTS(stamped_churn, allocate_everything_then_cross_cpu_free,
                     one_cpu_gets_every_page_by_stealing,
                     everyone_exhausts_memory_with_interrupts_off,
                     drain_and_check_while_cpus_churn);
}
