/* The runner of threads standing for CPUs (see vcpus.h); no smpmem here. */
#define _GNU_SOURCE
#include "vcpus.h"
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <math.h>

/* One run at a time (vcpus.h): its state is static so vcpus_barrier, called
 * from inside fn, can find it. */
static struct {
    const struct vcpus_hooks *hooks;
    vcpu_fn *fn;
    void *arg;
    int first;
    pthread_barrier_t barrier;
    double start[VCPUS_MAX], end[VCPUS_MAX];
    int broken[VCPUS_MAX];
} run;

/* vcpus_pin_threads: the host CPUs threads are pinned to, in order. */
static int pin_cpus[CPU_SETSIZE], npin;

int vcpus_pin_threads(void)
{
    cpu_set_t set;
    npin = 0;
    const char *env = getenv("BENCH_PIN");
    if ((env && atoi(env) == 0) || sched_getaffinity(0, sizeof set, &set) != 0)
        return 0;
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &set))
            pin_cpus[npin++] = c;
    return npin;
}

int vcpus_pin_self(int i)
{
    if (i < 0 || i >= npin)
        return 0;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(pin_cpus[i], &one);
    return pthread_setaffinity_np(pthread_self(), sizeof one, &one) == 0;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *thread_main(void *p)
{
    int i = (int)(long)p, cpu = run.first + i;
    if (run.hooks->enter)
        run.hooks->enter(cpu);
    pthread_barrier_wait(&run.barrier);
    run.start[i] = now();
    run.fn(cpu, run.arg);
    run.end[i] = now();
    run.broken[i] = run.hooks->leave ? run.hooks->leave(cpu) != 0 : 0;
    pthread_barrier_wait(&run.barrier);
    return NULL;
}

double vcpus_run_with(const struct vcpus_hooks *hooks, int first, int n,
                      vcpu_fn *fn, void *arg)
{
    static const struct vcpus_hooks none;
    pthread_t th[VCPUS_MAX];
    int err;
    if (n < 1 || n > VCPUS_MAX) {
        fprintf(stderr, "vcpus_run: %d CPUs asked (1..%d)\n", n, VCPUS_MAX);
        exit(1);
    }
    run.hooks = hooks ? hooks : &none;
    run.fn = fn;
    run.arg = arg;
    run.first = first;
    memset(run.broken, 0, sizeof run.broken);
    if ((err = pthread_barrier_init(&run.barrier, NULL, (unsigned)n))) {
        fprintf(stderr, "vcpus_run: pthread_barrier_init: %s\n", strerror(err));
        exit(1);
    }
    for (int i = 0; i < n; i++) {
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        if (npin && n <= npin) {
            /* Set before the thread exists, so it never runs elsewhere.
             * Only when each thread has a core of its own: more threads
             * than cores need the kernel's balancing as they finish. */
            cpu_set_t one;
            CPU_ZERO(&one);
            CPU_SET(pin_cpus[i], &one);
            pthread_attr_setaffinity_np(&attr, sizeof one, &one);
        }
        err = pthread_create(&th[i], &attr, thread_main, (void *)(long)i);
        pthread_attr_destroy(&attr);
        if (err) {
            fprintf(stderr, "vcpus_run: pthread_create (CPU %d of %d): %s\n",
                    first + i, n, strerror(err));
            exit(1);
        }
    }
    for (int i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&run.barrier);
    double t0 = run.start[0], t1 = run.end[0];
    for (int i = 1; i < n; i++) {
        if (run.start[i] < t0)
            t0 = run.start[i];
        if (run.end[i] > t1)
            t1 = run.end[i];
    }
    run.hooks = NULL;
    return t1 - t0;
}

double vcpus_thread_seconds(int i)
{
    return i < 0 || i >= VCPUS_MAX ? NAN : run.end[i] - run.start[i];
}

void vcpus_barrier(void)
{
    pthread_barrier_wait(&run.barrier);
}

int vcpus_broken(int *cpu)
{
    int count = 0;
    for (int i = VCPUS_MAX; i-- > 0;)
        if (run.broken[i]) {
            count++;
            if (cpu)
                *cpu = run.first + i;
        }
    return count;
}
