// make bench: galnn's gradient-boosted trees on a table (X.npy: n x F float64, NaN = missing; y.npy: n),
// the first 80 % for training and the rest for testing, with the settings scikit-learn's
// HistGradientBoostingRegressor gets in bench/gbdt_bench_sklearn.py: prints "name value" lines
// (fit and predict seconds, test RMSE, peak memory of the fit above the data's).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/gn_common.h"
#include "../io/npy.h"
#include "../models/gbdt.h"

// VmRSS or VmHWM (the peak since the last reset) of this process in MiB; reset_peak() restarts the peak
// (Linux: "5" into /proc/self/clear_refs), so the fit's peak is measured apart from reading the data.
static double status_mib(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double v = NAN;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, strlen(key))) v = atof(line + strlen(key) + 1) / 1024.0;
    if (f) fclose(f);
    return v;
}

static void reset_peak(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (f) fputs("5", f), fclose(f);
}

int main(int argc, char **argv) {
    gn_runtime_init(argv);
    if (argc < 5) {
        fprintf(stderr, "usage: gbdt_bench X.npy y.npy ROUNDS LEAVES [threads]\n");
        return 2;
    }
    if (argc > 5) gn_set_threads(atoi(argv[5]));
    io_array X, y;
    if (io_npy_read(argv[1], &X) || io_npy_read(argv[2], &y) || X.dtype != IO_F64 || y.dtype != IO_F64 ||
        X.ndim != 2) {
        fprintf(stderr, "gbdt_bench: %s\n", gn_errmsg());
        return 1;
    }
    size_t n = (size_t)X.shape[0], ntr = n * 8 / 10;
    int F = (int)X.shape[1];
    const double *x = X.data, *yy = y.data;
    gb_params p = {.num_leaves = atoi(argv[4]),
                   .max_depth = -1,
                   .min_data_in_leaf = 20,
                   .max_bins = 255,
                   .rounds = atoi(argv[3]),
                   .min_sum_hessian = 1e-3,
                   .lambda_l2 = 0,
                   .learning_rate = 0.1,
                   .feature_fraction = 1,
                   .bagging_fraction = 1,
                   .loss = GB_L2,
                   .seed = 1};
    reset_peak();
    double base = status_mib("VmRSS:"), t0 = gn_now();
    gb_model m;
    gb_fit *f = NULL;
    if (gb_model_init(&m, 1, (int[]){GB_L2}, (double[]){0.5}) || gb_bin_edges(&m, x, ntr, F, 255) ||
        !(f = gb_fit_init(&m, &p, x, yy, ntr, NULL, NULL, 0)))
        return fprintf(stderr, "gbdt_bench: %s\n", gn_errmsg()), 1;
    for (int r = 0; r < p.rounds; r++)
        if (gb_fit_round(f) < 0) return fprintf(stderr, "gbdt_bench: %s\n", gn_errmsg()), 1;
    gb_fit_free(f);
    double t_fit = gn_now() - t0, mem = status_mib("VmHWM:") - base;
    double *out = malloc(sizeof(double) * (n - ntr)), se = 0;
    double t_pred = INFINITY; // the best of 5: one call is ~20 ms on the smaller table
    for (int rep = 0; rep < 5; rep++) {
        t0 = gn_now();
        gb_predict(&m, x + ntr * F, n - ntr, out);
        t_pred = fmin(t_pred, gn_now() - t0);
    }
    for (size_t i = 0; i < n - ntr; i++) se += (out[i] - yy[ntr + i]) * (out[i] - yy[ntr + i]);
    printf("galnn_fit %.3f\ngalnn_predict %.4f\ngalnn_rmse %.5f\ngalnn_fit_mib %.1f\n", t_fit, t_pred,
           sqrt(se / (double)(n - ntr)), mem);
    free(out), gb_model_free(&m), io_array_free(&X), io_array_free(&y);
    return 0;
}
