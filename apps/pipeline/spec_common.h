// Helpers shared by galnn spectra-latents and galnn explain on a spectral
// VAE/CVAE (apps/spectra.c): decoding, and the PCA rotation of the latent
// means (D1, D2, ... by decreasing variance, each oriented so that +D_k
// decodes to a bluer spectrum).
#ifndef APP_SPEC_COMMON_H
#define APP_SPEC_COMMON_H

#include "run.h"

#define SPEC_MAXLAT 64

typedef struct spec_rot {
    int d;
    double mean[SPEC_MAXLAT];                   // of the training mu
    double V[SPEC_MAXLAT * SPEC_MAXLAT];        // (d, d): column k is D_k's direction in mu space
    double var[SPEC_MAXLAT], frac[SPEC_MAXLAT]; // variance along D_k and its share
} spec_rot;

int spec_pca(const run *r, nn_ctx *c, spec_rot *R);
// D (n, d) = (mu - mean) V
void spec_rotate(const spec_rot *R, const float *mu, size_t n, double *D);
// Reconstructions from z = mu of catalog rows (out: n x P).
int spec_decode_rows(const run *r, nn_ctx *c, const uint32_t *rows, int n, float *out);
// Decode latent vectors z (n, d) with standardised conditions cond (n, n_cond; NULL if none).
int spec_decode_z(const run *r, nn_ctx *c, const float *z, const float *cond, int n, float *out);

#endif
