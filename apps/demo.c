// galnn demo: the main job on the built-in data. Makes the mock survey, reads
// it through the whole data path (catalog, cutouts, cache, splits,
// standardisation, augmented batches) and trains a small CNN on the 5-band
// cutouts to tell star-forming from quiescent galaxies, printing the loss as
// it falls and the validation accuracy. (It grows into the stellar-mass job
// as the training programs land.)
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/gn_common.h"
#include "../io/catalog.h"
#include "../io/dataset.h"
#include "../io/loader.h"
#include "../io/mock.h"
#include "../models/toy.h"
#include "cmd.h"

void cmd_demo_help(void) {
    printf("usage: galnn demo [--out DIR] [--n N] [--epochs E] [--seed S] [--threads N]\n\n"
           "1. writes the mock survey (default 2000 galaxies, 64x64 u,g,r,i,z cutouts) to DIR (default galnn-demo),\n"
           "2. opens it as a dataset: catalog nulls, id-hash train/val/test splits, the decoded-cutout cache,\n"
           "   per-band standardisation from the training split,\n"
           "3. trains a small CNN (conv-BN-ReLU-maxpool-conv-GAP-linear) on random 48x48 crops with the 8\n"
           "   dihedral augmentations to classify star-forming vs quiescent galaxies, printing the training loss\n"
           "   and the validation accuracy per epoch (default 6 epochs).\n"
           "A second run reuses the survey and the cache.\n");
}

static void say(void *u, const char *line) {
    (void)u;
    printf("  %s\n", line);
}

// Accuracy over one pass of a loader.
static double accuracy(nn_ctx *c, const md_tinycnn *m, io_loader *L, const int32_t *label, float *x, uint32_t *e) {
    int C = io_loader_out_channels(L), S = io_loader_out_size(L), b;
    size_t right = 0, n = 0;
    c->training = 0;
    c->grad_enabled = 0;
    while ((b = io_loader_next(L, x, e)) > 0) {
        nn_ctx_reset(c);
        nn_tensor *lg = md_tinycnn_fwd(c, m, nn_tensor_from(c, NN_SHAPE(b, C, S, S), x));
        if (!lg) break;
        for (int i = 0; i < b; i++) right += (lg->data[2 * i + 1] > lg->data[2 * i]) == (label[L->ds->row[e[i]]] == 1);
        n += (size_t)b;
    }
    c->training = 1;
    c->grad_enabled = 1;
    return n ? (double)right / (double)n : 0;
}

int cmd_demo(int argc, char **argv) {
    long seed = 1, threads = 0, epochs = 6, n = 2000;
    const char *out = "galnn-demo";
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--seed")) {
            if (cmd_parse_int("--seed", v, 0, 0x7fffffffL, &seed)) return 1;
        } else if (!strcmp(argv[i], "--threads")) {
            if (cmd_parse_int("--threads", v, 0, 1024, &threads)) return 1;
        } else if (!strcmp(argv[i], "--epochs")) {
            if (cmd_parse_int("--epochs", v, 1, 1000, &epochs)) return 1;
        } else if (!strcmp(argv[i], "--n")) {
            if (cmd_parse_int("--n", v, 100, 1000000, &n)) return 1;
        } else if (!strcmp(argv[i], "--out")) {
            if (!v) return cmd_error("--out needs a directory");
            out = v;
        } else
            return cmd_error("demo: unknown option '%s' (see `galnn help demo`)", argv[i]);
        i++;
    }
    gn_set_threads((int)threads);
    printf("galnn demo (seed %ld, %d threads)\n\n", seed, gn_threads());
    char cat_path[4096], tmpl[4096];
    snprintf(cat_path, sizeof cat_path, "%s/catalog.csv", out);
    snprintf(tmpl, sizeof tmpl, "%s/cutouts/{id}.fits", out);
    io_catalog cat;
    io_catalog_opts co = {0, 1};
    double t0 = gn_now();
    if (io_catalog_read(cat_path, &co, &cat) || cat.n_rows != (size_t)n) {
        if (cat.path) io_catalog_free(&cat);
        printf("1. mock survey: %ld galaxies -> %s\n", n, out);
        io_mock_opts mo = {.out = out, .n = (int)n, .seed = (uint64_t)seed, .size = 64};
        if (io_mock_write(&mo) || io_catalog_read(cat_path, &co, &cat)) return cmd_error("demo: %s", gn_errmsg());
        printf("  written in %.1f s (`galnn help mock` documents the model)\n\n", gn_now() - t0);
    } else
        printf("1. mock survey: reusing %s (%zu galaxies)\n\n", cat_path, cat.n_rows);
    printf("2. dataset\n");
    io_catalog_report_nulls(&cat, say, NULL);
    int rc = 1, tcol = io_catalog_find(&cat, "type");
    uint8_t *split = malloc(cat.n_rows);
    int32_t *label = malloc(sizeof(int32_t) * cat.n_rows);
    io_dataset ds;
    memset(&ds, 0, sizeof ds);
    nn_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    nn_store st;
    nn_store_init(&st);
    nn_optim opt;
    nn_optim_defaults(&opt, NN_OPT_ADAM);
    io_loader tr, va;
    memset(&tr, 0, sizeof tr);
    memset(&va, 0, sizeof va);
    float *x = NULL;
    uint32_t e[32];
    if (tcol < 0 || !split || !label || io_catalog_splits(&cat, 0.7, 0.15, split)) goto fail;
    for (size_t r = 0; r < cat.n_rows; r++) label[r] = strcmp(cat.cols[tcol].s[r], "sf") ? 0 : 1;
    io_dataset_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.cat = &cat;
    spec.template = tmpl;
    io_parse_bands("u,g,r,i,z", &spec);
    spec.transform = IO_TF_ASINH;
    spec.asinh_scale = 0.1f; // nanomaggies: asinh(x / 0.1) compresses the bright cores
    spec.log = say;
    if (io_dataset_open(&spec, &ds)) goto fail;
    double mean[IO_MAX_BANDS], sd[IO_MAX_BANDS];
    if (io_dataset_band_stats(&ds, split, IO_SPLIT_TRAIN, mean, sd)) goto fail;
    io_loader_opts lo = {.batch = 32, .shuffle = 1, .dihedral = 1, .crop = 48, .random_crop = 1, .drop_last = 1,
                         .mean = mean, .std = sd};
    io_loader_opts vo = {.batch = 32, .crop = 48, .mean = mean, .std = sd};
    if (io_loader_init(&tr, &ds, split, IO_SPLIT_TRAIN, &lo, (uint64_t)seed) ||
        io_loader_init(&va, &ds, split, IO_SPLIT_VAL, &vo, (uint64_t)seed))
        goto fail;
    size_t nsf = 0;
    for (size_t i = 0; i < tr.n; i++) nsf += label[ds.row[tr.members[i]]] == 1;
    printf("  splits: %zu train (%.0f %% star-forming), %zu val\n\n", tr.n, 100.0 * nsf / tr.n, va.n);
    printf("3. CNN: star-forming vs quiescent from the 5-band cutouts (48x48 random crops, dihedral augmentation)\n");
    md_tinycnn m;
    nn_rng rinit;
    nn_rng_seed(&rinit, (uint64_t)seed, NN_STREAM_INIT);
    if (nn_ctx_init(&ctx, 32u << 20) || md_tinycnn_make(&m, &st, 5, 2) || nn_store_finalize(&st) ||
        nn_optim_init(&opt, &st))
        goto fail;
    nn_store_reset_values(&st, &rinit);
    x = malloc(sizeof(float) * 32 * 5 * 48 * 48);
    if (!x) goto fail;
    nn_sched sch = {.kind = NN_SCHED_COSINE, .base_lr = 3e-3f, .warmup = 20,
                    .total = (long)(epochs * (long)io_loader_batches_per_epoch(&tr)), .min_lr = 1e-4f};
    long step = 0;
    double acc0 = accuracy(&ctx, &m, &va, label, x, e);
    printf("  before training: validation accuracy %.1f %%\n", 100 * acc0);
    for (int ep = 0; ep < epochs; ep++) {
        double tot = 0, te = gn_now();
        int nb = 0, b;
        int32_t y[32];
        while ((b = io_loader_next(&tr, x, e)) > 0) {
            for (int i = 0; i < b; i++) y[i] = label[ds.row[e[i]]];
            nn_ctx_reset(&ctx);
            nn_store_zero_grad(&st);
            nn_tensor *loss = nn_cross_entropy(&ctx, md_tinycnn_fwd(&ctx, &m, nn_tensor_from(&ctx, NN_SHAPE(b, 5, 48, 48), x)), y);
            if (!loss || nn_backward(&ctx, loss)) goto fail;
            nn_optim_step(&opt, &st, nn_sched_lr(&sch, step++));
            tot += loss->data[0];
            nb++;
        }
        double acc = accuracy(&ctx, &m, &va, label, x, e);
        printf("  epoch %d/%ld  train loss %.4f  validation accuracy %5.1f %%  (%.0f galaxies/s)\n", ep + 1, epochs,
               tot / nb, 100 * acc, nb * 32 / (gn_now() - te));
        fflush(stdout);
    }
    printf("\ndone in %.1f s. Try: galnn data --catalog %s --images '%s' --bands u,g,r,i,z --epoch\n", gn_now() - t0,
           cat_path, tmpl);
    rc = 0;
fail:
    if (rc) cmd_error("demo: %s", gn_errmsg());
    free(x);
    io_loader_free(&tr);
    io_loader_free(&va);
    nn_optim_free(&opt);
    nn_store_free(&st);
    if (ctx.arena.head) nn_ctx_free(&ctx);
    io_dataset_close(&ds);
    free(split);
    free(label);
    io_catalog_free(&cat);
    return rc;
}
