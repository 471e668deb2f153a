/*
 * Test, reset and instrumentation hooks of the buffer cache and the block
 * devices.  Kernel code includes bcache.h / bdev.h only; tests, benchmarks
 * and the demo include this header as well.
 *
 * None of these calls is needed to run a kernel: they tear state down so a
 * hosted program can start over, zero counters between measurements, or
 * count what the cache promises never exceeds 1.
 */
#ifndef SMPMEM_BIO_DEBUG_H
#define SMPMEM_BIO_DEBUG_H

#include <stdint.h>
#include "bcache.h"
#include "bdev.h"

/* A CPU's view of the LRU epoch is refreshed by its own misses and once
 * per this many of its releases (src/bio/bcache.c says what that bounds).
 * 1: every release reads the epoch, a line only misses write, so hits
 * still scale; a larger value let a CPU that only hits stamp its buffers
 * older than blocks released epochs ago, and they were evicted first
 * (test_bcache's concurrent-miss test saw blocks read twice). */
#define SMP_BCACHE_CLOCK_REFRESH 1

/* Tear the cache down, giving its memory back to smp_kfree and forgetting
 * its locks in the report.  SMP_EBUSY (and nothing changes) if a buffer is
 * held or pinned; 0 otherwise (also when there is no cache).  Not
 * thread-safe.  Call before smp_pmm_reset. */
int smp_bcache_reset(void);

/* Zero the counters of smp_bcache_stats.  Takes every cache lock. */
void smp_bcache_stats_reset(void);

/* Number of buffers (in any bucket) whose identity is (dev, blockno): the
 * cache's promise is that this is never above 1.  Takes every lock. */
unsigned smp_bcache_count(unsigned dev, uint64_t blockno);

/* Unregister every device (before smp_pmm_reset, since a RAM disk gives
 * its storage back to kfree).  Not thread-safe. */
void smp_bdev_reset(void);

/*
 * Metadata hooks (src/bio/bcache_debug.c), TEST-ONLY: read or overwrite
 * one field of the cache's books, so a test can corrupt it on purpose,
 * watch smp_bcache_check name exactly that violation, and put the old
 * value back.  No lock is taken: call them only while no other CPU uses
 * the cache.  They cost nothing unless called.  A bad selector (or no
 * cache) panics "smp_bcache_debug: ...".
 *
 * smp_bcache_debug_get(field, i) reads; smp_bcache_debug_set(field, i, v)
 * stores v and returns the old value.  Pointers (links, heads, hints) are
 * passed as integers; i selects the buffer (0..nbuf-1), bucket or clock
 * (0..nbucket-1) the field belongs to.
 */
enum smp_bcache_field {
    SMP_DBG_BUF_DEV,            /* buffer i */
    SMP_DBG_BUF_BLOCKNO,
    SMP_DBG_BUF_BUCKET,
    SMP_DBG_BUF_NEXT,
    SMP_DBG_BUF_PREV,
    SMP_DBG_BUF_REFCNT,
    SMP_DBG_BUF_LAST_USE,
    SMP_DBG_BUF_LOCKED,         /* its sleep lock's locked flag (guarded by the bucket lock) */
    SMP_DBG_BUCKET_HEAD,        /* bucket i */
    SMP_DBG_BUCKET_WAITERS,
    SMP_DBG_BUCKET_OLDEST,      /* the oldest-free hint */
    SMP_DBG_CLOCK_EPOCH,        /* LRU clock i: a CPU's view of the epoch */
    SMP_DBG_EPOCH,              /* the global miss epoch (i ignored) */
};
uint64_t smp_bcache_debug_get(enum smp_bcache_field field, unsigned i);
uint64_t smp_bcache_debug_set(enum smp_bcache_field field, unsigned i, uint64_t v);
/* Buffer i (NULL when i >= nbuf), and the bucket (dev, blockno) hashes to. */
struct smp_buf *smp_bcache_debug_buf(unsigned i);
unsigned smp_bcache_debug_bucket_of(unsigned dev, uint64_t blockno);

#if defined(SMPMEM_SHORT_NAMES) && !defined(SMPMEM_NO_SHORT_NAMES)
#define bcache_reset         smp_bcache_reset
#define bcache_stats_reset   smp_bcache_stats_reset
#define bcache_count         smp_bcache_count
#define bdev_reset           smp_bdev_reset
#endif

#endif
