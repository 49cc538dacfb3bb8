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

static void print_scan_flags(void);

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

void cmd_spectra_scan_help(void) {
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
        "size, as the paper's Fig. 2).\n\n");
    print_scan_flags();
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

#define SCAN_FLAGS(o)                                                                                        \
    {                                                                                                        \
        F_STR("--config", &(o)->config, "FILE", "the spectral VAE configuration (models/specvae.cfg)"),      \
            F_STR("--out", &(o)->out, "DIR", "the scan's directory"),                                        \
            F_STR("--latents", &(o)->latents, "A..B|LIST", "latent sizes"),                                  \
            F_STR("--conditions", &(o)->conds, "SETS", "condition sets: none, a column, a+b, ..."),          \
            F_STR("--split", &(o)->split_name, "NAME", "where the BIC is measured: val or test"),            \
            F_STR("--catalog", &(o)->catalog, "CSV", "the catalog ([data] catalog)"),                        \
            F_INT("--epochs", &(o)->epochs, 1, 1000000, "E", "epochs per model (default: the config's)"),    \
            F_INT("--seed", &(o)->seed, 0, 0x7fffffff, "S", "[train] seed"), F_THREADS(&(o)->threads), F_END \
    }

static void scan_defaults(scan_cli *o) {
    memset(o, 0, sizeof *o);
    o->latents = "1..10", o->conds = "none", o->split_name = "val", o->seed = -1;
}

static void print_scan_flags(void) {
    scan_cli o;
    scan_defaults(&o);
    o.seed = 0;
    cmd_flag f[] = SCAN_FLAGS(&o);
    cmd_flags_help(f);
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
    train_cli t;
    train_defaults(&t);
    t.threads = gn_threads();
    int bad = 0;
    if (exists(last)) t.resume = last;
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
        printf("  %s: %s MSE %.4g, KL %.2f nats/spectrum, BIC %.1f\n", name, o->split_name, fit->mse_z, fit->kl,
               fit->bic);
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
            "# Spectral VAE/CVAE scan (%s split)\n\nBIC = k ln n + n P [ln(2π σ̂²) + 1] + 2 Σ KL (see `galnn "
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
    if (!dv || io_plot_heatmap(p, "BIC - min(BIC) of the spectral VAE/CVAE grid", "latent size", "conditions",
                               rows, ncs, cols, nl, dv, "%.0f"))
        fprintf(stderr, "galnn: warning: %s\n", gn_errmsg());
    free(dv);
}

int cmd_spectra_scan(int argc, char **argv) {
    scan_cli o;
    scan_defaults(&o);
    cmd_flag ft[] = SCAN_FLAGS(&o);
    if (cmd_flags_parse("spectra-scan", ft, argc, argv, &o.sets)) return 1;
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
        for (int li = 0; li < nl && !rc; li++) rc = scan_one(&o, rdir, C[ci], L[li], split, &fit[ci * nl + li]);
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

void cmd_spectra_latents_help(void) {
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

int cmd_spectra_latents(int argc, char **argv) {
    const char *ckpt = NULL, *out = NULL, *split_name = "test", *props = NULL;
    long threads = 0, kk = 3;
    const char *ov[64];
    char cat_ov[4200];
    int n_ov = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--ckpt")) ckpt = v, i++;
        else if (!strcmp(a, "--out")) out = v, i++;
        else if (!strcmp(a, "--split")) split_name = v, i++;
        else if (!strcmp(a, "--properties")) props = v, i++;
        else if (!strcmp(a, "--catalog")) {
            if (v) snprintf(cat_ov, sizeof cat_ov, "data.catalog=%s", v), ov[n_ov++] = cat_ov;
            i++;
        } else if (!strcmp(a, "--k")) {
            if (cmd_parse_int(a, v, 1, 100, &kk)) return 1;
            i++;
        } else if (!strcmp(a, "--threads")) {
            if (cmd_parse_int(a, v, 0, 1024, &threads)) return 1;
            i++;
        } else if (strchr(a, '=') && a[0] != '-' && n_ov < 63) ov[n_ov++] = a;
        else return cmd_error("spectra-latents: unknown option '%s' (see `galnn help spectra-latents`)", a);
        if (i >= argc) return cmd_error("%s needs a value", a);
    }
    if (!ckpt || !out) return cmd_error("spectra-latents: --ckpt and --out are required");
    int split = io_split_parse(split_name);
    if (split < 0) return cmd_error("spectra-latents: --split '%s' is not train, val or test", split_name);
    if (mkdir(out, 0755) && errno != EEXIST)
        return cmd_error("spectra-latents: %s: cannot create: %s", out, strerror(errno));
    gn_set_threads((int)threads);
    run r;
    if (run_from_checkpoint(&r, ckpt, ov, n_ov, 0, 1))
        return run_free(&r), cmd_error("spectra-latents: %s", gn_errmsg());
    if (run_report(&r) != MD_REPORT_SPECTRA)
        return run_free(&r),
               cmd_error("spectra-latents: %s is not a spectral VAE ([model] kind = specvae)", ckpt);
    const md_net *m = &r.net;
    int d = m->svae.sp.latent, P = m->svae.sp.pixels, nc = m->svae.sp.n_cond, rc = 0;
    const run_branch *rb = &r.br[m->lat_x];
    size_t n = r.n_rows[split];
    const uint32_t *rows = r.rows[split];
    nn_ctx c;
    memset(&c, 0, sizeof c);
    spec_rot R;
    float *mu = malloc(sizeof(float) * (n ? n : 1) * d), *zz = malloc(sizeof(float) * 5 * (d + nc + 1)),
          *xs = malloc(sizeof(float) * 5 * P);
    double *D = malloc(sizeof(double) * (n ? n : 1) * d), *wl = malloc(sizeof(double) * P),
           *d4 = malloc(sizeof(double) * (n ? n : 1));
    double *ys = malloc(sizeof(double) * 5 * P);
    float *cz = calloc(5 * (size_t)(nc + 1), sizeof(float));
    char path[4400];
    FILE *f = NULL;
    if (!n) {
        rc = cmd_error("spectra-latents: the %s split has no usable spectra", split_name);
        goto out;
    }
    if (!mu || !zz || !xs || !D || !wl || !d4 || !ys || !cz || nn_ctx_init(&c, 64u << 20) ||
        spec_pca(&r, &c, &R) || run_embed(&r, &c, rows, n, 0, mu)) {
        rc = cmd_error("spectra-latents: %s", gn_errmsg());
        goto out;
    }
    spec_rotate(&R, mu, n, D);
    io_spec_log_grid(rb->grid_lo, rb->grid_hi, P, wl);
    for (size_t i = 0; i < n; i++)
        d4[i] = dn4000(io_dataset_image(&r.ds[rb->ds], (size_t)r.entry[rb->ds][rows[i]]), wl, P);
    // latents.csv and pca.csv
    snprintf(path, sizeof path, "%s/latents.csv", out);
    if (!(f = fopen(path, "w"))) {
        rc = cmd_error("spectra-latents: %s: %s", path, strerror(errno));
        goto out;
    }
    fprintf(f, "id");
    for (int k = 0; k < d; k++) fprintf(f, ",D%d", k + 1);
    fprintf(f, ",dn4000\n");
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "%s", io_catalog_id(&r.cat, rows[i]));
        for (int k = 0; k < d; k++) fprintf(f, ",%.6g", D[i * d + k]);
        fprintf(f, ",%.6g\n", d4[i]);
    }
    fclose(f);
    snprintf(path, sizeof path, "%s/pca.csv", out);
    if (!(f = fopen(path, "w"))) {
        rc = cmd_error("spectra-latents: %s: %s", path, strerror(errno));
        goto out;
    }
    fprintf(f, "component,variance,explained");
    for (int a = 0; a < d; a++) fprintf(f, ",mu%d", a);
    fprintf(f, "\n");
    printf("\nPCA of the training latents (%zu spectra):\n", r.n_rows[IO_SPLIT_TRAIN]);
    for (int k = 0; k < d; k++) {
        fprintf(f, "D%d,%.6g,%.6f", k + 1, R.var[k], R.frac[k]);
        for (int a = 0; a < d; a++) fprintf(f, ",%.6f", R.V[a * d + k]);
        fprintf(f, "\n");
        printf("  D%d  explained variance %5.1f %%\n", k + 1, 100 * R.frac[k]);
    }
    fclose(f);
    f = NULL;
    // MI with the properties
    {
        char *pb = NULL, *pn[256];
        int np = 0;
        if (props) {
            pb = gn_strdup(props);
            np = pb ? io_split_list(pb, pn, 255) : 0;
        } else
            for (int j = 0; j < r.cat.n_cols && np < 255; j++) {
                const char *nm = r.cat.cols[j].name;
                if (j == r.cat.id_col || j == r.cat.split_col || !r.cat.cols[j].numeric ||
                    strstr(nm, "err") || r.cat.cols[j].n_null * 2 > r.cat.n_rows)
                    continue;
                pn[np++] = (char *)nm;
            }
        int npa = np + 1; // + dn4000
        double *mi = malloc(sizeof(double) * npa * d), *xv = malloc(sizeof(double) * n),
               *yv = malloc(sizeof(double) * n);
        const char **names = malloc(sizeof(char *) * npa);
        if (!mi || !xv || !yv || !names) rc = cmd_error("out of memory");
        for (int j = 0; !rc && j < npa; j++) {
            const double *col = j < np ? io_catalog_values(&r.cat, pn[j]) : NULL;
            if (j < np && !col) {
                rc = cmd_error("spectra-latents: --properties: %s", gn_errmsg());
                break;
            }
            names[j] = j < np ? pn[j] : "dn4000";
            for (int k = 0; k < d; k++) {
                size_t cnt = 0;
                for (size_t i = 0; i < n; i++) {
                    double y = j < np ? col[rows[i]] : d4[i];
                    if (isnan(y)) continue;
                    xv[cnt] = D[i * d + k], yv[cnt++] = y;
                }
                mi[j * d + k] = NAN;
                if (cnt > (size_t)kk + 1 && st_mi_ksg(xv, 1, yv, 1, cnt, (int)kk, 1, &mi[j * d + k]))
                    mi[j * d + k] = NAN;
            }
        }
        if (!rc) {
            snprintf(path, sizeof path, "%s/mi.csv", out);
            if ((f = fopen(path, "w"))) {
                fprintf(f, "property");
                for (int k = 0; k < d; k++) fprintf(f, ",D%d", k + 1);
                fprintf(f, "\n");
                for (int j = 0; j < npa; j++) {
                    fprintf(f, "%s", names[j]);
                    for (int k = 0; k < d; k++) fprintf(f, ",%.5f", mi[j * d + k]);
                    fprintf(f, "\n");
                }
                fclose(f);
                f = NULL;
            }
            // the ten properties with the highest MI with any component
            int order[256], no = 0;
            for (int j = 0; j < npa; j++) order[no++] = j;
            for (int a = 0; a < no; a++)
                for (int b = a + 1; b < no; b++) {
                    double ma = 0, mb = 0;
                    for (int k = 0; k < d; k++)
                        ma = fmax(ma, mi[order[a] * d + k]), mb = fmax(mb, mi[order[b] * d + k]);
                    if (mb > ma) {
                        int t = order[a];
                        order[a] = order[b], order[b] = t;
                    }
                }
            int top = no < 10 ? no : 10, ng = d < 6 ? d : 6;
            const char *cats[10];
            double vals[6][10];
            io_bars g[6];
            char gn[6][16];
            for (int a = 0; a < top; a++) cats[a] = names[order[a]];
            for (int k = 0; k < ng; k++) {
                for (int a = 0; a < top; a++) vals[k][a] = mi[order[a] * d + k];
                snprintf(gn[k], sizeof gn[k], "D%d", k + 1);
                g[k] = (io_bars){gn[k], vals[k]};
            }
            snprintf(path, sizeof path, "%s/mi.png", out);
            if (io_plot_bars(path,
                             "KSG mutual information between the rotated latents and catalog properties",
                             "MI (nats)", cats, top, g, ng))
                fprintf(stderr, "galnn: warning: %s\n", gn_errmsg());
            printf("\nMI (nats, KSG k = %ld, %s split) of the properties most tied to the latents:\n  %-14s",
                   kk, split_name, "property");
            for (int k = 0; k < d; k++) {
                char h[16];
                snprintf(h, sizeof h, "D%d", k + 1);
                printf(" %7s", h);
            }
            printf("\n");
            for (int a = 0; a < top; a++) {
                printf("  %-14s", names[order[a]]);
                for (int k = 0; k < d; k++) printf(" %7.3f", mi[order[a] * d + k]);
                printf("\n");
            }
            // report
            snprintf(path, sizeof path, "%s/report.md", out);
            if ((f = fopen(path, "w"))) {
                fprintf(f,
                        "# Latent space of %s\n\n%d latent(s), %d condition(s), %d pixels on %g-%g Å.\n\n## "
                        "PCA rotation\n\n"
                        "| component | explained variance |\n|---|---|\n",
                        ckpt, d, nc, P, rb->grid_lo, rb->grid_hi);
                for (int k = 0; k < d; k++) fprintf(f, "| D%d | %.1f %% |\n", k + 1, 100 * R.frac[k]);
                fprintf(f,
                        "\n## Mutual information (KSG, k = %ld, nats; %s split, %zu spectra)\n\n| property |",
                        kk, split_name, n);
                for (int k = 0; k < d; k++) fprintf(f, " D%d |", k + 1);
                fprintf(f, "\n|---|");
                for (int k = 0; k < d; k++) fprintf(f, "---|");
                fprintf(f, "\n");
                for (int a = 0; a < no; a++) {
                    fprintf(f, "| %s |", names[order[a]]);
                    for (int k = 0; k < d; k++) fprintf(f, " %.3f |", mi[order[a] * d + k]);
                    fprintf(f, "\n");
                }
                fprintf(f, "\n![MI](mi.png)\n\n## Traversals\n\n");
                for (int k = 0; k < d; k++) fprintf(f, "![D%d](traversal_D%d.png)\n", k + 1, k + 1);
                for (int q = 0; q < nc; q++)
                    fprintf(f, "![%s](traversal_%s.png)\n", r.br[m->lat_a].col_names[q],
                            r.br[m->lat_a].col_names[q]);
                fclose(f);
                f = NULL;
            }
        }
        free(mi), free(xv), free(yv), free(names), free(pb);
    }
    // traversals: D = t sigma_k e_k, t = -2..2 (and each condition for a CVAE)
    for (int k = 0; !rc && k < d + nc; k++) {
        io_series s[5];
        char nm[5][48], ttl[200];
        for (int t = 0; t < 5; t++) {
            for (int a = 0; a < d; a++) {
                double sd = sqrt(fmax(R.var[k < d ? k : 0], 1e-12));
                zz[t * d + a] = (float)(R.mean[a] + (k < d ? (t - 2) * sd * R.V[a * d + k] : 0));
            }
            for (int q = 0; q < nc; q++) cz[t * nc + q] = k >= d && q == k - d ? (float)(t - 2) : 0;
        }
        if (spec_decode_z(&r, &c, zz, cz, 5, xs)) {
            rc = cmd_error("spectra-latents: %s", gn_errmsg());
            break;
        }
        const char *what = k < d ? NULL : r.br[m->lat_a].col_names[k - d];
        for (int t = 0; t < 5; t++) {
            for (int j = 0; j < P; j++) ys[t * P + j] = xs[t * P + j];
            if (k < d) snprintf(nm[t], sizeof nm[t], "D%d = %+d sigma", k + 1, t - 2);
            else snprintf(nm[t], sizeof nm[t], "%s %+d sd", what, t - 2);
            s[t] = (io_series){nm[t], wl, ys + t * P, (size_t)P};
        }
        if (k < d) snprintf(path, sizeof path, "%s/traversal_D%d.png", out, k + 1);
        else snprintf(path, sizeof path, "%s/traversal_%s.png", out, what);
        if (k < d)
            snprintf(ttl, sizeof ttl, "decoded spectra along D%d (%.1f %% of the latent variance)", k + 1,
                     100 * R.frac[k]);
        else snprintf(ttl, sizeof ttl, "decoded spectra as %s varies (latents at 0)", what);
        if (io_plot_lines(path, ttl, "rest-frame wavelength (Å)", "flux (median 0.5)", s, 5, 0))
            fprintf(stderr, "galnn: warning: %s\n", gn_errmsg());
    }
    if (!rc) printf("\nwrote %s/latents.csv, pca.csv, mi.csv, mi.png, traversal_*.png and report.md\n", out);
out:
    if (c.arena.head) nn_ctx_free(&c);
    free(mu), free(zz), free(xs), free(D), free(wl), free(d4), free(ys), free(cz);
    run_free(&r);
    return rc ? 1 : 0;
}
