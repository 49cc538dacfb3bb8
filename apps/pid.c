// galnn pid: partial information decomposition of two sources about a target
// from a discrete distribution, from samples, or pointwise from the
// per-galaxy probabilities of three binned-softmax models (spec §1.11).
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../common/gn_common.h"
#include "../io/catalog.h"
#include "../io/json.h"
#include "../io/config.h"
#include "../stats/pid.h"
#include "cmd.h"
#include "flags.h"
#include "pipeline/opts.h"

static void pid_usage(void) {
    printf(
        "usage: galnn pid --dist DIST.csv [--measure imin|mmi|broja|ccs|all] [--json]\n"
        "       galnn pid --samples DATA.csv --x1 COLS --x2 COLS --y COLS [--method binned|ksg-mmi|gauss]\n"
        "                 [--bins 8] [--quantile] [--measure M] [--k 3] [--json]\n"
        "       galnn pid --pointwise --p1 A.csv --p2 B.csv --p12 AB.csv --catalog CAT.csv --target COL\n"
        "                 [--split test|val|train|all] [--by COL] [--bins 520] [--range 6,12.5]\n"
        "                 [--boot 1000] [--seed 1] [--out DIR] [--json]\n\n"
        "Two sources X1, X2 and a target Y: Red (shared), Unq1, Unq2 (unique) and Syn (synergistic)\n"
        "information, with Unq_i = I(X_i;Y) - Red and Syn = I(X1X2;Y) - Red - Unq1 - Unq2.\n\n"
        "--dist: a joint distribution with columns x1,x2,y,p (symbols are any strings; p must sum to 1).\n"
        "  Measures (bits): imin (Williams-Beer), mmi (minimum MI), broja (Bertschinger et al., to ~1e-8\n"
        "  1e-9), ccs (Ince, on the max-entropy distribution with the pairwise marginals).\n"
        "--samples: continuous columns (nats): gauss (MMI with Gaussian MIs; exact for a univariate\n"
        "  jointly Gaussian target), ksg-mmi (MMI with KSG 1 MIs), or binned (every column into --bins\n"
        "  equal-width or --quantile bins, then --measure on the table, bits).\n"
        "--pointwise (the stellar-mass paper, nats): per galaxy i_m = ln q_m(bin | X_m) - ln p(bin), the\n"
        "  prior p a histogram of the target over every catalog galaxy (--bins over --range);\n"
        "  R = min(i1, i2), U_m = i_m - R, S = i12 - max(i1, i2); negative values are kept. Each file has\n"
        "  an id column and either `logp` (ln q of the galaxy's true bin) or p0..p{bins-1} (q per bin;\n"
        "  ln(q + 1e-20) is used). Averages per population (--by, and 'all') with percentile bootstrap\n"
        "  68%% intervals; with --out, DIR/pointwise.csv and DIR/pid.json.\n");
}

static const char *MEAS[5] = {"", "imin", "mmi", "broja", "ccs"};

static int parse_measure(const char *s) {
    for (int m = 1; m <= 4; m++)
        if (!strcmp(s, MEAS[m])) return m;
    return !strcmp(s, "all") ? 0 : -1;
}

static void print_pid(const char *label, const st_pid *o, const char *units, int json, int last) {
    if (json) { // a value that is not finite (an estimator that failed) is null, never nan or inf
        static const char *key[7] = {"red", "unq1", "unq2", "syn", "i1", "i2", "i12"};
        const double v[7] = {o->red, o->unq0, o->unq1, o->syn, o->i0, o->i1, o->i01};
        printf("  \"%s\": {", label);
        for (int k = 0; k < 7; k++)
            printf("%s\"%s\": ", k ? ", " : "", key[k]), io_json_put_num(stdout, "%.10g", v[k]);
        printf("}%s\n", last ? "" : ",");
    } else
        printf("%-8s %10.6f %10.6f %10.6f %10.6f   (I1 %.6f, I2 %.6f, I12 %.6f %s)\n", label, o->red, o->unq0,
               o->unq1, o->syn, o->i0, o->i1, o->i01, units);
}

// --dist: symbols -> indices in order of appearance
static int sym_index(char **names, int *n, const char *s, int max) {
    for (int i = 0; i < *n; i++)
        if (!strcmp(names[i], s)) return i;
    if (*n == max) return -1;
    names[*n] = (char *)s;
    return (*n)++;
}

static int run_dist(const char *path, int measure, int json) {
    io_catalog c;
    if (io_catalog_read(path, NULL, &c)) return cmd_error("pid: %s", gn_errmsg());
    int rc = 1;
    int cx1 = io_catalog_find(&c, "x1"), cx2 = io_catalog_find(&c, "x2"), cy = io_catalog_find(&c, "y");
    const double *p = NULL;
    double *tab = NULL;
    if (cx1 < 0 || cx2 < 0 || cy < 0 || !(p = io_catalog_values(&c, "p"))) {
        cmd_error("pid: %s needs the columns x1, x2, y and p", path);
        goto out;
    }
    enum { MAXS = 256 };
    char *n1[MAXS], *n2[MAXS], *ny[MAXS];
    int k1 = 0, k2 = 0, ky = 0;
    int *ia = malloc(sizeof(int) * 3 * (c.n_rows + 1));
    if (!ia) goto out;
    double sum = 0;
    for (size_t r = 0; r < c.n_rows; r++) {
        const char *a = c.cols[cx1].s[r], *b = c.cols[cx2].s[r], *y = c.cols[cy].s[r];
        if (!a || !b || !y || !*a || !*b || !*y) {
            cmd_error("pid: %s: data row %zu has an empty symbol", path, r + 1);
            free(ia);
            goto out;
        }
        if (!(p[r] >= 0)) {
            cmd_error("pid: %s: data row %zu: p is negative or not a number", path, r + 1);
            free(ia);
            goto out;
        }
        ia[3 * r] = sym_index(n1, &k1, a, MAXS), ia[3 * r + 1] = sym_index(n2, &k2, b, MAXS),
               ia[3 * r + 2] = sym_index(ny, &ky, y, MAXS);
        if (ia[3 * r] < 0 || ia[3 * r + 1] < 0 || ia[3 * r + 2] < 0) {
            cmd_error("pid: %s: more than %d symbols in a column", path, MAXS);
            free(ia);
            goto out;
        }
        sum += p[r];
    }
    if (!c.n_rows || fabs(sum - 1) > 1e-6) {
        cmd_error("pid: %s: the probabilities sum to %.9g, not 1", path, sum);
        free(ia);
        goto out;
    }
    st_dist3 d = {k1, k2, ky, NULL};
    tab = calloc((size_t)k1 * k2 * ky, sizeof(double));
    if (!tab) {
        free(ia);
        goto out;
    }
    d.p = tab;
    for (size_t r = 0; r < c.n_rows; r++)
        tab[((size_t)ia[3 * r] * k2 + ia[3 * r + 1]) * ky + ia[3 * r + 2]] += p[r] / sum;
    free(ia);
    if (json)
        printf("{\n  \"units\": \"bits\",\n");
    else
        printf("%-8s %10s %10s %10s %10s   (bits; %d x %d x %d outcomes)\n", "measure", "Red", "Unq1", "Unq2",
               "Syn", k1, k2, ky);
    for (int m = 1; m <= 4; m++) {
        if (measure && m != measure) continue;
        st_pid o;
        if (st_pid_discrete(&d, m, 0, &o)) {
            cmd_error("pid: %s: %s", path, gn_errmsg());
            goto out;
        }
        print_pid(MEAS[m], &o, "bits", json, measure || m == 4);
    }
    if (json) printf("}\n");
    rc = 0;
out:
    free(tab);
    io_catalog_free(&c);
    return rc;
}

// COLS of a catalog into an (n, d) array over the rows where all of `all` are present
static int columns(io_catalog *c, const char *list, const double **v, int max) {
    char buf[1024], *items[32];
    snprintf(buf, sizeof buf, "%s", list);
    int n = io_split_list(buf, items, max < 32 ? max : 32);
    for (int i = 0; i < n; i++)
        if (!(v[i] = io_catalog_values(c, items[i]))) return -1;
    return n;
}

static int run_samples(const char *path, const char *x1s, const char *x2s, const char *ys, const char *method,
                       int measure, int bins, int quantile, int k, int json) {
    io_catalog c;
    if (io_catalog_read(path, NULL, &c)) return cmd_error("pid: %s", gn_errmsg());
    const double *c1[32], *c2[32], *cy[32];
    int d1 = columns(&c, x1s, c1, 32), d2 = d1 < 0 ? -1 : columns(&c, x2s, c2, 32),
        dy = d2 < 0 ? -1 : columns(&c, ys, cy, 32);
    if (d1 < 1 || d2 < 1 || dy < 1) {
        io_catalog_free(&c);
        return cmd_error("pid: %s",
                         d1 < 0 || d2 < 0 || dy < 0 ? gn_errmsg() : "--x1, --x2 and --y need columns");
    }
    size_t N = c.n_rows, n = 0;
    double *X1 = malloc(sizeof(double) * (N + 1) * d1), *X2 = malloc(sizeof(double) * (N + 1) * d2),
           *Y = malloc(sizeof(double) * (N + 1) * dy);
    int rc = 1;
    if (!X1 || !X2 || !Y) goto out;
    const double *const *sets[3] = {c1, c2, cy};
    int dims[3] = {d1, d2, dy};
    n = io_gather_complete(N, 3, sets, dims, (double *const[3]){X1, X2, Y});
    st_pid o;
    int e;
    const char *units = "nats";
    if (!strcmp(method, "gauss"))
        e = st_pid_gauss(X1, d1, X2, d2, Y, dy, n, &o);
    else if (!strcmp(method, "ksg-mmi"))
        e = st_pid_ksg(X1, d1, X2, d2, Y, dy, n, k, &o);
    else if (!strcmp(method, "binned")) {
        e = st_pid_binned(X1, d1, X2, d2, Y, dy, n, bins, quantile, measure ? measure : ST_PID_BROJA, &o);
        units = "bits";
    } else {
        cmd_error("pid: --method '%s' is not binned, ksg-mmi or gauss", method);
        goto out;
    }
    if (e) {
        cmd_error("pid: %s", gn_errmsg());
        goto out;
    }
    const char *label = !strcmp(method, "binned") ? MEAS[measure ? measure : ST_PID_BROJA] : "mmi";
    if (json)
        printf("{\n  \"units\": \"%s\", \"method\": \"%s\", \"n\": %zu, \"dropped\": %zu,\n", units, method,
               n, N - n);
    else
        printf("%-8s %10s %10s %10s %10s   (%s, %s, %zu rows, %zu with nulls dropped)\n", "measure", "Red",
               "Unq1", "Unq2", "Syn", units, method, n, N - n);
    print_pid(label, &o, units, json, 1);
    if (json) printf("}\n");
    rc = 0;
out:
    free(X1), free(X2), free(Y);
    io_catalog_free(&c);
    return rc;
}

// ---- pointwise ----

typedef struct pfile {
    io_catalog c;
    io_id_index ix;
    const double *logp; // or
    const double **pb;  // p0..p{B-1}
} pfile;

static int pfile_open(pfile *f, const char *path, int B) {
    memset(f, 0, sizeof *f);
    io_catalog_opts o = {0, 1, NULL};
    if (io_catalog_read(path, &o, &f->c) || io_id_index_build(&f->c, &f->ix)) return -1;
    if (io_catalog_find(&f->c, "logp") >= 0) return (f->logp = io_catalog_values(&f->c, "logp")) ? 0 : -1;
    f->pb = calloc((size_t)B, sizeof(double *));
    if (!f->pb) return gn_err(GN_ENOMEM, "out of memory");
    for (int b = 0; b < B; b++) {
        char nm[32];
        snprintf(nm, sizeof nm, "p%d", b);
        if (io_catalog_find(&f->c, nm) < 0)
            return gn_err(GN_EFORMAT, "%s: neither a `logp` column nor p0..p%d (missing %s)", path, B - 1,
                          nm);
        if (!(f->pb[b] = io_catalog_values(&f->c, nm))) return -1;
    }
    return 0;
}

static double pfile_logq(const pfile *f, const char *id, int bin) {
    long r = io_id_find(&f->ix, id);
    if (r < 0) return NAN;
    return f->logp ? f->logp[r] : log(f->pb[bin][r] + 1e-20);
}

static void pfile_close(pfile *f) {
    free(f->pb);
    io_id_index_free(&f->ix);
    io_catalog_free(&f->c);
}

// The pointwise PID of three networks' predictions (spec §1.11): the state.
typedef struct pwjob {
    const pid_cli *o;
    int B, want, bycol, npop;
    double lo, hi, w, *cnt, *at[7], *lp;
    size_t ntot, n, missing;
    pfile f[3];
    io_catalog C;
    const double *y;
    uint8_t *split;
    uint32_t *rowof;
    char **popname;
    int *pop;
} pwjob;

// The probability files, the catalog and each galaxy's split: the one its
// models used (the `split` column galnn predict writes), else the catalog's,
// else the id hash of galnn train.
static int pw_open(pwjob *J) {
    const pid_cli *o = J->o;
    for (int m = 0; m < 3; m++)
        if (pfile_open(&J->f[m], o->p[m], J->B)) return cmd_error("pid: %s", gn_errmsg());
    if (io_catalog_read(o->catalog, NULL, &J->C)) return cmd_error("pid: %s", gn_errmsg());
    J->y = io_catalog_values(&J->C, o->target);
    J->bycol = o->by ? io_catalog_find(&J->C, o->by) : -1;
    if (!J->y || (o->by && J->bycol < 0))
        return cmd_error("pid: %s", J->y ? "--by names no catalog column" : gn_errmsg());
    J->want = !strcmp(o->split, "all") ? -2 : io_split_parse(o->split);
    if (J->want == -1) return cmd_error("pid: --split '%s' is not train, val, test or all", o->split);
    J->split = malloc(J->C.n_rows + 1);
    if (!J->split || io_catalog_splits(&J->C, RUN_TRAIN_FRAC, RUN_VAL_FRAC, J->split))
        return cmd_error("pid: %s", gn_errmsg());
    int sc = io_catalog_find(&J->f[0].c, "split");
    for (size_t r = 0; sc >= 0 && r < J->C.n_rows; r++) {
        long k = io_id_find(&J->f[0].ix, io_catalog_id(&J->C, r));
        const char *v = k >= 0 ? J->f[0].c.cols[sc].s[k] : NULL;
        int sp = v ? io_split_parse(v) : -1;
        if (sp >= 0) J->split[r] = (uint8_t)sp;
    }
    return 0;
}

static int pw_bin(const pwjob *J, double y) {
    int b = (int)floor((y - J->lo) / J->w);
    return b < 0 ? 0 : b >= J->B ? J->B - 1 : b;
}

// The prior (the target's histogram over every catalog galaxy) and, per galaxy
// of the split in all three files, log q1, q2, q12 and log p of its bin.
static int pw_rows(pwjob *J) {
    size_t N = J->C.n_rows;
    J->cnt = calloc((size_t)J->B, sizeof(double));
    if (!J->cnt) return cmd_error("pid: out of memory");
    for (size_t r = 0; r < N; r++)
        if (!isnan(J->y[r])) J->cnt[pw_bin(J, J->y[r])]++, J->ntot++;
    if (!J->ntot) return cmd_error("pid: the catalog has no %s values", J->o->target);
    for (int a = 0; a < 7; a++)
        if (!(J->at[a] = malloc(sizeof(double) * (N + 1)))) return cmd_error("pid: out of memory");
    J->pop = malloc(sizeof(int) * (N + 1)), J->popname = calloc(N + 1, sizeof(char *));
    J->rowof = malloc(sizeof(uint32_t) * (N + 1)), J->lp = malloc(sizeof(double) * (N + 1));
    if (!J->pop || !J->popname || !J->rowof || !J->lp) return cmd_error("pid: out of memory");
    for (size_t r = 0; r < N; r++) {
        if (isnan(J->y[r]) || (J->want != -2 && J->split[r] != J->want)) continue;
        int b = pw_bin(J, J->y[r]);
        const char *id = io_catalog_id(&J->C, r);
        double q[3];
        for (int m = 0; m < 3; m++) q[m] = pfile_logq(&J->f[m], id, b);
        if (isnan(q[0]) || isnan(q[1]) || isnan(q[2])) {
            J->missing++;
            continue;
        }
        for (int m = 0; m < 3; m++) J->at[m][J->n] = q[m];
        J->lp[J->n] = log(J->cnt[b] / (double)J->ntot);
        int p = 0;
        if (J->bycol >= 0) {
            const char *v =
                J->C.cols[J->bycol].s[r] && *J->C.cols[J->bycol].s[r] ? J->C.cols[J->bycol].s[r] : "(null)";
            while (p < J->npop && strcmp(J->popname[p], v)) p++;
            if (p == J->npop) J->popname[J->npop++] = (char *)v;
        }
        J->pop[J->n] = p, J->rowof[J->n] = (uint32_t)r;
        J->n++;
    }
    if (!J->n)
        return cmd_error("pid: no galaxy of the %s split with a %s value is in all three probability files",
                         J->o->split, J->o->target);
    if (J->missing)
        fprintf(stderr, "pid: %zu galaxies of the %s split are missing from a probability file (left out)\n",
                J->missing, J->o->split);
    return 0;
}

// OUT/pointwise.csv: the informations and the atoms per galaxy.
static int pw_csv(const pwjob *J, const char *path) {
    FILE *pc = fopen(path, "w");
    if (!pc) return cmd_error("pid: cannot write %s: %s", path, strerror(errno));
    int by = J->bycol >= 0;
    fprintf(pc, "id%s%s,i1,i2,i12,red,unq1,unq2,syn\n", by ? "," : "", by ? J->o->by : "");
    double *const *l = J->at, *lp = J->lp;
    for (size_t i = 0; i < J->n; i++) {
        fprintf(pc, "%s", io_catalog_id(&J->C, J->rowof[i]));
        if (by) fprintf(pc, ",%s", J->popname[J->pop[i]]);
        fprintf(pc, ",%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g\n", l[0][i] - lp[i], l[1][i] - lp[i],
                l[2][i] - lp[i], l[3][i], l[4][i], l[5][i], l[6][i]);
    }
    return fclose(pc) ? cmd_error("pid: write failed on %s", path) : 0;
}

// Per population, the mean of each atom and its bootstrap interval: on screen
// (or as JSON with --json) and in OUT/pid.json.
static int pw_summary(const pwjob *J, FILE *js) {
    const pid_cli *o = J->o;
    static const char *an[4] = {"red", "unq1", "unq2", "syn"};
    double *v = malloc(sizeof(double) * J->n);
    if (!v) return cmd_error("pid: out of memory");
    if (!o->json)
        printf("%-12s %6s  %-26s %-26s %-26s %-26s (nats; mean [16%%, 84%%])\n", "population", "n", "Red",
               "Unq1", "Unq2", "Syn");
    FILE *outs[2] = {o->json ? stdout : NULL, js};
    for (int k = 0; k < 2; k++)
        if (outs[k])
            fprintf(outs[k],
                    "{\n  \"units\": \"nats\", \"target\": \"%s\", \"split\": \"%s\", \"bins\": %d, "
                    "\"range\": [%g, %g], \"populations\": {\n",
                    o->target, o->split, J->B, J->lo, J->hi);
    int rc = 0, ng = J->npop + 1;
    for (int g = 0; g < ng && !rc; g++) {
        int p = g < J->npop ? g : -1;
        size_t m = 0;
        double mean[4], blo[4], bhi[4];
        for (int a = 0; a < 4 && !rc; a++) {
            m = 0;
            for (size_t i = 0; i < J->n; i++)
                if (p < 0 || J->pop[i] == p) v[m++] = J->at[3 + a][i];
            rc = st_bootstrap_mean(v, m, (int)o->boot, 0.68, (uint64_t)o->seed, &mean[a], &blo[a], &bhi[a]);
        }
        const char *name = p < 0 ? "all" : J->popname[p];
        if (!rc && !o->json) {
            printf("%-12s %6zu ", name, m);
            for (int a = 0; a < 4; a++) printf(" %8.4f [%7.4f, %7.4f]", mean[a], blo[a], bhi[a]);
            printf("\n");
        }
        for (int k = 0; !rc && k < 2; k++) {
            if (!outs[k]) continue;
            fprintf(outs[k], "    \"%s\": {\"n\": %zu", name, m);
            for (int a = 0; a < 4; a++)
                fprintf(outs[k], ", \"%s\": [%.6g, %.6g, %.6g]", an[a], mean[a], blo[a], bhi[a]);
            fprintf(outs[k], "}%s\n", g + 1 < ng ? "," : "");
        }
    }
    for (int k = 0; !rc && k < 2; k++)
        if (outs[k])
            fprintf(
                outs[k],
                "  },\n  \"note\": \"each atom: [mean, 16th, 84th percentile of %ld bootstrap means]\"\n}\n",
                o->boot);
    free(v);
    return rc ? cmd_error("pid: %s", gn_errmsg()) : 0;
}

static int run_pointwise(const pid_cli *o) {
    pwjob J;
    memset(&J, 0, sizeof J);
    J.o = o, J.B = o->bins > 0 ? (int)o->bins : 520, J.lo = o->range[0], J.hi = o->range[1];
    J.w = (J.hi - J.lo) / J.B;
    char path[4096];
    FILE *js = NULL;
    int rc = pw_open(&J) || pw_rows(&J);
    if (!rc) st_pid_pointwise(J.at[0], J.at[1], J.at[2], J.lp, J.n, J.at[3], J.at[4], J.at[5], J.at[6]);
    if (!rc && o->out) {
        if (mkdir(o->out, 0777) && errno != EEXIST)
            rc = cmd_error("pid: cannot create %s: %s", o->out, strerror(errno));
        snprintf(path, sizeof path, "%s/pointwise.csv", o->out);
        if (!rc) rc = pw_csv(&J, path);
        snprintf(path, sizeof path, "%s/pid.json", o->out);
        if (!rc && !(js = fopen(path, "w")))
            rc = cmd_error("pid: cannot write %s: %s", path, strerror(errno));
    }
    if (!rc) rc = pw_summary(&J, js);
    if (js && fclose(js) && !rc) rc = cmd_error("pid: write failed on %s", path);
    for (int m = 0; m < 3; m++) pfile_close(&J.f[m]);
    io_catalog_free(&J.C);
    free(J.cnt), free(J.split), free(J.pop), free(J.popname), free(J.rowof), free(J.lp);
    for (int a = 0; a < 7; a++) free(J.at[a]);
    return rc;
}

static int parse_range(void *t, const char *v) {
    double *lh = t;
    char *e;
    lh[0] = strtod(v, &e);
    if (*e != ',' || (lh[1] = strtod(e + 1, &e), *e) || !(lh[1] > lh[0]))
        return cmd_error("--range '%s' is not LO,HI", v);
    return 0;
}

#define CLI pid_cli
static const cmd_flag pid_flags[] = {
    F_STR("--dist", dist, "DIST.csv", "a discrete joint distribution"),
    F_STR("--samples", samples, "DATA.csv", "samples of (x1, x2, y)"),
    F_ON("--pointwise", pointwise, "pointwise PID from three networks' predictions"),
    F_STR("--measure", measure, "M", "imin, mmi, broja, ccs or all"),
    F_ON("--json", json, "print JSON"),
    F_STR("--x1", x1, "COLS", "--samples: the first source's columns"),
    F_STR("--x2", x2, "COLS", "--samples: the second source's columns"),
    F_STR("--y", y, "COLS", "--samples: the target's columns"),
    F_STR("--method", method, "M", "--samples: binned, ksg-mmi or gauss"),
    F_INT("--bins", bins, 2, 100000, "B", "bins (default 8; --pointwise: 520)"),
    F_ON("--quantile", quantile, "--samples: quantile bins"),
    F_INT("--k", k, 1, 100000, "K", "--samples: KSG neighbours"),
    F_STR("--p1", p[0], "CSV", "--pointwise: predictions from source 1"),
    F_STR("--p2", p[1], "CSV", "--pointwise: predictions from source 2"),
    F_STR("--p12", p[2], "CSV", "--pointwise: predictions from both"),
    F_STR("--catalog", catalog, "CSV", "--pointwise: the catalog with the target"),
    F_STR("--target", target, "COL", "--pointwise: the target column"),
    F_SPLIT(split, "--pointwise: the split the predictions are of"),
    F_STR("--by", by, "COL", "--pointwise: per population too"),
    F_OUT(out, "DIR", "--pointwise: where the tables and figures go"),
    F_FN("--range", range, parse_range, "LO,HI", "--pointwise: the binned target's range"),
    F_INT("--boot", boot, 0, 1000000, "B", "--pointwise: bootstrap resamples"),
    F_SEED(seed, "--pointwise: bootstrap seed"),
    F_END};

void pid_defaults(void *p) {
    pid_cli *o = p;
    o->method = "binned", o->split = "test", o->bins = -1, o->k = 3, o->boot = 1000, o->seed = 1;
    o->range[0] = 6, o->range[1] = 12.5;
}

int pid_run(const pid_cli *o) {
    int measure = o->measure ? parse_measure(o->measure) : 0;
    if (measure < 0) return cmd_error("pid: --measure '%s' is not imin, mmi, broja, ccs or all", o->measure);
    if (!!o->dist + !!o->samples + o->pointwise != 1)
        return cmd_error("pid: give exactly one of --dist, --samples or --pointwise");
    if (o->dist) return run_dist(o->dist, measure, o->json);
    if (o->samples) {
        if (!o->x1 || !o->x2 || !o->y) return cmd_error("pid: --samples needs --x1, --x2 and --y");
        return run_samples(o->samples, o->x1, o->x2, o->y, o->method, measure, o->bins > 0 ? (int)o->bins : 8,
                           o->quantile, (int)o->k, o->json);
    }
    if (!o->p[0] || !o->p[1] || !o->p[2] || !o->catalog || !o->target)
        return cmd_error("pid: --pointwise needs --p1, --p2, --p12, --catalog and --target");
    return run_pointwise(o);
}

static int pid_run_v(const void *o) { return pid_run(o); }

CMD_DEF(cmd_pid, "pid",
        "partial information decomposition: redundant, unique, synergistic (discrete, samples, pointwise)",
        pid_usage, pid_flags, sizeof(pid_cli), pid_defaults, pid_run_v, -1, NULL);
