/*
 * Per-CPU page caches in front of the buddy zone (Linux's pcp lists; the
 * MIT lock lab's per-CPU free lists with stealing).  Fast paths: pcp.h.
 *
 * Lock order:
 *   1. pcp[cpu].lock   (this CPU's own cache)
 *   2. zone.lock       (taken inside 1 for batch refill and drain)
 * Never two pcp locks at once here: a steal releases its own lock before it
 * locks a victim, and moves the stolen batch home after releasing the victim.
 * (smp_pmm_check alone holds every pcp lock, taken in increasing CPU id.)
 *
 * pcp[c].lock protects that cache's rings and the PG_PCP descriptors in
 * them.  Any CPU may take it (steal, drain), but the owner is the usual
 * taker, so on the fast path the lock is uncontended and its line stays home.
 *
 * Each order's ring holds page indices between bottom and top (unsigned,
 * wrapping; count = top - bottom <= capacity).  The hot end is top (LIFO,
 * cache-warm pages), the cold end bottom: drain and steal take from there.
 */
#include "pcp.h"
#include "base/fmt.h"

/* Ring geometry: order o has capacity SMP_PCP_CAP0 >> o and starts at
 * slots[pcp_off(o)] (512 + 256 + 128 + 64 of the SMP_PCP_SLOTS). */
static unsigned pcp_off(unsigned o) { return SMP_PCP_SLOTS - (SMP_PCP_SLOTS >> o); }
static unsigned pcp_cap(unsigned o) { return SMP_PCP_CAP0 >> o; }

static uint32_t top_of(struct smp_pcp *c, unsigned o)
{
    return atomic_load_explicit(&c->ring[o].top, memory_order_relaxed);
}

static uint32_t bottom_of(struct smp_pcp *c, unsigned o)
{
    return atomic_load_explicit(&c->ring[o].bottom, memory_order_relaxed);
}

static void set_top(struct smp_pcp *c, unsigned o, uint32_t v)
{
    atomic_store_explicit(&c->ring[o].top, v, memory_order_relaxed);
}

static unsigned count_of(struct smp_pcp *c, unsigned o)
{
    return top_of(c, o) - bottom_of(c, o);
}

static uint32_t *slot(struct smp_pcp *c, unsigned o, uint32_t pos)
{
    return &c->ring[o].slots[pos & c->ring[o].mask];
}

/* Lock held; the caller checked there is room. */
static void push_top(struct smp_pmm *m, struct smp_pcp *c, unsigned o, uint32_t idx)
{
    struct smp_page *pg = &m->pages[idx];
    smp_set_state(pg, PG_PCP);
    pg->order = (uint8_t)o;
    uint32_t top = top_of(c, o);
    *slot(c, o, top) = idx;
    set_top(c, o, top + 1);
}

static uint32_t pop_top(struct smp_pcp *c, unsigned o)
{
    uint32_t top = top_of(c, o);
    if (top == bottom_of(c, o))
        return SMP_NIL;
    top--;
    set_top(c, o, top);
    return *slot(c, o, top);
}

static uint32_t pop_bottom(struct smp_pcp *c, unsigned o)
{
    uint32_t bottom = bottom_of(c, o);
    if (bottom == top_of(c, o))
        return SMP_NIL;
    atomic_store_explicit(&c->ring[o].bottom, bottom + 1, memory_order_relaxed);
    return *slot(c, o, bottom);
}

void smp_pcp_init(struct smp_pmm *m)
{
    /* Batch and high watermark per order, in blocks.  The order-0 high mark
     * scales with the region so that all CPUs together cache at most about
     * 1/8 of it, but never below 96 pages (a 64-page burst plus a batch
     * must fit without ping-ponging pages through the zone lock) and never
     * beyond the ring. */
    size_t share = m->npages / (8 * (size_t)m->ncpu);
    unsigned high0 = share < 96 ? 96 : share > SMP_PCP_CAP0 - 32 ? SMP_PCP_CAP0 - 32 : (unsigned)share;
    unsigned high[SMP_PCP_ORDERS];
    for (unsigned o = 0; o < SMP_PCP_ORDERS; o++) {
        unsigned b = 32 >> o;
        m->pcp_batch[o] = b ? b : 1;
        unsigned h = high0 >> o;
        high[o] = h < 2 * m->pcp_batch[o] ? 2 * m->pcp_batch[o] : h;
    }
    for (int cpu = 0; cpu < m->ncpu; cpu++) {
        struct smp_pcp *c = &m->pcp[cpu];
        smp_fmt_name(c->name, sizeof c->name, "kmem.cpu", (uint64_t)cpu);
        smp_lock_init(&c->lock, c->name);
        for (unsigned o = 0; o < SMP_PCP_ORDERS; o++) {
            struct smp_pcp_ring *r = &c->ring[o];
            atomic_init(&r->top, 0);
            atomic_init(&r->bottom, 0);
            r->mask = pcp_cap(o) - 1;
            r->high = high[o];
            r->slots = &c->slots[pcp_off(o)];
        }
        atomic_init(&c->refills, 0);
        atomic_init(&c->drains, 0);
        atomic_init(&c->steals, 0);
        atomic_init(&c->stolen, 0);
    }
}

size_t smp_pcp_cached_pages(struct smp_pcp *c)
{
    size_t n = 0;
    for (unsigned o = 0; o < SMP_PCP_ORDERS; o++)
        n += (size_t)count_of(c, o) << o;
    return n;
}

/* Move up to a batch of order-o blocks from the buddy; c->lock held. */
static void refill_locked(struct smp_pmm *m, struct smp_pcp *c, unsigned o)
{
    unsigned got = 0;
    smp_lock_acquire(&m->zone.lock);
    for (; got < m->pcp_batch[o] && count_of(c, o) < pcp_cap(o); got++) {
        uint32_t idx = smp_buddy_alloc_locked(m, o);
        if (idx == SMP_NIL)
            break;
        push_top(m, c, o, idx);
    }
    smp_lock_release(&m->zone.lock);
    if (got)
        smp_counter_add(&c->refills, 1);
}

/* Give up to n cold blocks of order o back to the buddy; c->lock held. */
static void drain_locked(struct smp_pmm *m, struct smp_pcp *c, unsigned o, unsigned n)
{
    if (!n)
        return;
    smp_lock_acquire(&m->zone.lock);
    for (unsigned i = 0; i < n; i++) {
        uint32_t idx = pop_bottom(c, o);
        if (idx == SMP_NIL)
            break;
        smp_buddy_free_locked(m, idx, o);
    }
    smp_lock_release(&m->zone.lock);
    smp_counter_add(&c->drains, 1);
}

/* Own cache and buddy are dry: take a batch from the first other CPU that
 * has blocks of this order.  Holds one pcp lock at a time. */
static uint32_t steal(struct smp_pmm *m, int self, unsigned o)
{
    uint32_t batch[64];
    unsigned want = 2 * m->pcp_batch[o];
    if (want > 64)
        want = 64;
    for (int k = 1; k < m->ncpu; k++) {
        int v = (self + k) % m->ncpu;
        struct smp_pcp *vc = &m->pcp[v];
        if (count_of(vc, o) == 0)   /* racy peek: only a hint */
            continue;
        unsigned n = 0;
        smp_lock_acquire(&vc->lock);
        unsigned take = (count_of(vc, o) + 1) / 2;
        if (take > want)
            take = want;
        while (n < take) {
            uint32_t idx = pop_bottom(vc, o);
            if (idx == SMP_NIL)
                break;
            smp_set_state(&m->pages[idx], PG_ALLOC);   /* in transit: owned by us */
            batch[n++] = idx;
        }
        if (n)
            smp_counter_add(&vc->stolen, 1);
        smp_lock_release(&vc->lock);
        if (!n)
            continue;
        struct smp_pcp *c = &m->pcp[self];
        smp_lock_take_local(&c->lock);
        unsigned i = 1;
        for (; i < n && count_of(c, o) < pcp_cap(o); i++)
            push_top(m, c, o, batch[i]);
        if (i < n) {
            /* Our ring refilled meanwhile (an interrupt handler freed here):
             * the rest goes to the buddy. */
            smp_lock_acquire(&m->zone.lock);
            for (; i < n; i++)
                smp_buddy_free_locked(m, batch[i], o);
            smp_lock_release(&m->zone.lock);
        }
        smp_counter_add(&c->steals, 1);
        smp_lock_release_local(&c->lock);
        return batch[0];
    }
    return SMP_NIL;
}

uint32_t smp_pcp_alloc_slow(struct smp_pmm *m, int cpu, unsigned o, int held)
{
    struct smp_pcp *c = &m->pcp[cpu];
    if (!held)
        smp_lock_take_local(&c->lock);
    uint32_t idx = pop_top(c, o);
    if (idx == SMP_NIL) {
        refill_locked(m, c, o);
        idx = pop_top(c, o);
    }
    if (idx != SMP_NIL)
        smp_set_state(&m->pages[idx], PG_ALLOC);
    smp_lock_release_local(&c->lock);
    if (idx == SMP_NIL)
        idx = steal(m, cpu, o);
    smp_port_irq_pop();
    return idx;
}

void smp_pcp_free_slow(struct smp_pmm *m, int cpu, uint32_t idx, unsigned o, int held)
{
    struct smp_pcp *c = &m->pcp[cpu];
    if (!held)
        smp_lock_take_local(&c->lock);
    smp_page_validate_free(m, idx, o, "page_free");   /* panics on misuse */
    if (count_of(c, o) >= c->ring[o].high)
        drain_locked(m, c, o, m->pcp_batch[o]);
    push_top(m, c, o, idx);
    smp_lock_release_local(&c->lock);
    smp_port_irq_pop();
}

void smp_pcp_drain_cpu(struct smp_pmm *m, int cpu)
{
    struct smp_pcp *c = &m->pcp[cpu];
    smp_lock_acquire(&c->lock);
    for (unsigned o = 0; o < SMP_PCP_ORDERS; o++)
        if (count_of(c, o))
            drain_locked(m, c, o, count_of(c, o));
    smp_lock_release(&c->lock);
}

/* Verify every cache ring; every pcp lock held.  nheads_seen is the number
 * of PG_PCP heads the descriptor walk found: equal to the cached blocks iff
 * no cached block is missing from (or repeated in) a ring. */
int smp_pcp_check_locked(struct smp_pmm *m, size_t nheads_seen)
{
    size_t blocks = 0;
    for (int cpu = 0; cpu < m->ncpu; cpu++) {
        struct smp_pcp *c = &m->pcp[cpu];
        for (unsigned o = 0; o < SMP_PCP_ORDERS; o++) {
            unsigned n = count_of(c, o);
            if (n > pcp_cap(o))
                return smp_check_fail(m, SMP_NIL, "cpu cache ring count exceeds its capacity");
            for (uint32_t pos = bottom_of(c, o); pos != top_of(c, o); pos++) {
                uint32_t i = *slot(c, o, pos);
                if (i >= m->npages)
                    return smp_check_fail(m, SMP_NIL, "cpu cache holds an index outside the region");
                struct smp_page *pg = &m->pages[i];
                if (smp_state(pg) != PG_PCP)
                    return smp_check_fail(m, i, "block in a cpu cache is not marked cached");
                if (pg->order != o)
                    return smp_check_fail(m, i, "block in the wrong order's cpu cache");
            }
            blocks += n;
        }
    }
    if (blocks != nheads_seen)
        return smp_check_fail(m, SMP_NIL, "cached blocks missing from or repeated in cpu caches");
    return 0;
}
