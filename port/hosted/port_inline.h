/*
 * Hosted port: the hot hooks inline (see SMP_PORT_INLINE in port.h).
 *
 * Each virtual CPU publishes its interrupt-off depth (noff) so that a
 * cross-call from another thread can wait until the CPU is outside every
 * section (port.c).  The owner's push is a plain store and a plain load:
 *
 *   owner push (depth 0 -> 1):  noff = 1;  [compiler barrier]  if (held) wait
 *   asker:                      held = 1;  membarrier();       wait for noff == 0
 *
 * membarrier makes every running thread execute a full barrier, so either
 * the owner's store is visible to the asker (which waits) or the owner's
 * load sees held (and the owner waits): an asymmetric Dekker, with the
 * expensive half on the rare side.  ThreadSanitizer does not understand
 * membarrier, so a TSan build uses the symmetric stand-in: seq_cst store
 * and load on the owner's side (an mfence), no membarrier on the asker's.
 */
#ifndef SMPMEM_HOSTED_PORT_INLINE_H
#define SMPMEM_HOSTED_PORT_INLINE_H

#include <stdatomic.h>
#include <stdint.h>

#if defined(__SANITIZE_THREAD__)
#define SMP_HOSTED_SYMMETRIC 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SMP_HOSTED_SYMMETRIC 1
#endif
#endif

struct smp_hosted_vcpu {
    _Alignas(128) _Atomic int noff;   /* published push depth; written by its thread */
    _Atomic int held;                 /* a cross-call has this CPU (under xmu) */
    int cpu;                          /* the CPU id of the thread counting here */
    /* The core's words (port.h): this CPU's caches once pmm_init set them,
     * else, and in a private record, and while a cross-call holds the CPU,
     * the idle ones.  Read by the owner's fast paths; written by the core
     * at init and reset, and by an asker around its call (port.c). */
    void *_Atomic words[SMP_CPU_WORDS];
};

/* local-exec: the hosted port links into executables (tests, benchmarks,
 * the demo), never into a shared object, so a thread-local is one
 * %fs-relative load, where initial-exec would first load its offset. */
#define SMP_HOSTED_TLS __attribute__((tls_model("local-exec")))
/* The record this thread's pushes count in: its CPU's, or a private one
 * while the thread runs a cross-called function for another CPU. */
extern _Thread_local struct smp_hosted_vcpu *smp_hosted_self SMP_HOSTED_TLS;
extern _Thread_local int smp_hosted_cpu SMP_HOSTED_TLS;
/* The push's rare slow path (wait.c): this vCPU is held by a cross-call.
 * At depth 1 (the outermost push) it publishes depth 0, waits for the
 * release and publishes 1 again; nested, it returns at once (the asker is
 * waiting for our outermost pop anyway). */
void smp_hosted_push_held(struct smp_hosted_vcpu *v);
/* Step back from `depth` to 0 until the holder lets go, then republish it. */
void smp_hosted_wait_released(struct smp_hosted_vcpu *v, int depth);
_Noreturn void smp_hosted_pop_underflow(void);

static inline int smp_port_cpu_id(void) { return smp_hosted_self->cpu; }

/* Big free blocks go back to the kernel (port.c; port.h says when). */
#define SMP_PORT_HAS_DISCARD 1
void smp_port_discard(void *p, size_t len);

/* Who is running: this thread (the address of one of its thread-locals). */
#define SMP_PORT_HAS_SELF 1
static inline uintptr_t smp_port_self(void) { return (uintptr_t)&smp_hosted_cpu; }

#if defined(__x86_64__) && !defined(SMP_HOSTED_SYMMETRIC)
/*
 * x86-64: push is `addl $1, noff; cmpl $0, held; jne` and pop is
 * `subl $1, noff; js`, with the rare paths out of line (.text.unlikely).
 * The add and sub are plain read-modify-writes, not locked: only the
 * owner writes noff, and what the asker needs is ordering, which the
 * Dekker argument above gets from the store-then-load here and the
 * membarrier there (x86 keeps stores in order, so the pop's store is a
 * release).  The "memory" clobbers keep the section's accesses between
 * them.  The slow calls come from the middle of leaf fast paths: the
 * held path steps over the red zone and goes through a trampoline that
 * saves every general register and aligns the stack (wait_x86_64.S); the
 * underflow path never returns, and realigns the stack itself.  So a fast
 * path pays no spills and no frame for either.
 */
#define SMP_HOSTED_VEC_CLOBBERS "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", \
    "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15"

static inline void smp_hosted_push(struct smp_hosted_vcpu *v)
{
    __asm__ volatile("addl $1, %[noff]\n\t"
                     "cmpl $0, %[held]\n\t"
                     "jne 2f\n"
                     "1:\n\t"
                     ".pushsection .text.unlikely,\"ax\",@progbits\n"
                     "2:\n\t"
                     "lea -128(%%rsp), %%rsp\n\t"
                     "push %%rdi\n\t"
                     "mov %[v], %%rdi\n\t"
                     "call smp_hosted_push_held_tramp\n\t"
                     "pop %%rdi\n\t"
                     "lea 128(%%rsp), %%rsp\n\t"
                     "jmp 1b\n\t"
                     ".popsection"
                     : [noff] "+m"(*(int *)&v->noff)
                     : [held] "m"(*(int *)&v->held), [v] "r"(v)
                     : "memory", "cc", SMP_HOSTED_VEC_CLOBBERS);
}

/* The push of a fast path that reads the core's words next (the token
 * push): the held test is theirs (smp_port_token_word below). */
static inline void smp_hosted_push_unchecked(struct smp_hosted_vcpu *v)
{
    __asm__ volatile("addl $1, %[noff]" : [noff] "+m"(*(int *)&v->noff) : : "memory", "cc");
}

static inline void smp_hosted_pop(struct smp_hosted_vcpu *v)
{
    __asm__ volatile("subl $1, %[noff]\n\t"
                     "js 2f\n"
                     ".pushsection .text.unlikely,\"ax\",@progbits\n"
                     "2:\n\t"
                     "call smp_hosted_pop_underflow\n\t"
                     ".popsection"
                     : [noff] "+m"(*(int *)&v->noff)
                     :
                     : "memory", "cc");
}

/* The pop of a push that counted in v (the token pop): it cannot
 * underflow, so it is the subtraction alone. */
static inline void smp_hosted_pop_paired(struct smp_hosted_vcpu *v)
{
    __asm__ volatile("subl $1, %[noff]" : [noff] "+m"(*(int *)&v->noff) : : "memory", "cc");
}
#else
static inline void smp_hosted_push(struct smp_hosted_vcpu *v)
{
    int n = atomic_load_explicit(&v->noff, memory_order_relaxed);
#ifdef SMP_HOSTED_SYMMETRIC
    atomic_store_explicit(&v->noff, n + 1, memory_order_seq_cst);
    if (__builtin_expect(atomic_load_explicit(&v->held, memory_order_seq_cst), 0))
        smp_hosted_push_held(v);
#else
    atomic_store_explicit(&v->noff, n + 1, memory_order_relaxed);
    atomic_signal_fence(memory_order_seq_cst);
    if (__builtin_expect(atomic_load_explicit(&v->held, memory_order_acquire), 0))
        smp_hosted_push_held(v);
#endif
}

static inline void smp_hosted_push_unchecked(struct smp_hosted_vcpu *v)
{
    int n = atomic_load_explicit(&v->noff, memory_order_relaxed);
#ifdef SMP_HOSTED_SYMMETRIC
    atomic_store_explicit(&v->noff, n + 1, memory_order_seq_cst);
#else
    atomic_store_explicit(&v->noff, n + 1, memory_order_relaxed);
    atomic_signal_fence(memory_order_seq_cst);
#endif
}

static inline void smp_hosted_pop(struct smp_hosted_vcpu *v)
{
    int n = atomic_load_explicit(&v->noff, memory_order_relaxed);
    if (__builtin_expect(n <= 0, 0))
        smp_hosted_pop_underflow();
    atomic_store_explicit(&v->noff, n - 1, memory_order_release);
}

static inline void smp_hosted_pop_paired(struct smp_hosted_vcpu *v)
{
    smp_hosted_pop(v);
}
#endif

static inline void smp_port_irq_push(void) { smp_hosted_push(smp_hosted_self); }
static inline void smp_port_irq_pop(void) { smp_hosted_pop(smp_hosted_self); }

/* Push, say which CPU, and hand the record to the pop (port.h): one
 * thread-local read serves all three, where a pop of its own would read it
 * again after the push's memory clobber.  The id may be read first because
 * a thread changes its vCPU only itself, outside every section; and the
 * record the pop decrements is the one the push incremented, because a
 * thread switches records only outside sections or inside a cross-call,
 * which switches back before it returns (port.c). */
#define SMP_PORT_HAS_PUSH_TOKEN 1
typedef struct smp_hosted_vcpu *smp_port_token;
static inline smp_port_token smp_port_irq_push_token(int *cpu)
{
    struct smp_hosted_vcpu *v = smp_hosted_self;
    if (cpu)
        *cpu = v->cpu;
    smp_hosted_push_unchecked(v);      /* the held test: the words (below) */
    return v;
}

static inline void smp_port_irq_pop_token(smp_port_token v)
{
    smp_hosted_pop_paired(v);
}

/*
 * The core's words live in the vCPU records (port.h): the token is the
 * record, so a fast path's word is one load from a register.  They also
 * stand in for the held flag on the token push, which therefore is the
 * addl alone.  The asker makes the CPU's words idle after it sets held and
 * before its process-wide fence and its look at noff:
 *
 *   owner token push:  noff += 1;  [compiler barrier]  load word
 *   asker:             held = 1; words = idle;  membarrier();  wait for noff == 0
 *
 * so either the asker sees the owner's depth (and waits for its pop) or
 * the owner reads an idle word, fails its fast-path test and reaches
 * smp_port_irq_settle in its slow path, which waits for the release.  The
 * load is an acquire (a plain load on x86): the asker puts the real words
 * back with a release after its function, so a fast path that reads one
 * sees what the function did to the caches.  TSan builds make both sides
 * seq_cst, as for held.
 */
#define SMP_PORT_HAS_CPU_WORDS 1
void smp_port_set_cpu_word(int cpu, int i, void *p);
static inline void *smp_port_token_word(smp_port_token v, int i)
{
#ifdef SMP_HOSTED_SYMMETRIC
    return atomic_load_explicit(&v->words[i], memory_order_seq_cst);
#else
    return atomic_load_explicit(&v->words[i], memory_order_acquire);
#endif
}

static inline void smp_port_irq_settle(void)
{
    struct smp_hosted_vcpu *v = smp_hosted_self;
    if (atomic_load_explicit(&v->held, memory_order_seq_cst))
        smp_hosted_push_held(v);       /* at depth 1: step out, wait, step back in */
}

#endif
