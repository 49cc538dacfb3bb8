// galnn posterior: samples of p(targets | inputs) from a flow model ([model]
// kind = flow), summarised per galaxy; and the flow models' evaluation that
// galnn eval runs (point metrics of the posterior mean, CRPS from samples,
// interval coverage, the PIT histogram and its KS distance, the test NLL).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/gn_common.h"
#include "../io/npy.h"
#include "../io/plot.h"
#include "../stats/metrics.h"
#include "cmd.h"
#include "flags.h"
#include "pipeline/run.h"

static void posterior_usage(void) {
    printf("usage: galnn posterior --ckpt RUN/best.npz --out post.csv [--catalog CSV] [--join T.csv] "
           "[--split all|train|val|test]\n"
           "                       [--samples 1000] [--seed 1] [--dump samples.npy] [--threads N]\n\n"
           "Draws --samples values of p(targets | inputs) per galaxy from a flow model ([model] kind = flow) "
           "and\n"
           "writes id, split and per target the posterior mean, median and the 16/84th and 2.5/97.5th\n"
           "percentiles, in the targets' units; with a chain-rule target ([model] chain) also "
           "<target>_pdetect,\n"
           "the probability that it is measurable. --dump writes every sample as NPY, shape (galaxies, "
           "samples,\n"
           "targets), rows in the CSV's order. Targets are not needed in the catalog. For another catalog, "
           "give\n"
           "--catalog and, for a model with image features, --join the VAE latent of those galaxies\n"
           "(galnn embed --ckpt VAE --full --catalog CSV --images ... --out mu.csv).\n");
}

static int cmp_f(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// The feature matrix (n, in_dim) of the rows.
static int features(const run *r, nn_ctx *c, const uint32_t *rows, size_t n, float *X) {
    int D = r->net.post.sp.in_dim;
    run_batches it;
    int rc = run_batches_begin(&it, r, c, rows, n, 512, 0);
    while (!rc && run_batches_next(&it)) {
        nn_tensor *f = md_net_flow_features(c, &r->net, it.in);
        if (!f)
            rc = GN_ENOMEM;
        else
            memcpy(X + it.o * (size_t)D, f->data, sizeof(float) * (size_t)it.b * D);
    }
    return run_batches_end(&it, rc);
}

int run_posterior_detect(const run *r, nn_ctx *c, const uint32_t *rows, size_t n, double *p) {
    int D = r->net.post.sp.in_dim;
    float *X = gn_malloc(sizeof(float) * (n ? n : 1) * D);
    if (!X) return GN_ENOMEM;
    int rc = features(r, c, rows, n, X), ge = c->grad_enabled;
    c->grad_enabled = 0;
    for (size_t o = 0; !rc && o < n; o += 512) {
        int b = (int)(n - o < 512 ? n - o : 512);
        nn_ctx_reset(c);
        nn_tensor *P = md_post_detect(c, &r->net.post, nn_tensor_from(c, NN_SHAPE(b, D), X + o * (size_t)D));
        if (!P) rc = GN_EINVAL;
        for (int i = 0; !rc && i < b; i++) p[o + i] = P->data[i];
    }
    c->grad_enabled = ge;
    free(X);
    return rc;
}

int run_posterior_samples(const run *r, nn_ctx *c, const uint32_t *rows, size_t n, int S, uint64_t seed,
                          float *out) {
    if (run_report(r) != MD_REPORT_POSTERIOR)
        return gn_err(GN_EINVAL, "not a flow model: its configuration has no [model] kind = flow");
    int D = r->net.post.sp.in_dim, T = r->n_targets;
    float *X = gn_malloc(sizeof(float) * (n ? n : 1) * (size_t)D);
    if (!X) return GN_ENOMEM;
    gn_rng rng;
    gn_rng_seed(&rng, seed, GN_STREAM_SAMPLE);
    int rc = features(r, c, rows, n, X);
    if (!rc) rc = md_post_sample(c, &r->net.post, X, (int)n, S, &rng, out);
    free(X);
    for (size_t k = 0; !rc && k < n * (size_t)S; k++)
        for (int t = 0; t < T; t++) out[k * T + t] = (float)(out[k * T + t] * r->tstd[t] + r->tmean[t]);
    return rc;
}

typedef struct posterior_cli {
    const char *ckpt, *out, *dump, *which;
    long S, seed, threads;
    cmd_strs sets;
} posterior_cli;

#define CLI posterior_cli
static const cmd_flag posterior_flags[] = {
    F_CKPT(ckpt, "the checkpoint of a flow model"),
    F_OUT(out, "CSV", "the per-galaxy summaries"),
    F_SPLIT(which, "all, train, val or test"),
    F_INT("--samples", S, 2, 1000000, "S", "posterior draws per galaxy"),
    F_SEED(seed, "the sampling seed"),
    F_STR("--dump", dump, "FILE.npy", "every sample, (galaxies, samples, targets)"),
    F_THREADS(threads),
    F_CATALOG(sets, "another catalog (targets not needed)"),
    F_SET("--join", sets, "data.join", "CSV;...", "its VAE latent (galnn embed --full)"),
    F_END};

static void posterior_defaults(void *p) {
    posterior_cli *o = p;
    o->which = "all", o->S = 1000, o->seed = 1;
}

static int posterior_run(const void *p) {
    const posterior_cli cl = *(const posterior_cli *)p;
    const char *ckpt = cl.ckpt, *out = cl.out, *dump = cl.dump, *which = cl.which;
    long S = cl.S, seed = cl.seed;
    if (!ckpt || !out) return cmd_error("posterior: give --ckpt RUN/best.npz and --out post.csv");
    int only = !strcmp(which, "all")     ? -1
               : !strcmp(which, "train") ? IO_SPLIT_TRAIN
               : !strcmp(which, "val")   ? IO_SPLIT_VAL
               : !strcmp(which, "test")  ? IO_SPLIT_TEST
                                         : -2;
    if (only == -2) return cmd_error("posterior: --split '%s' is not all, train, val or test", which);
    gn_set_threads((int)cl.threads);
    run r;
    if (run_from_checkpoint(&r, ckpt, cl.sets.v, cl.sets.n, 0, 0)) {
        run_free(&r);
        return cmd_error("posterior: %s", gn_errmsg());
    }
    int rc = 1, T = r.n_targets;
    uint32_t *rows = NULL;
    float *smp = NULL;
    size_t n = 0, blen = 0;
    char *buf = NULL;
    nn_ctx c;
    memset(&c, 0, sizeof c);
    if (run_report(&r) != MD_REPORT_POSTERIOR) {
        gn_err(GN_EINVAL, "%s is not a flow model ([model] kind = flow)", ckpt);
        goto done;
    }
    if (run_select_rows(&r, only, &rows, &n) ||
        !(smp = gn_malloc(sizeof(float) * (n ? n : 1) * (size_t)S * T)))
        goto done;
    if (nn_ctx_init(&c, 64u << 20) || run_posterior_samples(&r, &c, rows, n, (int)S, (uint64_t)seed, smp))
        goto done;
    FILE *f = open_memstream(&buf, &blen);
    if (!f) goto done;
    fprintf(f, "id,split");
    for (int t = 0; t < T; t++) {
        const char *nm = r.target_names[t];
        fprintf(f, ",%s_mean,%s_median,%s_p16,%s_p84,%s_p2.5,%s_p97.5", nm, nm, nm, nm, nm, nm);
    }
    double *pdet = NULL; // a chain target: the probability that it is measured
    if (r.optional_target >= 0) {
        fprintf(f, ",%s_pdetect", r.target_names[r.optional_target]);
        if (!(pdet = gn_malloc(sizeof(double) * (n ? n : 1))) ||
            run_posterior_detect(&r, &c, rows, n, pdet)) {
            fclose(f), free(pdet);
            goto done;
        }
    }
    fputc('\n', f);
    float *v = gn_malloc(sizeof(float) * (size_t)S);
    for (size_t i = 0; v && i < n; i++) {
        fprintf(f, "%s,%s", io_catalog_id(&r.cat, rows[i]), io_split_name(r.split[rows[i]]));
        for (int t = 0; t < T; t++) {
            double m = 0;
            for (long s = 0; s < S; s++) v[s] = smp[((size_t)i * S + s) * T + t], m += v[s] / S;
            qsort(v, (size_t)S, sizeof(float), cmp_f);
            fprintf(f, ",%.6g,%.6g,%.6g,%.6g,%.6g,%.6g", m, st_quantile_sorted(v, (int)S, 0.5),
                    st_quantile_sorted(v, (int)S, 0.16), st_quantile_sorted(v, (int)S, 0.84),
                    st_quantile_sorted(v, (int)S, 0.025), st_quantile_sorted(v, (int)S, 0.975));
        }
        if (pdet) fprintf(f, ",%.4f", pdet[i]);
        fputc('\n', f);
    }
    free(v), free(pdet);
    fclose(f);
    if (io_write_atomic(out, buf, blen)) goto done;
    printf("wrote %s: %zu galaxies, %ld posterior samples each (%zu catalog rows lack an input)\n", out, n, S,
           r.n_unusable);
    if (dump) {
        int64_t shape[3] = {(int64_t)n, S, T};
        io_array a = io_array_view(IO_F32, 3, shape, smp);
        if (io_npy_write(dump, &a)) goto done;
        printf("wrote %s: samples (%zu, %ld, %d)\n", dump, n, S, T);
    }
    rc = 0;
done:
    if (rc) cmd_error("posterior: %s", gn_errmsg());
    free(buf), free(rows), free(smp);
    if (c.arena.head) nn_ctx_free(&c);
    run_free(&r);
    return rc;
}

// log p(y | x) per row in the targets' own units (standardisation adds -sum_t ln std_t).
static int log_probs(const run *r, nn_ctx *c, const uint32_t *rows, size_t n, double *lp) {
    int T = r->n_targets, D = r->net.post.sp.in_dim, rc;
    float *X = gn_malloc(sizeof(float) * (n ? n : 1) * D);
    if (!X) return GN_ENOMEM;
    double lstd = 0;
    for (int t = 0; t < T; t++) lstd += log(r->tstd[t]);
    rc = features(r, c, rows, n, X);
    int ge = c->grad_enabled;
    c->grad_enabled = 0;
    for (size_t o = 0; !rc && o < n; o += 512) {
        int b = (int)(n - o < 512 ? n - o : 512);
        nn_ctx_reset(c);
        nn_tensor *Xt = nn_tensor_from(c, NN_SHAPE(b, D), X + o * (size_t)D),
                  *Y = nn_tensor_new(c, NN_SHAPE(b, T));
        if (!Xt || !Y) {
            rc = GN_ENOMEM;
            break;
        }
        for (int i = 0; i < b; i++)
            for (int t = 0; t < T; t++)
                Y->data[i * T + t] = (float)((r->target[t][rows[o + i]] - r->tmean[t]) / r->tstd[t]);
        nn_tensor *L = md_post_log_prob(c, &r->net.post, Xt, Y);
        if (!L) rc = GN_ENOMEM;
        for (int i = 0; !rc && i < b; i++) lp[o + i] = L->data[i] - lstd;
    }
    c->grad_enabled = ge;
    free(X);
    return rc;
}

int run_posterior_eval(const run *const *rs, int K, nn_ctx *c, const uint32_t *rows, size_t n, int S,
                       uint64_t seed, const char *dir, const char *split_name, int quiet, char **json,
                       size_t *json_len) {
    const run *r = rs[0];
    int T = r->n_targets, KS = K * S;
    for (int k = 1; k < K; k++) { // an ensemble: the same targets and galaxies
        int same = rs[k]->n_targets == T && rs[k]->cat.n_rows == r->cat.n_rows;
        for (int t = 0; same && t < T; t++) same = !strcmp(rs[k]->target_names[t], r->target_names[t]);
        for (size_t i = 0; same && i < n; i++)
            same = !strcmp(io_catalog_id(&rs[k]->cat, rows[i]), io_catalog_id(&r->cat, rows[i]));
        if (!same)
            return gn_err(GN_EINVAL,
                          "ensemble member %d predicts other targets or reads another catalog than the first",
                          k + 1);
    }
    float *smp = gn_malloc(sizeof(float) * (n ? n : 1) * (size_t)KS * T),
          *one = gn_malloc(sizeof(float) * (n ? n : 1) * (size_t)S * T);
    float *v = gn_malloc(sizeof(float) * (size_t)KS);
    double *pred = gn_malloc(sizeof(double) * (n ? n : 1)), *tru = gn_malloc(sizeof(double) * (n ? n : 1));
    double *pit = gn_malloc(sizeof(double) * (n ? n : 1)), *lp = gn_malloc(sizeof(double) * (n ? n : 1) * K);
    double *ale = gn_calloc((size_t)T, sizeof(double)), *epi = gn_calloc((size_t)T, sizeof(double));
    int rc = (!smp || !one || !v || !pred || !tru || !pit || !lp || !ale || !epi) ? GN_ENOMEM : GN_OK;
    for (int k = 0; !rc && k < K; k++) {
        // member k's samples go to columns [k S, (k + 1) S) of each galaxy's pool
        if ((rc = run_posterior_samples(rs[k], c, rows, n, S, seed + (uint64_t)k, one))) break;
        for (size_t i = 0; i < n; i++)
            memcpy(smp + ((size_t)i * KS + (size_t)k * S) * T, one + (size_t)i * S * T,
                   sizeof(float) * (size_t)S * T);
        rc = log_probs(rs[k], c, rows, n, lp + (size_t)k * n);
    }
    FILE *jf = NULL;
    char *jb = NULL;
    size_t jl = 0;
    if (!rc && !(jf = open_memstream(&jb, &jl))) rc = GN_ENOMEM;
    if (rc) goto out;
    // the (mixture's) NLL: -log (1/K) sum_k p_k(y | x)
    double nll = 0;
    for (size_t i = 0; i < n; i++) {
        double mx = -INFINITY, s = 0;
        for (int k = 0; k < K; k++) mx = fmax(mx, lp[(size_t)k * n + i]);
        for (int k = 0; k < K; k++) s += exp(lp[(size_t)k * n + i] - mx);
        nll -= (mx + log(s / K)) / (double)n;
    }
    // law of total variance over the members: aleatoric = E_k Var(y | x, k), epistemic = Var_k E(y | x, k)
    for (size_t i = 0; K > 1 && i < n; i++)
        for (int t = 0; t < T; t++) {
            double mm = 0, m2 = 0, va = 0;
            for (int k = 0; k < K; k++) {
                double m = 0, q = 0;
                for (int s2 = 0; s2 < S; s2++) m += smp[((size_t)i * KS + (size_t)k * S + s2) * T + t] / S;
                for (int s2 = 0; s2 < S; s2++) {
                    double d = smp[((size_t)i * KS + (size_t)k * S + s2) * T + t] - m;
                    q += d * d / (S - 1);
                }
                mm += m / K, m2 += m * m / K, va += q / K;
            }
            ale[t] += va / (double)n, epi[t] += fmax(m2 - mm * mm, 0) * K / (K - 1.0) / (double)n;
        }
    if (!quiet) {
        printf("\n%s split: %zu galaxies, %d posterior samples each%s; joint NLL %.4f nats per galaxy\n",
               split_name, n, KS, K > 1 ? " (pooled over the ensemble)" : "", nll);
        printf("  %-12s %9s %9s %7s %8s %7s %8s %8s %8s %8s%s\n", "target", "bias", "sigma_MAD", "eta",
               "RMSE", "R2", "CRPS", "cov68", "cov95", "PIT KS", K > 1 ? "  sigma_ale  sigma_epi" : "");
    }
    fprintf(jf, "{\"split\": \"%s\", \"samples\": %d, \"members\": %d, \"nll\": %.6g, \"targets\": {",
            split_name, KS, K, nll);
    for (int t = 0; t < T; t++) {
        double crps = 0, c68 = 0, c95 = 0;
        size_t n0 = n;
        n = 0; // the galaxies with this target (a chain target may be missing)
        for (size_t i = 0; i < n0; i++) {
            double m = 0, y = r->target[t][rows[i]];
            if (isnan(y)) continue;
            for (int s2 = 0; s2 < KS; s2++) v[s2] = smp[((size_t)i * KS + s2) * T + t], m += v[s2] / KS;
            qsort(v, (size_t)KS, sizeof(float), cmp_f);
            pred[n] = m, tru[n] = y;
            crps += st_crps_sorted(v, KS, y);
            c68 += y >= st_quantile_sorted(v, KS, 0.16) && y <= st_quantile_sorted(v, KS, 0.84);
            c95 += y >= st_quantile_sorted(v, KS, 0.025) && y <= st_quantile_sorted(v, KS, 0.975);
            int below = 0;
            while (below < KS && v[below] <= y) below++;
            pit[n++] = (below + 0.5) / (KS + 1.0);
        }
        if (n) crps /= (double)n, c68 /= (double)n, c95 /= (double)n;
        double *sp = gn_malloc(sizeof(double) * (n ? n : 1)),
               ks = 0; // KS distance of the PIT values from uniform
        if (!sp) {
            rc = GN_ENOMEM;
            break;
        }
        memcpy(sp, pit, sizeof(double) * n);
        qsort(sp, n, sizeof(double), cmp_d);
        for (size_t i = 0; i < n; i++)
            ks = fmax(ks, fmax(fabs((i + 1.0) / n - sp[i]), fabs(sp[i] - (double)i / n)));
        free(sp);
        st_metrics m;
        if ((rc = st_point_metrics(pred, tru, n, &m))) break;
        if (!quiet) {
            printf("  %-12s %9.4f %9.4f %7.4f %8.4f %7.4f %8.4f %8.3f %8.3f %8.4f", r->target_names[t],
                   m.bias, m.sigma_mad, m.eta, m.rmse, m.r2, crps, c68, c95, ks);
            if (K > 1) printf("  %9.4f  %9.4f", sqrt(ale[t]), sqrt(epi[t]));
            printf("\n");
        }
        fprintf(jf,
                "%s\"%s\": {\"n\": %zu, \"bias\": %.6g, \"sigma_mad\": %.6g, \"eta\": %.6g, \"rmse\": %.6g, "
                "\"r2\": %.6g, "
                "\"crps\": %.6g, \"coverage68\": %.6g, \"coverage95\": %.6g, \"pit_ks\": %.6g",
                t ? ", " : "", r->target_names[t], m.n, m.bias, m.sigma_mad, m.eta, m.rmse, m.r2, crps, c68,
                c95, ks);
        if (K > 1)
            fprintf(jf, ", \"sigma_aleatoric\": %.6g, \"sigma_epistemic\": %.6g", sqrt(ale[t]), sqrt(epi[t]));
        fputc('}', jf);
        char png[4300], title[300];
        snprintf(png, sizeof png, "%s/pit_%s.png", dir, r->target_names[t]);
        snprintf(title, sizeof title, "PIT of %s, %s split (flat = calibrated; KS %.3f)", r->target_names[t],
                 split_name, ks);
        io_hist h = {"PIT", pit, n, 0};
        if (io_plot_hists(png, title, "P(sample <= true value)", &h, 1, 20, 0, 1))
            fprintf(stderr, "galnn: warning: %s\n", gn_errmsg());
        else if (!quiet)
            printf("  plot: %s\n", png);
        n = n0;
    }
    fputc('}', jf);                       // targets
    if (!rc && r->optional_target >= 0) { // the detectability head: P(measured | x) against whether it was
        double acc = 0, frac = 0, *pd = gn_malloc(sizeof(double) * (n ? n : 1));
        if (!pd || (rc = run_posterior_detect(r, c, rows, n, pd))) {
            free(pd);
            rc = rc ? rc : GN_ENOMEM;
            goto out;
        }
        for (size_t i = 0; i < n; i++) {
            int have = !isnan(r->target[r->optional_target][rows[i]]);
            acc += ((pd[i] > 0.5) == have) / (double)n, frac += have / (double)n;
        }
        free(pd);
        if (!quiet)
            printf("  %s measured for %.1f %% of the galaxies; the detectability head classifies %.1f %% "
                   "correctly\n",
                   r->target_names[r->optional_target], 100 * frac, 100 * acc);
        fprintf(jf, ", \"detect\": {\"target\": \"%s\", \"measured\": %.6g, \"accuracy\": %.6g}",
                r->target_names[r->optional_target], frac, acc);
    }
    if (K > 1 && !quiet)
        printf("  (sigma_ale = sqrt(mean over galaxies of E_k Var(y | x, k)), sigma_epi = sqrt(mean of Var_k "
               "E(y | x, k)),\n"
               "   the law of total variance over the %d members)\n",
               K);
    fprintf(jf, "}\n");
    fclose(jf);
    if (!rc)
        *json = jb, *json_len = jl;
    else
        free(jb);
out:
    free(smp), free(one), free(v), free(pred), free(tru), free(pit), free(lp), free(ale), free(epi);
    return rc;
}

CMD_DEF(cmd_posterior, "posterior",
        "posterior samples of a flow model: mean, median, 68/95 % intervals per galaxy (and raw samples)",
        posterior_usage, posterior_flags, sizeof(posterior_cli), posterior_defaults, posterior_run,
        offsetof(posterior_cli, sets), NULL);
