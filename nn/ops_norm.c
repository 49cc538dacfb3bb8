// Batch normalisation and dropout.
#include <math.h>
#include <string.h>

#include "ops.h"

static void bn_bw(nn_node *nd, nn_ctx *c) {
    (void)c;
    nn_tensor *x = nd->in[0], *y = nd->out;
    nn_tensor *gamma = nd->ia[1] ? nd->in[1] : NULL, *beta = nd->ia[2] ? nd->in[1 + nd->ia[1]] : NULL;
    int N = x->shape[0], C = x->shape[1], training = nd->ia[0];
    size_t S = x->n / ((size_t)N * C);
    double M = (double)N * (double)S;
    const float *stat = nd->saved; // mean[C], invstd[C]
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < C; ch++) {
        float mean = stat[ch], inv = stat[C + ch], g = gamma ? gamma->data[ch] : 1.0f;
        double sg = 0, sgx = 0; // sum(gy), sum(gy * xhat)
        for (int n = 0; n < N; n++) {
            const float *xr = x->data + ((size_t)n * C + ch) * S, *gr = y->grad + ((size_t)n * C + ch) * S;
            for (size_t p = 0; p < S; p++) {
                sg += gr[p];
                sgx += (double)gr[p] * (double)((xr[p] - mean) * inv);
            }
        }
        if (gamma && gamma->grad) gamma->grad[ch] += (float)sgx;
        if (beta && beta->grad) beta->grad[ch] += (float)sg;
        if (!x->grad) continue;
        for (int n = 0; n < N; n++) {
            const float *xr = x->data + ((size_t)n * C + ch) * S, *gr = y->grad + ((size_t)n * C + ch) * S;
            float *gx = x->grad + ((size_t)n * C + ch) * S;
            if (training) {
                float a = (float)(sg / M), b = (float)(sgx / M);
                for (size_t p = 0; p < S; p++) {
                    float xh = (xr[p] - mean) * inv;
                    gx[p] += g * inv * (gr[p] - a - xh * b);
                }
            } else {
                for (size_t p = 0; p < S; p++) gx[p] += g * inv * gr[p];
            }
        }
    }
}

nn_tensor *nn_batchnorm(nn_ctx *c, nn_tensor *x, nn_tensor *gamma, nn_tensor *beta, nn_tensor *rmean, nn_tensor *rvar,
                        float momentum, float eps) {
    if (!x || !rmean || !rvar) return NULL;
    char s[96];
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
            const float *xr = x->data + ((size_t)n * C + ch) * S;
            float *yr = y->data + ((size_t)n * C + ch) * S;
            for (size_t p = 0; p < S; p++) yr[p] = (xr[p] - mean) * inv * g + b;
        }
    }
    nn_tensor *in[3];
    int nin = 0;
    in[nin++] = x;
    if (gamma) in[nin++] = gamma;
    if (beta) in[nin++] = beta;
    nn_node *nd = nn_record(c, y, bn_bw, nin, in);
    if (nd) {
        nd->ia[0] = training;
        nd->ia[1] = gamma != NULL;
        nd->ia[2] = beta != NULL;
        nd->saved = stat;
    }
    return y;
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
