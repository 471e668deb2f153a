/*
 * A full memory barrier on every CPU that runs a thread of this process:
 * the expensive half of the asymmetric fences in the two Linux ports
 * (port/hosted: cross-calls; port/malloc: reclaiming the thread caches),
 * whose cheap half is a plain store and load on the owner's side.
 *
 * membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) where the kernel has it
 * (registered at init).  Where it does not, changing a page's protection
 * does the same as a side effect: the TLB shootdown interrupts every CPU
 * that runs this address space (a CPU that does not is between context
 * switches, which are barriers themselves).
 *
 *   struct process_fence f;
 *   process_fence_init(&f)   once (callers serialise it): 0, or -1 if
 *                            neither way is available
 *   process_fence(&f)        0, or -1 if the system call failed
 */
#ifndef SMPMEM_LINUX_PROCESS_FENCE_H
#define SMPMEM_LINUX_PROCESS_FENCE_H

#include <stddef.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <linux/membarrier.h>

struct process_fence {
    int membarrier;              /* 1: membarrier registered */
    volatile char *page;         /* else: the page whose protection we flip */
};

static inline int process_fence_init(struct process_fence *f)
{
    f->membarrier = syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
    f->page = NULL;
    if (f->membarrier)
        return 0;
    void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return -1;
    f->page = p;
    return 0;
}

static inline int process_fence(struct process_fence *f)
{
    if (f->membarrier)
        return syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0 ? 0 : -1;
    f->page[0] = 1;              /* present, so the downgrade must shoot down TLBs */
    if (mprotect((void *)f->page, 4096, PROT_READ) ||
        mprotect((void *)f->page, 4096, PROT_READ | PROT_WRITE))
        return -1;
    return 0;
}

#endif
