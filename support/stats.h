/*
 * Order statistics for the benchmarks' verdicts: the median of n figures
 * and a confidence interval for it that assumes nothing about the noise
 * but that the figures are independent (the sign test's interval).
 *
 *   double lo, hi, cover;
 *   double m = stats_median_interval(ratio, rounds, 0.90, &lo, &hi, &cover);
 *   // m: the median; [lo, hi] holds the true median with probability cover
 *   // (>= 0.90 when rounds allow it: 5 figures or more)
 *
 * Why this interval: this host's run-to-run noise is neither normal nor
 * steady (its speed drifts in phases), so a mean and a standard error would
 * claim more than the data show.  With the n figures sorted, the k-th
 * smallest lies below the median unless at most k - 1 figures do, which for
 * a continuous distribution has probability P(Binomial(n, 1/2) <= k - 1);
 * so [k-th smallest, k-th largest] misses it with twice that.
 */
#ifndef SMPMEM_SUPPORT_STATS_H
#define SMPMEM_SUPPORT_STATS_H

/* The coverage of [k-th smallest, k-th largest] of n figures as an interval
 * for their median: 1 - 2 P(Binomial(n, 1/2) <= k - 1).  1 <= k <= (n+1)/2. */
double stats_sign_coverage(int n, int k);

/* Sorts v[0 .. n) in place (no NaN in it; n >= 1) and returns its median
 * (the mean of the middle two when n is even). */
double stats_median(double *v, int n);

/* Sorts v[0 .. n) in place (no NaN in it; n >= 1) and returns its median.
 * *lo, *hi: the k-th smallest and k-th largest figure for the largest k
 * whose coverage is at least level, or the whole range (k = 1) when even
 * that falls short (n < 5 for 0.90); *cover: the coverage of the interval
 * given. */
double stats_median_interval(double *v, int n, double level, double *lo, double *hi,
                             double *cover);

#endif
