/* The shared test harness (see harness.h). */
#define _GNU_SOURCE
#include "harness.h"
#include <smpmem/pmm.h>
#include <smpmem/pmm_debug.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static atomic_int failures;
static uint64_t seed;
static pthread_mutex_t print_mu = PTHREAD_MUTEX_INITIALIZER;
static const char *current_test;

void check_failed(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    pthread_mutex_lock(&print_mu);
    fprintf(stderr, "  FAIL %s:%d (%s, SMP_SEED=%llu): ", file, line, current_test,
            (unsigned long long)seed);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    pthread_mutex_unlock(&print_mu);
    atomic_fetch_add(&failures, 1);
}

int test_failures(void) { return atomic_load(&failures); }
uint64_t test_seed(void) { return seed; }

long scaled(long n)
{
    const char *s = getenv("SMP_TEST_SCALE");
    long pct = s ? atol(s) : 100;
    long v = n * pct / 100;
    return v < 1 ? 1 : v;
}

void run_on_cpus(int ncpu, void (*fn)(int cpu, void *arg), void *arg)
{
    int cpu;
    vcpus_run(0, ncpu, fn, arg);
    if (vcpus_broken(&cpu))
        check_failed(__FILE__, __LINE__, "cpu %d finished with interrupts pushed off", cpu);
}

char *test_region;
size_t test_region_size;

void pmm_setup(size_t size, int ncpu)
{
    test_region_size = size;
    test_region = region_map(size, 0);
    if (smp_pmm_init(test_region, test_region + size, ncpu) != 0) {
        fprintf(stderr, "pmm_setup: smp_pmm_init of %zu bytes for %d CPUs failed\n", size, ncpu);
        abort();
    }
}

void pmm_teardown(void)
{
    smp_pmm_reset();
    region_unmap(test_region, test_region_size, 0);
}

void *region_map(size_t bytes, size_t skew)
{
    void *p = mmap(NULL, bytes + skew, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        abort();
    }
    return (char *)p + skew;
}

void region_unmap(void *p, size_t bytes, size_t skew)
{
    munmap((char *)p - skew, bytes + skew);
}

int expect_panic(void (*fn)(void *arg), void *arg, const char *expect)
{
    int fds[2];
    if (pipe(fds))
        return 0;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        struct rlimit no_core = { 0, 0 };
        setrlimit(RLIMIT_CORE, &no_core);
        dup2(fds[1], 2);
        close(fds[0]);
        fn(arg);
        _exit(0);
    }
    close(fds[1]);
    char out[4096];
    size_t got = 0;
    ssize_t n;
    while ((n = read(fds[0], out + got, sizeof out - 1 - got)) > 0)
        got += (size_t)n;
    out[got] = '\0';
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    int ok = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT && strstr(out, expect);
    if (!ok)
        fprintf(stderr, "  expected a panic containing \"%s\"; child %s, said: %s\n", expect,
                WIFSIGNALED(status) ? "was killed" : "exited", got ? out : "(nothing)");
    return ok;
}

int test_main(const struct test_case *cases, size_t n)
{
    const char *only = getenv("SMP_TEST");
    const char *fixed = getenv("SMP_SEED");
    int passed = 0, failed = 0;
    for (size_t i = 0; i < n; i++) {
        if (only && strcmp(only, cases[i].name))
            continue;
        seed = fixed ? strtoull(fixed, NULL, 0)
                     : (uint64_t)time(NULL) * 1000003u + i * 7919u + (uint64_t)getpid();
        current_test = cases[i].name;
        atomic_store(&failures, 0);
        cases[i].fn();
        if (atomic_load(&failures)) {
            printf("FAIL %s (SMP_SEED=%llu)\n", cases[i].name, (unsigned long long)seed);
            failed++;
        } else {
            printf("ok   %s\n", cases[i].name);
            passed++;
        }
        fflush(stdout);
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
