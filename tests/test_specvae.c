// The spectral VAE/CVAE (models/specvae.c, spec/methods.md §4.2-4.3): the
// paper's sizes at 4000 pixels (15,872 encoder features, 250 -> 4028 in the
// decoder), the loss against a hand assembly (α MSE + β KL, KL a mean over
// batch and latent dimensions), and training on synthetic spectra (a
// continuum slope and an emission line's strength): the loss falls and the
// two latent means of the VAE recover both factors; a CVAE conditioned on
// the slope trains too and needs only one latent for the line.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../models/specvae.h"
#include "../models/vae.h"
#include "testutil.h"

static void test_sizes_and_value(void **st) {
    (void)st;
    nn_store s;
    nn_store_init(&s);
    md_specvae v = {.sp = {.pixels = 4000, .latent = 4, .alpha = 1e3f, .beta = 0.1f, .slope = 0.01f}};
    assert_int_equal(md_specvae_make(&v, &s), 0);
    assert_int_equal(nn_store_finalize(&s), 0);
    assert_int_equal(v.L_enc, 15872), assert_int_equal(v.L0, 250), assert_int_equal(v.L_dec, 4028);
    gn_rng r;
    gn_rng_seed(&r, 1, GN_STREAM_INIT);
    nn_store_reset_values(&s, &r);
    nn_ctx c;
    assert_int_equal(nn_ctx_init(&c, 64 << 20), 0);
    float *x = malloc(sizeof(float) * 3 * 4000);
    tu_uniform(x, 3 * 4000, 0.2f, 0.8f, 2);
    gn_rng e1, e2;
    gn_rng_seed(&e1, 3, GN_STREAM_DROPOUT);
    e2 = e1;
    double mse, kl;
    c.training = 1;
    double L = md_specvae_loss(&c, &v, nn_tensor_from(&c, NN_SHAPE(3, 4000), x), NULL, &e1, &mse, &kl)->data[0];
    nn_ctx_reset(&c);
    nn_tensor *mu, *lv;
    md_specvae_encode(&c, &v, nn_tensor_from(&c, NN_SHAPE(3, 4000), x), NULL, &mu, &lv);
    assert_int_equal(mu->shape[1], 4);
    double klh = 0;
    for (int i = 0; i < 12; i++) klh += 0.5 * (mu->data[i] * mu->data[i] + exp(lv->data[i]) - 1 - lv->data[i]) / 12;
    nn_tensor *xh = md_specvae_decode(&c, &v, md_vae_sample(&c, mu, lv, &e2), NULL);
    assert_int_equal(xh->shape[1], 4000);
    double mh = 0;
    for (int i = 0; i < 3 * 4000; i++) mh += ((double)xh->data[i] - x[i]) * ((double)xh->data[i] - x[i]) / (3 * 4000);
    printf("    4000 pixels: loss %.6f = 1e3 MSE %.8f + 0.1 KL %.6f; by hand MSE %.8f, KL %.6f\n", L, mse, kl, mh, klh);
    assert_float_equal(kl, klh, 1e-5 * (1 + klh));
    assert_float_equal(mse, mh, 1e-4 * mh);
    assert_float_equal(L, 1e3 * mh + 0.1 * klh, 1e-4 * L);
    free(x);
    nn_ctx_free(&c);
    nn_store_free(&s);
}

// 128-pixel spectra: continuum 0.4 + a (x - 0.5) plus a line of strength b at pixel 40.
static void spectrum(gn_rng *r, float *f, double *a, double *b) {
    *a = gn_rng_uniform(r) * 0.4 - 0.2;
    *b = gn_rng_uniform(r) * 0.5;
    for (int j = 0; j < 128; j++) f[j] = (float)(0.4 + *a * (j / 127.0 - 0.5) + *b * exp(-(j - 40) * (j - 40) / 8.0));
}

static double corr(const double *x, const double *y, int n) {
    double mx = 0, my = 0, sxy = 0, sxx = 0, syy = 0;
    for (int i = 0; i < n; i++) mx += x[i] / n, my += y[i] / n;
    for (int i = 0; i < n; i++) sxy += (x[i] - mx) * (y[i] - my), sxx += (x[i] - mx) * (x[i] - mx), syy += (y[i] - my) * (y[i] - my);
    return sxy / sqrt(sxx * syy);
}

// The multiple correlation of y with the L (1 or 2) columns m: sqrt(R^2) of
// the least-squares fit of y on them (invariant to a rotation of the latents).
static double multi_corr(double m[2][256], int L, const double *y, int n) {
    if (L == 1) return fabs(corr(m[0], y, n));
    double mu[3] = {0}, S[3][3] = {{0}};
    for (int i = 0; i < n; i++) mu[0] += m[0][i] / n, mu[1] += m[1][i] / n, mu[2] += y[i] / n;
    for (int i = 0; i < n; i++) {
        double d[3] = {m[0][i] - mu[0], m[1][i] - mu[1], y[i] - mu[2]};
        for (int p = 0; p < 3; p++)
            for (int q = 0; q < 3; q++) S[p][q] += d[p] * d[q];
    }
    double det = S[0][0] * S[1][1] - S[0][1] * S[1][0];
    double b0 = (S[1][1] * S[0][2] - S[0][1] * S[1][2]) / det, b1 = (S[0][0] * S[1][2] - S[1][0] * S[0][2]) / det;
    return sqrt(fmax(0, (b0 * S[0][2] + b1 * S[1][2]) / S[2][2]));
}

static void train_and_check(int cond) {
    nn_store s;
    nn_store_init(&s);
    md_specvae v = {.sp = {.pixels = 128, .latent = cond ? 1 : 2, .n_cond = cond, .alpha = 1e3f, .beta = 0.1f, .slope = 0.01f}};
    assert_int_equal(md_specvae_make(&v, &s), 0);
    assert_int_equal(nn_store_finalize(&s), 0);
    gn_rng r;
    gn_rng_seed(&r, 4, GN_STREAM_INIT);
    nn_store_reset_values(&s, &r);
    nn_optim o;
    nn_optim_defaults(&o, NN_OPT_ADAM);
    o.amsgrad = 1;
    assert_int_equal(nn_optim_init(&o, &s), 0);
    nn_ctx c;
    assert_int_equal(nn_ctx_init(&c, 32 << 20), 0);
    enum { B = 64 };
    float f[B * 128], cv[B];
    double a[256], b[256], first = 0, last = 0;
    gn_rng data, eps;
    gn_rng_seed(&data, 5, GN_STREAM_SAMPLE);
    gn_rng_seed(&eps, 6, GN_STREAM_DROPOUT);
    int san = tu_sanitized(), steps = san ? 40 : 300; // under ASan: the memory paths, and a falling loss
    for (int t = 0; t < steps; t++) {
        for (int i = 0; i < B; i++) spectrum(&data, f + i * 128, &a[i], &b[i]), cv[i] = (float)(a[i] * 5);
        nn_ctx_reset(&c);
        c.training = 1;
        nn_store_zero_grad(&s);
        nn_tensor *C = cond ? nn_tensor_from(&c, NN_SHAPE(B, 1), cv) : NULL;
        nn_tensor *L = md_specvae_loss(&c, &v, nn_tensor_from(&c, NN_SHAPE(B, 128), f), C, &eps, NULL, NULL);
        assert_int_equal(nn_backward(&c, L), 0);
        nn_optim_step(&o, &s, 2e-3f);
        if (t < 10) first += L->data[0] / 10;
        if (t >= steps - 10) last += L->data[0] / 10;
    }
    // latent means of 256 fresh spectra (evaluation mode: running batch-norm statistics)
    float *g = malloc(sizeof(float) * 256 * 128), cg[256];
    for (int i = 0; i < 256; i++) spectrum(&data, g + i * 128, &a[i], &b[i]), cg[i] = (float)(a[i] * 5);
    nn_ctx_reset(&c);
    c.training = 0, c.grad_enabled = 0;
    nn_tensor *mu, *lv;
    md_specvae_encode(&c, &v, nn_tensor_from(&c, NN_SHAPE(256, 128), g), cond ? nn_tensor_from(&c, NN_SHAPE(256, 1), cg) : NULL, &mu, &lv);
    double m[2][256];
    for (int d = 0; d < v.sp.latent; d++)
        for (int i = 0; i < 256; i++) m[d][i] = mu->data[i * v.sp.latent + d];
    double best_a = multi_corr(m, v.sp.latent, a, 256), best_b = multi_corr(m, v.sp.latent, b, 256);
    printf("    %s: loss %.3f -> %.3f; multiple correlation of the latent means with the line strength %.3f, "
           "with the slope %.3f\n",
           cond ? "CVAE (slope as the condition, 1 latent)" : "VAE (2 latents)", first, last, best_b, best_a);
    free(g);
    nn_optim_free(&o);
    nn_ctx_free(&c);
    nn_store_free(&s);
    assert_true(last < (san ? 1.0 : 0.3) * first);
    if (san) return;
    assert_true(best_b > 0.9);
    if (!cond) assert_true(best_a > 0.9);
    else assert_true(best_a < 0.6); // the condition carries the slope: the latent need not
}

static void test_train(void **st) {
    (void)st;
    train_and_check(0);
    train_and_check(1);
}

int main(void) {
    gn_set_threads(1);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_sizes_and_value), cmocka_unit_test(test_train)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
