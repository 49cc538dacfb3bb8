// Expected gradients (nn/attrib.c): exact for a linear model (φ_j = w_j (x_j -
// mean b_j)); zero for an input the model ignores; completeness for a small
// tanh network, Σ φ = f(x) - E_b f(b) within the sampling error.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../nn/attrib.h"
#include "testutil.h"

enum { D = 6, H = 8, NB = 50 };

typedef struct net {
    nn_tensor *w1, *b1, *w2;
    int linear;
} net;

static nn_tensor *model(nn_ctx *c, nn_tensor *x, void *u) {
    net *n = u;
    if (n->linear) return nn_reshape(c, nn_linear(c, x, n->w2, NULL), NN_SHAPE(-1));
    return nn_reshape(c, nn_linear(c, nn_tanh(c, nn_linear(c, x, n->w1, n->b1)), n->w2, NULL), NN_SHAPE(-1));
}

static void test_expected_gradients(void **st) {
    (void)st;
    nn_ctx c;
    assert_int_equal(nn_ctx_init(&c, 8 << 20), 0);
    float w1[H * D], b1[H], w2l[D], w2[H], x[D], bg[NB * D];
    tu_randn(w1, H * D, 1, 1), tu_randn(b1, H, 0.5f, 2), tu_randn(w2, H, 1, 3), tu_randn(w2l, D, 1, 4);
    tu_randn(x, D, 1, 5), tu_randn(bg, NB * D, 1, 6);
    for (int h = 0; h < H; h++) w1[h * D + 4] = 0; // input 4 is ignored by the network
    // the parameters live outside the arena (nn_tensor_from copies per call): keep them in a store
    nn_store s;
    nn_store_init(&s);
    net n = {nn_store_param(&s, "w1", NN_SHAPE(H, D), nn_init_const(0)), nn_store_param(&s, "b1", NN_SHAPE(H), nn_init_const(0)),
             nn_store_param(&s, "w2", NN_SHAPE(1, H), nn_init_const(0)), 0};
    nn_tensor *wl = nn_store_param(&s, "wl", NN_SHAPE(1, D), nn_init_const(0));
    assert_int_equal(nn_store_finalize(&s), 0);
    memcpy(n.w1->data, w1, sizeof w1), memcpy(n.b1->data, b1, sizeof b1), memcpy(n.w2->data, w2, sizeof w2), memcpy(wl->data, w2l, sizeof w2l);
    gn_rng r;
    gn_rng_seed(&r, 7, GN_STREAM_SAMPLE);
    double phi[D];
    // linear: exact, whatever the draws
    net lin = {NULL, NULL, wl, 1};
    assert_int_equal(nn_expected_gradients(&c, model, &lin, 1, (int[]){D}, x, bg, NB, 5000, 512, &r, phi), 0);
    double mb[D] = {0};
    for (int i = 0; i < NB; i++)
        for (int j = 0; j < D; j++) mb[j] += bg[i * D + j] / NB;
    for (int j = 0; j < D; j++) {
        // the draws of b average to the background mean only up to sampling: compare with the drawn mean
        assert_float_equal(phi[j], w2l[j] * (x[j] - mb[j]), 0.08 * fabs(w2l[j]) + 1e-6);
    }
    // the network: completeness and a zero for the ignored input
    assert_int_equal(nn_expected_gradients(&c, model, &n, 1, (int[]){D}, x, bg, NB, 40000, 1000, &r, phi), 0);
    nn_ctx_reset(&c);
    c.grad_enabled = 0;
    nn_tensor *fx = model(&c, nn_tensor_from(&c, NN_SHAPE(1, D), x), &n), *fb = model(&c, nn_tensor_from(&c, NN_SHAPE(NB, D), bg), &n);
    double want = fx->data[0], sum = 0;
    for (int i = 0; i < NB; i++) want -= fb->data[i] / NB;
    for (int j = 0; j < D; j++) sum += phi[j];
    printf("    completeness: sum of attributions %.4f, f(x) - E f(b) %.4f; ignored input %.2g\n", sum, want, phi[4]);
    assert_float_equal(sum, want, 0.03 * fabs(want) + 0.02);
    assert_true(phi[4] == 0);
    nn_store_free(&s);
    nn_ctx_free(&c);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_expected_gradients)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
