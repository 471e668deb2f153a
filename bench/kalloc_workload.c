/*
 * The kalloc benchmark workloads, built once per allocator (-DALLOC_<NAME>,
 * see kalloc_adapters.h) into build/.../kalloc/kalloc_<name>.  The driver
 * bench/bench_kalloc.c runs these binaries; they can also be run by hand:
 *
 *   kalloc_<name> run <small|mixed|remote|pages> <threads> <ops per thread> <seed>
 *       prints "kalloc <name> <workload> <threads> calls <n> ns <t> mops <x>
 *       hwm_kib <k> rate_sum <y>": calls = alloc + free calls of all
 *       threads; ns = wall time from the earliest thread start to the
 *       latest thread end; mops = calls/time/1e6; k = the peak RSS so far
 *       (peak_rss_kib); y = the sum of each thread's own Mops/s (its calls
 *       over its own time: what processes timed apart add up to).
 *   kalloc_<name> pairs <n> [live]
 *       n alloc(64)+free pairs in kalloc_pair_loop (for callgrind
 *       --toggle-collect=kalloc_pair_loop: instructions per pair), with
 *       <live> 64 B blocks allocated before the loop and held through it.
 *   kalloc_<name> pagepairs <n> [live]
 *       the same with one 4 KiB page per pair (ba_page_alloc/ba_page_free)
 *       in kalloc_page_pair_loop, <live> pages held through it.
 *
 * Workloads (every thread does <ops> allocator calls, seeded PRNG; thread
 * i draws stream i, or KALLOC_BENCH_STREAM + i, so that one process of one
 * thread can do what thread k of a run does):
 *   small   a working set of live blocks (KALLOC_BENCH_LIVE slots, default
 *           1024); each step picks a random slot: frees its block if it has
 *           one, else allocates 5..128 B (geometric: half are <= 8 B).
 *   mixed   same steps, sizes from the pmm lab's mix: ~90% small as above,
 *           ~9% 4 KiB, ~1% 4-64 KiB, 1 in 100 000 a 1-16 MiB block.
 *   remote  thread 2i allocates small blocks and passes them in batches
 *           through a bounded single-producer ring to thread 2i+1, which
 *           frees them; an odd last thread (or a single thread) runs small.
 *   pages   bench_pages' loop through each allocator's page call: allocate
 *           k pages (k uniform in 1..64), write a word into each, free them
 *           all (smpmem page_alloc(0); peers a 4 KiB block aligned to 4 KiB).
 * Each block gets a stamp in its first and last byte, checked before it is
 * freed: a mismatch means two live blocks overlapped, and aborts the run.
 *
 * Built with -DKALLOC_LINES (build/.../kalloc/lines_<name>: smpmem and
 * mimalloc), each stamp or check of a block (small and mixed) also records,
 * per 64-byte line, which thread touched it last, and the run ends with
 *   "lines <name> touches T shared S (P%)"
 * S: touches of a line whose previous toucher was another thread, i.e.
 * lines the allocator handed to two threads at once or in turn.  Each of
 * those is a transfer between cores that the allocator caused (the
 * workload's threads share no block).  Timings of such a build mean
 * nothing: the record is a table every thread writes.
 */
#define _GNU_SOURCE
#include "kalloc_adapters.h"

#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <fcntl.h>
#include <unistd.h>
#include "../support/prng.h"
#include "../support/vcpus.h"

#define RING_SIZE 1024            /* remote: blocks in flight per pair */
#define RING_BATCH 32             /* producer publishes this many at once */

#ifndef BA_PAGES_SKIP
#define BA_PAGES_SKIP NULL        /* the adapter takes part in every workload */
#endif

enum workload { W_SMALL, W_MIXED, W_REMOTE, W_PAGES };

struct ring {                     /* single producer, single consumer */
    _Alignas(64) atomic_size_t tail;  /* written by the producer */
    _Alignas(64) atomic_size_t head;  /* written by the consumer */
    _Alignas(64) unsigned char *slot[RING_SIZE];
};

struct worker {
    unsigned long calls;          /* allocator calls made */
    struct ring *ring;            /* remote: shared with the partner */
};

static enum workload wl;
static int nthreads;
static unsigned long ops;
static uint64_t seed;
static size_t live_slots = 1024;
static int stream0;               /* thread i draws PRNG stream stream0 + i */

/* 5..128 B: bucket k (P = 1/2, 1/4, 1/8, 1/16, 1/16) covers (4<<k, 8<<k]. */
static size_t small_size(uint64_t r)
{
    unsigned k = (unsigned)__builtin_ctzll(r | 16);
    size_t lo = (size_t)4 << k;
    return lo + 1 + (size_t)((r >> 8) % lo);
}

static size_t mixed_size(struct prng *s)
{
    uint64_t r = prng_next(s);
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

#ifdef KALLOC_LINES
/* The last toucher of each line, by (address / 64) mod 2^24: exact within
 * any 1 GiB, which holds every block of a run (smpmem's region is 1 GiB).
 * Relaxed, racy on purpose: two threads touching one line at once are a
 * transfer either way.  Counts go to the totals every 1024 touches. */
#define LINE_TABLE (1u << 24)
static _Atomic unsigned char line_owner[LINE_TABLE];
static atomic_ulong line_touches, line_shared;
static _Thread_local unsigned char line_me;
static _Thread_local unsigned long my_touches, my_shared;
static atomic_uchar line_ids;

static void line_flush(void)
{
    atomic_fetch_add(&line_touches, my_touches);
    atomic_fetch_add(&line_shared, my_shared);
    my_touches = my_shared = 0;
}

static void line_touch(const unsigned char *a)
{
    if (!line_me)
        line_me = (unsigned char)(atomic_fetch_add(&line_ids, 1) + 1);
    _Atomic unsigned char *o = &line_owner[((uintptr_t)a >> 6) & (LINE_TABLE - 1)];
    unsigned char was = atomic_load_explicit(o, memory_order_relaxed);
    my_shared += was && was != line_me;
    if (was != line_me)
        atomic_store_explicit(o, line_me, memory_order_relaxed);
    if (++my_touches == 1024)
        line_flush();
}

static void lines_of(const unsigned char *p, size_t size)
{
    line_touch(p);
    if (((uintptr_t)p >> 6) != ((uintptr_t)(p + size - 1) >> 6))
        line_touch(p + size - 1);
}
#else
static void lines_of(const unsigned char *p, size_t size)
{
    (void)p;
    (void)size;
}
static void line_flush(void) {}
#endif

static unsigned char *alloc_stamped(size_t size, unsigned char stamp)
{
    unsigned char *p = ba_alloc(size);
    if (!p)
        die("allocation failed", p);
    p[0] = stamp;
    p[size - 1] = (unsigned char)~stamp;
    lines_of(p, size);
    return p;
}

static void check_free(unsigned char *p, size_t size, unsigned char stamp)
{
    if (p[0] != stamp || p[size - 1] != (unsigned char)~stamp)
        die("stamp overwritten: blocks overlap", p);
    lines_of(p, size);
    ba_free(p);
}

struct live {
    unsigned char *p;
    uint32_t size;
    unsigned char stamp;
};

/* The working set comes from mmap, not malloc, so the harness's own memory
 * is the same in every allocator's process: with smpmem or gslab, malloc
 * is glibc's, and each thread's first call would make it a thread arena
 * (a few pages each) that counted against them in the peak RSS. */
static void run_local(struct worker *w, struct prng *s)
{
    size_t set_bytes = live_slots * sizeof(struct live);
    struct live *set = mmap(NULL, set_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (set == MAP_FAILED)
        die("no memory for the working set", NULL);
    unsigned long calls = 0;
    for (unsigned long i = 0; i < ops; i++) {
        uint64_t r = prng_next(s);
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
    munmap(set, set_bytes);
    line_flush();
}

/* Remote stamps: first byte = size (<= 128), last byte = 0xa5. */
static void run_producer(struct worker *w, struct prng *s)
{
    struct ring *q = w->ring;
    size_t tail = 0;
    for (unsigned long i = 0; i < ops; i++) {
        size_t size = small_size(prng_next(s));
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

#define MAX_BURST 64              /* pages: most pages one step holds */

static void run_pages(struct worker *w, struct prng *s)
{
    void *pg[MAX_BURST];
    unsigned long calls = 0;
    while (calls < ops) {
        unsigned k = (unsigned)prng_range(s, 1, MAX_BURST);
        for (unsigned i = 0; i < k; i++) {
            pg[i] = ba_page_alloc();
            if (!pg[i])
                die("page allocation failed", NULL);
            *(volatile uint64_t *)pg[i] = calls;
        }
        for (unsigned i = k; i-- > 0;)
            ba_page_free(pg[i]);
        calls += 2 * (unsigned long)k;
    }
    w->calls = calls;
}

static struct worker *workers;

/* One thread's share, on the runner of support/vcpus.h (which binds it
 * through ba_thread and times it). */
static void work(int index, void *arg)
{
    (void)arg;
    struct worker *w = &workers[index];
    struct prng s = prng_seed(seed, (uint64_t)(index + stream0));
    if (wl == W_PAGES)
        run_pages(w, &s);
    else if (wl != W_REMOTE || (nthreads % 2 && index == nthreads - 1))
        run_local(w, &s);
    else if (index % 2 == 0)
        run_producer(w, &s);
    else
        run_consumer(w);
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

__attribute__((noinline)) void kalloc_page_pair_loop(unsigned long n)
{
    for (unsigned long i = 0; i < n; i++) {
        volatile unsigned char *p = ba_page_alloc();
        if (!p)
            die("page allocation failed", NULL);
        p[0] = 1;
        ba_page_free((void *)p);
    }
}

/* The process's peak resident set in KiB, as /proc/self/status's VmHWM:
 * the larger of the kernel's high-water mark and the resident set now.
 * This kernel (6.18) counts resident pages in per-CPU counters.  /proc
 * sums them exactly for the resident set now, but the high-water mark,
 * and ru_maxrss with it, is sampled from an approximate read, and only
 * when the resident set is about to shrink (munmap, madvise, exit).  A
 * program that touched 4000 KiB read 5208-5364 KiB from VmRSS and then
 * 5036-5296 KiB from ru_maxrss; the mixed workload under glibc, with ASLR
 * off so that every run is the same, always read 2592 KiB here and 2564
 * or 2692 KiB from ru_maxrss.  That error is as big as the differences
 * being measured.  Under smpmem, glibc, mimalloc and tcmalloc the mixed
 * workload ends at or within 60 KiB of its high-water mark (VmRSS read
 * here equals VmHWM, or nearly), so the exact resident set decides the
 * figure; an allocator that gives memory back before the end (jemalloc,
 * TBB at 8 threads) gets the sampled mark.  Read with open/read into the
 * stack, so that measuring allocates nothing; -1 without /proc. */
static long peak_rss_kib(void)
{
    char buf[4096];
    int fd = open("/proc/self/status", O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    const char *hwm = strstr(buf, "\nVmHWM:");
    return hwm ? atol(hwm + 8) : -1;
}

static int usage(void)
{
    fprintf(stderr, "usage: kalloc_%s run small|mixed|remote|pages THREADS OPS SEED\n"
                    "       kalloc_%s pairs|pagepairs N [LIVE]\n", ALLOC_NAME, ALLOC_NAME);
    return 64;
}

int main(int argc, char **argv)
{
    int page = argc >= 2 && strcmp(argv[1], "pagepairs") == 0;
    if ((argc == 3 || argc == 4) && (page || strcmp(argv[1], "pairs") == 0)) {
        enum { MAX_LIVE = 1024 };
        static void *live[MAX_LIVE];
        unsigned long nlive = argc == 4 ? strtoul(argv[3], NULL, 0) : 0;
        if (ba_init(1) != 0)
            die("allocator init failed", NULL);
        ba_thread(0);
        for (unsigned long i = 0; i < nlive && i < MAX_LIVE; i++)
            live[i] = page ? ba_page_alloc() : ba_alloc(64);
        if (page)
            kalloc_page_pair_loop(strtoul(argv[2], NULL, 0));
        else
            kalloc_pair_loop(strtoul(argv[2], NULL, 0));
        for (unsigned long i = 0; i < nlive && i < MAX_LIVE; i++) {
            if (page)
                ba_page_free(live[i]);
            else
                ba_free(live[i]);
        }
        return 0;
    }
    if (argc != 6 || strcmp(argv[1], "run") != 0)
        return usage();
    if (strcmp(argv[2], "small") == 0)       wl = W_SMALL;
    else if (strcmp(argv[2], "mixed") == 0)  wl = W_MIXED;
    else if (strcmp(argv[2], "remote") == 0) wl = W_REMOTE;
    else if (strcmp(argv[2], "pages") == 0)  wl = W_PAGES;
    else return usage();
    nthreads = atoi(argv[3]);
    ops = strtoul(argv[4], NULL, 0);
    seed = strtoull(argv[5], NULL, 0);
    const char *stream = getenv("KALLOC_BENCH_STREAM");
    if (stream)
        stream0 = atoi(stream);
    const char *live = getenv("KALLOC_BENCH_LIVE");
    if (live && atol(live) > 0)
        live_slots = (size_t)atol(live);
    if (nthreads < 1 || nthreads > VCPUS_MAX || ops == 0)
        return usage();
    const char *skip = wl == W_PAGES ? BA_PAGES_SKIP : NULL;
    if (skip) {
        printf("kalloc %s %s skipped: %s\n", ALLOC_NAME, argv[2], skip);
        return 0;
    }
    if (ba_init(nthreads) != 0)
        die("allocator init failed", NULL);

    workers = calloc((size_t)nthreads, sizeof *workers);
    struct ring *rings = aligned_alloc(64, sizeof(struct ring) * (size_t)(nthreads / 2 + 1));
    if (!workers || !rings)
        die("no memory for threads", NULL);
    memset(rings, 0, sizeof(struct ring) * (size_t)(nthreads / 2 + 1));
    for (int i = 0; i < nthreads; i++)
        workers[i].ring = &rings[i / 2];
    const struct vcpus_hooks hooks = { .enter = ba_thread };
    vcpus_pin_threads();                        /* threads on fixed cores: vcpus.h */
    double ns = vcpus_run_with(&hooks, 0, nthreads, work, NULL) * 1e9;
    unsigned long calls = 0;
    double rate_sum = 0;
    for (int i = 0; i < nthreads; i++) {
        calls += workers[i].calls;
        rate_sum += (double)workers[i].calls / vcpus_thread_seconds(i) / 1e6;
    }
    printf("kalloc %s %s %d calls %lu ns %.0f mops %.3f hwm_kib %ld rate_sum %.3f\n", ALLOC_NAME,
           argv[2], nthreads, calls, ns, ns > 0 ? (double)calls / ns * 1e3 : 0.0, peak_rss_kib(),
           rate_sum);
#ifdef KALLOC_LINES
    unsigned long t = atomic_load(&line_touches), sh = atomic_load(&line_shared);
    printf("lines %s touches %lu shared %lu (%.4f%%)\n", ALLOC_NAME, t, sh, t ? 100.0 * (double)sh / (double)t : 0.0);
#endif
    free(rings);
    free(workers);
    return 0;
}
