// galnn mi: mutual information between column sets of a table.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/gn_common.h"
#include "../io/catalog.h"
#include "../io/config.h"
#include "../stats/mi.h"
#include "cmd.h"

void cmd_mi_help(void) {
    printf(
        "usage: galnn mi --in TABLE.csv --x COLS --y COLS [--z COLS] [--k 3]\n"
        "                [--estimator ksg1|ksg2|gauss|binned] [--bins 8] [--quantile] [--no-miller-madow]\n"
        "                [--transform none|rank|standardize] [--noise A] [--perms B] [--shuffle-k 5]\n"
        "                [--seed 1] [--units nats|bits] [--json] [--threads N] [--join T.csv] [--each]\n\n"
        "I(X;Y), or I(X;Y|Z) with --z, from the rows where every named column is present (rows with a\n"
        "null are dropped and counted). Estimators (spec stats.md A.1): ksg1 / ksg2 (Kraskov et al. 2004;\n"
        "max-norm, the point itself never a neighbour; with --z, ksg1 is Frenzel-Pompe); gauss (from\n"
        "covariance log-determinants); binned (plug-in on per-column bins, equal width or --quantile, with\n"
        "the Miller-Madow correction (m-1)/2N per entropy unless --no-miller-madow).\n"
        "--transform ranks or standardises every column first; --noise A adds A x sd x N(0,1) to break\n"
        "ties (seeded). Both are off by default.\n"
        "--perms B: permutation p-value (1 + #{null >= I}) / (B + 1); with --z, Y is permuted only among\n"
        "each row's --shuffle-k nearest neighbours in Z (Runge 2018, the local-permutation CI test).\n"
        "COLS are comma-separated column names, PREFIX* for every column starting so; derived columns can\n"
        "be added with --derive NAME=EXPR, and the columns of other tables matched by id with --join T.csv\n"
        "(e.g. a VAE's mu/sigma from galnn embed --full). --each estimates I(X_j ; Y) for every X column\n"
        "on its own (e.g. --x 'mu*' --y logmstar --each: the information each latent dimension holds).\n");
}

// The columns a list names; an item ending in '*' stands for every numeric
// column with that prefix (e.g. mu* for a VAE's latent means). names: their names.
static int columns(io_catalog *c, const char *list, const double **v, int max, char *buf, size_t blen,
                   const char **names) {
    snprintf(buf, blen, "%s", list);
    char *items[64];
    int n = io_split_list(buf, items, 64), m = 0;
    for (int i = 0; i < n; i++) {
        size_t L = strlen(items[i]);
        if (L && items[i][L - 1] == '*') {
            int before = m;
            for (int k = 0; k < c->n_cols && m < max; k++)
                if (c->cols[k].numeric && k != c->id_col && !strncmp(c->cols[k].name, items[i], L - 1))
                    names[m] = c->cols[k].name, v[m++] = c->cols[k].v;
            if (m == before)
                return gn_err(GN_EINVAL, "no numeric column starts with '%.*s'", (int)(L - 1), items[i]);
            continue;
        }
        if (m == max) return gn_err(GN_EINVAL, "at most %d columns per set", max);
        if (!(v[m] = io_catalog_values(c, items[i]))) return -1;
        names[m++] = items[i];
    }
    return m;
}

static int g_nested; // inside --each: the per-column runs stay quiet about joins

int cmd_mi(int argc, char **argv) {
    const char *in = NULL, *xs = NULL, *ys = NULL, *zs = NULL, *est = "ksg1", *units = "nats", *tf = "none";
    const char *derive[8], *joins[8];
    int n_der = 0, n_join = 0, json = 0, quantile = 0, mm = 1, each = 0;
    long k = 3, threads = 0, bins = 8, perms = 0, shuffle_k = 5, seed = 1;
    double noise = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--each")) {
            each = 1;
            continue;
        }
        if (!strcmp(a, "--json") || !strcmp(a, "--quantile") || !strcmp(a, "--no-miller-madow")) {
            if (a[2] == 'j') json = 1;
            else if (a[2] == 'q') quantile = 1;
            else mm = 0;
            continue;
        }
        if (!v) return cmd_error("%s needs a value", a);
        if (!strcmp(a, "--in")) in = v;
        else if (!strcmp(a, "--x")) xs = v;
        else if (!strcmp(a, "--y")) ys = v;
        else if (!strcmp(a, "--z")) zs = v;
        else if (!strcmp(a, "--estimator")) est = v;
        else if (!strcmp(a, "--units")) units = v;
        else if (!strcmp(a, "--derive") && n_der < 8) derive[n_der++] = v;
        else if (!strcmp(a, "--join") && n_join < 8) joins[n_join++] = v;
        else if (!strcmp(a, "--transform")) tf = v;
        else if (!strcmp(a, "--noise")) {
            char *e;
            noise = strtod(v, &e);
            if (*e || !(noise >= 0)) return cmd_error("--noise '%s' is not a non-negative number", v);
        } else if (!strcmp(a, "--bins")) {
            if (cmd_parse_int(a, v, 1, 1024, &bins)) return 1;
        } else if (!strcmp(a, "--perms")) {
            if (cmd_parse_int(a, v, 0, 1000000, &perms)) return 1;
        } else if (!strcmp(a, "--shuffle-k")) {
            if (cmd_parse_int(a, v, 1, 100000, &shuffle_k)) return 1;
        } else if (!strcmp(a, "--seed")) {
            if (cmd_parse_int(a, v, 0, 0x7fffffff, &seed)) return 1;
        }
        else if (!strcmp(a, "--k")) {
            if (cmd_parse_int(a, v, 1, 100000, &k)) return 1;
        } else if (!strcmp(a, "--threads")) {
            if (cmd_parse_int(a, v, 0, 1024, &threads)) return 1;
        } else return cmd_error("mi: unknown option '%s' (see `galnn help mi`)", a);
        i++;
    }
    if (!in || !xs || !ys) return cmd_error("mi: --in, --x and --y are required");
    int estimator = !strcmp(est, "ksg1")     ? ST_MI_KSG1
                    : !strcmp(est, "ksg2")   ? ST_MI_KSG2
                    : !strcmp(est, "gauss")  ? ST_MI_GAUSS
                    : !strcmp(est, "binned") ? ST_MI_BINNED
                                             : -1;
    if (estimator < 0) return cmd_error("mi: --estimator '%s' is not ksg1, ksg2, gauss or binned", est);
    int tkind = !strcmp(tf, "none")          ? ST_TF_NONE
                : !strcmp(tf, "rank")        ? ST_TF_RANK
                : !strcmp(tf, "standardize") ? ST_TF_STANDARDIZE
                                             : -1;
    if (tkind < 0) return cmd_error("mi: --transform '%s' is not none, rank or standardize", tf);
    if (strcmp(units, "nats") && strcmp(units, "bits"))
        return cmd_error("mi: --units '%s' is not nats or bits", units);
    if (zs && estimator == ST_MI_KSG2)
        return cmd_error("mi: --z (conditional MI) needs ksg1 (Frenzel-Pompe), gauss or binned");
    gn_set_threads((int)threads);
    io_catalog c;
    if (io_catalog_read(in, NULL, &c)) return cmd_error("%s", gn_errmsg());
    int rc = 1;
    for (int j = 0; j < n_join; j++) {
        size_t hit;
        if (io_catalog_join(&c, joins[j], &hit)) {
            cmd_error("--join: %s", gn_errmsg());
            goto out0;
        }
        if (!json && !g_nested) printf("joined %s: %zu of %zu rows matched by id\n", joins[j], hit, c.n_rows);
    }
    for (int d = 0; d < n_der; d++)
        if (io_catalog_derive_spec(&c, derive[d])) {
            cmd_error("--derive: %s", gn_errmsg());
            goto out0;
        }
    const double *cx[64], *cy[32], *cz[32];
    const char *nx[64], *ny[32], *nz[32];
    char b1[1024], b2[1024], b3[1024];
    int dx = columns(&c, xs, cx, 64, b1, sizeof b1, nx), dy = columns(&c, ys, cy, 32, b2, sizeof b2, ny);
    int dz = zs ? columns(&c, zs, cz, 32, b3, sizeof b3, nz) : 0;
    if (dx < 0 || dy < 0 || dz < 0) {
        cmd_error("mi: %s", gn_errmsg());
        goto out0;
    }
    if (each) { // I(X_j ; Y [| Z]) for every column of X on its own, e.g. per latent dimension
        rc = 0;
        if (json) printf("{\"units\": \"%s\", \"estimator\": \"%s\", \"mi\": {", units, est);
        for (int j = 0; j < dx && !rc; j++) {
            char sub[256];
            snprintf(sub, sizeof sub, "%s", nx[j]);
            char *args[40];
            int na = 0;
            // the same command for one column, without --each (simplest: recurse)
            args[na++] = "mi";
            for (int i = 1; i < argc && na < 38; i++) {
                if (!strcmp(argv[i], "--each")) continue;
                if (!strcmp(argv[i], "--x")) {
                    args[na++] = "--x", args[na++] = sub, i++;
                    continue;
                }
                args[na++] = argv[i];
            }
            args[na] = NULL;
            if (json) printf("%s\"%s\": ", j ? ", " : "", nx[j]), fflush(stdout);
            g_nested = 1;
            rc = cmd_mi(na, args);
            g_nested = 0;
        }
        if (json) printf("}}\n");
        goto out0;
    }
    size_t n = 0, N = c.n_rows;
    double *X = malloc(sizeof(double) * N * (size_t)dx), *Y = malloc(sizeof(double) * N * (size_t)dy);
    double *Z = malloc(sizeof(double) * N * (size_t)(dz ? dz : 1));
    for (size_t r = 0; r < N; r++) {
        int ok = 1;
        for (int j = 0; j < dx; j++) ok &= !isnan(cx[j][r]);
        for (int j = 0; j < dy; j++) ok &= !isnan(cy[j][r]);
        for (int j = 0; j < dz; j++) ok &= !isnan(cz[j][r]);
        if (!ok) continue;
        for (int j = 0; j < dx; j++) X[n * (size_t)dx + (size_t)j] = cx[j][r];
        for (int j = 0; j < dy; j++) Y[n * (size_t)dy + (size_t)j] = cy[j][r];
        for (int j = 0; j < dz; j++) Z[n * (size_t)dz + (size_t)j] = cz[j][r];
        n++;
    }
    double v, pval = NAN;
    st_mi_opts mo = {estimator, (int)k, (int)bins, quantile, mm};
    int e = 0;
    double *blocks[3] = {X, Y, Z};
    int dims[3] = {dx, dy, dz};
    for (int b = 0; b < 3 && !e; b++) {
        if (!dims[b]) continue;
        e = st_transform(blocks[b], n, dims[b], tkind);
        if (!e && noise > 0) e = st_add_noise(blocks[b], n, dims[b], noise, (uint64_t)seed * 3 + (uint64_t)b);
    }
    if (!e)
        e = perms ? st_mi_permtest(&mo, X, dx, Y, dy, Z, dz, n, (int)perms, (int)shuffle_k, (uint64_t)seed,
                                   &v, &pval, NULL)
                  : st_mi(&mo, X, dx, Y, dy, Z, dz, n, &v);
    if (e) cmd_error("mi: %s", gn_errmsg());
    else {
        double scale = strcmp(units, "bits") ? 1.0 : 1.0 / log(2.0);
        char how[64];
        if (estimator == ST_MI_BINNED)
            snprintf(how, sizeof how, "%ld %s bins%s", bins, quantile ? "quantile" : "equal-width",
                     mm ? ", Miller-Madow" : "");
        else if (estimator == ST_MI_GAUSS) snprintf(how, sizeof how, "Gaussian");
        else snprintf(how, sizeof how, "k = %ld", k);
        if (json) {
            printf("{\"mi\": %.10g, \"units\": \"%s\", \"estimator\": \"%s\", \"k\": %ld, \"n\": %zu, "
                   "\"dropped\": %zu, "
                   "\"conditional\": %s, \"transform\": \"%s\", \"noise\": %g",
                   v * scale, units, est, k, n, N - n, dz ? "true" : "false", tf, noise);
            if (estimator == ST_MI_BINNED)
                printf(", \"bins\": %ld, \"quantile\": %s, \"miller_madow\": %s", bins,
                       quantile ? "true" : "false", mm ? "true" : "false");
            if (perms) printf(", \"perms\": %ld, \"p_value\": %.6g", perms, pval);
            printf("}\n");
        } else {
            printf("I(%s ; %s%s%s) = %.6f %s  (%s, %s, %zu rows, %zu with nulls dropped)\n", xs, ys,
                   dz ? " | " : "", dz ? zs : "", v * scale, units, est, how, n, N - n);
            if (perms)
                printf("permutation test (%ld surrogates%s): p = %.4g\n", perms,
                       dz ? ", Y shuffled within Z-neighbourhoods" : "", pval);
        }
        rc = 0;
    }
    free(X), free(Y), free(Z);
out0:
    io_catalog_free(&c);
    return rc;
}
