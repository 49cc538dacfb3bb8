#include "posterior.h"

#include <stdio.h>
#include <string.h>

int md_post_make(md_post *p, nn_store *s) {
    md_post_spec *q = &p->sp;
    if (q->in_dim < 1 || q->dim < 1 || q->ctx < 1 || q->ctx_depth < 1 || q->ctx_depth > MD_POST_MAXDEPTH || q->mean_hidden < 1 ||
        q->mean_weight < 0)
        return gn_err(GN_EINVAL, "posterior: bad sizes (%d features, %d targets, context %d x %d, mean head %d)", q->in_dim, q->dim,
                      q->ctx_depth, q->ctx, q->mean_hidden);
    char nm[64];
    int rc = 0;
    for (int k = 0; k < q->ctx_depth && !rc; k++) {
        snprintf(nm, sizeof nm, "post.ctx.fc%d", k + 1);
        rc = nn_dense_make(&p->cx[k], s, nm, k ? q->ctx : q->in_dim, q->ctx, 1, nn_init_he(), nn_init_const(0));
    }
    rc = rc ? rc : nn_dense_make(&p->mh[0], s, "post.mean.fc1", q->ctx, q->mean_hidden, 1, nn_init_he(), nn_init_const(0));
    rc = rc ? rc : nn_dense_make(&p->mh[1], s, "post.mean.fc2", q->mean_hidden, q->dim, 1, nn_init_glorot(), nn_init_const(0));
    q->flow.dim = q->dim, q->flow.ctx = q->ctx;
    p->flow.sp = q->flow;
    return rc ? rc : md_flow_make(&p->flow, s, "post.flow");
}

nn_tensor *md_post_context(nn_ctx *c, const md_post *p, nn_tensor *x) {
    for (int k = 0; k < p->sp.ctx_depth; k++) x = nn_relu(c, nn_dense_fwd(c, &p->cx[k], x));
    return x;
}

nn_tensor *md_post_mean(nn_ctx *c, const md_post *p, nn_tensor *h) {
    return nn_dense_fwd(c, &p->mh[1], nn_relu(c, nn_dense_fwd(c, &p->mh[0], h)));
}

nn_tensor *md_post_log_prob(nn_ctx *c, const md_post *p, nn_tensor *x, nn_tensor *y) {
    nn_tensor *h = md_post_context(c, p, x);
    return md_flow_log_prob(c, &p->flow, nn_sub(c, y, md_post_mean(c, p, h)), h);
}

nn_tensor *md_post_loss(nn_ctx *c, const md_post *p, nn_tensor *x, nn_tensor *y) {
    nn_tensor *h = md_post_context(c, p, x), *m = md_post_mean(c, p, h);
    nn_tensor *nll = md_flow_nll(c, &p->flow, nn_sub(c, y, m), h);
    return p->sp.mean_weight > 0 ? nn_add(c, nll, nn_scale(c, nn_mse_loss(c, m, y), p->sp.mean_weight, 0)) : nll;
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
            for (int s = 0; s < S; s++) memcpy(X->data + ((size_t)i * S + s) * q->in_dim, x + (size_t)(o + i) * q->in_dim, sizeof(float) * q->in_dim);
        for (size_t k = 0; k < U->n; k++) U->data[k] = (float)gn_rng_normal(rng);
        nn_tensor *h = md_post_context(c, p, X), *r = md_flow_inverse(c, &p->flow, U, h, NULL);
        nn_tensor *y = nn_add(c, r, md_post_mean(c, p, h));
        if (!y) {
            rc = GN_ENOMEM;
            break;
        }
        memcpy(out + (size_t)o * S * q->dim, y->data, sizeof(float) * (size_t)m * q->dim);
    }
    c->grad_enabled = ge;
    return rc;
}
