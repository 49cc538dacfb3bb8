#include "spectra.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../common/gn_common.h"
#include "../common/gn_rng.h"

void io_spec_log_grid(double lo, double hi, int n, double *out) {
    double a = log10(lo), b = log10(hi);
    for (int i = 0; i < n; i++) out[i] = pow(10, n > 1 ? a + (b - a) * i / (n - 1) : a);
}

void io_spec_to_rest(double *wl, double *flux, double *err, int n, double z) {
    for (int i = 0; i < n; i++) {
        wl[i] /= 1 + z;
        flux[i] *= 1 + z;
        if (err) err[i] *= 1 + z;
    }
}

// Bin edges halfway between centres; the outer edges mirror the first/last half-widths.
static void edges(const double *c, int n, double *e) {
    e[0] = c[0] - (n > 1 ? (c[1] - c[0]) / 2 : 0.5);
    for (int i = 1; i < n; i++) e[i] = (c[i - 1] + c[i]) / 2;
    e[n] = c[n - 1] + (n > 1 ? (c[n - 1] - c[n - 2]) / 2 : 0.5);
}

int io_spec_resample(const double *wl, const double *flux, const double *err, int n, const double *wl_out, int n_out,
                     double *flux_out, double *err_out) {
    if (n < 1 || n_out < 1) return gn_err(GN_EINVAL, "resample: empty grid"), -1;
    for (int i = 1; i < n; i++)
        if (!(wl[i] > wl[i - 1])) return gn_err(GN_EINVAL, "resample: input wavelengths not increasing at pixel %d", i), -1;
    for (int i = 1; i < n_out; i++)
        if (!(wl_out[i] > wl_out[i - 1])) return gn_err(GN_EINVAL, "resample: output wavelengths not increasing at pixel %d", i), -1;
    double *e = malloc(sizeof(double) * (size_t)(n + 1)), *eo = malloc(sizeof(double) * (size_t)(n_out + 1));
    if (!e || !eo) return free(e), free(eo), gn_err(GN_ENOMEM, "out of memory"), -1;
    edges(wl, n, e);
    edges(wl_out, n_out, eo);
    int masked = 0, start = 0;
    for (int j = 0; j < n_out; j++) {
        double lo = eo[j], hi = eo[j + 1], sw = 0, sf = 0, se = 0;
        int bad = lo < e[0] || hi > e[n];
        while (start < n && e[start + 1] <= lo) start++;
        for (int i = start; !bad && i < n && e[i] < hi; i++) {
            double w = fmin(hi, e[i + 1]) - fmax(lo, e[i]);
            if (w <= 0 || isnan(flux[i]) || (err && !(err[i] > 0))) continue; // bad old pixels drop out
            sw += w, sf += w * flux[i];
            if (err) se += (w * err[i]) * (w * err[i]);
        }
        if (bad || !(sw >= 0.5 * (hi - lo))) { // outside the input, or less than half of it good
            flux_out[j] = NAN;
            if (err_out) err_out[j] = NAN;
            masked++;
            continue;
        }
        flux_out[j] = sf / sw;
        if (err_out) err_out[j] = err ? sqrt(se) / sw : NAN;
    }
    free(e), free(eo);
    return masked;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double io_spec_median_norm(double *flux, double *err, int n, double target) {
    double *t = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    if (!t) return NAN;
    int m = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(flux[i])) t[m++] = flux[i];
    qsort(t, (size_t)m, sizeof(double), cmp_d);
    double med = m ? (m % 2 ? t[m / 2] : 0.5 * (t[m / 2 - 1] + t[m / 2])) : NAN;
    free(t);
    if (!(med > 0)) return NAN;
    double s = target / med;
    for (int i = 0; i < n; i++) {
        flux[i] *= s;
        if (err) err[i] *= s;
    }
    return s;
}

// Solve the k x k system A a = b (A symmetric positive definite after the
// prior term; a tiny ridge guards the degenerate case).
static void solve(double *A, double *b, int k) {
    double tr = 0;
    for (int i = 0; i < k; i++) tr += A[i * k + i];
    for (int i = 0; i < k; i++) A[i * k + i] += 1e-10 * (tr > 0 ? tr : 1);
    for (int c = 0; c < k; c++) { // Gaussian elimination with partial pivoting
        int piv = c;
        for (int r = c + 1; r < k; r++)
            if (fabs(A[r * k + c]) > fabs(A[piv * k + c])) piv = r;
        for (int j = 0; j < k && piv != c; j++) {
            double t = A[c * k + j];
            A[c * k + j] = A[piv * k + j], A[piv * k + j] = t;
        }
        if (piv != c) {
            double t = b[c];
            b[c] = b[piv], b[piv] = t;
        }
        for (int r = c + 1; r < k; r++) {
            double f = A[r * k + c] / A[c * k + c];
            for (int j = c; j < k; j++) A[r * k + j] -= f * A[c * k + j];
            b[r] -= f * b[c];
        }
    }
    for (int c = k - 1; c >= 0; c--) {
        for (int j = c + 1; j < k; j++) b[c] -= A[c * k + j] * b[j];
        b[c] /= A[c * k + c];
    }
}

// Orthonormalise the k columns of Q (p x k, row-major) by modified Gram-Schmidt.
static void orth(float *Q, int p, int k) {
    for (int c = 0; c < k; c++) {
        for (int d = 0; d < c; d++) {
            double dot = 0;
            for (int i = 0; i < p; i++) dot += (double)Q[(size_t)i * k + c] * Q[(size_t)i * k + d];
            for (int i = 0; i < p; i++) Q[(size_t)i * k + c] -= (float)(dot * Q[(size_t)i * k + d]);
        }
        double nr = 0;
        for (int i = 0; i < p; i++) nr += (double)Q[(size_t)i * k + c] * Q[(size_t)i * k + c];
        nr = sqrt(nr);
        for (int i = 0; i < p; i++) Q[(size_t)i * k + c] = nr > 0 ? (float)(Q[(size_t)i * k + c] / nr) : 0;
    }
}

int io_spec_pca_fill(float *X, const uint8_t *mask, size_t n, int p, int n_ev, int iters) {
    if (!n || p < 1) return GN_OK;
    int k = n_ev < p ? n_ev : p;
    if ((size_t)k > n) k = (int)n;
    if (k < 1) return gn_err(GN_EINVAL, "PCA fill: n_ev %d", n_ev);
    double *norm = malloc(sizeof(double) * n), *mu = calloc((size_t)p, sizeof(double)), *cnt = calloc((size_t)p, sizeof(double));
    float *Y = malloc(sizeof(float) * n * (size_t)p), *Q = malloc(sizeof(float) * (size_t)p * k), *T = malloc(sizeof(float) * n * (size_t)k);
    double *A = malloc(sizeof(double) * (size_t)k * k), *b = malloc(sizeof(double) * (size_t)k), *lam = malloc(sizeof(double) * (size_t)k);
    float *keep = malloc(sizeof(float) * n * (size_t)p); // the present pixels, restored exactly at the end
    if (!norm || !mu || !cnt || !Y || !Q || !T || !A || !b || !keep || !lam) {
        free(norm), free(mu), free(cnt), free(Y), free(Q), free(T), free(A), free(b), free(keep), free(lam);
        return gn_err(GN_ENOMEM, "PCA fill: out of memory for %zu x %d spectra", n, p);
    }
    memcpy(keep, X, sizeof(float) * n * (size_t)p);
    // L2-normalise on the present pixels; start the gaps at the sample mean
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (int j = 0; j < p; j++)
            if (!mask[i * p + j]) s += (double)X[i * p + j] * X[i * p + j];
        norm[i] = s > 0 ? sqrt(s) : 1;
        for (int j = 0; j < p; j++)
            if (!mask[i * p + j]) X[i * p + j] = (float)(X[i * p + j] / norm[i]), mu[j] += X[i * p + j], cnt[j]++;
    }
    for (int j = 0; j < p; j++) mu[j] = cnt[j] ? mu[j] / cnt[j] : 0;
    for (size_t i = 0; i < n; i++)
        for (int j = 0; j < p; j++)
            if (mask[i * p + j]) X[i * p + j] = (float)mu[j];
    gn_rng r;
    gn_rng_seed(&r, 7, GN_STREAM_INIT);
    for (int it = 0; it < iters; it++) {
        // mean and centred data of the current fill
        for (int j = 0; j < p; j++) mu[j] = 0;
        for (size_t i = 0; i < n; i++)
            for (int j = 0; j < p; j++) mu[j] += X[i * p + j] / (double)n;
        for (size_t i = 0; i < n; i++)
            for (int j = 0; j < p; j++) Y[i * p + j] = (float)(X[i * p + j] - mu[j]);
        // top-k principal directions by subspace iteration on Y^T Y
        for (size_t q = 0; q < (size_t)p * k; q++) Q[q] = (float)gn_rng_normal(&r);
        orth(Q, p, k);
        for (int s = 0; s < 40; s++) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, k, p, 1, Y, p, Q, k, 0, T, k); // T = Y Q
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, p, k, (int)n, 1, Y, p, T, k, 0, Q, k);   // Q = Y^T T
            orth(Q, p, k);
        }
        // the components' variances and the residual variance per pixel (probabilistic PCA): the
        // coefficients below are posterior means under a ~ N(0, lambda_c), which keeps components
        // beyond the data's rank from fitting the gaps' current errors
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, k, p, 1, Y, p, Q, k, 0, T, k);
        double tot = 0, top = 0;
        for (size_t q = 0; q < n * (size_t)p; q++) tot += (double)Y[q] * Y[q] / (double)n;
        for (int a = 0; a < k; a++) {
            lam[a] = 0;
            for (size_t i = 0; i < n; i++) lam[a] += (double)T[i * k + a] * T[i * k + a] / (double)n;
            top += lam[a];
        }
        double sig2 = p > k ? (tot - top) / (p - k) : 0;
        if (!(sig2 > 1e-10 * tot / p)) sig2 = 1e-10 * tot / p + 1e-300; // float32 data: no finer than ~1e-5 relative
        // each spectrum: coefficients from its present pixels, then refill the gaps
        for (size_t i = 0; i < n; i++) {
            int gaps = 0;
            for (int j = 0; j < p; j++) gaps += mask[i * p + j] != 0;
            if (!gaps) continue;
            memset(A, 0, sizeof(double) * (size_t)k * k);
            memset(b, 0, sizeof(double) * (size_t)k);
            for (int j = 0; j < p; j++) {
                if (mask[i * p + j]) continue;
                const float *v = Q + (size_t)j * k;
                double y = X[i * p + j] - mu[j];
                for (int a = 0; a < k; a++) {
                    b[a] += v[a] * y;
                    for (int c = 0; c < k; c++) A[a * k + c] += (double)v[a] * v[c];
                }
            }
            for (int a = 0; a < k; a++) A[a * k + a] += lam[a] > 0 ? sig2 / lam[a] : 1e300;
            solve(A, b, k);
            for (int j = 0; j < p; j++) {
                if (!mask[i * p + j]) continue;
                double f = mu[j];
                for (int a = 0; a < k; a++) f += b[a] * Q[(size_t)j * k + a];
                X[i * p + j] = (float)f;
            }
        }
    }
    for (size_t i = 0; i < n; i++)
        for (int j = 0; j < p; j++) X[i * p + j] = mask[i * p + j] ? (float)(X[i * p + j] * norm[i]) : keep[i * p + j];
    free(norm), free(mu), free(cnt), free(Y), free(Q), free(T), free(A), free(b), free(keep), free(lam);
    return GN_OK;
}
