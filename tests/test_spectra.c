// Spectra pre-processing (io/spectra.c, spec/methods.md §4.1): the log grid;
// flux-conserving resampling (integrals kept exactly on aligned grids and to
// round-off on a log grid, errors combined in quadrature, bad or outside
// pixels masked, bad grids refused); the rest-frame shift keeps the integral;
// median normalisation; iterative-PCA gap filling recovers the masked pixels
// of a low-rank set and leaves the present ones untouched.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../io/spectra.h"
#include "testutil.h"

static void test_grid_and_resample(void **st) {
    (void)st;
    double g[5];
    io_spec_log_grid(3400, 8400, 5, g);
    assert_float_equal(g[0], 3400, 1e-9), assert_float_equal(g[4], 8400, 1e-9);
    for (int i = 1; i < 4; i++) assert_float_equal(g[i + 1] / g[i], g[1] / g[0], 1e-12);
    // aligned grids: 4 input pixels per output pixel -> exact flux and error
    enum { N = 1000, M = 250 };
    double wl[N], f[N], e[N], wo[M], fo[M], eo[M];
    float r[N];
    tu_uniform(r, N, 0.5f, 2.0f, 1);
    for (int i = 0; i < N; i++) wl[i] = 4000 + i, f[i] = r[i], e[i] = 0.1;
    for (int j = 0; j < M; j++) wo[j] = 4000 + 1.5 + 4 * j;
    assert_int_equal(io_spec_resample(wl, f, e, N, wo, M, fo, eo), 0);
    double in = 0, out = 0;
    for (int i = 0; i < N; i++) in += f[i];
    for (int j = 0; j < M; j++) out += 4 * fo[j];
    assert_float_equal(out, in, 1e-9 * in);
    for (int j = 0; j < M; j++) assert_float_equal(eo[j], 0.1 / 2, 1e-12); // 4 pixels: sigma / sqrt(4)
    // a log grid inside the input: the integral over the output's extent is the input's over the same range
    double wl2[300], fo2[300];
    io_spec_log_grid(4100, 4800, 300, wl2);
    assert_int_equal(io_spec_resample(wl, f, NULL, N, wl2, 300, fo2, NULL), 0);
    double lo = wl2[0] - (wl2[1] - wl2[0]) / 2, hi = wl2[299] + (wl2[299] - wl2[298]) / 2, want = 0, got = 0;
    for (int i = 0; i < N; i++) want += f[i] * fmax(0, fmin(hi, wl[i] + 0.5) - fmax(lo, wl[i] - 0.5));
    for (int j = 0; j < 300; j++) {
        double a = j ? (wl2[j - 1] + wl2[j]) / 2 : lo, b = j < 299 ? (wl2[j] + wl2[j + 1]) / 2 : hi;
        got += fo2[j] * (b - a);
    }
    printf("    log-grid resampling: integral %.10f vs %.10f\n", got, want);
    assert_float_equal(got, want, 1e-9 * want);
    // a NaN input pixel masks the output pixel that covers it; pixels outside the input are masked
    f[401] = NAN;
    double wo3[3] = {4398.5, 4402.5, 6000}, fo3[3], eo3[3];
    assert_int_equal(io_spec_resample(wl, f, e, N, wo3, 3, fo3, eo3), 2);
    assert_true(isfinite(fo3[0]) && isnan(fo3[1]) && isnan(fo3[2]) && isnan(eo3[1]));
    double bad[3] = {1, 3, 2};
    assert_int_equal(io_spec_resample(bad, f, NULL, 3, wo3, 3, fo3, NULL), -1);
    assert_non_null(strstr(gn_errmsg(), "not increasing"));
}

static void test_rest_and_median(void **st) {
    (void)st;
    double wl[100], f[100], e[100];
    for (int i = 0; i < 100; i++) wl[i] = 5000 + 2 * i, f[i] = 1 + 0.01 * i, e[i] = 0.05;
    double before = 0, after = 0;
    for (int i = 1; i < 100; i++) before += f[i] * (wl[i] - wl[i - 1]);
    io_spec_to_rest(wl, f, e, 100, 0.25);
    for (int i = 1; i < 100; i++) after += f[i] * (wl[i] - wl[i - 1]);
    assert_float_equal(wl[0], 4000, 1e-9), assert_float_equal(after, before, 1e-9 * before), assert_float_equal(e[0], 0.0625, 1e-12);
    double s = io_spec_median_norm(f, e, 100, 0.5);
    double t[100];
    memcpy(t, f, sizeof t);
    for (int i = 0; i < 100; i++)
        for (int j = i + 1; j < 100; j++)
            if (t[j] < t[i]) {
                double u = t[i];
                t[i] = t[j], t[j] = u;
            }
    assert_float_equal(0.5 * (t[49] + t[50]), 0.5, 1e-12);
    assert_true(s > 0);
    double neg[3] = {-1, -2, -3};
    assert_true(isnan(io_spec_median_norm(neg, NULL, 3, 0.5)));
}

// 400 spectra of 200 pixels from 3 smooth components (with positive scales);
// 8 % of the pixels masked, in runs of up to 12 pixels.
static void test_pca_fill(void **st) {
    (void)st;
    enum { n = 400, p = 200 };
    float *X = malloc(sizeof(float) * n * p), *truth = malloc(sizeof(float) * n * p);
    uint8_t *mask = calloc(n * p, 1);
    float c[n * 3], sc[n];
    tu_randn(c, n * 3, 1, 5);
    tu_uniform(sc, n, 0.5f, 3.0f, 6);
    gn_rng r;
    gn_rng_seed(&r, 9, GN_STREAM_SAMPLE);
    size_t nm = 0;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < p; j++) {
            double x = j / (double)p;
            double v = 2 + c[i * 3] * 0.3 * sin(6 * x) + c[i * 3 + 1] * 0.2 * exp(-80 * (x - 0.4) * (x - 0.4)) + c[i * 3 + 2] * 0.1 * x;
            truth[i * p + j] = X[i * p + j] = (float)(sc[i] * v);
        }
        while (gn_rng_uniform(&r) < 0.8) { // a few gaps per spectrum
            int at = (int)gn_rng_below(&r, p), len = 1 + (int)gn_rng_below(&r, 12);
            for (int j = at; j < at + len && j < p; j++) nm += !mask[i * p + j], mask[i * p + j] = 1, X[i * p + j] = 1e6f;
        }
    }
    float *X2 = malloc(sizeof(float) * n * p);
    memcpy(X2, X, sizeof(float) * n * p);
    assert_int_equal(io_spec_pca_fill(X, mask, n, p, 15, 10), 0); // the paper's n_ev and iterations
    double se = 0, sv = 0, se0 = 0;
    for (int i = 0; i < n * p; i++) {
        if (!mask[i]) {
            assert_true(X[i] == truth[i]); // present pixels untouched
            continue;
        }
        se += (X[i] - truth[i]) * (X[i] - truth[i]), sv += truth[i] * truth[i];
    }
    // reference: filling with each spectrum's own mean (what a naive gap filler does)
    for (int i = 0; i < n; i++) {
        double m = 0;
        int k = 0;
        for (int j = 0; j < p; j++)
            if (!mask[i * p + j]) m += truth[i * p + j], k++;
        m /= k ? k : 1;
        for (int j = 0; j < p; j++)
            if (mask[i * p + j]) se0 += (m - truth[i * p + j]) * (m - truth[i * p + j]);
    }
    printf("    %zu masked pixels: relative RMS error %.2e after PCA filling (%.2e with each spectrum's mean)\n", nm, sqrt(se / sv),
           sqrt(se0 / sv));
    assert_true(nm > 1000);
    assert_true(sqrt(se / sv) < 2e-3);
    assert_true(sqrt(se / sv) < 0.02 * sqrt(se0 / sv));
    // more iterations converge to the exact low-rank values (here with 5 components)
    assert_int_equal(io_spec_pca_fill(X2, mask, n, p, 5, 30), 0);
    double se2 = 0;
    for (int i = 0; i < n * p; i++)
        if (mask[i]) se2 += (X2[i] - truth[i]) * (X2[i] - truth[i]);
    printf("    5 components, 30 iterations: relative RMS error %.2e\n", sqrt(se2 / sv));
    assert_true(sqrt(se2 / sv) < 1e-6);
    free(X), free(X2), free(truth), free(mask);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_grid_and_resample), cmocka_unit_test(test_rest_and_median),
                                       cmocka_unit_test(test_pca_fill)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
