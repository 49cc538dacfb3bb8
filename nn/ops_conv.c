// Convolutions. 3x3 stride-1 layers by Winograd (below); the others by
// im2col + GEMM, either one cblas_sgemm over the whole batch or by groups of
// images; the transposed convolution is the adjoint (sgemm + col2im). 1-D
// convolutions are the 2-D ones with H = 1.
//
// Over the whole batch, col is (C*kh*kw, N*Ho*Wo), so the forward product is
// W (O, C*kh*kw) x col -> (O, N*Ho*Wo), one large GEMM instead of N small
// ones, and ctx->keep_im2col = 1 keeps col for the weight gradient. With
// keep_im2col = 0 (the default) the convs run by groups of images with
// per-thread buffers the size of a group (no batch-sized buffers; the
// multi-branch net's training step: 424 instead of 490 MiB, as fast on an
// AVX-512 machine; 4-8 % slower on an AVX2 one when last measured there).
// Backward temporaries are released before each op returns.
#include <cblas.h>
#include <limits.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "conv_internal.h"
#include "gemm.h"
#include "ops.h"
#include "simd.h"

void nn_same_pad(int in, int k, int stride, int *before, int *after) {
    int out = (in + stride - 1) / stride;
    int total = (out - 1) * stride + k - in;
    if (total < 0) total = 0;
    *before = total / 2;
    *after = total - *before;
}

nn_pad2d nn_pad_same(int h, int w, int kh, int kw, int sh, int sw) {
    nn_pad2d p;
    nn_same_pad(h, kh, sh, &p.top, &p.bottom);
    nn_same_pad(w, kw, sw, &p.left, &p.right);
    return p;
}

// col[(c*kh + i)*kw + j][n*Ho*Wo + oh*Wo + ow] = x[n][c][oh*sh - pt + i][ow*sw - pl + j] (0 outside)
// row r of col over images n0 .. n0+nb-1 (into dst[(n - n0)*Ho*Wo + ...])
// strided_row for sw > 1 (a constant where inlined: no divisions)
NN_INLINE void strided_row_s(float *d, const float *xr, int W, int sw, int off, int n) {
    // outputs [lo, hi) read inside the row
    int lo = off < 0 ? (-off + sw - 1) / sw : 0, hi = off >= W ? 0 : (W - off + sw - 1) / sw;
    if (hi > n) hi = n;
    if (lo > hi) lo = hi;
    if (lo) memset(d, 0, sizeof(float) * (size_t)lo);
    int q = lo;
    if (sw == 2) // 8 outputs from the even lanes of 16 inputs, all inside the row
        for (; q + 8 <= hi && (q + 7) * 2 + off + 1 < W; q += 8) {
            const float *sp = xr + q * 2 + off;
            v8_store(d + q, __builtin_shuffle(v8_load(sp), v8_load(sp + 8), EVEN8));
        }
    for (; q < hi; q++) d[q] = xr[q * sw + off];
    if (n > hi) memset(d + hi, 0, sizeof(float) * (size_t)(n - hi));
}

// d[q] = xr[q*sw + off] where that is inside the row [0, W), else 0, for q < n
NN_INLINE void strided_row(float *d, const float *xr, int W, int sw, int off, int n) {
    if (sw == 1) {
        int lo = off < 0 ? -off : 0, hi = W - off < n ? W - off : n;
        if (hi < lo) hi = lo;
        if (lo > n) lo = hi = n;
        if (lo) memset(d, 0, sizeof(float) * (size_t)lo); // (the calls cost more than short rows' copies)
        if (hi > lo) memcpy(d + lo, xr + lo + off, sizeof(float) * (size_t)(hi - lo));
        if (n > hi) memset(d + hi, 0, sizeof(float) * (size_t)(n - hi));
        return;
    }
    if (sw == 2) strided_row_s(d, xr, W, 2, off, n);
    else strided_row_s(d, xr, W, sw, off, n);
}

NN_SIMD_CLONES void nn_im2col_row(const geom *g, const float *x, long r, int n0, int nb, float *dst) {
    int c = (int)(r / (g->kh * g->kw)), i = (int)(r / g->kw % g->kh), j = (int)(r % g->kw);
    size_t P = (size_t)g->Ho * g->Wo;
    for (int n = n0; n < n0 + nb; n++) {
        const float *xc = x + ((size_t)n * g->C + c) * g->H * g->W;
        for (int oh = 0; oh < g->Ho; oh++) {
            float *d = dst + (size_t)(n - n0) * P + (size_t)oh * g->Wo;
            int ih = oh * g->sh - g->pt + i;
            if (ih < 0 || ih >= g->H) memset(d, 0, sizeof(float) * (size_t)g->Wo);
            else strided_row(d, xc + (size_t)ih * g->W, g->W, g->sw, j - g->pl, g->Wo);
        }
    }
}

// d0[q] = xr[2q + off], d1[q] = xr[2q + off + 1] (0 outside the row [0, W)) for q < n: both column phases
// of stride 2 from one pass, 8 of each from 16 inputs inside the row
NN_INLINE void strided_pair(float *d0, float *d1, const float *xr, int W, int off, int n) {
    int q = 0;
    for (; q < n && 2 * q + off < 0; q++) d0[q] = 0, d1[q] = 2 * q + off + 1 >= 0 ? xr[2 * q + off + 1] : 0;
    for (; q + 8 <= n && 2 * q + off + 16 <= W; q += 8) {
        v8 lo = v8_load(xr + 2 * q + off), hi = v8_load(xr + 2 * q + off + 8);
        v8_store(d0 + q, __builtin_shuffle(lo, hi, EVEN8)), v8_store(d1 + q, __builtin_shuffle(lo, hi, ODD8));
    }
    for (; q < n; q++) {
        int i = 2 * q + off;
        d0[q] = i < W ? xr[i] : 0, d1[q] = i + 1 < W ? xr[i + 1] : 0;
    }
}

// Row phase a of plane xc into pl (column phase b at pl + b*ps, rows wq apart)
NN_INLINE void phase_rows(const geom *g, const nn_phases *f, const float *xc, int a, float *pl) {
    size_t wq = (size_t)f->wq;
    for (int qr = 0; qr < f->hq; qr++) {
        float *d = pl + (size_t)qr * wq;
        int ih = qr * g->sh + a - g->pt;
        if (ih < 0 || ih >= g->H) {
            for (int b = 0; b < f->pj; b++) memset(d + b * f->ps, 0, sizeof(float) * wq);
            continue;
        }
        const float *xr = xc + (size_t)ih * g->W;
        if (g->sw == 2 && f->pj == 2) strided_pair(d, d + f->ps, xr, g->W, -g->pl, f->wq);
        else
            for (int b = 0; b < f->pj; b++) strided_row(d + b * f->ps, xr, g->W, g->sw, b - g->pl, f->wq);
    }
}

// The stride phases of images n0 .. n0+nb-1 (conv_internal.h)
NN_SIMD_CLONES void nn_phase_fill(const geom *g, const nn_phases *f, const float *x, int n0, int nb,
                                  float *buf) {
    for (int c = 0; c < g->C; c++)
        for (int a = 0; a < f->pi; a++) {
            float *pl = buf + (size_t)(c * f->pi + a) * f->pj * f->ps; // phase (c, a, b) at pl + b*ps
            for (int n = 0; n < nb; n++) {
                const float *xc = x + ((size_t)(n0 + n) * g->C + c) * g->H * g->W;
                phase_rows(g, f, xc, a, pl + (size_t)n * f->grid);
            }
            size_t used = (size_t)nb * f->grid; // then the zeros that the last shifts read
            for (int b = 0; b < f->pj; b++) memset(pl + b * f->ps + used, 0, sizeof(float) * (f->ps - used));
        }
}

// im2col columns of images n0 .. n0+nb-1 (rows ld >= nb*Ho*Wo + 8 floats apart) from each plane's phases
// (f: one image's, in ph): every row of outputs a copy of whole 8-lane vectors, the lanes past it written
// over by the next row or landing in the row's last 8 floats
NN_SIMD_CLONES void nn_im2col_group(const geom *g, const nn_phases *f, const float *x, int n0, int nb,
                                    float *col, size_t ld, float *ph) {
    size_t P = (size_t)g->Ho * g->Wo;
    for (int n = n0; n < n0 + nb; n++)
        for (int c = 0; c < g->C; c++) {
            const float *xc = x + ((size_t)n * g->C + c) * g->H * g->W;
            for (int a = 0; a < f->pi; a++) phase_rows(g, f, xc, a, ph + (size_t)a * f->pj * f->ps);
            for (int i = 0; i < g->kh; i++)
                for (int j = 0; j < g->kw; j++) {
                    const float *src = ph + (size_t)((i % g->sh) * f->pj + j % g->sw) * f->ps +
                                       (size_t)(i / g->sh) * f->wq + j / g->sw;
                    float *dst = col + ((size_t)(c * g->kh + i) * g->kw + j) * ld + (size_t)(n - n0) * P;
                    for (int oh = 0; oh < g->Ho; oh++) {
                        const float *s = src + (size_t)oh * f->wq;
                        float *d = dst + (size_t)oh * g->Wo;
                        for (int q = 0; q < g->Wo; q += 8) v8_store(d + q, v8_load(s + q));
                    }
                }
        }
}

static void im2col(const geom *g, const float *x, float *col) {
    long rows = (long)g->C * g->kh * g->kw;
    size_t NP = (size_t)g->N * g->Ho * g->Wo;
#pragma omp parallel for schedule(static) if (rows * NP > NN_PAR_MIN)
    for (long r = 0; r < rows; r++) nn_im2col_row(g, x, r, 0, g->N, col + (size_t)r * NP);
}

// The adjoint of im2col: x[n][c][ih][iw] += col[...]. Every (n, c) plane
// receives only its own entries, so planes are the parallel unit and the
// summation order within a plane is fixed whatever the thread count.
// Plane (n, c) from the columns of image slot s of col (rows ld floats apart).
NN_SIMD_CLONES void nn_col2im_plane(const geom *g, const float *col, size_t ld, int s, int n, int c,
                                    float *x) {
    size_t P = (size_t)g->Ho * g->Wo;
    float *xc = x + ((size_t)n * g->C + c) * g->H * g->W;
    const v8i keep_odd = {0, 9, 2, 11, 4, 13, 6, 15}; // even lanes from the sum, odd lanes as they were
    for (int i = 0; i < g->kh; i++)
        for (int j = 0; j < g->kw; j++) {
            const float *src = col + ((size_t)(c * g->kh + i) * g->kw + j) * ld + (size_t)s * P;
            int sw = g->sw, off = j - g->pl; // outputs [lo, hi) have iw = ow*sw + off inside the row
            int lo = off < 0 ? (-off + sw - 1) / sw : 0, hi = off >= g->W ? 0 : (g->W - off + sw - 1) / sw;
            if (hi > g->Wo) hi = g->Wo;
            if (lo > hi) lo = hi;
            for (int oh = 0; oh < g->Ho; oh++) {
                int ih = oh * g->sh - g->pt + i, ow = lo;
                if (ih < 0 || ih >= g->H) continue;
                const float *sr = src + (size_t)oh * g->Wo;
                float *xr = xc + (size_t)ih * g->W;
                if (sw == 1)
                    for (; ow + 8 <= hi; ow += 8) {
                        float *d = xr + ow + off;
                        v8_store(d, v8_load(d) + v8_load(sr + ow));
                    }
                else if (sw == 2) // 8 values into the even lanes of 16, all inside the row
                    for (; ow + 8 <= hi && (ow + 7) * 2 + off + 1 < g->W; ow += 8) {
                        float *d = xr + 2 * ow + off;
                        v8 v = v8_load(sr + ow), a = v8_load(d), b = v8_load(d + 8), z = v8_set1(0.0f);
                        v8 ta = a + __builtin_shuffle(v, z, LO8), tb = b + __builtin_shuffle(v, z, HI8);
                        v8_store(d, __builtin_shuffle(ta, a, keep_odd));
                        v8_store(d + 8, __builtin_shuffle(tb, b, keep_odd));
                    }
                for (; ow < hi; ow++) xr[ow * sw + off] += sr[ow];
            }
        }
}
static void col2im(const geom *g, const float *col, float *x) {
    size_t NP = (size_t)g->N * g->Ho * g->Wo;
    long planes = (long)g->N * g->C;
#pragma omp parallel for schedule(static) if (planes * (long)(g->H * g->W) > NN_PAR_MIN)
    for (long pl = 0; pl < planes; pl++)
        nn_col2im_plane(g, col, NP, (int)(pl / g->C), (int)(pl / g->C), (int)(pl % g->C), x);
}

// d = d * s + t (+ r), then max(d, 0) (relu 1) or d > 0 ? d : a * d (relu 2), over n floats
static inline void epi_row(float *d, float s, float t, const float *r, size_t n, int relu, float a) {
    size_t p = 0;
    for (; p + 8 <= n; p += 8) v8_store(d + p, NN_EPI8(v8_load(d + p), s, t, r ? r + p : NULL, relu, a));
    for (; p < n; p++) d[p] = NN_EPI1(d[p], s, t, r ? r[p] : 0.0f, relu, a);
}

// The gradient through the conv's output activation, in place: gy masked by y > 0 (ReLU) or scaled by the
// leaky slope where y <= 0 (as nn_relu / nn_leaky_relu's backward, whose input is > 0 where y is).
static void act_bw(float *gy, const float *y, size_t n, int relu, float a) {
#pragma omp parallel for schedule(static) if (n > NN_PAR_MIN)
    for (size_t i = 0; i < n; i++) gy[i] = y[i] > 0 ? gy[i] : relu == 1 ? 0.0f : a * gy[i];
}

NN_SIMD_CLONES void nn_epi_apply(const conv_epi *e, const geom *g, float *y, int n0, int n1, int o0, int o1) {
    if (!e) return;
    size_t P = (size_t)g->Ho * g->Wo;
    if (o1 > g->O) o1 = g->O;
    for (int n = n0; n < n1; n++)
        for (int o = o0; o < o1; o++) {
            size_t off = ((size_t)n * g->O + o) * P;
            epi_row(y + off, e->scale ? e->scale[o] : 1.0f, e->shift ? e->shift[o] : 0.0f,
                    e->res ? e->res + off : NULL, P, e->relu, e->slope);
        }
}

NN_SIMD_CLONES void nn_grid_out(const conv_epi *e, const geom *g, const float *Y, size_t ldy, size_t grid,
                                int wq, const float *b, float *y, int n0, int nb) {
    size_t P = (size_t)g->Ho * g->Wo;
    for (int n = n0; n < n0 + nb; n++)
        for (int o = 0; o < g->O; o++) {
            const float *src = Y + (size_t)o * ldy + (size_t)(n - n0) * grid;
            size_t off = ((size_t)n * g->O + o) * P;
            float *dst = y + off, bo = b ? b[o] : 0.0f;
            // the epilogue in the same pass (epi_row's arithmetic)
            float es = e && e->scale ? e->scale[o] : 1.0f, et = e && e->shift ? e->shift[o] : 0.0f;
            const float *res = e && e->res ? e->res + off : NULL;
            v8 vb = v8_set1(bo);
            for (int oh = 0; oh < g->Ho; oh++) {
                const float *s = src + (size_t)oh * wq, *r = res ? res + (size_t)oh * g->Wo : NULL;
                float *d = dst + (size_t)oh * g->Wo;
                int q = 0;
                for (; q + 8 <= g->Wo; q += 8) {
                    v8 v = v8_load(s + q) + vb;
                    v8_store(d + q, e ? NN_EPI8(v, es, et, r ? r + q : NULL, e->relu, e->slope) : v);
                }
                for (; q < g->Wo; q++)
                    d[q] = e ? NN_EPI1(s[q] + bo, es, et, r ? r[q] : 0.0f, e->relu, e->slope) : s[q] + bo;
            }
        }
}

// (N, C, P) <-> (C, N*P)
static void nchw_to_cm(const float *src, float *dst, int N, int C, size_t P) {
#pragma omp parallel for schedule(static) if ((size_t)N * C * P > NN_PAR_MIN)
    for (int c = 0; c < C; c++)
        for (int n = 0; n < N; n++)
            memcpy(dst + ((size_t)c * N + n) * P, src + ((size_t)n * C + c) * P, sizeof(float) * P);
}

// dst (N, C, P) (+)= src (C, N*P) + bias[c], then the epilogue e (NULL: none; g: dst's conv)
static void cm_to_nchw(const float *src, float *dst, int N, int C, size_t P, const float *bias,
                       int accumulate, const conv_epi *e, const geom *g) {
#pragma omp parallel for schedule(static) if ((size_t)N * C * P > NN_PAR_MIN)
    for (int c = 0; c < C; c++)
        for (int n = 0; n < N; n++) {
            const float *s = src + ((size_t)c * N + n) * P;
            float *d = dst + ((size_t)n * C + c) * P;
            float b = bias ? bias[c] : 0.0f;
            if (accumulate)
                for (size_t p = 0; p < P; p++) d[p] += s[p] + b;
            else
                for (size_t p = 0; p < P; p++) d[p] = s[p] + b;
            if (e) nn_epi_apply(e, g, dst, n, n + 1, c, c + 1);
        }
}

// bias gradient: gb[c] += sum over n, p of g[n][c][p]
static void bias_grad(const float *g, float *gb, int N, int C, size_t P) {
#pragma omp parallel for schedule(static) if ((size_t)N * C * P > NN_PAR_MIN)
    for (int c = 0; c < C; c++) {
        double s = 0;
        for (int n = 0; n < N; n++) {
            const float *r = g + ((size_t)n * C + c) * P;
            for (size_t p = 0; p < P; p++) s += r[p];
        }
        gb[c] += (float)s;
    }
}

static int check_geom(const geom *g, const char *what) {
    if (g->Ho <= 0 || g->Wo <= 0)
        return gn_err(GN_EINVAL, "%s: kernel %dx%d with padding larger than the %dx%d input", what, g->kh,
                      g->kw, g->H, g->W);
    if (g->sh <= 0 || g->sw <= 0) return gn_err(GN_EINVAL, "%s: stride must be positive", what);
    if (g->pt < 0 || g->pl < 0) return gn_err(GN_EINVAL, "%s: negative padding", what);
    return GN_OK;
}

// ---- convolution ----

static void conv_bw(nn_node *nd, nn_ctx *c) {
    geom g;
    geom_load(&g, nd->ia);
    nn_tensor *x = nd->in[0], *w = nd->in[1], *b = nd->nin > 2 ? nd->in[2] : NULL, *y = nd->out;
    size_t P = (size_t)g.Ho * g.Wo, NP = (size_t)g.N * P;
    int K = g.C * g.kh * g.kw;
    nn_arena_mark mark = nn_arena_get_mark(&c->arena);
    if (nd->ia[NN_CONV_ACT]) act_bw(y->grad, y->data, y->n, nd->ia[NN_CONV_ACT], nd->fa[0]);
    if (nd->ia[NN_CONV_WINO]) {
        if (b && b->grad) bias_grad(y->grad, b->grad, g.N, g.O, P);
        nn_bn_map pm; // x deferred: read from its batch norm's input (conv_impl)
        if (!x->data && nn_bn_deferred_map(x, &pm)) return;
        nn_wino_bw(c, &g, nd->ia[NN_CONV_WINO], x->data, w->data, y->grad, w->grad, x->grad,
                   nd->grad_aliased, x->data ? NULL : &pm);
        nn_arena_release(&c->arena, mark);
        return;
    }
    if (nd->ia[NN_CONV_GROUPS]) {
        if (b && b->grad) bias_grad(y->grad, b->grad, g.N, g.O, P);
        nn_conv_bw_groups(c, &g, x->data, w->data, y->grad, w->grad, x->grad);
        nn_arena_release(&c->arena, mark);
        return;
    }
    float *gyt = nn_arena_alloc(&c->arena, sizeof(float) * (size_t)g.O * NP); // (O, N*P)
    float *col =
        nd->saved ? nd->saved : nn_arena_alloc(&c->arena, sizeof(float) * (size_t)K * NP); // (K, N*P)
    if (!gyt || !col) return;
    nchw_to_cm(y->grad, gyt, g.N, g.O, P);
    if (w->grad) { // gw (O, K) += gyt (O, NP) x col^T (NP, K)
        if (!nd->saved) im2col(&g, x->data, col);
        nn_sgemm(0, 1, g.O, K, (int)NP, 1.0f, gyt, (int)NP, col, (int)NP, 1.0f, w->grad, K);
    }
    if (b && b->grad) bias_grad(y->grad, b->grad, g.N, g.O, P);
    if (x->grad) { // dcol (K, NP) = w^T (K, O) x gyt (O, NP), over the col buffer (no longer needed)
        nn_sgemm(1, 0, K, (int)NP, g.O, 1.0f, w->data, K, gyt, (int)NP, 0.0f, col, (int)NP);
        col2im(&g, col, x->grad);
    }
    nn_arena_release(&c->arena, mark);
}

// The node of a conv computed by conv_impl: its output activation (e taped) and its geometry.
static nn_node *conv_record(nn_ctx *c, nn_tensor *y, nn_tensor **in, int nin, const geom *g,
                            const conv_epi *e) {
    nn_node *nd = nn_record(c, y, conv_bw, nin, in);
    if (nd) geom_store(g, nd->ia), nd->ia[NN_CONV_ACT] = e ? e->relu : 0, nd->fa[0] = e ? e->slope : 0.0f;
    return nd;
}

// A conv's output kept in the next conv's Winograd input layout (NN_ACT_WINO): n floats in a pool block
// (as NN_ACT_POOLED's), the tensor's shape the output's
static nn_tensor *wino_il_tensor(nn_ctx *c, const geom *g, size_t n) {
    int len = (int)n;
    nn_tensor *y = (size_t)len == n ? nn_tensor_pooled(c, 1, &len) : NULL;
    if (!y) return NULL;
    int shape[4] = {g->N, g->O, g->Ho, g->Wo};
    y->ndim = 4, memcpy(y->shape, shape, sizeof shape), y->n = (size_t)g->N * g->O * g->Ho * g->Wo;
    y->wino_il = 1;
    return y;
}

// e: an inference epilogue (nn_conv2d_fused; no tape then), or the output activation of a taped conv
// (nn_conv2d_act), else NULL
static nn_tensor *conv_impl(nn_ctx *c, nn_tensor *x, nn_tensor *w, nn_tensor *b, geom g, int one_d,
                            const conv_epi *e) {
    const char *what = one_d ? "conv1d" : "conv2d";
    if (check_geom(&g, what)) return NULL;
    size_t P = (size_t)g.Ho * g.Wo, NP = (size_t)g.N * P;
    int K = g.C * g.kh * g.kw;
    int tile = nn_wino_tile(c, &g);
    if (x->wino_il && !(e && (e->il & 1) && nn_wino_takes_map(tile)))
        return gn_err(GN_EINVAL, "%s: input in a Winograd layout this conv does not read", what), NULL;
    size_t il = e && e->wino && !e->taped && !e->res && c->tune.wino_il ? nn_wino_il_floats(c, &g, tile) : 0;
    nn_tensor *y = one_d                       ? nn_tensor_new(c, NN_SHAPE(g.N, g.O, g.Wo))
                   : il                        ? wino_il_tensor(c, &g, il)
                   : e && e->pooled && !e->taped ? nn_tensor_pooled(c, NN_SHAPE(g.N, g.O, g.Ho, g.Wo))
                                                 : nn_tensor_new(c, NN_SHAPE(g.N, g.O, g.Ho, g.Wo));
    if (!y) return NULL;
    conv_epi ew;
    if (e) ew = *e, ew.il = e->il | (il ? 2 : 0), e = &ew; // 2: y in the layout, 1: x
    nn_tensor *in[3] = {x, w, b};
    nn_bn_map pm; // x a deferred batch norm output (NN_ACT_DEFER): read from its input, or computed first
    int mapped = x->deferred && !x->data && nn_wino_takes_map(tile);
    if (mapped ? nn_bn_deferred_map(x, &pm) : nn_tensor_undefer(c, x)) return NULL;
    if (tile) {
        if (nn_wino_fwd(c, &g, tile, x->data, w->data, b ? b->data : NULL, y->data, e, mapped ? &pm : NULL))
            return NULL;
        if (e && !e->taped) return y;
        nn_node *nd = conv_record(c, y, in, b ? 3 : 2, &g, e);
        if (nd) nd->ia[NN_CONV_WINO] = tile, nd->grad_steal = 1; // see nn_wino_bw
        return y;
    }
    if (nn_conv_by_groups(c)) {
        if (nn_conv_fwd_groups(c, &g, x->data, w->data, b ? b->data : NULL, y->data, e)) return NULL;
        if (e && !e->taped) return y;
        nn_node *nd = conv_record(c, y, in, b ? 3 : 2, &g, e);
        if (nd) nd->ia[NN_CONV_GROUPS] = 1;
        return y;
    }
    int keep = c->keep_im2col && nn_needs_grad(c, b ? 3 : 2, in);
    nn_arena_mark before_col = nn_arena_get_mark(&c->arena);
    float *col = nn_arena_alloc(&c->arena, sizeof(float) * (size_t)K * NP); // kept for backward when `keep`
    nn_arena_mark mark = nn_arena_get_mark(&c->arena);
    float *yt = nn_arena_alloc(&c->arena, sizeof(float) * (size_t)g.O * NP);
    if (!col || !yt) return NULL;
    im2col(&g, x->data, col);
    nn_sgemm(0, 0, g.O, (int)NP, K, 1.0f, w->data, K, col, (int)NP, 0.0f, yt, (int)NP);
    cm_to_nchw(yt, y->data, g.N, g.O, P, b ? b->data : NULL, 0, e, &g);
    nn_arena_release(&c->arena, keep ? mark : before_col); // yt (and col unless kept) were temporaries
    if (e && !e->taped) return y;
    nn_node *nd = conv_record(c, y, in, b ? 3 : 2, &g, e);
    if (nd) nd->saved = keep ? col : NULL;
    return y;
}

static int conv_args_ok(const nn_tensor *x, const nn_tensor *w, const nn_tensor *b, int rank,
                        int weight_c_axis, const char *what) {
    char s1[96], s2[96];
    if (x->ndim != rank || w->ndim != rank)
        return gn_err(GN_EINVAL, "%s: input %s and weight %s must both have %d axes", what,
                      nn_shape_str(x, s1, sizeof s1), nn_shape_str(w, s2, sizeof s2), rank);
    if (w->shape[weight_c_axis] != x->shape[1])
        return gn_err(GN_EINVAL, "%s: input %s has %d channels but weight %s expects %d", what,
                      nn_shape_str(x, s1, sizeof s1), x->shape[1], nn_shape_str(w, s2, sizeof s2),
                      w->shape[weight_c_axis]);
    int nout = w->shape[1 - weight_c_axis];
    if (b && b->n != (size_t)nout)
        return gn_err(GN_EINVAL, "%s: bias has %zu values for %d channels", what, b->n, nout);
    return GN_OK;
}

static geom conv2d_geom(const nn_tensor *x, const nn_tensor *w, int sh, int sw, nn_pad2d pad) {
    geom g = {x->shape[0],
              x->shape[1],
              x->shape[2],
              x->shape[3],
              w->shape[0],
              w->shape[2],
              w->shape[3],
              sh,
              sw,
              pad.top,
              pad.left,
              0,
              0};
    if (sh > 0 && sw > 0) {
        g.Ho = (g.H + pad.top + pad.bottom - g.kh) / sh + 1;
        g.Wo = (g.W + pad.left + pad.right - g.kw) / sw + 1;
        if (g.H + pad.top + pad.bottom < g.kh || g.W + pad.left + pad.right < g.kw) g.Ho = 0;
    }
    return g;
}

nn_tensor *nn_conv2d(nn_ctx *c, nn_tensor *x, nn_tensor *w, nn_tensor *b, int sh, int sw, nn_pad2d pad) {
    if (!x || !w || conv_args_ok(x, w, b, 4, 1, "conv2d")) return NULL;
    return conv_impl(c, x, w, b, conv2d_geom(x, w, sh, sw, pad), 0, NULL);
}

nn_tensor *nn_conv2d_fused(nn_ctx *c, nn_tensor *x, nn_tensor *w, const float *scale, const float *shift,
                           int sh, int sw, nn_pad2d pad, nn_tensor *res, int relu) {
    if (!x || !w || conv_args_ok(x, w, NULL, 4, 1, "conv2d")) return NULL;
    nn_tensor *in[3] = {x, w, res ? res : w};
    if (nn_needs_grad(c, 3, in))
        return gn_err(GN_EINVAL, "conv2d_fused is for inference: no gradient can pass through it"), NULL;
    geom g = conv2d_geom(x, w, sh, sw, pad);
    char s1[96];
    if (res && (res->ndim != 4 || res->shape[0] != g.N || res->shape[1] != g.O || res->shape[2] != g.Ho ||
                res->shape[3] != g.Wo))
        return gn_err(GN_EINVAL, "conv2d_fused: residual %s is not the output's shape (%d, %d, %d, %d)",
                      nn_shape_str(res, s1, sizeof s1), g.N, g.O, g.Ho, g.Wo),
               NULL;
    conv_epi e = {scale, shift, res ? res->data : NULL, relu & 3, 0.0f, 0,
                  (relu & NN_ACT_POOLED) && !c->tune.no_pool, (relu & NN_ACT_WINO) != 0, x->wino_il};
    return conv_impl(c, x, w, NULL, g, 0, &e);
}

nn_tensor *nn_conv2d_act(nn_ctx *c, nn_tensor *x, nn_tensor *w, nn_tensor *b, int sh, int sw, nn_pad2d pad,
                         int act, float slope) {
    if (!x || !w || conv_args_ok(x, w, b, 4, 1, "conv2d")) return NULL;
    if (act < 0 || act > 2 || (act == 2 && !(slope > 0)))
        return gn_err(GN_EINVAL, "conv2d_act: activation %d with slope %g (1 ReLU, 2 leaky with a slope > 0)",
                      act, slope),
               NULL;
    conv_epi e = {NULL, NULL, NULL, act, slope, 1, 0, 0, 0};
    return conv_impl(c, x, w, b, conv2d_geom(x, w, sh, sw, pad), 0, act ? &e : NULL);
}

nn_tensor *nn_conv1d(nn_ctx *c, nn_tensor *x, nn_tensor *w, nn_tensor *b, int stride, int pad_l, int pad_r) {
    if (!x || !w || conv_args_ok(x, w, b, 3, 1, "conv1d")) return NULL;
    geom g = {x->shape[0], x->shape[1], 1, x->shape[2], w->shape[0], 1, w->shape[2],
              1,           stride,      0, pad_l,       1,           0};
    if (stride > 0) g.Wo = g.W + pad_l + pad_r < g.kw ? 0 : (g.W + pad_l + pad_r - g.kw) / stride + 1;
    return conv_impl(c, x, w, b, g, 1, NULL);
}

// ---- transposed convolution: the adjoint of the conv whose geometry is g ----
// (conv input = our output (N, C_out, Ho, Wo); conv output = our input (N, C_in, H, W))

static void convt_bw(nn_node *nd, nn_ctx *c) {
    geom g;
    geom_load(&g, nd->ia);
    nn_tensor *x = nd->in[0], *w = nd->in[1], *b = nd->nin > 2 ? nd->in[2] : NULL, *y = nd->out;
    size_t P = (size_t)g.Ho * g.Wo, NP = (size_t)g.N * P; // P: the input's pixels
    int K = g.C * g.kh * g.kw;                            // C = C_out
    nn_arena_mark mark = nn_arena_get_mark(&c->arena);
    float *colg = nn_arena_alloc(&c->arena, sizeof(float) * (size_t)K * NP);
    if (!colg) return;
    im2col(&g, y->grad, colg);
    if (b && b->grad) bias_grad(y->grad, b->grad, g.N, g.C, (size_t)g.H * g.W);
    if (w->grad) // gw (C_in, K) += xt (C_in, NP) x colg^T
        nn_sgemm(0, 1, g.O, K, (int)NP, 1.0f, nd->saved, (int)NP, colg, (int)NP, 1.0f, w->grad, K);
    if (x->grad) {
        float *gxt = nn_arena_alloc(&c->arena, sizeof(float) * (size_t)g.O * NP);
        if (!gxt) return;
        nn_sgemm(0, 0, g.O, (int)NP, K, 1.0f, w->data, K, colg, (int)NP, 0.0f, gxt, (int)NP);
        cm_to_nchw(gxt, x->grad, g.N, g.O, P, NULL, 1, NULL, NULL);
    }
    nn_arena_release(&c->arena, mark);
}

static nn_tensor *convt_impl(nn_ctx *c, nn_tensor *x, nn_tensor *w, nn_tensor *b, geom g, int one_d) {
    const char *what = one_d ? "conv_transpose1d" : "conv_transpose2d";
    if (g.H <= 0 || g.W <= 0) {
        gn_err(GN_EINVAL, "%s: padding leaves no output", what);
        return NULL;
    }
    if (check_geom(&g, what)) return NULL;
    size_t P = (size_t)g.Ho * g.Wo, NP = (size_t)g.N * P;
    int K = g.C * g.kh * g.kw;
    nn_tensor *y =
        one_d ? nn_tensor_new(c, NN_SHAPE(g.N, g.C, g.W)) : nn_tensor_new(c, NN_SHAPE(g.N, g.C, g.H, g.W));
    float *xt = nn_arena_alloc(&c->arena, sizeof(float) * (size_t)g.O * NP);
    float *col = nn_arena_alloc(&c->arena, sizeof(float) * (size_t)K * NP);
    if (!y || !xt || !col) return NULL;
    nchw_to_cm(x->data, xt, g.N, g.O, P);
    // col (K, NP) = w^T (K, C_in) x xt (C_in, NP)
    nn_sgemm(1, 0, K, (int)NP, g.O, 1.0f, w->data, K, xt, (int)NP, 0.0f, col, (int)NP);
    size_t HW = (size_t)g.H * g.W;
    for (int n = 0; n < g.N; n++)
        for (int ch = 0; ch < g.C; ch++) {
            float bv = b ? b->data[ch] : 0.0f;
            float *d = y->data + ((size_t)n * g.C + ch) * HW;
            for (size_t p = 0; p < HW; p++) d[p] = bv;
        }
    col2im(&g, col, y->data);
    nn_tensor *in[3] = {x, w, b};
    nn_node *nd = nn_record(c, y, convt_bw, b ? 3 : 2, in);
    if (nd) {
        geom_store(&g, nd->ia);
        nd->saved = xt;
    }
    return y;
}

nn_tensor *nn_conv_transpose2d(nn_ctx *c, nn_tensor *x, nn_tensor *w, nn_tensor *b, int sh, int sw,
                               nn_pad2d pad, int oph, int opw) {
    if (!x || !w || conv_args_ok(x, w, b, 4, 0, "conv_transpose2d")) return NULL;
    if (oph < 0 || opw < 0 || (oph >= sh && oph) || (opw >= sw && opw)) {
        gn_err(GN_EINVAL,
               "conv_transpose2d: output padding (%d, %d) must be smaller than the stride (%d, %d)", oph, opw,
               sh, sw);
        return NULL;
    }
    geom g = {x->shape[0], w->shape[1], 0,       0,        x->shape[1], w->shape[2], w->shape[3],
              sh,          sw,          pad.top, pad.left, x->shape[2], x->shape[3]};
    g.H = (g.Ho - 1) * sh - pad.top - pad.bottom + g.kh + oph;
    g.W = (g.Wo - 1) * sw - pad.left - pad.right + g.kw + opw;
    return convt_impl(c, x, w, b, g, 0);
}

nn_tensor *nn_conv_transpose1d(nn_ctx *c, nn_tensor *x, nn_tensor *w, nn_tensor *b, int stride, int pad,
                               int out_pad) {
    if (!x || !w || conv_args_ok(x, w, b, 3, 0, "conv_transpose1d")) return NULL;
    if (out_pad < 0 || (out_pad && out_pad >= stride)) {
        gn_err(GN_EINVAL, "conv_transpose1d: output padding %d must be smaller than the stride %d", out_pad,
               stride);
        return NULL;
    }
    geom g = {x->shape[0], w->shape[1], 1, 0, x->shape[1], 1, w->shape[2], 1, stride, 0, pad, 1, x->shape[2]};
    g.W = (g.Wo - 1) * stride - 2 * pad + g.kw + out_pad;
    return convt_impl(c, x, w, b, g, 1);
}
