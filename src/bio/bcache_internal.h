/*
 * The buffer cache's state, shared by its files:
 *   bcache.c        lookup, eviction, release (the lock order is there);
 *   bcache_init.c   init, reset, bucket counts;
 *   bcache_stats.c  statistics and counting (takes every lock);
 *   bcache_check.c  the invariant check (takes every lock).
 * Nothing outside src/bio/bcache*.c includes this header.
 */
#ifndef SMPMEM_BCACHE_INTERNAL_H
#define SMPMEM_BCACHE_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include "smpmem/bcache.h"
#include "smpmem/bio_debug.h"
#include "smpmem/spinlock.h"

#define BCACHE_LINE 64
#define BCACHE_MAX_BUCKETS 4093
/* A release reads the global epoch once per this many releases on its
 * CPU (the LRU clock, bcache.c). */
#define BCACHE_CLOCK_REFRESH SMP_BCACHE_CLOCK_REFRESH

/* What a lookup walks past (line 0) and what bread/brelse write (line 1)
 * live on different lines (bcache.h). */
_Static_assert(offsetof(struct smp_buf, refcnt) == BCACHE_LINE, "smp_buf: refcnt starts line 1");
_Static_assert(offsetof(struct smp_buf, last_use) < BCACHE_LINE, "smp_buf: line 0 overflows");

struct bucket {
    /* Line 0, written by every hit on this bucket: guarded by lock.  With
     * 64-bit longs the last two counters, which only misses write, run
     * into line 1. */
    _Alignas(BCACHE_LINE) struct smp_spinlock lock;
    struct smp_buf *head;          /* most recently inserted first */
    unsigned waiters;              /* misses sleeping for a free buffer */
    /* Statistics of lookups for blocks hashing here. */
    unsigned long hits, misses, evictions, races;
    /* Line 1, written only when it changes: the free buffer on the list
     * with the smallest last_use, or NULL iff none is free.  Written under
     * lock and exact whenever lock is free; read with no lock by the
     * victim scan.  Apart from line 0 so the scan does not pull the lock
     * line away from a CPU that is hitting here. */
    _Alignas(BCACHE_LINE) _Atomic(struct smp_buf *) oldest;
    char name[24];                 /* "bcache.bucketN": outlives the lock */
};

/* A CPU's view of the LRU epoch (bcache.c), one line each.  Written by the
 * CPUs whose id is its index modulo nclock: by one CPU unless there are
 * more CPUs than clocks (then sharing costs speed, never correctness). */
struct lru_clock {
    _Alignas(BCACHE_LINE) atomic_uint_least64_t epoch;
    atomic_uint releases;
};

struct bcache {
    /* Read-only after init (read by every call). */
    _Alignas(BCACHE_LINE) unsigned nbuf, nbucket, nclock, block_size;
    struct smp_buf *bufs;          /* nbuf buffers, one kalloc block */
    struct lru_clock *clocks;      /* nclock of them: a power of two, at most nbucket */
    /* "bcache": sleeping for a free buffer; the waits counter. */
    _Alignas(BCACHE_LINE) struct smp_spinlock lock;
    unsigned long waits;
    /* Written by misses only. */
    _Alignas(BCACHE_LINE) atomic_uint_least64_t epoch;   /* misses so far */
    _Alignas(BCACHE_LINE) atomic_ulong dev_reads, dev_writes, read_errors, write_errors;
    struct bucket buckets[];       /* nbucket of them */
};

/* The cache, or NULL before init / after reset (bcache_init.c). */
extern struct bcache *smp_bcache_state;

static inline unsigned bcache_hash(const struct bcache *c, unsigned dev, uint64_t blockno)
{
    /* Consecutive blocks land in consecutive buckets (a prime count spreads
     * strided patterns too); devices are offset from each other. */
    uint64_t key = blockno + (uint64_t)dev * 0x9e3779b1u;
    /* Folded to 32 bits first: a 64-bit modulo is a libgcc call on 32-bit
     * targets.  Below 2^32 blocks, consecutive blocks stay consecutive. */
    uint32_t k = (uint32_t)key ^ (uint32_t)(key >> 32);
    return k % c->nbucket;
}

/* Take "bcache" and then every bucket lock in increasing index (the walks
 * of bcache_stats.c and bcache_check.c); release in reverse. */
void smp_bcache_lock_all(struct bcache *c);
void smp_bcache_unlock_all(struct bcache *c);

/* Recompute bk's oldest-free hint from its list; bk->lock held. */
void smp_bcache_update_oldest(struct bucket *bk);

#endif
