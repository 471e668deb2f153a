/*
 * Baseline (b): the MIT 6.S081 lock lab's solution, rebuilt for the hosted
 * benchmarks.
 *
 * One free list per CPU, each under its own spinlock ("kmem.lab.cpuN").
 * kfree pushes onto the freeing CPU's list; kalloc pops from its own list
 * and, when that is empty, steals up to LAB_STEAL pages from the first other
 * CPU (in increasing id after its own) that has any.  As in the lab, kinit's
 * freerange runs on CPU 0, so every page starts on CPU 0's list and the
 * other CPUs steal their first pages from it.
 *
 * Lock order: a CPU holds at most one list lock at a time.  A steal detaches
 * the victim's pages under the victim's lock, releases it, then splices the
 * surplus onto its own list under its own lock.
 *
 * Same deliberate differences from the lab code as baseline_xv6.h: no junk
 * fill; struct smp_spinlock locks (interrupts pushed through the port,
 * contended spins counted).  Each CPU's list head and lock share one cache
 * line of their own, so this baseline does not suffer false sharing the
 * naive `struct kmem kmem[NCPU]` would.
 *
 * Interface (header-only):
 *   lab_kinit(k, start, end, ncpu)  1 <= ncpu <= SMP_MAX_CPUS
 *   lab_kalloc(k), lab_kfree(k, p), lab_count_free(k)
 * The caller's CPU is smp_port_cpu_id() (< ncpu).
 */
#ifndef SMPMEM_BENCH_BASELINE_LAB_H
#define SMPMEM_BENCH_BASELINE_LAB_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <smpmem/pmm.h>
#include <smpmem/port.h>
#include <smpmem/spinlock.h>

#define LAB_PGSIZE 4096UL
#define LAB_STEAL  32

struct lab_run { struct lab_run *next; };

struct lab_cpu {
    _Alignas(64) struct smp_spinlock lock;
    struct lab_run *freelist;   /* lock must be held when using this */
    char name[24];              /* "kmem.lab.cpuN" */
};

struct lab_kmem {
    int ncpu;
    char *lo, *hi;
    struct lab_cpu cpu[SMP_MAX_CPUS];
};

static inline int lab_cpuid(const struct lab_kmem *k)
{
    int id = smp_port_cpu_id();
    if (id < 0 || id >= k->ncpu)
        smp_port_panic("lab_kalloc: cpu id outside 0..ncpu-1");
    return id;
}

static inline void lab_kfree(struct lab_kmem *k, void *pa)
{
    char *p = pa;
    if (((uintptr_t)p % LAB_PGSIZE) != 0 || p < k->lo || p >= k->hi)
        smp_port_panic("lab_kfree: bad page address");
    struct lab_run *r = pa;
    smp_port_irq_push();
    struct lab_cpu *c = &k->cpu[lab_cpuid(k)];
    smp_lock_acquire(&c->lock);
    r->next = c->freelist;
    c->freelist = r;
    smp_lock_release(&c->lock);
    smp_port_irq_pop();
}

/* Own list empty: take up to LAB_STEAL pages from one other CPU; return one,
 * keep the rest.  Interrupts are pushed off by the caller. */
static inline struct lab_run *lab_steal(struct lab_kmem *k, int self)
{
    for (int i = 1; i < k->ncpu; i++) {
        struct lab_cpu *v = &k->cpu[(self + i) % k->ncpu];
        smp_lock_acquire(&v->lock);
        struct lab_run *first = v->freelist, *last = first;
        int n = 0;
        if (first) {
            for (n = 1; n < LAB_STEAL && last->next; n++)
                last = last->next;
            v->freelist = last->next;
            last->next = NULL;
        }
        smp_lock_release(&v->lock);
        if (!first)
            continue;
        if (first->next) {
            struct lab_cpu *c = &k->cpu[self];
            smp_lock_acquire(&c->lock);
            last->next = c->freelist;
            c->freelist = first->next;
            smp_lock_release(&c->lock);
        }
        return first;
    }
    return NULL;
}

static inline void *lab_kalloc(struct lab_kmem *k)
{
    smp_port_irq_push();
    int id = lab_cpuid(k);
    struct lab_cpu *c = &k->cpu[id];
    smp_lock_acquire(&c->lock);
    struct lab_run *r = c->freelist;
    if (r)
        c->freelist = r->next;
    smp_lock_release(&c->lock);
    if (!r)
        r = lab_steal(k, id);
    smp_port_irq_pop();
    return r;
}

static inline void lab_kinit(struct lab_kmem *k, void *start, void *end, int ncpu)
{
    if (ncpu < 1 || ncpu > SMP_MAX_CPUS)
        smp_port_panic("lab_kinit: bad ncpu");
    k->ncpu = ncpu;
    for (int i = 0; i < ncpu; i++) {
        snprintf(k->cpu[i].name, sizeof k->cpu[i].name, "kmem.lab.cpu%d", i);
        smp_lock_init(&k->cpu[i].lock, k->cpu[i].name);
        k->cpu[i].freelist = NULL;
    }
    uintptr_t s = ((uintptr_t)start + LAB_PGSIZE - 1) & ~(LAB_PGSIZE - 1);
    uintptr_t e = (uintptr_t)end & ~(LAB_PGSIZE - 1);
    k->lo = (char *)s;
    k->hi = (char *)(e > s ? e : s);
    /* freerange on CPU 0, like the lab's kinit. */
    struct lab_cpu *c0 = &k->cpu[0];
    smp_lock_acquire(&c0->lock);
    for (char *p = k->lo; p + LAB_PGSIZE <= k->hi; p += LAB_PGSIZE) {
        struct lab_run *r = (struct lab_run *)p;
        r->next = c0->freelist;
        c0->freelist = r;
    }
    smp_lock_release(&c0->lock);
}

static inline size_t lab_count_free(struct lab_kmem *k)
{
    size_t n = 0;
    for (int i = 0; i < k->ncpu; i++) {
        smp_lock_acquire(&k->cpu[i].lock);
        for (struct lab_run *r = k->cpu[i].freelist; r; r = r->next)
            n++;
        smp_lock_release(&k->cpu[i].lock);
    }
    return n;
}

#endif
