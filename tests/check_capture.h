/*
 * Helpers of the tests that prove the checkers (tests/test_check_*.c):
 *   capture_check    run a checker with stdout (where the hosted port's
 *                    smp_port_write goes) redirected to a temporary file;
 *                    single-threaded use only (it swaps the process's fd 1)
 *   parse_violation  split the one line it must print into its parts
 *   for_each_reason  every reason literal a checker's source can print,
 *                    so a test can demand a case for each
 */
#ifndef SMPMEM_TEST_CHECK_CAPTURE_H
#define SMPMEM_TEST_CHECK_CAPTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Run check() with its output captured into out (NUL-terminated). */
static int capture_check(int (*check)(void), char *out, size_t len)
{
    fflush(stdout);
    FILE *tmp = tmpfile();
    int saved = dup(1);
    if (!tmp || saved < 0 || dup2(fileno(tmp), 1) < 0) {
        fprintf(stderr, "capture_check: cannot redirect stdout\n");
        abort();
    }
    int rc = check();
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    rewind(tmp);
    size_t n = fread(out, 1, len - 1, tmp);
    out[n] = '\0';
    fclose(tmp);
    return rc;
}

/* A parsed violation line: "<who>: [page 0xA: ]REASON\n" (pmm_check) or
 * "<who>: bucket N buffer 0xA: REASON\n" (bcache_check). */
struct violation {
    int lines;                 /* lines printed (a checker prints exactly one) */
    int has_page;              /* pmm_check named a page */
    unsigned long long page;   /* its address */
    unsigned bucket;           /* bcache_check's bucket and buffer */
    unsigned long long buffer;
    char reason[160];
};

static int parse_violation(const char *text, const char *who, struct violation *v)
{
    memset(v, 0, sizeof *v);
    for (const char *p = text; *p; p++)
        v->lines += *p == '\n';
    size_t wl = strlen(who);
    if (strncmp(text, who, wl) || strncmp(text + wl, ": ", 2))
        return 0;
    const char *p = text + wl + 2;
    char *end;
    if (!strncmp(p, "page 0x", 7)) {
        v->has_page = 1;
        v->page = strtoull(p + 5, &end, 16);
        if (strncmp(end, ": ", 2))
            return 0;
        p = end + 2;
    } else if (!strncmp(p, "bucket ", 7)) {
        v->bucket = (unsigned)strtoul(p + 7, &end, 10);
        if (strncmp(end, " buffer 0x", 10))
            return 0;
        v->buffer = strtoull(end + 8, &end, 16);
        if (strncmp(end, ": ", 2))
            return 0;
        p = end + 2;
    }
    const char *nl = strchr(p, '\n');
    size_t n = nl ? (size_t)(nl - p) : strlen(p);
    if (n >= sizeof v->reason)
        n = sizeof v->reason - 1;
    memcpy(v->reason, p, n);
    v->reason[n] = '\0';
    return 1;
}

/* Every string literal in the arguments of calls to fn( in file: each is a
 * reason the checker prints.  Returns how many were found. */
static int for_each_reason(const char *file, const char *fn, void (*visit)(const char *reason))
{
    FILE *f = fopen(file, "r");
    if (!f)
        return -1;
    static char text[1 << 18];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    int found = 0;
    size_t fl = strlen(fn);
    for (char *p = strstr(text, fn); p; p = strstr(p + fl, fn)) {
        if (p > text && (p[-1] == '_' || (p[-1] >= 'a' && p[-1] <= 'z')))
            continue;                       /* a longer name ending in fn */
        for (char *q = p + fl; *q && *q != ';' && *q != '{'; q++) {
            if (*q != '"')
                continue;
            char *end = strchr(q + 1, '"');
            if (!end)
                break;
            char reason[160];
            size_t len = (size_t)(end - q - 1) < sizeof reason - 1 ? (size_t)(end - q - 1) : sizeof reason - 1;
            memcpy(reason, q + 1, len);
            reason[len] = '\0';
            visit(reason);
            found++;
            q = end;
        }
    }
    return found;
}

/* The path of a repository file from this test's source path as compiled
 * (make compiles tests/x.c from the root, where make check runs them). */
static void repo_path(char *out, size_t len, const char *test_file, const char *rel)
{
    const char *slash = strrchr(test_file, '/');
    int dir = slash ? (int)(slash - test_file) : 0;
    snprintf(out, len, "%.*s%s%s", dir, test_file, dir ? "/../" : "../", rel);
}

#endif
