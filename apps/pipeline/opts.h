// Typed configuration: each section a program reads is parsed once, by a
// table of {key, type, field, range, default, choices} (io_config_keys) into a
// struct. The defaults and valid ranges of every key live in these tables and
// nowhere else; a value out of range or not among the choices is an error
// naming the file, the section and the key. Reading a key marks it used, so
// io_config_check_unused still catches misspelt keys.
#ifndef RUN_OPTS_H
#define RUN_OPTS_H

#include <stddef.h>

#include "../../io/config.h"
#include "../../io/dataset.h"

// [train]: the optimisation and the training loop.
typedef struct run_train_opts {
    const char *optimizer, *schedule, *drops, *augment;
    long epochs, iterations, batch, seed, crop, ckpt_every, patience, warmup, amsgrad, keep_im2col, winograd;
    long tta, slices, check_every, sync_bn, split_rows;
    double lr, weight_decay, momentum, clip, min_lr, period, drop_factor, ema;
} run_train_opts;
int run_train_opts_read(io_config *c, run_train_opts *o);

// How one image dataset is read: [data], or a branch with its own images.
typedef struct run_image_opts {
    const char *images, *bands, *transform, *fluxnorm;
    long size, bin;
    double asinh_scale;
} run_image_opts;
int run_image_opts_read(io_config *c, const char *sec, run_image_opts *o);
// The dataset spec of image options (bands parsed; cat, cache_dir, log set by the caller).
int run_image_spec(const run_image_opts *o, io_dataset_spec *s);

// The train/val fractions of the id-hash split where a catalog has no split
// column: one rule for training, evaluation and the analyses.
#define RUN_TRAIN_FRAC 0.7
#define RUN_VAL_FRAC 0.15

// [data]: the catalog, its splits and the shared cutouts.
typedef struct run_data_opts {
    const char *catalog, *join, *derive, *cache_dir, *nulls, *id_column;
    double null_threshold, train_frac, val_frac;
    long strict; // a missing/unreadable cutout or a NaN pixel is an error, not a skip
    run_image_opts img;
} run_data_opts;
int run_data_opts_read(io_config *c, run_data_opts *o);
// Train/val fractions that are valid (each >= 0, sum <= 1), else an error naming where they came from.
int run_check_fractions(const char *where, double f_train, double f_val);

#endif
