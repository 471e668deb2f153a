/*
 * The object layer: power-of-two size classes 8 B .. 4 KiB.
 *
 *   smp_obj_alloc/free  this CPU's magazines for the class (magazine.h:
 *                       the fast path, one section, nothing atomic)
 *   depot.c             full magazines between CPUs, a bounded stack per
 *                       class (a magazine moves whole, under one lock)
 *   slab.c              the class's slabs: objects carved from page blocks
 *                       (batches, class lock)
 *   page layer          whole blocks for new slabs (page/pcp.h)
 *
 * Lock order: this CPU's section -> slab class lock -> depot lock -> zone.
 * The layer includes and calls only page/ and base/.
 *
 * Glossary
 *   magazine  a LIFO chain of free objects linked through their first
 *             words, with a count; full at cap[cls] objects, which is
 *             SMP_MAG_BYTES of objects (at least SMP_MAG_MIN_OBJECTS, at
 *             most SMP_MAG_MAX_OBJECTS, but never less than a page).
 *   slab      a page block of order slab_order(cls), aligned to its size, so
 *             every object at base + i * size is aligned to size.
 */
#ifndef SMPMEM_OBJ_H
#define SMPMEM_OBJ_H

#include "../page/pcp.h"

#define SMP_MIN_CLASS_SHIFT 3                 /* 8 bytes */
#define SMP_MAX_CLASS_SHIFT 12                /* 4 KiB; above are page blocks */
#define SMP_MAX_SMALL (1UL << SMP_MAX_CLASS_SHIFT)
_Static_assert(SMP_MAX_CLASS_SHIFT - SMP_MIN_CLASS_SHIFT + 1 == SMP_KALLOC_CLASSES,
               "one size class per power of two from 8 B to 4 KiB");

/* Magazines are sized in bytes, so a CPU caches about as much memory of a
 * 4 KiB class as of a 64 B one (a count would cache 64x more of the big),
 * but hold at least SMP_MAG_MIN_OBJECTS: a CPU's two magazines absorb a
 * swing of the class's live count twice a magazine wide, and beyond that
 * every magazine's worth goes through the depot's lock, a line all CPUs
 * write.  At 4 objects (16 KiB of 4 KiB ones), the kalloc benchmark's
 * mixed workload (9% of requests 4 KiB) took the 4 KiB depot's lock once
 * per 300 calls, 14,000 times in a 2-thread run; at 16, 700 times, and
 * the run went 3-8% faster at 2 and 8 threads.  (tcmalloc moves 4 KiB
 * objects between its caches 16 at a time too.)  And at least a page of
 * objects, so that a refill from a new slab hands one CPU whole pages: 8 B
 * objects came 256 (half a page) to a magazine, and two CPUs refilling
 * from a new slab split its page.  They shared no line, but in half the
 * seeds 10% of the small workload's block accesses at 2 threads landed on
 * a page the other thread had touched last, and the 2 threads ran 2-4%
 * slower than with a page each (bench_kalloc's control). */
#define SMP_MAG_BYTES (16 * 1024)
#define SMP_MAG_MIN_OBJECTS 16
#define SMP_MAG_MAX_OBJECTS 256
#define SMP_DEPOT_SLOTS 16

/* The slot key (SMP_SLOT_KEY, below) of the class of 1 <= size <=
 * SMP_MAX_SMALL, whose class is ceil(log2(size)) - 3, at least 0.  Every
 * class boundary is a multiple of 8, so (size - 1) / 8 decides it: a
 * 512-byte constant table (slab.c) makes it one load on kalloc's fast
 * path, where count-leading-zeros takes four instructions and, where it is
 * not an instruction, a loop or a libgcc call that kernels do not link. */
extern const uint8_t smp_key_table[SMP_MAX_SMALL >> SMP_MIN_CLASS_SHIFT];
static inline unsigned smp_slot_key_of(size_t size)
{
    return smp_key_table[(size - 1) >> SMP_MIN_CLASS_SHIFT];
}

static inline size_t smp_class_size(unsigned cls) { return (size_t)1 << (cls + SMP_MIN_CLASS_SHIFT); }

/* Slab bookkeeping in the page descriptors' owner words (page.h):
 *   owner_byte on every page of a slab: SMP_SLOT_KEY(cls) (kfree's route:
 *              the dense array, not the descriptor, which slab counts keep
 *              writing)
 *   owner_tag  on every page of a slab: (cls + 1) | (page offset in slab << 8)
 *   owner_u32  inuse: objects handed out (in CPU caches or with callers)
 *   owner_ptr  freelist: first free object
 *   owner_u64  bits 0-31: objects never handed out yet (carved from the
 *              top as refills take them, so adopting a slab writes nothing
 *              to its memory; a refill takes a page of objects at least,
 *              so no slab of a page keeps any for long);
 *              bits 32-39: which class list the slab is on
 * Invariant per slab: inuse + |freelist| + unused == per_slab. */
#define SMP_TAG_CLASS(tag) ((unsigned)((tag) & 0xff) - 1)
#define SMP_TAG_OFFSET(tag) ((unsigned)(tag) >> 8)

/* A magazine away from the fast paths (previous, in the depot). */
struct smp_mag {
    void *head;
    uint32_t count;
};

/* The loaded magazine of one class on one CPU, and the class's constants
 * its fast paths need, in one 32-byte slot: a fast path finds everything it
 * reads and writes at fixed offsets from one address.  cap and check are
 * set at init and never change; slow paths move magazines in and out
 * through smp_loaded_get/set, which leave them alone. */
struct smp_mag_slot {
    void *head;                      /* free objects, linked through their first words */
    /* How many more objects the magazine takes: cap - count.  Kept as the
     * room, not the count, because kfree tests it against zero (a compare
     * with memory) where a count would be loaded, compared with cap and
     * stored back: two instructions fewer per pair. */
    uint32_t room;
    uint32_t cap;                    /* = smp_objs.cap[cls]: objects in a full magazine */
    /* The object last popped (its link made head).  Not beside head: the
     * pop stores both, and a compiler would pair adjacent stores into a
     * vector store that costs more instructions than it saves. */
    void *last;
    /* The pop's test of head p: (p - base) & check is nonzero unless p lies
     * in the region's span rounded up to a power of two and is aligned to
     * the class size (base is page-aligned).  One AND stands for the empty
     * test (NULL is far below base), the bounds test and the alignment
     * test.  The rounding lets through an address in the gap past the
     * region's end, no larger than the region: a random overwrite XOR the
     * secret lands there with odds below span / 2^64, no more often than
     * it lands on an aligned address inside the region, which no bounds
     * test can tell from a real link. */
    uintptr_t check;
#if UINTPTR_MAX == 0xffffffffu
    uint32_t pad[3];                 /* 32 bytes where pointers are 4 too */
#endif
};
_Static_assert(sizeof(struct smp_mag_slot) == 32, "a magazine slot is 32 bytes (smp_slot)");

/* Where a class's slot is, as one byte: its offset from the CPU's caches
 * halved, (cls + 1) * 16 (no class has key 0: the first 32 bytes are not a
 * slot).  kalloc gets it from smp_key_table, kfree from the page's owner
 * byte, and both address the slot as c + 2 * key, an x86 addressing mode
 * (or one shift elsewhere): no multiply, no conversion between the two. */
#define SMP_SLOT_KEY(cls) (((unsigned)(cls) + 1) * 16)
#define SMP_KEY_CLASS(key) ((unsigned)(key) / 16 - 1)

/* One CPU's magazines: two per class (Bonwick): loaded serves allocs and
 * frees; previous absorbs a full or empty swing so a CPU oscillating at a
 * boundary does not ping-pong batches.  Touched only in this CPU's section
 * or by a function cross-called for it. */
struct smp_obj_cpu {
    /* Copies of smp_objs' base and secret, set at init and never changed,
     * in the 32 bytes before the first slot: kalloc's fast path reads
     * nothing but this CPU's caches (no load of the top's pointer), and
     * they share a line with the smallest classes' slots. */
    _Alignas(SMP_CPU_ALIGN) uintptr_t base;
    uintptr_t secret;
    char unused[32 - 2 * sizeof(uintptr_t)];   /* 32 bytes on every pointer width */
    struct smp_mag_slot slot[SMP_KALLOC_CLASSES];
    struct smp_mag previous[SMP_KALLOC_CLASSES];
};
/* A power of two: CPUs' caches never share a line or a prefetched pair.
 * The ten slots and ten previous magazines fill it exactly where pointers
 * are 8 bytes; where they are 4, the alignment rounds it up to the same. */
_Static_assert(sizeof(struct smp_obj_cpu) == 512, "per-CPU object caches: 512 bytes");
_Static_assert(__builtin_offsetof(struct smp_obj_cpu, slot) == 2 * SMP_SLOT_KEY(0),
               "class 0's slot lies at twice its key (smp_slot)");

static inline struct smp_mag_slot *smp_slot(struct smp_obj_cpu *c, size_t key)
{
    return (struct smp_mag_slot *)((char *)c + 2 * key);
}

static inline struct smp_mag_slot *smp_slot_of(struct smp_obj_cpu *c, unsigned cls)
{
    return &c->slot[cls];
}

static inline struct smp_mag smp_loaded_get(struct smp_obj_cpu *c, unsigned cls)
{
    struct smp_mag_slot *s = smp_slot_of(c, cls);
    return (struct smp_mag){ s->head, s->cap - s->room };
}

static inline void smp_loaded_set(struct smp_obj_cpu *c, unsigned cls, struct smp_mag m)
{
    struct smp_mag_slot *s = smp_slot_of(c, cls);
    s->head = m.head;
    s->room = s->cap - m.count;
    s->last = 0;
}

/* Shared slab state of one class.  lock protects the lists and every slab
 * descriptor of this class. */
struct smp_slab_class {
    _Alignas(SMP_CACHELINE) struct smp_spinlock lock;
    uint32_t partial;                /* slabs with free objects, some in use */
    uint32_t empty;                  /* slabs with nothing in use */
    unsigned nempty;
    unsigned nslabs;                 /* all slabs of this class */
    unsigned size, order, per_slab;  /* object size, slab order, objects per slab */
    char name[16];                   /* "kmem.slabN" */
};

/* Full magazines of one class, shared by all CPUs; lock protects all. */
struct smp_depot {
    _Alignas(SMP_CACHELINE) struct smp_spinlock lock;
    _Atomic unsigned n;              /* written under lock; peeked without */
    unsigned max;
    struct smp_mag full[SMP_DEPOT_SLOTS];
    uint8_t from[SMP_DEPOT_SLOTS];   /* the CPU that put full[i] (depot.c) */
    char name[16];                   /* "kmem.depotN" */
};

_Static_assert(SMP_MAX_CPUS <= 256, "a depot entry names the CPU that put it in a byte");

struct smp_objs {
    /* Read by every kalloc/kfree: one line. */
    struct smp_obj_cpu *cpu;         /* ncpu of them, carved from the region */
    uintptr_t secret;                /* per-init: free-list links are stored XOR it */
    uintptr_t base, span;            /* the managed pages (a decoded link lies inside) */
    int ncpu;
    uint32_t cap[SMP_KALLOC_CLASSES];/* objects per full magazine */
    struct smp_pages *pg;
    struct smp_slab_class slab[SMP_KALLOC_CLASSES];
    struct smp_depot depot[SMP_KALLOC_CLASSES];
#ifndef SMP_PORT_HAS_CPU_WORDS
    /* &cpu[c] for c < ncpu: where the port keeps no words for the core,
     * a fast path finds its CPU's caches with one load after its c < ncpu
     * test, instead of a shift and an add.  Where it does, the top
     * publishes &cpu[c] as word SMP_OBJ_WORD (base/percpu.h) and the
     * header goes without the table. */
    struct smp_obj_cpu *cpu_at[SMP_MAX_CPUS];
#endif
};

/* Which of each CPU's words (smp_percpu_publish) is this CPU's &cpu[c]. */
#define SMP_OBJ_WORD 1

/* A CPU's object caches while no region is live (smp_cpu_words_idle,
 * port.h): in every slot room 0 (the free sees a full magazine) and head 1
 * with check all ones (the pop's test fails, base being 0).  Read only. */
extern const struct smp_obj_cpu smp_obj_cpu_idle;

/*
 * Hardening (default build).  Free objects are linked through their first
 * words, stored XOR a per-init secret, and a link is checked before the
 * object it leads to is handed out: it must decode to NULL or into the
 * region, at a multiple of the class size (on the fast path one AND, see
 * struct smp_mag_slot).  So a stray write
 * into a freed object (use after free, an overflow from its neighbour) is
 * reported as corruption of that object -- the magazine remembers the last
 * object it gave out, whose link that was -- instead of handing out a wild
 * pointer.  kfree of the object on top of this CPU's magazine (freed twice
 * in a row, the first free still in the cache) panics as a double free.
 * The checked build (SMP_CHECKED) catches double frees of any kind.
 */
static inline void *smp_link_decode(uintptr_t secret, const void *obj)
{
    return (void *)(*(const uintptr_t *)obj ^ secret);
}

static inline void *smp_link_get(const struct smp_objs *o, const void *obj)
{
    return smp_link_decode(o->secret, obj);
}

static inline void smp_link_set(const struct smp_objs *o, void *obj, const void *next)
{
    *(uintptr_t *)obj = (uintptr_t)next ^ o->secret;
}

/* A link from obj decoded to next, which is neither NULL nor in the region. */
_Noreturn void smp_obj_bad_link(const struct smp_objs *o, const void *obj, const void *next);

/* Follow obj's link, checked (slow paths and the slabs). */
static inline void *smp_link_next(const struct smp_objs *o, const void *obj)
{
    void *next = smp_link_get(o, obj);
    if (__builtin_expect((uintptr_t)next - o->base >= o->span || ((uintptr_t)next & 7), 0) && next)
        smp_obj_bad_link(o, obj, next);
    return next;
}

/* ---- setup --------------------------------------------------------------- */
size_t smp_obj_percpu_bytes(int ncpu);
void smp_obj_init(struct smp_objs *o, struct smp_pages *pg, int ncpu, void *percpu_mem);

/* ---- magazine.c: slow paths (entered in the section; they exit it) ------- */
/* The arguments come in the order the fast paths hold them in registers
 * (the key they looked up first), so the tail calls move nothing. */
void *smp_obj_alloc_slow(size_t key, struct smp_objs *o, int cpu);
void smp_obj_free_slow(void *p, size_t key, struct smp_objs *o, int cpu);
/* Empty cpu's magazines into the slabs (exclusive access to cpu: inside
 * smp_on_cpu or a stopped world; freed slabs go to the zone). */
void smp_obj_flush_cpu(struct smp_objs *o, int cpu);

/* ---- depot.c ------------------------------------------------------------- */
void smp_depot_init(struct smp_objs *o);
/* Take a full magazine (1) or find none (0): one that cpu put, if any. */
int smp_depot_get(struct smp_objs *o, unsigned cls, struct smp_mag *out, int cpu);
/* Store a full magazine from cpu (1), or refuse when the depot is at its
 * bound (0). */
int smp_depot_put(struct smp_objs *o, unsigned cls, struct smp_mag mag, int cpu);
/* Every stored magazine back to the slabs (freed slabs go to the zone). */
void smp_depot_flush(struct smp_objs *o);

/* ---- slab.c -------------------------------------------------------------- */
void smp_slab_init(struct smp_objs *o);
/* Take up to n free objects, chained; returns how many (0 only if no page
 * could be had).  No section and no lock held by the caller. */
unsigned smp_slab_take(struct smp_objs *o, unsigned cls, unsigned n, void **chain);
/* Give back a chain of n objects (no section, no lock held); slabs left
 * empty beyond one per class go back through the CPU's page cache... */
void smp_slab_give(struct smp_objs *o, unsigned cls, void *chain, unsigned n);
/* ...or through give (smp_pg_zone_free where no section may be entered:
 * inside smp_on_cpu or a stopped world). */
void smp_slab_give_to(struct smp_objs *o, unsigned cls, void *chain, unsigned n,
                      void (*give)(struct smp_pages *, void *, unsigned));
/* Release every empty slab through give(block, order) (e.g. to the zone
 * while the world is stopped). */
void smp_slab_release_empty(struct smp_objs *o, void (*give)(struct smp_pages *, void *, unsigned));
/* Head descriptor index of the slab holding addr, or SMP_NIL. */
uint32_t smp_slab_head(const struct smp_objs *o, uintptr_t addr);
/* Whether addr, in a slab, is an object the slab never handed out. */
int smp_slab_never_used(const struct smp_objs *o, uintptr_t addr);
void smp_slab_lock_all(struct smp_objs *o);
void smp_slab_unlock_all(struct smp_objs *o);

/* ---- obj_check.c (class locks and depot locks held by the caller) -------- */
/* What the page walk found of the object layer. */
struct smp_obj_census {
    size_t slabs[SMP_KALLOC_CLASSES], inuse[SMP_KALLOC_CLASSES];
};
/* Verify one slab; called from the page walk for PG_OWNED blocks. */
int smp_slab_check_one(struct smp_objs *o, uint32_t idx, struct smp_obj_census *census);
/* Verify magazines, depot and class totals after the walk (world stopped). */
int smp_obj_check_frozen(struct smp_objs *o, const struct smp_obj_census *census);
void smp_depot_lock_all(struct smp_objs *o);
void smp_depot_unlock_all(struct smp_objs *o);
/* smp_kalloc_stats for one CPU (cached = its magazines) or all (cpu -1:
 * cached = every CPU's magazines). */
void smp_obj_stats(struct smp_objs *o, int cpu, struct smp_kalloc_stats *out);

#endif
