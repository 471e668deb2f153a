/*
 * Test-only metadata hooks (include/smpmem/pmm_debug.h): read or overwrite
 * one word of the page and object layers' books so the tests can prove
 * that smp_pmm_check catches each kind of corruption.  Nothing calls these
 * in a kernel; they are here, not in tests/, because only the top knows
 * both layers' layout.
 *
 * Locks: none.  The caller guarantees no other CPU is inside smpmem.
 */
#include "smpmem/pmm_debug.h"
#include "top.h"
#include "../base/fmt.h"

_Static_assert(SMP_DEBUG_PCP_ORDERS == SMP_PCP_ORDERS, "pmm_debug.h names the cached orders");

_Static_assert(SMP_DEBUG_NIL == SMP_NIL, "pmm_debug.h's NIL is the page layer's");

/* Where a field lives and how wide it is. */
enum kind { U8, U8_ATOMIC, U16, U32, U32_ATOMIC, UNSIGNED, UNSIGNED_ATOMIC, U64, PTR, UPTR, SIZE_ATOMIC,
             LOADED_COUNT /* p is a magazine slot, which keeps its count as room (obj.h) */ };

struct slot {
    void *p;
    enum kind kind;
    int readonly;
};

static _Noreturn void bad(const char *why)
{
    smp_panic("smp_pmm_debug", why);
}

static struct slot locate(enum smp_pmm_field f, int cpu, unsigned k, uint32_t i)
{
    struct smp_pmm *m = smp_pmm_state;
    if (!m)
        bad("smpmem is not initialised");
    struct smp_pages *pg = &m->pg;
    struct smp_objs *o = &m->obj;
    if (f <= SMP_DBG_PAGE_OWNER_BYTE && i >= pg->npages)
        bad("page index outside the region");
    int per_cpu = (f >= SMP_DBG_RING_TOP && f <= SMP_DBG_RING_CAP) ||
                  f == SMP_DBG_MAG_HEAD || f == SMP_DBG_MAG_COUNT || f == SMP_DBG_CPU_OBJ_CONST;
    if (per_cpu && (cpu < 0 || cpu >= pg->ncpu))
        bad("cpu outside 0..ncpu-1");
    if (!per_cpu)
        cpu = 0;
    if (f >= SMP_DBG_RING_TOP && f <= SMP_DBG_RING_CAP && k >= SMP_PCP_ORDERS)
        bad("ring order outside the cached orders");
    if (f >= SMP_DBG_MAG_HEAD && k >= SMP_KALLOC_CLASSES)
        bad("size class out of range");
    struct smp_page *d = &pg->pages[i < pg->npages ? i : 0];
    struct smp_page_head *h = smp_head(pg, i < pg->npages ? i : 0);
    struct smp_pcp_ring *r = &pg->pcp[cpu].ring[k < SMP_PCP_ORDERS ? k : 0];
    unsigned cls = k < SMP_KALLOC_CLASSES ? k : 0;
    struct smp_obj_cpu *c = &o->cpu[cpu];
    struct smp_depot *dep = &o->depot[cls];
    struct smp_slab_class *sc = &o->slab[cls];
    switch (f) {
    case SMP_DBG_PAGE_STATE:      return (struct slot){ &h->state, U8_ATOMIC, 0 };
    case SMP_DBG_PAGE_ORDER:      return (struct slot){ &h->order, U8, 0 };
    case SMP_DBG_PAGE_OWNER_TAG:  return (struct slot){ &d->owner_tag, U16, 0 };
    case SMP_DBG_PAGE_NEXT:       return (struct slot){ &d->next, U32, 0 };
    case SMP_DBG_PAGE_PREV:       return (struct slot){ &d->prev, U32, 0 };
    case SMP_DBG_PAGE_OWNER_U32:  return (struct slot){ &d->owner_u32, U32, 0 };
    case SMP_DBG_PAGE_OWNER_PTR:  return (struct slot){ &d->owner_ptr, PTR, 0 };
    case SMP_DBG_PAGE_OWNER_U64:  return (struct slot){ &d->owner_u64, U64, 0 };
    case SMP_DBG_PAGE_OWNER_BYTE: return (struct slot){ &pg->owner_byte[i < pg->npages ? i : 0], U8, 0 };
    case SMP_DBG_ZONE_HEAD:
        if (k > SMP_MAX_ORDER)
            bad("order above SMP_MAX_ORDER");
        return (struct slot){ &pg->zone.free_head[k], U32, 0 };
    case SMP_DBG_ZONE_FREE_PAGES: return (struct slot){ &pg->zone.free_pages, SIZE_ATOMIC, 0 };
    case SMP_DBG_ZONE_UNCARVED:   return (struct slot){ &pg->zone.uncarved, U32_ATOMIC, 0 };
    case SMP_DBG_RING_TOP:        return (struct slot){ &r->top, U32_ATOMIC, 0 };
    case SMP_DBG_RING_BOTTOM:     return (struct slot){ &r->bottom, U32_ATOMIC, 0 };
    case SMP_DBG_RING_SLOT:       return (struct slot){ &r->slots[i & r->mask], U32, 0 };
    case SMP_DBG_RING_CAP:        return (struct slot){ &r->mask, U32, 1 };   /* + 1 in get */
    case SMP_DBG_MAG_HEAD:
    case SMP_DBG_MAG_COUNT:
        if (i > 1)
            bad("magazine is 0 (loaded) or 1 (previous)");
        if (f == SMP_DBG_MAG_HEAD)
            return (struct slot){ i ? &c->previous[cls].head : &smp_slot_of(c, cls)->head, PTR, 0 };
        return i ? (struct slot){ &c->previous[cls].count, U32, 0 }
                 : (struct slot){ smp_slot_of(c, cls), LOADED_COUNT, 0 };
    case SMP_DBG_MAG_CAP:         return (struct slot){ &o->cap[cls], U32, 1 };
    case SMP_DBG_DEPOT_N:         return (struct slot){ &dep->n, UNSIGNED_ATOMIC, 0 };
    case SMP_DBG_DEPOT_MAX:       return (struct slot){ &dep->max, UNSIGNED, 0 };
    case SMP_DBG_DEPOT_HEAD:
    case SMP_DBG_DEPOT_COUNT:
    case SMP_DBG_DEPOT_FROM:
        if (i >= SMP_DEPOT_SLOTS)
            bad("depot slot out of range");
        return f == SMP_DBG_DEPOT_HEAD  ? (struct slot){ &dep->full[i].head, PTR, 0 }
             : f == SMP_DBG_DEPOT_COUNT ? (struct slot){ &dep->full[i].count, U32, 0 }
                                        : (struct slot){ &dep->from[i], U8, 0 };
    case SMP_DBG_SLAB_PARTIAL:    return (struct slot){ &sc->partial, U32, 0 };
    case SMP_DBG_SLAB_EMPTY:      return (struct slot){ &sc->empty, U32, 0 };
    case SMP_DBG_SLAB_NEMPTY:     return (struct slot){ &sc->nempty, UNSIGNED, 0 };
    case SMP_DBG_SLAB_NSLABS:     return (struct slot){ &sc->nslabs, UNSIGNED, 0 };
    case SMP_DBG_SLAB_ORDER:      return (struct slot){ &sc->order, UNSIGNED, 1 };
    case SMP_DBG_SLAB_PER_SLAB:   return (struct slot){ &sc->per_slab, UNSIGNED, 1 };
    case SMP_DBG_CPU_OBJ_CONST:
        switch (i) {
        case 0:  return (struct slot){ &c->base, UPTR, 0 };
        case 1:  return (struct slot){ &c->secret, UPTR, 0 };
        case 2:  return (struct slot){ &smp_slot_of(c, cls)->cap, U32, 0 };
        case 3:  return (struct slot){ &smp_slot_of(c, cls)->check, UPTR, 0 };
        default: bad("object-cache constant is 0..3");
        }
    }
    bad("unknown field");
}

static uint64_t load(struct slot s)
{
    switch (s.kind) {
    case U8:              return *(uint8_t *)s.p;
    case U8_ATOMIC:       return atomic_load_explicit((_Atomic uint8_t *)s.p, memory_order_relaxed);
    case U16:             return *(uint16_t *)s.p;
    case U32:             return *(uint32_t *)s.p;
    case U32_ATOMIC:      return atomic_load_explicit((_Atomic uint32_t *)s.p, memory_order_relaxed);
    case UNSIGNED:        return *(unsigned *)s.p;
    case UNSIGNED_ATOMIC: return atomic_load_explicit((_Atomic unsigned *)s.p, memory_order_relaxed);
    case U64:             return *(uint64_t *)s.p;
    case PTR:             return (uintptr_t)*(void **)s.p;
    case UPTR:            return *(uintptr_t *)s.p;
    case SIZE_ATOMIC:     return atomic_load_explicit((atomic_size_t *)s.p, memory_order_relaxed);
    case LOADED_COUNT: {
        const struct smp_mag_slot *m = s.p;
        return (uint32_t)(m->cap - m->room);
    }
    }
    return 0;
}

static void store(struct slot s, uint64_t v)
{
    switch (s.kind) {
    case U8:              *(uint8_t *)s.p = (uint8_t)v; break;
    case U8_ATOMIC:       atomic_store_explicit((_Atomic uint8_t *)s.p, (uint8_t)v, memory_order_relaxed); break;
    case U16:             *(uint16_t *)s.p = (uint16_t)v; break;
    case U32:             *(uint32_t *)s.p = (uint32_t)v; break;
    case U32_ATOMIC:      atomic_store_explicit((_Atomic uint32_t *)s.p, (uint32_t)v, memory_order_relaxed); break;
    case UNSIGNED:        *(unsigned *)s.p = (unsigned)v; break;
    case UNSIGNED_ATOMIC: atomic_store_explicit((_Atomic unsigned *)s.p, (unsigned)v, memory_order_relaxed); break;
    case U64:             *(uint64_t *)s.p = v; break;
    case PTR:             *(void **)s.p = (void *)(uintptr_t)v; break;
    case UPTR:            *(uintptr_t *)s.p = (uintptr_t)v; break;
    case SIZE_ATOMIC:     atomic_store_explicit((atomic_size_t *)s.p, (size_t)v, memory_order_relaxed); break;
    case LOADED_COUNT: {
        struct smp_mag_slot *m = s.p;
        m->room = m->cap - (uint32_t)v;
        break;
    }
    }
}

uint64_t smp_pmm_debug_get(enum smp_pmm_field field, int cpu, unsigned k, uint32_t i)
{
    struct slot s = locate(field, cpu, k, i);
    return load(s) + (field == SMP_DBG_RING_CAP);
}

uint64_t smp_pmm_debug_set(enum smp_pmm_field field, int cpu, unsigned k, uint32_t i, uint64_t v)
{
    struct slot s = locate(field, cpu, k, i);
    if (s.readonly)
        bad("field is read-only");
    uint64_t old = load(s);
    store(s, v);
    return old;
}

void *smp_pmm_debug_page_addr(uint32_t i)
{
    struct smp_pmm *m = smp_pmm_state;
    if (!m || i >= m->pg.npages)
        return 0;
    return (void *)smp_page_addr(&m->pg, i);
}

void *smp_pmm_debug_area(unsigned which)
{
    struct smp_pmm *m = smp_pmm_state;
    if (!m)
        return 0;
    switch (which) {
    case 0:  return m;
    case 1:  return smp_percpu.gate;
    case 2:  return m->obj.cpu;
    case 3:  return m->pg.pcp;
    default: bad("metadata area is 0..3");
    }
}

uint32_t smp_pmm_debug_page_index(const void *p)
{
    struct smp_pmm *m = smp_pmm_state;
    if (!m || !smp_pg_contains(&m->pg, (uintptr_t)p))
        return SMP_NIL;
    return smp_page_index(&m->pg, (uintptr_t)p);
}

void smp_pmm_debug_set_link(void *obj, const void *next)
{
    if (!smp_pmm_state)
        smp_panic("smp_pmm_debug", "smpmem is not initialised");
    smp_link_set(&smp_pmm_state->obj, obj, next);
}

void smp_pmm_debug_carve_all(void)
{
    struct smp_pmm *m = smp_pmm_state;
    if (!m)
        bad("smpmem is not initialised");
    smp_lock_acquire(&m->pg.zone.lock);
    smp_buddy_carve_all_locked(&m->pg);
    smp_lock_release(&m->pg.zone.lock);
}
