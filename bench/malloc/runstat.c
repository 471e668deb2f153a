/*
 * runstat PROGRAM ARGS...: run a program, send its stdout and stderr to
 * /dev/null, and print "<wall seconds> <peak RSS KiB> <exit status>" for it
 * (and its children: RUSAGE_CHILDREN's ru_maxrss is the largest of any of
 * them).  RUNSTAT_PRELOAD=lib.so: preload it into the program (not into
 * this process, whose own allocations then do not count); RUNSTAT_OUT=file:
 * the program's stdout goes there instead.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: runstat program args...\n");
        return 2;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        const char *out = getenv("RUNSTAT_OUT");
        int o = out && *out ? open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644) : null;
        dup2(o >= 0 ? o : null, 1);
        if (!getenv("RUNSTAT_STDERR"))
            dup2(null, 2);
        const char *pre = getenv("RUNSTAT_PRELOAD");
        if (pre && *pre)
            setenv("LD_PRELOAD", pre, 1);
        execvp(argv[1], argv + 1);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    printf("%.3f %ld %d\n", (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9,
           ru.ru_maxrss, WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    return 0;
}
