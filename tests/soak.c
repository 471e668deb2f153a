/* make soak: minutes of randomized churn on NCPU virtual CPUs at once
 * (SOAK_SECONDS, default 120; make check runs 10 s).  Each CPU allocates
 * and frees objects of every class and page blocks of orders 0-5, stamps
 * every block and checks the stamp and natural alignment, and hands some
 * blocks to another CPU to free (remote frees).  Meanwhile CPU 0 runs
 * pmm_check every SOAK_CHECK_MS (default 100) and pmm_drain about every
 * second, so checks and drains stop the world under load.  The region is
 * small enough that allocations sometimes find it exhausted (NULL is
 * counted, never a failure).  At the end everything is freed and drained:
 * the leak count (total - free pages) must be 0 and pmm_check clean. */
#define _GNU_SOURCE
#include "harness.h"
#include "kalloc_util.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <smpmem/pmm.h>
#include <smpmem/pmm_debug.h>

#define MiB (1UL << 20)
#define REGION (12 * MiB)
#define NCPU 4
#define HELD 384
#define BOX 64

struct blk { void *p; size_t size; int order; uint64_t tag; };

/* A mailbox per CPU: blocks other CPUs hand it to free. */
static struct mailbox {
    pthread_mutex_t mu;
    struct blk b[BOX];
    int n;
} box[NCPU];

static struct cpu_stats {
    unsigned long ops, allocs, nulls, frees, sent, remote_frees, checks, drains;
} stats[NCPU];

static double deadline, check_ms;
static atomic_int stop;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static size_t bytes_of(const struct blk *b)
{
    return b->order >= 0 ? SMP_PAGE_SIZE << b->order : b->size;
}

static void release(struct blk *b)
{
    CHECK(stamp_intact(b->p, bytes_of(b), b->tag), "block %p (%zu bytes) lost its stamp", b->p,
          bytes_of(b));
    if (b->order >= 0)
        page_free(b->p, (unsigned)b->order);
    else
        kfree(b->p);
}

static int post(int to, struct blk b)
{
    struct mailbox *m = &box[to];
    pthread_mutex_lock(&m->mu);
    int ok = m->n < BOX;
    if (ok)
        m->b[m->n++] = b;
    pthread_mutex_unlock(&m->mu);
    return ok;
}

static int collect(int cpu, struct blk *out)
{
    struct mailbox *m = &box[cpu];
    pthread_mutex_lock(&m->mu);
    int got = m->n;
    for (int i = 0; i < got; i++)
        out[i] = m->b[i];
    m->n = 0;
    pthread_mutex_unlock(&m->mu);
    return got;
}

static void churn(int cpu, void *arg)
{
    (void)arg;
    struct prng r = prng_seed(test_seed(), (uint64_t)cpu);
    struct cpu_stats *st = &stats[cpu];
    static __thread struct blk held[HELD];
    struct blk inbox[BOX];
    int n = 0;
    double next_check = now() + check_ms / 1000, next_drain = now() + 1;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        st->ops++;
        unsigned pick = (unsigned)prng_below(&r, 100);
        if (pick < 45 && n < HELD) {
            struct blk b = { 0, 0, -1, prng_next(&r) };
            if (prng_below(&r, 5)) {
                b.size = prng_below(&r, 4) ? prng_range(&r, 1, 256) : prng_range(&r, 257, 2048);
                b.p = kalloc(b.size);
                CHECK(!b.p || aligned_for(b.p, b.size), "kalloc(%zu) = %p misaligned", b.size, b.p);
            } else {
                b.order = (int)prng_below(&r, 6);
                b.p = page_alloc((unsigned)b.order);
                CHECK(!b.p || ((uintptr_t)b.p & ((SMP_PAGE_SIZE << b.order) - 1)) == 0,
                      "page_alloc(%d) = %p misaligned", b.order, b.p);
            }
            st->allocs++;
            if (!b.p) {
                st->nulls++;
                continue;
            }
            stamp(b.p, bytes_of(&b), b.tag);
            held[n++] = b;
        } else if (pick < 85 || n == HELD) {
            if (n) {
                int i = (int)prng_below(&r, (uint64_t)n);
                release(&held[i]);
                held[i] = held[--n];
                st->frees++;
            }
        } else if (pick < 95) {
            if (n) {
                int i = (int)prng_below(&r, (uint64_t)n);
                int to = (cpu + 1 + (int)prng_below(&r, NCPU - 1)) % NCPU;
                if (post(to, held[i])) {
                    held[i] = held[--n];
                    st->sent++;
                }
            }
        } else {
            int got = collect(cpu, inbox);
            for (int i = 0; i < got; i++)
                release(&inbox[i]);
            st->remote_frees += (unsigned long)got;
        }
        if ((st->ops & 255) == 0) {
            double t = now();
            if (t >= deadline)
                atomic_store(&stop, 1);
            if (cpu == 0 && t >= next_check) {
                CHECK(pmm_check() == 0, "pmm_check under load (its report is above)");
                st->checks++;
                next_check = t + check_ms / 1000;
            }
            if (cpu == 0 && t >= next_drain) {
                pmm_drain();
                st->drains++;
                next_drain = t + 1;
            }
        }
    }
    while (n)
        release(&held[--n]);
    cpus_barrier();               /* nobody posts any more */
    int got = collect(cpu, inbox);
    for (int i = 0; i < got; i++)
        release(&inbox[i]);
    st->remote_frees += (unsigned long)got;
}

TEST(soak)
{
    const char *s = getenv("SOAK_SECONDS");
    double secs = s ? atof(s) : 120;
    const char *c = getenv("SOAK_CHECK_MS");
    check_ms = c ? atof(c) : 100;
    char *region = region_map(REGION, 0);
    REQUIRE(pmm_init(region, region + REGION, NCPU) == 0, "pmm_init");
    for (int i = 0; i < NCPU; i++)
        pthread_mutex_init(&box[i].mu, 0);
    double t0 = now();
    deadline = t0 + secs;
    run_on_cpus(NCPU, churn, 0);
    double took = now() - t0;
    pmm_drain();
    size_t total = pmm_total_pages(), free = pmm_free_pages();
    CHECK(free == total, "leak: %zu of %zu pages not free after freeing all and draining",
          total - free, total);
    CHECK(pmm_check() == 0, "pmm_check at the end");
    struct cpu_stats sum = { 0 };
    for (int i = 0; i < NCPU; i++) {
        sum.ops += stats[i].ops;
        sum.allocs += stats[i].allocs;
        sum.nulls += stats[i].nulls;
        sum.sent += stats[i].sent;
        sum.remote_frees += stats[i].remote_frees;
        sum.checks += stats[i].checks;
        sum.drains += stats[i].drains;
    }
    printf("     soak: %.0f s on %d CPUs, %lu operations (%lu allocations, %lu NULL), %lu remote frees,"
           " %lu pmm_check, %lu drains; leaked pages: %zu\n", took, NCPU, sum.ops, sum.allocs,
           sum.nulls, sum.remote_frees, sum.checks, sum.drains, total - free);
    pmm_reset();
    region_unmap(region, REGION, 0);
}

int main(void)
{
    return RUN_TESTS(soak);
}
