/* Page allocator on one CPU: alignment of every order, random split/merge
 * sweeps with pmm_check, full coalescing after drain, and every misuse of
 * page_free panics with the address and a reason. */
#include "harness.h"
#include <smpmem/pmm.h>
#include <stdint.h>
#include <stdlib.h>
#include <smpmem/pmm_debug.h>
#include <smpmem/hosted.h>
#include <smpmem/port.h>
#include <string.h>
#include <sys/resource.h>

#define MiB (1UL << 20)

TEST(every_order_is_aligned)
{
    pmm_setup(64 * MiB, 1);
    unsigned max = smp_pmm_max_order();
    CHECK(max == 13, "64 MiB region: max order %u, want 13", max);
    for (unsigned o = 0; o <= max; o++) {
        void *ps[4];
        int n = 0;
        for (; n < 4; n++) {
            ps[n] = page_alloc(o);
            if (!ps[n])
                break;
            CHECK(((uintptr_t)ps[n] & ((4096UL << o) - 1)) == 0, "order %u block %p misaligned", o, ps[n]);
            /* Touch first and last byte: ASan/region bounds. */
            ((char *)ps[n])[0] = 1;
            ((char *)ps[n])[(4096UL << o) - 1] = 1;
        }
        CHECK(n >= 1, "order %u: no block at all", o);
        for (int i = 0; i < n; i++)
            page_free(ps[i], o);
    }
    CHECK(page_alloc(max + 1) == NULL, "order above max gives NULL");
    CHECK(page_alloc(40) == NULL, "absurd order gives NULL");
    pmm_drain();
    CHECK(pmm_free_pages() == pmm_total_pages(), "all free");
    CHECK(pmm_check() == 0, "check");
    pmm_teardown();
}

struct blk { char *p; unsigned order; uint64_t stamp; };

static void stamp_block(struct blk *b)
{
    size_t bytes = 4096UL << b->order;
    *(uint64_t *)b->p = b->stamp;
    *(uint64_t *)(b->p + bytes - 8) = ~b->stamp;
}

static int stamp_ok(const struct blk *b)
{
    size_t bytes = 4096UL << b->order;
    return *(uint64_t *)b->p == b->stamp && *(uint64_t *)(b->p + bytes - 8) == ~b->stamp;
}

TEST(random_split_merge_sweeps)
{
    pmm_setup(64 * MiB, 1);
    struct rng g = rng_for(7);
    enum { SLOTS = 512 };
    static struct blk live[SLOTS];
    int nlive = 0;
    long ops = scaled(200000);
    size_t total = pmm_total_pages();
    size_t held = 0;
    for (long i = 0; i < ops; i++) {
        if (nlive < SLOTS && (nlive == 0 || rng_below(&g, 100) < 55)) {
            /* Mostly small orders, sometimes big ones. */
            unsigned o = rng_below(&g, 10) < 8 ? (unsigned)rng_below(&g, 4) : (unsigned)rng_below(&g, 11);
            char *p = page_alloc(o);
            if (!p)
                continue;
            live[nlive] = (struct blk){ p, o, rng_next(&g) };
            stamp_block(&live[nlive]);
            held += 1UL << o;
            nlive++;
        } else {
            int k = (int)rng_below(&g, (uint64_t)nlive);
            REQUIRE(stamp_ok(&live[k]), "block %p order %u overwritten (overlap)", (void *)live[k].p, live[k].order);
            page_free(live[k].p, live[k].order);
            held -= 1UL << live[k].order;
            live[k] = live[--nlive];
        }
        if (i % 20000 == 0) {
            REQUIRE(pmm_check() == 0, "check at op %ld", i);
            CHECK(pmm_free_pages() + held == total, "free %zu + held %zu != total %zu",
                  pmm_free_pages(), held, total);
        }
    }
    while (nlive) {
        CHECK(stamp_ok(&live[nlive - 1]), "overlap at the end");
        page_free(live[nlive - 1].p, live[nlive - 1].order);
        nlive--;
    }
    pmm_drain();
    CHECK(pmm_free_pages() == total, "free == total after drain");
    CHECK(pmm_check() == 0, "check (includes: no two free buddies left uncoalesced)");
    /* Fully coalesced: the largest block is available again. */
    void *big = page_alloc(smp_pmm_max_order());
    CHECK(big != NULL, "max-order block after drain");
    if (big)
        page_free(big, smp_pmm_max_order());
    pmm_teardown();
}

TEST(exhaustion_gives_null_and_recovers)
{
    pmm_setup(64 * MiB, 1);
    size_t total = pmm_total_pages(), n = 0;
    void **list = NULL, *p;
    while ((p = page_alloc(2)) != NULL) {   /* 16 KiB blocks until dry */
        *(void **)p = list;
        list = p;
        n++;
    }
    CHECK(pmm_free_pages() < 4, "order-2 exhaustion leaves %zu free pages", pmm_free_pages());
    CHECK(n * 4 + pmm_free_pages() == total, "counted %zu blocks", n);
    CHECK(pmm_check() == 0, "check when exhausted");
    while (list) {
        void **next = *list;
        page_free(list, 2);
        list = next;
    }
    CHECK(pmm_free_pages() == total, "free == total (cached pages count as free)");
    pmm_drain();
    CHECK(pmm_check() == 0, "check");
    pmm_teardown();
}

/* Misuse: each must panic with the address and a reason. */
static void free_outside(void *a) { (void)a; page_free((char *)test_region - 4096, 0); }
static void free_misaligned(void *a) { (void)a; char *p = page_alloc(0); page_free(p + 8, 0); }
static void free_twice(void *a) { (void)a; char *p = page_alloc(0); page_free(p, 0); page_free(p, 0); }
static void free_twice_big(void *a) { (void)a; char *p = page_alloc(6); page_free(p, 6); page_free(p, 6); }
static void free_huge_order(void *a) { (void)a; char *p = page_alloc(0); page_free(p, 60); }
static void free_tail(void *a) { (void)a; char *p = page_alloc(1); page_free(p + 4096, 0); }
static void free_never_allocated(void *a) { (void)a; char *p = page_alloc(3); page_free(p, 3); page_free(p + 4096, 0); }

TEST(bad_page_free_panics_with_reason)
{
    pmm_setup(64 * MiB, 1);
    CHECK(expect_panic(free_outside, NULL, "outside the managed region"), "outside");
    CHECK(expect_panic(free_misaligned, NULL, "not aligned to its order"), "misaligned");
    CHECK(expect_panic(free_twice, NULL, "double free"), "double free (cached order)");
    CHECK(expect_panic(free_twice_big, NULL, "double free"), "double free (zone order)");
    CHECK(expect_panic(free_tail, NULL, "not the start of an allocated block"), "tail page");
    CHECK(expect_panic(free_huge_order, NULL, "order larger than any block"), "absurd order");
    CHECK(expect_panic(free_never_allocated, NULL, "page_free(0x"), "address printed");
    pmm_teardown();
}

static void free_wrong_order2(void *a)
{
    (void)a;
    char *p = page_alloc(1);   /* order 1: 8 KiB aligned, so order-0 checks pass */
    page_free(p, 0);
}

TEST(wrong_order_panics)
{
    pmm_setup(64 * MiB, 1);
    CHECK(expect_panic(free_wrong_order2, NULL, "freed with order 0 but allocated with order 1"), "order");
    pmm_teardown();
}

TEST(check_detects_corruption)
{
    /* pmm_check must be able to fail: flip descriptors the way a stray
     * write would (the test-only hooks of pmm_debug.h), expect a violation,
     * restore, expect a pass.  test_check_pmm.c does this for every
     * invariant and matches the reason. */
    pmm_setup(64 * MiB, 1);
    CHECK(pmm_check() == 0, "clean");
    smp_pmm_debug_carve_all();               /* free blocks on lists, not an uncut tail */
    CHECK(pmm_check() == 0, "clean once cut into blocks");
    enum { TAIL, BUDDY, PCP, ALLOC };
    /* A free block of at least two pages: its head and its first tail. */
    uint32_t h = 0, n = (uint32_t)pmm_total_pages();
    while (h < n && !(smp_pmm_debug_get(SMP_DBG_PAGE_STATE, 0, 0, h) == BUDDY &&
                      smp_pmm_debug_get(SMP_DBG_PAGE_ORDER, 0, 0, h) >= 1))
        h += 1U << smp_pmm_debug_get(SMP_DBG_PAGE_ORDER, 0, 0, h);
    REQUIRE(h < n, "no free block of two pages or more");
    uint64_t saved = smp_pmm_debug_set(SMP_DBG_PAGE_STATE, 0, 0, h, PCP);  /* free block claims to be cached */
    CHECK(pmm_check() != 0, "free block marked cached not detected");
    smp_pmm_debug_set(SMP_DBG_PAGE_STATE, 0, 0, h, saved);
    CHECK(smp_pmm_debug_get(SMP_DBG_PAGE_STATE, 0, 0, h + 1) == TAIL,
          "the page after a free head should be a tail");
    smp_pmm_debug_set(SMP_DBG_PAGE_STATE, 0, 0, h + 1, ALLOC);
    smp_pmm_debug_set(SMP_DBG_PAGE_ORDER, 0, 0, h + 1, 0);
    CHECK(pmm_check() != 0, "page in two blocks not detected");
    smp_pmm_debug_set(SMP_DBG_PAGE_STATE, 0, 0, h + 1, TAIL);
    CHECK(pmm_check() == 0, "clean again");
    pmm_teardown();
}

/* Blocks of 2^SMP_DISCARD_ORDER pages and more are handed to the port's
 * discard hook when freed (the hosted port: MADV_DONTNEED of their
 * resident pages), smaller ones never -- except a block freed again while
 * the zone remembers it (the last SMP_DISCARD_KEEP big frees: port.h,
 * page.c), which keeps its pages until newer frees push it out.  A
 * discarded block reads as zero, which only a real discard can explain;
 * a kept one still holds what was written; either is usable again. */
#define BIG (4096UL << SMP_DISCARD_ORDER)

static void free_discarded_twice(void *a)
{
    (void)a;
    char *p = page_alloc(SMP_DISCARD_ORDER);
    page_free(p, SMP_DISCARD_ORDER);
    page_free(p, SMP_DISCARD_ORDER);
}

static int holds(const unsigned char *p, size_t len, unsigned char v)
{
    return p[0] == v && p[len / 2] == v && p[len - 1] == v;
}

TEST(big_free_blocks_go_back_to_the_kernel)
{
    pmm_setup(256 * MiB, 1);
    /* Blocks to push the window with, taken first so that none comes from
     * the pages of the block under test. */
    unsigned char *other[SMP_DISCARD_KEEP];
    for (int i = 0; i < SMP_DISCARD_KEEP; i++) {
        other[i] = page_alloc(SMP_DISCARD_ORDER);
        REQUIRE(other[i] != NULL, "block %d to push the window with", i);
    }
    unsigned long before = smp_hosted_discarded_bytes();
    unsigned char *p = page_alloc(SMP_DISCARD_ORDER);
    REQUIRE(p != NULL, "a block of the discard order");
    memset(p, 0xab, BIG);
    page_free(p, SMP_DISCARD_ORDER);
    CHECK(smp_hosted_discarded_bytes() - before == BIG, "first free: %lu bytes discarded, want %lu",
          smp_hosted_discarded_bytes() - before, BIG);
    CHECK(holds(p, BIG, 0), "first free: its pages still hold what was written");

    unsigned char *again = page_alloc(SMP_DISCARD_ORDER);
    REQUIRE(again == p, "the zone handed out %p, not the block just freed %p", (void *)again, (void *)p);
    memset(p, 0x77, BIG);
    before = smp_hosted_discarded_bytes();
    page_free(p, SMP_DISCARD_ORDER);
    CHECK(smp_hosted_discarded_bytes() == before, "second free of the same block: discarded");
    CHECK(holds(p, BIG, 0x77), "second free of the same block: its pages were dropped");

    for (int i = 0; i < SMP_DISCARD_KEEP; i++)     /* first frees: each discarded at once */
        page_free(other[i], SMP_DISCARD_ORDER);
    CHECK(smp_hosted_discarded_bytes() - before == (SMP_DISCARD_KEEP + 1) * BIG,
          "pushed out: %lu bytes discarded, want %lu", smp_hosted_discarded_bytes() - before,
          (SMP_DISCARD_KEEP + 1) * BIG);
    CHECK(holds(p, BIG, 0), "a kept block pushed out of the window kept its pages");
    CHECK(pmm_check() == 0, "check after the window");

    before = smp_hosted_discarded_bytes();
    unsigned char *q = page_alloc(SMP_DISCARD_ORDER - 1);
    REQUIRE(q != NULL, "a block one order smaller");
    memset(q, 0xcd, BIG / 2);
    page_free(q, SMP_DISCARD_ORDER - 1);
    CHECK(smp_hosted_discarded_bytes() == before, "a smaller block was discarded");
    CHECK(q[0] == 0xcd, "a smaller block lost its contents");

#ifndef SMP_CHECKED              /* the checked kfree holds blocks in its quarantine */
    before = smp_hosted_discarded_bytes();
    unsigned char *k = kalloc(3 * MiB);           /* kfree's route: order 10 */
    REQUIRE(k != NULL, "kalloc(3 MiB)");
    memset(k, 0xef, 3 * MiB);
    kfree(k);
    CHECK(smp_hosted_discarded_bytes() - before == 4 * MiB, "kfree of 3 MiB: %lu bytes discarded, want 4 MiB",
          smp_hosted_discarded_bytes() - before);
#endif

    again = page_alloc(SMP_DISCARD_ORDER);
    REQUIRE(again != NULL, "the order again");
    memset(again, 0x5a, BIG);
    CHECK(again[BIG - 1] == 0x5a, "a discarded block is usable again");
    page_free(again, SMP_DISCARD_ORDER);
    CHECK(pmm_check() == 0, "check");
    CHECK(expect_panic(free_discarded_twice, NULL, "double free"), "double free of a discarded block");
    pmm_teardown();
}

/* A kept block allocated again, whole or in part, is not discarded when
 * newer frees push it out of the window: its new owner's data stays.
 * Each round keeps a block of a random order (freed twice), reuses part
 * or all of it, then pushes it out. */
TEST(a_kept_block_reused_is_never_discarded)
{
    pmm_setup(256 * MiB, 1);
    struct rng g = rng_for(3);
    int inside = 0;
    for (int round = 0; round < 40; round++) {
        unsigned o = SMP_DISCARD_ORDER + (unsigned)rng_below(&g, 3);
        unsigned char *push[SMP_DISCARD_KEEP];
        for (int i = 0; i < SMP_DISCARD_KEEP; i++)
            push[i] = page_alloc(SMP_DISCARD_ORDER);
        unsigned char *a = page_alloc(o);
        REQUIRE(a != NULL, "round %d: order %u", round, o);
        page_free(a, o);                            /* remembered (and discarded) */
        REQUIRE(page_alloc(o) == a, "round %d: the zone did not hand the block back", round);
        memset(a, 1, 4096UL << o);
        page_free(a, o);                            /* freed again: kept */
        unsigned ro = o - (unsigned)rng_below(&g, o - SMP_DISCARD_ORDER + 2);
        unsigned char *r = page_alloc(ro);
        REQUIRE(r != NULL, "round %d: reuse order %u", round, ro);
        inside += r >= a && r < a + (4096UL << o);
        unsigned char mark = (unsigned char)(0x40 + round);
        memset(r, mark, 4096UL << ro);
        for (int i = 0; i < SMP_DISCARD_KEEP; i++)  /* push the kept block out */
            if (push[i])
                page_free(push[i], SMP_DISCARD_ORDER);
        CHECK(holds(r, 4096UL << ro, mark), "round %d: a reused block (order %u in a kept %u) was discarded",
              round, ro, o);
        page_free(r, ro);
        CHECK(pmm_check() == 0, "round %d: check", round);
    }
    CHECK(inside > 0, "no round reused the kept block's own pages");
    pmm_drain();
    CHECK(pmm_free_pages() == pmm_total_pages(), "all free at the end");
    pmm_teardown();
}

/* The case the window is for: one buffer allocated, filled and freed over
 * and over.  Discarded on every free, each round faulted all of its pages
 * in again (the malloc port ran 1 MiB rounds 70x slower than glibc); kept,
 * the rounds after the second fault nothing in. */
static long minor_faults(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_minflt;
}

TEST(a_buffer_freed_and_reused_keeps_its_pages)
{
    pmm_setup(256 * MiB, 1);
    const unsigned o = SMP_DISCARD_ORDER + 2;      /* 4 MiB */
    const size_t len = 4096UL << o;
    unsigned long before = smp_hosted_discarded_bytes();
    long faults = 0;
    for (int round = 0; round < 20; round++) {
        long f0 = minor_faults();
        unsigned char *p = page_alloc(o);
        REQUIRE(p != NULL, "round %d", round);
        memset(p, round, len);
        page_free(p, o);
        if (round)
            faults += minor_faults() - f0;
    }
    /* The first free discards (the block is new to the window); every
     * later one keeps, so round 1 faults the pages in again and no later
     * round does. */
    CHECK(smp_hosted_discarded_bytes() - before == len, "%lu bytes discarded in the loop, want %zu",
          smp_hosted_discarded_bytes() - before, len);
    CHECK(faults < 2 * (long)(len / 4096), "%ld page faults in 19 rounds of a kept %zu-byte buffer", faults, len);
    pmm_teardown();
}

/* Pages carved off the region's uncarved tail and lying free on the
 * buddy's lists, not in a CPU cache (page/buddy.c: a carve takes no more
 * than the allocation asks for, so none of these pages' metadata is
 * written for a block nobody wanted). */
static size_t pages_on_lists(void)
{
    size_t cached = 0;
    struct smp_pcp_stats st;
    for (int cpu = 0; smp_pmm_cpu_stats(cpu, &st) == 0; cpu++)   /* every CPU the region has */
        cached += st.cached_pages;
    size_t uncarved = pmm_total_pages() - (size_t)smp_pmm_debug_get(SMP_DBG_ZONE_UNCARVED, 0, 0, 0);
    return pmm_free_pages() - cached - uncarved;
}

TEST(allocations_carve_only_what_they_take)
{
    /* Every alignment of the region's first page to 64 pages, so that
     * some regions start on a large block's boundary, where carving the
     * largest aligned block and splitting it would leave its halves free
     * on the lists. */
    const size_t bytes = 16 * MiB;
    for (size_t skew = 0; skew < 64; skew++) {
        char *map = region_map(bytes, skew * 4096);
        REQUIRE(pmm_init(map, map + bytes, 2) == 0, "init, skew %zu pages", skew);
        CHECK(smp_pmm_debug_get(SMP_DBG_ZONE_UNCARVED, 0, 0, 0) == 0, "init carved blocks (skew %zu)", skew);
        void *p = page_alloc(0);                 /* a CPU cache's first batch of pages */
        CHECK(p && pages_on_lists() < 32, "skew %zu: %zu pages carved for one batch of single pages",
              skew, pages_on_lists());
        void *big = page_alloc(6);               /* not cached: straight from the zone */
        CHECK(big && pages_on_lists() < 64, "skew %zu: %zu pages carved and left for an order-6 block",
              skew, pages_on_lists());
        CHECK(pmm_check() == 0, "skew %zu: check after carving", skew);
        page_free(p, 0);
        page_free(big, 6);
        pmm_drain();                             /* every page back: carved blocks must merge */
        CHECK(pmm_check() == 0, "skew %zu: check after the drain (free buddies coalesced)", skew);
        void *huge = page_alloc(smp_pmm_max_order());
        CHECK(huge != NULL, "skew %zu: the largest block after merging the carved ones", skew);
        page_free(huge, smp_pmm_max_order());
        CHECK(pmm_check() == 0, "skew %zu: check at the end", skew);
        pmm_reset();
        region_unmap(map, bytes, skew * 4096);
    }
}

int main(void)
{
    return RUN_TESTS(every_order_is_aligned, random_split_merge_sweeps,
                     exhaustion_gives_null_and_recovers, bad_page_free_panics_with_reason,
                     wrong_order_panics, check_detects_corruption,
                     big_free_blocks_go_back_to_the_kernel, a_kept_block_reused_is_never_discarded,
                     a_buffer_freed_and_reused_keeps_its_pages, allocations_carve_only_what_they_take);
}
