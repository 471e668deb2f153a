/*
 * Misuse that must stop the program with a report naming the address:
 *   badfree stack|double|cached|interior|wild|realloc
 * Prints the address it is about to misuse on stdout ("addr 0x..."), then
 * misuses it; the caller checks the process died of SIGABRT and that
 * stderr names that address.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The misuse is the point.  (clang knows neither warning: it would reject
 * the pragmas under -Werror.) */
#ifndef __clang__
#pragma GCC diagnostic ignored "-Wfree-nonheap-object"
#pragma GCC diagnostic ignored "-Wuse-after-free"
#endif

static void *volatile sink;

static void *announce(void *p)
{
    printf("addr %#lx\n", (unsigned long)(uintptr_t)p);
    fflush(stdout);
    return p;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    char local[64];
    sink = local;
    if (!strcmp(mode, "stack")) {
        free(announce(sink));
    } else if (!strcmp(mode, "double")) {
        char *p = malloc(100);
        free(p);
        free(announce(p));
    } else if (!strcmp(mode, "cached")) {
        /* Freed again after 100 more frees: by then a thread cache may
         * have sorted it into a list for reuse; it must still be caught. */
        char *p = malloc(100), *other[100];
        for (int i = 0; i < 100; i++)
            other[i] = malloc(40);
        free(p);
        for (int i = 0; i < 100; i++)
            free(other[i]);
        free(announce(p));
    } else if (!strcmp(mode, "interior")) {
        char *p = malloc(100);
        free(announce(p + 8));
    } else if (!strcmp(mode, "wild")) {
        free(announce((void *)(uintptr_t)0x1000));
    } else if (!strcmp(mode, "realloc")) {
        char *p = malloc(5000);
        free(p);
        sink = realloc(announce(p), 10);
    } else {
        fprintf(stderr, "usage: badfree stack|double|cached|interior|wild|realloc\n");
        return 2;
    }
    printf("survived\n");
    return 0;
}
