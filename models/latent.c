#include "latent.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

int md_latent_dim(const md_latent *m) { return m->sp.dim_main + m->sp.dim_ext; }

static int has_decoder(const md_latent *m) { return m->sp.objective != MD_OBJ_CE; }

static int dense(nn_dense *l, nn_store *s, const char *pre, int k, int in, int out) {
    char nm[64];
    snprintf(nm, sizeof nm, "%s.fc%d", pre, k);
    // TF conventions of the paper (§1.5): Glorot-uniform weights, biases 0.1
    return nn_dense_make(l, s, nm, in, out, 1, nn_init_glorot(), nn_init_const(0.1f));
}

static int conv(nn_conv *l, nn_store *s, const char *pre, const char *what, int k, int in, int out, int ksize,
                int pad) {
    char nm[64];
    snprintf(nm, sizeof nm, "%s.%s%d", pre, what, k);
    return nn_conv_make(l, s, nm, in, out, ksize, 1, pad, 1, nn_init_glorot(), nn_init_const(0.1f));
}

static int incep_out(int k) { return 2 * k + (int)(0.65 * k) + (int)(0.7 * k); }

static int incep_make(md_incep *b, nn_store *s, int k, int in, int w) {
    char pre[32];
    snprintf(pre, sizeof pre, "enc.inc%d", k);
    int r = (int)(0.65 * w), d = (int)(0.7 * w), rc = 0;
    rc = rc ? rc : conv(&b->a1, s, pre, "a", 1, in, r, 1, 0);
    rc = rc ? rc : conv(&b->a5, s, pre, "a", 2, r, w, 5, -1);
    rc = rc ? rc : conv(&b->b1, s, pre, "b", 1, in, r, 1, 0);
    rc = rc ? rc : conv(&b->b3, s, pre, "b", 2, r, w, 3, -1);
    rc = rc ? rc : conv(&b->c1, s, pre, "c", 1, in, r, 1, 0);
    return rc ? rc : conv(&b->d1, s, pre, "d", 1, in, d, 1, 0);
}

// The image networks of §1.5 at any size 16 * 2^m: three 2x2 poolings to
// size/8, then VALID 3x3 convolutions down to 2 x 2 (three at 64 x 64); the
// decoder starts at 8 x 8 and doubles with two convolutions per scale.
static int image_make(md_latent *m, nn_store *s) {
    const md_latent_spec *p = &m->sp;
    int S = p->img_size, q = S / 16;
    if (S < 16 || S % 16 || (q & (q - 1)))
        return gn_err(
            GN_EINVAL,
            "Inception encoder: the cutout size %d is not 16, 32, 64, 128, ... (crop with [data] size or "
            "bin)",
            S);
    if (p->img_c < 1 || p->conv_w < 1 || p->inc_w < 2 || p->fc_w < 1 || p->dec_ch < 1 || p->dec_w < 1)
        return gn_err(GN_EINVAL,
                      "Inception encoder: bad widths (conv %d, inception %d, fc %d, decoder %d/%d)",
                      p->conv_w, p->inc_w, p->fc_w, p->dec_ch, p->dec_w);
    int L = md_latent_dim(m), I = incep_out(p->inc_w), rc = 0;
    if (p->a_dim) rc = dense(&m->enc[0], s, "enc", 0, p->a_dim, p->conv_w);
    rc = rc ? rc : conv(&m->stem[0], s, "enc", "stem", 1, p->img_c, p->conv_w, 5, -1);
    rc = rc ? rc : conv(&m->stem[1], s, "enc", "stem", 2, p->conv_w, p->conv_w, 3, -1);
    for (int k = 0; k < 6 && !rc; k++) rc = incep_make(&m->inc[k], s, k + 1, k ? I : p->conv_w, p->inc_w);
    m->n_valid = (S / 8 - 2) / 2;
    if (m->n_valid > MD_LAT_MAXCONV)
        return gn_err(GN_EINVAL, "Inception encoder: cutout size %d is too large", S);
    for (int k = 0; k < m->n_valid && !rc; k++)
        rc = conv(&m->valid[k], s, "enc", "valid", k + 1, k ? p->conv_w : I, p->conv_w, 3, 0);
    int flat = 4 * (m->n_valid ? p->conv_w : I);
    rc = rc ? rc : dense(&m->enc[1], s, "enc", 1, flat, p->fc_w);
    rc = rc ? rc : dense(&m->enc[2], s, "enc", 2, p->fc_w, L);
    if (!has_decoder(m) || rc) return rc;
    rc = dense(&m->dec[0], s, "dec", 1, L, 64 * p->dec_ch);
    int n = 0, in = p->dec_ch;
    for (int size = 8; !rc; size *= 2) {
        int convs = size == S ? 1 : 2;
        for (int j = 0; j < convs && !rc; j++, n++)
            rc = conv(&m->dconv[n], s, "dec", "conv", n + 1, in, p->dec_w, 3, -1), in = p->dec_w;
        if (size == S) break;
    }
    if (!rc) rc = conv(&m->dconv[n], s, "dec", "conv", n + 1, p->dec_w, p->img_c, 3, -1), n++;
    m->n_dconv = n;
    return rc;
}

int md_latent_make(md_latent *m, nn_store *s) {
    const md_latent_spec *p = &m->sp;
    int img = p->encoder == MD_ENC_INCEPTION;
    if ((!img && (p->depth < 1 || p->depth > MD_LAT_MAXDEPTH || p->hidden < 1 || p->x_dim < 1)) ||
        p->dim_main < 1 || p->dim_ext < 0 || p->a_dim < 0 || p->est_hidden < 1 || p->bins < 2)
        return gn_err(GN_EINVAL, "latent model: bad sizes (depth %d, hidden %d, dim_main %d, dim_ext %d)",
                      p->depth, p->hidden, p->dim_main, p->dim_ext);
    int L = md_latent_dim(m), in = p->x_dim + p->a_dim, rc = 0;
    if (img) rc = image_make(m, s);
    else {
        for (int k = 0; k < p->depth && !rc; k++)
            rc = dense(&m->enc[k], s, "enc", k + 1, k ? p->hidden : in, p->hidden);
        if (!rc) rc = dense(&m->enc[p->depth], s, "enc", p->depth + 1, p->hidden, L);
    }
    if (!img && has_decoder(m)) {
        for (int k = 0; k < p->depth - 1 && !rc; k++)
            rc = dense(&m->dec[k], s, "dec", k + 1, k ? p->hidden : L, p->hidden);
        if (!rc)
            rc = dense(&m->dec[p->depth - 1], s, "dec", p->depth, p->depth > 1 ? p->hidden : L, p->x_dim);
    }
    if (!rc) rc = dense(&m->est[0], s, "est", 1, p->dim_main, p->est_hidden);
    if (!rc) rc = dense(&m->est[1], s, "est", 2, p->est_hidden, p->bins);
    return rc;
}

// relu(conv(x)) in the conv's output pass: the conv's output is not kept beside the activation's
static nn_tensor *relu_conv(nn_ctx *c, const nn_conv *l, nn_tensor *x) {
    return nn_conv_fwd_act(c, l, x, 1, 0);
}

// TF's 2x2 stride-1 SAME average pool: one cell of padding after, excluded
// from the mean.
static nn_tensor *pool_same(nn_ctx *c, nn_tensor *x) {
    return nn_avgpool2d(c, x, 2, 2, 1, 1, (nn_pad2d){0, 1, 0, 1}, 0);
}

static nn_tensor *pool_half(nn_ctx *c, nn_tensor *x) {
    return nn_avgpool2d(c, x, 2, 2, 2, 2, nn_pad_sym(0), 0);
}

// An Inception block. Its output, a copy of its branches' side by side, is pooled (dropped once the next
// block or pool has read it, copied again for backward); its input, read by the four branches only, is
// dropped.
static nn_tensor *incep_fwd(nn_ctx *c, const md_incep *b, nn_tensor *x) {
    nn_tensor *br[4] = {relu_conv(c, &b->a5, relu_conv(c, &b->a1, x)),
                        relu_conv(c, &b->b3, relu_conv(c, &b->b1, x)), pool_same(c, relu_conv(c, &b->c1, x)),
                        relu_conv(c, &b->d1, x)};
    nn_tensor *y = nn_concat_pooled(c, 4, br, 1);
    nn_tensor_drop(c, x);
    return y;
}

// y, made from x, whose last reader it was: x dropped (when pooled)
static nn_tensor *then_drop(nn_ctx *c, nn_tensor *y, nn_tensor *x) {
    nn_tensor_drop(c, x);
    return y;
}

static nn_tensor *image_encode(nn_ctx *c, const md_latent *m, nn_tensor *x, nn_tensor *a) {
    const md_latent_spec *p = &m->sp;
    nn_tensor *h = nn_conv_fwd(c, &m->stem[0], x);
    if (a && p->a_dim) // the additional vector enters as a per-channel offset of the first convolution
        h = nn_add(c, h, nn_reshape(c, nn_dense_fwd(c, &m->enc[0], a), NN_SHAPE(-1, p->conv_w, 1, 1)));
    h = nn_tanh(c, nn_conv_fwd(c, &m->stem[1], nn_relu(c, h)));
    h = pool_half(c, h);
    for (int k = 0; k < 3; k++) h = incep_fwd(c, &m->inc[k], h);
    h = then_drop(c, pool_half(c, h), h);
    for (int k = 3; k < 5; k++) h = incep_fwd(c, &m->inc[k], h);
    h = incep_fwd(c, &m->inc[5], then_drop(c, pool_half(c, h), h));
    for (int k = 0; k < m->n_valid; k++) h = then_drop(c, relu_conv(c, &m->valid[k], h), h);
    h = nn_reshape(c, then_drop(c, pool_same(c, h), h), NN_SHAPE(x ? x->shape[0] : 0, -1));
    return nn_dense_fwd(c, &m->enc[2], nn_relu(c, nn_dense_fwd(c, &m->enc[1], h)));
}

static nn_tensor *image_decode(nn_ctx *c, const md_latent *m, nn_tensor *l) {
    const md_latent_spec *p = &m->sp;
    nn_tensor *h = nn_leaky_relu(c, nn_dense_fwd(c, &m->dec[0], l), p->slope);
    h = nn_reshape(c, h, NN_SHAPE(l ? l->shape[0] : 0, p->dec_ch, 8, 8));
    int n = 0;
    for (int size = 8;; size *= 2) {
        int convs = size == p->img_size ? 1 : 2;
        for (int j = 0; j < convs; j++, n++)
            h = p->slope > 0 ? nn_conv_fwd_act(c, &m->dconv[n], h, 2, p->slope)
                             : nn_leaky_relu(c, nn_conv_fwd(c, &m->dconv[n], h), p->slope);
        if (size == p->img_size) break;
        h = nn_resize_bilinear(c, h, 2 * size, 2 * size);
    }
    return nn_conv_fwd(c, &m->dconv[n], h); // linear, back to the bands
}

nn_tensor *md_latent_encode(nn_ctx *c, const md_latent *m, nn_tensor *x, nn_tensor *a) {
    if (m->sp.encoder == MD_ENC_INCEPTION) return image_encode(c, m, x, a);
    nn_tensor *h = a ? nn_concat(c, 2, (nn_tensor *[]){x, a}, 1) : x;
    for (int k = 0; k < m->sp.depth; k++) h = nn_leaky_relu(c, nn_dense_fwd(c, &m->enc[k], h), m->sp.slope);
    return nn_dense_fwd(c, &m->enc[m->sp.depth], h);
}

nn_tensor *md_latent_decode(nn_ctx *c, const md_latent *m, nn_tensor *l) {
    if (m->sp.encoder == MD_ENC_INCEPTION) return image_decode(c, m, l);
    nn_tensor *h = l;
    for (int k = 0; k < m->sp.depth - 1; k++)
        h = nn_leaky_relu(c, nn_dense_fwd(c, &m->dec[k], h), m->sp.slope);
    return nn_dense_fwd(c, &m->dec[m->sp.depth - 1], h);
}

nn_tensor *md_latent_S(nn_ctx *c, const md_latent *m, nn_tensor *l) {
    return m->sp.dim_ext ? nn_slice(c, l, 1, 0, m->sp.dim_main) : l;
}

nn_tensor *md_latent_logits(nn_ctx *c, const md_latent *m, nn_tensor *l) {
    nn_tensor *h = nn_dense_fwd(c, &m->est[0], md_latent_S(c, m, l));
    h = m->sp.encoder == MD_ENC_INCEPTION ? nn_relu(c, h) : nn_leaky_relu(c, h, m->sp.slope);
    return nn_dense_fwd(c, &m->est[1], h);
}

int md_latent_label(const md_latent *m, double y) {
    double w = (m->sp.hi - m->sp.lo) / m->sp.bins;
    int k = (int)floor((y - m->sp.lo) / w);
    return k < 0 ? 0 : k >= m->sp.bins ? m->sp.bins - 1 : k;
}

// Mean over rows of the RMS distance d(u, v) = sqrt(mean_j (u_j - v_j)^2 +
// 1e-12) (§1.6; the 1e-12 keeps the gradient finite at d = 0).
static nn_tensor *mean_rms(nn_ctx *c, nn_tensor *u, nn_tensor *v) {
    nn_tensor *d = nn_sub(c, u, v);
    return nn_mean(c, nn_sqrt(c, nn_scale(c, nn_mean(c, nn_mul(c, d, d), 1u << 1, 0), 1, 1e-12f)),
                   NN_ALL_AXES, 0);
}

static nn_tensor *add(nn_ctx *c, nn_tensor *a, nn_tensor *b) { return a ? nn_add(c, a, b) : b; }

// CE(sg(softmax p), q) + CE(sg(softmax q), p): the prediction contrast.
static nn_tensor *ycon(nn_ctx *c, nn_tensor *p, nn_tensor *q) {
    return nn_add(c, nn_cross_entropy_soft(c, q, nn_softmax(c, p, 1)),
                  nn_cross_entropy_soft(c, p, nn_softmax(c, q, 1)));
}

// Row-wise L2 normalisation (SupCon's features).
static nn_tensor *l2norm(nn_ctx *c, nn_tensor *x) {
    nn_tensor *n2 = nn_sum(c, nn_mul(c, x, x), 1u << 1, 1);
    return nn_div(c, x, nn_sqrt(c, nn_scale(c, n2, 1, 1e-12f)));
}

nn_tensor *md_latent_loss(nn_ctx *c, const md_latent *m, nn_tensor *x, nn_tensor *a, nn_tensor *xm,
                          const float *y, int N) {
    if (!x) return NULL;
    const md_latent_spec *p = &m->sp;
    int32_t *lab = nn_arena_alloc(&c->arena, sizeof(int32_t) * (size_t)N);
    if (!lab) return NULL;
    for (int i = 0; i < N; i++) lab[i] = md_latent_label(m, y[i]);
    if (p->objective == MD_OBJ_CE)
        return nn_cross_entropy(c, md_latent_logits(c, m, md_latent_encode(c, m, x, a)), lab);
    if (N % 2 || N < 2) {
        gn_err(GN_EINVAL, "contrastive batch: %d rows is not an even number of set-1/set-2 pairs", N);
        return NULL;
    }
    int P = N / 2;
    // Both sets go through the networks together (no layer mixes rows), so a
    // mean over the N rows is (set 1 mean + set 2 mean) / 2: the paper's sums
    // over the two sets are 2 x these means.
    nn_tensor *l1 = md_latent_encode(c, m, x, a), *xh1 = md_latent_decode(c, m, l1),
              *z1 = md_latent_logits(c, m, l1);
    nn_tensor *l2 = md_latent_encode(c, m, xh1, a), *xh2 = md_latent_decode(c, m, l2),
              *z2 = md_latent_logits(c, m, l2);
    nn_tensor *lm = NULL, *zm = NULL, *xhm = NULL;
    if (xm)
        lm = md_latent_encode(c, m, xm, a), xhm = md_latent_decode(c, m, lm), zm = md_latent_logits(c, m, lm);
    nn_tensor *ce = nn_add(c, nn_cross_entropy(c, z1, lab), nn_cross_entropy(c, z2, lab));
    nn_tensor *rec = nn_add(c, nn_mse_loss(c, xh1, x), nn_mse_loss(c, xh2, x));
    if (xm) rec = nn_add(c, rec, nn_mse_loss(c, xhm, xm));
    nn_tensor *yc = ycon(c, z1, z2);
    if (xm) yc = nn_add(c, yc, ycon(c, z1, zm));
    nn_tensor *S1 = md_latent_S(c, m, l1), *S2 = md_latent_S(c, m, l2),
              *Sm = xm ? md_latent_S(c, m, lm) : NULL;
    nn_tensor *lcon = NULL;
    if (p->objective == MD_OBJ_SCL) {
        // positives: (l, l') for every row (+ (l, l_m)); negatives: (l1_i, l2_i) of
        // the two sets; softplus(mean_pos d - mean_neg d)
        nn_tensor *pos = mean_rms(c, S1, S2);
        if (xm)
            pos = nn_scale(c, nn_add(c, pos, mean_rms(c, S1, Sm)), 0.5f, 0); // mean over all positive rows
        nn_tensor *neg = mean_rms(c, nn_slice(c, S1, 0, 0, P), nn_slice(c, S1, 0, P, N));
        lcon = nn_softplus(c, nn_sub(c, pos, neg));
    } else { // views: the first cycle, the second (and the morphology view)
        nn_tensor *F = nn_concat(c, xm ? 3 : 2, (nn_tensor *[]){S1, S2, Sm}, 0);
        if (p->objective == MD_OBJ_SUPCON) {
            int32_t *cls = nn_arena_alloc(&c->arena, sizeof(int32_t) * (size_t)N);
            if (!cls) return NULL;
            for (int i = 0; i < N; i++) cls[i] = (int32_t)floor((y[i] - p->lo) / p->supcon_width);
            lcon = nn_supcon_loss(c, l2norm(c, F), xm ? 3 : 2, cls, p->tau, p->base_tau);
        } else
            lcon = nn_rnc_loss(c, F, xm ? 3 : 2, y, 1, p->tau);
    }
    nn_tensor *L = nn_scale(c, ce, 2, 0);
    L = add(c, L, nn_scale(c, rec, 2 * p->lambda_rec, 0));
    L = add(c, L, lcon);
    return add(c, L, nn_scale(c, yc, 2, 0));
}
