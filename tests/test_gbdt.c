// models/gbdt: the binning, a split's gain against a hand computation, a data set whose optimal tree is
// known, missing-value routing, both prediction paths, resume and thread-count bit-exactness, roots from
// running sums, an inf target, quantile coverage on a heteroscedastic toy, and the TreeSHAP identities
// (sum to prediction - expected value, brute-force Shapley values, zero for an unused feature).
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/gn_common.h"
#include "../common/gn_rng.h"
#include "../models/gbdt.h"
#include "testutil.h"

static gb_params params(int leaves, int rounds, double lr) {
    return (gb_params){.num_leaves = leaves,
                       .max_depth = -1,
                       .min_data_in_leaf = 1,
                       .max_bins = 255,
                       .rounds = rounds,
                       .min_sum_hessian = 0,
                       .lambda_l2 = 0,
                       .learning_rate = lr,
                       .feature_fraction = 1,
                       .bagging_fraction = 1,
                       .loss = GB_L2,
                       .alpha = 0.9,
                       .seed = 1};
}

// A fit of `rounds` rounds (one ensemble per output with the losses/levels given).
static void fit(gb_model *m, const gb_params *p, const double *X, const double *y, size_t n, int F, int E,
                const int *loss, const double *alpha, int rounds) {
    int l2[8] = {0};
    double a[8] = {0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5};
    assert_int_equal(gb_model_init(m, E, loss ? loss : l2, alpha ? alpha : a), 0);
    assert_int_equal(gb_bin_edges(m, X, n, F, p->max_bins), 0);
    gb_fit *f = gb_fit_init(m, p, X, y, n, NULL, NULL, 0);
    assert_non_null(f);
    for (int r = 0; r < rounds; r++) assert_true(gb_fit_round(f) >= 0);
    gb_fit_free(f);
}

static void test_binning(void **st) {
    (void)st;
    double X[5] = {1, 2, 2, 3, NAN};
    gb_model m;
    assert_int_equal(gb_model_init(&m, 1, (int[]){GB_L2}, (double[]){0}), 0);
    assert_int_equal(gb_bin_edges(&m, X, 5, 1, 255), 0);
    assert_int_equal(gb_n_bins(&m, 0), 3); // 1.5, 2.5, +inf
    assert_float_equal(m.edges[0], 1.5, 0), assert_float_equal(m.edges[1], 2.5, 0),
        assert_true(isinf(m.edges[2]));
    assert_int_equal(gb_bin(&m, 0, 1), 0), assert_int_equal(gb_bin(&m, 0, 2), 1);
    assert_int_equal(gb_bin(&m, 0, 2.5), 1), assert_int_equal(gb_bin(&m, 0, 3), 2);
    assert_int_equal(gb_bin(&m, 0, 1e9), 2), assert_int_equal(gb_bin(&m, 0, NAN), 3);
    // many distinct values: max_bins - 1 finite edges, increasing, about equal counts
    enum { N = 4000 };
    static double U[N];
    gn_rng r;
    gn_rng_seed(&r, 3, 0);
    for (int i = 0; i < N; i++) U[i] = gn_rng_normal(&r);
    assert_int_equal(gb_bin_edges(&m, U, N, 1, 16), 0);
    assert_int_equal(gb_n_bins(&m, 0), 16);
    int cnt[17] = {0};
    for (int i = 0; i < N; i++) cnt[gb_bin(&m, 0, U[i])]++;
    for (int b = 0; b < 16; b++) {
        if (b < 15) assert_true(m.edges[b] < m.edges[b + 1]);
        assert_in_range(cnt[b], N / 16 - N / 80, N / 16 + N / 80);
    }
    gb_model_free(&m);
}

// x = 1..4, y = 0, 0, 10, 10: base 5, g = 5, 5, -5, -5; the split at 2.5 has gain
// (10^2 / 2 + 10^2 / 2 - 0) / 2 = 50 (lambda 0) or (100/3 + 100/3) / 2 (lambda 1).
static void test_split_gain(void **st) {
    (void)st;
    double X[4] = {1, 2, 3, 4}, y[4] = {0, 0, 10, 10};
    for (int l = 0; l < 2; l++) {
        gb_params p = params(2, 1, 1);
        p.lambda_l2 = l;
        gb_model m;
        fit(&m, &p, X, y, 4, 1, 1, NULL, NULL, 1);
        const gb_node *T = m.ens[0].nodes;
        assert_int_equal(m.ens[0].n_trees, 1);
        assert_int_equal(T[0].feature, 0);
        assert_float_equal(T[0].threshold, 2.5, 0);
        assert_float_equal(T[0].gain, l ? 100.0 / 3 : 50, 1e-12);
        assert_float_equal(m.ens[0].base, 5, 0);
        assert_float_equal(T[T[0].left].value, l ? -10.0 / 3 : -5, 1e-12);
        assert_float_equal(T[T[0].right].value, l ? 10.0 / 3 : 5, 1e-12);
        gb_model_free(&m);
    }
}

// y = 3 [x0 > 0.5] + [x1 > 0.3] on a grid: one tree of 4 leaves fits it exactly, x0 split first.
static void test_known_tree(void **st) {
    (void)st;
    enum { N = 100 };
    double X[2 * N], y[N], out[N];
    for (int i = 0; i < N; i++) {
        X[2 * i] = (i % 10) / 10.0, X[2 * i + 1] = (i / 10) / 10.0;
        y[i] = 3 * (X[2 * i] > 0.5) + (X[2 * i + 1] > 0.3);
    }
    gb_params p = params(4, 1, 1);
    gb_model m;
    fit(&m, &p, X, y, N, 2, 1, NULL, NULL, 1);
    const gb_node *T = m.ens[0].nodes;
    assert_int_equal(T[0].feature, 0);
    assert_float_equal(T[0].threshold, 0.55, 1e-12);
    assert_int_equal(T[T[0].left].feature, 1), assert_int_equal(T[T[0].right].feature, 1);
    assert_float_equal(T[T[0].left].threshold, 0.35, 1e-12);
    gb_predict(&m, X, N, out);
    for (int i = 0; i < N; i++) assert_float_equal(out[i], y[i], 1e-12);
    gb_model_free(&m);
}

// Missing values carry the signal: the split sends them their own way, and predict follows it.
static void test_nan_routing(void **st) {
    (void)st;
    enum { N = 200 };
    double X[N], y[N], out[N];
    gn_rng r;
    gn_rng_seed(&r, 5, 0);
    for (int i = 0; i < N; i++) X[i] = i % 4 == 0 ? NAN : gn_rng_uniform(&r), y[i] = isnan(X[i]) ? 5 : 0;
    gb_params p = params(2, 1, 1);
    gb_model m;
    fit(&m, &p, X, y, N, 1, 1, NULL, NULL, 1);
    gb_predict(&m, X, N, out);
    for (int i = 0; i < N; i++) assert_float_equal(out[i], y[i], 1e-12);
    assert_float_equal(gb_predict_row(&m, 0, (double[]){NAN}), 5, 1e-12);
    assert_float_equal(gb_predict_row(&m, 0, (double[]){0.3}), 0, 1e-12);
    gb_model_free(&m);
    // never missing in training: a missing value follows the larger child
    for (int i = 0; i < N; i++) X[i] = i, y[i] = i < 150 ? 1 : 2;
    fit(&m, &p, X, y, N, 1, 1, NULL, NULL, 1);
    assert_float_equal(gb_predict_row(&m, 0, (double[]){NAN}), 1, 1e-12);
    gb_model_free(&m);
}

static void toy(double *X, double *y, size_t n, int F, uint64_t seed) {
    gn_rng r;
    gn_rng_seed(&r, seed, 0);
    for (size_t i = 0; i < n; i++) {
        for (int f = 0; f < F; f++) X[i * F + f] = gn_rng_normal(&r);
        if (i % 7 == 0) X[i * F + 1] = NAN;
        double x1 = isnan(X[i * F + 1]) ? 0.5 : X[i * F + 1];
        y[i] = sin(X[i * F]) + 0.5 * x1 * x1 + 0.3 * X[i * F + 2] * X[i * F] + 0.1 * gn_rng_normal(&r);
    }
}

static int same_model(const gb_model *a, const gb_model *b) {
    const gb_ens *A = &a->ens[0], *B = &b->ens[0];
    return A->n_trees == B->n_trees && A->n_nodes == B->n_nodes && A->base == B->base &&
           !memcmp(A->nodes, B->nodes, sizeof(gb_node) * A->n_nodes);
}

// gb_predict (trees of <= 64 leaves as bit vectors, larger ones walked; blocks of 64 rows, the last one
// partial) gives exactly the prediction of the node-by-node walk of gb_predict_row, missing values included.
static void test_predict_paths(void **st) {
    (void)st;
    enum { N = 3000, M = 1037, F = 4 };
    static double X[N * F], y[N], Z[M * F], yz[M], out[M];
    toy(X, y, N, F, 21), toy(Z, yz, M, F, 22);
    for (int i = 0; i < M; i += 11) Z[i * F + 2] = NAN; // missing where training never was
    for (int leaves = 40; leaves <= 100; leaves += 60) {
        gb_params p = params(leaves, 12, 0.2);
        gb_model m;
        fit(&m, &p, X, y, N, F, 1, NULL, NULL, 12);
        int big = 0;
        for (int t = 0; t < m.ens[0].n_trees; t++)
            big += (m.ens[0].tree_start[t + 1] - m.ens[0].tree_start[t] + 1) / 2 > 64;
        assert_true(leaves > 64 ? big > 0 : big == 0);
        gb_predict(&m, Z, M, out);
        for (int i = 0; i < M; i++) assert_true(out[i] == gb_predict_row(&m, 0, Z + i * F));
        printf("    %d leaves (%d trees walked): %d rows equal to the walk of each row\n", leaves, big, M);
        gb_model_free(&m);
    }
}

// A fit stopped after 8 rounds and continued from a copy of its trees (as a checkpoint holds them) is the
// unbroken fit, bit for bit, with bagging and feature fraction drawing, and without them (the roots'
// histograms then come from running sums, which the resume rebuilds); so is a fit on 1 thread vs 2.
static void resume_and_threads(double bag, double ff) {
    enum { N = 60000, F = 5 }; // the root's 42,000 bagged rows take the threaded partition
    static double X[N * F], y[N];
    toy(X, y, N, F, 9);
    gb_params p = params(15, 20, 0.1);
    p.bagging_fraction = bag, p.feature_fraction = ff, p.min_data_in_leaf = 10;
    gb_model full, part, t1;
    fit(&full, &p, X, y, N, F, 1, NULL, NULL, 20);
    fit(&part, &p, X, y, N, F, 1, NULL, NULL, 8);
    gb_model cp; // a checkpoint's contents: edges, trees, base, rounds
    assert_int_equal(gb_model_init(&cp, 1, (int[]){GB_L2}, (double[]){0.5}), 0);
    assert_int_equal(gb_bin_edges(&cp, X, N, F, 255), 0);
    gb_ens *E = &cp.ens[0];
    free(E->tree_start);
    E->tree_start = malloc(sizeof(int64_t) * (size_t)(part.ens[0].n_trees + 1));
    memcpy(E->tree_start, part.ens[0].tree_start, sizeof(int64_t) * (size_t)(part.ens[0].n_trees + 1));
    E->nodes = malloc(sizeof(gb_node) * part.ens[0].n_nodes);
    memcpy(E->nodes, part.ens[0].nodes, sizeof(gb_node) * part.ens[0].n_nodes);
    E->n_nodes = E->cap_nodes = part.ens[0].n_nodes, E->n_trees = E->cap_trees = part.ens[0].n_trees;
    E->base = part.ens[0].base, E->best_loss = part.ens[0].best_loss, E->best_trees = part.ens[0].best_trees;
    cp.rounds_done = part.rounds_done;
    gb_fit *f = gb_fit_init(&cp, &p, X, y, N, NULL, NULL, 0);
    for (int r = 8; r < 20; r++) assert_true(gb_fit_round(f) >= 0);
    gb_fit_free(f);
    assert_true(same_model(&cp, &full));
    int nt = omp_get_max_threads();
    omp_set_num_threads(1);
    fit(&t1, &p, X, y, N, F, 1, NULL, NULL, 20);
    omp_set_num_threads(nt);
    assert_true(same_model(&t1, &full));
    printf("    bagging %.1f, features %.1f; 20 rounds, 15 leaves: %zu nodes; resumed at round 8 and on 1 "
           "thread: "
           "identical\n",
           bag, ff, full.ens[0].n_nodes);
    gb_model_free(&full), gb_model_free(&part), gb_model_free(&cp), gb_model_free(&t1);
}

static void test_resume_and_threads(void **st) {
    (void)st;
    resume_and_threads(0.7, 0.6);
    resume_and_threads(1, 1);
}

// The roots' histograms from running sums (L2, every row and feature) against histograms of the rows: the
// same splits, leaf values equal to rounding.
static void test_root_sums(void **st) {
    (void)st;
    enum { N = 20000, F = 4 };
    static double X[N * F], y[N];
    toy(X, y, N, F, 4);
    gb_params p = params(15, 30, 0.1);
    p.min_data_in_leaf = 10;
    gb_model a, b;
    fit(&a, &p, X, y, N, F, 1, NULL, NULL, 30);
    p.direct_root = 1;
    fit(&b, &p, X, y, N, F, 1, NULL, NULL, 30);
    const gb_ens *A = &a.ens[0], *B = &b.ens[0];
    assert_int_equal(A->n_nodes, B->n_nodes);
    double worst = 0;
    for (size_t j = 0; j < A->n_nodes; j++) {
        assert_int_equal(A->nodes[j].feature, B->nodes[j].feature);
        assert_true(A->nodes[j].threshold == B->nodes[j].threshold);
        worst = fmax(worst, fabs(A->nodes[j].value - B->nodes[j].value));
    }
    assert_true(worst < 1e-9);
    printf("    30 trees, %zu nodes: the same splits; leaf values differ by %.1e at most\n", A->n_nodes,
           worst);
    gb_model_free(&a), gb_model_free(&b);
}

// A target of inf stops the fit with a message (no plausible trees from it).
static void test_inf_target(void **st) {
    (void)st;
    enum { N = 200 };
    static double X[N], y[N];
    for (int i = 0; i < N; i++) X[i] = i, y[i] = i % 3;
    y[17] = INFINITY;
    gb_params p = params(4, 2, 0.1);
    gb_model m;
    assert_int_equal(gb_model_init(&m, 1, (int[]){GB_L2}, (double[]){0.5}), 0);
    assert_int_equal(gb_bin_edges(&m, X, N, 1, 255), 0);
    gb_fit *f = gb_fit_init(&m, &p, X, y, N, NULL, NULL, 0);
    assert_non_null(f);
    assert_true(gb_fit_round(f) < 0);
    assert_non_null(strstr(gn_errmsg(), "inf"));
    gb_fit_free(f), gb_model_free(&m);
}

// y = x + (0.1 + 0.5 x) e: the 16 % and 84 % quantile ensembles bracket 68 % of new rows, in the narrow
// and in the wide half of x alike.
static void test_quantile_coverage(void **st) {
    (void)st;
    enum { N = 20000, M = 10000 };
    double *X = malloc(sizeof(double) * (N + M)), *y = malloc(sizeof(double) * 2 * (N + M));
    double *out = malloc(sizeof(double) * 2 * M);
    gn_rng r;
    gn_rng_seed(&r, 11, 0);
    for (int i = 0; i < N + M; i++) {
        X[i] = gn_rng_uniform(&r);
        y[2 * i] = y[2 * i + 1] = X[i] + (0.1 + 0.5 * X[i]) * gn_rng_normal(&r);
    }
    gb_params p = params(15, 100, 0.1);
    p.min_data_in_leaf = 20, p.loss = GB_QUANTILE;
    gb_model m;
    fit(&m, &p, X, y, N, 1, 2, (int[]){GB_QUANTILE, GB_QUANTILE}, (double[]){0.16, 0.84}, 100);
    gb_predict(&m, X + N, M, out);
    int in[2] = {0}, cnt[2] = {0};
    for (int i = 0; i < M; i++) {
        int h = X[N + i] > 0.5;
        cnt[h]++, in[h] += y[2 * (N + i)] >= out[2 * i] && y[2 * (N + i)] <= out[2 * i + 1];
    }
    double c0 = (double)in[0] / cnt[0], c1 = (double)in[1] / cnt[1], c = (double)(in[0] + in[1]) / M;
    printf("    16-84 %% interval coverage %.3f (x < 0.5: %.3f, x > 0.5: %.3f)\n", c, c0, c1);
    assert_true(fabs(c - 0.68) < 0.03 && fabs(c0 - 0.68) < 0.05 && fabs(c1 - 0.68) < 0.05);
    gb_model_free(&m);
    free(X), free(y), free(out);
}

// TreeSHAP: sum(phi) + E = f(x) to 1e-9; equal to the Shapley values computed from every subset's
// cover-weighted conditional expectation; 0 for a feature no split uses (the constant column 3).
static void test_shap(void **st) {
    (void)st;
    enum { N = 2000, F = 5 };
    static double X[N * F], y[N];
    toy(X, y, N, F, 21);
    for (int i = 0; i < N; i++) X[i * F + 3] = 1;
    gb_params p = params(8, 6, 0.3);
    p.min_data_in_leaf = 5;
    gb_model m;
    fit(&m, &p, X, y, N, F, 1, NULL, NULL, 6);
    double phi[F + 1], worst = 0, worst_bf = 0;
    for (int i = 0; i < 40; i++) {
        const double *x = X + (size_t)i * F;
        gb_shap_row(&m, 0, x, phi);
        double s = 0;
        for (int f = 0; f <= F; f++) s += phi[f];
        double d = fabs(s - gb_predict_row(&m, 0, x));
        worst = d > worst || isnan(d) ? d : worst;
        assert_true(phi[3] == 0);
        for (int f = 0; f < F; f++) { // brute force: sum over subsets S of the other features
            double bf = 0;
            for (int mask = 0; mask < (1 << F); mask++) {
                if (mask >> f & 1) continue;
                uint8_t in_s[F];
                int k = 0;
                for (int j = 0; j < F; j++) in_s[j] = (uint8_t)(mask >> j & 1), k += in_s[j];
                double w = tgamma(k + 1) * tgamma(F - k) / tgamma(F + 1),
                       without = gb_cond_expect(&m, 0, x, in_s);
                in_s[f] = 1;
                bf += w * (gb_cond_expect(&m, 0, x, in_s) - without);
            }
            double d = fabs(bf - phi[f]);
            worst_bf = d > worst_bf || isnan(d) ? d : worst_bf;
        }
    }
    printf("    SHAP: |sum - prediction| <= %.2g, |phi - brute force| <= %.2g\n", worst, worst_bf);
    assert_true(worst < 1e-9 && worst_bf < 1e-9 && fabs(phi[0]) > 1e-3);
    uint8_t none[F] = {0};
    assert_float_equal(gb_cond_expect(&m, 0, X, none), gb_expected_value(&m, 0), 1e-12);
    gb_model_free(&m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_binning),           cmocka_unit_test(test_split_gain),
        cmocka_unit_test(test_known_tree),        cmocka_unit_test(test_nan_routing),
        cmocka_unit_test(test_predict_paths),     cmocka_unit_test(test_resume_and_threads),
        cmocka_unit_test(test_root_sums),         cmocka_unit_test(test_inf_target),
        cmocka_unit_test(test_quantile_coverage), cmocka_unit_test(test_shap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
