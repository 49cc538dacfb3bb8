// Batch normalisation and dropout.
#include <math.h>
#include <string.h>

#include "team.h"
#include "ops.h"
#include "simd.h"

// Batch norm, optionally fused with a residual add and a ReLU:
//   y = act(gamma * (x - mean) * invstd + beta [+ res]).
// The fused form never materialises the normalised tensor or the sum: its
// backward recovers the ReLU mask from y (y > 0 exactly where the pre-ReLU
// value was positive) and x-hat from x and the saved statistics, so a
// conv-BN-ReLU unit keeps two tensors (conv output, y) instead of three or four.
// The arithmetic is that of the separate ops, value for value.

// Row kernels over one (n, channel) plane of S values: sums in 8 float lanes,
// each row's lanes added in double.
NN_SIMD_CLONES static double row_sum(const float *x, size_t S) {
    v8 acc = v8_set1(0.0f);
    size_t p = 0;
    for (; p + 8 <= S; p += 8) acc += v8_load(x + p);
    double s = v8_hsum(acc);
    for (; p < S; p++) s += x[p];
    return s;
}

NN_SIMD_CLONES static double row_sqdev(const float *x, size_t S, float mu) {
    v8 acc = v8_set1(0.0f), m = v8_set1(mu);
    size_t p = 0;
    for (; p + 8 <= S; p += 8) {
        v8 d = v8_load(x + p) - m;
        acc += d * d;
    }
    double s = v8_hsum(acc);
    for (; p < S; p++) s += (double)(x[p] - mu) * (x[p] - mu);
    return s;
}

// y = act((x - mean) * inv * g + b [+ r])
NN_SIMD_CLONES static void row_norm(const float *x, const float *r, float *y, size_t S, float mean, float inv,
                                    float g, float b, int relu) {
    v8 vm = v8_set1(mean), vi = v8_set1(inv), vg = v8_set1(g), vb = v8_set1(b);
    size_t p = 0;
    for (; p + 8 <= S; p += 8) {
        v8 v = NN_BN_MAP(v8_load(x + p), vm, vi, vg, vb);
        if (r) v += v8_load(r + p);
        if (relu) v = v8_relu(v);
        v8_store(y + p, v);
    }
    for (; p < S; p++) {
        float v = NN_BN_MAP(x[p], mean, inv, g, b);
        if (r) v += r[p];
        y[p] = relu ? (v > 0 ? v : 0.0f) : v;
    }
}

// The ReLU's mask: y > 0, or for a deferred output (y NULL) its pre-activation from x (q: mean, inv, gamma,
// beta) > 0, the same test
#define BN_MASK8(y, x, p, q) ((y) ? v8_load((y) + (p)) : NN_BN_MAP8(v8_load((x) + (p)), (q))) > v8_set1(0.0f)
#define BN_MASK1(y, x, p, q) ((y) ? (y)[p] > 0 : NN_BN_MAP((x)[p], (q)[0], (q)[1], (q)[2], (q)[3]) > 0)

// gz = gy masked by the ReLU's (BN_MASK8); sums of gz and gz * xhat; gres += gz (q: mean, inv, gamma, beta)
NN_SIMD_CLONES static void row_bw_sums(const float *x, const float *gy, const float *y, float *gres, size_t S,
                                       const float *q, int relu, double *sg, double *sgx) {
    v8 vm = v8_set1(q[0]), vi = v8_set1(q[1]), a1 = v8_set1(0.0f), a2 = v8_set1(0.0f);
    size_t p = 0;
    for (; p + 8 <= S; p += 8) {
        v8 gz = v8_load(gy + p);
        if (relu) gz = v8_and(gz, BN_MASK8(y, x, p, q));
        a1 += gz;
        a2 += gz * ((v8_load(x + p) - vm) * vi);
        if (gres) v8_store(gres + p, v8_load(gres + p) + gz);
    }
    double s1 = v8_hsum(a1), s2 = v8_hsum(a2);
    for (; p < S; p++) {
        float gz = relu && !BN_MASK1(y, x, p, q) ? 0.0f : gy[p];
        s1 += gz;
        s2 += (double)(gz * ((x[p] - q[0]) * q[1]));
        if (gres) gres[p] += gz;
    }
    *sg += s1, *sgx += s2;
}

// gx += g * inv * (gz - a - xhat * b)   (training)   or   g * inv * gz   (evaluation: a = b = 0); set: gx =
// 0 + that, as onto a zeroed gradient (gx may be gy: each value is read before it is written); q: mean,
// inv, gamma, beta
NN_SIMD_CLONES static void row_bw_gx(const float *x, const float *gy, const float *y, float *gx, size_t S,
                                     const float *q, int relu, float a, float b, int set) {
    float mean = q[0], inv = q[1], g = q[2];
    v8 vm = v8_set1(mean), vi = v8_set1(inv), vgi = v8_set1(g * inv), va = v8_set1(a), vb = v8_set1(b);
    size_t p = 0;
    for (; p + 8 <= S; p += 8) {
        v8 gz = v8_load(gy + p);
        if (relu) gz = v8_and(gz, BN_MASK8(y, x, p, q));
        v8 xh = (v8_load(x + p) - vm) * vi;
        v8_store(gx + p, (set ? v8_set1(0.0f) : v8_load(gx + p)) + vgi * (gz - va - xh * vb));
    }
    for (; p < S; p++) {
        float gz = relu && !BN_MASK1(y, x, p, q) ? 0.0f : gy[p];
        float xh = (x[p] - mean) * inv;
        gx[p] = (set ? 0.0f : gx[p]) + g * inv * (gz - a - xh * b);
    }
}

// Channel ch's mean, inv (from the saved statistics of C channels), gamma and beta into q[0..3]
static void bn_q(const float *stat, int C, const nn_tensor *gamma, const nn_tensor *beta, int ch, float *q) {
    q[0] = stat[ch], q[1] = stat[C + ch];
    q[2] = gamma ? gamma->data[ch] : 1.0f, q[3] = beta ? beta->data[ch] : 0.0f;
}

// Channel ch's sums of gz and gz * xhat over the batch into sums[ch], sums[C + ch]; the affine parameters'
// gradients.
static void bn_ch_sums(nn_node *nd, const nn_tensor *gamma, const nn_tensor *beta, const nn_tensor *res,
                       int ch, double *sums) {
    nn_tensor *x = nd->in[0], *y = nd->out;
    int N = x->shape[0], C = x->shape[1], relu = nd->ia[4];
    size_t S = x->n / ((size_t)N * C);
    const float *stat = nd->saved; // mean[C], invstd[C]
    float q[4];
    bn_q(stat, C, gamma, beta, ch, q);
    double sg = 0, sgx = 0;
    for (int n = 0; n < N; n++) {
        size_t off = ((size_t)n * C + ch) * S;
        row_bw_sums(x->data + off, y->grad + off, y->data ? y->data + off : NULL,
                    res && res->grad ? res->grad + off : NULL, S, q, relu, &sg, &sgx);
    }
    if (gamma && gamma->grad) gamma->grad[ch] += (float)sgx;
    if (beta && beta->grad) beta->grad[ch] += (float)sg;
    sums[ch] = sg, sums[C + ch] = sgx;
}

// Channel ch's input gradient from the sums (M values per channel in the batch, w this slice's weight)
static void bn_ch_gx(nn_node *nd, const nn_tensor *gamma, const nn_tensor *beta, int ch, const double *sums,
                     double M, double w) {
    nn_tensor *x = nd->in[0], *y = nd->out;
    int N = x->shape[0], C = x->shape[1], training = nd->ia[0];
    size_t S = x->n / ((size_t)N * C);
    const float *stat = nd->saved;
    float q[4];
    bn_q(stat, C, gamma, beta, ch, q);
    float a = training ? (float)(sums[ch] / w / M) : 0.0f,
          b = training ? (float)(sums[C + ch] / w / M) : 0.0f;
    for (int n = 0; n < N; n++) {
        size_t off = ((size_t)n * C + ch) * S;
        row_bw_gx(x->data + off, y->grad + off, y->data ? y->data + off : NULL, x->grad + off, S, q,
                  nd->ia[4], a, b, nd->grad_aliased);
    }
}

// Without synchronised statistics each channel's input gradient right after its sums, while its values
// are in cache (two passes over the whole tensors read them back from memory).
static void bn_bw(nn_node *nd, nn_ctx *c) {
    nn_tensor *x = nd->in[0];
    int k = 1;
    nn_tensor *gamma = nd->ia[1] ? nd->in[k++] : NULL, *beta = nd->ia[2] ? nd->in[k++] : NULL;
    nn_tensor *res = nd->ia[3] ? nd->in[k++] : NULL;
    int N = x->shape[0], C = x->shape[1], sync = nd->ia[5];
    size_t S = x->n / ((size_t)N * C);
    const float *stat = nd->saved; // mean[C], invstd[C], and the values per channel in the whole batch
    double M = sync ? (double)stat[2 * C] : (double)N * (double)S, w = sync ? c->sync_w : 1;
    double *sums = nn_arena_alloc(&c->arena, sizeof(double) * 2 * (size_t)C);
    if (!sums) return; // the arena grew at the forward pass: not reached
#pragma omp parallel for schedule(static) if (x->n > NN_PAR_MIN)
    for (int ch = 0; ch < C; ch++) {
        bn_ch_sums(nd, gamma, beta, res, ch, sums);
        if (!sync && x->grad) bn_ch_gx(nd, gamma, beta, ch, sums, M, w);
    }
    if (!x->grad || !sync) return;
    for (int j = 0; j < 2 * C; j++) sums[j] *= w; // the ranks' sums, each weighted as its slice's gradient
    if (nn_team_sum(c, sums, 2 * (size_t)C)) return; // (the step fails: its team's message)
#pragma omp parallel for schedule(static) if (x->n > NN_PAR_MIN)
    for (int ch = 0; ch < C; ch++) bn_ch_gx(nd, gamma, beta, ch, sums, M, w);
}

// Training statistics over the ranks or a team's workers (synchronised batch norm): mean[C] and var[C] of
// the whole batch, running statistics moved by them (by one worker); M its values per channel. One pass over
// x from memory: each channel's sum s of its n local values, then their squared deviations q from the local
// mean c while in cache; the parts combine exactly, as sum (x - mean)^2 = q + (c - mean) (2 (s - n c) +
// n (c - mean)).
static int bn_sync_stats(nn_ctx *c, nn_tensor *x, nn_tensor *rmean, nn_tensor *rvar, float momentum,
                         double *acc, float *mean, float *var, double *M) {
    int N = x->shape[0], C = x->shape[1];
    size_t S = x->n / ((size_t)N * C);
    double n = (double)N * (double)S, *loc = nn_arena_alloc(&c->arena, sizeof(double) * 3 * (size_t)C);
    if (!loc) return GN_ENOMEM;
    acc[C] = n;
#pragma omp parallel for schedule(static) if (x->n > NN_PAR_MIN)
    for (int ch = 0; ch < C; ch++) {
        double sum = 0, sq = 0;
        for (int r = 0; r < N; r++) sum += row_sum(x->data + ((size_t)r * C + ch) * S, S);
        float cen = n > 0 ? (float)(sum / n) : 0.0f;
        for (int r = 0; r < N; r++) sq += row_sqdev(x->data + ((size_t)r * C + ch) * S, S, cen);
        acc[ch] = loc[ch] = sum, loc[C + ch] = sq, loc[2 * C + ch] = cen;
    }
    if (nn_team_sum(c, acc, (size_t)C + 1)) return GN_EINVAL;
    *M = acc[C];
    for (int ch = 0; ch < C; ch++) {
        double mu = acc[ch] / *M, d = loc[2 * C + ch] - mu;
        mean[ch] = (float)mu;
        acc[ch] = loc[C + ch] + d * (2 * (loc[ch] - n * loc[2 * C + ch]) + n * d);
    }
    if (nn_team_sum(c, acc, (size_t)C)) return GN_EINVAL;
    for (int ch = 0; ch < C; ch++) var[ch] = (float)(acc[ch] / *M);
    for (int ch = 0; c->team_rank == 0 && ch < C; ch++) {
        rmean->data[ch] = (1 - momentum) * rmean->data[ch] + momentum * mean[ch];
        rvar->data[ch] = (1 - momentum) * rvar->data[ch] + momentum * (float)(acc[ch] / (*M - 1));
    }
    return GN_OK;
}

// A transient or pooled output back from the input, the residual and the saved statistics: the forward's
// arithmetic.
static void bn_recompute(nn_node *nd, nn_ctx *c) {
    (void)c;
    nn_tensor *x = nd->in[0], *y = nd->out;
    nn_tensor *gamma = nd->ia[1] ? nd->in[1] : NULL, *beta = nd->ia[2] ? nd->in[1 + nd->ia[1]] : NULL;
    nn_tensor *res = nd->ia[3] ? nd->in[1 + nd->ia[1] + nd->ia[2]] : NULL;
    int N = x->shape[0], C = x->shape[1];
    size_t S = x->n / ((size_t)N * C);
    const float *stat = nd->saved;
#pragma omp parallel for schedule(static) if (x->n > NN_PAR_MIN)
    for (int ch = 0; ch < C; ch++) {
        float g = gamma ? gamma->data[ch] : 1.0f, b = beta ? beta->data[ch] : 0.0f;
        for (int n = 0; n < N; n++) {
            size_t off = ((size_t)n * C + ch) * S;
            row_norm(x->data + off, res ? res->data + off : NULL, y->data + off, S, stat[ch], stat[C + ch], g,
                     b, nd->ia[4]);
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
        gn_err(GN_EINVAL, "batchnorm: input %s has %d channels, statistics/affine do not",
               nn_shape_str(x, s, sizeof s), C);
        return NULL;
    }
    if (res && !nn_same_shape(x, res)) {
        gn_err(GN_EINVAL, "batchnorm: residual %s does not match the input %s",
               nn_shape_str(res, s2, sizeof s2), nn_shape_str(x, s, sizeof s));
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
    nn_tensor *gin[4] = {x, gamma, beta, res};
    int once =
        (relu & 3) == 2 && !res && nn_needs_grad(c, 3, gin); // transient: recomputed from x for backward
    int defer = once && (relu & NN_ACT_DEFER); // not computed: its reader (a conv) reads it from x
    // pooled: recomputed for backward from x and res, or no backward at all
    int pooled =
        (relu & NN_ACT_POOLED) && !c->tune.no_pool && (!c->grad_enabled || nn_needs_grad(c, 4, gin)) && !once;
    relu = (relu & 3) != 0;
    nn_tensor *y = defer    ? nn_tensor_deferred(c, x->ndim, x->shape)
                   : once   ? nn_tensor_transient(c, x->ndim, x->shape)
                   : pooled ? nn_tensor_pooled(c, x->ndim, x->shape)
                            : nn_tensor_new(c, x->ndim, x->shape);
    int sync = training && (c->sync_bn || c->team);
    float *stat = nn_arena_alloc(&c->arena, sizeof(float) * (2 * (size_t)C + 1)), *svar = NULL;
    double *acc = sync ? nn_arena_alloc(&c->arena, sizeof(double) * ((size_t)C + 1)) : NULL, Mall = M;
    if (sync && acc && (svar = nn_arena_alloc(&c->arena, sizeof(float) * (size_t)C)) &&
        bn_sync_stats(c, x, rmean, rvar, momentum, acc, stat, svar, &Mall))
        return NULL;
    if (!y || !stat || (sync && !svar)) return NULL;
    stat[2 * C] = (float)Mall;
#pragma omp parallel for schedule(static) if (x->n > NN_PAR_MIN)
    for (int ch = 0; ch < C; ch++) {
        float mean, var;
        if (sync)
            mean = stat[ch], var = svar[ch];
        else if (training) {
            double sum = 0, sq = 0;
            for (int n = 0; n < N; n++) sum += row_sum(x->data + ((size_t)n * C + ch) * S, S);
            mean = (float)(sum / M);
            for (int n = 0; n < N; n++) sq += row_sqdev(x->data + ((size_t)n * C + ch) * S, S, mean);
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
        for (int n = 0; n < N && !defer; n++) {
            size_t off = ((size_t)n * C + ch) * S;
            row_norm(x->data + off, res ? res->data + off : NULL, y->data + off, S, mean, inv, g, b, relu);
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
        nd->ia[5] = sync;
        nd->saved = stat;
        if (once || pooled) y->remake = nd, nd->recompute = bn_recompute; // (defer: once)
        nd->grad_steal = 1; // bn_bw reads all of gy for its sums, then each gx value right after its gy
    }
    return y;
}

int nn_bn_deferred_map(const nn_tensor *y, nn_bn_map *m) {
    const nn_node *nd = y ? y->remake : NULL;
    if (!y || !y->deferred || !nd || nd->backward != bn_bw)
        return gn_err(GN_EINVAL, "batchnorm: not a deferred output");
    int C = nd->in[0]->shape[1];
    const float *stat = nd->saved;
    *m = (nn_bn_map){nd->in[0]->data, stat, stat + C, nd->ia[1] ? nd->in[1]->data : NULL,
                     nd->ia[2] ? nd->in[1 + nd->ia[1]]->data : NULL};
    return GN_OK;
}

nn_tensor *nn_batchnorm(nn_ctx *c, nn_tensor *x, nn_tensor *gamma, nn_tensor *beta, nn_tensor *rmean,
                        nn_tensor *rvar, float momentum, float eps) {
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
    int rows = x->ndim > 1 ? x->shape[0] : 1;
    nn_ctx_draw(c, &c->dropout_rng, rows, x->n / (size_t)rows, p, mask);
    for (size_t i = 0; i < x->n; i++) y->data[i] = x->data[i] * mask[i];
    nn_node *nd = nn_record(c, y, dropout_bw, 1, &x);
    if (nd) nd->saved = mask;
    return y;
}
