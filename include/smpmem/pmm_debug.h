/*
 * Hooks for tests, tools and hosted programs; not for kernel code.
 */
#ifndef SMPMEM_PMM_DEBUG_H
#define SMPMEM_PMM_DEBUG_H

#include "pmm.h"

/* Forget the region so smp_pmm_init may be called again.  Callers must not
 * touch blocks from the old region afterwards, and no other CPU may be
 * inside smpmem. */
void smp_pmm_reset(void);

#if defined(SMPMEM_SHORT_NAMES) && !defined(SMPMEM_NO_SHORT_NAMES)
#define pmm_reset smp_pmm_reset
#endif

#endif
