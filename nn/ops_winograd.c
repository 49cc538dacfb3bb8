// Winograd F(4x4, 3x3) and F(2x2, 3x3) for the 3x3 stride-1 convolutions and F(2x2, 5x5) for the 5x5
// ones of nn/ops_conv.c: transforms, their adjoints, the chunk plan and the products.
#include <cblas.h>
#include <limits.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "conv_internal.h"
#include "gemm.h"
#include "ops.h"
#include "simd.h"

// ---- Winograd F(m x m, 3 x 3), m = 2, 3, 4 or 6, for 3x3 stride-1 convolutions (Lavin & Gray 2016) ----
// Every m x m output tile of every image comes from an a x a input patch d (a = m + 2):
//   y = At [ (G g Gt) .* (Bt d B) ] A,
// so the a*a positions xi of the transformed domain are a*a independent GEMMs
//   M_xi (O, T) = U_xi (O, C) x V_xi (C, T),   U = G g Gt, V = Bt d B,
// with a^2/m^2 multiplications per output instead of the direct method's 9:
// 4 for F(2x2) (interpolation points 0, 1, -1, inf), 2.78 for F(3x3) (0, 1, -1, 2, inf), 2.25 for F(4x4)
// (points 0, 1, -1, 2, -2, inf; rounding errors a few times those of F(2x2)) and 1.78 for F(6x6)
// (0, 1, -1, 2, -2, 1/2, -1/2, inf; rounding 1.2-1.8 times F(4x4)'s). The matrices: Toom-Cook at
// those points (A^T's rows the powers of the points, G's rows p^k / prod_(l != j)(p_j - p_l), B^T
// solved from the two), F(6x6)'s first row of G and B^T negated so that u_0 = g_0.
// Backward is the exact adjoint of this map:
//   dM = A dy At;  dU_xi = dM_xi V_xi^T, dg = Gt dU G;  dV_xi = U_xi^T dM_xi, dd = B dV Bt.
// Tiles at the border read zeros outside the input (the padding) and drop
// outputs beyond Ho x Wo. Layout: V[xi][c][t], M[xi][o][t] with t the tiles of a chunk of images
// (rows of tiles, or for small images 8 images per vector: see wchunk).
// ctx->winograd: 0 off; 1 (default) the tile size with the fewest multiplications (nn_wino_tile), im2col
// below 3x3 outputs; 2, 3, 4 or 6: that tile size only (3 and 6 in the image-vector layout only).

// Loops over a tile's rows, columns and lanes, unrolled (their bounds are constants once inlined): the
// arrays of vectors they index then live in registers instead of on the stack (AMD Zen 5, the multi-branch
// net: inference +9 %, training +10 % on one thread).
// (Not under ASan, where the unrolled copies made this file the build's longest by minutes.)
#ifdef __SANITIZE_ADDRESS__
#define WG_UNROLL
#else
#define WG_UNROLL _Pragma("GCC unroll 8")
#endif
#define WG_FOR(i, n) WG_UNROLL for (int i = 0; i < (n); i++)

// Transform variants v: F(2x2, 3x3) (v = 2), F(3x3, 3x3) (3), F(4x4, 3x3) (4), F(6x6, 3x3) (6) and, for 5x5
// stride-1 convs, F(2x2, 5x5) (5).
// F(2x2, 5x5) interpolates at the same 6 points as F(4x4, 3x3), so it has the same input transform Bt;
// its At is 2 x 6 (rows 1, p and 0, 0, ..., 1 at infinity) and its G 6 x 5 (p^k / N_p, the normalisations
// N_p of F(4x4, 3x3)'s G). It runs in the image-vector layout only.
// Variants 7 and 8: a 3x3 stride-2 conv as the stride-1 2x2 conv of its four stride phases (below), by
// F(4x4, 2x2) at the points of F(3x3, 3x3) (7) or F(3x3, 2x2) at those of F(2x2, 3x3) (8), whose input
// transforms they share.
#define WG_S2 7
#define WG_S2_3 8
#define WG_IS_S2(v) ((v) == WG_S2 || (v) == WG_S2_3)
// output tile size m, input patch size a = m + r - 1, the variant whose input transform v uses, largest a
#define WG_M(v) ((v) == 5 ? 2 : (v) == WG_S2 ? 4 : (v) == WG_S2_3 ? 3 : (v))
#define WG_A(v) ((v) == 5 ? 6 : (v) == WG_S2 ? 5 : (v) == WG_S2_3 ? 4 : (v) + 2)
#define WG_BV(v) ((v) == 5 ? 4 : (v) == WG_S2 ? 3 : (v) == WG_S2_3 ? 2 : (v))
#define WG_AMAX 8

// 1-D transforms over a vectors (8 tiles per lane): v = Bt d, its adjoint d = B v,
// y = At mm, its adjoint mm = A y, and the filter's u = G f and f = Gt u.
#define WG_DEF_BT(fn, T) NN_INLINE void fn(int m, const T *d, T *v) {                                        \
    if (m == 2) {                                                                                            \
        v[0] = d[0] - d[2], v[1] = d[1] + d[2], v[2] = d[2] - d[1], v[3] = d[1] - d[3];                      \
        return;                                                                                              \
    }                                                                                                        \
    if (m == 3) {                                                                                            \
        T d31 = d[3] - d[1];                                                                                 \
        v[0] = 2.0f * (d[0] - d[2]) + d31, v[1] = d[3] - d[2] - 2.0f * d[1];                                 \
        v[2] = d31 + 3.0f * (d[1] - d[2]);                                                                   \
        v[3] = d31, v[4] = 2.0f * (d[1] - d[3]) + (d[4] - d[2]);                                             \
        return;                                                                                              \
    }                                                                                                        \
    if (m == 6) {                                                                                            \
        T e1 = d[2] + d[6] - 4.25f * d[4], o1 = d[1] + d[5] - 4.25f * d[3];                                  \
        T e2 = 0.25f * d[2] - 1.25f * d[4] + d[6], o2 = 0.5f * d[1] - 2.5f * d[3] + 2.0f * d[5];             \
        T e3 = 4.0f * d[2] - 5.0f * d[4] + d[6], o3 = 2.0f * d[1] - 2.5f * d[3] + 0.5f * d[5];               \
        v[0] = d[0] - d[6] + 5.25f * (d[4] - d[2]), v[1] = e1 + o1, v[2] = e1 - o1, v[3] = e2 + o2;          \
        v[4] = e2 - o2, v[5] = e3 + o3, v[6] = e3 - o3, v[7] = d[7] - d[1] + 5.25f * (d[3] - d[5]);          \
        return;                                                                                              \
    }                                                                                                        \
    T t1 = d[4] - 4.0f * d[2], t2 = d[3] - 4.0f * d[1], t3 = d[4] - d[2], t4 = 2.0f * (d[3] - d[1]);         \
    v[0] = 4.0f * (d[0] - d[2]) + t3, v[1] = t1 + t2, v[2] = t1 - t2, v[3] = t3 + t4, v[4] = t3 - t4;        \
    v[5] = 4.0f * (d[1] - d[3]) + (d[5] - d[3]);                                                             \
}
WG_DEF_BT(wg_bt, v8)
WG_DEF_BT(wg_bt16, v16)
NN_INLINE void wg_bt_adj(int m, const v8 *v, v8 *d) {
    if (m == 2) {
        d[0] = v[0], d[1] = v[1] - v[2] + v[3], d[2] = v[1] + v[2] - v[0], d[3] = -v[3];
        return;
    }
    if (m == 3) {
        d[0] = 2.0f * v[0], d[1] = 2.0f * (v[2] - v[1] + v[4]) - v[0] - v[3];
        d[2] = -2.0f * v[0] - v[1] - 3.0f * v[2] - v[4], d[3] = v[0] + v[1] + v[2] + v[3] - 2.0f * v[4];
        d[4] = v[4];
        return;
    }
    if (m == 6) {
        v8 s1 = v[1] + v[2], t1 = v[1] - v[2], s3 = v[3] + v[4], t3 = v[3] - v[4], s5 = v[5] + v[6],
           t5 = v[5] - v[6];
        d[0] = v[0], d[1] = t1 + 0.5f * t3 + 2.0f * t5 - v[7];
        d[2] = -5.25f * v[0] + s1 + 0.25f * s3 + 4.0f * s5;
        d[3] = -4.25f * t1 - 2.5f * (t3 + t5) + 5.25f * v[7];
        d[4] = 5.25f * v[0] - 4.25f * s1 - 1.25f * s3 - 5.0f * s5;
        d[5] = t1 + 2.0f * t3 + 0.5f * t5 - 5.25f * v[7];
        d[6] = s1 + s3 + s5 - v[0], d[7] = v[7];
        return;
    }
    v8 s12 = v[1] + v[2], d12 = v[2] - v[1], s34 = v[3] + v[4], d34 = v[4] - v[3];
    d[0] = 4.0f * v[0], d[1] = 4.0f * d12 + 2.0f * d34 + 4.0f * v[5], d[2] = -5.0f * v[0] - 4.0f * s12 - s34;
    d[3] = -d12 - 2.0f * d34 - 5.0f * v[5], d[4] = v[0] + s12 + s34, d[5] = v[5];
}
#define WG_DEF_AT(fn, T) NN_INLINE void fn(int m, const T *mm, T *y) {                                       \
    if (m == 2) {                                                                                            \
        y[0] = mm[0] + mm[1] + mm[2], y[1] = mm[1] - mm[2] - mm[3];                                          \
        return;                                                                                              \
    }                                                                                                        \
    if (m == WG_S2_3) { /* (the point at infinity's sign as F(2x2, 3x3)'s Bt has it) */                      \
        y[0] = mm[0] + mm[1] + mm[2], y[1] = mm[1] - mm[2], y[2] = mm[1] + mm[2] - mm[3];                    \
        return;                                                                                              \
    }                                                                                                        \
    if (m == 3 || m == WG_S2) {                                                                              \
        T s = mm[1] + mm[2], d = mm[1] - mm[2];                                                              \
        y[0] = mm[0] + s + mm[3], y[1] = d + 2.0f * mm[3], y[2] = s + 4.0f * mm[3];                          \
        if (m == 3) y[2] += mm[4];                                                                           \
        else y[3] = d + 8.0f * mm[3] + mm[4];                                                                \
        return;                                                                                              \
    }                                                                                                        \
    if (m == 6) {                                                                                            \
        T s1 = mm[1] + mm[2], t1 = mm[1] - mm[2], s3 = mm[3] + mm[4], t3 = mm[3] - mm[4];                    \
        T s5 = mm[5] + mm[6], t5 = mm[5] - mm[6];                                                            \
        y[0] = mm[0] + s1 + s3 + s5, y[1] = t1 + 2.0f * t3 + 0.5f * t5, y[2] = s1 + 4.0f * s3 + 0.25f * s5;  \
        y[3] = t1 + 8.0f * t3 + 0.125f * t5, y[4] = s1 + 16.0f * s3 + 0.0625f * s5;                          \
        y[5] = t1 + 32.0f * t3 + 0.03125f * t5 + mm[7];                                                      \
        return;                                                                                              \
    }                                                                                                        \
    T s12 = mm[1] + mm[2], d12 = mm[1] - mm[2], s34 = mm[3] + mm[4], d34 = mm[3] - mm[4];                    \
    if (m == 5) { /* F(2x2, 5x5) */                                                                          \
        y[0] = mm[0] + s12 + s34, y[1] = d12 + 2.0f * d34 + mm[5];                                           \
        return;                                                                                              \
    }                                                                                                        \
    y[0] = mm[0] + s12 + s34, y[1] = d12 + 2.0f * d34, y[2] = s12 + 4.0f * s34,                              \
    y[3] = d12 + 8.0f * d34 + mm[5];                                                                         \
}
WG_DEF_AT(wg_at, v8)
WG_DEF_AT(wg_at16, v16)
NN_INLINE void wg_at_adj(int m, const v8 *y, v8 *mm) {
    if (m == 2) {
        mm[0] = y[0], mm[1] = y[0] + y[1], mm[2] = y[0] - y[1], mm[3] = -y[1];
        return;
    }
    if (m == 3) {
        v8 e = y[0] + y[2];
        mm[0] = y[0], mm[1] = e + y[1], mm[2] = e - y[1], mm[3] = y[0] + 2.0f * y[1] + 4.0f * y[2];
        mm[4] = y[2];
        return;
    }
    if (m == WG_S2_3) {
        mm[0] = y[0], mm[1] = y[0] + y[1] + y[2], mm[2] = y[0] - y[1] + y[2], mm[3] = -y[2];
        return;
    }
    if (m == WG_S2) {
        v8 e = y[0] + y[2], o = y[1] + y[3];
        mm[0] = y[0], mm[1] = e + o, mm[2] = e - o, mm[3] = y[0] + 2.0f * y[1] + 4.0f * y[2] + 8.0f * y[3];
        mm[4] = y[3];
        return;
    }
    if (m == 6) {
        v8 e = y[0] + y[2] + y[4], o = y[1] + y[3] + y[5], e2 = y[0] + 4.0f * y[2] + 16.0f * y[4],
           o2 = 2.0f * y[1] + 8.0f * y[3] + 32.0f * y[5], eh = y[0] + 0.25f * y[2] + 0.0625f * y[4],
           oh = 0.5f * y[1] + 0.125f * y[3] + 0.03125f * y[5];
        mm[0] = y[0], mm[1] = e + o, mm[2] = e - o, mm[3] = e2 + o2, mm[4] = e2 - o2, mm[5] = eh + oh;
        mm[6] = eh - oh, mm[7] = y[5];
        return;
    }
    if (m == 5) { // F(2x2, 5x5)
        v8 y2 = 2.0f * y[1];
        mm[0] = y[0], mm[1] = y[0] + y[1], mm[2] = y[0] - y[1], mm[3] = y[0] + y2, mm[4] = y[0] - y2;
        mm[5] = y[1];
        return;
    }
    v8 e = y[0] + y[2], o = y[1] + y[3], e2 = y[0] + 4.0f * y[2], o2 = 2.0f * y[1] + 8.0f * y[3];
    mm[0] = y[0], mm[1] = e + o, mm[2] = e - o, mm[3] = e2 + o2, mm[4] = e2 - o2, mm[5] = y[3];
}
NN_INLINE void wg_g(int m, const v8 *f, v8 *u) {
    if (m == 2) {
        u[0] = f[0], u[1] = 0.5f * (f[0] + f[1] + f[2]), u[2] = 0.5f * (f[0] - f[1] + f[2]), u[3] = f[2];
        return;
    }
    if (m == WG_S2_3) { // 2 taps
        u[0] = f[0], u[1] = 0.5f * (f[0] + f[1]), u[2] = 0.5f * (f[0] - f[1]), u[3] = f[1];
        return;
    }
    if (m == WG_S2) { // 2 taps
        u[0] = 0.5f * f[0], u[1] = -0.5f * (f[0] + f[1]), u[2] = (1.0f / 6) * (f[1] - f[0]);
        u[3] = (1.0f / 6) * f[0] + (1.0f / 3) * f[1], u[4] = f[1];
        return;
    }
    if (m == 3) {
        u[0] = 0.5f * f[0], u[1] = -0.5f * (f[0] + f[1] + f[2]), u[2] = (-1.0f / 6) * (f[0] - f[1] + f[2]);
        u[3] = (1.0f / 6) * f[0] + (1.0f / 3) * f[1] + (2.0f / 3) * f[2], u[4] = f[2];
        return;
    }
    if (m == 6) {
        v8 p = f[0] + f[2], q = (1.0f / 90) * f[0] + (2.0f / 45) * f[2], r = (1.0f / 45) * f[1],
           q2 = (32.0f / 45) * f[0] + (8.0f / 45) * f[2], r2 = (16.0f / 45) * f[1];
        u[0] = f[0], u[1] = (-2.0f / 9) * (p + f[1]), u[2] = (-2.0f / 9) * (p - f[1]), u[3] = q + r;
        u[4] = q - r, u[5] = q2 + r2, u[6] = q2 - r2, u[7] = f[2];
        return;
    }
    v8 p = f[0] + f[2], q = (1.0f / 24) * f[0] + (1.0f / 6) * f[2], r = (1.0f / 12) * f[1];
    u[0] = 0.25f * f[0], u[1] = (-1.0f / 6) * (p + f[1]), u[2] = (-1.0f / 6) * (p - f[1]);
    u[3] = q + r, u[4] = q - r, u[5] = f[2];
}
NN_INLINE void wg_g_adj(int m, const v8 *u, v8 *f) {
    if (m == 2) {
        f[0] = u[0] + 0.5f * (u[1] + u[2]), f[1] = 0.5f * (u[1] - u[2]), f[2] = 0.5f * (u[1] + u[2]) + u[3];
        return;
    }
    if (m == WG_S2_3) { // 2 taps
        f[0] = u[0] + 0.5f * (u[1] + u[2]), f[1] = 0.5f * (u[1] - u[2]) + u[3];
        return;
    }
    if (m == WG_S2) { // 2 taps
        f[0] = 0.5f * (u[0] - u[1]) + (1.0f / 6) * (u[3] - u[2]);
        f[1] = -0.5f * u[1] + (1.0f / 6) * u[2] + (1.0f / 3) * u[3] + u[4];
        return;
    }
    if (m == 3) {
        f[0] = 0.5f * (u[0] - u[1]) + (1.0f / 6) * (u[3] - u[2]);
        f[1] = -0.5f * u[1] + (1.0f / 6) * u[2] + (1.0f / 3) * u[3];
        f[2] = -0.5f * u[1] - (1.0f / 6) * u[2] + (2.0f / 3) * u[3] + u[4];
        return;
    }
    if (m == 6) {
        v8 s12 = u[1] + u[2], d12 = u[1] - u[2], s34 = u[3] + u[4], d34 = u[3] - u[4], s56 = u[5] + u[6],
           d56 = u[5] - u[6];
        f[0] = u[0] - (2.0f / 9) * s12 + (1.0f / 90) * s34 + (32.0f / 45) * s56;
        f[1] = (-2.0f / 9) * d12 + (1.0f / 45) * d34 + (16.0f / 45) * d56;
        f[2] = (-2.0f / 9) * s12 + (2.0f / 45) * s34 + (8.0f / 45) * s56 + u[7];
        return;
    }
    v8 s12 = u[1] + u[2], s34 = u[3] + u[4];
    f[0] = 0.25f * u[0] - (1.0f / 6) * s12 + (1.0f / 24) * s34;
    f[1] = (1.0f / 6) * (u[2] - u[1]) + (1.0f / 12) * (u[3] - u[4]);
    f[2] = (1.0f / 6) * (s34 - s12) + u[5];
}

// F(2x2, 5x5)'s filter transform u = G f (f: 5 taps) and its adjoint f = Gt u
NN_INLINE void wg_g5(const v8 *f, v8 *u) {
    v8 p = f[0] + f[2] + f[4], q = f[1] + f[3], e = (1.0f / 24) * (f[0] + 4.0f * f[2] + 16.0f * f[4]),
       o = (1.0f / 12) * (f[1] + 4.0f * f[3]);
    u[0] = 0.25f * f[0], u[1] = (-1.0f / 6) * (p + q), u[2] = (-1.0f / 6) * (p - q);
    u[3] = e + o, u[4] = e - o, u[5] = f[4];
}
NN_INLINE void wg_g5_adj(const v8 *u, v8 *f) {
    v8 s12 = u[1] + u[2], d12 = u[2] - u[1], s34 = u[3] + u[4], d34 = u[3] - u[4];
    f[0] = 0.25f * u[0] - (1.0f / 6) * s12 + (1.0f / 24) * s34;
    f[1] = (1.0f / 6) * d12 + (1.0f / 12) * d34;
    f[2] = (1.0f / 6) * (s34 - s12);
    f[3] = (1.0f / 6) * d12 + (1.0f / 3) * d34;
    f[4] = (-1.0f / 6) * s12 + (2.0f / 3) * s34 + u[5];
}

// p[0 .. n) = the first n lanes of v (n <= 8)
#define V8_STORE_N(p, v, n) (__extension__({                                       \
    if ((n) == 8) v8_store((p), (v));                                              \
    else {                                                                         \
        float t_[8];                                                               \
        v8_store(t_, (v));                                                         \
        memcpy((p), t_, sizeof(float) * (size_t)(n));                              \
    } }))

// The transforms run over one row of tiles at a time, 8 tiles per vector,
// on one channel of one image copied into a per-thread buffer with its
// padding (`pin`), so that every vector load and store stays inside with no
// border cases. A patch row's a values are that buffer's row split into m
// phases (every m-th column) at tiles j and, for the last a - m, at j + 1;
// outputs are m phases merged back into a buffer row (`pout`, `pacc`).
// Per-thread row buffers hold the phases: 36 rows of `len` floats.
typedef struct wrow {
    float *buf;
    size_t len;
} wrow;
static inline float *wrow_at(const wrow *r, int k) { return r->buf + (size_t)k * r->len; }


// Per-thread buffers of a chunk: V (C planes), M (O planes), the phase rows,
// and three image buffers of rows `wp` floats apart, wp = m*(tv + 1) with tv
// the tiles 0..tw in whole vectors:
//   pin  (m*th + 2 rows): one input channel, input (y, x) at row y + pt, column x + pl, 0 elsewhere;
//   pout (m*th rows): one output channel's tiles before they go to y; in backward dy, 0 beyond Ho x Wo;
//   pacc (m*th + 2 rows): the input gradient of one channel with its padding, summed over patches.
// They come from the arena (one block per thread, reused from step to step).
typedef struct wbufs {
    float *V, *M, *pin, *pout, *pacc;
    float *pin1; // WG_S2: the second column phase's patches (wino_input_iv_m), ng image buffers; else NULL
    size_t vps, mps, img, vm; // plane strides, floats per image buffer, floats of V and M
    int ng;                   // image buffers in pin and in pout (the image-vector layout's image groups)
    int wp, hp;
    wrow e;
    const nn_bn_map *pro; // the input a deferred batch norm output of x (NN_ACT_DEFER), else NULL
    const conv_epi *epi;  // the image-vector output transform's epilogue (in its stores), else NULL
    int rot;              // M's planes one plane before V's, in the same buffer (wbufs_layout)
    int il;               // NN_ACT_WINO: 1 x in the input layout (its patches' buffers), 2 y in the next's
    size_t il_ng, il_img; // that layout's 8-image groups of the batch, floats of one group's padded plane
    int il_w;             // and its rows' floats / 8 (y: the output's width + 2)
} wbufs;

// out[p] = t[s*l + p] for lanes l < 8 and phases p < s (2 or 4)
NN_INLINE void wg_split8(const float *t, int s, v8 *out) {
    v8 a = v8_load(t), b = v8_load(t + 8);
    v8 ev = __builtin_shuffle(a, b, EVEN8), od = __builtin_shuffle(a, b, ODD8);
    if (s == 2) {
        out[0] = ev, out[1] = od;
        return;
    }
    v8 c = v8_load(t + 16), d = v8_load(t + 24);
    v8 ev2 = __builtin_shuffle(c, d, EVEN8), od2 = __builtin_shuffle(c, d, ODD8);
    out[0] = __builtin_shuffle(ev, ev2, EVEN8), out[1] = __builtin_shuffle(od, od2, EVEN8);
    out[2] = __builtin_shuffle(ev, ev2, ODD8), out[3] = __builtin_shuffle(od, od2, ODD8);
}
// t[s*l + p] = in[p][l]: the inverse of wg_split8
NN_INLINE void wg_merge8(const v8 *in, int s, v8 *t) {
    if (s == 2) {
        t[0] = __builtin_shuffle(in[0], in[1], LO8), t[1] = __builtin_shuffle(in[0], in[1], HI8);
        return;
    }
    v8 a0 = __builtin_shuffle(in[0], in[2], LO8), a1 = __builtin_shuffle(in[0], in[2], HI8);
    v8 b0 = __builtin_shuffle(in[1], in[3], LO8), b1 = __builtin_shuffle(in[1], in[3], HI8);
    t[0] = __builtin_shuffle(a0, b0, LO8), t[1] = __builtin_shuffle(a0, b0, HI8);
    t[2] = __builtin_shuffle(a1, b1, LO8), t[3] = __builtin_shuffle(a1, b1, HI8);
}

// ph[p][j] = row[m*j + p] for p < m, and with `shifted`, ph[m + p][j] = row[m*(j + 1) + p]
// for p < 2, over tiles j < nj (a multiple of 8)
NN_INLINE void wg_split_row(const float *row, int nj, int m, int shifted, float *const *ph) {
    for (int j = 0; j < nj; j += 8) {
        v8 v[4];
        wg_split8(row + m * j, m, v);
        WG_FOR(p, m) v8_store(ph[p] + j, v[p]);
        if (shifted) {
            wg_split8(row + m * (j + 1), m, v);
            v8_store(ph[m] + j, v[0]), v8_store(ph[m + 1] + j, v[1]);
        }
    }
}

// relu(NN_BN_MAP(v)) of a deferred batch norm output (q: mean, inv, gamma, beta; NN_ACT_DEFER), or v (q
// NULL)
#define wg_map(v, q)                                                                                         \
    (__extension__({                                                                                         \
        v8 v_ = (v);                                                                                         \
        const float *q_ = (q);                                                                               \
        q_ ? v8_relu(NN_BN_MAP8(v_, q_)) : v_;                                                               \
    }))

// rows [0, h) of w floats from src (stride ss) to dst (stride ds), plus b; add: dst +=
NN_INLINE void wg_copy_rows(float *dst, int ds, const float *src, int ss, int h, int w, float b, int add) {
    v8 vb = v8_set1(b);
    for (int y = 0; y < h; y++) {
        float *d = dst + (size_t)y * ds;
        const float *s = src + (size_t)y * ss;
        int x = 0;
        for (; x + 8 <= w; x += 8) v8_store(d + x, (add ? v8_load(d + x) : vb) + v8_load(s + x));
        for (; x < w; x++) d[x] = (add ? d[x] : b) + s[x];
    }
}

// dst = relu(NN_BN_MAP(src)) by rows (wg_copy_rows; q: mean, inv, gamma, beta of a deferred batch norm
// output, NN_ACT_DEFER)
NN_INLINE void wg_copy_rows_map(float *dst, int ds, const float *src, int ss, int h, int w, const float *q) {
    for (int y = 0; y < h; y++) {
        float *d = dst + (size_t)y * ds;
        const float *s = src + (size_t)y * ss;
        int x = 0;
        for (; x + 8 <= w; x += 8) v8_store(d + x, wg_map(v8_load(s + x), q));
        for (; x < w; x++) {
            float v = NN_BN_MAP(s[x], q[0], q[1], q[2], q[3]);
            d[x] = v > 0 ? v : 0.0f;
        }
    }
}

// The transforms work on a chunk of nb images from n0 with every channel:
// V[xi][c][tc], M[xi][o][tc] with tc = (n - n0)*th*tw + i*tw + j over the
// chunk's TC = nb*th*tw tiles, so a chunk's V and M stay in cache between the
// transform and its GEMMs. Chunks run in parallel; each is serial inside.
// The planes xi are `ps` floats apart, 8 more than they hold: vectors read
// and write whole (8 tiles) at the end of a row of tiles, the lanes past it
// read the next row (values never used) and write into the next row, which
// the loops fill later (they run over every plane in address order), or
// into the 8 spare floats at the end of the plane.
typedef struct wchunk {
    int n0, nb, th, tw, nbp; // nbp: image slots (nb, or in the image-vector layout nb rounded up to 8)
    size_t TC, ld;           // tiles, and the row stride of V and M (>= TC)
    int c0, c1; // image-vector layout: the channels (of x or y) to transform, c1 clipped to C or O
    int blas;                // the products by cblas_sgemm
    const geom *src;         // variant WG_S2: the stride-2 conv whose phases the chunk's input is
    int s2a;                 // variants WG_S2, WG_S2_3: their a (the products skip the phases' zeros), else 0
    int pair; // WG_S2 in the batch paths: channel c0's next column phase (c0 + C0) too, from the same loads
    int wide; // the image-vector forward transforms two slots per 16-lane vector (AVX-512's products)
} wchunk;

// V[xi][c][tc] = (Bt d B)[xi] for every input patch of the chunk
NN_INLINE void wino_input_m(const geom *g, const wchunk *k, const float *x, float *V, size_t ps, wbufs *b,
                            int m) {
    int a = m + 2, th = k->th, tw = k->tw, wp = b->wp, nj = (tw + 7) / 8 * 8;
    float *ph[6][6];
    WG_FOR(r, a)
        WG_FOR(p, a) ph[r][p] = wrow_at(&b->e, r * a + p);
    for (int c = 0; c < g->C; c++)
        for (int n = k->n0; n < k->n0 + k->nb; n++) {
            float *d = b->pin + (size_t)g->pt * wp + g->pl, q[4];
            const float *s = x + ((size_t)n * g->C + c) * g->H * g->W;
            if (b->pro) nn_bn_map_ch(b->pro, c, q), wg_copy_rows_map(d, wp, s, g->W, g->H, g->W, q);
            else wg_copy_rows(d, wp, s, g->W, g->H, g->W, 0.0f, 0);
            float *vp = V + (size_t)c * k->ld + (size_t)(n - k->n0) * th * tw;
            for (int i = 0; i < th; i++) {
                WG_FOR(r, a) wg_split_row(b->pin + (size_t)(m * i + r) * wp, nj, m, 1, ph[r]);
                float *vrow = vp + (size_t)i * tw;
                for (int j = 0; j < tw; j += 8) {
                    v8 t[6][6];
                    WG_FOR(q, a) { // columns: Bt d
                        v8 d[6], v[6];
                        WG_FOR(r, a) d[r] = v8_load(ph[r][q] + j);
                        wg_bt(m, d, v);
                        WG_FOR(r, a) t[r][q] = v[r];
                    }
                    WG_FOR(r, a) { // rows: (Bt d) B
                        v8 v[6];
                        wg_bt(m, t[r], v);
                        WG_FOR(q, a) v8_store(vrow + (size_t)(r * a + q) * ps + j, v[q]);
                    }
                }
            }
        }
}

// gx[n][c] += B dV Bt over every patch of the chunk (overlapping patches add)
NN_INLINE void wino_input_adj_m(const geom *g, const wchunk *k, const float *dV, size_t ps, float *gx,
                                wbufs *b, int m) {
    int a = m + 2, th = k->th, tw = k->tw, wp = b->wp;
    const v8i lane = {0, 1, 2, 3, 4, 5, 6, 7};
    for (int n = k->n0; n < k->n0 + k->nb; n++)
        for (int c = 0; c < g->C; c++) {
            memset(b->pacc, 0, sizeof(float) * (size_t)b->hp * wp);
            const float *vp = dV + (size_t)c * k->ld + (size_t)(n - k->n0) * th * tw;
            for (int i = 0; i < th; i++) {
                const float *vrow = vp + (size_t)i * tw;
                v8 prev[6][2]; // the last a - m columns of every patch row at the previous 8 tiles
                WG_FOR(r, a) prev[r][0] = prev[r][1] = v8_set1(0.0f);
                for (int j = 0; j <= tw; j += 8) { // tile tw: only tile tw - 1's overlap
                    v8 dd[6][6];
                    if (j < tw) {
                        v8 t[6][6];
                        v8i live = lane + j < tw; // tiles past the row end: 0
                        WG_FOR(r, a) { // rows: dV Bt
                            v8 v[6], u[6];
                            WG_FOR(q, a)
                                v[q] = v8_and(v8_load(vrow + (size_t)(r * a + q) * ps + j), live);
                            wg_bt_adj(m, v, u);
                            WG_FOR(q, a) t[r][q] = u[q];
                        }
                        WG_FOR(q, a) { // columns: B (dV Bt)
                            v8 col[6], u[6];
                            WG_FOR(r, a) col[r] = t[r][q];
                            wg_bt_adj(m, col, u);
                            WG_FOR(r, a) dd[r][q] = u[r];
                        }
                    } else {
                        WG_FOR(r, a)
                            WG_FOR(q, a) dd[r][q] = v8_set1(0.0f);
                    }
                    WG_FOR(r, a) {
                        // column m*j + p: tile j's value p plus, for p < a - m, tile j-1's value p + m
                        v8 ph[4], out[4];
                        WG_FOR(p, m) ph[p] = dd[r][p];
                        WG_FOR(p, a - m) {
                            ph[p] += __builtin_shuffle(prev[r][p], dd[r][m + p],
                                                       (v8i){7, 8, 9, 10, 11, 12, 13, 14});
                            prev[r][p] = dd[r][m + p];
                        }
                        wg_merge8(ph, m, out);
                        float *row = b->pacc + (size_t)(m * i + r) * wp + m * j;
                        WG_FOR(q, m) v8_store(row + 8 * q, v8_load(row + 8 * q) + out[q]);
                    }
                }
            }
            wg_copy_rows(gx + ((size_t)n * g->C + c) * g->H * g->W, g->W,
                         b->pacc + (size_t)g->pt * wp + g->pl, wp, g->H, g->W, 0.0f, 1);
        }
}

// y[n][o] = At M A (+ bias) for every tile of the chunk, outputs beyond Ho x Wo dropped
NN_INLINE void wino_output_m(const geom *g, const wchunk *k, const float *M, size_t ps, const float *bias,
                             float *y, wbufs *b, int m) {
    int a = m + 2, th = k->th, tw = k->tw, wp = b->wp;
    for (int n = k->n0; n < k->n0 + k->nb; n++)
        for (int o = 0; o < g->O; o++) {
            const float *mp = M + (size_t)o * k->ld + (size_t)(n - k->n0) * th * tw;
            for (int i = 0; i < th; i++) {
                const float *mrow = mp + (size_t)i * tw;
                for (int j = 0; j < tw; j += 8) {
                    v8 t[4][6];
                    WG_FOR(q, a) { // columns: At M
                        v8 mm[6], v[4];
                        WG_FOR(r, a) mm[r] = v8_load(mrow + (size_t)(r * a + q) * ps + j);
                        wg_at(m, mm, v);
                        WG_FOR(r, m) t[r][q] = v[r];
                    }
                    WG_FOR(r, m) { // rows: (At M) A
                        v8 v[4], out[4];
                        wg_at(m, t[r], v);
                        wg_merge8(v, m, out);
                        float *row = b->pout + (size_t)(m * i + r) * wp + m * j;
                        WG_FOR(q, m) v8_store(row + 8 * q, out[q]);
                    }
                }
            }
            wg_copy_rows(y + ((size_t)n * g->O + o) * g->Ho * g->Wo, g->Wo, b->pout, wp, g->Ho, g->Wo,
                         bias ? bias[o] : 0.0f, 0);
        }
}

// dM[xi][o][tc] = (A dy At)[xi] for the chunk, dy = 0 beyond Ho x Wo
NN_INLINE void wino_output_adj_m(const geom *g, const wchunk *k, const float *gy, float *dM, size_t ps,
                                 wbufs *b, int m) {
    int a = m + 2, th = k->th, tw = k->tw, wp = b->wp, nj = (tw + 7) / 8 * 8;
    float *ph[4][4];
    WG_FOR(r, m)
        WG_FOR(p, m) ph[r][p] = wrow_at(&b->e, r * m + p);
    for (int o = 0; o < g->O; o++)
        for (int n = k->n0; n < k->n0 + k->nb; n++) {
            wg_copy_rows(b->pout, wp, gy + ((size_t)n * g->O + o) * g->Ho * g->Wo, g->Wo, g->Ho, g->Wo, 0.0f,
                         0);
            float *mp = dM + (size_t)o * k->ld + (size_t)(n - k->n0) * th * tw;
            for (int i = 0; i < th; i++) {
                WG_FOR(r, m) wg_split_row(b->pout + (size_t)(m * i + r) * wp, nj, m, 0, ph[r]);
                float *mrow = mp + (size_t)i * tw;
                for (int j = 0; j < tw; j += 8) {
                    v8 t[4][6];
                    WG_FOR(r, m) { // rows: dy A
                        v8 yv[4], v[6];
                        WG_FOR(p, m) yv[p] = v8_load(ph[r][p] + j);
                        wg_at_adj(m, yv, v);
                        WG_FOR(q, a) t[r][q] = v[q];
                    }
                    WG_FOR(q, a) { // columns: A (dy A)
                        v8 col[4], v[6];
                        WG_FOR(r, m) col[r] = t[r][q];
                        wg_at_adj(m, col, v);
                        WG_FOR(r, a) v8_store(mrow + (size_t)(r * a + q) * ps + j, v[r]);
                    }
                }
            }
        }
}

// ---- image-vector layout ----
// With fewer than 8 tiles per row (small images), a row of tiles fills only
// part of a vector (wino_plan's rule). There the chunks hold multiples of 8 images and lane l of
// every vector is image 8*g + l of the chunk, at the same tile: the channel's
// planes of 8 images are interleaved (pixel-major, 8 floats per pixel) into
// the per-thread buffers by 8x8 transposes, and every patch value is one
// whole-vector load. Tile order: tc = (i*tw + j)*nbp + (n - n0), nbp the
// chunk's images rounded up to 8 (the missing images' lanes are zeros).

// r[l][k] <-> r[k][l]
NN_INLINE void wg_tr8(v8 *r) {
    const v8i ulo = {0, 8, 1, 9, 4, 12, 5, 13}, uhi = {2, 10, 3, 11, 6, 14, 7, 15};
    const v8i slo = {0, 1, 8, 9, 4, 5, 12, 13}, shi = {2, 3, 10, 11, 6, 7, 14, 15};
    const v8i plo = {0, 1, 2, 3, 8, 9, 10, 11}, phi = {4, 5, 6, 7, 12, 13, 14, 15};
    v8 t[8], u[8];
    WG_FOR(h, 4) { // (unrolled: the vectors stay in registers)
        t[2 * h] = __builtin_shuffle(r[2 * h], r[2 * h + 1], ulo);
        t[2 * h + 1] = __builtin_shuffle(r[2 * h], r[2 * h + 1], uhi);
    }
    WG_FOR(h, 2) {
        int k = 4 * h;
        u[k] = __builtin_shuffle(t[k], t[k + 2], slo), u[k + 1] = __builtin_shuffle(t[k], t[k + 2], shi);
        u[k + 2] = __builtin_shuffle(t[k + 1], t[k + 3], slo),
              u[k + 3] = __builtin_shuffle(t[k + 1], t[k + 3], shi);
    }
    WG_FOR(k, 4)
        r[k] = __builtin_shuffle(u[k], u[k + 4], plo), r[k + 4] = __builtin_shuffle(u[k], u[k + 4], phi);
}

// The 9 taps of filters b .. b+7 (w[(b + l)*9 + k], nl <= 8 of them) as f[k]
// lane l, and back (gw += f): two 8x8 transposes for taps 0-7, tap 8 by lane.
// (Tap 8 of 8 filters lane by lane: a vector load of 8 scalar stores would wait for them to retire.)
NN_INLINE void wg_taps_load(const float *w, long b, int nl, v8 *f) {
    float t8[8] = {0};
    WG_FOR(l, 8) {
        if (l < nl) {
            f[l] = v8_load(w + (b + l) * 9);
            t8[l] = w[(b + l) * 9 + 8];
        } else f[l] = v8_set1(0.0f);
    }
    wg_tr8(f);
    const float *p = w + b * 9 + 8;
    f[8] = nl == 8 ? (v8){p[0], p[9], p[18], p[27], p[36], p[45], p[54], p[63]} : v8_load(t8);
}
NN_INLINE void wg_taps_add(float *gw, long b, int nl, const v8 *f) {
    v8 r[8];
    WG_FOR(k, 8) r[k] = f[k];
    wg_tr8(r);
    for (int l = 0; l < nl; l++) {
        float *d = gw + (b + l) * 9;
        v8_store(d, v8_load(d) + r[l]);
        d[8] += f[8][l];
    }
}

// U[xi][o][c] = (G g Gt)[xi] for every filter g = w[o][c] (3x3), 8 filters per vector
// Rows i0..i1 of the transform (planes i*a+q, i in [i0, i1)) into U from plane i0*a on.
// (m a constant in each clone, wino_filter_m: the vectors then stay in registers.)
NN_INLINE void wg_filter(const geom *g, const float *w, float *U, int m, long b0, long b1, int i0, int i1) {
    int a = m + 2;
    long OC = (long)g->O * g->C;
    for (long b = b0; b < b1; b += 8) {
        int nl = OC - b < 8 ? (int)(OC - b) : 8;
        v8 f[9], t[WG_AMAX][3];
        wg_taps_load(w, b, nl, f);
        WG_FOR(j, 3) { // columns: G f
            v8 col[3] = {f[j], f[3 + j], f[6 + j]}, u[WG_AMAX];
            wg_g(m, col, u);
            WG_FOR(i, a) t[i][j] = u[i];
        }
        for (int i = i0; i < i1; i++) { // rows: (G f) Gt
            v8 u[WG_AMAX];
            wg_g(m, t[i], u);
            WG_FOR(q, a) V8_STORE_N(U + (size_t)((i - i0) * a + q) * OC + b, u[q], nl);
        }
    }
}
NN_SIMD_CLONES static void wg_filter2(const geom *g, const float *w, float *U, long b0, long b1, int i0,
                                      int i1) {
    wg_filter(g, w, U, 2, b0, b1, i0, i1);
}
NN_SIMD_CLONES static void wg_filter3(const geom *g, const float *w, float *U, long b0, long b1, int i0,
                                      int i1) {
    wg_filter(g, w, U, 3, b0, b1, i0, i1);
}
NN_SIMD_CLONES static void wg_filter4(const geom *g, const float *w, float *U, long b0, long b1, int i0,
                                      int i1) {
    wg_filter(g, w, U, 4, b0, b1, i0, i1);
}
NN_SIMD_CLONES static void wg_filter6(const geom *g, const float *w, float *U, long b0, long b1, int i0,
                                      int i1) {
    wg_filter(g, w, U, 6, b0, b1, i0, i1);
}
// WG_S2's (or WG_S2_3's: v) U from the 3x3 filters w (O, C0, 3, 3), filters [b0, b1) of the O*C0, g the
// phases' conv (C = 4*C0 channels, phase-major): phase (p, q)'s 2x2 kernel k[s][t] = w[2s + p][2t + q]
// (0 past the 3x3 taps)
NN_INLINE void wg_filter_s2(const geom *g, const float *w, float *U, long b0, long b1, int i0, int i1,
                            int v) {
    int C0 = g->C / 4, a = WG_A(v);
    long OC = (long)g->O * g->C;
    for (long b = b0; b < b1; b += 8) {
        int nl = (long)g->O * C0 - b < 8 ? (int)((long)g->O * C0 - b) : 8;
        v8 f[9], z = v8_set1(0.0f);
        wg_taps_load(w, b, nl, f);
        for (int ph = 0; ph < 4; ph++) {
            int p = ph / 2, q = ph % 2;
            v8 t[WG_AMAX][2];
            WG_FOR(j, 2) { // columns: G k
                int cq = 2 * j + q;
                v8 col[2] = {cq <= 2 ? f[p * 3 + cq] : z, cq <= 2 && !p ? f[6 + cq] : z}, u[WG_AMAX];
                wg_g(v, col, u);
                WG_FOR(i, a) t[i][j] = u[i];
            }
            for (int i = i0; i < i1; i++) { // rows: (G k) Gt (filter (o, c) at o*C + ph*C0 + c)
                v8 u[WG_AMAX];
                wg_g(v, t[i], u);
                float *d = U + (size_t)(i - i0) * a * OC + b / C0 * g->C + ph * C0 + b % C0;
                if (C0 % 8 == 0) // the 8 filters of one o, side by side
                    WG_FOR(r, a) v8_store(d + (size_t)r * OC, u[r]);
                else
                    for (int l = 0; l < nl; l++) {
                        long o = (b + l) / C0, c = (b + l) % C0;
                        WG_FOR(r, a) U[(size_t)((i - i0) * a + r) * OC + o * g->C + ph * C0 + c] = u[r][l];
                    }
            }
        }
    }
}

NN_SIMD_CLONES static void wg_filter_s2_4(const geom *g, const float *w, float *U, long b0, long b1, int i0,
                                          int i1) {
    wg_filter_s2(g, w, U, b0, b1, i0, i1, WG_S2);
}
NN_SIMD_CLONES static void wg_filter_s2_3(const geom *g, const float *w, float *U, long b0, long b1, int i0,
                                          int i1) {
    wg_filter_s2(g, w, U, b0, b1, i0, i1, WG_S2_3);
}

// The 25 taps of filters b .. b+7 (nl <= 8 of them) as f[k] lane l, and back (gw += f), lane by lane
NN_INLINE void wg_taps25_load(const float *w, long b, int nl, v8 *f) {
    const float *p = w + b * 25;
    for (int k = 0; k < 25; k++, p++)
        if (nl == 8) f[k] = (v8){p[0], p[25], p[50], p[75], p[100], p[125], p[150], p[175]};
        else {
            f[k] = v8_set1(0.0f);
            for (int l = 0; l < nl; l++) f[k][l] = p[25 * l];
        }
}
NN_INLINE void wg_taps25_add(float *gw, long b, int nl, const v8 *f) {
    for (int l = 0; l < nl; l++) WG_FOR(k, 25) gw[(b + l) * 25 + k] += f[k][l];
}

// F(2x2, 5x5)'s U (rows i0..i1, as wg_filter) and the adjoint into gw (as wg_filter_adj)
NN_SIMD_CLONES static void wg_filter5(const geom *g, const float *w, float *U, long b0, long b1, int i0,
                                      int i1) {
    long OC = (long)g->O * g->C;
    for (long b = b0; b < b1; b += 8) {
        int nl = OC - b < 8 ? (int)(OC - b) : 8;
        v8 f[25], t[6][5];
        wg_taps25_load(w, b, nl, f);
        WG_FOR(j, 5) { // columns: G f
            v8 col[5] = {f[j], f[5 + j], f[10 + j], f[15 + j], f[20 + j]}, u[6];
            wg_g5(col, u);
            WG_FOR(i, 6) t[i][j] = u[i];
        }
        for (int i = i0; i < i1; i++) { // rows: (G f) Gt
            v8 u[6];
            wg_g5(t[i], u);
            WG_FOR(q, 6) V8_STORE_N(U + (size_t)((i - i0) * 6 + q) * OC + b, u[q], nl);
        }
    }
}

static void wino_filter_m(const geom *g, const float *w, float *U, int m, long b0, long b1, int i0, int i1) {
    if (m == WG_S2) wg_filter_s2_4(g, w, U, b0, b1, i0, i1);
    else if (m == WG_S2_3) wg_filter_s2_3(g, w, U, b0, b1, i0, i1);
    else if (m == 6) wg_filter6(g, w, U, b0, b1, i0, i1);
    else if (m == 5) wg_filter5(g, w, U, b0, b1, i0, i1);
    else if (m == 4) wg_filter4(g, w, U, b0, b1, i0, i1);
    else if (m == 3) wg_filter3(g, w, U, b0, b1, i0, i1);
    else wg_filter2(g, w, U, b0, b1, i0, i1);
}
static void wino_filter(const geom *g, const float *w, float *U, int m) {
    long OC = (long)g->O * g->C / (WG_IS_S2(m) ? 4 : 1), nblk = (OC + 7) / 8; // WG_S2: the 3x3 filters
#pragma omp parallel
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        wino_filter_m(g, w, U, m, nblk * t / nt * 8,
                      nblk * (t + 1) / nt * 8 < OC ? nblk * (t + 1) / nt * 8 : OC, 0, WG_A(m));
    }
}

// Inside a parallel region: rows [i0, i1) of the filter transform (wino_filter_m), the (o, c) groups shared
// among the threads, then a barrier.
static void wino_filter_rows(const geom *g, const float *w, float *U, int m, int i0, int i1) {
    long OC = (long)g->O * g->C / (WG_IS_S2(m) ? 4 : 1), nblk = (OC + 7) / 8; // WG_S2: the 3x3 filters
    int t = omp_get_thread_num(), nt = omp_get_num_threads();
    wino_filter_m(g, w, U, m, nblk * t / nt * 8, nblk * (t + 1) / nt * 8 < OC ? nblk * (t + 1) / nt * 8 : OC,
                  i0, i1);
#pragma omp barrier
}

// gw[o][c] += Gt dU[o][c] G
// gw += the adjoint of the filter transform applied to dU summed over its
// `parts` copies (the threads' partial sums, `pstride` floats apart, in order)
// (dU holding rows [i0, i1) only, from its start: the other rows count as 0; m a constant in each clone)
NN_INLINE void wg_filter_adj(const geom *g, const float *dU, int parts, size_t pstride, float *gw, int m,
                             long b0, long b1, int i0, int i1) {
    int a = m + 2;
    long OC = (long)g->O * g->C;
    for (long b = b0; b < b1; b += 8) {
        int nl = OC - b < 8 ? (int)(OC - b) : 8;
        v8 t[3][WG_AMAX];
        WG_FOR(i, a) { // rows: dU G
            v8 u[WG_AMAX], f[3];
            if (i < i0 || i >= i1) {
                WG_FOR(j, 3) t[j][i] = v8_set1(0.0f);
                continue;
            }
            WG_FOR(q, a) {
                const float *src = dU + (size_t)((i - i0) * a + q) * OC + b;
                if (nl == 8) {
                    u[q] = v8_load(src);
                    for (int p = 1; p < parts; p++) u[q] += v8_load(src + p * pstride);
                } else {
                    float r[8] = {0};
                    for (int p = 0; p < parts; p++)
                        for (int l = 0; l < nl; l++) r[l] += src[p * pstride + l];
                    u[q] = v8_load(r);
                }
            }
            wg_g_adj(m, u, f);
            WG_FOR(j, 3) t[j][i] = f[j];
        }
        v8 f[9];
        WG_FOR(j, 3) { // columns: Gt (dU G)
            v8 r[3];
            wg_g_adj(m, t[j], r);
            WG_FOR(k, 3) f[k * 3 + j] = r[k];
        }
        wg_taps_add(gw, b, nl, f);
    }
}
NN_SIMD_CLONES static void wg_filter_adj2(const geom *g, const float *dU, int parts, size_t pstride,
                                          float *gw, long b0, long b1, int i0, int i1) {
    wg_filter_adj(g, dU, parts, pstride, gw, 2, b0, b1, i0, i1);
}
NN_SIMD_CLONES static void wg_filter_adj3(const geom *g, const float *dU, int parts, size_t pstride,
                                          float *gw, long b0, long b1, int i0, int i1) {
    wg_filter_adj(g, dU, parts, pstride, gw, 3, b0, b1, i0, i1);
}
NN_SIMD_CLONES static void wg_filter_adj4(const geom *g, const float *dU, int parts, size_t pstride,
                                          float *gw, long b0, long b1, int i0, int i1) {
    wg_filter_adj(g, dU, parts, pstride, gw, 4, b0, b1, i0, i1);
}
NN_SIMD_CLONES static void wg_filter_adj6(const geom *g, const float *dU, int parts, size_t pstride,
                                          float *gw, long b0, long b1, int i0, int i1) {
    wg_filter_adj(g, dU, parts, pstride, gw, 6, b0, b1, i0, i1);
}
NN_SIMD_CLONES static void wg_filter_adj5(const geom *g, const float *dU, int parts, size_t pstride,
                                          float *gw, long b0, long b1, int i0, int i1) {
    long OC = (long)g->O * g->C;
    for (long b = b0; b < b1; b += 8) {
        int nl = OC - b < 8 ? (int)(OC - b) : 8;
        v8 t[5][6], f[25];
        WG_FOR(i, 6) { // rows: dU G
            v8 u[6], r[5];
            WG_FOR(q, 6) {
                u[q] = v8_set1(0.0f);
                if (i < i0 || i >= i1) continue;
                const float *src = dU + (size_t)((i - i0) * 6 + q) * OC + b;
                for (int p = 0; p < parts; p++)
                    if (nl == 8) u[q] += v8_load(src + p * pstride);
                    else
                        for (int l = 0; l < nl; l++) u[q][l] += src[p * pstride + l];
            }
            wg_g5_adj(u, r);
            WG_FOR(j, 5) t[j][i] = r[j];
        }
        WG_FOR(j, 5) { // columns: Gt (dU G)
            v8 r[5];
            wg_g5_adj(t[j], r);
            WG_FOR(k, 5) f[k * 5 + j] = r[k];
        }
        wg_taps25_add(gw, b, nl, f);
    }
}

// gw += the adjoint of wg_filter_s2 applied to dU summed over its `parts` copies (as wg_filter_adj; filters
// [b0, b1) of the 3x3 ones; dU holding rows [i0, i1) only, from its start: the other rows count as 0)
NN_INLINE void wg_filter_adj_s2(const geom *g, const float *dU, int parts, size_t pstride, float *gw, long b0,
                                long b1, int i0, int i1, int v) {
    int C0 = g->C / 4, a = WG_A(v);
    long OC = (long)g->O * g->C, OC0 = (long)g->O * C0;
    for (long b = b0; b < b1; b += 8) {
        int nl = OC0 - b < 8 ? (int)(OC0 - b) : 8;
        v8 f[9];
        WG_FOR(k, 9) f[k] = v8_set1(0.0f);
        for (int ph = 0; ph < 4; ph++) {
            int p = ph / 2, q = ph % 2;
            v8 t[2][WG_AMAX];
            WG_FOR(i, a) t[0][i] = t[1][i] = v8_set1(0.0f);
            for (int i = i0; i < i1; i++) { // rows: dU G
                v8 u[WG_AMAX], r[2];
                WG_FOR(j, a) {
                    u[j] = v8_set1(0.0f);
                    if (C0 % 8 == 0) { // the 8 filters of one o, side by side
                        const float *src =
                            dU + (size_t)((i - i0) * a + j) * OC + b / C0 * g->C + ph * C0 + b % C0;
                        for (int part = 0; part < parts; part++) u[j] += v8_load(src + part * pstride);
                    } else
                        for (int l = 0; l < nl; l++) {
                            size_t at = (size_t)((i - i0) * a + j) * OC + (b + l) / C0 * g->C + ph * C0 +
                                        (b + l) % C0;
                            for (int part = 0; part < parts; part++) u[j][l] += dU[at + part * pstride];
                        }
                }
                wg_g_adj(v, u, r);
                WG_FOR(tt, 2) t[tt][i] = r[tt];
            }
            WG_FOR(tt, 2) { // columns: Gt (dU G), into the 3x3 taps (2s + p, 2t + q)
                v8 r[2];
                wg_g_adj(v, t[tt], r);
                WG_FOR(ss, 2) {
                    if (2 * ss + p <= 2 && 2 * tt + q <= 2) f[(2 * ss + p) * 3 + 2 * tt + q] += r[ss];
                }
            }
        }
        wg_taps_add(gw, b, nl, f);
    }
}

NN_SIMD_CLONES static void wg_filter_adj_s2_4(const geom *g, const float *dU, int parts, size_t pstride,
                                              float *gw, long b0, long b1, int i0, int i1) {
    wg_filter_adj_s2(g, dU, parts, pstride, gw, b0, b1, i0, i1, WG_S2);
}
NN_SIMD_CLONES static void wg_filter_adj_s2_3(const geom *g, const float *dU, int parts, size_t pstride,
                                              float *gw, long b0, long b1, int i0, int i1) {
    wg_filter_adj_s2(g, dU, parts, pstride, gw, b0, b1, i0, i1, WG_S2_3);
}

static void wino_filter_adj_m(const geom *g, const float *dU, int parts, size_t pstride, float *gw, int m,
                              long b0, long b1, int i0, int i1) {
    if (m == WG_S2) wg_filter_adj_s2_4(g, dU, parts, pstride, gw, b0, b1, i0, i1);
    else if (m == WG_S2_3) wg_filter_adj_s2_3(g, dU, parts, pstride, gw, b0, b1, i0, i1);
    else if (m == 6) wg_filter_adj6(g, dU, parts, pstride, gw, b0, b1, i0, i1);
    else if (m == 5) wg_filter_adj5(g, dU, parts, pstride, gw, b0, b1, i0, i1);
    else if (m == 4) wg_filter_adj4(g, dU, parts, pstride, gw, b0, b1, i0, i1);
    else if (m == 3) wg_filter_adj3(g, dU, parts, pstride, gw, b0, b1, i0, i1);
    else wg_filter_adj2(g, dU, parts, pstride, gw, b0, b1, i0, i1);
}
static void wino_filter_adj(const geom *g, const float *dU, int parts, size_t pstride, float *gw, int m) {
    long OC = (long)g->O * g->C / (WG_IS_S2(m) ? 4 : 1), nblk = (OC + 7) / 8; // WG_S2: the 3x3 filters
#pragma omp parallel
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        wino_filter_adj_m(g, dU, parts, pstride, gw, m, nblk * t / nt * 8,
                          nblk * (t + 1) / nt * 8 < OC ? nblk * (t + 1) / nt * 8 : OC, 0, WG_A(m));
    }
}

// The batch path's weight gradient by blocks of rows in two halves, for the 3x3 stride-1 variants: each
// block's rows dU G into T, then the columns Gt (dU G) of every row once, added to gw once, instead of each
// block's redoing the columns and reading and writing gw. T[(i*3 + j)*ld + oc] = (dU G)[i][j] of filter
// oc, ld = OC rounded up to 8 (whole vectors). (AMD Zen 5, one thread, 256 channels at 3x3 and 4x4
// outputs: backward 2.82 -> 2.44 ms and 3.9 -> 3.6 ms. The forward's U from columns made once per call is
// slower: T is twice the weights.)

// T's rows [i0, i1) (dU holding them from its start)
NN_INLINE void wg_rows_adj(const geom *g, const float *dU, float *T, size_t ld, long b0, long b1, int i0,
                           int i1, int m) {
    int a = m + 2;
    long OC = (long)g->O * g->C;
    for (long b = b0; b < b1; b += 8)
        for (int i = i0; i < i1; i++) {
            int nl = OC - b < 8 ? (int)(OC - b) : 8;
            v8 u[WG_AMAX], f[3];
            WG_FOR(q, a) {
                const float *src = dU + (size_t)((i - i0) * a + q) * OC + b;
                if (nl == 8) u[q] = v8_load(src);
                else {
                    float r[8] = {0};
                    for (int l = 0; l < nl; l++) r[l] = src[l];
                    u[q] = v8_load(r);
                }
            }
            wg_g_adj(m, u, f);
            WG_FOR(j, 3) v8_store(T + (size_t)(i * 3 + j) * ld + b, f[j]);
        }
}
// gw += the adjoint's columns Gt (dU G) from T (wg_rows_adj, every row)
NN_INLINE void wg_cols_adj(const geom *g, const float *T, size_t ld, float *gw, long b0, long b1, int m) {
    long OC = (long)g->O * g->C;
    for (long b = b0; b < b1; b += 8) {
        int nl = OC - b < 8 ? (int)(OC - b) : 8;
        v8 f[9];
        WG_FOR(j, 3) {
            v8 t[WG_AMAX], r[3];
            WG_FOR(i, m + 2) t[i] = v8_load(T + (size_t)(i * 3 + j) * ld + b);
            wg_g_adj(m, t, r);
            WG_FOR(k, 3) f[k * 3 + j] = r[k];
        }
        wg_taps_add(gw, b, nl, f);
    }
}
#define WG_HALVES(name, params, ...)                                                                         \
    NN_SIMD_CLONES static void name##2 params { name(__VA_ARGS__, 2); }                                      \
    NN_SIMD_CLONES static void name##3 params { name(__VA_ARGS__, 3); }                                      \
    NN_SIMD_CLONES static void name##4 params { name(__VA_ARGS__, 4); }                                      \
    NN_SIMD_CLONES static void name##6 params { name(__VA_ARGS__, 6); }
#define WG_HALVES_CALL(name, m, ...)                                                                         \
    ((m) == 2 ? name##2(__VA_ARGS__) : (m) == 3 ? name##3(__VA_ARGS__) : (m) == 4 ? name##4(__VA_ARGS__)    \
                                                                     : name##6(__VA_ARGS__))
WG_HALVES(wg_rows_adj,
          (const geom *g, const float *dU, float *T, size_t ld, long b0, long b1, int i0, int i1), g, dU, T,
          ld, b0, b1, i0, i1)
WG_HALVES(wg_cols_adj, (const geom *g, const float *T, size_t ld, float *gw, long b0, long b1), g, T, ld, gw,
          b0, b1)

// Whether the batch path's weight gradient takes the two halves: 3x3 stride-1 variants, more than one block
static int wg_halves(int m, int R) { return (m == 2 || m == 3 || m == 4 || m == 6) && R < WG_A(m); }
static size_t wg_halves_ld(const geom *g) { return ((size_t)g->O * g->C + 7) / 8 * 8; }

// Rows of the transform per block in the batch paths: as many as keep a block within 1 MiB, so that a
// block of U or dU stays in L2 between its transform and its products (and the large layers' U and dU are
// not their largest temporaries; AMD Zen 5, one thread, 256 channels at 3x3 outputs, batch 64: forward
// 2.33 -> 1.84 ms against blocks of 6 MiB, 128 at 8x8 forward and backward 5.5 -> 4.9 ms); from the
// geometry only, so the sums' order does not depend on the thread count.
static int wino_row_block(const geom *g, int v) {
    int a = WG_A(v);
    size_t row = (size_t)a * g->O * g->C * sizeof(float);
    int r = (int)(((size_t)1 << 20) / (row ? row : 1));
    return r < 1 ? 1 : r > a ? a : r;
}

// v8_store(d + 8k, r[k]) for k < n (n < 8), unrolled: as a loop it becomes a memcpy of r
#define WG_STORE_FIRST(d, r, n)                                                                              \
    switch (n) {                                                                                             \
    case 7: v8_store((d) + 48, (r)[6]); /* fallthrough */                                                    \
    case 6: v8_store((d) + 40, (r)[5]); /* fallthrough */                                                    \
    case 5: v8_store((d) + 32, (r)[4]); /* fallthrough */                                                    \
    case 4: v8_store((d) + 24, (r)[3]); /* fallthrough */                                                    \
    case 3: v8_store((d) + 16, (r)[2]); /* fallthrough */                                                    \
    case 2: v8_store((d) + 8, (r)[1]); /* fallthrough */                                                     \
    case 1: v8_store((d), (r)[0]); /* fallthrough */                                                         \
    default: break;                                                                                          \
    }

// dst[((y + oy)*dw + x + ox)*8 + l] = src[l][y*w + x] for y < h, x < w (through wg_map's q); src[l] NULL: 0.
// A row's last part of n < 8 values is loaded whole where 8 values stay inside the plane (the lanes past n
// come from the next rows and are never stored), not through a copy in memory: a 32-byte load of smaller
// stores waits for them to retire.
// r[l] = 8 values of plane src[l] from off through q's map (wg_map; NULL: as they are), 0 where src[l] is
// NULL; only the first n read (the rest from zeros) where 8 would pass the plane's end
NN_INLINE void wg_load8(v8 *r, const float *const *src, size_t off, int n, size_t end, const float *q) {
    WG_FOR(l, 8) {
        const float *s = src[l] ? src[l] + off : NULL;
        if (!s) r[l] = v8_set1(0.0f);
        else if (n == 8 || off + 8 <= end) r[l] = wg_map(v8_load(s), q);
        else {
            float t[8] = {0};
            memcpy(t, s, sizeof(float) * (size_t)n);
            r[l] = wg_map(v8_load(t), q);
        }
    }
}

NN_INLINE void wg_interleave(float *dst, int dw, int oy, int ox, const float *const *src, int h, int w,
                             const float *q) {
    int full = w % 8 == 0; // and every image present: the whole-vector loop below (its vectors in registers)
    WG_FOR(l, 8) full &= src[l] != NULL;
    for (int y = 0; full && y < h; y++)
        for (int x = 0; x < w; x += 8) {
            v8 r[8];
            WG_FOR(l, 8) r[l] = wg_map(v8_load(src[l] + (size_t)y * w + x), q);
            wg_tr8(r);
            float *d = dst + ((size_t)(y + oy) * dw + x + ox) * 8;
            WG_FOR(k, 8) v8_store(d + 8 * k, r[k]);
        }
    // rows of other lengths, every image present: the plane as one run of h*w values, 8 at a time (a 4x4
    // plane in 2 transposes instead of 4)
    int flat = !full && h * w >= 8;
    WG_FOR(l, 8) flat &= src[l] != NULL;
    for (int p0 = 0, y = 0, x = 0; flat && p0 < h * w; p0 += 8) {
        int n = h * w - p0 < 8 ? h * w - p0 : 8;
        v8 r[8];
        WG_FOR(l, 8) {
            if (n == 8) r[l] = wg_map(v8_load(src[l] + p0), q);
            else {
                float t[8] = {0};
                memcpy(t, src[l] + p0, sizeof(float) * (size_t)n);
                r[l] = wg_map(v8_load(t), q);
            }
        }
        wg_tr8(r);
        WG_FOR(k, 8) {
            if (k < n) v8_store(dst + ((size_t)(y + oy) * dw + x + ox) * 8, r[k]);
            if (++x == w) x = 0, y++;
        }
    }
    for (int y = 0; !full && !flat && y < h; y++)
        for (int x = 0; x < w; x += 8) {
            int n = w - x < 8 ? w - x : 8;
            v8 r[8];
            wg_load8(r, src, (size_t)y * w + x, n, (size_t)h * w, q);
            wg_tr8(r);
            float *d = dst + ((size_t)(y + oy) * dw + x + ox) * 8;
            if (n == 8)
                WG_FOR(k, 8) v8_store(d + 8 * k, r[k]);
            else WG_STORE_FIRST(d, r, n);
        }
}

// One output channel's epilogue in the image-vector output transform (conv_epi's for channel o, applied in
// its stores: the arithmetic of nn_epi_apply's pass over y, NN_EPI8)
typedef struct wepi {
    float s, t, a;
    int relu;
    const float *res[8]; // lane l's residual plane (NULL: none)
} wepi;
#define WG_EPI8(v, e, l, off)                                                                                \
    NN_EPI8(v, (e)->s, (e)->t, (e)->res[l] ? (e)->res[l] + (off) : NULL, (e)->relu, (e)->a)
#define WG_EPI1(v, e, l, off)                                                                                \
    NN_EPI1(v, (e)->s, (e)->t, (e)->res[l] ? (e)->res[l][off] : 0.0f, (e)->relu, (e)->a)

// dst[l][y*w + x] (+)= src[((y + oy)*dw + x + ox)*8 + l] (+ b) for y < h, x < w; dst[l] NULL: skipped.
// Without `add`, a row's last part of n < 8 values is stored whole where 8 values stay inside the plane:
// the lanes past n go to the next rows' first values, which are stored after them.
// e (else NULL; not with add): the values through its epilogue.
NN_INLINE void wg_deinterleave(float *const *dst, int h, int w, const float *src, int dw, int oy, int ox,
                               float b, int add, const wepi *e) {
    v8 vb = v8_set1(b);
    int full = w % 8 == 0; // and every image present: whole vectors, kept in registers
    WG_FOR(l, 8) full &= dst[l] != NULL;
    for (int y = 0; full && y < h; y++)
        for (int x = 0; x < w; x += 8) {
            const float *s = src + ((size_t)(y + oy) * dw + x + ox) * 8;
            v8 r[8];
            WG_FOR(k, 8) r[k] = v8_load(s + 8 * k);
            wg_tr8(r);
            WG_FOR(l, 8) {
                size_t off = (size_t)y * w + x;
                float *d = dst[l] + off;
                v8 v = (add ? v8_load(d) : vb) + r[l];
                v8_store(d, e ? WG_EPI8(v, e, l, off) : v);
            }
        }
    int flat = !full && h * w >= 8; // as in wg_interleave: the plane as one run of h*w values
    WG_FOR(l, 8) flat &= dst[l] != NULL;
    for (int p0 = 0, y = 0, x = 0; flat && p0 < h * w; p0 += 8) {
        int n = h * w - p0 < 8 ? h * w - p0 : 8;
        v8 r[8];
        WG_FOR(k, 8) {
            r[k] = k < n ? v8_load(src + ((size_t)(y + oy) * dw + x + ox) * 8) : v8_set1(0.0f);
            if (++x == w) x = 0, y++;
        }
        wg_tr8(r);
        WG_FOR(l, 8) {
            float *d = dst[l] + p0;
            if (n == 8) {
                v8 v = (add ? v8_load(d) : vb) + r[l];
                v8_store(d, e ? WG_EPI8(v, e, l, (size_t)p0) : v);
            } else {
                float t[8];
                v8_store(t, r[l]);
                WG_FOR(k, n) {
                    float v = (add ? d[k] : b) + t[k];
                    d[k] = e ? WG_EPI1(v, e, l, (size_t)p0 + k) : v;
                }
            }
        }
    }
    for (int y = 0; !full && !flat && y < h; y++)
        for (int x = 0; x < w; x += 8) {
            int n = w - x < 8 ? w - x : 8;
            const float *s = src + ((size_t)(y + oy) * dw + x + ox) * 8;
            v8 r[8];
            WG_FOR(k, 8) r[k] = k < n ? v8_load(s + 8 * k) : v8_set1(0.0f);
            wg_tr8(r);
            WG_FOR(l, 8) {
                size_t off = (size_t)y * w + x;
                float *d = dst[l] ? dst[l] + off : NULL;
                if (!d) continue;
                if (n == 8 || (!add && off + 8 <= (size_t)h * w)) { // (past n: the next rows', stored later)
                    v8 v = (add ? v8_load(d) : vb) + r[l];
                    v8_store(d, e ? WG_EPI8(v, e, l, off) : v);
                } else {
                    float t[8];
                    v8_store(t, r[l]);
                    WG_FOR(k, n) {
                        float v = (add ? d[k] : b) + t[k];
                        d[k] = e ? WG_EPI1(v, e, l, off + k) : v;
                    }
                }
            }
        }
}

// the planes of images g0 .. g0+7 of the chunk at channel c of C (NULL past the chunk's end)
#define WG_PLANES8(p, k, g0, base, c, C, plane)                                                              \
    WG_FOR(l_, 8)                                                                                            \
    (p)[l_] = (g0) + l_ < (k)->nb ? (base) + ((size_t)((k)->n0 + (g0) + l_) * (C) + (c)) * (plane) : NULL

// One source row sy of the 8 images (src[l] NULL: zeros) into row phase buffers d (columns 2x + c0) and d1
// (else NULL; columns 2x + c0 + 1): each 8 values of the 8 rows transposed once, then each column's vector
// stored whole into its phase; the places no column of the row lands in set to 0
NN_INLINE void wg_interleave_s2_row(float *d, float *d1, const float *const *src, int h, int w, int sy,
                                    int c0, int wp) {
    for (int x = 0; x < w; x += 8) {
        int n = w - x < 8 ? w - x : 8;
        v8 r[8];
        wg_load8(r, src, (size_t)sy * w + x, n, (size_t)h * w, NULL);
        wg_tr8(r);
        WG_FOR(q, 8) {
            int t = x + q - c0, xo = t >> 1; // column x + q is 2 xo + c0 (d) or 2 xo + c0 + 1 (d1)
            float *p = t & 1 ? d1 : d;
            if (q < n && p && xo >= 0 && xo < wp) v8_store(p + (size_t)xo * 8, r[q]);
        }
    }
    for (int k = 0; k < 2; k++) {
        float *p = k ? d1 : d;
        int c = c0 + k, xl = c < 0 ? (1 - c) / 2 : 0, xr = (w - c + 1) / 2; // 0 <= 2 xo + c < w
        if (!p) continue;
        memset(p, 0, sizeof(float) * 8 * (size_t)(xl < wp ? xl : wp));
        if (xr < wp) memset(p + (size_t)xr * 8, 0, sizeof(float) * 8 * (size_t)(wp - xr));
    }
}

// dst[(y*dw + x)*8 + l] = src[l][(2y + r0)*w + 2x + c0] (0 outside h x w or where src[l] is NULL) for
// y < hp, x < wp: stride phase (r0, c0) of 8 planes, and into dst1 (else NULL) phase (r0, c0 + 1) from the
// same loads (each source row read once for both)
NN_INLINE void wg_interleave_s2(float *dst, float *dst1, int dw, const float *const *src, int h, int w,
                                int r0, int c0, int hp, int wp) {
    for (int y = 0; y < hp; y++) {
        int sy = 2 * y + r0;
        float *d = dst + (size_t)y * dw * 8, *d1 = dst1 ? dst1 + (size_t)y * dw * 8 : NULL;
        if (sy >= 0 && sy < h) {
            wg_interleave_s2_row(d, d1, src, h, w, sy, c0, wp);
            continue;
        }
        memset(d, 0, sizeof(float) * 8 * (size_t)wp);
        if (d1) memset(d1, 0, sizeof(float) * 8 * (size_t)wp);
    }
}

// The patches' buffer of channel c of 8 images from g0 on: the planes with their padding, or for WG_S2 the
// stride phase c / C of channel c % C of the stride-2 conv's input (C its channels), and into pin1 (else
// NULL) the next column phase's (channel c + C)
NN_INLINE void wg_interleave_in(const geom *g, const wchunk *k, const float *x, int c, int g0, wbufs *b,
                                float *pin, float *pin1, int vr) {
    const float *src[8];
    if (!WG_IS_S2(vr)) {
        float q[4];
        if (b->pro) nn_bn_map_ch(b->pro, c, q);
        WG_PLANES8(src, k, g0, x, c, g->C, (size_t)g->H * g->W);
        wg_interleave(pin, b->wp, g->pt, g->pl, src, g->H, g->W, b->pro ? q : NULL);
        return;
    }
    const geom *s = k->src;
    int ph = c / s->C;
    WG_PLANES8(src, k, g0, x, c % s->C, s->C, (size_t)s->H * s->W);
    wg_interleave_s2(pin, pin1, b->wp, src, s->H, s->W, ph / 2 - s->pt, ph % 2 - s->pl, g->H, g->W);
}

// The forward transforms of the image-vector layout run on W slots at a time: slot s of a chunk is tile
// s / ng of image group s % ng (8 images each, ng = nbp / 8), the floats 8s .. 8s+7 of each row of V and M.
// With AVX-512 (k->wide) W = 2: two slots are 16 adjacent floats, one 16-lane vector (half the instructions
// of two 8-lane ones); elsewhere W = 1: a tile of 16-lane vectors takes twice AVX2's 16 registers, and the
// spills cost more than the instructions saved (AMD Zen 5 limited to AVX2, the multi-branch net: inference
// 1.57x, training 1.28x by single slots). Each lane's arithmetic is that of the 8-lane transforms, so the
// same bits either way. Each image group's patches in a buffer of its own (pin, pout + q * img). An odd last
// slot of W = 2 runs as both halves, its second half not stored.
NN_INLINE void wg_slot_bufs(const wchunk *k, const wbufs *b, float *base, int s, int ns, int m, float **p) {
    int ng = k->nbp / 8;
    WG_FOR(h, 2) {
        int sh = s + h < ns ? s + h : s, t = sh / ng, q = sh % ng;
        p[h] = base + (size_t)q * b->img + ((size_t)m * (t / k->tw) * b->wp + (size_t)m * (t % k->tw)) * 8;
    }
}

// W slots' vectors (T: v8 or v16) from p0 (and p1); into p the first `both ? W : 1` slots' lanes
#define WG_LDS1(p0, p1) v8_load(p0)
#define WG_LDS2(p0, p1) v16_load2(p0, p1)
#define WG_STS1(p, v, both) v8_store(p, v)
#define WG_STS2(p, v, both) ((both) ? v16_store(p, v) : v8_store(p, v16_lo(v)))
// slot h's 8 lanes of v
#define WG_HALF1(v, h) (v)
#define WG_HALF2(v, h) ((h) ? v16_hi(v) : v16_lo(v))

// V's row of channel c from the patches' buffers at base (wg_interleave_in's), W slots at a time
#define WG_DEF_INPUT_SLOTS(fn, T, W, BT)                                                                    \
    NN_INLINE void fn(const wchunk *k, wbufs *b, const float *base, float *vp, size_t ps, int vr) {          \
        int m = WG_M(vr), a = WG_A(vr), wp = b->wp, ns = k->th * k->tw * (k->nbp / 8);                       \
        for (int s = 0; s < ns; s += W) {                                                                    \
            float *p[2];                                                                                     \
            wg_slot_bufs(k, b, (float *)base, s, ns, m, p);                                                  \
            T t[WG_AMAX][WG_AMAX];                                                                           \
            WG_UNROLL for (int q = 0; q < a; q++) { /* columns: Bt d */                                      \
                T d[WG_AMAX], v[WG_AMAX];                                                                    \
                WG_FOR(r, a) {                                                                               \
                    size_t off = ((size_t)r * wp + q) * 8;                                                   \
                    d[r] = WG_LDS##W(p[0] + off, p[1] + off);                                                \
                }                                                                                            \
                BT(WG_BV(vr), d, v);                                                                         \
                WG_FOR(r, a) t[r][q] = v[r];                                                                 \
            }                                                                                                \
            float *vt = vp + (size_t)8 * s;                                                                  \
            WG_FOR(r, a) { /* rows: (Bt d) B */                                                              \
                T v[WG_AMAX];                                                                                \
                BT(WG_BV(vr), t[r], v);                                                                      \
                WG_FOR(q, a) WG_STS##W(vt + (size_t)(r * a + q) * ps, v[q], s + 1 < ns);                     \
            }                                                                                                \
        }                                                                                                    \
    }
WG_DEF_INPUT_SLOTS(wg_input_slots1, v8, 1, wg_bt)
WG_DEF_INPUT_SLOTS(wg_input_slots2, v16, 2, wg_bt16)
NN_INLINE void wg_input_slots(const wchunk *k, wbufs *b, const float *base, float *vp, size_t ps, int vr) {
    if (k->wide) wg_input_slots2(k, b, base, vp, ps, vr);
    else wg_input_slots1(k, b, base, vp, ps, vr);
}

// WG_S2: the two column phases of a row phase from one pass over the input rows (channels c and c + C0 into
// pin and pin1), where both are in [c0, c1)
NN_INLINE void wino_input_iv_m(const geom *g, const wchunk *k, const float *x, float *V, size_t ps, wbufs *b,
                               int vr) {
    int ng = k->nbp / 8, c1 = k->c1 < g->C ? k->c1 : g->C, C0 = WG_IS_S2(vr) ? g->C / 4 : 0;
    for (int c = k->c0; c < c1 && (b->il & 1); c++) // x in this layout: its buffers are the patches'
        wg_input_slots(k, b, x + ((size_t)c * b->il_ng + (size_t)k->n0 / 8) * b->img, V + (size_t)c * k->ld,
                       ps, vr);
    for (int c = k->c0; c < c1 && !(b->il & 1); c++) {
        int ph = C0 ? c / C0 : 0, pair = C0 && ph % 2 == 0 && (c + C0 < c1 || k->pair);
        if (C0 && ph % 2 == 1 && c - C0 >= k->c0) continue; // made with channel c - C0
        for (int q = 0; q < ng; q++)
            wg_interleave_in(g, k, x, c, 8 * q, b, b->pin + (size_t)q * b->img,
                             pair ? b->pin1 + (size_t)q * b->img : NULL, vr);
        wg_input_slots(k, b, b->pin, V + (size_t)c * k->ld, ps, vr);
        if (pair) wg_input_slots(k, b, b->pin1, V + (size_t)(c + C0) * k->ld, ps, vr);
    }
}

// dst[l][(2y + r0)*w + 2x + c0] += src[(y*sw + x)*8 + l] inside h x w (dst[l] NULL: skipped) for y < hp,
// x < wp: the adjoint of wg_interleave_s2
NN_INLINE void wg_deinterleave_s2(float *const *dst, int h, int w, const float *src, int sw, int r0, int c0,
                                  int hp, int wp) {
    int x0 = c0 < 0 ? (1 - c0) / 2 : 0, x1 = (w - 1 - c0) / 2 + 1; // 0 <= 2x + c0 < w
    if (x1 > wp) x1 = wp;
    for (int y = 0; y < hp; y++) {
        int sy = 2 * y + r0;
        if (sy < 0 || sy >= h) continue;
        for (int l = 0; l < 8; l++) {
            if (!dst[l]) continue;
            float *d = dst[l] + (size_t)sy * w + c0;
            const float *p = src + (size_t)y * sw * 8 + l;
            for (int x = x0; x < x1; x++) d[2 * x] += p[(size_t)x * 8];
        }
    }
}

// gx += the patches' buffer of channel c of 8 images from g0 on: the adjoint of wg_interleave_in
NN_INLINE void wg_deinterleave_in(const geom *g, const wchunk *k, float *gx, int c, int g0, wbufs *b,
                                  int vr) {
    float *dst[8];
    if (!WG_IS_S2(vr)) {
        WG_PLANES8(dst, k, g0, gx, c, g->C, (size_t)g->H * g->W);
        wg_deinterleave(dst, g->H, g->W, b->pacc, b->wp, g->pt, g->pl, 0.0f, 1, NULL);
        return;
    }
    const geom *s = k->src;
    int ph = c / s->C;
    WG_PLANES8(dst, k, g0, gx, c % s->C, s->C, (size_t)s->H * s->W);
    wg_deinterleave_s2(dst, s->H, s->W, b->pacc, b->wp, ph / 2 - s->pt, ph % 2 - s->pl, g->H, g->W);
}

NN_INLINE void wino_input_adj_iv_m(const geom *g, const wchunk *k, const float *dV, size_t ps, float *gx,
                                   wbufs *b, int vr) {
    int m = WG_M(vr), a = WG_A(vr), th = k->th, tw = k->tw, wp = b->wp;
    size_t nbp = (size_t)k->nbp;
    for (int c = k->c0; c < (k->c1 < g->C ? k->c1 : g->C); c++)
        for (int g0 = 0; g0 < k->nb; g0 += 8) {
            memset(b->pacc, 0, sizeof(float) * 8 * (size_t)b->hp * wp);
            const float *vp = dV + (size_t)c * k->ld + g0;
            for (int i = 0; i < th; i++)
                for (int j = 0; j < tw; j++) {
                    const float *vt = vp + (size_t)(i * tw + j) * nbp;
                    float *p = b->pacc + ((size_t)m * i * wp + (size_t)m * j) * 8;
                    v8 t[WG_AMAX][WG_AMAX];
                    WG_FOR(r, a) { // rows: dV Bt
                        v8 v[WG_AMAX], u[WG_AMAX];
                        WG_FOR(q, a) v[q] = v8_load(vt + (size_t)(r * a + q) * ps);
                        wg_bt_adj(WG_BV(vr), v, u);
                        WG_FOR(q, a) t[r][q] = u[q];
                    }
                    WG_FOR(q, a) { // columns: B (dV Bt), added into the patch
                        v8 col[WG_AMAX], u[WG_AMAX];
                        WG_FOR(r, a) col[r] = t[r][q];
                        wg_bt_adj(WG_BV(vr), col, u);
                        WG_FOR(r, a) {
                            float *d = p + ((size_t)r * wp + q) * 8;
                            v8_store(d, v8_load(d) + u[r]);
                        }
                    }
                }
            wg_deinterleave_in(g, k, gx, c, g0, b, vr);
        }
}

// The output tiles (At M A) of the W slots from s (s + 1 = ns: slot s twice) of M's row mp into p[0] (and
// p[1]), their rows rs floats apart: as they are (il 0), or b + each value through the epilogue e (else NULL)
// in the stores (il 1: wg_deinterleave's arithmetic, no residual)
#define WG_DEF_OUT_SLOTS(fn, T, W, AT)                                                                      \
    NN_INLINE void fn(const float *mp, size_t ps, int s, int ns, float *const *p, size_t rs, int vr, int il, \
                      float b, const wepi *e) {                                                              \
        int m = WG_M(vr), a = WG_A(vr);                                                                      \
        const float *mt = mp + (size_t)8 * s, *mt1 = s + 1 < ns ? mt + 8 : mt; /* (W = 1: not read) */       \
        T t[WG_AMAX - 2][WG_AMAX];                                                                           \
        (void)mt1;                                                                                           \
        WG_FOR(q, a) { /* columns: At M */                                                                   \
            T mm[WG_AMAX], v[WG_AMAX - 2];                                                                   \
            WG_FOR(r, a) mm[r] = WG_LDS##W(mt + (size_t)(r * a + q) * ps, mt1 + (size_t)(r * a + q) * ps);   \
            AT(vr, mm, v);                                                                                   \
            WG_FOR(r, m) t[r][q] = v[r];                                                                     \
        }                                                                                                    \
        v8 vb = v8_set1(b);                                                                                  \
        WG_FOR(r, m) { /* rows: (At M) A */                                                                  \
            T v[WG_AMAX - 2];                                                                                \
            AT(vr, t[r], v);                                                                                 \
            WG_FOR(q, m) WG_FOR(h, W) {                                                                      \
                size_t off = (size_t)r * rs + (size_t)q * 8;                                                 \
                v8 y = WG_HALF##W(v[q], h);                                                                  \
                if (il) y = vb + y, y = e ? NN_EPI8(y, e->s, e->t, NULL, e->relu, e->a) : y;                 \
                v8_store(p[h] + off, y);                                                                     \
            }                                                                                                \
        }                                                                                                    \
    }
WG_DEF_OUT_SLOTS(wg_out_slots1, v8, 1, wg_at)
WG_DEF_OUT_SLOTS(wg_out_slots2, v16, 2, wg_at16)
NN_INLINE void wg_out_pair(const wchunk *k, const float *mp, size_t ps, int s, int ns, float *const *p,
                           size_t rs, int vr, int il, float b, const wepi *e) {
    if (k->wide) wg_out_slots2(mp, ps, s, ns, p, rs, vr, il, b, e);
    else wg_out_slots1(mp, ps, s, ns, p, rs, vr, il, b, e);
}

// NN_ACT_WINO: output channel o of the chunk's 8-image groups into the next conv's input layout (y: each
// group's padded plane of 8-lane values, Wo + 2 wide and Ho + 2 high, output (r, q) at (r + 1, q + 1)), bias
// and epilogue in the stores (wg_deinterleave's arithmetic, no residual), the planes' borders 0
NN_INLINE void wg_output_il(const geom *g, const wchunk *k, const float *mp, size_t ps, float bias, float *y,
                            const wbufs *b, const wepi *e, int o, int vr) {
    int m = WG_M(vr), ng = k->nbp / 8, ns = k->th * k->tw * ng, w8 = b->il_w * 8;
    float *base = y + ((size_t)o * b->il_ng + (size_t)k->n0 / 8) * b->il_img;
    for (int s = 0; s < ns; s += 1 + k->wide) {
        float *p[2];
        WG_FOR(h, 2) {
            int sh = s + h < ns ? s + h : s, t = sh / ng, q = sh % ng;
            p[h] = base + (size_t)q * b->il_img + ((size_t)m * (t / k->tw) + 1) * w8 +
                   ((size_t)m * (t % k->tw) + 1) * 8;
        }
        wg_out_pair(k, mp, ps, s, ns, p, (size_t)w8, vr, 1, bias, e);
    }
    for (int q = 0; q < ng; q++) { // the borders
        float *pl = base + (size_t)q * b->il_img;
        memset(pl, 0, sizeof(float) * (size_t)w8);
        memset(pl + (size_t)(g->Ho + 1) * w8, 0, sizeof(float) * (size_t)w8);
        for (int r = 1; r <= g->Ho; r++) {
            memset(pl + (size_t)r * w8, 0, sizeof(float) * 8);
            memset(pl + (size_t)r * w8 + (size_t)(g->Wo + 1) * 8, 0, sizeof(float) * 8);
        }
    }
}

NN_INLINE void wino_output_iv_m(const geom *g, const wchunk *k, const float *M, size_t ps, const float *bias,
                                float *y, wbufs *b, int vr) {
    int m = WG_M(vr), wp = b->wp, ng = k->nbp / 8, ns = k->th * k->tw * ng;
    for (int o = k->c0; o < (k->c1 < g->O ? k->c1 : g->O) && (b->il & 2); o++) {
        const conv_epi *ce = b->epi;
        wepi e = {ce && ce->scale ? ce->scale[o] : 1.0f, ce && ce->shift ? ce->shift[o] : 0.0f,
                  ce ? ce->slope : 0.0f, ce ? ce->relu : 0, {NULL}};
        wg_output_il(g, k, M + (size_t)o * k->ld, ps, bias ? bias[o] : 0.0f, y, b, ce ? &e : NULL, o, vr);
    }
    for (int o = k->c0; o < (k->c1 < g->O ? k->c1 : g->O) && !(b->il & 2); o++) {
        const float *mp = M + (size_t)o * k->ld;
        for (int s = 0; s < ns; s += 1 + k->wide) {
            float *p[2];
            wg_slot_bufs(k, b, b->pout, s, ns, m, p);
            wg_out_pair(k, mp, ps, s, ns, p, (size_t)wp * 8, vr, 0, 0.0f, NULL);
        }
        const conv_epi *ce = b->epi;
        wepi e = {ce && ce->scale ? ce->scale[o] : 1.0f, ce && ce->shift ? ce->shift[o] : 0.0f,
                  ce ? ce->slope : 0.0f, ce ? ce->relu : 0, {NULL}};
        for (int q = 0; q < ng; q++) {
            float *dst[8];
            WG_PLANES8(dst, k, 8 * q, y, o, g->O, (size_t)g->Ho * g->Wo);
            WG_FOR(l, 8) e.res[l] = ce && ce->res && dst[l] ? ce->res + (dst[l] - y) : NULL;
            wg_deinterleave(dst, g->Ho, g->Wo, b->pout + (size_t)q * b->img, wp, 0, 0, bias ? bias[o] : 0.0f,
                            0, ce ? &e : NULL);
        }
    }
}

NN_INLINE void wino_output_adj_iv_m(const geom *g, const wchunk *k, const float *gy, float *dM, size_t ps,
                                    wbufs *b, int vr) {
    int m = WG_M(vr), a = WG_A(vr), th = k->th, tw = k->tw, wp = b->wp;
    size_t nbp = (size_t)k->nbp;
    for (int o = k->c0; o < (k->c1 < g->O ? k->c1 : g->O); o++)
        for (int g0 = 0; g0 < k->nb; g0 += 8) {
            const float *src[8];
            WG_PLANES8(src, k, g0, gy, o, g->O, (size_t)g->Ho * g->Wo);
            wg_interleave(b->pout, wp, 0, 0, src, g->Ho, g->Wo, NULL); // beyond Ho x Wo: the buffer's zeros
            float *mp = dM + (size_t)o * k->ld + g0;
            for (int i = 0; i < th; i++)
                for (int j = 0; j < tw; j++) {
                    const float *p = b->pout + ((size_t)m * i * wp + (size_t)m * j) * 8;
                    float *mt = mp + (size_t)(i * tw + j) * nbp;
                    v8 t[WG_AMAX - 2][WG_AMAX];
                    WG_FOR(r, m) { // rows: dy A
                        v8 yv[WG_AMAX - 2], v[WG_AMAX];
                        WG_FOR(q, m) yv[q] = v8_load(p + ((size_t)r * wp + q) * 8);
                        wg_at_adj(vr, yv, v);
                        WG_FOR(q, a) t[r][q] = v[q];
                    }
                    WG_FOR(q, a) { // columns: A (dy A)
                        v8 col[WG_AMAX - 2], v[WG_AMAX];
                        WG_FOR(r, m) col[r] = t[r][q];
                        wg_at_adj(vr, col, v);
                        WG_FOR(r, a) v8_store(mt + (size_t)(r * a + q) * ps, v[r]);
                    }
                }
        }
}

// each transform for m = 2 and m = 4 (the tile size a compile-time constant),
// compiled for AVX2 and baseline x86-64
#define WG_VARIANTS(name, params, ...)                                                                       \
    NN_SIMD_CLONES static void name##2 params { name##_m(__VA_ARGS__, 2); }                                  \
    NN_SIMD_CLONES static void name##4 params { name##_m(__VA_ARGS__, 4); }
// and the image-vector transforms for F(3x3, 3x3), F(2x2, 5x5) and F(6x6, 3x3) too
#define WG_VARIANTS_IV(name, params, ...)                                                                    \
    WG_VARIANTS(name, params, __VA_ARGS__)                                                                   \
    NN_SIMD_CLONES static void name##3 params { name##_m(__VA_ARGS__, 3); }                                  \
    NN_SIMD_CLONES static void name##5 params { name##_m(__VA_ARGS__, 5); }                                  \
    NN_SIMD_CLONES static void name##6 params { name##_m(__VA_ARGS__, 6); }                                  \
    NN_SIMD_CLONES static void name##7 params { name##_m(__VA_ARGS__, WG_S2); }                              \
    NN_SIMD_CLONES static void name##8 params { name##_m(__VA_ARGS__, WG_S2_3); }
WG_VARIANTS(wino_input, (const geom *g, const wchunk *k, const float *x, float *V, size_t ps, wbufs *b), g, k,
            x, V, ps, b)
WG_VARIANTS(wino_input_adj, (const geom *g, const wchunk *k, const float *dV, size_t ps, float *gx, wbufs *b),
            g, k, dV, ps, gx, b)
WG_VARIANTS(wino_output,
            (const geom *g, const wchunk *k, const float *M, size_t ps, const float *bias, float *y,
             wbufs *b),
            g, k, M, ps, bias, y, b)
WG_VARIANTS(wino_output_adj,
            (const geom *g, const wchunk *k, const float *gy, float *dM, size_t ps, wbufs *b), g, k, gy, dM,
            ps, b)
WG_VARIANTS_IV(wino_input_iv, (const geom *g, const wchunk *k, const float *x, float *V, size_t ps, wbufs *b),
               g, k, x, V, ps, b)
WG_VARIANTS_IV(wino_input_adj_iv,
            (const geom *g, const wchunk *k, const float *dV, size_t ps, float *gx, wbufs *b), g, k, dV, ps,
            gx, b)
WG_VARIANTS_IV(wino_output_iv,
            (const geom *g, const wchunk *k, const float *M, size_t ps, const float *bias, float *y,
             wbufs *b),
            g, k, M, ps, bias, y, b)
WG_VARIANTS_IV(wino_output_adj_iv,
            (const geom *g, const wchunk *k, const float *gy, float *dM, size_t ps, wbufs *b), g, k, gy, dM,
            ps, b)
// transform `name` of plan p's layout and tile size
#define WG_CALL(name, p, ...)                                                                                \
    ((p)->iv ? ((p)->m == 8   ? name##_iv8(__VA_ARGS__)                                                      \
                : (p)->m == 7 ? name##_iv7(__VA_ARGS__)                                                      \
                : (p)->m == 6 ? name##_iv6(__VA_ARGS__)                                                      \
                : (p)->m == 5 ? name##_iv5(__VA_ARGS__)                                                      \
                : (p)->m == 4 ? name##_iv4(__VA_ARGS__)                                                      \
                : (p)->m == 3 ? name##_iv3(__VA_ARGS__)                                                      \
                              : name##_iv2(__VA_ARGS__))                                                     \
             : ((p)->m == 4 ? name##4(__VA_ARGS__) : name##2(__VA_ARGS__)))

static int wino_ok(const geom *g) { return g->kh == 3 && g->kw == 3 && g->sh == 1 && g->sw == 1 && g->H > 1; }

// Chunks of whole images (patches overlap within an image only), with at
// least WG_CHUNK_VALUES transformed values per channel so that the GEMMs stay
// efficient at small sizes and V and M fit in the L2 cache. The number of
// chunks is a multiple of the thread count where the batch allows, and the
// images are spread evenly over the chunks (sizes differ by at most one), so
// that each thread's contiguous share of chunks holds N/threads images. In the
// image-vector layout the chunks hold multiples of 8 images (the last one the
// rest), as many as the thread count allows. (Intel AVX-512, the multi-branch net: 2048 infers at 781-788
// samples/s against 747-760 with 4096, 715 with 8192; training the same.)
#define WG_CHUNK_VALUES 2048
typedef struct wplan {
    int m, iv;     // transform variant (WG_M, WG_A), image-vector layout
    int batch;     // one chunk of the whole batch, shared by the threads
    long nchunks;
    int nbmax;     // images per chunk, at most
    int blas;      // the products by cblas_sgemm (ctx->tune.gemm_blas)
    size_t ld;     // the row stride of V and M
    const geom *src; // WG_S2: the stride-2 conv whose phases the input is (wchunk.src)
} wplan;

static wplan wino_plan(const nn_ctx *c, const geom *g, int v) {
    int m = WG_M(v), a = WG_A(v), th = (g->Ho + m - 1) / m, tw = (g->Wo + m - 1) / m, tpi = th * tw;
    int tiles = WG_CHUNK_VALUES / (a * a), nb = (tiles + tpi - 1) / tpi,
        nt = gn_threads() > 0 ? gn_threads() : 1;
    // the image-vector layout up to 8 tiles per row (32x32 outputs by F(4x4): the multi-branch net's first
    // stage 371 -> 417 effective GFLOP/s in inference; in training, since its forward transforms run on
    // 16-lane vectors, its step 1.5-4.8 % faster than by rows of tiles, AMD Zen 5, 1 and 2 threads)
    int iv = v == 3 || v == 5 || v == 6 || WG_IS_S2(v) || (c->tune.wino_layout >= 0 ? c->tune.wino_layout
                                                 : tw <= 8 && g->N >= 8);
    wplan p = {v, iv, 0, 0, 0, c->tune.gemm_blas, 0, NULL};
    if (p.iv) {
        int per_thread = (g->N + nt - 1) / nt;
        nb = (nb + 7) / 8 * 8;
        if (nb > (per_thread + 7) / 8 * 8) nb = (per_thread + 7) / 8 * 8;
        p.nchunks = (g->N + nb - 1) / nb, p.nbmax = nb;
        // Few and small images and many channels: per-thread chunks would each
        // stream the whole of U for a few tiles and sum a copy of dU per
        // thread. Instead the threads share one chunk of the batch where its V
        // and M take at most 6 MiB (inference, Intel AVX-512: 740 instead of 670 samples/s against 12 MiB;
        // training, AMD Zen 5 with AVX-512, 2 threads: the same speed while the machine's shared L3 is
        // quiet, 4-7 % faster while other jobs contend for it, and 4.5 % slower at 3 MiB; AMD AVX2, 12
        // MiB against chunks: faster from 12x12 outputs down, the same at 16x16, slower at 24x24). One
        // thread's inference (each thread's own rows, as galnn predict runs) by chunks: AMD Zen 5, 2 threads
        // +1 to +8 % in alternated runs.
        size_t vm = (size_t)a * a * (g->C + g->O) * ((g->N + 7) / 8 * 8) * tpi, cap = (size_t)3 << 19;
        int batch = c->tune.wino_batch >= 0 ? c->tune.wino_batch && vm <= ((size_t)8 << 20)
                                            : (c->grad_enabled || nt > 1) && vm <= cap;
        if (batch && (!WG_IS_S2(v) || c->grad_enabled)) p.batch = 1, p.nchunks = 1, p.nbmax = g->N;
    } else {
        if (nb >= g->N) nb = g->N;
        long nchunks = (g->N + nb - 1) / nb;
        nchunks = (nchunks + nt - 1) / nt * nt;
        p.nchunks = nchunks < g->N ? nchunks : g->N;
        p.nbmax = (int)((g->N + p.nchunks - 1) / p.nchunks);
    }
    // the rows of V and M (one per channel) an odd number of cache lines apart
    p.ld = nn_odd_lines((size_t)(p.iv ? (p.nbmax + 7) / 8 * 8 : p.nbmax) * tpi);
    return p;
}
static wchunk wino_chunk(const geom *g, const wplan *p, long idx) {
    int m = WG_M(p->m), n0, n1;
    if (p->iv) n0 = (int)(idx * p->nbmax), n1 = n0 + p->nbmax < g->N ? n0 + p->nbmax : g->N;
    else n0 = (int)(idx * g->N / p->nchunks), n1 = (int)((idx + 1) * g->N / p->nchunks);
    wchunk k = {n0,
                n1 - n0,
                (g->Ho + m - 1) / m,
                (g->Wo + m - 1) / m,
                p->iv ? (n1 - n0 + 7) / 8 * 8 : n1 - n0,
                0,
                p->ld,
                0,
                INT_MAX,
                0,
                NULL,
                WG_IS_S2(p->m) ? WG_A(p->m) : 0,
                0,
                nn_gemm_wide(p->blas)};
    k.src = p->src;
    k.TC = (size_t)k.nbp * k.th * k.tw;
    k.blas = p->blas;
    return k;
}

// A 3x3 stride-2 conv g as the stride-1 2x2 conv of its input's stride phases: output (i, j) =
// sum over taps (u, v) of w[u][v] x[2i + u - pt][2j + v - pl] = sum over phases (p, q) and 2x2 taps (s, t)
// of w[2s + p][2t + q] x_pq[i + s][j + t], x_pq[y][x] = x[2y + p - pt][2x + q - pl] (Ho + 1 x Wo + 1), the
// phases as 4 C channels (phase-major); the taps past the 3x3 are 0. F(4x4, 2x2) takes 25/16 * 4 C
// multiplications per output against the direct method's 9 C.
static geom wino_s2_geom(const geom *g) {
    return (geom){g->N, 4 * g->C, g->Ho + 1, g->Wo + 1, g->O, 2, 2, 1, 1, 0, 0, g->Ho, g->Wo};
}

// the transform variant for this conv under ctx->winograd (0: not by Winograd): for 3x3 the tile size,
// for 5x5 stride-1 convs F(2x2, 5x5) (5) under the default rule, from 2x2 outputs and 16 input channels
// (fewer: the transforms outweigh the products; the S-space model's 5-band stem is faster by im2col, its
// step 13.3 -> 12.7 s)
int nn_wino_tile(const nn_ctx *c, const geom *g) {
    // 3x3 stride-2 convs without a tape (ctx->tune.wino_s2) from 8 images and 16 channels by F(4x4, 2x2)
    // or F(3x3, 2x2) on the stride phases, the one with fewer multiplications (81 and 49 per tile and
    // channel: wino_gemm_s2), where that takes at most 0.8 times the direct method's (F(4x4) at 4x4, 8x8,
    // 12x12, 16x16 outputs, F(3x3) at 3x3, 6x6). Under a tape (training) where a thread's copy of dU takes
    // at most 1 MiB, or the batch path takes it (one dU, by blocks of rows): by chunks with more channels
    // the weight gradient's copies outweigh the products saved (the multi-branch net, AMD Zen 5, one
    // thread: 32 -> 64 channels 20-23 % faster forward and backward, 128 -> 256 twice as slow). The batch
    // path for the deeper ones (64 -> 128 and 128 -> 256 at 16x16, 12x12, 8x8, 6x6 inputs): the 2-thread
    // step +2.2 % against none by Winograd (10 alternated pairs, 9 faster), +0.6 % against the 32 -> 64 ones
    // alone; then each row of 5 products in two halves (wino_gemms_batch) +3 to +14 % on the convs' forward.
    int s2 = c->tune.wino_s2 > 0 || (c->tune.wino_s2 < 0 && !c->grad_enabled);
    if (c->winograd == 1 && c->tune.wino_s2 != 0 && g->kh == 3 && g->kw == 3 && g->sh == 2 && g->sw == 2 &&
        g->N >= 8 && g->C >= 16 && g->W <= 1024 && g->pl <= 16 &&
        2 * g->Wo - g->pl <= g->W + 15) { // (rows' reach)
        long n4 = 81L * ((g->Ho + 3) / 4) * ((g->Wo + 3) / 4),
             n3 = 49L * ((g->Ho + 2) / 3) * ((g->Wo + 2) / 3);
        long best = n4 <= n3 ? n4 : n3, a = n4 <= n3 ? 5 : 4;
        geom gs = wino_s2_geom(g);
        s2 = s2 || a * a * g->O * 4 * g->C * (long)sizeof(float) <= (1L << 20) ||
             wino_plan(c, &gs, n4 <= n3 ? WG_S2 : WG_S2_3).batch;
        if (s2 && 10 * best <= 72L * g->Ho * g->Wo) return n4 <= n3 ? WG_S2 : WG_S2_3;
    }
    if (c->winograd == 1 && g->kh == 5 && g->kw == 5 && g->sh == 1 && g->sw == 1 && g->Ho >= 2 &&
        g->Wo >= 2 && g->C >= 16)
        return 5;
    if (!c->winograd || !wino_ok(g)) return 0;
    int w = c->winograd;
    if (w == 2 || w == 3 || w == 4 || w == 6) return w; // a forced 3x3 tile (other values: the rule below)
    // The tile size with the fewest multiplications (a^2 per tile, over the tiles that cover the output),
    // F(2x2) at a tie with F(4x4) and F(4x4) at a tie with F(6x6) (rounding grows with the tile); im2col
    // below 3x3 outputs, where F(2x2) takes as many as the direct method. F(3x3) and F(6x6) run in image
    // vectors only, so only from 8 images and up to 8 tiles per row; F(6x6) from 64 channels in and out
    // (with fewer its transforms outweigh the products it saves: AMD Zen 5, one thread, 32 channels at
    // 24x24 outputs, the multi-branch net's inference: 4 % slower than F(4x4); 64 at 12x12 12 % faster).
    if (g->Ho < 3 || g->Wo < 3) return 0;
    int best = 2, cost = 16 * ((g->Ho + 1) / 2) * ((g->Wo + 1) / 2);
    static const int ms[3] = {4, 3, 6};
    for (int i = 0; i < 3; i++) {
        int m = ms[i], a = m + 2, tw = (g->Wo + m - 1) / m, n = a * a * ((g->Ho + m - 1) / m) * tw;
        int ok = m == 4 || (g->N >= 8 && tw <= 8 && (m == 3 || (g->C >= 64 && g->O >= 64)));
        if (n < cost && ok) best = m, cost = n;
    }
    return best;
}

// M = U V at point xi of a stride-2 conv's phases (channels phase-major, C0 per phase): a phase's 2x2
// kernel with one tap along an axis (odd rows, odd columns) has its second tap 0, so G's row for infinity
// (the axis' last point) makes its U 0 there, and the product skips those phases' channels: 81 of the 100
// multiply-adds per channel and tile by F(4x4, 2x2), 49 of 64 by F(3x3, 2x2). (0 * v added to a sum leaves
// it as it was; the two phases of the last column, 0 and 2, are two products, the second added to the first.)
// (rows O of M: Ux and Mx from row o0 on)
static void wino_gemm_s2(const geom *g, const wchunk *k, int xi, int O, const float *Ux, const float *Vx,
                         float *Mx) {
    int a = k->s2a, li = xi / a == a - 1, lj = xi % a == a - 1, C0 = g->C / 4, TC = (int)k->TC,
        ld = (int)k->ld, K = li && lj ? C0 : li || lj ? 2 * C0 : g->C;
    if (!lj || li) return nn_gemm_small(k->blas, 0, O, TC, K, Ux, g->C, Vx, ld, Mx, ld);
    nn_gemm_small(k->blas, 0, O, TC, C0, Ux, g->C, Vx, ld, Mx, ld);
    nn_gemm_small_add(k->blas, O, TC, C0, Ux + 2 * C0, g->C, Vx + (size_t)2 * C0 * ld, ld, Mx, ld);
}

// Part p of np of point xi's product (nn/gemm.h: single-threaded, inside the parallel region): the rows of
// M = U V (WG_FWD) or dV = U^T dM (WG_DATA), or the columns of dU += dM V^T (WG_WEIGHT; zeroed first where
// `zero`), cut at multiples of the kernels' blocks, so every value's chain of multiply-adds is the same for
// any np. U and dU hold planes from u0 on.
enum { WG_FWD, WG_DATA, WG_WEIGHT };
static void wino_gemm_part(int kind, int xi, int p, int np, int u0, const geom *g, const wchunk *k,
                           const float *U, float *dU, float *V, size_t vps, float *M, size_t mps, int zero) {
    size_t OC = (size_t)g->O * g->C;
    int TC = (int)k->TC, ld = (int)k->ld, D = kind == WG_FWD ? g->O : g->C, q = kind == WG_WEIGHT ? 32 : 12;
    int r0 = D * p / np / q * q, r1 = p + 1 < np ? D * (p + 1) / np / q * q : D, n = r1 - r0;
    const float *Ux = U ? U + (xi - u0) * OC : NULL;
    float *Vx = V + xi * vps, *Mx = M + xi * mps, *dUx = dU ? dU + (xi - u0) * OC : NULL;
    if (n <= 0) return;
    if (kind == WG_FWD && k->s2a)
        wino_gemm_s2(g, k, xi, n, Ux + (size_t)r0 * g->C, Vx, Mx + (size_t)r0 * ld);
    else if (kind == WG_FWD) // M = U V
        nn_gemm_small(k->blas, 0, n, TC, g->C, Ux + (size_t)r0 * g->C, g->C, Vx, ld, Mx + (size_t)r0 * ld,
                      ld);
    else if (kind == WG_DATA) // dV = U^T dM
        nn_gemm_small(k->blas, 1, n, TC, g->O, Ux + r0, g->C, Mx, ld, Vx + (size_t)r0 * ld, ld);
    else { // dU += dM V^T
        for (int o = 0; zero && o < g->O; o++) memset(dUx + (size_t)o * g->C + r0, 0, sizeof(float) * n);
        nn_gemm_small_nt_acc(k->blas, g->O, n, TC, Mx, ld, Vx + (size_t)r0 * ld, ld, dUx + r0, g->C);
    }
}

// the a*a products of a chunk, xi by xi (WG_WEIGHT: dU's planes zeroed first where `zero`)
static void wino_gemms(int kind, int x0, int x1, int u0, const geom *g, const wchunk *k, const float *U,
                       float *dU, float *V, size_t vps, float *M, size_t mps, int zero) {
    for (int xi = x0; xi < x1; xi++) wino_gemm_part(kind, xi, 0, 1, u0, g, k, U, dU, V, vps, M, mps, zero);
}

// The batch paths' products of planes [x0, x1) shared among the threads: each plane in two parts where
// their number is odd (5 per row of F(3x3, 3x3) and F(4x4, 2x2): one thread would take 3 of every 5)
static void wino_gemms_batch(int kind, int x0, int x1, int u0, const geom *g, const wchunk *k, const float *U,
                             float *dU, float *V, size_t vps, float *M, size_t mps) {
    int np = (x1 - x0) % 2 ? 2 : 1;
#pragma omp for schedule(static, 1)
    for (int it = x0 * np; it < x1 * np; it++)
        wino_gemm_part(kind, it / np, it % np, np, u0, g, k, U, dU, V, vps, M, mps, kind == WG_WEIGHT);
}

#define WG_ROUND16(n) (((n) + 15) / 16 * 16) // floats: 64-byte aligned parts
// the buffers' sizes (rot: for a forward by chunks); returns the floats one thread needs
static size_t wbufs_layout(wbufs *b, const geom *g, const wplan *p, int rot) {
    int m = WG_M(p->m), a = WG_A(p->m), th = (g->Ho + m - 1) / m, tw = (g->Wo + m - 1) / m,
        tv = (tw + 8) / 8 * 8;
    b->vps = (size_t)g->C * p->ld + 16, b->mps = (size_t)g->O * p->ld + 16;
    b->rot = rot && !p->batch;
    b->wp = p->iv ? m * tw + a - m : m * (tv + 1), b->hp = m * th + a - m;
    b->img = WG_ROUND16((size_t)b->wp * b->hp * (p->iv ? 8 : 1));
    b->e.len = WG_ROUND16((size_t)tv);
    b->vm = WG_ROUND16((size_t)a * a * b->vps) + WG_ROUND16((size_t)a * a * b->mps);
    // A forward by chunks (rot): plane xi of M over plane xi - 1 of V, which the products (xi in order, on
    // one thread) have read before, so V and M take a*a + 1 planes instead of 2 a*a. The 32-channel layers'
    // 4.7 MiB a thread at 32x32 outputs become 2.4, and on 2 threads the first stage's activations and both
    // threads' V and M stay inside the L3 cache (the multi-branch net's inference +1.4 to +3.6 %, medians of
    // alternated pairs; one thread the same).
    if (b->rot) {
        b->vps = b->mps = WG_ROUND16(b->vps > b->mps ? b->vps : b->mps);
        b->vm = (size_t)(a * a + 1) * b->vps;
    }
    b->ng = p->iv ? (p->nbmax + 7) / 8 : 1;
    b->pro = NULL, b->epi = NULL, b->pin1 = NULL, b->il = 0;
    size_t pins = (WG_IS_S2(p->m) ? 3 : 2) * (size_t)b->ng + 1; // pin, pout, pacc (and pin1)
    return (p->batch ? 0 : b->vm) + pins * b->img + 36 * b->e.len; // (shared V and M)
}
// thread t's buffers in `base`, V and M in `vm` (shared) or else at the start
// of `base`; the image buffers start at 0 (their borders stay 0)
static void wbufs_bind(wbufs *b, float *base, float *vm, int v) {
    int a = WG_A(v);
    if (!vm) vm = base, base += b->vm;
    b->V = vm, b->M = vm + WG_ROUND16((size_t)a * a * b->vps);
    if (b->rot) b->M = vm, b->V = vm + b->vps;
    b->pin = base, b->pout = b->pin + b->ng * b->img, b->pacc = b->pout + b->ng * b->img;
    b->e.buf = b->pacc + b->img;
    memset(b->pin, 0, sizeof(float) * 2 * (size_t)b->ng * b->img);
    if (WG_IS_S2(v)) {
        b->pin1 = b->e.buf + 36 * b->e.len;
        memset(b->pin1, 0, sizeof(float) * (size_t)b->ng * b->img);
    }
}

// Inside the batch paths' parallel region: V's rows of every channel, shared among the threads (WG_S2: the
// two column phases of a row phase from one pass over the input's rows, so by pairs of channels)
static void wino_input_batch(const geom *g, const wplan *p, const float *x, wbufs *t) {
    wchunk k = wino_chunk(g, p, 0);
    int C0 = WG_IS_S2(p->m) ? g->C / 4 : 0, n = C0 ? 2 * C0 : g->C;
#pragma omp for schedule(static)
    for (int u = 0; u < n; u++) {
        int c = C0 ? u / C0 * 2 * C0 + u % C0 : u;
        k.c0 = c, k.c1 = c + 1, k.pair = C0 > 0;
        WG_CALL(wino_input, p, g, &k, x, t->V, t->vps, t);
    }
}
// and gx from dV, every channel's phases on one thread (WG_S2: the four add into the same planes)
static void wino_input_adj_batch(const geom *g, const wplan *p, float *gx, wbufs *t) {
    wchunk k = wino_chunk(g, p, 0);
    int ph = WG_IS_S2(p->m) ? 4 : 1, C0 = g->C / ph;
#pragma omp for schedule(static)
    for (int c = 0; c < C0; c++)
        for (int q = 0; q < ph; q++) {
            k.c0 = q * C0 + c, k.c1 = k.c0 + 1;
            WG_CALL(wino_input_adj, p, g, &k, t->V, t->vps, gx, t);
        }
}

// The batch as one chunk (wplan.batch): the threads split the transforms by
// channel and the products by xi, so each xi's dU is one thread's sum over
// every tile (no per-thread copies) and U is read once per call.
// The whole batch as one chunk shared by the threads. U: the whole filter transform (kept by a frozen
// context), or NULL: rows of it are made per block into Ub (wino_row_block rows), the same values.
static void wino_fwd_batch(const geom *g, const wplan *p, const float *U, float *Ub, const float *w,
                           const float *x, const float *b, float *y, const conv_epi *e, float *vm, float *scr,
                           size_t per, const wbufs *t0, int nt) {
    int m = p->m, a = WG_A(m), R = U ? a : wino_row_block(g, m);
    wchunk k0 = wino_chunk(g, p, 0);
#pragma omp parallel num_threads(nt)
    {
        wbufs t = *t0;
        wbufs_bind(&t, scr + per * (size_t)omp_get_thread_num(), vm, m);
        wchunk k = k0;
        wino_input_batch(g, p, x, &t);
        for (int i0 = 0; i0 < a; i0 += R) {
            int i1 = i0 + R < a ? i0 + R : a;
            if (!U) wino_filter_rows(g, w, Ub, m, i0, i1);
            wino_gemms_batch(WG_FWD, i0 * a, i1 * a, U ? 0 : i0 * a, g, &k0, U ? U : Ub, NULL, t.V, t.vps,
                             t.M, t.mps);
        }
#pragma omp for schedule(static)
        for (int o = 0; o < g->O; o++) {
            k.c0 = o, k.c1 = o + 1;
            WG_CALL(wino_output, p, g, &k, t.M, t.mps, b, y, &t);
            if (!p->iv) nn_epi_apply(e, g, y, 0, g->N, o, o + 1); // (image vectors: in the transform)
        }
    }
}

// The batch's backward by blocks of rows of the a x a planes (wino_row_block), so that neither the weight
// gradient's transform dU nor the filter transform U is held whole (the larger layers' largest
// temporaries): dU_xi = dM_xi V_xi^T for a block's planes, folded into gw; then, once every V_xi is read,
// U's rows per block and dV_xi = U_xi^T dM_xi (into V_xi). Ub: room for one block.
static void wino_bw_batch(const geom *g, const wplan *p, const float *w, float *gw, const float *x,
                          const float *gy, float *gx, int alias, float *Ub, float *T, float *vm, float *scr,
                          size_t per, const wbufs *t0, int nt) {
    int m = p->m, a = WG_A(m), R = wino_row_block(g, m);
    size_t OC = (size_t)g->O * g->C, OCf = OC / (WG_IS_S2(m) ? 4 : 1); // the filters (WG_S2: 3x3 ones)
    long nblk = (long)(OCf + 7) / 8;
    wchunk k0 = wino_chunk(g, p, 0);
#pragma omp parallel num_threads(nt)
    {
        wbufs t = *t0;
        wbufs_bind(&t, scr + per * (size_t)omp_get_thread_num(), vm, m);
        wchunk k = k0;
        int th = omp_get_thread_num(), nth = omp_get_num_threads();
        long b0 = nblk * th / nth * 8,
             b1 = nblk * (th + 1) / nth * 8 < (long)OCf ? nblk * (th + 1) / nth * 8 : (long)OCf;
#pragma omp for schedule(static)
        for (int o = 0; o < g->O; o++) {
            k.c0 = o, k.c1 = o + 1;
            WG_CALL(wino_output_adj, p, g, &k, gy, t.M, t.mps, &t);
        }
        if (alias && gx) { // every gy value is in dM now: gx, in its place, starts from 0 (the conv's input)
            size_t img = (size_t)p->src->C * p->src->H * p->src->W;
#pragma omp for schedule(static)
            for (int n = 0; n < g->N; n++) memset(gx + (size_t)n * img, 0, sizeof(float) * img);
        }
        if (gw) wino_input_batch(g, p, x, &t);
        for (int i0 = 0; i0 < a; i0 += R) { // a block's planes while in cache: dU's rows, then dV's
            int i1 = i0 + R < a ? i0 + R : a;
            if (gw) { // dU_xi = dM_xi V_xi^T and its part of gw
                wino_gemms_batch(WG_WEIGHT, i0 * a, i1 * a, i0 * a, g, &k0, NULL, Ub, t.V, t.vps, t.M, t.mps);
                if (T) WG_HALVES_CALL(wg_rows_adj, m, g, Ub, T, wg_halves_ld(g), b0, b1, i0, i1);
                else wino_filter_adj_m(g, Ub, 1, 0, gw, m, b0, b1, i0, i1);
#pragma omp barrier
            }
            if (gx) { // dV_xi = U_xi^T dM_xi (over V_xi, read above)
                wino_filter_rows(g, w, Ub, m, i0, i1);
                wino_gemms_batch(WG_DATA, i0 * a, i1 * a, i0 * a, g, &k0, Ub, NULL, t.V, t.vps, t.M, t.mps);
            }
        }
        if (T) WG_HALVES_CALL(wg_cols_adj, m, g, T, wg_halves_ld(g), gw, b0, b1); // this thread's filters
        if (gx) wino_input_adj_batch(g, p, gx, &t);
    }
}

// Whether w's filter transform is kept: frozen weights outside the arenas (a store's)
static int wino_kept(const nn_ctx *c, const float *w) {
    const nn_ctx *o = c->owner ? c->owner : c;
    return c->frozen && !nn_arena_owns(&c->arena, w) && !nn_arena_owns(&o->arena, w);
}

// The filter transform of w: kept in ctx->wcache (a worker's: in its owner's, under a lock) when
// wino_kept (computed on first use), else into the arena.
static const float *wino_U(nn_ctx *c, const geom *g, const float *w, int m) {
    size_t n = (size_t)WG_A(m) * WG_A(m) * g->O * g->C;
    nn_ctx *o = c->owner ? c->owner : c;
    if (!wino_kept(c, w)) {
        float *U = nn_arena_alloc(&c->arena, sizeof(float) * n);
        if (U) wino_filter(g, w, U, m);
        return U;
    }
    const float *U = NULL;
    int rc = GN_OK;
#pragma omp critical(nn_wcache)
    {
        for (nn_wcache *k = o->wcache; k && !U; k = k->next)
            if (k->w == w && k->O == g->O && k->C == g->C && k->m == m) U = k->U;
        nn_wcache *k = U ? NULL : gn_malloc(sizeof *k);
        float *Un = k ? gn_malloc(sizeof(float) * n) : NULL;
        if (!U && Un) {
            wino_filter(g, w, Un, m);
            *k = (nn_wcache){o->wcache, w, g->O, g->C, m, Un}, o->wcache = k, U = Un;
        } else if (!U) free(k), rc = GN_ENOMEM;
    }
    if (rc) gn_err(GN_ENOMEM, "conv2d: out of memory for a kept Winograd filter transform");
    return U;
}

int nn_wino_takes_map(int m) { return m && !WG_IS_S2(m); }

// A 3x3 conv's tile that divides its output, on image vectors (s2: the stride-2 variants too)
static int wino_il_tile(const nn_ctx *c, const geom *g, int m, int s2) {
    return m && m != 5 && (s2 || !WG_IS_S2(m)) && g->Ho % WG_M(m) == 0 && g->Wo % WG_M(m) == 0 &&
           (WG_IS_S2(m) || wino_plan(c, g, m).iv);
}

size_t nn_wino_il_floats(const nn_ctx *c, const geom *g, int m) {
    geom n = *g; // the reader: 3x3, stride 1, padding 1, as many channels out as in
    n.C = g->O, n.H = n.Ho = g->Ho, n.W = n.Wo = g->Wo, n.kh = n.kw = 3, n.sh = n.sw = 1, n.pt = n.pl = 1;
    if (!wino_il_tile(c, g, m, 1) || !wino_il_tile(c, &n, nn_wino_tile(c, &n), 0)) return 0;
    return (size_t)g->O * ((g->N + 7) / 8) * WG_ROUND16((size_t)(g->Ho + 2) * (g->Wo + 2) * 8);
}

// The NN_ACT_WINO layouts of x (il & 1: the patches' buffers, so this conv's geometry must make them the
// same) and of y (il & 2)
static int wino_il_bind(wbufs *t, const geom *g, int m, const nn_ctx *c, int il) {
    t->il = il, t->il_ng = (size_t)(g->N + 7) / 8;
    t->il_w = g->Wo + 2, t->il_img = WG_ROUND16((size_t)(g->Ho + 2) * (g->Wo + 2) * 8);
    if ((il & 1) && !(g->kh == 3 && g->kw == 3 && g->pt == 1 && g->pl == 1 && wino_il_tile(c, g, m, 0) &&
                      t->wp == g->W + 2 && t->hp == g->H + 2))
        return gn_err(GN_EINVAL, "conv2d: input in a Winograd layout of another geometry");
    return GN_OK;
}

int nn_wino_fwd(nn_ctx *c, const geom *gc, int m, const float *x, const float *w, const float *b, float *y,
                const conv_epi *e, const nn_bn_map *pro) {
    geom gs = WG_IS_S2(m) ? wino_s2_geom(gc) : *gc;
    const geom *g = &gs;
    int a = WG_A(m);
    wplan p = wino_plan(c, g, m);
    p.src = gc;
    nn_arena_mark mark = nn_arena_get_mark(&c->arena);
    int nt = gn_threads() > 0 ? gn_threads() : 1;
    wbufs t0;
    size_t per = wbufs_layout(&t0, g, &p, 1);
    if (pro) t0.pro = pro, x = pro->src;
    if (p.iv) t0.epi = e;
    if (e && e->il && wino_il_bind(&t0, g, m, c, e->il)) return GN_EINVAL;
    // the batch path makes U by blocks of rows unless a frozen context keeps it whole
    int whole = !p.batch || wino_kept(c, w);
    const float *U = whole ? wino_U(c, g, w, m) : NULL;
    float *Ub =
        whole ? NULL
              : nn_arena_alloc(&c->arena, sizeof(float) * (size_t)wino_row_block(g, m) * a * g->O * g->C);
    float *scr = nn_arena_alloc(&c->arena, sizeof(float) * per * (size_t)nt);
    if ((!U && !Ub) || !scr) return gn_err(GN_ENOMEM, "conv2d: out of memory for the Winograd buffers");
    if (p.batch) {
        float *vm = nn_arena_alloc(&c->arena, sizeof(float) * t0.vm);
        if (!vm) return gn_err(GN_ENOMEM, "conv2d: out of memory for the Winograd buffers");
        wino_fwd_batch(g, &p, U, Ub, w, x, b, y, e, vm, scr, per, &t0, nt);
        nn_arena_release(&c->arena, mark);
        return GN_OK;
    }
#pragma omp parallel num_threads(nt)
    {
        wbufs t = t0;
        wbufs_bind(&t, scr + per * (size_t)omp_get_thread_num(), NULL, m);
#pragma omp for schedule(static)
        for (long ci = 0; ci < p.nchunks; ci++) {
            wchunk k = wino_chunk(g, &p, ci);
            WG_CALL(wino_input, &p, g, &k, x, t.V, t.vps, &t);
            wino_gemms(WG_FWD, 0, a * a, 0, g, &k, U, NULL, t.V, t.vps, t.M, t.mps, 0);
            WG_CALL(wino_output, &p, g, &k, t.M, t.mps, b, y, &t);
            if (!p.iv) nn_epi_apply(e, g, y, k.n0, k.n0 + k.nb, 0, g->O); // (image vectors: in the stores)
        }
    }
    nn_arena_release(&c->arena, mark);
    return GN_OK;
}

void nn_wino_bw(nn_ctx *c, const geom *gc, int m, const float *x, const float *w, const float *gy, float *gw,
                float *gx, int alias, const nn_bn_map *pro) {
    geom gs = WG_IS_S2(m) ? wino_s2_geom(gc) : *gc;
    const geom *g = &gs;
    size_t img = (size_t)gc->C * gc->H * gc->W; // one image's gx (as many values as its gy when alias)
    int a = WG_A(m), nt = gn_threads() > 0 ? gn_threads() : 1;
    size_t OC = (size_t)g->O * g->C, UN = (size_t)a * a * OC;
    wplan p = wino_plan(c, g, m);
    p.src = gc;
    wbufs t0;
    size_t per = wbufs_layout(&t0, g, &p, 0);
    if (pro) t0.pro = pro, x = pro->src;
    float *scr = nn_arena_alloc(&c->arena, sizeof(float) * per * (size_t)nt);
    float *vm = p.batch ? nn_arena_alloc(&c->arena, sizeof(float) * t0.vm) : NULL;
    if (!scr || (p.batch && !vm)) return;
    if (p.batch) {
        float *Ub = nn_arena_alloc(&c->arena, sizeof(float) * (size_t)wino_row_block(g, m) * a * OC);
        int halves = gw && wg_halves(m, wino_row_block(g, m)); // the weight gradient's halves (wg_rows_adj)
        float *T = halves ? nn_arena_alloc(&c->arena, sizeof(float) * (size_t)a * 3 * wg_halves_ld(g)) : NULL;
        if (Ub && (!halves || T)) wino_bw_batch(g, &p, w, gw, x, gy, gx, alias, Ub, T, vm, scr, per, &t0, nt);
        return;
    }
    float *U = nn_arena_alloc(&c->arena, sizeof(float) * UN);
    float *dU = gw ? nn_arena_alloc(&c->arena, sizeof(float) * UN * (size_t)nt) : NULL; // per thread
    if (!U || (gw && !dU)) return;
    if (gx) wino_filter(g, w, U, m);
    int team = 1;
#pragma omp parallel num_threads(nt)
    {
        wbufs t = t0;
        wbufs_bind(&t, scr + per * (size_t)omp_get_thread_num(), NULL, m);
        float *dUt = gw ? dU + UN * (size_t)omp_get_thread_num() : NULL;
        int first = 1; // this thread's dU zeroed plane by plane in its first chunk's products (in cache)
        if (omp_get_thread_num() == 0) team = omp_get_num_threads(); // the parts that were zeroed
#pragma omp for schedule(static)
        for (long ci = 0; ci < p.nchunks; ci++) {
            wchunk k = wino_chunk(g, &p, ci);
            WG_CALL(wino_output_adj, &p, g, &k, gy, t.M, t.mps, &t);
            if (alias && gx) // this chunk's gy is read: its gx starts from 0 in its place
                memset(gx + (size_t)k.n0 * img, 0, sizeof(float) * (size_t)k.nb * img);
            if (gw) { // dU (O, C) += dM (O, TC) x V^T (TC, C)
                WG_CALL(wino_input, &p, g, &k, x, t.V, t.vps, &t);
                wino_gemms(WG_WEIGHT, 0, a * a, 0, g, &k, NULL, dUt, t.V, t.vps, t.M, t.mps, first);
                first = 0;
            }
            if (gx) { // dV (C, TC) = U^T (C, O) x dM (O, TC)
                wino_gemms(WG_DATA, 0, a * a, 0, g, &k, U, NULL, t.V, t.vps, t.M, t.mps, 0);
                WG_CALL(wino_input_adj, &p, g, &k, t.V, t.vps, gx, &t);
            }
        }
        if (dUt && first) memset(dUt, 0, sizeof(float) * UN); // (no chunk on this thread)
    }
    if (gw) wino_filter_adj(g, dU, team, UN, gw, m); // the threads' sums in thread order
}
