// Accuracy metrics of point and probabilistic predictions (spec/methods.md
// §1.8 and §2.3). With d = prediction - truth (in dex for log quantities):
//   bias = mean(d); sigma_MAD = 1.4826 median|d - median d|;
//   eta = fraction with |d| > 3 sigma_MAD; RMSE; R^2 = 1 - SS_res/SS_tot;
//   mean +- std of d (Chu et al.'s "mean +- 1 sigma of log(pred/true)").
// NaN entries (missing truth) are skipped.
#ifndef ST_METRICS_H
#define ST_METRICS_H

#include <stddef.h>

typedef struct st_metrics {
    size_t n;
    double bias, sigma_mad, eta, rmse, r2, mean, std;
} st_metrics;

int st_point_metrics(const double *pred, const double *truth, size_t n, st_metrics *m);
// CRPS of a Gaussian N(mu, sd^2) at y (closed form).
double st_crps_gaussian(double mu, double sd, double y);
// CRPS of a binned distribution p[0..B) with bin width w starting at lo:
// sum_k (CDF_k - 1[y <= right edge of bin k])^2 w (spec §1.8).
double st_crps_binned(const double *p, int B, double lo, double w, double y);
// Of a sample sorted ascending (v, n values): the linearly interpolated
// q-quantile, and the CRPS of its empirical distribution at y,
// mean |v - y| - (1 / 2n^2) sum_ij |v_i - v_j| (the double sum from the order statistics).
// Sort v (n values) ascending, for the two below.
void st_sort_f(float *v, size_t n);
double st_quantile_sorted(const float *v, int n, double q);
double st_quantile_sorted_d(const double *v, size_t n, double q); // the same for doubles
// The standard normal quantile Phi^-1(p) (+-inf at 0 and 1, NaN outside), to ~1e-14.
double st_probit(double p);
double st_crps_sorted(const float *v, int n, double y);
double st_median(double *x, size_t n);                                 // reorders x
void st_mean_std(const double *x, size_t n, double *mean, double *sd); // skips NaN; population std

#endif
