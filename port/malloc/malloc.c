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
#include <unistd.h>
#include <smpmem/pmm.h>
#include <smpmem/port.h>
#include "vcpu.h"
#include "malloc_internal.h"
#include "tcache.h"

#define API __attribute__((visibility("default")))

enum { UNINIT, INITIALISING, READY, FAILED };
static _Atomic int state = UNINIT;
static __thread int initialising __attribute__((tls_model("initial-exec")));
static int check_at_exit, stats_at_exit;
static char *region;
static size_t region_size;
static int tc_wanted;                /* SMPMEM_TCACHE is not 0 */
/* Double-free detection (kfree itself catches it for page blocks, not for
 * slab objects, which carry no state of their own): free stores
 * key ^ address in a block's second word, every allocation clears it, so a
 * block whose second word holds that value is free now (short of a program
 * storing exactly that 64-bit value there: the key is random).  The core
 * links free objects through their first word only.  Blocks are at least
 * 16 bytes so the second word is the block's own. */
uintptr_t smpm_free_key;

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
    smpm_free_key = k | 1;
    return 1;
}

static void fork_prepare(void)
{
    /* An initialisation under way finishes first (it holds vCPU 0). */
    while (atomic_load(&state) == INITIALISING)
        sched_yield();
    if (atomic_load(&state) == READY) {
        smpm_tc_fork_prepare();
        smpm_fork_prepare();
    }
}

static void fork_parent(void)
{
    if (atomic_load(&state) == READY) {
        smpm_fork_release(0);
        smpm_tc_fork_parent();
    }
}

static void fork_child(void)
{
    if (atomic_load(&state) == READY) {
        smpm_fork_release(1);
        smpm_tc_fork_child();
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
        if (ok)
            smpm_tc_setup(tc_wanted);
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
        if (likely(p != 0) || retried || !smpm_tc_reclaim_all())
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
    /* A refill that finds the core empty (or a cache a reclaim holds) falls
     * through to core_alloc, which reclaims every cache and tries again. */
    struct tcache *t = &smpm_tc;
    void *p = 0;
    if (size <= TC_MAX_BLOCK && smpm_tc_join(t) && tc_enter(t)) {
        p = smpm_tc_refill(t, tc_class(size));
        tc_leave(t);
    }
    if (!p)
        p = core_alloc(size > MIN_BLOCK ? size : MIN_BLOCK);
    if (unlikely(!p))
        return nomem();
    ((uintptr_t *)p)[1] = 0;
    return p;
}

API void *malloc(size_t size)
{
    struct tcache *t = &smpm_tc;
    if (likely(size <= TC_MAX_BLOCK) && likely(tc_enter(t))) {
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

_Noreturn __attribute__((cold)) void smpm_already_free(const char *who, void *p)
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
           ((const uintptr_t *)p)[1] != (smpm_free_key ^ (uintptr_t)p);
}

static void free_slow(void *p);

API void free(void *p)
{
    struct tcache *t = &smpm_tc;
    /* 0 for NULL, the bootstrap arena, page blocks and every pointer kfree
     * must judge; 8 never (blocks are at least 16 bytes); 4096 is the
     * core's and goes to kfree too (tc_takes). */
    size_t size = smp_kalloc_small_size(p);
    if (likely(tc_takes(size)) && likely(tc_enter(t))) {
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
    struct tcache *t = &smpm_tc;
    size_t size;
    if (atomic_load_explicit(&t->state, memory_order_relaxed) == TC_OFF && smpm_tc_join(t) &&
        tc_takes(size = smp_kalloc_small_size(p)) && tc_enter(t)) {
        tc_put_leave(t, p, size);
        return;
    }
    /* Mark after taking the vCPU: the block's line is often another core's
     * (freed where it was not allocated), and a store still in flight
     * would make the compare-and-swap wait for it. */
    smpm_enter();
    if ((uintptr_t)p - (uintptr_t)region < region_size) {
        uintptr_t mark = smpm_free_key ^ (uintptr_t)p;
        if (unlikely(((uintptr_t *)p)[1] == mark)) {
            smpm_exit();
            smpm_already_free("free", p);
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
        smpm_already_free("malloc_usable_size/realloc", p);
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
    if (tc_enter(&smpm_tc)) {
        smpm_tc_drain(&smpm_tc);     /* the figures count the exiting thread's blocks free */
        tc_leave(&smpm_tc);
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
