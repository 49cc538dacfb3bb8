// Layers: parameter bundles registered in a store under PyTorch-style names
// ("<prefix>.weight", ".bias", ".running_mean", ...) plus their forward.
#ifndef NN_LAYERS_H
#define NN_LAYERS_H

#include "ops.h"
#include "store.h"

typedef struct nn_dense {
    nn_tensor *w, *b; // (out, in), (out) or NULL
} nn_dense;

typedef struct nn_conv {
    nn_tensor *w, *b; // (O, C, kh, kw), (O) or NULL
    int sh, sw;
    nn_pad2d pad;
    int same;         // TF 'SAME' padding, computed from the input size
} nn_conv;

typedef struct nn_bn {
    nn_tensor *gamma, *beta, *mean, *var;
    float momentum, eps;
} nn_bn;

int nn_dense_make(nn_dense *l, nn_store *s, const char *prefix, int in, int out, int bias, nn_init w_init,
                  nn_init b_init);
nn_tensor *nn_dense_fwd(nn_ctx *c, const nn_dense *l, nn_tensor *x);

int nn_conv_make(nn_conv *l, nn_store *s, const char *prefix, int cin, int cout, int k, int stride, int pad,
                 int bias, nn_init w_init, nn_init b_init);
nn_tensor *nn_conv_fwd(nn_ctx *c, const nn_conv *l, nn_tensor *x);
// act(conv(x)) as nn_conv2d_act (act 1 ReLU, 2 leaky ReLU of slope)
nn_tensor *nn_conv_fwd_act(nn_ctx *c, const nn_conv *l, nn_tensor *x, int act, float slope);

// PyTorch BatchNorm defaults: momentum 0.1, eps 1e-5, gamma 1, beta 0, running (0, 1).
int nn_bn_make(nn_bn *l, nn_store *s, const char *prefix, int channels);
nn_tensor *nn_bn_fwd(nn_ctx *c, const nn_bn *l, nn_tensor *x);
// relu(bn(x) + res), res may be NULL: one fused op (see nn_batchnorm_act)
nn_tensor *nn_bn_relu(nn_ctx *c, const nn_bn *l, nn_tensor *x, nn_tensor *res);
// relu?(bn(conv(x)) + res) (res may be NULL; relu 0, 1 or 2, | NN_ACT_POOLED, as nn_batchnorm_act).
// Evaluated without a tape (ctx->training and grad_enabled 0): batch norm folded into the conv's output pass
// with the residual and ReLU — scale gamma / sqrt(var + eps) and shift beta + (b - mean) * scale per output
// channel (nn_conv2d_fused), the output pooled for NN_ACT_POOLED or NN_ACT_DEFER (the caller drops it
// once read); otherwise the conv, then nn_batchnorm_act.
nn_tensor *nn_conv_bn_act(nn_ctx *c, const nn_conv *l, const nn_bn *bn, nn_tensor *x, nn_tensor *res,
                          int relu);

#endif
