// The convolutions outside Winograd by groups of images (ctx->keep_im2col = 0):
// no batch-sized buffers (nn/ops_conv.c).
#include <cblas.h>
#include <limits.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "conv_internal.h"
#include "gemm.h"
#include "ops.h"
#include "simd.h"

// ---- im2col by groups of images ----
// The convolutions Winograd does not take run over groups of whole images,
// one group per thread at a time: the group's im2col (K x nb*P, sized to stay
// in the L2 cache), its product with nn_gemm_small (single-threaded, as in
// the Winograd chunks) and the outputs straight into y. Backward recomputes
// the group's columns for the weight gradient (a dW per thread, summed in
// thread order) and overwrites them with dcol = W^T dY for col2im into the
// group's own images. No batch-sized buffers, and each image is read while
// its columns are in cache.
typedef struct cgroups {
    int nb, ngroups; // images per group (at most), groups
    size_t ld, per;  // row stride of the group's col and Y, floats per thread (col, then Y, then phases)
    nn_phases f1;    // one image's stride phases (nn_im2col_group)
} cgroups;

// By groups when the ctx does not keep im2col matrices (keep_im2col = 0, the
// low-memory setting): no batch-sized buffers at all. Otherwise one product
// over the batch: measured 4-8 % faster for the multi-branch net's training
// (OpenBLAS's packed, K-blocked products; no columns computed twice). Without a
// tape (inference) always by groups: nothing is kept for backward, the outputs go
// straight into y with the epilogue while in cache (3-5 % faster inference of the
// multi-branch net, train_bench --infer-only 1 --batched 0 | 1).
int nn_conv_by_groups(const nn_ctx *c) {
    return c->tune.conv_batched >= 0 ? !c->tune.conv_batched : !c->keep_im2col || !c->grad_enabled;
}

static nn_phases conv_phases(const geom *g, int nb) {
    nn_phases f = {g->Ho + (g->kh - 1) / g->sh, g->Wo + (g->kw - 1) / g->sw, g->sh < g->kh ? g->sh : g->kh,
                   g->sw < g->kw ? g->sw : g->kw, 0, 0};
    f.grid = (size_t)f.hq * f.wq;
    size_t shift = (size_t)(g->kh - 1) / g->sh * f.wq + (size_t)(g->kw - 1) / g->sw; // the last tap's offset
    f.ps = nn_odd_lines((size_t)nb * f.grid + shift);
    return f;
}

static cgroups conv_groups(const geom *g) {
    int nt = gn_threads() > 0 ? gn_threads() : 1, P = g->Ho * g->Wo, K = g->C * g->kh * g->kw;
    int nb = (256 + P - 1) / P, cap = (g->N + nt - 1) / nt; // ~256 columns per product, every thread a group
    if (nb > cap) nb = cap;
    if (nb < 1) nb = 1;
    // groups of even size, as many for every thread (64 images of 3x3 outputs on 2 threads: 29, 29, 6 left
    // one thread with 6 images; 4 of 16 instead)
    int ng = ((g->N + nb - 1) / nb + nt - 1) / nt * nt;
    nb = (g->N + (ng < g->N ? ng : g->N) - 1) / (ng < g->N ? ng : g->N);
    cgroups q = {nb, (g->N + nb - 1) / nb, 0, 0, conv_phases(g, 1)};
    q.ld = nn_odd_lines((size_t)nb * P + 8); // + 8: nn_im2col_group's whole vectors
    q.per = q.ld * ((size_t)K + (size_t)g->O) + (size_t)q.f1.pi * q.f1.pj * q.f1.ps + 16;
    return q;
}

// Whether the forward takes the stride phases: their grid's extra rows and columns cost products, the
// im2col columns a copy (AMD Zen 5, one thread: up to 1.3 times the outputs, galnn predict of
// models/ugriz_cnn.cfg 2 % faster than by im2col everywhere; the multi-branch net the same within 1 %).
static int use_phases(const nn_ctx *c, const geom *g, const nn_phases *f) {
    return c->tune.conv_phases >= 0 ? c->tune.conv_phases : (double)f->grid <= 1.3 * g->Ho * g->Wo;
}

// Forward by groups: the group's im2col columns, or without that copy its stride phases (nn_phases) and
// the product on their grid by row pointers (nn_gemm_small_ind: the same multiply-add chains, so the same
// bits); the outputs + bias into y, then the epilogue. Where the phases' grid is the output's (1x1 kernels
// without padding: the ResNet's stride-2 projections) and there is no bias, each image's product goes
// straight into its planes of y (the 32 -> 64 channel projection at 32x32: +14-18 % on one thread).
int nn_conv_fwd_groups(nn_ctx *c, const geom *g, const float *x, const float *w, const float *b, float *y,
                       const conv_epi *e) {
    cgroups q = conv_groups(g);
    nn_phases f = conv_phases(g, q.nb);
    int nt = gn_threads() > 0 ? gn_threads() : 1, K = g->C * g->kh * g->kw, blas = c->tune.gemm_blas;
    int ph = use_phases(c, g, &f);
    if (!ph) f.hq = g->Ho, f.wq = g->Wo, f.grid = (size_t)g->Ho * g->Wo; // the columns' own layout
    size_t P = (size_t)g->Ho * g->Wo, ldy = nn_odd_lines((size_t)q.nb * f.grid + 8);
    size_t nph1 = (size_t)q.f1.pi * q.f1.pj * q.f1.ps + 16; // one plane's phases (im2col)
    size_t nph = ph ? (size_t)g->C * f.pi * f.pj * f.ps : 0;
    size_t per = nph + ldy * ((size_t)g->O + (!ph || nn_gemm_ind_gathers(blas) ? (size_t)K : 0)) + nph1;
    nn_arena_mark mark = nn_arena_get_mark(&c->arena);
    float *scr = nn_arena_alloc(&c->arena, sizeof(float) * per * (size_t)nt);
    const float **rows = nn_arena_alloc(&c->arena, sizeof(float *) * (size_t)K * nt * 2);
    // the phases' grid is the output's (1x1 kernels, no padding) and no bias: no copy of the products
    int direct = ph && f.grid == P && !b && !nn_gemm_ind_gathers(blas);
    if (!scr || !rows) return gn_err(GN_ENOMEM, "conv2d: out of memory for the convolution buffers");
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num();
        float *phb = scr + per * (size_t)t, *Y = phb + nph, *col = Y + ldy * (size_t)g->O;
        float *ph1 = scr + per * (size_t)(t + 1) - nph1;
        const float **bk = rows + (size_t)K * 2 * t, **bkn = bk + K;
        for (int r = 0; r < K; r++) {
            int ch = r / (g->kh * g->kw), i = r / g->kw % g->kh, j = r % g->kw;
            bk[r] = phb + ((size_t)(ch * f.pi + i % g->sh) * f.pj + j % g->sw) * f.ps +
                    (size_t)(i / g->sh) * f.wq + j / g->sw;
        }
#pragma omp for schedule(static)
        for (int gi = 0; gi < q.ngroups; gi++) {
            int n0 = gi * q.nb, nb = g->N - n0 < q.nb ? g->N - n0 : q.nb;
            if (ph && direct) { // each image's products straight into its planes of y
                nn_phase_fill(g, &f, x, n0, nb, phb);
                for (int n = 0; n < nb; n++) {
                    for (int r = 0; r < K; r++) bkn[r] = bk[r] + (size_t)n * f.grid;
                    nn_gemm_small_ind(blas, g->O, (int)P, K, w, K, bkn, col, (int)ldy,
                                      y + (size_t)(n0 + n) * g->O * P, (int)P);
                    nn_epi_apply(e, g, y, n0 + n, n0 + n + 1, 0, g->O); // (the image's planes in cache)
                }
                continue;
            }
            if (ph) {
                nn_phase_fill(g, &f, x, n0, nb, phb);
                nn_gemm_small_ind(blas, g->O, nb * (int)f.grid, K, w, K, bk, col, (int)ldy, Y, (int)ldy);
            } else {
                nn_im2col_group(g, &q.f1, x, n0, nb, col, ldy, ph1);
                nn_gemm_small(blas, 0, g->O, nb * (int)P, K, w, K, col, (int)ldy, Y, (int)ldy); // Y = W col
            }
            nn_grid_out(e, g, Y, ldy, f.grid, f.wq, b, y, n0, nb);
        }
    }
    nn_arena_release(&c->arena, mark);
    return GN_OK;
}

void nn_conv_bw_groups(nn_ctx *c, const geom *g, const float *x, const float *w, const float *gy, float *gw,
                           float *gx) {
    cgroups q = conv_groups(g);
    int nt = gn_threads() > 0 ? gn_threads() : 1, K = g->C * g->kh * g->kw;
    size_t P = (size_t)g->Ho * g->Wo, OK = (size_t)g->O * K;
    float *scr = nn_arena_alloc(&c->arena, sizeof(float) * q.per * (size_t)nt);
    float *gwt = gw ? nn_arena_alloc(&c->arena, sizeof(float) * OK * (size_t)nt) : NULL; // one per thread
    if (!scr || (gw && !gwt)) return;
    int team = 1;
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num();
        float *col = scr + q.per * (size_t)t, *G = col + q.ld * (size_t)K,
              *gwp = gw ? gwt + OK * (size_t)t : NULL;
        if (gwp) memset(gwp, 0, sizeof(float) * OK);
        if (t == 0) team = omp_get_num_threads(); // the parts that were zeroed
#pragma omp for schedule(static)
        for (int gi = 0; gi < q.ngroups; gi++) {
            int n0 = gi * q.nb, nb = g->N - n0 < q.nb ? g->N - n0 : q.nb, cols = nb * (int)P;
            for (int n = n0; n < n0 + nb; n++) // G (O, nb*P) = dY of the group
                for (int o = 0; o < g->O; o++)
                    memcpy(G + (size_t)o * q.ld + (size_t)(n - n0) * P, gy + ((size_t)n * g->O + o) * P,
                           sizeof(float) * P);
            if (gwp) { // dW (O, K) += G col^T
                nn_im2col_group(g, &q.f1, x, n0, nb, col, q.ld, G + q.ld * (size_t)g->O);
                nn_gemm_small_nt_acc(c->tune.gemm_blas, g->O, K, cols, G, (int)q.ld, col, (int)q.ld, gwp, K);
            }
            if (gx) { // dcol (K, nb*P) = W^T G, then into the group's images
                nn_gemm_small(c->tune.gemm_blas, 1, K, cols, g->O, w, K, G, (int)q.ld, col, (int)q.ld);
                for (int n = n0; n < n0 + nb; n++)
                    for (int ch = 0; ch < g->C; ch++) nn_col2im_plane(g, col, q.ld, n - n0, n, ch, gx);
            }
        }
        if (gw) { // gw += the threads' parts in thread order, split over the threads by range
#pragma omp barrier
            size_t lo = OK * (size_t)t / (size_t)team, hi = OK * (size_t)(t + 1) / (size_t)team;
            for (int part = 0; part < team; part++) {
                const float *src = gwt + OK * (size_t)part;
                for (size_t i = lo; i < hi; i++) gw[i] += src[i];
            }
        }
    }
}
