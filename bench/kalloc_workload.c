/*
 * The kalloc benchmark workloads, built once per allocator (-DALLOC_<NAME>,
 * see kalloc_adapters.h) into build/.../kalloc/kalloc_<name>.  The driver
 * bench/bench_kalloc.c runs these binaries; they can also be run by hand:
 *
 *   kalloc_<name> run <small|mixed|remote> <threads> <ops per thread> <seed>
 *       prints "kalloc <name> <workload> <threads> calls <n> ns <t> mops <x>"
 *       calls = kalloc + kfree calls of all threads; ns = wall time from the
 *       earliest thread start to the latest thread end; mops = calls/time/1e6.
 *   kalloc_<name> pairs <n> [live]
 *       n alloc(64)+free pairs in kalloc_pair_loop (for callgrind
 *       --toggle-collect=kalloc_pair_loop: instructions per pair), with
 *       <live> 64 B blocks allocated before the loop and held through it.
 *
 * Workloads (every thread does <ops> allocator calls, seeded PRNG):
 *   small   a working set of live blocks (KALLOC_BENCH_LIVE slots, default
 *           1024); each step picks a random slot: frees its block if it has
 *           one, else allocates 5..128 B (geometric: half are <= 8 B).
 *   mixed   same steps, sizes from the pmm lab's mix: ~90% small as above,
 *           ~9% 4 KiB, ~1% 4-64 KiB, 1 in 100 000 a 1-16 MiB block.
 *   remote  thread 2i allocates small blocks and passes them in batches
 *           through a bounded single-producer ring to thread 2i+1, which
 *           frees them; an odd last thread (or a single thread) runs small.
 * Each block gets a stamp in its first and last byte, checked before it is
 * freed: a mismatch means two live blocks overlapped, and aborts the run.
 */
#define _GNU_SOURCE
#include "kalloc_adapters.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RING_SIZE 1024            /* remote: blocks in flight per pair */
#define RING_BATCH 32             /* producer publishes this many at once */

enum workload { W_SMALL, W_MIXED, W_REMOTE };

struct ring {                     /* single producer, single consumer */
    _Alignas(64) atomic_size_t tail;  /* written by the producer */
    _Alignas(64) atomic_size_t head;  /* written by the consumer */
    _Alignas(64) unsigned char *slot[RING_SIZE];
};

struct worker {
    pthread_t tid;
    int index;
    unsigned long calls;          /* allocator calls made */
    struct timespec start, end;   /* this thread's work, by its own clock reads */
    struct ring *ring;            /* remote: shared with the partner */
};

static enum workload wl;
static int nthreads;
static unsigned long ops;
static uint64_t seed;
static size_t live_slots = 1024;
static pthread_barrier_t barrier;

static uint64_t rng_next(uint64_t *s)   /* splitmix64 */
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* 5..128 B: bucket k (P = 1/2, 1/4, 1/8, 1/16, 1/16) covers (4<<k, 8<<k]. */
static size_t small_size(uint64_t r)
{
    unsigned k = (unsigned)__builtin_ctzll(r | 16);
    size_t lo = (size_t)4 << k;
    return lo + 1 + (size_t)((r >> 8) % lo);
}

static size_t mixed_size(uint64_t *s)
{
    uint64_t r = rng_next(s);
    if (r % 100000 == 0)
        return ((size_t)1 << 20) + (size_t)((r >> 20) % (15u << 20));
    unsigned u = (unsigned)((r >> 17) % 100);
    if (u < 90)
        return small_size(r >> 24);
    if (u < 99)
        return 4096;
    return 4097 + (size_t)((r >> 24) % (60u << 10));
}

static void die(const char *what, const void *p)
{
    fprintf(stderr, "kalloc_%s: %s (block %p, seed %llu)\n", ALLOC_NAME, what, p,
            (unsigned long long)seed);
    exit(2);
}

static unsigned char *alloc_stamped(size_t size, unsigned char stamp)
{
    unsigned char *p = ba_alloc(size);
    if (!p)
        die("allocation failed", p);
    p[0] = stamp;
    p[size - 1] = (unsigned char)~stamp;
    return p;
}

static void check_free(unsigned char *p, size_t size, unsigned char stamp)
{
    if (p[0] != stamp || p[size - 1] != (unsigned char)~stamp)
        die("stamp overwritten: blocks overlap", p);
    ba_free(p);
}

struct live {
    unsigned char *p;
    uint32_t size;
    unsigned char stamp;
};

static void run_local(struct worker *w, uint64_t *s)
{
    struct live *set = calloc(live_slots, sizeof *set);
    if (!set)
        die("no memory for the working set", NULL);
    unsigned long calls = 0;
    for (unsigned long i = 0; i < ops; i++) {
        uint64_t r = rng_next(s);
        struct live *l = &set[r % live_slots];
        if (l->p) {
            check_free(l->p, l->size, l->stamp);
            l->p = NULL;
        } else {
            size_t size = wl == W_MIXED ? mixed_size(s) : small_size(r >> 32);
            l->stamp = (unsigned char)(r >> 24);
            l->size = (uint32_t)size;
            l->p = alloc_stamped(size, l->stamp);
        }
        calls++;
    }
    for (size_t j = 0; j < live_slots; j++)
        if (set[j].p) {
            check_free(set[j].p, set[j].size, set[j].stamp);
            calls++;
        }
    w->calls = calls;
    free(set);
}

/* Remote stamps: first byte = size (<= 128), last byte = 0xa5. */
static void run_producer(struct worker *w, uint64_t *s)
{
    struct ring *q = w->ring;
    size_t tail = 0;
    for (unsigned long i = 0; i < ops; i++) {
        size_t size = small_size(rng_next(s));
        unsigned char *p = ba_alloc(size);
        if (!p)
            die("allocation failed", p);
        p[0] = (unsigned char)size;
        p[size - 1] = 0xa5;
        while (tail - atomic_load_explicit(&q->head, memory_order_acquire) == RING_SIZE)
            sched_yield();        /* ring full: let the consumer run */
        q->slot[tail % RING_SIZE] = p;
        tail++;
        if (tail % RING_BATCH == 0 || i + 1 == ops)
            atomic_store_explicit(&q->tail, tail, memory_order_release);
    }
    w->calls = ops;
}

static void run_consumer(struct worker *w)
{
    struct ring *q = w->ring;
    size_t head = 0;
    while (head < ops) {
        size_t tail = atomic_load_explicit(&q->tail, memory_order_acquire);
        if (tail == head) {
            sched_yield();        /* ring empty: let the producer run */
            continue;
        }
        for (; head < tail; head++) {
            unsigned char *p = q->slot[head % RING_SIZE];
            if (p[p[0] - 1] != 0xa5 || p[0] < 5 || p[0] > 128)
                die("stamp overwritten: blocks overlap", p);
            ba_free(p);
        }
        atomic_store_explicit(&q->head, head, memory_order_release);
    }
    w->calls = ops;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    uint64_t s = seed * 0x100000001b3ULL + (uint64_t)w->index;
    ba_thread(w->index);
    pthread_barrier_wait(&barrier);
    clock_gettime(CLOCK_MONOTONIC, &w->start);
    if (wl != W_REMOTE || (nthreads % 2 && w->index == nthreads - 1))
        run_local(w, &s);
    else if (w->index % 2 == 0)
        run_producer(w, &s);
    else
        run_consumer(w);
    clock_gettime(CLOCK_MONOTONIC, &w->end);
    pthread_barrier_wait(&barrier);   /* nobody exits (and frees) early */
    return NULL;
}

/* Not inlined: callgrind counts instructions inside this function. */
__attribute__((noinline)) void kalloc_pair_loop(unsigned long n)
{
    /* Callers hold some live neighbours (see main), so the block's slab or
     * page does not empty on every free, which would time the allocators'
     * page-retire paths instead of their fast paths. */
    for (unsigned long i = 0; i < n; i++) {
        volatile unsigned char *p = ba_alloc(64);
        if (!p)
            die("allocation failed", NULL);
        p[0] = 1;
        ba_free((void *)p);
    }
}

static int usage(void)
{
    fprintf(stderr, "usage: kalloc_%s run small|mixed|remote THREADS OPS SEED\n"
                    "       kalloc_%s pairs N [LIVE]\n", ALLOC_NAME, ALLOC_NAME);
    return 64;
}

int main(int argc, char **argv)
{
    if ((argc == 3 || argc == 4) && strcmp(argv[1], "pairs") == 0) {
        enum { MAX_LIVE = 1024 };
        static void *live[MAX_LIVE];
        unsigned long nlive = argc == 4 ? strtoul(argv[3], NULL, 0) : 0;
        if (ba_init(1) != 0)
            die("allocator init failed", NULL);
        ba_thread(0);
        for (unsigned long i = 0; i < nlive && i < MAX_LIVE; i++)
            live[i] = ba_alloc(64);
        kalloc_pair_loop(strtoul(argv[2], NULL, 0));
        for (unsigned long i = 0; i < nlive && i < MAX_LIVE; i++)
            ba_free(live[i]);
        return 0;
    }
    if (argc != 6 || strcmp(argv[1], "run") != 0)
        return usage();
    if (strcmp(argv[2], "small") == 0)       wl = W_SMALL;
    else if (strcmp(argv[2], "mixed") == 0)  wl = W_MIXED;
    else if (strcmp(argv[2], "remote") == 0) wl = W_REMOTE;
    else return usage();
    nthreads = atoi(argv[3]);
    ops = strtoul(argv[4], NULL, 0);
    seed = strtoull(argv[5], NULL, 0);
    const char *live = getenv("KALLOC_BENCH_LIVE");
    if (live && atol(live) > 0)
        live_slots = (size_t)atol(live);
    if (nthreads < 1 || nthreads > 64 || ops == 0)
        return usage();
    if (ba_init(nthreads) != 0)
        die("allocator init failed", NULL);

    struct worker *w = calloc((size_t)nthreads, sizeof *w);
    struct ring *rings = aligned_alloc(64, sizeof(struct ring) * (size_t)(nthreads / 2 + 1));
    if (!w || !rings)
        die("no memory for threads", NULL);
    memset(rings, 0, sizeof(struct ring) * (size_t)(nthreads / 2 + 1));
    pthread_barrier_init(&barrier, NULL, (unsigned)nthreads);
    for (int i = 0; i < nthreads; i++) {
        w[i].index = i;
        w[i].ring = &rings[i / 2];
        if (pthread_create(&w[i].tid, NULL, worker_main, &w[i]) != 0)
            die("pthread_create failed", NULL);
    }
    /* Wall time from the first thread's start to the last thread's end:
     * with more threads than cores, a thread may be descheduled right after
     * the barrier, so no single thread's clock read marks the start. */
    unsigned long calls = 0;
    double first = 0, last = 0;
    for (int i = 0; i < nthreads; i++) {
        pthread_join(w[i].tid, NULL);
        calls += w[i].calls;
        double s = (double)w[i].start.tv_sec * 1e9 + (double)w[i].start.tv_nsec;
        double e = (double)w[i].end.tv_sec * 1e9 + (double)w[i].end.tv_nsec;
        if (i == 0 || s < first)
            first = s;
        if (i == 0 || e > last)
            last = e;
    }
    double ns = last - first;
    printf("kalloc %s %s %d calls %lu ns %.0f mops %.3f\n", ALLOC_NAME, argv[2],
           nthreads, calls, ns, ns > 0 ? (double)calls / ns * 1e3 : 0.0);
    pthread_barrier_destroy(&barrier);
    free(rings);
    free(w);
    return 0;
}
