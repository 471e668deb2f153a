/* pmm_init: every bad argument is refused with an error code, bounds are
 * rounded inward, metadata stays inside the region and under 2%, and a
 * 4 GiB region initialises touching only its metadata. */
#include "harness.h"
#include <smpmem/pmm.h>
#include <smpmem/pmm_debug.h>
#include <stdint.h>

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
    CHECK(big == 19, "a 4 GiB region minus metadata: max order %u, want 19", big);
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

int main(void)
{
    return RUN_TESTS(bad_arguments_are_refused, unaligned_bounds_round_inward, four_gib_region);
}
