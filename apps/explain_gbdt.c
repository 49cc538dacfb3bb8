// galnn explain on a gradient-boosted tree model: which global properties drive the prediction (paper
// 002's second half). Gain importance (the loss reduction of every split on a feature, summed over the
// trees) and split counts, and exact TreeSHAP values per galaxy and feature (models/gbdt.h), in the
// target's units: importance.csv/.png, shap.npy, shap_summary.png (beeswarm) and dependence plots of the
// top features.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/gn_common.h"
#include "../io/npy.h"
#include "../io/plot.h"
#include "explain_gbdt.h"

typedef struct rank_item {
    double v;
    int k;
} rank_item;

static int by_value_desc(const void *a, const void *b) {
    const rank_item *x = a, *y = b;
    return (x->v < y->v) - (x->v > y->v) ? (x->v < y->v) - (x->v > y->v) : x->k - y->k;
}

// Features ordered by v, largest first.
static void order(const double *v, int F, int *ord) {
    rank_item it[F];
    for (int f = 0; f < F; f++) it[f] = (rank_item){v[f], f};
    qsort(it, (size_t)F, sizeof it[0], by_value_desc);
    for (int f = 0; f < F; f++) ord[f] = it[f].k;
}

// Each value's rank among its feature's values in [0, 1] (the beeswarm's colour), NaN kept.
static void colour_ranks(const double *X, size_t n, int F, int f, double *c, size_t stride, size_t off) {
    rank_item *it = malloc(sizeof(rank_item) * (n ? n : 1));
    size_t m = 0;
    for (size_t i = 0; it && i < n; i++)
        if (!isnan(X[i * F + f])) it[m++] = (rank_item){-X[i * F + f], (int)i};
    if (it) qsort(it, m, sizeof it[0], by_value_desc); // ascending values
    for (size_t i = 0; i < n; i++) c[i * stride + off] = NAN;
    for (size_t j = 0; it && j < m; j++)
        c[(size_t)it[j].k * stride + off] = m > 1 ? (double)j / (m - 1) : 0.5;
    free(it);
}

static int write_importance(const run *r, const char *dir, int e, const double *gain, const double *splits,
                            const double *mabs, const int *ord, int F) {
    char p[4200];
    double tot = 0;
    for (int f = 0; f < F; f++) tot += gain[f];
    snprintf(p, sizeof p, "%s/importance.csv", dir);
    FILE *fp = fopen(p, "w");
    if (!fp) return gn_err(GN_EIO, "%s: cannot write", p);
    fprintf(fp, "rank,feature,gain,gain_share,splits,mean_abs_shap\n");
    printf("\nfeature importance for %s (gain: the loss reduction of its splits; mean |SHAP| in %s)\n",
           r->target_names[e], r->target_units[e]);
    printf("  %4s  %-16s %10s %8s %8s %10s\n", "rank", "feature", "gain", "share", "splits", "mean|SHAP|");
    for (int k = 0; k < F; k++) {
        int f = ord[k];
        const char *nm = run_gbdt_feature_name(r, f);
        double sh = tot > 0 ? gain[f] / tot : 0;
        fprintf(fp, "%d,%s,%.6g,%.6f,%.0f,%.6g\n", k + 1, nm, gain[f], sh, splits[f], mabs[f]);
        printf("  %4d  %-16s %10.4g %8.4f %8.0f %10.4g\n", k + 1, nm, gain[f], sh, splits[f], mabs[f]);
    }
    if (fclose(fp)) return gn_err(GN_EIO, "%s: write failed", p);
    const char *names[F];
    double share[F];
    for (int k = 0; k < F; k++)
        names[k] = run_gbdt_feature_name(r, ord[k]), share[k] = tot > 0 ? gain[ord[k]] / tot : 0;
    io_bars b = {"gain share", share};
    char title[256];
    snprintf(title, sizeof title, "gradient-boosted trees: what drives %s", r->target_names[e]);
    snprintf(p, sizeof p, "%s/importance.png", dir);
    return io_plot_bars(p, title, "share of the total gain", names, F, &b, 1);
}

// The SHAP plots: the beeswarm of the top features (by mean |phi|), dependence plots of the top three.
static int shap_plots(const run *r, const char *dir, int e, const double *X, const double *phi, size_t n,
                      int F, const int *ord) {
    int K = F < 12 ? F : 12, rc = GN_OK;
    double *v = malloc(sizeof(double) * n * K), *c = malloc(sizeof(double) * n * K);
    const char *names[K];
    if (!v || !c) return free(v), free(c), GN_ENOMEM;
    for (int k = 0; k < K; k++) {
        names[k] = run_gbdt_feature_name(r, ord[k]);
        for (size_t i = 0; i < n; i++) v[i * K + k] = phi[i * (F + 1) + ord[k]];
        colour_ranks(X, n, F, ord[k], c, (size_t)K, (size_t)k);
    }
    char p[4200], xl[256], t[256];
    snprintf(p, sizeof p, "%s/shap_summary.png", dir);
    snprintf(xl, sizeof xl, "SHAP value: change of the predicted %s [%s]", r->target_names[e],
             r->target_units[e]);
    snprintf(t, sizeof t, "TreeSHAP of %zu galaxies", n);
    rc = io_plot_beeswarm(p, t, xl, names, K, v, c, n);
    for (int k = 0; !rc && k < (K < 3 ? K : 3); k++) {
        double *x = malloc(sizeof(double) * n), *y = malloc(sizeof(double) * n);
        if (!x || !y) rc = GN_ENOMEM;
        for (size_t i = 0; !rc && i < n; i++) x[i] = X[i * F + ord[k]], y[i] = v[i * K + k];
        snprintf(p, sizeof p, "%s/dependence_%s.png", dir, names[k]);
        snprintf(t, sizeof t, "SHAP dependence: %s (colour: %s)", names[k], names[k ? 0 : K > 1]);
        if (!rc) rc = io_plot_points(p, t, names[k], xl, x, y, c + (k ? 0 : K > 1), n);
        free(x), free(y);
    }
    free(v), free(c);
    return rc;
}

// TreeSHAP of every row (n x (F + 1), the last column the expected value), in the target's units.
static double *shap_all(const run *r, int e, const double *X, size_t n, int F, double *worst) {
    double *phi = malloc(sizeof(double) * n * (size_t)(F + 1)), s = r->tstd[e], w = 0;
    if (!phi) return NULL;
    gb_shap_rows(&r->net.gb, e, X, n, phi);
    for (size_t i = 0; i < n; i++) {
        double *ph = phi + i * (F + 1), sum = 0;
        for (int f = 0; f <= F; f++) sum += ph[f];
        double d = fabs(sum - gb_predict_row(&r->net.gb, e, X + i * F));
        w = d > w || isnan(d) ? d : w;
        for (int f = 0; f < F; f++) ph[f] *= s;
        ph[F] = ph[F] * s + r->tmean[e];
    }
    *worst = w * s;
    return phi;
}

int explain_gbdt(run *r, const char *dir, int split, const char *target, const uint32_t *given, size_t n) {
    int e = 0, F = run_gbdt_n_features(r), rc = GN_OK;
    if (target) {
        e = -1;
        for (int t = 0; t < r->n_targets; t++)
            if (!strcmp(r->target_names[t], target)) e = t;
        if (e < 0) return gn_err(GN_EINVAL, "--target %s is not one of the model's targets", target);
    }
    uint32_t *rows = NULL;
    if (given && n) {
        if (!(rows = malloc(sizeof(uint32_t) * n))) return GN_ENOMEM;
        memcpy(rows, given, sizeof(uint32_t) * n);
    } else if ((rc = run_select_rows(r, r->foreign_catalog ? -1 : split, &rows, &n)))
        return rc;
    if (!n) return free(rows), gn_err(GN_EINVAL, "no galaxies to explain in that split");
    double *X = malloc(sizeof(double) * n * F), gain[F], splits[F], mabs[F], worst = 0, *phi = NULL;
    int ord[F];
    if (X) run_gbdt_features(r, rows, n, X);
    if (!X || !(phi = shap_all(r, e, X, n, F, &worst))) rc = GN_ENOMEM;
    for (int f = 0; !rc && f < F; f++) {
        mabs[f] = 0;
        for (size_t i = 0; i < n; i++) mabs[f] += fabs(phi[i * (F + 1) + f]) / (double)n;
    }
    if (!rc) {
        gb_importance(&r->net.gb, e, gain, splits);
        order(gain, F, ord);
        rc = write_importance(r, dir, e, gain, splits, mabs, ord, F);
    }
    if (!rc) {
        printf("  TreeSHAP of %zu galaxies: expected value %.4f %s; max |sum of SHAP - prediction| = %.2g\n",
               n, phi[F], r->target_units[e], worst);
        char p[4200];
        snprintf(p, sizeof p, "%s/shap.npy", dir);
        int64_t sh[2] = {(int64_t)n, F + 1};
        io_array a = io_array_view(IO_F64, 2, sh, phi);
        rc = io_npy_write(p, &a);
    }
    if (!rc) order(mabs, F, ord), rc = shap_plots(r, dir, e, X, phi, n, F, ord);
    if (!rc)
        printf("wrote %s: importance.csv/.png, shap.npy (galaxies x (features + expected value)), "
               "shap_summary.png, dependence_*.png\n",
               dir);
    free(rows), free(X), free(phi);
    return rc;
}
