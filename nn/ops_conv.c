// Convolutions: im2col + one cblas_sgemm over the whole batch; the transposed
// convolution is the adjoint (sgemm + col2im). 1-D convolutions are the 2-D
// ones with H = 1.
//
// Layouts: col is (C*kh*kw, N*Ho*Wo), so the forward product is
// W (O, C*kh*kw) x col -> (O, N*Ho*Wo), one large GEMM instead of N small ones.
// ctx->keep_im2col chooses between keeping the forward col matrix for the
// weight gradient (faster: conv/sgemm 0.77 vs 0.69 on ResNet-18 shapes) and
// recomputing it in backward (a two-branch ResNet-18 step: 1.0 GiB instead of
// 2.7 GiB). Backward temporaries are released before each op returns.
#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"
#include "simd.h"

typedef struct geom {
    int N, C, H, W;   // conv input
    int O, kh, kw;    // output channels, kernel
    int sh, sw, pt, pl;
    int Ho, Wo;       // conv output
} geom;

static void geom_store(const geom *g, int *ia) { memcpy(ia, g, sizeof *g); }
#define NN_CONV_WINO 23 // node->ia slot: the Winograd path computed this conv
static void geom_load(geom *g, const int *ia) { memcpy(g, ia, sizeof *g); }
_Static_assert(sizeof(geom) < NN_CONV_WINO * sizeof(int), "geom fits in a node");

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
static void im2col(const geom *g, const float *x, float *col) {
    long rows = (long)g->C * g->kh * g->kw;
    size_t P = (size_t)g->Ho * g->Wo, NP = (size_t)g->N * P;
#pragma omp parallel for schedule(static)
    for (long r = 0; r < rows; r++) {
        int c = (int)(r / (g->kh * g->kw)), i = (int)(r / g->kw % g->kh), j = (int)(r % g->kw);
        float *dst = col + (size_t)r * NP;
        for (int n = 0; n < g->N; n++) {
            const float *xc = x + ((size_t)n * g->C + c) * g->H * g->W;
            for (int oh = 0; oh < g->Ho; oh++) {
                float *d = dst + (size_t)n * P + (size_t)oh * g->Wo;
                int ih = oh * g->sh - g->pt + i;
                if (ih < 0 || ih >= g->H) {
                    memset(d, 0, sizeof(float) * (size_t)g->Wo);
                    continue;
                }
                const float *xr = xc + (size_t)ih * g->W;
                if (g->sw == 1) {
                    int off = j - g->pl; // iw = ow + off
                    int lo = off < 0 ? -off : 0, hi = g->W - off < g->Wo ? g->W - off : g->Wo;
                    if (hi < lo) hi = lo;
                    if (lo > g->Wo) lo = hi = g->Wo;
                    memset(d, 0, sizeof(float) * (size_t)lo);
                    if (hi > lo) memcpy(d + lo, xr + lo + off, sizeof(float) * (size_t)(hi - lo));
                    memset(d + hi, 0, sizeof(float) * (size_t)(g->Wo - hi));
                } else {
                    for (int ow = 0; ow < g->Wo; ow++) {
                        int iw = ow * g->sw - g->pl + j;
                        d[ow] = (iw >= 0 && iw < g->W) ? xr[iw] : 0.0f;
                    }
                }
            }
        }
    }
}

// The adjoint of im2col: x[n][c][ih][iw] += col[...]. Every (n, c) plane
// receives only its own entries, so planes are the parallel unit and the
// summation order within a plane is fixed whatever the thread count.
static void col2im(const geom *g, const float *col, float *x) {
    size_t P = (size_t)g->Ho * g->Wo, NP = (size_t)g->N * P;
    long planes = (long)g->N * g->C;
#pragma omp parallel for schedule(static)
    for (long pl = 0; pl < planes; pl++) {
        int n = (int)(pl / g->C), c = (int)(pl % g->C);
        float *xc = x + (size_t)pl * g->H * g->W;
        for (int i = 0; i < g->kh; i++)
            for (int j = 0; j < g->kw; j++) {
                const float *src = col + ((size_t)(c * g->kh + i) * g->kw + j) * NP + (size_t)n * P;
                for (int oh = 0; oh < g->Ho; oh++) {
                    int ih = oh * g->sh - g->pt + i;
                    if (ih < 0 || ih >= g->H) continue;
                    const float *s = src + (size_t)oh * g->Wo;
                    float *xr = xc + (size_t)ih * g->W;
                    for (int ow = 0; ow < g->Wo; ow++) {
                        int iw = ow * g->sw - g->pl + j;
                        if (iw >= 0 && iw < g->W) xr[iw] += s[ow];
                    }
                }
            }
    }
}

// (N, C, P) <-> (C, N*P)
static void nchw_to_cm(const float *src, float *dst, int N, int C, size_t P) {
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++)
        for (int n = 0; n < N; n++) memcpy(dst + ((size_t)c * N + n) * P, src + ((size_t)n * C + c) * P, sizeof(float) * P);
}

// dst (N, C, P) (+)= src (C, N*P) + bias[c]
static void cm_to_nchw(const float *src, float *dst, int N, int C, size_t P, const float *bias, int accumulate) {
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++)
        for (int n = 0; n < N; n++) {
            const float *s = src + ((size_t)c * N + n) * P;
            float *d = dst + ((size_t)n * C + c) * P;
            float b = bias ? bias[c] : 0.0f;
            if (accumulate)
                for (size_t p = 0; p < P; p++) d[p] += s[p] + b;
            else
                for (size_t p = 0; p < P; p++) d[p] = s[p] + b;
        }
}

// bias gradient: gb[c] += sum over n, p of g[n][c][p]
static void bias_grad(const float *g, float *gb, int N, int C, size_t P) {
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        double s = 0;
        for (int n = 0; n < N; n++) {
            const float *r = g + ((size_t)n * C + c) * P;
            for (size_t p = 0; p < P; p++) s += r[p];
        }
        gb[c] += (float)s;
    }
}

// ---- Winograd F(2x2, 3x3) for 3x3 stride-1 convolutions (Lavin & Gray 2016) ----
// Every 2x2 output tile t of every image comes from a 4x4 input patch d:
//   y = At [ (G g Gt) .* (Bt d B) ] A,
// so the 16 positions xi of the transformed domain are 16 independent GEMMs
//   M_xi (O, T) = U_xi (O, C) x V_xi (C, T),   U = G g Gt, V = Bt d B,
// with 16/9 of the multiplications per output pair of the direct method
// replaced by 4/9 (2.25x fewer). Backward is the exact adjoint of this map:
//   dM = A dy At;  dU_xi = dM_xi V_xi^T, dg = Gt dU G;  dV_xi = U_xi^T dM_xi, dd = B dV Bt.
// Tiles at the border read zeros outside the input (the padding) and drop
// outputs beyond Ho x Wo. Layout: V[xi][c][t], M[xi][o][t], t = n*th*tw + i*tw + j.

// 1-D transforms (applied to rows, then columns)
#define WG_BT(d0, d1, d2, d3, v) (v[0] = d0 - d2, v[1] = d1 + d2, v[2] = d2 - d1, v[3] = d1 - d3)
#define WG_BT_ADJ(v0, v1, v2, v3, d) (d[0] = v0, d[1] = v1 - v2 + v3, d[2] = v1 + v2 - v0, d[3] = -v3)
#define WG_AT(m0, m1, m2, m3, y) (y[0] = m0 + m1 + m2, y[1] = m1 - m2 - m3)
#define WG_AT_ADJ(y0, y1, m) (m[0] = y0, m[1] = y0 + y1, m[2] = y0 - y1, m[3] = -y1)

static int wino_ok(const geom *g) { return g->kh == 3 && g->kw == 3 && g->sh == 1 && g->sw == 1 && g->H > 1; }

// U[xi][o][c] = (G g Gt)[xi] for every filter g = w[o][c] (3x3)
static void wino_filter(const geom *g, const float *w, float *U) {
    size_t OC = (size_t)g->O * g->C;
#pragma omp parallel for schedule(static)
    for (long oc = 0; oc < (long)OC; oc++) {
        const float *f = w + (size_t)oc * 9;
        float t[4][3], u[4][4];
        for (int j = 0; j < 3; j++) { // rows: G f
            float a = f[j], b = f[3 + j], c = f[6 + j];
            t[0][j] = a, t[1][j] = 0.5f * (a + b + c), t[2][j] = 0.5f * (a - b + c), t[3][j] = c;
        }
        for (int i = 0; i < 4; i++) { // columns: (G f) Gt
            float a = t[i][0], b = t[i][1], c = t[i][2];
            u[i][0] = a, u[i][1] = 0.5f * (a + b + c), u[i][2] = 0.5f * (a - b + c), u[i][3] = c;
        }
        for (int xi = 0; xi < 16; xi++) U[(size_t)xi * OC + oc] = u[xi / 4][xi % 4];
    }
}

// gw[o][c] += Gt dU[o][c] G
static void wino_filter_adj(const geom *g, const float *dU, float *gw) {
    size_t OC = (size_t)g->O * g->C;
#pragma omp parallel for schedule(static)
    for (long oc = 0; oc < (long)OC; oc++) {
        float u[4][4], t[4][3];
        for (int xi = 0; xi < 16; xi++) u[xi / 4][xi % 4] = dU[(size_t)xi * OC + oc];
        for (int i = 0; i < 4; i++) {
            float a = u[i][0], b = u[i][1], c = u[i][2], d = u[i][3];
            t[i][0] = a + 0.5f * (b + c), t[i][1] = 0.5f * (b - c), t[i][2] = 0.5f * (b + c) + d;
        }
        float *f = gw + (size_t)oc * 9;
        for (int j = 0; j < 3; j++) {
            float a = t[0][j], b = t[1][j], c = t[2][j], d = t[3][j];
            f[j] += a + 0.5f * (b + c), f[3 + j] += 0.5f * (b - c), f[6 + j] += 0.5f * (b + c) + d;
        }
    }
}

// The transforms below run over one row of tiles at a time, 8 tiles per
// vector: a patch row's 4 values are the even/odd deinterleaved input row at
// tile j and j+1, and V/M hold the tiles of a row contiguously.
// per-thread row buffers: rows of `len` floats (a multiple of 8 with 8 to spare),
// each preceded by 8 zeros so that index -1 reads 0
typedef struct wrow {
    float *buf;
    size_t len;
} wrow;
static int wrow_init(wrow *r, int tw) {
    r->len = ((size_t)tw + 23) / 8 * 8;
    r->buf = calloc(16 * r->len, sizeof(float));
    return r->buf != NULL;
}
static inline float *wrow_at(const wrow *r, int k) { return r->buf + (size_t)k * r->len + 8; }

// A vector of row[j .. j+8) of a row of n values, lanes beyond n read as 0.
#define ROW_LD(row, j, n) (__extension__({                                         \
    v8 r_;                                                                         \
    if ((j) + 8 <= (n)) r_ = v8_load((row) + (j));                                 \
    else {                                                                         \
        float t_[8] = {0};                                                         \
        memcpy(t_, (row) + (j), sizeof(float) * (size_t)((n) - (j)));              \
        r_ = v8_load(t_);                                                          \
    }                                                                              \
    r_; }))
#define ROW_ST(row, j, n, v) (__extension__({                                      \
    if ((j) + 8 <= (n)) v8_store((row) + (j), (v));                                \
    else {                                                                         \
        float t_[8];                                                               \
        v8_store(t_, (v));                                                         \
        memcpy((row) + (j), t_, sizeof(float) * (size_t)((n) - (j)));              \
    } }))
#define EVEN8 ((v8i){0, 2, 4, 6, 8, 10, 12, 14})
#define ODD8 ((v8i){1, 3, 5, 7, 9, 11, 13, 15})
#define LO8 ((v8i){0, 8, 1, 9, 2, 10, 3, 11})
#define HI8 ((v8i){4, 12, 5, 13, 6, 14, 7, 15})

// even/odd columns of input row `row` (NULL: outside the image), j = 0..tw:
// e[j] = row[2j - pl], o[j] = row[2j + 1 - pl], 0 outside 0..W-1
NN_SIMD_CLONES static void deinterleave(const float *row, int W, int pl, int tw, float *e, float *o) {
    int j = 0;
    if (!row) {
        memset(e, 0, sizeof(float) * (size_t)(tw + 1)), memset(o, 0, sizeof(float) * (size_t)(tw + 1));
        return;
    }
    for (; j <= tw; j++) {
        int k = 2 * j - pl;
        if (k >= 0 && j + 8 <= tw + 1 && k + 16 <= W) { // the interior, 8 at a time
            v8 a = v8_load(row + k), b = v8_load(row + k + 8);
            v8_store(e + j, __builtin_shuffle(a, b, EVEN8)), v8_store(o + j, __builtin_shuffle(a, b, ODD8));
            j += 7;
            continue;
        }
        e[j] = k >= 0 && k < W ? row[k] : 0.0f;
        o[j] = k + 1 >= 0 && k + 1 < W ? row[k + 1] : 0.0f;
    }
}

// row[2j - pl] (+)= e[j], row[2j + 1 - pl] (+)= o[j] for j = 0..m-1, columns outside 0..W-1 dropped
NN_SIMD_CLONES static void interleave(float *row, int W, int pl, int m, const float *e, const float *o, float bias, int add) {
    v8 vb = v8_set1(bias);
    for (int j = 0; j < m; j++) {
        int k = 2 * j - pl;
        if (k >= 0 && j + 8 <= m && k + 16 <= W) {
            v8 ev = v8_load(e + j) + vb, od = v8_load(o + j) + vb;
            v8 lo = __builtin_shuffle(ev, od, LO8), hi = __builtin_shuffle(ev, od, HI8);
            if (add) lo += v8_load(row + k), hi += v8_load(row + k + 8);
            v8_store(row + k, lo), v8_store(row + k + 8, hi);
            j += 7;
            continue;
        }
        if (k >= 0 && k < W) row[k] = (add ? row[k] : 0.0f) + (e[j] + bias);
        if (k + 1 >= 0 && k + 1 < W) row[k + 1] = (add ? row[k + 1] : 0.0f) + (o[j] + bias);
    }
}

// The transforms work on a chunk of nb images from n0 with every channel:
// V[xi][c][tc], M[xi][o][tc] with tc = (n - n0)*th*tw + i*tw + j over the
// chunk's TC = nb*th*tw tiles, so a chunk's V and M stay in cache between the
// transform and its 16 GEMMs. Chunks run in parallel; each is serial inside.
typedef struct wchunk {
    int n0, nb, th, tw;
    size_t TC;
} wchunk;

// V[xi][c][tc] = (Bt d B)[xi] for every input patch of the chunk
NN_SIMD_CLONES static void wino_input(const geom *g, const wchunk *k, const float *x, float *V, wrow *e, wrow *o) {
    int th = k->th, tw = k->tw;
    size_t CT = (size_t)g->C * k->TC;
    for (int n = k->n0; n < k->n0 + k->nb; n++)
        for (int c = 0; c < g->C; c++) {
            const float *xp = x + ((size_t)n * g->C + c) * g->H * g->W;
            float *vp = V + (size_t)c * k->TC + (size_t)(n - k->n0) * th * tw;
            for (int i = 0; i < th; i++) {
                for (int r = 0; r < 4; r++) {
                    int ih = 2 * i - g->pt + r;
                    deinterleave(ih >= 0 && ih < g->H ? xp + (size_t)ih * g->W : NULL, g->W, g->pl, tw, wrow_at(e, r),
                                 wrow_at(o, r));
                }
                float *vrow = vp + (size_t)i * tw;
                for (int j = 0; j < tw; j += 8) {
                    v8 d[4][4], t[4][4];
                    for (int r = 0; r < 4; r++) {
                        d[r][0] = v8_load(wrow_at(e, r) + j), d[r][1] = v8_load(wrow_at(o, r) + j);
                        d[r][2] = v8_load(wrow_at(e, r) + j + 1), d[r][3] = v8_load(wrow_at(o, r) + j + 1);
                    }
                    for (int q = 0; q < 4; q++) {
                        v8 v[4];
                        WG_BT(d[0][q], d[1][q], d[2][q], d[3][q], v);
                        for (int r = 0; r < 4; r++) t[r][q] = v[r];
                    }
                    for (int r = 0; r < 4; r++) {
                        v8 v[4];
                        WG_BT(t[r][0], t[r][1], t[r][2], t[r][3], v);
                        for (int q = 0; q < 4; q++) ROW_ST(vrow + (size_t)(r * 4 + q) * CT, j, tw, v[q]);
                    }
                }
            }
        }
}

// gx[n][c] += B dV Bt over every patch of the chunk (overlapping patches add)
NN_SIMD_CLONES static void wino_input_adj(const geom *g, const wchunk *k, const float *dV, float *gx, wrow *d, wrow *e) {
    int th = k->th, tw = k->tw;
    size_t CT = (size_t)g->C * k->TC;
    for (int n = k->n0; n < k->n0 + k->nb; n++)
        for (int c = 0; c < g->C; c++) {
            float *xp = gx + ((size_t)n * g->C + c) * g->H * g->W;
            const float *vp = dV + (size_t)c * k->TC + (size_t)(n - k->n0) * th * tw;
            for (int i = 0; i < th; i++) {
                const float *vrow = vp + (size_t)i * tw;
                for (int j = 0; j < tw; j += 8) {
                    v8 t[4][4];
                    for (int r = 0; r < 4; r++) {
                        v8 v[4];
                        WG_BT_ADJ(ROW_LD(vrow + (size_t)(r * 4) * CT, j, tw), ROW_LD(vrow + (size_t)(r * 4 + 1) * CT, j, tw),
                                  ROW_LD(vrow + (size_t)(r * 4 + 2) * CT, j, tw),
                                  ROW_LD(vrow + (size_t)(r * 4 + 3) * CT, j, tw), v);
                        for (int q = 0; q < 4; q++) t[r][q] = v[q];
                    }
                    for (int q = 0; q < 4; q++) {
                        v8 v[4];
                        WG_BT_ADJ(t[0][q], t[1][q], t[2][q], t[3][q], v);
                        for (int r = 0; r < 4; r++) v8_store(wrow_at(d, r * 4 + q) + j, v[r]);
                    }
                }
                for (int q = 0; q < 16; q++) memset(wrow_at(d, q) + tw, 0, 8 * sizeof(float)); // tile tw: none
                for (int r = 0; r < 4; r++) {
                    int ih = 2 * i - g->pt + r;
                    if (ih < 0 || ih >= g->H) continue;
                    // columns 2j - pl, 2j + 1 - pl (j = 0..tw): tile j's s = 0, 1 and tile j-1's s = 2, 3
                    const float *d0 = wrow_at(d, r * 4), *d1 = wrow_at(d, r * 4 + 1), *d2 = wrow_at(d, r * 4 + 2),
                                *d3 = wrow_at(d, r * 4 + 3);
                    float *ev = wrow_at(e, 0), *od = wrow_at(e, 1);
                    for (int j = 0; j <= tw; j += 8) {
                        v8_store(ev + j, v8_load(d0 + j) + v8_load(d2 + j - 1));
                        v8_store(od + j, v8_load(d1 + j) + v8_load(d3 + j - 1));
                    }
                    interleave(xp + (size_t)ih * g->W, g->W, g->pl, tw + 1, ev, od, 0.0f, 1);
                }
            }
        }
}

// y[n][o] = At M A (+ bias) for every tile of the chunk, outputs beyond Ho x Wo dropped
NN_SIMD_CLONES static void wino_output(const geom *g, const wchunk *k, const float *M, const float *bias, float *y, wrow *out) {
    int th = k->th, tw = k->tw;
    size_t OT = (size_t)g->O * k->TC;
    for (int n = k->n0; n < k->n0 + k->nb; n++)
        for (int o = 0; o < g->O; o++) {
            float b = bias ? bias[o] : 0.0f;
            float *yp = y + ((size_t)n * g->O + o) * g->Ho * g->Wo;
            const float *mp = M + (size_t)o * k->TC + (size_t)(n - k->n0) * th * tw;
            for (int i = 0; i < th; i++) {
                const float *mrow = mp + (size_t)i * tw;
                for (int j = 0; j < tw; j += 8) {
                    v8 t[2][4];
                    for (int q = 0; q < 4; q++) {
                        v8 v[2];
                        WG_AT(ROW_LD(mrow + (size_t)q * OT, j, tw), ROW_LD(mrow + (size_t)(4 + q) * OT, j, tw),
                              ROW_LD(mrow + (size_t)(8 + q) * OT, j, tw), ROW_LD(mrow + (size_t)(12 + q) * OT, j, tw), v);
                        t[0][q] = v[0], t[1][q] = v[1];
                    }
                    for (int a = 0; a < 2; a++) {
                        v8 v[2];
                        WG_AT(t[a][0], t[a][1], t[a][2], t[a][3], v);
                        v8_store(wrow_at(out, a * 2) + j, v[0]), v8_store(wrow_at(out, a * 2 + 1) + j, v[1]);
                    }
                }
                for (int a = 0; a < 2 && 2 * i + a < g->Ho; a++)
                    interleave(yp + (size_t)(2 * i + a) * g->Wo, g->Wo, 0, tw, wrow_at(out, a * 2),
                               wrow_at(out, a * 2 + 1), b, 0);
            }
        }
}

// dM[xi][o][tc] = (A dy At)[xi] for the chunk, dy = 0 beyond Ho x Wo
NN_SIMD_CLONES static void wino_output_adj(const geom *g, const wchunk *k, const float *gy, float *dM, wrow *e, wrow *o) {
    int th = k->th, tw = k->tw;
    size_t OT = (size_t)g->O * k->TC;
    for (int n = k->n0; n < k->n0 + k->nb; n++)
        for (int oc = 0; oc < g->O; oc++) {
            const float *yp = gy + ((size_t)n * g->O + oc) * g->Ho * g->Wo;
            float *mp = dM + (size_t)oc * k->TC + (size_t)(n - k->n0) * th * tw;
            for (int i = 0; i < th; i++) {
                for (int a = 0; a < 2; a++)
                    deinterleave(2 * i + a < g->Ho ? yp + (size_t)(2 * i + a) * g->Wo : NULL, g->Wo, 0, tw,
                                 wrow_at(e, a), wrow_at(o, a));
                float *mrow = mp + (size_t)i * tw;
                for (int j = 0; j < tw; j += 8) {
                    v8 t[2][4];
                    for (int a = 0; a < 2; a++) {
                        v8 v[4];
                        WG_AT_ADJ(v8_load(wrow_at(e, a) + j), v8_load(wrow_at(o, a) + j), v);
                        for (int q = 0; q < 4; q++) t[a][q] = v[q];
                    }
                    for (int q = 0; q < 4; q++) {
                        v8 v[4];
                        WG_AT_ADJ(t[0][q], t[1][q], v);
                        for (int r = 0; r < 4; r++) ROW_ST(mrow + (size_t)(r * 4 + q) * OT, j, tw, v[r]);
                    }
                }
            }
        }
}

// Chunks of whole images (patches overlap within an image only), at least
// WG_CHUNK_TILES tiles each so that the GEMMs stay efficient at small sizes.
#define WG_CHUNK_TILES 128
static int wino_chunk_images(const geom *g) {
    int tpi = ((g->Ho + 1) / 2) * ((g->Wo + 1) / 2), nb = (WG_CHUNK_TILES + tpi - 1) / tpi;
    return nb < g->N ? nb : g->N;
}
static wchunk wino_chunk(const geom *g, int nb, long idx) {
    wchunk k = {(int)idx * nb, 0, (g->Ho + 1) / 2, (g->Wo + 1) / 2, 0};
    k.nb = g->N - k.n0 < nb ? g->N - k.n0 : nb;
    k.TC = (size_t)k.nb * k.th * k.tw;
    return k;
}

// the 16 products of a chunk (BLAS runs single-threaded inside a parallel region)
static void wino_gemms(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int kk, const float *A, size_t sa, int lda,
                       const float *B, size_t sb, int ldb, float beta, float *Cm, size_t sc, int ldc) {
    for (int xi = 0; xi < 16; xi++)
        cblas_sgemm(CblasRowMajor, ta, tb, m, n, kk, 1.0f, A + xi * sa, lda, B + xi * sb, ldb, beta, Cm + xi * sc, ldc);
}

static int wino_fwd(nn_ctx *c, const geom *g, const float *x, const float *w, const float *b, float *y) {
    size_t OC = (size_t)g->O * g->C;
    int nb = wino_chunk_images(g);
    long nchunks = (g->N + nb - 1) / nb;
    size_t TCmax = (size_t)nb * ((g->Ho + 1) / 2) * ((g->Wo + 1) / 2);
    nn_arena_mark mark = nn_arena_get_mark(&c->arena);
    float *U = nn_arena_alloc(&c->arena, sizeof(float) * 16 * OC);
    if (!U) return GN_ENOMEM;
    wino_filter(g, w, U);
    int fail = 0;
#pragma omp parallel reduction(| : fail)
    {
        float *V = malloc(sizeof(float) * 16 * g->C * TCmax), *M = malloc(sizeof(float) * 16 * g->O * TCmax);
        wrow e, o;
        int ok = wrow_init(&e, (g->Wo + 1) / 2) & wrow_init(&o, (g->Wo + 1) / 2) && V && M;
        fail |= !ok;
#pragma omp for schedule(static)
        for (long ci = 0; ci < nchunks; ci++) {
            if (!ok) continue;
            wchunk k = wino_chunk(g, nb, ci);
            wino_input(g, &k, x, V, &e, &o);
            wino_gemms(CblasNoTrans, CblasNoTrans, g->O, (int)k.TC, g->C, U, OC, g->C, V, (size_t)g->C * k.TC, (int)k.TC,
                       0.0f, M, (size_t)g->O * k.TC, (int)k.TC);
            wino_output(g, &k, M, b, y, &e);
        }
        free(V), free(M), free(e.buf), free(o.buf);
    }
    nn_arena_release(&c->arena, mark);
    return fail ? gn_err(GN_ENOMEM, "conv2d: out of memory for the Winograd buffers") : GN_OK;
}

static void wino_bw(nn_ctx *c, const geom *g, const float *x, const float *w, const float *gy, float *gw, float *gx) {
    size_t OC = (size_t)g->O * g->C;
    int nb = wino_chunk_images(g), nt = gn_threads() > 0 ? gn_threads() : 1;
    long nchunks = (g->N + nb - 1) / nb;
    size_t TCmax = (size_t)nb * ((g->Ho + 1) / 2) * ((g->Wo + 1) / 2);
    float *U = nn_arena_alloc(&c->arena, sizeof(float) * 16 * OC);
    float *dU = gw ? nn_arena_alloc(&c->arena, sizeof(float) * 16 * OC * (size_t)nt) : NULL; // one per thread
    if (!U || (gw && !dU)) return;
    if (gw) memset(dU, 0, sizeof(float) * 16 * OC * (size_t)nt);
    if (gx) wino_filter(g, w, U);
#pragma omp parallel num_threads(nt)
    {
        float *V = malloc(sizeof(float) * 16 * g->C * TCmax), *dM = malloc(sizeof(float) * 16 * g->O * TCmax);
        wrow e, o;
        int ok = wrow_init(&e, (g->Wo + 1) / 2) & wrow_init(&o, (g->Wo + 1) / 2) && V && dM;
        float *dUt = gw ? dU + 16 * OC * (size_t)omp_get_thread_num() : NULL;
#pragma omp for schedule(static)
        for (long ci = 0; ci < nchunks; ci++) {
            if (!ok) continue;
            wchunk k = wino_chunk(g, nb, ci);
            size_t CT = (size_t)g->C * k.TC, OT = (size_t)g->O * k.TC;
            wino_output_adj(g, &k, gy, dM, &e, &o);
            if (gw) { // dU (O, C) += dM (O, TC) x V^T (TC, C)
                wino_input(g, &k, x, V, &e, &o);
                wino_gemms(CblasNoTrans, CblasTrans, g->O, g->C, (int)k.TC, dM, OT, (int)k.TC, V, CT, (int)k.TC, 1.0f,
                           dUt, OC, g->C);
            }
            if (gx) { // dV (C, TC) = U^T (C, O) x dM (O, TC)
                wino_gemms(CblasTrans, CblasNoTrans, g->C, (int)k.TC, g->O, U, OC, g->C, dM, OT, (int)k.TC, 0.0f, V, CT,
                           (int)k.TC);
                wino_input_adj(g, &k, V, gx, &e, &o);
            }
        }
        free(V), free(dM), free(e.buf), free(o.buf);
    }
    if (gw) { // the threads' sums in thread order, then back through the filter transform
        for (int t = 1; t < nt; t++)
            for (size_t i = 0; i < 16 * OC; i++) dU[i] += dU[16 * OC * (size_t)t + i];
        wino_filter_adj(g, dU, gw);
    }
}

static int check_geom(const geom *g, const char *what) {
    if (g->Ho <= 0 || g->Wo <= 0)
        return gn_err(GN_EINVAL, "%s: kernel %dx%d with padding larger than the %dx%d input", what, g->kh, g->kw, g->H,
                      g->W);
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
    if (nd->ia[NN_CONV_WINO]) {
        if (b && b->grad) bias_grad(y->grad, b->grad, g.N, g.O, P);
        wino_bw(c, &g, x->data, w->data, y->grad, w->grad, x->grad);
        nn_arena_release(&c->arena, mark);
        return;
    }
    float *gyt = nn_arena_alloc(&c->arena, sizeof(float) * (size_t)g.O * NP); // (O, N*P)
    float *col = nd->saved ? nd->saved : nn_arena_alloc(&c->arena, sizeof(float) * (size_t)K * NP); // (K, N*P)
    if (!gyt || !col) return;
    nchw_to_cm(y->grad, gyt, g.N, g.O, P);
    if (w->grad) { // gw (O, K) += gyt (O, NP) x col^T (NP, K)
        if (!nd->saved) im2col(&g, x->data, col);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, g.O, K, (int)NP, 1.0f, gyt, (int)NP, col, (int)NP, 1.0f,
                    w->grad, K);
    }
    if (b && b->grad) bias_grad(y->grad, b->grad, g.N, g.O, P);
    if (x->grad) { // dcol (K, NP) = w^T (K, O) x gyt (O, NP), over the col buffer (no longer needed)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, (int)NP, g.O, 1.0f, w->data, K, gyt, (int)NP, 0.0f,
                    col, (int)NP);
        col2im(&g, col, x->grad);
    }
    nn_arena_release(&c->arena, mark);
}

static nn_tensor *conv_impl(nn_ctx *c, nn_tensor *x, nn_tensor *w, nn_tensor *b, geom g, int one_d) {
    const char *what = one_d ? "conv1d" : "conv2d";
    if (check_geom(&g, what)) return NULL;
    size_t P = (size_t)g.Ho * g.Wo, NP = (size_t)g.N * P;
    int K = g.C * g.kh * g.kw;
    nn_tensor *y = one_d ? nn_tensor_new(c, NN_SHAPE(g.N, g.O, g.Wo)) : nn_tensor_new(c, NN_SHAPE(g.N, g.O, g.Ho, g.Wo));
    if (!y) return NULL;
    nn_tensor *in[3] = {x, w, b};
    if (c->winograd && wino_ok(&g)) {
        if (wino_fwd(c, &g, x->data, w->data, b ? b->data : NULL, y->data)) return NULL;
        nn_node *nd = nn_record(c, y, conv_bw, b ? 3 : 2, in);
        if (nd) geom_store(&g, nd->ia), nd->ia[NN_CONV_WINO] = 1;
        return y;
    }
    int keep = c->keep_im2col && nn_needs_grad(c, b ? 3 : 2, in);
    nn_arena_mark before_col = nn_arena_get_mark(&c->arena);
    float *col = nn_arena_alloc(&c->arena, sizeof(float) * (size_t)K * NP); // kept for backward when `keep`
    nn_arena_mark mark = nn_arena_get_mark(&c->arena);
    float *yt = nn_arena_alloc(&c->arena, sizeof(float) * (size_t)g.O * NP);
    if (!col || !yt) return NULL;
    im2col(&g, x->data, col);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g.O, (int)NP, K, 1.0f, w->data, K, col, (int)NP, 0.0f, yt,
                (int)NP);
    cm_to_nchw(yt, y->data, g.N, g.O, P, b ? b->data : NULL, 0);
    nn_arena_release(&c->arena, keep ? mark : before_col); // yt (and col unless kept) were temporaries
    nn_node *nd = nn_record(c, y, conv_bw, b ? 3 : 2, in);
    if (nd) {
        geom_store(&g, nd->ia);
        nd->saved = keep ? col : NULL;
    }
    return y;
}

static int conv_args_ok(const nn_tensor *x, const nn_tensor *w, const nn_tensor *b, int rank, int weight_c_axis,
                        const char *what) {
    char s1[96], s2[96];
    if (x->ndim != rank || w->ndim != rank)
        return gn_err(GN_EINVAL, "%s: input %s and weight %s must both have %d axes", what, nn_shape_str(x, s1, sizeof s1),
                      nn_shape_str(w, s2, sizeof s2), rank);
    if (w->shape[weight_c_axis] != x->shape[1])
        return gn_err(GN_EINVAL, "%s: input %s has %d channels but weight %s expects %d", what,
                      nn_shape_str(x, s1, sizeof s1), x->shape[1], nn_shape_str(w, s2, sizeof s2),
                      w->shape[weight_c_axis]);
    int nout = w->shape[1 - weight_c_axis];
    if (b && b->n != (size_t)nout) return gn_err(GN_EINVAL, "%s: bias has %zu values for %d channels", what, b->n, nout);
    return GN_OK;
}

nn_tensor *nn_conv2d(nn_ctx *c, nn_tensor *x, nn_tensor *w, nn_tensor *b, int sh, int sw, nn_pad2d pad) {
    if (!x || !w || conv_args_ok(x, w, b, 4, 1, "conv2d")) return NULL;
    geom g = {x->shape[0], x->shape[1], x->shape[2], x->shape[3], w->shape[0], w->shape[2], w->shape[3], sh, sw,
              pad.top, pad.left, 0, 0};
    if (sh > 0 && sw > 0) {
        g.Ho = (g.H + pad.top + pad.bottom - g.kh) / sh + 1;
        g.Wo = (g.W + pad.left + pad.right - g.kw) / sw + 1;
        if (g.H + pad.top + pad.bottom < g.kh || g.W + pad.left + pad.right < g.kw) g.Ho = 0;
    }
    return conv_impl(c, x, w, b, g, 0);
}

nn_tensor *nn_conv1d(nn_ctx *c, nn_tensor *x, nn_tensor *w, nn_tensor *b, int stride, int pad_l, int pad_r) {
    if (!x || !w || conv_args_ok(x, w, b, 3, 1, "conv1d")) return NULL;
    geom g = {x->shape[0], x->shape[1], 1, x->shape[2], w->shape[0], 1, w->shape[2], 1, stride, 0, pad_l, 1, 0};
    if (stride > 0) g.Wo = g.W + pad_l + pad_r < g.kw ? 0 : (g.W + pad_l + pad_r - g.kw) / stride + 1;
    return conv_impl(c, x, w, b, g, 1);
}

// ---- transposed convolution: the adjoint of the conv whose geometry is g ----
// (conv input = our output (N, C_out, Ho, Wo); conv output = our input (N, C_in, H, W))

static void convt_bw(nn_node *nd, nn_ctx *c) {
    geom g;
    geom_load(&g, nd->ia);
    nn_tensor *x = nd->in[0], *w = nd->in[1], *b = nd->nin > 2 ? nd->in[2] : NULL, *y = nd->out;
    size_t P = (size_t)g.Ho * g.Wo, NP = (size_t)g.N * P; // P: the input's pixels
    int K = g.C * g.kh * g.kw;                             // C = C_out
    nn_arena_mark mark = nn_arena_get_mark(&c->arena);
    float *colg = nn_arena_alloc(&c->arena, sizeof(float) * (size_t)K * NP);
    if (!colg) return;
    im2col(&g, y->grad, colg);
    if (b && b->grad) bias_grad(y->grad, b->grad, g.N, g.C, (size_t)g.H * g.W);
    if (w->grad) // gw (C_in, K) += xt (C_in, NP) x colg^T
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, g.O, K, (int)NP, 1.0f, nd->saved, (int)NP, colg, (int)NP,
                    1.0f, w->grad, K);
    if (x->grad) {
        float *gxt = nn_arena_alloc(&c->arena, sizeof(float) * (size_t)g.O * NP);
        if (!gxt) return;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g.O, (int)NP, K, 1.0f, w->data, K, colg, (int)NP, 0.0f,
                    gxt, (int)NP);
        cm_to_nchw(gxt, x->grad, g.N, g.O, P, NULL, 1);
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
    nn_tensor *y = one_d ? nn_tensor_new(c, NN_SHAPE(g.N, g.C, g.W)) : nn_tensor_new(c, NN_SHAPE(g.N, g.C, g.H, g.W));
    float *xt = nn_arena_alloc(&c->arena, sizeof(float) * (size_t)g.O * NP);
    float *col = nn_arena_alloc(&c->arena, sizeof(float) * (size_t)K * NP);
    if (!y || !xt || !col) return NULL;
    nchw_to_cm(x->data, xt, g.N, g.O, P);
    // col (K, NP) = w^T (K, C_in) x xt (C_in, NP)
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, (int)NP, g.O, 1.0f, w->data, K, xt, (int)NP, 0.0f, col,
                (int)NP);
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

nn_tensor *nn_conv_transpose2d(nn_ctx *c, nn_tensor *x, nn_tensor *w, nn_tensor *b, int sh, int sw, nn_pad2d pad,
                               int oph, int opw) {
    if (!x || !w || conv_args_ok(x, w, b, 4, 0, "conv_transpose2d")) return NULL;
    if (oph < 0 || opw < 0 || (oph >= sh && oph) || (opw >= sw && opw)) {
        gn_err(GN_EINVAL, "conv_transpose2d: output padding (%d, %d) must be smaller than the stride (%d, %d)", oph,
               opw, sh, sw);
        return NULL;
    }
    geom g = {x->shape[0], w->shape[1], 0, 0, x->shape[1], w->shape[2], w->shape[3], sh, sw, pad.top, pad.left,
              x->shape[2], x->shape[3]};
    g.H = (g.Ho - 1) * sh - pad.top - pad.bottom + g.kh + oph;
    g.W = (g.Wo - 1) * sw - pad.left - pad.right + g.kw + opw;
    return convt_impl(c, x, w, b, g, 0);
}

nn_tensor *nn_conv_transpose1d(nn_ctx *c, nn_tensor *x, nn_tensor *w, nn_tensor *b, int stride, int pad, int out_pad) {
    if (!x || !w || conv_args_ok(x, w, b, 3, 0, "conv_transpose1d")) return NULL;
    if (out_pad < 0 || (out_pad && out_pad >= stride)) {
        gn_err(GN_EINVAL, "conv_transpose1d: output padding %d must be smaller than the stride %d", out_pad, stride);
        return NULL;
    }
    geom g = {x->shape[0], w->shape[1], 1, 0, x->shape[1], 1, w->shape[2], 1, stride, 0, pad, 1, x->shape[2]};
    g.W = (g.Wo - 1) * stride - 2 * pad + g.kw + out_pad;
    return convt_impl(c, x, w, b, g, 1);
}
