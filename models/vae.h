// The image VAE of the posterior pipeline (spec/methods.md §3.2): an encoder
// of stride-2 convolutions (kernel 4, stride 2, padding 1) with LeakyReLU,
// then FC layers to the latent mean mu and log variance log sigma^2; the
// reparameterised sample z = mu + exp(log sigma^2 / 2) ⊙ ε; a decoder of FC
// to the smallest feature map and transposed convolutions (kernel 4, stride
// 2, padding 1) back to the bands (linear output).
//
// Loss per galaxy: the squared error summed over its pixels plus beta x the
// KL divergence to N(0, I) summed over the latent; averaged over the batch.
// (The paper says "MSE + KL"; per-galaxy sums keep the two on one scale
// whatever the cutout size, so beta = 1 is the usual evidence lower bound for
// unit-variance pixel noise up to constants.)
#ifndef MD_VAE_H
#define MD_VAE_H

#include "../nn/nn.h"

#define MD_VAE_MAXDOWN 6

typedef struct md_vae_spec {
    int in_c, size;              // bands, cutout size (a multiple of 2^n_down)
    int n_down;                  // stride-2 convolutions (3 in the paper)
    int width[MD_VAE_MAXDOWN];   // their channels (32, 64, 128)
    int latent;                  // 32
    float beta;                  // KL weight (1)
    float slope;                 // LeakyReLU slope (0.2)
} md_vae_spec;

typedef struct md_vae {
    md_vae_spec sp;
    nn_conv down[MD_VAE_MAXDOWN];
    nn_dense mu, logvar, dec_fc;
    nn_tensor *up_w[MD_VAE_MAXDOWN], *up_b[MD_VAE_MAXDOWN]; // transposed convs (C_in, C_out, 4, 4)
} md_vae;

// Parameters "vae.encK", "vae.mu", "vae.logvar", "vae.dec_fc", "vae.decK".
int md_vae_make(md_vae *v, nn_store *s);
// x (N, C, S, S) -> mu, logvar (N, latent).
void md_vae_encode(nn_ctx *c, const md_vae *v, nn_tensor *x, nn_tensor **mu, nn_tensor **logvar);
nn_tensor *md_vae_decode(nn_ctx *c, const md_vae *v, nn_tensor *z);
// z = mu + exp(logvar / 2) ⊙ eps, eps (N, latent) standard normal from rng.
nn_tensor *md_vae_sample(nn_ctx *c, nn_tensor *mu, nn_tensor *logvar, gn_rng *rng);
// The training loss on x with eps from rng; *rec and *kl (batch means) may be NULL.
nn_tensor *md_vae_loss(nn_ctx *c, const md_vae *v, nn_tensor *x, gn_rng *rng, double *rec, double *kl);

#endif
