#include "mi.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../common/gn_common.h"
#include "knn.h"

double st_digamma(double x) {
    double r = 0;
    while (x < 6) r -= 1 / x, x += 1; // recurrence up to where the asymptotic series is accurate
    double f = 1 / (x * x);
    return r + log(x) - 0.5 / x - f * (1.0 / 12 - f * (1.0 / 120 - f * (1.0 / 252 - f * (1.0 / 240 - f / 132))));
}

static int check(const double *v, size_t n, int d, const char *what) {
    for (size_t i = 0; i < n * (size_t)d; i++)
        if (!isfinite(v[i])) return gn_err(GN_EINVAL, "MI: %s has a NaN or infinite value in row %zu (mask nulls first)", what, i / (size_t)d);
    return GN_OK;
}

// Concatenate column blocks into one (n, sum d) array.
static double *join(size_t n, int nb, const double *const *v, const int *d, int *dt) {
    *dt = 0;
    for (int b = 0; b < nb; b++) *dt += d[b];
    double *o = gn_malloc(sizeof(double) * n * (size_t)(*dt ? *dt : 1));
    if (!o) return NULL;
    for (size_t i = 0; i < n; i++) {
        int off = 0;
        for (int b = 0; b < nb; b++) {
            memcpy(o + i * (size_t)*dt + off, v[b] + i * (size_t)d[b], sizeof(double) * (size_t)d[b]);
            off += d[b];
        }
    }
    return o;
}

static double *join2(const double *a, int da, const double *b, int db, size_t n, int *dt) {
    const double *parts[2] = {a, b};
    int dims[2] = {da, db};
    return join(n, 2, parts, dims, dt);
}

static double linf(const double *a, const double *b, int d) {
    double s = 0;
    for (int j = 0; j < d; j++) s = fmax(s, fabs(a[j] - b[j]));
    return s;
}

int st_mi_ksg(const double *x, int dx, const double *y, int dy, size_t n, int k, int variant, double *mi) {
    if (k < 1 || (size_t)k >= n) return gn_err(GN_EINVAL, "KSG: k = %d needs at least k + 1 = %d samples (have %zu)", k, k + 1, n);
    if (variant != 1 && variant != 2) return gn_err(GN_EINVAL, "KSG: variant must be 1 or 2");
    int rc = check(x, n, dx, "X");
    if (!rc) rc = check(y, n, dy, "Y");
    if (rc) return rc;
    int dj;
    double *j = join2(x, dx, y, dy, n, &dj);
    st_kdtree tj, tx, ty;
    memset(&tj, 0, sizeof tj), memset(&tx, 0, sizeof tx), memset(&ty, 0, sizeof ty);
    if (!j || (rc = st_kd_build(&tj, j, n, dj, ST_LINF)) || (rc = st_kd_build(&tx, x, n, dx, ST_LINF)) ||
        (rc = st_kd_build(&ty, y, n, dy, ST_LINF))) {
        free(j), st_kd_free(&tj), st_kd_free(&tx), st_kd_free(&ty);
        return rc ? rc : GN_ENOMEM;
    }
    double *acc = gn_calloc(n, sizeof(double));
    int fail = !acc;
#pragma omp parallel
    {
        uint32_t *ni = malloc(sizeof(uint32_t) * (size_t)k);
        double *nd = malloc(sizeof(double) * (size_t)k);
#pragma omp for schedule(dynamic, 64)
        for (long i = 0; i < (long)n; i++) {
            if (!ni || !nd) {
                fail = 1; // every thread writes the same value
                continue;
            }
            st_kd_knn(&tj, j + (size_t)i * dj, k, i, ni, nd);
            size_t nx, ny;
            if (variant == 1) { // strictly inside the joint k-th neighbour distance
                double e = nd[k - 1];
                nx = st_kd_count(&tx, x + (size_t)i * dx, e, 1, i);
                ny = st_kd_count(&ty, y + (size_t)i * dy, e, 1, i);
                acc[i] = st_digamma((double)nx + 1) + st_digamma((double)ny + 1);
            } else { // each side's own extent over the k neighbours, inclusive
                double ex = 0, ey = 0;
                for (int a = 0; a < k; a++) {
                    ex = fmax(ex, linf(x + (size_t)ni[a] * dx, x + (size_t)i * dx, dx));
                    ey = fmax(ey, linf(y + (size_t)ni[a] * dy, y + (size_t)i * dy, dy));
                }
                nx = st_kd_count(&tx, x + (size_t)i * dx, ex, 0, i);
                ny = st_kd_count(&ty, y + (size_t)i * dy, ey, 0, i);
                acc[i] = st_digamma((double)nx) + st_digamma((double)ny);
            }
        }
        free(ni), free(nd);
    }
    if (!fail) {
        double s = 0;
        for (size_t i = 0; i < n; i++) s += acc[i]; // fixed order: thread-count independent
        s /= (double)n;
        *mi = variant == 1 ? st_digamma(k) + st_digamma((double)n) - s : st_digamma(k) - 1.0 / k + st_digamma((double)n) - s;
    }
    free(acc), free(j);
    st_kd_free(&tj), st_kd_free(&tx), st_kd_free(&ty);
    return fail ? GN_ENOMEM : GN_OK;
}

int st_cmi_fp(const double *x, int dx, const double *y, int dy, const double *z, int dz, size_t n, int k, double *cmi) {
    if (dz == 0) return st_mi_ksg(x, dx, y, dy, n, k, 1, cmi);
    if (k < 1 || (size_t)k >= n) return gn_err(GN_EINVAL, "CMI: k = %d needs at least k + 1 samples (have %zu)", k, n);
    int rc = check(x, n, dx, "X");
    if (!rc) rc = check(y, n, dy, "Y");
    if (!rc) rc = check(z, n, dz, "Z");
    if (rc) return rc;
    int dj, dxz, dyz;
    const double *pj[3] = {x, y, z};
    int dmj[3] = {dx, dy, dz};
    double *j = join(n, 3, pj, dmj, &dj), *xz = join2(x, dx, z, dz, n, &dxz), *yz = join2(y, dy, z, dz, n, &dyz);
    st_kdtree tj, txz, tyz, tz;
    memset(&tj, 0, sizeof tj), memset(&txz, 0, sizeof txz), memset(&tyz, 0, sizeof tyz), memset(&tz, 0, sizeof tz);
    double *acc = gn_calloc(n, sizeof(double));
    if (!j || !xz || !yz || !acc || (rc = st_kd_build(&tj, j, n, dj, ST_LINF)) || (rc = st_kd_build(&txz, xz, n, dxz, ST_LINF)) ||
        (rc = st_kd_build(&tyz, yz, n, dyz, ST_LINF)) || (rc = st_kd_build(&tz, z, n, dz, ST_LINF)))
        goto out;
#pragma omp parallel
    {
        uint32_t *ni = malloc(sizeof(uint32_t) * (size_t)k);
        double *nd = malloc(sizeof(double) * (size_t)k);
#pragma omp for schedule(dynamic, 64)
        for (long i = 0; i < (long)n; i++) {
            if (!ni || !nd) {
                rc = GN_ENOMEM;
                continue;
            }
            st_kd_knn(&tj, j + (size_t)i * dj, k, i, ni, nd);
            double e = nd[k - 1];
            size_t a = st_kd_count(&txz, xz + (size_t)i * dxz, e, 1, i), b = st_kd_count(&tyz, yz + (size_t)i * dyz, e, 1, i),
                   c = st_kd_count(&tz, z + (size_t)i * dz, e, 1, i);
            acc[i] = st_digamma((double)a + 1) + st_digamma((double)b + 1) - st_digamma((double)c + 1);
        }
        free(ni), free(nd);
    }
    double s = 0;
    for (size_t i = 0; i < n; i++) s += acc[i];
    if (!rc) *cmi = st_digamma(k) - s / (double)n;
out:
    free(j), free(xz), free(yz), free(acc);
    st_kd_free(&tj), st_kd_free(&txz), st_kd_free(&tyz), st_kd_free(&tz);
    return rc ? rc : (j && xz && yz ? GN_OK : GN_ENOMEM);
}

// log det of the sample covariance of columns cols[0..m) of (n, d) data, by Cholesky.
static int logdet_cov(const double *v, size_t n, int d, const int *cols, int m, double *ld) {
    double *mu = gn_calloc((size_t)m, sizeof(double)), *c = gn_calloc((size_t)m * m, sizeof(double));
    if (!mu || !c) return free(mu), free(c), GN_ENOMEM;
    for (size_t i = 0; i < n; i++)
        for (int a = 0; a < m; a++) mu[a] += v[i * (size_t)d + cols[a]];
    for (int a = 0; a < m; a++) mu[a] /= (double)n;
    for (size_t i = 0; i < n; i++)
        for (int a = 0; a < m; a++)
            for (int b = 0; b <= a; b++)
                c[a * m + b] += (v[i * (size_t)d + cols[a]] - mu[a]) * (v[i * (size_t)d + cols[b]] - mu[b]);
    double s = 0;
    int rc = GN_OK;
    for (int a = 0; a < m && !rc; a++) { // Cholesky in place (lower triangle)
        for (int b = 0; b <= a; b++) {
            double t = c[a * m + b] / (double)(n - 1);
            for (int q = 0; q < b; q++) t -= c[a * m + q] * c[b * m + q];
            if (a == b) {
                if (!(t > 0)) rc = gn_err(GN_EINVAL, "Gaussian MI: the covariance is singular (a constant or duplicated column?)");
                else c[a * m + a] = sqrt(t), s += log(t);
            } else
                c[a * m + b] = t / c[b * m + b];
            if (rc) break;
        }
    }
    *ld = s;
    free(mu), free(c);
    return rc;
}

int st_mi_gauss(const double *x, int dx, const double *y, int dy, size_t n, double *mi) {
    if (n < (size_t)(dx + dy) + 2) return gn_err(GN_EINVAL, "Gaussian MI: %zu samples for %d dimensions", n, dx + dy);
    int rc = check(x, n, dx, "X");
    if (!rc) rc = check(y, n, dy, "Y");
    if (rc) return rc;
    int dj;
    double *j = join2(x, dx, y, dy, n, &dj);
    if (!j) return GN_ENOMEM;
    int cols[64];
    if (dj > 64) return free(j), gn_err(GN_EINVAL, "Gaussian MI: at most 64 dimensions");
    double lx, ly, lj;
    for (int a = 0; a < dj; a++) cols[a] = a;
    rc = logdet_cov(j, n, dj, cols, dx, &lx);
    if (!rc) rc = logdet_cov(j, n, dj, cols + dx, dy, &ly);
    if (!rc) rc = logdet_cov(j, n, dj, cols, dj, &lj);
    free(j);
    if (!rc) *mi = 0.5 * (lx + ly - lj);
    return rc;
}
