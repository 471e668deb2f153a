/* The benchmarks' median interval (support/stats.h): its coverage against
 * binomial sums counted exactly in integers, the k it picks, and the
 * figures it returns for shuffled input. */
#include "harness.h"
#include "../support/stats.h"


static int near(double a, double b)
{
    return a - b < 1e-12 && b - a < 1e-12;
}

/* P(Binomial(n, 1/2) <= k - 1) * 2^n, exactly (n <= 60). */
static uint64_t lower_tail_count(int n, int k)
{
    uint64_t c = 1, sum = 0;                 /* c = C(n, j) */
    for (int j = 0; j < k; j++) {
        sum += c;
        c = c * (uint64_t)(n - j) / (uint64_t)(j + 1);
    }
    return sum;
}

TEST(coverage_matches_exact_binomial_sums)
{
    for (int n = 1; n <= 60; n++)
        for (int k = 1; k <= (n + 1) / 2; k++) {
            double exact = 1 - 2 * (double)lower_tail_count(n, k) / (double)((uint64_t)1 << n);
            double got = stats_sign_coverage(n, k);
            CHECK(near(got, exact), "n %d k %d: coverage %.15f, exact %.15f", n, k, got, exact);
        }
    /* Known values: 7 figures give min..max at 98.4% and nothing tighter at
     * 90%; 15 give the 4th to the 12th at 96.5%. */
    CHECK(near(stats_sign_coverage(7, 1), 0.984375), "n 7 k 1");
    CHECK(near(stats_sign_coverage(7, 2), 0.875), "n 7 k 2");
    CHECK(near(stats_sign_coverage(15, 4), 1 - 2 * 576.0 / 32768), "n 15 k 4");
}

/* For every n, the interval is the k-th smallest and k-th largest of the
 * figures for the largest k that keeps the coverage at the level: here the
 * figures are 1..n shuffled, so lo must be k and hi n + 1 - k. */
TEST(interval_picks_the_widest_k_that_keeps_the_level)
{
    struct prng r = prng_seed(test_seed(), 1);
    for (int n = 1; n <= 60; n++) {
        double v[60];
        for (int i = 0; i < n; i++)
            v[i] = i + 1;
        for (int i = n - 1; i > 0; i--) {     /* shuffle */
            int j = (int)prng_below(&r, (uint64_t)i + 1);
            double t = v[i];
            v[i] = v[j];
            v[j] = t;
        }
        double lo, hi, cover;
        double m = stats_median_interval(v, n, 0.90, &lo, &hi, &cover);
        CHECK(m == (n + 1) / 2.0, "n %d: median %g", n, m);
        int k = (int)lo;
        CHECK(hi == n + 1 - k, "n %d: interval %g .. %g is not symmetric in rank", n, lo, hi);
        CHECK(cover == stats_sign_coverage(n, k), "n %d: coverage %g for k %d", n, cover, k);
        if (stats_sign_coverage(n, 1) >= 0.90) {
            CHECK(cover >= 0.90, "n %d: coverage %g below the level", n, cover);
            CHECK(k == (n + 1) / 2 || stats_sign_coverage(n, k + 1) < 0.90,
                  "n %d: k %d, but k + 1 still covers %g", n, k, stats_sign_coverage(n, k + 1));
        } else {
            CHECK(k == 1, "n %d: too few figures for 90%%, yet k %d", n, k);
        }
        for (int i = 1; i < n; i++)
            CHECK(v[i - 1] <= v[i], "n %d: not sorted at %d", n, i);
    }
}

/* The figures' order does not matter, ties included. */
TEST(median_of_even_count_and_ties)
{
    double a[] = { 3, 1, 2, 2 };
    double lo, hi, cover;
    CHECK(stats_median_interval(a, 4, 0.90, &lo, &hi, &cover) == 2, "median of 1 2 2 3");
    CHECK(lo == 1 && hi == 3 && near(cover, 0.875), "4 figures: the whole range at 87.5%%");
    double c[] = { 4, 1, 3, 2 };
    CHECK(stats_median(c, 4) == 2.5 && c[0] == 1 && c[3] == 4, "median of 4 1 3 2: %g, sorted %g .. %g",
          stats_median(c, 4), c[0], c[3]);
    double b[] = { 5 };
    CHECK(stats_median_interval(b, 1, 0.90, &lo, &hi, &cover) == 5 && lo == 5 && hi == 5 && cover == 0,
          "one figure: itself, with no confidence");
}

int main(void)
{
    return RUN_TESTS(coverage_matches_exact_binomial_sums, interval_picks_the_widest_k_that_keeps_the_level,
                     median_of_even_count_and_ties);
}
