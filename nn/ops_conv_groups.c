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
    size_t ld, per;  // row stride of the group's col and Y, floats per thread (col, then Y)
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

static cgroups conv_groups(const geom *g) {
    int nt = gn_threads() > 0 ? gn_threads() : 1, P = g->Ho * g->Wo, K = g->C * g->kh * g->kw;
    int nb = (256 + P - 1) / P, cap = (g->N + nt - 1) / nt; // ~256 columns per product, every thread a group
    if (nb > cap) nb = cap;
    if (nb < 1) nb = 1;
    cgroups q = {nb, (g->N + nb - 1) / nb, 0, 0};
    size_t ld = ((size_t)nb * P + 15) / 16 * 16;
    q.ld = ld / 16 % 2 ? ld : ld + 16; // rows an odd number of cache lines apart
    q.per = q.ld * ((size_t)K + (size_t)g->O);
    return q;
}

int nn_conv_fwd_groups(nn_ctx *c, const geom *g, const float *x, const float *w, const float *b, float *y,
                       const conv_epi *e) {
    cgroups q = conv_groups(g);
    int nt = gn_threads() > 0 ? gn_threads() : 1, K = g->C * g->kh * g->kw;
    size_t P = (size_t)g->Ho * g->Wo;
    nn_arena_mark mark = nn_arena_get_mark(&c->arena);
    float *scr = nn_arena_alloc(&c->arena, sizeof(float) * q.per * (size_t)nt);
    if (!scr) return gn_err(GN_ENOMEM, "conv2d: out of memory for the im2col buffers");
#pragma omp parallel num_threads(nt)
    {
        float *col = scr + q.per * (size_t)omp_get_thread_num(), *Y = col + q.ld * (size_t)K;
#pragma omp for schedule(static)
        for (int gi = 0; gi < q.ngroups; gi++) {
            int n0 = gi * q.nb, nb = g->N - n0 < q.nb ? g->N - n0 : q.nb;
            for (long r = 0; r < K; r++) nn_im2col_row(g, x, r, n0, nb, col + (size_t)r * q.ld);
            nn_gemm_small(c->tune.gemm_blas, 0, g->O, nb * (int)P, K, w, K, col, (int)q.ld, Y,
                          (int)q.ld); // Y (O, nb*P) = W col
            for (int n = n0; n < n0 + nb; n++)
                for (int o = 0; o < g->O; o++) {
                    const float *src = Y + (size_t)o * q.ld + (size_t)(n - n0) * P;
                    float *dst = y + ((size_t)n * g->O + o) * P, bo = b ? b[o] : 0.0f;
                    for (size_t p = 0; p < P; p++) dst[p] = src[p] + bo;
                }
            nn_epi_apply(e, g, y, n0, n0 + nb, 0, g->O);
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
                for (long r = 0; r < K; r++) nn_im2col_row(g, x, r, n0, nb, col + (size_t)r * q.ld);
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
