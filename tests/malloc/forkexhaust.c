/*
 * fork while the heap is exhausted over and over: worker threads allocate
 * until malloc says ENOMEM (each ENOMEM reclaims every thread's cache and
 * stops the world through cross-calls), free everything and start again;
 * meanwhile the main thread forks, and each child allocates (ENOMEM is a
 * fair answer there: the heap may have been full at the fork) and exits.
 * A lock, an owner word or a held thread cache left across fork would hang
 * or crash a child.  Run with a small heap (SMPMEM_HEAP_SIZE=64M) so the
 * workers really exhaust it.  Prints one line; exit 0 on success.
 *   forkexhaust [children [workers]]   (defaults 40 8)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define HOLD 20000                     /* blocks a worker holds at most */

static atomic_int stop;
static atomic_long exhausted;          /* rounds that ended in ENOMEM */
static void *held_by[64][HOLD];        /* not from malloc: the heap may be full */

static void *worker(void *arg)
{
    unsigned s = (unsigned)(uintptr_t)arg * 2654435761u;
    void **held = held_by[(uintptr_t)arg - 1];
    while (!atomic_load(&stop)) {
        int n = 0;
        while (n < HOLD) {
            s = s * 1103515245u + 12345u;
            size_t size = (s >> 8) % 8 == 0 ? 4096 + (s >> 4) % 50000 : 16 + (s >> 12) % 2000;
            errno = 0;
            void *p = malloc(size);
            if (!p) {
                if (errno != ENOMEM)
                    return (void *)1;
                atomic_fetch_add(&exhausted, 1);
                break;
            }
            memset(p, 1, 16);
            held[n++] = p;
        }
        for (int i = 0; i < n; i++)
            free(held[i]);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int children = argc > 1 ? atoi(argv[1]) : 40;
    int workers = argc > 2 ? atoi(argv[2]) : 8;
    pthread_t t[64];
    if (workers > 64)
        workers = 64;
    for (int i = 0; i < workers; i++)
        if (pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(i + 1)))
            return 2;
    int ok = 0;
    for (int c = 0; c < children; c++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            break;
        }
        if (pid == 0) {
            /* The parent's heap may have been full at the fork, and the
             * blocks the workers held stay allocated here without them:
             * ENOMEM is a fair answer, anything else is not. */
            void *x[100];
            for (int i = 0; i < 100; i++) {
                errno = 0;
                if (!(x[i] = malloc(1000)) && errno != ENOMEM)
                    _exit(3);
            }
            for (int i = 0; i < 100; i++)
                free(x[i]);
            _exit(0);
        }
        int st;
        if (waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0)
            ok++;
        else
            fprintf(stderr, "child %d: status %#x\n", c, st);
        usleep(2000);                  /* let the workers reach ENOMEM in between */
    }
    atomic_store(&stop, 1);
    int bad = 0;
    for (int i = 0; i < workers; i++) {
        void *r;
        pthread_join(t[i], &r);
        bad |= r != NULL;
    }
    long rounds = atomic_load(&exhausted);
    printf("forkexhaust: %d of %d children ok, %s\n", ok, children,
           rounds ? "the workers exhausted the heap" : "the heap was NOT exhausted");
    return ok != children || bad || !rounds;
}
