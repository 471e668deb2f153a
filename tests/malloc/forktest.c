/*
 * fork in a threaded process: while worker threads allocate and free as
 * fast as they can, the main thread forks again and again; each child
 * allocates (also from a new thread) and exits.  A lock, an owner word or a
 * held thread cache left across fork would hang or crash a child.  Prints
 * one line.
 *   forktest [children [workers [exhaust]]]   (defaults 100 6)
 * With "exhaust" (run it with a small heap, SMPMEM_HEAP_SIZE=64M) each
 * worker allocates until malloc says ENOMEM -- every ENOMEM reclaims every
 * thread's cache and stops the world through cross-calls -- frees it all
 * and starts again, and the run fails unless they did exhaust the heap.
 * ENOMEM is then a fair answer in a child too: the heap may have been full
 * at the fork, and the blocks the workers held stay allocated there
 * without them.  Any other failure is not.
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

#define HOLD 20000                     /* blocks an exhausting worker holds at most */

static int exhaust;
static atomic_int stop, failed;
static atomic_long exhausted;          /* worker rounds that ended in ENOMEM */
static void *held_by[64][HOLD];        /* not from malloc: the heap may be full */

/* malloc that counts a NULL as a failure unless it is ENOMEM in exhaust
 * mode. */
static void *get(size_t n)
{
    errno = 0;
    void *p = malloc(n);
    if (!p && !(exhaust && errno == ENOMEM))
        atomic_store(&failed, 1);
    return p;
}

static void churn(unsigned seed, int rounds)
{
    void *keep[64] = { 0 };
    for (int i = 0; rounds < 0 ? !atomic_load(&stop) : i < rounds; i++) {
        seed = seed * 1103515245u + 12345u;
        int k = (int)(seed >> 8) % 64;
        free(keep[k]);
        size_t n = (seed >> 12) % 8 == 0 ? 4096 + (seed >> 4) % 100000 : 1 + (seed >> 16) % 1500;
        if ((keep[k] = get(n)))
            memset(keep[k], 1, n < 64 ? n : 64);
    }
    for (int k = 0; k < 64; k++)
        free(keep[k]);
}

/* Fill the heap until ENOMEM (or HOLD blocks), free it all, again. */
static void fill_and_empty(unsigned seed, void **held)
{
    while (!atomic_load(&stop)) {
        int n = 0;
        while (n < HOLD) {
            seed = seed * 1103515245u + 12345u;
            size_t size = (seed >> 8) % 8 == 0 ? 4096 + (seed >> 4) % 50000 : 16 + (seed >> 12) % 2000;
            void *p = get(size);
            if (!p) {
                atomic_fetch_add(&exhausted, 1);
                break;
            }
            memset(p, 1, 16);
            held[n++] = p;
        }
        for (int i = 0; i < n; i++)
            free(held[i]);
    }
}

static void *worker(void *arg)
{
    uintptr_t id = (uintptr_t)arg;
    if (exhaust)
        fill_and_empty((unsigned)id * 2654435761u, held_by[id - 1]);
    else
        churn((unsigned)id, -1);
    return NULL;
}

static void *child_thread(void *arg)
{
    (void)arg;
    churn(7, 2000);
    return NULL;
}

int main(int argc, char **argv)
{
    int children = argc > 1 ? atoi(argv[1]) : 100;
    int workers = argc > 2 ? atoi(argv[2]) : 6;
    exhaust = argc > 3 && strcmp(argv[3], "exhaust") == 0;
    pthread_t t[64];
    if (workers > 64)
        workers = 64;
    for (int i = 0; i < workers; i++)
        pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(i + 1));
    int ok = 0;
    for (int c = 0; c < children; c++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            break;
        }
        if (pid == 0) {
            churn(3, 2000);
            pthread_t ct;
            int rc = pthread_create(&ct, NULL, child_thread, NULL);
            if (rc == 0)
                pthread_join(ct, NULL);
            else if (!(exhaust && rc == EAGAIN))   /* a full heap: no room for its TLS */
                _exit(3);
            _exit(atomic_load(&failed) ? 4 : 0);
        }
        int st;
        if (waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0)
            ok++;
        else
            fprintf(stderr, "child %d: status %#x\n", c, st);
        if (exhaust)
            usleep(2000);              /* let the workers reach ENOMEM in between */
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < workers && i < 64; i++)
        pthread_join(t[i], NULL);
    printf("fork: %d of %d children ok\n", ok, children);
    if (exhaust && !atomic_load(&exhausted))
        printf("fork: the workers did NOT exhaust the heap\n");
    return ok != children || atomic_load(&failed) || (exhaust && !atomic_load(&exhausted));
}
