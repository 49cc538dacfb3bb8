// stats/: exact kNN against brute force (both metrics, ties, self excluded),
// the KSG estimators on a hand case evaluated from the definitions of
// spec/stats.md §A.1, and the Gaussian known answers of §A.5.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../stats/knn.h"
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

int main(void) {
    gn_set_threads(0);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_digamma), cmocka_unit_test(test_knn_vs_brute),
                                       cmocka_unit_test(test_range_count), cmocka_unit_test(test_ksg_hand),
                                       cmocka_unit_test(test_ksg_gaussian), cmocka_unit_test(test_cmi_and_gauss)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
