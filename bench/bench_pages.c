/*
 * Page benchmark: smpmem's page_alloc(0)/page_free(p, 0) against two
 * baselines (bench/baseline_xv6.h: one global lock; bench/baseline_lab.h:
 * the 6.S081 lock lab's per-CPU lists with steal-32).
 *
 * Workload, per thread (each thread bound to its own virtual CPU):
 *   repeat ITERS times: allocate k pages (k uniform in 1..64, seeded per
 *   thread so every allocator sees the same sequence), write one word into
 *   each, free them all.
 * One op = one page allocation or one page free.  Mops/s is the sum over
 * threads of ops divided by wall time (barrier release to last finish).
 *
 * Method: every allocator manages the same 256 MiB mmap'd region (prefaulted
 * once), initialised afresh before each run (smpmem: smp_pmm_reset +
 * smp_pmm_init with ncpu = 8).  Each round runs every thread count and, for
 * each, the three allocators back to back (A, B, C), so drift in machine
 * speed hits all of them alike; a warm-up round is discarded; figures are
 * medians over BENCH_ROUNDS rounds (default 9, at least 5 recommended).
 * After each run the allocator is checked (every page back; smp_pmm_check).
 *
 * Environment: BENCH_ROUNDS (rounds, default 9), BENCH_ITERS (iterations per
 * thread, default 100000: runs of a few milliseconds were mostly noise),
 * BENCH_RESULTS (a folder: the medians also go to pages_baselines.tsv).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <smpmem/pmm.h>
#include <smpmem/pmm_debug.h>
#include <smpmem/spinlock.h>
#include "common.h"
#include "baseline_xv6.h"
#include "baseline_lab.h"

#define REGION_BYTES (256UL << 20)
#define NCPU 8
#define MAX_BURST 64
#define MAX_ROUNDS 101

static const int thread_counts[] = { 1, 2, 8 };
#define NTC ((int)(sizeof thread_counts / sizeof thread_counts[0]))

enum { A_SMPMEM, A_XV6, A_LAB, NALLOC };
static const char *const alloc_name[NALLOC] = { "smpmem", "xv6", "lab" };

static void *region;
static struct xv6_kmem xv6;
static struct lab_kmem lab;

struct job {
    long iters;
    unsigned long ops[BENCH_MAX_THREADS];   /* written by each thread at its end */
    int failed;
};

/* One worker per allocator, so each one's calls are direct (inlinable for
 * the header-only baselines) rather than through a function pointer. */
#define DEFINE_WORKER(NAME, ALLOC, FREE)                                      \
    static void NAME(int cpu, void *arg)                                      \
    {                                                                         \
        struct job *j = arg;                                                  \
        struct prng rng = prng_seed(0x5eed0000u, (uint64_t)cpu);                \
        void *pg[MAX_BURST];                                                  \
        unsigned long ops = 0;                                                \
        for (long it = 0; it < j->iters; it++) {                              \
            unsigned k = (unsigned)prng_range(&rng, 1, MAX_BURST);            \
            for (unsigned i = 0; i < k; i++) {                                \
                void *p = ALLOC;                                              \
                if (!p) {                                                     \
                    j->failed = 1;                                            \
                    k = i;                                                    \
                    break;                                                    \
                }                                                             \
                *(volatile uint64_t *)p = (uint64_t)it;                       \
                pg[i] = p;                                                    \
            }                                                                 \
            for (unsigned i = k; i-- > 0;)                                    \
                FREE(pg[i]);                                                  \
            ops += 2 * (unsigned long)k;                                      \
        }                                                                     \
        j->ops[cpu] = ops;                                                    \
    }

#define SMP_FREE(p) smp_page_free((p), 0)
#define XV6_FREE(p) xv6_kfree(&xv6, (p))
#define LAB_FREE(p) lab_kfree(&lab, (p))
DEFINE_WORKER(work_smpmem, smp_page_alloc(0), SMP_FREE)
DEFINE_WORKER(work_xv6, xv6_kalloc(&xv6), XV6_FREE)
DEFINE_WORKER(work_lab, lab_kalloc(&lab), LAB_FREE)

static void (*const worker[NALLOC])(int, void *) = { work_smpmem, work_xv6, work_lab };

static size_t initial_free[NALLOC];

static void setup(int a)
{
    char *lo = region, *hi = lo + REGION_BYTES;
    switch (a) {
    case A_SMPMEM:
        smp_pmm_reset();
        if (smp_pmm_init(lo, hi, NCPU) != 0) {
            fprintf(stderr, "bench_pages: smp_pmm_init failed\n");
            exit(1);
        }
        initial_free[a] = smp_pmm_free_pages();
        break;
    case A_XV6:
        xv6_kinit(&xv6, lo, hi);
        initial_free[a] = xv6_count_free(&xv6);
        break;
    case A_LAB:
        lab_kinit(&lab, lo, hi, NCPU);
        initial_free[a] = lab_count_free(&lab);
        break;
    }
}

/* Every page must be back after a run: a benchmark of a broken allocator
 * measures nothing. */
static void verify(int a, const struct job *j)
{
    size_t now = 0;
    int bad = j->failed;
    switch (a) {
    case A_SMPMEM:
        now = smp_pmm_free_pages();
        bad |= smp_pmm_check() != 0;
        break;
    case A_XV6: now = xv6_count_free(&xv6); break;
    case A_LAB: now = lab_count_free(&lab); break;
    }
    if (bad || now != initial_free[a]) {
        fprintf(stderr, "bench_pages: %s broken after a run (%s; free %zu, expected %zu)\n",
                alloc_name[a], j->failed ? "allocation failed" : "pages lost",
                now, initial_free[a]);
        exit(1);
    }
}

struct result {
    double mops[MAX_ROUNDS];
    unsigned long spins[MAX_ROUNDS];
};
static struct result res[NTC][NALLOC];

static void run_one(int a, int nthreads, long iters, double *mops, unsigned long *spins)
{
    struct job j = { .iters = iters };
    setup(a);
    smp_lock_stats_reset();
    double secs = bench_run_threads(nthreads, worker[a], &j);
    /* Every lock of every allocator here is named kmem*; only the one that
     * just ran has counted since the reset. */
    *spins = smp_lock_contended("kmem");
    verify(a, &j);
    unsigned long ops = 0;
    for (int t = 0; t < nthreads; t++)
        ops += j.ops[t];
    *mops = (double)ops / secs / 1e6;
}

int main(void)
{
    int rounds = (int)bench_env_int("BENCH_ROUNDS", 9);
    long iters = bench_env_int("BENCH_ITERS", 100000);
    if (rounds > MAX_ROUNDS)
        rounds = MAX_ROUNDS;

    printf("== bench_pages: alloc k pages (k = 1..64), touch each, free them; repeat ==\n");
    bench_print_machine(stdout);
    printf("region 256 MiB, smpmem ncpu=%d; %ld iterations/thread; median of %d "
           "interleaved rounds (+1 warm-up)\n", NCPU, iters, rounds);
    printf("xv6 = one global lock (baseline_xv6.h); lab = per-CPU lists + steal-32 "
           "(baseline_lab.h)\n\n");
    fflush(stdout);

    region = bench_map(REGION_BYTES, 1);
    int progress = isatty(STDERR_FILENO);
    int samples = 0, busy = 0;
    for (int r = -1; r < rounds; r++) {
        for (int t = 0; t < NTC; t++)
            for (int a = 0; a < NALLOC; a++) {
                double m;
                unsigned long s;
                run_one(a, thread_counts[t], iters, &m, &s);
                if (r >= 0) {
                    res[t][a].mops[r] = m;
                    res[t][a].spins[r] = s;
                    samples++;
                    busy += bench_others_running() > 0;
                }
            }
        if (progress && r >= 0)
            fprintf(stderr, "\rround %d/%d done%s", r + 1, rounds, r + 1 == rounds ? "\n" : "");
    }

    double med[NTC][NALLOC];
    struct bench_table *tab = bench_table_new(9, "threads",
        "smpmem Mops/s", "xv6 Mops/s", "lab Mops/s", "smpmem/xv6", "smpmem/lab",
        "spins smpmem", "spins xv6", "spins lab");
    for (int t = 0; t < NTC; t++) {
        for (int a = 0; a < NALLOC; a++)
            med[t][a] = bench_median(res[t][a].mops, rounds);
        bench_table_cell(tab, "%d", thread_counts[t]);
        for (int a = 0; a < NALLOC; a++)
            bench_table_cell(tab, "%.2f", med[t][a]);
        bench_table_cell(tab, "%.2fx", med[t][A_SMPMEM] / med[t][A_XV6]);
        bench_table_cell(tab, "%.2fx", med[t][A_SMPMEM] / med[t][A_LAB]);
        for (int a = 0; a < NALLOC; a++)
            bench_table_cell(tab, "%lu", bench_median_ul(res[t][a].spins, rounds));
    }
    bench_table_print(tab, stdout);
    bench_table_free(tab);
    FILE *tsv = bench_results_open("pages_baselines.tsv");
    if (tsv) {
        fprintf(tsv, "threads\tsmpmem\txv6 (one lock)\tlab (per-CPU, steal-32)\n");
        for (int t = 0; t < NTC; t++)
            fprintf(tsv, "%d\t%.3f\t%.3f\t%.3f\n", thread_counts[t], med[t][A_SMPMEM],
                    med[t][A_XV6], med[t][A_LAB]);
        fclose(tsv);
    }
    printf("(Mops/s: page allocations + frees per microsecond, all threads; spins: median\n"
           " per run of smp_lock_contended(\"kmem\"), failed test-and-sets on the\n"
           " allocator's locks)\n\n");

    if (busy)
        printf("warning: other tasks were runnable after %d of %d runs: the cores were\n"
               "shared, so these figures are noisy; rerun on a quiet machine.\n\n", busy, samples);
    for (int t = 0; t < NTC; t++)
        if (thread_counts[t] == 2) {
            bench_target(stdout, "2 threads, smpmem/xv6", med[t][A_SMPMEM] / med[t][A_XV6], 1.5);
            bench_target(stdout, "2 threads, smpmem/lab", med[t][A_SMPMEM] / med[t][A_LAB], 1.0);
        }
    smp_pmm_reset();
    bench_unmap(region, REGION_BYTES);
    return 0;
}
