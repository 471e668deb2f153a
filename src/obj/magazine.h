/*
 * The kalloc/kfree fast path for small sizes: this CPU's loaded magazine
 * of the class, inside one section (base/percpu.h): no lock, no atomic
 * read-modify-write, no fence, no statistics.  An empty or full magazine is
 * a tail call into magazine.c, which finishes the operation.
 */
#ifndef SMPMEM_MAGAZINE_H
#define SMPMEM_MAGAZINE_H

#include "obj.h"

/* An object of the class whose slot key is `key` (SMP_SLOT_KEY: what
 * smp_key_table gives kalloc), or NULL when no page can be had for a new
 * slab (the caller may reclaim from above and retry).  objs() gives the
 * layer's state.  It is a function, inlined, not a pointer, so that where
 * the port keeps the core's words (the fast path then reads only this
 * CPU's caches) the state is loaded on the slow path alone: an argument
 * would be loaded before the section's push, which the compiler may not
 * move a load across. */
SMP_FAST void *smp_obj_alloc(struct smp_objs *(*objs)(void), size_t key)
{
    struct smp_fast_section sec = smp_section_enter_fast();
    struct smp_obj_cpu *c;
    struct smp_mag_slot *s;
    void *p;
    /* One test, one slow call: an unknown CPU id (also: not initialised),
     * an empty magazine (NULL) or a corrupt link (outside the region, or
     * off the class's alignment: check, struct smp_mag_slot); the slow
     * path tells which. */
    if (__builtin_expect(!(c = smp_section_local(sec, SMP_OBJ_WORD, objs()->cpu_at, objs()->ncpu)) ||
                         (s = smp_slot(c, key), p = s->head, ((uintptr_t)p - c->base) & s->check), 0))
        return smp_obj_alloc_slow(key, objs(), smp_section_cpu(sec));
    void *next = smp_link_decode(c->secret, p);
    /* The next pop reads next's link: start that load now.  Objects freed
     * by another CPU are cold here, and the caller is about to spend time
     * with p anyway.  (A prefetch of a bad pointer does not fault; the
     * check at the next pop still decides.) */
    __builtin_prefetch(next);
    s->head = next;
    s->last = p;
    s->room++;
    smp_section_exit_fast(sec);
    return p;
}

/* Free p, an object of the class whose slot key is `key` (the page's owner
 * byte; validated by the caller), on this CPU, whichever CPU allocated it:
 * a remote free costs what a local one does. */
SMP_FAST void smp_obj_free(struct smp_objs *o, size_t key, void *p)
{
    struct smp_fast_section sec = smp_section_enter_fast();
    struct smp_obj_cpu *c;
    struct smp_mag_slot *s;
    /* Slow: an unknown CPU id, p freed again on top of the magazine, or a
     * full one (room 0).  The room is read through a volatile lvalue only
     * to steer GCC: it would otherwise load it into a register, test it and
     * store it back decremented (five instructions) where a test and a
     * decrement in memory take three (clang does this unasked). */
    if (__builtin_expect(!(c = smp_section_local(sec, SMP_OBJ_WORD, o->cpu_at, o->ncpu)) ||
                         (s = smp_slot(c, key), p == s->head || !*(volatile uint32_t *)&s->room), 0)) {
        smp_obj_free_slow(p, key, o, smp_section_cpu(sec));
        return;
    }
    smp_link_set(o, p, s->head);
    s->head = p;
    s->room--;
    smp_section_exit_fast(sec);
}

#endif
