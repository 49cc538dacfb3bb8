#include "specvae.h"

#include <math.h>
#include <stdio.h>

#include "vae.h"

static int param(nn_store *s, nn_tensor **w, nn_tensor **b, const char *pre, int a, int bb, int k, int nb) {
    char nm[80];
    snprintf(nm, sizeof nm, "%s.weight", pre);
    *w = nn_store_param(s, nm, NN_SHAPE(a, bb, k), nn_init_he());
    snprintf(nm, sizeof nm, "%s.bias", pre);
    *b = nn_store_param(s, nm, NN_SHAPE(nb), nn_init_const(0));
    return *w && *b ? GN_OK : GN_EINVAL;
}

static const int ENC_W[4] = {8, 16, 32, 64}, DEC_W[4] = {32, 16, 8, 8}, DEC_K[4] = {5, 5, 5, 3};

int md_specvae_make(md_specvae *v, nn_store *s) {
    const md_specvae_spec *p = &v->sp;
    if (p->pixels < 64 || p->latent < 1 || p->n_cond < 0)
        return gn_err(GN_EINVAL, "spectral VAE: %d pixels (at least 64), latent %d, %d conditions", p->pixels,
                      p->latent, p->n_cond);
    int L = p->pixels, ci = 1, rc = 0;
    char nm[64];
    for (int k = 0; k < 4 && !rc; k++) { // conv k5 p1 shortens by 2, the pool halves
        snprintf(nm, sizeof nm, "svae.enc%d", k + 1);
        rc = param(s, &v->enc_w[k], &v->enc_b[k], nm, ENC_W[k], ci, 5, ENC_W[k]);
        snprintf(nm, sizeof nm, "svae.enc%d.bn", k + 1);
        rc = rc ? rc : nn_bn_make(&v->enc_bn[k], s, nm, ENC_W[k]);
        ci = ENC_W[k], L = (L - 2) / 2;
    }
    v->L_enc = 64 * L;
    int cd = p->n_cond;
    rc = rc ? rc : nn_dense_make(&v->fc, s, "svae.fc", v->L_enc, 1024, 1, nn_init_glorot(), nn_init_const(0));
    rc =
        rc ? rc
           : nn_dense_make(&v->mu, s, "svae.mu", 1024 + cd, p->latent, 1, nn_init_glorot(), nn_init_const(0));
    rc = rc ? rc
            : nn_dense_make(&v->logvar, s, "svae.logvar", 1024 + cd, p->latent, 1, nn_init_glorot(),
                            nn_init_const(0));
    v->L0 = (p->pixels + 8) / 16;
    rc = rc ? rc
            : nn_dense_make(&v->dfc1, s, "svae.dec_fc1", p->latent + cd, 1024, 1, nn_init_glorot(),
                            nn_init_const(0));
    rc = rc ? rc
            : nn_dense_make(&v->dfc2, s, "svae.dec_fc2", 1024, 64 * v->L0, 1, nn_init_glorot(),
                            nn_init_const(0));
    int Ld = v->L0;
    ci = 64;
    for (int k = 0; k < 4 && !rc; k++) {
        snprintf(nm, sizeof nm, "svae.dec%d", k + 1);
        rc = param(s, &v->up_w[k], &v->up_b[k], nm, ci, DEC_W[k], DEC_K[k], DEC_W[k]);
        snprintf(nm, sizeof nm, "svae.dec%d.bn", k + 1);
        if (!rc && nn_bn_make(&v->dec_bn[k], s, nm, DEC_W[k])) rc = GN_EINVAL;
        Ld = (Ld - 1) * 2 - 2 + DEC_K[k] + 1; // stride 2, padding 1, output padding 1
        ci = DEC_W[k];
    }
    v->L_dec = Ld;
    rc = rc ? rc : param(s, &v->out_w, &v->out_b, "svae.dec_out", 1, 8, 3, 1);
    // the last layer starts at zero weights and a positive bias (the spectra's median level; 0 means the
    // paper's 0.5): every output pixel starts alive behind the plain VAE's final ReLU, and stays so far
    // more reliably than from random weights, under which a share of the pixels start (and stay) dead
    float ob = p->out_bias > 0 ? p->out_bias : 0.5f;
    rc = rc ? rc
            : nn_dense_make(&v->last, s, "svae.last", Ld, p->pixels, 1, nn_init_const(0), nn_init_const(ob));
    return rc;
}

static nn_tensor *lrelu(nn_ctx *c, const md_specvae *v, nn_tensor *x) {
    return nn_leaky_relu(c, x, v->sp.slope);
}

void md_specvae_encode(nn_ctx *c, const md_specvae *v, nn_tensor *x, nn_tensor *cond, nn_tensor **mu,
                       nn_tensor **logvar) {
    int N = x ? x->shape[0] : 0;
    nn_tensor *h = nn_reshape(c, x, NN_SHAPE(N, 1, v->sp.pixels));
    for (int k = 0; k < 4; k++) {
        h = lrelu(c, v, nn_bn_fwd(c, &v->enc_bn[k], nn_conv1d(c, h, v->enc_w[k], v->enc_b[k], 1, 1, 1)));
        int C = h ? h->shape[1] : 0, L = h ? h->shape[2] : 0; // max pool 2 along the length, as a 1 x 2 pool
        h = nn_maxpool2d(c, nn_reshape(c, h, NN_SHAPE(N, C, 1, L)), 1, 2, 1, 2, nn_pad_sym(0));
        h = nn_reshape(c, h, NN_SHAPE(N, C, L / 2));
    }
    h = lrelu(c, v, nn_dense_fwd(c, &v->fc, nn_reshape(c, h, NN_SHAPE(N, -1))));
    if (cond) h = nn_concat(c, 2, (nn_tensor *[]){h, cond}, 1);
    *mu = nn_dense_fwd(c, &v->mu, h);
    *logvar = nn_dense_fwd(c, &v->logvar, h);
}

nn_tensor *md_specvae_decode(nn_ctx *c, const md_specvae *v, nn_tensor *z, nn_tensor *cond) {
    int N = z ? z->shape[0] : 0;
    nn_tensor *h = cond ? nn_concat(c, 2, (nn_tensor *[]){z, cond}, 1) : z;
    h = lrelu(c, v, nn_dense_fwd(c, &v->dfc2, lrelu(c, v, nn_dense_fwd(c, &v->dfc1, h))));
    h = nn_reshape(c, h, NN_SHAPE(N, 64, v->L0));
    for (int k = 0; k < 4; k++)
        h = lrelu(c, v,
                  nn_bn_fwd(c, &v->dec_bn[k], nn_conv_transpose1d(c, h, v->up_w[k], v->up_b[k], 2, 1, 1)));
    h = nn_relu(c, nn_conv1d(c, h, v->out_w, v->out_b, 1, 1, 1));
    h = nn_dense_fwd(c, &v->last, nn_reshape(c, h, NN_SHAPE(N, v->L_dec)));
    return v->sp.n_cond ? h : nn_relu(c, h); // the plain VAE ends with a ReLU, the CVAE does not (§4.2)
}

nn_tensor *md_specvae_loss(nn_ctx *c, const md_specvae *v, nn_tensor *x, nn_tensor *cond, gn_rng *rng,
                           double *mse, double *kl) {
    nn_tensor *mu, *lv;
    md_specvae_encode(c, v, x, cond, &mu, &lv);
    nn_tensor *xh = md_specvae_decode(c, v, md_vae_sample(c, mu, lv, rng), cond);
    if (!xh) return NULL;
    nn_tensor *m = nn_mse_loss(c, xh, x),
              *k = nn_scale(c, nn_kl_normal(c, mu, lv), 1.0f / (float)v->sp.latent, 0);
    if (!m || !k) return NULL;
    if (mse) *mse = m->data[0];
    if (kl) *kl = k->data[0];
    return nn_add(c, nn_scale(c, m, v->sp.alpha, 0), nn_scale(c, k, v->sp.beta, 0));
}
