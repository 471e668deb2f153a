/* pmm_check can fail, and says why: for every invariant it verifies (the
 * descriptor walk of src/page/page.c, the buddy lists of buddy.c, the CPU
 * caches of pcp.c, slabs, slab lists, magazines and the depot of
 * src/obj/obj_check.c), one case corrupts exactly that piece of metadata
 * through the test-only hooks of <smpmem/pmm_debug.h>, asserts pmm_check
 * prints that violation's reason (and the page it names), then restores the
 * old values and asserts a clean check.  A last test reads the checkers'
 * sources and fails if a reason has no case here, so a new invariant comes
 * with its proof. */
#include "harness.h"
#include "check_capture.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <smpmem/hosted.h>
#include <smpmem/pmm.h>
#include <smpmem/pmm_debug.h>

#define MiB (1UL << 20)
#define REGION (16 * MiB)
#define NCPU 2
#define NIL SMP_DEBUG_NIL
#define ANY_PAGE 0xfffffffeu   /* a case whose violation names a page we do not predict */

enum { ST_TAIL, ST_BUDDY, ST_PCP, ST_ALLOC, ST_OWNED };
enum { CLS8 = 0, CLS64 = 3, CLS1K = 7, CLS2K = 8 };

/* ---- the hooks, with an undo log ---------------------------------------- */

struct poke { enum smp_pmm_field f; int cpu; unsigned k; uint32_t i; uint64_t old; };
static struct poke undo_log[16];
static int npokes;

static uint64_t get(enum smp_pmm_field f, int cpu, unsigned k, uint32_t i)
{
    return smp_pmm_debug_get(f, cpu, k, i);
}

static void poke(enum smp_pmm_field f, int cpu, unsigned k, uint32_t i, uint64_t v)
{
    if (npokes == (int)(sizeof undo_log / sizeof undo_log[0]))
        abort();
    undo_log[npokes] = (struct poke){ f, cpu, k, i, smp_pmm_debug_set(f, cpu, k, i, v) };
    npokes++;
}

static void undo(void)
{
    while (npokes > 0) {
        struct poke *p = &undo_log[--npokes];
        smp_pmm_debug_set(p->f, p->cpu, p->k, p->i, p->old);
    }
}

#define PAGE(f, i) get(SMP_DBG_PAGE_##f, 0, 0, (i))
#define POKE_PAGE(f, i, v) poke(SMP_DBG_PAGE_##f, 0, 0, (i), (v))
#define RING(f, cpu, o) get(SMP_DBG_RING_##f, (cpu), (o), 0)
#define SLAB(f, cls) get(SMP_DBG_SLAB_##f, 0, (cls), 0)

static uint32_t npages(void) { return (uint32_t)pmm_total_pages(); }
static uint64_t pfn(uint32_t i) { return (uintptr_t)smp_pmm_debug_page_addr(i) >> 12; }

/* The first block head (in walk order) in state st of order >= min_order. */
static uint32_t find_head(unsigned st, unsigned min_order)
{
    for (uint32_t i = 0; i < npages(); i += 1U << PAGE(ORDER, i))
        if (PAGE(STATE, i) == st && PAGE(ORDER, i) >= min_order)
            return i;
    return NIL;
}

/* The head of the slab holding object p (the owner tag's offset). */
static uint32_t slab_of(const void *p)
{
    uint32_t i = smp_pmm_debug_page_index(p);
    return i - (uint32_t)(PAGE(OWNER_TAG, i) >> 8);
}

/* ---- the scene: every structure the checker reads holds something ------ */

static char *map;
static void *o8[250], *o64[2], *o1k;

/* The same layout every run: the region starts 5 pages past an 8 MiB
 * boundary, so the last max-order block is followed by smaller ones (a
 * region ending on a max-order boundary has no head that could run past
 * its end while staying aligned, see block_past_end). */
#define MAP_BYTES (REGION + 16 * MiB)

/* The zone cuts the region into blocks lazily (page/buddy.c): most scenes
 * cut it all first; the uncarved-tail cases keep the tail. */
static int keep_tail_uncut;

static void scene(void)
{
    map = region_map(MAP_BYTES, 0);
    char *region = (char *)(((uintptr_t)map + 8 * MiB - 1) & ~(8 * MiB - 1)) + 5 * 4096;
    if (pmm_init(region, region + REGION, NCPU) != 0)
        abort();
    if (!keep_tail_uncut)
        smp_pmm_debug_carve_all();      /* blocks up to the end: block_past_end needs them */
    /* Class 8 B: a partial slab with a free list. */
    for (int i = 0; i < 250; i++)
        o8[i] = kalloc(8);
    pmm_drain();
    /* Class 2 KiB: churn through CPU 0's two magazines and the depot to
     * its bound, and two magazines' worth past them into the slabs; a slab
     * left empty. */
    size_t cap = (size_t)smp_pmm_debug_get(SMP_DBG_MAG_CAP, 0, CLS2K, 0);
    size_t nbig = cap * (4 + (size_t)smp_pmm_debug_get(SMP_DBG_DEPOT_MAX, 0, CLS2K, 0));
    void **big = malloc(nbig * sizeof *big);
    if (!big)
        abort();
    for (size_t i = 0; i < nbig; i++)
        big[i] = kalloc(2048);
    for (size_t i = 0; i < nbig; i++)
        kfree(big[i]);
    free(big);
    /* Class 64 B: a full slab, most of it in CPU 0's loaded magazine. */
    o64[0] = kalloc(64);
    o64[1] = kalloc(64);
    o1k = kalloc(1024);                 /* an order-1 slab */
    /* Pages: CPU 0 caches every cached order, CPU 1 order 0. */
    for (unsigned o = 0; o < 4; o++)
        page_alloc(o);
    page_alloc(5);
    smp_hosted_bind_cpu(1);
    page_alloc(0);
    smp_hosted_bind_cpu(0);
    npokes = 0;
}

static void finish(void)
{
    pmm_reset();
    region_unmap(map, MAP_BYTES, 0);
}

/* A case that cannot set up its corruption says why and returns this. */
#define SETUP_FAILED (NIL - 2)
#define NEED(cond, ...) do { if (!(cond)) { CHECK(0, __VA_ARGS__); return SETUP_FAILED; } } while (0)

/* ---- one case ------------------------------------------------------------ */

struct pcase {
    const char *reason;       /* exactly what pmm_check must print */
    uint32_t (*corrupt)(void);/* pokes; returns the page the report names,
                               * NIL for none, ANY_PAGE if not predicted */
};

static int expect_violation(const char *name, const char *reason, uint32_t page)
{
    char out[1024];
    struct violation v;
    int rc = capture_check(smp_pmm_check, out, sizeof out);
    int ok = rc != 0 && parse_violation(out, "pmm_check", &v) && v.lines == 1 &&
             !strcmp(v.reason, reason);
    if (ok && page != ANY_PAGE)
        ok = page == NIL ? !v.has_page
                         : v.has_page && v.page == (uintptr_t)smp_pmm_debug_page_addr(page);
    CHECK(ok, "%s: want \"%s\" (page %s%#llx), pmm_check returned %d and printed: %s", name,
          reason, page == NIL ? "none " : "", page == NIL || page == ANY_PAGE ? 0ULL
          : (unsigned long long)(uintptr_t)smp_pmm_debug_page_addr(page), rc, out);
    return ok;
}

static void run_cases(const struct pcase *cases, size_t n)
{
    for (size_t c = 0; c < n; c++) {
        scene();
        char out[1024];
        int clean = capture_check(smp_pmm_check, out, sizeof out);
        CHECK(clean == 0, "scene not clean before \"%s\": %s", cases[c].reason, out);
        uint32_t page = cases[c].corrupt();
        if (page != SETUP_FAILED) {
            expect_violation("corrupted", cases[c].reason, page);
            undo();
            clean = capture_check(smp_pmm_check, out, sizeof out);
            CHECK(clean == 0 && !out[0], "not clean after restoring \"%s\": %s", cases[c].reason, out);
        }
        undo();
        finish();
    }
}


/* ---- the descriptor walk (page.c) --------------------------------------- */

static uint32_t head_is_tail(void)
{
    uint32_t h = find_head(ST_BUDDY, 0);
    POKE_PAGE(STATE, h, ST_TAIL);
    return h;
}

static uint32_t state_out_of_range(void)
{
    uint32_t h = find_head(ST_BUDDY, 0);
    POKE_PAGE(STATE, h, 9);
    return h;
}

static uint32_t order_above_max(void)
{
    uint32_t h = find_head(ST_ALLOC, 0);
    POKE_PAGE(ORDER, h, smp_pmm_max_order() + 1);
    return h;
}

static uint32_t head_misaligned(void)
{
    /* A head aligned to its order but not to the next: claim the next. */
    for (uint32_t i = 0; i < npages(); i += 1U << PAGE(ORDER, i)) {
        unsigned o = (unsigned)PAGE(ORDER, i);
        if (o < smp_pmm_max_order() && (pfn(i) >> o & 1)) {
            POKE_PAGE(ORDER, i, o + 1);
            return i;
        }
    }
    CHECK(0, "no head misaligned for its order + 1");
    return SETUP_FAILED;
}

static uint32_t block_past_end(void)
{
    /* A head whose pfn is aligned to a larger order that would run past
     * the last page. */
    for (uint32_t i = 0; i < npages(); i += 1U << PAGE(ORDER, i))
        for (unsigned o = (unsigned)PAGE(ORDER, i) + 1; o <= smp_pmm_max_order(); o++)
            if (!(pfn(i) & ((1ULL << o) - 1)) && i + (1ULL << o) > npages()) {
                POKE_PAGE(ORDER, i, o);
                return i;
            }
    CHECK(0, "no head that could be grown past the end");
    return SETUP_FAILED;
}

static uint32_t page_in_two_blocks(void)
{
    uint32_t h = find_head(ST_BUDDY, 1);
    POKE_PAGE(STATE, h + 1, ST_ALLOC);     /* a tail of a free block heads an allocated one */
    POKE_PAGE(ORDER, h + 1, 0);
    return h + 1;
}

static uint32_t stray_owner_tag(void)
{
    uint32_t h = find_head(ST_BUDDY, 2);
    POKE_PAGE(OWNER_TAG, h + 3, 1);        /* a slab tag on a free block's tail */
    return h + 3;
}

static uint32_t stray_owner_byte(void)
{
    uint32_t h = find_head(ST_BUDDY, 2);
    POKE_PAGE(OWNER_BYTE, h + 2, 1);       /* kfree would route it as an 8 B slab */
    return h + 2;
}

static uint32_t buddies_not_coalesced(void)
{
    /* Split a free block in the descriptors only: two free halves. */
    uint32_t h = find_head(ST_BUDDY, 1);
    unsigned o = (unsigned)PAGE(ORDER, h);
    POKE_PAGE(ORDER, h, o - 1);
    POKE_PAGE(STATE, h + (1U << (o - 1)), ST_BUDDY);
    POKE_PAGE(ORDER, h + (1U << (o - 1)), o - 1);
    return h;
}

static uint32_t cached_uncached_order(void)
{
    uint32_t h = find_head(ST_BUDDY, SMP_DEBUG_PCP_ORDERS);
    POKE_PAGE(STATE, h, ST_PCP);
    return h;
}

static uint32_t pages_do_not_add_up(void)
{
    /* Every per-structure check passes: CPU 0's order-0 ring lists one of
     * its blocks twice and its order-1 ring forgets one block (still
     * marked cached), so the cached block count and every entry are right
     * but one page too few is free. */
    uint32_t t0 = (uint32_t)RING(TOP, 0, 0), t1 = (uint32_t)RING(TOP, 0, 1);
    NEED(t0 != RING(BOTTOM, 0, 0) && t1 != RING(BOTTOM, 0, 1), "CPU 0 caches orders 0 and 1");
    poke(SMP_DBG_RING_SLOT, 0, 0, t0, get(SMP_DBG_RING_SLOT, 0, 0, t0 - 1));
    poke(SMP_DBG_RING_TOP, 0, 0, 0, t0 + 1);
    poke(SMP_DBG_RING_TOP, 0, 1, 0, t1 - 1);
    return NIL;
}

static const struct pcase walk_cases[] = {
    { "page belongs to no block", head_is_tail },
    { "page descriptor state corrupt", state_out_of_range },
    { "block order above the region's max order", order_above_max },
    { "block not aligned to its order", head_misaligned },
    { "block runs past the end of the region", block_past_end },
    { "page claimed by two blocks", page_in_two_blocks },
    { "owner tag left on a page no client owns", stray_owner_tag },
    { "owner byte left on a page no client owns", stray_owner_byte },
    { "free buddies not coalesced", buddies_not_coalesced },
    { "cached block of an uncached order", cached_uncached_order },
    { "free + held pages do not add up to the total", pages_do_not_add_up },
};

TEST(walk_reports_each_violation)
{
    run_cases(walk_cases, sizeof walk_cases / sizeof walk_cases[0]);
}

/* ---- the buddy lists (buddy.c) ------------------------------------------ */

static unsigned nonempty_order(unsigned from)
{
    for (unsigned o = from; o <= smp_pmm_max_order(); o++)
        if (get(SMP_DBG_ZONE_HEAD, 0, o, 0) != NIL)
            return o;
    return ~0u;
}

static uint32_t zone_head(unsigned o) { return (uint32_t)get(SMP_DBG_ZONE_HEAD, 0, o, 0); }

static uint32_t link_outside(void)
{
    uint32_t h = zone_head(nonempty_order(0));
    POKE_PAGE(NEXT, h, npages() + 5);
    return h;                               /* named: the last good block */
}

static uint32_t list_above_max(void)
{
    uint32_t h = zone_head(nonempty_order(0));   /* first on its list: prev is NIL */
    poke(SMP_DBG_ZONE_HEAD, 0, smp_pmm_max_order() + 1, 0, h);
    return h;
}

static uint32_t listed_not_free(void)
{
    uint32_t h = zone_head(nonempty_order(0));
    POKE_PAGE(STATE, h, ST_ALLOC);
    return h;
}

static uint32_t wrong_order_list(void)
{
    unsigned a = nonempty_order(0), b = nonempty_order(a + 1);
    NEED(b != ~0u, "two non-empty free lists");
    uint32_t ha = zone_head(a), hb = zone_head(b);
    poke(SMP_DBG_ZONE_HEAD, 0, a, 0, hb);   /* swap the two lists */
    poke(SMP_DBG_ZONE_HEAD, 0, b, 0, ha);
    return hb;
}

static uint32_t back_link_broken(void)
{
    uint32_t h = zone_head(nonempty_order(0));
    POKE_PAGE(PREV, h, h ^ 1);
    return h;
}

static uint32_t list_cycle(void)
{
    /* Tie a list's last block back to its first.  Back links are checked
     * first, and a cycle always breaks one (the first block's prev is
     * NIL), so this is reported as a broken back link: the cycle guard
     * in buddy.c only bounds the walk. */
    uint32_t h = zone_head(nonempty_order(0)), last = h;
    while (PAGE(NEXT, last) != NIL)
        last = (uint32_t)PAGE(NEXT, last);
    POKE_PAGE(NEXT, last, h);
    return h;
}

static uint32_t free_block_unlisted(void)
{
    unsigned o = nonempty_order(0);
    uint32_t h = zone_head(o), next = (uint32_t)PAGE(NEXT, h);
    poke(SMP_DBG_ZONE_HEAD, 0, o, 0, next);
    if (next != NIL)
        POKE_PAGE(PREV, next, NIL);
    return NIL;
}

static uint32_t counter_off(void)
{
    poke(SMP_DBG_ZONE_FREE_PAGES, 0, 0, 0, get(SMP_DBG_ZONE_FREE_PAGES, 0, 0, 0) + 1);
    return NIL;
}

static const struct pcase buddy_cases[] = {
    { "buddy list link points outside the region", link_outside },
    { "block on a free list above max order", list_above_max },
    { "block on a buddy free list is not marked free", listed_not_free },
    { "block on the wrong order's free list", wrong_order_list },
    { "buddy free list back link broken", back_link_broken },
    { "buddy free list back link broken", list_cycle },
    { "free blocks missing from or repeated on buddy lists", free_block_unlisted },
    { "buddy free page counter disagrees with lists", counter_off },
};

TEST(buddy_lists_report_each_violation)
{
    run_cases(buddy_cases, sizeof buddy_cases / sizeof buddy_cases[0]);
}

/* ---- CPU page caches (pcp.c) -------------------------------------------- */

static uint32_t ring_top_entry(int cpu, unsigned o)
{
    return (uint32_t)get(SMP_DBG_RING_SLOT, cpu, o, (uint32_t)RING(TOP, cpu, o) - 1);
}

static uint32_t ring_over_capacity(void)
{
    poke(SMP_DBG_RING_TOP, 0, 0, 0, RING(BOTTOM, 0, 0) + RING(CAP, 0, 0) + 1);
    return NIL;
}

static uint32_t ring_index_outside(void)
{
    NEED(RING(TOP, 1, 0) != RING(BOTTOM, 1, 0), "CPU 1 caches order 0");
    poke(SMP_DBG_RING_SLOT, 1, 0, (uint32_t)RING(BOTTOM, 1, 0), npages() + 3);
    return NIL;
}

static uint32_t ring_entry_not_cached(void)
{
    uint32_t y = ring_top_entry(0, 0);
    POKE_PAGE(STATE, y, ST_ALLOC);
    return y;
}

static uint32_t ring_wrong_order(void)
{
    /* CPU 0's order-0 ring shows an order-1 cached block instead of its
     * top entry (every block is still marked cached). */
    uint32_t w = ring_top_entry(0, 1);
    poke(SMP_DBG_RING_SLOT, 0, 0, (uint32_t)RING(TOP, 0, 0) - 1, w);
    return w;
}

static uint32_t ring_forgets_block(void)
{
    poke(SMP_DBG_RING_TOP, 1, 0, 0, RING(TOP, 1, 0) - 1);
    return NIL;
}

static const struct pcase pcp_cases[] = {
    { "cpu cache ring count exceeds its capacity", ring_over_capacity },
    { "cpu cache holds an index outside the region", ring_index_outside },
    { "block in a cpu cache is not marked cached", ring_entry_not_cached },
    { "block in the wrong order's cpu cache", ring_wrong_order },
    { "cached blocks missing from or repeated in cpu caches", ring_forgets_block },
};

TEST(cpu_caches_report_each_violation)
{
    run_cases(pcp_cases, sizeof pcp_cases / sizeof pcp_cases[0]);
}

/* ---- one slab (obj_check.c, called from the walk) ----------------------- */

static uint32_t slab8(void)
{
    uint32_t a = slab_of(o8[0]);
    return a;
}

static uint32_t slab_tag_zero(void)
{
    uint32_t a = slab8();
    POKE_PAGE(OWNER_TAG, a, 0);
    return a;
}

static uint32_t slab_order_wrong(void)
{
    uint32_t h = slab_of(o1k);
    NEED(SLAB(ORDER, CLS1K) >= 1, "1 KiB slabs span pages");
    POKE_PAGE(ORDER, h, 0);
    return h;
}

static uint32_t slab_tail_tag_wrong(void)
{
    uint32_t h = slab_of(o1k);
    POKE_PAGE(OWNER_TAG, h + 1, (CLS1K + 1) | (2 << 8));
    return h + 1;
}

static uint32_t slab_byte_wrong(void)
{
    uint32_t h = slab_of(o1k);
    POKE_PAGE(OWNER_BYTE, h + 1, 1);       /* kfree would take its objects for 8 B ones */
    return h + 1;
}

static uint32_t freelist_misaligned(void)
{
    uint32_t a = slab8();
    POKE_PAGE(OWNER_PTR, a, (uintptr_t)smp_pmm_debug_page_addr(a) + 4);
    return a;
}

static uint32_t freelist_never_used(void)
{
    uint32_t a = slab8();
    /* A refill carves a new slab whole (a magazine holds a page of objects
     * at least, obj.h), so the scene's slab has no never-used object left:
     * mark its first one as never used.  The counters are then off by one
     * too, but the check walks the free list first. */
    uint64_t u = PAGE(OWNER_U64, a);
    if ((uint32_t)u == 0)
        POKE_PAGE(OWNER_U64, a, u | 1);
    POKE_PAGE(OWNER_PTR, a, (uintptr_t)smp_pmm_debug_page_addr(a));   /* object 0: never used */
    return a;
}

static uint32_t freelist_cycle(void)
{
    uint32_t a = slab8();
    smp_pmm_debug_set_link(o8[0], o8[0]);   /* an object we hold, linked to itself */
    POKE_PAGE(OWNER_PTR, a, (uintptr_t)o8[0]);
    return a;
}

static uint32_t slab_counters_off(void)
{
    uint32_t a = slab8();
    POKE_PAGE(OWNER_U32, a, PAGE(OWNER_U32, a) + 1);
    return a;
}

static uint32_t slab_wrong_list(void)
{
    uint32_t a = slab8();
    NEED(PAGE(OWNER_U64, a) >> 32 == 1, "the 8 B slab is on the partial list");
    POKE_PAGE(OWNER_U64, a, (uint32_t)PAGE(OWNER_U64, a));   /* list tag: full */
    return a;
}

static const struct pcase slab_cases[] = {
    { "slab head's owner tag corrupt", slab_tag_zero },
    { "slab order does not match its class", slab_order_wrong },
    { "slab page's owner tag does not point at its head", slab_tail_tag_wrong },
    { "slab page's owner byte is not its class", slab_byte_wrong },
    { "slab free list holds a foreign or misaligned object", freelist_misaligned },
    { "slab free list holds a never-used object", freelist_never_used },
    { "slab free list has a cycle", freelist_cycle },
    { "slab counters: inuse + free + unused != objects per slab", slab_counters_off },
    { "slab on the wrong list for its fill level", slab_wrong_list },
};

TEST(slabs_report_each_violation)
{
    run_cases(slab_cases, sizeof slab_cases / sizeof slab_cases[0]);
}

/* ---- slab lists, magazines, depot (obj_check.c, after the walk) --------- */

static uint32_t slab_list_outside(void)
{
    uint32_t a = slab8();
    NEED(SLAB(PARTIAL, CLS8) == a, "the 8 B slab heads its partial list");
    POKE_PAGE(NEXT, a, npages() + 7);
    return a;
}

static uint32_t slab_list_foreign(void)
{
    uint32_t h = find_head(ST_BUDDY, 0);
    poke(SMP_DBG_SLAB_PARTIAL, 0, CLS8, 0, h);
    return h;
}

static uint32_t slab_list_back_link(void)
{
    uint32_t a = slab8();
    POKE_PAGE(PREV, a, a ^ 1);
    return a;
}

static uint32_t slab_list_too_long(void)
{
    poke(SMP_DBG_SLAB_NSLABS, 0, CLS8, 0, 0);
    return slab8();
}

static uint32_t nempty_off(void)
{
    uint32_t e = (uint32_t)SLAB(EMPTY, CLS2K);
    NEED(e != NIL, "the 2 KiB class keeps an empty slab");
    poke(SMP_DBG_SLAB_NEMPTY, 0, CLS2K, 0, SLAB(NEMPTY, CLS2K) + 1);
    return e;
}

static uint32_t nslabs_off(void)
{
    poke(SMP_DBG_SLAB_NSLABS, 0, CLS64, 0, SLAB(NSLABS, CLS64) + 1);
    return NIL;
}

static int outside_object;

static uint32_t magazine_outside(void)
{
    poke(SMP_DBG_MAG_HEAD, 0, CLS64, 0, (uintptr_t)&outside_object);
    return NIL;
}

static uint32_t magazine_foreign_class(void)
{
    poke(SMP_DBG_MAG_HEAD, 0, CLS64, 0, (uintptr_t)o1k);   /* 64-aligned, but a 1 KiB object */
    return smp_pmm_debug_page_index(o1k);
}

static uint32_t magazine_misaligned(void)
{
    poke(SMP_DBG_MAG_HEAD, 0, CLS64, 0, (uintptr_t)o64[0] + 8);
    return smp_pmm_debug_page_index(o64[0]);
}

static uint32_t magazine_count_off(void)
{
    NEED(get(SMP_DBG_MAG_COUNT, 0, CLS64, 0) > 0, "CPU 0's 64 B magazine holds objects");
    poke(SMP_DBG_MAG_COUNT, 0, CLS64, 0, get(SMP_DBG_MAG_COUNT, 0, CLS64, 0) + 1);
    return NIL;
}

static void *chain2k[2 * 16 + 1];       /* a magazine holds at least 16 (obj.h) */

static uint32_t magazine_over_capacity(void)
{
    /* A chain of cap + 1 objects we hold, counted right, in CPU 1's empty
     * magazine. */
    unsigned cap = (unsigned)get(SMP_DBG_MAG_CAP, 0, CLS2K, 0);
    NEED(cap + 1 <= sizeof chain2k / sizeof chain2k[0], "2 KiB magazines hold few objects");
    for (unsigned i = 0; i <= cap; i++)
        chain2k[i] = kalloc(2048);
    for (unsigned i = 0; i <= cap; i++)
        smp_pmm_debug_set_link(chain2k[i], i < cap ? chain2k[i + 1] : 0);
    NEED(get(SMP_DBG_MAG_HEAD, 1, CLS2K, 0) == 0, "CPU 1 has no 2 KiB magazine");
    poke(SMP_DBG_MAG_HEAD, 1, CLS2K, 0, (uintptr_t)chain2k[0]);
    poke(SMP_DBG_MAG_COUNT, 1, CLS2K, 0, cap + 1);
    return NIL;
}

static uint32_t cached_exceeds_inuse(void)
{
    /* CPU 0's previous 64 B magazine aliases its loaded one: each chain is
     * sound, but together they cache more objects than the slab hands out. */
    NEED(get(SMP_DBG_MAG_HEAD, 0, CLS64, 1) == 0, "CPU 0's previous 64 B magazine is empty");
    poke(SMP_DBG_MAG_HEAD, 0, CLS64, 1, get(SMP_DBG_MAG_HEAD, 0, CLS64, 0));
    poke(SMP_DBG_MAG_COUNT, 0, CLS64, 1, get(SMP_DBG_MAG_COUNT, 0, CLS64, 0));
    return NIL;
}

/* A CPU's copies of the layer's constants (obj.h), each changed alone:
 * the check names the same reason for every one.  CPU 1: not the CPU
 * whose caches the scene's objects sit in. */
static uint32_t cpu_constant_off(uint32_t which)
{
    unsigned k = which >= 2 ? CLS64 : 0;
    uint64_t v = get(SMP_DBG_CPU_OBJ_CONST, 1, k, which);
    poke(SMP_DBG_CPU_OBJ_CONST, 1, k, which, which == 2 ? v + 1 : v ^ 4096);
    return NIL;
}
static uint32_t cpu_base_off(void) { return cpu_constant_off(0); }
static uint32_t cpu_secret_off(void) { return cpu_constant_off(1); }
static uint32_t cpu_cap_off(void) { return cpu_constant_off(2); }
static uint32_t cpu_test_mask_off(void) { return cpu_constant_off(3); }

static uint32_t depot_over_bound(void)
{
    poke(SMP_DBG_DEPOT_N, 0, CLS2K, 0, get(SMP_DBG_DEPOT_MAX, 0, CLS2K, 0) + 1);
    return NIL;
}

static uint32_t depot_magazine_count_off(void)
{
    NEED(get(SMP_DBG_DEPOT_N, 0, CLS2K, 0) > 0, "the 2 KiB depot holds a magazine");
    poke(SMP_DBG_DEPOT_COUNT, 0, CLS2K, 0, get(SMP_DBG_DEPOT_COUNT, 0, CLS2K, 0) - 1);
    return NIL;
}

static uint32_t depot_from_no_cpu(void)
{
    NEED(get(SMP_DBG_DEPOT_N, 0, CLS2K, 0) > 0, "the 2 KiB depot holds a magazine");
    poke(SMP_DBG_DEPOT_FROM, 0, CLS2K, 0, NCPU);       /* one past the last CPU */
    return NIL;
}

static const struct pcase obj_cases[] = {
    { "slab list link points outside the region", slab_list_outside },
    { "slab list holds a block that is not a slab of this class", slab_list_foreign },
    { "slab list back link broken", slab_list_back_link },
    { "slab list longer than the class's slab count", slab_list_too_long },
    { "empty slab count disagrees with the list", nempty_off },
    { "slab count of a class disagrees with the descriptors", nslabs_off },
    { "magazine holds an address outside the region", magazine_outside },
    { "magazine holds an object of no slab of its class", magazine_foreign_class },
    { "magazine holds a misaligned object", magazine_misaligned },
    { "magazine count disagrees with its chain", magazine_count_off },
    { "magazine holds more than its capacity", magazine_over_capacity },
    { "more objects cached in magazines than slabs hand out", cached_exceeds_inuse },
    { "cpu's object cache constants corrupt (base, secret, capacity or test mask)", cpu_base_off },
    { "cpu's object cache constants corrupt (base, secret, capacity or test mask)", cpu_secret_off },
    { "cpu's object cache constants corrupt (base, secret, capacity or test mask)", cpu_cap_off },
    { "cpu's object cache constants corrupt (base, secret, capacity or test mask)", cpu_test_mask_off },
    { "depot holds more magazines than its bound", depot_over_bound },
    { "magazine count disagrees with its chain", depot_magazine_count_off },
    { "depot magazine names no CPU as the one that put it", depot_from_no_cpu },
};

TEST(objects_report_each_violation)
{
    run_cases(obj_cases, sizeof obj_cases / sizeof obj_cases[0]);
}

/* ---- the uncarved tail (buddy.c, the walk in page.c) --------------------- */

static uint32_t uncarved(void) { return (uint32_t)get(SMP_DBG_ZONE_UNCARVED, 0, 0, 0); }

static uint32_t tail_past_end(void)
{
    poke(SMP_DBG_ZONE_UNCARVED, 0, 0, 0, npages() + 1);
    return NIL;
}

static uint32_t block_into_tail(void)
{
    /* Move the tail's start inside the last carved block of two pages or
     * more: the walk meets that block before any smaller one after it. */
    uint32_t last = NIL, end = uncarved();
    for (uint32_t i = 0; i < end; i += 1U << PAGE(ORDER, i))
        if (PAGE(ORDER, i) >= 1)
            last = i;
    NEED(last != NIL, "a carved block of two pages or more");
    poke(SMP_DBG_ZONE_UNCARVED, 0, 0, 0, last + 1);
    return last;
}

static uint32_t tail_page_in_block(void)
{
    uint32_t t = uncarved();
    NEED(t < npages(), "an uncarved tail");
    POKE_PAGE(STATE, t, ST_ALLOC);
    return t;
}

static const struct pcase tail_cases[] = {
    { "uncarved tail starts past the end of the region", tail_past_end },
    { "block runs into the uncarved tail of the region", block_into_tail },
    { "page in the uncarved tail of the region is in a block", tail_page_in_block },
};

TEST(uncarved_tail_reports_each_violation)
{
    keep_tail_uncut = 1;
    run_cases(tail_cases, sizeof tail_cases / sizeof tail_cases[0]);
    keep_tail_uncut = 0;
}

/* The tail is free memory: kfree of an address in it says so, as for an
 * address inside a free block. */
static void kfree_in_tail(void *arg)
{
    (void)arg;
    keep_tail_uncut = 1;
    scene();
    kfree(smp_pmm_debug_page_addr(npages() - 1));
}

/* A greedy cut's block of order o whose end's pfn is aligned to exactly
 * 2^o: rounding that end's index down to 2^(o+1) lands on this block's
 * head, which does not cover it.  Where the cut's orders descend (toward
 * the region's end) such blocks exist.  Returns the block's head and sets
 * *order and *big (the cut's blocks of order >= SMP_DEBUG_PCP_ORDERS up to
 * and including it), or NIL. */
static uint32_t block_rounded_onto(unsigned *order, unsigned big[], int *nbig)
{
    unsigned max = smp_pmm_max_order();
    *nbig = 0;
    for (uint32_t i = 0; i < npages(); ) {
        unsigned o = max;
        while (o > 0 && ((pfn(i) & ((1ULL << o) - 1)) || i + (1ULL << o) > npages()))
            o--;
        if (o >= SMP_DEBUG_PCP_ORDERS)
            big[(*nbig)++] = o;
        if (o >= SMP_DEBUG_PCP_ORDERS && o < max && !(pfn(i) >> o & 1) && i + (1U << o) < npages()) {
            *order = o;
            return i;
        }
        i += 1U << o;
    }
    return NIL;
}

/* kfree of the first page of the uncarved tail, right after such a block:
 * the zone carves the cut block by block as zone-order allocations find
 * no block (the small ones stay free on lists), so allocating each big
 * block of the cut in turn leaves the tail starting after it. */
static void kfree_after_rounded_block(void *arg)
{
    const size_t *bytes = arg;
    char *r = region_map(*bytes + 16 * MiB, 0);
    char *region = (char *)(((uintptr_t)r + 8 * MiB - 1) & ~(8 * MiB - 1)) + 5 * 4096;
    if (pmm_init(region, region + *bytes, NCPU) != 0)
        abort();
    unsigned order, big[64];
    int nbig;
    uint32_t h = block_rounded_onto(&order, big, &nbig);
    if (h == NIL)
        abort();
    for (int j = 0; j < nbig; j++)
        if (!page_alloc(big[j]))
            abort();
    if (uncarved() != h + (1U << order))
        abort();
    kfree(smp_pmm_debug_page_addr(uncarved()));
}

TEST(kfree_in_the_uncarved_tail_is_a_double_free)
{
    keep_tail_uncut = 1;
    scene();
    CHECK(uncarved() < npages() - 1, "the scene leaves the last page uncarved (tail at %u of %u)",
          uncarved(), npages());
    CHECK(pmm_check() == 0, "an uncut tail is a clean state");
    finish();
    keep_tail_uncut = 0;
    CHECK(expect_panic(kfree_in_tail, NULL, "inside a free block: not allocated (double free?)"),
          "kfree in the uncarved tail");
    /* The tail's first page just after a block that rounding down lands on:
     * a region size whose cut has one (the layout is fixed: scene's). */
    static const size_t sizes[] = { 16 * MiB, 20 * MiB, 24 * MiB, 28 * MiB, 13 * MiB, 11 * MiB };
    size_t found = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0] && !found; i++) {
        char *r = region_map(sizes[i] + 16 * MiB, 0);
        char *region = (char *)(((uintptr_t)r + 8 * MiB - 1) & ~(8 * MiB - 1)) + 5 * 4096;
        REQUIRE(pmm_init(region, region + sizes[i], NCPU) == 0, "init of %zu MiB", sizes[i] / MiB);
        unsigned order, big[64];
        int nbig;
        if (block_rounded_onto(&order, big, &nbig) != NIL)
            found = sizes[i];
        pmm_reset();
        region_unmap(r, sizes[i] + 16 * MiB, 0);
    }
    REQUIRE(found, "no region size tried has a cut block that rounding down lands on");
    CHECK(expect_panic(kfree_after_rounded_block, &found, "inside a free block: not allocated (double free?)"),
          "kfree of the tail's first page, after a block of its alignment (%zu MiB region)", found / MiB);
}

/* ---- every reason the checkers can print has a case above --------------- */

static const struct pcase *const all_tables[] = { walk_cases, buddy_cases, pcp_cases, slab_cases, obj_cases,
                                                  tail_cases };
static const size_t all_sizes[] = {
    sizeof walk_cases / sizeof walk_cases[0], sizeof buddy_cases / sizeof buddy_cases[0],
    sizeof pcp_cases / sizeof pcp_cases[0], sizeof slab_cases / sizeof slab_cases[0],
    sizeof obj_cases / sizeof obj_cases[0], sizeof tail_cases / sizeof tail_cases[0],
};
/* Reasons no corruption can produce, and why (see list_cycle). */
static const char *const unreachable[] = { "buddy free list has a cycle" };

static int covered(const char *reason)
{
    for (size_t t = 0; t < sizeof all_tables / sizeof all_tables[0]; t++)
        for (size_t c = 0; c < all_sizes[t]; c++)
            if (!strcmp(all_tables[t][c].reason, reason))
                return 1;
    for (size_t u = 0; u < sizeof unreachable / sizeof unreachable[0]; u++)
        if (!strcmp(unreachable[u], reason))
            return 1;
    return 0;
}

static void must_be_covered(const char *reason)
{
    CHECK(covered(reason), "pmm_check can print \"%s\" but no case in %s proves it", reason, __FILE__);
}

TEST(every_reason_has_a_case)
{
    /* Sources are found relative to this file's path as compiled (the
     * repository root, where make check runs the tests). */
    static const char *const files[] = { "src/page/page.c", "src/page/buddy.c", "src/page/pcp.c",
                                         "src/obj/obj_check.c" };
    char path[512];
    int total = 0;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        repo_path(path, sizeof path, __FILE__, files[i]);
        int n = for_each_reason(path, "smp_check_fail(", must_be_covered);
        if (n < 0) {
            printf("     (every_reason_has_a_case: %s not found from here; skipped)\n", path);
            return;
        }
        total += n;
    }
    CHECK(total >= 40, "found only %d reasons in the checkers' sources", total);
}

int main(void)
{
#ifdef SMP_CHECKED
    /* The slab and object cases build exact object layouts (8 B objects,
     * LIFO reuse); the checked build's trailers and quarantine change both.
     * The checkers are the same code in both builds: the default build
     * proves them. */
    (void)slabs_report_each_violation;
    (void)objects_report_each_violation;
    return RUN_TESTS(walk_reports_each_violation, buddy_lists_report_each_violation,
                     cpu_caches_report_each_violation, uncarved_tail_reports_each_violation,
                     kfree_in_the_uncarved_tail_is_a_double_free, every_reason_has_a_case);
#else
    return RUN_TESTS(walk_reports_each_violation, buddy_lists_report_each_violation,
                     cpu_caches_report_each_violation, slabs_report_each_violation,
                     objects_report_each_violation, uncarved_tail_reports_each_violation,
                     kfree_in_the_uncarved_tail_is_a_double_free, every_reason_has_a_case);
#endif
}
