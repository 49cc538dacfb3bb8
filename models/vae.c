#include "vae.h"

#include <stdio.h>

int md_vae_make(md_vae *v, nn_store *s) {
    const md_vae_spec *p = &v->sp;
    int f = 1 << (p->n_down > 0 ? p->n_down : 0);
    if (p->n_down < 1 || p->n_down > MD_VAE_MAXDOWN || p->in_c < 1 || p->latent < 1 || p->size < f ||
        p->size % f || p->beta < 0)
        return gn_err(
            GN_EINVAL,
            "VAE: a %dx%d cutout with %d stride-2 convolutions (the size must be a multiple of %d), "
            "latent %d, beta %g",
            p->size, p->size, p->n_down, f, p->latent, (double)p->beta);
    int in = p->in_c, rc = 0;
    char nm[64];
    for (int k = 0; k < p->n_down && !rc; k++) {
        if (p->width[k] < 1) return gn_err(GN_EINVAL, "VAE: width %d of convolution %d", p->width[k], k + 1);
        snprintf(nm, sizeof nm, "vae.enc%d", k + 1);
        rc = nn_conv_make(&v->down[k], s, nm, in, p->width[k], 4, 2, 1, 1, nn_init_he(), nn_init_const(0));
        in = p->width[k];
    }
    int m = p->size / f, feat = in * m * m;
    rc = rc ? rc : nn_dense_make(&v->mu, s, "vae.mu", feat, p->latent, 1, nn_init_glorot(), nn_init_const(0));
    rc = rc ? rc
            : nn_dense_make(&v->logvar, s, "vae.logvar", feat, p->latent, 1, nn_init_glorot(),
                            nn_init_const(0));
    rc = rc ? rc
            : nn_dense_make(&v->dec_fc, s, "vae.dec_fc", p->latent, feat, 1, nn_init_glorot(),
                            nn_init_const(0));
    for (int k = p->n_down - 1; k >= 0 && !rc; k--) { // mirror: widths back down, then the bands
        int ci = p->width[k], co = k ? p->width[k - 1] : p->in_c;
        snprintf(nm, sizeof nm, "vae.dec%d.weight", p->n_down - k);
        v->up_w[k] = nn_store_param(s, nm, NN_SHAPE(ci, co, 4, 4), nn_init_he());
        snprintf(nm, sizeof nm, "vae.dec%d.bias", p->n_down - k);
        v->up_b[k] = nn_store_param(s, nm, NN_SHAPE(co), nn_init_const(0));
        if (!v->up_w[k] || !v->up_b[k]) rc = GN_EINVAL;
    }
    return rc;
}

void md_vae_encode(nn_ctx *c, const md_vae *v, nn_tensor *x, nn_tensor **mu, nn_tensor **logvar) {
    nn_tensor *h = x;
    for (int k = 0; k < v->sp.n_down; k++) h = nn_leaky_relu(c, nn_conv_fwd(c, &v->down[k], h), v->sp.slope);
    h = nn_reshape(c, h, NN_SHAPE(x ? x->shape[0] : 0, -1));
    *mu = nn_dense_fwd(c, &v->mu, h);
    *logvar = nn_dense_fwd(c, &v->logvar, h);
}

nn_tensor *md_vae_decode(nn_ctx *c, const md_vae *v, nn_tensor *z) {
    const md_vae_spec *p = &v->sp;
    int m = p->size >> p->n_down, top = p->width[p->n_down - 1];
    nn_tensor *h = nn_leaky_relu(c, nn_dense_fwd(c, &v->dec_fc, z), p->slope);
    h = nn_reshape(c, h, NN_SHAPE(z ? z->shape[0] : 0, top, m, m));
    for (int k = p->n_down - 1; k >= 0; k--) {
        h = nn_conv_transpose2d(c, h, v->up_w[k], v->up_b[k], 2, 2, nn_pad_sym(1), 0, 0);
        if (k) h = nn_leaky_relu(c, h, p->slope);
    }
    return h;
}

nn_tensor *md_vae_sample(nn_ctx *c, nn_tensor *mu, nn_tensor *logvar, gn_rng *rng) {
    if (!mu || !logvar) return NULL;
    nn_tensor *eps = nn_tensor_new(c, mu->ndim, mu->shape);
    if (!eps) return NULL;
    int rows = eps->ndim > 1 ? eps->shape[0] : 1;
    nn_ctx_draw(c, rng, rows, eps->n / (size_t)rows, -1.0f, eps->data);
    return nn_add(c, mu, nn_mul(c, nn_exp(c, nn_scale(c, logvar, 0.5f, 0)), eps));
}

nn_tensor *md_vae_loss(nn_ctx *c, const md_vae *v, nn_tensor *x, gn_rng *rng, double *rec, double *kl) {
    nn_tensor *mu, *lv;
    md_vae_encode(c, v, x, &mu, &lv);
    nn_tensor *xh = md_vae_decode(c, v, md_vae_sample(c, mu, lv, rng));
    if (!xh) return NULL;
    // per galaxy: sum of squared errors over its pixels = mean over all elements x pixels per galaxy
    double per = (double)x->n / (double)x->shape[0];
    nn_tensor *r = nn_scale(c, nn_mse_loss(c, xh, x), (float)per, 0), *k = nn_kl_normal(c, mu, lv);
    if (!r || !k) return NULL;
    if (rec) *rec = r->data[0];
    if (kl) *kl = k->data[0];
    return nn_add(c, r, nn_scale(c, k, v->sp.beta, 0));
}
