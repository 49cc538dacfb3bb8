// galnn train: train a multi-branch network from a configuration, or resume
// a run from its checkpoint exactly where it stopped (the loop and the
// checkpoint are apps/pipeline/trainer.c).
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/gn_common.h"
#include "../common/gn_mpi.h"
#include "../io/file.h"
#include "cmd.h"
#include "flags.h"
#include "pipeline/trainer.h"

static void train_usage(void) {
    printf(
        "usage: galnn train --config FILE [--catalog CSV] [--images TEMPLATE] [--bands LIST] [--target "
        "NAMES]\n"
        "                   [--out DIR] [--epochs E] [--seed S] [--threads N] [--ckpt-every STEPS] "
        "[SECTION.KEY=VALUE ...]\n"
        "       galnn train --resume DIR/last.npz [--epochs E] [--threads N]\n\n"
        "Trains the network the configuration describes (see models/*.cfg) and keeps, in DIR (default\n"
        "runs/<config name>): config.cfg, log.csv (train/val loss and metrics per epoch), last.npz (every "
        "epoch\n"
        "and every --ckpt-every steps) and best.npz (lowest validation loss). A checkpoint holds the whole\n"
        "state (weights, batch-norm statistics, optimizer moments, schedule step, every random stream, the\n"
        "data order and position, normalisation statistics, the configuration), so --resume continues with\n"
        "bit-identical results for the same thread count. Any configuration key can be overridden on the\n"
        "command line, e.g. train.lr=3e-4 branch.img.width=32.\n\n"
        "Configuration keys (an unknown key is an error):\n"
        "  [data]         images, bands, transform (signlog|asinh|none), asinh_scale, size (centre crop), "
        "bin\n"
        "                 (sum bin x bin pixel blocks), fluxnorm (e.g. flux_{band}), derive (NAME=EXPR; "
        "...), join (CSV;\n"
        "                 ...: more columns matched by id, e.g. a VAE's mu/sigma from galnn embed), "
        "cache_dir\n"
        "  [target]       names, head (regression|gaussian|binned), bins, lo, hi, units; hidden (one hidden\n"
        "                 layer mixing the branches' features; 0: linear), activation, init (as branches)\n"
        "  [branch.NAME]  input (image|columns|spectrum), columns, bands (a subset of [data]'s), images (own "
        "cutouts),\n"
        "                 backbone (resnet18|smallcnn|mlp), width, stem_kernel, stem_stride, stem_pool, "
        "hidden;\n"
        "                 init (torch: PyTorch's defaults, ResNets as torchvision | he | glorot | uniform:\n"
        "                 PyTorch's reset_parameters for convolutions too),\n"
        "                 activation (mlp: relu|silu|gelu|leaky_relu|tanh), norm (cnn: batch|group|none),\n"
        "                 zero_init_residual (resnet), feature_norm (none|layer: a layer norm on the\n"
        "                 branch's features), dropout (on them), weight_decay;\n"
        "                 spectrum: spectra (template, NPY or FITS), wave (shared grid NPY), redshift "
        "(column, z; none:\n"
        "                 rest frame), grid (LO,HI,PIXELS: 3400,8400,4000), max_gap (0.075), err_percentile "
        "(95),\n"
        "                 pca_components (15), pca_iters (10), median (0.5)\n"
        "  [model]        kind (branches|latent|vae|flow|specvae|gbdt); gbdt (gradient-boosted trees over\n"
        "                 the column branches; null columns are inputs): rounds (500; --epochs too),\n"
        "                 num_leaves (31), max_depth (-1), min_data_in_leaf (20), min_sum_hessian,\n"
        "                 lambda_l2, learning_rate (0.1), max_bins (255), feature_fraction,\n"
        "                 bagging_fraction, loss (l2|l1|huber|quantile), alpha, delta, patience (50\n"
        "                 rounds), intervals (1: conformal 16-84 %% quantile intervals); specvae: main (a\n"
        "                 spectrum branch), latent "
        "(4),\n"
        "                 conditions (catalog columns, or none), alpha (1e3), beta (0.1), leaky_slope "
        "(0.01); flow (posterior over the column branches): context (256),\n"
        "                 context_depth (2), mean_hidden (128), mean_weight (1), layers (12), flow_hidden "
        "(128),\n"
        "                 flow_depth (2), scale (tanh|exp), clamp (2); vae: main (an image branch), latent "
        "(32), beta (1),\n"
        "                 widths (32,64,128: one stride-2 convolution each), leaky_slope; latent (S-space) "
        "models: encoder (mlp|inception), objective\n"
        "                 (scl|ce|supcon|rnc), main, extra (branch names for x and a), dim_main, dim_ext,\n"
        "                 est_hidden, lambda_rec, leaky_slope, tau, base_tau, supcon_width; mlp: depth, "
        "hidden;\n"
        "                 inception: conv_width, inception_width, fc_width, decoder_channels, decoder_width\n"
        "  [train]        optimizer (adam|adamw|sgd), lr, amsgrad, momentum, weight_decay, clip, schedule\n"
        "                 (constant with warmup | cosine with warmup, min_lr | epoch_cos with period | step "
        "with drops = STEP,...\n"
        "                 and drop_factor); batch, epochs or iterations, crop, augment (dihedral|none), "
        "seed,\n"
        "                 ckpt_every, keep_im2col (1 faster, 0 less memory), winograd (3x3 stride-1 "
        "convolutions:\n"
        "                 1 the Winograd tile F(m x m,3x3), m = 2, 3, 4 or 6, with the fewest\n"
        "                 multiplications, im2col below 3x3 outputs, and 5x5 stride-1 convolutions of\n"
        "                 16+ input channels by F(2x2,5x5); 2, 3, 4 or 6 that 3x3 tile only;\n"
        "                 0 im2col + GEMM),\n"
        "                 patience (stop after this many epochs without a better validation\n"
        "                 loss; 20; 0: never; off by default for runs given in iterations),\n"
        "                 ema (0.999: validate and save an exponential moving average of the weights),\n"
        "                 tta (1: eval and predict average the 8 dihedral views of each cutout by\n"
        "                 default), slices (each batch, or each MPI rank's share, in this many\n"
        "                 slices one after another, gradients summed: less memory), check_every (MPI:\n"
        "                 steps between comparisons of the ranks' weights; 100), sync_bn (MPI: batch-norm\n"
        "                 statistics of the whole batch across the ranks, not each rank's slice),\n"
        "                 split_rows (1: each step's galaxies shared among the threads, each thread\n"
        "                 running its own alone, batch norm synchronised; 0: each layer split among\n"
        "                 them; multi-branch networks only, 1 by default)\n\n"
        "Under mpirun -np P: data-parallel (the batch stays [train] batch; rank r computes slice r;\n"
        "gradients summed in rank order; rank 0 writes the checkpoints, which resume at any P).\n"
        "See docs/cluster.md.\n");
}

#define CLI train_cli
static const cmd_flag train_flags[] = {
    F_STR("--config", config, "FILE", "the configuration (models/*.cfg)"),
    F_STR("--resume", resume, "CKPT", "continue the run of this checkpoint (DIR/last.npz)"),
    F_CATALOG(sets, "the catalog ([data] catalog)"),
    F_IMAGES(sets, "the cutouts ([data] images)"),
    F_DATA_KEYS(sets),
    F_SET("--bands", sets, "data.bands", "LIST", "the bands ([data] bands)"),
    F_SET("--target", sets, "target.names", "NAMES", "the targets ([target] names)"),
    F_OUT(out, "DIR", "the run's directory (default runs/<config name>)"),
    F_INT("--epochs", epochs, 1, 1000000, "E", "train to E epochs (also extends a resume)"),
    F_SEED(seed, "[train] seed"),
    F_INT("--ckpt-every", ckpt_every, 0, 100000000, "STEPS", "also write last.npz every STEPS"),
    F_THREADS(threads),
    F_END};

void train_defaults(void *p) {
    train_cli *o = p;
    o->epochs = o->seed = o->ckpt_every = -1;
}

static void put_long(io_config *c, const char *key, long v) {
    char b[32];
    snprintf(b, sizeof b, "%ld", v);
    io_config_put(c, "train", key, b);
}

// The configuration of a new run (file + overrides) or of the checkpoint to
// resume, and the run's directory.
static int open_config(const train_cli *o, io_config *cfg, io_npz *ck, char *dir, size_t dir_len, int *made) {
    if (o->resume) {
        if (io_npz_read(o->resume, ck)) return cmd_error("%s", gn_errmsg());
        char *text = io_ckpt_config(o->resume, ck);
        int bad = !text || io_config_parse(o->resume, text, cfg);
        free(text);
        if (bad) return cmd_error("%s", gn_errmsg());
        if (o->sets.n)
            return io_config_free(cfg),
                   cmd_error(
                       "train --resume: overrides would change the run; only --epochs and --threads apply");
        char *cp = gn_strdup(o->resume);
        snprintf(dir, dir_len, "%s", dirname(cp));
        free(cp);
        return 0;
    }
    char preset[4400];
    const char *path = cmd_find_preset(o->config, preset, sizeof preset);
    if (io_config_read(path, cfg)) return cmd_error("%s", gn_errmsg());
    for (int k = 0; k < o->sets.n; k++)
        if (io_config_set(cfg, o->sets.v[k])) return io_config_free(cfg), cmd_error("%s", gn_errmsg());
    if (o->seed >= 0) put_long(cfg, "seed", o->seed);
    if (o->out)
        snprintf(dir, dir_len, "%s", o->out);
    else {
        char *cp = gn_strdup(o->config), *base = basename(cp), *dot = strrchr(base, '.');
        if (dot) *dot = 0;
        snprintf(dir, dir_len, "runs/%s", base);
        free(cp);
    }
    if (io_mkdirs(dir, made)) return io_config_free(cfg), cmd_error("%s", gn_errmsg()); // and its parents
    return 0;
}

int train_run(const train_cli *op) {
    const train_cli o = *op;
    if (!o.config == !o.resume) return cmd_error("train: give either --config FILE or --resume CHECKPOINT");
    gn_set_threads((int)o.threads);
    run_trainer T;
    memset(&T, 0, sizeof T);
    io_config cfg;
    io_npz ck;
    memset(&ck, 0, sizeof ck);
    int made = 0;
    if (open_config(&o, &cfg, &ck, T.dir, sizeof T.dir, &made)) return io_npz_free(&ck), 1;
    int R = gn_mpi_rank(), stale = R ? 0 : io_remove_stale_temps(T.dir); // a killed write's NAME.tmp.PID
    if (stale) printf("  removed %d temp file(s) of an interrupted checkpoint write in %s\n", stale, T.dir);
    if (o.epochs > 0) { // --epochs extends (or sets) the run's length, also on resume
        put_long(&cfg, "epochs", o.epochs);
        io_config_put(&cfg, "train", "iterations", "0"); // an explicit --epochs wins over [train] iterations
    }
    if (o.ckpt_every >= 0) put_long(&cfg, "ckpt_every", o.ckpt_every);
    printf("galnn train: %s -> %s (%d threads%s)\n", o.resume ? o.resume : o.config, T.dir, gn_threads(),
           gn_mpi_size() > 1 ? " per MPI rank" : "");
    if (R > 0) gn_mpi_barrier(); // MPI: rank 0 opens the data first (a cache it builds is there for the rest)
    int rc = run_setup(&T.r, &cfg, o.resume, o.resume ? &ck : NULL, 1, 1);
    if (rc && gn_mpi_size() > 1) cmd_error("train: %s", gn_errmsg()), gn_mpi_abort(1);
    if (R == 0) gn_mpi_barrier();
    if (!rc) rc = run_trainer_open(&T, o.resume, &ck);
    io_npz_free(&ck);
    if (!rc) rc = run_trainer_fit(&T);
    if (rc) cmd_error("train: %s", gn_errmsg());
    run_trainer_free(&T);
    if (rc && made && R == 0)
        io_rmdirs(T.dir, made); // a run that failed before writing leaves no empty directories
    return rc ? 1 : 0;
}

static int train_run_v(const void *o) { return train_run(o); }

CMD_DEF(cmd_train, "train", "train a network from a configuration (models/*.cfg), or --resume a run exactly",
        train_usage, train_flags, sizeof(train_cli), train_defaults, train_run_v, offsetof(train_cli, sets),
        NULL);
