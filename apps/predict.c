// galnn predict: predictions for every galaxy of a catalog (no targets needed).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/gn_common.h"
#include "../common/gn_mpi.h"
#include "../io/fitstable.h"
#include "cmd.h"
#include "flags.h"
#include "pipeline/run.h"

static void predict_usage(void) {
    printf(
        "usage: galnn predict --ckpt RUN/best.npz --out preds.csv [--catalog CSV] [--images TEMPLATE]\n"
        "                     [--split all|train|val|test] [--threads N]\n\n"
        "Writes one row per galaxy with usable inputs: id, split, and per target the prediction (the\n"
        "posterior mean for probabilistic heads) with, for Gaussian heads, its standard deviation, and for\n"
        "binned heads also the median, mode and 16th/84th percentiles of p(y) and `logp`, the log "
        "probability\n"
        "of the galaxy's true bin (empty when the catalog has no target) — the input of\n"
        "`galnn pid --pointwise`; --bins adds p0..p{bins-1}, the whole p(bin). Targets are not needed.\n"
        "--dump N FILE.npz also writes the first N galaxies' network inputs (input.<branch>) and head "
        "outputs\n"
        "(output), e.g. to check the weights in another framework (tools/torch_model.py).\n");
}

// The header: id, split, per target the estimates; binned heads also logp (and p(bin)).
static void write_header(const run *rp, int pbins, FILE *f) {
    int T = rp->n_targets, binned = rp->net.head == MD_HEAD_BINNED, quant = rp->net.head == MD_HEAD_QUANTILES;
    fprintf(f, "id,split");
    for (int t = 0; t < T; t++) {
        const char *nm = rp->target_names[t];
        fprintf(f, ",%s_pred", nm);
        if (rp->net.head != MD_HEAD_REGRESSION) fprintf(f, ",%s_sd", nm);
        if (binned) fprintf(f, ",%s_median,%s_mode,%s_p16,%s_p84", nm, nm, nm, nm);
        if (quant) fprintf(f, ",%s_p16,%s_p84", nm, nm);
    }
    if (binned)
        fprintf(f, ",logp"); // ln q(true bin | inputs), empty without a target (galnn pid --pointwise)
    for (int k = 0; pbins && k < rp->net.bins; k++) fprintf(f, ",p%d", k);
    fprintf(f, rp->has_range ? ",ood\n" : "\n");
}

// One row per galaxy (after the header, if asked).
static void write_csv(const run *rp, const uint32_t *rows, size_t n, const float *o, int pbins, run_est *est,
                      double nsig, size_t *n_ood, int header, FILE *f) {
    int T = rp->n_targets, binned = rp->net.head == MD_HEAD_BINNED, quant = rp->net.head == MD_HEAD_QUANTILES;
    if (header) write_header(rp, pbins, f);
    for (size_t i = 0; i < n; i++) {
        run_estimate(rp, o + i * (size_t)rp->net.n_out, est);
        const char *sp = rp->foreign_catalog ? "none" : io_split_name(rp->split[rows[i]]);
        fprintf(f, "%s,%s", io_catalog_id(&rp->cat, rows[i]), sp);
        for (int t = 0; t < T; t++) {
            fprintf(f, ",%.6f", est[t].mean);
            if (rp->net.head != MD_HEAD_REGRESSION) fprintf(f, ",%.6f", est[t].sd);
            if (binned)
                fprintf(f, ",%.6f,%.6f,%.6f,%.6f", est[t].median, est[t].mode, est[t].p16, est[t].p84);
            if (quant) fprintf(f, ",%.6f,%.6f", est[t].p16, est[t].p84);
        }
        if (binned) {
            const float *lo = o + i * (size_t)rp->net.n_out;
            double yt = rp->target[0] ? rp->target[0][rows[i]] : NAN, mx = lo[0], z = 0;
            for (int k = 1; k < rp->net.bins; k++) mx = lo[k] > mx ? lo[k] : mx;
            for (int k = 0; k < rp->net.bins; k++) z += exp(lo[k] - mx);
            if (isnan(yt))
                fprintf(f, ",");
            else
                fprintf(f, ",%.6f", lo[md_bin_label(&rp->net, yt)] - mx - log(z));
            for (int k = 0; pbins && k < rp->net.bins; k++) fprintf(f, ",%.6g", exp(lo[k] - mx) / z);
        }
        int ood = run_ood(rp, rows[i], est, nsig);
        if (rp->has_range) fprintf(f, ",%d", ood);
        n_ood[0] += (ood & RUN_OOD_INPUT) != 0, n_ood[1] += (ood & RUN_OOD_PRED) != 0;
        fputc('\n', f);
    }
}

#define CLI predict_cli
static const cmd_flag predict_flags[] = {
    F_CKPT(ckpt, "the checkpoint (RUN/best.npz)"),
    F_OUT(out, "CSV", "the predictions"),
    F_SPLIT(which, "all, train, val or test"),
    F_ON("--bins", pbins, "binned heads: also p0..p{bins-1}"),
    F_ON("--tta", tta, "image models: average the 8 dihedral views of each cutout (default: [train] tta)"),
    F_OFF("--no-tta", tta, "one view per cutout even where [train] tta = 1"),
    F_DUMP(dump, "the first N galaxies' inputs and outputs"),
    F_DBL("--ood-sigma", ood_sigma, 0, 1e6, "N",
          "flag inputs and predictions beyond the training range by N training standard deviations"),
    F_THREADS(threads),
    F_CATALOG(sets, "another catalog (targets not needed)"),
    F_IMAGES(sets, "its cutouts"),
    F_DATA_KEYS(sets),
    F_END};

// The predictions as CSV, or as a FITS binary table when out ends in .fits (the CSV text is parsed back
// into columns: the text buffer goes to the catalog).
static int write_out(const char *out, char **buf, size_t len) {
    size_t L = strlen(out);
    if (L < 5 || strcmp(out + L - 5, ".fits")) return io_write_atomic(out, *buf, len);
    io_catalog c;
    io_catalog_opts co = {1e300, 1, NULL}; // predictions are values, not sentinels
    int rc = io_catalog_parse(out, *buf, len, &co, &c);
    *buf = NULL;
    if (!rc) rc = io_catalog_write_fits(&c, out), io_catalog_free(&c);
    return rc;
}

// The out-of-range counts on screen (the ood column flags the galaxies).
static void report_ood(const run *r, const size_t *n_ood, double nsig) {
    if (!r->has_range) {
        printf("  (the checkpoint predates training ranges: no out-of-range flags)\n");
        return;
    }
    if (n_ood[0] || n_ood[1])
        printf("  WARNING: %zu galaxies have an input and %zu a prediction more than %g training standard "
               "deviations outside the training range (flagged in the ood column: 1 input, 2 prediction, 3 "
               "both)\n",
               n_ood[0], n_ood[1], nsig);
}

void predict_defaults(void *p) {
    predict_cli *o = p;
    o->ood_sigma = 6, o->tta = -1;
    o->which = "all";
}

int predict_run(const predict_cli *op) {
    const predict_cli cl = *op;
    const char *ckpt = cl.ckpt, *out = cl.out, *which = cl.which, *dump = NULL;
    int pbins = cl.pbins;
    long n_dump = 0, threads = cl.threads;
    if (cmd_dump_opts(&cl.dump, &n_dump, &dump)) return 1;
    if (!ckpt || !out) return cmd_error("predict: --ckpt and --out are required");
    int only = strcmp(which, "all") ? io_split_parse(which) : -1;
    if (strcmp(which, "all") && only < 0)
        return cmd_error("predict: --split '%s' is not all, train, val or test", which);
    gn_set_threads((int)threads);
    if (gn_mpi_size() > 1 && dump)
        return cmd_error("predict: --dump is for one process (start it without mpirun)");
    run r;
    if (cmd_open_ranked(&r, "predict", ckpt, &cl.sets)) return 1;
    if (cl.tta > 0 && !run_has_images(&r)) {
        run_free(&r);
        return cmd_error("predict: --tta: %s has no image branch to augment", ckpt);
    }
    r.tta = cl.tta >= 0 ? cl.tta : (int)r.train.tta && run_has_images(&r);
    if (run_report(&r) == MD_REPORT_LATENT) {
        run_free(&r);
        return cmd_error(
            "predict: %s is %s: it predicts no target (`galnn embed` writes its latent mu and sigma)", ckpt,
            md_kind_of(&r.net)->what);
    }
    if (r.foreign_catalog && only >= 0) {
        cmd_error("predict: --split %s: %s is not the catalog the model was trained on, so its galaxies have "
                  "no train/val/test split (use --split all)",
                  which, r.data.catalog);
        run_free(&r);
        return 1;
    }
    int rc = 1, T = r.n_targets;
    size_t n = 0;
    uint32_t *rows = NULL;
    float *o = NULL;
    run_est *est = malloc(sizeof(run_est) * (size_t)T);
    nn_ctx c;
    memset(&c, 0, sizeof c);
    char *buf = NULL;
    size_t blen = 0;
    FILE *f = NULL;
    if (!est || run_select_rows(&r, only, &rows, &n)) goto out;
    // MPI: rank R takes its block of whole batches; the file is the one-process file, byte for byte
    int R = gn_mpi_rank();
    size_t lo, hi;
    run_rank_block(n, r.batch, &lo, &hi);
    if (!(o = malloc(sizeof(float) * (hi - lo + 1) * (size_t)r.net.n_out))) goto out;
    if (nn_ctx_init_inference(&c, 64u << 20) || run_infer(&r, &c, rows + lo, hi - lo, o)) goto out;
    f = open_memstream(&buf, &blen);
    size_t n_ood[2] = {0, 0};
    write_csv(&r, rows + lo, hi - lo, o, pbins, est, cl.ood_sigma, n_ood, R == 0, f);
    fclose(f);
    f = NULL;
    double cnt[2] = {(double)n_ood[0], (double)n_ood[1]}; // over the ranks
    if (gn_mpi_sum_ordered(cnt, 2) || cmd_write_ranked(out, &buf, &blen, write_out)) goto out;
    n_ood[0] = (size_t)cnt[0], n_ood[1] = (size_t)cnt[1];
    if (R == 0) printf("wrote %s: %zu galaxies (%zu catalog rows lack an input)\n", out, n, r.n_unusable);
    if (R == 0) report_ood(&r, n_ood, cl.ood_sigma);
    if (dump && run_write_dump(&r, &c, rows, n, o, r.net.n_out, n_dump, dump)) goto out;
    rc = 0;
out:
    if (rc) cmd_error("predict: %s", gn_errmsg());
    if (f) fclose(f);
    free(buf), free(rows), free(o), free(est);
    if (c.arena.head) nn_ctx_free(&c);
    run_free(&r);
    return rc;
}

static int predict_run_v(const void *o) { return predict_run(o); }

CMD_DEF(cmd_predict, "predict",
        "predictions (and uncertainties / p(y) quantiles) for every galaxy of a catalog", predict_usage,
        predict_flags, sizeof(predict_cli), predict_defaults, predict_run_v, offsetof(predict_cli, sets),
        NULL);
