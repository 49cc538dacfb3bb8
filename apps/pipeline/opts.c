#include "opts.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../../common/gn_common.h"

#define POS DBL_MIN // a lower bound that means "> 0"
#define BIG 1e300

static int check_choice(const io_config *c, const char *sec, const run_key *k, const char *v) {
    size_t L = strlen(v);
    for (const char *p = k->choices; p && *p;) {
        const char *e = strchr(p, '|');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == L && !strncmp(p, v, n)) return GN_OK;
        p = e ? e + 1 : p + n;
    }
    return k->choices
               ? gn_err(GN_EINVAL, "%s: [%s] %s = '%s' is not one of %s", c->name, sec, k->key, v, k->choices)
               : GN_OK;
}

static int range_error(const io_config *c, const char *sec, const run_key *k, double v) {
    char lo[32], hi[32];
    snprintf(lo, sizeof lo, k->lo == POS ? "> 0" : ">= %g", k->lo);
    snprintf(hi, sizeof hi, k->hi >= BIG ? "" : " and <= %g", k->hi);
    return gn_err(GN_EINVAL, "%s: [%s] %s = %g: give a value %s%s", c->name, sec, k->key, v, lo, hi);
}

int run_keys_read(io_config *c, const char *sec, const run_key *t, void *base) {
    int rc;
    for (const run_key *k = t; k->key; k++) {
        char *f = (char *)base + k->off;
        if (k->type == RK_STR) {
            const char *v = io_config_str(c, sec, k->key, k->sdef);
            if (v && (rc = check_choice(c, sec, k, v))) return rc;
            *(const char **)f = v;
            continue;
        }
        double v;
        if (k->type == RK_INT) {
            long l;
            if ((rc = io_config_int(c, sec, k->key, (long)k->def, &l))) return rc;
            *(long *)f = l, v = (double)l;
        } else {
            if ((rc = io_config_double(c, sec, k->key, k->def, &v))) return rc;
            *(double *)f = v;
        }
        if (isnan(k->def) && isnan(v)) continue; // absent, resolved by the caller
        if (!(v >= k->lo && v <= k->hi)) return range_error(c, sec, k, v);
    }
    return GN_OK;
}

#define I(name, lo, hi, def)                                                                                 \
    { #name, RK_INT, offsetof(TYPE, name), lo, hi, def, NULL, NULL }
#define D(name, lo, hi, def)                                                                                 \
    { #name, RK_DBL, offsetof(TYPE, name), lo, hi, def, NULL, NULL }
#define S(name, def, choices)                                                                                \
    { #name, RK_STR, offsetof(TYPE, name), 0, 0, 0, def, choices }
#define END                                                                                                  \
    { NULL, RK_INT, 0, 0, 0, 0, NULL, NULL }

#define TYPE run_train_opts
static const run_key train_keys[] = {
    S(optimizer, "adam", "adam|adamw|sgd"),
    S(schedule, "constant", "constant|cosine|epoch_cos|step"),
    S(augment, "dihedral", "dihedral|none"),
    I(epochs, 1, 100000000, 10),
    I(iterations, 0, 1e15, 0), // > 0: the run's length in optimizer steps (rounded up to whole epochs)
    I(batch, 1, 1000000, 32),
    I(seed, 0, 0x7fffffff, 1),
    I(crop, 0, 16384, 0),
    I(ckpt_every, 0, 1e15, 0),
    I(patience, 0, 100000000, 0),
    I(amsgrad, 0, 1, 0),
    I(keep_im2col, 0, 1, 1), // 0: recompute in backward (less memory, a little slower)
    I(winograd, 0, 4, 1),    // 0 im2col, 1 auto, 2 or 4 the tile (3 checked below)
    D(lr, POS, 1e6, 1e-3),
    D(weight_decay, 0, 1e6, NAN), // default by optimizer: adamw 0.01, else 0
    D(momentum, 0, 1, 0.9),
    D(clip, 0, BIG, 0),
    END};
// Keys that only one schedule reads (set for another, they stay unused: an error).
static const run_key warmup_keys[] = {I(warmup, 0, 1e15, 0), END};
static const run_key cosine_keys[] = {I(warmup, 0, 1e15, 0), D(min_lr, 0, 1e6, 0), END};
static const run_key epoch_cos_keys[] = {D(period, POS, BIG, 200), END};
static const run_key step_keys[] = {S(drops, "", NULL), D(drop_factor, POS, 1e6, 0.1), END};
#undef TYPE

int run_train_opts_read(io_config *c, run_train_opts *o) {
    memset(o, 0, sizeof *o);
    o->drops = "";
    o->period = 200, o->drop_factor = 0.1;
    int rc = run_keys_read(c, "train", train_keys, o);
    if (rc) return rc;
    if (o->winograd == 3)
        return gn_err(GN_EINVAL,
                      "%s: [train] winograd = 3 is not 0 (im2col), 1 (auto), 2 or 4 (the tile size)",
                      c->name);
    if (isnan(o->weight_decay)) o->weight_decay = !strcmp(o->optimizer, "adamw") ? 0.01 : 0;
    const run_key *sk = !strcmp(o->schedule, "constant") ? warmup_keys
                        : !strcmp(o->schedule, "cosine") ? cosine_keys
                        : !strcmp(o->schedule, "step")   ? step_keys
                                                         : epoch_cos_keys;
    return run_keys_read(c, "train", sk, o);
}

#define TYPE run_image_opts
static const run_key image_keys[] = {S(images, NULL, NULL),
                                     S(bands, NULL, NULL),
                                     S(transform, "signlog", "none|signlog|asinh"),
                                     S(fluxnorm, NULL, NULL),
                                     I(size, 0, 16384, 0),
                                     I(bin, 1, 16, 1),
                                     D(asinh_scale, POS, BIG, 1),
                                     END};
#undef TYPE

int run_image_opts_read(io_config *c, const char *sec, run_image_opts *o) {
    memset(o, 0, sizeof *o);
    return run_keys_read(c, sec, image_keys, o);
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

#define TYPE run_data_opts
static const run_key data_keys[] = {S(catalog, NULL, NULL),
                                    S(join, NULL, NULL),   // "S.csv; vae_mu.csv": more columns matched by id
                                    S(derive, NULL, NULL), // "a=x-y; b=..."
                                    S(cache_dir, NULL, NULL),
                                    D(null_threshold, POS, BIG, 9000),
                                    D(train_frac, 0, 1, 0.7),
                                    D(val_frac, 0, 1, 0.15),
                                    END};
#undef TYPE

int run_check_fractions(const char *where, double f_train, double f_val) {
    if (f_train >= 0 && f_val >= 0 && f_train + f_val <= 1) return GN_OK;
    return gn_err(GN_EINVAL, "%s: train and validation fractions %g and %g must add to at most 1", where,
                  f_train, f_val);
}

int run_data_opts_read(io_config *c, run_data_opts *o) {
    memset(o, 0, sizeof *o);
    int rc = run_keys_read(c, "data", data_keys, o);
    if (!rc) rc = run_image_opts_read(c, "data", &o->img);
    if (!rc) rc = run_check_fractions(c->name, o->train_frac, o->val_frac);
    return rc;
}
