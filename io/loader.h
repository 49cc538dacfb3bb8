// Batches from a dataset: one split, a seeded shuffled permutation per epoch,
// augmentation (the 8 dihedral transforms, random crops) from its own RNG
// stream, per-band standardisation and band selection.
//
// The loader's position — epoch, the epoch's permutation, the cursor, and the
// shuffle and augmentation streams — is plain data in the struct, so a
// checkpoint can save it and a resumed run continues with exactly the batches
// the uninterrupted run would have seen.
#ifndef IO_LOADER_H
#define IO_LOADER_H

#include <stdint.h>

#include "../common/gn_rng.h"
#include "dataset.h"

typedef struct io_loader_opts {
    int batch;
    int shuffle;       // a new permutation each epoch (training); else catalog order
    int dihedral;      // random rotation by k*90 deg and flip (8 transforms, uniform)
    int crop; // output size (<= dataset size); random position when augmenting, else centred; 0: full
    int random_crop;   // draw the crop position (training)
    int drop_last;     // skip a final partial batch
    int n_channels;    // 0: all bands; else the dataset band indices in `channels`
    int channels[IO_MAX_BANDS];
    const double *mean, *std; // (dataset bands) standardisation, or NULL
} io_loader_opts;

typedef struct io_loader {
    const io_dataset *ds;
    io_loader_opts o;
    uint32_t *members;  // (n) dataset entries in this split, in dataset order
    size_t n;
    // --- state (checkpointed) ---
    int64_t epoch;      // epochs completed before the current one
    uint32_t *perm;     // (n) this epoch's order (indices into members)
    uint64_t cursor;    // position in perm
    gn_rng shuffle, augment;
    float *scratch;     // one rotated plane
} io_loader;

// split: per catalog row (io_catalog_splits), `which` the split to serve, or
// split == NULL for every entry.
int io_loader_init(io_loader *L, const io_dataset *ds, const uint8_t *split, int which,
                   const io_loader_opts *o, uint64_t seed);
void io_loader_free(io_loader *L);
int io_loader_out_channels(const io_loader *L);
int io_loader_out_size(const io_loader *L);
size_t io_loader_batches_per_epoch(const io_loader *L);
// Next batch into x (B, C', S, S); entries (B) receives the dataset index of
// each sample (for targets). Returns the batch size, or 0 when the epoch is
// over — the loader has then moved to the next epoch (new permutation).
int io_loader_next(io_loader *L, float *x, uint32_t *entries);

// ---- sample order without images: for several datasets per sample ----
// One augmentation draw per sample, applied to every image of that sample:
// the dihedral transform k and the crop position as fractions (u, v) of the
// free range, so images of different sizes move together.
typedef struct io_aug {
    int k;
    float u, v;
} io_aug;

// A loader over arbitrary sample ids (e.g. catalog rows); o->crop etc. are
// ignored here (each image uses io_render's own options).
int io_loader_init_ids(io_loader *L, const uint32_t *ids, size_t n, const io_loader_opts *o, uint64_t seed);
// Next batch of ids and augmentation draws; 0 at the end of the epoch (the
// loader has then moved to the next epoch).
int io_loader_next_ids(io_loader *L, uint32_t *ids, io_aug *aug);
// Render dataset entry e with the augmentation into dst (C', S, S): band
// subset, crop (S = crop or the full size), dihedral transform, standardisation.
void io_render(const io_dataset *ds, uint32_t e, const io_loader_opts *o, const io_aug *a, float *dst,
               float *scratch);

// Apply dihedral transform k (0..7: rotate k%4 quarter turns counter-clockwise,
// then flip left-right when k >= 4) to a square (S, S) plane.
void io_dihedral(const float *src, float *dst, int S, int k);
// Set 2 of a contrastive batch (spec methods.md 1.6): for each of the b rows
// set1[i], a row drawn uniformly with replacement from rows[0..n) that is not
// set1[i] (n >= 2), with its own augmentation draw (dihedral: k in 0..7, else
// 0; crop position u, v), all from rng.
void io_draw_partners(gn_rng *rng, const uint32_t *rows, size_t n, const uint32_t *set1, int b, int dihedral,
                      uint32_t *set2, io_aug *aug2);
// The single transform "k1, then k2": with T_k = F^(k>=4) R^(k%4) and
// R^r F = F R^-r, T_k2 T_k1 = F^(f1 xor f2) R^(r1 + (f1 ? -r2 : r2)).
int io_dihedral_then(int k1, int k2);
// The morphology-augmented view's transform relative to the image (spec
// methods.md 1.4; flips along axis 0, i.e. vertical): with p 0.75 a rotation
// by 1-3 quarter turns then a vertical flip with p 0.5, else a vertical flip
// alone; never the identity. u1, u2 uniform in [0, 1).
int io_dihedral_morph(double u1, double u2);

#endif
