// galnn mi: mutual information between column sets of a table.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/gn_common.h"
#include "../io/catalog.h"
#include "../io/config.h"
#include "../io/json.h"
#include "../stats/mi.h"
#include "cmd.h"
#include "flags.h"

static void mi_usage(void) {
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
        "--transform: every column is standardised first by default (zero mean, unit variance: the KSG\n"
        "max-norm neighbourhoods would otherwise mix the columns' scales), or ranked, or left as it is\n"
        "(none). --noise A adds A x sd x N(0,1) to break ties (seeded; off by default).\n"
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

typedef struct mi_cli {
    const char *in, *x, *y, *z, *est, *units, *tf;
    int json, quantile, mm, each;
    long k, threads, bins, perms, shuffle_k, seed;
    double noise;
    cmd_strs derive, join;
} mi_cli;

#define CLI mi_cli
static const cmd_flag mi_flags[] = {
    F_STR("--in", in, "TABLE.csv", "the table"),
    F_STR("--x", x, "COLS", "X's columns"),
    F_STR("--y", y, "COLS", "Y's columns"),
    F_STR("--z", z, "COLS", "condition on Z's columns"),
    F_STR("--estimator", est, "E", "ksg1, ksg2, gauss or binned"),
    F_INT("--k", k, 1, 100000, "K", "KSG neighbours"),
    F_INT("--bins", bins, 1, 1024, "B", "binned: bins per column"),
    F_ON("--quantile", quantile, "binned: quantile bins"),
    F_OFF("--no-miller-madow", mm, "binned: no Miller-Madow correction"),
    F_STR("--transform", tf, "T", "none, rank or standardize"),
    F_DBL("--noise", noise, 0, 1e300, "A", "add A x sd x N(0,1) to break ties"),
    F_INT("--perms", perms, 0, 1000000, "B", "permutation test surrogates"),
    F_INT("--shuffle-k", shuffle_k, 1, 100000, "K", "with --z: local permutation neighbours"),
    F_SEED(seed, "noise and permutation seed"),
    F_STR("--units", units, "U", "nats or bits"),
    F_ON("--json", json, "print JSON"),
    F_STRS("--derive", derive, "NAME=EXPR", "add a column (repeatable)"),
    F_STRS("--join", join, "T.csv", "more columns matched by id (repeatable)"),
    F_ON("--each", each, "I(X_j ; Y) for every X column on its own"),
    F_THREADS(threads),
    F_END};

static void mi_defaults(void *p) {
    mi_cli *o = p;
    o->est = "ksg1", o->units = "nats", o->tf = "standardize", o->mm = 1;
    o->k = 3, o->bins = 8, o->shuffle_k = 5, o->seed = 1;
}

static void print_result(const mi_cli *o, double v, double pval, size_t n, size_t N, int conditional) {
    double scale = strcmp(o->units, "bits") ? 1.0 : 1.0 / log(2.0);
    int binned = !strcmp(o->est, "binned");
    char how[64];
    if (binned)
        snprintf(how, sizeof how, "%ld %s bins%s", o->bins, o->quantile ? "quantile" : "equal-width",
                 o->mm ? ", Miller-Madow" : "");
    else if (!strcmp(o->est, "gauss"))
        snprintf(how, sizeof how, "Gaussian");
    else
        snprintf(how, sizeof how, "k = %ld", o->k);
    if (o->json) {
        printf("{\"mi\": ");
        io_json_put_num(stdout, "%.10g", v * scale);
        printf(", \"units\": \"%s\", \"estimator\": \"%s\", \"k\": %ld, \"n\": %zu, "
               "\"dropped\": %zu, \"conditional\": %s, \"transform\": \"%s\", \"noise\": %g",
               o->units, o->est, o->k, n, N - n, conditional ? "true" : "false", o->tf, o->noise);
        if (binned)
            printf(", \"bins\": %ld, \"quantile\": %s, \"miller_madow\": %s", o->bins,
                   o->quantile ? "true" : "false", o->mm ? "true" : "false");
        if (o->perms) printf(", \"perms\": %ld", o->perms), io_json_put_kv(stdout, "p_value", "%.6g", pval);
        printf("}\n");
        return;
    }
    printf("I(%s ; %s%s%s) = %.6f %s  (%s, %s, %zu rows, %zu with nulls dropped)\n", o->x, o->y,
           conditional ? " | " : "", conditional ? o->z : "", v * scale, o->units, o->est, how, n, N - n);
    if (o->perms)
        printf("permutation test (%ld surrogates%s): p = %.4g\n", o->perms,
               conditional ? ", Y shuffled within Z-neighbourhoods" : "", pval);
}

// I(X;Y[|Z]) of the columns o->x, o->y, o->z of c on the rows where all are present.
static int mi_one(const mi_cli *o, io_catalog *c, int estimator, int tkind) {
    const double *cx[64], *cy[32], *cz[32];
    const char *nx[64], *ny[32], *nz[32];
    char b1[1024], b2[1024], b3[1024];
    int dx = columns(c, o->x, cx, 64, b1, sizeof b1, nx), dy = columns(c, o->y, cy, 32, b2, sizeof b2, ny);
    int dz = o->z ? columns(c, o->z, cz, 32, b3, sizeof b3, nz) : 0;
    if (dx < 0 || dy < 0 || dz < 0) return cmd_error("mi: %s", gn_errmsg());
    size_t n = 0, N = c->n_rows;
    double *X = malloc(sizeof(double) * N * (size_t)dx), *Y = malloc(sizeof(double) * N * (size_t)dy);
    double *Z = malloc(sizeof(double) * N * (size_t)(dz ? dz : 1));
    if (!X || !Y || !Z) return free(X), free(Y), free(Z), cmd_error("mi: out of memory");
    const double *const *sets[3] = {cx, cy, cz};
    int dims[3] = {dx, dy, dz};
    n = io_gather_complete(N, 3, sets, dims, (double *const[3]){X, Y, Z}); // rows with no null
    double v, pval = NAN;
    st_mi_opts mo = {estimator, (int)o->k, (int)o->bins, o->quantile, o->mm};
    int e = 0;
    double *blocks[3] = {X, Y, Z};
    for (int b = 0; b < 3 && !e; b++) {
        if (!dims[b]) continue;
        e = st_transform(blocks[b], n, dims[b], tkind);
        if (!e && o->noise > 0)
            e = st_add_noise(blocks[b], n, dims[b], o->noise, (uint64_t)o->seed * 3 + (uint64_t)b);
    }
    if (!e)
        e = o->perms ? st_mi_permtest(&mo, X, dx, Y, dy, Z, dz, n, (int)o->perms, (int)o->shuffle_k,
                                      (uint64_t)o->seed, &v, &pval, NULL)
                     : st_mi(&mo, X, dx, Y, dy, Z, dz, n, &v);
    free(X), free(Y), free(Z);
    if (e) return cmd_error("mi: %s", gn_errmsg());
    print_result(o, v, pval, n, N, dz > 0);
    return 0;
}

// --each: I(X_j ; Y [| Z]) for every column of X on its own, e.g. per latent dimension.
static int mi_each(const mi_cli *o, io_catalog *c, int estimator, int tkind) {
    const double *cx[64];
    const char *nx[64];
    char b1[1024];
    int dx = columns(c, o->x, cx, 64, b1, sizeof b1, nx), rc = 0;
    if (dx < 0) return cmd_error("mi: %s", gn_errmsg());
    if (o->json) printf("{\"units\": \"%s\", \"estimator\": \"%s\", \"mi\": {", o->units, o->est);
    for (int j = 0; j < dx && !rc; j++) {
        mi_cli one = *o;
        one.x = nx[j];
        if (o->json) printf("%s\"%s\": ", j ? ", " : "", nx[j]), fflush(stdout);
        rc = mi_one(&one, c, estimator, tkind);
    }
    if (o->json) printf("}}\n");
    return rc;
}

static int mi_run(const void *p) {
    const mi_cli *o = p;
    if (!o->in || !o->x || !o->y) return cmd_error("mi: --in, --x and --y are required");
    const char *est = o->est, *tf = o->tf;
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
    if (strcmp(o->units, "nats") && strcmp(o->units, "bits"))
        return cmd_error("mi: --units '%s' is not nats or bits", o->units);
    if (o->z && estimator == ST_MI_KSG2)
        return cmd_error("mi: --z (conditional MI) needs ksg1 (Frenzel-Pompe), gauss or binned");
    gn_set_threads((int)o->threads);
    io_catalog c;
    if (io_catalog_read(o->in, NULL, &c)) return cmd_error("%s", gn_errmsg());
    int rc = 0;
    for (int j = 0; j < o->join.n && !rc; j++) {
        size_t hit;
        if (io_catalog_join(&c, o->join.v[j], &hit))
            rc = cmd_error("--join: %s", gn_errmsg());
        else if (!o->json)
            printf("joined %s: %zu of %zu rows matched by id\n", o->join.v[j], hit, c.n_rows);
    }
    for (int d = 0; d < o->derive.n && !rc; d++)
        if (io_catalog_derive_spec(&c, o->derive.v[d])) rc = cmd_error("--derive: %s", gn_errmsg());
    if (!rc) rc = o->each ? mi_each(o, &c, estimator, tkind) : mi_one(o, &c, estimator, tkind);
    io_catalog_free(&c);
    return rc;
}

CMD_DEF(cmd_mi, "mi",
        "mutual information between column sets: KSG 1/2, conditional (Frenzel-Pompe), Gaussian", mi_usage,
        mi_flags, sizeof(mi_cli), mi_defaults, mi_run, -1, NULL);
