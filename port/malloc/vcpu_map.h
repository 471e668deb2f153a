/*
 * Which vCPU a thread running on CPU c prefers (vcpu.h, smpm_preferred).
 *
 * The CPUs this process may run on are numbered in order and take vCPUs
 * round-robin by that rank, so any ncpu of them name ncpu different vCPUs.
 * (By c % ncpu, a process pinned to CPUs 0 and 8 with 4 vCPUs had both
 * cores prefer vCPU 0: every entry of one of them was displaced, and the
 * two cores wrote the same magazines.)  CPUs outside the set -- reachable
 * only if the affinity changes later -- keep c % ncpu.
 *
 * Pure: the tests call it with made-up CPU sets (tests/test_vcpumap.c).
 */
#ifndef SMPMEM_MALLOC_VCPU_MAP_H
#define SMPMEM_MALLOC_VCPU_MAP_H

#include <stdint.h>

#define SMPM_CPU_IDS 1024                    /* CPU_SETSIZE: ids the table covers */

/* Fill vcpu_of[0..SMPM_CPU_IDS) from allowed[] (non-zero: the process may
 * run there) for 1 <= ncpu <= 64.  Returns the mask of vCPUs some allowed
 * CPU prefers; the others are spares. */
static inline uint64_t smpm_map_cpus(const unsigned char *allowed, int ncpu, uint8_t *vcpu_of)
{
    uint64_t named = 0;
    unsigned rank = 0;
    for (unsigned c = 0; c < SMPM_CPU_IDS; c++) {
        unsigned v = allowed[c] ? rank++ % (unsigned)ncpu : c % (unsigned)ncpu;
        vcpu_of[c] = (uint8_t)v;
        if (allowed[c])
            named |= (uint64_t)1 << v;
    }
    return named;
}

#endif
