// galnn eval: metrics of saved weights on a split, per target, overall and per population.
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/gn_common.h"
#include "../io/plot.h"
#include "../stats/metrics.h"
#include "cmd.h"
#include "pipeline/run.h"

void cmd_eval_help(void) {
    printf("usage: galnn eval --ckpt RUN/best.npz [--split test|val|train] [--catalog CSV] [--images TEMPLATE]\n"
           "                  [--by COLUMN] [--json] [--out DIR] [--threads N] [--samples 1000] [--seed 1]\n"
           "       galnn eval --ensemble RUN1/best.npz,RUN2/best.npz,... [same options]   (flow models)\n"
           "                  [SECTION.KEY=VALUE ...]\n\n"
           "Evaluates the checkpoint's model (its configuration and normalisation come from the checkpoint;\n"
           "--catalog/--images point at the data if it moved). Per target: N, bias, sigma_MAD = 1.4826 MAD,\n"
           "outlier fraction eta (|d| > 3 sigma_MAD), RMSE, R^2, mean +- 1 sigma of d = pred - true (dex for log\n"
           "quantities) and, for probabilistic heads, the mean CRPS; overall and per value of --by (e.g. type).\n"
           "Writes metrics.json to DIR (default: the checkpoint's directory); --json also prints it.\n"
           "Flow models ([model] kind = flow): from --samples posterior draws per galaxy, per target the\n"
           "metrics of the posterior mean, the CRPS of the samples, the coverage of the central 68 %% and 95 %%\n"
           "intervals, the PIT histogram (pit_<target>.png) and its KS distance from uniform; and the joint\n"
           "test NLL in the targets' units. --ensemble (a deep ensemble: the same configuration trained with\n"
           "different seeds) pools the members' samples, scores the mixture, and splits the predictive spread by\n"
           "the law of total variance: sigma_ale = sqrt(mean E_k Var(y|x,k)), sigma_epi = sqrt(mean Var_k E(y|x,k)).\n");
}

typedef struct acc {
    char name[64];
    size_t n;
    double *pred, *tru, crps;
} acc;

static void json_metrics(FILE *f, const st_metrics *m, double crps, int prob) {
    fprintf(f, "{\"n\": %zu, \"bias\": %.6g, \"sigma_mad\": %.6g, \"eta\": %.6g, \"rmse\": %.6g, \"r2\": %.6g, "
               "\"mean_dex\": %.6g, \"std_dex\": %.6g",
            m->n, m->bias, m->sigma_mad, m->eta, m->rmse, m->r2, m->mean, m->std);
    if (prob) fprintf(f, ", \"crps\": %.6g", crps);
    fputc('}', f);
}

// Flow models: posterior samples per galaxy (see apps/posterior.c).
static int eval_flow(run *r, int split, const char *split_name, const char *ckpt, const char *out, int json, int S, uint64_t seed,
                     char **members, int K, const char **ov, int n_ov) {
    nn_ctx c;
    memset(&c, 0, sizeof c);
    run *rs[16] = {r}, more[15];
    int loaded = 1;
    for (int k = 1; k < K; k++, loaded++)
        if (run_from_checkpoint(&more[k - 1], members[k], ov, n_ov, 1, 0) || run_report(rs[k] = &more[k - 1]) != MD_REPORT_POSTERIOR) {
            if (!gn_errmsg()[0] || rs[k]) gn_err(GN_EINVAL, "%s is not a flow model", members[k]);
            cmd_error("eval: ensemble member %s: %s", members[k], gn_errmsg());
            for (int j = 1; j <= k; j++) run_free(&more[j - 1]);
            run_free(r);
            return 1;
        }
    char *cp = strdup(ckpt), dir[4200], path[4300];
    snprintf(dir, sizeof dir, "%s", out ? out : dirname(cp));
    free(cp);
    snprintf(path, sizeof path, "%s/metrics.json", dir);
    char *jb = NULL;
    size_t jl = 0;
    int rc = 1;
    if (!r->n_rows[split]) cmd_error("eval: the %s split has no usable galaxies", split_name);
    else if (nn_ctx_init(&c, 64u << 20) ||
             run_posterior_eval((const run *const *)rs, K, &c, r->rows[split], r->n_rows[split], S, seed, dir, split_name, json, &jb,
                                &jl) ||
             io_write_atomic(path, jb, jl))
        cmd_error("eval: %s", gn_errmsg());
    else {
        if (json) fputs(jb, stdout);
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

int cmd_eval(int argc, char **argv) {
    const char *ckpt = NULL, *split_name = "test", *by = NULL, *out = NULL;
    int json = 0, K = 1;
    long threads = 0, samples = 1000, seed = 1;
    char *members[16], *mlist = NULL;
    const char *ov[64];
    char fov[4][1024];
    int n_ov = 0, n_f = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        const char *key = !strcmp(a, "--catalog") ? "data.catalog" : !strcmp(a, "--images") ? "data.images" : !strcmp(a, "--join") ? "data.join" : NULL;
        if (key) {
            if (!v) return cmd_error("%s needs a value", a);
            if (n_f == 4) return cmd_error("eval: too many data options");
            snprintf(fov[n_f], sizeof fov[n_f], "%s=%s", key, v);
            ov[n_ov++] = fov[n_f++];
            i++;
        } else if (!strcmp(a, "--ckpt")) ckpt = v, i++;
        else if (!strcmp(a, "--split")) split_name = v, i++;
        else if (!strcmp(a, "--by")) by = v, i++;
        else if (!strcmp(a, "--out")) out = v, i++;
        else if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--ensemble")) {
            if (!v) return cmd_error("--ensemble needs CKPT1,CKPT2,...");
            free(mlist);
            mlist = strdup(v);
            K = io_split_list(mlist, members, 16);
            if (K < 2) return free(mlist), cmd_error("--ensemble: give at least two checkpoints (at most 16)");
            i++;
        }
        else if (!strcmp(a, "--samples") || !strcmp(a, "--seed")) {
            if (cmd_parse_int(a, v, a[3] == 'a' ? 2 : 0, a[3] == 'a' ? 1000000 : 0x7fffffffL, a[3] == 'a' ? &samples : &seed)) return 1;
            i++;
        } else if (!strcmp(a, "--threads")) {
            if (cmd_parse_int(a, v, 0, 1024, &threads)) return 1;
            i++;
        } else if (strchr(a, '=') && a[0] != '-' && n_ov < 64) ov[n_ov++] = a;
        else return cmd_error("eval: unknown option '%s' (see `galnn help eval`)", a);
        if (i >= argc) return cmd_error("%s needs a value", a);
    }
    if (!ckpt && K > 1) ckpt = members[0];
    if (K > 1 && strcmp(ckpt, members[0])) return free(mlist), cmd_error("eval: --ensemble lists the checkpoints, --ckpt then is not needed");
    if (!ckpt) return cmd_error("eval: --ckpt is required");
    int split = io_split_parse(split_name ? split_name : "");
    if (split < 0) return cmd_error("eval: --split '%s' is not train, val or test", split_name);
    gn_set_threads((int)threads);
    run r;
    if (run_from_checkpoint(&r, ckpt, ov, n_ov, 1, !json)) {
        run_free(&r);
        return cmd_error("eval: %s", gn_errmsg());
    }
    if (run_report(&r) == MD_REPORT_LATENT) {
        run_free(&r);
        return cmd_error("eval: %s is %s: it predicts no target (`galnn embed` writes its latent mu and sigma)", ckpt,
                         md_kind_of(&r.net)->what);
    }
    if (run_report(&r) == MD_REPORT_SPECTRA) {
        char *cp = strdup(ckpt);
        int src = run_spec_eval(&r, ckpt, split_name ? split_name : "test", split, out ? out : dirname(cp), json);
        free(cp), free(mlist);
        run_free(&r);
        return src;
    }
    if (run_report(&r) == MD_REPORT_POSTERIOR) {
        int frc = eval_flow(&r, split, split_name, ckpt, out, json, (int)samples, (uint64_t)seed, members, K, ov, n_ov);
        free(mlist);
        return frc;
    }
    if (K > 1) {
        free(mlist);
        run_free(&r);
        return cmd_error("eval: --ensemble is for flow models ([model] kind = flow)");
    }
    int rc = 1, T = r.n_targets, prob = r.net.head != MD_HEAD_REGRESSION;
    size_t n = r.n_rows[split];
    const uint32_t *rows = r.rows[split];
    float *outv = malloc(sizeof(float) * (n ? n : 1) * (size_t)r.net.n_out);
    run_est *est = malloc(sizeof(run_est) * (size_t)T);
    int bycol = by ? io_catalog_find(&r.cat, by) : -1;
    acc *groups = calloc(65, sizeof(acc)); // [0] = all
    int ng = 1;
    nn_ctx c;
    memset(&c, 0, sizeof c);
    if (by && bycol < 0) {
        io_catalog_values(&r.cat, by); // sets "no column ... did you mean"
        cmd_error("eval: --by: %s", gn_errmsg());
        goto out;
    }
    if (!n) {
        cmd_error("eval: the %s split has no usable galaxies", split_name);
        goto out;
    }
    if (!outv || !est || !groups || nn_ctx_init(&c, 64u << 20) || run_infer(&r, &c, rows, n, outv)) {
        cmd_error("eval: %s", gn_errmsg());
        goto out;
    }
    strcpy(groups[0].name, "all");
    // group index per galaxy
    int *gi = malloc(sizeof(int) * n);
    for (size_t i = 0; i < n; i++) {
        gi[i] = 0;
        if (bycol < 0) continue;
        const char *val = r.cat.cols[bycol].s[rows[i]];
        int g = 1;
        while (g < ng && strcmp(groups[g].name, val)) g++;
        if (g == ng && ng < 65) snprintf(groups[ng++].name, sizeof groups[0].name, "%s", val);
        gi[i] = g < 65 ? g : 0;
    }
    if (!json) printf("\n%s split: %zu galaxies\n", split_name, n);
    FILE *jf = NULL;
    char jpath[4200];
    char *cp = strdup(ckpt);
    snprintf(jpath, sizeof jpath, "%s/metrics.json", out ? out : dirname(cp));
    free(cp);
    char *jbuf = NULL;
    size_t jlen = 0;
    jf = open_memstream(&jbuf, &jlen);
    fprintf(jf, "{\"checkpoint\": \"%s\", \"split\": \"%s\", \"targets\": {", ckpt, split_name);
    for (int t = 0; t < T; t++) {
        for (int g = 0; g < ng; g++) {
            groups[g].n = 0, groups[g].crps = 0;
            free(groups[g].pred), free(groups[g].tru);
            groups[g].pred = malloc(sizeof(double) * n), groups[g].tru = malloc(sizeof(double) * n);
        }
        for (size_t i = 0; i < n; i++) {
            run_estimate(&r, outv + i * (size_t)r.net.n_out, est);
            double y = r.target[t][rows[i]], crps = 0;
            if (r.net.head == MD_HEAD_GAUSSIAN) crps = st_crps_gaussian(est[t].mean, est[t].sd, y);
            else if (r.net.head == MD_HEAD_BINNED) {
                const float *o = outv + i * (size_t)r.net.n_out;
                double mx = o[0], s = 0, w = (r.net.hi - r.net.lo) / r.net.bins;
                double *p = malloc(sizeof(double) * (size_t)r.net.bins);
                for (int k = 1; k < r.net.bins; k++) mx = o[k] > mx ? o[k] : mx;
                for (int k = 0; k < r.net.bins; k++) s += p[k] = exp(o[k] - mx);
                for (int k = 0; k < r.net.bins; k++) p[k] /= s;
                crps = st_crps_binned(p, r.net.bins, r.net.lo, w, y);
                free(p);
            }
            int gs[2] = {0, gi[i]};
            for (int k = 0; k < (gi[i] ? 2 : 1); k++) {
                acc *a = &groups[gs[k]];
                a->pred[a->n] = est[t].mean, a->tru[a->n] = y, a->n++, a->crps += crps;
            }
        }
        if (!json) {
            printf("\ntarget %s\n  %-12s %6s %9s %9s %7s %8s %7s %16s%s\n", r.target_names[t], "population", "N", "bias",
                   "sigma_MAD", "eta", "RMSE", "R2", "mean +- 1 sigma", prob ? "     CRPS" : "");
        }
        { // predicted vs true density for everything in the split
            st_metrics m0;
            if (!st_point_metrics(groups[0].pred, groups[0].tru, groups[0].n, &m0)) {
                double lo = INFINITY, hi = -INFINITY;
                for (size_t i = 0; i < groups[0].n; i++) {
                    double a = groups[0].tru[i], b = groups[0].pred[i];
                    if (isnan(a) || isnan(b)) continue;
                    lo = fmin(lo, fmin(a, b)), hi = fmax(hi, fmax(a, b));
                }
                double pad = 0.03 * (hi - lo);
                char png[4300], title[256], note[256], xl[128], yl[128];
                char *cp2 = strdup(jpath);
                snprintf(png, sizeof png, "%s/pred_vs_true_%s.png", dirname(cp2), r.target_names[t]);
                free(cp2);
                snprintf(title, sizeof title, "%s split, %zu galaxies", split_name, m0.n);
                snprintf(note, sizeof note, "bias %.4f   sigma_MAD %.4f   eta %.3f   R2 %.3f", m0.bias, m0.sigma_mad, m0.eta, m0.r2);
                snprintf(xl, sizeof xl, "true %s", r.target_names[t]);
                snprintf(yl, sizeof yl, "predicted %s", r.target_names[t]);
                if (io_plot_density(png, title, xl, yl, groups[0].tru, groups[0].pred, groups[0].n, lo - pad, hi + pad, note))
                    fprintf(stderr, "galnn: warning: %s\n", gn_errmsg());
                else if (!json) printf("  plot: %s\n", png);
            }
        }
        fprintf(jf, "%s\"%s\": {", t ? ", " : "", r.target_names[t]);
        for (int g = 0; g < ng; g++) {
            st_metrics m;
            if (!groups[g].n || st_point_metrics(groups[g].pred, groups[g].tru, groups[g].n, &m)) continue;
            double crps = groups[g].crps / (double)groups[g].n;
            if (!json)
                printf("  %-12s %6zu %9.4f %9.4f %7.4f %8.4f %7.4f %7.4f +- %6.4f", groups[g].name, m.n, m.bias,
                       m.sigma_mad, m.eta, m.rmse, m.r2, m.mean, m.std),
                    prob ? printf(" %8.4f\n", crps) : printf("\n");
            fprintf(jf, "%s\"%s\": ", g ? ", " : "", groups[g].name);
            json_metrics(jf, &m, crps, prob);
        }
        fputc('}', jf);
    }
    fprintf(jf, "}}\n");
    fclose(jf);
    if (io_write_atomic(jpath, jbuf, jlen)) cmd_error("eval: %s", gn_errmsg());
    else if (!json) printf("\nwrote %s\n", jpath);
    if (json) fputs(jbuf, stdout);
    free(jbuf);
    free(gi);
    rc = 0;
out:
    for (int g = 0; groups && g < 65; g++) free(groups[g].pred), free(groups[g].tru);
    free(groups), free(outv), free(est);
    if (c.arena.head) nn_ctx_free(&c);
    run_free(&r);
    return rc;
}
