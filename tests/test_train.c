// Real training through the engine, with deterministic seeds: an MLP learns a
// nonlinear 1-D function and a small CNN learns to tell two synthetic shapes
// apart. Both are run twice to show a fixed seed and thread count give
// bit-identical parameters.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "../nn/gemm.h"
#include "../nn/team.h"
#include "../models/branchnet.h"
#include "../models/toy.h"

// y = sin(2x) + 0.3x^2 on [-2, 2] has variance ~0.55; the threshold asks the
// MLP to explain > 99.8 % of it on a dense test grid.
#define CURVE_MSE_MAX 1e-3

static void test_mlp_curve(void **st) {
    (void)st;
    md_toy_result r1 = {0}, r2 = {0};
    int steps = tu_sanitized() ? 1500 : 3000;
    assert_int_equal(md_train_curve(7, steps, NULL, NULL, &r1), 0);
    printf("    MLP: train MSE %.4f -> %.6f, test MSE %.6f (threshold %.0e)\n", r1.first_loss, r1.final_loss,
           r1.metric, CURVE_MSE_MAX);
    assert_true(r1.final_loss < 0.05 * r1.first_loss);
    assert_true(r1.metric < CURVE_MSE_MAX);
    assert_int_equal(md_train_curve(7, steps, NULL, NULL, &r2), 0);
    assert_true(r1.param_crc == r2.param_crc);
}

static void test_cnn_shapes(void **st) {
    (void)st;
    md_toy_result r1 = {0}, r2 = {0};
    assert_int_equal(md_train_shapes(3, 4096, 10, NULL, NULL, &r1), 0);
    printf("    CNN: train loss %.4f -> %.4f, test accuracy %.1f %% (threshold 95 %%)\n", r1.first_loss,
           r1.final_loss, 100 * r1.metric);
    assert_true(r1.final_loss < r1.first_loss);
    assert_true(r1.metric >= 0.95);
    if (!tu_sanitized()) { // the repeat only re-proves determinism: once is enough under ASan
        assert_int_equal(md_train_shapes(3, 4096, 10, NULL, NULL, &r2), 0);
        assert_true(r1.param_crc == r2.param_crc);
    }
}

// The multi-branch ResNet-18 of train_bench at width 8, its parameters drawn from seed 5 (r left after them)
typedef struct small_net {
    md_net m;
    nn_store s;
    nn_ctx c;
    gn_rng r;
} small_net;
static void small_resnet(small_net *n) {
    md_net_multibranch(&n->m, 8);
    nn_store_init(&n->s);
    int rc = md_net_make(&n->m, &n->s) || nn_store_finalize(&n->s) || nn_ctx_init(&n->c, 64u << 20);
    assert_int_equal(rc, 0);
    gn_rng_seed(&n->r, 5, GN_STREAM_INIT);
    nn_store_reset_values(&n->s, &n->r);
}

// Input batches of B rows for small_resnet's two branches (5x32x32, 2x20x20), standard normal draws from r
static void resnet_inputs(int B, gn_rng *r, float **x1, float **x2) {
    size_t n1 = (size_t)B * 5 * 32 * 32, n2 = (size_t)B * 2 * 20 * 20;
    *x1 = malloc(sizeof(float) * n1), *x2 = malloc(sizeof(float) * n2);
    assert_true(*x1 && *x2);
    for (size_t i = 0; i < n1; i++) (*x1)[i] = (float)gn_rng_normal(r);
    for (size_t i = 0; i < n2; i++) (*x2)[i] = (float)gn_rng_normal(r);
}

// The multi-branch ResNet-18 (stride-2 stem, projection shortcuts, batch norm with running statistics
// moved by three training batches) evaluated without a tape (every conv + batch norm folded, the residual
// and ReLU in the conv's output pass: nn_conv_bn_act) against the same weights evaluated with the
// training graph (tape recorded, training = 0): outputs agree to 1e-5 of their scale. The inference by
// groups of rows gives the whole batch's outputs bit for bit: groups of 3 on 2 threads at once (each in a
// worker context), of 2 on one thread, and of 2 on 2 threads with the filter transforms kept (frozen)
// and shared by the workers; and so does the batch's first two stages by sub-groups of 4 rows and 2.
static void test_resnet_inference(void **st) {
    (void)st;
    small_net n;
    small_resnet(&n);
    for (size_t i = 0; i < n.s.n_param_floats; i++)
        n.s.data[i] += 0.02f * (float)gn_rng_normal(&n.r); // gamma, beta too
    enum { B = 6 };
    size_t n1 = (size_t)B * 5 * 32 * 32, n2 = (size_t)B * 2 * 20 * 20;
    float *x1 = malloc(sizeof(float) * n1), *x2 = malloc(sizeof(float) * n2), out[6][2 * B];
    int threads = gn_threads();
    for (int pass = 0; pass < 9; pass++) { // 3 training batches (running statistics move), then the 6 forms
        for (size_t i = 0; pass < 4 && i < n1; i++)
            x1[i] = (float)gn_rng_normal(&n.r) + (pass < 3 ? 0.5f : 0.0f);
        for (size_t i = 0; pass < 4 && i < n2; i++) x2[i] = 2 * (float)gn_rng_normal(&n.r);
        nn_ctx_reset(&n.c);
        n.c.training = pass < 3, n.c.grad_enabled = pass < 4;
        n.c.tune.infer_rows = pass < 5 || pass == 8 ? 0 : pass == 5 ? 4 : 2;
        n.c.tune.infer_front = pass == 8 ? 4 : 0;
        n.c.frozen = pass >= 7;
        gn_set_threads(pass == 6 ? 1 : pass > 4 ? 2 : threads);
        nn_tensor *in[2] = {nn_tensor_from(&n.c, NN_SHAPE(B, 5, 32, 32), x1),
                            nn_tensor_from(&n.c, NN_SHAPE(B, 2, 20, 20), x2)};
        nn_tensor *y = md_net_fwd(&n.c, &n.m, in);
        assert_non_null(y);
        assert_int_equal(y->n, 2 * B);
        if (pass >= 3) memcpy(out[pass - 3], y->data, sizeof(float) * 2 * B);
        if (pass == 3) assert_true(n.c.n_nodes > 0); // the graph form recorded its tape
    }
    gn_set_threads(threads);
    assert_int_equal(n.c.n_workers, 2);
    assert_non_null(n.c.wcache); // pass 7's transforms, made by the workers, kept in c
    for (int f = 2; f < 6; f++)
        for (int i = 0; i < 2 * B; i++) assert_true(out[f][i] == out[1][i]);
    int moved = 0; // running means away from 0 and variances from 1
    for (size_t i = 0; i < n.s.n_buffer_floats; i++)
        moved += fabsf(n.s.bufdata[i]) > 0.01f && fabsf(n.s.bufdata[i] - 1) > 0.01f;
    assert_true(moved > (int)n.s.n_buffer_floats / 2);
    double d = 0, scale = 1e-30;
    for (int i = 0; i < 2 * B; i++) {
        d = fmax(d, fabs(out[0][i] - out[1][i]));
        scale = fmax(scale, fabs(out[0][i]));
    }
    printf("    ResNet-18 inference: folded batch norm + fused epilogues differ from the graph by %.2e\n",
           d / scale);
    assert_true(d / scale <= 1e-5);
    assert_true(scale > 1e-3);
    free(x1), free(x2);
    nn_ctx_free(&n.c), nn_store_free(&n.s);
}

// Inference of the multi-branch ResNet-18 (width 8) on 16 rows (two 8-image groups; 12 and 4: a group with
// absent images) with each block's first conv output kept in its second conv's Winograd input layout
// (NN_ACT_WINO: the 16x16 and 10x10 stages' blocks, and so on down) against the same without: the same
// outputs bit for bit, the whole batch on one thread and two (and with the AVX2 kernels, whose 8-lane
// transforms take one slot at a time where AVX-512's take two), and by groups of 12 rows on one.
static void test_resnet_wino_layout(void **st) {
    (void)st;
    small_net n;
    small_resnet(&n);
    enum { B = 16 };
    float *x1, *x2, out[2][2 * B];
    resnet_inputs(B, &n.r, &x1, &x2);
    int threads = gn_threads();
    n.c.training = 0, n.c.grad_enabled = 0;
    for (int form = 0; form < 8; form++) {
        int il = form % 2;
        gn_set_threads(form < 2 || (form >= 4 && form < 6) ? 1 : 2);
        n.c.tune.infer_rows = form < 4 || form >= 6 ? 0 : 12, n.c.tune.infer_front = 0;
        n.c.tune.wino_il = il ? -1 : 0, n.c.tune.gemm_blas = form >= 6 ? NN_GEMM_AVX2 : NN_GEMM_BEST;
        nn_ctx_reset(&n.c);
        nn_tensor *in[2] = {nn_tensor_from(&n.c, NN_SHAPE(B, 5, 32, 32), x1),
                            nn_tensor_from(&n.c, NN_SHAPE(B, 2, 20, 20), x2)};
        nn_tensor *y = md_net_fwd(&n.c, &n.m, in);
        assert_non_null(y);
        int ref = form == 4 || form == 5; // groups of 12 rows (the last group's plan differs): against form 4
        if (form == 0 || form == 4) memcpy(out[ref], y->data, sizeof(float) * 2 * B);
        for (int i = 0; i < 2 * B; i++) assert_true(y->data[i] == out[ref][i]);
    }
    gn_set_threads(threads);
    free(x1), free(x2);
    nn_ctx_free(&n.c), nn_store_free(&n.s);
}

// Two training steps of the multi-branch ResNet-18 (width 8) with the stem's, the blocks' and the
// projections' outputs pooled — dropped after their readers and recomputed for backward, along chains of
// identity shortcuts — against the same steps with every activation kept: the same loss, parameter
// gradients and running statistics bit for bit, with fewer bytes kept in the arena.
static void test_resnet_pooled(void **st) {
    (void)st;
    enum { B = 4 };
    float *x1, *x2, y[2 * B], loss[2];
    gn_rng r;
    gn_rng_seed(&r, 9, GN_STREAM_INIT);
    resnet_inputs(B, &r, &x1, &x2);
    for (int i = 0; i < 2 * B; i++) y[i] = (float)gn_rng_normal(&r);
    float *grad[2] = {NULL, NULL}, *buf[2] = {NULL, NULL};
    size_t peak[2], ng = 0, nb = 0;
    for (int keep = 0; keep < 2; keep++) {
        small_net n;
        small_resnet(&n);
        n.c.tune.no_pool = keep;
        for (int step = 0; step < 2; step++) { // the second step from the running statistics of the first
            nn_ctx_reset(&n.c);
            nn_store_zero_grad(&n.s);
            nn_tensor *in[2] = {nn_tensor_wrap(&n.c, NN_SHAPE(B, 5, 32, 32), x1),
                                nn_tensor_wrap(&n.c, NN_SHAPE(B, 2, 20, 20), x2)};
            nn_tensor *L = md_net_loss(&n.c, &n.m, md_net_fwd(&n.c, &n.m, in), y, B);
            assert_non_null(L);
            assert_int_equal(nn_backward(&n.c, L), 0);
            loss[keep] = L->data[0];
        }
        peak[keep] = n.c.arena.peak, ng = n.s.n_param_floats, nb = n.s.n_buffer_floats;
        grad[keep] = malloc(sizeof(float) * ng), buf[keep] = malloc(sizeof(float) * nb);
        memcpy(grad[keep], n.s.grad, sizeof(float) * ng), memcpy(buf[keep], n.s.bufdata, sizeof(float) * nb);
        nn_ctx_free(&n.c), nn_store_free(&n.s);
    }
    assert_true(loss[0] == loss[1]);
    assert_memory_equal(grad[0], grad[1], sizeof(float) * ng);
    assert_memory_equal(buf[0], buf[1], sizeof(float) * nb);
    printf("    ResNet-18 pooled activations: identical loss and gradients; arena peak %zu instead of %zu "
           "bytes\n",
           peak[0], peak[1]);
    assert_true(peak[0] + 3 * sizeof(float) * B * 8 * 16 * 16 <= peak[1]); // at least cutouts' stem + stage 1
    for (int k = 0; k < 2; k++) free(grad[k]), free(buf[k]);
    free(x1), free(x2);
}

// A worker's rows of a team step (nn_team_step) of small_resnet: [lo, lo + n) of the batch
typedef struct team_part {
    const md_net *m;
    const float *x1, *x2, *y;
    int B, W, fail; // fail: worker 1 fails before its forward pass
    float loss[NN_TEAM_MAX];
} team_part;
static int team_fn(nn_ctx *w, int k, void *arg) {
    team_part *p = arg;
    int lo = p->B * k / p->W, n = p->B * (k + 1) / p->W - lo;
    if (p->fail && k == 1) return gn_err(GN_EIO, "worker 1 could not read its cutouts");
    nn_tensor *in[2] = {nn_tensor_wrap(w, NN_SHAPE(n, 5, 32, 32), p->x1 + (size_t)lo * 5 * 32 * 32),
                        nn_tensor_wrap(w, NN_SHAPE(n, 2, 20, 20), p->x2 + (size_t)lo * 2 * 20 * 20)};
    nn_tensor *L = md_net_loss(w, p->m, md_net_fwd(w, p->m, in), p->y + 2 * lo, n);
    if (!L) return GN_EINVAL;
    p->loss[k] = L->data[0];
    return nn_backward(w, L);
}

// Two training steps of small_resnet on a team of W workers: loss, gradients, running statistics.
static void team_steps(int W, int B, const float *x1, const float *x2, const float *y, float *loss,
                       float **grad, float **buf, size_t *ng, size_t *nb) {
    small_net n;
    small_resnet(&n);
    team_part p = {&n.m, x1, x2, y, B, W, 0, {0}};
    double share[NN_TEAM_MAX];
    for (int k = 0; k < W; k++) share[k] = (double)(B * (k + 1) / W - B * k / W) / B;
    for (int step = 0; step < 2; step++) { // the second step from the running statistics of the first
        assert_int_equal(nn_team_step(&n.c, &n.s, W, share, team_fn, &p), 0);
        *loss = 0;
        for (int k = 0; k < W; k++) *loss += (float)share[k] * p.loss[k];
    }
    *ng = n.s.n_param_floats, *nb = n.s.n_buffer_floats;
    *grad = malloc(sizeof(float) * *ng), *buf = malloc(sizeof(float) * *nb);
    memcpy(*grad, n.s.grad, sizeof(float) * *ng), memcpy(*buf, n.s.bufdata, sizeof(float) * *nb);
    p.fail = 1; // a worker's error ends the step with its message, the others not left waiting
    if (W > 1) {
        assert_int_not_equal(nn_team_step(&n.c, &n.s, W, share, team_fn, &p), 0);
        assert_non_null(strstr(gn_errmsg(), "worker 1 could not read its cutouts"));
    }
    nn_ctx_free(&n.c), nn_store_free(&n.s);
}

static double max_rel(const float *a, const float *b, size_t n) {
    double d = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - b[i]));
        s = fmax(s, fabs((double)b[i]));
    }
    return d / (s > 0 ? s : 1);
}

// A training step's rows cut among 2 and 3 workers, each alone on its thread with batch norm synchronised
// over them (nn_team_step), against the whole batch in one context: the same loss, parameter gradients
// and running statistics up to rounding (the sums' order), for parts of equal and of unequal rows (7
// rows in 2, 2 and 3) and for 2 workers of 2 threads each; the same bits when run again; a worker's
// failure is the step's error.
static void test_team_step(void **st) {
    (void)st;
    enum { B = 7 };
    float *x1, *x2, y[2 * B], loss[5];
    gn_rng r;
    gn_rng_seed(&r, 11, GN_STREAM_INIT);
    resnet_inputs(B, &r, &x1, &x2);
    for (int i = 0; i < 2 * B; i++) y[i] = (float)gn_rng_normal(&r);
    float *grad[5], *buf[5];
    size_t ng, nb;
    const int W[5] = {1, 2, 3, 2, 2};
    for (int t = 0; t < 5; t++) {
        gn_set_threads(t == 4 ? 4 : 2); // the last: 2 workers of 2 threads each (nested)
        team_steps(W[t], B, x1, x2, y, &loss[t], &grad[t], &buf[t], &ng, &nb);
    }
    gn_set_threads(2);
    for (int t = 1; t < 5; t += t == 2 ? 2 : 1) {
        double eg = max_rel(grad[t], grad[0], ng), eb = max_rel(buf[t], buf[0], nb);
        printf("    ResNet-18, 7 rows on %d workers of %d thread(s) against one context: loss %.7g / %.7g, "
               "gradients %.2g, running statistics %.2g (largest difference / largest value)\n",
               W[t], t == 4 ? 2 : 1, loss[t], loss[0], eg, eb);
        assert_true(fabs(loss[t] - loss[0]) <= 1e-5 * fabs(loss[0]));
        assert_true(eg < 2e-4 && eb < 1e-5);
    }
    assert_true(loss[3] == loss[1]);
    assert_memory_equal(grad[3], grad[1], sizeof(float) * ng);
    assert_memory_equal(buf[3], buf[1], sizeof(float) * nb);
    for (int t = 0; t < 5; t++) free(grad[t]), free(buf[t]);
    free(x1), free(x2);
}

int main(void) {
    gn_set_threads(2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mlp_curve),        cmocka_unit_test(test_cnn_shapes),
        cmocka_unit_test(test_resnet_inference), cmocka_unit_test(test_resnet_wino_layout),
        cmocka_unit_test(test_resnet_pooled),    cmocka_unit_test(test_team_step)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
