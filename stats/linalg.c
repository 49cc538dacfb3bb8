// Small dense linear algebra on double/float arrays: the eigen-decomposition
// of a symmetric matrix (cyclic Jacobi) and the PCA gap filling of spectra.
#include "linalg.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../common/gn_common.h"
#include "../common/gn_rng.h"

void st_eig_sym(double *A, int d, double *ev, double *V) {
    for (int i = 0; i < d * d; i++) V[i] = i % (d + 1) == 0;
    for (int sweep = 0; sweep < 100; sweep++) {
        double off = 0;
        for (int p = 0; p < d; p++)
            for (int q = p + 1; q < d; q++) off += A[p * d + q] * A[p * d + q];
        if (off < 1e-30) break;
        for (int p = 0; p < d; p++)
            for (int q = p + 1; q < d; q++) {
                if (fabs(A[p * d + q]) < 1e-300) continue;
                double th = (A[q * d + q] - A[p * d + p]) / (2 * A[p * d + q]);
                double t = (th >= 0 ? 1 : -1) / (fabs(th) + sqrt(th * th + 1)), cs = 1 / sqrt(t * t + 1),
                       sn = t * cs;
                for (int k = 0; k < d; k++) { // A <- J^T A J
                    double akp = A[k * d + p], akq = A[k * d + q];
                    A[k * d + p] = cs * akp - sn * akq, A[k * d + q] = sn * akp + cs * akq;
                }
                for (int k = 0; k < d; k++) {
                    double apk = A[p * d + k], aqk = A[q * d + k];
                    A[p * d + k] = cs * apk - sn * aqk, A[q * d + k] = sn * apk + cs * aqk;
                }
                for (int k = 0; k < d; k++) {
                    double vkp = V[k * d + p], vkq = V[k * d + q];
                    V[k * d + p] = cs * vkp - sn * vkq, V[k * d + q] = sn * vkp + cs * vkq;
                }
            }
    }
    for (int i = 0; i < d; i++) ev[i] = A[i * d + i];
    for (int i = 0; i < d; i++) { // sort descending (selection), columns with them
        int b = i;
        for (int j = i + 1; j < d; j++) b = ev[j] > ev[b] ? j : b;
        if (b == i) continue;
        double t = ev[i];
        ev[i] = ev[b], ev[b] = t;
        for (int k = 0; k < d; k++) t = V[k * d + i], V[k * d + i] = V[k * d + b], V[k * d + b] = t;
    }
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

int st_pca_fill(float *X, const uint8_t *mask, size_t n, int p, int n_ev, int iters) {
    if (!n || p < 1) return GN_OK;
    int k = n_ev < p ? n_ev : p;
    if ((size_t)k > n) k = (int)n;
    if (k < 1) return gn_err(GN_EINVAL, "PCA fill: n_ev %d", n_ev);
    double *norm = malloc(sizeof(double) * n), *mu = calloc((size_t)p, sizeof(double)),
           *cnt = calloc((size_t)p, sizeof(double));
    float *Y = malloc(sizeof(float) * n * (size_t)p), *Q = malloc(sizeof(float) * (size_t)p * k),
          *T = malloc(sizeof(float) * n * (size_t)k);
    double *A = malloc(sizeof(double) * (size_t)k * k), *b = malloc(sizeof(double) * (size_t)k),
           *lam = malloc(sizeof(double) * (size_t)k);
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
            if (!mask[i * p + j])
                X[i * p + j] = (float)(X[i * p + j] / norm[i]), mu[j] += X[i * p + j], cnt[j]++;
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
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, k, p, 1, Y, p, Q, k, 0, T,
                        k); // T = Y Q
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, p, k, (int)n, 1, Y, p, T, k, 0, Q,
                        k); // Q = Y^T T
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
        if (!(sig2 > 1e-10 * tot / p))
            sig2 = 1e-10 * tot / p + 1e-300; // float32 data: no finer than ~1e-5 relative
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
        for (int j = 0; j < p; j++)
            X[i * p + j] = mask[i * p + j] ? (float)(X[i * p + j] * norm[i]) : keep[i * p + j];
    free(norm), free(mu), free(cnt), free(Y), free(Q), free(T), free(A), free(b), free(keep), free(lam);
    return GN_OK;
}
