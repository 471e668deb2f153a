/* Failures the allocator and the buffer cache must survive, injected on
 * demand (make faults: the core built with -DSMP_FAULT_INJECT, see
 * <smpmem/fault.h>).  Sweeps:
 *   - the N-th allocation from the buddy fails (once, or every one from the
 *     N-th on), N over every buddy call of a seeded multi-CPU workload of
 *     kalloc/kfree/page_alloc/page_free/drain: every failure reaches the
 *     caller as NULL, held blocks keep their contents, pmm_check passes,
 *     and once the faults stop, freeing everything and draining gives back
 *     every page (free == total);
 *   - the same over creating a RAM disk and the buffer cache: each returns
 *     0 or SMP_ENOMEM and nothing is left allocated;
 *   - the N-th device request fails (once, or every one from the N-th on)
 *     under a seeded bread/bwrite/brelse workload: a failed read is NULL
 *     with the device's error, a failed write returns it, bcache_check
 *     passes, and afterwards the device holds every acknowledged write.
 * Built without the flag (every other make check variant), it says so
 * and runs nothing. */
#include "harness.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <smpmem/bcache.h>
#include <smpmem/bdev.h>
#include <smpmem/bio_debug.h>
#include <smpmem/fault.h>
#include <smpmem/hosted.h>
#include <smpmem/pmm.h>
#include <smpmem/pmm_debug.h>
#include "kalloc_util.h"

#ifdef SMP_FAULT_INJECT

#define MiB (1UL << 20)
#define REGION (2 * MiB)
#define NCPU 3

static char *region;

static void setup(void)
{
    region = region_map(REGION, 0);
    if (pmm_init(region, region + REGION, NCPU) != 0)
        abort();
    smp_hosted_bind_cpu(0);
}

static void teardown(void)
{
    smp_hosted_bind_cpu(0);
    pmm_reset();
    region_unmap(region, REGION, 0);
}

/* After the faults stop: everything held is given back and drained. */
static int all_pages_back(const char *what, unsigned long n)
{
    pmm_drain();
    size_t free = pmm_free_pages(), total = pmm_total_pages();
    int ok = pmm_check() == 0;
    CHECK(ok, "%s, N = %lu: pmm_check after the run", what, n);
    CHECK(free == total, "%s, N = %lu: %zu of %zu pages free after freeing all and draining",
          what, n, free, total);
    return ok && free == total;
}

/* ---- the buddy fails ------------------------------------------------------- */

struct held { void *p; size_t size; int order; uint64_t tag; };
#define MAX_HELD 192

struct run {
    struct held h[MAX_HELD];
    int n;
    unsigned long nulls;
};

static void give_back(struct run *w, int i, const char *what, unsigned long n)
{
    struct held *k = &w->h[i];
    size_t bytes = k->order >= 0 ? SMP_PAGE_SIZE << k->order : k->size;
    CHECK(stamp_intact(k->p, bytes, k->tag), "%s, N = %lu: a held block lost its contents", what, n);
    if (k->order >= 0)
        page_free(k->p, (unsigned)k->order);
    else
        kfree(k->p);
    w->h[i] = w->h[--w->n];
}

/* A seeded mix on NCPU virtual CPUs (one thread re-binding itself). */
static void page_workload(struct run *w, uint64_t seed, int nops, const char *what, unsigned long n)
{
    struct prng r = prng_seed(seed, 1);
    w->n = 0;
    w->nulls = 0;
    for (int op = 0; op < nops; op++) {
        unsigned pick = (unsigned)prng_below(&r, 100);
        if (pick < 5) {
            smp_hosted_bind_cpu((int)prng_below(&r, NCPU));
        } else if (pick < 40 || (pick < 55 && w->n == 0)) {
            size_t size = prng_below(&r, 8) ? prng_range(&r, 1, 2048) : prng_range(&r, 2049, 20000);
            void *p = kalloc(size);
            if (!p) {
                w->nulls++;
            } else if (w->n == MAX_HELD) {
                kfree(p);
            } else {
                CHECK(aligned_for(p, size), "%s, N = %lu: kalloc(%zu) misaligned", what, n, size);
                uint64_t tag = prng_next(&r);
                stamp(p, size, tag);
                w->h[w->n++] = (struct held){ p, size, -1, tag };
            }
        } else if (pick < 55) {
            unsigned order = (unsigned)prng_below(&r, 5);
            void *p = page_alloc(order);
            if (!p) {
                w->nulls++;
            } else if (w->n == MAX_HELD) {
                page_free(p, order);
            } else {
                CHECK(((uintptr_t)p & ((SMP_PAGE_SIZE << order) - 1)) == 0,
                      "%s, N = %lu: page_alloc(%u) misaligned", what, n, order);
                uint64_t tag = prng_next(&r);
                stamp(p, SMP_PAGE_SIZE << order, tag);
                w->h[w->n++] = (struct held){ p, 0, (int)order, tag };
            }
        } else if (pick < 97) {
            if (w->n)
                give_back(w, (int)prng_below(&r, (uint64_t)w->n), what, n);
        } else if (pick < 99) {
            pmm_drain();
        } else {
            CHECK(pmm_check() == 0, "%s, N = %lu: pmm_check during the run", what, n);
        }
    }
}

static void finish_run(struct run *w, const char *what, unsigned long n)
{
    smp_fault_disarm(SMP_FAULT_BUDDY);
    CHECK(pmm_check() == 0, "%s, N = %lu: pmm_check before freeing", what, n);
    /* Recovered: with the faults gone an allocation succeeds again. */
    void *p = kalloc(64);
    CHECK(p != 0, "%s, N = %lu: kalloc fails after the faults stopped", what, n);
    kfree(p);
    while (w->n)
        give_back(w, w->n - 1, what, n);
    all_pages_back(what, n);
}

TEST(buddy_failures_become_null_and_leak_nothing)
{
    static struct run w;
    uint64_t seed = test_seed();
    int nops = 1500;
    /* A dry run counts the buddy calls the workload makes. */
    setup();
    smp_fault_arm(SMP_FAULT_BUDDY, 0, 0);
    page_workload(&w, seed, nops, "dry run", 0);
    unsigned long calls = smp_fault_calls(SMP_FAULT_BUDDY);
    finish_run(&w, "dry run", 0);
    teardown();
    REQUIRE(calls > 100, "the workload reaches the buddy only %lu times", calls);
    /* Every N (a stride under the sanitizers), once and from N on. */
    unsigned long stride = (unsigned long)(100 / scaled(100)), swept = 0, nulls = 0, failed = 0;
    if (stride < 1)
        stride = 1;
    for (unsigned long n = 1; n <= calls && !test_failures(); n += stride) {
        for (int persistent = 0; persistent < 2; persistent++) {
            const char *what = persistent ? "buddy fails from the N-th call on" : "the N-th buddy call fails";
            setup();
            smp_fault_arm(SMP_FAULT_BUDDY, n, persistent ? 0 : 1);
            page_workload(&w, seed, nops, what, n);
            failed += smp_fault_failed(SMP_FAULT_BUDDY);
            nulls += w.nulls;
            finish_run(&w, what, n);
            teardown();
            swept++;
        }
    }
    printf("     buddy faults: %lu buddy calls, %lu runs, %lu injected failures, %lu NULLs at the API\n",
           calls, swept, failed, nulls);
    CHECK(nulls > 0, "no injected failure ever reached the API as NULL");
}

TEST(setup_failures_return_enomem_and_leak_nothing)
{
    /* Creating a RAM disk and the cache: each step fails cleanly.  A dry
     * run counts their buddy calls; then every call fails from N on. */
    unsigned long calls = 0, enomem = 0;
    for (unsigned long n = 0; n <= calls && !test_failures(); n++) {
        setup();
        smp_fault_arm(SMP_FAULT_BUDDY, n, 0);
        int rd = ramdisk_create(1, 200, 1024);
        int bc = bcache_init(160, 1024);
        if (n == 0)
            calls = smp_fault_calls(SMP_FAULT_BUDDY);
        smp_fault_disarm(SMP_FAULT_BUDDY);
        CHECK(rd == 0 || rd == SMP_ENOMEM, "N = %lu: ramdisk_create returned %d", n, rd);
        CHECK(bc == 0 || bc == SMP_ENOMEM, "N = %lu: bcache_init returned %d", n, bc);
        CHECK(n > 0 || (rd == 0 && bc == 0), "without faults: ramdisk %d, bcache %d", rd, bc);
        enomem += (rd != 0) + (bc != 0);
        if (bc == 0)
            CHECK(bcache_check() == 0, "N = %lu: bcache_check", n);
        CHECK(bcache_reset() == 0, "N = %lu: bcache_reset", n);
        bdev_reset();
        all_pages_back("setup with buddy failures", n);
        teardown();
    }
    printf("     setup faults: %lu buddy calls swept, %lu SMP_ENOMEM returned\n", calls, enomem);
    CHECK(enomem > 0, "no failure reached ramdisk_create or bcache_init");
}

/* ---- the device fails ------------------------------------------------------- */

#define INNER 1
#define FAULTY 2
#define NBLK 48u
#define BSIZE 512u
#define NBUF 8u

static struct {
    unsigned long calls, nth, times, failed;
} io;

static int io_fails(void)
{
    unsigned long k = ++io.calls;
    if (!io.nth || k < io.nth || (io.times && k >= io.nth + io.times))
        return 0;
    io.failed++;
    return 1;
}

static int faulty_read(void *ctx, uint64_t blockno, void *dst)
{
    (void)ctx;
    return io_fails() ? SMP_EIO : smp_bdev_read(INNER, blockno, dst);
}

static int faulty_write(void *ctx, uint64_t blockno, const void *src)
{
    (void)ctx;
    return io_fails() ? SMP_EIO : smp_bdev_write(INNER, blockno, src);
}

static const struct smp_bdev_ops faulty_ops = { faulty_read, faulty_write, 0, 0 };

/* Block contents: (blockno, version) then a pattern of both; version 0
 * is the RAM disk's zeros. */
static void fill(unsigned char *d, uint64_t blockno, uint64_t version)
{
    uint64_t w[BSIZE / 8];
    w[0] = blockno;
    w[1] = version;
    for (unsigned i = 2; i < BSIZE / 8; i++)
        w[i] = (blockno * 0x9e3779b97f4a7c15ULL) ^ (version << 17) ^ i;
    memcpy(d, w, BSIZE);
}

static int version_of(const unsigned char *d, uint64_t blockno, uint64_t *version)
{
    static const unsigned char zero[BSIZE];
    if (!memcmp(d, zero, BSIZE)) {
        *version = 0;
        return 1;
    }
    uint64_t v;
    memcpy(&v, d + 8, 8);
    unsigned char want[BSIZE];
    fill(want, blockno, v);
    *version = v;
    return !memcmp(d, want, BSIZE);
}

struct shadow {
    uint64_t acked[NBLK];     /* the last version bwrite reported written */
    uint64_t pending[NBLK];   /* a version whose bwrite failed (the buffer may show it) */
    uint64_t next;
    unsigned long read_errors, write_errors;
};

static void io_workload(struct shadow *s, uint64_t seed, int nops, unsigned long n)
{
    struct prng r = prng_seed(seed, 2);
    for (int op = 0; op < nops; op++) {
        if (prng_below(&r, 8) == 0)
            smp_hosted_bind_cpu((int)prng_below(&r, NCPU));
        unsigned k = (unsigned)prng_below(&r, NBLK);
        int err = 1;
        struct buf *b = bread_err(FAULTY, k, &err);
        if (!b) {
            CHECK(err == SMP_EIO, "N = %lu: failed bread of block %u reported %d", n, k, err);
            s->read_errors++;
            continue;
        }
        uint64_t v = ~0ULL;
        CHECK(err == 0 && version_of(b->data, k, &v) && (v == s->acked[k] || v == s->pending[k]),
              "N = %lu: block %u reads version %llu; acknowledged %llu, pending %llu", n, k,
              (unsigned long long)v, (unsigned long long)s->acked[k], (unsigned long long)s->pending[k]);
        if (prng_below(&r, 2)) {
            uint64_t nv = ++s->next;
            fill(b->data, k, nv);
            int w = bwrite(b);
            if (w == 0) {
                s->acked[k] = nv;
                s->pending[k] = 0;
            } else {
                CHECK(w == SMP_EIO, "N = %lu: failed bwrite of block %u returned %d", n, k, w);
                s->pending[k] = nv;
                s->write_errors++;
            }
        }
        brelse(b);
        if (op % 50 == 49)
            CHECK(bcache_check() == 0, "N = %lu: bcache_check during the run", n);
    }
}

static void io_run(struct shadow *s, uint64_t seed, int nops, unsigned long nth, unsigned long times)
{
    setup();
    REQUIRE(ramdisk_create(INNER, NBLK, BSIZE) == 0, "ramdisk");
    REQUIRE(bdev_register(FAULTY, &faulty_ops, 0, BSIZE, NBLK) == 0, "faulty device");
    REQUIRE(bcache_init(NBUF, BSIZE) == 0, "bcache_init");
    memset(s, 0, sizeof *s);
    io.calls = io.failed = 0;
    io.nth = nth;
    io.times = times;
    io_workload(s, seed, nops, nth);
    io.nth = 0;
    CHECK(bcache_check() == 0, "N = %lu: bcache_check after the run", nth);
    /* No acknowledged write is lost: the device holds exactly them. */
    unsigned char d[BSIZE];
    for (unsigned k = 0; k < NBLK; k++) {
        uint64_t v = ~0ULL;
        int ok = smp_bdev_read(INNER, k, d) == 0 && version_of(d, k, &v) && v == s->acked[k];
        CHECK(ok, "N = %lu: device block %u holds version %llu, acknowledged %llu", nth, k,
              (unsigned long long)v, (unsigned long long)s->acked[k]);
    }
    CHECK(bcache_reset() == 0, "N = %lu: a buffer still held", nth);
    bdev_reset();
    all_pages_back("device failures", nth);
    teardown();
}

TEST(device_failures_reach_the_caller_and_lose_no_write)
{
    static struct shadow s;
    uint64_t seed = test_seed();
    int nops = 300;
    io_run(&s, seed, nops, 0, 0);
    unsigned long calls = io.calls, runs = 0, rerr = 0, werr = 0;
    REQUIRE(calls > 50, "the workload makes only %lu device requests", calls);
    unsigned long stride = (unsigned long)(100 / scaled(100));
    if (stride < 1)
        stride = 1;
    for (unsigned long n = 1; n <= calls && !test_failures(); n += stride)
        for (int persistent = 0; persistent < 2; persistent++) {
            io_run(&s, seed, nops, n, persistent ? 0 : 1);
            rerr += s.read_errors;
            werr += s.write_errors;
            runs++;
        }
    printf("     device faults: %lu requests swept in %lu runs: %lu failed breads, %lu failed bwrites\n",
           calls, runs, rerr, werr);
    CHECK(rerr > 0 && werr > 0, "injected failures never reached bread (%lu) or bwrite (%lu)", rerr, werr);
}

int main(void)
{
    return RUN_TESTS(buddy_failures_become_null_and_leak_nothing,
                     setup_failures_return_enomem_and_leak_nothing,
                     device_failures_reach_the_caller_and_lose_no_write);
}

#else

int main(void)
{
    printf("     (test_faults: built without -DSMP_FAULT_INJECT; make faults runs it)\n");
    printf("0 passed, 0 failed\n");
    return 0;
}

#endif
