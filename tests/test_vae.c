// The image VAE (models/vae.c, spec/methods.md §3.2): shapes and size errors;
// the loss against a hand assembly of its two terms (the KL in closed form,
// the squared error of the decoded reparameterised sample with the same ε);
// reparameterisation gradients w.r.t. mu and log sigma^2 and the whole loss's
// gradient w.r.t. the image against finite differences; and a VAE trained on
// blobs whose latent means recover the blobs' position and size.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../models/vae.h"
#include "testutil.h"

typedef struct fx {
    nn_store st;
    md_vae v;
    nn_ctx c;
} fx;

static void make(fx *F, md_vae_spec sp, uint64_t seed) {
    memset(F, 0, sizeof *F);
    nn_store_init(&F->st);
    F->v.sp = sp;
    assert_int_equal(md_vae_make(&F->v, &F->st), 0);
    assert_int_equal(nn_store_finalize(&F->st), 0);
    gn_rng r;
    gn_rng_seed(&r, seed, GN_STREAM_INIT);
    nn_store_reset_values(&F->st, &r);
    assert_int_equal(nn_ctx_init(&F->c, 16 << 20), 0);
}

static void drop(fx *F) {
    nn_ctx_free(&F->c);
    nn_store_free(&F->st);
}

static const md_vae_spec SMALL = {.in_c = 2, .size = 16, .n_down = 3, .width = {4, 6, 8}, .latent = 5, .beta = 0.7f, .slope = 0.2f};

static void test_shapes_and_value(void **st) {
    (void)st;
    nn_store s;
    nn_store_init(&s);
    md_vae bad = {.sp = SMALL};
    bad.sp.size = 20; // not a multiple of 8
    assert_int_not_equal(md_vae_make(&bad, &s), 0);
    assert_non_null(strstr(gn_errmsg(), "multiple of 8"));
    nn_store_free(&s);
    fx F;
    make(&F, SMALL, 1);
    enum { N = 3, P = 2 * 16 * 16 };
    float x[N * P];
    tu_randn(x, N * P, 1, 2);
    nn_tensor *X = nn_tensor_from(&F.c, NN_SHAPE(N, 2, 16, 16), x), *mu, *lv;
    md_vae_encode(&F.c, &F.v, X, &mu, &lv);
    assert_int_equal(mu->shape[0], N), assert_int_equal(mu->shape[1], 5), assert_int_equal(lv->shape[1], 5);
    nn_tensor *xh = md_vae_decode(&F.c, &F.v, mu);
    assert_int_equal(xh->ndim, 4), assert_int_equal(xh->shape[1], 2), assert_int_equal(xh->shape[2], 16), assert_int_equal(xh->shape[3], 16);
    // the loss by hand: same ε (a copy of the stream), KL in closed form, per-galaxy squared-error sums
    gn_rng r1, r2;
    gn_rng_seed(&r1, 9, GN_STREAM_DROPOUT);
    r2 = r1;
    double rec, kl;
    nn_ctx_reset(&F.c);
    X = nn_tensor_from(&F.c, NN_SHAPE(N, 2, 16, 16), x);
    double L = md_vae_loss(&F.c, &F.v, X, &r1, &rec, &kl)->data[0];
    nn_ctx_reset(&F.c);
    X = nn_tensor_from(&F.c, NN_SHAPE(N, 2, 16, 16), x);
    md_vae_encode(&F.c, &F.v, X, &mu, &lv);
    nn_tensor *z = nn_tensor_new(&F.c, NN_SHAPE(N, 5));
    double klh = 0;
    for (int i = 0; i < N * 5; i++) {
        double m = mu->data[i], l = lv->data[i];
        z->data[i] = (float)(m + exp(0.5 * l) * gn_rng_normal(&r2));
        klh += 0.5 * (m * m + exp(l) - 1 - l) / N;
    }
    xh = md_vae_decode(&F.c, &F.v, z);
    double rech = 0;
    for (int i = 0; i < N * P; i++) rech += ((double)xh->data[i] - x[i]) * ((double)xh->data[i] - x[i]) / N;
    printf("    loss %.6f = rec %.6f + 0.7 KL %.6f; by hand rec %.6f, KL %.6f\n", L, rec, kl, rech, klh);
    assert_float_equal(kl, klh, 1e-5 * (1 + klh));
    assert_float_equal(rec, rech, 1e-5 * rech);
    assert_float_equal(L, rech + 0.7 * klh, 1e-5 * L);
    drop(&F);
}

// f(mu, logvar) = Σ w ⊙ z^2 with z = mu + exp(logvar/2) ε and a fixed ε.
static nn_tensor *reparam_fn(nn_ctx *c, nn_tensor **in, void *u) {
    (void)u;
    gn_rng r;
    gn_rng_seed(&r, 77, GN_STREAM_DROPOUT); // the same ε every call
    nn_tensor *z = md_vae_sample(c, in[0], in[1], &r);
    return nn_sum(c, nn_mul(c, nn_mul(c, z, z), in[2]), NN_ALL_AXES, 0);
}

typedef struct lossu {
    fx *F;
} lossu;

static nn_tensor *loss_fn(nn_ctx *c, nn_tensor **in, void *u) {
    gn_rng r;
    gn_rng_seed(&r, 78, GN_STREAM_DROPOUT);
    return md_vae_loss(c, &((lossu *)u)->F->v, in[0], &r, NULL, NULL);
}

static void test_gradients(void **st) {
    (void)st;
    float mu[12], lv[12], w[12];
    tu_randn(mu, 12, 1, 3);
    tu_randn(lv, 12, 0.5f, 4);
    tu_uniform(w, 12, 0.5f, 1.5f, 5);
    tu_input in[3] = {tu_in(2, (int[]){3, 4}, mu, 1), tu_in(2, (int[]){3, 4}, lv, 1), tu_in(2, (int[]){3, 4}, w, 0)};
    tu_gradcheck("reparameterised sample w.r.t. mu and log sigma^2", reparam_fn, NULL, 3, in, TU_GC_DEFAULT);
    // the whole loss w.r.t. the image (slope 1: no LeakyReLU kinks for the differences to straddle)
    // (small: the loss is a float32 sum over the pixels, whose round-off the
    // differences must stay above)
    fx F;
    md_vae_spec sp = {.in_c = 1, .size = 8, .n_down = 2, .width = {3, 4}, .latent = 3, .beta = 0.7f, .slope = 1};
    make(&F, sp, 6);
    float x[2 * 64];
    tu_randn(x, 2 * 64, 0.3f, 7);
    tu_input xi[1] = {tu_in(4, (int[]){2, 1, 8, 8}, x, 1)};
    lossu u = {&F};
    tu_gradcheck("VAE loss w.r.t. the image", loss_fn, &u, 1, xi, TU_GC_DEFAULT);
    drop(&F);
}

// 16 x 16 Gaussian blobs at a random x position with a random width.
static void blob(gn_rng *r, float *img, double *pos, double *wid) {
    *pos = 4 + 8 * gn_rng_uniform(r);
    *wid = 1 + 2 * gn_rng_uniform(r);
    for (int y = 0; y < 16; y++)
        for (int x = 0; x < 16; x++)
            img[y * 16 + x] = (float)(2 * exp(-((x - *pos) * (x - *pos) + (y - 7.5) * (y - 7.5)) / (2 * *wid * *wid)));
}

// R^2 of the least-squares fit of y on the 4 latent means and a constant.
static double r2_on(double X[4][256], const double *y, int n) {
    double A[5][6] = {{0}};
    for (int i = 0; i < n; i++) {
        double v[5] = {1, X[0][i], X[1][i], X[2][i], X[3][i]};
        for (int a = 0; a < 5; a++) {
            for (int b = 0; b < 5; b++) A[a][b] += v[a] * v[b];
            A[a][5] += v[a] * y[i];
        }
    }
    for (int k = 0; k < 5; k++) // Gauss-Jordan (the normal matrix is positive definite)
        for (int a = 0; a < 5; a++) {
            if (a == k) continue;
            double f = A[a][k] / A[k][k];
            for (int b = k; b < 6; b++) A[a][b] -= f * A[k][b];
        }
    double my = 0, ss = 0, se = 0;
    for (int i = 0; i < n; i++) my += y[i] / n;
    for (int i = 0; i < n; i++) {
        double v[5] = {1, X[0][i], X[1][i], X[2][i], X[3][i]}, f = 0;
        for (int a = 0; a < 5; a++) f += v[a] * A[a][5] / A[a][a];
        ss += (y[i] - my) * (y[i] - my), se += (y[i] - f) * (y[i] - f);
    }
    return 1 - se / ss;
}

static void test_train_blobs(void **st) {
    (void)st;
    fx F;
    md_vae_spec sp = {.in_c = 1, .size = 16, .n_down = 2, .width = {8, 16}, .latent = 4, .beta = 1, .slope = 0.2f};
    make(&F, sp, 11);
    nn_optim o;
    nn_optim_defaults(&o, NN_OPT_ADAM);
    assert_int_equal(nn_optim_init(&o, &F.st), 0);
    enum { B = 32, T = 800 };
    float img[B * 256];
    double pos[B], wid[B], first = 0, last = 0;
    gn_rng data, eps;
    gn_rng_seed(&data, 12, GN_STREAM_SAMPLE);
    gn_rng_seed(&eps, 13, GN_STREAM_DROPOUT);
    int steps = tu_sanitized() ? 300 : T;
    for (int s = 0; s < steps; s++) {
        for (int i = 0; i < B; i++) blob(&data, img + i * 256, &pos[i], &wid[i]);
        nn_ctx_reset(&F.c);
        nn_store_zero_grad(&F.st);
        double rec, kl;
        nn_tensor *L = md_vae_loss(&F.c, &F.v, nn_tensor_from(&F.c, NN_SHAPE(B, 1, 16, 16), img), &eps, &rec, &kl);
        assert_int_equal(nn_backward(&F.c, L), 0);
        nn_optim_step(&o, &F.st, 2e-3f);
        if (s < 20) first += L->data[0] / 20;
        if (s >= steps - 20) last += L->data[0] / 20;
    }
    // the latent means of fresh blobs: some dimension tracks the position, some the width
    enum { M = 256 };
    float *im = malloc(sizeof(float) * M * 256);
    double P[M], W[M], mu[4][M];
    for (int i = 0; i < M; i++) blob(&data, im + i * 256, &P[i], &W[i]);
    nn_ctx_reset(&F.c);
    F.c.grad_enabled = 0;
    nn_tensor *m, *lv;
    md_vae_encode(&F.c, &F.v, nn_tensor_from(&F.c, NN_SHAPE(M, 1, 16, 16), im), &m, &lv);
    for (int j = 0; j < 4; j++)
        for (int i = 0; i < M; i++) mu[j][i] = m->data[i * 4 + j];
    double bp = r2_on(mu, P, M), bw = r2_on(mu, W, M);
    printf("    loss %.2f -> %.2f over %d steps; the latent means explain R^2 %.3f of the position, %.3f of the width "
           "(linear fit)\n", first, last, steps, bp, bw);
    assert_true(last < 0.5 * first);
    assert_true(bp > 0.8);
    assert_true(bw > 0.6);
    free(im);
    nn_optim_free(&o);
    drop(&F);
}

int main(void) {
    gn_set_threads(1);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_shapes_and_value), cmocka_unit_test(test_gradients),
                                       cmocka_unit_test(test_train_blobs)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
