// [model] kind = latent: the S-space model (models/latent.h) over the inputs
// of the branches named by `main` (x) and `extra` (a).
#include <stdio.h>
#include <string.h>

#include "branchnet.h"

// [model] main / extra -> m->lat_x / m->lat_a, checked against the encoder's inputs.
static int parse_inputs(md_net *m, io_config *c, int img, const char *enc) {
    const char *names[2] = {io_config_str(c, "model", "main", NULL),
                            io_config_str(c, "model", "extra", NULL)};
    int *which[2] = {&m->lat_x, &m->lat_a};
    for (int k = 0; k < 2; k++) {
        *which[k] = -1;
        if (!names[k]) continue;
        for (int b = 0; b < m->n_branch; b++)
            if (!strcmp(m->spec[b].name, names[k])) *which[k] = b;
        if (*which[k] < 0)
            return gn_err(GN_EINVAL, "%s: [model] %s = %s names no [branch.%s]", c->name,
                          k ? "extra" : "main", names[k], names[k]);
        int want = k == 0 && img ? MD_IN_IMAGE : MD_IN_COLUMNS;
        if (m->spec[*which[k]].input != want)
            return gn_err(GN_EINVAL, "%s: [branch.%s] must be %s for the %s encoder", c->name, names[k],
                          want == MD_IN_IMAGE ? "an image input" : "catalog columns", enc);
    }
    if (m->lat_x < 0) return gn_err(GN_EINVAL, "%s: [model] main = BRANCH names the main input", c->name);
    return GN_OK;
}

// The sizes and weights of [model], with the defaults of the MLP or the image encoder.
static int parse_keys(md_latent_spec *p, io_config *c, int img) {
    struct {
        const char *key;
        long def;
        int *dst;
    } ik[] = {{"dim_main", img ? 16 : 8, &p->dim_main},
              {"dim_ext", p->objective == MD_OBJ_CE ? 0 : img ? 512 : 8, &p->dim_ext},
              {"depth", 20, &p->depth},           {"hidden", 128, &p->hidden},
              {"est_hidden", img ? 1024 : 128, &p->est_hidden},
              {"conv_width", 96, &p->conv_w},     {"inception_width", 156, &p->inc_w},
              {"fc_width", 1024, &p->fc_w},       {"decoder_channels", 16, &p->dec_ch},
              {"decoder_width", 32, &p->dec_w}};
    for (int k = 0; k < (int)(sizeof ik / sizeof ik[0]); k++) {
        if (!img && k >= 5) break; // the image keys mean nothing to the MLP encoder
        long v;
        int rc = io_config_int(c, "model", ik[k].key, ik[k].def, &v);
        if (rc) return rc;
        *ik[k].dst = (int)v;
    }
    struct {
        const char *key;
        double def;
        float *dst;
    } fk[] = {{"lambda_rec", img ? 100 : 1, &p->lambda_rec},
              {"tau", p->objective == MD_OBJ_RNC ? 2 : 0.1, &p->tau},
              {"base_tau", 0.07, &p->base_tau},
              {"supcon_width", 0.1, &p->supcon_width},
              {"leaky_slope", 0.2, &p->slope}};
    for (int k = 0; k < 5; k++) {
        double v;
        int rc = io_config_double(c, "model", fk[k].key, fk[k].def, &v);
        if (rc) return rc;
        *fk[k].dst = (float)v;
    }
    if (!(p->supcon_width > 0) || !(p->tau > 0) || !(p->base_tau > 0))
        return gn_err(GN_EINVAL, "%s: [model] tau, base_tau and supcon_width must be positive", c->name);
    return GN_OK;
}

static int parse(md_net *m, io_config *c, const md_data_info *d) {
    md_latent_spec *p = &m->lat.sp;
    if (m->head != MD_HEAD_BINNED)
        return gn_err(GN_EINVAL, "%s: latent models need [target] head = binned", c->name);
    const char *obj = io_config_str(c, "model", "objective", "scl");
    const char *objs[] = {"scl", "ce", "supcon", "rnc"};
    p->objective = -1;
    for (int k = 0; k < 4; k++)
        if (!strcmp(obj, objs[k])) p->objective = k;
    if (p->objective < 0)
        return gn_err(GN_EINVAL, "%s: [model] objective '%s' is not scl, ce, supcon or rnc", c->name, obj);
    const char *enc = io_config_str(c, "model", "encoder", "mlp");
    if (strcmp(enc, "mlp") && strcmp(enc, "inception"))
        return gn_err(GN_EINVAL, "%s: [model] encoder '%s' is not mlp or inception", c->name, enc);
    p->encoder = strcmp(enc, "mlp") ? MD_ENC_INCEPTION : MD_ENC_MLP;
    int img = p->encoder == MD_ENC_INCEPTION, rc = parse_inputs(m, c, img, enc);
    if (rc) return rc;
    p->x_dim = m->spec[m->lat_x].in_ch;
    p->a_dim = m->lat_a >= 0 ? m->spec[m->lat_a].in_ch : 0;
    if (img) p->img_c = p->x_dim, p->img_size = d->img_size[m->lat_x];
    if ((rc = parse_keys(p, c, img))) return rc;
    p->bins = m->bins, p->lo = m->lo, p->hi = m->hi;
    if (p->objective != MD_OBJ_CE && d->batch % 2)
        return gn_err(GN_EINVAL, "%s: a contrastive batch is set-1/set-2 pairs: [train] batch must be even",
                      c->name);
    m->pairs = p->objective != MD_OBJ_CE;
    m->morph = m->pairs && img; // images: the morphology-augmented view
    return GN_OK;
}

static int make(md_net *m, nn_store *s) {
    m->n_out = m->bins;
    return md_latent_make(&m->lat, s);
}

static nn_tensor *encode(nn_ctx *c, const md_net *m, nn_tensor *const *in) {
    return md_latent_encode(c, &m->lat, in[m->lat_x], m->lat_a >= 0 ? in[m->lat_a] : NULL);
}

static nn_tensor *train_loss(nn_ctx *c, const md_net *m, nn_tensor *const *in, nn_tensor *const *in_m,
                             const float *y, int N) {
    return md_latent_loss(c, &m->lat, in[m->lat_x], m->lat_a >= 0 ? in[m->lat_a] : NULL,
                          in_m ? in_m[m->lat_x] : NULL, y, N);
}

static nn_tensor *forward(nn_ctx *c, const md_net *m, nn_tensor *const *in) {
    return md_latent_logits(c, &m->lat, encode(c, m, in));
}

static nn_tensor *val_loss(nn_ctx *c, const md_net *m, nn_tensor *const *in, nn_tensor *out, const float *y,
                           int N, gn_rng *eps) {
    (void)in, (void)eps;
    return md_net_loss(c, m, out, y, N);
}

static nn_tensor *embed(nn_ctx *c, const md_net *m, nn_tensor *const *in, int full) {
    nn_tensor *l = encode(c, m, in);
    return full ? l : md_latent_S(c, &m->lat, l);
}

static int embed_dim(const md_net *m, int full) { return full ? md_latent_dim(&m->lat) : m->lat.sp.dim_main; }

const md_kind md_kind_latent = {"latent",
                                "a latent (S-space) model",
                                1,
                                1,
                                MD_REPORT_POINT,
                                parse,
                                make,
                                train_loss,
                                forward,
                                val_loss,
                                embed,
                                embed_dim,
                                0};
