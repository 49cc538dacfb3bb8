// The spectral VAE / CVAE of spec/methods.md §4.2-4.3 (Iwasaki et al.):
// encoder 4 x [Conv1d k5 p1 -> BatchNorm -> LeakyReLU 0.01 -> MaxPool 2]
// (8, 16, 32, 64 channels) -> Linear 1024 -> mu, log sigma^2 (d) — for a
// CVAE the conditions c are concatenated before the two heads; decoder
// z [+ c] -> Linear 1024 -> Linear 64 L0 -> 3 x [ConvT1d k5 s2 p1 op1 -> BN ->
// LReLU] (32, 16, 8) -> ConvT1d k3 s2 p1 op1 -> BN -> LReLU (8) -> Conv1d k3
// p1 (1) -> ReLU -> Linear to the P pixels (+ ReLU for the plain VAE).
// L0 = round(P / 16) (250 for P = 4000: 250 -> 502 -> 1006 -> 2014 -> 4028).
// Loss = alpha MSE(x, x̂) (element mean) + beta KL, KL = -½ mean over batch
// and latent dimensions of (1 + log sigma^2 - mu^2 - sigma^2) (α 1e3, β 0.1).
#ifndef MD_SPECVAE_H
#define MD_SPECVAE_H

#include "../nn/nn.h"

typedef struct md_specvae_spec {
    int pixels;        // P (4000)
    int latent;        // d (1..10 in the paper's scan)
    int n_cond;        // conditions (0: VAE)
    float alpha, beta; // 1e3, 0.1
    float slope;       // LeakyReLU 0.01
    float out_bias;    // the last layer's initial bias (its weights start at 0): the spectra's median
                       // level (0: 0.5), so that no output pixel starts dead behind the final ReLU
} md_specvae_spec;

typedef struct md_specvae {
    md_specvae_spec sp;
    nn_tensor *enc_w[4], *enc_b[4], *out_w, *out_b; // Conv1d (O, C, k)
    nn_bn enc_bn[4], dec_bn[4];
    nn_dense fc, mu, logvar, dfc1, dfc2, last;
    nn_tensor *up_w[4], *up_b[4];                    // ConvTranspose1d (C_in, C_out, k)
    int L_enc, L0, L_dec; // flattened encoder length, decoder start and end lengths
} md_specvae;

int md_specvae_make(md_specvae *v, nn_store *s);
// x (N, P), cond (N, n_cond) or NULL -> mu, logvar (N, d).
void md_specvae_encode(nn_ctx *c, const md_specvae *v, nn_tensor *x, nn_tensor *cond, nn_tensor **mu,
                       nn_tensor **logvar);
nn_tensor *md_specvae_decode(nn_ctx *c, const md_specvae *v, nn_tensor *z, nn_tensor *cond); // (N, P)
// The loss with eps from rng; *mse, *kl (the two terms before weighting) may be NULL.
nn_tensor *md_specvae_loss(nn_ctx *c, const md_specvae *v, nn_tensor *x, nn_tensor *cond, gn_rng *rng,
                           double *mse, double *kl);

#endif
