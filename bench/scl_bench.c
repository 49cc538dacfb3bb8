// Training throughput of the stellar-mass paper's image S-space model (models/scl_iopt.cfg, spec/methods.md
// §1.5-1.6): the Inception encoder (96-channel stem, Inception k = 156, FC 1024) over 5 x 64 x 64 cutouts
// with E(B-V) as the additional input, the image decoder, the 520-bin estimator, the SCL objective with the
// morphology view (three encoder and decoder passes a step), a batch of 32 pairs, Adam. Random inputs.
// bench/scl_bench_torch.py is the same network and step in PyTorch; `make bench` prints both, their ratio
// and the projected time of the paper's 180,000 iterations.
//   usage: scl_bench [--threads N] [--steps S] [--keep-im2col 0|1 (0, as the preset)]
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "../common/gn_common.h"
#include "../models/latent.h"

int main(int argc, char **argv) {
    gn_runtime_init(argv);
    int threads = 0, steps = 2, N = 64, keep = 0; // keep: as the preset, [train] keep_im2col = 0
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--threads"))
            threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--steps"))
            steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--keep-im2col"))
            keep = atoi(argv[i + 1]);
    }
    gn_set_threads(threads);
    md_latent m;
    memset(&m, 0, sizeof m);
    m.sp = (md_latent_spec){.encoder = MD_ENC_INCEPTION,
                            .objective = MD_OBJ_SCL,
                            .a_dim = 1,
                            .dim_main = 16,
                            .dim_ext = 512,
                            .est_hidden = 1024,
                            .img_c = 5,
                            .img_size = 64,
                            .conv_w = 96,
                            .inc_w = 156,
                            .fc_w = 1024,
                            .dec_ch = 16,
                            .dec_w = 32,
                            .slope = 0.2f,
                            .bins = 520,
                            .lo = 6,
                            .hi = 12.5,
                            .lambda_rec = 100};
    nn_store st;
    nn_store_init(&st);
    nn_optim opt;
    nn_optim_defaults(&opt, NN_OPT_ADAM);
    nn_ctx c;
    if (md_latent_make(&m, &st) || nn_store_finalize(&st) || nn_optim_init(&opt, &st) ||
        nn_ctx_init(&c, 256u << 20))
        return fprintf(stderr, "%s\n", gn_errmsg()), 1;
    c.keep_im2col = keep;
    gn_rng r;
    gn_rng_seed(&r, 1, GN_STREAM_INIT);
    nn_store_reset_values(&st, &r);
    size_t nx = (size_t)N * 5 * 64 * 64;
    float *x = malloc(sizeof(float) * nx), *xm = malloc(sizeof(float) * nx), a[64], y[64];
    for (size_t i = 0; i < nx; i++) x[i] = (float)gn_rng_normal(&r), xm[i] = (float)gn_rng_normal(&r);
    for (int i = 0; i < N; i++)
        a[i] = (float)(0.05 * gn_rng_uniform(&r)), y[i] = (float)(8 + 3 * gn_rng_uniform(&r));
    double t = 0;
    for (int s = 0; s <= steps; s++) { // step 0 warms up
        double t0 = gn_now();
        nn_ctx_reset(&c);
        nn_store_zero_grad(&st);
        nn_tensor *X = nn_tensor_from(&c, NN_SHAPE(N, 5, 64, 64), x),
                  *A = nn_tensor_from(&c, NN_SHAPE(N, 1), a),
                  *XM = nn_tensor_from(&c, NN_SHAPE(N, 5, 64, 64), xm);
        nn_tensor *L = md_latent_loss(&c, &m, X, A, XM, y, N);
        if (!L || nn_backward(&c, L)) return fprintf(stderr, "%s\n", gn_errmsg()), 1;
        nn_optim_step(&opt, &st, 1e-4f);
        if (s) t += gn_now() - t0;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf(
        "galnn   scl_iopt step %7.2f s   (%zu parameters, %d threads, keep_im2col %d, peak RSS %.0f MiB)\n",
        t / steps, st.n_param_values, gn_threads(), keep, ru.ru_maxrss / 1024.0);
    return 0;
}
