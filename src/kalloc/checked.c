/*
 * The checked build (make CHECKED=1, -DSMP_CHECKED): same API, every
 * misuse stops the kernel with the address and the reason, at the free or
 * at the next allocation of that memory at the latest.
 *
 * Every block carries a trailer in its last 8 bytes: the requested size and
 * a state word (live or freed, mixed with the size), both XOR a per-init
 * secret, so a trailer is not mistaken for data and a changed size field is
 * noticed.  kalloc(n) takes a block of at least n + 9 bytes (still aligned
 * to the next power of two >= n), fills [n, end - 8) -- at least one byte
 * -- with a redzone pattern and writes the trailer.  kfree checks, in order:
 *   - the pointer: foreign, interior, tail page, free page block (the
 *     unchecked classifier, kalloc.c), an object its slab never handed out;
 *   - the trailer: "freed" is a double free (also when the first free was
 *     on another CPU: the state lives in the block); neither live nor freed
 *     means the trailer was overwritten or the block never came from kalloc;
 *   - the redzone: a byte past the requested size changed (overflow).
 * Then it poisons the block (all but the trailer), marks the trailer freed
 * and puts the block in a bounded quarantine (SMP_QUARANTINE blocks), so
 * reuse is not immediate.  A block leaving the quarantine is verified
 * against the poison (a write after free) and its trailer cleared before
 * the allocator may hand it out again: only then, since memory that goes
 * back to the pages may come back as a block of another size, where an old
 * trailer would prove nothing.  Word 0 is the free list's link once the
 * block is in the allocator, itself checked by the hardened default
 * (obj.h).
 *
 * Locks: the quarantine lock "kmem.quarantine" is a leaf: blocks are freed
 * to the layers below only after it is dropped.
 */
#ifdef SMP_CHECKED
#include "top.h"
#include "../base/fmt.h"

#define TRAILER 8
#define STATE_LIVE 0x4c495645u
#define STATE_FREED 0x46524545u
#define REDZONE 0xfb
#define POISON 0xdf

struct trailer {
    uint32_t size, state;            /* both XOR secret32 */
};

static uint32_t secret32(const struct smp_pmm *m)
{
    return (uint32_t)(m->obj.secret >> 17);
}

/* The state word of a block of requested size `size`. */
static uint32_t state_word(const struct smp_pmm *m, uint32_t state, size_t size)
{
    return state ^ secret32(m) ^ (uint32_t)size * 0x9e3779b1u;
}

static struct trailer *trailer_of(void *p, size_t block)
{
    return (struct trailer *)((char *)p + block - TRAILER);
}

static _Noreturn void fail(void *p, const char *who, const char *reason, size_t a, size_t b)
{
    if (a == (size_t)-1)
        smp_panic_at(who, (uintptr_t)p, reason);
    /* "overflow past the requested size (requested size N, offset K)" */
    char text[128];
    struct smp_fmt f;
    smp_fmt_init(&f, text, sizeof text);
    smp_fmt_str(&f, reason);
    smp_fmt_str(&f, " (requested size ");
    smp_panic_at_nums(who, (uintptr_t)p, text, a, ", offset ", b, ")");
}

/* The first byte in [from, to) of p that is not `pattern`, or to. */
static size_t first_unlike(const unsigned char *p, size_t from, size_t to, unsigned char pattern)
{
    for (size_t i = from; i < to; i++)
        if (p[i] != pattern)
            return i;
    return to;
}

/* A freed block (from the quarantine or handed out again): poison intact? */
static void verify_poison(void *p, size_t block, const char *who)
{
    size_t bad = first_unlike(p, 0, block - TRAILER, POISON);
    if (bad < block - TRAILER)
        fail(p, who, "use after free: the block was written after it was freed", (size_t)-1, bad);
}

void smp_quarantine_init(struct smp_pmm *m)
{
    smp_lock_init(&m->quarantine.lock, "kmem.quarantine");
    m->quarantine.head = m->quarantine.n = 0;
}

/* Give a quarantined block back to the allocator: verified, then no
 * longer marked (see the top of the file). */
static void release(void *p)
{
    size_t block = smp_kalloc_block_size(p, "kfree");
    verify_poison(p, block, "kfree");
    trailer_of(p, block)->state = 0;
    smp_kfree_unchecked(p);
}

void smp_quarantine_flush(struct smp_pmm *m)
{
    struct smp_quarantine *q = &m->quarantine;
    for (;;) {
        void *p = 0;
        smp_lock_acquire(&q->lock);
        if (q->n) {
            p = q->slot[q->head];
            q->head = (q->head + 1) % SMP_QUARANTINE;
            q->n--;
        }
        smp_lock_release(&q->lock);
        if (!p)
            return;
        release(p);
    }
}

void *smp_kalloc(size_t size)
{
    struct smp_pmm *m = smp_pmm_state;
    if (!m || size == 0 || size > (SMP_PAGE_SIZE << m->pg.max_order) - TRAILER - 1)
        return 0;
    void *p = smp_kalloc_unchecked(size + TRAILER + 1);
    if (!p) {
        smp_quarantine_flush(m);
        p = smp_kalloc_unchecked(size + TRAILER + 1);
        if (!p)
            return 0;
    }
    size_t block = smp_kalloc_block_size(p, "kalloc");
    struct trailer *t = trailer_of(p, block);
    unsigned char *b = p;
    for (size_t i = size; i < block - TRAILER; i++)
        b[i] = REDZONE;
    t->size = (uint32_t)size ^ secret32(m);
    t->state = state_word(m, STATE_LIVE, size);
    return p;
}

/* The requested size of a live block, after every check kfree makes. */
static size_t checked_live(struct smp_pmm *m, void *p, const char *who, size_t *block_out)
{
    size_t block = smp_kalloc_block_size(p, who);     /* panics for bad pointers */
    if (block <= SMP_MAX_SMALL && smp_slab_never_used(&m->obj, (uintptr_t)p))
        fail(p, who, "never allocated: its slab has not handed this object out", (size_t)-1, 0);
    struct trailer *t = trailer_of(p, block);
    size_t size = t->size ^ secret32(m);
    if (t->state == state_word(m, STATE_FREED, size))
        fail(p, who, "double free: the block is already free (freed before, on some CPU)", (size_t)-1, 0);
    if (t->state != state_word(m, STATE_LIVE, size) || size == 0 || size >= block - TRAILER)
        fail(p, who, "not a live block: its trailer is overwritten (an overflow far past the end?) "
                     "or it never came from kalloc", (size_t)-1, 0);
    size_t bad = first_unlike(p, size, block - TRAILER, REDZONE);
    if (bad < block - TRAILER)
        fail(p, who, "overflow past the requested size", size, bad);
    *block_out = block;
    return size;
}

void smp_kfree(void *p)
{
    struct smp_pmm *m = smp_pmm_state;
    if (!p)
        return;
    if (!m)
        smp_panic_at("kfree", (uintptr_t)p, "smpmem is not initialised");
    size_t block;
    checked_live(m, p, "kfree", &block);
    unsigned char *b = p;
    for (size_t i = 0; i < block - TRAILER; i++)
        b[i] = POISON;
    trailer_of(p, block)->state = state_word(m, STATE_FREED, trailer_of(p, block)->size ^ secret32(m));
    struct smp_quarantine *q = &m->quarantine;
    void *out = 0;
    smp_lock_acquire(&q->lock);
    if (q->n == SMP_QUARANTINE) {
        out = q->slot[q->head];
        q->head = (q->head + 1) % SMP_QUARANTINE;
        q->n--;
    }
    q->slot[(q->head + q->n) % SMP_QUARANTINE] = p;
    q->n++;
    smp_lock_release(&q->lock);
    if (out)
        release(out);
}

size_t smp_kalloc_usable_size(void *p)
{
    size_t block;
    return checked_live(smp_pmm_state, p, "kalloc_usable_size", &block);
}
#endif
