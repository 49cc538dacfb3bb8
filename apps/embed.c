// galnn embed: the S vector (or the whole latent) of every galaxy from a latent model.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/gn_common.h"
#include "../common/gn_mpi.h"
#include "cmd.h"
#include "flags.h"
#include "pipeline/run.h"

static void embed_usage(void) {
    printf(
        "usage: galnn embed --ckpt RUN/best.npz --out S.csv [--catalog CSV] [--images TEMPLATE]\n"
        "                   [--split all|train|val|test] [--full] [--dump N FILE.npz] [--threads N]\n\n"
        "Writes id, split and s0..s{D-1} for every galaxy with usable inputs: S, the first dim_main latent\n"
        "components that feed the estimator (spec §1.5), or with --full the whole latent (dim_main +\n"
        "dim_ext). The split column comes from the run's own split rule, so `galnn causal --latent S.csv`\n"
        "takes its neighbours from the training galaxies and its queries from the test galaxies.\n"
        "--dump N FILE.npz also writes the first N galaxies' network inputs (input.<branch>) and their\n"
        "latent values (output), to check the network elsewhere (tools/torch_model.py, tools/parity.py).\n");
}

#define CLI embed_cli
static const cmd_flag embed_flags[] = {F_CKPT(ckpt, "the checkpoint of a latent model or a VAE"),
                                       F_OUT(out, "CSV", "id, split and the latent columns"),
                                       F_SPLIT(which, "all, train, val or test"),
                                       F_ON("--full", full, "the whole latent (VAEs: mu then sigma)"),
                                       F_DUMP(dump, "the first N galaxies' inputs and latent values"),
                                       F_THREADS(threads),
                                       F_CATALOG(sets, "another catalog"),
                                       F_IMAGES(sets, "its cutouts"),
                                       F_DATA_KEYS(sets),
                                       F_END};

void embed_defaults(void *p) {
    embed_cli *o = p;
    o->which = "all";
}

static int write_plain(const char *path, char **buf, size_t len) { return io_write_atomic(path, *buf, len); }

int embed_run(const embed_cli *op) {
    const embed_cli cl = *op;
    const char *ckpt = cl.ckpt, *out = cl.out, *which = cl.which, *dump = NULL;
    int full = cl.full;
    long n_dump = 0;
    if (cmd_dump_opts(&cl.dump, &n_dump, &dump)) return 1;
    if (!ckpt || !out) return cmd_error("embed: --ckpt and --out are required");
    int only = strcmp(which, "all") ? io_split_parse(which) : -1;
    if (strcmp(which, "all") && only < 0)
        return cmd_error("embed: --split '%s' is not all, train, val or test", which);
    gn_set_threads((int)cl.threads);
    if (gn_mpi_size() > 1 && dump)
        return cmd_error("embed: --dump is for one process (start it without mpirun)");
    run r;
    if (cmd_open_ranked(&r, "embed", ckpt, &cl.sets)) return 1;
    int rc = 1, D = 0;
    uint32_t *rows = NULL;
    float *S = NULL;
    size_t n = 0, blen = 0;
    char *buf = NULL;
    nn_ctx c;
    memset(&c, 0, sizeof c);
    if (!(D = md_net_embed_dim(&r.net, full))) {
        gn_err(GN_EINVAL,
               "%s is not a latent (S-space) model or a VAE: its configuration has no [model] kind = latent "
               "or vae",
               ckpt);
        goto out;
    }
    size_t lo = 0, hi = 0; // MPI: this rank's block of whole batches (one process: all)
    if (run_select_rows(&r, only, &rows, &n)) goto out;
    run_rank_block(n, r.batch, &lo, &hi);
    if (!(S = gn_malloc(sizeof(float) * (hi - lo + 1) * (size_t)D))) goto out;
    if (nn_ctx_init_inference(&c, 64u << 20) || run_embed(&r, &c, rows + lo, hi - lo, full, S)) goto out;
    FILE *f = open_memstream(&buf, &blen);
    if (!f) goto out;
    for (int d = 0; gn_mpi_rank() == 0 && d <= D; d++) { // the header
        char nm[32];
        if (d < D) md_net_embed_name(&r.net, d, nm, sizeof nm);
        fprintf(f, d < D ? "%s%s" : "\n", d ? "," : "id,split,", nm);
    }
    for (size_t i = lo; i < hi; i++) {
        fprintf(f, "%s,%s", io_catalog_id(&r.cat, rows[i]), io_split_name(r.split[rows[i]]));
        for (int d = 0; d < D; d++) fprintf(f, ",%.7g", S[(i - lo) * (size_t)D + d]);
        fputc('\n', f);
    }
    fclose(f);
    if (cmd_write_ranked(out, &buf, &blen, write_plain) ||
        (dump && run_write_dump(&r, &c, rows, n, S, D, n_dump, dump)))
        goto out;
    if (gn_mpi_rank() == 0)
        printf("wrote %s: %zu galaxies x %d latent dimensions (%zu catalog rows lack an input)\n", out, n, D,
               r.n_unusable);
    rc = 0;
out:
    if (rc) cmd_error("embed: %s", gn_errmsg());
    free(buf), free(rows), free(S);
    if (c.arena.head) nn_ctx_free(&c);
    run_free(&r);
    return rc;
}

static int embed_run_v(const void *o) { return embed_run(o); }

CMD_DEF(cmd_embed, "embed", "the S-space vector of every galaxy from a latent model (for galnn causal)",
        embed_usage, embed_flags, sizeof(embed_cli), embed_defaults, embed_run_v, offsetof(embed_cli, sets),
        NULL);
