#include "flow.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

int md_flow_keeps(const md_flow *f, int l, int j) { return f->sp.dim > 1 && (j + l) % 2 == 0; }

int md_flow_make(md_flow *f, nn_store *s, const char *prefix) {
    const md_flow_spec *p = &f->sp;
    if (p->dim < 1 || p->ctx < 0 || p->layers < 1 || p->layers > MD_FLOW_MAXLAYERS || p->depth < 0 ||
        p->depth > MD_FLOW_MAXDEPTH || (p->depth && p->hidden < 1) ||
        (p->scale == MD_FLOW_TANH && !(p->clamp > 0)))
        return gn_err(GN_EINVAL,
                      "flow: bad sizes (dim %d, context %d, %d layers, depth %d, hidden %d, clamp %g)",
                      p->dim, p->ctx, p->layers, p->depth, p->hidden, (double)p->clamp);
    int in = p->dim + p->ctx;
    for (int l = 0; l < p->layers; l++)
        for (int k = 0; k <= p->depth; k++) {
            char nm[160];
            snprintf(nm, sizeof nm, "%s.c%d.fc%d", prefix, l + 1, k + 1);
            int last = k == p->depth, fi = k ? p->hidden : in, fo = last ? 2 * p->dim : p->hidden;
            // the last layer starts at zero: every coupling is the identity at first
            if (nn_dense_make(&f->net[l][k], s, nm, fi, fo, 1, last ? nn_init_const(0) : nn_init_glorot(),
                              nn_init_const(0)))
                return GN_EINVAL;
        }
    return GN_OK;
}

// Constant (1, D) rows: the kept dimensions (b) and the transformed ones (1 - b).
static nn_tensor *mask(nn_ctx *c, const md_flow *f, int l, int keep) {
    nn_tensor *m = nn_tensor_new(c, NN_SHAPE(1, f->sp.dim));
    if (m)
        for (int j = 0; j < f->sp.dim; j++) m->data[j] = (float)(md_flow_keeps(f, l, j) == keep);
    return m;
}

// s and t of layer l from the kept part xa = b ⊙ x (both zero on kept dimensions).
static void coupling_st(nn_ctx *c, const md_flow *f, int l, nn_tensor *xa, nn_tensor *h, nn_tensor **s,
                        nn_tensor **t) {
    const md_flow_spec *p = &f->sp;
    nn_tensor *z = h ? nn_concat(c, 2, (nn_tensor *[]){xa, h}, 1) : xa;
    for (int k = 0; k < p->depth; k++) {
        z = nn_dense_fwd(c, &f->net[l][k], z);
        z = p->act == MD_FLOW_ACT_TANH ? nn_tanh(c, z) : nn_relu(c, z);
    }
    z = nn_dense_fwd(c, &f->net[l][p->depth], z);
    nn_tensor *sh = nn_slice(c, z, 1, 0, p->dim), *tr = mask(c, f, l, 0);
    if (p->scale == MD_FLOW_TANH) sh = nn_scale(c, nn_tanh(c, sh), p->clamp, 0);
    *s = nn_mul(c, sh, tr);
    *t = nn_mul(c, nn_slice(c, z, 1, p->dim, 2 * p->dim), tr);
}

static nn_tensor *acc(nn_ctx *c, nn_tensor *sum, nn_tensor *s, float sign) {
    nn_tensor *r = nn_scale(c, nn_sum(c, s, 1u << 1, 0), sign, 0);
    return sum ? nn_add(c, sum, r) : r;
}

nn_tensor *md_flow_forward(nn_ctx *c, const md_flow *f, nn_tensor *x, nn_tensor *h, nn_tensor **logdet) {
    nn_tensor *ld = NULL;
    for (int l = 0; l < f->sp.layers; l++) {
        nn_tensor *s, *t;
        coupling_st(c, f, l, nn_mul(c, x, mask(c, f, l, 1)), h, &s, &t);
        x = nn_add(c, nn_mul(c, x, nn_exp(c, s)), t); // kept dimensions: s = t = 0
        ld = acc(c, ld, s, 1);
    }
    if (logdet) *logdet = ld;
    return x;
}

nn_tensor *md_flow_inverse(nn_ctx *c, const md_flow *f, nn_tensor *u, nn_tensor *h, nn_tensor **logdet) {
    nn_tensor *ld = NULL;
    for (int l = f->sp.layers - 1; l >= 0; l--) {
        nn_tensor *s, *t;
        coupling_st(c, f, l, nn_mul(c, u, mask(c, f, l, 1)), h, &s,
                    &t); // the kept part is unchanged by the layer
        u = nn_mul(c, nn_sub(c, u, t), nn_exp(c, nn_scale(c, s, -1, 0)));
        ld = acc(c, ld, s, -1);
    }
    if (logdet) *logdet = ld;
    return u;
}

nn_tensor *md_flow_log_prob(nn_ctx *c, const md_flow *f, nn_tensor *x, nn_tensor *h) {
    nn_tensor *ld = NULL, *u = md_flow_forward(c, f, x, h, &ld);
    // log N(u; 0, I) = -0.5 |u|^2 - (D/2) ln 2π
    nn_tensor *lp =
        nn_scale(c, nn_sum(c, nn_mul(c, u, u), 1u << 1, 0), -0.5f, (float)(-0.5 * f->sp.dim * log(2 * M_PI)));
    return nn_add(c, lp, ld);
}

nn_tensor *md_flow_nll(nn_ctx *c, const md_flow *f, nn_tensor *x, nn_tensor *h) {
    return nn_scale(c, nn_mean(c, md_flow_log_prob(c, f, x, h), NN_ALL_AXES, 0), -1, 0);
}
