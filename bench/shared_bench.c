// One galnn workload for a fixed wall time, reported as steps per second: bench/run.sh runs each kind
// alone and then two copies side by side on the same cores (make bench, "shared"), and prints the
// slowdown factor. Fair sharing of the cores between two equal jobs is 2x.
//   usage: shared_bench KIND SECONDS [--threads N]
//   KIND: flow (conditional RealNVP, batch 512), vae (image VAE, 5 x 64 x 64, batch 64), resnet (the
//   multi-branch ResNet-18 of train_bench, batch 32), mlp (the S-space MLP: 20 x 128, 520 bins, batch 64),
//   ksg (KSG mutual information, n = 20,000)
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/gn_common.h"
#include "../models/branchnet.h"
#include "../models/flow.h"
#include "../models/latent.h"
#include "../models/vae.h"
#include "../stats/mi.h"

typedef struct job {
    int kind;
    nn_store st;
    nn_optim opt;
    nn_ctx c;
    gn_rng r;
    md_flow f;
    md_vae v;
    md_net m;
    md_latent l;
    int B;
    float *x, *h, *y;
    double *a, *b;
} job;

enum { K_FLOW, K_VAE, K_RESNET, K_MLP, K_KSG };
static const char *const KINDS[] = {"flow", "vae", "resnet", "mlp", "ksg"};

static float *normals(size_t n, gn_rng *r) {
    float *x = malloc(sizeof(float) * n);
    for (size_t i = 0; x && i < n; i++) x[i] = (float)gn_rng_normal(r);
    return x;
}

static int make_model(job *J) {
    switch (J->kind) {
    case K_FLOW:
        J->f.sp = (md_flow_spec){
            .dim = 5, .ctx = 64, .layers = 12, .depth = 2, .hidden = 128, .scale = MD_FLOW_TANH, .clamp = 2};
        J->B = 512;
        return md_flow_make(&J->f, &J->st, "flow");
    case K_VAE:
        J->v.sp = (md_vae_spec){.in_c = 5,
                                .size = 64,
                                .n_down = 3,
                                .width = {32, 64, 128},
                                .latent = 32,
                                .beta = 1,
                                .slope = 0.2f};
        J->B = 64;
        return md_vae_make(&J->v, &J->st);
    case K_RESNET: {
        md_net_multibranch(&J->m, 32);
        J->B = 32;
        return md_net_make(&J->m, &J->st);
    }
    default:
        J->l.sp = (md_latent_spec){.objective = MD_OBJ_CE,
                                   .x_dim = 5,
                                   .a_dim = 6,
                                   .dim_main = 8,
                                   .depth = 20,
                                   .hidden = 128,
                                   .est_hidden = 128,
                                   .slope = 0.2f,
                                   .bins = 520,
                                   .lo = 6,
                                   .hi = 12.5};
        J->B = 64;
        return md_latent_make(&J->l, &J->st);
    }
}

static int setup(job *J) {
    gn_rng_seed(&J->r, 1, GN_STREAM_INIT);
    if (J->kind == K_KSG) {
        size_t n = 20000;
        J->a = malloc(sizeof(double) * n), J->b = malloc(sizeof(double) * n);
        for (size_t i = 0; J->a && J->b && i < n; i++)
            J->a[i] = gn_rng_normal(&J->r), J->b[i] = 0.6 * J->a[i] + 0.8 * gn_rng_normal(&J->r);
        return J->a && J->b ? GN_OK : GN_ENOMEM;
    }
    nn_store_init(&J->st);
    nn_optim_defaults(&J->opt, NN_OPT_ADAM);
    if (make_model(J) || nn_store_finalize(&J->st) || nn_optim_init(&J->opt, &J->st) ||
        nn_ctx_init(&J->c, 256u << 20))
        return GN_EINVAL;
    nn_store_reset_values(&J->st, &J->r);
    size_t B = (size_t)J->B;
    J->x = normals(B * 5 * 64 * 64, &J->r), J->h = normals(B * 64 + B * 2 * 48 * 48, &J->r);
    J->y = malloc(sizeof(float) * B * 2);
    for (size_t i = 0; J->y && i < B * 2; i++) J->y[i] = (float)(6 + 6.5 * gn_rng_uniform(&J->r));
    return J->x && J->h && J->y ? GN_OK : GN_ENOMEM;
}

static nn_tensor *loss(job *J) {
    nn_ctx *c = &J->c;
    int B = J->B;
    switch (J->kind) {
    case K_FLOW:
        return md_flow_nll(c, &J->f, nn_tensor_from(c, NN_SHAPE(B, 5), J->x),
                           nn_tensor_from(c, NN_SHAPE(B, 64), J->h));
    case K_VAE:
        return md_vae_loss(c, &J->v, nn_tensor_from(c, NN_SHAPE(B, 5, 64, 64), J->x), &J->r, NULL, NULL);
    case K_RESNET: {
        nn_tensor *in[2] = {nn_tensor_from(c, NN_SHAPE(B, 5, 64, 64), J->x),
                            nn_tensor_from(c, NN_SHAPE(B, 2, 48, 48), J->h)};
        return md_net_loss(c, &J->m, md_net_fwd(c, &J->m, in), J->y, B);
    }
    default:
        return md_latent_loss(c, &J->l, nn_tensor_from(c, NN_SHAPE(B, 5), J->x),
                              nn_tensor_from(c, NN_SHAPE(B, 6), J->h), NULL, J->y, B);
    }
}

static int step(job *J) {
    if (J->kind == K_KSG) {
        double mi;
        return st_mi_ksg(J->a, 1, J->b, 1, 20000, 3, 1, &mi);
    }
    nn_ctx_reset(&J->c);
    J->c.grad_enabled = 1;
    nn_store_zero_grad(&J->st);
    nn_tensor *L = loss(J);
    if (!L || nn_backward(&J->c, L)) return GN_EINVAL;
    nn_optim_step(&J->opt, &J->st, 1e-4f);
    return GN_OK;
}

int main(int argc, char **argv) {
    gn_runtime_init(argv);
    job J;
    memset(&J, 0, sizeof J);
    J.kind = -1;
    for (int k = 0; argc > 2 && k < 5; k++)
        if (!strcmp(argv[1], KINDS[k])) J.kind = k;
    double T = argc > 2 ? atof(argv[2]) : 0;
    if (J.kind < 0 || !(T > 0))
        return fprintf(stderr, "usage: shared_bench flow|vae|resnet|mlp|ksg SECONDS [--threads N]\n"), 2;
    gn_set_threads(argc > 4 && !strcmp(argv[3], "--threads") ? atoi(argv[4]) : 0);
    if (setup(&J) || step(&J)) return fprintf(stderr, "shared_bench: %s\n", gn_errmsg()), 1; // warm-up
    long n = 0;
    double t0 = gn_now(), t = 0;
    while ((t = gn_now() - t0) < T) {
        if (step(&J)) return fprintf(stderr, "shared_bench: %s\n", gn_errmsg()), 1;
        n++;
    }
    printf("%s %.4f steps/s (%ld steps in %.2f s, %d threads)\n", KINDS[J.kind], n / t, n, t, gn_threads());
    return 0;
}
