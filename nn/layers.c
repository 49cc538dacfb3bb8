#include "layers.h"

#include <math.h>
#include <stdio.h>

static nn_tensor *param(nn_store *s, const char *prefix, const char *what, int ndim, const int *shape,
                        nn_init init, int buffer) {
    char name[256];
    snprintf(name, sizeof name, "%s.%s", prefix, what);
    return buffer ? nn_store_buffer(s, name, ndim, shape, init) : nn_store_param(s, name, ndim, shape, init);
}

int nn_dense_make(nn_dense *l, nn_store *s, const char *prefix, int in, int out, int bias, nn_init wi,
                  nn_init bi) {
    l->w = param(s, prefix, "weight", NN_SHAPE(out, in), wi, 0);
    l->b = bias ? param(s, prefix, "bias", NN_SHAPE(out), bi, 0) : NULL;
    return l->w && (!bias || l->b) ? GN_OK : GN_EINVAL;
}

nn_tensor *nn_dense_fwd(nn_ctx *c, const nn_dense *l, nn_tensor *x) { return nn_linear(c, x, l->w, l->b); }

int nn_conv_make(nn_conv *l, nn_store *s, const char *prefix, int cin, int cout, int k, int stride, int pad,
                 int bias, nn_init wi, nn_init bi) {
    l->w = param(s, prefix, "weight", NN_SHAPE(cout, cin, k, k), wi, 0);
    l->b = bias ? param(s, prefix, "bias", NN_SHAPE(cout), bi, 0) : NULL;
    l->sh = l->sw = stride;
    l->same = pad < 0;
    l->pad = nn_pad_sym(pad < 0 ? 0 : pad);
    return l->w && (!bias || l->b) ? GN_OK : GN_EINVAL;
}

static nn_pad2d conv_pad(const nn_conv *l, const nn_tensor *x) {
    if (l->same && x->ndim == 4)
        return nn_pad_same(x->shape[2], x->shape[3], l->w->shape[2], l->w->shape[3], l->sh, l->sw);
    return l->pad;
}

nn_tensor *nn_conv_fwd(nn_ctx *c, const nn_conv *l, nn_tensor *x) {
    if (!x) return NULL;
    return nn_conv2d(c, x, l->w, l->b, l->sh, l->sw, conv_pad(l, x));
}

nn_tensor *nn_conv_fwd_act(nn_ctx *c, const nn_conv *l, nn_tensor *x, int act, float slope) {
    if (!x) return NULL;
    return nn_conv2d_act(c, x, l->w, l->b, l->sh, l->sw, conv_pad(l, x), act, slope);
}

int nn_bn_make(nn_bn *l, nn_store *s, const char *prefix, int ch) {
    l->gamma = param(s, prefix, "weight", NN_SHAPE(ch), nn_init_const(1), 0);
    l->beta = param(s, prefix, "bias", NN_SHAPE(ch), nn_init_const(0), 0);
    l->mean = param(s, prefix, "running_mean", NN_SHAPE(ch), nn_init_const(0), 1);
    l->var = param(s, prefix, "running_var", NN_SHAPE(ch), nn_init_const(1), 1);
    l->momentum = 0.1f;
    l->eps = 1e-5f;
    return l->gamma && l->beta && l->mean && l->var ? GN_OK : GN_EINVAL;
}

nn_tensor *nn_bn_fwd(nn_ctx *c, const nn_bn *l, nn_tensor *x) {
    return nn_batchnorm(c, x, l->gamma, l->beta, l->mean, l->var, l->momentum, l->eps);
}

nn_tensor *nn_bn_relu(nn_ctx *c, const nn_bn *l, nn_tensor *x, nn_tensor *res) {
    return nn_batchnorm_act(c, x, l->gamma, l->beta, l->mean, l->var, l->momentum, l->eps, res, 1);
}

nn_tensor *nn_conv_bn_act(nn_ctx *c, const nn_conv *l, const nn_bn *bn, nn_tensor *x, nn_tensor *res,
                          int relu) {
    if (!x) return NULL;
    if (c->training || c->grad_enabled)
        return nn_batchnorm_act(c, nn_conv_fwd(c, l, x), bn->gamma, bn->beta, bn->mean, bn->var, bn->momentum,
                                bn->eps, res, relu & ~NN_ACT_WINO);
    int O = l->w->shape[0];
    float *st = nn_arena_alloc(&c->arena, sizeof(float) * 2 * (size_t)O);
    if (!st) return gn_err(GN_ENOMEM, "conv + batch norm: out of memory"), NULL;
    for (int o = 0; o < O; o++) { // y = conv(x) * s + t: batch norm of conv(x) + b by its running statistics
        float s = bn->gamma->data[o] / sqrtf(bn->var->data[o] + bn->eps);
        st[o] = s, st[O + o] = bn->beta->data[o] + ((l->b ? l->b->data[o] : 0.0f) - bn->mean->data[o]) * s;
    }
    // a deferred output (read by the next conv only) pooled too, back in the pool once its reader has run:
    // the next such output is written into memory still in the cache, not into a new stretch of the arena
    // (the multi-branch net's inference, AMD Zen 5: +2.6 % one thread, +4.5 % two, alternated pairs)
    int pool = relu & (NN_ACT_POOLED | NN_ACT_DEFER) ? NN_ACT_POOLED : 0;
    return nn_conv2d_fused(c, x, l->w, st, st + O, l->sh, l->sw, conv_pad(l, x), res,
                           ((relu & 3) != 0) | pool | (relu & NN_ACT_WINO));
}
