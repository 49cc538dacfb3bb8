#include "loader.h"

#include <stdlib.h>
#include <string.h>

#include "../common/gn_common.h"

void io_dihedral(const float *src, float *dst, int S, int k) {
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            int sx = x, sy = y;
            if (k >= 4) sx = S - 1 - sx; // flip after rotating: undo it first
            for (int r = 0; r < (k & 3); r++) { // inverse of a CCW quarter turn: (x, y) <- (S-1-y, x)
                int t = sx;
                sx = S - 1 - sy;
                sy = t;
            }
            dst[y * S + x] = src[sy * S + sx];
        }
}

static void new_epoch(io_loader *L) {
    if (L->o.shuffle) nn_rng_permutation(&L->shuffle, L->perm, L->n);
    else
        for (size_t i = 0; i < L->n; i++) L->perm[i] = (uint32_t)i;
    L->cursor = 0;
}

int io_loader_init(io_loader *L, const io_dataset *ds, const uint8_t *split, int which, const io_loader_opts *o,
                   uint64_t seed) {
    memset(L, 0, sizeof *L);
    L->ds = ds;
    L->o = *o;
    if (o->batch < 1) return gn_err(GN_EINVAL, "batch size must be at least 1");
    if (o->crop < 0 || o->crop > ds->h) return gn_err(GN_EINVAL, "crop %d outside 1..%d (the cutout size)", o->crop, ds->h);
    if (o->dihedral && ds->h != ds->w) return gn_err(GN_EINVAL, "rotations need square cutouts");
    for (int i = 0; i < o->n_channels; i++)
        if (o->channels[i] < 0 || o->channels[i] >= ds->c)
            return gn_err(GN_EINVAL, "band index %d outside the dataset's %d bands", o->channels[i], ds->c);
    L->members = gn_malloc(sizeof(uint32_t) * (ds->n ? ds->n : 1));
    L->perm = gn_malloc(sizeof(uint32_t) * (ds->n ? ds->n : 1));
    L->scratch = gn_malloc(sizeof(float) * (size_t)ds->h * ds->w);
    if (!L->members || !L->perm || !L->scratch) return io_loader_free(L), GN_ENOMEM;
    for (size_t i = 0; i < ds->n; i++)
        if (!split || split[ds->row[i]] == which) L->members[L->n++] = (uint32_t)i;
    if (!L->n) {
        io_loader_free(L);
        return gn_err(GN_EINVAL, "the %s split is empty", io_split_name(which));
    }
    nn_rng_seed(&L->shuffle, seed, NN_STREAM_SHUFFLE);
    nn_rng_seed(&L->augment, seed, NN_STREAM_AUGMENT);
    new_epoch(L);
    return GN_OK;
}

void io_loader_free(io_loader *L) {
    free(L->members);
    free(L->perm);
    free(L->scratch);
    L->members = L->perm = NULL;
    L->scratch = NULL;
}

int io_loader_out_channels(const io_loader *L) { return L->o.n_channels ? L->o.n_channels : L->ds->c; }
int io_loader_out_size(const io_loader *L) { return L->o.crop ? L->o.crop : L->ds->h; }

size_t io_loader_batches_per_epoch(const io_loader *L) {
    size_t B = (size_t)L->o.batch;
    return L->o.drop_last ? L->n / B : (L->n + B - 1) / B;
}

int io_loader_next(io_loader *L, float *x, uint32_t *entries) {
    size_t B = (size_t)L->o.batch, left = L->n - L->cursor;
    if (left == 0 || (L->o.drop_last && left < B)) {
        L->epoch++;
        new_epoch(L);
        return 0;
    }
    int b = (int)(left < B ? left : B);
    const io_dataset *ds = L->ds;
    int C = io_loader_out_channels(L), S = io_loader_out_size(L), H = ds->h;
    size_t P = (size_t)H * H;
    float *plane = L->scratch;
    for (int i = 0; i < b; i++) {
        uint32_t e = L->members[L->perm[L->cursor + (size_t)i]];
        entries[i] = e;
        // draws in a fixed order per sample: transform, then crop offsets
        int k = L->o.dihedral ? (int)nn_rng_below(&L->augment, 8) : 0;
        int oy = (H - S) / 2, ox = (H - S) / 2;
        if (L->o.random_crop && S < H) {
            oy = (int)nn_rng_below(&L->augment, (uint32_t)(H - S + 1));
            ox = (int)nn_rng_below(&L->augment, (uint32_t)(H - S + 1));
        }
        const float *im = io_dataset_image(ds, e);
        for (int c = 0; c < C; c++) {
            int band = L->o.n_channels ? L->o.channels[c] : c;
            const float *src = im + (size_t)band * P;
            if (k) {
                io_dihedral(src, plane, H, k);
                src = plane;
            }
            float m = L->o.mean ? (float)L->o.mean[band] : 0.0f, inv = L->o.std ? (float)(1.0 / L->o.std[band]) : 1.0f;
            float *dst = x + ((size_t)i * C + c) * S * S;
            for (int y = 0; y < S; y++)
                for (int xx = 0; xx < S; xx++) dst[y * S + xx] = (src[(size_t)(oy + y) * H + ox + xx] - m) * inv;
        }
    }
    L->cursor += (uint64_t)b;
    return b;
}
