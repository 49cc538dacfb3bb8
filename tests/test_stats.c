// stats/: exact kNN against brute force (both metrics, ties, self excluded),
// the KSG estimators on a hand case evaluated from the definitions of
// spec/stats.md §A.1, and the Gaussian known answers of §A.5.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../stats/knn.h"
#include "../stats/metrics.h"
#include "../stats/local.h"
#include "../stats/mi.h"
#include "testutil.h"

static void test_digamma(void **st) {
    (void)st;
    assert_float_equal(st_digamma(1), -0.5772156649015329, 1e-12);
    assert_float_equal(st_digamma(2), 1 - 0.5772156649015329, 1e-12);
    assert_float_equal(st_digamma(0.5), -1.9635100260214235, 1e-12);
    assert_float_equal(st_digamma(1000), 6.907255195648812, 1e-12);
}

static double bdist(const double *a, const double *b, int d, int m) {
    double s = 0;
    for (int j = 0; j < d; j++) s = m == ST_LINF ? fmax(s, fabs(a[j] - b[j])) : s + (a[j] - b[j]) * (a[j] - b[j]);
    return m == ST_LINF ? s : sqrt(s);
}

// The normal quantile: known values and the round trip through erfc, into the far tails.
static void test_probit(void **st) {
    (void)st;
    assert_float_equal(st_probit(0.975), 1.959963984540054, 1e-12);
    assert_float_equal(st_probit(0.16), -0.994457883209753, 1e-12);
    assert_float_equal(st_probit(0.5), 0, 1e-15);
    for (double p = 1e-12; p < 1; p = p < 0.5 ? p * 3.7 : 1 - (1 - p) / 3.7) {
        double z = st_probit(p);
        assert_float_equal(0.5 * erfc(-z / sqrt(2.0)), p, 1e-13 + 1e-10 * p);
        if (1 - p < 1e-9) break;
    }
    assert_true(isinf(st_probit(0)) && st_probit(0) < 0 && isinf(st_probit(1)) && isnan(st_probit(1.5)));
}

static void test_knn_vs_brute(void **st) {
    (void)st;
    const int n = 1500, k = 7, dims[3] = {1, 3, 20};
    for (int di = 0; di < 3; di++)
        for (int mm = 0; mm < 3; mm++) { // L2 by KD-tree, L2 by GEMM brute force, max-norm
            int d = dims[di], m = mm == 2 ? ST_LINF : ST_L2, meth = mm == 1 ? ST_KNN_BRUTE : ST_KNN_KDTREE;
            double *p = malloc(sizeof(double) * n * d);
            gn_rng r;
            gn_rng_seed(&r, 3, 1);
            // integer grid: many exact ties; far from the origin for the float32 screening of the GEMM path
            for (int i = 0; i < n * d; i++) p[i] = floor(gn_rng_uniform(&r) * 20) + (mm == 1 ? 1000 : 0);
            uint32_t *idx = malloc(sizeof(uint32_t) * n * k);
            double *dist = malloc(sizeof(double) * n * k), *bd = malloc(sizeof(double) * n);
            assert_int_equal(st_knn_ex(p, n, p, n, d, k, m, 1, meth, idx, dist), 0);
            for (int q = 0; q < n; q += 7) { // brute force: sort by (distance, index), self excluded
                uint32_t want[7];
                int got = 0;
                for (int j = 0; j < n; j++) bd[j] = j == q ? INFINITY : bdist(p + q * d, p + j * d, d, m);
                for (int a = 0; a < k; a++) {
                    int best = -1;
                    for (int j = 0; j < n; j++) {
                        int used = 0;
                        for (int b = 0; b < got; b++) used |= want[b] == (uint32_t)j;
                        if (!used && j != q && (best < 0 || bd[j] < bd[best])) best = j;
                    }
                    want[got++] = (uint32_t)best;
                }
                for (int a = 0; a < k; a++) {
                    assert_int_equal(idx[q * k + a], want[a]);
                    assert_float_equal(dist[q * k + a], bd[want[a]], 1e-12);
                }
            }
            free(p), free(idx), free(dist), free(bd);
        }
    // errors: k too large, NaN
    double pts[4] = {0, 1, 2, NAN};
    uint32_t i2[4];
    double d2[4];
    assert_int_not_equal(st_knn(pts, 3, pts, 3, 1, 3, ST_L2, 1, i2, d2), 0);
    assert_non_null(strstr(gn_errmsg(), "k = 3"));
    assert_int_not_equal(st_knn(pts, 4, pts, 4, 1, 1, ST_L2, 1, i2, d2), 0);
    assert_non_null(strstr(gn_errmsg(), "NaN"));
}

static void test_range_count(void **st) {
    (void)st;
    double p[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    st_kdtree t;
    assert_int_equal(st_kd_build(&t, p, 10, 1, ST_LINF), 0);
    assert_int_equal(st_kd_count(&t, (double[]){4}, 2, 1, -1), 3); // 3, 4, 5
    assert_int_equal(st_kd_count(&t, (double[]){4}, 2, 0, -1), 5); // 2..6
    assert_int_equal(st_kd_count(&t, (double[]){4}, 2, 0, 4), 4);  // self excluded
    st_kd_free(&t);
}

// The hand case: 6 points, k = 2; expected values from the definitions
// evaluated independently (brute force, exact digamma of integers).
static void test_ksg_hand(void **st) {
    (void)st;
    double x[6] = {0.0, 1.0, 3.0, 4.5, 7.0, 7.5}, y[6] = {0.0, 2.0, 1.0, 5.0, 4.0, 8.0}, v;
    assert_int_equal(st_mi_ksg(x, 1, y, 1, 6, 2, 1, &v), 0);
    assert_float_equal(v, 0.6444444444444446, 1e-12);
    assert_int_equal(st_mi_ksg(x, 1, y, 1, 6, 2, 2, &v), 0);
    assert_float_equal(v, 0.28333333333333344, 1e-12);
    assert_int_not_equal(st_mi_ksg(x, 1, y, 1, 6, 6, 1, &v), 0); // k >= n
    y[2] = NAN;
    assert_int_not_equal(st_mi_ksg(x, 1, y, 1, 6, 2, 1, &v), 0);
    assert_non_null(strstr(gn_errmsg(), "NaN"));
}

// Correlated Gaussians: I = -1/2 ln(1 - rho^2) (spec §A.5).
static void gaussian(gn_rng *r, size_t n, double rho, double *x, double *y) {
    for (size_t i = 0; i < n; i++) {
        double a = gn_rng_normal(r), b = gn_rng_normal(r);
        x[i] = a;
        y[i] = rho * a + sqrt(1 - rho * rho) * b;
    }
}

static void test_ksg_gaussian(void **st) {
    (void)st;
    const size_t n = 1000;
    const int R = 20;
    double *x = malloc(sizeof(double) * n), *y = malloc(sizeof(double) * n);
    static const double rhos[3] = {0.3, 0.6, 0.9}, truth[3] = {0.0471553397, 0.2231435513, 0.8303656034};
    for (int t = 0; t < 3; t++)
        for (int variant = 1; variant <= 2; variant++) {
            double mean = 0;
            gn_rng r;
            gn_rng_seed(&r, 100 + (uint64_t)t, 1);
            for (int rep = 0; rep < R; rep++) {
                gaussian(&r, n, rhos[t], x, y);
                double v;
                assert_int_equal(st_mi_ksg(x, 1, y, 1, n, 3, variant, &v), 0);
                assert_true(fabs(v - truth[t]) < 0.15); // one seed: ~4 sigma (spec §A.5)
                mean += v / R;
            }
            // the mean of 20 seeds: 3 SD/sqrt(R) with SD <= 0.04 -> 0.027, plus the small known bias
            printf("    KSG%d rho %.1f: mean of %d = %.4f (true %.4f)\n", variant, rhos[t], R, mean, truth[t]);
            assert_true(fabs(mean - truth[t]) < 0.035);
        }
    free(x), free(y);
}

// NPEET's 3-D Gaussian (spec §A.5): cov [[4,3,1],[3,4,1],[1,1,2]]:
// I(x;y) = 0.4133392866, I(x;y|z) = 0.3568832339 nats.
static void test_cmi_and_gauss(void **st) {
    (void)st;
    const size_t n = 20000;
    double *x = malloc(sizeof(double) * n), *y = malloc(sizeof(double) * n), *z = malloc(sizeof(double) * n);
    gn_rng r;
    gn_rng_seed(&r, 7, 1);
    for (size_t i = 0; i < n; i++) { // cov = M^T diag(3,1,1) M with M = [[1,1,0],[1,0,1],[0,1,1]]
        double a = sqrt(3) * gn_rng_normal(&r), b = gn_rng_normal(&r), c = gn_rng_normal(&r);
        x[i] = a + b, y[i] = a + c, z[i] = b + c;
    }
    double g, cm, k1;
    assert_int_equal(st_mi_gauss(x, 1, y, 1, n, &g), 0);
    assert_float_equal(g, 0.4133392866, 0.02);
    assert_int_equal(st_mi_ksg(x, 1, y, 1, n, 4, 1, &k1), 0);
    assert_float_equal(k1, 0.4133392866, 0.03);
    assert_int_equal(st_cmi_fp(x, 1, y, 1, z, 1, n, 4, &cm), 0);
    printf("    n = %zu: Gaussian MI %.4f, KSG1 %.4f (true 0.4133); FP CMI %.4f (true 0.3569)\n", n, g, k1, cm);
    assert_float_equal(cm, 0.3568832339, 0.03);
    // X and Y independent given Z: X = Z + e1, Y = Z + e2
    for (size_t i = 0; i < n; i++) {
        double zz = gn_rng_normal(&r);
        z[i] = zz, x[i] = zz + 0.5 * gn_rng_normal(&r), y[i] = zz + 0.5 * gn_rng_normal(&r);
    }
    assert_int_equal(st_cmi_fp(x, 1, y, 1, z, 1, n, 4, &cm), 0);
    assert_float_equal(cm, 0.0, 0.02);
    for (size_t i = 0; i < n; i++) y[i] = 1.0; // a constant column: singular covariance
    assert_int_not_equal(st_mi_gauss(x, 1, y, 1, n, &g), 0);
    assert_non_null(strstr(gn_errmsg(), "singular"));
    free(x), free(y), free(z);
}


// §1.10: the quadratic fit recovers an exact quadratic; r and PE against an
// independent computation (normal equations solved by elimination on the raw
// design matrix); degenerate x falls back to a line / constant.
static void solve3(double A[3][4]) {
    for (int c = 0; c < 3; c++) {
        int piv = c;
        for (int r = c + 1; r < 3; r++)
            if (fabs(A[r][c]) > fabs(A[piv][c])) piv = r;
        for (int k = 0; k < 4; k++) {
            double t = A[c][k];
            A[c][k] = A[piv][k], A[piv][k] = t;
        }
        for (int r = 0; r < 3; r++)
            if (r != c) {
                double f = A[r][c] / A[c][c];
                for (int k = 0; k < 4; k++) A[r][k] -= f * A[c][k];
            }
    }
}

static void test_local_fit(void **st) {
    (void)st;
    double x[9] = {9.1, 9.5, 10.2, 10.4, 10.9, 11.3, 11.8, 9.9, 10.6}, y[9], e[9], coef[3];
    for (int i = 0; i < 9; i++) y[i] = 1.5 - 2 * x[i] + 0.25 * x[i] * x[i];
    assert_int_equal(st_quadfit(x, y, 9, coef, e), 2);
    for (int i = 0; i < 9; i++) assert_true(fabs(e[i]) < 1e-10);
    assert_float_equal(coef[0], 1.5, 1e-7), assert_float_equal(coef[1], -2, 1e-8), assert_float_equal(coef[2], 0.25, 1e-9);
    // noisy y: compare r and PE with the independent solution
    double yn[9] = {10.1, 10.6, 10.3, 11.0, 10.2, 11.4, 11.1, 10.0, 10.9};
    double A[3][4] = {{0}}, my = 0, vy = 0, ve = 0;
    for (int i = 0; i < 9; i++) {
        double b[3] = {1, x[i], x[i] * x[i]};
        for (int r = 0; r < 3; r++) {
            for (int c = 0; c < 3; c++) A[r][c] += b[r] * b[c];
            A[r][3] += b[r] * yn[i];
        }
        my += yn[i] / 9;
    }
    solve3(A);
    for (int i = 0; i < 9; i++) {
        double f = A[0][3] / A[0][0] + A[1][3] / A[1][1] * x[i] + A[2][3] / A[2][2] * x[i] * x[i];
        vy += (yn[i] - my) * (yn[i] - my), ve += (yn[i] - f) * (yn[i] - f); // residual mean is 0 with an intercept
    }
    assert_float_equal(st_pred_eff(x, yn, 9), 1 - ve / vy, 1e-10);
    double mx = 0, sxy = 0, sxx = 0;
    for (int i = 0; i < 9; i++) mx += x[i] / 9;
    for (int i = 0; i < 9; i++) sxy += (x[i] - mx) * (yn[i] - my), sxx += (x[i] - mx) * (x[i] - mx);
    assert_float_equal(st_pearson(x, yn, 9), sxy / sqrt(sxx * vy), 1e-12);
    // two distinct x values: a line through the two group means; constant x: the mean
    double x2[6] = {1, 1, 1, 2, 2, 2}, y2[6] = {0, 1, 2, 5, 6, 7};
    assert_int_equal(st_quadfit(x2, y2, 6, NULL, e), 1);
    assert_float_equal(e[0], -1, 1e-12), assert_float_equal(e[4], 0, 1e-12);
    double x3[4] = {3, 3, 3, 3}, y3[4] = {1, 2, 3, 6};
    assert_int_equal(st_quadfit(x3, y3, 4, NULL, e), 0);
    assert_float_equal(e[3], 3, 1e-12);
    assert_true(isnan(st_pearson(x3, y3, 4)));
    assert_true(isnan(st_pred_eff(y3, x3, 4))); // constant target
}

// KS: D by hand; identical samples give p = 1; shifted samples p ~ 0.
static void test_ks(void **st) {
    (void)st;
    double a[3] = {1, 2, 3}, b[2] = {2.5, 4}, D, p;
    assert_int_equal(st_ks2(a, 3, b, 2, &D, &p), 0);
    assert_float_equal(D, 2.0 / 3, 1e-15);
    double u[500], v[500];
    for (int i = 0; i < 500; i++) u[i] = v[i] = i * 0.01;
    assert_int_equal(st_ks2(u, 500, v, 500, &D, &p), 0);
    assert_float_equal(D, 0, 0), assert_float_equal(p, 1, 1e-12);
    for (int i = 0; i < 500; i++) v[i] += 1.0;
    assert_int_equal(st_ks2(u, 500, v, 500, &D, &p), 0);
    assert_float_equal(D, 0.2, 0.005); // 0.2 up to the rounding of i * 0.01 + 1
    assert_true(p < 1e-8);
    double e1[1] = {NAN};
    assert_int_not_equal(st_ks2(e1, 1, u, 500, &D, &p), 0); // only NaN: empty
    // numpy's linear percentile
    double q[5] = {4, 1, NAN, 3, 2};
    assert_float_equal(st_percentile(q, 5, 50), 2.5, 1e-15);
    assert_float_equal(st_percentile(q, 5, 16), 1.48, 1e-12);
}

// The null: y independent of x in every neighbourhood (K = 100). The median
// PE is that of Beta(1, 48.5), 0.0142 (spec methods.md §1.10); r has SD ~
// 1/sqrt(99); with B = 99 permutations the per-galaxy p-values are uniform.
// A real dependence is found; conditioning on its cause removes it; nulls
// are masked.
static void test_local_null_and_power(void **st) {
    (void)st;
    const size_t nq = 3000;
    const int k = 100;
    size_t nref = nq * k;
    double *y = malloc(sizeof(double) * nref), *x = malloc(sizeof(double) * nref), *c = malloc(sizeof(double) * nref);
    uint32_t *nb = malloc(sizeof(uint32_t) * nref);
    st_local_row *rows = malloc(sizeof(st_local_row) * nq);
    gn_rng r;
    gn_rng_seed(&r, 11, 1);
    for (size_t i = 0; i < nref; i++) y[i] = gn_rng_normal(&r), x[i] = gn_rng_normal(&r), nb[i] = (uint32_t)i;
    st_local_opts o = {99, 10, 5, 9000, 0};
    assert_int_equal(st_local_test(nb, nq, k, y, x, NULL, NULL, &o, rows), 0);
    st_local_summary s;
    assert_int_equal(st_local_summarize(rows, nq, NULL, &s), 0);
    assert_int_equal(s.n, nq);
    assert_float_equal(s.pe[1], 0.0142, 0.0015);
    assert_float_equal(s.pe_perm[1], 0.0142, 0.0015);
    assert_float_equal(s.r[1], 0, 0.01);
    assert_float_equal((s.r[2] - s.r[0]) / 2, 1 / sqrt(99.0), 0.008);
    assert_float_equal(s.frac_p05, 0.05, 3 * sqrt(0.05 * 0.95 / nq));
    assert_true(s.p_ks_pe > 1e-3);
    size_t below = 0;
    for (size_t q = 0; q < nq; q++) below += rows[q].p_r <= 0.2;
    assert_float_equal((double)below / nq, 0.2, 3 * sqrt(0.2 * 0.8 / nq));
    // deterministic: the same seed gives the same rows, whatever the thread count
    st_local_row *again = malloc(sizeof(st_local_row) * nq);
    gn_set_threads(1);
    assert_int_equal(st_local_test(nb, nq, k, y, x, NULL, NULL, &o, again), 0);
    gn_set_threads(0);
    for (size_t q = 0; q < nq; q++) {
        assert_memory_equal(&rows[q].r, &again[q].r, 6 * sizeof(double)); // r .. p_pe, bit for bit
        assert_int_equal(rows[q].n_valid, again[q].n_valid);
    }
    // dependence through c: x = c + noise, y = c + noise
    for (size_t i = 0; i < nref; i++) {
        c[i] = gn_rng_normal(&r);
        x[i] = c[i] + 0.5 * gn_rng_normal(&r), y[i] = c[i] + 0.5 * gn_rng_normal(&r);
    }
    o.perms = 1;
    assert_int_equal(st_local_test(nb, nq, k, y, x, NULL, NULL, &o, rows), 0);
    assert_int_equal(st_local_summarize(rows, nq, NULL, &s), 0);
    assert_float_equal(s.r[1], 0.8, 0.05);
    assert_true(s.pe[1] > 0.5 && s.p_ks_pe < 1e-10 && s.p_ks_r < 1e-10);
    assert_int_equal(st_local_test(nb, nq, k, y, x, c, NULL, &o, rows), 0); // given c: independent
    assert_int_equal(st_local_summarize(rows, nq, NULL, &s), 0);
    assert_float_equal(s.r[1], 0, 0.01);
    assert_float_equal(s.pe[1], 0.0142 * 100 / 97, 0.002); // R^2 on 97 residual d.o.f.: slightly wider
    // pre-conditioning on g = c removes it too (y, x, c residualised on g; c then constant 0)
    assert_int_equal(st_local_test(nb, nq, k, y, x, NULL, c, &o, rows), 0);
    assert_int_equal(st_local_summarize(rows, nq, NULL, &s), 0);
    assert_float_equal(s.r[1], 0, 0.01);
    // nulls: sentinel and NaN neighbours are left out; too few valid -> NaN row
    for (int j = 0; j < k; j++) x[j] = j < 40 ? -9999 : (j < 60 ? NAN : x[j]);
    for (int j = 0; j < k - 5; j++) y[k + j] = 9999;
    assert_int_equal(st_local_test(nb, 2, k, y, x, NULL, NULL, &o, rows), 0);
    assert_int_equal(rows[0].n_valid, 40);
    assert_false(isnan(rows[0].r));
    assert_int_equal(rows[1].n_valid, 5);
    assert_true(isnan(rows[1].r) && isnan(rows[1].pe));
    assert_int_equal(st_local_summarize(rows, 2, NULL, &s), 0);
    assert_int_equal(s.n, 1), assert_int_equal(s.n_nan, 1);
    o.perms = 0;
    assert_int_not_equal(st_local_test(nb, 2, k, y, x, NULL, NULL, &o, rows), 0);
    assert_non_null(strstr(gn_errmsg(), "permutations"));
    free(y), free(x), free(c), free(nb), free(rows), free(again);
}

// The GEMM brute force equals the KD-tree on continuous data (different
// query and reference sets, 16-D).
static void test_knn_brute_continuous(void **st) {
    (void)st;
    const size_t nr = 3000, nq = 700;
    const int d = 16, k = 30;
    double *ref = malloc(sizeof(double) * nr * d), *q = malloc(sizeof(double) * nq * d);
    gn_rng r;
    gn_rng_seed(&r, 4, 1);
    for (size_t i = 0; i < nr * d; i++) ref[i] = 50 + gn_rng_normal(&r);
    for (size_t i = 0; i < nq * d; i++) q[i] = 50 + gn_rng_normal(&r);
    uint32_t *i1 = malloc(sizeof(uint32_t) * nq * k), *i2 = malloc(sizeof(uint32_t) * nq * k);
    double *d1 = malloc(sizeof(double) * nq * k), *d2 = malloc(sizeof(double) * nq * k);
    assert_int_equal(st_knn_ex(ref, nr, q, nq, d, k, ST_L2, 0, ST_KNN_BRUTE, i1, d1), 0);
    assert_int_equal(st_knn_ex(ref, nr, q, nq, d, k, ST_L2, 0, ST_KNN_KDTREE, i2, d2), 0);
    assert_memory_equal(i1, i2, sizeof(uint32_t) * nq * k);
    assert_memory_equal(d1, d2, sizeof(double) * nq * k);
    assert_int_equal(st_knn_method(16, ST_L2), ST_KNN_BRUTE);
    assert_int_equal(st_knn_method(16, ST_LINF), ST_KNN_KDTREE);
    assert_int_equal(st_knn_method(3, ST_L2), ST_KNN_KDTREE);
    free(ref), free(q), free(i1), free(i2), free(d1), free(d2);
}

// Binned MI: IDTxl's binning rules by hand; a copy of a 4-symbol uniform
// variable has I = ln 4 (plug-in), + 3/(2n) with Miller-Madow.
static void test_mi_binned(void **st) {
    (void)st;
    double v[5] = {0, 1, 2, 3, 4}, q[6] = {5, 1, 4, 2, 6, 3};
    int c[6];
    assert_int_equal(st_discretize(v, 5, 1, 2, 0, c), 0);
    int want_eq[5] = {0, 0, 1, 1, 1};
    for (int i = 0; i < 5; i++) assert_int_equal(c[i], want_eq[i]);
    assert_int_equal(st_discretize(q, 6, 1, 3, 1, c), 0);
    int want_q[6] = {2, 0, 1, 0, 2, 1};
    for (int i = 0; i < 6; i++) assert_int_equal(c[i], want_q[i]);
    const size_t n = 1000;
    double *x = malloc(sizeof(double) * n), mi;
    for (size_t i = 0; i < n; i++) x[i] = (double)(i % 4);
    assert_int_equal(st_mi_binned(x, 1, x, 1, NULL, 0, n, 4, 0, 0, &mi), 0);
    assert_float_equal(mi, log(4.0), 1e-12);
    assert_int_equal(st_mi_binned(x, 1, x, 1, NULL, 0, n, 4, 0, 1, &mi), 0);
    assert_float_equal(mi, log(4.0) + 3.0 / (2 * n), 1e-12);
    // conditional: X = Y given Z = X carries nothing
    assert_int_equal(st_mi_binned(x, 1, x, 1, x, 1, n, 4, 0, 0, &mi), 0);
    assert_float_equal(mi, 0, 1e-12);
    st_mi_opts o = {ST_MI_KSG2, 3, 8, 0, 1};
    assert_int_not_equal(st_mi(&o, x, 1, x, 1, x, 1, n, &mi), 0); // KSG 2 has no conditional form
    free(x);
}

// Transforms and the Gaussian CMI of NPEET's covariance (spec §A.5).
static void test_mi_transform_gauss_cmi(void **st) {
    (void)st;
    double r4[4] = {3, 1, 3, 2};
    assert_int_equal(st_transform(r4, 4, 1, ST_TF_RANK), 0);
    assert_float_equal(r4[0], 2, 0), assert_float_equal(r4[1], 0, 0), assert_float_equal(r4[2], 3, 0), assert_float_equal(r4[3], 1, 0);
    double s3[3] = {1, 2, 3};
    assert_int_equal(st_transform(s3, 3, 1, ST_TF_STANDARDIZE), 0);
    assert_float_equal(s3[0], -1, 1e-12), assert_float_equal(s3[2], 1, 1e-12);
    double c3[3] = {2, 2, 2};
    assert_int_not_equal(st_transform(c3, 3, 1, ST_TF_STANDARDIZE), 0);
    assert_non_null(strstr(gn_errmsg(), "constant"));
    const size_t n = 20000;
    double *x = malloc(sizeof(double) * n), *y = malloc(sizeof(double) * n), *z = malloc(sizeof(double) * n), cm;
    gn_rng r;
    gn_rng_seed(&r, 8, 1);
    for (size_t i = 0; i < n; i++) { // cov = M^T diag(3,1,1) M, M = [[1,1,0],[1,0,1],[0,1,1]]
        double a = sqrt(3.0) * gn_rng_normal(&r), b = gn_rng_normal(&r), c = gn_rng_normal(&r);
        x[i] = a + b, y[i] = a + c, z[i] = b + c;
    }
    assert_int_equal(st_cmi_gauss(x, 1, y, 1, z, 1, n, &cm), 0);
    assert_float_equal(cm, 0.3568832339, 0.015);
    // noise: seeded, tiny, and reproducible
    double a1[3] = {1, 1, 1}, a2[3] = {1, 1, 1};
    assert_int_equal(st_add_noise(a1, 3, 1, 1e-10, 5), 0);
    assert_int_equal(st_add_noise(a2, 3, 1, 1e-10, 5), 0);
    assert_memory_equal(a1, a2, sizeof a1);
    assert_true(a1[0] != a1[1] && fabs(a1[0] - 1) < 1e-8);
    free(x), free(y), free(z);
}

// The local-permutation CI test (spec §A.6): p-values roughly uniform when
// X and Y are independent given Z (both driven by Z), tiny when not.
static void test_mi_permtest(void **st) {
    (void)st;
    const size_t n = 200;
    const int trials = 150, B = 19;
    double *x = malloc(sizeof(double) * n), *y = malloc(sizeof(double) * n), *z = malloc(sizeof(double) * n), v, p;
    gn_rng r;
    gn_rng_seed(&r, 21, 1);
    st_mi_opts o = {ST_MI_KSG1, 5, 0, 0, 1};
    int low = 0;
    for (int t = 0; t < trials; t++) {
        for (size_t i = 0; i < n; i++) {
            z[i] = gn_rng_normal(&r);
            x[i] = z[i] + 0.6 * gn_rng_normal(&r), y[i] = z[i] + 0.6 * gn_rng_normal(&r);
        }
        assert_int_equal(st_mi_permtest(&o, x, 1, y, 1, z, 1, n, B, 5, (uint64_t)t, &v, &p, NULL), 0);
        low += p <= 0.1;
    }
    assert_float_equal((double)low / trials, 0.1, 3 * sqrt(0.1 * 0.9 / trials));
    for (size_t i = 0; i < n; i++) y[i] = x[i] + 0.3 * gn_rng_normal(&r); // dependent given Z
    double null[19];
    assert_int_equal(st_mi_permtest(&o, x, 1, y, 1, z, 1, n, B, 5, 1, &v, &p, null), 0);
    assert_float_equal(p, 1.0 / (B + 1), 1e-12);
    for (int b = 0; b < B; b++) assert_true(null[b] < v);
    assert_int_equal(st_mi_permtest(&o, x, 1, y, 1, NULL, 0, n, B, 5, 1, &v, &p, NULL), 0); // free shuffle
    assert_float_equal(p, 1.0 / (B + 1), 1e-12);
    assert_int_not_equal(st_mi_permtest(&o, x, 1, y, 1, z, 1, n, 0, 5, 1, &v, &p, NULL), 0);
    free(x), free(y), free(z);
}

int main(void) {
    gn_set_threads(0);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_digamma), cmocka_unit_test(test_probit), cmocka_unit_test(test_knn_vs_brute),
                                       cmocka_unit_test(test_range_count), cmocka_unit_test(test_ksg_hand),
                                       cmocka_unit_test(test_ksg_gaussian), cmocka_unit_test(test_cmi_and_gauss),
                                       cmocka_unit_test(test_local_fit), cmocka_unit_test(test_ks),
                                       cmocka_unit_test(test_local_null_and_power), cmocka_unit_test(test_knn_brute_continuous),
                                       cmocka_unit_test(test_mi_binned), cmocka_unit_test(test_mi_transform_gauss_cmi),
                                       cmocka_unit_test(test_mi_permtest)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
