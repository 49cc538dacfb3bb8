// Shared by the convolution files (nn/ops_conv.c: the op and its im2col
// path; nn/ops_winograd.c; nn/ops_conv_groups.c). Not part of the engine's API.
#ifndef NN_CONV_INTERNAL_H
#define NN_CONV_INTERNAL_H

#include <string.h>

#include "ops.h"
#include "simd.h"

typedef struct geom {
    int N, C, H, W;   // conv input
    int O, kh, kw;    // output channels, kernel
    int sh, sw, pt, pl;
    int Ho, Wo;       // conv output
} geom;

#define EVEN8 ((v8i){0, 2, 4, 6, 8, 10, 12, 14})
#define ODD8 ((v8i){1, 3, 5, 7, 9, 11, 13, 15})
#define LO8 ((v8i){0, 8, 1, 9, 2, 10, 3, 11})
#define HI8 ((v8i){4, 12, 5, 13, 6, 14, 7, 15})

// An epilogue on a conv's output, applied while each part of it is in cache (nn_conv2d_fused, or with a
// tape nn_conv2d_act): y = y * scale[o] + shift[o] (either NULL: 1, 0), + res (NULL: none), then the
// activation.
typedef struct conv_epi {
    const float *scale, *shift, *res;
    int relu; // 1 ReLU, 2 leaky ReLU of `slope` (NN_CONV_ACT)
    float slope;
    int taped;  // the conv's node is recorded (nn_conv2d_act), the activation's gradient in its backward
    int pooled; // the output in the context's pool (nn_tensor_pooled; inference, no tape)
    int wino;   // NN_ACT_WINO asked for: the output may be kept in the next conv's Winograd input layout
    int il;     // set by the conv: y in that layout (nn_wino_il_floats), or x is (the conv reading it)
} conv_epi;

// The epilogue's arithmetic on 8 values at rp (NULL: no residual) / one value plus r: v * s + t (+ the
// residual), then the activation (relu 1: ReLU, 2: leaky of slope a), the same everywhere it is applied
#define NN_EPI8(v, s, t, rp, relu, a)                                                                        \
    (__extension__({                                                                                         \
        v8 u_ = (v) * v8_set1(s) + v8_set1(t);                                                               \
        const float *rp_ = (rp);                                                                             \
        if (rp_) u_ += v8_load(rp_);                                                                         \
        if ((relu) == 2) u_ = (v8)(((v8i)u_ & (u_ > 0)) | ((v8i)(v8_set1(a) * u_) & ~(u_ > 0)));             \
        (relu) == 1 ? v8_relu(u_) : u_;                                                                      \
    }))
#define NN_EPI1(v, s, t, r, relu, a)                                                                         \
    (__extension__({                                                                                         \
        float u_ = (v) * (s) + (t) + (r);                                                                    \
        (relu) == 1 ? (u_ > 0.0f ? u_ : 0.0f) : (relu) == 2 ? (u_ > 0.0f ? u_ : (a) * u_) : u_;              \
    }))

// The epilogue on images [n0, n1) x channels [o0, o1) of y (N, O, P); e NULL: nothing (nn/ops_conv.c)
NN_SIMD_CLONES void nn_epi_apply(const conv_epi *e, const geom *g, float *y, int n0, int n1, int o0,
                                 int o1);

// y[n][o] = the grid's outputs (Y's row o from image slot n - n0 on, grid columns per image, rows wq apart)
// + b[o] (NULL: 0), then the epilogue, for images [n0, n0 + nb)
NN_SIMD_CLONES void nn_grid_out(const conv_epi *e, const geom *g, const float *Y, size_t ldy, size_t grid,
                                int wq, const float *b, float *y, int n0, int nb);

// A row stride of at least n floats that is an odd number of cache lines: at a power-of-two stride the rows
// of a GEMM's panel of B would share a few L1 sets and evict each other.
static inline size_t nn_odd_lines(size_t n) {
    size_t ld = (n + 15) / 16 * 16;
    return ld / 16 % 2 ? ld : ld + 16;
}

static inline void geom_store(const geom *g, int *ia) { memcpy(ia, g, sizeof *g); }
#define NN_CONV_ACT 21 // node->ia slot: the activation in the conv's output pass (conv_epi.relu; slope fa[0])
#define NN_CONV_WINO 23 // node->ia slot: the Winograd variant (nn_wino_tile) if that path computed this conv
#define NN_CONV_GROUPS 22 // node->ia slot: 1 if computed by groups of images
static inline void geom_load(geom *g, const int *ia) { memcpy(g, ia, sizeof *g); }
_Static_assert(sizeof(geom) < NN_CONV_GROUPS * sizeof(int), "geom fits in a node");

// col[(c*kh + i)*kw + j][n*Ho*Wo + oh*Wo + ow] = x[n][c][oh*sh - pt + i][ow*sw - pl + j] (0 outside):
// row r of col over images n0 .. n0+nb-1 (into dst[(n - n0)*Ho*Wo + ...])
NN_SIMD_CLONES void nn_im2col_row(const geom *g, const float *x, long r, int n0, int nb, float *dst);
// The im2col matrix without copying it: row (c, i, j) is, on a grid of hq x wq columns per image
// (hq = Ho + (kh-1)/sh, wq = Wo + (kw-1)/sw; output (oh, ow) of image n at n*grid + oh*wq + ow, the other
// columns dropped), a shifted view of one stride phase of channel c: the zero-padded input's rows = i and
// columns = j modulo the strides, plane (c, i % sh, j % sw) at buf + ((c*pi + i%sh)*pj + j%sw)*ps, from
// (i/sh)*wq + j/sw on. The phases hold about the input's size instead of kh*kw/(sh*sw) times it.
typedef struct nn_phases {
    int hq, wq, pi, pj; // grid rows and columns per image; row and column phases (min(sh, kh), min(sw, kw))
    size_t grid, ps;    // hq*wq; floats per phase plane (nb images, then zeros the last shifts read)
} nn_phases;
NN_SIMD_CLONES void nn_phase_fill(const geom *g, const nn_phases *f, const float *x, int n0, int nb,
                                  float *buf);
// The group's im2col columns (col[r][(n - n0)*Ho*Wo + ...] as nn_im2col_row, rows ld >= nb*Ho*Wo + 8 floats
// apart) by one plane's phases at a time (f for one image: conv_phases(g, 1); ph its pi*pj*ps floats,
// ps >= grid + wq + 8: whole vectors are read past each row)
NN_SIMD_CLONES void nn_im2col_group(const geom *g, const nn_phases *f, const float *x, int n0, int nb,
                                    float *col, size_t ld, float *ph);
// The adjoint for plane (n, c) of x from the columns of image slot s of col (rows ld floats apart).
NN_SIMD_CLONES void nn_col2im_plane(const geom *g, const float *col, size_t ld, int s, int n, int c,
                                    float *x);

// Winograd (nn/ops_winograd.c): the transform variant m for this conv under ctx->winograd (2-4, 6: a 3x3
// conv's tile size; 5: F(2x2, 5x5); 0: not by Winograd), the forward (y = conv(x, w) + b, then the epilogue
// e, which may be NULL) and the backward (gx, gw accumulated; either may be NULL; alias: gx is gy's buffer,
// set — each image's gy is read before its gx is written). pro (else NULL): x is the deferred batch norm
// output it maps (NN_ACT_DEFER; x itself then unused), which the stride-1 variants take (nn_wino_takes_map).
int nn_wino_tile(const nn_ctx *c, const geom *g);
int nn_wino_takes_map(int m);
// NN_ACT_WINO: the floats of this conv's output in the next conv's input layout (its 8-image groups' padded
// planes, channel by channel) where both take it (see NN_ACT_WINO), else 0
size_t nn_wino_il_floats(const nn_ctx *c, const geom *g, int m);
int nn_wino_fwd(nn_ctx *c, const geom *g, int m, const float *x, const float *w, const float *b, float *y,
                const conv_epi *e, const nn_bn_map *pro);
void nn_wino_bw(nn_ctx *c, const geom *g, int m, const float *x, const float *w, const float *gy, float *gw,
                float *gx, int alias, const nn_bn_map *pro);

// By groups of images (nn/ops_conv_groups.c): whether this context takes that path, and its
// forward and backward (as nn_wino_fwd / nn_wino_bw).
int nn_conv_by_groups(const nn_ctx *c);
int nn_conv_fwd_groups(nn_ctx *c, const geom *g, const float *x, const float *w, const float *b, float *y,
                       const conv_epi *e);
void nn_conv_bw_groups(nn_ctx *c, const geom *g, const float *x, const float *w, const float *gy, float *gw,
                       float *gx);

#endif
