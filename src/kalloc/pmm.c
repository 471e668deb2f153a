/*
 * Region setup, drain, check and reclaim: the work that spans the layers
 * (lock order: top.h).  Drain, check and reclaim run with the world stopped
 * (smp_on_all_cpus): every CPU's caches are ours at once, so the check is
 * exact and a reclaim's freed pages cannot be taken back by another CPU
 * before the allocation that needed them.
 */
#include "top.h"
#include "../base/fmt.h"

struct smp_pmm *smp_pmm_state;
static struct smp_pmm none;          /* span 0: contains no address */
struct smp_pmm *smp_pmm_live = &none;

#ifdef SMP_PORT_HAS_CPU_WORDS
/* What every CPU's words are while no region is live (port.h): caches
 * whose fast-path tests all fail. */
void *const smp_cpu_words_idle[SMP_CPU_WORDS] = {
    [SMP_PCP_WORD] = (void *)&smp_pcp_idle,
    [SMP_OBJ_WORD] = (void *)&smp_obj_cpu_idle,
};
#endif

/* Each CPU's words (base/percpu.h): its caches, or the idle ones. */
static void publish_words(struct smp_pmm *m, bool live)
{
#ifdef SMP_PORT_HAS_CPU_WORDS
    for (int cpu = 0; cpu < m->pg.ncpu; cpu++) {
        smp_percpu_publish(cpu, SMP_PCP_WORD, live ? (void *)&m->pg.pcp[cpu] : smp_cpu_words_idle[SMP_PCP_WORD]);
        smp_percpu_publish(cpu, SMP_OBJ_WORD, live ? (void *)&m->obj.cpu[cpu] : smp_cpu_words_idle[SMP_OBJ_WORD]);
    }
#else
    (void)m, (void)live;
#endif
}

static uintptr_t align_up(uintptr_t v, uintptr_t a) { return (v + a - 1) & ~(a - 1); }

int smp_pmm_init_flags(void *start, void *end, int ncpu, unsigned flags)
{
    if (smp_pmm_state)
        return SMP_EBUSY;
    if (!start || !end || ncpu < 1 || ncpu > SMP_MAX_CPUS || (flags & ~SMP_INIT_ZEROED))
        return SMP_EINVAL;
    uintptr_t s = (uintptr_t)start, e = (uintptr_t)end;
    if (e <= s)
        return SMP_EINVAL;
    /* The header, the gates and the object caches each start a colour
     * into a page, not at a page boundary (page/page.h says why; the
     * header's colour took the pages workload at 1 thread from 177 to 201
     * Mops/s, medians of 15 interleaved runs). */
    uintptr_t hdr = smp_colour_up(s, SMP_META_COLOUR);
    _Static_assert(SMP_META_COLOUR % _Alignof(struct smp_pmm) == 0, "the colour keeps the header aligned");
    uintptr_t owner = hdr + sizeof(struct smp_pmm);
    size_t owner_len = align_up(((e - s) >> SMP_PAGE_SHIFT) + 1, 8);
    uintptr_t gates = smp_colour_up(owner + owner_len, SMP_CPU_COLOUR);
    uintptr_t objcpu = smp_colour_up(gates + smp_percpu_bytes(ncpu), SMP_CPU_COLOUR);
    uintptr_t rest = objcpu + smp_obj_percpu_bytes(ncpu);
    if (hdr < s || owner < hdr || rest < owner || rest >= e)
        return SMP_ERANGE;
    struct smp_pmm *m = (struct smp_pmm *)hdr;
    /* The header is small; clear it whatever the flags say. */
    for (uint64_t *w = (uint64_t *)m; w < (uint64_t *)(m + 1); w++)
        *w = 0;
    _Static_assert(sizeof(struct smp_pmm) % 8 == 0, "the owner bytes start word-aligned");
    int rc = smp_pg_init(&m->pg, rest, e, ncpu, flags & SMP_INIT_ZEROED, m->owner, owner_len);
    if (rc)
        return rc;
    smp_percpu_init(ncpu, (void *)gates);
    smp_obj_init(&m->obj, &m->pg, ncpu, (void *)objcpu);
    m->pg.pressure = smp_pages_under_pressure;
    for (unsigned k = 0; k < 256; k++)          /* indexed by owner byte: a slot key or nothing */
        m->kfree_mask[k] = ~(uintptr_t)0;
    for (unsigned cls = 0; cls < SMP_KALLOC_CLASSES; cls++)
        m->kfree_mask[SMP_SLOT_KEY(cls)] = smp_class_size(cls) - 1;
    m->region_lo = start;
    m->region_hi = end;
    smp_quarantine_init(m);
    publish_words(m, true);        /* last: then the fast paths use the caches */
    smp_pmm_state = m;
    smp_pmm_live = m;
    return 0;
}

int smp_pmm_init(void *start, void *end, int ncpu)
{
    return smp_pmm_init_flags(start, end, ncpu, 0);
}

void smp_pmm_reset(void)
{
    struct smp_pmm *m = smp_pmm_state;
    if (!m)
        return;
    smp_lock_forget_range(m->region_lo, m->region_hi);
    publish_words(m, false);
    smp_percpu_reset();
    smp_pmm_state = 0;
    smp_pmm_live = &none;
}

struct reclaim {
    struct smp_pmm *m;
    int order;
    void *got;
};

/* World stopped: top down, objects to slabs, empty slabs and cached pages
 * to the zone; then the allocation that needed the memory. */
static void reclaim_all(int unused, void *arg)
{
    (void)unused;
    struct reclaim *r = arg;
    struct smp_pmm *m = r->m;
    for (int cpu = 0; cpu < m->pg.ncpu; cpu++)
        smp_obj_flush_cpu(&m->obj, cpu);
    smp_depot_flush(&m->obj);
    smp_slab_release_empty(&m->obj, smp_pg_zone_free);
    for (int cpu = 0; cpu < m->pg.ncpu; cpu++)
        smp_pg_drain_cpu(&m->pg, cpu);
    if (r->order >= 0)
        r->got = smp_pg_zone_alloc(&m->pg, (unsigned)r->order);
}

void *smp_reclaim_and_alloc(struct smp_pmm *m, int order)
{
    struct reclaim r = { m, order, 0 };
    smp_on_all_cpus(reclaim_all, &r);
    return r.got;
}

void smp_pmm_drain(void)
{
    if (!smp_pmm_state)
        return;
    smp_quarantine_flush(smp_pmm_state);
    smp_reclaim_and_alloc(smp_pmm_state, -1);
}

struct check {
    struct smp_pmm *m;
    struct smp_obj_census census;
    int rc;
};

static int check_owned(void *ctx, uint32_t idx)
{
    struct check *k = ctx;
    return smp_slab_check_one(&k->m->obj, idx, &k->census);
}

static void check_all(int unused, void *arg)
{
    (void)unused;
    struct check *k = arg;
    smp_slab_lock_all(&k->m->obj);
    smp_depot_lock_all(&k->m->obj);
    k->rc = smp_pg_check_frozen(&k->m->pg, check_owned, k);
    if (!k->rc)
        k->rc = smp_obj_check_frozen(&k->m->obj, &k->census);
    smp_depot_unlock_all(&k->m->obj);
    smp_slab_unlock_all(&k->m->obj);
}

int smp_pmm_check(void)
{
    struct smp_pmm *m = smp_pmm_state;
    if (!m)
        return SMP_EINVAL;
    struct check k;             /* zeroed by a loop: an initialiser may become a memset call */
    k.m = m;
    k.rc = 0;
    for (unsigned c = 0; c < SMP_KALLOC_CLASSES; c++)
        k.census.slabs[c] = k.census.inuse[c] = 0;
    smp_on_all_cpus(check_all, &k);
    return k.rc;
}

size_t smp_pmm_total_pages(void)
{
    return smp_pmm_state ? smp_pmm_state->pg.npages : 0;
}

unsigned smp_pmm_max_order(void)
{
    return smp_pmm_state ? smp_pmm_state->pg.max_order : 0;
}

size_t smp_pmm_free_pages(void)
{
    return smp_pmm_state ? smp_pg_free_pages(&smp_pmm_state->pg) : 0;
}

int smp_pmm_cpu_stats(int cpu, struct smp_pcp_stats *out)
{
    struct smp_pmm *m = smp_pmm_state;
    if (!m || cpu < 0 || cpu >= m->pg.ncpu || !out)
        return SMP_EINVAL;
    struct smp_pcp *c = &m->pg.pcp[cpu];
    out->cached_pages = smp_pcp_cached_pages(c);
    out->refills = atomic_load_explicit(&c->refills, memory_order_relaxed);
    out->drains = atomic_load_explicit(&c->drains, memory_order_relaxed);
    out->steals = atomic_load_explicit(&c->steals, memory_order_relaxed);
    out->stolen = atomic_load_explicit(&c->stolen, memory_order_relaxed);
    return 0;
}

int smp_kalloc_stats(int cpu, struct smp_kalloc_stats *out)
{
    struct smp_pmm *m = smp_pmm_state;
    if (!m || !out || cpu < -1 || cpu >= m->pg.ncpu)
        return SMP_EINVAL;
    smp_obj_stats(&m->obj, cpu, out);
    return 0;
}
