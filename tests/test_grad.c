// Finite-difference gradient checks for every op of the engine: float32
// central differences with h = 1e-2 on L = sum w_i out_i (random w, summed in
// double). Tolerance (TU_GC_DEFAULT): |a - n| <= 2e-4 + 1e-3 |n| per element.
// Justification: the truncation error is h^2 f'''/6 ~ 2e-5 for these O(1)
// smooth functions, and float32 rounding of L (|L| ~ 10, unit 6e-8) adds
// ~ 10 * 6e-8 / h ~ 6e-5. A gradient wrong by 1 % already fails (checked by
// mutating the conv bias gradient); real bugs miss by O(1).
// Kinks (relu, abs, max, l1) are avoided by drawing inputs away from them.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../nn/gemm.h"
#include "../nn/optim.h"
#include "testutil.h"

#define ARR(n) ((float[n]){0})
#define GC(what, f, user, ...)                                                                                  \
    do {                                                                                                        \
        tu_input in_[] = {__VA_ARGS__};                                                                         \
        tu_gradcheck(what, f, user, (int)(sizeof in_ / sizeof in_[0]), in_, TU_GC_DEFAULT);                     \
    } while (0)

// ---- unary ----

typedef struct {
    int k;
} ukind;

static nn_tensor *f_unary(nn_ctx *c, nn_tensor **x, void *u) {
    switch (((ukind *)u)->k) {
    case 0: return nn_relu(c, x[0]);
    case 1: return nn_leaky_relu(c, x[0], 0.2f);
    case 2: return nn_tanh(c, x[0]);
    case 3: return nn_sigmoid(c, x[0]);
    case 4: return nn_softplus(c, x[0]);
    case 5: return nn_elu(c, x[0], 1.0f);
    case 6: return nn_exp(c, x[0]);
    case 7: return nn_log(c, x[0]);
    case 8: return nn_sqrt(c, x[0]);
    case 9: return nn_abs(c, x[0]);
    case 10: return nn_scale(c, x[0], -1.5f, 0.3f);
    case 11: return nn_silu(c, x[0]);
    case 12: return nn_gelu(c, x[0]);
    default: return NULL;
    }
}

static void test_unary(void **st) {
    (void)st;
    static const char *names[] = {"relu", "leaky_relu", "tanh", "sigmoid", "softplus", "elu",
                                  "exp",  "log",        "sqrt", "abs",     "scale", "silu", "gelu"};
    for (int k = 0; k <= 12; k++) {
        float x[24];
        if (k == 7 || k == 8)
            tu_uniform(x, 24, 0.3f, 3.0f, 10 + k); // log/sqrt domain
        else
            tu_away_from_zero(x, 24, 0.1f, 2.0f, 10 + k);
        ukind u = {k};
        GC(names[k], f_unary, &u, tu_in(NN_SHAPE(2, 3, 4), x, 1));
    }
}

static nn_tensor *f_stopgrad(nn_ctx *c, nn_tensor **x, void *u) {
    (void)u;
    // y = x * sg(x): dy/dx = sg(x) only
    return nn_mul(c, x[0], nn_stop_gradient(c, x[0]));
}

static void test_stop_gradient(void **st) {
    (void)st;
    nn_ctx c;
    nn_ctx_init(&c, 1 << 16);
    float xv[3] = {1, -2, 3};
    nn_tensor *x = nn_tensor_from(&c, NN_SHAPE(3), xv);
    x->requires_grad = 1;
    nn_tensor *y = nn_sum(&c, f_stopgrad(&c, &x, NULL), NN_ALL_AXES, 0);
    assert_int_equal(nn_backward(&c, y), 0);
    for (int i = 0; i < 3; i++) assert_float_equal(x->grad[i], xv[i], 1e-6); // not 2x
    nn_ctx_free(&c);
}

// ---- binary with broadcasting ----

typedef struct {
    int op;
} bop;

static nn_tensor *f_binary(nn_ctx *c, nn_tensor **x, void *u) {
    switch (((bop *)u)->op) {
    case 0: return nn_add(c, x[0], x[1]);
    case 1: return nn_sub(c, x[0], x[1]);
    case 2: return nn_mul(c, x[0], x[1]);
    default: return nn_div(c, x[0], x[1]);
    }
}

static void test_binary_broadcast(void **st) {
    (void)st;
    static const int shapes[][2][4] = {
        // {ndim, d0, d1, d2} pairs
        {{3, 2, 3, 4}, {3, 2, 3, 4}}, // same shape
        {{3, 2, 3, 4}, {2, 3, 1, 0}}, // trailing (3,1)
        {{3, 4, 1, 5}, {3, 1, 3, 1}}, // both broadcast
        {{1, 1, 0, 0}, {2, 2, 5, 0}}, // scalar-like (1) vs (2,5)
        {{2, 3, 4, 0}, {3, 2, 1, 4}}, // rank extension
    };
    for (int s = 0; s < 5; s++)
        for (int op = 0; op < 4; op++) {
            float a[60], b[60];
            const int *sa = shapes[s][0], *sb = shapes[s][1];
            tu_away_from_zero(a, 60, 0.5f, 2.0f, 100 + s * 4 + op);
            tu_away_from_zero(b, 60, 0.5f, 2.0f, 200 + s * 4 + op);
            bop u = {op};
            char what[64];
            snprintf(what, sizeof what, "binary op %d shapes #%d", op, s);
            GC(what, f_binary, &u, tu_in(sa[0], sa + 1, a, 1), tu_in(sb[0], sb + 1, b, 1));
        }
}

static void test_broadcast_error(void **st) {
    (void)st;
    nn_ctx c;
    nn_ctx_init(&c, 1 << 16);
    nn_tensor *a = nn_tensor_zeros(&c, NN_SHAPE(2, 3)), *b = nn_tensor_zeros(&c, NN_SHAPE(4));
    assert_null(nn_add(&c, a, b));
    assert_non_null(strstr(gn_errmsg(), "broadcast"));
    assert_null(nn_add(&c, NULL, b)); // NULL propagates
    nn_ctx_free(&c);
}

// ---- reductions and shapes ----

typedef struct {
    unsigned mask;
    int keep, mean;
} redarg;

static nn_tensor *f_reduce(nn_ctx *c, nn_tensor **x, void *u) {
    redarg *r = u;
    return r->mean ? nn_mean(c, x[0], r->mask, r->keep) : nn_sum(c, x[0], r->mask, r->keep);
}

static void test_reduce(void **st) {
    (void)st;
    unsigned masks[] = {1, 2, 4, 5, 6, NN_ALL_AXES};
    for (int m = 0; m < 6; m++)
        for (int keep = 0; keep < 2; keep++)
            for (int mean = 0; mean < 2; mean++) {
                float x[24];
                tu_randn(x, 24, 1, 300 + m);
                redarg r = {masks[m], keep, mean};
                GC("sum/mean", f_reduce, &r, tu_in(NN_SHAPE(2, 3, 4), x, 1));
            }
    // value check: mean over axis 1 of (2,3)
    nn_ctx c;
    nn_ctx_init(&c, 1 << 16);
    nn_tensor *x = nn_tensor_from(&c, NN_SHAPE(2, 3), (float[]){1, 2, 3, 4, 5, 6});
    nn_tensor *y = nn_mean(&c, x, 2, 0);
    assert_int_equal(y->ndim, 1);
    assert_float_equal(y->data[0], 2, 1e-6);
    assert_float_equal(y->data[1], 5, 1e-6);
    y = nn_sum(&c, x, 1, 1);
    assert_int_equal(y->ndim, 2);
    assert_int_equal(y->shape[0], 1);
    assert_float_equal(y->data[2], 9, 1e-6);
    nn_ctx_free(&c);
}

static nn_tensor *f_reshape(nn_ctx *c, nn_tensor **x, void *u) {
    (void)u;
    return nn_mul(c, nn_reshape(c, x[0], NN_SHAPE(4, -1)), x[1]);
}

static nn_tensor *f_concat(nn_ctx *c, nn_tensor **x, void *u) { return nn_concat(c, 3, x, *(int *)u); }

static nn_tensor *f_slice(nn_ctx *c, nn_tensor **x, void *u) {
    (void)u;
    nn_tensor *p[3];
    if (nn_split(c, x[0], 1, 3, (int[]){1, 2, 1}, p)) return NULL;
    // use the parts unequally so each gets a distinct gradient
    return nn_concat(c, 3, (nn_tensor *[]){nn_scale(c, p[2], 3, 0), p[0], nn_slice(c, p[1], 1, 1, 2)}, 1);
}

static nn_tensor *f_transpose(nn_ctx *c, nn_tensor **x, void *u) {
    (void)u;
    return nn_transpose(c, x[0]);
}

static nn_tensor *f_logsoftmax(nn_ctx *c, nn_tensor **x, void *u) { return nn_log_softmax(c, x[0], *(int *)u); }
static nn_tensor *f_softmax(nn_ctx *c, nn_tensor **x, void *u) { return nn_softmax(c, x[0], *(int *)u); }

static void test_shape_ops(void **st) {
    (void)st;
    float a[24], b[24], cc[24];
    tu_randn(a, 24, 1, 401);
    tu_randn(b, 24, 1, 402);
    tu_randn(cc, 24, 1, 403);
    GC("reshape", f_reshape, NULL, tu_in(NN_SHAPE(2, 3, 4), a, 1), tu_in(NN_SHAPE(4, 6), b, 1));
    for (int axis = 0; axis < 3; axis++) {
        int s1[3] = {2, 3, 4}, s2[3] = {2, 3, 4}, s3[3] = {2, 3, 4};
        s2[axis] = 1;
        s3[axis] = 2;
        GC("concat", f_concat, &axis, tu_in(3, s1, a, 1), tu_in(3, s2, b, 1), tu_in(3, s3, cc, 1));
    }
    GC("split/slice", f_slice, NULL, tu_in(NN_SHAPE(2, 4, 3), a, 1));
    GC("transpose", f_transpose, NULL, tu_in(NN_SHAPE(2, 3, 4), a, 1));
    for (int axis = 0; axis < 3; axis++) {
        GC("log_softmax", f_logsoftmax, &axis, tu_in(NN_SHAPE(2, 3, 4), a, 1));
        GC("softmax", f_softmax, &axis, tu_in(NN_SHAPE(2, 3, 4), a, 1));
    }
}

// ---- dense ----

static nn_tensor *f_matmul(nn_ctx *c, nn_tensor **x, void *u) {
    (void)u;
    return nn_matmul(c, x[0], x[1]);
}
static nn_tensor *f_linear(nn_ctx *c, nn_tensor **x, void *u) { return nn_linear(c, x[0], x[1], *(int *)u ? x[2] : NULL); }

static void test_dense(void **st) {
    (void)st;
    float a[30], b[30], cc[5];
    tu_randn(a, 30, 1, 501);
    tu_randn(b, 30, 1, 502);
    tu_randn(cc, 5, 1, 503);
    GC("matmul", f_matmul, NULL, tu_in(NN_SHAPE(3, 4), a, 1), tu_in(NN_SHAPE(4, 5), b, 1));
    int bias = 1;
    GC("linear 3-D input", f_linear, &bias, tu_in(NN_SHAPE(2, 3, 4), a, 1), tu_in(NN_SHAPE(5, 4), b, 1),
       tu_in(NN_SHAPE(5), cc, 1));
    bias = 0;
    GC("linear no bias", f_linear, &bias, tu_in(NN_SHAPE(3, 4), a, 1), tu_in(NN_SHAPE(5, 4), b, 1));
}

// ---- convolutions ----

typedef struct {
    int sh, sw, oph, opw, bias;
    nn_pad2d pad;
} convarg;

static nn_tensor *f_conv(nn_ctx *c, nn_tensor **x, void *u) {
    convarg *a = u;
    return nn_conv2d(c, x[0], x[1], a->bias ? x[2] : NULL, a->sh, a->sw, a->pad);
}
static nn_tensor *f_convt(nn_ctx *c, nn_tensor **x, void *u) {
    convarg *a = u;
    return nn_conv_transpose2d(c, x[0], x[1], a->bias ? x[2] : NULL, a->sh, a->sw, a->pad, a->oph, a->opw);
}
static nn_tensor *f_conv1d(nn_ctx *c, nn_tensor **x, void *u) {
    convarg *a = u;
    return nn_conv1d(c, x[0], x[1], x[2], a->sw, a->pad.left, a->pad.right);
}
static nn_tensor *f_convt1d(nn_ctx *c, nn_tensor **x, void *u) {
    convarg *a = u;
    return nn_conv_transpose1d(c, x[0], x[1], x[2], a->sw, a->pad.left, a->opw);
}

static void test_conv(void **st) {
    (void)st;
    float x[2 * 3 * 7 * 6], w[4 * 3 * 3 * 3], b[4];
    tu_randn(x, sizeof x / 4, 1, 601);
    tu_randn(w, sizeof w / 4, 0.5f, 602);
    tu_randn(b, 4, 1, 603);
    // 3x3 stride 1 by each path: im2col, Winograd F(2x2, 3x3) and F(4x4, 3x3). The
    // F(4x4) forward rounds a few times worse (~3e-6 of |y| ~ 3 in the 16 outputs a
    // perturbed input reaches, over 2h): 2e-3 absolute; its exact adjoint is
    // checked against im2col to 1e-5 in test_winograd.
    convarg a1 = {1, 1, 0, 0, 1, nn_pad_sym(1)};
    for (int mode = -1; mode <= 4; mode++) {
        if (mode == 0 || mode == 1 || mode == 3) continue;
        tu_gc_opts o = TU_GC_DEFAULT;
        o.winograd = mode;
        if (mode == 4) o.atol = 2e-3;
        tu_input in[] = {tu_in(NN_SHAPE(2, 3, 7, 6), x, 1), tu_in(NN_SHAPE(4, 3, 3, 3), w, 1), tu_in(NN_SHAPE(4), b, 1)};
        tu_gradcheck("conv2d 3x3 s1 p1", f_conv, &a1, 3, in, o);
    }
    convarg a2 = {2, 2, 0, 0, 1, nn_pad_same(7, 6, 3, 3, 2, 2)};
    GC("conv2d SAME s2 (asymmetric)", f_conv, &a2, tu_in(NN_SHAPE(2, 3, 7, 6), x, 1),
       tu_in(NN_SHAPE(4, 3, 3, 3), w, 1), tu_in(NN_SHAPE(4), b, 1));
    convarg a3 = {1, 2, 0, 0, 0, {0, 1, 2, 0}};
    GC("conv2d 3x2 kernel, strides (1,2), uneven pads, no bias", f_conv, &a3, tu_in(NN_SHAPE(2, 3, 7, 6), x, 1),
       tu_in(NN_SHAPE(4, 3, 3, 2), w, 1));
    convarg a4 = {1, 1, 0, 0, 1, nn_pad_sym(0)};
    GC("conv2d 1x1", f_conv, &a4, tu_in(NN_SHAPE(2, 3, 7, 6), x, 1), tu_in(NN_SHAPE(4, 3, 1, 1), w, 1),
       tu_in(NN_SHAPE(4), b, 1));
    // transposed
    convarg t1 = {2, 2, 1, 1, 1, nn_pad_sym(1)};
    GC("conv_transpose2d s2 p1 op1", f_convt, &t1, tu_in(NN_SHAPE(2, 3, 4, 3), x, 1),
       tu_in(NN_SHAPE(3, 4, 3, 3), w, 1), tu_in(NN_SHAPE(4), b, 1));
    convarg t2 = {1, 2, 0, 0, 1, {0, 1, 1, 0}};
    GC("conv_transpose2d rect, uneven pads", f_convt, &t2, tu_in(NN_SHAPE(2, 3, 4, 3), x, 1),
       tu_in(NN_SHAPE(3, 4, 2, 3), w, 1), tu_in(NN_SHAPE(4), b, 1));
    // 1-D
    convarg c1 = {1, 2, 0, 0, 1, {0, 0, 2, 1}};
    GC("conv1d k3 s2", f_conv1d, &c1, tu_in(NN_SHAPE(2, 3, 11), x, 1), tu_in(NN_SHAPE(4, 3, 3), w, 1),
       tu_in(NN_SHAPE(4), b, 1));
    convarg c2 = {1, 2, 0, 1, 1, {0, 0, 1, 1}};
    GC("conv_transpose1d k4 s2 p1 op1", f_convt1d, &c2, tu_in(NN_SHAPE(2, 3, 6), x, 1),
       tu_in(NN_SHAPE(3, 4, 4), w, 1), tu_in(NN_SHAPE(4), b, 1));
}

static void test_conv_errors(void **st) {
    (void)st;
    nn_ctx c;
    nn_ctx_init(&c, 1 << 16);
    nn_tensor *x = nn_tensor_zeros(&c, NN_SHAPE(1, 3, 5, 5)), *w = nn_tensor_zeros(&c, NN_SHAPE(4, 2, 3, 3));
    assert_null(nn_conv2d(&c, x, w, NULL, 1, 1, nn_pad_sym(0)));
    assert_non_null(strstr(gn_errmsg(), "channels"));
    nn_tensor *w7 = nn_tensor_zeros(&c, NN_SHAPE(4, 3, 7, 7));
    assert_null(nn_conv2d(&c, x, w7, NULL, 1, 1, nn_pad_sym(0)));
    assert_null(nn_conv_transpose2d(&c, x, nn_tensor_zeros(&c, NN_SHAPE(3, 2, 3, 3)), NULL, 2, 2, nn_pad_sym(0), 2, 0));
    nn_ctx_free(&c);
}

// ---- pooling / resize ----

typedef struct {
    int kind, kh, kw, sh, sw, count_pad;
    nn_pad2d pad;
} poolarg;

static nn_tensor *f_pool(nn_ctx *c, nn_tensor **x, void *u) {
    poolarg *p = u;
    switch (p->kind) {
    case 0: return nn_maxpool2d(c, x[0], p->kh, p->kw, p->sh, p->sw, p->pad);
    case 1: return nn_avgpool2d(c, x[0], p->kh, p->kw, p->sh, p->sw, p->pad, p->count_pad);
    case 2: return nn_global_avgpool(c, x[0]);
    case 3: return nn_upsample2x(c, x[0]);
    default: return nn_resize_bilinear(c, x[0], 7, 3);
    }
}

static void test_pool(void **st) {
    (void)st;
    // distinct values spaced 0.05 apart: no ties within 2h, so max is smooth
    float x[2 * 3 * 7 * 7];
    size_t n = sizeof x / 4;
    uint32_t *perm = malloc(sizeof(uint32_t) * n);
    gn_rng r;
    gn_rng_seed(&r, 7, 1);
    gn_rng_permutation(&r, perm, n);
    for (size_t i = 0; i < n; i++) x[i] = 0.05f * (float)perm[i] - 7.0f;
    free(perm);
    poolarg m1 = {0, 3, 3, 2, 2, 0, nn_pad_sym(1)};
    GC("maxpool 3x3 s2 p1", f_pool, &m1, tu_in(NN_SHAPE(2, 3, 7, 7), x, 1));
    poolarg m2 = {0, 2, 2, 2, 2, 0, nn_pad_sym(0)};
    GC("maxpool 2x2", f_pool, &m2, tu_in(NN_SHAPE(2, 3, 7, 7), x, 1));
    poolarg a1 = {1, 3, 3, 2, 2, 1, nn_pad_sym(1)};
    GC("avgpool count pad", f_pool, &a1, tu_in(NN_SHAPE(2, 3, 7, 7), x, 1));
    poolarg a2 = {1, 2, 2, 1, 1, 0, {0, 1, 0, 1}};
    GC("avgpool TF SAME exclude pad", f_pool, &a2, tu_in(NN_SHAPE(2, 3, 7, 7), x, 1));
    poolarg a3 = {1, 3, 3, 2, 1, 1, {1, 0, 2, 1}}; // stride 1 along rows only, uneven padding
    GC("avgpool 3x3 s(2, 1) count pad", f_pool, &a3, tu_in(NN_SHAPE(2, 3, 7, 7), x, 1));
    poolarg g = {2, 0, 0, 0, 0, 0, nn_pad_sym(0)};
    GC("global avgpool", f_pool, &g, tu_in(NN_SHAPE(2, 3, 7, 7), x, 1));
    poolarg u2 = {3, 0, 0, 0, 0, 0, nn_pad_sym(0)};
    GC("bilinear x2", f_pool, &u2, tu_in(NN_SHAPE(2, 3, 4, 5), x, 1));
    poolarg u3 = {4, 0, 0, 0, 0, 0, nn_pad_sym(0)};
    GC("bilinear 4x5 -> 7x3", f_pool, &u3, tu_in(NN_SHAPE(2, 3, 4, 5), x, 1));
}

// TF1 resize_images (align_corners=False): src = dst * in/out, clamped.
static void test_bilinear_known(void **st) {
    (void)st;
    nn_ctx c;
    nn_ctx_init(&c, 1 << 16);
    nn_tensor *x = nn_tensor_from(&c, NN_SHAPE(1, 1, 2, 2), (float[]){0, 1, 2, 3});
    nn_tensor *y = nn_upsample2x(&c, x);
    float want[16] = {0, 0.5f, 1, 1, 1, 1.5f, 2, 2, 2, 2.5f, 3, 3, 2, 2.5f, 3, 3};
    for (int i = 0; i < 16; i++) assert_float_equal(y->data[i], want[i], 1e-6);
    nn_ctx_free(&c);
}

// ---- batch norm / dropout ----

typedef struct {
    float rm[8], rv[8];
} bnarg;

static nn_tensor *f_bn(nn_ctx *c, nn_tensor **x, void *u) {
    bnarg *b = u;
    int C = x[0]->shape[1];
    nn_tensor *rm = nn_tensor_from(c, NN_SHAPE(C), b->rm), *rv = nn_tensor_from(c, NN_SHAPE(C), b->rv);
    return nn_batchnorm(c, x[0], x[1], x[2], rm, rv, 0.1f, 1e-5f);
}

static void test_batchnorm(void **st) {
    (void)st;
    float x[4 * 3 * 5], g[3], b[3];
    tu_randn(x, sizeof x / 4, 2, 701);
    tu_randn(g, 3, 1, 702);
    tu_randn(b, 3, 1, 703);
    bnarg ba = {{0.1f, -0.2f, 0.3f}, {0.5f, 1.5f, 2.0f}};
    tu_gc_opts o = TU_GC_DEFAULT;
    tu_input in4[] = {tu_in(NN_SHAPE(4, 3, 5, 1), x, 1), tu_in(NN_SHAPE(3), g, 1), tu_in(NN_SHAPE(3), b, 1)};
    tu_gradcheck("batchnorm train 4-D", f_bn, &ba, 3, in4, o);
    tu_input in2[] = {tu_in(NN_SHAPE(6, 3), x, 1), tu_in(NN_SHAPE(3), g, 1), tu_in(NN_SHAPE(3), b, 1)};
    tu_gradcheck("batchnorm train (N, C)", f_bn, &ba, 3, in2, o);
    o.training = 0;
    tu_gradcheck("batchnorm eval", f_bn, &ba, 3, in4, o);
}

// Layer norm and group norm (with and without affine), and their known values.
static nn_tensor *f_ln(nn_ctx *c, nn_tensor **x, void *u) {
    return *(int *)u ? nn_layernorm(c, x[0], x[1], x[2], 1e-5f) : nn_layernorm(c, x[0], NULL, NULL, 1e-5f);
}
static nn_tensor *f_gn(nn_ctx *c, nn_tensor **x, void *u) {
    return *(int *)u ? nn_groupnorm(c, x[0], 2, x[1], x[2], 1e-5f) : nn_groupnorm(c, x[0], 3, NULL, NULL, 1e-5f);
}

static void test_group_layer_norm(void **st) {
    (void)st;
    float x[4 * 6 * 5], g[6], b[6];
    tu_randn(x, sizeof x / 4, 2, 711), tu_randn(g, 6, 1, 712), tu_randn(b, 6, 1, 713);
    int aff = 1, no = 0;
    GC("layernorm (N, D)", f_ln, &aff, tu_in(NN_SHAPE(5, 6), x, 1), tu_in(NN_SHAPE(6), g, 1),
       tu_in(NN_SHAPE(6), b, 1));
    GC("layernorm 3-D, no affine", f_ln, &no, tu_in(NN_SHAPE(2, 5, 6), x, 1));
    GC("groupnorm 2 groups", f_gn, &aff, tu_in(NN_SHAPE(4, 6, 5, 1), x, 1), tu_in(NN_SHAPE(6), g, 1),
       tu_in(NN_SHAPE(6), b, 1));
    GC("groupnorm 3 groups, no affine", f_gn, &no, tu_in(NN_SHAPE(2, 6, 2, 5), x, 1));
    // known values: each row of a layer norm has mean 0 and biased variance 1/(1 + eps/var)
    nn_ctx c;
    nn_ctx_init(&c, 0);
    nn_tensor *t = nn_tensor_from(&c, NN_SHAPE(5, 6), x), *y = nn_layernorm(&c, t, NULL, NULL, 0);
    assert_non_null(y);
    for (int r = 0; r < 5; r++) {
        double m = 0, v = 0;
        for (int j = 0; j < 6; j++) m += y->data[r * 6 + j] / 6.0;
        for (int j = 0; j < 6; j++) v += (y->data[r * 6 + j] - m) * (y->data[r * 6 + j] - m) / 6.0;
        assert_float_equal(m, 0, 1e-6), assert_float_equal(v, 1, 1e-5);
    }
    assert_null(nn_groupnorm(&c, nn_tensor_from(&c, NN_SHAPE(2, 6, 5), x), 4, NULL, NULL, 1e-5f));
    assert_non_null(strstr(gn_errmsg(), "do not split into 4 groups"));
    nn_ctx_free(&c);
}

static nn_tensor *f_dropout(nn_ctx *c, nn_tensor **x, void *u) {
    (void)u;
    return nn_dropout(c, x[0], 0.3f);
}

static void test_dropout(void **st) {
    (void)st;
    float x[200];
    tu_randn(x, 200, 1, 801);
    GC("dropout", f_dropout, NULL, tu_in(NN_SHAPE(200), x, 1));
    // the kept fraction is about 1 - p and kept values are scaled by 1/(1-p)
    nn_ctx c;
    nn_ctx_init(&c, 1 << 20);
    nn_tensor *ones = nn_tensor_new(&c, NN_SHAPE(20000));
    for (int i = 0; i < 20000; i++) ones->data[i] = 1;
    nn_tensor *y = nn_dropout(&c, ones, 0.3f);
    int kept = 0;
    for (int i = 0; i < 20000; i++) {
        if (y->data[i] != 0) {
            kept++;
            assert_float_equal(y->data[i], 1 / 0.7f, 1e-6);
        }
    }
    assert_in_range(kept, 13700, 14300); // 14000 +- 4.7 sigma
    c.training = 0;
    assert_ptr_equal(nn_dropout(&c, ones, 0.3f), ones);
    nn_ctx_free(&c);
}

// ---- losses ----

static const int32_t LABELS[4] = {0, 6, 3, 3};

static nn_tensor *f_loss(nn_ctx *c, nn_tensor **x, void *u) {
    switch (*(int *)u) {
    case 0: return nn_mse_loss(c, x[0], x[1]);
    case 1: return nn_l1_loss(c, x[0], x[1]);
    case 2: return nn_cross_entropy(c, x[0], LABELS);
    case 3: return nn_cross_entropy_soft(c, x[0], nn_softmax(c, x[1], 1));
    case 4: return nn_bce_with_logits(c, x[0], x[1]);
    case 5: return nn_gaussian_nll(c, x[0], x[1], x[2], 1);
    default: return nn_kl_normal(c, x[0], x[1]);
    }
}

static void test_losses(void **st) {
    (void)st;
    float a[28], b[28], y[28], t01[28];
    tu_randn(a, 28, 1, 901);
    tu_away_from_zero(b, 28, 0.2f, 1.0f, 902); // l1: keep a-b away from 0
    for (int i = 0; i < 28; i++) b[i] = a[i] + b[i];
    tu_randn(y, 28, 1, 903);
    for (int i = 0; i < 28; i++) t01[i] = (float)(i % 3 == 0);
    int k;
    k = 0;
    GC("mse", f_loss, &k, tu_in(NN_SHAPE(4, 7), a, 1), tu_in(NN_SHAPE(4, 7), y, 1));
    k = 1;
    GC("l1", f_loss, &k, tu_in(NN_SHAPE(4, 7), a, 1), tu_in(NN_SHAPE(4, 7), b, 1));
    k = 2;
    GC("cross_entropy", f_loss, &k, tu_in(NN_SHAPE(4, 7), a, 1));
    // soft targets get no gradient (stop-gradient): only the logits are checked,
    // and the target's tensor is verified to receive none below
    k = 3;
    GC("cross_entropy_soft", f_loss, &k, tu_in(NN_SHAPE(4, 7), a, 1), tu_in(NN_SHAPE(4, 7), y, 0));
    k = 4;
    GC("bce_with_logits", f_loss, &k, tu_in(NN_SHAPE(4, 7), a, 1), tu_in(NN_SHAPE(4, 7), t01, 0));
    float lv[28];
    tu_randn(lv, 28, 0.5f, 904);
    k = 5;
    GC("gaussian_nll", f_loss, &k, tu_in(NN_SHAPE(4, 7), a, 1), tu_in(NN_SHAPE(4, 7), lv, 1),
              tu_in(NN_SHAPE(4, 7), y, 1));
    k = 6;
    GC("kl_normal", f_loss, &k, tu_in(NN_SHAPE(4, 7), a, 1), tu_in(NN_SHAPE(4, 7), lv, 1));

    // stop-gradient of soft targets: q computed from a tensor that requires grad
    nn_ctx c;
    nn_ctx_init(&c, 1 << 16);
    nn_tensor *lg = nn_tensor_from(&c, NN_SHAPE(4, 7), a), *z = nn_tensor_from(&c, NN_SHAPE(4, 7), y);
    lg->requires_grad = z->requires_grad = 1;
    nn_tensor *L = nn_cross_entropy_soft(&c, lg, nn_softmax(&c, z, 1));
    assert_int_equal(nn_backward(&c, L), 0);
    assert_null(z->grad);
    assert_non_null(lg->grad);
    // bad label
    assert_null(nn_cross_entropy(&c, lg, (int32_t[]){0, 7, 0, 0}));
    assert_non_null(strstr(gn_errmsg(), "label 7"));
    nn_ctx_free(&c);
}


// ---- contrastive losses (spec/stats.md §E) ----

typedef struct {
    int kind; // 0 SupCon with labels, 1 SimCLR, 2 RnC
    const int32_t *lab;
    const float *y;
    float tau, base;
} cl_args;

static nn_tensor *f_contrast(nn_ctx *c, nn_tensor **x, void *u) {
    const cl_args *a = u;
    if (a->kind == 2) return nn_rnc_loss(c, x[0], 2, a->y, 2, a->tau);
    return nn_supcon_loss(c, x[0], 2, a->kind == 0 ? a->lab : NULL, a->tau, a->base);
}

static void test_contrastive(void **st) {
    (void)st;
    nn_ctx c;
    nn_ctx_init(&c, 1 << 20);
    // §E.1 known answers: B = 2, V = 2, sample 0's views e1, sample 1's e2
    float e[8] = {1, 0, 0, 1, 1, 0, 0, 1}; // view-major rows: v0 s0, v0 s1, v1 s0, v1 s1
    struct {
        const int32_t *lab;
        float tau;
        double want;
    } ka[] = {{(int32_t[]){0, 1}, 1, 0.5514447139320511},
              {(int32_t[]){0, 0}, 1, 1.2181113805987176},
              {NULL, 1, 0.5514447139320511},
              {(int32_t[]){0, 1}, 0.07f, 1.24974912085e-06}};
    for (int k = 0; k < 4; k++) {
        nn_ctx_reset(&c);
        nn_tensor *L = nn_supcon_loss(&c, nn_tensor_from(&c, NN_SHAPE(4, 2), e), 2, ka[k].lab, ka[k].tau, ka[k].tau);
        assert_non_null(L);
        assert_true(fabs(L->data[0] - ka[k].want) <= 1e-5 * ka[k].want); // float32 output: 1e-5 relative (§E.1)
    }
    // values and gradients against PyTorch float64 (tools/make_contrastive_ref.py)
    io_npz z;
    assert_int_equal(io_npz_read(tu_data("contrastive_ref.npz"), &z), 0);
    float *f = tu_npz_f32(&z, "f"), *y = tu_npz_f32(&z, "y");
    const io_array *la = tu_npz_get(&z, "labels");
    int32_t lab[5];
    memcpy(lab, la->data, sizeof lab);
    const char *names[3] = {"supcon_labels", "supcon_simclr", "rnc"};
    cl_args args[3] = {{0, lab, y, 0.1f, 0.07f}, {1, lab, y, 0.5f, 0.5f}, {2, lab, y, 2.0f, 0}};
    for (int k = 0; k < 3; k++) {
        nn_ctx_reset(&c);
        nn_tensor *F = nn_tensor_from(&c, NN_SHAPE(10, 3), f);
        F->requires_grad = 1;
        nn_tensor *in[1] = {F};
        nn_tensor *L = f_contrast(&c, in, &args[k]);
        assert_non_null(L);
        assert_int_equal(nn_backward(&c, L), 0);
        char gname[64];
        snprintf(gname, sizeof gname, "%s_grad", names[k]);
        float *want = tu_npz_f32(&z, names[k]), *gw = tu_npz_f32(&z, gname);
        tu_check_close(names[k], L->data, want, 1, 1e-5);
        tu_check_close(gname, F->grad, gw, 30, 1e-5);
        free(want), free(gw);
        // and by finite differences
        GC(names[k], f_contrast, &args[k], tu_in(NN_SHAPE(10, 3), f, 1));
    }
    // bad shapes are errors
    nn_ctx_reset(&c);
    assert_null(nn_supcon_loss(&c, nn_tensor_from(&c, NN_SHAPE(3, 3), f), 2, NULL, 0.1f, 0.1f));
    assert_non_null(strstr(gn_errmsg(), "supcon_loss"));
    free(f), free(y);
    io_npz_free(&z);
    nn_ctx_free(&c);
}

// ---- tape mechanics ----

static void test_grad_accumulates(void **st) {
    (void)st;
    // y = x*x + x*x through two paths and two backward passes into a param
    nn_store s;
    nn_store_init(&s);
    nn_tensor *p = nn_store_param(&s, "p", NN_SHAPE(2), nn_init_const(3));
    assert_int_equal(nn_store_finalize(&s), 0);
    gn_rng r;
    gn_rng_seed(&r, 1, 1);
    nn_store_reset_values(&s, &r);
    nn_ctx c;
    nn_ctx_init(&c, 1 << 16);
    for (int pass = 1; pass <= 2; pass++) {
        nn_ctx_reset(&c);
        nn_tensor *y = nn_sum(&c, nn_add(&c, nn_mul(&c, p, p), nn_mul(&c, p, p)), NN_ALL_AXES, 0);
        assert_int_equal(nn_backward(&c, y), 0);
        assert_float_equal(p->grad[0], pass * 12.0f, 1e-5); // d(2p^2)/dp = 4p = 12, accumulated
    }
    nn_store_zero_grad(&s);
    assert_float_equal(p->grad[1], 0, 0);
    nn_ctx_free(&c);
    nn_store_free(&s);
}

static void test_arena_no_growth(void **st) {
    (void)st;
    // After the first step the arena allocates nothing: later steps reuse its blocks, in order, at the
    // same addresses (pages once faulted in stay mapped), and a released scope's blocks are reused too.
    nn_ctx c;
    nn_ctx_init(&c, 1 << 16); // deliberately small: the first step must grow it
    float *first[2] = {NULL, NULL};
    size_t cap = 0;
    for (int step = 0; step < 3; step++) {
        nn_ctx_reset(&c);
        nn_tensor *x = nn_tensor_zeros(&c, NN_SHAPE(64, 1024));
        for (int k = 0; k < 4; k++) x = nn_tanh(&c, x);
        assert_non_null(x);
        if (step == 0) first[0] = x->data;
        if (step > 0) assert_ptr_equal(x->data, first[0]);
        nn_arena_mark m = nn_arena_get_mark(&c.arena);
        float *big = nn_arena_alloc(&c.arena, 8u << 20); // beyond every block: a new one, released
        assert_non_null(big);
        if (step == 0) first[1] = big;
        assert_ptr_equal(big, first[1]);
        nn_arena_release(&c.arena, m);
        assert_int_equal(c.arena.used, m.total);
        if (step == 0) cap = c.arena.total_cap;
        assert_int_equal(c.arena.total_cap, cap); // nothing new after the first step
    }
    nn_ctx_free(&c);
}

// ---- the fast paths against the plain ones ----

// largest |a - b| relative to the largest |b|
static double rel_diff(const float *a, const float *b, size_t n) {
    double d = 0, m = 1e-30;
    for (size_t i = 0; i < n; i++) {
        if (fabs((double)a[i] - b[i]) > d) d = fabs((double)a[i] - b[i]);
        if (fabs((double)b[i]) > m) m = fabs((double)b[i]);
    }
    return d / m;
}

// conv2d by groups of images (from im2col columns and from stride phases, by each product kernel: the same
// bits but by cblas_sgemm) and by one im2col + sgemm over the batch against
// a direct float64 convolution (output, input and weight gradients) on shapes
// with strides 1-3 (the stride-2 row copy's vector body and its edges), 1x1,
// 3x3 and 7x7 kernels, uneven padding and K = C*kh*kw on both sides of the
// size rule's 640.
static void test_conv_paths(void **st) {
    (void)st;
    struct {
        int N, C, O, H, W, k, s;
        nn_pad2d pad;
    } cs[] = {
        {3, 4, 5, 20, 41, 3, 2, {1, 1, 1, 1}},  {2, 3, 4, 37, 40, 7, 2, {3, 3, 3, 2}}, {5, 6, 3, 18, 35, 1, 2, {0, 0, 0, 0}},
        {2, 80, 6, 9, 34, 3, 2, {1, 0, 2, 1}}, {4, 2, 3, 17, 19, 3, 3, {0, 1, 1, 0}},  {3, 5, 4, 6, 7, 3, 1, {1, 1, 1, 1}},
    };
    for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++) {
        int N = cs[k].N, C = cs[k].C, O = cs[k].O, H = cs[k].H, W = cs[k].W, kk = cs[k].k, s = cs[k].s;
        nn_pad2d pd = cs[k].pad;
        int Ho = (H + pd.top + pd.bottom - kk) / s + 1, Wo = (W + pd.left + pd.right - kk) / s + 1;
        size_t nx = (size_t)N * C * H * W, nw = (size_t)O * C * kk * kk, ny = (size_t)N * O * Ho * Wo;
        float *x = malloc(sizeof(float) * nx), *w = malloc(sizeof(float) * nw), *r = malloc(sizeof(float) * ny), b[8];
        tu_randn(x, nx, 1, 50 + k), tu_randn(w, nw, 0.3f, 60 + k), tu_randn(r, ny, 1, 70 + k), tu_randn(b, 8, 1, 80 + k);
        double *y0 = calloc(ny, sizeof(double)), *gx0 = calloc(nx, sizeof(double)), *gw0 = calloc(nw, sizeof(double));
        for (int n = 0; n < N; n++)
            for (int o = 0; o < O; o++)
                for (int oh = 0; oh < Ho; oh++)
                    for (int ow = 0; ow < Wo; ow++) {
                        size_t yi = (((size_t)n * O + o) * Ho + oh) * Wo + ow;
                        y0[yi] = b[o];
                        for (int c = 0; c < C; c++)
                            for (int i = 0; i < kk; i++)
                                for (int j = 0; j < kk; j++) {
                                    int ih = oh * s - pd.top + i, iw = ow * s - pd.left + j;
                                    if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                                    size_t xi = (((size_t)n * C + c) * H + ih) * W + iw,
                                           wi = (((size_t)o * C + c) * kk + i) * kk + j;
                                    y0[yi] += (double)w[wi] * x[xi];
                                    gx0[xi] += (double)w[wi] * r[yi];
                                    gw0[wi] += (double)x[xi] * r[yi];
                                }
                    }
        float *best = NULL; // the groups' output with the best kernel, for the bit comparison with AVX2
        for (int way = 0; way < 7; way++) { // groups from im2col, then from phases, by each product kernel
            int path = way == 6, blas = way < 6 ? way % 3 : NN_GEMM_BEST;
            nn_ctx c;
            nn_ctx_init(&c, 1 << 20);
            c.winograd = 0, c.tune.conv_batched = path, c.tune.gemm_blas = blas, c.tune.conv_phases = way / 3;
            nn_tensor *tx = nn_tensor_from(&c, NN_SHAPE(N, C, H, W), x), *tw = nn_tensor_from(&c, NN_SHAPE(O, C, kk, kk), w);
            nn_tensor *tb = nn_tensor_from(&c, NN_SHAPE(O), b);
            tx->requires_grad = tw->requires_grad = tb->requires_grad = 1;
            nn_tensor *y = nn_conv2d(&c, tx, tw, tb, s, s, pd);
            assert_non_null(y);
            assert_int_equal(y->n, ny);
            nn_tensor *L = nn_sum(&c, nn_mul(&c, y, nn_tensor_from(&c, y->ndim, y->shape, r)), 0xF, 0);
            assert_int_equal(nn_backward(&c, L), 0);
            const float *got[3] = {y->data, tx->grad, tw->grad};
            const double *want[3] = {y0, gx0, gw0};
            size_t cnt[3] = {ny, nx, nw};
            for (int q = 0; q < 3; q++) {
                double d = 0, m = 1e-30;
                for (size_t i = 0; i < cnt[q]; i++) {
                    if (fabs(got[q][i] - want[q][i]) > d) d = fabs(got[q][i] - want[q][i]);
                    if (fabs(want[q][i]) > m) m = fabs(want[q][i]);
                }
                const char *how = path ? "batched" : way < 3 ? "groups, im2col" : "groups, phases";
                fprintf(stderr, "conv %s (%s) case %zu: %s differs by %.2e\n", how, nn_gemm_kernel(blas), k,
                        q == 0 ? "output" : q == 1 ? "input gradient" : "weight gradient", d / m);
                assert_true(d / m <= 2e-6);
            }
            if (way == 0) best = malloc(sizeof(float) * ny), memcpy(best, y->data, sizeof(float) * ny);
            if (way % 3 != NN_GEMM_BLAS && way < 6) // from phases as from im2col, by AVX-512 as by AVX2
                assert_memory_equal(best, y->data, sizeof(float) * ny);
            nn_ctx_free(&c);
        }
        free(best);
        free(x), free(w), free(r), free(y0), free(gx0), free(gw0);
    }
}

// ctx->tune.gemm_blas of wino_run's contexts
static int wino_blas = NN_GEMM_BEST;

// One conv (N, C, H, W) * (O, C, kk, kk) + b, stride 1, on a context set as `wino` (ctx->winograd),
// `layout` and `batch` (ctx->tune), then backward of sum(y * r) with r drawn from `seed`: res[0..3] get
// malloc'ed copies of the output and the input, weight and bias gradients; returns the output's size.
static size_t wino_run(int N, int C, int O, int H, int W, int kk, int stride, nn_pad2d pad, const float *x,
                       const float *w, const float *b, unsigned seed, int wino, int layout, int batch,
                       float **res) {
    size_t nx = (size_t)N * C * H * W, nw = (size_t)O * C * kk * kk;
    nn_ctx c;
    nn_ctx_init(&c, 1 << 20);
    c.winograd = wino, c.tune.wino_layout = layout, c.tune.wino_batch = batch, c.tune.wino_s2 = stride == 2;
    c.tune.gemm_blas = wino_blas;
    nn_tensor *tx = nn_tensor_from(&c, NN_SHAPE(N, C, H, W), x),
              *tw = nn_tensor_from(&c, NN_SHAPE(O, C, kk, kk), w);
    nn_tensor *tb = nn_tensor_from(&c, NN_SHAPE(O), b);
    tx->requires_grad = tw->requires_grad = tb->requires_grad = 1;
    nn_tensor *y = nn_conv2d(&c, tx, tw, tb, stride, stride, pad);
    assert_non_null(y);
    size_t ny = y->n;
    float *r = malloc(sizeof(float) * ny);
    tu_randn(r, ny, 1, seed);
    nn_tensor *L = nn_sum(&c, nn_mul(&c, y, nn_tensor_from(&c, y->ndim, y->shape, r)), 0xF, 0);
    assert_int_equal(nn_backward(&c, L), 0);
    res[0] = malloc(sizeof(float) * ny), memcpy(res[0], y->data, sizeof(float) * ny);
    res[1] = malloc(sizeof(float) * nx), memcpy(res[1], tx->grad, sizeof(float) * nx);
    res[2] = malloc(sizeof(float) * nw), memcpy(res[2], tw->grad, sizeof(float) * nw);
    res[3] = malloc(sizeof(float) * (size_t)O), memcpy(res[3], tb->grad, sizeof(float) * (size_t)O);
    free(r);
    nn_ctx_free(&c);
    return ny;
}

// wino_run with the AVX2 kernels (tune.gemm_blas = NN_GEMM_AVX2), where the image-vector transforms take
// one 8-lane slot at a time (two per 16-lane vector where the AVX-512 kernels run): the same bits as res
// (n[4]: the output's and gradients' sizes)
static void wino_same_avx2(int N, int C, int O, int H, int W, int kk, int stride, nn_pad2d pad,
                           const float *x, const float *w, const float *b, unsigned seed, int wino,
                           int layout, int batch, float **res, const size_t *n) {
    float *t[4];
    wino_blas = NN_GEMM_AVX2;
    wino_run(N, C, O, H, W, kk, stride, pad, x, w, b, seed, wino, layout, batch, t);
    wino_blas = NN_GEMM_BEST;
    for (int q = 0; q < 4; q++) assert_memory_equal(t[q], res[q], sizeof(float) * n[q]), free(t[q]);
}

// conv2d output and every gradient with Winograd F(2x2, 3x3), F(3x3, 3x3), F(4x4, 3x3) and F(6x6, 3x3)
// vs im2col + GEMM, on shapes that exercise the vector interior, the border
// tiles, odd sizes and uneven padding; they agree to float rounding (measured
// worst 1.1e-6 for F(2x2), 4.1e-6 for F(3x3), 6.1e-6 for F(4x4), whose transforms carry factors
// up to 8, and 7.4e-6 for F(6x6), up to 32; one wrong sign in a transform gives 0.97 and 2.6). The
// 320-channel case takes the batch path
// by blocks of rows of the transforms (its bounds grow as sqrt(C / 16) with the sums' length).
static void test_winograd(void **st) {
    (void)st;
    struct {
        int N, C, O, H, W;
        nn_pad2d pad;
    } cs[] = {
        {2, 3, 5, 37, 35, {1, 1, 1, 1}}, {2, 4, 6, 16, 16, {0, 0, 0, 0}}, {1, 5, 4, 33, 40, {2, 1, 0, 2}},
        {3, 2, 3, 5, 3, {1, 1, 1, 1}},   {1, 3, 2, 2, 2, {1, 1, 1, 1}},   {2, 8, 16, 34, 18, {1, 0, 1, 2}},
        {7, 5, 8, 16, 16, {1, 1, 1, 1}}, {3, 5, 8, 64, 64, {1, 1, 1, 1}}, {19, 3, 5, 4, 4, {1, 1, 1, 1}},
        {9, 4, 6, 3, 3, {1, 1, 1, 1}},   {17, 3, 4, 13, 6, {1, 1, 0, 2}}, {8, 2, 3, 12, 12, {1, 1, 1, 1}},
        {9, 320, 320, 4, 4, {1, 1, 1, 1}}, // the batch path by blocks of rows of U and dU (2 of 6, 3 of 4)
    };
    for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++) {
        size_t nx = (size_t)cs[k].N * cs[k].C * cs[k].H * cs[k].W, nw = (size_t)cs[k].O * cs[k].C * 9;
        float *x = malloc(sizeof(float) * nx), *w = malloc(sizeof(float) * nw), b[320];
        tu_randn(x, nx, 1, 10 + k), tu_randn(w, nw, 0.3f, 20 + k), tu_randn(b, 320, 1, 30 + k);
        enum { NV = 11 };
        float *res[NV][4];
        size_t ny = 0;
        // im2col; F(2x2, 3x3), F(4x4, 3x3) in rows of tiles; the same in image vectors, in chunks per thread
        // and in one chunk of the batch; F(3x3, 3x3) and F(6x6, 3x3) (image vectors only) both ways
        const int mode[NV] = {0, 2, 4, 2, 4, 2, 4, 3, 6, 3, 6},
                  layout[NV] = {0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1},
                  batch[NV] = {0, 0, 0, 0, 0, 1, 1, 0, 0, 1, 1};
        for (int v = 0; v < NV; v++)
            ny = wino_run(cs[k].N, cs[k].C, cs[k].O, cs[k].H, cs[k].W, 3, 1, cs[k].pad, x, w, b, 40 + k,
                          mode[v], layout[v], batch[v], res[v]);
        size_t n[4] = {ny, nx, nw, (size_t)cs[k].O};
        const char *what[4] = {"output", "input gradient", "weight gradient", "bias gradient"};
        for (int v = 3; v < NV; v++) // image vectors with the AVX2 kernels: the same bits
            wino_same_avx2(cs[k].N, cs[k].C, cs[k].O, cs[k].H, cs[k].W, 3, 1, cs[k].pad, x, w, b, 40 + k,
                           mode[v], 1, batch[v], res[v], n);
        for (int v = 1; v < NV; v++)
            for (int q = 0; q < 4; q++) {
                // rounding grows with the sums' length: the bounds hold to 16 channels, then grow as sqrt(C)
                double e = rel_diff(res[v][q], res[0][q], n[q]),
                       bound = (mode[v] == 2 ? 2e-6 : mode[v] == 6 ? 2e-5 : 1e-5) *
                               (cs[k].C > 16 ? sqrt(cs[k].C / 16.0) : 1);
                fprintf(stderr, "winograd F(%d) %s case %zu: %s differs by %.2e\n", mode[v],
                        batch[v] ? "batch" : layout[v] ? "image vectors" : "tile rows", k, what[q], e);
                assert_true(e <= bound);
            }
        for (int v = 0; v < NV; v++)
            for (int q = 0; q < 4; q++) free(res[v][q]);
        free(x), free(w);
    }
}

// The Winograd products' kernels (nn/gemm.h) against a float64 reference:
// C = op(A) B, C += A B and C += A B^T on shapes with every remainder (rows not a
// multiple of 6 or 3, columns not of 16 or 4, K tails not of 8, C += A B^T by dot products (K > 8M) and by
// the transposed panels (K <= 8M; past their K blocks of 256 too)), strided
// operands, and C's columns past N left untouched; and the same through
// cblas_sgemm (blas = 1, the path on CPUs without AVX2+FMA).
static void test_gemm_small(void **st) {
    (void)st;
    const int shapes[][3] = {{1, 1, 1},   {6, 16, 8},   {7, 17, 5},  {32, 64, 32}, {13, 33, 9},  {5, 3, 0},
                             {64, 80, 71}, {2, 9, 23},  {12, 32, 40}, {25, 70, 17}, {24, 48, 3}, {37, 95, 64},
                             {9, 40, 300}, {14, 33, 530}, {40, 50, 300}};
    enum { NS = sizeof shapes / sizeof shapes[0] };
    float *best[NS][4] = {{0}}; // the best kernel's products, for the bit comparison with the AVX2 kernel
    for (int blas = 0; blas < 3; blas++) { // NN_GEMM_BEST, NN_GEMM_BLAS, NN_GEMM_AVX2
        fprintf(stderr, "gemm: blas = %d runs the %s kernel\n", blas, nn_gemm_kernel(blas));
        for (size_t s = 0; s < NS; s++) {
            int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2], pad = 3;
            int lda = (M > K ? M : K) + pad, ldb = (N > K ? N : K) + pad, ldc = N + pad;
            size_t na = (size_t)lda * (M > K ? M : K) + 1, nb = (size_t)ldb * (N > K ? N : K) + 1, nc = (size_t)ldc * M;
            float *A = malloc(sizeof(float) * na), *B = malloc(sizeof(float) * nb), *C = malloc(sizeof(float) * nc);
            float *C0 = malloc(sizeof(float) * nc);
            tu_randn(A, na, 1, 100 + s), tu_randn(B, nb, 1, 200 + s), tu_randn(C0, nc, 1, 300 + s);
            for (int kind = 0; kind < 4; kind++) { // 0: A B, 1: A^T B, 2: C += A B^T, 3: C += A B
                memcpy(C, C0, sizeof(float) * nc);
                if (kind < 2) nn_gemm_small(blas, kind, M, N, K, A, lda, B, ldb, C, ldc);
                else if (kind == 3) nn_gemm_small_add(blas, M, N, K, A, lda, B, ldb, C, ldc);
                else nn_gemm_small_nt_acc(blas, M, N, K, A, lda, B, ldb, C, ldc);
                double worst = 0;
                for (int i = 0; i < M; i++) {
                    for (int j = 0; j < N; j++) {
                        double ref = kind >= 2 ? C0[(size_t)i * ldc + j] : 0, mag = fabs(ref);
                        for (int k = 0; k < K; k++) {
                            double a = kind == 1 ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                            double b = kind == 2 ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                            ref += a * b, mag += fabs(a * b);
                        }
                        double e = fabs(C[(size_t)i * ldc + j] - ref) / (mag + 1e-30);
                        if (e > worst) worst = e;
                    }
                    for (int j = N; j < ldc; j++) assert_true(C[(size_t)i * ldc + j] == C0[(size_t)i * ldc + j]);
                }
                if (worst > 1e-6) fprintf(stderr, "gemm kind %d %dx%dx%d (blas %d): error %.2e\n", kind, M, N, K, blas, worst);
                assert_true(worst <= 1e-6);
                if (blas == NN_GEMM_BEST) best[s][kind] = malloc(sizeof(float) * nc), memcpy(best[s][kind], C, sizeof(float) * nc);
                if (blas == NN_GEMM_AVX2) { // AVX-512 and AVX2: the same fused multiply-add chains
                    assert_memory_equal(best[s][kind], C, sizeof(float) * nc);
                    free(best[s][kind]);
                }
            }
            free(A), free(B), free(C), free(C0);
        }
    }
}

// nn_sgemm above its one-thread size (nn/gemm.h) gives the same bits on 1, 2 and 3 threads (OpenBLAS's own
// split did not on AMD machines: 32 of 900 predictions of an MLP differed in the last digit), on every
// transpose and with tiles' remainders on both sides, and matches a float64 reference.
static void test_sgemm_threads(void **st) {
    (void)st;
    const int shapes[][3] = {{300, 520, 64}, {77, 1000, 129}, {513, 40, 300}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int tt = 0; tt < 4; tt++) {
            int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2], ta = tt & 1, tb = tt >> 1;
            int lda = ta ? M : K, ldb = tb ? K : N;
            float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N);
            float *C[3];
            tu_randn(A, (size_t)M * K, 1, 400 + s), tu_randn(B, (size_t)K * N, 1, 500 + s);
            for (int t = 0; t < 3; t++) {
                C[t] = malloc(sizeof(float) * M * N);
                tu_randn(C[t], (size_t)M * N, 1, 600 + s); // beta = 0.5 reads it
                gn_set_threads(t + 1);
                nn_sgemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.5f, C[t], N);
            }
            gn_set_threads(0);
            assert_memory_equal(C[0], C[1], sizeof(float) * M * N);
            assert_memory_equal(C[0], C[2], sizeof(float) * M * N);
            float *C0 = malloc(sizeof(float) * M * N);
            tu_randn(C0, (size_t)M * N, 1, 600 + s);
            double worst = 0;
            for (int i = 0; i < M; i += 7)
                for (int j = 0; j < N; j++) {
                    double ref = 0.5 * C0[(size_t)i * N + j], mag = fabs(ref);
                    for (int k = 0; k < K; k++) {
                        double a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                        double b = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                        ref += a * b, mag += fabs(a * b);
                    }
                    double e = fabs(C[0][(size_t)i * N + j] - ref) / (mag + 1e-30);
                    if (e > worst) worst = e;
                }
            assert_true(worst <= 1e-6);
            free(A), free(B), free(C0), free(C[0]), free(C[1]), free(C[2]);
        }
    printf("    nn_sgemm: the same bits on 1, 2 and 3 threads (12 products)\n");
}

// Adam, AMSGrad and AdamW by nn_optim_step (8 lanes where the CPU has AVX2, a scalar tail) give the bits of
// the scalar formula written out here, on 1,003 parameters (with per-parameter weight decay too), 3 steps.
static void test_adam_lanes(void **st) {
    (void)st;
    enum { n = 1003 };
    for (int variant = 0; variant < 3; variant++) {
        nn_store s;
        nn_store_init(&s);
        nn_tensor *t = nn_store_param(&s, "blk.w", NN_SHAPE(n), (nn_init){.kind = NN_INIT_ZERO});
        assert_non_null(t);
        assert_int_equal(nn_store_finalize(&s), 0);
        tu_randn(s.data, n, 1, 700 + variant);
        nn_optim o;
        nn_optim_defaults(&o, variant == 2 ? NN_OPT_ADAMW : NN_OPT_ADAM);
        o.amsgrad = variant == 1, o.weight_decay = variant ? 0.03f : 0;
        assert_int_equal(nn_optim_init(&o, &s), 0);
        if (variant == 2) assert_int_equal(nn_optim_decay_prefix(&o, &s, "blk", 0.07f), 0);
        float p[n], m[n] = {0}, v[n] = {0}, vm[n] = {0};
        memcpy(p, s.data, sizeof p);
        for (int step = 1; step <= 3; step++) {
            tu_randn(s.grad, n, 1, 800 + step);
            float lr = 1e-2f, b1 = o.beta1, b2 = o.beta2, wd = variant == 2 ? 0.07f : o.weight_decay;
            float bc1 = 1.0f - powf(b1, (float)step), bc2 = 1.0f - powf(b2, (float)step);
            float step_size = lr / bc1, sbc2 = sqrtf(bc2);
            for (int i = 0; i < n; i++) {
                float gi = s.grad[i];
                if (variant == 2) p[i] *= 1.0f - lr * wd;
                else gi += wd * p[i];
                m[i] = b1 * m[i] + (1.0f - b1) * gi;
                v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
                float vv = v[i];
                if (variant == 1) {
                    if (vv > vm[i]) vm[i] = vv;
                    vv = vm[i];
                }
                p[i] -= step_size * m[i] / (sqrtf(vv) / sbc2 + o.eps);
            }
            nn_optim_step(&o, &s, lr);
            assert_memory_equal(p, s.data, sizeof p);
            assert_memory_equal(m, o.m, sizeof m);
        }
        nn_optim_free(&o);
        nn_store_free(&s);
    }
}

// relu(batchnorm(x) + r) in one op gives the values and gradients of the three
// separate ops exactly (training and evaluation, with and without the residual).
static void test_bn_fused(void **st) {
    (void)st;
    enum { N = 3, C = 4, H = 5, W = 7 };
    size_t nx = N * C * H * W;
    float x[N * C * H * W], r[N * C * H * W], up[N * C * H * W], gb[2 * C];
    tu_randn(x, nx, 2, 1), tu_randn(r, nx, 1, 2), tu_randn(up, nx, 1, 3), tu_randn(gb, 2 * C, 1, 4);
    for (int training = 0; training < 2; training++)
        for (int with_res = 0; with_res < 2; with_res++) {
            float out[2][N * C * H * W], grads[2][4][N * C * H * W], stats[2][2 * C];
            for (int fused = 0; fused < 2; fused++) {
                nn_ctx c;
                nn_ctx_init(&c, 1 << 20);
                c.training = training;
                nn_tensor *tx = nn_tensor_from(&c, NN_SHAPE(N, C, H, W), x), *tr = nn_tensor_from(&c, NN_SHAPE(N, C, H, W), r);
                nn_tensor *g = nn_tensor_from(&c, NN_SHAPE(C), gb), *b = nn_tensor_from(&c, NN_SHAPE(C), gb + C);
                float m0[C] = {0.1f, -0.2f, 0.3f, 0}, v0[C] = {1, 2, 0.5f, 1.5f};
                nn_tensor *rm = nn_tensor_from(&c, NN_SHAPE(C), m0), *rv = nn_tensor_from(&c, NN_SHAPE(C), v0);
                tx->requires_grad = tr->requires_grad = g->requires_grad = b->requires_grad = 1;
                nn_tensor *y = fused ? nn_batchnorm_act(&c, tx, g, b, rm, rv, 0.1f, 1e-5f, with_res ? tr : NULL, 1)
                                     : nn_relu(&c, with_res ? nn_add(&c, nn_batchnorm(&c, tx, g, b, rm, rv, 0.1f, 1e-5f), tr)
                                                            : nn_batchnorm(&c, tx, g, b, rm, rv, 0.1f, 1e-5f));
                assert_non_null(y);
                nn_tensor *L = nn_sum(&c, nn_mul(&c, y, nn_tensor_from(&c, NN_SHAPE(N, C, H, W), up)), 0xF, 0);
                assert_int_equal(nn_backward(&c, L), 0);
                memcpy(out[fused], y->data, sizeof(float) * nx);
                memcpy(grads[fused][0], tx->grad, sizeof(float) * nx);
                memcpy(grads[fused][1], with_res ? tr->grad : x, sizeof(float) * nx);
                memcpy(grads[fused][2], g->grad, sizeof(float) * C), memcpy(grads[fused][3], b->grad, sizeof(float) * C);
                memcpy(stats[fused], rm->data, sizeof(float) * C), memcpy(stats[fused] + C, rv->data, sizeof(float) * C);
                nn_ctx_free(&c);
            }
            assert_memory_equal(out[0], out[1], sizeof(float) * nx);
            assert_memory_equal(grads[0][0], grads[1][0], sizeof(float) * nx);
            assert_memory_equal(grads[0][1], grads[1][1], sizeof(float) * nx);
            assert_memory_equal(grads[0][2], grads[1][2], sizeof(float) * C);
            assert_memory_equal(grads[0][3], grads[1][3], sizeof(float) * C);
            assert_memory_equal(stats[0], stats[1], sizeof(float) * 2 * C);
        }
    // a residual of another shape is an error naming both shapes
    nn_ctx c;
    nn_ctx_init(&c, 1 << 20);
    nn_tensor *tx = nn_tensor_zeros(&c, NN_SHAPE(2, 3, 4, 4)), *tr = nn_tensor_zeros(&c, NN_SHAPE(2, 3, 4, 5));
    nn_tensor *rm = nn_tensor_zeros(&c, NN_SHAPE(3)), *rv = nn_tensor_zeros(&c, NN_SHAPE(3));
    assert_null(nn_batchnorm_act(&c, tx, NULL, NULL, rm, rv, 0.1f, 1e-5f, tr, 1));
    assert_non_null(strstr(gn_errmsg(), "(2, 3, 4, 5)"));
    nn_ctx_free(&c);
}

// The unit conv -> relu(bn) -> conv -> relu(bn + x) on N x C x S x S inputs x with weights w (two C x C x 3
// x 3), gamma and beta gb (C each), the first unit's output relu1 (1 stored, 2 transient) and the loss
// sum(y * up) (up NULL: sum(y); wrap: up taken without a copy), run forward and backward in c: into r its
// output, the gradients of x, w and gb, the bytes the forward kept in the arena and the gradient blocks.
typedef struct unit_res {
    float *out, *gx, *gw, *gg;
    size_t kept, pool;
    int transient; // the first unit's output was transient
    int computed;  // the first unit's output has values after backward (not a deferred one left uncomputed)
} unit_res;

static void unit_run(nn_ctx *c, int N, int C, int S, const float *x, const float *w, const float *gb,
                     int relu1, const float *up, int wrap, unit_res *r) {
    size_t nx = (size_t)N * C * S * S, nw = (size_t)C * C * 9;
    nn_tensor *tx = nn_tensor_from(c, NN_SHAPE(N, C, S, S), x);
    nn_tensor *w1 = nn_tensor_from(c, NN_SHAPE(C, C, 3, 3), w);
    nn_tensor *w2 = nn_tensor_from(c, NN_SHAPE(C, C, 3, 3), w + nw);
    nn_tensor *g = nn_tensor_from(c, NN_SHAPE(C), gb), *b = nn_tensor_from(c, NN_SHAPE(C), gb + C);
    nn_tensor *rm = nn_tensor_zeros(c, NN_SHAPE(C)), *rv = nn_tensor_zeros(c, NN_SHAPE(C));
    tx->requires_grad = w1->requires_grad = w2->requires_grad = g->requires_grad = b->requires_grad = 1;
    size_t u0 = c->arena.used;
    nn_tensor *h = nn_batchnorm_act(c, nn_conv2d(c, tx, w1, NULL, 1, 1, nn_pad_sym(1)), g, b, rm, rv, 0.1f,
                                    1e-5f, NULL, relu1);
    nn_tensor *y = nn_batchnorm_act(c, nn_conv2d(c, h, w2, NULL, 1, 1, nn_pad_sym(1)), g, b, rm, rv, 0.1f,
                                    1e-5f, tx, 1);
    assert_non_null(y);
    r->kept = c->arena.used - u0, r->transient = h->remake != NULL;
    nn_tensor *tu = !up  ? NULL
                    : wrap ? nn_tensor_wrap(c, NN_SHAPE(N, C, S, S), up)
                           : nn_tensor_from(c, NN_SHAPE(N, C, S, S), up);
    if (up) assert_true(wrap ? tu->data == up : tu->data != up);
    nn_tensor *L = nn_sum(c, tu ? nn_mul(c, y, tu) : y, 0xF, 0);
    assert_int_equal(nn_backward(c, L), 0);
    memcpy(r->out, y->data, sizeof(float) * nx), memcpy(r->gx, tx->grad, sizeof(float) * nx);
    memcpy(r->gw, w1->grad, sizeof(float) * nw), memcpy(r->gw + nw, w2->grad, sizeof(float) * nw);
    memcpy(r->gg, g->grad, sizeof(float) * C), memcpy(r->gg + C, b->grad, sizeof(float) * C);
    r->pool = c->gpool_bytes, r->computed = h->data != NULL;
}

// Two runs of the unit: the same output and gradients, bit for bit.
static void unit_same(const unit_res *a, const unit_res *b, size_t nx, size_t nw, int C) {
    assert_memory_equal(a->out, b->out, sizeof(float) * nx);
    assert_memory_equal(a->gx, b->gx, sizeof(float) * nx);
    assert_memory_equal(a->gw, b->gw, sizeof(float) * 2 * nw);
    assert_memory_equal(a->gg, b->gg, sizeof(float) * 2 * (size_t)C);
}

// conv -> relu(bn) -> conv -> relu(bn + x) with the first unit's output transient (relu 2: in the ring,
// recomputed for backward) gives the values and every gradient of the stored form bit for bit, and the
// step keeps one tensor fewer (and a wrapped constant, not copied, gives the copy's results); deferred
// (relu 2 | NN_ACT_DEFER: the second conv reads relu(bn(z)) from z in its Winograd input transform, backward
// its ReLU mask from z) the same bits again, never computed on the Winograd paths (image vectors with the
// batch as one chunk or by chunks, rows of tiles) and computed first by im2col; a node reading two
// transients is an error at backward.
static void test_bn_transient(void **st) {
    (void)st;
    enum { N = 4, C = 8, H = 12, W = 12 };
    size_t nx = N * C * H * W, nw = C * C * 9;
    static float x[N * C * H * W], up[N * C * H * W], w[2 * C * C * 9], gb[2 * C];
    tu_randn(x, nx, 1, 5), tu_randn(up, nx, 1, 6), tu_randn(w, 2 * nw, 0.2f, 7), tu_randn(gb, 2 * C, 1, 9);
    static float out[3][N * C * H * W], gx[3][N * C * H * W], gw[3][2 * C * C * 9], gg[3][2 * C];
    const char *paths[4] = {"image vectors, one chunk", "image vectors, by chunks", "rows of tiles",
                            "im2col"};
    for (int path = 0; path < 4; path++) {
        unit_res r[3];
        for (int form = 0; form < 3; form++) { // stored, transient, deferred
            nn_ctx c;
            nn_ctx_init(&c, 1 << 22);
            c.tune.wino_layout = path < 2, c.tune.wino_batch = path == 0, c.winograd = path < 3;
            r[form] = (unit_res){out[form], gx[form], gw[form], gg[form], 0, 0, 0, 0};
            int relu1 = form == 0 ? 1 : form == 1 ? 2 : 2 | NN_ACT_DEFER;
            unit_run(&c, N, C, H, x, w, gb, relu1, up, form, &r[form]);
            assert_int_equal(r[form].transient, form > 0);
            assert_int_equal(r[form].computed, form < 2 || path == 3); // deferred: never computed by Winograd
            nn_ctx_free(&c);
        }
        unit_same(&r[0], &r[1], nx, nw, C), unit_same(&r[0], &r[2], nx, nw, C);
        assert_true(r[0].kept - r[1].kept >= nx * sizeof(float));
        assert_true(r[2].kept <= r[1].kept);
        printf("    transient and deferred unit (%s): identical values and gradients; the step keeps %zu "
               "bytes fewer\n", paths[path], r[0].kept - r[1].kept);
    }
    nn_ctx c; // two transients read by one node: refused at backward
    nn_ctx_init(&c, 1 << 20);
    nn_tensor *tx = nn_tensor_from(&c, NN_SHAPE(N, C, H, W), x), *rm = nn_tensor_zeros(&c, NN_SHAPE(C));
    nn_tensor *rv = nn_tensor_zeros(&c, NN_SHAPE(C));
    tx->requires_grad = 1;
    nn_tensor *h1 = nn_batchnorm_act(&c, tx, NULL, NULL, rm, rv, 0.1f, 1e-5f, NULL, 2);
    nn_tensor *h2 = nn_batchnorm_act(&c, tx, NULL, NULL, rm, rv, 0.1f, 1e-5f, NULL, 2);
    assert_int_not_equal(nn_backward(&c, nn_sum(&c, nn_add(&c, h1, h2), 0xF, 0)), 0);
    assert_non_null(strstr(gn_errmsg(), "transient"));
    nn_ctx_free(&c);
}

// 5x5 stride-1 convs by Winograd F(2x2, 5x5) (the default rule; the image-vector layout, per-thread chunks
// and the batch as one chunk) against im2col: output and every gradient, on shapes with borders, odd sizes,
// uneven padding, batches not a multiple of 8 and 2x2 outputs (the outputs differ: another path); below 16
// input channels the rule keeps im2col (the same bits).
static void test_winograd5(void **st) {
    (void)st;
    struct {
        int N, C, O, H, W;
        nn_pad2d pad;
    } cs[] = {{2, 16, 5, 12, 12, {2, 2, 2, 2}}, {9, 17, 6, 7, 9, {2, 1, 0, 2}},
              {3, 16, 8, 32, 32, {2, 2, 2, 2}}, {17, 16, 4, 6, 5, {2, 2, 2, 2}},
              {8, 18, 3, 2, 2, {2, 2, 2, 2}},   {1, 32, 24, 16, 16, {2, 2, 2, 2}},
              {5, 16, 7, 9, 8, {0, 0, 0, 0}},   {4, 5, 6, 8, 8, {2, 2, 2, 2}}};
    for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++) {
        size_t nx = (size_t)cs[k].N * cs[k].C * cs[k].H * cs[k].W, nw = (size_t)cs[k].O * cs[k].C * 25;
        float *x = malloc(sizeof(float) * nx), *w = malloc(sizeof(float) * nw), b[32];
        tu_randn(x, nx, 1, 50 + k), tu_randn(w, nw, 0.2f, 60 + k), tu_randn(b, 32, 1, 70 + k);
        float *res[3][4];
        size_t ny = 0;
        for (int v = 0; v < 3; v++) // im2col, F(2x2, 5x5) in chunks per thread, in one chunk of the batch
            ny = wino_run(cs[k].N, cs[k].C, cs[k].O, cs[k].H, cs[k].W, 5, 1, cs[k].pad, x, w, b, 80 + k,
                          v > 0, -1, v == 2, res[v]);
        size_t n[4] = {ny, nx, nw, (size_t)cs[k].O};
        const char *what[4] = {"output", "input gradient", "weight gradient", "bias gradient"};
        for (int v = 1; v < 3; v++) // with the AVX2 kernels: the same bits
            wino_same_avx2(cs[k].N, cs[k].C, cs[k].O, cs[k].H, cs[k].W, 5, 1, cs[k].pad, x, w, b, 80 + k, 1,
                           -1, v == 2, res[v], n);
        for (int v = 1; v < 3; v++)
            for (int q = 0; q < 4; q++) {
                double e = rel_diff(res[v][q], res[0][q], n[q]);
                fprintf(stderr, "winograd F(2x2, 5x5) %s case %zu: %s differs by %.2e\n",
                        v == 2 ? "batch" : "chunks", k, what[q], e);
                // (measured up to 7.9e-6 here; the 25-tap sums and G's 16/24 round more than F(4x4, 3x3)'s)
                assert_true(e <= 2e-5 * (cs[k].C > 16 ? sqrt(cs[k].C / 16.0) : 1));
                if (q == 0) assert_true(cs[k].C >= 16 ? e > 0 : e == 0);
            }
        for (int v = 0; v < 3; v++)
            for (int q = 0; q < 4; q++) free(res[v][q]);
        free(x), free(w);
    }
}

// act(conv(x) + b) in the conv's output pass with a tape (nn_conv2d_act: ReLU and leaky ReLU) against the
// conv, then nn_relu / nn_leaky_relu: the same output and input, weight and bias gradients (==), on the
// conv paths (Winograd tile rows and image vectors, by groups of images, one im2col for the batch, the
// matrix kept), with the conv's output not kept; a bad activation is an error.
static void test_conv_act(void **st) {
    (void)st;
    enum { N = 9, C = 6, O = 8, H = 11 };
    size_t nx = N * C * H * H, nw = O * C * 9, ny = N * O * H * H;
    static float x[N * C * H * H], w[O * C * 9], b[O], up[N * O * H * H];
    static float res[2][4][N * O * H * H]; // the largest of the four (O > C)
    tu_randn(x, nx, 1, 31), tu_randn(w, nw, 0.3f, 32), tu_randn(b, O, 0.5f, 33), tu_randn(up, ny, 1, 34);
    for (int path = 0; path < 5; path++)
        for (int act = 1; act <= 2; act++) {
            size_t kept[2];
            for (int fused = 0; fused < 2; fused++) {
                nn_ctx c;
                nn_ctx_init(&c, 1 << 22);
                c.winograd = path < 2, c.tune.wino_layout = path == 1, c.tune.conv_batched = path == 3;
                c.keep_im2col = path == 4;
                nn_tensor *tx = nn_tensor_from(&c, NN_SHAPE(N, C, H, H), x);
                nn_tensor *tw = nn_tensor_from(&c, NN_SHAPE(O, C, 3, 3), w),
                          *tb = nn_tensor_from(&c, NN_SHAPE(O), b);
                tx->requires_grad = tw->requires_grad = tb->requires_grad = 1;
                size_t u0 = c.arena.used;
                nn_tensor *y = fused ? nn_conv2d_act(&c, tx, tw, tb, 1, 1, nn_pad_sym(1), act, 0.1f)
                                     : nn_conv2d(&c, tx, tw, tb, 1, 1, nn_pad_sym(1));
                if (!fused) y = act == 1 ? nn_relu(&c, y) : nn_leaky_relu(&c, y, 0.1f);
                assert_non_null(y);
                kept[fused] = c.arena.used - u0;
                nn_tensor *L =
                    nn_sum(&c, nn_mul(&c, y, nn_tensor_wrap(&c, NN_SHAPE(N, O, H, H), up)), 0xF, 0);
                assert_int_equal(nn_backward(&c, L), 0);
                memcpy(res[fused][0], y->data, sizeof(float) * ny),
                    memcpy(res[fused][1], tx->grad, sizeof(float) * nx);
                memcpy(res[fused][2], tw->grad, sizeof(float) * nw),
                    memcpy(res[fused][3], tb->grad, sizeof(float) * O);
                nn_ctx_free(&c);
            }
            size_t n[4] = {ny, nx, nw, O};
            for (int q = 0; q < 4; q++)
                for (size_t i = 0; i < n[q]; i++) assert_true(res[0][q][i] == res[1][q][i]);
            assert_true(kept[0] - kept[1] >= ny * sizeof(float));
        }
    printf("    conv + ReLU / leaky ReLU in the output pass: the separate ops' values and gradients on 5 "
           "paths\n");
    nn_ctx c;
    nn_ctx_init(&c, 1 << 20);
    nn_tensor *tx = nn_tensor_from(&c, NN_SHAPE(1, C, H, H), x),
              *tw = nn_tensor_from(&c, NN_SHAPE(O, C, 3, 3), w);
    assert_null(nn_conv2d_act(&c, tx, tw, NULL, 1, 1, nn_pad_sym(1), 2, 0.0f));
    assert_non_null(strstr(gn_errmsg(), "slope"));
    nn_ctx_free(&c);
}

// A pooled concat (nn_concat_pooled), dropped after the conv that reads it: backward copies it again for
// the conv's weight gradient — the gradients of the kept concat, bit for bit, with its bytes not kept.
static void test_concat_pooled(void **st) {
    (void)st;
    enum { N = 3, C = 4, H = 9 };
    size_t nx = N * C * H * H, nw = 6 * C * C * 9; // w1, w2 (C -> C), w3 (2C -> 2C)
    static float x[N * C * H * H], w[6 * C * C * 9], gw[2][4 * C * C * 9], gx[2][N * C * H * H];
    tu_randn(x, nx, 1, 41), tu_randn(w, nw, 0.3f, 42);
    size_t kept[2];
    for (int pooled = 0; pooled < 2; pooled++) {
        nn_ctx c;
        nn_ctx_init(&c, 1 << 22);
        nn_tensor *tx = nn_tensor_from(&c, NN_SHAPE(N, C, H, H), x);
        nn_tensor *w1 = nn_tensor_from(&c, NN_SHAPE(C, C, 3, 3), w),
                  *w2 = nn_tensor_from(&c, NN_SHAPE(C, C, 3, 3), w + C * C * 9);
        nn_tensor *w3 = nn_tensor_from(&c, NN_SHAPE(2 * C, 2 * C, 3, 3), w + 2 * C * C * 9);
        tx->requires_grad = w1->requires_grad = w3->requires_grad = 1;
        nn_tensor *br[2] = {nn_conv2d_act(&c, tx, w1, NULL, 1, 1, nn_pad_sym(1), 1, 0),
                            nn_conv2d_act(&c, tx, w2, NULL, 1, 1, nn_pad_sym(1), 2, 0.2f)};
        size_t u0 = c.arena.used;
        nn_tensor *cat = pooled ? nn_concat_pooled(&c, 2, br, 1) : nn_concat(&c, 2, br, 1);
        kept[pooled] = c.arena.used - u0;
        nn_tensor *y = nn_conv2d(&c, cat, w3, NULL, 1, 1, nn_pad_sym(1));
        nn_tensor_drop(&c, cat);
        assert_true(pooled ? cat->data == NULL : cat->data != NULL);
        assert_int_equal(nn_backward(&c, nn_sum(&c, nn_mul(&c, y, y), 0xF, 0)), 0);
        memcpy(gw[pooled], w3->grad, sizeof gw[0]), memcpy(gx[pooled], tx->grad, sizeof gx[0]);
        nn_ctx_free(&c);
    }
    assert_memory_equal(gw[0], gw[1], sizeof gw[0]);
    assert_memory_equal(gx[0], gx[1], sizeof gx[0]);
    assert_true(kept[0] - kept[1] >= 2 * nx * sizeof(float));
}

// Gradient buffers handed from an op's output to its input (batch norm, Winograd convs with as many
// values in as out): the unit's gradients equal those without the hand-over bit for bit, on the Winograd
// paths (tile rows, image vectors, the batch), with fewer bytes of gradient buffers.
static void test_grad_steal(void **st) {
    (void)st;
    enum { N = 9, C = 8, H = 12, W = 12 };
    size_t nx = N * C * H * W, nw = C * C * 9;
    static float x[N * C * H * W], w[2 * C * C * 9], gb[2 * C];
    tu_randn(x, nx, 1, 15), tu_randn(w, 2 * nw, 0.2f, 17), tu_randn(gb, 2 * C, 1, 19);
    static float out[2][N * C * H * W], gx[2][N * C * H * W], gw[2][2 * C * C * 9], gg[2][2 * C];
    for (int path = 0; path < 3; path++) {
        unit_res r[2];
        for (int steal = 0; steal < 2; steal++) {
            nn_ctx c;
            nn_ctx_init(&c, 1 << 22);
            c.tune.no_steal = !steal, c.tune.wino_layout = path > 0, c.tune.wino_batch = path == 2;
            r[steal] = (unit_res){out[steal], gx[steal], gw[steal], gg[steal], 0, 0, 0, 0};
            unit_run(&c, N, C, H, x, w, gb, 1, NULL, 0, &r[steal]);
            nn_ctx_free(&c);
        }
        unit_same(&r[0], &r[1], nx, nw, C);
        assert_true(r[1].pool < r[0].pool);
        printf("    Winograd %s: the same gradients; %zu instead of %zu bytes of gradient buffers\n",
               path == 0 ? "tile rows" : path == 1 ? "image vectors" : "batch", r[1].pool, r[0].pool);
    }
}

// The inference form of conv -> batch norm (running statistics) -> + residual -> ReLU (nn_conv_bn_act
// without a tape: batch norm folded into the conv, the residual and ReLU in the conv's output pass)
// against the same layers evaluated with a tape (conv, then nn_batchnorm_act), on every conv path
// (Winograd F(2x2) and F(4x4) in tile rows, image vectors by chunks and in one batch chunk; im2col over the
// batch and by groups; stride 2 and 1x1), with and without a conv bias, residual and ReLU: within 1e-5 of the
// output's scale (float rounding of the folded weights; a wrong shift or scale misses by O(1)).
static void test_conv_bn_inference(void **st) {
    (void)st;
    struct {
        int N, C, O, H, k, s, wino, layout, batch, batched;
    } cs[] = {
        {3, 5, 8, 16, 3, 1, 2, 0, 0, 1},   {3, 5, 8, 16, 3, 1, 4, 0, 0, 1},
        {9, 4, 6, 8, 3, 1, 2, 1, 0, 1},    {9, 4, 6, 8, 3, 1, 4, 1, 1, 1},
        {4, 6, 7, 9, 3, 2, 1, -1, -1, 1},  {4, 6, 7, 9, 3, 2, 1, -1, -1, 0},
        {5, 6, 12, 8, 1, 2, 1, -1, -1, 1}, {5, 6, 12, 8, 1, 1, 0, -1, -1, 0},
        {5, 6, 12, 9, 1, 2, 1, -1, -1, 0}, // 1x1 stride 2 by groups: without a bias, straight into y
        {9, 4, 6, 16, 3, 1, 4, 1, 0, 1},   // F(4x4) image vectors by chunks of 8 images (and 1)
    };
    for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++)
        for (int v = 0; v < 6; v++) { // v % 3: none, ReLU, residual + ReLU; v / 3: a conv bias
            int N = cs[k].N, C = cs[k].C, O = cs[k].O, H = cs[k].H, kk = cs[k].k,
                Ho = (H + 2 * (kk / 2) - kk) / cs[k].s + 1;
            size_t nx = (size_t)N * C * H * H, nw = (size_t)O * C * kk * kk, ny = (size_t)N * O * Ho * Ho;
            float *x = malloc(sizeof(float) * nx), *w = malloc(sizeof(float) * nw),
                  *r = malloc(sizeof(float) * ny);
            float *out[2], p[5 * 16];
            tu_randn(x, nx, 1, 50 + k), tu_randn(w, nw, 0.3f, 60 + k), tu_randn(r, ny, 1, 70 + k),
                tu_randn(p, 5 * 16, 0.5f, 80 + k);
            for (int i = 0; i < 16; i++) p[48 + i] = 0.3f + p[48 + i] * p[48 + i]; // running variances > 0
            for (int fold = 0; fold < 2; fold++) {
                nn_ctx c;
                nn_ctx_init(&c, 1 << 20);
                c.training = 0, c.grad_enabled = !fold, c.winograd = cs[k].wino;
                c.tune.wino_layout = cs[k].layout, c.tune.wino_batch = cs[k].batch,
                c.tune.conv_batched = cs[k].batched;
                nn_conv l = {nn_tensor_from(&c, NN_SHAPE(O, C, kk, kk), w),
                             v / 3 ? nn_tensor_from(&c, NN_SHAPE(O), p + 64) : NULL,
                             cs[k].s,
                             cs[k].s,
                             nn_pad_sym(kk / 2),
                             0};
                nn_bn bn = {nn_tensor_from(&c, NN_SHAPE(O), p),
                            nn_tensor_from(&c, NN_SHAPE(O), p + 16),
                            nn_tensor_from(&c, NN_SHAPE(O), p + 32),
                            nn_tensor_from(&c, NN_SHAPE(O), p + 48),
                            0.1f,
                            1e-5f};
                nn_tensor *res = v % 3 == 2 ? nn_tensor_from(&c, NN_SHAPE(N, O, Ho, Ho), r) : NULL;
                nn_tensor *tx = nn_tensor_from(&c, NN_SHAPE(N, C, H, H), x);
                tx->requires_grad = !fold; // the graph: recorded for backward
                nn_tensor *y = nn_conv_bn_act(&c, &l, &bn, tx, res, v % 3 > 0);
                assert_non_null(y);
                assert_int_equal(y->n, ny);
                assert_true(fold ? c.n_nodes == 0 : c.n_nodes > 0); // the folded form records no tape
                out[fold] = malloc(sizeof(float) * ny), memcpy(out[fold], y->data, sizeof(float) * ny);
                nn_ctx_free(&c);
            }
            double e = rel_diff(out[1], out[0], ny);
            fprintf(stderr, "conv+bn inference case %zu (%s, %s): folded differs by %.2e\n", k,
                    v % 3 == 2 ? "residual + relu" : v % 3 ? "relu" : "no activation", v / 3 ? "conv bias" : "no bias",
                    e);
            assert_true(e <= 1e-5);
            free(out[0]), free(out[1]), free(x), free(w), free(r);
        }
    // the fused conv refuses a tensor that needs a gradient and a residual of another shape, naming them
    nn_ctx c;
    nn_ctx_init(&c, 1 << 20);
    nn_tensor *tx = nn_tensor_zeros(&c, NN_SHAPE(2, 3, 4, 4)),
              *tw = nn_tensor_zeros(&c, NN_SHAPE(5, 3, 3, 3));
    nn_tensor *tr = nn_tensor_zeros(&c, NN_SHAPE(2, 5, 4, 5));
    assert_null(nn_conv2d_fused(&c, tx, tw, NULL, NULL, 1, 1, nn_pad_sym(1), tr, 1));
    assert_non_null(strstr(gn_errmsg(), "(2, 5, 4, 5)"));
    tw->requires_grad = 1;
    assert_null(nn_conv2d_fused(&c, tx, tw, NULL, NULL, 1, 1, nn_pad_sym(1), NULL, 1));
    assert_non_null(strstr(gn_errmsg(), "inference"));
    nn_ctx_free(&c);
}

// A frozen context (inference apps) keeps the Winograd filter transform of each weight tensor of a store:
// its outputs are the unfrozen ones bit for bit, on both tile sizes and both chunk plans, later batches
// reuse the one transform, other weights get their own, and weights made in the arena this step (whose
// address the next step's may share) are never kept. 2 w doubles every product and sum exactly.
static void test_wino_frozen(void **st) {
    (void)st;
    enum { N = 9, C = 6, O = 7, H = 12 };
    float x[N * C * H * H], w[O * C * 9], w2[O * C * 9];
    tu_randn(x, N * C * H * H, 1, 91), tu_randn(w, O * C * 9, 0.3f, 92);
    for (int i = 0; i < O * C * 9; i++) w2[i] = 2 * w[i];
    nn_store s;
    nn_store_init(&s);
    nn_tensor *p1 = nn_store_param(&s, "a.weight", NN_SHAPE(O, C, 3, 3), nn_init_const(0));
    nn_tensor *p2 = nn_store_param(&s, "b.weight", NN_SHAPE(O, C, 3, 3), nn_init_const(0));
    assert_int_equal(nn_store_finalize(&s), 0);
    memcpy(p1->data, w, sizeof w), memcpy(p2->data, w2, sizeof w2);
    size_t ny = (size_t)N * O * H * H;
    for (int v = 0; v < 4; v++) {
        float *out[2];
        for (int frozen = 0; frozen < 2; frozen++) {
            nn_ctx c;
            nn_ctx_init(&c, 1 << 20);
            c.training = 0, c.grad_enabled = 0, c.frozen = frozen;
            c.winograd = v & 1 ? 4 : 2, c.tune.wino_layout = 1, c.tune.wino_batch = v >> 1;
            const float *U = NULL;
            for (int batch = 0; batch < 4; batch++) {
                nn_ctx_reset(&c);
                nn_tensor *tx = nn_tensor_from(&c, NN_SHAPE(N, C, H, H), x);
                nn_tensor *wt = batch < 2 ? p1 : batch == 2 ? nn_tensor_from(&c, NN_SHAPE(O, C, 3, 3), w2) : p2;
                nn_tensor *y = nn_conv2d(&c, tx, wt, NULL, 1, 1, nn_pad_sym(1));
                assert_non_null(y);
                if (batch == 0) out[frozen] = malloc(sizeof(float) * ny), memcpy(out[frozen], y->data, sizeof(float) * ny);
                for (size_t i = 0; i < ny; i++) assert_true(y->data[i] == (batch < 2 ? 1 : 2) * out[frozen][i]);
                int kept = 0;
                for (const nn_wcache *k = c.wcache; k; k = k->next) kept++;
                assert_int_equal(kept, frozen ? (batch < 3 ? 1 : 2) : 0); // the arena's copy of 2 w: not kept
                if (frozen && batch == 1) assert_ptr_equal(c.wcache->U, U);
                if (frozen && batch == 0) U = c.wcache->U;
            }
            nn_ctx_free(&c);
        }
        assert_memory_equal(out[0], out[1], sizeof(float) * ny);
        free(out[0]), free(out[1]);
    }
    nn_store_free(&s);
}

// 3x3 stride-2 convs by F(4x4, 2x2) or F(3x3, 2x2) on their four stride phases (nn/ops_winograd.c, WG_S2,
// WG_S2_3) against the
// direct method (winograd = 0), output and every gradient (under a tape: ctx->tune.wino_s2): odd sizes,
// uneven and no padding, widths past 8 tiles, 9 images (a chunk of 8 and one of 1), more channels than 16,
// 4x as many out. Without a tape the same bits, and a frozen context keeps that transform (its variant)
// and gives them too; through the inference epilogue (scale, shift, residual, ReLU) as the direct method.
// Measured worst 3.5e-6 (per 16 channels); a wrong sign in G: 19, phases swapped: 1.1.
static void test_winograd_s2(void **st) {
    (void)st;
    struct {
        int N, C, O, H, W;
        nn_pad2d pad;
        int v; // the variant taken: 7 F(4x4, 2x2), 8 F(3x3, 2x2)
    } cs[] = {{8, 16, 8, 32, 32, {1, 1, 1, 1}, 7},
              {9, 16, 5, 17, 23, {1, 0, 1, 0}, 7},
              {8, 24, 16, 17, 17, {0, 0, 0, 0}, 7},
              {16, 16, 12, 8, 8, {1, 1, 1, 1}, 7},
              {10, 64, 7, 17, 70, {0, 1, 1, 1}, 7},
              {8, 16, 64, 16, 16, {1, 1, 1, 1}, 7}, // gy as many values as gx: gx may take its buffer
              {9, 16, 6, 12, 12, {1, 1, 1, 1}, 8},
              {8, 32, 9, 6, 5, {1, 1, 1, 1}, 8}};
    const char *what[4] = {"output", "input gradient", "weight gradient", "bias gradient"};
    for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++) {
        int N = cs[k].N, C = cs[k].C, O = cs[k].O, H = cs[k].H, W = cs[k].W;
        size_t nx = (size_t)N * C * H * W, nw = (size_t)O * C * 9;
        float *x = malloc(sizeof(float) * nx), *w = malloc(sizeof(float) * nw), b[64], *res[3][4], *out[2];
        tu_randn(x, nx, 1, 50 + k), tu_randn(b, 64, 1, 60 + k), tu_randn(w, nw, 0.3f, 70 + k);
        size_t n[4] = {0, nx, nw, (size_t)O};
        for (int v = 0; v < 3; v++) // with a tape: direct, Winograd by chunks of images, on the whole batch
            n[0] = wino_run(N, C, O, H, W, 3, 2, cs[k].pad, x, w, b, 80 + k, v > 0, -1, v - 1, res[v]);
        for (int v = 1; v < 3; v++) // with the AVX2 kernels: the same bits
            wino_same_avx2(N, C, O, H, W, 3, 2, cs[k].pad, x, w, b, 80 + k, 1, -1, v - 1, res[v], n);
        for (int v = 1; v < 3; v++)
            for (int q = 0; q < 4; q++) {
                double e = rel_diff(res[v][q], res[0][q], n[q]);
                int t = cs[k].v == 7 ? 4 : 3;
                fprintf(stderr, "winograd F(%dx%d, 2x2) stride phases (%s) case %zu: %s differs by %.2e\n", t, t,
                        v == 1 ? "chunks" : "batch", k, what[q], e);
                assert_true(e <= 1e-5 * (C > 16 ? sqrt(C / 16.0) : 1));
            }
        float *one[4]; // the batch path on one thread: the same bits (threads share channels and products)
        gn_set_threads(1);
        wino_run(N, C, O, H, W, 3, 2, cs[k].pad, x, w, b, 80 + k, 1, -1, 1, one);
        gn_set_threads(0);
        for (int q = 0; q < 4; q++) assert_memory_equal(one[q], res[2][q], sizeof(float) * n[q]);
        for (int q = 0; q < 4; q++) free(one[q]);
        nn_store s;
        nn_store_init(&s);
        nn_tensor *pw = nn_store_param(&s, "w", NN_SHAPE(O, C, 3, 3), nn_init_const(0));
        assert_int_equal(nn_store_finalize(&s), 0);
        memcpy(pw->data, w, sizeof(float) * nw);
        for (int v = 0; v < 2; v++) { // without a tape, frozen
            nn_ctx c;
            nn_ctx_init(&c, 1 << 20);
            c.training = 0, c.grad_enabled = 0, c.frozen = v;
            nn_tensor *y = nn_conv2d(&c, nn_tensor_from(&c, NN_SHAPE(N, C, H, W), x), pw,
                                     nn_tensor_from(&c, NN_SHAPE(O), b), 2, 2, cs[k].pad);
            assert_non_null(y);
            out[v] = malloc(sizeof(float) * n[0]), memcpy(out[v], y->data, sizeof(float) * n[0]);
            if (v) assert_true(c.wcache && c.wcache->m == cs[k].v && !c.wcache->next);
            nn_ctx_free(&c);
        }
        assert_memory_equal(out[0], res[1][0], sizeof(float) * n[0]);
        assert_memory_equal(out[1], res[1][0], sizeof(float) * n[0]);
        float *rr = malloc(sizeof(float) * n[0]), *fu[2], sc[64], sf[64];
        tu_randn(rr, n[0], 1, 90 + k), tu_randn(sc, 64, 1, 100 + k), tu_randn(sf, 64, 1, 110 + k);
        for (int v = 0; v < 2; v++) { // the inference epilogue (scale, shift, residual, ReLU): direct, WG_S2*
            nn_ctx c;
            nn_ctx_init(&c, 1 << 20);
            c.training = 0, c.grad_enabled = 0, c.winograd = v;
            int Ho = (H + cs[k].pad.top + cs[k].pad.bottom - 3) / 2 + 1,
                Wo = (int)(n[0] / ((size_t)N * O * Ho));
            nn_tensor *y = nn_conv2d_fused(&c, nn_tensor_from(&c, NN_SHAPE(N, C, H, W), x), pw, sc, sf, 2, 2,
                                           cs[k].pad, nn_tensor_from(&c, NN_SHAPE(N, O, Ho, Wo), rr), 1);
            assert_non_null(y);
            fu[v] = malloc(sizeof(float) * n[0]), memcpy(fu[v], y->data, sizeof(float) * n[0]);
            nn_ctx_free(&c);
        }
        double ef = rel_diff(fu[1], fu[0], n[0]);
        fprintf(stderr, "  with the inference epilogue: differs by %.2e\n", ef);
        assert_true(ef <= 1e-5 * (C > 16 ? sqrt(C / 16.0) : 1));
        free(rr), free(fu[0]), free(fu[1]);
        for (int v = 0; v < 3; v++) {
            if (v < 2) free(out[v]);
            for (int q = 0; q < 4; q++) free(res[v][q]);
        }
        free(x), free(w);
        nn_store_free(&s);
    }
}

// Activation gradients go back to the pool once consumed: a chain of 40 ops
// on a 1 MiB tensor holds a few gradient buffers, not 40; the leaf's gradient
// stays readable and right (d/dx of 0.5^40 x summed is 0.5^40).
static void test_grad_pool(void **st) {
    (void)st;
    nn_ctx c;
    nn_ctx_init(&c, 1 << 16);
    for (int step = 0; step < 2; step++) {
        nn_ctx_reset(&c);
        nn_tensor *x = nn_tensor_zeros(&c, NN_SHAPE(256, 1024)), *h = x;
        x->requires_grad = 1;
        for (int k = 0; k < 40; k++) h = nn_scale(&c, h, 0.5f, 1.0f);
        assert_int_equal(nn_backward(&c, nn_sum(&c, h, 0x3, 0)), 0);
        for (size_t i = 0; i < x->n; i += 4099) assert_float_equal(x->grad[i], ldexp(1, -40), 1e-18);
        assert_true(c.gpool_bytes <= 4 * x->n * sizeof(float));
    }
    nn_ctx_free(&c);
}

int main(void) {
    gn_set_threads(0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unary),
        cmocka_unit_test(test_stop_gradient),
        cmocka_unit_test(test_binary_broadcast),
        cmocka_unit_test(test_broadcast_error),
        cmocka_unit_test(test_reduce),
        cmocka_unit_test(test_shape_ops),
        cmocka_unit_test(test_dense),
        cmocka_unit_test(test_conv),
        cmocka_unit_test(test_conv_errors),
        cmocka_unit_test(test_pool),
        cmocka_unit_test(test_bilinear_known),
        cmocka_unit_test(test_batchnorm),
        cmocka_unit_test(test_group_layer_norm),
        cmocka_unit_test(test_dropout),
        cmocka_unit_test(test_losses),
        cmocka_unit_test(test_contrastive),
        cmocka_unit_test(test_grad_accumulates),
        cmocka_unit_test(test_arena_no_growth),
        cmocka_unit_test(test_conv_paths),
        cmocka_unit_test(test_winograd),
        cmocka_unit_test(test_winograd5),
        cmocka_unit_test(test_winograd_s2),
        cmocka_unit_test(test_conv_act),
        cmocka_unit_test(test_concat_pooled),
        cmocka_unit_test(test_gemm_small),
        cmocka_unit_test(test_sgemm_threads),
        cmocka_unit_test(test_adam_lanes),
        cmocka_unit_test(test_bn_fused),
        cmocka_unit_test(test_bn_transient),
        cmocka_unit_test(test_grad_steal),
        cmocka_unit_test(test_conv_bn_inference),
        cmocka_unit_test(test_wino_frozen),
        cmocka_unit_test(test_grad_pool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
