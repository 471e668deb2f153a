/* kalloc/kfree on one CPU: alignment sweep 1 B .. 4 MiB, usable sizes,
 * NULL cases, OOM and full recovery (a half-heap block after a storm of
 * small objects), heaps of 64 MiB and 1 GiB, and misuse panics. */
#include "harness.h"
#include "kalloc_util.h"
#include <smpmem/pmm.h>
#include <smpmem/pmm_debug.h>
#include <smpmem/hosted.h>
#include <stdlib.h>
#include <sys/mman.h>

#define MiB (1UL << 20)
#define GiB (1UL << 30)
static char *region;
static size_t region_size, region_skew;

/* Map a region aligned to its own size, so a half-region block exists. */
static void setup(size_t size, int ncpu)
{
    char *raw = region_map(2 * size, 0);
    char *al = (char *)(((uintptr_t)raw + size - 1) & ~(uintptr_t)(size - 1));
    region_skew = (size_t)(al - raw);
    region_size = size;
    region = al;
    if (pmm_init(region, region + size, ncpu) != 0)
        abort();
}

static void teardown(void)
{
    pmm_reset();
    munmap(region - region_skew, 2 * region_size);
}

TEST(alignment_sweep_1_byte_to_4_mib)
{
    setup(64 * MiB, 1);
    struct rng g = rng_for(3);
    /* Every small size (each meets the class table), then a sample. */
    for (size_t size = 1; size <= 4 * MiB; size = size <= 2048 ? size + 1 : size + 1 + rng_below(&g, size / 3)) {
        void *p = kalloc(size);
        REQUIRE(p != NULL, "kalloc(%zu) gave NULL", size);
        CHECK(aligned_for(p, size), "kalloc(%zu) = %p not aligned to %zu", size, p, pow2_at_least(size));
        CHECK((char *)p >= region && (char *)p + size <= region + region_size, "kalloc(%zu) outside region", size);
        size_t usable = smp_kalloc_usable_size(p);
#ifdef SMP_CHECKED
        /* The checked build reports what was asked: bytes past it are redzone. */
        CHECK(usable == size, "checked build: usable %zu for %zu", usable, size);
#else
        CHECK(usable >= size && usable == (size <= 4096 ? pow2_at_least(size) : usable), "usable %zu for %zu", usable, size);
#endif
        stamp(p, size, size * 77);
        CHECK(stamp_intact(p, size, size * 77), "stamp");
        kfree(p);
    }
    /* Exact powers of two and their neighbours. */
    for (unsigned s = 0; s <= 22; s++) {
        size_t sizes[3] = { (1UL << s) - 1, 1UL << s, (1UL << s) + 1 };
        for (int i = 0; i < 3; i++) {
            if (!sizes[i])
                continue;
            void *p = kalloc(sizes[i]);
            REQUIRE(p, "kalloc(%zu)", sizes[i]);
            CHECK(aligned_for(p, sizes[i]), "kalloc(%zu) = %p misaligned", sizes[i], p);
            kfree(p);
        }
    }
    CHECK(kalloc(0) == NULL, "kalloc(0) is NULL");
    CHECK(kalloc(SIZE_MAX) == NULL, "kalloc(SIZE_MAX) is NULL");
    CHECK(kalloc(128 * MiB) == NULL, "larger than the region is NULL");
    kfree(NULL);
    pmm_drain();
    CHECK(pmm_free_pages() == pmm_total_pages(), "recovered");
    CHECK(pmm_check() == 0, "check");
    teardown();
}

static void oom_then_half_heap(size_t size, size_t obj)
{
    setup(size, 4);
    size_t total = pmm_total_pages();
    size_t n = 0;
    void **list = NULL, *p;
    while ((p = kalloc(obj)) != NULL) {
        *(void **)p = list;
        list = p;
        n++;
    }
#ifdef SMP_CHECKED
    /* Checked: an 8-byte trailer makes every 2^k-byte object a 2^(k+1) block. */
    size_t fit = n * obj, want = (size_t)(0.4 * (double)size);
#else
    size_t fit = n * obj, want = (size_t)(0.8 * (double)size);
#endif
    CHECK(fit >= want, "only %zu MiB of %zu-byte objects fit in %zu MiB", fit >> 20, obj, size >> 20);
    CHECK(pmm_check() == 0, "check when exhausted");
    while (list) {
        void **next = *list;
        kfree(list);
        list = next;
    }
    pmm_drain();
    CHECK(pmm_free_pages() == total, "free %zu == total %zu after drain", pmm_free_pages(), total);
    CHECK(pmm_check() == 0, "check after drain");
#ifdef SMP_CHECKED
    size_t big = size / 4;          /* + its trailer: the next power of two */
#else
    size_t big = size / 2;
#endif
    void *half = kalloc(big);
    CHECK(half != NULL, "a block of %zu MiB after the storm", big >> 20);
    CHECK(aligned_for(half, big), "the block is aligned");
    kfree(half);
    pmm_drain();
    CHECK(pmm_check() == 0, "check");
    teardown();
}

TEST(oom_64_mib) { oom_then_half_heap(64 * MiB, 64); }
/* 16 M objects take a minute under TSan: scaled-down (sanitizer) runs fill
 * the 1 GiB heap with 1 KiB objects instead. */
TEST(oom_1_gib) { oom_then_half_heap(GiB, scaled(100) >= 100 ? 64 : 1024); }

TEST(empty_slabs_return_without_drain)
{
    /* Memory is not pinned: a storm of small objects freed again leaves
     * few pages in slabs even before any drain. */
    setup(64 * MiB, 1);
    size_t total = pmm_total_pages();
    enum { N = 100000 };
    void **ps = malloc(N * sizeof *ps);
    for (int i = 0; i < N; i++)
        REQUIRE((ps[i] = kalloc(32)) != NULL, "kalloc %d", i);
    size_t during = pmm_free_pages();
    for (int i = 0; i < N; i++)
        kfree(ps[i]);
    size_t after = pmm_free_pages();
    CHECK(total - during >= N * 32 / 4096, "objects occupy pages");
#ifdef SMP_CHECKED
    /* Plus the quarantine: 256 blocks, which keep a few slabs alive. */
    CHECK(total - after <= 16 + 16, "after freeing, %zu pages still held by slabs/caches", total - after);
#else
    CHECK(total - after <= 16, "after freeing, %zu pages still held by slabs/caches", total - after);
#endif
    /* A huge block succeeds without an explicit drain: the allocator
     * takes caches back under pressure by itself. */
    void *big = kalloc(16 * MiB);
    CHECK(big != NULL, "16 MiB block after the storm, no drain");
    kfree(big);
    free(ps);
    pmm_drain();
    CHECK(pmm_check() == 0, "check");
    teardown();
}

static void kfree_outside(void *a) { (void)a; kfree(region + region_size + 4096); }
static void kfree_stack(void *a) { (void)a; int x; kfree(&x); }
static void kfree_mid_object(void *a) { (void)a; char *p = kalloc(64); kfree(p + 8); }
static void kfree_mid_page_block(void *a) { (void)a; char *p = kalloc(20000); kfree(p + 4096); }
static void kfree_mid_page(void *a) { (void)a; char *p = kalloc(8192); kfree(p + 100); }
static void kfree_free_page(void *a) { (void)a; char *p = kalloc(8192); kfree(p); pmm_drain(); kfree(p); }
/* Freed twice in a row: the first free left the block on top of this
 * CPU's magazine (4 KiB, the largest class), in its page cache (8 KiB) or
 * in the zone (256 KiB, above the cached orders). */
static void kfree_block_twice(void *a) { char *p = kalloc((size_t)(uintptr_t)a); kfree(p); kfree(p); }

TEST(bad_kfree_panics_with_address_and_reason)
{
    setup(64 * MiB, 1);
    CHECK(expect_panic(kfree_outside, NULL, "outside the managed region"), "outside");
    CHECK(expect_panic(kfree_stack, NULL, "kfree(0x"), "stack pointer: address printed");
#ifdef SMP_CHECKED
    CHECK(expect_panic(kfree_mid_object, NULL, "not at a block start of its class (size 128)"), "mid object");
#else
    CHECK(expect_panic(kfree_mid_object, NULL, "not at a block start of its class (size 64)"), "mid object");
#endif
    CHECK(expect_panic(kfree_mid_page_block, NULL, "not the start of a block"), "tail page");
    CHECK(expect_panic(kfree_mid_page, NULL, "not at the start of its block"), "inside first page");
    CHECK(expect_panic(kfree_free_page, NULL, "not allocated"), "double free of a page");
    CHECK(expect_panic(kfree_block_twice, (void *)(uintptr_t)4096, "double free"),
          "4 KiB object freed twice, the first still on top of the magazine");
    CHECK(expect_panic(kfree_block_twice, (void *)(uintptr_t)8192, "double free"),
          "8 KiB block freed twice, the first still in the page cache");
    CHECK(expect_panic(kfree_block_twice, (void *)(uintptr_t)(256 << 10), "double free"),
          "256 KiB block freed twice");
    teardown();
}

TEST(every_class_round_trip_and_check)
{
    setup(64 * MiB, 1);
    struct rng g = rng_for(11);
    enum { N = 4096 };
    static void *ps[N];
    static size_t sz[N];
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < N; i++) {
            sz[i] = 1 + rng_below(&g, rng_below(&g, 4) ? 256 : 70000);
            ps[i] = kalloc(sz[i]);
            REQUIRE(ps[i], "kalloc(%zu)", sz[i]);
            stamp(ps[i], sz[i], (uint64_t)i * 31 + (uint64_t)round);
        }
        CHECK(pmm_check() == 0, "check with %d live blocks", N);
        for (int i = 0; i < N; i++) {
            CHECK(stamp_intact(ps[i], sz[i], (uint64_t)i * 31 + (uint64_t)round), "block %p (%zu B) overwritten", ps[i], sz[i]);
            kfree(ps[i]);
        }
        CHECK(pmm_check() == 0, "check after frees");
    }
    pmm_drain();
    CHECK(pmm_free_pages() == pmm_total_pages(), "recovered");
    teardown();
}

TEST(stats_follow_the_objects)
{
    setup(64 * MiB, 2);
    enum { N = 5000 };
    static void *ps[N];
    for (int i = 0; i < N; i++)
        REQUIRE((ps[i] = kalloc(100)) != NULL, "kalloc");
    struct smp_kalloc_stats st;
    REQUIRE(smp_kalloc_stats(-1, &st) == 0, "stats");
    unsigned c128 = 4;                     /* 8,16,32,64,128 */
    CHECK(st.class_size[c128] == 128, "class 4 is 128 B");
    CHECK(st.in_use[c128] >= N, "in use %zu >= %d", st.in_use[c128], N);
    CHECK(st.slabs[c128] * 32 >= N, "%zu slabs of 32 objects hold %d", st.slabs[c128], N);
    CHECK(st.slab_pages >= st.slabs[c128], "slab pages");
    for (int i = 0; i < N; i++)
        kfree(ps[i]);
    REQUIRE(smp_kalloc_stats(0, &st) == 0, "stats cpu 0");
    CHECK(st.cached[c128] > 0, "cpu 0 caches freed objects");
    CHECK(smp_kalloc_stats(2, &st) == SMP_EINVAL, "cpu out of range");
    pmm_drain();
    REQUIRE(smp_kalloc_stats(-1, &st) == 0, "stats");
    CHECK(st.slabs[c128] == 0 && st.cached[c128] == 0 && st.slab_pages == 0, "all slabs released after drain");
    teardown();
}

/* smp_kalloc_small_size, a front end's lookup: the class of every small
 * object kfree would route as one, 0 for anything kfree must judge. */
TEST(small_size_names_the_class_kfree_would_route)
{
    CHECK(smp_kalloc_small_size((void *)64) == 0, "before init: nothing is small");
    setup(64 * MiB, 2);
    for (size_t size = 1; size <= 4096; size = size * 2 + (size & 1)) {
        char *p = kalloc(size);
        REQUIRE(p != NULL, "kalloc(%zu)", size);
#ifdef SMP_CHECKED
        CHECK(smp_kalloc_small_size(p) == 0, "checked build: every free meets kfree's checks");
#else
        CHECK(smp_kalloc_small_size(p) == pow2_at_least(size < 8 ? 8 : size),
              "kalloc(%zu): small size %zu", size, smp_kalloc_small_size(p));
#endif
        CHECK(smp_kalloc_small_size(p + 1) == 0, "interior pointer of kalloc(%zu)", size);
        kfree(p);
    }
    char *page = kalloc(4097), *big = kalloc(64 * 1024);
    REQUIRE(page && big, "page blocks");
    CHECK(smp_kalloc_small_size(page) == 0 && smp_kalloc_small_size(big) == 0, "page blocks are not small");
    CHECK(smp_kalloc_small_size(region - 4096) == 0 && smp_kalloc_small_size(NULL) == 0, "outside the region");
    kfree(page);
    kfree(big);
    CHECK(pmm_check() == 0, "check");
    teardown();
}

/* With every free page an isolated order-0 block (its buddy held), no slab
 * of 1 KiB, 2 KiB or 4 KiB objects (order 1 to 3) can be made, yet kalloc
 * of those sizes still succeeds while a page is free: the class answers
 * with a page block, which kfree gives back to the pages.  NULL comes only
 * when no page at all is free. */
TEST(large_classes_fall_back_to_a_page_when_no_slab_fits)
{
    setup(64 * MiB, 2);
    size_t total = pmm_total_pages(), n = 0;
    void **pages = malloc(total * sizeof *pages);
    REQUIRE(pages != NULL, "page table");
    while (n < total && (pages[n] = page_alloc(0)) != NULL)
        n++;
    CHECK(n == total, "every page allocated one by one (%zu of %zu)", n, total);
    size_t freed = 0;
    for (size_t i = 0; i < n; i++)
        if (!(((uintptr_t)pages[i] >> 12) & 1)) {          /* even pfn: its buddy stays held */
            page_free(pages[i], 0);
            pages[i] = NULL;
            freed++;
        }
    pmm_drain();
    CHECK(pmm_free_pages() == freed, "free pages %zu, freed %zu", pmm_free_pages(), freed);
#ifdef SMP_CHECKED
    /* The checked build adds a 9-byte trailer: 4087 bytes fill a page. */
    static const size_t sizes[] = { 1024, 2048, 3000, 4087 };
#else
    static const size_t sizes[] = { 1024, 2048, 3000, 4096 };
#endif
    void *got[4 * 4];
    size_t ngot = 0;
    for (int round = 0; round < 4; round++)
        for (unsigned k = 0; k < 4; k++) {
            char *p = kalloc(sizes[k]);
            CHECK(p != NULL, "kalloc(%zu) NULL with %zu isolated pages free", sizes[k], pmm_free_pages());
            if (!p)
                continue;
            CHECK(((uintptr_t)p & 4095) == 0, "kalloc(%zu) = %p: a page block", sizes[k], (void *)p);
            CHECK(smp_kalloc_usable_size(p) >= sizes[k], "usable %zu", smp_kalloc_usable_size(p));
            p[0] = 1;
            p[sizes[k] - 1] = 2;
            got[ngot++] = p;
        }
    CHECK(pmm_check() == 0, "check with fallback pages out");
    for (size_t i = 0; i < ngot; i++)
        kfree(got[i]);
    pmm_drain();                                   /* the checked build's quarantine too */
    CHECK(pmm_check() == 0 && pmm_free_pages() == freed, "fallback pages back: %zu free", pmm_free_pages());
    /* Now take the last free pages: then, and only then, kalloc(4096) is NULL. */
    size_t extra = 0;
    for (size_t i = 0; i < n; i++)
        if (!pages[i] && (pages[i] = page_alloc(0)) != NULL)
            extra++;
    CHECK(extra == freed && pmm_free_pages() == 0, "all pages held again (%zu of %zu)", extra, freed);
    CHECK(kalloc(4096) == NULL && kalloc(2048) == NULL, "no page free: NULL");
    for (size_t i = 0; i < n; i++)
        if (pages[i])
            page_free(pages[i], 0);
    pmm_drain();
    CHECK(pmm_check() == 0 && pmm_free_pages() == total, "all free at the end");
    free(pages);
    teardown();
}

/* A CPU's two magazines of a class absorb a swing of its live objects of
 * twice a magazine (at least 16 objects each, obj.h, however big they
 * are): allocating up to that many and freeing them again, over and over,
 * never reaches the depot, a structure all CPUs share.  At 16 KiB a
 * magazine, 4 KiB objects came 4 to one and a swing of 9 reached it. */
TEST(magazines_absorb_swings_of_32_large_objects)
{
    setup(64 * MiB, 2);
    struct rng g = rng_for(0);
    enum { SWING = 32 };
    void *p[SWING];
    for (unsigned cls = 7; cls <= 9; cls++) {          /* 1, 2 and 4 KiB */
        size_t size = ((size_t)8 << cls) - 16;         /* room for the checked build's trailer */
        CHECK(smp_pmm_debug_get(SMP_DBG_MAG_CAP, 0, cls, 0) >= SWING / 2, "class %u: magazines of %llu",
              cls, (unsigned long long)smp_pmm_debug_get(SMP_DBG_MAG_CAP, 0, cls, 0));
        for (int round = 0; round < 50; round++) {
            unsigned n = round == 0 ? SWING : 1 + (unsigned)rng_below(&g, SWING);
            for (unsigned i = 0; i < n; i++)
                REQUIRE((p[i] = kalloc(size)) != NULL, "kalloc(%zu)", size);
            for (unsigned i = 0; i < n; i++)
                kfree(p[i]);
        }
        CHECK(smp_pmm_debug_get(SMP_DBG_DEPOT_N, 0, cls, 0) == 0, "class %u: %llu magazines went to the depot",
              cls, (unsigned long long)smp_pmm_debug_get(SMP_DBG_DEPOT_N, 0, cls, 0));
    }
    CHECK(pmm_check() == 0, "check");
    teardown();
}

/* Two CPUs' first objects of a class come from different pages: a refill
 * takes at least a page of objects (obj.h), so no page of a new slab is
 * split between the CPUs, whose caches would then trade its lines through
 * the hardware's prefetchers. */
TEST(two_cpus_first_objects_lie_on_different_pages)
{
    for (size_t size = 1; size <= 4096; size *= 2) {
        setup(64 * MiB, 2);
        char *p[2];
        for (int cpu = 0; cpu < 2; cpu++) {
            smp_hosted_bind_cpu(cpu);
            REQUIRE((p[cpu] = kalloc(size)) != NULL, "kalloc(%zu) on CPU %d", size, cpu);
        }
        CHECK(((uintptr_t)p[0] ^ (uintptr_t)p[1]) >= 4096, "kalloc(%zu): CPU 0 got %p and CPU 1 %p, one page",
              size, (void *)p[0], (void *)p[1]);
        for (int cpu = 0; cpu < 2; cpu++) {
            smp_hosted_bind_cpu(cpu);
            kfree(p[cpu]);
        }
        smp_hosted_bind_cpu(0);
        teardown();
    }
}

#ifndef SMP_CHECKED
static int holds(void *const *set, unsigned n, const void *p)
{
    for (unsigned i = 0; i < n; i++)
        if (set[i] == p)
            return 1;
    return 0;
}

/* A CPU short of objects takes back a magazine it put in the depot before
 * another CPU's, even when the other's is newer (depot.c: another CPU's
 * freed objects share lines with that CPU's live ones).  CPUs 0 and 1 each
 * allocate three magazines' worth of 2 KiB objects, free them (each puts
 * one full magazine: two stay in its own loaded and previous), CPU 1 last,
 * so its magazine is on top.  Each then allocates as many again: CPU 0
 * empties its two magazines and goes to the depot, where it must get its
 * own objects, not CPU 1's; then CPU 1 gets its own.  (Not in the checked
 * build, whose quarantine holds freed objects back and frees them later in
 * another order.) */
TEST(depot_gives_a_cpu_its_own_magazine_first)
{
    setup(64 * MiB, 2);
    enum { CLS = 8, MAXN = 3 * 256 };
    unsigned cap = (unsigned)smp_pmm_debug_get(SMP_DBG_MAG_CAP, 0, CLS, 0), n = 3 * cap;
    REQUIRE(n <= MAXN, "magazines of %u", cap);
    void *mine[2][MAXN], *again[MAXN];
    for (int cpu = 0; cpu < 2; cpu++) {
        smp_hosted_bind_cpu(cpu);
        for (unsigned i = 0; i < n; i++)
            REQUIRE((mine[cpu][i] = kalloc(2000)) != NULL, "kalloc on CPU %d", cpu);
    }
    for (int cpu = 0; cpu < 2; cpu++) {
        smp_hosted_bind_cpu(cpu);
        for (unsigned i = 0; i < n; i++)
            kfree(mine[cpu][i]);
    }
    unsigned long long nd = smp_pmm_debug_get(SMP_DBG_DEPOT_N, 0, CLS, 0);
    CHECK(nd == 2, "the depot holds %llu magazines, one from each CPU", nd);
    CHECK(nd < 2 || smp_pmm_debug_get(SMP_DBG_DEPOT_FROM, 0, CLS, (uint32_t)nd - 1) == 1,
          "CPU 1's magazine is the newest");
    for (int cpu = 0; cpu < 2; cpu++) {
        smp_hosted_bind_cpu(cpu);
        unsigned foreign = 0;
        for (unsigned i = 0; i < n; i++) {
            REQUIRE((again[i] = kalloc(2000)) != NULL, "kalloc again on CPU %d", cpu);
            foreign += holds(mine[1 - cpu], n, again[i]);
        }
        CHECK(foreign == 0, "CPU %d got %u of CPU %d's objects back", cpu, foreign, 1 - cpu);
        CHECK(smp_pmm_debug_get(SMP_DBG_DEPOT_N, 0, CLS, 0) == (unsigned long long)(1 - cpu),
              "CPU %d took one magazine from the depot", cpu);
        for (unsigned i = 0; i < n; i++)
            mine[cpu][i] = again[i];
    }
    smp_hosted_bind_cpu(0);
    for (int cpu = 0; cpu < 2; cpu++)
        for (unsigned i = 0; i < n; i++)
            kfree(mine[cpu][i]);
    CHECK(pmm_check() == 0, "check");
    teardown();
}
#endif

int main(void)
{
    return RUN_TESTS(small_size_names_the_class_kfree_would_route, alignment_sweep_1_byte_to_4_mib, oom_64_mib, oom_1_gib,
                     empty_slabs_return_without_drain, bad_kfree_panics_with_address_and_reason,
                     every_class_round_trip_and_check, stats_follow_the_objects,
                     large_classes_fall_back_to_a_page_when_no_slab_fits,
                     magazines_absorb_swings_of_32_large_objects, two_cpus_first_objects_lie_on_different_pages
#ifndef SMP_CHECKED
                     , depot_gives_a_cpu_its_own_magazine_first
#endif
                     );
}
