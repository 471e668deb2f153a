/*
 * The buffer cache: an xv6-style block cache over the devices of bdev.h,
 * built for many CPUs.
 *
 * Interface (the rules for callers, as in xv6's bio.c):
 *   - bread(dev, blockno) returns the block locked (its sleep lock held by
 *     the caller) with valid contents, or NULL if the device read failed.
 *   - Change b->data, then bwrite(b) to write it through to the device.
 *   - brelse(b) when done; do not touch b afterwards.
 *   - Only one caller at a time holds a given block; others wait in bread.
 *   - bpin(b)/bunpin(b) add/drop an extra reference (xv6's log uses them) so
 *     the buffer is not reused for another block while pinned.
 *   - A caller holding k buffers must not expect bread to succeed while all
 *     other buffers are held by callers that wait on it (bread sleeps until
 *     some buffer is released; with every buffer held forever, it sleeps
 *     forever, where xv6 panics "bget: no buffers").
 *
 * Guarantees: a (dev, blockno) is cached in at most one buffer, even when
 * several CPUs miss it at the same moment; the least recently released free
 * buffer is reused on a miss; a failed device read leaves the cache
 * consistent (the buffer stays, invalid, and the next bread reads again).
 *
 * Inside: a prime number of hash buckets, one spinlock each
 * ("bcache.bucketN"); a hit takes only its bucket's lock, a miss the two
 * bucket locks of the target and the victim; the "bcache" lock is only
 * for sleeping when every buffer is busy (lock order: src/bio/bcache.c).
 * Every buffer has a sleep lock (struct smp_sleeplock, as in xv6), but its
 * state is guarded by the buffer's bucket lock, so that bread and brelse
 * each make one lock round trip: hold and release buffers only with
 * bread/brelse, never with the sleeplock.h calls.  Buffers and their data
 * come from smp_kalloc, so smp_pmm_init must have run.
 *
 * Naming: exported symbols carry smp_; with SMPMEM_SHORT_NAMES defined (and
 * not SMPMEM_NO_SHORT_NAMES) the short names below (bread, brelse, ...) are
 * macros for them and the buffer type is spelled `struct buf`; otherwise it
 * is `struct smp_buf`, or the name given by SMPMEM_BUF_NAME.
 *
 * Thread safety: every call except init/reset may be made from any CPU
 * concurrently; none from an interrupt handler (bread sleeps).
 */
#ifndef SMPMEM_BCACHE_H
#define SMPMEM_BCACHE_H

#include <stdatomic.h>
#include <stdint.h>
#include "errors.h"
#include "sleeplock.h"

/* The buffer's type is `struct smp_buf`; a kernel may give it its own fs
 * code's name by defining SMPMEM_BUF_NAME before including this header
 * (xv6: -DSMPMEM_BUF_NAME=buf, so `struct buf` is smpmem's buffer).  The
 * short names (SMPMEM_SHORT_NAMES) also call it `struct buf`. */
#if defined(SMPMEM_BUF_NAME)
#define smp_buf SMPMEM_BUF_NAME
#elif defined(SMPMEM_SHORT_NAMES) && !defined(SMPMEM_NO_SHORT_NAMES)
#define smp_buf buf
#endif

#define SMP_BCACHE_NBUCKET     31      /* fewest buckets bcache_init uses */
#define SMP_BCACHE_NBUCKET_MAX 251     /* most buckets bcache_init uses */
#define SMP_BCACHE_NODEV   0xffffffffu /* dev of a buffer that caches nothing */

struct smp_buf {
    /* Line 0, read by every lookup that walks past this buffer; written
     * only when the buffer changes identity, and last_use on a release.
     * Identity and links: guarded by the lock of bucket `bucket`; changed
     * only while refcnt == 0, holding both bucket locks (old and new). */
    _Alignas(64) unsigned dev;
    atomic_uint bucket;           /* index of the bucket whose list holds it */
    uint64_t blockno;
    struct smp_buf *next, *prev;  /* bucket list */
    unsigned char *data;          /* block_size bytes, from smp_kalloc */
    int valid;                    /* data holds the block's contents (sleep lock) */
    /* Written under the bucket lock; read lock-free by the victim scan
     * (like bucket), which re-validates under the bucket lock. */
    atomic_uint_least64_t last_use; /* LRU stamp of the last release to 0 (bcache.c) */
    /* Line 1, written by every bread and brelse of this block. */
    _Alignas(64) atomic_uint refcnt; /* bread holders + pins (bucket lock) */
    struct smp_sleeplock lock;    /* guards valid and data; its own state: the bucket lock */
    /* The block driver's own: the cache never reads or writes them.  A
     * driver that queues the buffer itself (xv6's virtio marks b->disk and
     * sleeps on b) uses these while it holds the buffer. */
    int disk;
    void *driver;
};

/* Create the cache: nbuf buffers of block_size bytes in
 * smp_bcache_default_buckets(nbuf) buckets.  Returns 0, or:
 *   SMP_EINVAL  nbuf or block_size 0;
 *   SMP_EBUSY   already initialised (smp_bcache_reset first, bio_debug.h);
 *   SMP_ENOMEM  smp_kalloc failed (or smpmem is not initialised); nothing
 *               is left allocated.
 * Not thread-safe: call before other CPUs use the cache. */
int smp_bcache_init(unsigned nbuf, unsigned block_size);

/* The same with nbucket buckets: SMP_EINVAL unless nbucket is a prime in
 * [2, 4093].  (Each bucket lock takes a slot in the lock report's registry
 * of 512.) */
int smp_bcache_init_buckets(unsigned nbuf, unsigned block_size, unsigned nbucket);

/* The bucket count bcache_init chooses: the smallest prime >= nbuf / 4
 * (about 4 buffers per bucket), at least SMP_BCACHE_NBUCKET and at most
 * SMP_BCACHE_NBUCKET_MAX: 31 for xv6's 30 buffers, 131 for 512. */
unsigned smp_bcache_default_buckets(unsigned nbuf);

/* Block blockno of dev, locked, with its contents.  NULL iff dev is not
 * registered, blockno >= its nblocks, its block size differs from the
 * cache's, or the device read failed; smp_bread_err stores the reason
 * (SMP_ENODEV, SMP_EINVAL or the device's error) in *err (0 on success).
 * Sleeps while the block is held by another caller, and while every buffer
 * is in use.  Panics if the cache is not initialised.
 * O(bucket length) on a hit; O(nbuf) on a miss, plus the device read. */
struct smp_buf *smp_bread(unsigned dev, uint64_t blockno);
struct smp_buf *smp_bread_err(unsigned dev, uint64_t blockno, int *err);

/* Write b's data to its device now.  0, or the device's error (SMP_ENODEV if
 * the device is gone); b keeps its data either way, so the caller may retry
 * (a buffer released after a failed write still shows the new data to later
 * breads until it is evicted).  Panics if b is not a locked buffer. */
int smp_bwrite(struct smp_buf *b);

/* Release a locked buffer from bread.  Panics with the reason if b is not a
 * buffer of this cache, or is not locked (released twice, never read). */
void smp_brelse(struct smp_buf *b);

/* Add / drop a reference that keeps b from being reused for another block.
 * bpin panics unless b is referenced (held or already pinned); bunpin panics
 * if b has no reference left to drop. */
void smp_bpin(struct smp_buf *b);
void smp_bunpin(struct smp_buf *b);

/* Statistics (a kernel may report them; test and reset hooks are in
 * bio_debug.h). */
struct smp_bcache_stats {
    unsigned nbuf, nbucket, block_size;
    unsigned busy;             /* buffers with refcnt > 0 now */
    unsigned long hits;        /* bread found the block in its bucket */
    unsigned long misses;      /* bread claimed a buffer for the block */
    unsigned long evictions;   /* ... and that buffer cached another block */
    unsigned long races;       /* a miss found the block inserted meanwhile
                                * by another CPU (counted once, as a hit) */
    unsigned long waits;       /* a miss slept because every buffer was busy */
    unsigned long dev_reads, dev_writes;     /* device requests issued */
    unsigned long read_errors, write_errors; /* ... that failed */
};

/* Snapshot of the statistics.  0, or SMP_EINVAL if there is no cache. */
int smp_bcache_stats(struct smp_bcache_stats *out);

/* Walk every bucket under all locks and verify the invariants: each buffer is
 * in exactly one list, in the bucket its identity hashes to, links are
 * consistent, no identity appears twice, refcnt/valid are sane.  0, or a
 * negative value after printing the first violation (smp_port_write). */
int smp_bcache_check(void);

#if defined(SMPMEM_SHORT_NAMES) && !defined(SMPMEM_NO_SHORT_NAMES)
#define bcache_init          smp_bcache_init
#define bcache_init_buckets  smp_bcache_init_buckets
#define bcache_default_buckets smp_bcache_default_buckets
#define bread                smp_bread
#define bread_err            smp_bread_err
#define bwrite               smp_bwrite
#define brelse               smp_brelse
#define bpin                 smp_bpin
#define bunpin               smp_bunpin
#define bcache_stats         smp_bcache_stats
#define bcache_check         smp_bcache_check
#endif

#endif
