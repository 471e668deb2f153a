/*
 * The classic multi-threaded allocator stress patterns, for make bench
 * (bench/realprog.sh runs them with each allocator preloaded; wall time is
 * what it measures, so every mode does a fixed amount of work):
 *   stress larson THREADS GENERATIONS OPS   server churn (Larson & Krishnan):
 *       each generation of threads takes over the previous one's slots,
 *       replaces random blocks (freeing what another thread allocated),
 *       then exits and a new thread carries its slots on
 *   stress prodcons PAIRS ITEMS             producers allocate, consumers
 *       on other threads free (cross-thread free through a queue)
 *   stress falseshare THREADS ROUNDS         active false sharing: each
 *       thread allocates small objects and writes them over and over; an
 *       allocator that hands neighbouring bytes to two threads pays here
 *   stress passive THREADS ROUNDS            passive false sharing: the
 *       main thread allocates, threads free those objects and allocate
 *       their own, then write them over and over
 *   stress bigbuf THREADS ROUNDS MIB         a big buffer reused: each
 *       thread mallocs MIB MiB, fills it and frees it, round after round;
 *       an allocator that gives every freed big block back to the kernel
 *       faults all its pages in again each round
 * Prints one checksum line, the same under any correct allocator.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static pthread_mutex_t sum_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned long long checksum;
static void add_sum(unsigned long long v)
{
    pthread_mutex_lock(&sum_mu);
    checksum += v;
    pthread_mutex_unlock(&sum_mu);
}

/* ---- larson ---- */
#define SLOTS 1000
struct lslots { char *b[SLOTS]; uint64_t seed; int ops, gens_left; };

static void *larson_thread(void *arg)
{
    struct lslots *s = arg;
    unsigned long long sum = 0;
    for (int i = 0; i < s->ops; i++) {
        uint64_t r = rnd(&s->seed);
        int k = (int)(r % SLOTS);
        if (s->b[k])
            sum += (unsigned char)s->b[k][0];
        free(s->b[k]);
        size_t n = 16 + (r >> 20) % 1000;
        s->b[k] = malloc(n);
        s->b[k][0] = (char)n;
        s->b[k][n - 1] = 1;
    }
    add_sum(sum);
    if (--s->gens_left > 0) {            /* hand the slots to a new thread */
        pthread_t t;
        pthread_create(&t, NULL, larson_thread, s);
        pthread_detach(t);
    } else {
        pthread_mutex_lock(&sum_mu);
        checksum += 1ULL << 40;          /* one chain done */
        pthread_mutex_unlock(&sum_mu);
    }
    return NULL;
}

static void larson(int threads, int gens, int ops)
{
    struct lslots *s = calloc((size_t)threads, sizeof *s);
    for (int i = 0; i < threads; i++) {
        s[i].seed = (uint64_t)i + 1;
        s[i].ops = ops;
        s[i].gens_left = gens;
        for (int k = 0; k < SLOTS; k++) {
            size_t n = 16 + rnd(&s[i].seed) % 1000;
            s[i].b[k] = malloc(n);
            s[i].b[k][0] = (char)n;
        }
        pthread_t t;
        pthread_create(&t, NULL, larson_thread, &s[i]);
        pthread_detach(t);
    }
    for (;;) {                           /* wait for every chain */
        pthread_mutex_lock(&sum_mu);
        int done = (int)(checksum >> 40) == threads;
        pthread_mutex_unlock(&sum_mu);
        if (done)
            break;
        struct timespec ts = { 0, 2000000 };
        nanosleep(&ts, NULL);
    }
    for (int i = 0; i < threads; i++)
        for (int k = 0; k < SLOTS; k++)
            free(s[i].b[k]);
    free(s);
}

/* ---- producer/consumer ---- */
#define QCAP 1024
struct queue {
    pthread_mutex_t mu;
    pthread_cond_t nonempty, nonfull;
    void *item[QCAP];
    int head, count, items;
};

static void *producer(void *arg)
{
    struct queue *q = arg;
    uint64_t seed = (uint64_t)(uintptr_t)q;
    for (int i = 0; i < q->items; i += 64) {
        void *batch[64];
        int n = q->items - i < 64 ? q->items - i : 64;
        for (int j = 0; j < n; j++) {
            size_t sz = 8 + rnd(&seed) % 512;
            char *p = malloc(sz);
            p[0] = (char)(i + j);
            batch[j] = p;
        }
        pthread_mutex_lock(&q->mu);
        for (int j = 0; j < n; j++) {
            while (q->count == QCAP)
                pthread_cond_wait(&q->nonfull, &q->mu);
            q->item[(q->head + q->count++) % QCAP] = batch[j];
        }
        pthread_cond_signal(&q->nonempty);
        pthread_mutex_unlock(&q->mu);
    }
    return NULL;
}

static void *consumer(void *arg)
{
    struct queue *q = arg;
    unsigned long long sum = 0;
    for (int got = 0; got < q->items;) {
        void *batch[64];
        int n = 0;
        pthread_mutex_lock(&q->mu);
        while (q->count == 0)
            pthread_cond_wait(&q->nonempty, &q->mu);
        while (q->count && n < 64) {
            batch[n++] = q->item[q->head];
            q->head = (q->head + 1) % QCAP;
            q->count--;
        }
        pthread_cond_signal(&q->nonfull);
        pthread_mutex_unlock(&q->mu);
        for (int j = 0; j < n; j++) {
            sum += (unsigned char)*(char *)batch[j];
            free(batch[j]);
        }
        got += n;
    }
    add_sum(sum);
    return NULL;
}

static void prodcons(int pairs, int items)
{
    struct queue *q = calloc((size_t)pairs, sizeof *q);
    pthread_t *t = calloc((size_t)pairs * 2, sizeof *t);
    for (int i = 0; i < pairs; i++) {
        pthread_mutex_init(&q[i].mu, NULL);
        pthread_cond_init(&q[i].nonempty, NULL);
        pthread_cond_init(&q[i].nonfull, NULL);
        q[i].items = items;
        pthread_create(&t[2 * i], NULL, producer, &q[i]);
        pthread_create(&t[2 * i + 1], NULL, consumer, &q[i]);
    }
    for (int i = 0; i < 2 * pairs; i++)
        pthread_join(t[i], NULL);
    free(t);
    free(q);
}

/* ---- false sharing ---- */
static int fs_rounds;
static char **handed;                   /* passive: objects from main, per thread */

static void *fs_thread(void *arg)
{
    int id = (int)(intptr_t)arg;
    if (handed)
        free(handed[id]);
    volatile char *p = malloc(8);       /* neighbours of other threads' objects? */
    memset((char *)p, 0, 8);
    for (int r = 0; r < fs_rounds; r++)
        for (int i = 0; i < 1000; i++)
            p[i & 7] = (char)(p[i & 7] + 1);
    add_sum((unsigned char)p[0]);
    free((void *)p);
    return NULL;
}

static void falseshare(int threads, int rounds, int passive)
{
    pthread_t *t = calloc((size_t)threads, sizeof *t);
    fs_rounds = rounds;
    if (passive) {
        handed = calloc((size_t)threads, sizeof *handed);
        for (int i = 0; i < threads; i++)
            handed[i] = malloc(8);
    }
    for (int i = 0; i < threads; i++)
        pthread_create(&t[i], NULL, fs_thread, (void *)(intptr_t)i);
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    free(handed);
    free(t);
}

struct bigbuf_arg { int rounds; size_t len; };

static void *bigbuf_thread(void *p)
{
    const struct bigbuf_arg *a = p;
    unsigned long long sum = 0;
    for (int r = 0; r < a->rounds; r++) {
        unsigned char *b = malloc(a->len);
        if (!b) {
            fprintf(stderr, "stress bigbuf: malloc(%zu) failed\n", a->len);
            exit(1);
        }
        memset(b, r & 0xff, a->len);
        sum += b[0] + b[a->len / 2] + b[a->len - 1];
        free(b);
    }
    add_sum(sum);
    return NULL;
}

static void bigbuf(int threads, int rounds, int mib)
{
    struct bigbuf_arg a = { rounds, (size_t)mib << 20 };
    pthread_t *t = malloc(sizeof *t * (size_t)threads);
    for (int i = 0; i < threads; i++)
        pthread_create(&t[i], NULL, bigbuf_thread, &a);
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    free(t);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    int a = argc > 2 ? atoi(argv[2]) : 0, b = argc > 3 ? atoi(argv[3]) : 0,
        c = argc > 4 ? atoi(argv[4]) : 0;
    if (!strcmp(mode, "larson"))
        larson(a ? a : 8, b ? b : 20, c ? c : 20000);
    else if (!strcmp(mode, "prodcons"))
        prodcons(a ? a : 2, b ? b : 500000);
    else if (!strcmp(mode, "falseshare"))
        falseshare(a ? a : 4, b ? b : 20000, 0);
    else if (!strcmp(mode, "passive"))
        falseshare(a ? a : 4, b ? b : 20000, 1);
    else if (!strcmp(mode, "bigbuf"))
        bigbuf(a ? a : 2, b ? b : 100, c ? c : 4);
    else {
        fprintf(stderr, "usage: stress larson|prodcons|falseshare|passive|bigbuf [numbers]\n");
        return 2;
    }
    printf("%s checksum %llu\n", mode, checksum);
    return 0;
}
