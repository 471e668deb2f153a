/* The buffer-cache tests' fixture (test_bcache.c, test_bcache_lru.c): a
 * region for the page allocator on `ncpu` CPUs and a cache of `nbuf`
 * buffers; teardown checks both layers' invariants, that no buffer is
 * still held, and gives everything back. */
#ifndef SMPMEM_TEST_BCACHE_FIXTURE_H
#define SMPMEM_TEST_BCACHE_FIXTURE_H

#include <smpmem/bcache.h>
#include <smpmem/bdev.h>
#include <smpmem/bio_debug.h>
#include <smpmem/pmm.h>
#include <smpmem/pmm_debug.h>
#include "harness.h"

static char *fixture_region;
static size_t fixture_bytes;

/* The region alone (for tests of what init does without one). */
static inline char *bcache_fixture_map(size_t bytes)
{
    fixture_bytes = bytes;
    return fixture_region = region_map(bytes, 0);
}

/* 0, or -1 if pmm_init failed, or bcache_init's error. */
static inline int bcache_fixture_setup(size_t bytes, int ncpu, unsigned nbuf, unsigned bsize)
{
    bcache_fixture_map(bytes);
    if (smp_pmm_init(fixture_region, fixture_region + bytes, ncpu) != 0)
        return -1;
    return smp_bcache_init(nbuf, bsize);
}

static inline void bcache_fixture_teardown(void)
{
    CHECK(smp_bcache_check() == 0, "cache invariants at teardown");
    CHECK(smp_bcache_reset() == 0, "no buffer held at teardown");
    smp_bdev_reset();
    CHECK(smp_pmm_check() == 0, "pmm invariants");
    smp_pmm_reset();
    region_unmap(fixture_region, fixture_bytes, 0);
}

#endif
