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
    printf("usage: galnn mi --in TABLE.csv --x COLS --y COLS [--z COLS] [--k 3] [--estimator ksg1|ksg2|gauss]\n"
           "                [--units nats|bits] [--json] [--threads N]\n\n"
           "I(X;Y), or I(X;Y|Z) with --z (Frenzel-Pompe), from the rows where every named column is present\n"
           "(rows with a null are dropped and counted). KSG 1 and 2 use the max-norm with the point itself\n"
           "never a neighbour (Kraskov et al. 2004); gauss is 1/2 ln(det Sx det Sy / det Sxy). COLS are\n"
           "comma-separated column names; derived columns can be added with --derive NAME=EXPR.\n");
}

static int columns(io_catalog *c, const char *list, const double **v, int max, char *buf, size_t blen) {
    snprintf(buf, blen, "%s", list);
    char *items[32];
    int n = io_split_list(buf, items, max < 32 ? max : 32);
    for (int i = 0; i < n; i++)
        if (!(v[i] = io_catalog_values(c, items[i]))) return -1;
    return n;
}

int cmd_mi(int argc, char **argv) {
    const char *in = NULL, *xs = NULL, *ys = NULL, *zs = NULL, *est = "ksg1", *units = "nats";
    const char *derive[8];
    int n_der = 0, json = 0;
    long k = 3, threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--json")) {
            json = 1;
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
        else if (!strcmp(a, "--k")) {
            if (cmd_parse_int(a, v, 1, 100000, &k)) return 1;
        } else if (!strcmp(a, "--threads")) {
            if (cmd_parse_int(a, v, 0, 1024, &threads)) return 1;
        } else return cmd_error("mi: unknown option '%s' (see `galnn help mi`)", a);
        i++;
    }
    if (!in || !xs || !ys) return cmd_error("mi: --in, --x and --y are required");
    int variant = !strcmp(est, "ksg1") ? 1 : !strcmp(est, "ksg2") ? 2 : !strcmp(est, "gauss") ? 0 : -1;
    if (variant < 0) return cmd_error("mi: --estimator '%s' is not ksg1, ksg2 or gauss", est);
    if (strcmp(units, "nats") && strcmp(units, "bits")) return cmd_error("mi: --units '%s' is not nats or bits", units);
    if (zs && variant != 1) return cmd_error("mi: --z (conditional MI) uses the Frenzel-Pompe estimator: --estimator ksg1");
    gn_set_threads((int)threads);
    io_catalog c;
    if (io_catalog_read(in, NULL, &c)) return cmd_error("%s", gn_errmsg());
    int rc = 1;
    for (int d = 0; d < n_der; d++)
        if (io_catalog_derive_spec(&c, derive[d])) {
            cmd_error("--derive: %s", gn_errmsg());
            goto out0;
        }
    const double *cx[32], *cy[32], *cz[32];
    char b1[1024], b2[1024], b3[1024];
    int dx = columns(&c, xs, cx, 32, b1, sizeof b1), dy = columns(&c, ys, cy, 32, b2, sizeof b2);
    int dz = zs ? columns(&c, zs, cz, 32, b3, sizeof b3) : 0;
    if (dx < 0 || dy < 0 || dz < 0) {
        cmd_error("mi: %s", gn_errmsg());
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
    double v;
    int e = variant == 0 ? st_mi_gauss(X, dx, Y, dy, n, &v)
            : dz         ? st_cmi_fp(X, dx, Y, dy, Z, dz, n, (int)k, &v)
                         : st_mi_ksg(X, dx, Y, dy, n, (int)k, variant, &v);
    if (e) cmd_error("mi: %s", gn_errmsg());
    else {
        double scale = strcmp(units, "bits") ? 1.0 : 1.0 / log(2.0);
        if (json)
            printf("{\"mi\": %.10g, \"units\": \"%s\", \"estimator\": \"%s\", \"k\": %ld, \"n\": %zu, \"dropped\": %zu, "
                   "\"conditional\": %s}\n",
                   v * scale, units, est, k, n, N - n, dz ? "true" : "false");
        else
            printf("I(%s ; %s%s%s) = %.6f %s  (%s, k = %ld, %zu rows, %zu with nulls dropped)\n", xs, ys, dz ? " | " : "",
                   dz ? zs : "", v * scale, units, est, k, n, N - n);
        rc = 0;
    }
    free(X), free(Y), free(Z);
out0:
    io_catalog_free(&c);
    return rc;
}
