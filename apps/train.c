// galnn train: train a multi-branch network from a configuration, or resume
// a run from its checkpoint exactly where it stopped.
#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/gn_common.h"
#include "../io/plot.h"
#include "../stats/metrics.h"
#include "cmd.h"
#include "pipeline/run.h"

void cmd_train_help(void) {
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
        "  [target]       names, head (regression|gaussian|binned), bins, lo, hi\n"
        "  [branch.NAME]  input (image|columns|spectrum), columns, bands (a subset of [data]'s), images (own "
        "cutouts),\n"
        "                 backbone (resnet18|smallcnn|mlp), width, stem_kernel, stem_stride, stem_pool, "
        "hidden;\n"
        "                 spectrum: spectra (template, NPY or FITS), wave (shared grid NPY), redshift "
        "(column, z; none:\n"
        "                 rest frame), grid (LO,HI,PIXELS: 3400,8400,4000), max_gap (0.075), err_percentile "
        "(95),\n"
        "                 pca_components (15), pca_iters (10), median (0.5)\n"
        "  [model]        kind (branches|latent|vae|flow|specvae); specvae: main (a spectrum branch), latent "
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
        "                 1 Winograd F(4x4,3x3), or F(2x2,3x3) at 5x5 and 6x6 outputs, im2col below 3x3; 2 "
        "or 4\n"
        "                 that tile only; 0 im2col + GEMM),\n"
        "                 patience (stop after this many epochs without a better validation\n"
        "                 loss; 0: never)\n");
}

typedef struct trainer {
    run r;
    nn_optim opt;
    nn_sched sched;
    io_loader L;
    nn_ctx ctx;
    long epochs, ckpt_every;
    float clip;
    double best_val, loss_sum;
    long patience, stall; // early stopping: epochs without a better validation loss (checkpointed)
    int64_t loss_n;
    char dir[2048];
    char *log;       // log.csv text so far (also kept in the checkpoint)
    size_t log_len;
    float *scratch, *y;
    uint32_t *ids;
    io_aug *aug, *aug_m;
    int pairs;       // contrastive latent objective: batches are set-1/set-2 pairs
    int morph;       // image contrastive objective: every row also has a morphology-augmented view (aug_m)
    gn_rng pair;     // draws the set-2 partners (checkpointed)
} trainer;

// Set 2 of a contrastive batch (spec/methods.md §1.6): for each of the b set-1
// galaxies a partner drawn uniformly with replacement from the training
// galaxies, never the same galaxy; it gets its own augmentation draw.
// The morphology-augmented view of every row of an image SCL batch (spec
// 1.4): a further, never-identity dihedral transform of the row's image, same crop.
static void draw_morph(trainer *T, int n) {
    for (int i = 0; i < n; i++) {
        double u1 = gn_rng_uniform(&T->pair), u2 = gn_rng_uniform(&T->pair);
        T->aug_m[i] = T->aug[i];
        T->aug_m[i].k = io_dihedral_then(T->aug[i].k, io_dihedral_morph(u1, u2));
    }
}

static int log_append(trainer *T, const char *line) {
    size_t L = strlen(line);
    char *n = gn_realloc(T->log, T->log_len + L + 1);
    if (!n) return GN_ENOMEM;
    memcpy(n + T->log_len, line, L + 1);
    T->log = n;
    T->log_len += L;
    char p[2200];
    snprintf(p, sizeof p, "%s/log.csv", T->dir);
    return io_write_atomic(p, T->log, T->log_len);
}

// loss.png from the log: train and validation loss per epoch.
static int plot_losses(const trainer *T) {
    size_t n = 0;
    for (size_t i = 0; i < T->log_len; i++) n += T->log[i] == '\n';
    double *ep = gn_malloc(sizeof(double) * 3 * (n + 1));
    if (!ep) return GN_ENOMEM;
    double *tr = ep + n + 1, *va = tr + n + 1;
    size_t k = 0;
    const char *p = strchr(T->log, '\n'); // skip the header
    while (p && *++p) {
        double e, t, v;
        if (sscanf(p, "%lf,%*f,%*f,%lf,%lf", &e, &t, &v) == 3) ep[k] = e, tr[k] = t, va[k] = v, k++;
        p = strchr(p, '\n');
    }
    io_series s[2] = {{"train", ep, tr, k}, {"validation", ep, va, k}};
    char path[2200];
    snprintf(path, sizeof path, "%s/loss.png", T->dir);
    int log_y = 1;
    for (size_t i = 0; i < k; i++)
        log_y &= tr[i] > 0 && (isnan(va[i]) || va[i] > 0); // the Gaussian NLL can be < 0
    int rc = k ? io_plot_lines(path, "training curve", "epoch", "loss", s, 2, log_y) : GN_OK;
    free(ep);
    return rc;
}

// Everything beyond the store and the optimizer that a resumed run needs.
static int save(trainer *T, const char *file) {
    io_named_array ex[32];
    int n = run_norm_arrays(&T->r, ex, 24);
    static int64_t s1 = 1, s4 = 4, sN;
    static uint64_t rng[4][4];
    static int64_t ep, cur, ln;
    static double acc[2];
    static int64_t s2 = 2;
    memcpy(rng[0], T->L.shuffle.s, 32);
    memcpy(rng[1], T->L.augment.s, 32);
    memcpy(rng[2], T->ctx.dropout_rng.s, 32);
    memcpy(rng[3], T->pair.s, 32);
    ep = T->L.epoch, cur = (int64_t)T->L.cursor, ln = T->loss_n, sN = (int64_t)T->L.n;
    acc[0] = T->loss_sum, acc[1] = T->best_val;
    static int64_t stall;
    stall = T->stall;
    ex[n++] = (io_named_array){"rng.shuffle", io_array_view(IO_I64, 1, &s4, rng[0])};
    ex[n++] = (io_named_array){"rng.augment", io_array_view(IO_I64, 1, &s4, rng[1])};
    ex[n++] = (io_named_array){"rng.dropout", io_array_view(IO_I64, 1, &s4, rng[2])};
    ex[n++] = (io_named_array){"rng.pair", io_array_view(IO_I64, 1, &s4, rng[3])};
    ex[n++] = (io_named_array){"data.epoch", io_array_view(IO_I64, 1, &s1, &ep)};
    ex[n++] = (io_named_array){"data.cursor", io_array_view(IO_I64, 1, &s1, &cur)};
    ex[n++] = (io_named_array){"data.perm", io_array_view(IO_I32, 1, &sN, T->L.perm)};
    ex[n++] = (io_named_array){"data.loss_count", io_array_view(IO_I64, 1, &s1, &ln)};
    ex[n++] = (io_named_array){"meta.loss_sum_best_val", io_array_view(IO_F64, 1, &s2, acc)};
    ex[n++] = (io_named_array){"meta.stall", io_array_view(IO_I64, 1, &s1, &stall)};
    int64_t LL = (int64_t)T->log_len;
    ex[n++] = (io_named_array){"meta.log", io_array_view(IO_U8, 1, &LL, T->log)};
    char *cfg = io_config_text(&T->r.cfg);
    if (!cfg) return GN_ENOMEM;
    char p[2200];
    snprintf(p, sizeof p, "%s/%s", T->dir, file);
    int rc = io_ckpt_save(p, &T->r.st, &T->opt, ex, n, cfg);
    free(cfg);
    return rc;
}

static int restore(trainer *T, const char *path, const io_npz *z) {
    int rc = io_ckpt_restore(path, z, &T->r.st, &T->opt);
    if (rc) return rc;
    const io_array *a;
    const char *rn[4] = {"rng.shuffle", "rng.augment", "rng.dropout", "rng.pair"};
    gn_rng *dst[4] = {&T->L.shuffle, &T->L.augment, &T->ctx.dropout_rng, &T->pair};
    for (int k = 0; k < 4; k++) {
        if (!(a = io_ckpt_get(path, z, rn[k], IO_I64, 4))) return GN_EFORMAT;
        memcpy(dst[k]->s, a->data, 32);
    }
    if (!(a = io_ckpt_get(path, z, "data.epoch", IO_I64, 1))) return GN_EFORMAT;
    T->L.epoch = ((int64_t *)a->data)[0];
    if (!(a = io_ckpt_get(path, z, "data.cursor", IO_I64, 1))) return GN_EFORMAT;
    T->L.cursor = (uint64_t)((int64_t *)a->data)[0];
    if (!(a = io_ckpt_get(path, z, "data.perm", IO_I32, T->L.n)))
        return gn_err_prefix(GN_EFORMAT, "(the training sample changed since the checkpoint) ");
    memcpy(T->L.perm, a->data, sizeof(uint32_t) * T->L.n);
    if (T->L.cursor > T->L.n) return gn_err(GN_EFORMAT, "%s: data.cursor beyond the epoch", path);
    if (!(a = io_ckpt_get(path, z, "data.loss_count", IO_I64, 1))) return GN_EFORMAT;
    T->loss_n = ((int64_t *)a->data)[0];
    if (!(a = io_ckpt_get(path, z, "meta.loss_sum_best_val", IO_F64, 2))) return GN_EFORMAT;
    T->loss_sum = ((double *)a->data)[0], T->best_val = ((double *)a->data)[1];
    const io_array *sa = io_npz_get(z, "meta.stall"); // absent in checkpoints from before early stopping
    T->stall = sa && sa->dtype == IO_I64 && sa->n == 1 ? (long)((int64_t *)sa->data)[0] : 0;
    const io_array *lg = io_npz_get(z, "meta.log");
    if (!lg || lg->dtype != IO_U8) return gn_err(GN_EFORMAT, "%s: checkpoint lacks meta.log", path);
    T->log = gn_malloc(lg->n + 1);
    if (!T->log) return GN_ENOMEM;
    memcpy(T->log, lg->data, lg->n);
    T->log[lg->n] = 0;
    T->log_len = lg->n;
    return GN_OK;
}

// Mean loss on the validation rows and, where the kind reports them, point
// metrics of its predictions (first target, in its own units). Noise (a VAE's
// ε) comes from a stream seeded afresh every time: the same draws each epoch,
// and none taken from the training streams.
static int validate(trainer *T, double *loss, st_metrics *met) {
    run *r = &T->r;
    const md_kind *k = md_kind_of(&r->net);
    size_t n = r->n_rows[IO_SPLIT_VAL];
    int Tn = r->n_targets;
    double *pred = gn_malloc(sizeof(double) * (n ? n : 1)), *tru = gn_malloc(sizeof(double) * (n ? n : 1));
    float *p = gn_malloc(sizeof(float) * (size_t)r->batch * (size_t)(Tn ? Tn : 1));
    if (!pred || !tru || !p) return free(pred), free(tru), free(p), GN_ENOMEM;
    gn_rng eps;
    gn_rng_seed(&eps, 12345, GN_STREAM_DROPOUT);
    double tot = 0;
    run_batches it;
    int rc = run_batches_begin(&it, r, &T->ctx, r->rows[IO_SPLIT_VAL], n, r->batch, 1);
    while (!rc && run_batches_next(&it)) {
        nn_tensor *out = k->val_metrics ? md_net_fwd(&T->ctx, &r->net, it.in) : NULL;
        nn_tensor *L = k->val_loss(&T->ctx, &r->net, it.in, out, it.y, it.b, &eps);
        if (!L) {
            rc = GN_EINVAL;
            break;
        }
        tot += L->data[0] * it.b;
        if (!k->val_metrics) continue;
        md_net_predict(&r->net, out, p, NULL);
        for (int i = 0; i < it.b; i++) {
            size_t j = it.o + (size_t)i;
            pred[j] = r->net.head == MD_HEAD_BINNED ? p[i * Tn] : p[i * Tn] * r->tstd[0] + r->tmean[0];
            tru[j] = r->target[0][r->rows[IO_SPLIT_VAL][j]];
        }
    }
    rc = run_batches_end(&it, rc);
    *loss = n ? tot / (double)n : NAN;
    *met = (st_metrics){.bias = NAN, .sigma_mad = NAN, .eta = NAN, .rmse = NAN, .r2 = NAN};
    if (!rc && n && k->val_metrics) rc = st_point_metrics(pred, tru, n, met);
    free(pred), free(tru), free(p);
    return rc;
}

static int setup_optim(trainer *T, io_config *c) {
    const char *o = io_config_str(c, "train", "optimizer", "adam");
    nn_opt_kind k = !strcmp(o, "sgd") ? NN_OPT_SGD : !strcmp(o, "adamw") ? NN_OPT_ADAMW : NN_OPT_ADAM;
    if (strcmp(o, "sgd") && strcmp(o, "adamw") && strcmp(o, "adam"))
        return gn_err(GN_EINVAL, "%s: [train] optimizer '%s' is not adam, adamw or sgd", c->name, o);
    nn_optim_defaults(&T->opt, k);
    double v;
    long a;
    int rc;
    if ((rc = io_config_double(c, "train", "weight_decay", k == NN_OPT_ADAMW ? 0.01 : 0, &v))) return rc;
    T->opt.weight_decay = (float)v;
    if ((rc = io_config_double(c, "train", "momentum", 0.9, &v))) return rc;
    T->opt.momentum = k == NN_OPT_SGD ? (float)v : 0;
    if ((rc = io_config_int(c, "train", "amsgrad", 0, &a))) return rc;
    T->opt.amsgrad = (int)a;
    if ((rc = io_config_double(c, "train", "clip", 0, &v))) return rc;
    T->clip = (float)v;
    nn_sched *s = &T->sched;
    memset(s, 0, sizeof *s);
    if ((rc = io_config_double(c, "train", "lr", 1e-3, &v))) return rc;
    s->base_lr = (float)v;
    const char *sc = io_config_str(c, "train", "schedule", "constant");
    long spe = (long)io_loader_batches_per_epoch(&T->L);
    if (!strcmp(sc, "constant")) {
        s->kind = NN_SCHED_CONST;
        if ((rc = io_config_int(c, "train", "warmup", 0, &a))) return rc;
        s->warmup = a;
    }
    else if (!strcmp(sc, "cosine")) {
        s->kind = NN_SCHED_COSINE;
        if ((rc = io_config_int(c, "train", "warmup", 0, &a))) return rc;
        s->warmup = a;
        s->total = spe * T->epochs;
        if ((rc = io_config_double(c, "train", "min_lr", 0, &v))) return rc;
        s->min_lr = (float)v;
    } else if (!strcmp(sc, "epoch_cos")) {
        s->kind = NN_SCHED_EPOCH_COS;
        s->steps_per_epoch = spe;
        if ((rc = io_config_double(c, "train", "period", 200, &v))) return rc;
        s->period = (float)v;
    } else if (!strcmp(sc, "step")) {
        s->kind = NN_SCHED_STEP;
        const char *d = io_config_str(c, "train", "drops", "");
        char buf[512];
        snprintf(buf, sizeof buf, "%s", d);
        char *it[NN_SCHED_MAXDROPS];
        s->n_drops = io_split_list(buf, it, NN_SCHED_MAXDROPS);
        for (int i = 0; i < s->n_drops; i++) s->drop_steps[i] = atol(it[i]);
        if ((rc = io_config_double(c, "train", "drop_factor", 0.1, &v))) return rc;
        s->factor = (float)v;
    } else
        return gn_err(GN_EINVAL, "%s: [train] schedule '%s' is not constant, cosine, epoch_cos or step",
                      c->name, sc);
    return nn_optim_init(&T->opt, &T->r.st);
}

static void progress(trainer *T, long step, double t0, long steps_done0, int final) {
    size_t spe = io_loader_batches_per_epoch(&T->L);
    double el = gn_now() - t0, rate = (double)(step - steps_done0) * T->r.batch / (el > 0 ? el : 1e-9);
    long total = (long)spe * T->epochs;
    double eta = rate > 0 ? (double)(total - step) * T->r.batch / rate : 0;
    if (cmd_is_tty()) {
        fprintf(stderr, "\r  epoch %ld/%ld  step %ld/%ld  loss %.4f  %.0f samples/s  ETA %.0f s   ",
                (long)T->L.epoch + 1, T->epochs, step, total,
                T->loss_n ? T->loss_sum / (double)T->loss_n : 0.0, rate, eta);
        if (final) fputc('\n', stderr);
    }
}

int cmd_train(int argc, char **argv) {
    trainer T;
    memset(&T, 0, sizeof T);
    const char *config = NULL, *resume = NULL, *out = NULL;
    long threads = 0, epochs = -1, ckpt_every = -1, seed = -1;
    const char *ov[64];
    int n_ov = 0;
    char flag_ov[8][1024];
    int n_fov = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        const char *key = !strcmp(a, "--catalog")  ? "data.catalog"
                          : !strcmp(a, "--images") ? "data.images"
                          : !strcmp(a, "--bands")  ? "data.bands"
                          : !strcmp(a, "--target") ? "target.names"
                                                   : NULL;
        if (key) {
            if (!v) return cmd_error("%s needs a value", a);
            if (n_fov == 8) return cmd_error("too many options");
            snprintf(flag_ov[n_fov], sizeof flag_ov[n_fov], "%s=%s", key, v);
            ov[n_ov++] = flag_ov[n_fov++];
            i++;
        } else if (!strcmp(a, "--config")) {
            if (!(config = v)) return cmd_error("--config needs a file");
            i++;
        } else if (!strcmp(a, "--resume")) {
            if (!(resume = v)) return cmd_error("--resume needs a checkpoint");
            i++;
        } else if (!strcmp(a, "--out")) {
            if (!(out = v)) return cmd_error("--out needs a directory");
            i++;
        } else if (!strcmp(a, "--threads")) {
            if (cmd_parse_int(a, v, 0, 1024, &threads)) return 1;
            i++;
        } else if (!strcmp(a, "--epochs")) {
            if (cmd_parse_int(a, v, 1, 1000000, &epochs)) return 1;
            i++;
        } else if (!strcmp(a, "--seed")) {
            if (cmd_parse_int(a, v, 0, 0x7fffffffL, &seed)) return 1;
            i++;
        } else if (!strcmp(a, "--ckpt-every")) {
            if (cmd_parse_int(a, v, 0, 100000000, &ckpt_every)) return 1;
            i++;
        } else if (strchr(a, '=') && strchr(a, '.') && a[0] != '-') {
            if (n_ov == 64) return cmd_error("too many overrides");
            ov[n_ov++] = a;
        } else
            return cmd_error("train: unknown option '%s' (see `galnn help train`)", a);
    }
    if (!config == !resume) return cmd_error("train: give either --config FILE or --resume CHECKPOINT");
    gn_set_threads((int)threads);
    io_config cfg;
    io_npz ck;
    memset(&ck, 0, sizeof ck);
    int rc;
    if (resume) {
        if (io_npz_read(resume, &ck)) return cmd_error("%s", gn_errmsg());
        char *text = io_ckpt_config(resume, &ck);
        if (!text || io_config_parse(resume, text, &cfg)) {
            free(text);
            io_npz_free(&ck);
            return cmd_error("%s", gn_errmsg());
        }
        free(text);
        if (n_ov)
            return io_npz_free(&ck), io_config_free(&cfg),
                   cmd_error(
                       "train --resume: overrides would change the run; only --epochs and --threads apply");
        char *cp = gn_strdup(resume);
        snprintf(T.dir, sizeof T.dir, "%s", dirname(cp));
        free(cp);
    } else {
        if (io_config_read(config, &cfg)) return cmd_error("%s", gn_errmsg());
        for (int k = 0; k < n_ov; k++)
            if (io_config_set(&cfg, ov[k])) return io_config_free(&cfg), cmd_error("%s", gn_errmsg());
        if (seed >= 0) {
            char b[32];
            snprintf(b, sizeof b, "%ld", seed);
            io_config_put(&cfg, "train", "seed", b);
        }
        if (out) snprintf(T.dir, sizeof T.dir, "%s", out);
        else {
            char *cp = gn_strdup(config), *base = basename(cp), *dot = strrchr(base, '.');
            if (dot) *dot = 0;
            mkdir("runs", 0755);
            snprintf(T.dir, sizeof T.dir, "runs/%s", base);
            free(cp);
        }
        if (mkdir(T.dir, 0755) && errno != EEXIST)
            return io_config_free(&cfg), cmd_error("%s: cannot create: %s", T.dir, strerror(errno));
    }
    if (epochs > 0) { // --epochs extends (or sets) the run's length, also on resume
        char b[32];
        snprintf(b, sizeof b, "%ld", epochs);
        io_config_put(&cfg, "train", "epochs", b);
        io_config_put(&cfg, "train", "iterations", "0"); // an explicit --epochs wins over [train] iterations
    }
    printf("galnn train: %s -> %s (%d threads)\n", resume ? resume : config, T.dir, gn_threads());
    run *r = &T.r;
    if ((rc = run_setup(r, &cfg, resume, resume ? &ck : NULL, 1, 1))) goto fail;
    long v;
    io_config *c = &r->cfg;
    if ((rc = io_config_int(c, "train", "epochs", 10, &T.epochs)) ||
        (rc = io_config_int(c, "train", "batch", 32, &v)))
        goto fail;
    r->batch = (int)v;
    long sd;
    if ((rc = io_config_int(c, "train", "seed", 1, &sd))) goto fail;
    if (ckpt_every >= 0) {
        char b[32];
        snprintf(b, sizeof b, "%ld", ckpt_every);
        io_config_put(c, "train", "ckpt_every", b);
    }
    if ((rc = io_config_int(c, "train", "ckpt_every", 0, &T.ckpt_every))) goto fail;
    if ((rc = io_config_int(c, "train", "patience", 0, &T.patience))) goto fail;
    if (r->n_rows[IO_SPLIT_TRAIN] == 0) {
        rc = gn_err(GN_EINVAL, "no usable training galaxies");
        goto fail;
    }
    T.pairs = r->net.pairs;
    T.morph = r->net.morph; // images: the morphology-augmented view
    int per_step =
        T.pairs ? r->batch / 2 : r->batch; // set 1 comes from the loader, set 2 from io_draw_partners
    io_loader_opts lo = {
        .batch = per_step, .shuffle = 1, .dihedral = r->augment, .random_crop = r->crop > 0, .drop_last = 1};
    if (r->n_rows[IO_SPLIT_TRAIN] < (size_t)per_step) lo.drop_last = 0;
    if (T.pairs && r->n_rows[IO_SPLIT_TRAIN] < 2) {
        rc = gn_err(GN_EINVAL, "a contrastive objective needs at least 2 training galaxies");
        goto fail;
    }
    if ((rc =
             io_loader_init_ids(&T.L, r->rows[IO_SPLIT_TRAIN], r->n_rows[IO_SPLIT_TRAIN], &lo, (uint64_t)sd)))
        goto fail;
    gn_rng_seed(&T.pair, (uint64_t)sd, GN_STREAM_SAMPLE);
    long iters;
    if ((rc = io_config_int(c, "train", "iterations", 0, &iters))) goto fail;
    if (iters > 0) { // a length in optimizer steps, rounded up to whole epochs
        long spe = (long)io_loader_batches_per_epoch(&T.L);
        T.epochs = (iters + spe - 1) / spe;
    }
    if ((rc = nn_ctx_init(&T.ctx, 64u << 20))) goto fail;
    gn_rng_seed(&T.ctx.dropout_rng, (uint64_t)sd, GN_STREAM_DROPOUT);
    long keep;
    if ((rc = io_config_int(c, "train", "keep_im2col", 1, &keep))) goto fail;
    T.ctx.keep_im2col = (int)keep; // 0: recompute in backward (less memory, a little slower)
    if ((rc = io_config_int(c, "train", "winograd", 1, &keep))) goto fail;
    if (keep != 0 && keep != 1 && keep != 2 && keep != 4) {
        rc = gn_err(GN_EINVAL,
                    "%s: [train] winograd = %ld is not 0 (im2col), 1 (auto), 2 or 4 (the tile size)", c->name,
                    keep);
        goto fail;
    }
    T.ctx.winograd = (int)keep; // 0: 3x3 stride-1 convs by im2col + GEMM as well
    if ((rc = setup_optim(&T, c)) || (rc = io_config_check_unused(c))) goto fail;
    T.best_val = INFINITY;
    int maxS = 0, maxC = 0;
    for (int d = 0; d < r->n_ds; d++)
        maxS = r->ds[d].h > maxS ? r->ds[d].h : maxS, maxC = r->ds[d].c > maxC ? r->ds[d].c : maxC;
    T.scratch = gn_malloc(sizeof(float) * (size_t)(maxS * maxS + 1));
    T.y = gn_malloc(sizeof(float) * (size_t)r->batch * (size_t)(r->n_targets ? r->n_targets : 1));
    T.ids = gn_malloc(sizeof(uint32_t) * (size_t)r->batch);
    T.aug = gn_malloc(sizeof(io_aug) * (size_t)r->batch);
    T.aug_m = gn_malloc(sizeof(io_aug) * (size_t)r->batch);
    if (!T.scratch || !T.y || !T.ids || !T.aug || !T.aug_m) {
        rc = GN_ENOMEM;
        goto fail;
    }
    if (resume) {
        if ((rc = restore(&T, resume, &ck))) goto fail;
        printf("  resuming at epoch %ld, step %ld\n", (long)T.L.epoch + 1, T.opt.step);
    } else {
        gn_rng ri;
        gn_rng_seed(&ri, (uint64_t)sd, GN_STREAM_INIT);
        nn_store_reset_values(&r->st, &ri);
        char *text = io_config_text(c), p[2200];
        snprintf(p, sizeof p, "%s/config.cfg", T.dir);
        if (!text || (rc = io_write_atomic(p, text, strlen(text)))) {
            free(text);
            goto fail;
        }
        free(text);
        if ((rc = log_append(&T, "epoch,step,lr,train_loss,val_loss,val_bias,val_sigma_mad,val_eta,val_rmse,"
                                 "val_r2,seconds\n")))
            goto fail;
    }
    io_npz_free(&ck);
    printf("  model: %zu parameters in %d branch(es); %ld epochs of %zu steps (batch %d)\n",
           r->st.n_param_values, r->net.n_branch, T.epochs, io_loader_batches_per_epoch(&T.L), r->batch);
    double t0 = gn_now(), te = gn_now();
    long step0 = T.opt.step;
    while (T.L.epoch < T.epochs && !(T.patience > 0 && T.stall >= T.patience)) {
        int b = io_loader_next_ids(&T.L, T.ids, T.aug);
        if (b && T.pairs) {
            io_draw_partners(&T.pair, r->rows[IO_SPLIT_TRAIN], r->n_rows[IO_SPLIT_TRAIN], T.ids, b,
                             r->augment, T.ids + b, T.aug + b);
            b *= 2;
        }
        if (b && T.morph) draw_morph(&T, b);
        if (b == 0) { // the epoch is over (the loader already holds the next epoch's order)
            double vl = NAN;
            st_metrics m = {0};
            if (r->n_rows[IO_SPLIT_VAL] && (rc = validate(&T, &vl, &m))) goto fail;
            double tl = T.loss_n ? T.loss_sum / (double)T.loss_n : NAN;
            char line[512];
            snprintf(line, sizeof line, "%ld,%ld,%.6g,%.6f,%.6f,%.5f,%.5f,%.5f,%.5f,%.5f,%.2f\n",
                     (long)T.L.epoch, T.opt.step,
                     (double)nn_sched_lr(&T.sched, T.opt.step ? T.opt.step - 1 : 0), tl, vl, m.bias,
                     m.sigma_mad, m.eta, m.rmse, m.r2, gn_now() - te);
            progress(&T, T.opt.step, t0, step0, 1);
            if (!md_kind_of(&r->net)->val_metrics)
                printf("  epoch %ld/%ld  train loss %.4f  val loss %.4f  (%.1f s)\n", (long)T.L.epoch,
                       T.epochs, tl, vl, gn_now() - te);
            else
                printf("  epoch %ld/%ld  train loss %.4f  val loss %.4f  val sigma_MAD %.4f  R2 %.3f  (%.1f "
                       "s)\n",
                       (long)T.L.epoch, T.epochs, tl, vl, m.sigma_mad, m.r2, gn_now() - te);
            fflush(stdout);
            T.loss_sum = 0, T.loss_n = 0;
            int improved = !isnan(vl) && vl < T.best_val;
            if (improved) T.best_val = vl;
            T.stall = improved ? 0 : T.stall + 1;
            if ((rc = log_append(&T, line)) || (rc = save(&T, "last.npz")) ||
                (improved && (rc = save(&T, "best.npz"))))
                goto fail;
            if (plot_losses(&T))
                fprintf(stderr, "galnn: warning: %s\n", gn_errmsg()); // a plot never stops training
            te = gn_now();
            if (T.patience > 0 && T.stall >= T.patience) break;
            continue;
        }
        nn_tensor *in[MD_MAX_BRANCH], *in_m[MD_MAX_BRANCH];
        nn_ctx_reset(&T.ctx);
        nn_store_zero_grad(&r->st);
        if ((rc = run_batch(r, &T.ctx, T.ids, T.aug, b, in, T.y, T.scratch))) goto fail;
        if (T.morph && (rc = run_batch(r, &T.ctx, T.ids, T.aug_m, b, in_m, NULL, T.scratch))) goto fail;
        nn_tensor *L = md_net_train_loss(&T.ctx, &r->net, in, T.morph ? in_m : NULL, T.y, b);
        if (!L || (rc = nn_backward(&T.ctx, L))) {
            rc = rc ? rc : GN_EINVAL;
            goto fail;
        }
        if (!isfinite(L->data[0])) {
            rc = gn_err(GN_EINVAL, "the loss became %g at step %ld (lower train.lr or set train.clip)",
                        (double)L->data[0], T.opt.step + 1);
            goto fail;
        }
        if (T.clip > 0) nn_clip_grad_norm(&r->st, T.clip);
        nn_optim_step(&T.opt, &r->st, nn_sched_lr(&T.sched, T.opt.step));
        T.loss_sum += L->data[0], T.loss_n++;
        if (T.opt.step % 10 == 0) progress(&T, T.opt.step, t0, step0, 0);
        if (T.ckpt_every > 0 && T.opt.step % T.ckpt_every == 0 && (rc = save(&T, "last.npz"))) goto fail;
    }
    if (T.patience > 0 && T.stall >= T.patience)
        printf("stopped early after epoch %ld: no better validation loss in %ld epochs (train.patience)\n",
               (long)T.L.epoch, T.stall);
    printf("done: best validation loss %.5f; checkpoints in %s\n", T.best_val, T.dir);
    rc = 0;
fail:
    if (rc) cmd_error("train: %s", gn_errmsg());
    io_npz_free(&ck);
    io_loader_free(&T.L);
    nn_optim_free(&T.opt);
    if (T.ctx.arena.head) nn_ctx_free(&T.ctx);
    free(T.scratch), free(T.y), free(T.ids), free(T.aug), free(T.aug_m), free(T.log);
    run_free(r);
    return rc ? 1 : 0;
}
