/*
 * Buffer-cache benchmark: smpmem's hashed, per-bucket-locked cache against
 * a single-lock cache of stock xv6's design (bench/bcache_baseline.h), on a
 * RAM disk, at 1, 2 and 8 threads (each bound to its own virtual CPU).
 *
 * Workload per thread (each thread stands for a process with its own files):
 *   90%  read a block of the thread's own hot set (32 blocks), of which 5%
 *        also write it through (bwrite);
 *   10%  read a random cold block from the rest of the disk (a miss that
 *        evicts the least recently used free buffer).
 * An op is bread + read a few words (checked) + brelse.  A run is a fixed
 * number of ops split over the threads, timed between two barriers after
 * each thread has warmed its hot set.  Runs of the two caches are
 * interleaved (alternating which goes first); medians are reported.
 *
 * Environment: BENCH_ROUNDS (default 7, at least 5 are recommended),
 * BENCH_OPS (ops per run, default 800000).  Exits 1 if a block read back
 * wrong (correctness), never on a time.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <smpmem/bcache.h>
#include <smpmem/bdev.h>
#include <smpmem/bio_debug.h>
#include <smpmem/hosted.h>
#include <smpmem/pmm.h>
#include <smpmem/spinlock.h>
#include "bcache_baseline.h"

#define REGION_BYTES (256UL << 20)
#define BSIZE 1024u
#define DISK_BLOCKS 16384u
#define NBUF 512u
#define HOT 32u               /* hot blocks per thread */
#define COLD_BASE 4096u       /* cold blocks: [COLD_BASE, DISK_BLOCKS) */
#define DEV 0
#define MAX_THREADS 8

enum impl { SMPMEM, BASELINE };

struct run {
    enum impl impl;
    int nthreads;
    long ops_per_thread;
    struct xv6_bcache *base;
    pthread_barrier_t barrier;
    double t0, t1;
    atomic_long bad;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t next_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Word 0 of every block holds its block number (set at fill; writes keep
 * it and bump word 1). */
static int touch(unsigned char *data, uint64_t blk, int write)
{
    uint64_t w[4];
    memcpy(w, data, sizeof w);
    if (write) {
        w[1]++;
        memcpy(data, w, sizeof w);
    }
    return w[0] == blk;
}

static int one_op(struct run *r, uint64_t blk, int write)
{
    int ok;
    if (r->impl == SMPMEM) {
        struct buf *b = bread(DEV, blk);
        if (!b)
            return 0;
        ok = touch(b->data, blk, write);
        if (write)
            ok &= bwrite(b) == 0;
        brelse(b);
    } else {
        struct xv6_buf *b = xv6_bread(r->base, DEV, blk);
        if (!b)
            return 0;
        ok = touch(b->data, blk, write);
        if (write)
            ok &= xv6_bwrite(b) == 0;
        xv6_brelse(r->base, b);
    }
    return ok;
}

struct worker_arg {
    struct run *run;
    int cpu;
};

static void *worker(void *p)
{
    struct worker_arg *a = p;
    struct run *r = a->run;
    smp_hosted_bind_cpu(a->cpu);
    uint64_t seed = 0x1234567ULL * (uint64_t)(a->cpu + 1);
    uint64_t hot0 = (uint64_t)a->cpu * HOT;
    long bad = 0;
    for (uint64_t i = 0; i < HOT; i++)
        bad += !one_op(r, hot0 + i, 0);
    pthread_barrier_wait(&r->barrier);
    if (a->cpu == 0)
        r->t0 = now();
    for (long i = 0; i < r->ops_per_thread; i++) {
        uint64_t x = next_rand(&seed);
        unsigned pct = (unsigned)(x % 100);
        if (pct < 90)
            bad += !one_op(r, hot0 + (x >> 8) % HOT, (x >> 20) % 100 < 5);
        else
            bad += !one_op(r, COLD_BASE + (x >> 8) % (DISK_BLOCKS - COLD_BASE), 0);
    }
    pthread_barrier_wait(&r->barrier);
    if (a->cpu == 0)
        r->t1 = now();
    atomic_fetch_add(&r->bad, bad);
    return NULL;
}

struct result {
    double ops_per_s;
    unsigned long contended;   /* #test-and-set on the cache's locks */
    double hit_pct;            /* smpmem only */
};

static struct result run_once(enum impl impl, int nthreads, long total_ops, long *bad)
{
    static struct xv6_bcache base;
    struct run r;
    memset(&r, 0, sizeof r);
    r.impl = impl;
    r.nthreads = nthreads;
    r.ops_per_thread = total_ops / nthreads;
    r.base = &base;
    if (impl == SMPMEM) {
        if (bcache_init(NBUF, BSIZE) != 0) {
            fprintf(stderr, "bcache_init failed\n");
            exit(1);
        }
    } else if (xv6_bcache_init(&base, NBUF, BSIZE, "xv6.bcache") != 0) {
        fprintf(stderr, "baseline init failed\n");
        exit(1);
    }
    pthread_barrier_init(&r.barrier, NULL, (unsigned)nthreads);
    pthread_t th[MAX_THREADS];
    struct worker_arg args[MAX_THREADS];
    smp_lock_stats_reset();
    for (int i = 0; i < nthreads; i++) {
        args[i] = (struct worker_arg){ &r, i };
        if (pthread_create(&th[i], NULL, worker, &args[i])) {
            perror("pthread_create");
            exit(1);
        }
    }
    for (int i = 0; i < nthreads; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&r.barrier);
    struct result res;
    res.ops_per_s = (double)(r.ops_per_thread * nthreads) / (r.t1 - r.t0);
    res.hit_pct = 0;
    if (impl == SMPMEM) {
        struct smp_bcache_stats st;
        bcache_stats(&st);
        res.hit_pct = 100.0 * (double)st.hits / (double)(st.hits + st.misses);
        res.contended = smp_lock_contended("bcache");
        bcache_reset();
    } else {
        res.contended = smp_lock_contended("xv6.bcache");
        xv6_bcache_destroy(&base);
    }
    *bad += atomic_load(&r.bad);
    return res;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static long env_long(const char *name, long def, long min)
{
    const char *s = getenv(name);
    long v = s ? atol(s) : def;
    return v < min ? min : v;
}

#define MAX_ROUNDS 64

int main(void)
{
    int rounds = (int)env_long("BENCH_ROUNDS", 7, 1);
    if (rounds > MAX_ROUNDS)
        rounds = MAX_ROUNDS;
    long total_ops = env_long("BENCH_OPS", 800000, 1000);
    static const int threads[3] = { 1, 2, 8 };

    void *region = mmap(NULL, REGION_BYTES, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (region == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    if (pmm_init(region, (char *)region + REGION_BYTES, MAX_THREADS) != 0 ||
        ramdisk_create(DEV, DISK_BLOCKS, BSIZE) != 0) {
        fprintf(stderr, "setup failed\n");
        return 1;
    }
    unsigned char block[BSIZE];
    memset(block, 0, sizeof block);
    for (uint64_t b = 0; b < DISK_BLOCKS; b++) {
        memcpy(block, &b, sizeof b);
        bdev_write(DEV, b, block);
    }

    static double ops[2][3][MAX_ROUNDS], tas[2][3][MAX_ROUNDS], hit[3][MAX_ROUNDS];
    long bad = 0;
    for (int r = 0; r < rounds; r++) {
        for (int t = 0; t < 3; t++) {
            for (int k = 0; k < 2; k++) {
                enum impl impl = (enum impl)((k + r) % 2);   /* alternate who goes first */
                struct result res = run_once(impl, threads[t], total_ops, &bad);
                ops[impl][t][r] = res.ops_per_s;
                tas[impl][t][r] = (double)res.contended * 1000.0 / (double)total_ops;
                if (impl == SMPMEM)
                    hit[t][r] = res.hit_pct;
            }
        }
    }

    printf("buffer cache: smpmem (%u hashed buckets, lock per bucket) vs xv6 single lock + one LRU list\n",
           smp_bcache_default_buckets(NBUF));
    printf("RAM disk %u x %u-byte blocks, %u buffers; op = bread + read + brelse; per thread: "
           "90%% own hot set of %u blocks (5%% of them bwrite), 10%% cold misses\n",
           DISK_BLOCKS, BSIZE, NBUF, HOT);
    printf("%ld ops per run, median of %d interleaved runs%s\n\n", total_ops, rounds,
           rounds < 5 ? " (fewer than 5: figures are noisy)" : "");
    printf("%-8s %16s %16s %8s %10s %14s %14s\n", "threads", "smpmem ops/s", "baseline ops/s",
           "ratio", "hit %", "tas/kop smpmem", "tas/kop base");
    double ratio2 = 0;
    for (int t = 0; t < 3; t++) {
        double a = median(ops[SMPMEM][t], rounds), b = median(ops[BASELINE][t], rounds);
        double ta = median(tas[SMPMEM][t], rounds), tb = median(tas[BASELINE][t], rounds);
        double h = median(hit[t], rounds);
        printf("%-8d %16.0f %16.0f %7.2fx %10.1f %14.2f %14.2f\n", threads[t], a, b, a / b, h,
               ta, tb);
        if (threads[t] == 2)
            ratio2 = a / b;
    }
    printf("\ntarget: smpmem >= 1.8x the single-lock baseline at 2 threads: %.2fx (%s)\n", ratio2,
           ratio2 >= 1.8 ? "met" : "NOT met");
    if (bad) {
        printf("CORRECTNESS: %ld ops read a wrong block\n", bad);
        return 1;
    }
    bdev_reset();
    pmm_reset();
    munmap(region, REGION_BYTES);
    return 0;
}
