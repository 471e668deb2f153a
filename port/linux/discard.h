/*
 * Give a free range of private anonymous memory back to the kernel, for
 * the discard hook of the two Linux ports (port.h: SMP_PORT_HAS_DISCARD).
 *
 * Why not one madvise(MADV_DONTNEED) over the range: the kernel then
 * flushes the TLB over the span between the first and last page it
 * unmapped, and past 33 pages (x86's tlb_single_page_flush_ceiling) that
 * is the whole TLB, on this CPU and, by interrupt, on every other CPU that
 * runs a thread of the process.  A freed block of 1-16 MiB typically has a
 * few pages touched far apart (its first and last bytes), so each free
 * threw away every translation of the process.
 *
 * So ask mincore which pages are resident and drop only those: runs of
 * resident pages fewer than DISCARD_GAP pages apart go in one madvise (a
 * gap costs nothing to drop, while another call costs a system call), so
 * a block touched at a few places costs a few small flushes, of the pages
 * that had translations, and a block touched all over still costs one call
 * per run at worst DISCARD_GAP pages apart.  Where mincore fails (the
 * range is not one mapping), the whole range is dropped at once.
 *
 * Measured on the kalloc benchmark's mixed workload (nine such frees per
 * thread in 2 M calls; 11 interleaved rounds, 2026-12-03, a VM whose TLB
 * misses walk two page tables), time against no discard at all, 1 and 2
 * threads: one madvise over the block -2.8% and -8.1%; resident pages
 * only -1.6% and -4.5%; the mincore calls alone -0.0% and -0.5%.  What
 * remains is dropping and refaulting the touched pages themselves, which
 * peak RSS needs: without any discard it rose 1.8% at 1 thread and 3.8%
 * at 2.
 *
 * Not dropped: a page the kernel swapped out (mincore calls it not
 * resident).  Its swap slot stays taken until the block is used again,
 * when the first touch reads the stale page back instead of mapping a
 * zero one.  That costs swap space and I/O only on a machine that swaps
 * out a process's free heap, and it costs no RSS.
 *
 *   linux_discard(p, len)  p page-aligned; [p, p + len) dropped: its pages
 *                          read as zero when next touched.  0, or -1 if a
 *                          system call failed (then some pages may stay).
 */
#ifndef SMPMEM_LINUX_DISCARD_H
#define SMPMEM_LINUX_DISCARD_H

#include <stddef.h>
#include <sys/mman.h>

#define DISCARD_PAGE 4096UL
/* Pages asked of mincore at once.  Its vector is on the stack of whoever
 * frees (the malloc port: any thread of the program, whose stack may be
 * small), so 1 KiB; a 16 MiB block takes four calls. */
#define DISCARD_CHUNK 1024UL
#define DISCARD_GAP 32UL         /* pages: runs fewer apart share a call */

static inline int linux_discard(void *p, size_t len)
{
    unsigned char vec[DISCARD_CHUNK];
    char *base = p;
    size_t npages = len / DISCARD_PAGE;
    size_t run = 0, end = 0;     /* the pending run [run, end) in pages; end 0: none */
    int err = 0;
    for (size_t at = 0; at < npages; at += DISCARD_CHUNK) {
        size_t n = npages - at < DISCARD_CHUNK ? npages - at : DISCARD_CHUNK;
        if (mincore(base + at * DISCARD_PAGE, n * DISCARD_PAGE, vec))
            return madvise(p, len, MADV_DONTNEED) ? -1 : 0;
        for (size_t i = 0; i < n; i++) {
            if (!(vec[i] & 1))
                continue;
            size_t pg = at + i;
            if (end && pg - end >= DISCARD_GAP) {
                err |= madvise(base + run * DISCARD_PAGE, (end - run) * DISCARD_PAGE, MADV_DONTNEED);
                end = 0;
            }
            if (!end)
                run = pg;
            end = pg + 1;
        }
    }
    if (end)
        err |= madvise(base + run * DISCARD_PAGE, (end - run) * DISCARD_PAGE, MADV_DONTNEED);
    return err ? -1 : 0;
}

#endif
