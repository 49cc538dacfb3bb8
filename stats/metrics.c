#include "metrics.h"

#include <math.h>
#include <stdlib.h>

#include "../common/gn_common.h"

static int cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double st_median(double *x, size_t n) {
    if (!n) return NAN;
    qsort(x, n, sizeof *x, cmpd);
    return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

void st_mean_std(const double *x, size_t n, double *mean, double *sd) {
    double s = 0, s2 = 0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!isnan(x[i])) s += x[i], k++;
    *mean = k ? s / (double)k : NAN;
    for (size_t i = 0; i < n; i++)
        if (!isnan(x[i])) s2 += (x[i] - *mean) * (x[i] - *mean);
    *sd = k ? sqrt(s2 / (double)k) : NAN;
}

int st_point_metrics(const double *pred, const double *truth, size_t n, st_metrics *m) {
    double *d = gn_malloc(sizeof(double) * (n ? n : 1)), *t = gn_malloc(sizeof(double) * (n ? n : 1));
    if (!d || !t) return free(d), free(t), GN_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!isnan(truth[i]) && !isnan(pred[i])) d[k] = pred[i] - truth[i], t[k++] = truth[i];
    m->n = k;
    if (!k) {
        free(d), free(t);
        return gn_err(GN_EINVAL, "metrics: no galaxy with both a prediction and a true value");
    }
    double tm, tsd, sse = 0;
    st_mean_std(d, k, &m->mean, &m->std);
    m->bias = m->mean;
    st_mean_std(t, k, &tm, &tsd);
    for (size_t i = 0; i < k; i++) sse += d[i] * d[i];
    m->rmse = sqrt(sse / (double)k);
    m->r2 = tsd > 0 ? 1 - sse / ((double)k * tsd * tsd) : NAN;
    double *a = t; // reuse: |d - median d|
    for (size_t i = 0; i < k; i++) a[i] = d[i];
    double med = st_median(a, k);
    for (size_t i = 0; i < k; i++) a[i] = fabs(d[i] - med);
    m->sigma_mad = 1.4826 * st_median(a, k);
    size_t out = 0;
    for (size_t i = 0; i < k; i++) out += fabs(d[i]) > 3 * m->sigma_mad;
    m->eta = (double)out / (double)k;
    free(d), free(t);
    return GN_OK;
}

double st_crps_gaussian(double mu, double sd, double y) {
    if (!(sd > 0)) return fabs(y - mu);
    double z = (y - mu) / sd;
    double pdf = exp(-0.5 * z * z) / sqrt(2 * M_PI), cdf = 0.5 * erfc(-z / sqrt(2));
    return sd * (z * (2 * cdf - 1) + 2 * pdf - 1 / sqrt(M_PI));
}

double st_crps_binned(const double *p, int B, double lo, double w, double y) {
    double cdf = 0, s = 0;
    for (int k = 0; k < B; k++) {
        cdf += p[k];
        double step = y <= lo + (k + 1) * w ? 1.0 : 0.0;
        s += (cdf - step) * (cdf - step) * w;
    }
    return s;
}

double st_quantile_sorted(const float *v, int n, double q) {
    double pos = q * (n - 1);
    int i = (int)pos;
    if (i >= n - 1) return v[n - 1];
    return v[i] + (pos - i) * (v[i + 1] - v[i]);
}

double st_quantile_sorted_d(const double *v, size_t n, double q) {
    double pos = q * (double)(n - 1);
    size_t i = (size_t)pos;
    if (i >= n - 1) return v[n - 1];
    return v[i] + (pos - (double)i) * (v[i + 1] - v[i]);
}

double st_probit(double p) {
    if (!(p >= 0 && p <= 1)) return NAN;
    if (p == 0 || p == 1) return p == 0 ? -INFINITY : INFINITY;
    double t = sqrt(-2 * log(p < 0.5 ? p : 1 - p)); // a start good to ~0.01 (Abramowitz & Stegun 26.2.23)
    double z = t - (2.515517 + 0.802853 * t + 0.010328 * t * t) /
                       (1 + 1.432788 * t + 0.189269 * t * t + 0.001308 * t * t * t);
    if (p < 0.5) z = -z;
    for (int i = 0; i < 6; i++) { // Newton on Phi(z) = p
        double e = 0.5 * erfc(-z / sqrt(2.0)) - p, d = exp(-0.5 * z * z) / sqrt(2 * M_PI);
        if (!(d > 0)) break;
        z -= e / d;
    }
    return z;
}

double st_crps_sorted(const float *v, int n, double y) {
    double a = 0, b = 0;
    for (int i = 0; i < n; i++) a += fabs(v[i] - y), b += (2.0 * (i + 1) - n - 1) * v[i];
    return a / n - b / ((double)n * n);
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

void st_sort_f(float *v, size_t n) { qsort(v, n, sizeof(float), cmp_float); }
