#define _DEFAULT_SOURCE
/* pmm_init: every bad argument is refused with an error code, bounds are
 * rounded inward, metadata stays inside the region and under 2%, and a
 * 4 GiB region initialises touching only its metadata. */
#include "harness.h"
#include <smpmem/pmm.h>
#include <smpmem/pmm_debug.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#define MiB (1UL << 20)
#define GiB (1UL << 30)

TEST(bad_arguments_are_refused)
{
    char *r = region_map(64 * MiB, 0);
    CHECK(pmm_init(NULL, r + 64 * MiB, 1) == SMP_EINVAL, "NULL start");
    CHECK(pmm_init(r, NULL, 1) == SMP_EINVAL, "NULL end");
    CHECK(pmm_init(r, r, 1) == SMP_EINVAL, "empty region");
    CHECK(pmm_init(r + MiB, r, 1) == SMP_EINVAL, "end before start");
    CHECK(pmm_init(r, r + 64 * MiB, 0) == SMP_EINVAL, "ncpu 0");
    CHECK(pmm_init(r, r + 64 * MiB, -3) == SMP_EINVAL, "ncpu negative");
    CHECK(pmm_init(r, r + 64 * MiB, SMP_MAX_CPUS + 1) == SMP_EINVAL, "ncpu too large");
    CHECK(pmm_init(r, r + 4096, 1) == SMP_ERANGE, "one page");
    CHECK(pmm_init(r, r + 100, 1) == SMP_ERANGE, "less than a page");
    CHECK(pmm_init(r + 1, r + 4095, 1) == SMP_ERANGE, "no whole page inside");
    CHECK(pmm_init(r, r + 64 * 4096, 1) == SMP_ERANGE, "64 pages leave too few after metadata");
    CHECK(pmm_total_pages() == 0, "nothing initialised after failures");
    CHECK(page_alloc(0) == NULL, "page_alloc before init gives NULL");
    /* Every route of kalloc and page_alloc meets the empty state's ncpu 0
     * (or its empty zone) and answers NULL. */
    CHECK(page_alloc(3) == NULL && page_alloc(6) == NULL, "page_alloc of cached and zone orders before init");
    CHECK(kalloc(1) == NULL && kalloc(64) == NULL && kalloc(2048) == NULL, "small kalloc before init");
    CHECK(kalloc(5000) == NULL && kalloc(1 << 20) == NULL, "page-block kalloc before init");
    CHECK(pmm_init(r, r + 64 * MiB, 8) == 0, "good init");
    CHECK(pmm_init(r, r + 64 * MiB, 8) == SMP_EBUSY, "second call");
    CHECK(pmm_check() == 0, "check");
    pmm_reset();
    CHECK(pmm_init(r, r + 64 * MiB, SMP_MAX_CPUS) == 0, "init with the maximum ncpu");
    pmm_reset();
    region_unmap(r, 64 * MiB, 0);
}

TEST(unaligned_bounds_round_inward)
{
    struct rng g = rng_for(1);
    for (int round = 0; round < 8; round++) {
        size_t skew = 1 + rng_below(&g, 4095);
        size_t size = 64 * MiB - rng_below(&g, 8192);
        char *r = region_map(size, skew);
        REQUIRE(pmm_init(r, r + size, 4) == 0, "init skew=%zu size=%zu", skew, size);
        size_t total = pmm_total_pages();
        CHECK(total <= size / 4096 && total >= (size / 4096) * 98 / 100,
              "total %zu pages of %zu: metadata must be under 2%%", total, size / 4096);
        CHECK(pmm_free_pages() == total, "all free at start");
        /* Every page handed out lies inside [r, r+size) and is aligned. */
        size_t n = 0;
        uintptr_t lo = UINTPTR_MAX, hi = 0;
        void **list = NULL;
        char *p;
        while ((p = page_alloc(0)) != NULL) {
            CHECK(((uintptr_t)p & 4095) == 0, "page %p misaligned", (void *)p);
            CHECK(p >= r && p + 4096 <= r + size, "page %p outside region", (void *)p);
            *(void **)p = list;   /* chain through the pages themselves */
            list = (void **)p;
            if ((uintptr_t)p < lo) lo = (uintptr_t)p;
            if ((uintptr_t)p > hi) hi = (uintptr_t)p;
            n++;
        }
        CHECK(n == total, "allocated %zu pages of %zu", n, total);
        CHECK(pmm_free_pages() == 0, "none free");
        CHECK(pmm_check() == 0, "check when full");
        while (list) {
            void **next = *list;
            page_free(list, 0);
            list = next;
        }
        pmm_drain();
        CHECK(pmm_free_pages() == total, "all back");
        CHECK(pmm_check() == 0, "check after free");
        pmm_reset();
        region_unmap(r, size, skew);
    }
}

TEST(four_gib_region)
{
    size_t size = 4 * GiB;
    char *r = region_map(size, 0);
    REQUIRE(pmm_init(r, r + size, 8) == 0, "init 4 GiB");
    size_t total = pmm_total_pages();
    CHECK(total >= size / 4096 * 98 / 100, "4 GiB: %zu pages managed", total);
    CHECK(pmm_check() == 0, "check");
    /* A large block and a few pages; touch only what we allocate. */
    unsigned big = smp_pmm_max_order();
    /* Any interval holds an aligned power-of-two block of a quarter its
     * length: 4 GiB minus metadata holds order 17 at least. */
    CHECK(big >= 17 && big <= 19, "a 4 GiB region minus metadata: max order %u, want 17..19", big);
    void *b = page_alloc(big - 1);
    CHECK(b != NULL, "order %u block", big - 1);
    CHECK(((uintptr_t)b & ((4096UL << (big - 1)) - 1)) == 0, "aligned");
    void *q = page_alloc(0);
    CHECK(q != NULL, "a page");
    *(volatile char *)q = 1;
    page_free(q, 0);
    page_free(b, big - 1);
    pmm_drain();
    CHECK(pmm_free_pages() == total, "all back");
    CHECK(pmm_check() == 0, "check");
    pmm_reset();
    region_unmap(r, size, 0);
}

/* pmm_max_order() is a promise: on a fresh region page_alloc of that order
 * succeeds, wherever the region lies.  Swept over 64 MiB regions starting
 * 8..248 KiB below a 32 MiB boundary (where a size-based bound promised an
 * order no aligned block reaches), random placements, and the smallest
 * region init accepts. */
static void expect_max_order_block(char *lo, char *hi, const char *what, size_t arg)
{
    REQUIRE(pmm_init(lo, hi, 2) == 0, "init %s %zu", what, arg);
    unsigned max = smp_pmm_max_order();
    void *b = page_alloc(max);
    CHECK(b != NULL, "%s %zu: page_alloc(max order %u) failed on a fresh region", what, arg, max);
    CHECK(page_alloc(max + 1) == NULL, "%s %zu: order %u beyond the max succeeded", what, arg, max + 1);
    if (b)
        page_free(b, max);
    CHECK(pmm_check() == 0, "check");
    pmm_reset();
}

TEST(max_order_is_a_promise)
{
    size_t span = 128 * MiB;
    char *map = region_map(span, 0);
    char *boundary = (char *)(((uintptr_t)map + 64 * MiB) & ~(uintptr_t)(32 * MiB - 1));
    for (size_t below = 8 * 1024; below <= 248 * 1024; below += 8 * 1024)
        expect_max_order_block(boundary - below, boundary - below + 64 * MiB, "64 MiB region, KiB below a 32 MiB boundary:", below / 1024);
    struct rng g = rng_for(3);
    for (int i = 0; i < 16; i++) {
        size_t off = rng_below(&g, 32 * MiB), len = MiB + rng_below(&g, 64 * MiB);   /* 1 MiB: init takes it for 2 CPUs */
        expect_max_order_block(map + off, map + off + len, "random region of bytes", len);
    }
    /* The smallest region init accepts: grow until it does. */
    size_t len = 64 * 4096;
    while (pmm_init(map, map + len, 2) == SMP_ERANGE)
        len += 4096;
    pmm_reset();
    expect_max_order_block(map, map + len, "smallest accepted region, bytes", len);
    region_unmap(map, span, 0);
}

/* SMP_INIT_ZEROED: memory known to read as zero is not cleared, so init
 * touches little more than the header and the blocks' head descriptors;
 * the result is the same allocator.  Unknown flags are refused. */
static size_t resident_pages(char *p, size_t len)
{
    size_t n = (len + 4095) / 4096, count = 0;
    unsigned char *vec = malloc(n);
    if (!vec || mincore(p, len, vec) != 0) {
        free(vec);
        return (size_t)-1;
    }
    for (size_t i = 0; i < n; i++)
        count += vec[i] & 1;
    free(vec);
    return count;
}

TEST(zeroed_memory_is_not_cleared_again)
{
    size_t size = 1 * GiB;
    char *r = region_map(size, 0);
    CHECK(pmm_init_flags(r, r + size, 2, 0x80) == SMP_EINVAL, "unknown flag refused");
    REQUIRE(pmm_init_flags(r, r + size, 2, SMP_INIT_ZEROED) == 0, "init zeroed");
    size_t touched_zeroed = resident_pages(r, size);
    size_t total = pmm_total_pages();
    size_t desc_pages = total * 32 / 4096;
    CHECK(touched_zeroed < desc_pages / 4, "SMP_INIT_ZEROED touched %zu pages (descriptors span %zu)",
          touched_zeroed, desc_pages);
    /* And the zone cuts the region into blocks lazily (page/buddy.c), so
     * init writes no descriptor or head at all: the header, the first
     * owner bytes and the per-CPU caches, a handful of pages.  Cutting at
     * init wrote one page of each per block, about 20 pages here. */
    CHECK(touched_zeroed <= 8, "SMP_INIT_ZEROED touched %zu pages, want <= 8", touched_zeroed);
    CHECK(pmm_check() == 0, "check after a zeroed init");
    void *b = page_alloc(smp_pmm_max_order());
    CHECK(b != NULL, "largest block");
    page_free(b, smp_pmm_max_order());
    void *o = kalloc(64);
    CHECK(o != NULL, "an object");
    kfree(o);
    pmm_drain();
    CHECK(pmm_free_pages() == total && pmm_check() == 0, "all back, check");
    pmm_reset();
    region_unmap(r, size, 0);
    /* Without the flag the descriptors are cleared: the control case. */
    r = region_map(size, 0);
    REQUIRE(pmm_init(r, r + size, 2) == 0, "init");
    size_t touched = resident_pages(r, size);
    CHECK(touched >= desc_pages, "a plain init clears the descriptors (%zu of %zu pages touched)",
          touched, desc_pages);
    pmm_reset();
    region_unmap(r, size, 0);
}

/* Each hot metadata area (header, gates, object caches, page caches)
 * starts off the first lines of a page, which page users write most
 * (page.h), whatever the region's start, size and CPU count: each area is
 * placed on its own, not just after the one before.  Placed after the
 * header, the page caches landed at a page boundary on the benchmarks'
 * 1 GiB region once the header grew, and page allocation at 1 thread ran
 * at 0.66x. */
TEST(hot_metadata_starts_off_the_page_boundary)
{
    static const size_t sizes[] = { 64 * MiB, 64 * MiB + 12345, GiB, GiB + 40960 };
    const size_t map = GiB + 64 * MiB;
    struct rng g = rng_for(0);
    for (unsigned s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        for (int round = 0; round < 6; round++) {
            size_t skew = round == 0 ? 0 : rng_below(&g, 8) * 4096 + rng_below(&g, 64) * 64;
            int ncpu = round == 0 ? 8 : 1 + (int)rng_below(&g, SMP_MAX_CPUS);
            char *r = region_map(map, skew);
            REQUIRE(pmm_init_flags(r, r + sizes[s], ncpu, SMP_INIT_ZEROED) == 0,
                    "init %zu bytes at skew %zu, %d CPUs", sizes[s], skew, ncpu);
            for (unsigned a = 0; a < 4; a++) {
                uintptr_t at = (uintptr_t)smp_pmm_debug_area(a);
                CHECK(a == 1 || at != 0, "area %u exists", a);
                if (at)
                    CHECK((at & 4095) >= 128, "area %u starts %lu bytes into a page "
                          "(region of %zu bytes at skew %zu, %d CPUs)", a, (unsigned long)(at & 4095),
                          sizes[s], skew, ncpu);
            }
            pmm_reset();
            region_unmap(r, map, skew);
        }
    }
}

int main(void)
{
    return RUN_TESTS(bad_arguments_are_refused, unaligned_bounds_round_inward, four_gib_region,
                     max_order_is_a_promise, zeroed_memory_is_not_cleared_again,
                     hot_metadata_starts_off_the_page_boundary);
}
