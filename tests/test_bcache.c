/* The buffer cache under 8 CPUs: every read sees a self-consistent block and
 * every write reaches the file; concurrent misses of one block never make two
 * buffers (counted misses and device reads prove it); a miss with every
 * buffer busy sleeps and resumes on a release; a faulty device's errors reach
 * the caller and lose nothing; pinned buffers survive eviction and LRU picks
 * the oldest; misuse panics with a reason. */
#define _GNU_SOURCE
#include "harness.h"
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "bcache_fixture.h"

#define MiB (1UL << 20)
#define REGION (64 * MiB)
#define BSIZE 1024u
#define WORDS (BSIZE / 8)
#define NCPU 8

static int setup(unsigned nbuf) { return bcache_fixture_setup(REGION, NCPU, nbuf, BSIZE); }
static void teardown(void) { bcache_fixture_teardown(); }

/* ---- block stamps: (blockno, version) repeated through the block ---- */

static uint64_t mix(uint64_t blockno, uint64_t version, unsigned i)
{
    uint64_t z = blockno * 0x9e3779b97f4a7c15ULL ^ version * 0xbf58476d1ce4e5b9ULL ^ i;
    return z ^ (z >> 29);
}

static void stamp(void *data, uint64_t blockno, uint64_t version)
{
    uint64_t w[WORDS];
    w[0] = blockno;
    w[1] = version;
    for (unsigned i = 2; i < WORDS; i++)
        w[i] = mix(blockno, version, i);
    memcpy(data, w, BSIZE);
}

/* The version stamped in data, or -1 if the block is not a whole stamp of
 * blockno (torn, or another block's contents). */
static int64_t stamp_version(const void *data, uint64_t blockno)
{
    uint64_t w[WORDS];
    memcpy(w, data, BSIZE);
    if (w[0] != blockno)
        return -1;
    for (unsigned i = 2; i < WORDS; i++)
        if (w[i] != mix(blockno, w[1], i))
            return -1;
    return (int64_t)w[1];
}

/* A 2048-block temp file stamped with version 0; dev 0 opens it.  Returns a
 * second read-only descriptor for checking the file afterwards (the file is
 * unlinked at once). */
static int make_file_device(unsigned dev, uint64_t nblocks)
{
    char path[] = "/tmp/smpmem-bcache-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    char block[BSIZE];
    for (uint64_t b = 0; b < nblocks; b++) {
        stamp(block, b, 0);
        if (pwrite(fd, block, BSIZE, (off_t)(b * BSIZE)) != (ssize_t)BSIZE) {
            close(fd);
            unlink(path);
            return -1;
        }
    }
    int r = bdev_open_file(dev, path, BSIZE);
    unlink(path);
    if (r) {
        close(fd);
        return -1;
    }
    return fd;
}

/* ---- 1. writers with disjoint blocks, everyone reading everything ---- */

#define FILE_BLOCKS 2048

struct rw_ctx {
    unsigned dev;
    uint64_t version[FILE_BLOCKS];   /* written only by the block's owner CPU */
    atomic_long reads, writes, torn;
};

static void rw_worker(int cpu, void *arg)
{
    struct rw_ctx *x = arg;
    struct rng g = rng_for((uint64_t)cpu);
    static _Thread_local int64_t seen[FILE_BLOCKS];
    memset(seen, 0, sizeof seen);
    long iters = scaled(20000);
    for (long it = 0; it < iters; it++) {
        uint64_t r = rng_below(&g, 100);
        if (r < 25) {
            /* Write one of my blocks (blockno % NCPU == cpu). */
            uint64_t blk = rng_below(&g, FILE_BLOCKS / NCPU) * NCPU + (uint64_t)cpu;
            struct buf *b = bread(x->dev, blk);
            if (!b) {
                CHECK(0, "bread(%llu) failed", (unsigned long long)blk);
                continue;
            }
            int64_t v = stamp_version(b->data, blk);
            CHECK(v == (int64_t)x->version[blk], "cpu %d block %llu: version %lld, wrote %llu",
                  cpu, (unsigned long long)blk, (long long)v,
                  (unsigned long long)x->version[blk]);
            stamp(b->data, blk, x->version[blk] + 1);
            CHECK(bwrite(b) == 0, "bwrite");
            x->version[blk]++;
            brelse(b);
            atomic_fetch_add(&x->writes, 1);
        } else {
            /* Read anything; half the reads go to a small hot set. */
            uint64_t blk = r < 60 ? rng_below(&g, 24) : rng_below(&g, FILE_BLOCKS);
            struct buf *b = bread(x->dev, blk);
            if (!b) {
                CHECK(0, "bread(%llu) failed", (unsigned long long)blk);
                continue;
            }
            CHECK(b->dev == x->dev && b->blockno == blk, "identity of the returned buffer");
            int64_t v = stamp_version(b->data, blk);
            if (v < 0) {
                atomic_fetch_add(&x->torn, 1);
            } else {
                CHECK(v >= seen[blk], "block %llu went back from version %lld to %lld",
                      (unsigned long long)blk, (long long)seen[blk], (long long)v);
                seen[blk] = v;
            }
            brelse(b);
            atomic_fetch_add(&x->reads, 1);
        }
    }
}

TEST(writers_and_readers_over_a_file_device)
{
    REQUIRE(setup(30) == 0, "setup");
    int fd = make_file_device(0, FILE_BLOCKS);
    REQUIRE(fd >= 0, "temp file device");
    REQUIRE(bdev_nblocks(0) == FILE_BLOCKS, "geometry: %llu blocks",
            (unsigned long long)bdev_nblocks(0));
    static struct rw_ctx x;
    memset(&x, 0, sizeof x);
    x.dev = 0;
    run_on_cpus(NCPU, rw_worker, &x);
    CHECK(atomic_load(&x.torn) == 0, "%ld reads saw a torn or foreign block",
          atomic_load(&x.torn));
    CHECK(bcache_check() == 0, "cache invariants");
    struct smp_bcache_stats st;
    REQUIRE(bcache_stats(&st) == 0, "stats");
    CHECK(st.busy == 0, "no buffer busy");
    CHECK(st.hits > 0 && st.evictions > 0, "workload both hits (%lu) and evicts (%lu)",
          st.hits, st.evictions);
    CHECK(st.hits + st.misses == (unsigned long)(atomic_load(&x.reads) + atomic_load(&x.writes)),
          "every bread is a hit or a miss: %lu + %lu vs %ld", st.hits, st.misses,
          atomic_load(&x.reads) + atomic_load(&x.writes));
    CHECK(st.dev_writes == (unsigned long)atomic_load(&x.writes), "one device write per bwrite");
    printf("  %ld reads, %ld writes; hits %lu misses %lu evictions %lu races %lu\n",
           atomic_load(&x.reads), atomic_load(&x.writes), st.hits, st.misses, st.evictions,
           st.races);
    /* Every write is in the file. */
    CHECK(bdev_flush(0) == 0, "fsync");
    char block[BSIZE];
    long wrong = 0;
    for (uint64_t b = 0; b < FILE_BLOCKS; b++) {
        if (pread(fd, block, BSIZE, (off_t)(b * BSIZE)) != (ssize_t)BSIZE ||
            stamp_version(block, b) != (int64_t)x.version[b])
            wrong++;
    }
    CHECK(wrong == 0, "%ld blocks of the file lack their last write", wrong);
    close(fd);
    teardown();
}

/* ---- 2. concurrent misses of the same blocks ---- */

#define SAME_SET 4

struct same_ctx {
    unsigned dev;
    long rounds;
    struct buf *got[NCPU][SAME_SET];
    atomic_long bad;
};

static void same_worker(int cpu, void *arg)
{
    struct same_ctx *x = arg;
    struct rng g = rng_for((uint64_t)cpu + 100);
    for (long r = 0; r < x->rounds; r++) {
        /* Fresh blocks each round: not cached (30 buffers, 4 per round). */
        uint64_t base = (uint64_t)r * SAME_SET;
        /* Even rounds: every CPU asks for the blocks in the same order (all
         * miss one block at once); odd rounds: random orders (misses of
         * different blocks compete for victims). */
        unsigned first = r % 2 ? (unsigned)rng_below(&g, SAME_SET) : 0;
        cpus_barrier();
        for (unsigned k = 0; k < SAME_SET; k++) {
            uint64_t blk = base + (first + k) % SAME_SET;
            struct buf *b = bread(x->dev, blk);
            if (!b || stamp_version(b->data, blk) != 0) {
                atomic_fetch_add(&x->bad, 1);
                if (b)
                    brelse(b);
                continue;
            }
            x->got[cpu][(first + k) % SAME_SET] = b;
            brelse(b);
        }
        cpus_barrier();
        if (cpu == 0) {
            for (unsigned k = 0; k < SAME_SET; k++) {
                if (bcache_count(x->dev, base + k) != 1)
                    atomic_fetch_add(&x->bad, 1);
                for (int c = 1; c < NCPU; c++)
                    if (x->got[c][k] != x->got[0][k])
                        atomic_fetch_add(&x->bad, 1);
            }
            if (bcache_check() != 0)
                atomic_fetch_add(&x->bad, 1);
        }
        cpus_barrier();
    }
}

TEST(concurrent_misses_never_cache_a_block_twice)
{
    REQUIRE(setup(30) == 0, "setup");
    static struct same_ctx x;
    memset(&x, 0, sizeof x);
    x.dev = 1;
    x.rounds = scaled(1500);
    uint64_t nblocks = (uint64_t)x.rounds * SAME_SET;
    REQUIRE(ramdisk_create(1, nblocks, BSIZE) == 0, "ramdisk");
    char block[BSIZE];
    for (uint64_t b = 0; b < nblocks; b++) {
        stamp(block, b, 0);
        REQUIRE(bdev_write(1, b, block) == 0, "fill");
    }
    run_on_cpus(NCPU, same_worker, &x);
    CHECK(atomic_load(&x.bad) == 0, "%ld failures (duplicate, lost or wrong buffer)",
          atomic_load(&x.bad));
    struct smp_bcache_stats st;
    REQUIRE(bcache_stats(&st) == 0, "stats");
    /* Each block was missed by up to 8 CPUs at once, yet claimed a buffer
     * and was read from the device exactly once. */
    CHECK(st.misses == nblocks, "misses %lu, want exactly %llu", st.misses,
          (unsigned long long)nblocks);
    CHECK(st.dev_reads == nblocks, "device reads %lu, want exactly %llu", st.dev_reads,
          (unsigned long long)nblocks);
    CHECK(st.hits == nblocks * (NCPU - 1), "hits %lu, want %llu", st.hits,
          (unsigned long long)(nblocks * (NCPU - 1)));
    printf("  %llu blocks, misses %lu, concurrent-miss races resolved %lu\n",
           (unsigned long long)nblocks, st.misses, st.races);
    teardown();
}

/* ---- 3. every buffer busy: bread sleeps, a brelse resumes it ---- */

#define BUSY_BUFS 4

struct busy_ctx {
    struct buf *held[BUSY_BUFS];
    atomic_int released;
    atomic_long bad;
    int check_while_waiting;              /* bcache_check() with the misses asleep */
};

static unsigned long current_waits(void)
{
    struct smp_bcache_stats st;
    return bcache_stats(&st) == 0 ? st.waits : 0;
}

static void busy_worker(int cpu, void *arg)
{
    struct busy_ctx *x = arg;
    if (cpu < BUSY_BUFS) {
        x->held[cpu] = bread(2, (uint64_t)cpu);
        if (!x->held[cpu])
            atomic_fetch_add(&x->bad, 1);
    }
    cpus_barrier();                       /* every buffer is held now */
    if (cpu >= BUSY_BUFS) {
        uint64_t blk = 100 + (uint64_t)cpu;
        struct buf *b = bread(2, blk);
        /* Only a release can have let us through. */
        if (!b || atomic_load(&x->released) == 0 || stamp_version(b->data, blk) != 0)
            atomic_fetch_add(&x->bad, 1);
        if (b)
            brelse(b);
        return;
    }
    if (cpu == 0) {
        /* Poll (no sleeping) until the misses have gone to sleep. */
        while (current_waits() < NCPU - BUSY_BUFS)
            sched_yield();
        /* Sleeping misses are counted in every bucket, consistently. */
        x->check_while_waiting = bcache_check();
        atomic_store(&x->released, 1);
    } else {
        while (atomic_load(&x->released) == 0)
            sched_yield();
    }
    if (x->held[cpu])
        brelse(x->held[cpu]);
}

TEST(all_buffers_busy_waits_then_resumes)
{
    long rounds = scaled(40);
    REQUIRE(setup(BUSY_BUFS) == 0, "setup");
    REQUIRE(ramdisk_create(2, 256, BSIZE) == 0, "ramdisk");
    char block[BSIZE];
    for (uint64_t b = 0; b < 256; b++) {
        stamp(block, b, 0);
        REQUIRE(bdev_write(2, b, block) == 0, "fill");
    }
    static struct busy_ctx x;
    for (long r = 0; r < rounds; r++) {
        memset(&x, 0, sizeof x);
        bcache_stats_reset();
        run_on_cpus(NCPU, busy_worker, &x);
        CHECK(atomic_load(&x.bad) == 0, "round %ld: %ld waiters got through without a release",
              r, atomic_load(&x.bad));
        CHECK(current_waits() >= NCPU - BUSY_BUFS, "round %ld: misses slept", r);
        CHECK(x.check_while_waiting == 0, "round %ld: bcache_check failed while misses slept", r);
        /* Block 0 was released first, so the first waiter evicted it. */
        CHECK(bcache_count(2, 0) == 0, "round %ld: block 0 still cached", r);
        for (uint64_t c = 0; c < NCPU; c++)
            CHECK(bcache_count(2, 100 + c) <= 1 && bcache_count(2, c) <= 1,
                  "round %ld: a block cached twice", r);
        CHECK(bcache_check() == 0, "invariants");
        if (test_failures())
            break;
    }
    teardown();
}

/* ---- 4. a faulty device ---- */

#define FAULTY_BLOCKS 512
#define FAULTY_ERR (-77)

struct faulty {
    unsigned char blocks[FAULTY_BLOCKS][BSIZE];
    atomic_int fail_reads[FAULTY_BLOCKS];    /* fail the next N reads */
    atomic_int fail_writes[FAULTY_BLOCKS];
    atomic_long every;                       /* > 0: fail each every-th request */
    atomic_long requests;
    atomic_long injected_reads, injected_writes;
};

static int injected(struct faulty *f, atomic_int *plan)
{
    long every = atomic_load(&f->every);
    long n = atomic_fetch_add(&f->requests, 1) + 1;
    if (every > 0 && n % every == 0)
        return 1;
    int left = atomic_load(plan);
    while (left > 0)
        if (atomic_compare_exchange_weak(plan, &left, left - 1))
            return 1;
    return 0;
}

static int faulty_read(void *ctx, uint64_t blockno, void *dst)
{
    struct faulty *f = ctx;
    if (injected(f, &f->fail_reads[blockno])) {
        atomic_fetch_add(&f->injected_reads, 1);
        memset(dst, 0xEE, BSIZE);            /* a failed read may leave junk */
        return FAULTY_ERR;
    }
    memcpy(dst, f->blocks[blockno], BSIZE);
    return 0;
}

static int faulty_write(void *ctx, uint64_t blockno, const void *src)
{
    struct faulty *f = ctx;
    if (injected(f, &f->fail_writes[blockno])) {
        atomic_fetch_add(&f->injected_writes, 1);
        return FAULTY_ERR;
    }
    memcpy(f->blocks[blockno], src, BSIZE);
    return 0;
}

static const struct smp_bdev_ops faulty_ops = { faulty_read, faulty_write, NULL, NULL };

static struct faulty *faulty_create(unsigned dev)
{
    struct faulty *f = calloc(1, sizeof *f);
    for (uint64_t b = 0; b < FAULTY_BLOCKS; b++)
        stamp(f->blocks[b], b, 0);
    if (bdev_register(dev, &faulty_ops, f, BSIZE, FAULTY_BLOCKS) != 0) {
        free(f);
        return NULL;
    }
    return f;
}

TEST(faulty_device_errors_reach_the_caller)
{
    REQUIRE(setup(8) == 0, "setup");
    struct faulty *f = faulty_create(3);
    REQUIRE(f, "faulty device");
    struct smp_bcache_stats st;

    /* A failed read: NULL with the device's error, cache consistent. */
    atomic_store(&f->fail_reads[5], 2);
    int err = 0;
    CHECK(bread_err(3, 5, &err) == NULL && err == FAULTY_ERR, "first read fails (err %d)", err);
    CHECK(bcache_count(3, 5) <= 1 && bcache_check() == 0, "consistent after a failed read");
    CHECK(bread(3, 5) == NULL, "second read fails too");
    struct buf *b = bread_err(3, 5, &err);
    REQUIRE(b && err == 0, "third read succeeds (the cache retried the device)");
    CHECK(stamp_version(b->data, 5) == 0, "and has the block's contents, not junk");
    brelse(b);
    REQUIRE(bcache_stats(&st) == 0, "stats");
    CHECK(st.read_errors == 2 && st.dev_reads == 3, "read errors %lu, device reads %lu",
          st.read_errors, st.dev_reads);
    b = bread(3, 5);
    REQUIRE(b, "cached now");
    brelse(b);
    REQUIRE(bcache_stats(&st) == 0, "stats");
    CHECK(st.dev_reads == 3, "a valid block is not read again");

    /* A failed write: the error returns, the buffer keeps the data, a retry
     * writes it. */
    b = bread(3, 7);
    REQUIRE(b, "bread 7");
    stamp(b->data, 7, 1);
    atomic_store(&f->fail_writes[7], 1);
    CHECK(bwrite(b) == FAULTY_ERR, "write error reaches the caller");
    CHECK(stamp_version(f->blocks[7], 7) == 0, "device still has the old block");
    CHECK(stamp_version(b->data, 7) == 1, "buffer kept the new data");
    CHECK(bwrite(b) == 0, "retry succeeds");
    CHECK(stamp_version(f->blocks[7], 7) == 1, "device has the new block");
    brelse(b);

    /* Errors on a device that is not there, or out of range. */
    CHECK(bread_err(9, 0, &err) == NULL && err == SMP_ENODEV, "no device 9");
    CHECK(bread_err(3, FAULTY_BLOCKS, &err) == NULL && err == SMP_EINVAL, "block out of range");
    CHECK(bread_err(SMP_BDEV_MAX + 3, 0, &err) == NULL && err == SMP_ENODEV, "dev out of range");
    REQUIRE(ramdisk_create(4, 8, 2 * BSIZE) == 0, "a device of another block size");
    CHECK(bread_err(4, 0, &err) == NULL && err == SMP_EINVAL, "block size differs from the cache's");
    teardown();
    free(f);
}

struct faulty_ctx {
    struct faulty *f;
    uint64_t version[FAULTY_BLOCKS];
    atomic_long read_fail, write_fail, bad;
};

static void faulty_worker(int cpu, void *arg)
{
    struct faulty_ctx *x = arg;
    struct rng g = rng_for((uint64_t)cpu + 300);
    long iters = scaled(8000);
    for (long it = 0; it < iters; it++) {
        int write = rng_below(&g, 3) == 0;
        uint64_t blk = write ? rng_below(&g, FAULTY_BLOCKS / NCPU) * NCPU + (uint64_t)cpu
                             : rng_below(&g, FAULTY_BLOCKS);
        struct buf *b;
        int err;
        while ((b = bread_err(3, blk, &err)) == NULL) {
            if (err != FAULTY_ERR)
                atomic_fetch_add(&x->bad, 1);
            atomic_fetch_add(&x->read_fail, 1);
        }
        int64_t v = stamp_version(b->data, blk);
        if (v < 0 || (write && v != (int64_t)x->version[blk]))
            atomic_fetch_add(&x->bad, 1);
        if (write) {
            stamp(b->data, blk, x->version[blk] + 1);
            while ((err = bwrite(b)) != 0) {
                if (err != FAULTY_ERR)
                    atomic_fetch_add(&x->bad, 1);
                atomic_fetch_add(&x->write_fail, 1);
            }
            x->version[blk]++;
        }
        brelse(b);
    }
}

TEST(faulty_device_under_load_loses_nothing)
{
    REQUIRE(setup(30) == 0, "setup");
    static struct faulty_ctx x;
    memset(&x, 0, sizeof x);
    x.f = faulty_create(3);
    REQUIRE(x.f, "faulty device");
    atomic_store(&x.f->every, 7);
    run_on_cpus(NCPU, faulty_worker, &x);
    atomic_store(&x.f->every, 0);
    CHECK(atomic_load(&x.bad) == 0, "%ld wrong errors or torn blocks", atomic_load(&x.bad));
    CHECK(atomic_load(&x.read_fail) > 0 && atomic_load(&x.write_fail) > 0,
          "failures were injected: %ld reads, %ld writes", atomic_load(&x.read_fail),
          atomic_load(&x.write_fail));
    struct smp_bcache_stats st;
    REQUIRE(bcache_stats(&st) == 0, "stats");
    CHECK(st.read_errors == (unsigned long)atomic_load(&x.f->injected_reads) &&
          st.write_errors == (unsigned long)atomic_load(&x.f->injected_writes),
          "the cache counted every injected error");
    long lost = 0;
    for (uint64_t b = 0; b < FAULTY_BLOCKS; b++)
        lost += stamp_version(x.f->blocks[b], b) != (int64_t)x.version[b];
    CHECK(lost == 0, "%ld blocks lack their last write on the device", lost);
    /* Every block reads back through the cache with its last version. */
    for (uint64_t blk = 0; blk < FAULTY_BLOCKS; blk++) {
        struct buf *b = bread(3, blk);
        CHECK(b && stamp_version(b->data, blk) == (int64_t)x.version[blk], "read back %llu",
              (unsigned long long)blk);
        if (b)
            brelse(b);
    }
    printf("  injected %ld read and %ld write failures\n", atomic_load(&x.read_fail),
           atomic_load(&x.write_fail));
    struct faulty *f = x.f;
    teardown();
    free(f);
}

/* ---- 5. pinning and LRU ---- */

TEST(bpin_keeps_a_buffer_and_lru_evicts_the_oldest)
{
    REQUIRE(setup(4) == 0, "setup");
    REQUIRE(ramdisk_create(4, 512, BSIZE) == 0, "ramdisk");
    struct smp_bcache_stats st;
    /* LRU: A B C D cached, A touched again, then E evicts B. */
    for (uint64_t blk = 0; blk < 4; blk++) {
        struct buf *b = bread(4, blk);
        REQUIRE(b, "bread");
        brelse(b);
    }
    struct buf *b = bread(4, 0);
    REQUIRE(b, "bread A");
    brelse(b);
    b = bread(4, 4);
    REQUIRE(b, "bread E");
    brelse(b);
    CHECK(bcache_count(4, 1) == 0, "B (least recently released) evicted");
    CHECK(bcache_count(4, 0) == 1 && bcache_count(4, 2) == 1 && bcache_count(4, 3) == 1,
          "A, C, D still cached");

    /* Pin block 10 and churn through 200 other blocks. */
    struct buf *p = bread(4, 10);
    REQUIRE(p, "bread 10");
    memset(p->data, 0x5A, BSIZE);        /* cached only: never written */
    bpin(p);
    brelse(p);
    for (uint64_t blk = 100; blk < 300; blk++) {
        b = bread(4, blk);
        REQUIRE(b, "churn");
        brelse(b);
        CHECK(bcache_count(4, 10) == 1, "pinned block evicted at %llu", (unsigned long long)blk);
    }
    REQUIRE(bcache_stats(&st) == 0, "stats");
    unsigned long reads = st.dev_reads;
    b = bread(4, 10);
    REQUIRE(b == p, "pinned block is the same buffer");
    CHECK(b->data[0] == 0x5A && b->data[BSIZE - 1] == 0x5A, "pinned data kept");
    brelse(b);
    REQUIRE(bcache_stats(&st) == 0, "stats");
    CHECK(st.dev_reads == reads, "pinned block hit, not read again");
    bunpin(p);
    for (uint64_t blk = 300; blk < 310; blk++) {
        b = bread(4, blk);
        REQUIRE(b, "churn");
        brelse(b);
    }
    CHECK(bcache_count(4, 10) == 0, "unpinned block evicted");
    b = bread(4, 10);
    REQUIRE(b, "bread 10 again");
    CHECK(b->data[0] == 0, "unpinned block re-read from the device");
    brelse(b);
    teardown();
}

/* With 3 of 4 buffers pinned and one busy, a miss must wait instead of
 * evicting a pinned buffer. */
struct pin_wait_ctx {
    atomic_int released;
    atomic_long bad;
};

static void pin_wait_worker(int cpu, void *arg)
{
    struct pin_wait_ctx *x = arg;
    static struct buf *held;
    if (cpu == 0)
        held = bread(4, 50);
    cpus_barrier();
    if (cpu == 1) {
        struct buf *b = bread(4, 60);
        if (!b || atomic_load(&x->released) == 0)
            atomic_fetch_add(&x->bad, 1);
        if (b)
            brelse(b);
    } else if (cpu == 0) {
        while (current_waits() < 1)
            sched_yield();
        atomic_store(&x->released, 1);
        brelse(held);
    }
}

TEST(pinned_buffers_are_never_victims)
{
    REQUIRE(setup(4) == 0, "setup");
    REQUIRE(ramdisk_create(4, 512, BSIZE) == 0, "ramdisk");
    struct buf *pinned[3];
    for (int i = 0; i < 3; i++) {
        pinned[i] = bread(4, (uint64_t)i);
        REQUIRE(pinned[i], "bread");
        bpin(pinned[i]);
        brelse(pinned[i]);
    }
    static struct pin_wait_ctx x;
    memset(&x, 0, sizeof x);
    run_on_cpus(2, pin_wait_worker, &x);
    CHECK(atomic_load(&x.bad) == 0, "the miss went through only after the release");
    for (int i = 0; i < 3; i++) {
        CHECK(bcache_count(4, (uint64_t)i) == 1, "pinned block %d still cached", i);
        bunpin(pinned[i]);
    }
    CHECK(bcache_count(4, 50) == 0 && bcache_count(4, 60) == 1, "the free buffer was reused");
    teardown();
}

/* ---- 6. misuse ---- */

static struct buf *misuse_buf;

static void double_brelse(void *arg)
{
    (void)arg;
    brelse(misuse_buf);
    brelse(misuse_buf);
}

static void brelse_foreign(void *arg)
{
    (void)arg;
    brelse((struct buf *)((char *)misuse_buf + 8));
}

static void brelse_stack(void *arg)
{
    (void)arg;
    struct buf fake;
    memset(&fake, 0, sizeof fake);
    brelse(&fake);
}

static void bunpin_unpinned(void *arg)
{
    (void)arg;
    brelse(misuse_buf);
    bunpin(misuse_buf);
}

static void bwrite_released(void *arg)
{
    (void)arg;
    brelse(misuse_buf);
    bwrite(misuse_buf);
}

static void bpin_released(void *arg)
{
    (void)arg;
    brelse(misuse_buf);
    bpin(misuse_buf);
}

static void bread_without_cache(void *arg)
{
    (void)arg;
    brelse(misuse_buf);
    if (bcache_reset() == 0)
        bread(5, 0);
}

/* ---- bcache_check on one CPU while seven read and write ----
 * bcache_check takes every bucket lock and verifies the lists, identities,
 * "never cached twice" and each bucket's oldest-free hint; it must hold at
 * every instant, not only when the cache is quiet. */
static atomic_int readers_done;

static void check_while_reading(int cpu, void *arg)
{
    (void)arg;
    if (cpu == 0) {
        int rounds = 0, bad = 0;
        while (atomic_load(&readers_done) < NCPU - 1) {
            bad += bcache_check() != 0;
            rounds++;
        }
        CHECK(bad == 0 && rounds > 0, "bcache_check failed %d of %d times", bad, rounds);
        return;
    }
    struct rng g = rng_for((uint64_t)cpu + 900);
    for (long i = 0; i < scaled(20000); i++) {
        uint64_t blk = rng_below(&g, 4) ? rng_below(&g, 64) : rng_below(&g, 2048);
        struct buf *b = bread(5, blk);
        CHECK(b != NULL, "bread %llu", (unsigned long long)blk);
        if (!b)
            continue;
        if (blk % NCPU == (uint64_t)cpu && rng_below(&g, 8) == 0) {
            stamp(b->data, blk, (uint64_t)i + 1);
            CHECK(bwrite(b) == 0, "bwrite");
        } else {
            CHECK(stamp_version(b->data, blk) >= 0, "torn block %llu", (unsigned long long)blk);
        }
        brelse(b);
    }
    atomic_fetch_add(&readers_done, 1);
}

TEST(check_holds_while_cpus_read_and_write)
{
    REQUIRE(setup(30) == 0, "setup");
    REQUIRE(ramdisk_create(5, 2048, BSIZE) == 0, "ramdisk");
    for (uint64_t blk = 0; blk < 2048; blk++) {
        struct buf *b = bread(5, blk);
        REQUIRE(b, "bread");
        stamp(b->data, blk, 0);
        REQUIRE(bwrite(b) == 0, "bwrite");
        brelse(b);
    }
    atomic_store(&readers_done, 0);
    run_on_cpus(NCPU, check_while_reading, NULL);
    teardown();
}

TEST(misuse_panics_with_a_reason)
{
    REQUIRE(setup(4) == 0, "setup");
    REQUIRE(ramdisk_create(5, 64, BSIZE) == 0, "ramdisk");
    misuse_buf = bread(5, 3);
    REQUIRE(misuse_buf, "bread");
    CHECK(expect_panic(double_brelse, NULL, "brelse"), "double brelse");
    CHECK(expect_panic(double_brelse, NULL, "buffer not locked"), "double brelse reason");
    CHECK(expect_panic(brelse_foreign, NULL, "not a buffer of the buffer cache"), "misaligned");
    CHECK(expect_panic(brelse_stack, NULL, "not a buffer of the buffer cache"), "foreign");
    CHECK(expect_panic(bunpin_unpinned, NULL, "no reference to drop"), "bunpin");
    CHECK(expect_panic(bwrite_released, NULL, "bwrite"), "bwrite after brelse");
    CHECK(expect_panic(bpin_released, NULL, "not held"), "bpin after brelse");
    CHECK(expect_panic(bread_without_cache, NULL, "not initialised"), "bread without cache");
    CHECK(bcache_reset() == SMP_EBUSY, "reset refuses while a buffer is held");
    brelse(misuse_buf);
    teardown();
}

TEST(init_arguments)
{
    char *region = bcache_fixture_map(REGION);
    CHECK(bcache_init(8, BSIZE) == SMP_ENOMEM, "no region: kalloc fails");
    REQUIRE(pmm_init(region, region + REGION, NCPU) == 0, "pmm");
    size_t free0 = pmm_free_pages();
    CHECK(bcache_init(0, BSIZE) == SMP_EINVAL, "nbuf 0");
    CHECK(bcache_init(8, 0) == SMP_EINVAL, "block size 0");
    CHECK(bcache_init_buckets(8, BSIZE, 12) == SMP_EINVAL, "12 buckets: not prime");
    CHECK(bcache_init_buckets(8, BSIZE, 1) == SMP_EINVAL, "1 bucket");
    CHECK(bcache_init(1u << 20, 1u << 20) == SMP_ENOMEM, "1 TiB of buffers");
    CHECK(bcache_check() == 0 && bcache_reset() == 0, "nothing left after failures");
    CHECK(bcache_default_buckets(30) == 31 && bcache_default_buckets(512) == 131 &&
          bcache_default_buckets(100000) == 251, "default bucket counts");
    CHECK(bcache_init_buckets(8, BSIZE, 13) == 0, "13 buckets");
    CHECK(bcache_init(8, BSIZE) == SMP_EBUSY, "twice");
    struct smp_bcache_stats st;
    CHECK(bcache_stats(&st) == 0 && st.nbucket == 13 && st.nbuf == 8 && st.block_size == BSIZE,
          "geometry in stats");
    char report[8192];
    smp_lock_report(report, sizeof report);
    CHECK(strstr(report, "lock: bcache: ") && strstr(report, "lock: bcache.bucket12: "),
          "locks named bcache and bcache.bucketN in the report");
    CHECK(!strstr(report, "bcache.bucket13"), "only 13 buckets");
    CHECK(bcache_reset() == 0, "reset");
    smp_lock_report(report, sizeof report);
    CHECK(!strstr(report, "lock: bcache"), "reset forgets the cache's locks");
    pmm_drain();
    CHECK(pmm_free_pages() == free0, "reset gives every page back");
    teardown();
}

int main(void)
{
    return RUN_TESTS(writers_and_readers_over_a_file_device,
                     concurrent_misses_never_cache_a_block_twice,
                     all_buffers_busy_waits_then_resumes,
                     faulty_device_errors_reach_the_caller,
                     faulty_device_under_load_loses_nothing,
                     bpin_keeps_a_buffer_and_lru_evicts_the_oldest,
                     check_holds_while_cpus_read_and_write,
                     pinned_buffers_are_never_victims,
                     misuse_panics_with_a_reason,
                     init_arguments);
}
