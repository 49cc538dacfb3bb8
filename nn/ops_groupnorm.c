// Per-sample normalisation: layer norm (over the last axis) and group norm (over groups of channels
// and every spatial position), PyTorch's conventions: biased variance, eps inside the square root,
// an optional per-feature (layer norm) or per-channel (group norm) affine gamma, beta. Both are one
// kernel: the tensor is M rows of L contiguous values each normalised on its own, and the affine
// index of flat element i is (i / S) % C.
#include <math.h>

#include "ops.h"

typedef struct rnorm {
    long M, L, S, C; // rows, row length, affine stride and count
    int has_g, has_b;
} rnorm;

static void rnorm_bw(nn_node *nd, nn_ctx *ctx) {
    (void)ctx;
    const rnorm *R = nd->saved;
    const float *stat = (const float *)(R + 1); // mean[M], rstd[M]
    nn_tensor *x = nd->in[0], *y = nd->out;
    int k = 1;
    nn_tensor *g = R->has_g ? nd->in[k++] : NULL, *b = R->has_b ? nd->in[k++] : NULL;
    long M = R->M, L = R->L, S = R->S, C = R->C, outer = (long)x->n / (S * C);
    const float *xd = x->data, *gy = y->grad;
    if ((g && g->grad) || (b && b->grad)) {
#pragma omp parallel for schedule(static)
        for (long ch = 0; ch < C; ch++) { // every element of channel ch, in a fixed order
            double sg = 0, sb = 0;
            for (long o = 0; o < outer; o++)
                for (long s = 0; s < S; s++) {
                    long i = (o * C + ch) * S + s, r = i / L;
                    sg += (double)gy[i] * (xd[i] - stat[r]) * stat[M + r], sb += gy[i];
                }
            if (g && g->grad) g->grad[ch] += (float)sg;
            if (b && b->grad) b->grad[ch] += (float)sb;
        }
    }
    if (!x->grad) return;
#pragma omp parallel for schedule(static) if (M * L > 32768)
    for (long r = 0; r < M; r++) {
        const float *xr = xd + r * L, *gr = gy + r * L;
        float mean = stat[r], rs = stat[M + r];
        double a = 0, bb = 0; // mean(dxhat), mean(dxhat * xhat)
        for (long p = 0; p < L; p++) {
            float dh = gr[p] * (g ? g->data[((r * L + p) / S) % C] : 1.0f);
            a += dh, bb += (double)dh * (xr[p] - mean) * rs;
        }
        a /= (double)L, bb /= (double)L;
        float *gx = x->grad + r * L;
        for (long p = 0; p < L; p++) {
            float dh = gr[p] * (g ? g->data[((r * L + p) / S) % C] : 1.0f), xh = (xr[p] - mean) * rs;
            gx[p] += rs * (dh - (float)a - xh * (float)bb);
        }
    }
}

static nn_tensor *rnorm_fwd(nn_ctx *c, nn_tensor *x, rnorm R, nn_tensor *g, nn_tensor *b, float eps) {
    nn_tensor *y = nn_tensor_new(c, x->ndim, x->shape);
    rnorm *sv = nn_arena_alloc(&c->arena, sizeof(rnorm) + sizeof(float) * 2 * (size_t)R.M);
    if (!y || !sv) return NULL;
    *sv = R;
    float *stat = (float *)(sv + 1);
    long L = R.L, S = R.S, C = R.C;
#pragma omp parallel for schedule(static) if (R.M * L > 32768)
    for (long r = 0; r < R.M; r++) {
        const float *xr = x->data + r * L;
        double sum = 0, sq = 0;
        for (long p = 0; p < L; p++) sum += xr[p];
        float mean = (float)(sum / (double)L);
        for (long p = 0; p < L; p++) sq += (double)(xr[p] - mean) * (xr[p] - mean);
        float rs = 1.0f / sqrtf((float)(sq / (double)L) + eps);
        stat[r] = mean, stat[R.M + r] = rs;
        for (long p = 0; p < L; p++) {
            long ch = ((r * L + p) / S) % C;
            y->data[r * L + p] = (xr[p] - mean) * rs * (g ? g->data[ch] : 1.0f) + (b ? b->data[ch] : 0.0f);
        }
    }
    nn_tensor *in[3] = {x};
    int nin = 1;
    if (g) in[nin++] = g;
    if (b) in[nin++] = b;
    nn_node *nd = nn_record(c, y, rnorm_bw, nin, in);
    if (nd) nd->saved = sv;
    return y;
}

static int affine_ok(const char *op, const nn_tensor *x, const nn_tensor *g, const nn_tensor *b, long C) {
    char s[96];
    if ((g && (long)g->n != C) || (b && (long)b->n != C))
        return gn_err(GN_EINVAL, "%s: input %s needs gamma and beta of %ld values", op,
                      nn_shape_str(x, s, sizeof s), C);
    return GN_OK;
}

nn_tensor *nn_layernorm(nn_ctx *c, nn_tensor *x, nn_tensor *gamma, nn_tensor *beta, float eps) {
    if (!x) return NULL;
    long D = x->shape[x->ndim - 1];
    if (affine_ok("layernorm", x, gamma, beta, D)) return NULL;
    return rnorm_fwd(c, x, (rnorm){(long)x->n / D, D, 1, D, gamma != NULL, beta != NULL}, gamma, beta, eps);
}

nn_tensor *nn_groupnorm(nn_ctx *c, nn_tensor *x, int groups, nn_tensor *gamma, nn_tensor *beta, float eps) {
    if (!x) return NULL;
    char s[96];
    if (x->ndim < 2 || groups < 1 || x->shape[1] % groups) {
        gn_err(GN_EINVAL, "groupnorm: input %s: the channels do not split into %d groups",
               nn_shape_str(x, s, sizeof s), groups);
        return NULL;
    }
    long N = x->shape[0], C = x->shape[1], S = (long)x->n / (N * C);
    if (affine_ok("groupnorm", x, gamma, beta, C)) return NULL;
    rnorm R = {N * groups, (C / groups) * S, S, C, gamma != NULL, beta != NULL};
    return rnorm_fwd(c, x, R, gamma, beta, eps);
}
