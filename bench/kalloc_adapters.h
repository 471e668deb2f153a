/*
 * One adapter per allocator for bench/kalloc_workload.c, chosen at compile
 * time with -DALLOC_<NAME>.  Each binary links exactly one allocator, because
 * jemalloc and tcmalloc replace malloc for the whole process.
 *
 * Every adapter defines:
 *   ALLOC_NAME          short name printed in results
 *   ba_init(nthreads)   process setup before any thread starts; 0 or -1
 *   ba_thread(cpu)      called first on every worker thread (cpu = thread index)
 *   ba_alloc(size)      allocate; NULL on failure
 *   ba_free(p)          free a block from ba_alloc
 *   ba_page_alloc()     one 4 KiB page aligned to 4 KiB; NULL on failure
 *   ba_page_free(p)     free a page from ba_page_alloc
 * and may define BA_PAGES_SKIP "reason" to sit out the pages workload.
 * Peers are called by their own entry points where they have one (mi_malloc,
 * scalable_malloc, tc_malloc), else through malloc/free, which the linked
 * library overrides (jemalloc).  All peers are shared libraries (Debian ships
 * no static mimalloc or tbbmalloc); smpmem and gslab are linked statically,
 * which saves them a PLT jump per call.
 */
#ifndef KALLOC_ADAPTERS_H
#define KALLOC_ADAPTERS_H

#include <stddef.h>
#include <stdlib.h>
#include <sys/mman.h>

#define BENCH_REGION (1UL << 30)   /* smpmem and gslab: 1 GiB, MAP_NORESERVE */

static inline void *bench_region(void)
{
    void *r = mmap(NULL, BENCH_REGION, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return r == MAP_FAILED ? NULL : r;
}

#if defined(ALLOC_SMPMEM)
#define SMPMEM_NO_SHORT_NAMES
#include <smpmem/hosted.h>
#include <smpmem/pmm.h>
#define ALLOC_NAME "smpmem"
static inline int ba_init(int nthreads)
{
    int ncpu = nthreads > 8 ? nthreads : 8;
    char *r = bench_region();
    if (!r || ncpu > SMP_MAX_CPUS)
        return -1;
    /* A fresh anonymous mapping reads as zero: no need to clear descriptors. */
    return smp_pmm_init_flags(r, r + BENCH_REGION, ncpu, SMP_INIT_ZEROED) == 0 ? 0 : -1;
}
static inline void ba_thread(int cpu) { smp_hosted_bind_cpu(cpu); }
static inline void *ba_alloc(size_t n) { return smp_kalloc(n); }
static inline void ba_free(void *p) { smp_kfree(p); }
static inline void *ba_page_alloc(void) { return smp_page_alloc(0); }
static inline void ba_page_free(void *p) { smp_page_free(p, 0); }

#elif defined(ALLOC_GSLAB)
#include "kalloc_baseline.h"
#define ALLOC_NAME "gslab"
static inline int ba_init(int nthreads)
{
    (void)nthreads;
    char *r = bench_region();
    return r ? gslab_init(r, r + BENCH_REGION) : -1;
}
static inline void ba_thread(int cpu) { (void)cpu; }
static inline void *ba_alloc(size_t n) { return gslab_alloc(n); }
static inline void ba_free(void *p) { gslab_free(p); }
static inline void *ba_page_alloc(void) { return gslab_alloc(4096); }
static inline void ba_page_free(void *p) { gslab_free(p); }

#elif defined(ALLOC_GLIBC) || defined(ALLOC_JEMALLOC)
#ifdef ALLOC_GLIBC
#define ALLOC_NAME "glibc"
#else
#define ALLOC_NAME "jemalloc"          /* libjemalloc overrides malloc/free */
#endif
static inline int ba_init(int nthreads) { (void)nthreads; return 0; }
static inline void ba_thread(int cpu) { (void)cpu; }
static inline void *ba_alloc(size_t n) { return malloc(n); }
static inline void ba_free(void *p) { free(p); }
static inline void *ba_page_alloc(void) { return aligned_alloc(4096, 4096); }
static inline void ba_page_free(void *p) { free(p); }
#ifdef ALLOC_GLIBC
/* Measured: ~15 us per call once bursts interleave (its memalign splits and
 * re-merges chunks); one run would take minutes. */
#define BA_PAGES_SKIP "glibc aligned_alloc(4096, 4096) takes ~15 us a call here"
#endif

#elif defined(ALLOC_MIMALLOC)
#include <mimalloc.h>
#define ALLOC_NAME "mimalloc"
static inline int ba_init(int nthreads) { (void)nthreads; return 0; }
static inline void ba_thread(int cpu) { (void)cpu; }
static inline void *ba_alloc(size_t n) { return mi_malloc(n); }
static inline void ba_free(void *p) { mi_free(p); }
static inline void *ba_page_alloc(void) { return mi_malloc_aligned(4096, 4096); }
static inline void ba_page_free(void *p) { mi_free(p); }

#elif defined(ALLOC_TCMALLOC)
#include <gperftools/tcmalloc.h>
#define ALLOC_NAME "tcmalloc"
static inline int ba_init(int nthreads) { (void)nthreads; return 0; }
static inline void ba_thread(int cpu) { (void)cpu; }
static inline void *ba_alloc(size_t n) { return tc_malloc(n); }
static inline void ba_free(void *p) { tc_free(p); }
static inline void *ba_page_alloc(void) { return tc_memalign(4096, 4096); }
static inline void ba_page_free(void *p) { tc_free(p); }

#elif defined(ALLOC_TBB)
#include <tbb/scalable_allocator.h>
#define ALLOC_NAME "tbb"
static inline int ba_init(int nthreads) { (void)nthreads; return 0; }
static inline void ba_thread(int cpu) { (void)cpu; }
static inline void *ba_alloc(size_t n) { return scalable_malloc(n); }
static inline void ba_free(void *p) { scalable_free(p); }
static inline void *ba_page_alloc(void) { return scalable_aligned_malloc(4096, 4096); }
static inline void ba_page_free(void *p) { scalable_aligned_free(p); }

#else
#error "define one of ALLOC_SMPMEM ALLOC_GSLAB ALLOC_GLIBC ALLOC_JEMALLOC ALLOC_MIMALLOC ALLOC_TCMALLOC ALLOC_TBB"
#endif

#endif
