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
#include "../common/gn_mpi.h"
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
    F_DATA_KEYS(sets),
    F_SET("--join", sets, "data.join", "CSV;...", "its VAE latent (galnn embed --full)"),
    F_END};

static void posterior_defaults(void *p) {
    posterior_cli *o = p;
    o->which = "all", o->S = 1000, o->seed = 1;
}

static int write_plain(const char *path, char **buf, size_t len) { return io_write_atomic(path, *buf, len); }

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
    if (gn_mpi_size() > 1 && dump)
        return cmd_error("posterior: --dump is for one process (start it without mpirun)");
    run r;
    if (cmd_open_ranked(&r, "posterior", ckpt, &cl.sets)) return 1;
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
    size_t all = 0, lo, hi; // MPI: this rank's galaxies, in whole sampling passes (one process: all)
    if (run_select_rows(&r, only, &rows, &all)) goto done;
    run_rank_block(all, (int)run_posterior_unit((int)S), &lo, &hi);
    n = hi - lo;
    if (!(smp = gn_malloc(sizeof(float) * (n ? n : 1) * (size_t)S * T)) || nn_ctx_init(&c, 64u << 20) ||
        run_posterior_samples_at(&r, &c, rows + lo, n, lo, (int)S, (uint64_t)seed, smp))
        goto done;
    FILE *f = open_memstream(&buf, &blen);
    if (!f) goto done;
    for (int t = 0; gn_mpi_rank() == 0 && t <= T; t++) { // the header
        const char *nm = t < T ? r.target_names[t] : "";
        if (t < T)
            fprintf(f, "%s,%s_mean,%s_median,%s_p16,%s_p84,%s_p2.5,%s_p97.5", t ? "" : "id,split", nm, nm, nm,
                    nm, nm, nm);
        else if (r.optional_target >= 0)
            fprintf(f, ",%s_pdetect", r.target_names[r.optional_target]);
    }
    if (gn_mpi_rank() == 0) fputc('\n', f);
    double *pdet = NULL; // a chain target: the probability that it is measured
    if (r.optional_target >= 0 && (!(pdet = gn_malloc(sizeof(double) * (n ? n : 1))) ||
                                   run_posterior_detect(&r, &c, rows + lo, n, pdet))) {
        fclose(f), free(pdet);
        goto done;
    }
    float *v = gn_malloc(sizeof(float) * (size_t)S);
    for (size_t i = 0; v && i < n; i++) {
        fprintf(f, "%s,%s", io_catalog_id(&r.cat, rows[lo + i]), io_split_name(r.split[rows[lo + i]]));
        for (int t = 0; t < T; t++) {
            double m = 0;
            for (long s = 0; s < S; s++) v[s] = smp[((size_t)i * S + s) * T + t], m += v[s] / S;
            st_sort_f(v, (size_t)S);
            fprintf(f, ",%.6g,%.6g,%.6g,%.6g,%.6g,%.6g", m, st_quantile_sorted(v, (int)S, 0.5),
                    st_quantile_sorted(v, (int)S, 0.16), st_quantile_sorted(v, (int)S, 0.84),
                    st_quantile_sorted(v, (int)S, 0.025), st_quantile_sorted(v, (int)S, 0.975));
        }
        if (pdet) fprintf(f, ",%.4f", pdet[i]);
        fputc('\n', f);
    }
    free(v), free(pdet);
    fclose(f);
    if (cmd_write_ranked(out, &buf, &blen, write_plain)) goto done;
    if (gn_mpi_rank() == 0)
        printf("wrote %s: %zu galaxies, %ld posterior samples each (%zu catalog rows lack an input)\n", out,
               all, S, r.n_unusable);
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

CMD_DEF(cmd_posterior, "posterior",
        "posterior samples of a flow model: mean, median, 68/95 % intervals per galaxy (and raw samples)",
        posterior_usage, posterior_flags, sizeof(posterior_cli), posterior_defaults, posterior_run,
        offsetof(posterior_cli, sets), NULL);
