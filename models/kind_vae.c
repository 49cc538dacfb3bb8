// [model] kind = vae: the image VAE (models/vae.h) over the image branch `main`.
#include <stdio.h>
#include <string.h>

#include "branchnet.h"

static int parse(md_net *m, io_config *c, const md_data_info *d) {
    md_vae_spec *p = &m->vae.sp;
    if (md_kind_main(m, c, MD_IN_IMAGE))
        return gn_err(GN_EINVAL, "%s: a VAE needs [model] main = an image branch", c->name);
    p->in_c = m->spec[m->lat_x].in_ch;
    p->size = d->img_size[m->lat_x];
#define IO_KEY_TYPE md_vae_spec
    static const io_key keys[] = {IO_KI(latent, 1, 4096, 32), IO_KF(beta, 0, IO_KEY_BIG, 1),
                                  IO_K("leaky_slope", IO_KEY_FLOAT, slope, 0, 1, 0.2), IO_KEND};
#undef IO_KEY_TYPE
    int rc = io_config_keys(c, "model", keys, p);
    if (rc) return rc;
    const char *w = io_config_str(c, "model", "widths", "32,64,128");
    if ((p->n_down = md_parse_int_list(w, p->width, MD_VAE_MAXDOWN, "[model] widths")) < 1) return GN_EINVAL;
    return GN_OK;
}

static int make(md_net *m, nn_store *s) {
    m->n_out = m->vae.sp.latent; // "outputs": the latent means
    return md_vae_make(&m->vae, s);
}

// ε: the noise stream (training: the context's, validation: a fresh one)
static nn_tensor *train_loss(nn_ctx *c, const md_net *m, nn_tensor *const *in, nn_tensor *const *in_m,
                             const float *y, int N) {
    (void)in_m, (void)y, (void)N;
    return md_vae_loss(c, &m->vae, in[m->lat_x], &c->dropout_rng, NULL, NULL);
}

static nn_tensor *val_loss(nn_ctx *c, const md_net *m, nn_tensor *const *in, nn_tensor *out, const float *y,
                           int N, gn_rng *eps) {
    (void)out, (void)y, (void)N;
    return md_vae_loss(c, &m->vae, in[m->lat_x], eps, NULL, NULL);
}

static nn_tensor *embed(nn_ctx *c, const md_net *m, nn_tensor *const *in, int full) {
    nn_tensor *mu, *lv;
    md_vae_encode(c, &m->vae, in[m->lat_x], &mu, &lv);
    return full ? nn_concat(c, 2, (nn_tensor *[]){mu, nn_exp(c, nn_scale(c, lv, 0.5f, 0))}, 1) : mu;
}

static nn_tensor *forward(nn_ctx *c, const md_net *m, nn_tensor *const *in) { return embed(c, m, in, 0); }

static int embed_dim(const md_net *m, int full) { return (full ? 2 : 1) * m->vae.sp.latent; }

const md_kind md_kind_vae = {
    "vae",      "a VAE", 0,        0,     MD_REPORT_LATENT, parse, make,
    train_loss, forward, val_loss, embed, embed_dim,        1,     "-ELBO per galaxy (nats)", 0, 0};
