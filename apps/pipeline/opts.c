#include "opts.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../../common/gn_common.h"

#define POS IO_KEY_POS
#define BIG IO_KEY_BIG
#define I IO_KL
#define D IO_KD
#define S IO_KS
#define END IO_KEND

#define IO_KEY_TYPE run_train_opts
static const io_key train_keys[] = {
    S(optimizer, "adam", "adam|adamw|sgd"),
    S(schedule, "constant", "constant|cosine|epoch_cos|step"),
    S(augment, "dihedral", "dihedral|none"),
    I(epochs, 1, 100000000, 10),
    I(iterations, 0, 1e15, 0), // > 0: the run's length in optimizer steps (rounded up to whole epochs)
    I(batch, 1, 1000000, 32),
    I(seed, 0, 0x7fffffff, 1),
    I(crop, 0, 16384, 0),
    I(ckpt_every, 0, 1e15, 0),
    I(patience, 0, 100000000, 20), // early stopping; 0: off (default off when iterations are given)
    I(amsgrad, 0, 1, 0),
    I(tta, 0, 1, 0),         // 1: eval and predict average the 8 dihedral views of each cutout by default
    I(keep_im2col, 0, 1, 0), // 1: keep the im2col matrices for backward (more memory, on some CPUs faster)
    I(winograd, 0, 6, 1),    // 0 im2col, 1 auto, 2, 3, 4 or 6 the tile (5 checked below)
    I(slices, 1, 65536, 1),  // each batch (each MPI rank's share) in this many slices, gradients summed
    I(check_every, 0, 1e15, 100), // MPI: steps between comparisons of the ranks' states (0: checkpoints)
    I(sync_bn, 0, 1, 0), // MPI: batch-norm statistics over the whole batch (all ranks), not each rank's slice
    I(split_rows, 0, 1, 1), // 1: a step's rows cut among the threads (one worker each), 0: each op split
    D(lr, POS, 1e6, 1e-3),
    D(weight_decay, 0, 1e6, NAN), // absent: by optimizer, adamw 0.01, else 0
    D(momentum, 0, 1, 0.9),
    D(clip, 0, BIG, 0),
    D(ema, 0, 0.99999, 0), // > 0: validate and save an exponential moving average of the weights
    END};
// Keys that only one schedule reads (set for another, they stay unused: an error).
static const io_key warmup_keys[] = {I(warmup, 0, 1e15, 0), END};
static const io_key cosine_keys[] = {I(warmup, 0, 1e15, 0), D(min_lr, 0, 1e6, 0), END};
static const io_key epoch_cos_keys[] = {D(period, POS, BIG, 200), END};
static const io_key step_keys[] = {S(drops, "", NULL), D(drop_factor, POS, 1e6, 0.1), END};
#undef IO_KEY_TYPE

int run_train_opts_read(io_config *c, run_train_opts *o) {
    memset(o, 0, sizeof *o);
    o->drops = "";
    o->period = 200, o->drop_factor = 0.1, o->weight_decay = NAN;
    int rc = io_config_keys(c, "train", train_keys, o);
    if (rc) return rc;
    if (o->winograd == 5)
        return gn_err(GN_EINVAL,
                      "%s: [train] winograd = 5 is not 0 (im2col), 1 (auto), 2, 3, 4 or 6 (the tile size)",
                      c->name);
    if (isnan(o->weight_decay)) o->weight_decay = !strcmp(o->optimizer, "adamw") ? 0.01 : 0;
    if (o->iterations > 0 && !io_config_str(c, "train", "patience", NULL)) o->patience = 0;
    const io_key *sk = !strcmp(o->schedule, "constant") ? warmup_keys
                       : !strcmp(o->schedule, "cosine") ? cosine_keys
                       : !strcmp(o->schedule, "step")   ? step_keys
                                                        : epoch_cos_keys;
    return io_config_keys(c, "train", sk, o);
}

#define IO_KEY_TYPE run_image_opts
static const io_key image_keys[] = {S(images, NULL, NULL),
                                    S(bands, NULL, NULL),
                                    S(transform, "signlog", "none|signlog|asinh"),
                                    S(fluxnorm, NULL, NULL),
                                    I(size, 0, 16384, 0),
                                    I(bin, 1, 16, 1),
                                    D(asinh_scale, POS, BIG, 1),
                                    END};
#undef IO_KEY_TYPE

int run_image_opts_read(io_config *c, const char *sec, run_image_opts *o) {
    memset(o, 0, sizeof *o);
    return io_config_keys(c, sec, image_keys, o);
}

int run_image_spec(const run_image_opts *o, io_dataset_spec *s) {
    s->template = o->images;
    if (o->bands && io_parse_bands(o->bands, s)) return GN_EINVAL;
    s->size = (int)o->size;
    s->bin = (int)o->bin;
    s->transform = !strcmp(o->transform, "none")    ? IO_TF_NONE
                   : !strcmp(o->transform, "asinh") ? IO_TF_ASINH
                                                    : IO_TF_SIGNLOG;
    s->asinh_scale = (float)o->asinh_scale;
    s->fluxnorm = o->fluxnorm;
    return GN_OK;
}

#define IO_KEY_TYPE run_data_opts
static const io_key data_keys[] = {
    S(catalog, NULL, NULL),
    S(join, NULL, NULL),   // "S.csv; vae_mu.csv": more columns matched by id
    S(derive, NULL, NULL), // "a=x-y; b=..."
    S(cache_dir, NULL, NULL),
    S(id_column, "id", NULL), // the catalog's id column, e.g. objid
    S(nulls, NULL, NULL),     // "-9999, 99, -99": sentinels of every numeric column (null.COL: one column's)
    D(null_threshold, POS, BIG, 9000),
    I(strict, 0, 1, 0),
    D(train_frac, 0, 1, RUN_TRAIN_FRAC),
    D(val_frac, 0, 1, RUN_VAL_FRAC),
    END};
#undef IO_KEY_TYPE

int run_check_fractions(const char *where, double f_train, double f_val) {
    if (f_train >= 0 && f_val >= 0 && f_train + f_val <= 1) return GN_OK;
    return gn_err(GN_EINVAL, "%s: train and validation fractions %g and %g must add to at most 1", where,
                  f_train, f_val);
}

int run_data_opts_read(io_config *c, run_data_opts *o) {
    memset(o, 0, sizeof *o);
    int rc = io_config_keys(c, "data", data_keys, o);
    if (!rc) rc = run_image_opts_read(c, "data", &o->img);
    if (!rc) rc = run_check_fractions(c->name, o->train_frac, o->val_frac);
    return rc;
}
