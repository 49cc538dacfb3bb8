// Batch normalisation and dropout.
#include <math.h>
#include <string.h>

#include "ops.h"

// Batch norm, optionally fused with a residual add and a ReLU:
//   y = act(gamma * (x - mean) * invstd + beta [+ res]).
// The fused form never materialises the normalised tensor or the sum: its
// backward recovers the ReLU mask from y (y > 0 exactly where the pre-ReLU
// value was positive) and x-hat from x and the saved statistics, so a
// conv-BN-ReLU unit keeps two tensors (conv output, y) instead of three or four.
// The arithmetic is that of the separate ops, value for value.

// upstream gradient of the pre-activation value (the ReLU mask applied)
static inline float bn_gz(const float *gr, const float *yr, size_t p, int relu) {
    return relu ? (yr[p] > 0 ? gr[p] : 0.0f) : gr[p];
}

static void bn_bw(nn_node *nd, nn_ctx *c) {
    (void)c;
    nn_tensor *x = nd->in[0], *y = nd->out;
    int k = 1;
    nn_tensor *gamma = nd->ia[1] ? nd->in[k++] : NULL, *beta = nd->ia[2] ? nd->in[k++] : NULL;
    nn_tensor *res = nd->ia[3] ? nd->in[k++] : NULL;
    int N = x->shape[0], C = x->shape[1], training = nd->ia[0], relu = nd->ia[4];
    size_t S = x->n / ((size_t)N * C);
    double M = (double)N * (double)S;
    const float *stat = nd->saved; // mean[C], invstd[C]
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < C; ch++) {
        float mean = stat[ch], inv = stat[C + ch], g = gamma ? gamma->data[ch] : 1.0f;
        double sg = 0, sgx = 0; // sum(gz), sum(gz * xhat)
        for (int n = 0; n < N; n++) {
            size_t off = ((size_t)n * C + ch) * S;
            const float *xr = x->data + off, *gr = y->grad + off, *yr = y->data + off;
            float *gres = res && res->grad ? res->grad + off : NULL;
            for (size_t p = 0; p < S; p++) {
                float gz = bn_gz(gr, yr, p, relu);
                sg += gz;
                sgx += (double)gz * (double)((xr[p] - mean) * inv);
                if (gres) gres[p] += gz;
            }
        }
        if (gamma && gamma->grad) gamma->grad[ch] += (float)sgx;
        if (beta && beta->grad) beta->grad[ch] += (float)sg;
        if (!x->grad) continue;
        float a = (float)(sg / M), b = (float)(sgx / M);
        for (int n = 0; n < N; n++) {
            size_t off = ((size_t)n * C + ch) * S;
            const float *xr = x->data + off, *gr = y->grad + off, *yr = y->data + off;
            float *gx = x->grad + off;
            if (training) {
                for (size_t p = 0; p < S; p++) {
                    float xh = (xr[p] - mean) * inv;
                    gx[p] += g * inv * (bn_gz(gr, yr, p, relu) - a - xh * b);
                }
            } else {
                for (size_t p = 0; p < S; p++) gx[p] += g * inv * bn_gz(gr, yr, p, relu);
            }
        }
    }
}

static nn_tensor *bn_impl(nn_ctx *c, nn_tensor *x, nn_tensor *gamma, nn_tensor *beta, nn_tensor *rmean,
                          nn_tensor *rvar, float momentum, float eps, nn_tensor *res, int relu) {
    if (!x || !rmean || !rvar) return NULL;
    char s[96], s2[96];
    if (x->ndim < 2) {
        gn_err(GN_EINVAL, "batchnorm: input %s has no channel axis", nn_shape_str(x, s, sizeof s));
        return NULL;
    }
    int N = x->shape[0], C = x->shape[1];
    if (rmean->n != (size_t)C || rvar->n != (size_t)C || (gamma && gamma->n != (size_t)C) ||
        (beta && beta->n != (size_t)C)) {
        gn_err(GN_EINVAL, "batchnorm: input %s has %d channels, statistics/affine do not", nn_shape_str(x, s, sizeof s), C);
        return NULL;
    }
    if (res && !nn_same_shape(x, res)) {
        gn_err(GN_EINVAL, "batchnorm: residual %s does not match the input %s", nn_shape_str(res, s2, sizeof s2),
               nn_shape_str(x, s, sizeof s));
        return NULL;
    }
    size_t S = x->n / ((size_t)N * C);
    double M = (double)N * (double)S;
    int training = c->training;
    if (training && M < 2) {
        gn_err(GN_EINVAL, "batchnorm: training needs more than one value per channel (input %s)",
               nn_shape_str(x, s, sizeof s));
        return NULL;
    }
    nn_tensor *y = nn_tensor_new(c, x->ndim, x->shape);
    float *stat = nn_arena_alloc(&c->arena, sizeof(float) * 2 * (size_t)C);
    if (!y || !stat) return NULL;
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < C; ch++) {
        float mean, var;
        if (training) {
            double sum = 0, sq = 0;
            for (int n = 0; n < N; n++) {
                const float *xr = x->data + ((size_t)n * C + ch) * S;
                for (size_t p = 0; p < S; p++) sum += xr[p];
            }
            double mu = sum / M;
            for (int n = 0; n < N; n++) {
                const float *xr = x->data + ((size_t)n * C + ch) * S;
                for (size_t p = 0; p < S; p++) sq += (xr[p] - mu) * (xr[p] - mu);
            }
            mean = (float)mu;
            var = (float)(sq / M);
            rmean->data[ch] = (1 - momentum) * rmean->data[ch] + momentum * mean;
            rvar->data[ch] = (1 - momentum) * rvar->data[ch] + momentum * (float)(sq / (M - 1));
        } else {
            mean = rmean->data[ch];
            var = rvar->data[ch];
        }
        float inv = 1.0f / sqrtf(var + eps);
        stat[ch] = mean;
        stat[C + ch] = inv;
        float g = gamma ? gamma->data[ch] : 1.0f, b = beta ? beta->data[ch] : 0.0f;
        for (int n = 0; n < N; n++) {
            size_t off = ((size_t)n * C + ch) * S;
            const float *xr = x->data + off, *rr = res ? res->data + off : NULL;
            float *yr = y->data + off;
            for (size_t p = 0; p < S; p++) {
                float v = (xr[p] - mean) * inv * g + b;
                if (rr) v += rr[p];
                yr[p] = relu ? (v > 0 ? v : 0.0f) : v;
            }
        }
    }
    nn_tensor *in[4];
    int nin = 0;
    in[nin++] = x;
    if (gamma) in[nin++] = gamma;
    if (beta) in[nin++] = beta;
    if (res) in[nin++] = res;
    nn_node *nd = nn_record(c, y, bn_bw, nin, in);
    if (nd) {
        nd->ia[0] = training;
        nd->ia[1] = gamma != NULL;
        nd->ia[2] = beta != NULL;
        nd->ia[3] = res != NULL;
        nd->ia[4] = relu;
        nd->saved = stat;
    }
    return y;
}

nn_tensor *nn_batchnorm(nn_ctx *c, nn_tensor *x, nn_tensor *gamma, nn_tensor *beta, nn_tensor *rmean, nn_tensor *rvar,
                        float momentum, float eps) {
    return bn_impl(c, x, gamma, beta, rmean, rvar, momentum, eps, NULL, 0);
}

nn_tensor *nn_batchnorm_act(nn_ctx *c, nn_tensor *x, nn_tensor *gamma, nn_tensor *beta, nn_tensor *rmean,
                            nn_tensor *rvar, float momentum, float eps, nn_tensor *res, int relu) {
    return bn_impl(c, x, gamma, beta, rmean, rvar, momentum, eps, res, relu);
}

static void dropout_bw(nn_node *nd, nn_ctx *c) {
    (void)c;
    const float *mask = nd->saved;
    for (size_t i = 0; i < nd->out->n; i++) nd->in[0]->grad[i] += nd->out->grad[i] * mask[i];
}

nn_tensor *nn_dropout(nn_ctx *c, nn_tensor *x, float p) {
    if (!x) return NULL;
    if (!(p >= 0 && p < 1)) {
        gn_err(GN_EINVAL, "dropout: probability %g outside [0, 1)", (double)p);
        return NULL;
    }
    if (!c->training || p == 0) return x;
    nn_tensor *y = nn_tensor_new(c, x->ndim, x->shape);
    float *mask = nn_arena_alloc(&c->arena, sizeof(float) * x->n);
    if (!y || !mask) return NULL;
    float keep = 1.0f / (1.0f - p);
    for (size_t i = 0; i < x->n; i++) { // sequential: the stream's order is part of reproducibility
        mask[i] = gn_rng_uniform(&c->dropout_rng) < p ? 0.0f : keep;
        y->data[i] = x->data[i] * mask[i];
    }
    nn_node *nd = nn_record(c, y, dropout_bw, 1, &x);
    if (nd) nd->saved = mask;
    return y;
}
