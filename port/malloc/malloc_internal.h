/* What the malloc front end (malloc.c) and its port (port.c) share. */
#ifndef SMPMEM_MALLOC_INTERNAL_H
#define SMPMEM_MALLOC_INTERNAL_H

/* pthread_atfork handlers' halves that concern the vCPUs: prepare takes
 * every owner word in increasing order (waiting for threads inside the
 * allocator to leave); release gives them all back (parent, child = 0;
 * child, child = 1, which also forgets the waiters that did not survive). */
void smpm_fork_prepare(void);
void smpm_fork_release(int child);

#endif
