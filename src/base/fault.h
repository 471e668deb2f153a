/*
 * Fault points (include/smpmem/fault.h): `if (smp_fault_point(KIND))` in
 * front of a failure path makes it testable.  Without -DSMP_FAULT_INJECT
 * the test is the constant 0 and the compiler removes it.
 */
#ifndef SMPMEM_BASE_FAULT_H
#define SMPMEM_BASE_FAULT_H

#include "smpmem/fault.h"

#ifdef SMP_FAULT_INJECT
int smp_fault_point(enum smp_fault kind);
#else
#define smp_fault_point(kind) 0
#endif

#endif
