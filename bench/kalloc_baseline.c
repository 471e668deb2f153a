/*
 * gslab: one global spinlock, slab arrays scanned for a free flag, and a
 * first-fit page-run list.  See kalloc_baseline.h for the contract and why
 * this exists.  Deliberately plain: every operation takes the one lock, and
 * finding memory means walking a list.
 *
 * Region layout: [uint32_t run_pages[npages] (page-run sizes by page index)]
 *                [pages ...]
 * A free page run keeps its list node (struct run) in its first page; a slab
 * keeps its header and used flags at the start of its page, objects after,
 * aligned to the object size, so no slab object is ever page-aligned and a
 * page-aligned pointer always names a page run.
 */
#define _GNU_SOURCE
#include "kalloc_baseline.h"

#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>

#define PAGE 4096UL
#define MIN_SHIFT 3                 /* 8 B */
#define NCLASS 9                    /* 8 .. 2048 B */

struct run {                        /* a free page run, in its first page */
    struct run *next;               /* next run by address */
    size_t npages;
};

struct slab {                       /* a slab page: header, flags, objects */
    struct slab *next;
    uint32_t size, nobj, used, off; /* off: first object, aligned to size */
    uint8_t inuse[];                /* one flag per object */
};

static atomic_int big_lock;         /* guards everything below */
static struct run *free_runs;       /* sorted by address */
static struct slab *slabs[NCLASS];
static uint32_t *run_pages;         /* pages of the run starting at a page */
static uintptr_t base;              /* page index 0 (of run_pages) */

static void lock(void)
{
    while (atomic_exchange_explicit(&big_lock, 1, memory_order_acquire))
        while (atomic_load_explicit(&big_lock, memory_order_relaxed))
            sched_yield();          /* threads outnumber cores here */
}

static void unlock(void)
{
    atomic_store_explicit(&big_lock, 0, memory_order_release);
}

/* First run that can hold n pages aligned to n pages; split the rest off. */
static void *take_pages(size_t n)
{
    uintptr_t bytes = n * PAGE;
    for (struct run **prevp = &free_runs; *prevp; prevp = &(*prevp)->next) {
        struct run *r = *prevp;
        uintptr_t s = (uintptr_t)r, e = s + r->npages * PAGE;
        uintptr_t a = (s + bytes - 1) & ~(bytes - 1);
        if (a + bytes > e)
            continue;
        struct run *chain = r->next;
        if (a + bytes < e) {
            struct run *right = (struct run *)(a + bytes);
            right->npages = (e - a - bytes) / PAGE;
            right->next = chain;
            chain = right;
        }
        if (a > s) {
            r->npages = (a - s) / PAGE;
            r->next = chain;
            chain = r;
        }
        *prevp = chain;
        run_pages[(a - base) / PAGE] = (uint32_t)n;
        return (void *)a;
    }
    return 0;
}

/* Insert a run by address and merge it with its neighbours. */
static void give_pages(void *p, size_t n)
{
    struct run *node = p, *prev = 0, **prevp = &free_runs;
    while (*prevp && *prevp < node) {
        prev = *prevp;
        prevp = &prev->next;
    }
    node->npages = n;
    node->next = *prevp;
    *prevp = node;
    if (node->next && (uintptr_t)node + node->npages * PAGE == (uintptr_t)node->next) {
        node->npages += node->next->npages;
        node->next = node->next->next;
    }
    if (prev && (uintptr_t)prev + prev->npages * PAGE == (uintptr_t)node) {
        prev->npages += node->npages;
        prev->next = node->next;
    }
}

int gslab_init(void *start, void *end)
{
    uintptr_t s = ((uintptr_t)start + PAGE - 1) & ~(PAGE - 1);
    uintptr_t e = (uintptr_t)end & ~(PAGE - 1);
    if (e <= s || (e - s) / PAGE < 64)
        return -1;
    size_t npages = (e - s) / PAGE;
    size_t meta = (npages * sizeof(uint32_t) + PAGE - 1) / PAGE;
    run_pages = (uint32_t *)s;      /* mmap'd: already zero */
    base = s;
    free_runs = 0;
    for (int c = 0; c < NCLASS; c++)
        slabs[c] = 0;
    give_pages((void *)(s + meta * PAGE), npages - meta);
    return 0;
}

static void *slab_alloc(int c)
{
    for (struct slab *sl = slabs[c]; sl; sl = sl->next) {
        if (sl->used == sl->nobj)
            continue;
        for (uint32_t i = 0; i < sl->nobj; i++) {
            if (!sl->inuse[i]) {
                sl->inuse[i] = 1;
                sl->used++;
                return (char *)sl + sl->off + (size_t)i * sl->size;
            }
        }
    }
    struct slab *sl = take_pages(1);
    if (!sl)
        return 0;
    uint32_t size = 1u << (c + MIN_SHIFT), n = PAGE / size;
    for (;; n--) {                  /* most objects that fit after the header */
        uint32_t off = (uint32_t)((sizeof *sl + n + size - 1) & ~(size - 1));
        if (off + (size_t)n * size <= PAGE) {
            sl->off = off;
            break;
        }
    }
    sl->size = size;
    sl->nobj = n;
    sl->used = 1;
    sl->inuse[0] = 1;
    for (uint32_t i = 1; i < n; i++)
        sl->inuse[i] = 0;
    sl->next = slabs[c];
    slabs[c] = sl;
    return (char *)sl + sl->off;
}

void *gslab_alloc(size_t size)
{
    if (size == 0)
        return 0;
    void *p;
    lock();
    if (size <= (1u << (MIN_SHIFT + NCLASS - 1))) {
        int c = 0;
        while ((1u << (c + MIN_SHIFT)) < size)
            c++;
        p = slab_alloc(c);
    } else {
        size_t n = 1;
        while (n * PAGE < size)
            n <<= 1;
        p = take_pages(n);
    }
    unlock();
    return p;
}

void gslab_free(void *p)
{
    if (!p)
        return;
    uintptr_t a = (uintptr_t)p;
    lock();
    if ((a & (PAGE - 1)) == 0) {
        size_t n = run_pages[(a - base) / PAGE];
        run_pages[(a - base) / PAGE] = 0;
        give_pages(p, n);
    } else {
        struct slab *sl = (struct slab *)(a & ~(PAGE - 1));
        uint32_t i = (uint32_t)((a - (uintptr_t)sl - sl->off) / sl->size);
        sl->inuse[i] = 0;
        sl->used--;
    }
    unlock();
}
