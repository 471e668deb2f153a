/*
 * The malloc front end's thread cache: the vCPU's compare-and-swap once
 * per batch (malloc.c has the calls; tcache.c the slow paths).
 *
 * A CAS per call is most of a malloc/free pair's cost, and a vCPU held by
 * a thread the kernel preempted is lost to its core's other threads until
 * that thread runs again: the fewer entries, the better.  So small blocks
 * (16 B .. 2 KiB, the core's slab classes but 4 KiB) pass through a per-thread front,
 * and a thread reuses the blocks it frees:
 *
 *   free     asks the core for p's class (smp_kalloc_small_size: a bounds
 *            test and one byte of a dense per-page array; no vCPU).  0 --
 *            a page block, or anything kfree must judge: a pointer outside
 *            the heap, inside a block, ... -- goes straight to kfree.  A
 *            slab object is marked free (the double-free word) and appended
 *            to an unsorted buffer, its class in the pointer's low 4 bits
 *            (blocks are 16-aligned).
 *   sort     when the buffer fills (64 frees): each block goes onto its
 *            class's array, up to the class's bound; what does not fit goes
 *            to kfree in one vCPU entry.
 *   malloc   pops its class's array: a block this thread freed lately,
 *            still in its core's cache.  An empty array is refilled with one
 *            batch of kallocs in one vCPU entry.
 *
 * The buffer comes first on purpose: a block freed here but allocated by
 * another thread (whose blocks share its cache line) is not handed to this
 * thread's very next malloc, whose writes would then share the line with
 * the other thread's (passive false sharing); the next malloc takes a
 * fresh batch instead, and the block is sorted only 64 frees later.
 *
 * Bounds: TC_LIMIT(c) blocks per class -- 32 of each class up to 1 KiB,
 * 16 of 2 KiB: at most 95.5 KiB -- plus the 64 frees in the buffer.  A
 * refill takes at most 8 KiB (TC_BATCH: 16 blocks, 8 of 1 KiB, 4 of 2 KiB).
 * (32 of 1 KiB, not 16: half of larson's blocks are of that class, and
 * with 16 it ran 1.3x slower, overflowing to kfree and refilling.)  A
 * thread that exits gives it all back (a pthread key destructor), and later
 * calls of that thread bypass the cache.  Blocks in the cache are allocated as far as the
 * core knows and marked free as far as the front end knows (malloc clears
 * the mark when it hands one out), so a second free of a cached block is
 * reported like any double free.  The arrays live in the thread's TLS, not
 * in the blocks: sorting and popping touch no block. */
#ifndef SMPMEM_MALLOC_TCACHE_H
#define SMPMEM_MALLOC_TCACHE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include "malloc_internal.h"

#define TC_CLASSES 8                 /* 16 << c bytes */
/* The largest block the front caches.  The core's classes go on to 4 KiB
 * (smp_kalloc_small_size answers 4096 for those), which the front leaves
 * to kfree: its arrays would hold 64 KiB of them per thread. */
#define TC_MAX_BLOCK ((size_t)16 << (TC_CLASSES - 1))
/* Whether a small size from smp_kalloc_small_size is one the front takes
 * (0, a page block or a bad pointer, is not): one compare. */
static inline int tc_takes(size_t size) { return size - MIN_BLOCK <= TC_MAX_BLOCK - MIN_BLOCK; }
#define TC_PENDING 64
#define TC_BATCH(c) ((c) <= 5 ? 16u : 16u >> ((c) - 5))   /* <= 8 KiB a refill */
#define TC_LIMIT(c) ((c) <= 6 ? 32u : 16u)
#define TC_SLOTS 32                  /* the largest TC_LIMIT */
struct tcache {
    unsigned n[TC_CLASSES];          /* blocks in slot[c] */
    _Atomic int busy;                /* 1 while the owner reads or writes the rest */
    int npending;
    /* TC_OFF, TC_ON, TC_DEAD (thread exiting), TC_HELD (a reclaim has it);
     * changed only under the list's lock (tcache.c) */
    _Atomic int state;
    void *slot[TC_CLASSES][TC_SLOTS];
    uintptr_t pending[TC_PENDING];   /* frees not sorted yet: address | class */
    struct tcache *next, *prev;      /* on the list while TC_ON (tcache.c) */
};
enum { TC_OFF, TC_ON, TC_DEAD, TC_HELD };
extern __thread struct tcache smpm_tc __attribute__((tls_model("initial-exec")));

/* Once, at the end of initialisation: with wanted = 0 (SMPMEM_TCACHE=0)
 * every call goes through a vCPU entry of its own. */
void smpm_tc_setup(int wanted);
/* 1 if this thread may use its cache (registering it the first time). */
int smpm_tc_join(struct tcache *t);
/* Inside t: class c's array is empty; refill it in one vCPU entry and
 * return a block (NULL: the core is empty). */
void *smpm_tc_refill(struct tcache *t, unsigned c);
/* The core came back empty: every thread's cached blocks back to it.  The
 * caller must not be inside its own cache.  1 if any block went back. */
int smpm_tc_reclaim_all(void);
/* Everything in t back to the core, in one vCPU entry (t's owner inside
 * t, or a reclaimer holding it). */
void smpm_tc_drain(struct tcache *t);
/* pthread_atfork's three, around the vCPUs' own (malloc.c). */
void smpm_tc_fork_prepare(void);
void smpm_tc_fork_parent(void);
void smpm_tc_fork_child(void);

/* The owner's side of the reclaim protocol (tcache.c): 1 if it may use its
 * cache now (then tc_leave after); 0: bypass it, a reclaim holds it. */
static inline int tc_enter(struct tcache *t)
{
    atomic_store_explicit(&t->busy, 1, memory_order_relaxed);
    atomic_signal_fence(memory_order_seq_cst);
    if (likely(atomic_load_explicit(&t->state, memory_order_acquire) == TC_ON))
        return 1;
    atomic_store_explicit(&t->busy, 0, memory_order_release);
    return 0;
}

static inline void tc_leave(struct tcache *t)
{
    atomic_store_explicit(&t->busy, 0, memory_order_release);
}

static inline unsigned tc_class(size_t n)
{
    return n <= 16 ? 0 : 64 - (unsigned)__builtin_clzl(n - 1) - 4;
}

/* Sort the full buffer (what overflows goes to kfree) and leave t. */
void smpm_tc_sort_leave(struct tcache *t);

/* Inside t (tc_enter); leaves it.  The sort is a tail call, so free keeps
 * no stack frame. */
static inline void tc_put_leave(struct tcache *t, void *p, size_t size)
{
    uintptr_t a = (uintptr_t)p, mark = smpm_free_key ^ a;
    if (unlikely(((uintptr_t *)p)[1] == mark))
        smpm_already_free("free", p);
    ((uintptr_t *)p)[1] = mark;
    t->pending[t->npending++] = a | ((unsigned)__builtin_ctzl(size) - 4);
    if (unlikely(t->npending == TC_PENDING)) {
        smpm_tc_sort_leave(t);
        return;
    }
    tc_leave(t);
}

#endif
