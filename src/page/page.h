/*
 * The page layer: page descriptors, the buddy zone, per-CPU page caches.
 * It knows nothing of the layers above; a client that keeps a block
 * (the object layer's slabs) marks it PG_OWNED and may use the owner_*
 * fields of its descriptors, which this layer never interprets.
 *
 * Glossary
 *   page index  position of a page among the managed pages, 0..npages-1
 *   pfn         absolute page frame number: address >> SMP_PAGE_SHIFT;
 *               pfn = base_pfn + index.  Buddy alignment is by pfn, so a
 *               block of order k starts at an address aligned to 4096 << k.
 *   head        the first page of a block; its smp_page_head says what the
 *               block is.  Every other page of the block is PG_TAIL.
 *
 * Invariant (smp_pg_check_frozen): walking indices from 0 up to
 * zone.uncarved, every page reached is a head with a valid, pfn-aligned
 * order whose block ends by zone.uncarved, and the 2^order - 1 pages after
 * it are TAIL.  Every page from zone.uncarved on is TAIL, owned by no one:
 * free memory the zone has not yet carved into blocks (buddy.c).  So every
 * carved page belongs to exactly one block, and each block is in exactly
 * one place: the buddy (BUDDY), a CPU cache (PCP), a caller (ALLOC) or a
 * client layer (OWNED).  And: free pages (BUDDY + PCP + uncarved) + held
 * pages (ALLOC + OWNED) = npages.
 *
 * Lock order: this CPU's section (base/percpu.h) -> zone.lock.
 */
#ifndef SMPMEM_PAGE_H
#define SMPMEM_PAGE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include "smpmem/pmm.h"
#include "../base/percpu.h"

#define SMP_NIL UINT32_MAX      /* "no page" in index-linked lists */
#define SMP_CACHELINE 64

/* Where each hot metadata area of the region starts (the top's header,
 * the gates, the object caches, the page caches): a colour's worth of
 * bytes into a page, never at a page boundary.  The first line of every
 * page is what page users write most (list links, headers, stamps), and
 * all those lines fall in one L1 set, which evicts any metadata line that
 * shares it.  Each area is coloured on its own, since where an area after the
 * header lands depends on the header's size and the region's: when a
 * class added to the header put the page caches at a page boundary, the
 * kalloc benchmark's pages workload (bursts of up to 64 pages, a word
 * written into each) fell to 0.66x at 1 thread, with the same
 * instructions and the same simulated misses.  At most a page of address
 * space per area is skipped, and never touched. */
#define SMP_META_COLOUR (17 * 64)              /* the header: 17 lines in */
#define SMP_CPU_COLOUR (9 * SMP_CPU_ALIGN)      /* per-CPU arrays: 18 lines in, aligned */
_Static_assert(SMP_CPU_COLOUR < SMP_PAGE_SIZE, "a colour is an offset into a page");

/* The first address at or above v that lies colour bytes into a page. */
static inline uintptr_t smp_colour_up(uintptr_t v, uintptr_t colour)
{
    return ((v - colour + SMP_PAGE_SIZE - 1) & ~(uintptr_t)(SMP_PAGE_SIZE - 1)) + colour;
}

enum smp_page_state {
    PG_TAIL = 0,   /* not a block head (zeroed heads start here) */
    PG_BUDDY,      /* head of a free block on zone.free_head[order]; zone lock */
    PG_PCP,        /* head of a block in a CPU cache ring; that CPU's section */
    PG_ALLOC,      /* head of a block held by a caller */
    PG_OWNED,      /* head of a block a client layer keeps (slabs) */
};

/* One per managed page: 32 bytes, 0.78% of the region.  What a block is
 * (state, order) lives apart, in struct smp_page_head. */
struct smp_page {
    uint32_t next, prev;    /* buddy free-list links; the owner's while PG_OWNED */
    /* The owner's words: this layer never reads them, except that owner_tag
     * must be 0 on every page it hands out (owners clear it before they
     * give a block back).  An owner may set owner_tag on every page of its
     * block, tails included, so one descriptor read tells what a pointer is. */
    uint16_t owner_tag;
    uint16_t spare;
    uint32_t owner_u32;
    void *owner_ptr;
    uint64_t owner_u64;
};
_Static_assert(sizeof(struct smp_page) == 32 || (sizeof(void *) == 4 && sizeof(struct smp_page) <= 32),
               "page descriptor must stay 32 bytes (28 where pointers are 4)");

/* One per managed page, in a dense array beside the descriptors (smp_head):
 * the block's state and order.  Dense because the page caches' fast paths
 * read and write these two bytes on every alloc and free, and nothing
 * else of the block: 32 pages share a line here, where a descriptor line
 * holds two, so a free of a page allocated long ago finds its line in the
 * cache far more often. */
struct smp_page_head {
    _Atomic uint8_t state;  /* enum smp_page_state: use smp_state/smp_set_state */
    uint8_t order;          /* block order, valid on heads */
};

/* A head's state is written by whoever holds the block's place, but the
 * buddy peeks at a neighbour's state (is it a free buddy?) while its
 * owning CPU may relabel it PCP <-> ALLOC.  The answer is right either way
 * (only the zone lock makes a block PG_BUDDY); relaxed atomics make the peek
 * defined, and compile to plain moves. */
static inline unsigned smp_state(const struct smp_page_head *h)
{
    return atomic_load_explicit(&h->state, memory_order_relaxed);
}

static inline void smp_set_state(struct smp_page_head *h, unsigned s)
{
    atomic_store_explicit(&h->state, (uint8_t)s, memory_order_relaxed);
}

/* Per-CPU page cache: for each order below SMP_PCP_ORDERS, a ring of page
 * indices.  Allocation pops and free pushes at `top` (hot, LIFO); drain and
 * steal take from `bottom` (cold).  Touched only inside the owner's section
 * or by a function cross-called for it; top/bottom and the statistics are
 * relaxed atomics only so that pmm_free_pages and reports may peek. */
#define SMP_PCP_ORDERS 5
#define SMP_PCP_CAP0 512
#define SMP_PCP_SLOTS (2 * SMP_PCP_CAP0)

struct smp_pcp_ring {
    _Atomic uint32_t top, bottom;
    uint32_t mask;                   /* capacity - 1 (a power of two) */
    uint32_t high;                   /* drain a batch when this many are cached */
    uint32_t *slots;                 /* in the region, after the pcp array */
    /* bottom + high, kept with bottom (pop_bottom): the fast free's "full"
     * test is then one compare with top. */
    uint32_t full_top;
    uint32_t pad;                    /* 32 bytes: a ring is found by shifts */
};

struct smp_pcp {
    _Alignas(SMP_CPU_ALIGN) struct smp_pcp_ring ring[SMP_PCP_ORDERS];
    atomic_ulong refills, drains, steals, stolen;
    char pad[256 - SMP_PCP_ORDERS * sizeof(struct smp_pcp_ring) - 4 * sizeof(atomic_ulong)];
};
_Static_assert(sizeof(struct smp_pcp) == 256, "a CPU's page cache header: 256 bytes");

/* The buddy zone.  lock protects free_head and every BUDDY block's
 * descriptor and head. */
struct smp_zone {
    _Alignas(SMP_CACHELINE) struct smp_spinlock lock;
    uint32_t free_head[SMP_MAX_ORDER + 1];
    atomic_size_t free_pages;        /* pages in BUDDY blocks and the uncarved tail */
    /* Pages [uncarved, npages) are free but not yet carved into blocks:
     * no descriptor or head of theirs has been written (buddy.c says why).
     * Grows only, under the lock; read relaxed by diagnostics. */
    _Atomic uint32_t uncarved;
#ifdef SMP_PORT_HAS_DISCARD
    /* The last blocks of SMP_DISCARD_ORDER and up freed, oldest first
     * (page.c says why).  Under the lock. */
    struct smp_kept {
        uint32_t idx;
        uint8_t order;
        bool dirty;                  /* freed again while here: kept its pages */
    } kept[SMP_DISCARD_KEEP];
    unsigned nkept;
#endif
};

struct smp_pages {
    /* Read on every page operation and every kfree: one line. */
    uintptr_t base;                  /* address of page index 0 */
    uintptr_t span;                  /* npages << SMP_PAGE_SHIFT */
    /* The owner's byte of each page, one dense array the caller placed
     * (smp_pg_init): this layer never reads it, except that it must be 0 on
     * every page it hands out, as owner_tag.  Dense and written only when
     * an owner takes or gives back a block, so a lookup by address (kfree's
     * route) touches a line that 64 pages share and nobody writes, instead
     * of a descriptor whose owner words other CPUs keep writing. */
    uint8_t *owner_byte;
    struct smp_page_head *head;      /* state and order of each page */
    struct smp_page *pages;
    struct smp_pcp *pcp;             /* ncpu caches, carved from the region */
    uint32_t *pcp_slots;             /* their rings' slots, SMP_PCP_SLOTS per CPU */
    unsigned max_order;              /* largest order a block can have here */
    uint32_t npages;
    uint64_t base_pfn;
    int ncpu;
    unsigned batch[SMP_PCP_ORDERS];  /* blocks moved per refill/drain */
    /* Called (outside any section, no lock held) when an allocation found
     * nothing after stealing from every CPU: a layer above may reclaim
     * what it caches and return a block of the order, or NULL.  Set by the
     * top (the page layer does not know what lies above it). */
    void *(*pressure)(struct smp_pages *pg, unsigned order);
    struct smp_zone zone;
#ifndef SMP_PORT_HAS_CPU_WORDS
    /* &pcp[cpu] for cpu < ncpu: where the port keeps no words for the
     * core, a fast path finds its CPU's cache with one load after its
     * cpu < ncpu test, instead of a multiply and an add.  Where it does,
     * the top publishes &pcp[cpu] as word SMP_PCP_WORD (base/percpu.h)
     * and the header goes without the table: 512 bytes less of it. */
    struct smp_pcp *pcp_at[SMP_MAX_CPUS];
#endif
};

/* Which of each CPU's words (smp_percpu_publish) is this CPU's &pcp[cpu]. */
#define SMP_PCP_WORD 0

static inline struct smp_page_head *smp_head(const struct smp_pages *pg, uint32_t idx)
{
    return &pg->head[idx];
}

static inline uintptr_t smp_page_addr(const struct smp_pages *pg, uint32_t idx)
{
    return pg->base + ((uintptr_t)idx << SMP_PAGE_SHIFT);
}

static inline uint32_t smp_page_index(const struct smp_pages *pg, uintptr_t addr)
{
    return (uint32_t)((addr - pg->base) >> SMP_PAGE_SHIFT);
}

/* Whether addr lies in the managed pages (one compare). */
static inline bool smp_pg_contains(const struct smp_pages *pg, uintptr_t addr)
{
    return addr - pg->base < pg->span;
}

/* The state of the block containing tail page idx (for a bad pointer's
 * message): its head's, PG_BUDDY for a page of the uncarved tail (free,
 * not yet cut into a block), PG_TAIL if no head covers it.  Exact for
 * blocks the caller owns, a hint otherwise. */
unsigned smp_pg_enclosing_state(const struct smp_pages *pg, uint32_t idx);
/* The head of the block containing carved page idx, or SMP_NIL if no head
 * covers it (not for a page of the uncarved tail). */
uint32_t smp_pg_enclosing_head(const struct smp_pages *pg, uint32_t idx);

/* ---- setup (page.c) ------------------------------------------------------ */
/* Carve [start, end) into the per-CPU caches, the descriptors, heads and
 * owner bytes, and the pages.
 * zeroed: the caller knows the memory reads as zero (skip clearing the
 * descriptors).  0, or SMP_ERANGE when fewer than SMP_PG_MIN_PAGES fit. */
#define SMP_PG_MIN_PAGES 128
/* Bytes of ring slots per CPU (after the ncpu headers). */
#define SMP_PCP_SLOT_BYTES (SMP_PCP_SLOTS * sizeof(uint32_t))
/* Manage the pages in [start, end) (their metadata carved from its start),
 * with the owner bytes in owner[0 .. owner_len): the caller places them,
 * so that a lookup by address can find them at a fixed offset from its
 * own state; at least one byte per page of [start, end). */
int smp_pg_init(struct smp_pages *pg, uintptr_t start, uintptr_t end, int ncpu, bool zeroed,
                uint8_t *owner, size_t owner_len);

/* ---- allocation (inline fast paths in pcp.h) ----------------------------- */
/* Slow and uncached-order paths; NULL after stealing from every CPU. */
void *smp_pg_alloc_large(struct smp_pages *pg, unsigned order);
void smp_pg_free_large(struct smp_pages *pg, void *p, unsigned order);

/* Panics unless idx heads an allocated block of this order. */
void smp_pg_validate_free(struct smp_pages *pg, uint32_t idx, unsigned order, const char *who);

/* Client ownership: a PG_ALLOC block becomes PG_OWNED and back. */
void smp_pg_own(struct smp_pages *pg, void *block);
void smp_pg_disown(struct smp_pages *pg, void *block);

/* ---- with the world stopped (smp_on_all_cpus), or for one CPU ------------ */
/* Give every block cached on cpu back to the zone (exclusive access to cpu's
 * cache: inside smp_on_cpu(cpu) or a stopped world). */
void smp_pg_drain_cpu(struct smp_pages *pg, int cpu);
/* The zone alone (no CPU cache): alloc / free under the zone lock. */
void *smp_pg_zone_alloc(struct smp_pages *pg, unsigned order);
void smp_pg_zone_free(struct smp_pages *pg, void *p, unsigned order);

/* The invariant check, world stopped.  For each PG_OWNED block, calls
 * owned(ctx, head index) (the owner verifies it; nonzero stops the walk).
 * Returns 0, or -1 after printing the first violation. */
int smp_pg_check_frozen(struct smp_pages *pg, int (*owned)(void *ctx, uint32_t idx), void *ctx);
/* Print "pmm_check: page ADDR: REASON" (idx may be SMP_NIL) and return -1. */
int smp_check_fail(const struct smp_pages *pg, uint32_t idx, const char *reason);

/* Pages in the zone plus every CPU cache (a snapshot). */
size_t smp_pg_free_pages(const struct smp_pages *pg);
size_t smp_pcp_cached_pages(const struct smp_pcp *c);

/* ---- buddy.c: the zone; _locked functions need zone.lock held ----------- */
void smp_buddy_init(struct smp_pages *pg);
/* Carve all of the uncarved tail into blocks now (tests: pmm_debug.h). */
void smp_buddy_carve_all_locked(struct smp_pages *pg);
uint32_t smp_buddy_alloc_locked(struct smp_pages *pg, unsigned order);
void smp_buddy_free_locked(struct smp_pages *pg, uint32_t idx, unsigned order);
/* Take the pages [idx, idx + 2^order) out of the zone as one allocated
 * block (PG_ALLOC, as smp_buddy_alloc_locked leaves it) if they are all
 * free in it: their free block comes off its list and is split down to
 * them, the other halves going back.  1, or 0 with nothing changed (some
 * page is allocated, in a CPU's cache, or uncarved; or idx is not aligned
 * to order). */
int smp_buddy_take_locked(struct smp_pages *pg, uint32_t idx, unsigned order);
int smp_buddy_check_locked(struct smp_pages *pg, size_t nheads_seen);

/* ---- pcp.c --------------------------------------------------------------- */
void smp_pcp_init(struct smp_pages *pg);
int smp_pcp_check_frozen(struct smp_pages *pg, size_t nheads_seen);

#endif
