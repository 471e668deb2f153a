/* The sign test's interval for a median (stats.h). */
#include "stats.h"

#include <stdlib.h>

double stats_sign_coverage(int n, int k)
{
    /* P(X <= k - 1) for X ~ Binomial(n, 1/2), term by term from P(X = 0)
     * = 2^-n: exact enough in doubles for any n a benchmark runs.  (No
     * ldexp: support/ links without libm.) */
    double term = 1, tail = 0;
    for (int i = 0; i < n; i++)
        term /= 2;
    for (int j = 0; j < k; j++) {
        tail += term;
        term = term * (n - j) / (j + 1);
    }
    return 1 - 2 * tail;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double stats_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof v[0], cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double stats_median_interval(double *v, int n, double level, double *lo, double *hi,
                             double *cover)
{
    double m = stats_median(v, n);
    int k = 1;
    while (k + 1 <= (n + 1) / 2 && stats_sign_coverage(n, k + 1) >= level)
        k++;
    *lo = v[k - 1];
    *hi = v[n - k];
    *cover = stats_sign_coverage(n, k);
    return m;
}
