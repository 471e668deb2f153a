/* What the malloc front end's files share: malloc.c (the calls), tcache.c
 * (the thread cache) and port.c (the port). */
#ifndef SMPMEM_MALLOC_INTERNAL_H
#define SMPMEM_MALLOC_INTERNAL_H

#include <stdint.h>

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* Blocks are at least 16 bytes, so a block's second word is its own. */
#define MIN_BLOCK 16
/* Double-free detection (malloc.c): free stores smpm_free_key ^ address in
 * a block's second word, every allocation clears it. */
extern uintptr_t smpm_free_key;
/* Report a second free of p (the address and the reason) and abort. */
_Noreturn void smpm_already_free(const char *who, void *p);

/* pthread_atfork handlers' halves that concern the vCPUs: prepare takes
 * every owner word in increasing order (waiting for threads inside the
 * allocator to leave); release gives them all back (parent, child = 0;
 * child, child = 1, which also forgets the waiters that did not survive). */
void smpm_fork_prepare(void);
void smpm_fork_release(int child);

#endif
