// galnn eval: metrics of saved weights on a split, per target, overall and per population.
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/gn_common.h"
#include "../io/json.h"
#include "../io/file.h"
#include "../io/plot.h"
#include "../io/spectra.h"
#include "../stats/metrics.h"
#include "cmd.h"
#include "flags.h"
#include "pipeline/run.h"
#include "pipeline/spec_common.h"

static void eval_usage(void) {
    printf(
        "usage: galnn eval --ckpt RUN/best.npz [--split test|val|train] [--catalog CSV] [--images TEMPLATE]\n"
        "                  [--by COLUMN] [--json] [--out DIR] [--threads N] [--samples 1000] [--seed 1]\n"
        "       galnn eval --ensemble RUN1/best.npz,RUN2/best.npz,... [same options]   (flow models)\n"
        "                  [SECTION.KEY=VALUE ...]\n\n"
        "Evaluates the checkpoint's model (its configuration and normalisation come from the checkpoint;\n"
        "--catalog/--images point at the data if it moved). Per target: N, bias, sigma_MAD = 1.4826 MAD,\n"
        "outlier fraction eta (|d| > 3 sigma_MAD), RMSE, R^2, mean +- 1 sigma of d = pred - true (dex for "
        "log\n"
        "quantities) and, for probabilistic heads, the mean CRPS; overall and per value of --by (e.g. "
        "type).\n"
        "Writes metrics.json to DIR (default: the checkpoint's directory); --json also prints it.\n"
        "Flow models ([model] kind = flow): from --samples posterior draws per galaxy, per target the\n"
        "metrics of the posterior mean, the CRPS of the samples, the coverage of the central 68 %% and 95 "
        "%%\n"
        "intervals, the PIT histogram (pit_<target>.png) and its KS distance from uniform; and the joint\n"
        "test NLL in the targets' units. --ensemble (a deep ensemble: the same configuration trained with\n"
        "different seeds) pools the members' samples, scores the mixture, and splits the predictive spread "
        "by\n"
        "the law of total variance: sigma_ale = sqrt(mean E_k Var(y|x,k)), sigma_epi = sqrt(mean Var_k "
        "E(y|x,k)).\n");
}

typedef struct acc {
    char name[64];
    size_t n;
    double *pred, *tru, crps;
} acc;

// prob: 1 adds the CRPS, 2 (quantile intervals) the coverage of the 16-84 % interval, given as crps.
static void json_metrics(FILE *f, const st_metrics *m, double crps, int prob) {
    const char *key[8] = {"bias", "sigma_mad", "eta",     "rmse",
                          "r2",   "mean_dex",  "std_dex", prob == 2 ? "coverage68" : "crps"};
    const double v[8] = {m->bias, m->sigma_mad, m->eta, m->rmse, m->r2, m->mean, m->std, crps};
    fprintf(f, "{\"n\": %zu", m->n);
    for (int k = 0; k < 7 + (prob != 0); k++)
        fprintf(f, ", \"%s\": ", key[k]), io_json_put_num(f, "%.6g", v[k]);
    fputc('}', f);
}

// Flow models: posterior samples per galaxy (see apps/posterior.c).

// A flow's evaluation: with a recalibration in the checkpoint (fitted on the validation split when it
// was trained), the uncalibrated posteriors first and then the calibrated ones; the JSON holds the
// calibrated figures and, under "uncalibrated", the others.
static int flow_eval_both(run **rs, int K, nn_ctx *c, int split, const eval_cli *o, const char *dir,
                          char **jb, size_t *jl) {
    const run *r = rs[0];
    int cal = 1;
    for (int k = 0; k < K; k++) cal &= rs[k]->has_calib;
    char *j0 = NULL;
    size_t l0 = 0;
    int rc = GN_OK;
    for (int k = 0; cal && k < K; k++) rs[k]->calib_off = 1;
    if (cal && !o->json) printf("\nthe flow's own posteriors (uncalibrated):");
    if (cal)
        rc = run_posterior_eval((const run *const *)rs, K, c, r->rows[split], r->n_rows[split],
                                (int)o->samples, (uint64_t)o->seed, dir, o->split_name, o->json, &j0, &l0);
    for (int k = 0; cal && k < K; k++) rs[k]->calib_off = 0;
    if (cal && !o->json)
        printf("\ncalibrated (core and tail widths fitted on the validation split, in the checkpoint):");
    if (!rc)
        rc = run_posterior_eval((const run *const *)rs, K, c, r->rows[split], r->n_rows[split],
                                (int)o->samples, (uint64_t)o->seed, dir, o->split_name, o->json, jb, jl);
    if (!rc && cal) { // {"uncalibrated": {...}, <the calibrated keys>}
        char *all = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&all, &n);
        if (!f)
            rc = GN_ENOMEM;
        else {
            while (l0 && (j0[l0 - 1] == '\n')) j0[--l0] = 0;
            fprintf(f,
                    "{\"calibration\": \"probit-space core and tail widths from the validation PITs\", "
                    "\"uncalibrated\": %s, %s",
                    j0, *jb + 1);
            fclose(f);
            free(*jb), *jb = all, *jl = n;
        }
    }
    free(j0);
    return rc;
}

static int eval_flow(run *r, int split, const eval_cli *o, char **members, int K) {
    nn_ctx c;
    memset(&c, 0, sizeof c);
    run *rs[16] = {r}, more[15];
    int loaded = 1;
    for (int k = 1; k < K; k++, loaded++)
        if (run_from_checkpoint(&more[k - 1], members[k], o->sets.v, o->sets.n, 1, 0) ||
            run_report(rs[k] = &more[k - 1]) != MD_REPORT_POSTERIOR) {
            if (!gn_errmsg()[0] || rs[k]) gn_err(GN_EINVAL, "%s is not a flow model", members[k]);
            cmd_error("eval: ensemble member %s: %s", members[k], gn_errmsg());
            for (int j = 1; j <= k; j++) run_free(&more[j - 1]);
            run_free(r);
            return 1;
        }
    char *cp = strdup(o->ckpt), dir[4200], path[4300];
    snprintf(dir, sizeof dir, "%s", o->out ? o->out : dirname(cp));
    free(cp);
    snprintf(path, sizeof path, "%s/metrics.json", dir);
    char *jb = NULL;
    size_t jl = 0;
    int rc = 1;
    if (!r->n_rows[split])
        cmd_error("eval: the %s split has no usable galaxies", o->split_name);
    else if (nn_ctx_init(&c, 64u << 20) || flow_eval_both(rs, K, &c, split, o, dir, &jb, &jl) ||
             io_write_atomic(path, jb, jl))
        cmd_error("eval: %s", gn_errmsg());
    else {
        if (o->json)
            fputs(jb, stdout);
        else
            printf("\nwrote %s\n", path);
        rc = 0;
    }
    free(jb);
    if (c.arena.head) nn_ctx_free(&c);
    for (int k = 1; k < loaded; k++) run_free(&more[k - 1]);
    run_free(r);
    return rc;
}

// Reconstructions (z = mu) of the first few spectra: data and model.
static int plot_recon(const run *r, nn_ctx *c, const uint32_t *rows, size_t n, const char *path) {
    const md_net *m = &r->net;
    int P = m->svae.sp.pixels, k = n < 3 ? (int)n : 3;
    const run_branch *rb = &r->br[m->lat_x];
    double *wl = malloc(sizeof(double) * P), *y = malloc(sizeof(double) * 2 * k * (size_t)P);
    float *rec = malloc(sizeof(float) * (size_t)k * P);
    if (!wl || !y || !rec) return free(wl), free(y), free(rec), GN_ENOMEM;
    io_spec_log_grid(rb->grid_lo, rb->grid_hi, P, wl);
    int rc = spec_decode_rows(r, c, rows, k, rec);
    io_series s[6];
    char names[6][96];
    for (int i = 0; i < k && !rc; i++) {
        const float *x = io_dataset_image(&r->ds[rb->ds], (size_t)r->entry[rb->ds][rows[i]]);
        for (int j = 0; j < P; j++)
            y[(2 * i) * P + j] = x[j] + 1.0 * i, y[(2 * i + 1) * P + j] = rec[(size_t)i * P + j] + 1.0 * i;
        snprintf(names[2 * i], sizeof names[0], "%s (+%d)", io_catalog_id(&r->cat, rows[i]), i);
        snprintf(names[2 * i + 1], sizeof names[0], "model");
        s[2 * i] = (io_series){names[2 * i], wl, y + (2 * i) * P, (size_t)P};
        s[2 * i + 1] = (io_series){names[2 * i + 1], wl, y + (2 * i + 1) * P, (size_t)P};
    }
    if (!rc)
        rc = io_plot_lines(path, "spectra and their reconstructions (z = mu; offset by 1 each)",
                           "rest-frame wavelength (Å)", "flux (normalised: median 0.5)", s, 2 * k, 0);
    free(wl), free(y), free(rec);
    return rc;
}

static int eval_spectra(const run *r, const char *ckpt, const char *split_name, int split, const char *dir,
                        int json) {
    nn_ctx c;
    memset(&c, 0, sizeof c);
    run_specfit f;
    size_t n = r->n_rows[split];
    if (!n) return cmd_error("eval: the %s split has no usable spectra", split_name);
    if (nn_ctx_init(&c, 64u << 20) || run_spec_fit(r, &c, r->rows[split], n, &f)) {
        if (c.arena.head) nn_ctx_free(&c);
        return cmd_error("eval: %s", gn_errmsg());
    }
    char path[4400], *buf = NULL;
    size_t len = 0;
    FILE *jf = open_memstream(&buf, &len);
    fprintf(jf,
            "{\"checkpoint\": \"%s\", \"split\": \"%s\", \"n\": %zu, \"pixels\": %d, \"latent\": %d, "
            "\"conditions\": %d",
            ckpt, split_name, f.n, f.pixels, f.latent, f.n_cond);
    io_json_put_kv(jf, "mse_mu", "%.8g", f.mse_mu), io_json_put_kv(jf, "mse_z", "%.8g", f.mse_z);
    io_json_put_kv(jf, "kl_per_spectrum", "%.6g", f.kl),
        io_json_put_kv(jf, "neg_elbo_per_spectrum", "%.6g", f.nelbo);
    io_json_put_kv(jf, "bic", "%.6f", f.bic), io_json_put_kv(jf, "bic_gauss", "%.6f", f.bic_gauss);
    fprintf(jf, "}\n");
    fclose(jf);
    snprintf(path, sizeof path, "%s/metrics.json", dir);
    int rc = io_write_atomic(path, buf, len);
    if (json)
        fputs(buf, stdout);
    else {
        printf("\n%s split: %zu spectra of %d pixels; latent %d, %d condition(s)\n", split_name, f.n,
               f.pixels, f.latent, f.n_cond);
        printf("  MSE (z = mu)            %.4g\n  MSE (z ~ q(z|x))        %.4g\n  KL per spectrum         "
               "%.3f nats\n"
               "  -ELBO per spectrum      %.2f nats (Gaussian decoder, fitted variance)\n  BIC               "
               "      %.2f\n"
               "  BIC (Gaussian, mean)    %.2f\n",
               f.mse_mu, f.mse_z, f.kl, f.nelbo, f.bic, f.bic_gauss);
    }
    free(buf);
    snprintf(path, sizeof path, "%s/recon_%s.png", dir, split_name);
    if (!rc && plot_recon(r, &c, r->rows[split], n, path))
        fprintf(stderr, "galnn: warning: %s\n", gn_errmsg());
    else if (!rc && !json)
        printf("  wrote %s/metrics.json and %s\n", dir, path);
    nn_ctx_free(&c);
    return rc ? cmd_error("eval: %s", gn_errmsg()) : 0;
}

// A model without targets (a VAE): the mean of its objective on the split, as validation computes it.
static int eval_loss_only(const run *r, const char *ckpt, const char *split_name, int split, const char *dir,
                          int json) {
    const md_kind *k = md_kind_of(&r->net);
    size_t n = r->n_rows[split];
    if (!n) return cmd_error("eval: the %s split of %s has no usable galaxies", split_name, ckpt);
    nn_ctx c;
    memset(&c, 0, sizeof c);
    double loss = NAN;
    int rc = nn_ctx_init(&c, 64u << 20);
    c.grad_enabled = 0;
    rc = rc ? rc : run_split_loss(r, &c, r->rows[split], n, &loss, NULL);
    if (c.arena.head) nn_ctx_free(&c);
    if (rc) return cmd_error("eval: %s", gn_errmsg());
    char path[4400], *buf = NULL;
    size_t len = 0;
    FILE *jf = open_memstream(&buf, &len);
    fprintf(jf, "{\"checkpoint\": \"%s\", \"split\": \"%s\", \"n\": %zu", ckpt, split_name, n);
    io_json_put_kv(jf, "loss", "%.8g", loss);
    fprintf(jf, ", \"loss_unit\": \"%s\"}\n", k->loss_unit ? k->loss_unit : "the training objective");
    fclose(jf);
    snprintf(path, sizeof path, "%s/metrics.json", dir);
    rc = io_write_atomic(path, buf, len);
    if (json)
        fputs(buf, stdout);
    else
        printf(
            "\n%s split: %zu galaxies; %s is %s: it predicts no target\n  loss %.6g (%s, as in validation)\n"
            "  wrote %s\n",
            split_name, n, ckpt, k->what, loss, k->loss_unit ? k->loss_unit : "the training objective", path);
    free(buf);
    return rc ? cmd_error("eval: %s: %s", path, gn_errmsg()) : 0;
}

#define CLI eval_cli
static const cmd_flag eval_flags[] = {
    F_CKPT(ckpt, "the checkpoint (RUN/best.npz)"),
    F_STR("--ensemble", ensemble, "CKPT,CKPT,...", "a deep ensemble of flow models (2 to 16)"),
    F_SPLIT(split_name, "test, val or train"),
    F_STR("--by", by, "COLUMN", "metrics per value of this catalog column too"),
    F_OUT(out, "DIR", "where metrics.json goes (default: the checkpoint's directory)"),
    F_ON("--json", json, "print metrics.json"),
    F_ON("--tta", tta, "image models: average the 8 dihedral views of each cutout (default: [train] tta)"),
    F_OFF("--no-tta", tta, "one view per cutout even where [train] tta = 1"),
    F_INT("--samples", samples, 2, 1000000, "S", "flow models: posterior draws per galaxy"),
    F_SEED(seed, "flow models: the sampling seed"),
    F_THREADS(threads),
    F_CATALOG(sets, "the catalog, if it moved"),
    F_IMAGES(sets, "the cutouts, if they moved"),
    F_DATA_KEYS(sets),
    F_SET("--join", sets, "data.join", "CSV;...", "more columns by id (e.g. a VAE's latent)"),
    F_END};

void eval_defaults(void *p) {
    eval_cli *o = p;
    o->split_name = "test", o->samples = 1000, o->seed = 1, o->tta = -1;
}

// The group (population) index of each galaxy by the --by column (0: all only).
static int *group_index(const run *r, const uint32_t *rows, size_t n, int bycol, acc *groups, int *ng) {
    int *gi = malloc(sizeof(int) * (n ? n : 1));
    for (size_t i = 0; gi && i < n; i++) {
        gi[i] = 0;
        if (bycol < 0) continue;
        const char *val = r->cat.cols[bycol].s[rows[i]];
        int g = 1;
        while (g < *ng && strcmp(groups[g].name, val)) g++;
        if (g == *ng && *ng < 65) snprintf(groups[(*ng)++].name, sizeof groups[0].name, "%s", val);
        gi[i] = g < 65 ? g : 0;
    }
    return gi;
}

// CRPS of one galaxy's head outputs o at y (0 for plain regression); quantile intervals: whether the
// 16-84 % interval holds y (its mean is the coverage).
static double head_crps(const run *r, const float *o, const run_est *e, double y) {
    const md_net *m = &r->net;
    if (m->head == MD_HEAD_QUANTILES) return y >= e->p16 && y <= e->p84;
    if (m->head == MD_HEAD_GAUSSIAN) return st_crps_gaussian(e->mean, e->sd, y);
    if (m->head != MD_HEAD_BINNED) return 0;
    double mx = o[0], s = 0, w = (m->hi - m->lo) / m->bins;
    double *p = malloc(sizeof(double) * (size_t)m->bins);
    if (!p) return NAN;
    for (int k = 1; k < m->bins; k++) mx = o[k] > mx ? o[k] : mx;
    for (int k = 0; k < m->bins; k++) s += p[k] = exp(o[k] - mx);
    for (int k = 0; k < m->bins; k++) p[k] /= s;
    double c = st_crps_binned(p, m->bins, m->lo, w, y);
    free(p);
    return c;
}

// pred_vs_true_<target>.png beside metrics.json: everything in the split.
static void plot_pred_vs_true(const acc *all, const char *jpath, const char *target, const char *unit,
                              const char *split_name, int json) {
    st_metrics m0;
    if (st_point_metrics(all->pred, all->tru, all->n, &m0)) return;
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < all->n; i++) {
        double a = all->tru[i], b = all->pred[i];
        if (isnan(a) || isnan(b)) continue;
        lo = fmin(lo, fmin(a, b)), hi = fmax(hi, fmax(a, b));
    }
    double pad = 0.03 * (hi - lo);
    char png[4300], title[256], note[256], xl[128], yl[128];
    char *cp2 = strdup(jpath);
    snprintf(png, sizeof png, "%s/pred_vs_true_%s.png", dirname(cp2), target);
    free(cp2);
    snprintf(title, sizeof title, "%s split, %zu galaxies", split_name, m0.n);
    snprintf(note, sizeof note, "bias %.4f   sigma_MAD %.4f   eta %.3f   R2 %.3f", m0.bias, m0.sigma_mad,
             m0.eta, m0.r2);
    snprintf(xl, sizeof xl, "true %s [%s]", target, unit);
    snprintf(yl, sizeof yl, "predicted %s [%s]", target, unit);
    if (io_plot_density(png, title, xl, yl, all->tru, all->pred, all->n, lo - pad, hi + pad, note))
        fprintf(stderr, "galnn: warning: %s\n", gn_errmsg());
    else if (!json)
        printf("  plot: %s\n", png);
}

// One target: the table rows and its JSON object.
static void eval_target(const run *r, int t, const float *outv, const uint32_t *rows, size_t n, const int *gi,
                        acc *groups, int ng, const eval_cli *o, const char *jpath, FILE *jf) {
    int prob = r->net.head == MD_HEAD_QUANTILES ? 2 : r->net.head != MD_HEAD_REGRESSION;
    run_est est[MD_MAX_TARGETS];
    for (int g = 0; g < ng; g++) {
        groups[g].n = 0, groups[g].crps = 0;
        free(groups[g].pred), free(groups[g].tru);
        groups[g].pred = malloc(sizeof(double) * n), groups[g].tru = malloc(sizeof(double) * n);
    }
    for (size_t i = 0; i < n; i++) {
        const float *ov = outv + i * (size_t)r->net.n_out;
        run_estimate(r, ov, est);
        double y = r->target[t][rows[i]], crps = head_crps(r, ov, &est[t], y);
        int gs[2] = {0, gi[i]};
        for (int k = 0; k < (gi[i] ? 2 : 1); k++) {
            acc *a = &groups[gs[k]];
            a->pred[a->n] = est[t].mean, a->tru[a->n] = y, a->n++, a->crps += crps;
        }
    }
    if (!o->json)
        printf("\ntarget %s\n  %-12s %6s %9s %9s %7s %8s %7s %16s%s\n", r->target_names[t], "population", "N",
               "bias", "sigma_MAD", "eta", "RMSE", "R2", "mean +- 1 sigma",
               prob == 2 ? "  cover68"
               : prob    ? "     CRPS"
                         : "");
    plot_pred_vs_true(&groups[0], jpath, r->target_names[t], r->target_units[t], o->split_name, o->json);
    fprintf(jf, "%s\"%s\": {", t ? ", " : "", r->target_names[t]);
    for (int g = 0; g < ng; g++) {
        st_metrics m;
        if (!groups[g].n || st_point_metrics(groups[g].pred, groups[g].tru, groups[g].n, &m)) continue;
        double crps = groups[g].crps / (double)groups[g].n;
        if (!o->json) {
            printf("  %-12s %6zu %9.4f %9.4f %7.4f %8.4f %7.4f %7.4f +- %6.4f", groups[g].name, m.n, m.bias,
                   m.sigma_mad, m.eta, m.rmse, m.r2, m.mean, m.std);
            prob ? printf(" %8.4f\n", crps) : printf("\n");
        }
        fprintf(jf, "%s\"%s\": ", g ? ", " : "", groups[g].name);
        json_metrics(jf, &m, crps, prob);
    }
    fputc('}', jf);
}

// Point metrics of a model with a head, per target and population; metrics.json.
// How many evaluated galaxies have an input or a prediction beyond the training range (6 training
// standard deviations, as galnn predict flags them): in metrics.json, and on screen when there are any.
static void ood_counts(const run *r, const uint32_t *rows, size_t n, const float *outv, FILE *jf, int quiet) {
    if (!r->has_range) return;
    size_t cnt[2] = {0, 0};
    run_est est[MD_MAX_TARGETS];
    for (size_t i = 0; i < n; i++) {
        run_estimate(r, outv + i * (size_t)r->net.n_out, est);
        int f = run_ood(r, rows[i], est, 6);
        cnt[0] += (f & RUN_OOD_INPUT) != 0, cnt[1] += (f & RUN_OOD_PRED) != 0;
    }
    fprintf(jf, ", \"out_of_range\": {\"sigma\": 6, \"inputs\": %zu, \"predictions\": %zu}", cnt[0], cnt[1]);
    if (!quiet && (cnt[0] || cnt[1]))
        printf("  WARNING: %zu galaxies have an input and %zu a prediction more than 6 training standard "
               "deviations "
               "outside the training range\n",
               cnt[0], cnt[1]);
}

static int eval_point(run *r, int split, const eval_cli *o) {
    int rc = 1, T = r->n_targets, ng = 1;
    size_t n = r->n_rows[split];
    const uint32_t *rows = r->rows[split];
    float *outv = malloc(sizeof(float) * (n ? n : 1) * (size_t)r->net.n_out);
    int bycol = o->by ? io_catalog_find(&r->cat, o->by) : -1, *gi = NULL;
    acc *groups = calloc(65, sizeof(acc)); // [0] = all
    nn_ctx c;
    memset(&c, 0, sizeof c);
    char *jbuf = NULL, jpath[4200], *cp = strdup(o->ckpt);
    size_t jlen = 0;
    snprintf(jpath, sizeof jpath, "%s/metrics.json", o->out ? o->out : dirname(cp));
    free(cp);
    if (o->by && bycol < 0) {
        io_catalog_values(&r->cat, o->by); // sets "no column ... did you mean"
        cmd_error("eval: --by: %s", gn_errmsg());
    } else if (!n)
        cmd_error("eval: the %s split has no usable galaxies", o->split_name);
    else if (!outv || !groups || nn_ctx_init_inference(&c, 64u << 20) || run_infer(r, &c, rows, n, outv))
        cmd_error("eval: %s", gn_errmsg());
    else if (strcpy(groups[0].name, "all"), !(gi = group_index(r, rows, n, bycol, groups, &ng)))
        cmd_error("eval: out of memory");
    else {
        if (!o->json) printf("\n%s split: %zu galaxies\n", o->split_name, n);
        FILE *jf = open_memstream(&jbuf, &jlen);
        fprintf(jf, "{\"checkpoint\": \"%s\", \"split\": \"%s\", \"targets\": {", o->ckpt, o->split_name);
        for (int t = 0; t < T; t++) eval_target(r, t, outv, rows, n, gi, groups, ng, o, jpath, jf);
        fprintf(jf, "}");
        ood_counts(r, rows, n, outv, jf, o->json);
        fprintf(jf, "}\n");
        fclose(jf);
        rc = io_write_atomic(jpath, jbuf, jlen) ? cmd_error("eval: %s", gn_errmsg()) : 0;
        if (!rc && !o->json) printf("\nwrote %s\n", jpath);
        if (o->json) fputs(jbuf, stdout);
    }
    for (int g = 0; groups && g < 65; g++) free(groups[g].pred), free(groups[g].tru);
    free(groups), free(outv), free(gi), free(jbuf);
    if (c.arena.head) nn_ctx_free(&c);
    return rc;
}

int eval_run(const eval_cli *op) {
    eval_cli o = *op;
    char *members[16], *mlist = NULL;
    int K = 1;
    if (o.ensemble) {
        mlist = strdup(o.ensemble);
        K = io_split_list(mlist, members, 16);
        if (K < 2) return free(mlist), cmd_error("--ensemble: give at least two checkpoints (at most 16)");
        if (o.ckpt && strcmp(o.ckpt, members[0]))
            return free(mlist),
                   cmd_error("eval: --ensemble lists the checkpoints, --ckpt then is not needed");
        o.ckpt = members[0];
    }
    if (!o.ckpt) return cmd_error("eval: --ckpt is required");
    int made = 0; // --out DIR: metrics.json and the plots go there; missing parents are made
    if (o.out && io_mkdirs(o.out, &made))
        return free(mlist), cmd_error("eval: --out %s: %s", o.out, gn_errmsg());
    int split = io_split_parse(o.split_name);
    if (split < 0)
        return free(mlist), cmd_error("eval: --split '%s' is not train, val or test", o.split_name);
    gn_set_threads((int)o.threads);
    run r;
    if (run_from_checkpoint(&r, o.ckpt, o.sets.v, o.sets.n, 1, !o.json)) {
        run_free(&r);
        return free(mlist), cmd_error("eval: %s", gn_errmsg());
    }
    md_report rep = run_report(&r);
    int rc = 1;
    if (o.tta > 0 && !run_has_images(&r)) {
        run_free(&r);
        return free(mlist), cmd_error("eval: --tta: %s has no image branch to augment", o.ckpt);
    }
    r.tta = o.tta >= 0 ? o.tta : (int)r.train.tta && run_has_images(&r);
    if (rep == MD_REPORT_LATENT || rep == MD_REPORT_SPECTRA) {
        char *cp = strdup(o.ckpt);
        const char *dir = o.out ? o.out : dirname(cp);
        rc = rep == MD_REPORT_LATENT ? eval_loss_only(&r, o.ckpt, o.split_name, split, dir, o.json)
                                     : eval_spectra(&r, o.ckpt, o.split_name, split, dir, o.json);
        free(cp);
    } else if (rep == MD_REPORT_POSTERIOR) {
        rc = eval_flow(&r, split, &o, members, K);
        return free(mlist), rc; // eval_flow frees r
    } else if (K > 1)
        cmd_error("eval: --ensemble is for flow models ([model] kind = flow)");
    else
        rc = eval_point(&r, split, &o);
    free(mlist);
    run_free(&r);
    return rc;
}

static int eval_run_v(const void *o) { return eval_run(o); }

CMD_DEF(cmd_eval, "eval",
        "metrics of saved weights on a split: bias, sigma_MAD, outliers, RMSE, R2, dex, CRPS", eval_usage,
        eval_flags, sizeof(eval_cli), eval_defaults, eval_run_v, offsetof(eval_cli, sets), NULL);
