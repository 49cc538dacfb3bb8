// Convolution throughput on the conv shapes of a ResNet-18 on 64x64 inputs
// (batch 64, torchvision layout: 7x7/2 stem, 3x3/2 max-pool, four stages),
// forward + backward (input and weight gradients), next to plain cblas_sgemm
// on exactly the same three matrix products per layer:
//   forward   Y (O, N*P)  = W (O, K) x col (K, N*P)        K = C*kh*kw
//   weight    dW (O, K)  += dY (O, N*P) x col^T
//   input     dcol (K, N*P) = W^T x dY
// The ratio conv/sgemm says how much of the GEMM speed survives im2col,
// col2im and the layout changes (target >= 0.7). The columns F(2x2), F(4x4)
// and default are Winograd F(2x2, 3x3), F(4x4, 3x3) and the default choice
// (ctx->winograd = 1) in effective GFLOP/s, i.e. the direct method's FLOP
// count over their time (layers other than 3x3 stride 1: im2col every time).
// --net multibranch: instead, the convs of bench/train_bench.c's network
// (width 32, 3x3/2 stems, no max-pool; branches at 64x64 and 48x48).
//   usage: conv_bench [--threads N] [--reps R] [--batch B] [--net resnet18|multibranch]
//                     [--layout -1|0|1]     (Winograd transforms: by the size rule, rows of tiles, image
//                     vectors)
//                     [--one-chunk -1|0|1]  (image vectors: the threads share one chunk of the batch: by the
//                     rule, no, yes)
//                     [--batched -1|0|1]    (other convs: as keep_im2col says, by groups of images, by one
//                     im2col + sgemm)
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/gn_common.h"
#include "../nn/gemm.h"
#include "../nn/nn.h"

typedef struct layer {
    const char *name;
    int C, O, k, s, p, H, count; // count: how many times ResNet-18 has this conv
} layer;

static const layer LAYERS[] = {
    {"stem 7x7/2 3->64 @64", 3, 64, 7, 2, 3, 64, 1},
    {"s1 3x3 64->64 @16", 64, 64, 3, 1, 1, 16, 4},
    {"s2 3x3/2 64->128 @16", 64, 128, 3, 2, 1, 16, 1},
    {"s2 3x3 128->128 @8", 128, 128, 3, 1, 1, 8, 3},
    {"s2 1x1/2 64->128 @16", 64, 128, 1, 2, 0, 16, 1},
    {"s3 3x3/2 128->256 @8", 128, 256, 3, 2, 1, 8, 1},
    {"s3 3x3 256->256 @4", 256, 256, 3, 1, 1, 4, 3},
    {"s3 1x1/2 128->256 @8", 128, 256, 1, 2, 0, 8, 1},
    {"s4 3x3/2 256->512 @4", 256, 512, 3, 2, 1, 4, 1},
    {"s4 3x3 512->512 @2", 512, 512, 3, 1, 1, 2, 3},
    {"s4 1x1/2 256->512 @4", 256, 512, 1, 2, 0, 4, 1},
};

static const layer MULTI[] = {
    {"a stem 3x3/2 5->32 @64", 5, 32, 3, 2, 1, 64, 1},
    {"a s1 3x3 32->32 @32", 32, 32, 3, 1, 1, 32, 4},
    {"a s2 3x3/2 32->64 @32", 32, 64, 3, 2, 1, 32, 1},
    {"a s2 3x3 64->64 @16", 64, 64, 3, 1, 1, 16, 3},
    {"a s2 1x1/2 32->64 @32", 32, 64, 1, 2, 0, 32, 1},
    {"a s3 3x3/2 64->128 @16", 64, 128, 3, 2, 1, 16, 1},
    {"a s3 3x3 128->128 @8", 128, 128, 3, 1, 1, 8, 3},
    {"a s3 1x1/2 64->128 @16", 64, 128, 1, 2, 0, 16, 1},
    {"a s4 3x3/2 128->256 @8", 128, 256, 3, 2, 1, 8, 1},
    {"a s4 3x3 256->256 @4", 256, 256, 3, 1, 1, 4, 3},
    {"a s4 1x1/2 128->256 @8", 128, 256, 1, 2, 0, 8, 1},
    {"b stem 3x3/2 2->32 @48", 2, 32, 3, 2, 1, 48, 1},
    {"b s1 3x3 32->32 @24", 32, 32, 3, 1, 1, 24, 4},
    {"b s2 3x3/2 32->64 @24", 32, 64, 3, 2, 1, 24, 1},
    {"b s2 3x3 64->64 @12", 64, 64, 3, 1, 1, 12, 3},
    {"b s2 1x1/2 32->64 @24", 32, 64, 1, 2, 0, 24, 1},
    {"b s3 3x3/2 64->128 @12", 64, 128, 3, 2, 1, 12, 1},
    {"b s3 3x3 128->128 @6", 128, 128, 3, 1, 1, 6, 3},
    {"b s3 1x1/2 64->128 @12", 64, 128, 1, 2, 0, 12, 1},
    {"b s4 3x3/2 128->256 @6", 128, 256, 3, 2, 1, 6, 1},
    {"b s4 3x3 256->256 @3", 256, 256, 3, 1, 1, 3, 3},
    {"b s4 1x1/2 128->256 @6", 128, 256, 1, 2, 0, 6, 1},
};

static float *randbuf(size_t n, gn_rng *r) {
    float *p = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) p[i] = (float)gn_rng_normal(r);
    return p;
}

int main(int argc, char **argv) {
    gn_runtime_init(argv);
    int threads = 0, reps = 5, N = 64;
    nn_tune tune = nn_tune_default();
    const layer *layers = LAYERS;
    size_t nlayers = sizeof LAYERS / sizeof LAYERS[0];
    const char *net = "ResNet-18 at 64x64";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch")) N = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--layout")) tune.wino_layout = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--one-chunk")) tune.wino_batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--batched")) tune.conv_batched = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--net") && !strcmp(argv[i + 1], "multibranch")) {
            layers = MULTI, nlayers = sizeof MULTI / sizeof MULTI[0];
            net = "the multi-branch ResNet-18 of train_bench (width 32; branches a 5x64x64, b 2x48x48)";
        }
    }
    gn_set_threads(threads);
    printf("conv2d forward+backward vs cblas_sgemm on the same products: %s, batch %d, %d threads,\n"
           "best of %d repetitions\n\n",
           net, N, gn_threads(), reps);
    printf("%-24s %5s %7s %8s %8s %6s %8s %8s %8s %6s\n", "layer", "count", "GFLOP", "im2col", "sgemm",
           "ratio", "F(2x2)", "F(4x4)", "default", "ratio");
    gn_rng r;
    gn_rng_seed(&r, 1, 1);
    nn_ctx c;
    nn_ctx_init(&c, 256u << 20);
    c.tune = tune;
    double tot_flop = 0, tot_conv = 0, tot_gemm = 0, tot_wino = 0;
    for (size_t l = 0; l < nlayers; l++) {
        const layer *L = &layers[l];
        int Ho = (L->H + 2 * L->p - L->k) / L->s + 1;
        int K = L->C * L->k * L->k, NP = N * Ho * Ho;
        double flop = 3.0 * 2.0 * L->O * (double)K * NP;
        float *x = randbuf((size_t)N * L->C * L->H * L->H, &r), *w = randbuf((size_t)L->O * K, &r);
        float *gw = calloc((size_t)L->O * K, sizeof(float));
        float *a = randbuf((size_t)K * NP, &r), *dy = randbuf((size_t)L->O * NP, &r);
        float *y = malloc(sizeof(float) * (size_t)L->O * NP), *dc = malloc(sizeof(float) * (size_t)K * NP);
        static const int MODES[4] = {0, 2, 4, 1}; // im2col, F(2x2), F(4x4), the default choice
        double best[4] = {1e30, 1e30, 1e30, 1e30}, best_gemm = 1e30;
        for (int rep = 0; rep < 4 * (reps + 1); rep++) { // the first round warms up; the modes take turns
            int mode = rep % 4;
            c.winograd = MODES[mode];
            nn_ctx_reset(&c);
            nn_tensor *xt = nn_tensor_from(&c, NN_SHAPE(N, L->C, L->H, L->H), x);
            nn_tensor wt = {.ndim = 4, .shape = {L->O, L->C, L->k, L->k}, .n = (size_t)L->O * K, .data = w,
                            .grad = gw, .requires_grad = 1, .is_param = 1};
            xt->requires_grad = 1;
            double t0 = gn_now();
            nn_tensor *out = nn_conv2d(&c, xt, &wt, NULL, L->s, L->s, nn_pad_sym(L->p));
            double t1 = gn_now();
            memcpy(nn_grad(&c, out), dy, sizeof(float) * out->n); // the upstream gradient: not conv work
            double t2 = gn_now();
            if (nn_backward(&c, out)) {
                fprintf(stderr, "backward failed: %s\n", gn_errmsg());
                return 1;
            }
            double tc = (t1 - t0) + (gn_now() - t2); // forward + backward
            double g0 = gn_now();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, L->O, NP, K, 1, w, K, a, NP, 0, y, NP);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, L->O, K, NP, 1, dy, NP, a, NP, 1, gw, K);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, NP, L->O, 1, w, K, dy, NP, 0, dc, NP);
            double tg = gn_now() - g0;
            if (rep >= 4) {
                if (tc < best[mode]) best[mode] = tc;
                if (tg < best_gemm) best_gemm = tg;
            }
        }
        double best_conv = best[0], best_wino = best[3];
        printf("%-24s %5d %7.3f %8.1f %8.1f %6.2f %8.1f %8.1f %8.1f %6.2f\n", L->name, L->count, flop * 1e-9,
               flop / best_conv * 1e-9, flop / best_gemm * 1e-9, best_gemm / best_conv, flop / best[1] * 1e-9,
               flop / best[2] * 1e-9, flop / best_wino * 1e-9, best_gemm / best_wino);
        tot_flop += L->count * flop;
        tot_conv += L->count * best_conv;
        tot_gemm += L->count * best_gemm;
        tot_wino += L->count * best_wino;
        free(x), free(w), free(gw), free(a), free(dy), free(y), free(dc);
    }
    printf("\nwhole network (each conv weighted by its count): %.2f GFLOP per step\n", tot_flop * 1e-9);
    printf("  conv2d fwd+bwd %.1f GFLOP/s, cblas_sgemm %.1f GFLOP/s, ratio %.2f (target >= 0.70)\n",
           tot_flop / tot_conv * 1e-9, tot_flop / tot_gemm * 1e-9, tot_gemm / tot_conv);
    printf("  default path (Winograd for the 3x3 stride-1 layers): %.1f effective GFLOP/s, %.2fx sgemm, "
           "%.2fx im2col\n",
           tot_flop / tot_wino * 1e-9, tot_gemm / tot_wino, tot_conv / tot_wino);
    printf("  arena peak %.1f MiB\n", c.arena.peak / 1048576.0);
    nn_ctx_free(&c);
    return 0;
}
