// Throughput of the posterior models: the conditional RealNVP (12 couplings,
// 5-D target, 64-D context, coupling nets 2 x 128 ReLU, tanh scales, batch
// 512): training (NLL forward + backward + Adam) and log-probability samples/s;
// and the image VAE (5 x 64 x 64 cutouts, convolutions 32/64/128, latent 32,
// batch 64) training images/s. bench/flow_bench_torch.py runs the same models
// in PyTorch; `make bench` prints both and their ratios.
//   usage: flow_bench [--threads N] [--steps S]
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/gn_common.h"
#include "../models/flow.h"
#include "../models/vae.h"

static void fill(float *x, size_t n, gn_rng *r) {
    for (size_t i = 0; i < n; i++) x[i] = (float)gn_rng_normal(r);
}

int main(int argc, char **argv) {
    gn_runtime_init(argv);
    int threads = 0, steps = 20;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
    }
    gn_set_threads(threads);
    gn_rng r;
    gn_rng_seed(&r, 1, GN_STREAM_INIT);
    // ---- flow ----
    enum { B = 512, D = 5, C = 64 };
    nn_store st;
    nn_store_init(&st);
    md_flow f = {
        .sp = {
            .dim = D, .ctx = C, .layers = 12, .depth = 2, .hidden = 128, .scale = MD_FLOW_TANH, .clamp = 2}};
    if (md_flow_make(&f, &st, "flow") || nn_store_finalize(&st))
        return fprintf(stderr, "flow_bench: %s\n", gn_errmsg()), 1;
    nn_store_reset_values(&st, &r);
    nn_optim opt;
    nn_optim_defaults(&opt, NN_OPT_ADAM);
    nn_ctx c;
    if (nn_optim_init(&opt, &st) || nn_ctx_init(&c, 64u << 20)) return 1;
    float *x = malloc(sizeof(float) * B * D), *h = malloc(sizeof(float) * B * C);
    fill(x, B * D, &r), fill(h, B * C, &r);
    double t_train = 0, t_lp = 0;
    for (int s = 0; s <= steps; s++) { // step 0 warms up (arena growth)
        double t0 = gn_now();
        nn_ctx_reset(&c);
        c.grad_enabled = 1;
        nn_store_zero_grad(&st);
        nn_tensor *L =
            md_flow_nll(&c, &f, nn_tensor_from(&c, NN_SHAPE(B, D), x), nn_tensor_from(&c, NN_SHAPE(B, C), h));
        if (!L || nn_backward(&c, L)) return 1;
        nn_optim_step(&opt, &st, 1e-4f);
        if (s) t_train += gn_now() - t0;
    }
    for (int s = 0; s <= steps; s++) {
        double t0 = gn_now();
        nn_ctx_reset(&c);
        c.grad_enabled = 0;
        if (!md_flow_log_prob(&c, &f, nn_tensor_from(&c, NN_SHAPE(B, D), x),
                              nn_tensor_from(&c, NN_SHAPE(B, C), h)))
            return 1;
        if (s) t_lp += gn_now() - t0;
    }
    nn_optim_free(&opt);
    nn_ctx_free(&c);
    nn_store_free(&st);
    // ---- VAE ----
    enum { VB = 64, VC = 5, VS = 64 };
    nn_store_init(&st);
    md_vae v = {.sp = {.in_c = VC,
                       .size = VS,
                       .n_down = 3,
                       .width = {32, 64, 128},
                       .latent = 32,
                       .beta = 1,
                       .slope = 0.2f}};
    if (md_vae_make(&v, &st) || nn_store_finalize(&st))
        return fprintf(stderr, "flow_bench: %s\n", gn_errmsg()), 1;
    nn_store_reset_values(&st, &r);
    nn_optim_defaults(&opt, NN_OPT_ADAM);
    if (nn_optim_init(&opt, &st) || nn_ctx_init(&c, 256u << 20)) return 1;
    float *img = malloc(sizeof(float) * VB * VC * VS * VS);
    fill(img, (size_t)VB * VC * VS * VS, &r);
    double t_vae = 0;
    int vsteps = steps / 4 > 3 ? steps / 4 : 3;
    for (int s = 0; s <= vsteps; s++) {
        double t0 = gn_now();
        nn_ctx_reset(&c);
        c.grad_enabled = 1;
        nn_store_zero_grad(&st);
        nn_tensor *L = md_vae_loss(&c, &v, nn_tensor_from(&c, NN_SHAPE(VB, VC, VS, VS), img), &r, NULL, NULL);
        if (!L || nn_backward(&c, L)) return 1;
        nn_optim_step(&opt, &st, 1e-4f);
        if (s) t_vae += gn_now() - t0;
    }
    printf("galnn     flow train %9.0f samples/s   flow log-prob %9.0f samples/s   VAE train %7.1f images/s  "
           " (%d threads)\n",
           steps * (double)B / t_train, steps * (double)B / t_lp, vsteps * (double)VB / t_vae, gn_threads());
    free(x), free(h), free(img);
    nn_optim_free(&opt);
    nn_ctx_free(&c);
    nn_store_free(&st);
    return 0;
}
