// [model] kind = specvae: the spectral VAE / CVAE (models/specvae.h) over the
// spectrum branch `main`; [model] conditions = a,b,... (catalog columns,
// standardised with the training statistics) become the column branch "cond".
#include <stdio.h>
#include <string.h>

#include "branchnet.h"

static int add_conditions(md_net *m, io_config *c, const md_data_info *d) {
    const char *cond = io_config_str(c, "model", "conditions", "none");
    if (!strcmp(cond, "none") || !*cond) return GN_OK;
    if (m->n_branch == MD_MAX_BRANCH)
        return gn_err(GN_EINVAL, "%s: no room for the conditions' branch", c->name);
    int b = m->n_branch;
    snprintf(m->spec[b].name, sizeof m->spec[b].name, "cond");
    for (int k = 0; k < b; k++)
        if (!strcmp(m->spec[k].name, "cond"))
            return gn_err(GN_EINVAL, "%s: [branch.cond] is reserved for [model] conditions", c->name);
    int rc = d->add_columns(d->user, b, cond);
    if (rc) return rc;
    m->spec[b].backbone = MD_BB_MLP;
    m->n_branch++;
    m->lat_a = b;
    m->svae.sp.n_cond = m->spec[b].in_ch;
    return GN_OK;
}

static int parse(md_net *m, io_config *c, const md_data_info *d) {
    md_specvae_spec *p = &m->svae.sp;
    for (int b = 0; b < m->n_branch; b++)
        if (m->spec[b].input == MD_IN_IMAGE)
            return gn_err(GN_EINVAL,
                          "%s: [branch.%s]: a spectral VAE takes a spectrum (and conditions), not images",
                          c->name, m->spec[b].name);
    if (md_kind_main(m, c, MD_IN_SPECTRUM))
        return gn_err(GN_EINVAL, "%s: a spectral VAE needs [model] main = a branch with input = spectrum",
                      c->name);
    int rc = add_conditions(m, c, d);
    if (rc) return rc;
    p->pixels = m->spec[m->lat_x].in_ch;
#define IO_KEY_TYPE md_specvae_spec
    static const io_key keys[] = {IO_KI(latent, 1, 64, 4), IO_KF(alpha, 0, IO_KEY_BIG, 1e3),
                                  IO_KF(beta, 0, IO_KEY_BIG, 0.1),
                                  IO_K("leaky_slope", IO_KEY_FLOAT, slope, 0, 1, 0.01), IO_KEND};
#undef IO_KEY_TYPE
    if ((rc = io_config_keys(c, "model", keys, p))) return rc;
    p->out_bias = (float)d->median[m->lat_x];
    return GN_OK;
}

static int make(md_net *m, nn_store *s) {
    m->n_out = m->svae.sp.latent; // "outputs": the latent means
    return md_specvae_make(&m->svae, s);
}

static nn_tensor *cond_of(const md_net *m, nn_tensor *const *in) {
    return m->lat_a >= 0 ? in[m->lat_a] : NULL;
}

static nn_tensor *train_loss(nn_ctx *c, const md_net *m, nn_tensor *const *in, nn_tensor *const *in_m,
                             const float *y, int N) {
    (void)in_m, (void)y, (void)N;
    return md_specvae_loss(c, &m->svae, in[m->lat_x], cond_of(m, in), &c->dropout_rng, NULL, NULL);
}

static nn_tensor *val_loss(nn_ctx *c, const md_net *m, nn_tensor *const *in, nn_tensor *out, const float *y,
                           int N, gn_rng *eps) {
    (void)out, (void)y, (void)N;
    return md_specvae_loss(c, &m->svae, in[m->lat_x], cond_of(m, in), eps, NULL, NULL);
}

static nn_tensor *embed(nn_ctx *c, const md_net *m, nn_tensor *const *in, int full) {
    nn_tensor *mu, *lv;
    md_specvae_encode(c, &m->svae, in[m->lat_x], cond_of(m, in), &mu, &lv);
    return full ? nn_concat(c, 2, (nn_tensor *[]){mu, nn_exp(c, nn_scale(c, lv, 0.5f, 0))}, 1) : mu;
}

static nn_tensor *forward(nn_ctx *c, const md_net *m, nn_tensor *const *in) { return embed(c, m, in, 0); }

static int embed_dim(const md_net *m, int full) { return (full ? 2 : 1) * m->svae.sp.latent; }

const md_kind md_kind_specvae = {"specvae",
                                 "a spectral VAE",
                                 0,
                                 0,
                                 MD_REPORT_SPECTRA,
                                 parse,
                                 make,
                                 train_loss,
                                 forward,
                                 val_loss,
                                 embed,
                                 embed_dim,
                                 1,
                                 "-ELBO per spectrum (nats)",
                                 0,
                                 0};
