// Checkpoints: NPZ archives (numpy.load opens them) holding everything a run
// needs to resume bit-exactly:
//   param.<name>, buffer.<name>        the store (parameters, BN running statistics)
//   opt.m.<name>, opt.v.<name>, opt.vmax.<name>, opt.step   the optimizer
//   any extra arrays the caller adds    rng.*, data.*, sched.*, norm.*, meta.*
//   meta.config                         the configuration text (uint8)
// Written atomically (temp file, fsync, rename): a crash mid-write leaves the
// previous checkpoint intact. Loading checks the zip CRCs, that every tensor
// the model expects is present with its exact shape, and nothing is missing.
#ifndef IO_CKPT_H
#define IO_CKPT_H

#include "../nn/nn.h"
#include "npy.h"

typedef struct io_named_array {
    const char *name;
    io_array a;
} io_named_array;

int io_ckpt_save(const char *path, const nn_store *s, const nn_optim *o, const io_named_array *extra,
                 int n_extra, const char *config_text);
// Restore the store (and optimizer, if given) from an opened checkpoint.
int io_ckpt_restore(const char *path, const io_npz *z, nn_store *s, nn_optim *o);
// A required extra array with an exact element count (and dtype), or an error naming the file.
const io_array *io_ckpt_get(const char *path, const io_npz *z, const char *name, io_dtype t, size_t n);
// meta.config as a NUL-terminated string (caller frees), or NULL + error.
char *io_ckpt_config(const char *path, const io_npz *z);

#endif
