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
#include "../common/gn_mpi.h"
#include "pipeline/run.h"
#include "../stats/local.h"
#include "cmd.h"
#include "flags.h"
#include "pipeline/opts.h"

static void causal_usage(void) {
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
    if (isnan(v))
        fprintf(f, "null");
    else
        fprintf(f, "%.6g", v);
}

// X is 'external' (information the latent space lacks) when PE's KS test against the permutation
// reference passes and its median exceeds the reference's; -1: undefined (no galaxy had enough valid
// neighbours, so there is nothing to test — never reported as "not external").
static int external(const st_local_summary *s, double alpha) {
    if (!s->n || isnan(s->p_ks_pe) || isnan(s->pe[1])) return -1;
    return s->p_ks_pe < alpha && s->pe[1] > s->pe_perm[1];
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
            int ext = external(s, alpha);
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
            fprintf(f, ", \"external\": %s}%s\n",
                    ext < 0 ? "null"
                    : ext   ? "true"
                            : "false",
                    p < ps->n ? "," : "");
        }
        fprintf(f, "    }%s\n", v + 1 < nv ? "," : "");
    }
    fprintf(f, "  }\n}\n");
    if (fclose(f)) return gn_err(GN_EIO, "%s: write failed: %s", path, strerror(errno));
    return GN_OK;
}

#define CLI causal_cli
static const cmd_flag causal_flags[] = {
    F_STR("--latent", latent, "S.csv", "the latent vectors (id, optional split, components)"),
    F_STR("--catalog", catalog, "CAT.csv", "the catalog, joined by id"),
    F_STR("--target", target, "COL", "the target column"),
    F_STR("--vars", vars, "A,B,...", "the candidate variables"),
    F_OUT(out, "DIR", "where the tables and figures go"),
    F_STR("--given", given, "C", "residualise target and X on C first"),
    F_STR("--precondition", pre, "G", "residualise everything on G before that"),
    F_INT("--k", k, 5, 100000, "K", "neighbours (a galaxy needs min(K, 10) with valid values)"),
    F_INT("--perms", perms, 1, 100000, "B", "permutations per galaxy (> 1: p-values)"),
    F_STR("--by", by, "COL", "populations by this catalog column"),
    F_STR("--query-split", qsplit, "NAME", "query galaxies: test, val, train or all"),
    F_STR("--latent-cols", lcols, "COLS", "the latent components (default: numeric columns)"),
    F_DBL("--alpha", alpha, 1e-300, 0.999999, "A", "KS level for 'external'"),
    F_SEED(seed, "permutation seed"),
    F_STRS("--derive", derive, "NAME=EXPR", "add a catalog column (repeatable)"),
    F_THREADS(threads),
    F_END};

void causal_defaults(void *p) {
    causal_cli *o = p;
    o->qsplit = "test", o->k = 100, o->perms = 1, o->seed = 1, o->alpha = 0.01;
}

// The state of one causal analysis: the joined latent table and catalog,
// reference (training) and query galaxies, their neighbours and the results.
typedef struct causal_job {
    const causal_cli *o;
    io_catalog L, C;
    io_id_index cix;
    char vbuf[1024], *vars[MAXV];
    int nv, dS, bycol;
    const double *lc[64], *ty, *tc, *tg, *tx[MAXV];
    size_t n, n_null, n_ref, n_q, q_lo, q_hi; // MPI: this rank's block of the query galaxies
    double *S, *dist, *y, *xv[MAXV], *cv, *gv;
    uint32_t *lrow, *crow, *ref, *qry, *nb;
    uint8_t *lsplit, *csplit;
    st_local_row *rows[MAXV];
    popset ps;
    st_local_summary (*sum)[MAXPOP + 1];
} causal_job;

static void job_free(causal_job *J) {
    for (int v = 0; v < MAXV; v++) free(J->xv[v]), free(J->rows[v]);
    for (int p = 0; p < J->ps.n; p++) free(J->ps.name[p]), free(J->ps.sel[p]);
    free(J->S), free(J->dist), free(J->y), free(J->cv), free(J->gv), free(J->lrow), free(J->crow);
    free(J->ref), free(J->qry), free(J->nb), free(J->lsplit), free(J->csplit), free(J->sum);
    io_id_index_free(&J->cix);
    io_catalog_free(&J->L), io_catalog_free(&J->C);
}

// The two tables, their derived columns, the latent components and the
// catalog columns the analysis names.
static int load_columns(causal_job *J) {
    const causal_cli *o = J->o;
    io_catalog_opts ro = {0, 1, NULL};
    int rc;
    if ((rc = io_catalog_read(o->latent, &ro, &J->L)) || (rc = io_catalog_read(o->catalog, &ro, &J->C)))
        return rc;
    for (int d = 0; d < o->derive.n; d++)
        if ((rc = io_catalog_derive_spec(&J->C, o->derive.v[d]))) return gn_err_prefix(rc, "--derive: ");
    io_catalog *L = &J->L, *C = &J->C;
    if (o->lcols) {
        char b[2048], *it[64];
        snprintf(b, sizeof b, "%s", o->lcols);
        int m = io_split_list(b, it, 64);
        for (int j = 0; j < m; j++)
            if (!(J->lc[J->dS++] = io_catalog_values(L, it[j]))) return GN_EINVAL;
    } else
        for (int j = 0; j < L->n_cols && J->dS < 64; j++)
            if (j != L->id_col && j != L->split_col && L->cols[j].numeric) J->lc[J->dS++] = L->cols[j].v;
    if (J->dS < 1) return gn_err(GN_EINVAL, "%s has no numeric latent columns", o->latent);
    J->ty = io_catalog_values(C, o->target);
    J->tc = o->given ? io_catalog_values(C, o->given) : NULL;
    J->tg = o->pre ? io_catalog_values(C, o->pre) : NULL;
    if (!J->ty || (o->given && !J->tc) || (o->pre && !J->tg)) return GN_EINVAL;
    for (int v = 0; v < J->nv; v++)
        if (!(J->tx[v] = io_catalog_values(C, J->vars[v]))) return GN_EINVAL;
    J->bycol = o->by ? io_catalog_find(C, o->by) : -1;
    if (o->by && J->bycol < 0) return gn_err(GN_EINVAL, "--by: %s has no column '%s'", o->catalog, o->by);
    return GN_OK;
}

// Latent rows joined to the catalog by id (rows with a null component left
// out) and their splits: S.csv's column, else the catalog's, else the id hash.
static int join_split(causal_job *J) {
    const causal_cli *o = J->o;
    size_t nL = J->L.n_rows;
    int dS = J->dS, rc;
    J->lrow = gn_malloc(sizeof(uint32_t) * (nL + 1)), J->crow = gn_malloc(sizeof(uint32_t) * (nL + 1));
    J->lsplit = gn_malloc(nL + 1), J->csplit = gn_malloc(J->C.n_rows + 1);
    J->S = gn_malloc(sizeof(double) * (nL + 1) * (size_t)dS);
    if (!J->lrow || !J->crow || !J->lsplit || !J->csplit || !J->S) return GN_ENOMEM;
    if ((rc = io_id_index_build(&J->C, &J->cix))) return rc;
    if ((J->L.split_col >= 0 && (rc = io_catalog_splits(&J->L, RUN_TRAIN_FRAC, RUN_VAL_FRAC, J->lsplit))) ||
        (rc = io_catalog_splits(&J->C, RUN_TRAIN_FRAC, RUN_VAL_FRAC, J->csplit)))
        return rc;
    for (size_t r = 0; r < nL; r++) {
        long c = io_id_find(&J->cix, io_catalog_id(&J->L, r));
        if (c < 0)
            return gn_err(GN_EINVAL, "id '%s' (row %zu of %s) is not in %s", io_catalog_id(&J->L, r), r + 1,
                          o->latent, o->catalog);
        int ok = 1;
        for (int j = 0; j < dS; j++) ok &= isfinite(J->lc[j][r]);
        if (!ok) {
            J->n_null++;
            continue;
        }
        for (int j = 0; j < dS; j++) J->S[J->n * dS + j] = J->lc[j][r];
        J->lrow[J->n] = (uint32_t)r, J->crow[J->n] = (uint32_t)c;
        J->lsplit[J->n] = J->L.split_col >= 0 ? J->lsplit[r] : J->csplit[c];
        J->n++;
    }
    return GN_OK;
}

// Reference (training) and query galaxies, and the K nearest references of each query.
static int neighbours(causal_job *J, int want_split) {
    const causal_cli *o = J->o;
    size_t n = J->n, dS = (size_t)J->dS, k = (size_t)o->k;
    J->ref = gn_malloc(sizeof(uint32_t) * (n + 1)), J->qry = gn_malloc(sizeof(uint32_t) * (n + 1));
    if (!J->ref || !J->qry) return GN_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (J->lsplit[i] == IO_SPLIT_TRAIN) J->ref[J->n_ref++] = (uint32_t)i;
        if (want_split == -2 || J->lsplit[i] == want_split) J->qry[J->n_q++] = (uint32_t)i;
    }
    if (J->n_ref <= k)
        return gn_err(GN_EINVAL, "%zu training galaxies with a latent vector, need more than K = %ld",
                      J->n_ref, o->k);
    if (!J->n_q) return gn_err(GN_EINVAL, "no query galaxies in the %s split", o->qsplit);
    run_rank_block(J->n_q, 1, &J->q_lo, &J->q_hi); // MPI: the neighbours of this rank's query galaxies
    size_t nq = J->q_hi - J->q_lo;
    double *Sr = gn_malloc(sizeof(double) * J->n_ref * dS), *Sq = gn_malloc(sizeof(double) * (nq + 1) * dS);
    J->nb = gn_malloc(sizeof(uint32_t) * (nq + 1) * k), J->dist = gn_malloc(sizeof(double) * (nq + 1) * k);
    int rc = !Sr || !Sq || !J->nb || !J->dist ? GN_ENOMEM : GN_OK;
    for (size_t i = 0; !rc && i < J->n_ref; i++)
        memcpy(Sr + i * dS, J->S + (size_t)J->ref[i] * dS, sizeof(double) * dS);
    for (size_t i = 0; !rc && i < nq; i++)
        memcpy(Sq + i * dS, J->S + (size_t)J->qry[J->q_lo + i] * dS, sizeof(double) * dS);
    double t0 = gn_now();
    if (!rc && nq) rc = st_knn(Sr, J->n_ref, Sq, nq, (int)dS, (int)k, ST_L2, 0, J->nb, J->dist);
    free(Sr), free(Sq);
    if (rc) return rc;
    if (gn_mpi_rank() == 0)
        fprintf(
            stderr,
            "causal: %zu query galaxies, %zu training galaxies in a %zu-D latent space; K = %ld neighbours "
            "(%.1f s%s)\n",
            J->n_q, J->n_ref, dS, o->k, gn_now() - t0, gn_mpi_size() > 1 ? " for rank 0's block" : "");
    if (J->n_null && gn_mpi_rank() == 0)
        fprintf(stderr, "causal: %zu rows of %s with a null latent component left out\n", J->n_null,
                o->latent);
    return GN_OK;
}

// The populations of the query galaxies by the --by column.
static int populations(causal_job *J) {
    popset *ps = &J->ps;
    if (J->bycol < 0) return GN_OK;
    const io_column *col = &J->C.cols[J->bycol];
    for (size_t i = 0; i < J->n_q; i++) {
        uint32_t c = J->crow[J->qry[i]];
        const char *val = col->s[c] && *col->s[c] ? col->s[c] : "(null)";
        int p = 0;
        while (p < ps->n && strcmp(ps->name[p], val)) p++;
        if (p == ps->n) {
            if (ps->n == MAXPOP)
                return gn_err(GN_EINVAL, "--by %s has more than %d distinct values", J->o->by, MAXPOP);
            ps->name[p] = gn_strdup(val), ps->sel[p] = gn_calloc(J->n_q, 1), ps->n++;
            if (!ps->name[p] || !ps->sel[p]) return GN_ENOMEM;
        }
        ps->sel[p][i] = 1;
    }
    return GN_OK;
}

// MPI: every rank's block of the rows (the others' are zero) to every rank, by the ordered sum (x + 0 = x).
static int gather_rows(st_local_row *rows, size_t n) {
    if (gn_mpi_size() < 2) return GN_OK;
    double *v = gn_malloc(sizeof(double) * 7 * (n + 1));
    if (!v) return GN_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const st_local_row *r = &rows[i];
        double *w = v + 7 * i;
        w[0] = r->r, w[1] = r->r_perm, w[2] = r->pe, w[3] = r->pe_perm, w[4] = r->p_r, w[5] = r->p_pe;
        w[6] = r->n_valid;
    }
    int rc = gn_mpi_sum_ordered(v, 7 * n);
    for (size_t i = 0; !rc && i < n; i++) {
        const double *w = v + 7 * i;
        rows[i] = (st_local_row){w[0], w[1], w[2], w[3], w[4], w[5], (int)w[6]};
    }
    free(v);
    return rc;
}

// The local tests per variable and their summaries per population.
static int local_tests(causal_job *J) {
    const causal_cli *o = J->o;
    size_t nr = J->n_ref, nq = J->n_q;
    J->y = gn_malloc(sizeof(double) * nr);
    if (J->tc) J->cv = gn_malloc(sizeof(double) * nr);
    if (J->tg) J->gv = gn_malloc(sizeof(double) * nr);
    J->sum = gn_calloc((size_t)J->nv, sizeof *J->sum);
    if (!J->y || (J->tc && !J->cv) || (J->tg && !J->gv) || !J->sum) return GN_ENOMEM;
    for (size_t i = 0; i < nr; i++) {
        uint32_t c = J->crow[J->ref[i]];
        J->y[i] = J->ty[c];
        if (J->cv) J->cv[i] = J->tc[c];
        if (J->gv) J->gv[i] = J->tg[c];
    }
    st_local_opts so = {(int)o->perms, o->k < 10 ? (int)o->k : 10, (uint64_t)o->seed,
                        J->C.null_threshold > 0 ? J->C.null_threshold : 9000, J->q_lo};
    for (int v = 0; v < J->nv; v++) {
        J->xv[v] = gn_malloc(sizeof(double) * nr), J->rows[v] = gn_calloc(nq + 1, sizeof(st_local_row));
        if (!J->xv[v] || !J->rows[v]) return GN_ENOMEM;
        for (size_t i = 0; i < nr; i++) J->xv[v][i] = J->tx[v][J->crow[J->ref[i]]];
        so.seed = (uint64_t)o->seed * 1000003u + (uint64_t)v; // a stream per variable
        int rc = J->q_hi > J->q_lo ? st_local_test(J->nb, J->q_hi - J->q_lo, (int)o->k, J->y, J->xv[v], J->cv,
                                                   J->gv, &so, J->rows[v] + J->q_lo)
                                   : GN_OK;
        if (!rc) rc = gather_rows(J->rows[v], nq);
        if (rc) return rc;
        for (int p = 0; p <= J->ps.n; p++)
            if ((rc = st_local_summarize(J->rows[v], nq, p < J->ps.n ? J->ps.sel[p] : NULL, &J->sum[v][p])))
                return gn_err_prefix(rc, "%s: ", J->vars[v]);
    }
    return GN_OK;
}

// DIR/local.csv: one row per query galaxy.
static int write_local(const causal_job *J, const char *path) {
    FILE *f = fopen(path, "w");
    if (!f) return gn_err(GN_EIO, "cannot write %s: %s", path, strerror(errno));
    char *const *vars = J->vars;
    fprintf(f, "id%s", J->bycol >= 0 ? "," : "");
    if (J->bycol >= 0) fprintf(f, "%s", J->o->by);
    for (int v = 0; v < J->nv; v++)
        fprintf(f, ",r_%s,r_perm_%s,pe_%s,pe_perm_%s,p_r_%s,p_pe_%s,n_%s", vars[v], vars[v], vars[v], vars[v],
                vars[v], vars[v], vars[v]);
    fprintf(f, "\n");
    for (size_t i = 0; i < J->n_q; i++) {
        fprintf(f, "%s", io_catalog_id(&J->L, J->lrow[J->qry[i]]));
        if (J->bycol >= 0) {
            const char *s = J->C.cols[J->bycol].s[J->crow[J->qry[i]]];
            fprintf(f, ",%s", s ? s : "");
        }
        for (int v = 0; v < J->nv; v++) {
            const st_local_row *r = &J->rows[v][i];
            fprintf(f, ",%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%d", r->r, r->r_perm, r->pe, r->pe_perm, r->p_r,
                    r->p_pe, r->n_valid);
        }
        fprintf(f, "\n");
    }
    if (fclose(f)) return gn_err(GN_EIO, "write failed on %s", path);
    return GN_OK;
}

// DIR/r_<var>.png: local r per population over the permutation reference.
static int plot_r(const causal_job *J, int v) {
    const causal_cli *o = J->o;
    const popset *ps = &J->ps;
    io_hist h[MAXPOP + 2];
    int nh = 0, np = ps->n ? ps->n : 1, rc = GN_OK;
    double *rp = gn_malloc(sizeof(double) * J->n_q), *rr[MAXPOP + 1] = {0};
    if (!rp) return GN_ENOMEM;
    for (size_t i = 0; i < J->n_q; i++) rp[i] = J->rows[v][i].r_perm;
    h[nh++] = (io_hist){"permuted (reference)", rp, J->n_q, 1};
    for (int p = 0; p < np; p++) {
        if (!(rr[p] = gn_malloc(sizeof(double) * J->n_q))) break;
        size_t m = 0;
        for (size_t i = 0; i < J->n_q; i++)
            if (!ps->n || ps->sel[p][i]) rr[p][m++] = J->rows[v][i].r;
        h[nh++] = (io_hist){ps->n ? ps->name[p] : "all", rr[p], m, 0};
    }
    char title[256], path[4096];
    const char *g = o->given;
    snprintf(title, sizeof title, "local r(%s%s, %s%s)%s%s", o->target, g ? "|c" : "", J->vars[v],
             g ? "|c" : "", g ? ", c = " : "", g ? g : "");
    snprintf(path, sizeof path, "%s/r_%s.png", o->out, J->vars[v]);
    if (io_plot_hists(path, title, "Pearson r over the K nearest neighbours (unitless)", h, nh, 40, -1, 1))
        fprintf(stderr, "causal: warning: %s\n", gn_errmsg());
    free(rp);
    for (int p = 0; p < np; p++) free(rr[p]);
    return rc;
}

// DIR/pe.png: median PE with 16-84 % bars per variable and population.
static int plot_pe(const causal_job *J) {
    const causal_cli *o = J->o;
    const popset *ps = &J->ps;
    int ng = ps->n + 1, nv = J->nv;
    io_errbars g[MAXPOP + 1];
    double *buf = gn_malloc(sizeof(double) * 3 * (size_t)nv * ng), ref_all = 0;
    if (!buf) return GN_ENOMEM;
    for (int p = 0; p < ng; p++) {
        int pi = p < ps->n ? p : ps->n; // "all" last
        double *m = buf + (size_t)3 * nv * p;
        for (int v = 0; v < nv; v++)
            m[v] = J->sum[v][pi].pe[1], m[nv + v] = J->sum[v][pi].pe[0], m[2 * nv + v] = J->sum[v][pi].pe[2];
        g[p] = (io_errbars){pi < ps->n ? ps->name[pi] : "all", m, m + nv, m + 2 * nv};
    }
    for (int v = 0; v < nv; v++) ref_all += J->sum[v][ps->n].pe_perm[1] / nv;
    char title[256], path[4096];
    snprintf(title, sizeof title, "predictive efficiency of %s%s%s (median, 16-84%%)", o->target,
             o->given ? " given " : "", o->given ? o->given : "");
    snprintf(path, sizeof path, "%s/pe.png", o->out);
    if (io_plot_errorbars(path, title, "PE: local R^2 of a quadratic fit (unitless)",
                          (const char *const *)J->vars, nv, g, ps->n ? ng : 1, ref_all, "permuted median"))
        fprintf(stderr, "causal: warning: %s\n", gn_errmsg());
    free(buf);
    return GN_OK;
}

static void print_table(const causal_job *J) {
    const popset *ps = &J->ps;
    double alpha = J->o->alpha;
    printf("%-16s %-12s %6s  %-22s %-22s %-9s %s\n", "variable", "population", "n", "r  16/50/84",
           "PE 16/50/84", "KS p(PE)", "external?");
    for (int v = 0; v < J->nv; v++)
        for (int p = 0; p <= ps->n; p++) {
            const st_local_summary *s = &J->sum[v][p];
            int ext = external(s, alpha);
            printf("%-16s %-12s %6zu  %6.3f %6.3f %6.3f   %6.3f %6.3f %6.3f   %-9.2g %s\n", J->vars[v],
                   p < ps->n ? ps->name[p] : "all", s->n, s->r[0], s->r[1], s->r[2], s->pe[0], s->pe[1],
                   s->pe[2], s->p_ks_pe,
                   ext < 0 ? "undefined"
                   : ext   ? "yes"
                           : "no");
        }
    printf(
        "reference (target permuted among the neighbours): median PE %.4f; alpha = %g\nwrote %s/local.csv, "
        "summary.json, r_*.png, pe.png\n",
        J->sum[0][ps->n].pe_perm[1], alpha, J->o->out);
}

static int causal_outputs(causal_job *J) {
    const causal_cli *o = J->o;
    char path[4096];
    int rc;
    if (gn_mpi_rank() > 0) return GN_OK; // MPI: every rank holds the results, rank 0 writes them
    if (mkdir(o->out, 0777) && errno != EEXIST)
        return gn_err(GN_EIO, "cannot create %s: %s", o->out, strerror(errno));
    snprintf(path, sizeof path, "%s/local.csv", o->out);
    if ((rc = write_local(J, path))) return rc;
    snprintf(path, sizeof path, "%s/summary.json", o->out);
    if ((rc = write_summary_json(path, J->vars, J->nv, &J->ps, J->sum, o->alpha, o->target, o->given, o->pre,
                                 (int)o->k, (int)o->perms)))
        return rc;
    for (int v = 0; v < J->nv; v++)
        if ((rc = plot_r(J, v))) return rc;
    if ((rc = plot_pe(J))) return rc;
    print_table(J);
    return GN_OK;
}

int causal_run(const causal_cli *o) {
    if (!o->latent || !o->catalog || !o->target || !o->vars || !o->out)
        return cmd_error("causal: --latent, --catalog, --target, --vars and --out are required");
    int want_split = !strcmp(o->qsplit, "all") ? -2 : io_split_parse(o->qsplit);
    if (want_split == -1)
        return cmd_error("causal: --query-split '%s' is not train, val, test or all", o->qsplit);
    gn_set_threads((int)o->threads);
    causal_job J;
    memset(&J, 0, sizeof J);
    J.o = o;
    snprintf(J.vbuf, sizeof J.vbuf, "%s", o->vars);
    J.nv = io_split_list(J.vbuf, J.vars, MAXV);
    if (J.nv < 1) return cmd_error("causal: --vars lists no variable");
    int rc = load_columns(&J);
    if (!rc) rc = join_split(&J);
    if (!rc) rc = neighbours(&J, want_split);
    if (!rc) rc = populations(&J);
    if (!rc) rc = local_tests(&J);
    if (!rc) rc = causal_outputs(&J);
    if (rc) cmd_error("causal: %s", rc == GN_ENOMEM && !gn_errmsg()[0] ? "out of memory" : gn_errmsg());
    job_free(&J);
    return rc ? 1 : 0;
}

static int causal_run_v(const void *o) { return causal_run(o); }

CMD_DEF(cmd_causal, "causal",
        "local nearest-neighbour tests in a latent space: is a variable's information in it?", causal_usage,
        causal_flags, sizeof(causal_cli), causal_defaults, causal_run_v, -1, NULL);
