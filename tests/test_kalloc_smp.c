/* kalloc/kfree on 8 virtual CPUs: the Nanjing pmm lab's three modules
 * (small: <= 128 B skewed; page: 4 KiB; mixed: ~90% small, ~9% 4 KiB, ~1%
 * 4-64 KiB, 1 in 100 000 a 1-16 MiB block), every block stamped at both
 * ends and checked on free, alignment checked on every block, a quarter of
 * the frees done by another CPU, a global no-overlap check of all live
 * blocks at checkpoints, pmm_check after each phase and full recovery. */
#include "harness.h"
#include <sched.h>
#include "kalloc_util.h"
#include <smpmem/pmm.h>
#include <smpmem/pmm_debug.h>
#include <smpmem/spinlock.h>
#include <smpmem/hosted.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MiB (1UL << 20)
#define GiB (1UL << 30)
#define NCPU 8
#define CHECKPOINTS 4

enum workload { SMALL, PAGE, MIXED };

struct block { char *p; size_t size; uint64_t tag; };

struct inbox {
    pthread_mutex_t mu;
    struct block *v;
    size_t n, cap;
};

struct cpu_state {
    struct block *live;
    size_t nlive, cap;
    struct inbox in;
    long nulls_small, nulls_large, remote_frees, frees;
};

static struct run {
    enum workload kind;
    long ops;
    size_t live_cap;
    struct cpu_state cpu[NCPU];
} run;

static size_t small_size(struct rng *g)
{
    /* Skewed: half the requests are <= 32 B. */
    return rng_below(g, 2) ? 1 + rng_below(g, 32) : 1 + rng_below(g, 128);
}

static size_t size_for(struct rng *g)
{
    switch (run.kind) {
    case SMALL: return small_size(g);
    case PAGE: return 4096;
    default: {
        uint64_t r = rng_below(g, 100000);
        if (r == 0)
            return MiB + rng_below(g, 15 * MiB);
        r %= 100;
        if (r < 90) return small_size(g);
        if (r < 99) return 4096;
        return 4096 + rng_below(g, 60 * 1024);
    }
    }
}

/* Hand b to another CPU for freeing. */
static void inbox_put(struct inbox *in, struct block b)
{
    pthread_mutex_lock(&in->mu);
    if (in->n == in->cap) {
        in->cap = in->cap ? 2 * in->cap : 256;
        in->v = realloc(in->v, in->cap * sizeof *in->v);
    }
    in->v[in->n++] = b;
    pthread_mutex_unlock(&in->mu);
}

static void free_checked(int cpu, struct block b)
{
    CHECK(stamp_intact(b.p, b.size, b.tag), "cpu %d: block %p (%zu B) overwritten: overlap", cpu, (void *)b.p, b.size);
    kfree(b.p);
    run.cpu[cpu].frees++;
}

static void inbox_drain(int cpu)
{
    struct inbox *in = &run.cpu[cpu].in;
    pthread_mutex_lock(&in->mu);
    struct block *v = in->v;
    size_t n = in->n;
    in->v = NULL;
    in->n = in->cap = 0;
    pthread_mutex_unlock(&in->mu);
    for (size_t i = 0; i < n; i++)
        free_checked(cpu, v[i]);
    free(v);
}

static int cmp_block(const void *a, const void *b)
{
    const struct block *x = a, *y = b;
    return x->p < y->p ? -1 : x->p > y->p;
}

/* All CPUs parked at a barrier: no block is in flight, so every live block
 * is in some CPU's live array or inbox.  Sort them all; none may overlap. */
static void global_overlap_check(void)
{
    size_t n = 0;
    for (int c = 0; c < NCPU; c++)
        n += run.cpu[c].nlive + run.cpu[c].in.n;
    struct block *all = malloc((n + 1) * sizeof *all);
    size_t k = 0;
    for (int c = 0; c < NCPU; c++) {
        for (size_t i = 0; i < run.cpu[c].nlive; i++)
            all[k++] = run.cpu[c].live[i];
        for (size_t i = 0; i < run.cpu[c].in.n; i++)
            all[k++] = run.cpu[c].in.v[i];
    }
    qsort(all, n, sizeof *all, cmp_block);
    for (size_t i = 1; i < n; i++)
        CHECK(all[i - 1].p + all[i - 1].size <= all[i].p, "blocks %p+%zu and %p overlap",
              (void *)all[i - 1].p, all[i - 1].size, (void *)all[i].p);
    free(all);
}

/* Work goes in rounds of ROUND ops; blocks sent to other CPUs during a
 * round are freed by them right after the round's barrier, so blocks in
 * flight stay bounded however unevenly 8 threads share 2 cores. */
#define ROUND 256

static void one_op(int cpu, struct cpu_state *st, struct rng *g, uint64_t *seq)
{
    if (st->nlive < st->cap && (st->nlive == 0 || rng_below(g, 100) < 55)) {
        size_t size = size_for(g);
        char *p = kalloc(size);
        if (!p) {
            if (size >= MiB) st->nulls_large++; else st->nulls_small++;
            return;
        }
        CHECK(aligned_for(p, size), "cpu %d: kalloc(%zu) = %p misaligned", cpu, size, (void *)p);
        uint64_t tag = ((uint64_t)cpu << 56) | ++*seq;
        stamp(p, size, tag);
        st->live[st->nlive++] = (struct block){ p, size, tag };
        return;
    }
    size_t k = rng_below(g, st->nlive);
    struct block b = st->live[k];
    st->live[k] = st->live[--st->nlive];
    if (rng_below(g, 4) == 0) {          /* a quarter: freed by another CPU */
        inbox_put(&run.cpu[(cpu + 1 + (int)rng_below(g, NCPU - 1)) % NCPU].in, b);
        st->remote_frees++;
    } else {
        free_checked(cpu, b);
    }
}

static void worker(int cpu, void *arg)
{
    (void)arg;
    struct cpu_state *st = &run.cpu[cpu];
    struct rng g = rng_for((uint64_t)cpu * 1000 + run.kind);
    long rounds = run.ops / ROUND / CHECKPOINTS;
    uint64_t seq = 0;
    for (int phase = 0; phase < CHECKPOINTS; phase++) {
        for (long r = 0; r < (rounds ? rounds : 1); r++) {
            for (int i = 0; i < ROUND; i++)
                one_op(cpu, st, &g, &seq);
            cpus_barrier();
            inbox_drain(cpu);
        }
        cpus_barrier();
        if (cpu == 0) {          /* everyone else is parked at the barrier */
            global_overlap_check();
            CHECK(pmm_check() == 0, "pmm_check at checkpoint %d", phase);
        }
        cpus_barrier();
    }
    while (st->nlive)
        free_checked(cpu, st->live[--st->nlive]);
    cpus_barrier();
    inbox_drain(cpu);
}

static void module(enum workload kind, size_t heap, long ops, size_t live_cap)
{
    char *r = region_map(heap, 0);
    REQUIRE(pmm_init(r, r + heap, NCPU) == 0, "init");
    size_t total = pmm_total_pages();
    memset(&run, 0, sizeof run);
    run.kind = kind;
    run.ops = ops;
    for (int c = 0; c < NCPU; c++) {
        run.cpu[c].cap = live_cap;
        run.cpu[c].live = malloc(live_cap * sizeof(struct block));
        pthread_mutex_init(&run.cpu[c].in.mu, NULL);
    }
    run_on_cpus(NCPU, worker, NULL);
    long nulls_small = 0, nulls_large = 0, remote = 0, frees = 0;
    for (int c = 0; c < NCPU; c++) {
        nulls_small += run.cpu[c].nulls_small;
        nulls_large += run.cpu[c].nulls_large;
        remote += run.cpu[c].remote_frees;
        frees += run.cpu[c].frees;
        free(run.cpu[c].live);
        pthread_mutex_destroy(&run.cpu[c].in.mu);
    }
    CHECK(nulls_small == 0, "%ld NULLs for small/page requests under low pressure", nulls_small);
    CHECK(remote * 5 >= frees && remote > 0, "remote frees %ld of %ld: want about a quarter", remote, frees);
    CHECK(pmm_check() == 0, "check after the run");
    pmm_drain();
    CHECK(pmm_free_pages() == total, "free %zu == total %zu after drain", pmm_free_pages(), total);
    CHECK(pmm_check() == 0, "check after drain");
    printf("  %s: %ld frees, %ld remote, %ld large NULLs; kmem contended spins %lu\n",
           kind == SMALL ? "small" : kind == PAGE ? "page" : "mixed", frees, remote, nulls_large,
           smp_lock_contended("kmem"));
    pmm_reset();
    region_unmap(r, heap, 0);
}

TEST(small_module_64_mib) { module(SMALL, 64 * MiB, scaled(400000), 4000); }
TEST(page_module_64_mib) { module(PAGE, 64 * MiB, scaled(200000), 300); }
TEST(mixed_module_1_gib) { module(MIXED, GiB, scaled(400000), 2000); }
TEST(small_module_1_gib) { module(SMALL, GiB, scaled(200000), 20000); }

/* pmm_drain and pmm_check while the other CPUs churn: both stop the world
 * (every CPU held through cross-calls, or its gate lock), so they must
 * interleave with the fast paths without deadlock, and check must find the
 * metadata consistent at every instant.  CPU 0 waits for the churners to
 * make some progress between rounds: a world stopped back to back starves
 * them (on two cores under the hosted port, to a few operations a second),
 * which says nothing about correctness.  The churners go on past their
 * count until CPU 0 has finished a round, so at least one round overlaps
 * them however late CPU 0's thread starts. */
static atomic_int churn_done;
static atomic_long churn_progress;
static atomic_int churn_rounds;

static void churn_with_drains(int cpu, void *arg)
{
    (void)arg;
    if (cpu == 0) {
        int rounds = 0, bad = 0;
        while (atomic_load(&churn_done) < NCPU - 1) {
            long seen = atomic_load(&churn_progress);
            pmm_drain();
            bad += pmm_check() != 0;
            rounds++;
            atomic_store(&churn_rounds, rounds);
            while (atomic_load(&churn_progress) == seen && atomic_load(&churn_done) < NCPU - 1)
                sched_yield();
        }
        CHECK(bad == 0, "pmm_check failed %d of %d times during churn", bad, rounds);
        CHECK(rounds > 0, "cpu 0 drained and checked");
        printf("  cpu 0 ran pmm_drain + pmm_check %d times while 7 CPUs churned\n", rounds);
        return;
    }
    struct rng g = rng_for((uint64_t)cpu + 500);
    enum { LIVE = 256 };
    struct block live[LIVE];
    int n = 0;
    long ops = scaled(200000);
    for (long i = 0; i < ops || atomic_load(&churn_rounds) == 0; i++) {
        if ((i & 15) == 0)
            atomic_fetch_add(&churn_progress, 1);
        if (n < LIVE && (n == 0 || rng_below(&g, 2))) {
            size_t size = rng_below(&g, 8) ? 1 + rng_below(&g, 2048) : (size_t)4096 << rng_below(&g, 3);
            char *p = kalloc(size);
            CHECK(p != NULL, "cpu %d: kalloc(%zu) NULL under low pressure", cpu, size);
            if (!p)
                continue;
            uint64_t tag = ((uint64_t)cpu << 56) | (uint64_t)i;
            stamp(p, size, tag);
            live[n++] = (struct block){ p, size, tag };
        } else {
            int k = (int)rng_below(&g, (uint64_t)n);
            free_checked(cpu, live[k]);
            live[k] = live[--n];
        }
    }
    while (n)
        free_checked(cpu, live[--n]);
    atomic_fetch_add(&churn_done, 1);
}

TEST(drain_and_check_while_cpus_churn)
{
    char *r = region_map(64 * MiB, 0);
    REQUIRE(pmm_init(r, r + 64 * MiB, NCPU) == 0, "init");
    memset(&run, 0, sizeof run);
    atomic_store(&churn_done, 0);
    atomic_store(&churn_progress, 0);
    atomic_store(&churn_rounds, 0);
    run_on_cpus(NCPU, churn_with_drains, NULL);
    pmm_drain();
    CHECK(pmm_free_pages() == pmm_total_pages(), "recovered");
    CHECK(pmm_check() == 0, "check");
    pmm_reset();
    region_unmap(r, 64 * MiB, 0);
}

/* ncpu at the compile-time maximum, threads bound to the highest CPU ids:
 * per-CPU arrays indexed at the top, the largest region header. */
static void churn_high_cpu(int i, void *arg)
{
    (void)arg;
    int cpu = SMP_MAX_CPUS - NCPU + i;
    smp_hosted_bind_cpu(cpu);
    struct rng g = rng_for((uint64_t)cpu);
    enum { LIVE = 128 };
    struct block live[LIVE];
    int n = 0;
    for (long k = 0; k < scaled(50000); k++) {
        if (n < LIVE && (n == 0 || rng_below(&g, 2))) {
            size_t size = 1 + rng_below(&g, rng_below(&g, 8) ? 2048 : 20000);
            char *p = kalloc(size);
            CHECK(p != NULL && aligned_for(p, size), "cpu %d: kalloc(%zu) = %p", cpu, size, (void *)p);
            if (!p)
                continue;
            stamp(p, size, ((uint64_t)cpu << 56) | (uint64_t)k);
            live[n++] = (struct block){ p, size, ((uint64_t)cpu << 56) | (uint64_t)k };
        } else {
            int j = (int)rng_below(&g, (uint64_t)n);
            free_checked(cpu % NCPU, live[j]);
            live[j] = live[--n];
        }
    }
    while (n)
        free_checked(cpu % NCPU, live[--n]);
    smp_hosted_bind_cpu(i);
}

TEST(highest_cpu_ids)
{
    char *r = region_map(64 * MiB, 0);
    REQUIRE(pmm_init(r, r + 64 * MiB, SMP_MAX_CPUS) == 0, "init with ncpu = %d", SMP_MAX_CPUS);
    memset(&run, 0, sizeof run);
    run_on_cpus(NCPU, churn_high_cpu, NULL);
    struct smp_pcp_stats st;
    CHECK(smp_pmm_cpu_stats(SMP_MAX_CPUS - 1, &st) == 0 && st.refills > 0, "cpu %d used its page cache", SMP_MAX_CPUS - 1);
    CHECK(pmm_check() == 0, "check");
    pmm_drain();
    CHECK(pmm_free_pages() == pmm_total_pages(), "recovered");
    pmm_reset();
    region_unmap(r, 64 * MiB, 0);
}

int main(void)
{
    return RUN_TESTS(small_module_64_mib, page_module_64_mib, mixed_module_1_gib, small_module_1_gib,
                     drain_and_check_while_cpus_churn, highest_cpu_ids);
}
