/*
 * Shared helpers for the benchmark programs bench/bench_*.c.
 *
 * Every bench_X.c is its own program, linked with bench/common.c and
 * build/libsupport.a and build/libsmpmem.a (see the Makefile's `benches` target); scripts/bench.sh
 * (`make bench`) builds and runs them all.  Benchmarks print figures; they
 * never fail on a time (only on a correctness check).
 *
 * A typical benchmark:
 *
 *   static void work(int cpu, void *arg) { ... one thread's share ... }
 *
 *   int rounds = bench_env_int("BENCH_ROUNDS", 5);
 *   double secs[16];
 *   for (int r = 0; r < rounds; r++)
 *       secs[r] = bench_run_threads(nthreads, work, &args);   // interleave allocators here
 *   double med = bench_median(secs, rounds);
 *
 *   struct bench_table *t = bench_table_new(3, "threads", "Mops/s", "ratio");
 *   bench_table_cell(t, "%d", nthreads); ...
 *   bench_table_print(t, stdout);
 *   bench_table_free(t);
 *
 * Random workloads use support/prng.h (included here).
 *
 * Thread safety: bench_run_threads may not be nested or run concurrently
 * with itself; everything else is plain functions of their arguments.
 * Errors that make a benchmark meaningless (mmap, pthread_create failures)
 * print a message and exit(1).
 */
#ifndef SMPMEM_BENCH_COMMON_H
#define SMPMEM_BENCH_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "../support/prng.h"
#include "../support/vcpus.h"

/* ---- time ---------------------------------------------------------------- */

/* Seconds from CLOCK_MONOTONIC (arbitrary origin; subtract two readings). */
double bench_now(void);

/* ---- threads standing for CPUs ------------------------------------------ */

/* Largest thread count bench_run_threads accepts. */
#define BENCH_MAX_THREADS VCPUS_MAX

/* Run fn(cpu, arg) on nthreads threads, thread i bound to virtual CPU i,
 * released together by a barrier (vcpus_run of support/vcpus.h).  Returns
 * the seconds from the earliest thread's start to the latest one's finish.
 * fn must return with interrupts popped (smp_hosted_irq_depth() == 0);
 * otherwise this exits with a message.  1 <= nthreads <= BENCH_MAX_THREADS. */
double bench_run_threads(int nthreads, void (*fn)(int cpu, void *arg), void *arg);

/* Turn on pinning (vcpus_pin_threads) once; bench_run_threads calls it, and
 * work run outside it (a forked process) pins itself with vcpus_pin_self. */
void bench_pin_setup(void);

/* ---- statistics ---------------------------------------------------------- */

/* Median of v[0..n) (mean of the middle two when n is even); v is left
 * unchanged.  Returns 0 for n == 0. */
double bench_median(const double *v, int n);

/* Same for integer counters (e.g. contended spins per run). */
unsigned long bench_median_ul(const unsigned long *v, int n);

/* ---- configuration ------------------------------------------------------- */

/* Integer environment variable name, or def when unset, empty or not a
 * positive number (a warning names the bad value). */
long bench_env_int(const char *name, long def);

/* ---- memory regions ------------------------------------------------------ */

/* mmap bytes of anonymous private memory (MAP_NORESERVE).  With prefault,
 * every page is written once so the first timed run does not pay page
 * faults the later runs skip.  Page aligned; exits on failure. */
void *bench_map(size_t bytes, int prefault);
void bench_unmap(void *p, size_t bytes);

/* ---- aligned tables ------------------------------------------------------ */

/* A table of text cells filled row by row, printed with every column sized
 * to its widest cell: the first column left-aligned, the others right-
 * aligned (numbers), a rule under the header. */
#define BENCH_TABLE_MAX_COLS 16
struct bench_table;

/* A table with ncols columns (1..BENCH_TABLE_MAX_COLS) titled by the ncols
 * const char * arguments that follow.  Exits on allocation failure. */
struct bench_table *bench_table_new(int ncols, ...);

/* Append the next cell (row-major order), formatted like printf; cells
 * longer than 63 characters are cut. */
void bench_table_cell(struct bench_table *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Print the table to out (an incomplete last row is padded with blanks). */
void bench_table_print(const struct bench_table *t, FILE *out);
void bench_table_free(struct bench_table *t);

/* ---- results folder ------------------------------------------------------ */

/* Where the benchmark writes its tables as TSV files for the plots:
 * $BENCH_RESULTS (scripts/bench.sh sets it, default build/bench/results),
 * or NULL when that is unset or empty (a run by hand: stdout only). */
const char *bench_results_dir(void);

/* Open <bench_results_dir()>/name for writing (created or truncated; the
 * folder and its parents are created if missing).  NULL when there is no
 * results folder, or, with a message on stderr, when the file cannot be
 * opened: the figures on stdout still stand.  TSV convention: one header
 * line, tab-separated, the first column the row's label; "nan" for a cell
 * that was not measured. */
FILE *bench_results_open(const char *name);

/* ---- reporting ----------------------------------------------------------- */

/* One line about the machine: online cores, compiler, whether optimised,
 * and the load (1-minute average, other runnable tasks now).
 * Thread counts above the core count time-share cores: worth knowing when
 * reading a table. */
void bench_print_machine(FILE *out);

/* Tasks other than the caller runnable right now (from /proc/loadavg; -1 if
 * unknown).  A benchmark that samples this between runs can warn that the
 * cores were shared and the figures are noisy. */
int bench_others_running(void);

/* ---- instruction counts ---------------------------------------------------- */

/* The valgrind to run: $BENCH_VALGRIND, else $KALLOC_BENCH_VALGRIND, else
 * /usr/bin/valgrind; NULL if that is not executable. */
const char *bench_valgrind(void);

/* Instructions callgrind counts inside function `fn` (and what it calls)
 * while running argv (argv[0] a program path, NULL-terminated), its
 * output discarded; NAN if valgrind is missing or the run fails.  tmpdir
 * holds callgrind's file while it is read. */
double bench_callgrind_ir(const char *fn, char *const argv[], const char *tmpdir);

/* Print "target: <what>: measured X (want >= T): met" or "NOT met".
 * Returns 1 if met.  Never aborts: targets are reported, not asserted. */
int bench_target(FILE *out, const char *what, double measured, double want);

#endif
