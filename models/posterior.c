#include "posterior.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

int md_post_make(md_post *p, nn_store *s) {
    md_post_spec *q = &p->sp;
    if (q->in_dim < 1 || q->dim < 1 || q->ctx < 1 || q->ctx_depth < 1 || q->ctx_depth > MD_POST_MAXDEPTH ||
        q->mean_hidden < 1 || q->mean_weight < 0)
        return gn_err(GN_EINVAL,
                      "posterior: bad sizes (%d features, %d targets, context %d x %d, mean head %d)",
                      q->in_dim, q->dim, q->ctx_depth, q->ctx, q->mean_hidden);
    char nm[64];
    int rc = 0;
    // the context network and the heads: PyTorch's Linear defaults (weights and biases U(+-1/sqrt(fan_in)));
    // He-normal with zero biases left them over-confident on held-out galaxies. The flows keep the
    // zero-initialised last layers of their coupling networks (the identity map at the start).
    for (int k = 0; k < q->ctx_depth && !rc; k++) {
        snprintf(nm, sizeof nm, "post.ctx.fc%d", k + 1);
        rc = nn_dense_make(&p->cx[k], s, nm, k ? q->ctx : q->in_dim, q->ctx, 1, nn_init_torch(0),
                           nn_init_torch(k ? q->ctx : q->in_dim));
    }
    rc = rc ? rc
            : nn_dense_make(&p->mh[0], s, "post.mean.fc1", q->ctx, q->mean_hidden, 1, nn_init_torch(0),
                            nn_init_torch(q->ctx));
    rc = rc ? rc
            : nn_dense_make(&p->mh[1], s, "post.mean.fc2", q->mean_hidden, q->dim, 1, nn_init_torch(0),
                            nn_init_torch(q->mean_hidden));
    q->flow.dim = q->dim, q->flow.ctx = q->ctx;
    p->flow.sp = q->flow;
    rc = rc ? rc : md_flow_make(&p->flow, s, "post.flow");
    if (rc || !q->chain) return rc;
    if (q->chain_layers < 1 || q->det_weight < 0)
        return gn_err(GN_EINVAL, "posterior: chain_layers %d, det_weight %g", q->chain_layers,
                      (double)q->det_weight);
    md_flow_spec cs = q->flow;
    cs.dim = 1, cs.ctx = q->ctx + q->dim, cs.layers = q->chain_layers;
    p->chainf.sp = cs;
    rc = md_flow_make(&p->chainf, s, "post.chain");
    rc = rc ? rc
            : nn_dense_make(&p->det[0], s, "post.detect.fc1", q->ctx, q->mean_hidden, 1, nn_init_torch(0),
                            nn_init_torch(q->ctx));
    return rc ? rc
              : nn_dense_make(&p->det[1], s, "post.detect.fc2", q->mean_hidden, 1, 1, nn_init_torch(0),
                              nn_init_torch(q->mean_hidden));
}

// The core columns of y, and the chain column with its presence mask (NaN -> 0).
static nn_tensor *core_of(nn_ctx *c, const md_post *p, nn_tensor *y) {
    return p->sp.chain ? nn_slice(c, y, 1, 0, p->sp.dim) : y;
}

static nn_tensor *chain_of(nn_ctx *c, const md_post *p, nn_tensor *y, nn_tensor **mask) {
    int N = y->shape[0], D = p->sp.dim;
    nn_tensor *v = nn_tensor_new(c, NN_SHAPE(N, 1)), *m = nn_tensor_new(c, NN_SHAPE(N));
    if (!v || !m) return NULL;
    for (int i = 0; i < N; i++) {
        float a = y->data[i * (D + 1) + D];
        m->data[i] = !isnan(a), v->data[i] = isnan(a) ? 0 : a;
    }
    *mask = m;
    return v;
}

static nn_tensor *detect_logit(nn_ctx *c, const md_post *p, nn_tensor *h) {
    nn_tensor *z = nn_dense_fwd(c, &p->det[1], nn_relu(c, nn_dense_fwd(c, &p->det[0], h)));
    return nn_reshape(c, z, NN_SHAPE(-1));
}

nn_tensor *md_post_context(nn_ctx *c, const md_post *p, nn_tensor *x) {
    for (int k = 0; k < p->sp.ctx_depth; k++) x = nn_relu(c, nn_dense_fwd(c, &p->cx[k], x));
    return x;
}

nn_tensor *md_post_mean(nn_ctx *c, const md_post *p, nn_tensor *h) {
    return nn_dense_fwd(c, &p->mh[1], nn_relu(c, nn_dense_fwd(c, &p->mh[0], h)));
}

nn_tensor *md_post_point(nn_ctx *c, const md_post *p, nn_tensor *x) {
    nn_tensor *h = md_post_context(c, p, x), *m = md_post_mean(c, p, h);
    if (!p->sp.chain || !m) return m;
    nn_tensor *u = nn_tensor_new(c, NN_SHAPE(m->shape[0], 1));
    if (!u) return NULL;
    memset(u->data, 0, sizeof(float) * u->n);
    nn_tensor *yc = md_flow_inverse(c, &p->chainf, u, nn_concat(c, 2, (nn_tensor *[]){h, m}, 1), NULL);
    return nn_concat(c, 2, (nn_tensor *[]){m, yc}, 1);
}

nn_tensor *md_post_log_prob(nn_ctx *c, const md_post *p, nn_tensor *x, nn_tensor *y) {
    nn_tensor *h = md_post_context(c, p, x);
    return md_flow_log_prob(c, &p->flow, nn_sub(c, core_of(c, p, y), md_post_mean(c, p, h)), h);
}

// log p(y_c | y_core, h) ⊙ mask, given the context h.
static nn_tensor *chain_lp(nn_ctx *c, const md_post *p, nn_tensor *h, nn_tensor *y, nn_tensor **mask) {
    nn_tensor *yc = chain_of(c, p, y, mask);
    if (!yc) return NULL;
    nn_tensor *ctx =
        nn_concat(c, 2, (nn_tensor *[]){h, core_of(c, p, y)}, 1); // teacher forcing: the true y_core
    return nn_mul(c, md_flow_log_prob(c, &p->chainf, yc, ctx), *mask);
}

nn_tensor *md_post_chain_log_prob(nn_ctx *c, const md_post *p, nn_tensor *x, nn_tensor *y) {
    nn_tensor *mask;
    return p->sp.chain ? chain_lp(c, p, md_post_context(c, p, x), y, &mask) : NULL;
}

nn_tensor *md_post_detect(nn_ctx *c, const md_post *p, nn_tensor *x) {
    return p->sp.chain ? nn_sigmoid(c, detect_logit(c, p, md_post_context(c, p, x))) : NULL;
}

nn_tensor *md_post_loss(nn_ctx *c, const md_post *p, nn_tensor *x, nn_tensor *y) {
    if (!x || !y) return NULL;
    nn_tensor *h = md_post_context(c, p, x), *m = md_post_mean(c, p, h), *yc = core_of(c, p, y);
    nn_tensor *L = md_flow_nll(c, &p->flow, nn_sub(c, yc, m), h);
    if (p->sp.mean_weight > 0) L = nn_add(c, L, nn_scale(c, nn_mse_loss(c, m, yc), p->sp.mean_weight, 0));
    if (!p->sp.chain || !L) return L;
    nn_tensor *mask, *lp = chain_lp(c, p, h, y, &mask);
    if (!lp) return NULL;
    double have = 0;
    for (size_t i = 0; i < mask->n; i++) have += mask->data[i];
    // mean NLL over the galaxies that have the chain target; BCE of the detectability head over all
    L = nn_add(c, L, nn_scale(c, nn_sum(c, lp, NN_ALL_AXES, 0), (float)(-1.0 / (have > 0 ? have : 1)), 0));
    return nn_add(c, L, nn_scale(c, nn_bce_with_logits(c, detect_logit(c, p, h), mask), p->sp.det_weight, 0));
}

int md_post_sample(nn_ctx *c, const md_post *p, const float *x, int n, int S, gn_rng *rng, float *out) {
    const md_post_spec *q = &p->sp;
    int ge = c->grad_enabled, rows = S >= 4096 ? 1 : 4096 / S, rc = GN_OK; // rows x S samples per pass
    c->grad_enabled = 0;
    for (int o = 0; o < n && !rc; o += rows) {
        int b = n - o < rows ? n - o : rows, m = b * S;
        nn_ctx_reset(c);
        nn_tensor *X = nn_tensor_new(c, NN_SHAPE(m, q->in_dim)), *U = nn_tensor_new(c, NN_SHAPE(m, q->dim));
        if (!X || !U) {
            rc = GN_ENOMEM;
            break;
        }
        for (int i = 0; i < b; i++)
            for (int s = 0; s < S; s++)
                memcpy(X->data + ((size_t)i * S + s) * q->in_dim, x + (size_t)(o + i) * q->in_dim,
                       sizeof(float) * q->in_dim);
        for (size_t k = 0; k < U->n; k++) U->data[k] = (float)gn_rng_normal(rng);
        nn_tensor *h = md_post_context(c, p, X), *r = md_flow_inverse(c, &p->flow, U, h, NULL);
        nn_tensor *y = nn_add(c, r, md_post_mean(c, p, h));
        if (y && q->chain) { // then y_c given each y_core draw
            nn_tensor *Uc = nn_tensor_new(c, NN_SHAPE(m, 1));
            if (Uc)
                for (int k = 0; k < m; k++) Uc->data[k] = (float)gn_rng_normal(rng);
            nn_tensor *yc =
                Uc ? md_flow_inverse(c, &p->chainf, Uc, nn_concat(c, 2, (nn_tensor *[]){h, y}, 1), NULL)
                   : NULL;
            y = yc ? nn_concat(c, 2, (nn_tensor *[]){y, yc}, 1) : NULL;
        }
        if (!y) {
            rc = GN_ENOMEM;
            break;
        }
        int W = q->dim + q->chain;
        memcpy(out + (size_t)o * S * W, y->data, sizeof(float) * (size_t)m * W);
    }
    c->grad_enabled = ge;
    return rc;
}
