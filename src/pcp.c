/*
 * Per-CPU page caches in front of the buddy zone (Linux's pcp lists; the
 * MIT lock lab's per-CPU free lists with stealing).
 *
 * Lock order:
 *   1. pcp[cpu].lock   (this CPU's own cache)
 *   2. zone.lock       (taken inside 1 for batch refill and drain)
 * Never two pcp locks at once here: a steal releases its own lock before it
 * locks a victim, and moves the stolen batch home after releasing the victim.
 * (smp_pmm_check alone holds every pcp lock, taken in increasing CPU id.)
 *
 * pcp[c].lock protects head/tail of that cache and the PG_PCP descriptors on
 * it.  Any CPU may take it (steal, drain), but the owner is the usual taker,
 * so on the fast path the lock is uncontended and its cache line stays home.
 *
 * Each order's list is doubly linked: allocation pops the hot head (LIFO,
 * cache-warm), drain and steal take from the cold tail.
 */
#include "pmm_internal.h"
#include "fmt.h"
#include "lock_inline.h"

static void bump(atomic_ulong *c)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

static unsigned count_of(struct smp_pcp *c, unsigned o)
{
    return atomic_load_explicit(&c->count[o], memory_order_relaxed);
}

static void set_count(struct smp_pcp *c, unsigned o, unsigned v)
{
    atomic_store_explicit(&c->count[o], v, memory_order_relaxed);
}

static void push_head(struct smp_pmm *m, struct smp_pcp *c, int cpu, unsigned o, uint32_t idx)
{
    struct smp_page *pg = &m->pages[idx];
    smp_set_state(pg, PG_PCP);
    pg->order = (uint8_t)o;
    pg->cpu = (uint8_t)cpu;
    pg->prev = SMP_NIL;
    pg->next = c->head[o];
    if (c->head[o] != SMP_NIL)
        m->pages[c->head[o]].prev = idx;
    else
        c->tail[o] = idx;
    c->head[o] = idx;
    set_count(c, o, count_of(c, o) + 1);
}

static uint32_t pop_head(struct smp_pmm *m, struct smp_pcp *c, unsigned o)
{
    uint32_t idx = c->head[o];
    if (idx == SMP_NIL)
        return SMP_NIL;
    c->head[o] = m->pages[idx].next;
    if (c->head[o] != SMP_NIL)
        m->pages[c->head[o]].prev = SMP_NIL;
    else
        c->tail[o] = SMP_NIL;
    set_count(c, o, count_of(c, o) - 1);
    return idx;
}

static uint32_t pop_tail(struct smp_pmm *m, struct smp_pcp *c, unsigned o)
{
    uint32_t idx = c->tail[o];
    if (idx == SMP_NIL)
        return SMP_NIL;
    c->tail[o] = m->pages[idx].prev;
    if (c->tail[o] != SMP_NIL)
        m->pages[c->tail[o]].next = SMP_NIL;
    else
        c->head[o] = SMP_NIL;
    set_count(c, o, count_of(c, o) - 1);
    return idx;
}

void smp_pcp_init(struct smp_pmm *m)
{
    /* Batch and high watermark per order, in blocks.  The order-0 high mark
     * scales with the region so that all CPUs together cache at most about
     * 1/8 of it, but never below 96 pages (a 64-page burst plus a batch
     * must fit without ping-ponging pages through the zone lock). */
    size_t share = m->npages / (8 * (size_t)m->ncpu);
    unsigned high0 = share < 96 ? 96 : share > 1024 ? 1024 : (unsigned)share;
    for (unsigned o = 0; o < SMP_PCP_ORDERS; o++) {
        unsigned b = 32 >> o;
        m->pcp_batch[o] = b ? b : 1;
        unsigned h = high0 >> o;
        m->pcp_high[o] = h < 2 * m->pcp_batch[o] ? 2 * m->pcp_batch[o] : h;
    }
    for (int cpu = 0; cpu < m->ncpu; cpu++) {
        struct smp_pcp *c = &m->pcp[cpu];
        struct smp_fmt f;
        smp_fmt_init(&f, c->name, sizeof c->name);
        smp_fmt_str(&f, "kmem.cpu");
        smp_fmt_dec(&f, (uint64_t)cpu);
        smp_lock_init(&c->lock, c->name);
        for (unsigned o = 0; o < SMP_PCP_ORDERS; o++) {
            c->head[o] = c->tail[o] = SMP_NIL;
            atomic_init(&c->count[o], 0);
        }
        atomic_init(&c->refills, 0);
        atomic_init(&c->drains, 0);
        atomic_init(&c->steals, 0);
        atomic_init(&c->stolen, 0);
    }
}

static struct smp_pcp *this_cpu(struct smp_pmm *m, int *cpu)
{
    int id = smp_port_cpu_id();
    if (id < 0 || id >= m->ncpu)
        smp_panic("pcp", "smp_port_cpu_id() outside 0..ncpu-1 given to pmm_init");
    *cpu = id;
    return &m->pcp[id];
}

/* Move up to `batch` blocks of order o from the buddy; c->lock held. */
static void refill_locked(struct smp_pmm *m, struct smp_pcp *c, int cpu, unsigned o)
{
    unsigned got = 0;
    smp_lock_acquire(&m->zone.lock);
    for (; got < m->pcp_batch[o]; got++) {
        uint32_t idx = smp_buddy_alloc_locked(m, o);
        if (idx == SMP_NIL)
            break;
        push_head(m, c, cpu, o, idx);
    }
    smp_lock_release(&m->zone.lock);
    if (got)
        bump(&c->refills);
}

/* Give `n` cold blocks of order o back to the buddy; c->lock held. */
static void drain_locked(struct smp_pmm *m, struct smp_pcp *c, unsigned o, unsigned n)
{
    if (!n)
        return;
    smp_lock_acquire(&m->zone.lock);
    for (unsigned i = 0; i < n; i++) {
        uint32_t idx = pop_tail(m, c, o);
        if (idx == SMP_NIL)
            break;
        smp_buddy_free_locked(m, idx, o);
    }
    smp_lock_release(&m->zone.lock);
    bump(&c->drains);
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
            uint32_t idx = pop_tail(m, vc, o);
            if (idx == SMP_NIL)
                break;
            smp_set_state(&m->pages[idx], PG_ALLOC);   /* in transit: owned by us */
            batch[n++] = idx;
        }
        if (n)
            bump(&vc->stolen);
        smp_lock_release(&vc->lock);
        if (!n)
            continue;
        struct smp_pcp *c = &m->pcp[self];
        smp_lock_acquire(&c->lock);
        for (unsigned i = 1; i < n; i++)
            push_head(m, c, self, o, batch[i]);
        bump(&c->steals);
        smp_lock_release(&c->lock);
        return batch[0];
    }
    return SMP_NIL;
}

uint32_t smp_pcp_alloc(struct smp_pmm *m, unsigned o)
{
    int cpu;
    smp_port_irq_push();   /* keep this CPU (and its id) while we work */
    struct smp_pcp *c = this_cpu(m, &cpu);
    smp_lock_acquire_on(&c->lock, cpu);
    uint32_t idx = pop_head(m, c, o);
    if (idx == SMP_NIL) {
        refill_locked(m, c, cpu, o);
        idx = pop_head(m, c, o);
    }
    if (idx != SMP_NIL)
        smp_set_state(&m->pages[idx], PG_ALLOC);
    smp_lock_release_on(&c->lock, cpu);
    if (idx == SMP_NIL)
        idx = steal(m, cpu, o);
    smp_port_irq_pop();
    return idx;
}

void smp_pcp_free(struct smp_pmm *m, uint32_t idx, unsigned o)
{
    int cpu;
    smp_port_irq_push();
    struct smp_pcp *c = this_cpu(m, &cpu);
    smp_lock_acquire_on(&c->lock, cpu);
    smp_page_validate_free(m, idx, o, "page_free");
    push_head(m, c, cpu, o, idx);
    if (count_of(c, o) > m->pcp_high[o])
        drain_locked(m, c, o, m->pcp_batch[o]);
    smp_lock_release_on(&c->lock, cpu);
    smp_port_irq_pop();
}

void smp_pcp_drain_cpu(struct smp_pmm *m, int cpu)
{
    struct smp_pcp *c = &m->pcp[cpu];
    smp_lock_acquire(&c->lock);
    for (unsigned o = 0; o < SMP_PCP_ORDERS; o++)
        drain_locked(m, c, o, count_of(c, o));
    smp_lock_release(&c->lock);
}

/* Verify every cache list; every pcp lock held.  nheads_seen is the number
 * of PG_PCP heads the descriptor walk found: equal to the listed blocks iff
 * no cached block is missing from (or repeated on) a list. */
int smp_pcp_check_locked(struct smp_pmm *m, size_t nheads_seen)
{
    size_t blocks = 0;
    for (int cpu = 0; cpu < m->ncpu; cpu++) {
        struct smp_pcp *c = &m->pcp[cpu];
        for (unsigned o = 0; o < SMP_PCP_ORDERS; o++) {
            unsigned n = 0;
            uint32_t prev = SMP_NIL;
            for (uint32_t i = c->head[o]; i != SMP_NIL; i = m->pages[i].next) {
                if (i >= m->npages)
                    return smp_check_fail(m, prev, "cpu cache link points outside the region");
                struct smp_page *pg = &m->pages[i];
                if (smp_state(pg) != PG_PCP)
                    return smp_check_fail(m, i, "block on a cpu cache is not marked cached");
                if (pg->order != o)
                    return smp_check_fail(m, i, "block on the wrong order's cpu cache");
                if (pg->cpu != cpu)
                    return smp_check_fail(m, i, "cached block names another cpu");
                if (pg->prev != prev)
                    return smp_check_fail(m, i, "cpu cache back link broken");
                if (++n > m->npages)
                    return smp_check_fail(m, i, "cpu cache list has a cycle");
                prev = i;
            }
            if (prev != c->tail[o])
                return smp_check_fail(m, prev, "cpu cache tail pointer wrong");
            if (n != count_of(c, o))
                return smp_check_fail(m, c->head[o], "cpu cache count disagrees with list");
            blocks += n;
        }
    }
    if (blocks != nheads_seen)
        return smp_check_fail(m, SMP_NIL, "cached blocks missing from cpu cache lists");
    return 0;
}
