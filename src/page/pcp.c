/*
 * Per-CPU page caches in front of the buddy zone (Linux's pcp lists; the
 * MIT lock lab's per-CPU free lists with stealing).  Fast paths: pcp.h.
 *
 * Lock order: this CPU's section -> zone.lock (batch refill and drain).
 * A CPU's rings are touched only inside its own section, or by a function
 * another CPU runs through smp_on_cpu (steal) or a stopped world (drain,
 * check): base/percpu.h says how that is exclusive in each build mode.
 * A steal leaves its own section first and asks the victim outside it.
 *
 * Each order's ring holds page indices between bottom and top (unsigned,
 * wrapping; count = top - bottom <= capacity).  The hot end is top (LIFO,
 * cache-warm pages), the cold end bottom: drain and steal take from there.
 */
#include "pcp.h"

const struct smp_pcp smp_pcp_idle;
#include "../base/fmt.h"

/* Ring geometry: order o has capacity SMP_PCP_CAP0 >> o and starts at
 * slots[pcp_off(o)] (512 + 256 + 128 + 64 + 32 of the SMP_PCP_SLOTS). */
static unsigned pcp_off(unsigned o) { return SMP_PCP_SLOTS - (SMP_PCP_SLOTS >> o); }
static unsigned pcp_cap(unsigned o) { return SMP_PCP_CAP0 >> o; }

static uint32_t top_of(const struct smp_pcp *c, unsigned o) { return smp_ring_load(&c->ring[o].top); }
static uint32_t bottom_of(const struct smp_pcp *c, unsigned o) { return smp_ring_load(&c->ring[o].bottom); }
static unsigned count_of(const struct smp_pcp *c, unsigned o) { return top_of(c, o) - bottom_of(c, o); }

static uint32_t *slot(struct smp_pcp *c, unsigned o, uint32_t pos)
{
    return &c->ring[o].slots[pos & c->ring[o].mask];
}

/* The caller checked there is room. */
static void push_top(struct smp_pages *pg, struct smp_pcp *c, unsigned o, uint32_t idx)
{
    struct smp_page_head *d = smp_head(pg, idx);
    smp_set_state(d, PG_PCP);
    d->order = (uint8_t)o;
    uint32_t top = top_of(c, o);
    *slot(c, o, top) = idx;
    atomic_store_explicit(&c->ring[o].top, top + 1, memory_order_relaxed);
}

static uint32_t pop_top(struct smp_pcp *c, unsigned o)
{
    uint32_t top = top_of(c, o);
    if (top == bottom_of(c, o))
        return SMP_NIL;
    top--;
    atomic_store_explicit(&c->ring[o].top, top, memory_order_relaxed);
    return *slot(c, o, top);
}

static uint32_t pop_bottom(struct smp_pcp *c, unsigned o)
{
    uint32_t bottom = bottom_of(c, o);
    if (bottom == top_of(c, o))
        return SMP_NIL;
    atomic_store_explicit(&c->ring[o].bottom, bottom + 1, memory_order_relaxed);
    c->ring[o].full_top = bottom + 1 + c->ring[o].high;
    return *slot(c, o, bottom);
}

static void count_up(atomic_ulong *c)
{
    smp_counter_add(c, 1);
}

void smp_pcp_init(struct smp_pages *pg)
{
    /* Batch and high watermark per order, in blocks.  The order-0 high mark
     * scales with the region so that all CPUs together cache at most about
     * 1/8 of it, but never below 96 pages (a 64-page burst plus a batch
     * must fit without ping-ponging pages through the zone lock) and never
     * beyond the ring. */
    size_t share = pg->npages / (8 * (size_t)pg->ncpu);
    unsigned high0 = share < 96 ? 96 : share > SMP_PCP_CAP0 - 32 ? SMP_PCP_CAP0 - 32 : (unsigned)share;
    unsigned high[SMP_PCP_ORDERS];
    for (unsigned o = 0; o < SMP_PCP_ORDERS; o++) {
        unsigned b = 32 >> o;
        pg->batch[o] = b ? b : 1;
        unsigned h = high0 >> o;
        high[o] = h < 2 * pg->batch[o] ? 2 * pg->batch[o] : h;
    }
    for (int cpu = 0; cpu < pg->ncpu; cpu++) {
        struct smp_pcp *c = &pg->pcp[cpu];
        for (unsigned o = 0; o < SMP_PCP_ORDERS; o++) {
            struct smp_pcp_ring *r = &c->ring[o];
            atomic_init(&r->top, 0);
            atomic_init(&r->bottom, 0);
            r->mask = pcp_cap(o) - 1;
            r->high = high[o];
            r->full_top = high[o];
            r->slots = &pg->pcp_slots[(size_t)cpu * SMP_PCP_SLOTS + pcp_off(o)];
        }
        atomic_init(&c->refills, 0);
        atomic_init(&c->drains, 0);
        atomic_init(&c->steals, 0);
        atomic_init(&c->stolen, 0);
    }
}

size_t smp_pcp_cached_pages(const struct smp_pcp *c)
{
    size_t n = 0;
    for (unsigned o = 0; o < SMP_PCP_ORDERS; o++)
        n += (size_t)count_of(c, o) << o;
    return n;
}

/* Move up to a batch of order-o blocks from the buddy (cache held). */
static void refill(struct smp_pages *pg, struct smp_pcp *c, unsigned o)
{
    unsigned got = 0;
    smp_lock_acquire(&pg->zone.lock);
    for (; got < pg->batch[o] && count_of(c, o) < pcp_cap(o); got++) {
        uint32_t idx = smp_buddy_alloc_locked(pg, o);
        if (idx == SMP_NIL)
            break;
        push_top(pg, c, o, idx);
    }
    smp_lock_release(&pg->zone.lock);
    if (got)
        count_up(&c->refills);
}

/* Give up to n cold blocks of order o back to the buddy (cache held). */
static void drain(struct smp_pages *pg, struct smp_pcp *c, unsigned o, unsigned n)
{
    if (!n)
        return;
    smp_lock_acquire(&pg->zone.lock);
    for (unsigned i = 0; i < n; i++) {
        uint32_t idx = pop_bottom(c, o);
        if (idx == SMP_NIL)
            break;
        smp_buddy_free_locked(pg, idx, o);
    }
    smp_lock_release(&pg->zone.lock);
    count_up(&c->drains);
}

#define STEAL_MAX 64

struct steal {
    struct smp_pages *pg;
    unsigned order, want, n;
    uint32_t got[STEAL_MAX];
};

/* Cross-called for the victim: take up to half its blocks of the order,
 * from the cold end, marked ALLOC (in transit: ours now). */
static void steal_from(int cpu, void *arg)
{
    struct steal *s = arg;
    struct smp_pcp *vc = &s->pg->pcp[cpu];
    unsigned take = (count_of(vc, s->order) + 1) / 2;
    if (take > s->want)
        take = s->want;
    while (s->n < take) {
        uint32_t idx = pop_bottom(vc, s->order);
        if (idx == SMP_NIL)
            break;
        smp_set_state(smp_head(s->pg, idx), PG_ALLOC);
        s->got[s->n++] = idx;
    }
    if (s->n)
        count_up(&vc->stolen);
}

/* Own cache and the buddy are dry (we are outside our section): ask each
 * other CPU in turn that seems to have blocks of this order. */
static uint32_t steal(struct smp_pages *pg, int self, unsigned o)
{
    struct steal s;             /* got[] is filled before it is read: no zeroing (and no memset) */
    s.pg = pg;
    s.order = o;
    s.n = 0;
    s.want = 2 * pg->batch[o] < STEAL_MAX ? 2 * pg->batch[o] : STEAL_MAX;
    for (int k = 1; k < pg->ncpu && !s.n; k++) {
        int v = (self + k) % pg->ncpu;
        if (count_of(&pg->pcp[v], o))      /* a peek: only a hint */
            smp_on_cpu(v, steal_from, &s);
    }
    if (!s.n)
        return SMP_NIL;
    /* Home with the batch; our ring may have filled meanwhile (an
     * interrupt handler freed here), then the rest goes to the zone. */
    int cpu = smp_section_enter();
    struct smp_pcp *c = &pg->pcp[cpu];
    unsigned i = 1;
    for (; i < s.n && count_of(c, o) < pcp_cap(o); i++)
        push_top(pg, c, o, s.got[i]);
    if (i < s.n) {
        smp_lock_acquire(&pg->zone.lock);
        for (; i < s.n; i++)
            smp_buddy_free_locked(pg, s.got[i], o);
        smp_lock_release(&pg->zone.lock);
    }
    count_up(&c->steals);
    smp_section_exit(cpu);
    return s.got[0];
}

void *smp_pcp_alloc_slow(struct smp_pages *pg, int cpu, unsigned o)
{
    if (smp_section_check(cpu, pg->ncpu))
        return 0;                              /* not initialised */
    struct smp_pcp *c = &pg->pcp[cpu];
    uint32_t idx = pop_top(c, o);
    if (idx == SMP_NIL) {
        refill(pg, c, o);
        idx = pop_top(c, o);
    }
    if (idx != SMP_NIL)
        smp_set_state(smp_head(pg, idx), PG_ALLOC);
    smp_section_exit(cpu);
    if (idx == SMP_NIL)
        idx = steal(pg, cpu, o);
    if (idx != SMP_NIL)
        return (void *)smp_page_addr(pg, idx);
    return pg->pressure ? pg->pressure(pg, o) : 0;
}

void smp_pcp_free_slow(struct smp_pages *pg, int cpu, uint32_t idx, unsigned o)
{
    if (smp_section_check(cpu, pg->ncpu))
        smp_bad_cpu();                         /* a page inside the region: after init */
    struct smp_pcp *c = &pg->pcp[cpu];
    smp_pg_validate_free(pg, idx, o, "page_free");   /* panics on misuse */
    if (count_of(c, o) >= c->ring[o].high)
        drain(pg, c, o, pg->batch[o]);
    push_top(pg, c, o, idx);
    smp_section_exit(cpu);
}

void smp_pg_drain_cpu(struct smp_pages *pg, int cpu)
{
    struct smp_pcp *c = &pg->pcp[cpu];
    for (unsigned o = 0; o < SMP_PCP_ORDERS; o++)
        drain(pg, c, o, count_of(c, o));
}

/* Verify every cache ring (world stopped).  nheads_seen is the number of
 * PG_PCP heads the descriptor walk found: equal to the cached blocks iff
 * no cached block is missing from (or repeated in) a ring. */
int smp_pcp_check_frozen(struct smp_pages *pg, size_t nheads_seen)
{
    size_t blocks = 0;
    for (int cpu = 0; cpu < pg->ncpu; cpu++) {
        struct smp_pcp *c = &pg->pcp[cpu];
        for (unsigned o = 0; o < SMP_PCP_ORDERS; o++) {
            unsigned n = count_of(c, o);
            if (n > pcp_cap(o))
                return smp_check_fail(pg, SMP_NIL, "cpu cache ring count exceeds its capacity");
            for (uint32_t pos = bottom_of(c, o); pos != top_of(c, o); pos++) {
                uint32_t i = *slot(c, o, pos);
                if (i >= pg->npages)
                    return smp_check_fail(pg, SMP_NIL, "cpu cache holds an index outside the region");
                struct smp_page_head *d = smp_head(pg, i);
                if (smp_state(d) != PG_PCP)
                    return smp_check_fail(pg, i, "block in a cpu cache is not marked cached");
                if (d->order != o)
                    return smp_check_fail(pg, i, "block in the wrong order's cpu cache");
            }
            blocks += n;
        }
    }
    if (blocks != nheads_seen)
        return smp_check_fail(pg, SMP_NIL, "cached blocks missing from or repeated in cpu caches");
    return 0;
}
