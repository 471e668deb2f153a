/*
 * Hundreds of threads allocating and freeing across threads, in waves (so
 * threads also exit and new ones start).  Each block is stamped (sender,
 * sequence number, size, a fill pattern), sent to another thread's mailbox,
 * checked there and freed, some after a realloc.  The output is the same
 * under any correct allocator: compare it with a run on glibc.
 *   threads [nthreads [waves [blocks-per-thread]]]   (defaults 300 3 400)
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct block {
    struct block *next;
    uint32_t from, seq;
    size_t size;
};

struct mailbox {
    pthread_mutex_t mu;
    struct block *head;
    char pad[64];
};

static int nthreads, nblocks;
static struct mailbox *box;
static pthread_barrier_t sent;
static unsigned long long total_blocks, total_bytes, total_bad;
static pthread_mutex_t total_mu = PTHREAD_MUTEX_INITIALIZER;

static uint64_t next_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static unsigned char pattern(const struct block *b) { return (unsigned char)(b->seq * 31 + b->size + b->from); }

static size_t pick_size(uint64_t *s)
{
    uint64_t r = next_rand(s);
    switch (r % 16) {
    case 15: return 4096 + r % (256 * 1024);        /* page blocks */
    case 14: return 2049 + r % 2047;
    default: return sizeof(struct block) + r % 600;  /* slab classes */
    }
}

static void stamp(struct block *b)
{
    memset(b + 1, pattern(b), b->size - sizeof *b);
}

static int intact(const struct block *b)
{
    const unsigned char *p = (const unsigned char *)(b + 1);
    size_t n = b->size - sizeof *b;
    unsigned char v = pattern(b);
    for (size_t i = 0; i < n; i++)
        if (p[i] != v)
            return 0;
    return 1;
}

struct tally { unsigned long long got, bytes, bad; };

/* Check and free every block of a received list. */
static void receive(struct block *list, struct tally *t)
{
    while (list) {
        struct block *n = list->next;
        t->got++;
        t->bytes += list->size;
        t->bad += !intact(list);
        free(list);
        list = n;
    }
}

static void *worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    uint64_t seed = 0x1234567ULL * (uint64_t)(id + 1);
    struct tally tl = { 0, 0, 0 };
    /* Local churn too: a few blocks kept and replaced. */
    void *keep[16] = { 0 };
    for (int i = 0; i < nblocks; i++) {
        size_t size = pick_size(&seed);
        struct block *b = malloc(size);
        if (!b) { tl.bad++; continue; }
        b->from = (uint32_t)id;
        b->seq = (uint32_t)i;
        b->size = size;
        if (i % 7 == 0) {                              /* grow it on the way */
            size_t bigger = size + next_rand(&seed) % 5000;
            b = realloc(b, bigger);
            b->size = bigger;
        }
        stamp(b);
        int to = (int)(next_rand(&seed) % (uint64_t)nthreads);
        pthread_mutex_lock(&box[to].mu);
        b->next = box[to].head;
        box[to].head = b;
        pthread_mutex_unlock(&box[to].mu);
        int k = i % 16;
        free(keep[k]);
        keep[k] = (i & 1) ? calloc(1, 1 + next_rand(&seed) % 3000) : malloc(1 + next_rand(&seed) % 100);
        /* Receive as we go, so blocks are freed while others allocate. */
        if (i % 32 == 31) {
            pthread_mutex_lock(&box[id].mu);
            struct block *list = box[id].head;
            box[id].head = NULL;
            pthread_mutex_unlock(&box[id].mu);
            receive(list, &tl);
        }
    }
    for (int k = 0; k < 16; k++)
        free(keep[k]);
    pthread_barrier_wait(&sent);
    struct block *list = box[id].head;
    box[id].head = NULL;
    receive(list, &tl);
    pthread_mutex_lock(&total_mu);
    total_blocks += tl.got;
    total_bytes += tl.bytes;
    total_bad += tl.bad;
    pthread_mutex_unlock(&total_mu);
    return NULL;
}

int main(int argc, char **argv)
{
    nthreads = argc > 1 ? atoi(argv[1]) : 300;
    int waves = argc > 2 ? atoi(argv[2]) : 3;
    nblocks = argc > 3 ? atoi(argv[3]) : 400;
    box = calloc((size_t)nthreads, sizeof *box);
    pthread_t *tid = calloc((size_t)nthreads, sizeof *tid);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    for (int i = 0; i < nthreads; i++)
        pthread_mutex_init(&box[i].mu, NULL);
    for (int w = 0; w < waves; w++) {
        pthread_barrier_init(&sent, NULL, (unsigned)nthreads);
        for (int i = 0; i < nthreads; i++)
            if (pthread_create(&tid[i], &attr, worker, (void *)(intptr_t)i) != 0) {
                perror("pthread_create");
                return 2;
            }
        for (int i = 0; i < nthreads; i++)
            pthread_join(tid[i], NULL);
        pthread_barrier_destroy(&sent);
        printf("wave %d: %d threads, blocks %llu, bytes %llu, damaged %llu\n",
               w, nthreads, total_blocks, total_bytes, total_bad);
    }
    free(tid);
    free(box);
    return total_bad != 0;
}
