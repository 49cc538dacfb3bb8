// The op set: every function computes its forward value now and records the
// matching backward on the tape (when an input requires grad). Inputs may be
// NULL (an earlier op failed): the op then returns NULL without a new message.
#ifndef NN_OPS_H
#define NN_OPS_H

#include "tensor.h"

// ---- elementwise unary (ops_elem.c) ----
nn_tensor *nn_relu(nn_ctx *c, nn_tensor *x);
nn_tensor *nn_leaky_relu(nn_ctx *c, nn_tensor *x, float slope);
nn_tensor *nn_tanh(nn_ctx *c, nn_tensor *x);
nn_tensor *nn_sigmoid(nn_ctx *c, nn_tensor *x);
nn_tensor *nn_softplus(nn_ctx *c, nn_tensor *x);      // log(1 + e^x), overflow-safe
nn_tensor *nn_elu(nn_ctx *c, nn_tensor *x, float alpha);
nn_tensor *nn_silu(nn_ctx *c, nn_tensor *x);          // x sigmoid(x)
nn_tensor *nn_gelu(nn_ctx *c, nn_tensor *x);          // x Phi(x), the exact (erf) form, PyTorch's default
nn_tensor *nn_exp(nn_ctx *c, nn_tensor *x);
nn_tensor *nn_log(nn_ctx *c, nn_tensor *x);           // error on x <= 0
nn_tensor *nn_sqrt(nn_ctx *c, nn_tensor *x);          // error on x < 0
nn_tensor *nn_abs(nn_ctx *c, nn_tensor *x);           // d|x|/dx = 0 at 0 (as PyTorch)
nn_tensor *nn_scale(nn_ctx *c, nn_tensor *x, float a, float b); // a*x + b
nn_tensor *nn_stop_gradient(nn_ctx *c, nn_tensor *x); // same values, no gradient flows back

// ---- binary with numpy broadcasting (ops_elem.c) ----
nn_tensor *nn_add(nn_ctx *c, nn_tensor *a, nn_tensor *b);
nn_tensor *nn_sub(nn_ctx *c, nn_tensor *a, nn_tensor *b);
nn_tensor *nn_mul(nn_ctx *c, nn_tensor *a, nn_tensor *b);
nn_tensor *nn_div(nn_ctx *c, nn_tensor *a, nn_tensor *b);

// ---- shape and reduction (ops_shape.c) ----
// Sum/mean over the axes whose bits are set in axis_mask (bit i = axis i;
// NN_ALL_AXES for all). keepdim keeps reduced axes as size 1.
#define NN_ALL_AXES 0x3f
nn_tensor *nn_sum(nn_ctx *c, nn_tensor *x, unsigned axis_mask, int keepdim);
nn_tensor *nn_mean(nn_ctx *c, nn_tensor *x, unsigned axis_mask, int keepdim);
nn_tensor *nn_reshape(nn_ctx *c, nn_tensor *x, int ndim, const int *shape); // one entry may be -1
nn_tensor *nn_concat(nn_ctx *c, int n, nn_tensor *const *xs, int axis);
// The same with the output pooled (nn_tensor_pooled): for the caller to drop once its readers have run;
// backward copies it again from the inputs.
nn_tensor *nn_concat_pooled(nn_ctx *c, int n, nn_tensor *const *xs, int axis);
nn_tensor *nn_slice(nn_ctx *c, nn_tensor *x, int axis, int start, int end); // [start, end)
// Split along axis into n parts of the given sizes; fills out[0..n-1].
int nn_split(nn_ctx *c, nn_tensor *x, int axis, int n, const int *sizes, nn_tensor **out);
nn_tensor *nn_transpose(nn_ctx *c, nn_tensor *x); // swap the last two axes
nn_tensor *nn_log_softmax(nn_ctx *c, nn_tensor *x, int axis);
nn_tensor *nn_softmax(nn_ctx *c, nn_tensor *x, int axis);

// ---- dense (ops_linear.c) ----
nn_tensor *nn_matmul(nn_ctx *c, nn_tensor *a, nn_tensor *b);            // (M,K) x (K,N)
nn_tensor *nn_linear(nn_ctx *c, nn_tensor *x, nn_tensor *w,
                     nn_tensor *b); // x (..., in), w (out, in), b (out) or NULL

// ---- convolution (ops_conv.c) ----
// Padding per side: top, bottom, left, right. Weights are PyTorch layout:
// conv (O, C, kh, kw); transposed conv (C_in, C_out, kh, kw).
typedef struct nn_pad2d {
    int top, bottom, left, right;
} nn_pad2d;
static inline nn_pad2d nn_pad_sym(int p) { return (nn_pad2d){p, p, p, p}; }
// TensorFlow 'SAME' padding for one axis: out = ceil(in/stride), the odd pad
// cell goes after (bottom/right).
void nn_same_pad(int in, int k, int stride, int *before, int *after);
nn_pad2d nn_pad_same(int h, int w, int kh, int kw, int sh, int sw);

nn_tensor *nn_conv2d(nn_ctx *c, nn_tensor *x, nn_tensor *w, nn_tensor *b, int sh, int sw, nn_pad2d pad);
// Inference: conv2d(x, w) * scale[o] + shift[o] (per output channel; NULL: 1, 0), + res (the output's
// shape; may be NULL), then ReLU when relu (1; | NN_ACT_POOLED: the output pooled, nn_tensor_pooled) —
// applied to each part of the output while it is in cache.
// No tape: an error if a gradient would need to pass (nn/layers.h nn_conv_bn_act: batch norm this way).
nn_tensor *nn_conv2d_fused(nn_ctx *c, nn_tensor *x, nn_tensor *w, const float *scale, const float *shift,
                           int sh, int sw, nn_pad2d pad, nn_tensor *res, int relu);
// act(conv2d(x, w) + b) in the conv's output pass, with a tape: act 1 ReLU, 2 leaky ReLU of slope > 0
// (0 none). The values and gradients of nn_relu / nn_leaky_relu after nn_conv2d, without keeping the
// conv's output beside the activation's.
nn_tensor *nn_conv2d_act(nn_ctx *c, nn_tensor *x, nn_tensor *w, nn_tensor *b, int sh, int sw, nn_pad2d pad,
                         int act, float slope);
// Output size (H-1)*s - pad_before - pad_after + k + out_pad, per axis.
nn_tensor *nn_conv_transpose2d(nn_ctx *c, nn_tensor *x, nn_tensor *w, nn_tensor *b, int sh, int sw,
                               nn_pad2d pad, int out_pad_h, int out_pad_w);
// 1-D: x (N, C, L), w (O, C, k) / (C_in, C_out, k).
nn_tensor *nn_conv1d(nn_ctx *c, nn_tensor *x, nn_tensor *w, nn_tensor *b, int stride, int pad_l, int pad_r);
nn_tensor *nn_conv_transpose1d(nn_ctx *c, nn_tensor *x, nn_tensor *w, nn_tensor *b, int stride, int pad,
                               int out_pad);

// ---- pooling and resizing (ops_pool.c) ----
nn_tensor *nn_maxpool2d(nn_ctx *c, nn_tensor *x, int kh, int kw, int sh, int sw, nn_pad2d pad);
// count_pad = 1: divide by kh*kw (PyTorch default); 0: by the number of
// non-padded cells in the window (TensorFlow).
nn_tensor *nn_avgpool2d(nn_ctx *c, nn_tensor *x, int kh, int kw, int sh, int sw, nn_pad2d pad, int count_pad);
nn_tensor *nn_global_avgpool(nn_ctx *c, nn_tensor *x); // (N,C,H,W) -> (N,C)
// Bilinear resize with TF1 resize_images semantics (align_corners=False, no
// half-pixel centres): src = dst * in/out, neighbours clamped at the edge.
nn_tensor *nn_resize_bilinear(nn_ctx *c, nn_tensor *x, int out_h, int out_w);
nn_tensor *nn_upsample2x(nn_ctx *c, nn_tensor *x);

// ---- normalisation and regularisation (ops_norm.c) ----
// Batch norm over axis 1 of (N, C, ...). Training (ctx->training): batch
// statistics, and the running statistics are updated as PyTorch does
// (biased variance to normalise, unbiased into running_var, momentum).
// Evaluation: running statistics. gamma/beta may be NULL (no affine).
nn_tensor *nn_batchnorm(nn_ctx *c, nn_tensor *x, nn_tensor *gamma, nn_tensor *beta, nn_tensor *running_mean,
                        nn_tensor *running_var, float momentum, float eps);
// relu(batchnorm(x) + res) in one op (res may be NULL, relu 0 or 1): the same
// values as the separate ops with fewer stored tensors (ops_norm.c). relu 2: ReLU with the output
// transient when it is recorded without a residual — only the next op may read it (a conv), and
// backward recomputes it from x (nn_tensor_transient): one tensor fewer kept per such unit.
// relu | NN_ACT_POOLED (0, 1): the output in the context's pool, for the caller to drop once its readers
// have run; backward recomputes it from x and res (nn_tensor_pooled).
#define NN_ACT_POOLED 4
// relu 2 | NN_ACT_DEFER: the transient output is not computed at all (nn_tensor_deferred): its one reader
// must be nn_conv2d, which reads relu(batchnorm(x)) straight from x in its Winograd input transform (no
// write of the output, no recompute in backward; backward's ReLU mask from x), or computes it first where
// its path cannot. Without a tape or with a residual: as relu 2.
#define NN_ACT_DEFER 8
// | NN_ACT_WINO (nn_conv2d_fused, no tape): the output's one reader is a 3x3 stride-1 conv of as many output
// channels (a ResNet block's second conv), and where both convs' Winograd transforms run on image vectors
// with tiles that divide the output, the output is kept in the reader's input layout (nn_tensor.wino_il)
// instead of its planes: no copy out of the first's transforms, none into the second's.
#define NN_ACT_WINO 16
// A deferred batch norm output y = relu((x - mean[c]) * inv[c] * gamma[c] + beta[c]) of x = src, channel c
// on axis 1 (gamma, beta NULL: 1, 0), filled from y's maker; GN_EINVAL if y is not a deferred output.
typedef struct nn_bn_map {
    const float *src, *mean, *inv, *gamma, *beta;
} nn_bn_map;
int nn_bn_deferred_map(const nn_tensor *y, nn_bn_map *m);
// Channel c's mean, inv, gamma and beta into q[0..3]
static inline void nn_bn_map_ch(const nn_bn_map *m, int c, float *q) {
    q[0] = m->mean[c], q[1] = m->inv[c];
    q[2] = m->gamma ? m->gamma[c] : 1.0f, q[3] = m->beta ? m->beta[c] : 0.0f;
}
nn_tensor *nn_batchnorm_act(nn_ctx *c, nn_tensor *x, nn_tensor *gamma, nn_tensor *beta,
                            nn_tensor *running_mean, nn_tensor *running_var, float momentum, float eps,
                            nn_tensor *res, int relu);
// Layer norm over the last axis (gamma, beta: that axis' size, or NULL) and group norm of (N, C, ...)
// over C/groups channels and every position (gamma, beta: (C) or NULL); biased variance (ops_groupnorm.c).
nn_tensor *nn_layernorm(nn_ctx *c, nn_tensor *x, nn_tensor *gamma, nn_tensor *beta, float eps);
nn_tensor *nn_groupnorm(nn_ctx *c, nn_tensor *x, int groups, nn_tensor *gamma, nn_tensor *beta, float eps);
// Inverted dropout from ctx->dropout_rng; identity when not training or p = 0.
nn_tensor *nn_dropout(nn_ctx *c, nn_tensor *x, float p);

// ---- losses (loss.c): scalar outputs ----
nn_tensor *nn_mse_loss(nn_ctx *c, nn_tensor *pred, nn_tensor *target); // mean over elements
nn_tensor *nn_l1_loss(nn_ctx *c, nn_tensor *pred, nn_tensor *target);
// logits (N, K), labels in [0, K): mean over N of -log softmax[label].
nn_tensor *nn_cross_entropy(nn_ctx *c, nn_tensor *logits, const int32_t *labels);
// Soft targets (N, K) are treated as constants (stop-gradient): mean over N of
// -sum_k q_k log softmax_k.
nn_tensor *nn_cross_entropy_soft(nn_ctx *c, nn_tensor *logits, nn_tensor *target_probs);
nn_tensor *nn_bce_with_logits(nn_ctx *c, nn_tensor *logits, nn_tensor *targets); // mean
// Gaussian NLL with log-variance: mean of 0.5*(logvar + (y-mu)^2 e^-logvar)
// (+ 0.5 log 2pi when full).
nn_tensor *nn_gaussian_nll(nn_ctx *c, nn_tensor *mu, nn_tensor *logvar, nn_tensor *y, int full);
// KL(N(mu, e^logvar) || N(0,1)) summed over the last axis, mean over the rest.
nn_tensor *nn_kl_normal(nn_ctx *c, nn_tensor *mu, nn_tensor *logvar);

// SupCon (Khosla et al. 2020; spec/stats.md §E.1): f (views*B, D) view-major
// (row v*B + i = view v of sample i; normalise first if wanted), labels (B)
// or NULL (SimCLR: positives are the other views of the same sample).
nn_tensor *nn_supcon_loss(nn_ctx *c, nn_tensor *f, int views, const int32_t *labels, float tau,
                          float base_tau);
// Rank-N-Contrast (Zha et al. 2023; §E.2): f (views*B, D) view-major, labels
// (B, dy) constants; L2 feature distance, L1 label distance.
nn_tensor *nn_rnc_loss(nn_ctx *c, nn_tensor *f, int views, const float *labels, int dy, float tau);

#endif
