#include "trainer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/gn_common.h"
#include "../../common/gn_mpi.h"
#include "../../io/file.h"
#include "../../io/plot.h"
#include "../../stats/metrics.h"

#include <sys/resource.h>
#include <unistd.h>

// Set 2 of a contrastive batch (spec/methods.md §1.6): for each of the b set-1
// galaxies a partner drawn uniformly with replacement from the training
// galaxies, never the same galaxy; it gets its own augmentation draw.
// The morphology-augmented view of every row of an image SCL batch (spec
// 1.4): a further, never-identity dihedral transform of the row's image, same crop.
static void draw_morph(run_trainer *T, int n) {
    for (int i = 0; i < n; i++) {
        double u1 = gn_rng_uniform(&T->pair), u2 = gn_rng_uniform(&T->pair);
        T->aug_m[i] = T->aug[i];
        T->aug_m[i].k = io_dihedral_then(T->aug[i].k, io_dihedral_morph(u1, u2));
    }
}

int run_trainer_log(run_trainer *T, const char *line) {
    size_t L = strlen(line);
    char *n = gn_realloc(T->log, T->log_len + L + 1);
    if (!n) return GN_ENOMEM;
    memcpy(n + T->log_len, line, L + 1);
    T->log = n;
    T->log_len += L;
    if (gn_mpi_rank() > 0) return GN_OK; // every rank keeps the log, rank 0 writes it
    char p[2200];
    snprintf(p, sizeof p, "%s/log.csv", T->dir);
    return io_write_atomic(p, T->log, T->log_len);
}

// loss.png from the log: train and validation loss per epoch.
int run_trainer_plot(const run_trainer *T) {
    if (gn_mpi_rank() > 0) return GN_OK;
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
    char title[2300];
    snprintf(title, sizeof title, "training curve: %s", T->dir); // which run, when plots sit side by side
    const md_net *m = &T->r.net;
    const char *unit = md_kind_of(m)->loss_unit;
    if (!unit)
        unit = m->head == MD_HEAD_GAUSSIAN ? "Gaussian -log p per galaxy (nats)"
               : m->head == MD_HEAD_BINNED ? "cross-entropy per galaxy (nats)"
                                           : "mean squared error of the standardised targets";
    const char *x = m->kind == MD_KIND_GBDT ? "boosting round" : "epoch";
    int rc = k ? io_plot_lines(path, title, x, unit, s, 2, log_y) : GN_OK;
    free(ep);
    return rc;
}

// [train] ema = d: after each step ema <- d' ema + (1 - d') w with d' = min(d, (1 + t) / (10 + t)) (short
// runs are not dominated by the initial weights). Validation and checkpoints see the averaged weights
// (param.* holds them, so eval and predict use them); the live weights travel as train.live.
static void ema_update(run_trainer *T) {
    if (!T->ema) return;
    double t = (double)T->opt.step, d = fmin(T->r.train.ema, (1 + t) / (10 + t));
    const float *w = T->r.st.data;
    float a = (float)d, b = (float)(1 - d);
    for (size_t i = 0; i < T->r.st.n_param_floats; i++) T->ema[i] = a * T->ema[i] + b * w[i];
}

// in = 1: the averaged weights into the store (the live ones set aside); 0: the live ones back.
static void ema_swap(run_trainer *T, int in) {
    if (!T->ema) return;
    size_t n = sizeof(float) * T->r.st.n_param_floats;
    if (in)
        memcpy(T->live, T->r.st.data, n), memcpy(T->r.st.data, T->ema, n);
    else
        memcpy(T->r.st.data, T->live, n);
}

// Everything beyond the store and the optimizer that a resumed run needs.
static int save(run_trainer *T, const char *file) {
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
    static const char *pn[4] = {"meta.path.catalog", "meta.path.catalog_rel", "meta.path.images",
                                "meta.path.images_rel"};
    static int64_t pl[4];
    for (int k = 0; k < 4;
         k++) // where the data was, for a checkpoint read from elsewhere (run_from_checkpoint)
        if ((pl[k] = (int64_t)strlen(T->paths[k])))
            ex[n++] = (io_named_array){pn[k], io_array_view(IO_U8, 1, &pl[k], T->paths[k])};
    static int64_t ne;
    ne = (int64_t)T->r.st.n_param_floats;
    if (T->ema) ex[n++] = (io_named_array){"train.live", io_array_view(IO_F32, 1, &ne, T->live)};
    int rc = run_dp_check(T); // the ranks hold one state (MPI): rank 0 alone writes it
    if (rc) return rc;
    if (gn_mpi_rank() == 0) {
        char *cfg = io_config_text(&T->r.cfg), p[2200];
        if (!cfg) return GN_ENOMEM;
        snprintf(p, sizeof p, "%s/%s", T->dir, file);
        ema_swap(T, 1);
        rc = io_ckpt_save(p, &T->r.st, &T->opt, ex, n, cfg);
        ema_swap(T, 0);
        free(cfg);
    }
    gn_mpi_barrier(); // the file is whole for every rank that reads it next (a flow's calibration does)
    return rc;
}

static int restore(run_trainer *T, const char *path, const io_npz *z) {
    int rc = io_ckpt_restore(path, z, &T->r.st, &T->opt);
    if (rc) return rc;
    const io_array *a;
    if (T->ema) { // param.* are the averaged weights, train.live the ones training continues from
        if (!(a = io_ckpt_get(path, z, "train.live", IO_F32, T->r.st.n_param_floats)))
            return gn_err_prefix(GN_EFORMAT, "(train.ema is set: the checkpoint needs the live weights) ");
        memcpy(T->ema, T->r.st.data, sizeof(float) * T->r.st.n_param_floats);
        memcpy(T->r.st.data, a->data, sizeof(float) * T->r.st.n_param_floats);
    }
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
// metrics of its predictions (first target, in its own units).
static int validate(run_trainer *T, double *loss, st_metrics *met) {
    run *r = &T->r;
    size_t n = r->n_rows[IO_SPLIT_VAL];
    int point = md_kind_of(&r->net)->val_metrics != 0;
    double *pred = gn_malloc(sizeof(double) * (n ? n : 1)), *tru = gn_malloc(sizeof(double) * (n ? n : 1));
    if (!pred || !tru) return free(pred), free(tru), GN_ENOMEM;
    int rc = run_split_loss(r, &T->ctx, r->rows[IO_SPLIT_VAL], n, loss, point ? pred : NULL);
    for (size_t j = 0; point && j < n; j++) tru[j] = r->target[0][r->rows[IO_SPLIT_VAL][j]];
    *met = (st_metrics){.bias = NAN, .sigma_mad = NAN, .eta = NAN, .rmse = NAN, .r2 = NAN};
    if (!rc && n && point) rc = st_point_metrics(pred, tru, n, met);
    free(pred), free(tru);
    return rc;
}

static int setup_optim(run_trainer *T) {
    const run_train_opts *o = &T->r.train;
    nn_opt_kind k = !strcmp(o->optimizer, "sgd")     ? NN_OPT_SGD
                    : !strcmp(o->optimizer, "adamw") ? NN_OPT_ADAMW
                                                     : NN_OPT_ADAM;
    nn_optim_defaults(&T->opt, k);
    T->opt.weight_decay = (float)o->weight_decay;
    T->opt.momentum = k == NN_OPT_SGD ? (float)o->momentum : 0;
    T->opt.amsgrad = (int)o->amsgrad;
    T->clip = (float)o->clip;
    nn_sched *s = &T->sched;
    memset(s, 0, sizeof *s);
    s->base_lr = (float)o->lr;
    long spe = (long)io_loader_batches_per_epoch(&T->L);
    if (!strcmp(o->schedule, "constant")) {
        s->kind = NN_SCHED_CONST;
        s->warmup = o->warmup;
    } else if (!strcmp(o->schedule, "cosine")) {
        s->kind = NN_SCHED_COSINE;
        s->warmup = o->warmup;
        s->total = spe * T->epochs;
        s->min_lr = (float)o->min_lr;
    } else if (!strcmp(o->schedule, "epoch_cos")) {
        s->kind = NN_SCHED_EPOCH_COS;
        s->steps_per_epoch = spe;
        s->period = (float)o->period;
    } else { // step
        s->kind = NN_SCHED_STEP;
        char buf[512];
        snprintf(buf, sizeof buf, "%s", o->drops);
        char *it[NN_SCHED_MAXDROPS];
        s->n_drops = io_split_list(buf, it, NN_SCHED_MAXDROPS);
        for (int i = 0; i < s->n_drops; i++) s->drop_steps[i] = atol(it[i]);
        s->factor = (float)o->drop_factor;
    }
    int rc = nn_optim_init(&T->opt, &T->r.st);
    for (int b = 0; !rc && b < T->r.net.n_branch; b++) // [branch.X] weight_decay
        if (T->r.net.spec[b].wd_set)
            rc = nn_optim_decay_prefix(&T->opt, &T->r.st, T->r.net.spec[b].name,
                                       T->r.net.spec[b].weight_decay);
    return rc;
}

// Progress on stderr: a line rewritten in place on a terminal; otherwise (a log file, a batch job) a
// plain line every ~10 s inside an epoch. final: the epoch just ended (it is the one shown).
static void progress(run_trainer *T, long step, double t0, long steps_done0, int final) {
    size_t spe = io_loader_batches_per_epoch(&T->L);
    double now = gn_now(), el = now - t0,
           rate = (double)(step - steps_done0) * T->r.batch / (el > 0 ? el : 1e-9);
    long total = (long)spe * T->epochs, ep = (long)T->L.epoch + (final ? 0 : 1);
    double eta = rate > 0 ? (double)(total - step) * T->r.batch / rate : 0;
    if (ep > T->epochs) ep = T->epochs;
    int tty = isatty(fileno(stderr));
    if (gn_mpi_rank() > 0 || (!tty && (final || now - T->last_note < 10))) return;
    T->last_note = now;
    fprintf(stderr, "%s  epoch %ld/%ld  step %ld/%ld  loss %.4f  %.0f samples/s  ETA %.0f s%s",
            tty ? "\r" : "", ep, T->epochs, step, total, T->loss_n ? T->loss_sum / (double)T->loss_n : 0.0,
            rate, eta, tty ? (final ? "   \n" : "   ") : "\n");
}

// The data's paths as the checkpoint keeps them: absolute, and relative to the run directory.
static void record_paths(run_trainer *T) {
    const char *src[2] = {T->r.data.catalog, T->r.data.img.images};
    char dir[4096];
    if (io_abs_path(T->dir, dir, sizeof dir)) return;
    for (int k = 0; k < 2; k++) {
        T->paths[2 * k][0] = T->paths[2 * k + 1][0] = 0;
        if (!src[k] || io_abs_path(src[k], T->paths[2 * k], sizeof T->paths[0])) continue;
        io_rel_path(dir, T->paths[2 * k], T->paths[2 * k + 1], sizeof T->paths[0]);
    }
}

int run_trainer_open(run_trainer *T, const char *resume, const io_npz *ck) {
    run *r = &T->r;
    if (r->net.kind == MD_KIND_GBDT && gn_mpi_size() > 1)
        return gn_err(GN_EINVAL, "gradient-boosted trees train on one process: start without mpirun");
    if (r->net.kind == MD_KIND_GBDT) return record_paths(T), run_gbdt_open(T, resume, ck);
    const run_train_opts *o = &r->train;
    uint64_t sd = (uint64_t)o->seed;
    int rc;
    T->epochs = o->epochs, T->ckpt_every = o->ckpt_every, T->patience = o->patience;
    record_paths(T);
    if (r->n_rows[IO_SPLIT_TRAIN] == 0) return gn_err(GN_EINVAL, "no usable training galaxies");
    T->pairs = r->net.pairs;
    T->morph = r->net.morph;                           // images: the morphology-augmented view
    int per_step = T->pairs ? r->batch / 2 : r->batch; // set 1 from the loader, set 2 from io_draw_partners
    io_loader_opts lo = {
        .batch = per_step, .shuffle = 1, .dihedral = r->augment, .random_crop = r->crop > 0, .drop_last = 1};
    if (r->n_rows[IO_SPLIT_TRAIN] < (size_t)per_step) lo.drop_last = 0;
    if (T->pairs && r->n_rows[IO_SPLIT_TRAIN] < 2)
        return gn_err(GN_EINVAL, "a contrastive objective needs at least 2 training galaxies");
    if ((rc = io_loader_init_ids(&T->L, r->rows[IO_SPLIT_TRAIN], r->n_rows[IO_SPLIT_TRAIN], &lo, sd)))
        return rc;
    gn_rng_seed(&T->pair, sd, GN_STREAM_SAMPLE);
    if (o->iterations > 0) { // a length in optimizer steps, rounded up to whole epochs
        long spe = (long)io_loader_batches_per_epoch(&T->L);
        T->epochs = (o->iterations + spe - 1) / spe;
    }
    if ((rc = nn_ctx_init(&T->ctx, 64u << 20))) return rc;
    gn_rng_seed(&T->ctx.dropout_rng, sd, GN_STREAM_DROPOUT);
    T->ctx.keep_im2col = (int)o->keep_im2col;
    T->ctx.winograd = (int)o->winograd; // 0: 3x3 stride-1 convs by im2col + GEMM as well
    if ((rc = setup_optim(T)) || (rc = io_config_check_unused(&r->cfg))) return rc;
    // a warm-up is a few per cent of a run: a longer one keeps a short run below train.lr throughout
    long total = (long)io_loader_batches_per_epoch(&T->L) * T->epochs, cap = total / 20 > 1 ? total / 20 : 1;
    if (T->sched.warmup > cap) {
        int longer = T->sched.warmup > total; // a note where it is only long, a warning where it never ends
        if (!gn_mpi_rank())
            fprintf(stderr, "galnn: %s: [train] warmup = %ld steps is %s (%ld steps): capped at %ld steps\n",
                    longer ? "warning" : "note", (long)T->sched.warmup,
                    longer ? "longer than the run" : "over 5 % of the run", total, cap);
        T->sched.warmup = cap;
    }
    T->best_val = INFINITY;
    int maxS = 0;
    for (int d = 0; d < r->n_ds; d++) maxS = r->ds[d].h > maxS ? r->ds[d].h : maxS;
    T->dp.scratch_per = (size_t)maxS * maxS + 16; // one per thread: they render a step's rows together
    T->scratch = gn_malloc(sizeof(float) * T->dp.scratch_per * (size_t)gn_threads());
    T->y = gn_malloc(sizeof(float) * (size_t)r->batch * (size_t)(r->n_targets ? r->n_targets : 1));
    T->ids = gn_malloc(sizeof(uint32_t) * (size_t)r->batch);
    T->aug = gn_malloc(sizeof(io_aug) * (size_t)r->batch);
    T->aug_m = gn_malloc(sizeof(io_aug) * (size_t)r->batch);
    if (!T->scratch || !T->y || !T->ids || !T->aug || !T->aug_m) return GN_ENOMEM;
    if (o->ema > 0) {
        T->ema = gn_malloc(sizeof(float) * r->st.n_param_floats);
        T->live = gn_malloc(sizeof(float) * r->st.n_param_floats);
        if (!T->ema || !T->live) return GN_ENOMEM;
    }
    if (resume) {
        if ((rc = restore(T, resume, ck))) return rc;
        printf("  resuming at epoch %ld, step %ld\n", (long)T->L.epoch + 1, T->opt.step);
    } else {
        gn_rng ri;
        gn_rng_seed(&ri, sd, GN_STREAM_INIT);
        nn_store_reset_values(&r->st, &ri);
        if (T->ema) memcpy(T->ema, r->st.data, sizeof(float) * r->st.n_param_floats);
        char *text = io_config_text(&r->cfg), p[2200];
        snprintf(p, sizeof p, "%s/config.cfg", T->dir);
        rc = !text ? GN_ENOMEM : gn_mpi_rank() ? GN_OK : io_write_atomic(p, text, strlen(text));
        free(text);
        if (rc || (rc = run_trainer_log(T, "epoch,step,lr,train_loss,val_loss,val_bias,val_sigma_mad,val_eta,"
                                           "val_rmse,val_r2,seconds\n")))
            return rc;
    }
    if ((rc = run_dp_open(T))) return rc;
    printf("  model: %zu parameters in %d branch(es); %ld epochs of %zu steps (batch %d)\n",
           r->st.n_param_values, r->net.n_branch, T->epochs, io_loader_batches_per_epoch(&T->L), r->batch);
    if (T->dp.n > 1)
        printf("  each batch in %d slices (%d MPI rank(s) x %d), their gradients summed in order\n", T->dp.n,
               gn_mpi_size(), T->dp.count);
    return GN_OK;
}

// The end of an epoch: validate, log, checkpoint, plot; *stop when patience ran out.
static int epoch_end(run_trainer *T, double t0, long step0, double *te, int *stop) {
    run *r = &T->r;
    double vl = NAN;
    st_metrics m = {0};
    int rc;
    ema_swap(T, 1);
    rc = r->n_rows[IO_SPLIT_VAL] ? validate(T, &vl, &m) : GN_OK;
    ema_swap(T, 0);
    if (rc) return rc;
    double tl = T->loss_n ? T->loss_sum / (double)T->loss_n : NAN;
    char line[512];
    snprintf(line, sizeof line, "%ld,%ld,%.6g,%.6f,%.6f,%.5f,%.5f,%.5f,%.5f,%.5f,%.2f\n", (long)T->L.epoch,
             T->opt.step, (double)nn_sched_lr(&T->sched, T->opt.step ? T->opt.step - 1 : 0), tl, vl, m.bias,
             m.sigma_mad, m.eta, m.rmse, m.r2, gn_now() - *te);
    progress(T, T->opt.step, t0, step0, 1);
    if (!md_kind_of(&r->net)->val_metrics)
        printf("  epoch %ld/%ld  train loss %.4f  val loss %.4f  (%.1f s)\n", (long)T->L.epoch, T->epochs, tl,
               vl, gn_now() - *te);
    else
        printf("  epoch %ld/%ld  train loss %.4f  val loss %.4f  val sigma_MAD %.4f  R2 %.3f  (%.1f s)\n",
               (long)T->L.epoch, T->epochs, tl, vl, m.sigma_mad, m.r2, gn_now() - *te);
    fflush(stdout);
    T->loss_sum = 0, T->loss_n = 0;
    int improved = !isnan(vl) && vl < T->best_val;
    if (improved) T->best_val = vl;
    T->stall = improved ? 0 : T->stall + 1;
    if ((rc = run_trainer_log(T, line)) || (rc = save(T, "last.npz")) ||
        (improved && (rc = save(T, "best.npz"))))
        return rc;
    if (run_trainer_plot(T))
        fprintf(stderr, "galnn: warning: %s\n", gn_errmsg()); // a plot never stops training
    *te = gn_now();
    *stop = T->patience > 0 && T->stall >= T->patience;
    return GN_OK;
}

// One optimizer step on a batch of b rows (T->ids, T->aug): the gradient (its slices', on this process and
// the MPI ranks), clipping, the step, the averaged weights; the ranks compared every check_every steps.
static int train_step(run_trainer *T, int b) {
    double loss;
    int rc = run_dp_step(T, b, &loss);
    if (rc) return rc;
    if (!isfinite(loss))
        return gn_err(GN_EINVAL, "the loss became %g at step %ld (lower train.lr or set train.clip)", loss,
                      T->opt.step + 1);
    if (T->clip > 0) nn_clip_grad_norm(&T->r.st, T->clip);
    nn_optim_step(&T->opt, &T->r.st, nn_sched_lr(&T->sched, T->opt.step));
    ema_update(T);
    T->loss_sum += loss, T->loss_n++;
    if (T->dp.check_every > 0 && T->opt.step % T->dp.check_every == 0) return run_dp_check(T);
    return GN_OK;
}

// Flow models: best.npz gains the quantile recalibration of its posteriors, fitted on the validation split
// with its own weights (the whole state is restored from it first, so only calib.pit is added).
static int calibrate_best(run_trainer *T) {
    char p[2200];
    snprintf(p, sizeof p, "%s/best.npz", T->dir);
    io_npz z;
    memset(&z, 0, sizeof z);
    int rc = io_npz_read(p, &z);
    if (rc == GN_OK) rc = restore(T, p, &z);
    io_npz_free(&z);
    if (rc) return rc;
    nn_ctx_reset(&T->ctx);
    ema_swap(T, 1); // the weights best.npz holds
    rc = run_posterior_calibrate(&T->r, &T->ctx, 256, 0x5eed);
    ema_swap(T, 0);
    if (rc) return rc;
    if (!T->r.has_calib) return GN_OK;
    printf(
        "  posteriors recalibrated on the validation split (core and tail widths of its PITs) in best.npz\n");
    return save(T, "best.npz");
}

// "1.23 GiB" or "45 MiB".
static const char *human(double bytes, char *buf, size_t len) {
    double mib = bytes / 1048576.0;
    if (mib < 1024)
        snprintf(buf, len, "%.0f MiB", mib);
    else
        snprintf(buf, len, "%.2f GiB", mib / 1024);
    return buf;
}

// After the first step: what a step holds (activations, gradients) and the process's peak, next to the
// machine's memory, with a warning and the remedies when it comes near.
static void memory_note(const run_trainer *T) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double rss = ru.ru_maxrss * 1024.0, ram = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
    if (gn_mpi_rank() > 0) return;
    char a[32], g[32], p[32], m[32];
    printf("  memory: a step holds %s of activations and %s of gradients; peak %s of the machine's %s\n",
           human((double)T->ctx.arena.peak, a, sizeof a), human((double)T->ctx.gpool_bytes, g, sizeof g),
           human(rss, p, sizeof p), human(ram, m, sizeof m));
    if (ram > 0 && rss > 0.8 * ram)
        fprintf(stderr,
                "galnn: warning: this run holds %s of the machine's %s: a smaller [train] batch, "
                "%strain.slices=2 (the batch in two halves) hold less%s\n",
                p, m,
                T->ctx.keep_im2col ? "train.keep_im2col=0 (convolutions' im2col recomputed in backward) or "
                                   : "",
                gn_mpi_size() > 1 ? " (per MPI rank on a node)" : "");
    fflush(stdout);
}

int run_trainer_fit(run_trainer *T) {
    run *r = &T->r;
    if (r->net.kind == MD_KIND_GBDT) return run_gbdt_fit(T);
    double t0 = gn_now(), te = gn_now();
    long step0 = T->opt.step;
    T->last_note = t0;
    int rc, stop = T->patience > 0 && T->stall >= T->patience;
    while (T->L.epoch < T->epochs && !stop) {
        int b = io_loader_next_ids(&T->L, T->ids, T->aug);
        if (b && T->pairs) {
            io_draw_partners(&T->pair, r->rows[IO_SPLIT_TRAIN], r->n_rows[IO_SPLIT_TRAIN], T->ids, b,
                             r->augment, T->ids + b, T->aug + b);
            b *= 2;
        }
        if (b && T->morph) draw_morph(T, b);
        if (b == 0) { // the epoch is over (the loader already holds the next epoch's order)
            if ((rc = epoch_end(T, t0, step0, &te, &stop))) return rc;
            continue;
        }
        if ((rc = train_step(T, b))) return rc;
        if (T->opt.step == step0 + 1) memory_note(T);
        if (T->opt.step % 10 == 0) progress(T, T->opt.step, t0, step0, 0);
        if (T->ckpt_every > 0 && T->opt.step % T->ckpt_every == 0 && (rc = save(T, "last.npz"))) return rc;
    }
    if (stop)
        printf("stopped early after epoch %ld: no better validation loss in %ld epochs (train.patience)\n",
               (long)T->L.epoch, T->stall);
    if (run_report(r) == MD_REPORT_POSTERIOR && (rc = calibrate_best(T))) return rc;
    printf("done: best validation loss %.5f; checkpoints in %s\n", T->best_val, T->dir);
    return GN_OK;
}

void run_trainer_free(run_trainer *T) {
    run_gbdt_free(T);
    run_dp_free(T);
    io_loader_free(&T->L);
    nn_optim_free(&T->opt);
    if (T->ctx.arena.head) nn_ctx_free(&T->ctx);
    free(T->scratch), free(T->y), free(T->ids), free(T->aug), free(T->aug_m), free(T->log);
    free(T->ema), free(T->live);
    run_free(&T->r);
}
