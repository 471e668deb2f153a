/*
 * The page API: region setup, routing between the per-CPU caches (orders
 * below SMP_PCP_ORDERS) and the zone, free-page accounting, drain, and the
 * invariant checker.
 *
 * Lock order (the whole library):
 *   1. oc[cpu].lock        per-CPU object cache  (objcache.c)
 *   2. slab[class].lock    shared slabs of a size class (slab.c)
 *   3. pcp[cpu].lock       per-CPU page cache (pcp.c)
 *   4. zone.lock           the buddy (buddy.c)
 * No path holds two locks of the same level, except smp_pmm_check, which
 * takes every lock of each level in increasing index, level by level.
 */
#include "pmm_internal.h"
#include "objcache.h"
#include "pcp.h"
#include "base/fmt.h"

struct smp_pmm *smp_pmm_state;

#define MIN_PAGES 64
_Static_assert((1 << (SMP_PCP_ORDERS - 1)) <= MIN_PAGES / 2, "every region must hold the cached orders");

static uintptr_t align_up(uintptr_t v, uintptr_t a) { return (v + a - 1) & ~(a - 1); }

static void zero_bytes(void *p, size_t n)
{
    /* Word stores; the build keeps the compiler from turning this into a
     * memset call (the core links against nothing but the port). */
    uint64_t *w = p;
    for (size_t i = 0; i < n / 8; i++)
        w[i] = 0;
    unsigned char *b = (unsigned char *)p + (n & ~(size_t)7);
    for (size_t i = 0; i < (n & 7); i++)
        b[i] = 0;
}

int smp_pmm_init(void *start, void *end, int ncpu)
{
    if (smp_pmm_state)
        return SMP_EBUSY;
    if (!start || !end || ncpu < 1 || ncpu > SMP_MAX_CPUS)
        return SMP_EINVAL;
    uintptr_t s = (uintptr_t)start, e = (uintptr_t)end;
    if (e <= s)
        return SMP_EINVAL;
    uintptr_t hdr = align_up(s, _Alignof(struct smp_pmm));
    uintptr_t desc = align_up(hdr + sizeof(struct smp_pmm), SMP_CACHELINE);
    e &= ~(uintptr_t)(SMP_PAGE_SIZE - 1);
    if (hdr < s || desc < hdr || desc >= e)
        return SMP_ERANGE;
    /* Largest n with [descriptors for n pages][n pages] fitting in [desc, e). */
    uint64_t n = (e - desc) / (SMP_PAGE_SIZE + sizeof(struct smp_page));
    while (n && align_up(desc + n * sizeof(struct smp_page), SMP_PAGE_SIZE) +
                n * SMP_PAGE_SIZE > e)
        n--;
    if (n < MIN_PAGES)
        return SMP_ERANGE;
    if (n >= SMP_NIL)
        return SMP_ERANGE;

    struct smp_pmm *m = (struct smp_pmm *)hdr;
    zero_bytes(m, sizeof *m);
    m->pages = (struct smp_page *)desc;
    zero_bytes(m->pages, n * sizeof(struct smp_page));   /* all PG_TAIL */
    m->npages = (uint32_t)n;
    m->base = align_up(desc + n * sizeof(struct smp_page), SMP_PAGE_SIZE);
    m->base_pfn = m->base >> SMP_PAGE_SHIFT;
    m->ncpu = ncpu;
    m->region_lo = start;
    m->region_hi = end;
    smp_buddy_init(m);
    m->max_order = m->zone.max_order;
    smp_pcp_init(m);
    smp_slab_init(m);
    smp_objcache_init(m);
    smp_pmm_state = m;
    return 0;
}

void smp_pmm_reset(void)
{
    struct smp_pmm *m = smp_pmm_state;
    if (!m)
        return;
    smp_lock_forget_range(m->region_lo, m->region_hi);
    smp_pmm_state = 0;
}

static void *alloc_from_zone(struct smp_pmm *m, unsigned order)
{
    smp_lock_acquire(&m->zone.lock);
    uint32_t idx = smp_buddy_alloc_locked(m, order);
    smp_lock_release(&m->zone.lock);
    return idx == SMP_NIL ? 0 : (void *)smp_page_addr(m, idx);
}

/* Nothing in this CPU's cache, the buddy or the other CPUs' caches of this
 * order (or an uncached order the zone could not serve): cached blocks of
 * other orders may coalesce into what we need.  Take every cache back and
 * ask the zone again. */
static __attribute__((noinline)) void *alloc_last_resort(struct smp_pmm *m, unsigned order)
{
    smp_pmm_drain_all(m);
    return alloc_from_zone(m, order);
}

static __attribute__((noinline)) void *alloc_large(struct smp_pmm *m, unsigned order)
{
    void *p = alloc_from_zone(m, order);
    return p ? p : alloc_last_resort(m, order);
}

void *smp_page_alloc(unsigned order)
{
    struct smp_pmm *m = smp_pmm_state;
    if (!m)
        return 0;
    /* Every region holds order SMP_PCP_ORDERS - 1 (MIN_PAGES), so only the
     * zone path needs the max-order test. */
    if (order >= SMP_PCP_ORDERS)
        return order > m->max_order ? 0 : alloc_large(m, order);
    uint32_t idx = smp_pcp_alloc(m, order);
    if (__builtin_expect(idx == SMP_NIL, 0))
        return alloc_last_resort(m, order);
    return (void *)smp_page_addr(m, idx);
}

void smp_page_validate_free(struct smp_pmm *m, uint32_t idx, unsigned order,
                            const char *who)
{
    struct smp_page *pg = &m->pages[idx];
    uintptr_t addr = smp_page_addr(m, idx);
    switch (smp_state(pg)) {
    case PG_ALLOC:
        if (pg->order != order) {
            char reason[96];
            struct smp_fmt f;
            smp_fmt_init(&f, reason, sizeof reason);
            smp_fmt_str(&f, "freed with order ");
            smp_fmt_dec(&f, order);
            smp_fmt_str(&f, " but allocated with order ");
            smp_fmt_dec(&f, pg->order);
            smp_panic_at(who, addr, reason);
        }
        return;
    case PG_BUDDY:
    case PG_PCP:
        smp_panic_at(who, addr, "double free: block is already free");
    case PG_TAIL:
        smp_panic_at(who, addr, "not the start of an allocated block");
    case PG_SLAB:
        smp_panic_at(who, addr, "block belongs to the object allocator (use kfree)");
    default:
        smp_panic_at(who, addr, "page descriptor corrupt");
    }
}

_Noreturn void smp_bad_cpu(void)
{
    smp_panic("smpmem", "smp_port_cpu_id() outside 0..ncpu-1 given to pmm_init");
}

static __attribute__((noinline)) void free_large(struct smp_pmm *m, uint32_t idx, unsigned order)
{
    smp_lock_acquire(&m->zone.lock);
    smp_page_validate_free(m, idx, order, "page_free");
    smp_buddy_free_locked(m, idx, order);
    smp_lock_release(&m->zone.lock);
}

static _Noreturn __attribute__((noinline)) void bad_page_free(struct smp_pmm *m, uintptr_t addr,
                                                              unsigned order)
{
    if (!m)
        smp_panic_at("page_free", addr, "smpmem is not initialised");
    if (addr < m->base || addr - m->base >= (uintptr_t)m->npages << SMP_PAGE_SHIFT)
        smp_panic_at("page_free", addr, "address outside the managed region");
    if (order > m->zone.max_order)
        smp_panic_at("page_free", addr, "order larger than any block of this region");
    smp_panic_at("page_free", addr, "address not aligned to its order");
}

void smp_page_free(void *p, unsigned order)
{
    struct smp_pmm *m = smp_pmm_state;
    uintptr_t addr = (uintptr_t)p;
    if (__builtin_expect(!m || addr - m->base >= (uintptr_t)m->npages << SMP_PAGE_SHIFT ||
                         (addr & ((SMP_PAGE_SIZE << (order & 63)) - 1)), 0))
        bad_page_free(m, addr, order);
    uint32_t idx = smp_page_index(m, addr);
    if (order < SMP_PCP_ORDERS)
        smp_pcp_free(m, idx, order);
    else if (order <= m->max_order)
        free_large(m, idx, order);
    else
        bad_page_free(m, addr, order);
}

size_t smp_pmm_total_pages(void)
{
    return smp_pmm_state ? smp_pmm_state->npages : 0;
}

unsigned smp_pmm_max_order(void)
{
    return smp_pmm_state ? smp_pmm_state->zone.max_order : 0;
}

size_t smp_pmm_free_pages(void)
{
    struct smp_pmm *m = smp_pmm_state;
    if (!m)
        return 0;
    size_t n = atomic_load_explicit(&m->zone.free_pages, memory_order_relaxed);
    for (int cpu = 0; cpu < m->ncpu; cpu++)
        n += smp_pcp_cached_pages(&m->pcp[cpu]);
    return n;
}

void smp_pmm_drain_all(struct smp_pmm *m)
{
    /* Top down: objects to slabs, empty slabs to the page caches, cached
     * pages to the buddy. */
    smp_objcache_drain_all(m);
    smp_slab_release_empty(m);
    for (int cpu = 0; cpu < m->ncpu; cpu++)
        smp_pcp_drain_cpu(m, cpu);
}

void smp_pmm_drain(void)
{
    if (smp_pmm_state)
        smp_pmm_drain_all(smp_pmm_state);
}

int smp_pmm_cpu_stats(int cpu, struct smp_pcp_stats *out)
{
    struct smp_pmm *m = smp_pmm_state;
    if (!m || cpu < 0 || cpu >= m->ncpu || !out)
        return SMP_EINVAL;
    struct smp_pcp *c = &m->pcp[cpu];
    out->cached_pages = smp_pcp_cached_pages(c);
    out->refills = atomic_load_explicit(&c->refills, memory_order_relaxed);
    out->drains = atomic_load_explicit(&c->drains, memory_order_relaxed);
    out->steals = atomic_load_explicit(&c->steals, memory_order_relaxed);
    out->stolen = atomic_load_explicit(&c->stolen, memory_order_relaxed);
    return 0;
}

int smp_check_fail(struct smp_pmm *m, uint32_t idx, const char *reason)
{
    char line[160];
    struct smp_fmt f;
    smp_fmt_init_lines(&f, line, sizeof line);
    smp_fmt_str(&f, "pmm_check: ");
    if (idx != SMP_NIL && idx < m->npages) {
        smp_fmt_str(&f, "page ");
        smp_fmt_hex(&f, smp_page_addr(m, idx));
        smp_fmt_str(&f, ": ");
    }
    smp_fmt_str(&f, reason);
    smp_fmt_str(&f, "\n");
    return -1;
}

/* The descriptor walk (see the invariant in pmm_internal.h). */
struct walk {
    size_t nbuddy, npcp, held;
    size_t slabs[SMP_KALLOC_CLASSES], inuse[SMP_KALLOC_CLASSES];
};

static int walk_locked(struct smp_pmm *m, struct walk *w)
{
    uint32_t i = 0;
    while (i < m->npages) {
        struct smp_page *pg = &m->pages[i];
        unsigned o = pg->order;
        if (smp_state(pg) == PG_TAIL)
            return smp_check_fail(m, i, "page belongs to no block");
        if (smp_state(pg) > PG_SLAB)
            return smp_check_fail(m, i, "page descriptor state corrupt");
        if (o > m->zone.max_order)
            return smp_check_fail(m, i, "block order above the region's max order");
        if ((m->base_pfn + i) & ((1ULL << o) - 1))
            return smp_check_fail(m, i, "block not aligned to its order");
        if ((uint64_t)i + (1ULL << o) > m->npages)
            return smp_check_fail(m, i, "block runs past the end of the region");
        for (uint32_t j = 1; j < (1U << o); j++)
            if (smp_state(&m->pages[i + j]) != PG_TAIL)
                return smp_check_fail(m, i + j, "page claimed by two blocks");
        switch (smp_state(pg)) {
        case PG_BUDDY: {
            w->nbuddy++;
            uint64_t bud = (m->base_pfn + i) ^ (1ULL << o);
            if (o < m->zone.max_order && bud >= m->base_pfn &&
                bud + (1ULL << o) <= m->base_pfn + m->npages) {
                struct smp_page *bp = &m->pages[bud - m->base_pfn];
                if (smp_state(bp) == PG_BUDDY && bp->order == o)
                    return smp_check_fail(m, i, "free buddies not coalesced");
            }
            break;
        }
        case PG_PCP:
            if (o >= SMP_PCP_ORDERS)
                return smp_check_fail(m, i, "cached block of an uncached order");
            w->npcp++;
            break;
        case PG_SLAB: {
            int rc = smp_slab_check_one_locked(m, i);
            if (rc)
                return rc;
            w->slabs[pg->cls]++;
            w->inuse[pg->cls] += pg->inuse;
            w->held += 1UL << o;
            break;
        }
        default:
            w->held += 1UL << o;
            break;
        }
        i += 1U << o;
    }
    return 0;
}

int smp_pmm_check(void)
{
    struct smp_pmm *m = smp_pmm_state;
    if (!m)
        return SMP_EINVAL;
    smp_objcache_lock_all(m);
    smp_slab_lock_all(m);
    for (int cpu = 0; cpu < m->ncpu; cpu++)
        smp_lock_acquire(&m->pcp[cpu].lock);
    smp_lock_acquire(&m->zone.lock);
    struct walk w = { 0 };
    size_t listed = 0, cached[SMP_KALLOC_CLASSES] = { 0 };
    int rc = walk_locked(m, &w);
    if (!rc)
        rc = smp_buddy_check_locked(m, w.nbuddy, &listed);
    if (!rc)
        rc = smp_pcp_check_locked(m, w.npcp);
    if (!rc)
        rc = smp_objcache_check_locked(m, cached);
    if (!rc)
        rc = smp_slab_check_locked(m, w.slabs, w.inuse, cached);
    if (!rc && w.held + smp_pmm_free_pages() != m->npages)
        rc = smp_check_fail(m, SMP_NIL, "free + held pages do not add up to the total");
    smp_lock_release(&m->zone.lock);
    for (int cpu = m->ncpu - 1; cpu >= 0; cpu--)
        smp_lock_release(&m->pcp[cpu].lock);
    smp_slab_unlock_all(m);
    smp_objcache_unlock_all(m);
    return rc;
}
