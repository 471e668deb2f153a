/* The buffer cache on the virtio disk: harts read and write blocks with
 * content checks (each block carries its number and version in every word),
 * then the cache is torn down and rebuilt and every block is read back from
 * the disk; concurrent misses on the same blocks never cache one twice.
 * Requests complete by interrupt (the PLIC routes the disk to every hart)
 * while the submitting hart sleeps in smp_port_sleep. */
#include "suite.h"
#include <smpmem/bcache.h>
#include <smpmem/bio_debug.h>
#include <smpmem/bdev.h>
#include <smpmem/pmm.h>
#include <smpmem/spinlock.h>

#define DEV 1
#define BSIZE 1024
#define NBUF 64

static uint64_t nblocks;

static int disk_up(void)
{
    static int done;
    if (!done) {
        int r = virtio_blk_init(DEV, BSIZE);
        if (r != 0) {
            kprintf("  virtio_blk_init: %d (is QEMU given a virtio-blk disk?)\n", r);
            return 0;
        }
        done = 1;
    }
    nblocks = smp_bdev_nblocks(DEV);
    return nblocks > 0;
}

static uint64_t word(uint64_t b, uint64_t version, unsigned i)
{
    return (b << 40) ^ (version << 16) ^ (i * 0x9e3779b97f4a7c15ULL >> 24);
}

static void fill(unsigned char *data, uint64_t b, uint64_t version)
{
    uint64_t *w = (uint64_t *)data;
    for (unsigned i = 0; i < BSIZE / 8; i++)
        w[i] = word(b, version, i);
    w[1] = version;
}

/* The version a block holds (0 = never written: all zero), or -1. */
static long contents(const unsigned char *data, uint64_t b)
{
    const uint64_t *w = (const uint64_t *)data;
    uint64_t v = w[1];
    if (v == 0) {
        for (unsigned i = 0; i < BSIZE / 8; i++)
            if (w[i])
                return -1;
        return 0;
    }
    for (unsigned i = 0; i < BSIZE / 8; i++)
        if (i != 1 && w[i] != word(b, v, i))
            return -1;
    return (long)v;
}

static struct {
    uint64_t nb;
    uint64_t *version;                 /* written by the block's owner only */
    long iters;
} rw;

static void writers_and_readers(int cpu, void *arg)
{
    (void)arg;
    struct rng g = rng_for((uint64_t)cpu);
    for (long it = 0; it < rw.iters; it++) {
        uint64_t b = rng_below(&g, rw.nb);
        int mine = (int)(b % (uint64_t)NCPU) == cpu;
        struct smp_buf *buf = smp_bread(DEV, b);
        REQUIRE(buf, "cpu %d: bread(%lu) failed", cpu, (unsigned long)b);
        long v = contents(buf->data, b);
        CHECK(v >= 0, "cpu %d: block %lu holds garbage", cpu, (unsigned long)b);
        if (mine) {
            CHECK(v == (long)rw.version[b], "cpu %d: block %lu has version %ld, wrote %lu", cpu,
                  (unsigned long)b, v, (unsigned long)rw.version[b]);
            if (rng_below(&g, 3) == 0) {
                fill(buf->data, b, ++rw.version[b]);
                CHECK(smp_bwrite(buf) == 0, "cpu %d: bwrite(%lu)", cpu, (unsigned long)b);
            }
        }
        smp_brelse(buf);
    }
}

static void verify_own(int cpu, void *arg)
{
    (void)arg;
    for (uint64_t b = (uint64_t)cpu; b < rw.nb; b += (uint64_t)NCPU) {
        struct smp_buf *buf = smp_bread(DEV, b);
        REQUIRE(buf, "bread(%lu) after the cache was rebuilt", (unsigned long)b);
        long v = contents(buf->data, b);
        CHECK(v == (long)rw.version[b], "block %lu read back from the disk: version %ld, wrote %lu",
              (unsigned long)b, v, (unsigned long)rw.version[b]);
        smp_brelse(buf);
    }
}

TEST(writers_and_readers_on_virtio_blk)
{
    REQUIRE(disk_up(), "no virtio disk");
    suite_region(32 * MiB);
    rw.nb = nblocks < 256 ? nblocks : 256;
    rw.iters = scaled(500);
    rw.version = region_map(rw.nb * sizeof(uint64_t), 0);
    /* A fresh disk each run, but begin from known contents anyway. */
    unsigned char *zero = smp_kalloc(BSIZE);
    memset(zero, 0, BSIZE);
    for (uint64_t b = 0; b < rw.nb; b++) {
        rw.version[b] = 0;
        CHECK(smp_bdev_write(DEV, b, zero) == 0, "zeroing block %lu", (unsigned long)b);
    }
    smp_kfree(zero);
    REQUIRE(smp_bcache_init(NBUF, BSIZE) == 0, "bcache_init");
    struct virtio_blk_stats v0, v1;
    virtio_blk_stats(&v0);
    run_on_cpus(NCPU, writers_and_readers, 0);
    CHECK(smp_bcache_check() == 0, "bcache_check");
    struct smp_bcache_stats st;
    smp_bcache_stats(&st);
    CHECK(smp_bdev_flush(DEV) == 0, "flush");
    CHECK(smp_bcache_reset() == 0, "bcache_reset");
    REQUIRE(smp_bcache_init(NBUF, BSIZE) == 0, "bcache_init again");
    run_on_cpus(NCPU, verify_own, 0);
    virtio_blk_stats(&v1);
    kprintf("  bcache: hits %lu misses %lu evictions %lu races %lu; virtio: %lu reads %lu writes "
            "%lu flushes %lu interrupts\n", st.hits, st.misses, st.evictions, st.races,
            v1.reads - v0.reads, v1.writes - v0.writes, v1.flushes - v0.flushes, v1.irqs - v0.irqs);
    CHECK(v1.reads > v0.reads && v1.writes > v0.writes && v1.irqs > v0.irqs,
          "the disk saw no I/O or no interrupt");
    CHECK(smp_bcache_reset() == 0, "bcache_reset");
    region_unmap(rw.version, rw.nb * sizeof(uint64_t), 0);
    suite_region_done();
}

static void same_blocks(int cpu, void *arg)
{
    uint64_t base = *(uint64_t *)arg;
    cpus_barrier();
    for (uint64_t k = 0; k < 48; k++) {
        uint64_t b = base + (k + (uint64_t)cpu) % 48;
        struct smp_buf *buf = smp_bread(DEV, b);
        REQUIRE(buf, "bread(%lu)", (unsigned long)b);
        CHECK(contents(buf->data, b) >= 0, "block %lu holds garbage", (unsigned long)b);
        smp_brelse(buf);
    }
}

TEST(concurrent_misses_never_cache_a_block_twice)
{
    REQUIRE(disk_up(), "no virtio disk");
    suite_region(16 * MiB);
    REQUIRE(smp_bcache_init(NBUF, BSIZE) == 0, "bcache_init");
    uint64_t base = nblocks > 1024 ? 1024 : 0;
    run_on_cpus(NCPU, same_blocks, &base);
    for (uint64_t k = 0; k < 48; k++)
        CHECK(smp_bcache_count(DEV, base + k) <= 1, "block %lu cached %u times",
              (unsigned long)(base + k), smp_bcache_count(DEV, base + k));
    struct smp_bcache_stats st;
    smp_bcache_stats(&st);
    kprintf("  %d harts missed the same 48 blocks: misses %lu, races resolved %lu\n", NCPU,
            st.misses, st.races);
    CHECK(st.misses == 48, "48 blocks, %lu misses", st.misses);
    CHECK(smp_bcache_check() == 0, "bcache_check");
    CHECK(smp_bcache_reset() == 0, "bcache_reset");
    suite_region_done();
}

int suite_bcache(void)
{
    return RUN_TESTS(writers_and_readers_on_virtio_blk, concurrent_misses_never_cache_a_block_twice);
}

/* The closing run: pages, objects and the cache together on every hart,
 * then smpmem's lock table in xv6's statslock format. */
static void everything(int cpu, void *arg)
{
    (void)arg;
    struct rng g = rng_for(77 + (uint64_t)cpu);
    for (long it = 0; it < scaled(300); it++) {
        void *p = smp_kalloc(1 + rng_below(&g, 4000));
        void *pg = smp_page_alloc(0);
        struct smp_buf *b = smp_bread(DEV, rng_below(&g, 256));
        if (b)
            smp_brelse(b);
        smp_page_free(pg, 0);
        smp_kfree(p);
    }
}

void suite_lock_table(void)
{
    if (!disk_up())
        return;
    suite_region(32 * MiB);
    if (smp_bcache_init(NBUF, BSIZE) == 0) {
        smp_lock_stats_reset();
        run_on_cpus(NCPU, everything, 0);
        smp_lock_print();
        smp_bcache_reset();
    }
    suite_region_done();
}
