// galnn predict: predictions for every galaxy of a catalog (no targets needed).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/gn_common.h"
#include "cmd.h"
#include "pipeline/run.h"

void cmd_predict_help(void) {
    printf("usage: galnn predict --ckpt RUN/best.npz --out preds.csv [--catalog CSV] [--images TEMPLATE]\n"
           "                     [--split all|train|val|test] [--threads N]\n\n"
           "Writes one row per galaxy with usable inputs: id, split, and per target the prediction (the\n"
           "posterior mean for probabilistic heads) with, for Gaussian heads, its standard deviation, and for\n"
           "binned heads also the median, mode and 16th/84th percentiles of p(y) and `logp`, the log probability\n"
           "of the galaxy's true bin (empty when the catalog has no target) — the input of\n"
           "`galnn pid --pointwise`; --bins adds p0..p{bins-1}, the whole p(bin). Targets are not needed.\n"
           "--dump N FILE.npz also writes the first N galaxies' network inputs (input.<branch>) and head outputs\n"
           "(output), e.g. to check the weights in another framework (tools/torch_model.py).\n");
}

int cmd_predict(int argc, char **argv) {
    const char *ckpt = NULL, *out = NULL, *which = "all", *dump = NULL;
    int pbins = 0;
    long n_dump = 0;
    long threads = 0;
    const char *ov[8];
    char fov[4][1024];
    int n_ov = 0, n_f = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v && strcmp(a, "--help") && strcmp(a, "--bins")) return cmd_error("%s needs a value", a);
        const char *key = !strcmp(a, "--catalog") ? "data.catalog" : !strcmp(a, "--images") ? "data.images" : NULL;
        if (key) {
            snprintf(fov[n_f], sizeof fov[n_f], "%s=%s", key, v);
            ov[n_ov++] = fov[n_f++];
        } else if (!strcmp(a, "--ckpt")) ckpt = v;
        else if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--split")) which = v;
        else if (!strcmp(a, "--bins")) {
            pbins = 1;
            continue; // no value
        }
        else if (!strcmp(a, "--dump")) {
            if (cmd_parse_int(a, v, 1, 100000, &n_dump) || i + 2 >= argc) return cmd_error("--dump needs N and a file");
            dump = argv[i + 2];
            i++;
        }
        else if (!strcmp(a, "--threads")) {
            if (cmd_parse_int(a, v, 0, 1024, &threads)) return 1;
        } else return cmd_error("predict: unknown option '%s' (see `galnn help predict`)", a);
        i++;
    }
    if (!ckpt || !out) return cmd_error("predict: --ckpt and --out are required");
    int only = strcmp(which, "all") ? io_split_parse(which) : -1;
    if (strcmp(which, "all") && only < 0) return cmd_error("predict: --split '%s' is not all, train, val or test", which);
    gn_set_threads((int)threads);
    run r;
    if (run_from_checkpoint(&r, ckpt, ov, n_ov, 0, 0)) {
        run_free(&r);
        return cmd_error("predict: %s", gn_errmsg());
    }
    if (run_report(&r) == MD_REPORT_LATENT) {
        run_free(&r);
        return cmd_error("predict: %s is %s: it predicts no target (`galnn embed` writes its latent mu and sigma)", ckpt,
                         md_kind_of(&r.net)->what);
    }
    int rc = 1, T = r.n_targets, binned = r.net.head == MD_HEAD_BINNED;
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
    if (!(o = malloc(sizeof(float) * (n ? n : 1) * (size_t)r.net.n_out))) goto out;
    if (nn_ctx_init(&c, 64u << 20) || run_infer(&r, &c, rows, n, o)) goto out;
    f = open_memstream(&buf, &blen);
    fprintf(f, "id,split");
    for (int t = 0; t < T; t++) {
        const char *nm = r.target_names[t];
        fprintf(f, ",%s_pred", nm);
        if (r.net.head != MD_HEAD_REGRESSION) fprintf(f, ",%s_sd", nm);
        if (binned) fprintf(f, ",%s_median,%s_mode,%s_p16,%s_p84", nm, nm, nm, nm);
    }
    if (binned) fprintf(f, ",logp"); // ln q(true bin | inputs), empty without a target (galnn pid --pointwise)
    for (int k = 0; pbins && k < r.net.bins; k++) fprintf(f, ",p%d", k);
    fputc('\n', f);
    for (size_t i = 0; i < n; i++) {
        run_estimate(&r, o + i * (size_t)r.net.n_out, est);
        fprintf(f, "%s,%s", io_catalog_id(&r.cat, rows[i]), io_split_name(r.split[rows[i]]));
        for (int t = 0; t < T; t++) {
            fprintf(f, ",%.6f", est[t].mean);
            if (r.net.head != MD_HEAD_REGRESSION) fprintf(f, ",%.6f", est[t].sd);
            if (binned) fprintf(f, ",%.6f,%.6f,%.6f,%.6f", est[t].median, est[t].mode, est[t].p16, est[t].p84);
        }
        if (binned) {
            const float *lo = o + i * (size_t)r.net.n_out;
            double yt = r.target[0] ? r.target[0][rows[i]] : NAN, mx = lo[0], z = 0;
            for (int k = 1; k < r.net.bins; k++) mx = lo[k] > mx ? lo[k] : mx;
            for (int k = 0; k < r.net.bins; k++) z += exp(lo[k] - mx);
            if (isnan(yt)) fprintf(f, ",");
            else fprintf(f, ",%.6f", lo[md_bin_label(&r.net, yt)] - mx - log(z));
            for (int k = 0; pbins && k < r.net.bins; k++) fprintf(f, ",%.6g", exp(lo[k] - mx) / z);
        }
        fputc('\n', f);
    }
    fclose(f);
    f = NULL;
    if (io_write_atomic(out, buf, blen)) goto out;
    printf("wrote %s: %zu galaxies (%zu catalog rows lack an input)\n", out, n, r.n_unusable);
    if (dump) {
        int k = (int)(n_dump < (long)n ? n_dump : (long)n), maxS = 1;
        for (int d = 0; d < r.n_ds; d++) maxS = r.ds[d].h > maxS ? r.ds[d].h : maxS;
        float *scr = malloc(sizeof(float) * (size_t)maxS * maxS);
        io_aug *none = malloc(sizeof(io_aug) * (size_t)k);
        for (int i = 0; i < k; i++) none[i] = (io_aug){0, 0.5f, 0.5f};
        nn_tensor *in[MD_MAX_BRANCH];
        nn_ctx_reset(&c);
        io_npz_writer *w = io_npz_create(dump, 0);
        int bad = !scr || !none || !w || run_batch(&r, &c, rows, none, k, in, NULL, scr);
        for (int b = 0; !bad && b < r.net.n_branch; b++) {
            char nm[80];
            snprintf(nm, sizeof nm, "input.%s", r.net.spec[b].name);
            bad = io_npz_add_f32(w, nm, in[b]->ndim, in[b]->shape, in[b]->data);
        }
        if (!bad) bad = io_npz_add_f32(w, "output", 2, (int[]){k, r.net.n_out}, o);
        if (w) bad ? io_npz_abort(w) : (void)(bad = io_npz_close(w));
        free(scr), free(none);
        if (bad) goto out;
        printf("wrote %s: inputs and outputs of %d galaxies\n", dump, k);
    }
    rc = 0;
out:
    if (rc) cmd_error("predict: %s", gn_errmsg());
    if (f) fclose(f);
    free(buf), free(rows), free(o), free(est);
    if (c.arena.head) nn_ctx_free(&c);
    run_free(&r);
    return rc;
}
