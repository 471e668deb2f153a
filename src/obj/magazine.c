/*
 * Magazine slow paths (fast paths: magazine.h).  Bonwick's scheme: when the
 * loaded magazine is empty (full), swap with the previous one if that helps;
 * otherwise exchange a whole magazine with the depot (its own first) under its
 * lock; only when the depot has none (is at its bound) do objects move to
 * or from the slabs, as a batch, outside the section.
 *
 * Lock order: section -> depot lock (taken inside the section); the slab
 * class lock is taken only after leaving the section.
 */
#include "magazine.h"
#include "../base/fmt.h"

#define IDLE_SLOT { .head = (void *)1, .room = 0, .cap = 0, .check = ~(uintptr_t)0 }
const struct smp_obj_cpu smp_obj_cpu_idle = {
    .slot = { IDLE_SLOT, IDLE_SLOT, IDLE_SLOT, IDLE_SLOT, IDLE_SLOT,
              IDLE_SLOT, IDLE_SLOT, IDLE_SLOT, IDLE_SLOT, IDLE_SLOT },
};
_Static_assert(SMP_KALLOC_CLASSES == 10, "smp_obj_cpu_idle names every slot");

/* Pop from this CPU's loaded magazine of cls (not empty). */
static void *pop(struct smp_objs *o, struct smp_obj_cpu *c, unsigned cls)
{
    struct smp_mag_slot *s = smp_slot_of(c, cls);
    void *p = s->head;
    s->head = smp_link_next(o, p);
    s->last = p;
    s->room++;
    return p;
}

/* No object of class cls and no new slab: memory is short, or so cut up
 * that no free block of the slab's order is left.  A class whose slabs
 * span several pages (1 KiB and up) then answers with one page instead,
 * a page block of the page layer: aligned to its size and so to the
 * class's, with owner byte 0, which sends its kfree to the pages (the top
 * routes by that byte, kalloc.c).  So kalloc of up to 4 KiB gives NULL
 * only when no page at all can be had, as it did when 4 KiB was a page
 * block. */
static void *page_instead(struct smp_objs *o, unsigned cls)
{
    return o->slab[cls].order ? smp_pg_alloc(o->pg, 0) : 0;
}

void *smp_obj_alloc_slow(size_t key, struct smp_objs *o, int cpu)
{
    unsigned cls = SMP_KEY_CLASS(key);
    if (smp_section_check(cpu, o->ncpu))
        return 0;                              /* not initialised */
    struct smp_obj_cpu *c = &o->cpu[cpu];
    struct smp_mag_slot *s = smp_slot_of(c, cls);
    void *p = s->head;
    if (p) {
        /* Not empty.  Either the fast path read an idle word (a cross-call
         * held this CPU, port.h) and the magazine is fine, or it found a
         * link that leads outside the region or off the class. */
        if (((uintptr_t)p - o->base) & s->check)
            smp_obj_bad_link(o, s->last, p);
        p = pop(o, c, cls);
        smp_section_exit(cpu);
        return p;
    }
    if (c->previous[cls].head) {
        struct smp_mag t = smp_loaded_get(c, cls);
        smp_loaded_set(c, cls, c->previous[cls]);
        c->previous[cls] = t;
        p = pop(o, c, cls);
        smp_section_exit(cpu);
        return p;
    }
    struct smp_mag got;
    if (smp_depot_get(o, cls, &got, cpu)) {
        smp_loaded_set(c, cls, got);
        p = pop(o, c, cls);
        smp_section_exit(cpu);
        return p;
    }
    smp_section_exit(cpu);

    void *chain;
    unsigned n = smp_slab_take(o, cls, o->cap[cls], &chain);
    if (!n)
        return page_instead(o, cls);
    p = chain;
    chain = smp_link_next(o, p);
    if (--n) {
        /* Load the rest.  We left the section, so our magazines may have
         * changed meanwhile (an interrupt handler, or we migrated and this
         * is another CPU): fill an empty one or give the batch back. */
        struct smp_mag fresh = { chain, n };
        cpu = smp_section_enter();
        c = &o->cpu[cpu];
        if (!smp_slot_of(c, cls)->head) {
            smp_loaded_set(c, cls, fresh);
            fresh.head = 0;
        } else if (!c->previous[cls].head) {
            c->previous[cls] = fresh;
            fresh.head = 0;
        }
        smp_section_exit(cpu);
        if (fresh.head)
            smp_slab_give(o, cls, fresh.head, fresh.count);
    }
    return p;
}

_Noreturn void smp_obj_bad_link(const struct smp_objs *o, const void *obj, const void *next)
{
    (void)o;
    (void)next;
    smp_panic_at("kalloc", (uintptr_t)obj,
                 "free object corrupted: its free-list link was overwritten while it was free "
                 "(use after free, or an overflow from the object before it)");
}

void smp_obj_free_slow(void *p, size_t key, struct smp_objs *o, int cpu)
{
    unsigned cls = SMP_KEY_CLASS(key);
    if (smp_section_check(cpu, o->ncpu))
        smp_bad_cpu();                         /* kfree reaches here only after init */
    struct smp_obj_cpu *c = &o->cpu[cpu];
    struct smp_mag_slot *s = smp_slot_of(c, cls);
    if (p == s->head)
        smp_panic_at("kfree", (uintptr_t)p, "double free: the object is already free in this CPU's cache");
    if (s->room) {                             /* an idle word sent the fast path here (port.h) */
        smp_link_set(o, p, s->head);
        s->head = p;
        s->room--;
        smp_section_exit(cpu);
        return;
    }
    struct smp_mag full = c->previous[cls];
    c->previous[cls] = smp_loaded_get(c, cls);
    smp_link_set(o, p, 0);
    smp_loaded_set(c, cls, (struct smp_mag){ p, 1 });
    if (full.head && smp_depot_put(o, cls, full, cpu))
        full.head = 0;
    smp_section_exit(cpu);
    if (full.head)
        smp_slab_give(o, cls, full.head, full.count);
}

void smp_obj_flush_cpu(struct smp_objs *o, int cpu)
{
    struct smp_obj_cpu *c = &o->cpu[cpu];
    for (unsigned cls = 0; cls < SMP_KALLOC_CLASSES; cls++) {
        struct smp_mag a = smp_loaded_get(c, cls), b = c->previous[cls];
        c->previous[cls] = (struct smp_mag){ 0, 0 };
        smp_loaded_set(c, cls, c->previous[cls]);
        if (a.head)
            smp_slab_give_to(o, cls, a.head, a.count, smp_pg_zone_free);
        if (b.head)
            smp_slab_give_to(o, cls, b.head, b.count, smp_pg_zone_free);
    }
}
