// Spectral VAE/CVAE programs (spec/methods.md §4): the model grid (galnn
// spectra-scan) and the latent space's physics (galnn spectra-latents). The
// fit quality and the shared helpers are in apps/pipeline/spec.c; galnn eval
// reports a spectral model's fit, apps/explain.c its attributions.
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../common/gn_common.h"
#include "../io/plot.h"
#include "../io/spectra.h"
#include "../stats/linalg.h"
#include "../stats/mi.h"
#include "cmd.h"
#include "flags.h"
#include "pipeline/run.h"
#include "pipeline/spec_common.h"

static double dn4000(const float *x, const double *wl, int P) {
    double a = 0, b = 0;
    int na = 0, nb = 0;
    for (int j = 0; j < P; j++) {
        double fnu = x[j] * wl[j] * wl[j];
        if (wl[j] >= 4000 && wl[j] <= 4100) a += fnu, na++;
        if (wl[j] >= 3850 && wl[j] <= 3950) b += fnu, nb++;
    }
    return na && nb && b > 0 ? (a / na) / (b / nb) : NAN;
}

// ---- galnn spectra-scan ----

static void scan_usage(void) {
    printf(
        "usage: galnn spectra-scan --config models/specvae.cfg --out DIR [--latents 1..10] [--conditions "
        "none,logmstar,...]\n"
        "                          [--epochs N] [--seed S] [--threads N] [--split val|test] [--catalog CSV] "
        "[SECTION.KEY=VALUE ...]\n\n"
        "Trains the grid of spectral VAE / CVAE models of spec/methods.md §4.4: every latent size of "
        "--latents\n"
        "(a range A..B or a list) with every condition set of --conditions (none: the plain VAE; logmstar: a "
        "CVAE\n"
        "conditioned on that column; a+b: on both). Each model is a normal run directory DIR/runs/COND_dD\n"
        "(configuration = --config with model.latent and model.conditions set); a rerun resumes unfinished "
        "runs\n"
        "from last.npz and skips finished ones, so the scan can be stopped and restarted at any time.\n\n"
        "Each model's best checkpoint is scored on --split (default val) by BIC = k ln n - 2 ln L with k = "
        "latent\n"
        "size + number of conditions and n = spectra. The paper leaves ln L undefined; galnn uses the ELBO "
        "(a lower\n"
        "bound on ln L) of a Gaussian decoder whose variance is fitted to the reconstruction error of one "
        "posterior\n"
        "draw per spectrum: -2 ln L := n P [ln(2 pi s2) + 1] + 2 sum KL_i, with P pixels and s2 the "
        "per-pixel MSE.\n"
        "The KL term charges each latent for the information it carries, so a latent that only memorises "
        "noise\n"
        "raises the BIC. bic_gauss (k ln(nP) + nP[ln(2 pi mse) + 1], the mean reconstruction only) is listed "
        "too.\n\n"
        "Writes DIR/scan.csv, DIR/scan.md (the table) and DIR/bic.png (BIC - min as a heat map, conditions x "
        "latent\n"
        "size, as the paper's Fig. 2).\n");
}

static int parse_latents(const char *s, int *out, int max) {
    int a, b, n = 0, np = 0;
    if (sscanf(s, "%d..%d%n", &a, &b, &np) == 2 && !s[np]) {
        if (a < 1 || b < a || b > 64) return -1;
        for (int k = a; k <= b && n < max; k++) out[n++] = k;
        return n;
    }
    char buf[512], *it[64];
    snprintf(buf, sizeof buf, "%s", s);
    int m = io_split_list(buf, it, 64);
    for (int k = 0; k < m && n < max; k++) {
        char *e;
        long v = strtol(it[k], &e, 10);
        if (*e || v < 1 || v > 64) return -1;
        out[n++] = (int)v;
    }
    return n;
}

static int exists(const char *p) {
    struct stat st;
    return !stat(p, &st);
}

typedef struct scan_cli {
    const char *config, *out, *latents, *conds, *split_name, *catalog;
    long epochs, seed, threads;
    cmd_strs sets;
} scan_cli;

#define CLI scan_cli
static const cmd_flag scan_flags[] = {
    F_STR("--config", config, "FILE", "the spectral VAE configuration (models/specvae.cfg)"),
    F_OUT(out, "DIR", "the scan's directory"),
    F_STR("--latents", latents, "A..B|LIST", "latent sizes"),
    F_STR("--conditions", conds, "SETS", "condition sets: none, a column, a+b, ..."),
    F_SPLIT(split_name, "where the BIC is measured: val or test"),
    F_STR("--catalog", catalog, "CSV", "the catalog ([data] catalog)"),
    F_INT("--epochs", epochs, 1, 1000000, "E", "epochs per model (default: the config's)"),
    F_SEED(seed, "[train] seed"),
    F_THREADS(threads),
    F_END};
#undef CLI

static void scan_defaults(void *p) {
    scan_cli *o = p;
    o->latents = "1..10", o->conds = "none", o->split_name = "val", o->seed = -1;
}

// Train (or resume, or reuse) one model of the grid and score its best checkpoint.
static int scan_one(const scan_cli *o, const char *rdir, const char *cond, int latent, int split,
                    run_specfit *fit) {
    char name[300], dir[4600], last[4700], best[4700], condl[1024];
    snprintf(name, sizeof name, "%s_d%d", cond, latent);
    snprintf(dir, sizeof dir, "%s/%s", rdir, name);
    snprintf(last, sizeof last, "%s/last.npz", dir);
    snprintf(best, sizeof best, "%s/best.npz", dir);
    snprintf(condl, sizeof condl, "%s", cond);
    for (char *p = condl; *p; p++) *p = *p == '+' ? ',' : *p;
    printf("\n== spectra-scan: %s (latent %d, conditions %s) ==\n", name, latent, cond);
    fflush(stdout);
    train_cli t = {0};
    train_defaults(&t);
    t.threads = gn_threads();
    int bad = 0;
    if (exists(last))
        t.resume = last;
    else {
        t.config = o->config, t.out = dir, t.epochs = o->epochs ? o->epochs : -1, t.seed = o->seed;
        bad |= cmd_strs_addf(&t.sets, "model.latent=%d", latent);
        bad |= cmd_strs_addf(&t.sets, "model.conditions=%s", condl);
        if (o->catalog) bad |= cmd_strs_addf(&t.sets, "data.catalog=%s", o->catalog);
        for (int k = 0; k < o->sets.n; k++) bad |= cmd_strs_add(&t.sets, o->sets.v[k]);
    }
    int rc = bad || train_run(&t);
    fflush(stdout);
    if (rc) return cmd_error("spectra-scan: training %s failed (rerun to resume)", name);
    run r;
    nn_ctx c;
    memset(&c, 0, sizeof c);
    cmd_strs cov = {.n = 0};
    if (o->catalog) cmd_strs_addf(&cov, "data.catalog=%s", o->catalog);
    if (run_from_checkpoint(&r, best, cov.v, cov.n, 0, 0) || run_report(&r) != MD_REPORT_SPECTRA ||
        nn_ctx_init(&c, 64u << 20) || run_spec_fit(&r, &c, r.rows[split], r.n_rows[split], fit))
        rc = cmd_error("spectra-scan: %s: %s", best, gn_errmsg()[0] ? gn_errmsg() : "not a spectral VAE");
    if (c.arena.head) nn_ctx_free(&c);
    run_free(&r);
    if (!rc)
        printf("  %s: %s MSE %.4g, KL %.2f nats/spectrum, BIC %.1f\n", name, o->split_name, fit->mse_z,
               fit->kl, fit->bic);
    return rc;
}

// DIR/scan.csv and DIR/scan.md, and the table on screen; bi: the best model.
static int scan_table(const scan_cli *o, char **C, int ncs, const int *L, int nl, const run_specfit *fit,
                      double mn, int bi) {
    char p[4400];
    snprintf(p, sizeof p, "%s/scan.csv", o->out);
    FILE *f = fopen(p, "w"), *md;
    snprintf(p, sizeof p, "%s/scan.md", o->out);
    md = fopen(p, "w");
    if (!f || !md) {
        if (f) fclose(f);
        if (md) fclose(md);
        return cmd_error("spectra-scan: cannot write %s: %s", p, strerror(errno));
    }
    fprintf(f, "conditions,latent,k,n,mse_mu,mse_z,kl,neg_elbo,bic,bic_gauss,delta_bic\n");
    fprintf(md,
            "# Spectral VAE/CVAE scan (%s split)\n\nBIC = k ln n + n P [ln(2π σ̂²) + 1] + 2 Σ KL "
            "(see `galnn "
            "help spectra-scan`); "
            "ΔBIC from the best model.\n\n| conditions | latent | k | MSE | KL (nats) | BIC | ΔBIC "
            "|\n|---|---|---|---|---|---|---|\n",
            o->split_name);
    printf("\n%-24s %6s %3s %10s %9s %14s %10s\n", "conditions", "latent", "k", "MSE", "KL", "BIC", "dBIC");
    for (int ci = 0; ci < ncs; ci++)
        for (int li = 0; li < nl; li++) {
            const run_specfit *t = &fit[ci * nl + li];
            int k = t->latent + t->n_cond, best = ci * nl + li == bi;
            fprintf(f, "%s,%d,%d,%zu,%.8g,%.8g,%.6g,%.6g,%.4f,%.4f,%.4f\n", C[ci], L[li], k, t->n, t->mse_mu,
                    t->mse_z, t->kl, t->nelbo, t->bic, t->bic_gauss, t->bic - mn);
            fprintf(md, "| %s | %d | %d | %.4g | %.2f | %.1f | %s%.1f%s |\n", C[ci], L[li], k, t->mse_z,
                    t->kl, t->bic, best ? "**" : "", t->bic - mn, best ? "**" : "");
            printf("%-24s %6d %3d %10.4g %9.2f %14.1f %10.1f%s\n", C[ci], L[li], k, t->mse_z, t->kl, t->bic,
                   t->bic - mn, best ? "  <- best" : "");
        }
    fprintf(md, "\nBest: conditions %s, latent %d.\n", C[bi / nl], L[bi % nl]);
    int bad = fclose(f) | fclose(md);
    return bad ? cmd_error("spectra-scan: write failed in %s", o->out) : 0;
}

// DIR/bic.png: BIC - min as a heat map, conditions x latent size.
static void scan_plot(const scan_cli *o, char **C, int ncs, const int *L, int nl, const run_specfit *fit,
                      double mn) {
    double *dv = malloc(sizeof(double) * nl * ncs);
    char lab[64][16], p[4400];
    const char *cols[64], *rows[32];
    for (int li = 0; li < nl; li++) snprintf(lab[li], sizeof lab[li], "%d", L[li]), cols[li] = lab[li];
    for (int ci = 0; ci < ncs; ci++) rows[ci] = C[ci];
    for (int k = 0; dv && k < nl * ncs; k++) dv[k] = fit[k].bic - mn;
    snprintf(p, sizeof p, "%s/bic.png", o->out);
    if (!dv || io_plot_heatmap(p, "BIC - min(BIC) of the spectral VAE/CVAE grid", "latent size (dimensions)",
                               "conditions", rows, ncs, cols, nl, dv, "%.0f"))
        fprintf(stderr, "galnn: warning: %s\n", gn_errmsg());
    free(dv);
}

static int scan_run(const void *p) {
    const scan_cli o = *(const scan_cli *)p;
    if (!o.config || !o.out) return cmd_error("spectra-scan: --config and --out are required");
    int L[64], nl = parse_latents(o.latents, L, 64);
    if (nl < 1)
        return cmd_error("spectra-scan: --latents '%s': give A..B or a list of sizes 1..64", o.latents);
    char cbuf[1024], *C[32];
    snprintf(cbuf, sizeof cbuf, "%s", o.conds);
    int ncs = io_split_list(cbuf, C, 32);
    if (ncs < 1) return cmd_error("spectra-scan: --conditions is empty");
    int split = io_split_parse(o.split_name);
    if (split < 0) return cmd_error("spectra-scan: --split '%s' is not train, val or test", o.split_name);
    char rdir[4200];
    snprintf(rdir, sizeof rdir, "%s/runs", o.out);
    if ((mkdir(o.out, 0755) && errno != EEXIST) || (mkdir(rdir, 0755) && errno != EEXIST))
        return cmd_error("spectra-scan: %s: cannot create: %s", rdir, strerror(errno));
    gn_set_threads((int)o.threads);
    run_specfit *fit = calloc((size_t)nl * ncs, sizeof(run_specfit));
    if (!fit) return cmd_error("out of memory");
    int rc = 0, bi = 0;
    for (int ci = 0; ci < ncs && !rc; ci++)
        for (int li = 0; li < nl && !rc; li++)
            rc = scan_one(&o, rdir, C[ci], L[li], split, &fit[ci * nl + li]);
    double mn = INFINITY;
    for (int k = 0; !rc && k < nl * ncs; k++)
        if (fit[k].bic < mn) mn = fit[k].bic, bi = k;
    if (!rc) rc = scan_table(&o, C, ncs, L, nl, fit, mn, bi);
    if (!rc) {
        scan_plot(&o, C, ncs, L, nl, fit, mn);
        printf("\nbest: conditions %s, latent %d (BIC %.1f); wrote %s/scan.csv, scan.md and bic.png\n",
               C[bi / nl], L[bi % nl], mn, o.out);
    }
    free(fit);
    return rc ? 1 : 0;
}

// ---- galnn spectra-latents ----

static void latents_usage(void) {
    printf(
        "usage: galnn spectra-latents --ckpt RUN/best.npz --out DIR [--split test] [--properties a,b,...] "
        "[--k 3]\n"
        "                             [--catalog CSV] [--threads N] [SECTION.KEY=VALUE ...]\n\n"
        "The latent space of a spectral VAE/CVAE (spec/methods.md §4.4):\n"
        "  PCA rotation: the latent means mu of the training spectra are rotated onto their principal axes\n"
        "    D1, D2, ... (explained variance per component). Each axis is oriented so that +D_k makes the\n"
        "    decoded spectrum bluer (more flux in the bluest third of the grid relative to the reddest "
        "third).\n"
        "  MI: KSG mutual information (k = 3, nats) between each D_k and each catalog property on --split,\n"
        "    and Dn4000 measured on the pre-processed spectra (when the grid covers 3850-4100 Å). "
        "Properties:\n"
        "    --properties (default: every numeric catalog column except ids and errors). mi.csv; mi.png "
        "shows\n"
        "    the ten properties with the highest MI (the paper's Fig. 4).\n"
        "  Traversals: decode D = t sigma_k e_k (all other components at 0, conditions at their mean) for\n"
        "    t = -2..2: traversal_Dk.png (Figs. 3/5); for a CVAE also each condition varied by -2..2 "
        "standard\n"
        "    deviations with the latents at 0: traversal_COND.png.\n"
        "Writes DIR/latents.csv (id, D1.., dn4000), pca.csv, mi.csv, the plots and DIR/report.md.\n"
        "`galnn explain` gives the wavelength attributions of each D_k (Fig. 6).\n");
}

typedef struct latents_cli {
    const char *ckpt, *out, *split_name, *props;
    long threads, k;
    cmd_strs sets;
} latents_cli;

#define CLI latents_cli
static const cmd_flag latents_flags[] = {
    F_CKPT(ckpt, "a spectral VAE/CVAE checkpoint"),
    F_OUT(out, "DIR", "where the tables and plots go"),
    F_SPLIT(split_name, "the spectra whose latents are studied"),
    F_STR("--properties", props, "A,B,...", "catalog columns for the MI (default: numeric)"),
    F_INT("--k", k, 1, 100, "K", "KSG neighbours"),
    F_THREADS(threads),
    F_CATALOG(sets, "the catalog, if it moved"),
    F_END};
#undef CLI

// The latent space of one spectral model: rotated latents D (n, d) of the
// split's spectra, their Dn4000, and the MI table (npa properties x d).
typedef struct sljob {
    const latents_cli *o;
    run r;
    int d, P, nc, np, npa, no, order[256];
    size_t n;
    const uint32_t *rows;
    nn_ctx c;
    spec_rot R;
    float *mu;
    double *D, *wl, *d4, *mi;
    char *pb, *pn[256];
    const char *names[257];
} sljob;

static int sl_open(sljob *J, int split) {
    const latents_cli *o = J->o;
    run *r = &J->r;
    if (run_from_checkpoint(r, o->ckpt, o->sets.v, o->sets.n, 0, 1))
        return cmd_error("spectra-latents: %s", gn_errmsg());
    if (run_report(r) != MD_REPORT_SPECTRA)
        return cmd_error("spectra-latents: %s is not a spectral VAE ([model] kind = specvae)", o->ckpt);
    const md_net *m = &r->net;
    J->d = m->svae.sp.latent, J->P = m->svae.sp.pixels, J->nc = m->svae.sp.n_cond;
    J->n = r->n_rows[split], J->rows = r->rows[split];
    if (!J->n) return cmd_error("spectra-latents: the %s split has no usable spectra", o->split_name);
    const run_branch *rb = &r->br[m->lat_x];
    size_t n = J->n;
    J->mu = malloc(sizeof(float) * n * J->d), J->D = malloc(sizeof(double) * n * J->d);
    J->wl = malloc(sizeof(double) * J->P), J->d4 = malloc(sizeof(double) * n);
    if (!J->mu || !J->D || !J->wl || !J->d4 || nn_ctx_init(&J->c, 64u << 20) || spec_pca(r, &J->c, &J->R) ||
        run_embed(r, &J->c, J->rows, n, 0, J->mu))
        return cmd_error("spectra-latents: %s", gn_errmsg());
    spec_rotate(&J->R, J->mu, n, J->D);
    io_spec_log_grid(rb->grid_lo, rb->grid_hi, J->P, J->wl);
    for (size_t i = 0; i < n; i++)
        J->d4[i] =
            dn4000(io_dataset_image(&r->ds[rb->ds], (size_t)r->entry[rb->ds][J->rows[i]]), J->wl, J->P);
    return 0;
}

// latents.csv (id, D1.., dn4000) and pca.csv (the rotation).
static int sl_tables(const sljob *J) {
    char path[4400];
    int d = J->d;
    snprintf(path, sizeof path, "%s/latents.csv", J->o->out);
    FILE *f = fopen(path, "w");
    if (!f) return cmd_error("spectra-latents: %s: %s", path, strerror(errno));
    fprintf(f, "id");
    for (int k = 0; k < d; k++) fprintf(f, ",D%d", k + 1);
    fprintf(f, ",dn4000\n");
    for (size_t i = 0; i < J->n; i++) {
        fprintf(f, "%s", io_catalog_id(&J->r.cat, J->rows[i]));
        for (int k = 0; k < d; k++) fprintf(f, ",%.6g", J->D[i * d + k]);
        fprintf(f, ",%.6g\n", J->d4[i]);
    }
    if (fclose(f)) return cmd_error("spectra-latents: write failed on %s", path);
    snprintf(path, sizeof path, "%s/pca.csv", J->o->out);
    if (!(f = fopen(path, "w"))) return cmd_error("spectra-latents: %s: %s", path, strerror(errno));
    fprintf(f, "component,variance,explained");
    for (int a = 0; a < d; a++) fprintf(f, ",mu%d", a);
    fprintf(f, "\n");
    printf("\nPCA of the training latents (%zu spectra):\n", J->r.n_rows[IO_SPLIT_TRAIN]);
    for (int k = 0; k < d; k++) {
        fprintf(f, "D%d,%.6g,%.6f", k + 1, J->R.var[k], J->R.frac[k]);
        for (int a = 0; a < d; a++) fprintf(f, ",%.6f", J->R.V[a * d + k]);
        fprintf(f, "\n");
        printf("  D%d  explained variance %5.1f %%\n", k + 1, 100 * J->R.frac[k]);
    }
    return fclose(f) ? cmd_error("spectra-latents: write failed on %s", path) : 0;
}

// KSG MI of every rotated latent with every property (and Dn4000); order: by the largest MI.
static int sl_mi(sljob *J) {
    const run *r = &J->r;
    int d = J->d, np = 0;
    size_t n = J->n;
    if (J->o->props) {
        J->pb = gn_strdup(J->o->props);
        np = J->pb ? io_split_list(J->pb, J->pn, 255) : 0;
    } else
        for (int j = 0; j < r->cat.n_cols && np < 255; j++) {
            const io_column *col = &r->cat.cols[j];
            if (j == r->cat.id_col || j == r->cat.split_col || !col->numeric || strstr(col->name, "err") ||
                col->n_null * 2 > r->cat.n_rows)
                continue;
            J->pn[np++] = col->name;
        }
    J->np = np, J->npa = np + 1; // + dn4000
    J->mi = malloc(sizeof(double) * J->npa * d);
    double *xv = malloc(sizeof(double) * n), *yv = malloc(sizeof(double) * n);
    int rc = !J->mi || !xv || !yv ? cmd_error("out of memory") : 0;
    for (int j = 0; !rc && j < J->npa; j++) {
        const double *col = j < np ? io_catalog_values(&r->cat, J->pn[j]) : NULL;
        if (j < np && !col) {
            rc = cmd_error("spectra-latents: --properties: %s", gn_errmsg());
            break;
        }
        J->names[j] = j < np ? J->pn[j] : "dn4000";
        for (int k = 0; k < d; k++) {
            size_t cnt = 0;
            for (size_t i = 0; i < n; i++) {
                double y = j < np ? col[J->rows[i]] : J->d4[i];
                if (isnan(y)) continue;
                xv[cnt] = J->D[i * d + k], yv[cnt++] = y;
            }
            double *v = &J->mi[j * d + k];
            *v = NAN;
            if (cnt > (size_t)J->o->k + 1 && st_mi_ksg(xv, 1, yv, 1, cnt, (int)J->o->k, 1, v)) *v = NAN;
        }
    }
    free(xv), free(yv);
    for (int j = 0; j < J->npa; j++) J->order[J->no++] = j;
    for (int a = 0; !rc && a < J->no; a++)
        for (int b = a + 1; b < J->no; b++) {
            double ma = 0, mb = 0;
            for (int k = 0; k < d; k++)
                ma = fmax(ma, J->mi[J->order[a] * d + k]), mb = fmax(mb, J->mi[J->order[b] * d + k]);
            if (mb > ma) {
                int t = J->order[a];
                J->order[a] = J->order[b], J->order[b] = t;
            }
        }
    return rc;
}

// mi.csv, mi.png and the table of the ten properties most tied to the latents.
static void sl_mi_outputs(const sljob *J) {
    const latents_cli *o = J->o;
    int d = J->d;
    char path[4400];
    snprintf(path, sizeof path, "%s/mi.csv", o->out);
    FILE *f = fopen(path, "w");
    if (f) {
        fprintf(f, "property");
        for (int k = 0; k < d; k++) fprintf(f, ",D%d", k + 1);
        fprintf(f, "\n");
        for (int j = 0; j < J->npa; j++) {
            fprintf(f, "%s", J->names[j]);
            for (int k = 0; k < d; k++) fprintf(f, ",%.5f", J->mi[j * d + k]);
            fprintf(f, "\n");
        }
        fclose(f);
    }
    int top = J->no < 10 ? J->no : 10, ng = d < 6 ? d : 6;
    const char *cats[10];
    double vals[6][10];
    io_bars g[6];
    char gn[6][16];
    for (int a = 0; a < top; a++) cats[a] = J->names[J->order[a]];
    for (int k = 0; k < ng; k++) {
        for (int a = 0; a < top; a++) vals[k][a] = J->mi[J->order[a] * d + k];
        snprintf(gn[k], sizeof gn[k], "D%d", k + 1);
        g[k] = (io_bars){gn[k], vals[k]};
    }
    snprintf(path, sizeof path, "%s/mi.png", o->out);
    if (io_plot_bars(path, "KSG mutual information between the rotated latents and catalog properties",
                     "MI (nats)", cats, top, g, ng))
        fprintf(stderr, "galnn: warning: %s\n", gn_errmsg());
    printf("\nMI (nats, KSG k = %ld, %s split) of the properties most tied to the latents:\n  %-14s", o->k,
           o->split_name, "property");
    for (int k = 0; k < d; k++) {
        char h[16];
        snprintf(h, sizeof h, "D%d", k + 1);
        printf(" %7s", h);
    }
    printf("\n");
    for (int a = 0; a < top; a++) {
        printf("  %-14s", J->names[J->order[a]]);
        for (int k = 0; k < d; k++) printf(" %7.3f", J->mi[J->order[a] * d + k]);
        printf("\n");
    }
}

static void sl_report(const sljob *J) {
    const latents_cli *o = J->o;
    const md_net *m = &J->r.net;
    const run_branch *rb = &J->r.br[m->lat_x];
    int d = J->d, nc = J->nc;
    char path[4400];
    snprintf(path, sizeof path, "%s/report.md", o->out);
    FILE *f = fopen(path, "w");
    if (!f) return;
    fprintf(
        f,
        "# Latent space of %s\n\n%d latent(s), %d condition(s), %d pixels on %g-%g Å.\n\n## PCA rotation\n\n"
        "| component | explained variance |\n|---|---|\n",
        o->ckpt, d, nc, J->P, rb->grid_lo, rb->grid_hi);
    for (int k = 0; k < d; k++) fprintf(f, "| D%d | %.1f %% |\n", k + 1, 100 * J->R.frac[k]);
    fprintf(f, "\n## Mutual information (KSG, k = %ld, nats; %s split, %zu spectra)\n\n| property |", o->k,
            o->split_name, J->n);
    for (int k = 0; k < d; k++) fprintf(f, " D%d |", k + 1);
    fprintf(f, "\n|---|");
    for (int k = 0; k < d; k++) fprintf(f, "---|");
    fprintf(f, "\n");
    for (int a = 0; a < J->no; a++) {
        fprintf(f, "| %s |", J->names[J->order[a]]);
        for (int k = 0; k < d; k++) fprintf(f, " %.3f |", J->mi[J->order[a] * d + k]);
        fprintf(f, "\n");
    }
    fprintf(f, "\n![MI](mi.png)\n\n## Traversals\n\n");
    for (int k = 0; k < d; k++) fprintf(f, "![D%d](traversal_D%d.png)\n", k + 1, k + 1);
    for (int q = 0; q < nc; q++)
        fprintf(f, "![%s](traversal_%s.png)\n", J->r.br[m->lat_a].col_names[q],
                J->r.br[m->lat_a].col_names[q]);
    fclose(f);
}

// Traversals: D = t sigma_k e_k, t = -2..2 (and each condition of a CVAE with the latents at 0).
static int sl_traversals(sljob *J) {
    int d = J->d, nc = J->nc, P = J->P, rc = 0;
    const spec_rot *R = &J->R;
    float *zz = malloc(sizeof(float) * 5 * (d + nc + 1)), *xs = malloc(sizeof(float) * 5 * P);
    float *cz = calloc(5 * (size_t)(nc + 1), sizeof(float));
    double *ys = malloc(sizeof(double) * 5 * P);
    if (!zz || !xs || !cz || !ys) rc = cmd_error("out of memory");
    for (int k = 0; !rc && k < d + nc; k++) {
        io_series s[5];
        char nm[5][48], ttl[200], path[4400];
        for (int t = 0; t < 5; t++) {
            for (int a = 0; a < d; a++) {
                double sd = sqrt(fmax(R->var[k < d ? k : 0], 1e-12));
                zz[t * d + a] = (float)(R->mean[a] + (k < d ? (t - 2) * sd * R->V[a * d + k] : 0));
            }
            for (int q = 0; q < nc; q++) cz[t * nc + q] = k >= d && q == k - d ? (float)(t - 2) : 0;
        }
        if (spec_decode_z(&J->r, &J->c, zz, cz, 5, xs)) {
            rc = cmd_error("spectra-latents: %s", gn_errmsg());
            break;
        }
        const char *what = k < d ? NULL : J->r.br[J->r.net.lat_a].col_names[k - d];
        for (int t = 0; t < 5; t++) {
            for (int j = 0; j < P; j++) ys[t * P + j] = xs[t * P + j];
            if (k < d)
                snprintf(nm[t], sizeof nm[t], "D%d = %+d sigma", k + 1, t - 2);
            else
                snprintf(nm[t], sizeof nm[t], "%s %+d sd", what, t - 2);
            s[t] = (io_series){nm[t], J->wl, ys + t * P, (size_t)P};
        }
        if (k < d)
            snprintf(path, sizeof path, "%s/traversal_D%d.png", J->o->out, k + 1);
        else
            snprintf(path, sizeof path, "%s/traversal_%s.png", J->o->out, what);
        if (k < d)
            snprintf(ttl, sizeof ttl, "decoded spectra along D%d (%.1f %% of the latent variance)", k + 1,
                     100 * R->frac[k]);
        else
            snprintf(ttl, sizeof ttl, "decoded spectra as %s varies (latents at 0)", what);
        if (io_plot_lines(path, ttl, "rest-frame wavelength (Å)", "flux (normalised: median 0.5)", s, 5, 0))
            fprintf(stderr, "galnn: warning: %s\n", gn_errmsg());
    }
    free(zz), free(xs), free(cz), free(ys);
    return rc;
}

static void latents_defaults(void *p) {
    latents_cli *o = p;
    o->split_name = "test", o->k = 3;
}

static int latents_run(const void *p) {
    const latents_cli o = *(const latents_cli *)p;
    int split = cmd_ckpt_out("spectra-latents", o.ckpt, o.out, o.split_name, o.threads);
    if (split < 0) return 1;
    sljob J;
    memset(&J, 0, sizeof J);
    J.o = &o;
    int rc = sl_open(&J, split) || sl_tables(&J) || sl_mi(&J);
    if (!rc) sl_mi_outputs(&J), sl_report(&J);
    if (!rc) rc = sl_traversals(&J);
    if (!rc)
        printf("\nwrote %s/latents.csv, pca.csv, mi.csv, mi.png, traversal_*.png and report.md\n", o.out);
    if (J.c.arena.head) nn_ctx_free(&J.c);
    free(J.mu), free(J.D), free(J.wl), free(J.d4), free(J.mi), free(J.pb);
    run_free(&J.r);
    return rc ? 1 : 0;
}

CMD_DEF(cmd_spectra_scan, "spectra-scan",
        "train the grid of spectral VAE/CVAE models (latent sizes x conditions) and rank them by BIC",
        scan_usage, scan_flags, sizeof(scan_cli), scan_defaults, scan_run, offsetof(scan_cli, sets), NULL);

CMD_DEF(cmd_spectra_latents, "spectra-latents",
        "a spectral VAE's latent space: PCA rotation, MI with catalog properties, traversal spectra",
        latents_usage, latents_flags, sizeof(latents_cli), latents_defaults, latents_run,
        offsetof(latents_cli, sets), NULL);
