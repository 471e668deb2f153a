/*
 * Test-only metadata hooks of the buffer cache (include/smpmem/bio_debug.h):
 * read or overwrite one field so the tests can prove that smp_bcache_check
 * catches each kind of corruption.  Nothing calls these in a kernel.
 *
 * Locks: none.  The caller guarantees no other CPU uses the cache.
 */
#include "bcache_internal.h"
#include "../base/fmt.h"

enum kind { UNSIGNED, UNSIGNED_ATOMIC, U64, U64_ATOMIC, PTR, PTR_ATOMIC };

struct slot {
    void *p;
    enum kind kind;
};

static _Noreturn void bad(const char *why)
{
    smp_panic("smp_bcache_debug", why);
}

static struct bcache *cache(void)
{
    struct bcache *c = smp_bcache_state;
    if (!c)
        bad("buffer cache not initialised");
    return c;
}

static struct slot locate(enum smp_bcache_field f, unsigned i)
{
    struct bcache *c = cache();
    if (f <= SMP_DBG_BUF_LAST_USE && i >= c->nbuf)
        bad("buffer index out of range");
    if (f >= SMP_DBG_BUCKET_HEAD && f <= SMP_DBG_BUCKET_OLDEST && i >= c->nbucket)
        bad("bucket index out of range");
    if (f == SMP_DBG_CLOCK_EPOCH && i >= c->nclock)
        bad("clock index out of range");
    struct smp_buf *b = &c->bufs[i < c->nbuf ? i : 0];
    struct bucket *bk = &c->buckets[i < c->nbucket ? i : 0];
    switch (f) {
    case SMP_DBG_BUF_DEV:        return (struct slot){ &b->dev, UNSIGNED };
    case SMP_DBG_BUF_BLOCKNO:    return (struct slot){ &b->blockno, U64 };
    case SMP_DBG_BUF_BUCKET:     return (struct slot){ &b->bucket, UNSIGNED_ATOMIC };
    case SMP_DBG_BUF_NEXT:       return (struct slot){ &b->next, PTR };
    case SMP_DBG_BUF_PREV:       return (struct slot){ &b->prev, PTR };
    case SMP_DBG_BUF_REFCNT:     return (struct slot){ &b->refcnt, UNSIGNED_ATOMIC };
    case SMP_DBG_BUF_LAST_USE:   return (struct slot){ &b->last_use, U64_ATOMIC };
    case SMP_DBG_BUF_LOCKED:     return (struct slot){ &b->lock.locked, UNSIGNED };   /* int: unsigned may alias it */
    case SMP_DBG_BUCKET_HEAD:    return (struct slot){ &bk->head, PTR };
    case SMP_DBG_BUCKET_WAITERS: return (struct slot){ &bk->waiters, UNSIGNED };
    case SMP_DBG_BUCKET_OLDEST:  return (struct slot){ &bk->oldest, PTR_ATOMIC };
    case SMP_DBG_CLOCK_EPOCH:    return (struct slot){ &c->clocks[i].epoch, U64_ATOMIC };
    case SMP_DBG_EPOCH:          return (struct slot){ &c->epoch, U64_ATOMIC };
    }
    bad("unknown field");
}

static uint64_t load(struct slot s)
{
    switch (s.kind) {
    case UNSIGNED:        return *(unsigned *)s.p;
    case UNSIGNED_ATOMIC: return atomic_load_explicit((atomic_uint *)s.p, memory_order_relaxed);
    case U64:             return *(uint64_t *)s.p;
    case U64_ATOMIC:      return atomic_load_explicit((atomic_uint_least64_t *)s.p, memory_order_relaxed);
    case PTR:             return (uintptr_t)*(struct smp_buf **)s.p;
    case PTR_ATOMIC:
        return (uintptr_t)atomic_load_explicit((_Atomic(struct smp_buf *) *)s.p, memory_order_relaxed);
    }
    return 0;
}

static void store(struct slot s, uint64_t v)
{
    switch (s.kind) {
    case UNSIGNED:        *(unsigned *)s.p = (unsigned)v; break;
    case UNSIGNED_ATOMIC: atomic_store_explicit((atomic_uint *)s.p, (unsigned)v, memory_order_relaxed); break;
    case U64:             *(uint64_t *)s.p = v; break;
    case U64_ATOMIC:      atomic_store_explicit((atomic_uint_least64_t *)s.p, v, memory_order_relaxed); break;
    case PTR:             *(struct smp_buf **)s.p = (struct smp_buf *)(uintptr_t)v; break;
    case PTR_ATOMIC:
        atomic_store_explicit((_Atomic(struct smp_buf *) *)s.p, (struct smp_buf *)(uintptr_t)v,
                              memory_order_relaxed);
        break;
    }
}

uint64_t smp_bcache_debug_get(enum smp_bcache_field field, unsigned i)
{
    return load(locate(field, i));
}

uint64_t smp_bcache_debug_set(enum smp_bcache_field field, unsigned i, uint64_t v)
{
    struct slot s = locate(field, i);
    uint64_t old = load(s);
    store(s, v);
    return old;
}

struct smp_buf *smp_bcache_debug_buf(unsigned i)
{
    struct bcache *c = cache();
    return i < c->nbuf ? &c->bufs[i] : 0;
}

unsigned smp_bcache_debug_bucket_of(unsigned dev, uint64_t blockno)
{
    return bcache_hash(cache(), dev, blockno);
}
