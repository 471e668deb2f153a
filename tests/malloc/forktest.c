/*
 * fork in a threaded process: while worker threads allocate and free as
 * fast as they can, the main thread forks again and again; each child
 * allocates (also from a new thread) and exits.  A lock or an owned vCPU
 * left held across fork would hang or crash a child.  Prints one line.
 *   forktest [children [workers]]   (defaults 100 6)
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static atomic_int stop;

static void churn(unsigned seed, int rounds)
{
    void *keep[64] = { 0 };
    for (int i = 0; rounds < 0 ? !atomic_load(&stop) : i < rounds; i++) {
        seed = seed * 1103515245u + 12345u;
        int k = (int)(seed >> 8) % 64;
        free(keep[k]);
        size_t n = (seed >> 12) % 8 == 0 ? 4096 + (seed >> 4) % 100000 : 1 + (seed >> 16) % 1500;
        keep[k] = malloc(n);
        memset(keep[k], 1, n < 64 ? n : 64);
    }
    for (int k = 0; k < 64; k++)
        free(keep[k]);
}

static void *worker(void *arg)
{
    churn((unsigned)(uintptr_t)arg, -1);
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
    pthread_t t[64];
    for (int i = 0; i < workers && i < 64; i++)
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
            if (pthread_create(&ct, NULL, child_thread, NULL) != 0)
                _exit(3);
            pthread_join(ct, NULL);
            _exit(0);
        }
        int st;
        if (waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0)
            ok++;
        else
            fprintf(stderr, "child %d: status %#x\n", c, st);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < workers && i < 64; i++)
        pthread_join(t[i], NULL);
    printf("fork: %d of %d children ok\n", ok, children);
    return ok != children;
}
