/*
 * The page layer's setup, the uncached orders, descriptor validation and
 * the invariant walk.  Fast paths for orders below SMP_PCP_ORDERS: pcp.h.
 *
 * Locks: zone.lock for the uncached orders (no section needed: the zone is
 * shared); the walk runs with the world stopped and takes zone.lock.
 */
#include "pcp.h"
#include "../base/fmt.h"

_Static_assert((1 << (SMP_PCP_ORDERS - 1)) <= SMP_PG_MIN_PAGES / 8,
               "every region must hold a block of each cached order");

static uintptr_t align_up(uintptr_t v, uintptr_t a) { return (v + a - 1) & ~(a - 1); }

static void zero_words(void *p, size_t n)
{
    /* Word stores; the build keeps the compiler from turning this into a
     * memset call (the core links against nothing but the port). */
    uint64_t *w = p;
    for (size_t i = 0; i < n / 8; i++)
        w[i] = 0;
}

int smp_pg_init(struct smp_pages *pg, uintptr_t start, uintptr_t end, int ncpu, bool zeroed,
                uint8_t *owner, size_t owner_len)
{
    uintptr_t pcp = smp_colour_up(start, SMP_CPU_COLOUR);   /* off a page's first line (page.h) */
    uintptr_t slots = pcp + (size_t)ncpu * sizeof(struct smp_pcp);
    uintptr_t desc = align_up(slots + (size_t)ncpu * SMP_PCP_SLOT_BYTES, SMP_CACHELINE);
    end &= ~(uintptr_t)(SMP_PAGE_SIZE - 1);
    if (pcp < start || desc < pcp || desc >= end)
        return SMP_ERANGE;
    /* Largest n with [descriptors for n pages][heads for n pages][n pages]
     * fitting in [desc, end); the owner bytes are the caller's. */
    const size_t per_page = sizeof(struct smp_page) + sizeof(struct smp_page_head);
    uint64_t n = (end - desc) / (SMP_PAGE_SIZE + per_page);
    while (n && align_up(desc + n * per_page, SMP_PAGE_SIZE) + n * SMP_PAGE_SIZE > end)
        n--;
    if (n < SMP_PG_MIN_PAGES || n >= SMP_NIL || align_up(n, 8) > owner_len)
        return SMP_ERANGE;
    pg->pcp = (struct smp_pcp *)pcp;
    pg->pcp_slots = (uint32_t *)slots;
    pg->pages = (struct smp_page *)desc;
    pg->head = (struct smp_page_head *)(desc + n * sizeof(struct smp_page));
    pg->owner_byte = owner;
    if (!zeroed) {              /* all PG_TAIL, owner 0 (rounded up to words) */
        zero_words(pg->pages, align_up(n * per_page, 8));
        zero_words(owner, align_up(n, 8));
    }
    pg->npages = (uint32_t)n;
    pg->base = align_up(desc + n * per_page, SMP_PAGE_SIZE);
    pg->span = (uintptr_t)n << SMP_PAGE_SHIFT;
    pg->base_pfn = pg->base >> SMP_PAGE_SHIFT;
    pg->ncpu = ncpu;
#ifndef SMP_PORT_HAS_CPU_WORDS
    for (int cpu = 0; cpu < ncpu; cpu++)
        pg->pcp_at[cpu] = &pg->pcp[cpu];
#endif
    smp_buddy_init(pg);
    smp_pcp_init(pg);
    return 0;
}

uint32_t smp_pg_enclosing_head(const struct smp_pages *pg, uint32_t idx)
{
    /* Heads are aligned to their order, so the head is idx rounded down to
     * some power of two: the first non-tail page found rounding down covers
     * idx iff its order reaches that far. */
    uint64_t pfn = pg->base_pfn + idx;
    for (unsigned k = 0; k <= pg->max_order; k++) {
        uint64_t h = pfn & ~((1ULL << k) - 1);
        if (h < pg->base_pfn)
            break;
        uint32_t hi = (uint32_t)(h - pg->base_pfn);
        const struct smp_page_head *d = smp_head(pg, hi);
        if (smp_state(d) != PG_TAIL)
            return d->order >= k ? hi : SMP_NIL;
    }
    return SMP_NIL;
}

unsigned smp_pg_enclosing_state(const struct smp_pages *pg, uint32_t idx)
{
    /* The uncarved tail first: rounding down from a page there can land on
     * a carved head below the tail, which never covers it. */
    if (idx >= atomic_load_explicit(&pg->zone.uncarved, memory_order_relaxed))
        return PG_BUDDY;
    uint32_t h = smp_pg_enclosing_head(pg, idx);
    return h == SMP_NIL ? PG_TAIL : smp_state(smp_head(pg, h));   /* NIL: carved, in no block: corrupt */
}

void *smp_pg_zone_alloc(struct smp_pages *pg, unsigned order)
{
    if (order > pg->max_order)
        return 0;
    smp_lock_acquire(&pg->zone.lock);
    uint32_t idx = smp_buddy_alloc_locked(pg, order);
    smp_lock_release(&pg->zone.lock);
    return idx == SMP_NIL ? 0 : (void *)smp_page_addr(pg, idx);
}

void smp_pg_zone_free(struct smp_pages *pg, void *p, unsigned order)
{
    uint32_t idx = smp_page_index(pg, (uintptr_t)p);
    smp_lock_acquire(&pg->zone.lock);
    smp_pg_validate_free(pg, idx, order, "page_free");
    smp_buddy_free_locked(pg, idx, order);
    smp_lock_release(&pg->zone.lock);
}

void *smp_pg_alloc_large(struct smp_pages *pg, unsigned order)
{
    if (order > pg->max_order)
        return 0;
    void *p = smp_pg_zone_alloc(pg, order);
    if (p || !pg->pressure)
        return p;
    return pg->pressure(pg, order);
}

void smp_pg_validate_free(struct smp_pages *pg, uint32_t idx, unsigned order, const char *who)
{
    struct smp_page_head *d = smp_head(pg, idx);
    uintptr_t addr = smp_page_addr(pg, idx);
    switch (smp_state(d)) {
    case PG_ALLOC:
        if (d->order != order)
            smp_panic_at_nums(who, addr, "freed with order ", order, " but allocated with order ",
                              d->order, "");
        return;
    case PG_BUDDY:
    case PG_PCP:
        smp_panic_at(who, addr, "double free: block is already free");
    case PG_TAIL:
        smp_panic_at(who, addr, "not the start of an allocated block");
    case PG_OWNED:
        smp_panic_at(who, addr, "block belongs to the object allocator (use kfree)");
    default:
        smp_panic_at(who, addr, "page descriptor corrupt");
    }
}

static _Noreturn void bad_free(struct smp_pages *pg, uintptr_t addr, unsigned order)
{
    if (!pg->npages)
        smp_panic_at("page_free", addr, "smpmem is not initialised");
    if (!smp_pg_contains(pg, addr))
        smp_panic_at("page_free", addr, "address outside the managed region");
    if (order > pg->max_order)
        smp_panic_at("page_free", addr, "order larger than any block of this region");
    smp_panic_at("page_free", addr, "address not aligned to its order");
}

#ifdef SMP_PORT_HAS_DISCARD
/*
 * Freed blocks of SMP_DISCARD_ORDER and up go to the port's discard hook
 * (port.h), which drops their pages, so the next user of the block faults
 * each one in again.  That is right for a block nobody asks for soon, and
 * a trap for one that is: a program that malloc'ed, filled and freed a
 * 4 MiB buffer in a loop ran 45x slower through the malloc front end than
 * on glibc, 1024 page faults a round.  So the zone remembers the
 * SMP_DISCARD_KEEP blocks freed last (each position and order).  A block
 * freed again while it is remembered -- the same position and order, so
 * most likely the same buffer of the same program -- keeps its pages: it
 * is marked kept and not discarded.  Any other big free discards as
 * before.  When a kept block leaves the window (pushed out by newer
 * entries), it is discarded then if it is still wholly free: taken out of
 * the zone as if allocated, discarded with no lock held, and freed back.
 * If it was reused meanwhile, in part or whole, its pages are in use.
 *
 * What the window costs: the pages of at most SMP_DISCARD_KEEP free
 * blocks, together at most SMP_DISCARD_KEEP_PAGES and 1/16 of the region
 * (a repeated block beyond that is discarded as any other), and only
 * pages their own repeated users touched: a region reused by blocks of
 * other sizes (the kalloc benchmark's mixed workload) is discarded at
 * each of their frees, as before the window (its peak RSS moved 0% at 1
 * thread, under 1% at 2 and 1-2% at 8).  Keeping every freed block a
 * while instead made that workload 5% faster at 2 threads but cost 2.3%
 * of peak RSS there: a region reused by blocks of many sizes kept every
 * page any of them touched.
 */
/* Pages the window keeps: those of its dirty entries. */
static size_t kept_pages(const struct smp_zone *z)
{
    size_t n = 0;
    for (unsigned i = 0; i < z->nkept; i++)
        if (z->kept[i].dirty)
            n += (size_t)1 << z->kept[i].order;
    return n;
}

static struct smp_kept kept_remove(struct smp_zone *z, unsigned i)
{
    struct smp_kept e = z->kept[i];
    for (z->nkept--; i < z->nkept; i++)
        z->kept[i] = z->kept[i + 1];
    return e;
}

/* Push the oldest entry out; a kept one still wholly free is taken from
 * the zone into *out for its discard (1), else nothing is (0). */
static unsigned evict_locked(struct smp_pages *pg, struct smp_kept *out)
{
    struct smp_kept e = kept_remove(&pg->zone, 0);
    if (!e.dirty || !smp_buddy_take_locked(pg, e.idx, e.order))
        return 0;
    *out = e;
    return 1;
}

/* The block (idx, order), still allocated, is being freed: 1 if it is to
 * keep its pages (the caller frees it into the zone), 0 if the caller
 * discards it first.  Either way the window's evicted kept blocks, taken
 * from the zone, are in out[] (*nout, at most SMP_DISCARD_KEEP).  Zone
 * lock held. */
static int keep_locked(struct smp_pages *pg, uint32_t idx, unsigned order, struct smp_kept *out, unsigned *nout)
{
    struct smp_zone *z = &pg->zone;
    size_t budget = pg->npages / 16 < SMP_DISCARD_KEEP_PAGES ? pg->npages / 16 : SMP_DISCARD_KEEP_PAGES;
    size_t pages = (size_t)1 << order;
    bool keep = false;
    *nout = 0;
    for (unsigned i = 0; i < z->nkept; i++)
        if (z->kept[i].idx == idx && z->kept[i].order == order) {
            keep = kept_remove(z, i).dirty || kept_pages(z) + pages <= budget;
            break;
        }
    /* Room for the entry, and for its pages if it keeps them. */
    while (z->nkept && (z->nkept == SMP_DISCARD_KEEP || (keep && kept_pages(z) + pages > budget)))
        *nout += evict_locked(pg, &out[*nout]);
    z->kept[z->nkept++] = (struct smp_kept){ idx, (uint8_t)order, keep };
    return keep;
}

static void free_keeping(struct smp_pages *pg, void *p, unsigned order)
{
    uint32_t idx = smp_page_index(pg, (uintptr_t)p);
    struct smp_kept out[SMP_DISCARD_KEEP];
    unsigned n;
    smp_lock_acquire(&pg->zone.lock);
    /* The test the zone free makes, now, so a bad free panics before
     * anything is dropped.  A double free racing this one passes it too;
     * the zone free tests again under the lock and panics for the second. */
    smp_pg_validate_free(pg, idx, order, "page_free");
    int keep = keep_locked(pg, idx, order, out, &n);
    smp_lock_release(&pg->zone.lock);
    if (!keep)
        smp_port_discard(p, (size_t)SMP_PAGE_SIZE << order);   /* still ours: allocated */
    for (unsigned i = 0; i < n; i++)
        smp_port_discard((void *)smp_page_addr(pg, out[i].idx), (size_t)SMP_PAGE_SIZE << out[i].order);
    smp_lock_acquire(&pg->zone.lock);
    smp_pg_validate_free(pg, idx, order, "page_free");
    smp_buddy_free_locked(pg, idx, order);
    for (unsigned i = 0; i < n; i++)
        smp_buddy_free_locked(pg, out[i].idx, out[i].order);
    smp_lock_release(&pg->zone.lock);
}
#endif

void smp_pg_free_large(struct smp_pages *pg, void *p, unsigned order)
{
    uintptr_t addr = (uintptr_t)p;
    if (!smp_pg_contains(pg, addr) || order > pg->max_order ||
        (addr & ((SMP_PAGE_SIZE << order) - 1)))
        bad_free(pg, addr, order);
#ifdef SMP_PORT_HAS_DISCARD
    if (order >= SMP_DISCARD_ORDER) {
        free_keeping(pg, p, order);
        return;
    }
#endif
    smp_pg_zone_free(pg, p, order);
}

void smp_pg_own(struct smp_pages *pg, void *block)
{
    smp_set_state(smp_head(pg, smp_page_index(pg, (uintptr_t)block)), PG_OWNED);
}

void smp_pg_disown(struct smp_pages *pg, void *block)
{
    smp_set_state(smp_head(pg, smp_page_index(pg, (uintptr_t)block)), PG_ALLOC);
}

size_t smp_pg_free_pages(const struct smp_pages *pg)
{
    size_t n = atomic_load_explicit(&pg->zone.free_pages, memory_order_relaxed);
    for (int cpu = 0; cpu < pg->ncpu; cpu++)
        n += smp_pcp_cached_pages(&pg->pcp[cpu]);
    return n;
}

int smp_check_fail(const struct smp_pages *pg, uint32_t idx, const char *reason)
{
    char line[160];
    struct smp_fmt f;
    smp_fmt_init_lines(&f, line, sizeof line);
    smp_fmt_str(&f, "pmm_check: ");
    if (idx != SMP_NIL && idx < pg->npages) {
        smp_fmt_str(&f, "page ");
        smp_fmt_hex(&f, smp_page_addr(pg, idx));
        smp_fmt_str(&f, ": ");
    }
    smp_fmt_str(&f, reason);
    smp_fmt_str(&f, "\n");
    return -1;
}

/* The descriptor walk (see the invariant in page.h). */
struct walk {
    size_t nbuddy, npcp, held;
};

/* A page no client owns carries no owner mark. */
static int check_unowned(struct smp_pages *pg, uint32_t i)
{
    if (pg->pages[i].owner_tag)
        return smp_check_fail(pg, i, "owner tag left on a page no client owns");
    if (pg->owner_byte[i])
        return smp_check_fail(pg, i, "owner byte left on a page no client owns");
    return 0;
}

static int walk(struct smp_pages *pg, struct walk *w, int (*owned)(void *, uint32_t), void *ctx)
{
    uint32_t i = 0, carved = atomic_load_explicit(&pg->zone.uncarved, memory_order_relaxed);
    if (carved > pg->npages)
        return smp_check_fail(pg, SMP_NIL, "uncarved tail starts past the end of the region");
    while (i < carved) {
        struct smp_page_head *d = smp_head(pg, i);
        unsigned o = d->order, st = smp_state(d);
        if (st == PG_TAIL)
            return smp_check_fail(pg, i, "page belongs to no block");
        if (st > PG_OWNED)
            return smp_check_fail(pg, i, "page descriptor state corrupt");
        if (o > pg->max_order)
            return smp_check_fail(pg, i, "block order above the region's max order");
        if ((pg->base_pfn + i) & ((1ULL << o) - 1))
            return smp_check_fail(pg, i, "block not aligned to its order");
        if ((uint64_t)i + (1ULL << o) > pg->npages)
            return smp_check_fail(pg, i, "block runs past the end of the region");
        if ((uint64_t)i + (1ULL << o) > carved)
            return smp_check_fail(pg, i, "block runs into the uncarved tail of the region");
        for (uint32_t j = 1; j < (1U << o); j++)
            if (smp_state(smp_head(pg, i + j)) != PG_TAIL)
                return smp_check_fail(pg, i + j, "page claimed by two blocks");
        if (st != PG_OWNED)
            for (uint32_t j = 0; j < (1U << o); j++) {
                int rc = check_unowned(pg, i + j);
                if (rc)
                    return rc;
            }
        switch (st) {
        case PG_BUDDY: {
            w->nbuddy++;
            uint64_t bud = (pg->base_pfn + i) ^ (1ULL << o);
            if (o < pg->max_order && bud >= pg->base_pfn &&
                bud + (1ULL << o) <= pg->base_pfn + pg->npages) {
                struct smp_page_head *bp = smp_head(pg, (uint32_t)(bud - pg->base_pfn));
                if (smp_state(bp) == PG_BUDDY && bp->order == o)
                    return smp_check_fail(pg, i, "free buddies not coalesced");
            }
            break;
        }
        case PG_PCP:
            if (o >= SMP_PCP_ORDERS)
                return smp_check_fail(pg, i, "cached block of an uncached order");
            w->npcp++;
            break;
        case PG_OWNED: {
            int rc = owned ? owned(ctx, i) : 0;
            if (rc)
                return rc;
            w->held += 1UL << o;
            break;
        }
        default:
            w->held += 1UL << o;
            break;
        }
        i += 1U << o;
    }
    for (; i < pg->npages; i++) {
        if (smp_state(smp_head(pg, i)) != PG_TAIL)
            return smp_check_fail(pg, i, "page in the uncarved tail of the region is in a block");
        int rc = check_unowned(pg, i);
        if (rc)
            return rc;
    }
    return 0;
}

int smp_pg_check_frozen(struct smp_pages *pg, int (*owned)(void *ctx, uint32_t idx), void *ctx)
{
    struct walk w = { 0, 0, 0 };
    smp_lock_acquire(&pg->zone.lock);
    int rc = walk(pg, &w, owned, ctx);
    if (!rc)
        rc = smp_buddy_check_locked(pg, w.nbuddy);
    if (!rc)
        rc = smp_pcp_check_frozen(pg, w.npcp);
    if (!rc && w.held + smp_pg_free_pages(pg) != pg->npages)
        rc = smp_check_fail(pg, SMP_NIL, "free + held pages do not add up to the total");
    smp_lock_release(&pg->zone.lock);
    return rc;
}
