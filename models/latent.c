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

int md_latent_make(md_latent *m, nn_store *s) {
    const md_latent_spec *p = &m->sp;
    if (p->depth < 1 || p->depth > MD_LAT_MAXDEPTH || p->hidden < 1 || p->dim_main < 1 || p->dim_ext < 0 || p->x_dim < 1 ||
        p->a_dim < 0 || p->est_hidden < 1 || p->bins < 2)
        return gn_err(GN_EINVAL, "latent model: bad sizes (depth %d, hidden %d, dim_main %d, dim_ext %d)", p->depth, p->hidden,
                      p->dim_main, p->dim_ext);
    int L = md_latent_dim(m), in = p->x_dim + p->a_dim, rc = 0;
    for (int k = 0; k < p->depth && !rc; k++) rc = dense(&m->enc[k], s, "enc", k + 1, k ? p->hidden : in, p->hidden);
    if (!rc) rc = dense(&m->enc[p->depth], s, "enc", p->depth + 1, p->hidden, L);
    if (has_decoder(m)) {
        for (int k = 0; k < p->depth - 1 && !rc; k++) rc = dense(&m->dec[k], s, "dec", k + 1, k ? p->hidden : L, p->hidden);
        if (!rc) rc = dense(&m->dec[p->depth - 1], s, "dec", p->depth, p->depth > 1 ? p->hidden : L, p->x_dim);
    }
    if (!rc) rc = dense(&m->est[0], s, "est", 1, p->dim_main, p->est_hidden);
    if (!rc) rc = dense(&m->est[1], s, "est", 2, p->est_hidden, p->bins);
    return rc;
}

nn_tensor *md_latent_encode(nn_ctx *c, const md_latent *m, nn_tensor *x, nn_tensor *a) {
    nn_tensor *h = a ? nn_concat(c, 2, (nn_tensor *[]){x, a}, 1) : x;
    for (int k = 0; k < m->sp.depth; k++) h = nn_leaky_relu(c, nn_dense_fwd(c, &m->enc[k], h), m->sp.slope);
    return nn_dense_fwd(c, &m->enc[m->sp.depth], h);
}

nn_tensor *md_latent_decode(nn_ctx *c, const md_latent *m, nn_tensor *l) {
    nn_tensor *h = l;
    for (int k = 0; k < m->sp.depth - 1; k++) h = nn_leaky_relu(c, nn_dense_fwd(c, &m->dec[k], h), m->sp.slope);
    return nn_dense_fwd(c, &m->dec[m->sp.depth - 1], h);
}

nn_tensor *md_latent_S(nn_ctx *c, const md_latent *m, nn_tensor *l) {
    return m->sp.dim_ext ? nn_slice(c, l, 1, 0, m->sp.dim_main) : l;
}

nn_tensor *md_latent_logits(nn_ctx *c, const md_latent *m, nn_tensor *l) {
    nn_tensor *h = nn_leaky_relu(c, nn_dense_fwd(c, &m->est[0], md_latent_S(c, m, l)), m->sp.slope);
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
    return nn_mean(c, nn_sqrt(c, nn_scale(c, nn_mean(c, nn_mul(c, d, d), 1u << 1, 0), 1, 1e-12f)), NN_ALL_AXES, 0);
}

static nn_tensor *add(nn_ctx *c, nn_tensor *a, nn_tensor *b) { return a ? nn_add(c, a, b) : b; }

// CE(sg(softmax p), q) + CE(sg(softmax q), p): the prediction contrast.
static nn_tensor *ycon(nn_ctx *c, nn_tensor *p, nn_tensor *q) {
    return nn_add(c, nn_cross_entropy_soft(c, q, nn_softmax(c, p, 1)), nn_cross_entropy_soft(c, p, nn_softmax(c, q, 1)));
}

// Row-wise L2 normalisation (SupCon's features).
static nn_tensor *l2norm(nn_ctx *c, nn_tensor *x) {
    nn_tensor *n2 = nn_sum(c, nn_mul(c, x, x), 1u << 1, 1);
    return nn_div(c, x, nn_sqrt(c, nn_scale(c, n2, 1, 1e-12f)));
}

nn_tensor *md_latent_loss(nn_ctx *c, const md_latent *m, nn_tensor *x, nn_tensor *a, nn_tensor *xm, const float *y,
                          int N) {
    if (!x) return NULL;
    const md_latent_spec *p = &m->sp;
    int32_t *lab = nn_arena_alloc(&c->arena, sizeof(int32_t) * (size_t)N);
    if (!lab) return NULL;
    for (int i = 0; i < N; i++) lab[i] = md_latent_label(m, y[i]);
    if (p->objective == MD_OBJ_CE) return nn_cross_entropy(c, md_latent_logits(c, m, md_latent_encode(c, m, x, a)), lab);
    if (N % 2 || N < 2) {
        gn_err(GN_EINVAL, "contrastive batch: %d rows is not an even number of set-1/set-2 pairs", N);
        return NULL;
    }
    int P = N / 2;
    // Both sets go through the networks together (no layer mixes rows), so a
    // mean over the N rows is (set 1 mean + set 2 mean) / 2: the paper's sums
    // over the two sets are 2 x these means.
    nn_tensor *l1 = md_latent_encode(c, m, x, a), *xh1 = md_latent_decode(c, m, l1), *z1 = md_latent_logits(c, m, l1);
    nn_tensor *l2 = md_latent_encode(c, m, xh1, a), *xh2 = md_latent_decode(c, m, l2), *z2 = md_latent_logits(c, m, l2);
    nn_tensor *lm = NULL, *zm = NULL, *xhm = NULL;
    if (xm) lm = md_latent_encode(c, m, xm, a), xhm = md_latent_decode(c, m, lm), zm = md_latent_logits(c, m, lm);
    nn_tensor *ce = nn_add(c, nn_cross_entropy(c, z1, lab), nn_cross_entropy(c, z2, lab));
    nn_tensor *rec = nn_add(c, nn_mse_loss(c, xh1, x), nn_mse_loss(c, xh2, x));
    if (xm) rec = nn_add(c, rec, nn_mse_loss(c, xhm, xm));
    nn_tensor *yc = ycon(c, z1, z2);
    if (xm) yc = nn_add(c, yc, ycon(c, z1, zm));
    nn_tensor *S1 = md_latent_S(c, m, l1), *S2 = md_latent_S(c, m, l2), *Sm = xm ? md_latent_S(c, m, lm) : NULL;
    nn_tensor *lcon = NULL;
    if (p->objective == MD_OBJ_SCL) {
        // positives: (l, l') for every row (+ (l, l_m)); negatives: (l1_i, l2_i) of
        // the two sets; softplus(mean_pos d - mean_neg d)
        nn_tensor *pos = mean_rms(c, S1, S2);
        if (xm) pos = nn_scale(c, nn_add(c, pos, mean_rms(c, S1, Sm)), 0.5f, 0); // mean over all positive rows
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
