/*
 * The malloc front end: the C library's allocation calls over smp_kalloc /
 * smp_kfree, for LD_PRELOAD (build/libsmpmem-malloc.so).
 *
 * Interface (environment, read once at the first allocation):
 *   SMPMEM_HEAP_SIZE  bytes of address space to reserve, with an optional
 *                     K/M/G/T suffix; default 64G.  Only touched pages cost
 *                     memory (MAP_NORESERVE); if the reservation fails, a
 *                     message on stderr says so and halves are tried.
 *   SMPMEM_VCPUS      virtual CPUs (1..64); default twice the CPUs this
 *                     process may run on.
 *   SMPMEM_CHECK=1    at exit, smp_pmm_check() the whole heap; a violation
 *                     is printed and the process aborts.
 *   SMPMEM_STATS=1    at exit, print heap figures on stderr.
 *
 * Every call: wait until initialised (the first caller initialises; a
 * call the initialising thread makes meanwhile is served from a small
 * static arena), own a vCPU (vcpu.h), call the core, give it back.
 * Blocks are the core's: aligned to the next power of two >= their size,
 * which also gives every alignment memalign and friends can ask for.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/membarrier.h>
#include <smpmem/pmm.h>
#include <smpmem/port.h>
#include "vcpu.h"
#include "malloc_internal.h"

#define API __attribute__((visibility("default")))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

enum { UNINIT, INITIALISING, READY, FAILED };
static _Atomic int state = UNINIT;
static __thread int initialising __attribute__((tls_model("initial-exec")));
static int check_at_exit, stats_at_exit;
static char *region;
static size_t region_size;
/* Double-free detection (kfree itself catches it for page blocks, not for
 * slab objects, which carry no state of their own): free stores
 * key ^ address in a block's second word, every allocation clears it, so a
 * block whose second word holds that value is free now (short of a program
 * storing exactly that 64-bit value there: the key is random).  The core
 * links free objects through their first word only.  Blocks are at least
 * 16 bytes so the second word is the block's own. */
static uintptr_t free_key;
#define MIN_BLOCK 16

/* ---- reporting without allocating -------------------------------------- */

static void say(const char *s)
{
    smp_port_write(s, strlen(s));
}

static void say_num(size_t v)
{
    char b[24];
    int i = sizeof b;
    do
        b[--i] = (char)('0' + v % 10);
    while (v /= 10);
    smp_port_write(b + i, sizeof b - (size_t)i);
}

/* ---- the bootstrap arena: allocations made while we initialise --------- */

#define BOOT_BYTES (64 * 1024)
static _Alignas(4096) char boot[BOOT_BYTES];
static _Atomic size_t boot_used;

static int in_boot(const void *p)
{
    return (const char *)p >= boot && (const char *)p < boot + BOOT_BYTES;
}

/* A 16-byte header before each block holds its size; alignment up to 4 KiB. */
static void *boot_alloc(size_t size, size_t align)
{
    if (align < 16)
        align = 16;
    if (size > BOOT_BYTES || align > 4096)
        return 0;
    size_t old = atomic_load(&boot_used), start;
    do {
        start = (old + 16 + align - 1) & ~(align - 1);
        if (start + size > BOOT_BYTES)
            return 0;
    } while (!atomic_compare_exchange_weak(&boot_used, &old, start + size));
    *(size_t *)(boot + start - 16) = size;
    return boot + start;
}

static size_t boot_size(const void *p)
{
    return *(const size_t *)((const char *)p - 16);
}

/* ---- the thread cache: the vCPU's compare-and-swap once per batch ------
 *
 * A CAS per call is most of a malloc/free pair's cost, and a vCPU held by
 * a thread the kernel preempted is lost to its core's other threads until
 * that thread runs again: the fewer entries, the better.  So small blocks
 * (16 B .. 2 KiB, the core's slab classes) pass through a per-thread front,
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
#define TC_CLASSES 8                 /* 16 << c bytes */
#define TC_PENDING 64
#define TC_BATCH(c) ((c) <= 5 ? 16u : 16u >> ((c) - 5))   /* <= 8 KiB a refill */
#define TC_LIMIT(c) ((c) <= 6 ? 32u : 16u)
#define TC_SLOTS 32                  /* the largest TC_LIMIT */
struct tcache {
    unsigned n[TC_CLASSES];          /* blocks in slot[c] */
    _Atomic int busy;                /* 1 while the owner reads or writes the rest */
    int npending;
    /* TC_OFF, TC_ON, TC_DEAD (thread exiting), TC_HELD (a reclaim has it);
     * changed only under tc_list_lock, but for TC_OFF -> TC_ON's first step */
    _Atomic int state;
    void *slot[TC_CLASSES][TC_SLOTS];
    uintptr_t pending[TC_PENDING];   /* frees not sorted yet: address | class */
    struct tcache *next, *prev;      /* on tc_list while TC_ON (tc_list_lock) */
};
enum { TC_OFF, TC_ON, TC_DEAD, TC_HELD };
static __thread struct tcache tc __attribute__((tls_model("initial-exec")));
static pthread_key_t tc_key;
static _Atomic int tc_enabled;
static int tc_wanted;

/*
 * Reclaim: when the core comes back empty, the blocks in every thread's
 * cache go back to it, not only the caller's -- else up to 95.5 KiB per
 * thread, of threads that may never call malloc again, would stay out of
 * reach and malloc would say ENOMEM with memory to spare.
 *
 * A cache has no lock (its owner's malloc and free would pay one per
 * call); the owner marks the time it touches the cache instead, and the
 * reclaimer stops owners from starting, asymmetrically (as port/hosted does
 * for cross-calls):
 *   owner:      busy = 1;  [compiler barrier]
 *               if (state != TC_ON) { busy = 0; bypass the cache }
 *               ... use the cache ...;  busy = 0 (release)
 *   reclaimer:  every state = TC_HELD;  membarrier();
 *               for each cache: wait until busy == 0, drain it, state = TC_ON (release)
 * membarrier(PRIVATE_EXPEDITED) runs a full barrier on every CPU running a
 * thread of this process, so either the owner's busy = 1 is visible to the
 * reclaimer (which waits for the owner's busy = 0) or the owner's load sees
 * TC_HELD (and it leaves its cache alone until the reclaim is over).  The
 * owner read its state on every call already: its side costs two plain
 * stores; the reclaimer's a system call, once per exhaustion.  An owner
 * waits for nothing: while its cache is held, it calls the core directly.  A reclaimer waits only for owners inside
 * their cache, which wait for nothing but vCPUs and core locks, and holds
 * no vCPU while it waits.  Where the kernel lacks membarrier, only the
 * caller's own cache goes back.
 *
 * Lock order: tc_list_lock, then vCPUs (the reclaimer drains with kfree;
 * fork prepare takes it before every owner word).  tc_join and thread exit
 * take it alone, outside the cache.
 */
static pthread_mutex_t tc_list_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tcache *tc_list;
static int tc_fence;                 /* 0 untried, 1 membarrier registered, -1 unavailable */

/* 1 if the owner may use its cache now (then tc_leave after); 0: bypass. */
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

/* Give n blocks to kfree in one vCPU entry. */
static void tc_give_back(void **blocks, int n)
{
    smpm_enter();
    for (int i = 0; i < n; i++)
        smp_kfree(blocks[i]);
    smpm_exit();
}

/* The buffer is full: sort it into the class arrays; what overflows goes
 * back to the core. */
static __attribute__((noinline)) void tc_sort(struct tcache *t)
{
    void *over[TC_PENDING];
    int nover = 0;
    static const unsigned char limit[TC_CLASSES] = {
        TC_LIMIT(0), TC_LIMIT(1), TC_LIMIT(2), TC_LIMIT(3),
        TC_LIMIT(4), TC_LIMIT(5), TC_LIMIT(6), TC_LIMIT(7),
    };
    for (int i = 0; i < t->npending; i++) {
        uintptr_t e = t->pending[i];
        unsigned c = (unsigned)e & 15, n = t->n[c];
        void *p = (void *)(e - c);
        if (likely(n < limit[c])) {
            t->slot[c][n] = p;
            t->n[c] = n + 1;
        } else {
            over[nover++] = p;
        }
    }
    t->npending = 0;
    if (nover)
        tc_give_back(over, nover);
}

/* Everything the thread holds back to the core, in one vCPU entry. */
static void tc_drain(struct tcache *t)
{
    smpm_enter();
    for (int i = 0; i < t->npending; i++)
        smp_kfree((void *)(t->pending[i] & ~(uintptr_t)15));
    t->npending = 0;
    for (unsigned c = 0; c < TC_CLASSES; c++) {
        for (unsigned i = 0; i < t->n[c]; i++)
            smp_kfree(t->slot[c][i]);
        t->n[c] = 0;
    }
    smpm_exit();
}

/* Give t's cached blocks back to the core (its owner, or the reclaimer
 * with the owner kept out); 1 if there were any. */
static int tc_give_all(struct tcache *t)
{
    int any = t->npending;
    for (unsigned c = 0; c < TC_CLASSES; c++)
        any |= (int)t->n[c];
    if (any)
        tc_drain(t);
    return any != 0;
}

/* A full barrier on every CPU running a thread of ours; 0 if the kernel
 * offers none (membarrier registered once, on first use). */
static int process_fence(void)
{
    if (tc_fence == 0)
        tc_fence = syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0 ? 1 : -1;
    return tc_fence > 0 && syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0;
}

/* The core came back empty: every thread's cached blocks back to it, so a
 * retry may find their slabs emptied and coalesced by the core's reclaim.
 * The caller must not be inside its own cache.  1 if any block went back. */
static int tc_reclaim_all(void)
{
    int any = 0;
    pthread_mutex_lock(&tc_list_lock);
    for (struct tcache *t = tc_list; t; t = t->next)
        atomic_store_explicit(&t->state, TC_HELD, memory_order_relaxed);
    if (process_fence()) {
        for (struct tcache *t = tc_list; t; t = t->next) {
            while (atomic_load_explicit(&t->busy, memory_order_acquire))
                sched_yield();           /* its owner is between enter and leave */
            any |= tc_give_all(t);
        }
    } else {
        any = tc_give_all(&tc);          /* no fence: our own cache only (we are not in it) */
    }
    for (struct tcache *t = tc_list; t; t = t->next)
        atomic_store_explicit(&t->state, TC_ON, memory_order_release);
    pthread_mutex_unlock(&tc_list_lock);
    return any;
}

static void tc_thread_exit(void *unused)
{
    (void)unused;
    pthread_mutex_lock(&tc_list_lock);   /* off the list: no reclaimer sees it again */
    if (tc.prev)
        tc.prev->next = tc.next;
    else
        tc_list = tc.next;
    if (tc.next)
        tc.next->prev = tc.prev;
    atomic_store_explicit(&tc.state, TC_DEAD, memory_order_relaxed);
    pthread_mutex_unlock(&tc_list_lock);
    tc_drain(&tc);
}

/* 1 if this thread may use its cache (registering it the first time). */
static int tc_join(struct tcache *t)
{
    if (atomic_load_explicit(&t->state, memory_order_relaxed) == TC_OFF &&
        atomic_load_explicit(&tc_enabled, memory_order_relaxed)) {
        pthread_setspecific(tc_key, t);   /* a key below 32: no allocation */
        pthread_mutex_lock(&tc_list_lock);
        t->prev = 0;
        t->next = tc_list;
        if (tc_list)
            tc_list->prev = t;
        tc_list = t;
        atomic_store_explicit(&t->state, TC_ON, memory_order_relaxed);
        pthread_mutex_unlock(&tc_list_lock);
    }
    return atomic_load_explicit(&t->state, memory_order_relaxed) == TC_ON;
}

/* Class c's array is empty: refill it with one vCPU entry and take a block. */
static void *tc_refill(struct tcache *t, unsigned c)
{
    size_t size = (size_t)16 << c;
    unsigned batch = TC_BATCH(c), got = 0;
    smpm_enter();
    while (got < batch) {
        void *p = smp_kalloc(size);
        if (!p)
            break;
        t->slot[c][got++] = p;
    }
    smpm_exit();
    if (!got)
        return 0;
    t->n[c] = got - 1;
    return t->slot[c][got - 1];
}

/* ---- initialisation ----------------------------------------------------- */

/* The process's environment as it started, from /proc (getenv may not be
 * ready when the dynamic loader makes the first allocation).  Copies the
 * value of name into out; returns 1 if found. */
static int env_get(const char *name, char *out, size_t outlen)
{
    int fd = open("/proc/self/environ", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        const char *v = getenv(name);
        if (!v)
            return 0;
        strncpy(out, v, outlen - 1);
        out[outlen - 1] = 0;
        return 1;
    }
    size_t nlen = strlen(name), pos = 0, o = 0;  /* pos: index in the current entry */
    int matching = 1, found = 0, done = 0;
    char buf[4096];
    ssize_t got;
    while (!done && (got = read(fd, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < got; i++) {
            char c = buf[i];
            if (c == 0) {
                if (found) {
                    done = 1;
                    break;
                }
                pos = 0;
                matching = 1;
                continue;
            }
            if (found) {
                if (o + 1 < outlen)
                    out[o++] = c;
            } else if (matching) {
                if (pos < nlen)
                    matching = c == name[pos];
                else if (pos == nlen)
                    found = c == '=', matching = found;
            }
            pos++;
        }
    }
    close(fd);
    out[o] = 0;
    return found;
}

static size_t parse_size(const char *s)
{
    size_t v = 0;
    if (*s < '0' || *s > '9')
        return 0;
    while (*s >= '0' && *s <= '9')
        v = v * 10 + (size_t)(*s++ - '0');
    switch (*s | 0x20) {
    case 't': v <<= 10; /* fall through */
    case 'g': v <<= 10; /* fall through */
    case 'm': v <<= 10; /* fall through */
    case 'k': v <<= 10; break;
    default: break;
    }
    return v;
}

static int cpus_allowed(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return 1;
    int n = CPU_COUNT(&set);
    return n > 0 ? n : 1;
}

/* Reserve size bytes aligned to min(size, 4 GiB) rounded down to a power
 * of two, so the buddy's largest blocks fit whole. */
static void *reserve(size_t size)
{
    size_t align = (size_t)1 << 32;
    while (align > size)
        align >>= 1;
    if (align < 4096)
        align = 4096;
    size_t span = size + align;
    char *p = mmap(0, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return 0;
    char *a = (char *)(((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1));
    if (a > p)
        munmap(p, (size_t)(a - p));
    if (a + size < p + span)
        munmap(a + size, (size_t)(p + span - (a + size)));
    return a;
}

static int init_core(void)
{
    char v[64];
    size_t size = (size_t)64 << 30;
    if (env_get("SMPMEM_HEAP_SIZE", v, sizeof v)) {
        size = parse_size(v);
        if (size < ((size_t)64 << 20)) {
            say("smpmem: SMPMEM_HEAP_SIZE='");
            say(v);
            say("' is not a size of at least 64M; using 64G\n");
            size = (size_t)64 << 30;
        }
    }
    int ncpu = 2 * cpus_allowed();
    if (env_get("SMPMEM_VCPUS", v, sizeof v)) {
        size_t n = parse_size(v);
        ncpu = n >= 1 && n <= SMP_MAX_CPUS ? (int)n : ncpu;
    }
    if (ncpu > SMP_MAX_CPUS)
        ncpu = SMP_MAX_CPUS;
    check_at_exit = env_get("SMPMEM_CHECK", v, sizeof v) && v[0] == '1';
    tc_wanted = !(env_get("SMPMEM_TCACHE", v, sizeof v) && v[0] == '0');
    stats_at_exit = env_get("SMPMEM_STATS", v, sizeof v) && v[0] == '1';

    char *p = reserve(size);
    if (!p) {
        int e = errno;
        say("smpmem: cannot reserve ");
        say_num(size >> 20);
        say(" MiB of address space for the heap (");
        say(strerror(e));
        say("); set SMPMEM_HEAP_SIZE smaller.  Trying less.\n");
        while (!p && size > ((size_t)64 << 20))
            p = reserve(size >>= 1);
        if (!p) {
            say("smpmem: no heap could be reserved: every allocation fails with ENOMEM\n");
            return 0;
        }
        say("smpmem: reserved ");
        say_num(size >> 20);
        say(" MiB\n");
    }
    smpm_vcpu_setup(ncpu);
    smpm_enter();                    /* the core's init counts pushes on a vCPU */
    int rc = smp_pmm_init_flags(p, p + size, ncpu, SMP_INIT_ZEROED);
    smpm_exit();
    if (rc) {
        say("smpmem: smp_pmm_init_flags failed; every allocation fails with ENOMEM\n");
        munmap(p, size);
        return 0;
    }
    region = p;
    region_size = size;
    uint64_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    uintptr_t k = (uintptr_t)(lo | hi << 32) ^ (uintptr_t)&k ^ (uintptr_t)p;
    k = (k ^ (k >> 31)) * 0x9e3779b97f4a7c15ULL;
    free_key = k | 1;
    return 1;
}

static void fork_prepare(void)
{
    /* An initialisation under way finishes first (it holds vCPU 0). */
    while (atomic_load(&state) == INITIALISING)
        sched_yield();
    if (atomic_load(&state) == READY) {
        pthread_mutex_lock(&tc_list_lock);   /* no reclaim across the fork */
        smpm_fork_prepare();
    }
}

static void fork_parent(void)
{
    if (atomic_load(&state) == READY) {
        smpm_fork_release(0);
        pthread_mutex_unlock(&tc_list_lock);
    }
}

/* The child has one thread: the other caches' owners are gone (their
 * blocks with them, as a thread's stack is), so the list keeps ours alone. */
static void fork_child(void)
{
    if (atomic_load(&state) == READY) {
        smpm_fork_release(1);
        tc_list = 0;
        if (atomic_load_explicit(&tc.state, memory_order_relaxed) == TC_ON) {
            tc.next = tc.prev = 0;
            tc_list = &tc;
        }
        pthread_mutex_unlock(&tc_list_lock);
    }
}

/* 1 when the heap is ready, 0 when this call must be served otherwise
 * (the initialising thread's own nested calls, or a failed heap). */
static __attribute__((noinline, cold)) int init_slow(void)
{
    if (initialising)
        return 0;
    int s = UNINIT;
    if (atomic_compare_exchange_strong(&state, &s, INITIALISING)) {
        initialising = 1;
        int ok = init_core();
        atomic_store(&state, ok ? READY : FAILED);
        initialising = 0;
        /* May allocate: the heap is ready now. */
        pthread_atfork(fork_prepare, fork_parent, fork_child);
        if (ok && tc_wanted && pthread_key_create(&tc_key, tc_thread_exit) == 0)
            atomic_store(&tc_enabled, 1);
        return ok;
    }
    while ((s = atomic_load(&state)) == INITIALISING)
        sched_yield();
    return s == READY;
}

static inline int ready(void)
{
    return likely(atomic_load_explicit(&state, memory_order_acquire) == READY) || init_slow();
}

/* ---- the calls ----------------------------------------------------------- */

static void *nomem(void)
{
    errno = ENOMEM;
    return 0;
}

/* smp_kalloc in one vCPU entry; when the core is empty, once more after
 * every thread's cache went back.  Not inside the caller's cache. */
static void *core_alloc(size_t size)
{
    for (int retried = 0;; retried = 1) {
        smpm_enter();
        void *p = smp_kalloc(size);
        smpm_exit();
        if (likely(p != 0) || retried || !tc_reclaim_all())
            return p;
    }
}

/* A block of at least size bytes aligned to align (a power of two). */
static void *alloc_aligned(size_t size, size_t align)
{
    size_t want = size > align ? size : align;
    if (unlikely(!ready())) {
        void *b = initialising ? boot_alloc(size, align) : 0;
        return b ? b : nomem();
    }
    void *p = core_alloc(want > MIN_BLOCK ? want : MIN_BLOCK);
    if (unlikely(!p))
        return nomem();
    ((uintptr_t *)p)[1] = 0;
    return p;
}

static __attribute__((noinline)) void *malloc_slow(size_t size)
{
    if (unlikely(!ready()))
        return alloc_aligned(size, 16);
    struct tcache *t = &tc;
    if (size <= 2048 && tc_join(t)) {
        for (int retried = 0;; retried = 1) {
            if (!tc_enter(t))
                break;                   /* a reclaim is under way: the core directly */
            void *p = tc_refill(t, tc_class(size));
            tc_leave(t);
            if (likely(p != 0)) {
                ((uintptr_t *)p)[1] = 0;
                return p;
            }
            if (retried || !tc_reclaim_all())
                return nomem();
        }
    }
    void *p = core_alloc(size > MIN_BLOCK ? size : MIN_BLOCK);
    if (unlikely(!p))
        return nomem();
    ((uintptr_t *)p)[1] = 0;
    return p;
}

API void *malloc(size_t size)
{
    struct tcache *t = &tc;
    if (likely(size <= 2048) && likely(tc_enter(t))) {
        unsigned c = tc_class(size), n = t->n[c];
        if (likely(n != 0)) {
            void *p = t->slot[c][--n];
            t->n[c] = n;
            tc_leave(t);
            ((uintptr_t *)p)[1] = 0;
            return p;
        }
        tc_leave(t);
    }
    return malloc_slow(size);
}

static _Noreturn __attribute__((cold)) void already_free(const char *who, void *p)
{
    char hex[19] = "0x";
    for (int i = 0; i < 16; i++)
        hex[2 + i] = "0123456789abcdef"[((uintptr_t)p >> (60 - 4 * i)) & 15];
    hex[18] = 0;
    say("smpmem: ");
    say(who);
    say("(");
    say(hex);
    say("): block is already free (double free?)");
    smp_port_panic("");
}

/* For a pointer inside the region (memory is mapped there, so the read is
 * safe; outside it, kfree reports the address): 0 if it is free now. */
static inline int live(const void *p)
{
    return (uintptr_t)p - (uintptr_t)region >= region_size ||
           ((const uintptr_t *)p)[1] != (free_key ^ (uintptr_t)p);
}

/* p is the start of a slab object of size bytes (smp_kalloc_small_size's
 * answer, >= 16): mark it free and buffer it. */
static __attribute__((noinline)) void tc_sort_leave(struct tcache *t)
{
    tc_sort(t);
    tc_leave(t);
}

/* Inside t (tc_enter); leaves it.  The sort is a tail call, so free keeps
 * no stack frame. */
static inline void tc_put_leave(struct tcache *t, void *p, size_t size)
{
    uintptr_t a = (uintptr_t)p, mark = free_key ^ a;
    if (unlikely(((uintptr_t *)p)[1] == mark))
        already_free("free", p);
    ((uintptr_t *)p)[1] = mark;
    t->pending[t->npending++] = a | ((unsigned)__builtin_ctzl(size) - 4);
    if (unlikely(t->npending == TC_PENDING)) {
        tc_sort_leave(t);
        return;
    }
    tc_leave(t);
}

static void free_slow(void *p);

API void free(void *p)
{
    struct tcache *t = &tc;
    /* 0 for NULL, the bootstrap arena, page blocks and every pointer kfree
     * must judge; 8 never (blocks are at least 16 bytes). */
    size_t size = smp_kalloc_small_size(p);
    if (likely(size >= MIN_BLOCK) && likely(tc_enter(t))) {
        tc_put_leave(t, p, size);
        return;
    }
    free_slow(p);
}

static __attribute__((noinline)) void free_slow(void *p)
{
    if (!p || unlikely(in_boot(p)))
        return;
    if (unlikely(!ready())) {
        say("smpmem: free of a block the heap never gave out\n");
        return;                      /* the heap failed: nothing can be ours */
    }
    /* A thread that only frees (the consumer of a producer's blocks) joins
     * its cache here, or every free of such a thread would pay a vCPU entry
     * of its own. */
    struct tcache *t = &tc;
    size_t size;
    if (atomic_load_explicit(&t->state, memory_order_relaxed) == TC_OFF && tc_join(t) &&
        (size = smp_kalloc_small_size(p)) >= MIN_BLOCK && tc_enter(t)) {
        tc_put_leave(t, p, size);
        return;
    }
    /* Mark after taking the vCPU: the block's line is often another core's
     * (freed where it was not allocated), and a store still in flight
     * would make the compare-and-swap wait for it. */
    smpm_enter();
    if ((uintptr_t)p - (uintptr_t)region < region_size) {
        uintptr_t mark = free_key ^ (uintptr_t)p;
        if (unlikely(((uintptr_t *)p)[1] == mark)) {
            smpm_exit();
            already_free("free", p);
        }
        ((uintptr_t *)p)[1] = mark;
    }
    smp_kfree(p);                    /* panics with the address on a bad pointer */
    smpm_exit();
}

API void *calloc(size_t n, size_t size)
{
    size_t total;
    if (unlikely(__builtin_mul_overflow(n, size, &total)))
        return nomem();
    void *p = malloc(total);
    if (p)
        memset(p, 0, total);
    return p;
}

static size_t usable(void *p)
{
    if (in_boot(p))
        return boot_size(p);
    if (unlikely(!live(p)))
        already_free("malloc_usable_size/realloc", p);
    size_t small = smp_kalloc_small_size(p);
    if (small)
        return small;
    smpm_enter();
    size_t n = smp_kalloc_usable_size(p);   /* panics with the address on a bad pointer */
    smpm_exit();
    return n;
}

API void *realloc(void *p, size_t size)
{
    if (!p)
        return malloc(size);
    if (size == 0) {                  /* glibc's choice: free and return NULL */
        free(p);
        return 0;
    }
    size_t have = usable(p);
    /* Fits and wastes under half: stay. */
    if (size <= have && (size > have / 2 || have <= 16) && !in_boot(p))
        return p;
    void *q = malloc(size);
    if (!q)
        return 0;                     /* errno is ENOMEM; p is untouched */
    memcpy(q, p, size < have ? size : have);
    free(p);
    return q;
}

API void *reallocarray(void *p, size_t n, size_t size)
{
    size_t total;
    if (unlikely(__builtin_mul_overflow(n, size, &total)))
        return nomem();
    return realloc(p, total);
}

static int pow2(size_t a)
{
    return a && !(a & (a - 1));
}

API int posix_memalign(void **out, size_t align, size_t size)
{
    if (!pow2(align) || align % sizeof(void *))
        return EINVAL;
    int saved = errno;
    void *p = alloc_aligned(size, align);
    errno = saved;
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}

API void *aligned_alloc(size_t align, size_t size)
{
    if (!pow2(align)) {
        errno = EINVAL;
        return 0;
    }
    return alloc_aligned(size, align);
}

/* glibc rounds an alignment that is not a power of two up to one; so do
 * we (programs written against it may rely on it).  Absurd ones: EINVAL. */
API void *memalign(size_t align, size_t size)
{
    if (align > ((size_t)1 << (sizeof(size_t) * 8 - 2))) {
        errno = EINVAL;
        return 0;
    }
    size_t a = 1;
    while (a < align)
        a <<= 1;
    return alloc_aligned(size, a);
}

API void *valloc(size_t size)
{
    return alloc_aligned(size, 4096);
}

API void *pvalloc(size_t size)
{
    size_t r;
    if (__builtin_add_overflow(size, 4095, &r))
        return nomem();
    r &= ~(size_t)4095;
    return alloc_aligned(r ? r : 4096, 4096);
}

API size_t malloc_usable_size(void *p)
{
    if (!p)
        return 0;
    if (unlikely(!ready()) && !in_boot(p))
        return 0;
    return usable(p);
}

/* ---- at exit: the check and the figures the tests ask for -------------- */

__attribute__((destructor)) static void at_exit(void)
{
    if (atomic_load(&state) != READY || !(check_at_exit || stats_at_exit))
        return;
    if (tc_enter(&tc)) {
        tc_drain(&tc);               /* the figures count the exiting thread's blocks free */
        tc_leave(&tc);
    }
    smpm_enter();
    if (stats_at_exit) {
        struct smp_kalloc_stats ks;
        smp_kalloc_stats(-1, &ks);
        size_t cached = 0;
        for (int c = 0; c < SMP_KALLOC_CLASSES; c++)
            cached += ks.cached[c] * ks.class_size[c];
        say("smpmem: vcpus ");
        say_num((size_t)smpm_ncpu);
        say(", heap ");
        say_num(region_size >> 20);
        say(" MiB, pages managed ");
        say_num(smp_pmm_total_pages());
        say(", free ");
        say_num(smp_pmm_free_pages());
        say(", slab pages ");
        say_num(ks.slab_pages);
        say(", bytes in magazines ");
        say_num(cached);
        unsigned long displaced = 0;
        for (int k = 0; k < smpm_ncpu; k++)
            displaced += atomic_load_explicit(&smpm_vcpus[k].displaced, memory_order_relaxed);
        say(", entries on another vCPU than the core's ");
        say_num(displaced);
        say("\n");
    }
    if (check_at_exit && smp_pmm_check() != 0) {
        say("smpmem: heap check failed at exit\n");
        abort();
    }
    smpm_exit();
}
