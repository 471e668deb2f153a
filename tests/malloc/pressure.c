/*
 * Exhaustion with many threads: run under smpmem with a small heap
 * (SMPMEM_HEAP_SIZE=64M).  Every thread allocates until malloc says ENOMEM,
 * then all free everything; then one thread must get a block of half the
 * heap (every vCPU's cached pages and objects taken back by the core's
 * stop-the-world reclaim, run through the port's cross-calls while other
 * threads are inside the allocator).  Then one thread alone: the largest
 * block it can get on the fresh heap, it must get again after filling the
 * heap itself and freeing everything -- though its thread cache still holds
 * the small blocks it freed last (the front end gives them back when the
 * core comes back empty).  Then the same with the blocks in other threads'
 * caches, threads that are alive but out of the allocator (every cache is
 * reclaimed when the core comes back empty).  Prints "round", "alone" and
 * "others" lines; exit 0 on success.
 *   pressure [threads [rounds]]   (defaults 16 3)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int maxb;                 /* blocks a thread may hold: 800000 / threads */
#define MAXB maxb
static void **arrays[256];
static pthread_barrier_t bar;
static int failures;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static void *worker(void *arg)
{
    unsigned s = (unsigned)(uintptr_t)arg * 2654435761u;
    void **b = arrays[(uintptr_t)arg % 1000 - 1];  /* made before the heap fills up */
    int n = 0;
    pthread_barrier_wait(&bar);                /* all started (creating one allocates) */
    while (n < MAXB) {
        s = s * 1103515245u + 12345u;
        size_t size = (s >> 8) % 4 == 0 ? 4096 + (s >> 4) % 60000 : 8 + (s >> 12) % 2000;
        errno = 0;
        void *p = malloc(size);
        if (!p) {
            if (errno != ENOMEM) {
                pthread_mutex_lock(&mu); failures++; pthread_mutex_unlock(&mu);
            }
            break;
        }
        memset(p, 0x5a, size < 256 ? size : 256);
        b[n++] = p;
    }
    pthread_barrier_wait(&bar);                /* all full */
    for (int i = 0; i < n; i++)
        free(b[i]);
    pthread_barrier_wait(&bar);                /* all freed */
    return NULL;
}

/* The main thread alone: the largest block, then the heap filled with
 * 2 KiB blocks (slabs everywhere), all freed in a seeded random order --
 * so the blocks its thread cache keeps are spread over the heap, and one
 * lies in the largest block's place -- then the largest block again. */
static void alone(void)
{
    size_t big = (size_t)1 << 40;
    void *p = 0;
    while (big >= 4096 && !(p = malloc(big)))
        big /= 2;
    free(p);
    size_t cap = 2 * (big / 2048) + 1024, n = 0;
    void **held = malloc(cap * sizeof *held);
    if (!held) {
        failures++;
        return;
    }
    while (n < cap && (held[n] = malloc(2048)))
        memset(held[n++], 0x5a, 64);
    unsigned s = 12345;
    for (size_t i = n; i > 1; i--) {          /* Fisher-Yates, seeded */
        s = s * 1103515245u + 12345u;
        size_t j = (s >> 8) % i;
        void *t = held[i - 1];
        held[i - 1] = held[j];
        held[j] = t;
    }
    for (size_t i = 0; i < n; i++)
        free(held[i]);
    free(held);
    void *again = malloc(big);
    printf("alone: %zu KiB at first, %zu blocks of 2 KiB filled the heap, then %s\n", big >> 10, n,
           again ? "the same size again" : "NOT the same size again");
    if (!again)
        failures++;
    free(again);
}

/* Other threads' caches: nthreads threads together fill the heap with
 * 2 KiB blocks, then each frees its own in a seeded random order -- so each
 * thread's cache keeps some, spread over the heap -- and they wait, alive
 * and out of the allocator, while the main thread asks for the largest
 * block the heap gave before.  Only a reclaim of every thread's cache can
 * give it. */
#define PARK_BLOCKS 40000
static void *parked[PARK_BLOCKS];
static int park_share;

static void *parker(void *arg)
{
    int id = (int)(uintptr_t)arg, n = 0;
    void **mine = &parked[id * park_share];
    pthread_barrier_wait(&bar);                /* the main thread measured the heap */
    while (n < park_share && (mine[n] = malloc(2048)))
        memset(mine[n++], 0x5a, 64);
    pthread_barrier_wait(&bar);                /* the heap is full */
    unsigned s = 777u + (unsigned)id;
    for (int i = n; i > 1; i--) {
        s = s * 1103515245u + 12345u;
        int j = (int)((s >> 8) % (unsigned)i);
        void *t = mine[i - 1];
        mine[i - 1] = mine[j];
        mine[j] = t;
    }
    for (int i = 0; i < n; i++)
        free(mine[i]);
    pthread_barrier_wait(&bar);                /* parked, caches full */
    pthread_barrier_wait(&bar);                /* the main thread is done */
    return NULL;
}

static void others(int nthreads)
{
    pthread_t t[256];
    park_share = PARK_BLOCKS / nthreads;
    pthread_barrier_init(&bar, NULL, (unsigned)nthreads + 1);
    for (int i = 0; i < nthreads; i++)
        if (pthread_create(&t[i], NULL, parker, (void *)(uintptr_t)i)) {
            failures++;
            return;
        }
    /* Measured with the threads alive: what the C library allocated for
     * them (their dynamic TLS vectors) stays where it is throughout. */
    size_t big = (size_t)1 << 40;
    void *p = 0;
    while (big >= 4096 && !(p = malloc(big)))
        big /= 2;
    free(p);
    pthread_barrier_wait(&bar);
    pthread_barrier_wait(&bar);
    pthread_barrier_wait(&bar);
    void *again = malloc(big);
    printf("others: %zu KiB at first; with %d threads parked on their caches, %s\n", big >> 10,
           nthreads, again ? "the same size again" : "NOT the same size again");
    if (!again)
        failures++;
    free(again);
    pthread_barrier_wait(&bar);
    for (int i = 0; i < nthreads; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&bar);
}

int main(int argc, char **argv)
{
    int nthreads = argc > 1 ? atoi(argv[1]) : 16;
    int rounds = argc > 2 ? atoi(argv[2]) : 3;
    pthread_t t[256];
    if (nthreads > 256)
        nthreads = 256;
    maxb = 800000 / nthreads;
    for (int i = 0; i < nthreads; i++)
        if (!(arrays[i] = malloc(MAXB * sizeof(void *))))
            return 2;
    for (int r = 0; r < rounds; r++) {
        pthread_barrier_init(&bar, NULL, (unsigned)nthreads + 1);
        for (int i = 0; i < nthreads; i++)
            if (pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(i + 1 + r * 1000)))
                return 3;
        pthread_barrier_wait(&bar);
        pthread_barrier_wait(&bar);
        pthread_barrier_wait(&bar);
        for (int i = 0; i < nthreads; i++)
            pthread_join(t[i], NULL);
        pthread_barrier_destroy(&bar);
        void *half = malloc(16 << 20);
        printf("round %d: %s, %s\n", r, failures ? "malloc failed without ENOMEM" : "exhausted with ENOMEM",
               half ? "then 16 MiB in one block" : "then NO 16 MiB block");
        if (!half)
            failures++;
        free(half);
    }
    alone();
    for (int i = 0; i < nthreads; i++)
        free(arrays[i]);
    others(nthreads < 100 ? nthreads : 100);
    return failures != 0;
}
