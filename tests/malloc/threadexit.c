/*
 * Threads that exit must give back what they cached: THREADS threads (ten
 * at a time) each take and free blocks of every small size, then exit.
 * Run with SMPMEM_STATS=1: the script compares the pages still in use at
 * exit with a run of one thread doing the same work.
 *   threadexit [threads]   (default 1000)
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static void *work(void *arg)
{
    (void)arg;
    void *b[40];
    for (size_t size = 16; size <= 2048; size *= 2) {
        for (int i = 0; i < 40; i++)
            b[i] = malloc(size - 3);
        for (int i = 0; i < 40; i++)
            free(b[i]);
        b[0] = malloc(size);     /* leave the list part-used */
        free(b[0]);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 1000;
    for (int i = 0; i < n; i += 10) {
        pthread_t t[10];
        for (int k = 0; k < 10; k++)
            pthread_create(&t[k], NULL, work, NULL);
        for (int k = 0; k < 10; k++)
            pthread_join(t[k], NULL);
    }
    printf("threadexit: %d threads\n", n);
    return 0;
}
