// Pooling and bilinear resizing over (N, C, H, W); every (n, c) plane is
// independent, so planes are the unit of parallel work.
#include <float.h>
#include <math.h>
#include <string.h>

#include "ops.h"

static int pool_out(const nn_tensor *x, int kh, int kw, int sh, int sw, nn_pad2d p, int *Ho, int *Wo,
                    const char *what) {
    char s[96];
    if (x->ndim != 4)
        return gn_err(GN_EINVAL, "%s: input %s is not (N, C, H, W)", what, nn_shape_str(x, s, sizeof s));
    if (kh <= 0 || kw <= 0 || sh <= 0 || sw <= 0)
        return gn_err(GN_EINVAL, "%s: kernel and stride must be positive", what);
    if (p.top < 0 || p.bottom < 0 || p.left < 0 || p.right < 0 || p.top >= kh || p.bottom >= kh ||
        p.left >= kw || p.right >= kw)
        return gn_err(GN_EINVAL, "%s: padding must be in [0, kernel)", what);
    int hh = x->shape[2] + p.top + p.bottom, ww = x->shape[3] + p.left + p.right;
    if (hh < kh || ww < kw)
        return gn_err(GN_EINVAL, "%s: %dx%d kernel larger than the padded input", what, kh, kw);
    *Ho = (hh - kh) / sh + 1;
    *Wo = (ww - kw) / sw + 1;
    return GN_OK;
}

// ---- max pool ----

static void maxpool_bw(nn_node *nd, nn_ctx *c) {
    (void)c;
    nn_tensor *x = nd->in[0], *y = nd->out;
    const int32_t *arg = nd->saved;
    long planes = (long)x->shape[0] * x->shape[1];
    size_t HW = (size_t)x->shape[2] * x->shape[3], P = (size_t)y->shape[2] * y->shape[3];
#pragma omp parallel for schedule(static) if (x->n > NN_PAR_MIN)
    for (long pl = 0; pl < planes; pl++)
        for (size_t o = 0; o < P; o++) x->grad[pl * HW + arg[pl * P + o]] += y->grad[pl * P + o];
}

nn_tensor *nn_maxpool2d(nn_ctx *c, nn_tensor *x, int kh, int kw, int sh, int sw, nn_pad2d pad) {
    if (!x) return NULL;
    int Ho, Wo;
    if (pool_out(x, kh, kw, sh, sw, pad, &Ho, &Wo, "maxpool2d")) return NULL;
    int N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    nn_tensor *y = nn_tensor_new(c, NN_SHAPE(N, C, Ho, Wo));
    int32_t *arg = nn_arena_alloc(&c->arena, sizeof(int32_t) * y->n);
    if (!y || !arg) return NULL;
    long planes = (long)N * C;
#pragma omp parallel for schedule(static) if (x->n > NN_PAR_MIN)
    for (long pl = 0; pl < planes; pl++) {
        const float *xp = x->data + pl * H * W;
        for (int oh = 0; oh < Ho; oh++)
            for (int ow = 0; ow < Wo; ow++) {
                float best = -INFINITY;
                int bi = -1;
                for (int i = 0; i < kh; i++) {
                    int ih = oh * sh - pad.top + i;
                    if (ih < 0 || ih >= H) continue;
                    for (int j = 0; j < kw; j++) {
                        int iw = ow * sw - pad.left + j;
                        if (iw < 0 || iw >= W) continue;
                        float v = xp[ih * W + iw];
                        if (bi < 0 || v > best || isnan(v)) { // first maximum wins; NaN propagates
                            best = v;
                            bi = ih * W + iw;
                            if (isnan(v)) goto done;
                        }
                    }
                }
            done:
                y->data[(size_t)pl * Ho * Wo + oh * Wo + ow] = best;
                arg[(size_t)pl * Ho * Wo + oh * Wo + ow] = bi;
            }
    }
    nn_node *nd = nn_record(c, y, maxpool_bw, 1, &x);
    if (nd) nd->saved = arg;
    return y;
}

// ---- average pool ----

typedef struct avgargs {
    int kh, kw, sh, sw, pt, pl, count_pad;
} avgargs;

static float avg_div(const avgargs *a, int H, int W, int oh, int ow) {
    if (a->count_pad) return (float)(a->kh * a->kw);
    int h0 = oh * a->sh - a->pt, w0 = ow * a->sw - a->pl;
    int h1 = h0 + a->kh, w1 = w0 + a->kw;
    if (h0 < 0) h0 = 0;
    if (w0 < 0) w0 = 0;
    if (h1 > H) h1 = H;
    if (w1 > W) w1 = W;
    return (float)((h1 - h0) * (w1 - w0));
}

// Stride 1 along rows (up to AVG_ROW outputs): by whole rows of outputs, a tap at a time over the outputs
// whose tap is inside the row — each value gets its terms in the same order as one output at a time
// (forward: taps in (i, j) order; backward: by output row, then output column), so the same bits.
#define AVG_ROW 1024
static void avg_row_taps(const avgargs *a, int W, int Wo, int j, int *lo, int *hi) {
    int off = j - a->pl; // iw = ow + off
    *lo = off < 0 ? -off : 0, *hi = W - off < Wo ? W - off : Wo;
    if (*hi < *lo) *hi = *lo;
}
static void avgpool_plane_fwd(const avgargs *a, const float *xp, float *yp, int H, int W, int Ho, int Wo) {
    for (int oh = 0; oh < Ho; oh++) {
        float *yr = yp + (size_t)oh * Wo;
        for (int ow = 0; ow < Wo; ow++) yr[ow] = 0.0f;
        for (int i = 0; i < a->kh; i++) {
            int ih = oh * a->sh - a->pt + i, lo, hi;
            if (ih < 0 || ih >= H) continue;
            for (int j = 0; j < a->kw; j++) {
                avg_row_taps(a, W, Wo, j, &lo, &hi);
                const float *xr = xp + (size_t)ih * W + j - a->pl;
                for (int ow = lo; ow < hi; ow++) yr[ow] += xr[ow];
            }
        }
        for (int ow = 0; ow < Wo; ow++) yr[ow] /= avg_div(a, H, W, oh, ow);
    }
}
static void avgpool_plane_bw(const avgargs *a, float *gx, const float *gy, int H, int W, int Ho, int Wo) {
    float g[AVG_ROW];
    for (int oh = 0; oh < Ho; oh++) {
        for (int ow = 0; ow < Wo; ow++) g[ow] = gy[(size_t)oh * Wo + ow] / avg_div(a, H, W, oh, ow);
        for (int i = 0; i < a->kh; i++) {
            int ih = oh * a->sh - a->pt + i, lo, hi;
            if (ih < 0 || ih >= H) continue;
            for (int j = a->kw - 1; j >= 0; j--) { // a value's terms by increasing output column
                avg_row_taps(a, W, Wo, j, &lo, &hi);
                float *xr = gx + (size_t)ih * W + j - a->pl;
                for (int ow = lo; ow < hi; ow++) xr[ow] += g[ow];
            }
        }
    }
}

static void avgpool_bw(nn_node *nd, nn_ctx *c) {
    (void)c;
    nn_tensor *x = nd->in[0], *y = nd->out;
    const avgargs *a = (const avgargs *)nd->ia;
    int H = x->shape[2], W = x->shape[3], Ho = y->shape[2], Wo = y->shape[3];
    long planes = (long)x->shape[0] * x->shape[1];
#pragma omp parallel for schedule(static) if (x->n > NN_PAR_MIN)
    for (long pl = 0; pl < planes; pl++) {
        float *gx = x->grad + pl * H * W;
        const float *gy = y->grad + pl * Ho * Wo;
        if (a->sw == 1 && Wo <= AVG_ROW) {
            avgpool_plane_bw(a, gx, gy, H, W, Ho, Wo);
            continue;
        }
        for (int oh = 0; oh < Ho; oh++)
            for (int ow = 0; ow < Wo; ow++) {
                float g = gy[oh * Wo + ow] / avg_div(a, H, W, oh, ow);
                for (int i = 0; i < a->kh; i++) {
                    int ih = oh * a->sh - a->pt + i;
                    if (ih < 0 || ih >= H) continue;
                    for (int j = 0; j < a->kw; j++) {
                        int iw = ow * a->sw - a->pl + j;
                        if (iw >= 0 && iw < W) gx[ih * W + iw] += g;
                    }
                }
            }
    }
}

nn_tensor *nn_avgpool2d(nn_ctx *c, nn_tensor *x, int kh, int kw, int sh, int sw, nn_pad2d pad,
                        int count_pad) {
    if (!x) return NULL;
    int Ho, Wo;
    if (pool_out(x, kh, kw, sh, sw, pad, &Ho, &Wo, "avgpool2d")) return NULL;
    int N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    nn_tensor *y = nn_tensor_new(c, NN_SHAPE(N, C, Ho, Wo));
    if (!y) return NULL;
    avgargs a = {kh, kw, sh, sw, pad.top, pad.left, count_pad ? 1 : 0};
    long planes = (long)N * C;
#pragma omp parallel for schedule(static) if (x->n > NN_PAR_MIN)
    for (long pl = 0; pl < planes; pl++) {
        const float *xp = x->data + pl * H * W;
        if (sw == 1) {
            avgpool_plane_fwd(&a, xp, y->data + (size_t)pl * Ho * Wo, H, W, Ho, Wo);
            continue;
        }
        for (int oh = 0; oh < Ho; oh++)
            for (int ow = 0; ow < Wo; ow++) {
                float s = 0;
                for (int i = 0; i < kh; i++) {
                    int ih = oh * sh - pad.top + i;
                    if (ih < 0 || ih >= H) continue;
                    for (int j = 0; j < kw; j++) {
                        int iw = ow * sw - pad.left + j;
                        if (iw >= 0 && iw < W) s += xp[ih * W + iw];
                    }
                }
                y->data[(size_t)pl * Ho * Wo + oh * Wo + ow] = s / avg_div(&a, H, W, oh, ow);
            }
    }
    nn_node *nd = nn_record(c, y, avgpool_bw, 1, &x);
    if (nd) memcpy(nd->ia, &a, sizeof a);
    return y;
}

// ---- global average pool ----

static void gap_bw(nn_node *nd, nn_ctx *c) {
    (void)c;
    nn_tensor *x = nd->in[0], *y = nd->out;
    size_t HW = (size_t)x->shape[2] * x->shape[3];
    float inv = 1.0f / (float)HW;
    for (size_t pl = 0; pl < y->n; pl++) {
        float g = y->grad[pl] * inv;
        for (size_t p = 0; p < HW; p++) x->grad[pl * HW + p] += g;
    }
}

nn_tensor *nn_global_avgpool(nn_ctx *c, nn_tensor *x) {
    if (!x) return NULL;
    if (x->ndim != 4) {
        char s[96];
        gn_err(GN_EINVAL, "global_avgpool: input %s is not (N, C, H, W)", nn_shape_str(x, s, sizeof s));
        return NULL;
    }
    nn_tensor *y = nn_tensor_new(c, NN_SHAPE(x->shape[0], x->shape[1]));
    if (!y) return NULL;
    size_t HW = (size_t)x->shape[2] * x->shape[3];
    for (size_t pl = 0; pl < y->n; pl++) {
        double s = 0;
        for (size_t p = 0; p < HW; p++) s += x->data[pl * HW + p];
        y->data[pl] = (float)(s / (double)HW);
    }
    nn_record(c, y, gap_bw, 1, &x);
    return y;
}

// ---- bilinear resize (TF1 legacy: src = dst * in/out) ----

typedef struct lerp1 {
    int lo, hi;
    float w; // weight of hi
} lerp1;

static void lerp_table(lerp1 *t, int in, int out) {
    float scale = (float)in / (float)out;
    for (int o = 0; o < out; o++) {
        float src = (float)o * scale;
        int lo = (int)floorf(src);
        if (lo > in - 1) lo = in - 1;
        t[o].lo = lo;
        t[o].hi = lo + 1 < in ? lo + 1 : in - 1;
        t[o].w = src - (float)lo;
    }
}

static void resize_bw(nn_node *nd, nn_ctx *c) {
    (void)c;
    nn_tensor *x = nd->in[0], *y = nd->out;
    int H = x->shape[2], W = x->shape[3], Ho = y->shape[2], Wo = y->shape[3];
    const lerp1 *th = nd->saved, *tw = th + Ho;
    long planes = (long)x->shape[0] * x->shape[1];
#pragma omp parallel for schedule(static) if (x->n > NN_PAR_MIN)
    for (long pl = 0; pl < planes; pl++) {
        float *gx = x->grad + pl * H * W;
        const float *gy = y->grad + pl * Ho * Wo;
        for (int oh = 0; oh < Ho; oh++)
            for (int ow = 0; ow < Wo; ow++) {
                float g = gy[oh * Wo + ow], a = th[oh].w, b = tw[ow].w;
                gx[th[oh].lo * W + tw[ow].lo] += g * (1 - a) * (1 - b);
                gx[th[oh].lo * W + tw[ow].hi] += g * (1 - a) * b;
                gx[th[oh].hi * W + tw[ow].lo] += g * a * (1 - b);
                gx[th[oh].hi * W + tw[ow].hi] += g * a * b;
            }
    }
}

nn_tensor *nn_resize_bilinear(nn_ctx *c, nn_tensor *x, int Ho, int Wo) {
    if (!x) return NULL;
    if (x->ndim != 4 || Ho <= 0 || Wo <= 0) {
        char s[96];
        gn_err(GN_EINVAL, "resize_bilinear: input %s to %dx%d", nn_shape_str(x, s, sizeof s), Ho, Wo);
        return NULL;
    }
    int N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    nn_tensor *y = nn_tensor_new(c, NN_SHAPE(N, C, Ho, Wo));
    lerp1 *th = nn_arena_alloc(&c->arena, sizeof(lerp1) * (size_t)(Ho + Wo));
    if (!y || !th) return NULL;
    lerp1 *tw = th + Ho;
    lerp_table(th, H, Ho);
    lerp_table(tw, W, Wo);
    long planes = (long)N * C;
#pragma omp parallel for schedule(static) if (x->n > NN_PAR_MIN)
    for (long pl = 0; pl < planes; pl++) {
        const float *xp = x->data + pl * H * W;
        float *yp = y->data + pl * Ho * Wo;
        for (int oh = 0; oh < Ho; oh++) {
            const float *r0 = xp + th[oh].lo * W, *r1 = xp + th[oh].hi * W;
            float a = th[oh].w;
            for (int ow = 0; ow < Wo; ow++) {
                float b = tw[ow].w;
                float top = r0[tw[ow].lo] + (r0[tw[ow].hi] - r0[tw[ow].lo]) * b;
                float bot = r1[tw[ow].lo] + (r1[tw[ow].hi] - r1[tw[ow].lo]) * b;
                yp[oh * Wo + ow] = top + (bot - top) * a;
            }
        }
    }
    nn_node *nd = nn_record(c, y, resize_bw, 1, &x);
    if (nd) nd->saved = th;
    return y;
}

nn_tensor *nn_upsample2x(nn_ctx *c, nn_tensor *x) {
    if (!x) return NULL;
    if (x->ndim != 4) return nn_resize_bilinear(c, x, 0, 0); // reports the shape error
    return nn_resize_bilinear(c, x, 2 * x->shape[2], 2 * x->shape[3]);
}
