// Spectra pre-processing (io/spectra.c, spec/methods.md §4.1): the log grid;
// flux-conserving resampling (integrals kept exactly on aligned grids and to
// round-off on a log grid, errors combined in quadrature, bad or outside
// pixels masked, bad grids refused); the rest-frame shift keeps the integral;
// median normalisation; iterative-PCA gap filling recovers the masked pixels
// of a low-rank set and leaves the present ones untouched; spectrum files
// (NPY, FITS image and table) and the cached dataset chain (io/specset.c).
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include <fitsio.h>

#include "../io/image.h"
#include "../io/npy.h"
#include "../io/specset.h"
#include "../io/spectra.h"
#include "../stats/linalg.h"
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
    // bad input pixels drop out of an output pixel's mean; one less than half covered by good pixels is
    // masked, and so are pixels outside the input
    for (int i = 0; i < 4; i++) wo[i] = 4400.5 + 4 * i; // 4 input pixels each: 4399..4402, 4403..4406, ...
    f[401] = NAN;                                       // one of four bad: the mean of the other three
    f[403] = f[404] = f[405] = NAN;                     // three of four bad: masked
    e[409] = 0;
    f[410] = NAN; // two of four bad (ivar 0 and NaN): exactly half good, kept
    assert_int_equal(io_spec_resample(wl, f, e, N, wo, 4, fo, eo), 1);
    assert_float_equal(fo[0], (f[399] + f[400] + f[402]) / 3, 1e-12);
    assert_float_equal(eo[0], 0.1 / sqrt(3), 1e-12);
    assert_true(isnan(fo[1]) && isnan(eo[1]) && isfinite(fo[2]) && isfinite(fo[3]));
    assert_float_equal(fo[2], (f[407] + f[408]) / 2, 1e-12);
    double wo3[3] = {4398.5, 4402.5, 6000}, fo3[3], eo3[3];
    assert_int_equal(io_spec_resample(wl, f, e, N, wo3, 3, fo3, eo3), 2); // pixels 1 and 2 reach beyond 4999.5 Å
    assert_true(isfinite(fo3[0]) && isnan(fo3[1]) && isnan(fo3[2]) && isnan(eo3[2]));
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
    assert_int_equal(st_pca_fill(X, mask, n, p, 15, 10), 0); // the paper's n_ev and iterations
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
    assert_int_equal(st_pca_fill(X2, mask, n, p, 5, 30), 0);
    double se2 = 0;
    for (int i = 0; i < n * p; i++)
        if (mask[i]) se2 += (X2[i] - truth[i]) * (X2[i] - truth[i]);
    printf("    5 components, 30 iterations: relative RMS error %.2e\n", sqrt(se2 / sv));
    assert_true(sqrt(se2 / sv) < 1e-6);
    free(X), free(X2), free(truth), free(mask);
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static void write_npy(const char *path, int rows, int P, const float *v) {
    int64_t sh[2] = {rows, P};
    io_array a = io_array_view(IO_F32, rows > 1 ? 2 : 1, rows > 1 ? sh : sh + 1, v);
    assert_int_equal(io_npy_write(path, &a), 0);
}

// Spectrum files: NPY with a shared grid or a wavelength row, FITS images with
// SDSS COEFF0/COEFF1 or linear CRVAL1/CDELT1 headers, FITS tables with loglam;
// bad pixels (ivar 0, mask set) come back as NaN; bad files are errors that
// name the file.
static void test_spectrum_files(void **st) {
    (void)st;
    enum { P = 50 };
    float v[4 * P];
    double wl0[P];
    for (int i = 0; i < P; i++) {
        wl0[i] = 4000 + 10 * i;
        v[i] = (float)wl0[i];               // wave row
        v[P + i] = 1.0f + 0.01f * i;        // flux
        v[2 * P + i] = i == 7 ? 0.0f : 4.0f; // ivar
        v[3 * P + i] = i == 9 ? 1.0f : 0.0f; // mask
    }
    int n;
    double *wl, *fl, *er;
    // NPY: wave, flux, ivar, mask
    write_npy(tu_tmp("s1.npy"), 4, P, v);
    assert_int_equal(io_spectrum_read(tu_tmp("s1.npy"), NULL, &n, &wl, &fl, &er), 0);
    assert_int_equal(n, P);
    assert_true(fabs(wl[3] - 4030) < 1e-9 && fabs(fl[3] - 1.03) < 1e-6 && fabs(er[3] - 0.5) < 1e-12);
    assert_true(isnan(fl[7]) && isnan(fl[9]) && !isnan(fl[8]));
    free(wl), free(fl), free(er);
    // NPY: flux, ivar with a shared grid file
    int64_t gs[1] = {P};
    io_array g = io_array_view(IO_F64, 1, gs, wl0);
    assert_int_equal(io_npy_write(tu_tmp("wave.npy"), &g), 0);
    write_npy(tu_tmp("s2.npy"), 2, P, v + P);
    assert_int_equal(io_spectrum_read(tu_tmp("s2.npy"), tu_tmp("wave.npy"), &n, &wl, &fl, &er), 0);
    assert_true(n == P && wl[P - 1] == 4490 && isnan(fl[7]) && !isnan(fl[9]));
    free(wl), free(fl), free(er);
    // errors name the file
    assert_int_not_equal(io_spectrum_read(tu_tmp("s1.npy"), tu_tmp("wave.npy"), &n, &wl, &fl, &er), 0); // 4 rows + a grid
    assert_non_null(strstr(gn_errmsg(), "s1.npy"));
    float bad[2 * P];
    memcpy(bad, v, sizeof bad);
    bad[5] = 3000; // wavelengths must increase
    write_npy(tu_tmp("s3.npy"), 2, P, bad);
    assert_int_not_equal(io_spectrum_read(tu_tmp("s3.npy"), NULL, &n, &wl, &fl, &er), 0);
    assert_non_null(strstr(gn_errmsg(), "s3.npy")), assert_non_null(strstr(gn_errmsg(), "increase"));
    FILE *f = fopen(tu_tmp("s1.npy"), "r+b");
    assert_non_null(f);
    assert_int_equal(ftruncate(fileno(f), 100), 0);
    fclose(f);
    assert_int_not_equal(io_spectrum_read(tu_tmp("s1.npy"), NULL, &n, &wl, &fl, &er), 0);
    assert_non_null(strstr(gn_errmsg(), "s1.npy"));
    // FITS image, SDSS log-linear header: log10 λ = COEFF0 + COEFF1 i
    io_image im = {1, 2, P, v + P};
    io_fits_card cards[] = {{"COEFF0", "3.6", NULL}, {"COEFF1", "0.0001", NULL}, {NULL, NULL, NULL}};
    assert_int_equal(io_fits_write(tu_tmp("s4.fits"), &im, cards), 0);
    assert_int_equal(io_spectrum_read(tu_tmp("s4.fits"), NULL, &n, &wl, &fl, &er), 0);
    assert_true(n == P && fabs(wl[10] - pow(10, 3.601)) < 1e-6 && isnan(fl[7]) && fabs(fl[10] - 1.1) < 1e-6);
    free(wl), free(fl), free(er);
    // linear CRVAL1/CDELT1/CRPIX1
    io_fits_card lin[] = {{"CRVAL1", "5000", NULL}, {"CDELT1", "2.5", NULL}, {"CRPIX1", "2", NULL}, {NULL, NULL, NULL}};
    assert_int_equal(io_fits_write(tu_tmp("s5.fits"), &im, lin), 0);
    assert_int_equal(io_spectrum_read(tu_tmp("s5.fits"), NULL, &n, &wl, &fl, &er), 0);
    assert_true(fabs(wl[0] - 4997.5) < 1e-9 && fabs(wl[3] - 5005) < 1e-9);
    free(wl), free(fl), free(er);
    // no grid anywhere
    assert_int_equal(io_fits_write(tu_tmp("s6.fits"), &im, NULL), 0);
    assert_int_not_equal(io_spectrum_read(tu_tmp("s6.fits"), NULL, &n, &wl, &fl, &er), 0);
    assert_non_null(strstr(gn_errmsg(), "s6.fits")), assert_non_null(strstr(gn_errmsg(), "wavelength"));
    // FITS binary table (SDSS spec-*.fits: HDU 1 holds flux, loglam, ivar, and_mask)
    fitsfile *ff;
    int fs = 0;
    char path[600];
    snprintf(path, sizeof path, "!%s", tu_tmp("s7.fits"));
    char *tt[] = {"flux", "loglam", "ivar", "and_mask"}, *tf[] = {"E", "E", "E", "J"};
    fits_create_file(&ff, path, &fs);
    fits_create_tbl(ff, BINARY_TBL, P, 4, tt, tf, NULL, "COADD", &fs);
    float ll[P];
    int32_t am[P];
    for (int i = 0; i < P; i++) ll[i] = (float)log10(wl0[i]), am[i] = i == 9 ? 16 : 0;
    fits_write_col(ff, TFLOAT, 1, 1, 1, P, v + P, &fs);
    fits_write_col(ff, TFLOAT, 2, 1, 1, P, ll, &fs);
    fits_write_col(ff, TFLOAT, 3, 1, 1, P, v + 2 * P, &fs);
    fits_write_col(ff, TINT, 4, 1, 1, P, am, &fs);
    fits_close_file(ff, &fs);
    assert_int_equal(fs, 0);
    assert_int_equal(io_spectrum_read(tu_tmp("s7.fits"), NULL, &n, &wl, &fl, &er), 0);
    assert_true(n == P && fabs(wl[20] - 4200) < 1e-2 && isnan(fl[7]) && isnan(fl[9]) && fabs(er[3] - 0.5) < 1e-6);
    free(wl), free(fl), free(er);
}

// The dataset chain on a small synthetic survey: observed spectra of a smooth
// continuum at the catalog's z come back in the rest frame with median 0.5;
// a spectrum whose coverage misses too much of the grid is skipped with its
// reason; a second open reuses the cache; with no masked pixels (err_pct 0)
// the output is exactly the resampled rest-frame flux times one factor.
static void test_specset(void **st) {
    (void)st;
    enum { N = 30, P = 400 };
    char csv[4096] = "id,z\n";
    float sp[2 * P];
    double wl[P];
    for (int i = 0; i < P; i++) wl[i] = 3600 * pow(9000.0 / 3600, i / (P - 1.0));
    int64_t gs[1] = {P};
    io_array g = io_array_view(IO_F64, 1, gs, wl);
    assert_int_equal(io_npy_write(tu_tmp("sw.npy"), &g), 0);
    for (int k = 0; k < N; k++) {
        double z = k == 3 ? 0.9 : 0.02 + 0.004 * k; // galaxy 3: its rest frame misses most of the grid
        char line[64];
        snprintf(line, sizeof line, "g%02d,%.4f\n", k, z);
        strcat(csv, line);
        for (int i = 0; i < P; i++) {
            double lr = wl[i] / (1 + z); // continuum in the rest frame (a slope and a break at 4000 Å)
            sp[i] = (float)((1 + 0.3 * k / N) * (lr > 4000 ? 1.5 : 1.0) * (1 + 1e-4 * (lr - 5000)) / (1 + z));
            sp[P + i] = 100;
        }
        char name[64];
        snprintf(name, sizeof name, "sp_g%02d.npy", k);
        write_npy(tu_tmp(name), 2, P, sp);
    }
    FILE *f = fopen(tu_tmp("spcat.csv"), "w");
    assert_non_null(f);
    fputs(csv, f);
    fclose(f);
    io_catalog cat;
    assert_int_equal(io_catalog_read(tu_tmp("spcat.csv"), NULL, &cat), 0);
    char tmpl[600], wave[600];
    snprintf(tmpl, sizeof tmpl, "%s/sp_{id}.npy", tu_tmpdir());
    snprintf(wave, sizeof wave, "%s", tu_tmp("sw.npy"));
    io_specset_spec s;
    memset(&s, 0, sizeof s);
    io_specset_defaults(&s);
    s.cat = &cat, s.template = tmpl, s.wave = wave, s.z_col = "z";
    s.lo = 3600, s.hi = 8000, s.pixels = 200, s.err_pct = 0;
    io_dataset ds;
    assert_int_equal(io_specset_open(&s, &ds), 0);
    assert_true(ds.built && ds.n == N - 1 && ds.n_skipped == 1 && ds.w == 200 && ds.h == 1 && ds.c == 1);
    for (size_t e = 0; e < ds.n; e++) assert_int_not_equal(ds.row[e], 3);
    double grid[200];
    io_spec_log_grid(3600, 8000, 200, grid);
    for (size_t e = 0; e < ds.n; e++) {
        const float *x = io_dataset_image(&ds, e);
        float tmp[200];
        memcpy(tmp, x, sizeof tmp);
        qsort(tmp, 200, sizeof(float), cmp_float);
        assert_true(fabs(0.5 * (tmp[99] + tmp[100]) - 0.5) < 1e-5);
        int k = (int)ds.row[e];
        // the rest-frame shape: the ratio across the break, and the slope
        int a = 0, b = 0;
        while (grid[a] < 3900) a++;
        while (grid[b] < 4200) b++;
        double want = 1.5 * (1 + 1e-4 * (grid[b] - 5000)) / (1 + 1e-4 * (grid[a] - 5000));
        assert_true(fabs(x[b] / x[a] - want) < 1e-3 * want);
        (void)k;
    }
    io_dataset_close(&ds);
    assert_int_equal(io_specset_open(&s, &ds), 0);
    assert_true(!ds.built && ds.n == N - 1);
    io_dataset_close(&ds);
    io_catalog_free(&cat);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_grid_and_resample), cmocka_unit_test(test_rest_and_median),
                                       cmocka_unit_test(test_pca_fill), cmocka_unit_test(test_spectrum_files),
                                       cmocka_unit_test(test_specset)};
    return cmocka_run_group_tests(tests, tu_tmpdir_setup, tu_tmpdir_teardown);
}
