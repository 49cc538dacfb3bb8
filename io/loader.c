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

void io_draw_partners(gn_rng *rng, const uint32_t *rows, size_t n, const uint32_t *set1, int b, int dihedral,
                      uint32_t *set2, io_aug *aug2) {
    for (int i = 0; i < b; i++) {
        uint32_t j;
        do j = rows[gn_rng_below(rng, n)];
        while (j == set1[i] && n > 1);
        set2[i] = j;
        aug2[i] = (io_aug){(int)gn_rng_below(rng, dihedral ? 8 : 1), (float)gn_rng_uniform(rng),
                           (float)gn_rng_uniform(rng)};
    }
}

int io_dihedral_then(int k1, int k2) {
    int r1 = k1 & 3, f1 = k1 >= 4, r2 = k2 & 3, f2 = k2 >= 4;
    return 4 * (f1 ^ f2) + ((r1 + (f1 ? 4 - r2 : r2)) & 3);
}

int io_dihedral_morph(double u1, double u2) {
    // a vertical flip is the horizontal one after a half turn: F_v R^r = F R^(r+2)
    if (u1 < 0.25) return 4 + 2;
    int r = 1 + (int)((u1 - 0.25) / 0.75 * 3);
    if (r > 3) r = 3;
    return u2 < 0.5 ? r : 4 + ((r + 2) & 3);
}

static void new_epoch(io_loader *L) {
    if (L->o.shuffle) gn_rng_permutation(&L->shuffle, L->perm, L->n);
    else
        for (size_t i = 0; i < L->n; i++) L->perm[i] = (uint32_t)i;
    L->cursor = 0;
}

int io_loader_init(io_loader *L, const io_dataset *ds, const uint8_t *split, int which,
                   const io_loader_opts *o, uint64_t seed) {
    memset(L, 0, sizeof *L);
    L->ds = ds;
    L->o = *o;
    if (o->batch < 1) return gn_err(GN_EINVAL, "batch size must be at least 1");
    if (o->crop < 0 || o->crop > ds->h)
        return gn_err(GN_EINVAL, "crop %d outside 1..%d (the cutout size)", o->crop, ds->h);
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
    gn_rng_seed(&L->shuffle, seed, GN_STREAM_SHUFFLE);
    gn_rng_seed(&L->augment, seed, GN_STREAM_AUGMENT);
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

void io_render(const io_dataset *ds, uint32_t e, const io_loader_opts *o, const io_aug *a, float *dst,
               float *plane) {
    int C = o->n_channels ? o->n_channels : ds->c, H = ds->h, S = o->crop ? o->crop : H;
    size_t P = (size_t)H * H;
    int oy = (H - S) / 2, ox = (H - S) / 2;
    if (o->random_crop && S < H) {
        oy = (int)(a->u * (float)(H - S + 1));
        ox = (int)(a->v * (float)(H - S + 1));
        if (oy > H - S) oy = H - S;
        if (ox > H - S) ox = H - S;
    }
    const float *im = io_dataset_image(ds, e);
    for (int c = 0; c < C; c++) {
        int band = o->n_channels ? o->channels[c] : c;
        const float *src = im + (size_t)band * P;
        if (a->k) {
            io_dihedral(src, plane, H, a->k);
            src = plane;
        }
        float m = o->mean ? (float)o->mean[band] : 0.0f, inv = o->std ? (float)(1.0 / o->std[band]) : 1.0f;
        float *d = dst + (size_t)c * S * S;
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++) d[y * S + x] = (src[(size_t)(oy + y) * H + ox + x] - m) * inv;
    }
}

// The draws for one sample, in a fixed order: transform, then crop position.
static io_aug draw(io_loader *L) {
    io_aug a = {0, 0.5f, 0.5f};
    if (L->o.dihedral) a.k = (int)gn_rng_below(&L->augment, 8);
    if (L->o.random_crop) {
        a.u = (float)gn_rng_uniform(&L->augment);
        a.v = (float)gn_rng_uniform(&L->augment);
    }
    return a;
}

int io_loader_init_ids(io_loader *L, const uint32_t *ids, size_t n, const io_loader_opts *o, uint64_t seed) {
    memset(L, 0, sizeof *L);
    L->o = *o;
    if (o->batch < 1) return gn_err(GN_EINVAL, "batch size must be at least 1");
    if (!n) return gn_err(GN_EINVAL, "no samples to load");
    L->members = gn_malloc(sizeof(uint32_t) * n);
    L->perm = gn_malloc(sizeof(uint32_t) * n);
    if (!L->members || !L->perm) return io_loader_free(L), GN_ENOMEM;
    memcpy(L->members, ids, sizeof(uint32_t) * n);
    L->n = n;
    gn_rng_seed(&L->shuffle, seed, GN_STREAM_SHUFFLE);
    gn_rng_seed(&L->augment, seed, GN_STREAM_AUGMENT);
    new_epoch(L);
    return GN_OK;
}

// The size of the next batch, or 0 at the end of the epoch (then the next
// epoch's order is drawn).
static int batch_size(io_loader *L) {
    size_t B = (size_t)L->o.batch, left = L->n - L->cursor;
    if (left == 0 || (L->o.drop_last && left < B)) {
        L->epoch++;
        new_epoch(L);
        return 0;
    }
    return (int)(left < B ? left : B);
}

int io_loader_next_ids(io_loader *L, uint32_t *ids, io_aug *aug) {
    int b = batch_size(L);
    for (int i = 0; i < b; i++) {
        ids[i] = L->members[L->perm[L->cursor + (size_t)i]];
        aug[i] = draw(L);
    }
    L->cursor += (uint64_t)b;
    return b;
}

int io_loader_next(io_loader *L, float *x, uint32_t *entries) {
    int b = batch_size(L);
    size_t per = (size_t)io_loader_out_channels(L) * io_loader_out_size(L) * io_loader_out_size(L);
    for (int i = 0; i < b; i++) {
        uint32_t e = L->members[L->perm[L->cursor + (size_t)i]];
        entries[i] = e;
        io_aug a = draw(L);
        io_render(L->ds, e, &L->o, &a, x + (size_t)i * per, L->scratch);
    }
    L->cursor += (uint64_t)b;
    return b;
}
