// Training and inference throughput of the multi-branch ResNet-18 (two
// branches: 5x64x64 cutouts and 2x48x48 maps, width 32, stride-2 3x3 stem,
// regression head with 2 targets), batch 64, Adam, random inputs; and the
// process's peak resident memory. bench/train_bench_torch.py runs the same
// model in PyTorch; `make bench` prints both and their ratios.
//   usage: train_bench [--threads N] [--steps S] [--batch B] [--width W] [--winograd 0|1|2|4] [--keep-im2col
//   0|1]
//                      [--batched -1|0|1]  (non-Winograd convs: as --keep-im2col says, by groups of images,
//                      by one im2col + sgemm)
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "../common/gn_common.h"
#include "../models/branchnet.h"
#include "../nn/gemm.h"

int main(int argc, char **argv) {
    gn_runtime_init(argv);
    int threads = 0, steps = 10, B = 64, width = 32, keep = 1, wino = 1, batched = -1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch")) B = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--width")) width = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--keep-im2col")) keep = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--winograd")) wino = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--batched")) batched = atoi(argv[i + 1]);
    }
    gn_set_threads(threads);
    md_net m;
    memset(&m, 0, sizeof m);
    m.n_branch = 2;
    md_branch_spec a = {.name = "img",
                        .input = MD_IN_IMAGE,
                        .backbone = MD_BB_RESNET18,
                        .in_ch = 5,
                        .width = width,
                        .stem_kernel = 3,
                        .stem_stride = 2};
    md_branch_spec k = a;
    snprintf(k.name, sizeof k.name, "kin");
    k.in_ch = 2;
    m.spec[0] = a, m.spec[1] = k;
    m.head = MD_HEAD_REGRESSION;
    m.n_targets = 2;
    nn_store st;
    nn_store_init(&st);
    nn_optim opt;
    nn_optim_defaults(&opt, NN_OPT_ADAM);
    nn_ctx c;
    if (md_net_make(&m, &st) || nn_store_finalize(&st) || nn_optim_init(&opt, &st) ||
        nn_ctx_init(&c, 256u << 20))
        return fprintf(stderr, "%s\n", gn_errmsg()), 1;
    c.keep_im2col = keep;
    c.winograd = wino;
    c.tune.conv_batched = batched;
    gn_rng r;
    gn_rng_seed(&r, 1, GN_STREAM_INIT);
    nn_store_reset_values(&st, &r);
    size_t n1 = (size_t)B * 5 * 64 * 64, n2 = (size_t)B * 2 * 48 * 48;
    float *x1 = malloc(sizeof(float) * n1), *x2 = malloc(sizeof(float) * n2), y[1024];
    for (size_t i = 0; i < n1; i++) x1[i] = (float)gn_rng_normal(&r);
    for (size_t i = 0; i < n2; i++) x2[i] = (float)gn_rng_normal(&r);
    for (int i = 0; i < 2 * B; i++) y[i] = (float)gn_rng_normal(&r);
    double t_train = 0, t_inf = 0;
    for (int s = 0; s <= steps; s++) { // step 0 warms up (arena growth, BLAS buffers)
        double t0 = gn_now();
        nn_ctx_reset(&c);
        nn_store_zero_grad(&st);
        nn_tensor *in[2] = {nn_tensor_from(&c, NN_SHAPE(B, 5, 64, 64), x1),
                            nn_tensor_from(&c, NN_SHAPE(B, 2, 48, 48), x2)};
        nn_tensor *L = md_net_loss(&c, &m, md_net_fwd(&c, &m, in), y, B);
        if (!L || nn_backward(&c, L)) return fprintf(stderr, "%s\n", gn_errmsg()), 1;
        nn_optim_step(&opt, &st, 1e-3f);
        if (s) t_train += gn_now() - t0;
    }
    c.training = 0, c.grad_enabled = 0;
    for (int s = 0; s <= steps; s++) {
        double t0 = gn_now();
        nn_ctx_reset(&c);
        nn_tensor *in[2] = {nn_tensor_from(&c, NN_SHAPE(B, 5, 64, 64), x1),
                            nn_tensor_from(&c, NN_SHAPE(B, 2, 48, 48), x2)};
        if (!md_net_fwd(&c, &m, in)) return fprintf(stderr, "%s\n", gn_errmsg()), 1;
        if (s) t_inf += gn_now() - t0;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    char label[48];
    snprintf(label, sizeof label, "galnn (%s%s)",
             wino == 2   ? "Winograd F(2x2)"
             : wino == 4 ? "Winograd F(4x4)"
             : wino      ? "Winograd"
                         : "im2col",
             keep ? "" : ", groups");
    printf("%-23s train %8.1f samples/s   inference %8.1f samples/s   peak RSS %7.1f MiB   (%zu parameters, "
           "%d threads)\n",
           label, steps * B / t_train, steps * B / t_inf, ru.ru_maxrss / 1024.0, st.n_param_values,
           gn_threads());
    return 0;
}
