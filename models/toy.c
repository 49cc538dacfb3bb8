#include "toy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "../io/synth.h"

int md_tinycnn_make(md_tinycnn *m, nn_store *s, int in_ch, int n_classes) {
    int rc = nn_conv_make(&m->c1, s, "c1", in_ch, 16, 3, 1, 1, 1, nn_init_he(), nn_init_const(0));
    if (!rc) rc = nn_bn_make(&m->bn1, s, "bn1", 16);
    if (!rc) rc = nn_conv_make(&m->c2, s, "c2", 16, 32, 3, 2, 1, 1, nn_init_he(), nn_init_const(0));
    if (!rc) rc = nn_dense_make(&m->fc, s, "fc", 32, n_classes, 1, nn_init_glorot(), nn_init_const(0));
    return rc;
}

nn_tensor *md_tinycnn_fwd(nn_ctx *c, const md_tinycnn *m, nn_tensor *x) {
    nn_tensor *h = nn_bn_relu(c, &m->bn1, nn_conv_fwd(c, &m->c1, x), NULL);
    h = nn_maxpool2d(c, h, 2, 2, 2, 2, nn_pad_sym(0));
    h = nn_relu(c, nn_conv_fwd(c, &m->c2, h));
    return nn_dense_fwd(c, &m->fc, nn_global_avgpool(c, h));
}

int md_mlp_make(md_mlp *m, nn_store *s, const char *prefix, int in, int hidden, int depth, int out) {
    if (depth + 1 > 8) return gn_err(GN_EINVAL, "mlp: at most 7 hidden layers");
    m->n_layers = depth + 1;
    char name[128];
    for (int i = 0; i <= depth; i++) {
        snprintf(name, sizeof name, "%s.%d", prefix, i);
        int rc = nn_dense_make(&m->layer[i], s, name, i ? hidden : in, i == depth ? out : hidden, 1,
                               nn_init_glorot(), nn_init_const(0));
        if (rc) return rc;
    }
    return GN_OK;
}

nn_tensor *md_mlp_fwd(nn_ctx *c, const md_mlp *m, nn_tensor *x) {
    for (int i = 0; i < m->n_layers; i++) {
        x = nn_dense_fwd(c, &m->layer[i], x);
        if (i + 1 < m->n_layers) x = nn_tanh(c, x);
    }
    return x;
}

static uint32_t slab_crc(const nn_store *s) {
    return (uint32_t)crc32(0L, (const unsigned char *)s->data, (uInt)(s->n_param_floats * sizeof(float)));
}

int md_train_shapes(uint64_t seed, int n_train, int epochs, md_progress_fn cb, void *user,
                    md_toy_result *res) {
    const int S = 16, B = 32, NTEST = 512;
    int rc = GN_ENOMEM;
    nn_store st;
    nn_store_init(&st);
    nn_ctx ctx;
    nn_optim opt;
    nn_optim_defaults(&opt, NN_OPT_ADAM);
    md_tinycnn m;
    float *xtr = gn_malloc(sizeof(float) * (size_t)n_train * S * S),
          *xte = gn_malloc(sizeof(float) * NTEST * S * S);
    int32_t *ytr = gn_malloc(sizeof(int32_t) * (size_t)n_train), *yte = gn_malloc(sizeof(int32_t) * NTEST);
    uint32_t *perm = gn_malloc(sizeof(uint32_t) * (size_t)n_train);
    float *xb = gn_malloc(sizeof(float) * B * S * S);
    int32_t yb[32];
    if (nn_ctx_init(&ctx, 8u << 20)) goto out0;
    if (!xtr || !xte || !ytr || !yte || !perm || !xb) goto out;
    gn_rng rdata, rinit, rshuf;
    gn_rng_seed(&rdata, seed, GN_STREAM_DATA);
    gn_rng_seed(&rinit, seed, GN_STREAM_INIT);
    gn_rng_seed(&rshuf, seed, GN_STREAM_SHUFFLE);
    io_synth_shapes(&rdata, n_train, S, xtr, ytr);
    io_synth_shapes(&rdata, NTEST, S, xte, yte);
    if ((rc = md_tinycnn_make(&m, &st, 1, 2)) || (rc = nn_store_finalize(&st)) ||
        (rc = nn_optim_init(&opt, &st)))
        goto out;
    nn_store_reset_values(&st, &rinit);
    int steps_per_epoch = n_train / B;
    for (int ep = 0; ep < epochs; ep++) {
        gn_rng_permutation(&rshuf, perm, (size_t)n_train);
        double tot = 0;
        for (int s = 0; s < steps_per_epoch; s++) {
            for (int i = 0; i < B; i++) {
                uint32_t k = perm[s * B + i];
                memcpy(xb + (size_t)i * S * S, xtr + (size_t)k * S * S, sizeof(float) * S * S);
                yb[i] = ytr[k];
            }
            nn_ctx_reset(&ctx);
            nn_store_zero_grad(&st);
            nn_tensor *x = nn_tensor_from(&ctx, NN_SHAPE(B, 1, S, S), xb);
            nn_tensor *loss = nn_cross_entropy(&ctx, md_tinycnn_fwd(&ctx, &m, x), yb);
            if (!loss || (rc = nn_backward(&ctx, loss))) {
                rc = GN_EINVAL;
                goto out;
            }
            nn_optim_step(&opt, &st, 3e-3f);
            tot += loss->data[0];
        }
        double mean = tot / steps_per_epoch;
        if (ep == 0) res->first_loss = mean;
        res->final_loss = mean;
        // held-out accuracy in evaluation mode (running batch-norm statistics)
        ctx.training = 0;
        ctx.grad_enabled = 0;
        int correct = 0;
        for (int s = 0; s < NTEST / B; s++) {
            nn_ctx_reset(&ctx);
            nn_tensor *x = nn_tensor_from(&ctx, NN_SHAPE(B, 1, S, S), xte + (size_t)s * B * S * S);
            nn_tensor *lg = md_tinycnn_fwd(&ctx, &m, x);
            if (!lg) {
                rc = GN_EINVAL;
                goto out;
            }
            for (int i = 0; i < B; i++)
                correct += (lg->data[2 * i + 1] > lg->data[2 * i]) == (yte[s * B + i] == 1);
        }
        ctx.training = 1;
        ctx.grad_enabled = 1;
        res->metric = (double)correct / NTEST;
        if (cb) cb(user, ep + 1, epochs, mean, res->metric);
    }
    res->param_crc = slab_crc(&st);
    rc = GN_OK;
out:
    nn_ctx_free(&ctx);
out0:
    nn_optim_free(&opt);
    nn_store_free(&st);
    free(xtr);
    free(xte);
    free(ytr);
    free(yte);
    free(perm);
    free(xb);
    return rc;
}

int md_train_curve(uint64_t seed, int steps, md_progress_fn cb, void *user, md_toy_result *res) {
    enum { N = 256, NT = 1000 };
    int rc;
    nn_store st;
    nn_store_init(&st);
    nn_ctx ctx;
    nn_optim opt;
    nn_optim_defaults(&opt, NN_OPT_ADAM);
    md_mlp m;
    static const int every = 100;
    float xs[N], ys[N];
    gn_rng rdata, rinit;
    gn_rng_seed(&rdata, seed, GN_STREAM_DATA);
    gn_rng_seed(&rinit, seed, GN_STREAM_INIT);
    for (int i = 0; i < N; i++) {
        xs[i] = (float)(4.0 * gn_rng_uniform(&rdata) - 2.0);
        ys[i] = io_synth_curve(xs[i]);
    }
    if ((rc = nn_ctx_init(&ctx, 1u << 20))) return rc;
    if ((rc = md_mlp_make(&m, &st, "mlp", 1, 32, 2, 1)) || (rc = nn_store_finalize(&st)) ||
        (rc = nn_optim_init(&opt, &st)))
        goto out;
    nn_store_reset_values(&st, &rinit);
    nn_sched sch = {.kind = NN_SCHED_COSINE, .base_lr = 1e-2f, .warmup = 50, .total = steps, .min_lr = 1e-4f};
    double acc = 0;
    for (int s = 0; s < steps; s++) {
        nn_ctx_reset(&ctx);
        nn_store_zero_grad(&st);
        nn_tensor *x = nn_tensor_from(&ctx, NN_SHAPE(N, 1), xs),
                  *y = nn_tensor_from(&ctx, NN_SHAPE(N, 1), ys);
        nn_tensor *loss = nn_mse_loss(&ctx, md_mlp_fwd(&ctx, &m, x), y);
        if (!loss || (rc = nn_backward(&ctx, loss))) {
            rc = GN_EINVAL;
            goto out;
        }
        nn_optim_step(&opt, &st, nn_sched_lr(&sch, s));
        acc += loss->data[0];
        if (s == 0) res->first_loss = loss->data[0];
        res->final_loss = loss->data[0];
        if (cb && ((s + 1) % every == 0 || s + 1 == steps)) {
            cb(user, s + 1, steps, acc / ((s % every) + 1), 0);
            acc = 0;
        }
    }
    ctx.grad_enabled = 0;
    nn_ctx_reset(&ctx);
    float gx[NT], gy[NT];
    for (int i = 0; i < NT; i++) {
        gx[i] = -2.0f + 4.0f * (float)i / (NT - 1);
        gy[i] = io_synth_curve(gx[i]);
    }
    nn_tensor *p = md_mlp_fwd(&ctx, &m, nn_tensor_from(&ctx, NN_SHAPE(NT, 1), gx));
    nn_tensor *l = nn_mse_loss(&ctx, p, nn_tensor_from(&ctx, NN_SHAPE(NT, 1), gy));
    if (!l) {
        rc = GN_EINVAL;
        goto out;
    }
    res->metric = l->data[0];
    res->param_crc = slab_crc(&st);
    rc = GN_OK;
out:
    nn_ctx_free(&ctx);
    nn_optim_free(&opt);
    nn_store_free(&st);
    return rc;
}
