// galnn causal: the local nearest-neighbour independence tests in a latent
// (S) space, per galaxy and per population, with the paper's figures.
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../common/gn_common.h"
#include "../io/catalog.h"
#include "../io/config.h"
#include "../io/plot.h"
#include "../stats/knn.h"
#include "../stats/local.h"
#include "cmd.h"

void cmd_causal_help(void) {
    printf(
        "usage: galnn causal --latent S.csv --catalog CAT.csv --target COL --vars A,B,... --out DIR\n"
        "                    [--given C] [--precondition G] [--k 100] [--perms 1] [--by COL]\n"
        "                    [--query-split test|val|train|all] [--latent-cols COLS] [--alpha 0.01]\n"
        "                    [--seed 1] [--derive NAME=EXPR] [--threads N]\n\n"
        "For every query galaxy (default: the test split), its K nearest training galaxies in the latent\n"
        "space (Euclidean; a training galaxy is its own first neighbour), and over them, per candidate\n"
        "variable X: the local Pearson r(target, X), the reference r with the target permuted among the\n"
        "neighbours, the predictive efficiency PE (local R^2 of a quadratic fit target ~ X) and its\n"
        "permuted reference (spec methods.md 1.10). --given C residualises target and X on C first;\n"
        "--precondition G residualises everything on G before that (the paper's g-r step). Nulls (NaN,\n"
        "|v| >= 9000) are left out of each neighbourhood. --perms B > 1 gives per-galaxy p-values.\n\n"
        "S.csv: an id column, optionally a split column, and the latent components (all other numeric\n"
        "columns, or --latent-cols). Splits come from S.csv's split column, else the catalog's, else the id\n"
        "hash that galnn train and eval use. CAT.csv is joined by id.\n"
        "Per population (--by, plus 'all'): 16/50/84th percentiles of r, r_perm, PE, PE_perm, and a two-\n"
        "sample KS test of PE against PE_perm: X is flagged 'external' (information the latent space does\n"
        "not hold) when p < alpha and the median PE exceeds the reference.\n\n"
        "Writes DIR/local.csv (per galaxy), DIR/summary.json, DIR/r_<var>.png (Fig. 3 style: r per\n"
        "population over the grey permutation reference) and DIR/pe.png (Fig. 4/5 style: median PE with\n"
        "16-84%% bars per variable and population, dashed reference).\n");
}

#define MAXV 32
#define MAXPOP 16

typedef struct popset {
    int n;
    char *name[MAXPOP];
    uint8_t *sel[MAXPOP]; // per query
} popset;

static void fmt_num(FILE *f, double v) {
    if (isnan(v)) fprintf(f, "null");
    else fprintf(f, "%.6g", v);
}

static int write_summary_json(const char *path, char **vars, int nv, const popset *ps,
                              st_local_summary (*sum)[MAXPOP + 1], double alpha, const char *target,
                              const char *given, const char *pre, int k, int perms) {
    FILE *f = fopen(path, "w");
    if (!f) return gn_err(GN_EIO, "%s: cannot write: %s", path, strerror(errno));
    fprintf(f, "{\n  \"target\": \"%s\", \"k\": %d, \"perms\": %d, \"alpha\": %g", target, k, perms, alpha);
    if (given) fprintf(f, ", \"given\": \"%s\"", given);
    if (pre) fprintf(f, ", \"precondition\": \"%s\"", pre);
    fprintf(f, ",\n  \"variables\": {\n");
    for (int v = 0; v < nv; v++) {
        fprintf(f, "    \"%s\": {\n", vars[v]);
        for (int p = 0; p <= ps->n; p++) {
            const st_local_summary *s = &sum[v][p];
            int ext = s->n && s->p_ks_pe < alpha && s->pe[1] > s->pe_perm[1];
            fprintf(f, "      \"%s\": {\"n\": %zu, \"n_undefined\": %zu", p < ps->n ? ps->name[p] : "all",
                    s->n, s->n_nan);
            const char *nm[4] = {"r", "r_perm", "pe", "pe_perm"};
            const double *q[4] = {s->r, s->r_perm, s->pe, s->pe_perm};
            for (int a = 0; a < 4; a++) {
                fprintf(f, ", \"%s_p16_p50_p84\": [", nm[a]);
                for (int j = 0; j < 3; j++) fmt_num(f, q[a][j]), fprintf(f, j < 2 ? ", " : "]");
            }
            fprintf(f, ", \"ks_r\": "), fmt_num(f, s->ks_r);
            fprintf(f, ", \"p_ks_r\": "), fmt_num(f, s->p_ks_r);
            fprintf(f, ", \"ks_pe\": "), fmt_num(f, s->ks_pe);
            fprintf(f, ", \"p_ks_pe\": "), fmt_num(f, s->p_ks_pe);
            if (perms > 1) fprintf(f, ", \"frac_p_pe_below_0.05\": "), fmt_num(f, s->frac_p05);
            fprintf(f, ", \"external\": %s}%s\n", ext ? "true" : "false", p < ps->n ? "," : "");
        }
        fprintf(f, "    }%s\n", v + 1 < nv ? "," : "");
    }
    fprintf(f, "  }\n}\n");
    if (fclose(f)) return gn_err(GN_EIO, "%s: write failed: %s", path, strerror(errno));
    return GN_OK;
}

int cmd_causal(int argc, char **argv) {
    const char *lat = NULL, *catp = NULL, *target = NULL, *vars_s = NULL, *out = NULL, *given = NULL,
               *pre = NULL;
    const char *by = NULL, *qsplit = "test", *lcols = NULL, *derive[8];
    int n_der = 0;
    long k = 100, perms = 1, seed = 1, threads = 0;
    double alpha = 0.01;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) return cmd_error("%s needs a value", a);
        if (!strcmp(a, "--latent")) lat = v;
        else if (!strcmp(a, "--catalog")) catp = v;
        else if (!strcmp(a, "--target")) target = v;
        else if (!strcmp(a, "--vars")) vars_s = v;
        else if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--given")) given = v;
        else if (!strcmp(a, "--precondition")) pre = v;
        else if (!strcmp(a, "--by")) by = v;
        else if (!strcmp(a, "--query-split")) qsplit = v;
        else if (!strcmp(a, "--latent-cols")) lcols = v;
        else if (!strcmp(a, "--derive") && n_der < 8) derive[n_der++] = v;
        else if (!strcmp(a, "--alpha")) {
            char *e;
            alpha = strtod(v, &e);
            if (*e || !(alpha > 0 && alpha < 1))
                return cmd_error("--alpha '%s' is not a number in (0, 1)", v);
        } else if (!strcmp(a, "--k")) {
            if (cmd_parse_int(a, v, 3, 100000, &k)) return 1;
        } else if (!strcmp(a, "--perms")) {
            if (cmd_parse_int(a, v, 1, 100000, &perms)) return 1;
        } else if (!strcmp(a, "--seed")) {
            if (cmd_parse_int(a, v, 0, 0x7fffffff, &seed)) return 1;
        } else if (!strcmp(a, "--threads")) {
            if (cmd_parse_int(a, v, 0, 1024, &threads)) return 1;
        } else return cmd_error("causal: unknown option '%s' (see `galnn help causal`)", a);
        i++;
    }
    if (!lat || !catp || !target || !vars_s || !out)
        return cmd_error("causal: --latent, --catalog, --target, --vars and --out are required");
    int want_split = !strcmp(qsplit, "all") ? -2 : io_split_parse(qsplit);
    if (want_split == -1)
        return cmd_error("causal: --query-split '%s' is not train, val, test or all", qsplit);
    gn_set_threads((int)threads);

    io_catalog L, C;
    memset(&L, 0, sizeof L), memset(&C, 0, sizeof C);
    io_catalog_opts ro = {0, 1};
    int rc = 1;
    io_id_index cix = {0};
    double *S = NULL, *dist = NULL, *y = NULL, *xv[MAXV] = {0}, *cv = NULL, *gv = NULL;
    uint32_t *lrow = NULL, *crow = NULL, *ref = NULL, *qry = NULL, *nb = NULL, *nbr = NULL;
    uint8_t *lsplit = NULL, *csplit = NULL;
    st_local_row *rows[MAXV] = {0};
    popset ps = {0};
    char vbuf[1024], *vars[MAXV], path[4096];
    st_local_summary(*sum)[MAXPOP + 1] = NULL;
    snprintf(vbuf, sizeof vbuf, "%s", vars_s);
    int nv = io_split_list(vbuf, vars, MAXV);
    if (nv < 1) return cmd_error("causal: --vars lists no variable");

    if (io_catalog_read(lat, &ro, &L) || io_catalog_read(catp, &ro, &C)) {
        cmd_error("causal: %s", gn_errmsg());
        goto out;
    }
    for (int d = 0; d < n_der; d++)
        if (io_catalog_derive_spec(&C, derive[d])) {
            cmd_error("causal: --derive: %s", gn_errmsg());
            goto out;
        }
    // latent columns
    const double *lc[64];
    int dS = 0;
    if (lcols) {
        char b[2048], *it[64];
        snprintf(b, sizeof b, "%s", lcols);
        int m = io_split_list(b, it, 64);
        for (int j = 0; j < m; j++)
            if (!(lc[dS++] = io_catalog_values(&L, it[j]))) {
                cmd_error("causal: %s", gn_errmsg());
                goto out;
            }
    } else
        for (int j = 0; j < L.n_cols && dS < 64; j++)
            if (j != L.id_col && j != L.split_col && L.cols[j].numeric) lc[dS++] = L.cols[j].v;
    if (dS < 1) {
        cmd_error("causal: %s has no numeric latent columns", lat);
        goto out;
    }
    // catalog columns
    const double *ty = io_catalog_values(&C, target), *tc = given ? io_catalog_values(&C, given) : NULL;
    const double *tg = pre ? io_catalog_values(&C, pre) : NULL, *tx[MAXV];
    if (!ty || (given && !tc) || (pre && !tg)) {
        cmd_error("causal: %s", gn_errmsg());
        goto out;
    }
    for (int v = 0; v < nv; v++)
        if (!(tx[v] = io_catalog_values(&C, vars[v]))) {
            cmd_error("causal: %s", gn_errmsg());
            goto out;
        }
    int bycol = by ? io_catalog_find(&C, by) : -1;
    if (by && bycol < 0) {
        cmd_error("causal: --by: %s has no column '%s'", catp, by);
        goto out;
    }
    // join and split
    size_t nL = L.n_rows;
    lrow = gn_malloc(sizeof(uint32_t) * (nL + 1)), crow = gn_malloc(sizeof(uint32_t) * (nL + 1));
    lsplit = gn_malloc(nL + 1), csplit = gn_malloc(C.n_rows + 1);
    S = gn_malloc(sizeof(double) * (nL + 1) * (size_t)dS);
    if (!lrow || !crow || !lsplit || !csplit || !S || io_id_index_build(&C, &cix)) {
        cmd_error("causal: %s", gn_errmsg());
        goto out;
    }
    // splits: S.csv's column, else the catalog's column, else the id hash (as galnn train/eval)
    if ((L.split_col >= 0 && io_catalog_splits(&L, 0.8, 0.1, lsplit)) ||
        io_catalog_splits(&C, 0.8, 0.1, csplit)) {
        cmd_error("causal: %s", gn_errmsg());
        goto out;
    }
    size_t n = 0, n_null = 0, n_ref = 0, n_q = 0;
    for (size_t r = 0; r < nL; r++) {
        long c = io_id_find(&cix, io_catalog_id(&L, r));
        if (c < 0) {
            cmd_error("causal: id '%s' (row %zu of %s) is not in %s", io_catalog_id(&L, r), r + 1, lat, catp);
            goto out;
        }
        int ok = 1;
        for (int j = 0; j < dS; j++) ok &= isfinite(lc[j][r]);
        if (!ok) {
            n_null++;
            continue;
        }
        for (int j = 0; j < dS; j++) S[n * dS + j] = lc[j][r];
        lrow[n] = (uint32_t)r, crow[n] = (uint32_t)c;
        lsplit[n] = L.split_col >= 0 ? lsplit[r] : csplit[c];
        n++;
    }
    ref = gn_malloc(sizeof(uint32_t) * (n + 1)), qry = gn_malloc(sizeof(uint32_t) * (n + 1));
    if (!ref || !qry) goto oom;
    for (size_t i = 0; i < n; i++) {
        if (lsplit[i] == IO_SPLIT_TRAIN) ref[n_ref++] = (uint32_t)i;
        if (want_split == -2 || lsplit[i] == want_split) qry[n_q++] = (uint32_t)i;
    }
    if (n_ref <= (size_t)k) {
        cmd_error("causal: %zu training galaxies with a latent vector, need more than K = %ld", n_ref, k);
        goto out;
    }
    if (!n_q) {
        cmd_error("causal: no query galaxies in the %s split", qsplit);
        goto out;
    }
    // kNN among the training galaxies
    double *Sr = gn_malloc(sizeof(double) * n_ref * dS), *Sq = gn_malloc(sizeof(double) * n_q * dS);
    nb = gn_malloc(sizeof(uint32_t) * n_q * k), dist = gn_malloc(sizeof(double) * n_q * k);
    if (!Sr || !Sq || !nb || !dist) {
        free(Sr), free(Sq);
        goto oom;
    }
    for (size_t i = 0; i < n_ref; i++) memcpy(Sr + i * dS, S + (size_t)ref[i] * dS, sizeof(double) * dS);
    for (size_t i = 0; i < n_q; i++) memcpy(Sq + i * dS, S + (size_t)qry[i] * dS, sizeof(double) * dS);
    double t0 = gn_now();
    int e = st_knn(Sr, n_ref, Sq, n_q, dS, (int)k, ST_L2, 0, nb, dist);
    free(Sr), free(Sq);
    if (e) {
        cmd_error("causal: %s", gn_errmsg());
        goto out;
    }
    fprintf(stderr,
            "causal: %zu query galaxies, %zu training galaxies in a %d-D latent space; K = %ld neighbours "
            "(%.1f s)\n",
            n_q, n_ref, dS, k, gn_now() - t0);
    if (n_null)
        fprintf(stderr, "causal: %zu rows of %s with a null latent component left out\n", n_null, lat);
    // values of the reference galaxies
    y = gn_malloc(sizeof(double) * n_ref);
    if (tc) cv = gn_malloc(sizeof(double) * n_ref);
    if (tg) gv = gn_malloc(sizeof(double) * n_ref);
    if (!y || (tc && !cv) || (tg && !gv)) goto oom;
    for (size_t i = 0; i < n_ref; i++) {
        uint32_t c = crow[ref[i]];
        y[i] = ty[c];
        if (cv) cv[i] = tc[c];
        if (gv) gv[i] = tg[c];
    }
    // populations of the query galaxies
    if (bycol >= 0)
        for (size_t i = 0; i < n_q; i++) {
            const io_column *col = &C.cols[bycol];
            uint32_t c = crow[qry[i]];
            const char *val = col->s[c] && *col->s[c] ? col->s[c] : "(null)";
            int p = 0;
            while (p < ps.n && strcmp(ps.name[p], val)) p++;
            if (p == ps.n) {
                if (ps.n == MAXPOP) {
                    cmd_error("causal: --by %s has more than %d distinct values", by, MAXPOP);
                    goto out;
                }
                ps.name[p] = gn_strdup(val), ps.sel[p] = gn_calloc(n_q, 1), ps.n++;
                if (!ps.name[p] || !ps.sel[p]) goto oom;
            }
            ps.sel[p][i] = 1;
        }
    sum = gn_calloc((size_t)nv, sizeof *sum);
    if (!sum) goto oom;
    st_local_opts o = {(int)perms, 10, (uint64_t)seed, C.null_threshold > 0 ? C.null_threshold : 9000};
    for (int v = 0; v < nv; v++) {
        xv[v] = gn_malloc(sizeof(double) * n_ref), rows[v] = gn_malloc(sizeof(st_local_row) * n_q);
        if (!xv[v] || !rows[v]) goto oom;
        for (size_t i = 0; i < n_ref; i++) xv[v][i] = tx[v][crow[ref[i]]];
        o.seed = (uint64_t)seed * 1000003u + (uint64_t)v; // a stream per variable
        if (st_local_test(nb, n_q, (int)k, y, xv[v], cv, gv, &o, rows[v])) {
            cmd_error("causal: %s", gn_errmsg());
            goto out;
        }
        for (int p = 0; p <= ps.n; p++)
            if (st_local_summarize(rows[v], n_q, p < ps.n ? ps.sel[p] : NULL, &sum[v][p])) {
                cmd_error("causal: %s: %s", vars[v], gn_errmsg());
                goto out;
            }
    }
    // outputs
    if (mkdir(out, 0777) && errno != EEXIST) {
        cmd_error("causal: cannot create %s: %s", out, strerror(errno));
        goto out;
    }
    snprintf(path, sizeof path, "%s/local.csv", out);
    FILE *f = fopen(path, "w");
    if (!f) {
        cmd_error("causal: cannot write %s: %s", path, strerror(errno));
        goto out;
    }
    fprintf(f, "id%s", bycol >= 0 ? "," : "");
    if (bycol >= 0) fprintf(f, "%s", by);
    for (int v = 0; v < nv; v++)
        fprintf(f, ",r_%s,r_perm_%s,pe_%s,pe_perm_%s,p_r_%s,p_pe_%s,n_%s", vars[v], vars[v], vars[v], vars[v],
                vars[v], vars[v], vars[v]);
    fprintf(f, "\n");
    for (size_t i = 0; i < n_q; i++) {
        fprintf(f, "%s", io_catalog_id(&L, lrow[qry[i]]));
        if (bycol >= 0) {
            const char *s = C.cols[bycol].s[crow[qry[i]]];
            fprintf(f, ",%s", s ? s : "");
        }
        for (int v = 0; v < nv; v++) {
            const st_local_row *r = &rows[v][i];
            fprintf(f, ",%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%d", r->r, r->r_perm, r->pe, r->pe_perm, r->p_r,
                    r->p_pe, r->n_valid);
        }
        fprintf(f, "\n");
    }
    if (fclose(f)) {
        cmd_error("causal: write failed on %s", path);
        goto out;
    }
    snprintf(path, sizeof path, "%s/summary.json", out);
    if (write_summary_json(path, vars, nv, &ps, sum, alpha, target, given, pre, (int)k, (int)perms)) {
        cmd_error("causal: %s", gn_errmsg());
        goto out;
    }
    // figures
    for (int v = 0; v < nv; v++) {
        io_hist h[MAXPOP + 2];
        int nh = 0;
        double *rp = gn_malloc(sizeof(double) * n_q), *rr[MAXPOP + 1] = {0};
        if (!rp) goto oom;
        for (size_t i = 0; i < n_q; i++) rp[i] = rows[v][i].r_perm;
        h[nh++] = (io_hist){"permuted (reference)", rp, n_q, 1};
        int np = ps.n ? ps.n : 1;
        for (int p = 0; p < np; p++) {
            rr[p] = gn_malloc(sizeof(double) * n_q);
            if (!rr[p]) break;
            size_t m = 0;
            for (size_t i = 0; i < n_q; i++)
                if (!ps.n || ps.sel[p][i]) rr[p][m++] = rows[v][i].r;
            h[nh++] = (io_hist){ps.n ? ps.name[p] : "all", rr[p], m, 0};
        }
        char title[256];
        snprintf(title, sizeof title, "local r(%s%s, %s%s)%s%s", target, given ? "|c" : "", vars[v],
                 given ? "|c" : "", given ? ", c = " : "", given ? given : "");
        snprintf(path, sizeof path, "%s/r_%s.png", out, vars[v]);
        int pe = io_plot_hists(path, title, "Pearson r over the K nearest neighbours", h, nh, 40, -1, 1);
        free(rp);
        for (int p = 0; p < np; p++) free(rr[p]);
        if (pe) fprintf(stderr, "causal: warning: %s\n", gn_errmsg());
    }
    {
        int ng = ps.n + 1;
        io_errbars g[MAXPOP + 1];
        double *buf = gn_malloc(sizeof(double) * 3 * (size_t)nv * ng), ref_all = 0;
        if (!buf) goto oom;
        for (int p = 0; p < ng; p++) {
            int pi = p < ps.n ? p : ps.n; // "all" last
            double *m = buf + (size_t)3 * nv * p;
            for (int v = 0; v < nv; v++)
                m[v] = sum[v][pi].pe[1], m[nv + v] = sum[v][pi].pe[0], m[2 * nv + v] = sum[v][pi].pe[2];
            g[p] = (io_errbars){pi < ps.n ? ps.name[pi] : "all", m, m + nv, m + 2 * nv};
        }
        for (int v = 0; v < nv; v++) ref_all += sum[v][ps.n].pe_perm[1] / nv;
        char title[256];
        snprintf(title, sizeof title, "predictive efficiency of %s%s%s (median, 16-84%%)", target,
                 given ? " given " : "", given ? given : "");
        snprintf(path, sizeof path, "%s/pe.png", out);
        if (io_plot_errorbars(path, title, "PE (local R^2 of a quadratic fit)", (const char *const *)vars, nv,
                              ps.n ? g : g + 0, ps.n ? ng : 1, ref_all, "permuted median"))
            fprintf(stderr, "causal: warning: %s\n", gn_errmsg());
        free(buf);
    }
    // table
    printf("%-16s %-12s %6s  %-22s %-22s %-9s %s\n", "variable", "population", "n", "r  16/50/84",
           "PE 16/50/84", "KS p(PE)", "external?");
    for (int v = 0; v < nv; v++)
        for (int p = 0; p <= ps.n; p++) {
            const st_local_summary *s = &sum[v][p];
            int ext = s->n && s->p_ks_pe < alpha && s->pe[1] > s->pe_perm[1];
            printf("%-16s %-12s %6zu  %6.3f %6.3f %6.3f   %6.3f %6.3f %6.3f   %-9.2g %s\n", vars[v],
                   p < ps.n ? ps.name[p] : "all", s->n, s->r[0], s->r[1], s->r[2], s->pe[0], s->pe[1],
                   s->pe[2], s->p_ks_pe, ext ? "yes" : "no");
        }
    printf(
        "reference (target permuted among the neighbours): median PE %.4f; alpha = %g\nwrote %s/local.csv, "
        "summary.json, r_*.png, pe.png\n",
        sum[0][ps.n].pe_perm[1], alpha, out);
    rc = 0;
    goto out;
oom:
    cmd_error("causal: out of memory");
out:
    for (int v = 0; v < MAXV; v++) free(xv[v]), free(rows[v]);
    for (int p = 0; p < ps.n; p++) free(ps.name[p]), free(ps.sel[p]);
    free(S), free(dist), free(y), free(cv), free(gv), free(lrow), free(crow), free(ref), free(qry), free(nb),
        free(nbr);
    free(lsplit), free(csplit), free(sum);
    io_id_index_free(&cix);
    io_catalog_free(&L), io_catalog_free(&C);
    return rc;
}
