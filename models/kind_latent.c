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
    int rnc = p->objective == MD_OBJ_RNC, ce = p->objective == MD_OBJ_CE, rc;
#define IO_KEY_TYPE md_latent_spec
    const io_key keys[] = {IO_KI(dim_main, 1, 65536, img ? 16 : 8),
                           IO_KI(dim_ext, 0, 65536,
                                 ce    ? 0
                                 : img ? 512
                                       : 8),
                           IO_KI(est_hidden, 1, 65536, img ? 1024 : 128),
                           IO_KF(lambda_rec, 0, IO_KEY_BIG, img ? 100 : 1),
                           IO_KF(tau, IO_KEY_POS, IO_KEY_BIG, rnc ? 2 : 0.1),
                           IO_KF(base_tau, IO_KEY_POS, IO_KEY_BIG, 0.07),
                           IO_KF(supcon_width, IO_KEY_POS, IO_KEY_BIG, 0.1),
                           IO_K("leaky_slope", IO_KEY_FLOAT, slope, 0, 1, 0.2),
                           IO_KEND};
    // the MLP encoder's sizes (also read, unused, for the image encoder), and the image encoder's
    static const io_key mlp[] = {IO_KI(depth, 1, MD_LAT_MAXDEPTH, 20), IO_KI(hidden, 1, 65536, 128), IO_KEND};
    static const io_key inception[] = {IO_K("conv_width", IO_KEY_INT, conv_w, 1, 65536, 96),
                                       IO_K("inception_width", IO_KEY_INT, inc_w, 1, 65536, 156),
                                       IO_K("fc_width", IO_KEY_INT, fc_w, 1, 65536, 1024),
                                       IO_K("decoder_channels", IO_KEY_INT, dec_ch, 1, 65536, 16),
                                       IO_K("decoder_width", IO_KEY_INT, dec_w, 1, 65536, 32),
                                       IO_KEND};
#undef IO_KEY_TYPE
    if ((rc = io_config_keys(c, "model", keys, p)) || (rc = io_config_keys(c, "model", mlp, p))) return rc;
    return img ? io_config_keys(c, "model", inception, p) : GN_OK;
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
                                0,
                                "objective per galaxy (nats); validation: the head's loss", 0, 0};
