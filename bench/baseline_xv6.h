/*
 * Baseline (a): stock xv6 kalloc, rebuilt for the hosted benchmarks.
 *
 * One global spinlock ("kmem", xv6's name) over a singly linked list of free
 * 4 KiB pages; the link lives in the first word of each free page.  Exactly
 * xv6's kernel/kalloc.c structure, with two deliberate differences so the
 * comparison with smpmem measures structure, not extras:
 *   - no junk fill (xv6 memsets 4 KiB on every kalloc and kfree; smpmem
 *     does not, and that memset alone would dominate the figures);
 *   - the lock is a struct smp_spinlock, which pushes interrupts off through
 *     the port exactly as smpmem's locks do and counts contended spins, so
 *     smp_lock_contended("kmem") reports this allocator too.
 *
 * Interface (header-only; include from one bench_*.c):
 *   xv6_kinit(k, start, end)   carve [start, end) (rounded inward) into pages
 *   xv6_kalloc(k)              a page, or NULL when the list is empty
 *   xv6_kfree(k, p)            give a page back (panics on a bad address)
 *   xv6_count_free(k)          walk the list (not thread-safe w.r.t. users)
 * Any number of CPUs may call xv6_kalloc/xv6_kfree concurrently.
 */
#ifndef SMPMEM_BENCH_BASELINE_XV6_H
#define SMPMEM_BENCH_BASELINE_XV6_H

#include <stddef.h>
#include <stdint.h>
#include <smpmem/port.h>
#include <smpmem/spinlock.h>

#define XV6_PGSIZE 4096UL

struct xv6_run { struct xv6_run *next; };

struct xv6_kmem {
    struct smp_spinlock lock;
    struct xv6_run *freelist;   /* lock must be held when using this */
    char *lo, *hi;              /* managed pages: [lo, hi) */
};

static inline void xv6_kfree(struct xv6_kmem *k, void *pa)
{
    char *p = pa;
    if (((uintptr_t)p % XV6_PGSIZE) != 0 || p < k->lo || p >= k->hi)
        smp_port_panic("xv6_kfree: bad page address");
    struct xv6_run *r = pa;
    smp_lock_acquire(&k->lock);
    r->next = k->freelist;
    k->freelist = r;
    smp_lock_release(&k->lock);
}

static inline void *xv6_kalloc(struct xv6_kmem *k)
{
    smp_lock_acquire(&k->lock);
    struct xv6_run *r = k->freelist;
    if (r)
        k->freelist = r->next;
    smp_lock_release(&k->lock);
    return r;
}

static inline void xv6_kinit(struct xv6_kmem *k, void *start, void *end)
{
    smp_lock_init(&k->lock, "kmem");
    k->freelist = NULL;
    uintptr_t s = ((uintptr_t)start + XV6_PGSIZE - 1) & ~(XV6_PGSIZE - 1);
    uintptr_t e = (uintptr_t)end & ~(XV6_PGSIZE - 1);
    k->lo = (char *)s;
    k->hi = (char *)(e > s ? e : s);
    /* freerange: lowest page ends up last on the list, as in xv6. */
    for (char *p = k->lo; p + XV6_PGSIZE <= k->hi; p += XV6_PGSIZE)
        xv6_kfree(k, p);
}

static inline size_t xv6_count_free(struct xv6_kmem *k)
{
    size_t n = 0;
    smp_lock_acquire(&k->lock);
    for (struct xv6_run *r = k->freelist; r; r = r->next)
        n++;
    smp_lock_release(&k->lock);
    return n;
}

#endif
