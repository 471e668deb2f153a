/*
 * The baseline buffer cache: stock xv6's design (kernel/bio.c before the
 * lock lab), for benchmarks and for the contention test.
 *
 * One spinlock guards one doubly-linked list of every buffer, kept in
 * most-recently-released order.  A lookup walks the list from the front; a
 * miss walks it from the back for the least recently released free buffer.
 * Buffers, data and sleep locks are the same kinds smpmem's cache uses, so a
 * comparison measures the locking design only.  Unlike xv6 it sleeps instead
 * of panicking when every buffer is busy (so does smpmem).
 *
 * Header-only (static inline) so the benchmark and a test can both use it.
 */
#ifndef SMPMEM_BENCH_BCACHE_BASELINE_H
#define SMPMEM_BENCH_BCACHE_BASELINE_H

#include <stdint.h>
#include <smpmem/bdev.h>
#include <smpmem/pmm.h>
#include <smpmem/port.h>
#include <smpmem/sleeplock.h>
#include <smpmem/spinlock.h>

struct xv6_buf {
    unsigned dev;
    uint64_t blockno;
    unsigned refcnt;              /* xv6_bcache.lock */
    struct xv6_buf *prev, *next;  /* xv6_bcache.lock */
    int valid;                    /* sleep lock */
    struct smp_sleeplock lock;
    unsigned char *data;
};

struct xv6_bcache {
    struct smp_spinlock lock;     /* everything but buffer contents */
    struct xv6_buf head;          /* head.next is most recently released */
    struct xv6_buf *bufs;
    unsigned nbuf, block_size;
    unsigned waiters;             /* lock: bgets sleeping for a free buffer */
};

/* 0, or SMP_ENOMEM.  lock_name must outlive the cache. */
static inline int xv6_bcache_init(struct xv6_bcache *c, unsigned nbuf, unsigned block_size,
                                  const char *lock_name)
{
    c->nbuf = nbuf;
    c->block_size = block_size;
    c->waiters = 0;
    c->bufs = smp_kalloc(nbuf * sizeof *c->bufs);
    if (!c->bufs)
        return SMP_ENOMEM;
    smp_lock_init(&c->lock, lock_name);
    c->head.prev = c->head.next = &c->head;
    for (unsigned i = 0; i < nbuf; i++) {
        struct xv6_buf *b = &c->bufs[i];
        b->data = smp_kalloc(block_size);
        if (!b->data) {
            c->nbuf = i;                /* destroy frees what was made */
            return SMP_ENOMEM;
        }
        b->dev = ~0u;
        b->blockno = 0;
        b->refcnt = 0;
        b->valid = 0;
        smp_sleeplock_init(&b->lock, "xv6buffer");
        b->next = c->head.next;
        b->prev = &c->head;
        c->head.next->prev = b;
        c->head.next = b;
    }
    return 0;
}

/* Give the memory back and take the lock out of the report registry. */
static inline void xv6_bcache_destroy(struct xv6_bcache *c)
{
    smp_lock_forget_range(&c->lock, &c->lock + 1);
    for (unsigned i = 0; i < c->nbuf; i++)
        smp_kfree(c->bufs[i].data);
    smp_kfree(c->bufs);
}

static inline struct xv6_buf *xv6_bget(struct xv6_bcache *c, unsigned dev, uint64_t blockno)
{
    smp_lock_acquire(&c->lock);
    for (;;) {
        for (struct xv6_buf *b = c->head.next; b != &c->head; b = b->next) {
            if (b->dev == dev && b->blockno == blockno) {
                b->refcnt++;
                smp_lock_release(&c->lock);
                smp_sleeplock_acquire(&b->lock);
                return b;
            }
        }
        for (struct xv6_buf *b = c->head.prev; b != &c->head; b = b->prev) {
            if (b->refcnt == 0) {
                b->dev = dev;
                b->blockno = blockno;
                b->valid = 0;
                b->refcnt = 1;
                smp_lock_release(&c->lock);
                smp_sleeplock_acquire(&b->lock);
                return b;
            }
        }
        c->waiters++;                  /* xv6: panic("bget: no buffers") */
        smp_port_sleep(c, &c->lock);
        c->waiters--;
    }
}

static inline void xv6_brelse(struct xv6_bcache *c, struct xv6_buf *b)
{
    smp_sleeplock_release(&b->lock);
    smp_lock_acquire(&c->lock);
    b->refcnt--;
    if (b->refcnt == 0) {
        b->next->prev = b->prev;
        b->prev->next = b->next;
        b->next = c->head.next;
        b->prev = &c->head;
        c->head.next->prev = b;
        c->head.next = b;
        if (c->waiters)
            smp_port_wakeup(c);
    }
    smp_lock_release(&c->lock);
}

/* The block, locked; NULL if the device read fails. */
static inline struct xv6_buf *xv6_bread(struct xv6_bcache *c, unsigned dev, uint64_t blockno)
{
    struct xv6_buf *b = xv6_bget(c, dev, blockno);
    if (!b->valid) {
        if (smp_bdev_read(dev, blockno, b->data)) {
            xv6_brelse(c, b);
            return 0;
        }
        b->valid = 1;
    }
    return b;
}

static inline int xv6_bwrite(struct xv6_buf *b)
{
    return smp_bdev_write(b->dev, b->blockno, b->data);
}

#endif
