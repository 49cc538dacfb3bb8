// PyTorch golden tests (llm.c style). tools/make_golden.py wrote, from
// python3-torch, a small network's (conv, batch norm, group norm, SiLU, pooling, a transposed conv,
// linear, layer norm, GELU) input, weights, output, loss, every
// parameter gradient and its parameters after 3 steps of four optimizers
// (tests/data/golden_net.npz), and forward values of the ops whose
// conventions matter (tests/data/golden_ops.npz). We rebuild the same
// network here and match everything to <= 1e-4 relative error (relative to
// each tensor's largest magnitude; see tu_rel_err).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define TOL 1e-4

typedef struct gnet {
    nn_store st;
    nn_conv conv1, conv2;
    nn_bn bn1;
    nn_tensor *dw, *db; // deconv (16, 4, 4, 4), (4)
    nn_dense fc, fc1, fc2;
    nn_tensor *gn_g, *gn_b, *ln_g, *ln_b; // gn2 (4 groups of 16 channels), ln1 (16)
} gnet;

static void gnet_make(gnet *n) {
    nn_store_init(&n->st);
    nn_init z = nn_init_const(0);
    assert_int_equal(nn_conv_make(&n->conv1, &n->st, "conv1", 3, 8, 3, 1, 1, 0, z, z), 0);
    assert_int_equal(nn_bn_make(&n->bn1, &n->st, "bn1", 8), 0);
    assert_int_equal(nn_conv_make(&n->conv2, &n->st, "conv2", 8, 16, 3, 2, 1, 1, z, z), 0);
    n->dw = nn_store_param(&n->st, "deconv.weight", NN_SHAPE(16, 4, 4, 4), z);
    n->db = nn_store_param(&n->st, "deconv.bias", NN_SHAPE(4), z);
    assert_int_equal(nn_dense_make(&n->fc, &n->st, "fc", 20, 3, 1, z, z), 0);
    assert_int_equal(nn_dense_make(&n->fc1, &n->st, "fc1", 20, 16, 1, z, z), 0);
    assert_int_equal(nn_dense_make(&n->fc2, &n->st, "fc2", 16, 3, 1, z, z), 0);
    n->gn_g = nn_store_param(&n->st, "gn2.weight", NN_SHAPE(16), z);
    n->gn_b = nn_store_param(&n->st, "gn2.bias", NN_SHAPE(16), z);
    n->ln_g = nn_store_param(&n->st, "ln1.weight", NN_SHAPE(16), z);
    n->ln_b = nn_store_param(&n->st, "ln1.bias", NN_SHAPE(16), z);
    assert_int_equal(nn_store_finalize(&n->st), 0);
}

// Load every parameter and buffer from "<prefix><name>".
static void gnet_load(gnet *n, const io_npz *z, const char *prefix) {
    for (int i = 0; i < nn_store_count(&n->st); i++) {
        nn_tensor *t = nn_store_at(&n->st, i);
        char key[256];
        snprintf(key, sizeof key, "%s%s", prefix, t->name);
        const io_array *a = tu_npz_get(z, key);
        assert_int_equal(a->n, t->n);
        float *f = io_array_to_f32(a);
        memcpy(t->data, f, sizeof(float) * t->n);
        free(f);
    }
}

static nn_tensor *gnet_fwd(nn_ctx *c, gnet *n, nn_tensor *x) {
    nn_tensor *h = nn_maxpool2d(c, nn_relu(c, nn_bn_fwd(c, &n->bn1, nn_conv_fwd(c, &n->conv1, x))), 2, 2, 2,
                                2, nn_pad_sym(0));
    nn_tensor *a = nn_silu(c, nn_groupnorm(c, nn_conv_fwd(c, &n->conv2, h), 4, n->gn_g, n->gn_b, 1e-5f));
    nn_tensor *g = nn_global_avgpool(c, a);
    nn_tensor *t = nn_global_avgpool(c, nn_conv_transpose2d(c, a, n->dw, n->db, 2, 2, nn_pad_sym(1), 0, 0));
    nn_tensor *zz = nn_concat(c, 2, (nn_tensor *[]){g, t}, 1);
    nn_tensor *hh = nn_gelu(c, nn_layernorm(c, nn_dense_fwd(c, &n->fc1, zz), n->ln_g, n->ln_b, 1e-5f));
    return nn_add(c, nn_dense_fwd(c, &n->fc, zz), nn_dense_fwd(c, &n->fc2, hh));
}

typedef struct golden {
    io_npz z;
    float *x, *y;
} golden;

static int setup(void **state) {
    golden *g = calloc(1, sizeof *g);
    if (io_npz_read(tu_data("golden_net.npz"), &g->z)) {
        print_error("%s\n", gn_errmsg());
        return -1;
    }
    g->x = tu_npz_f32(&g->z, "x");
    g->y = tu_npz_f32(&g->z, "y");
    *state = g;
    return 0;
}

static int teardown(void **state) {
    golden *g = *state;
    io_npz_free(&g->z);
    free(g->x);
    free(g->y);
    free(g);
    return 0;
}

// Compare every parameter (values, or gradients when grads) and, when
// buffers, every buffer with the reference "<prefix><name>"; returns the
// worst relative error.
static double check_store(golden *g, nn_store *s, const char *prefix, int grads, int params, int buffers) {
    double worst = 0;
    for (int i = params ? 0 : s->np; i < (buffers ? nn_store_count(s) : s->np); i++) {
        nn_tensor *t = nn_store_at(s, i);
        char key[256];
        snprintf(key, sizeof key, "%s%s", prefix, t->name);
        float *want = tu_npz_f32(&g->z, key);
        double e = tu_check_close(key, grads ? t->grad : t->data, want, t->n, TOL);
        if (e > worst) worst = e;
        free(want);
    }
    return worst;
}

static nn_tensor *step_loss(nn_ctx *c, gnet *n, golden *g) {
    nn_ctx_reset(c);
    nn_tensor *x = nn_tensor_from(c, NN_SHAPE(4, 3, 12, 12), g->x),
              *y = nn_tensor_from(c, NN_SHAPE(4, 3), g->y);
    return nn_mse_loss(c, gnet_fwd(c, n, x), y);
}

static void test_forward_backward(void **state) {
    golden *g = *state;
    gnet n;
    gnet_make(&n);
    gnet_load(&n, &g->z, "init.");
    nn_ctx c;
    nn_ctx_init(&c, 4u << 20);
    nn_ctx_reset(&c);
    nn_tensor *x = nn_tensor_from(&c, NN_SHAPE(4, 3, 12, 12), g->x),
              *y = nn_tensor_from(&c, NN_SHAPE(4, 3), g->y);
    nn_tensor *out = gnet_fwd(&c, &n, x);
    nn_tensor *loss = nn_mse_loss(&c, out, y);
    assert_non_null(loss);
    float *want = tu_npz_f32(&g->z, "out");
    double e_out = tu_check_close("output", out->data, want, 12, TOL);
    free(want);
    want = tu_npz_f32(&g->z, "loss");
    double e_loss = tu_check_close("loss", loss->data, want, 1, TOL);
    free(want);
    nn_store_zero_grad(&n.st);
    assert_int_equal(nn_backward(&c, loss), 0);
    double e_grad = check_store(g, &n.st, "grad.", 1, 1, 0);
    double e_bn = check_store(g, &n.st, "after1.", 0, 0, 1);
    printf("    golden net: output %.2e, loss %.2e, worst gradient %.2e, BN running stats %.2e (relative)\n",
           e_out, e_loss, e_grad, e_bn);
    nn_ctx_free(&c);
    nn_store_free(&n.st);
}

static void run_optimizer(golden *g, const char *name) {
    gnet n;
    gnet_make(&n);
    gnet_load(&n, &g->z, "init.");
    nn_optim o;
    float lr = 1e-2f, clip = 0;
    if (!strcmp(name, "adam"))
        nn_optim_defaults(&o, NN_OPT_ADAM);
    else if (!strcmp(name, "amsgrad")) {
        nn_optim_defaults(&o, NN_OPT_ADAM);
        o.amsgrad = 1;
        o.weight_decay = 1e-3f;
    } else if (!strcmp(name, "adamw")) {
        nn_optim_defaults(&o, NN_OPT_ADAMW);
        o.weight_decay = 0.05f;
        clip = 0.5f;
    } else {
        nn_optim_defaults(&o, NN_OPT_SGD);
        o.momentum = 0.9f;
        o.weight_decay = 1e-3f;
        lr = 5e-2f;
    }
    assert_int_equal(nn_optim_init(&o, &n.st), 0);
    nn_ctx c;
    nn_ctx_init(&c, 4u << 20);
    char key[256];
    snprintf(key, sizeof key, "%s.losses", name);
    float *wl = tu_npz_f32(&g->z, key), got[3];
    for (int s = 0; s < 3; s++) {
        nn_store_zero_grad(&n.st);
        nn_tensor *loss = step_loss(&c, &n, g);
        assert_non_null(loss);
        assert_int_equal(nn_backward(&c, loss), 0);
        got[s] = loss->data[0];
        if (clip > 0) nn_clip_grad_norm(&n.st, clip);
        nn_optim_step(&o, &n.st, lr);
    }
    double e_loss = tu_check_close(key, got, wl, 3, TOL);
    free(wl);
    snprintf(key, sizeof key, "%s.step3.", name);
    double e_par = check_store(g, &n.st, key, 0, 1, 1);
    printf("    %-8s 3 steps: losses %.2e, worst parameter/buffer %.2e (relative)\n", name, e_loss, e_par);
    nn_optim_free(&o);
    nn_ctx_free(&c);
    nn_store_free(&n.st);
}

static void test_adam(void **state) { run_optimizer(*state, "adam"); }
static void test_amsgrad(void **state) { run_optimizer(*state, "amsgrad"); }
static void test_adamw_clip(void **state) { run_optimizer(*state, "adamw"); }
static void test_sgd_momentum(void **state) { run_optimizer(*state, "sgd"); }

// ---- op conventions against PyTorch forward values ----

typedef struct {
    io_npz z;
    nn_ctx c;
} opsref;

static nn_tensor *ref_tensor(opsref *r, const char *name) {
    const io_array *a = tu_npz_get(&r->z, name);
    int shape[NN_MAXDIM];
    for (int i = 0; i < a->ndim; i++) shape[i] = (int)a->shape[i];
    float *f = io_array_to_f32(a);
    nn_tensor *t = nn_tensor_from(&r->c, a->ndim, shape, f);
    free(f);
    return t;
}

static double worst_ops = 0;
static void expect(opsref *r, const char *name, nn_tensor *got) {
    if (!got) fail_msg("%s: %s", name, gn_errmsg());
    nn_tensor *want = ref_tensor(r, name);
    if (!nn_same_shape(got, want)) {
        char s1[96], s2[96];
        fail_msg("%s: shape %s, PyTorch %s", name, nn_shape_str(got, s1, sizeof s1),
                 nn_shape_str(want, s2, sizeof s2));
    }
    double e = tu_check_close(name, got->data, want->data, got->n, TOL);
    if (e > worst_ops) worst_ops = e;
}

static void test_ops_reference(void **st) {
    (void)st;
    opsref r;
    assert_int_equal(io_npz_read(tu_data("golden_ops.npz"), &r.z), 0); // written deflate-compressed
    nn_ctx_init(&r.c, 1u << 20);
    nn_ctx *c = &r.c;
    nn_tensor *x = ref_tensor(&r, "conv_same.x");
    nn_pad2d same = nn_pad_same(7, 6, 3, 3, 2, 2);
    nn_tensor *pad = ref_tensor(&r, "conv_same.pad");
    assert_int_equal(same.top, (int)pad->data[0]);
    assert_int_equal(same.bottom, (int)pad->data[1]);
    assert_int_equal(same.left, (int)pad->data[2]);
    assert_int_equal(same.right, (int)pad->data[3]);
    expect(&r, "conv_same.y",
           nn_conv2d(c, x, ref_tensor(&r, "conv_same.w"), ref_tensor(&r, "conv_same.b"), 2, 2, same));
    nn_pad2d s2 = nn_pad_same(7, 6, 2, 2, 1, 1);
    assert_true(s2.top == 0 && s2.bottom == 1 && s2.left == 0 && s2.right == 1); // the pad goes after
    expect(&r, "conv_k2.y", nn_conv2d(c, x, ref_tensor(&r, "conv_k2.w"), NULL, 1, 1, s2));
    expect(&r, "conv_rect.y", nn_conv2d(c, x, ref_tensor(&r, "conv_rect.w"), NULL, 1, 2, nn_pad_sym(1)));
    expect(&r, "convt.y",
           nn_conv_transpose2d(c, ref_tensor(&r, "convt.x"), ref_tensor(&r, "convt.w"),
                               ref_tensor(&r, "convt.b"), 2, 2, nn_pad_sym(1), 1, 1));
    expect(&r, "conv1d.y",
           nn_conv1d(c, ref_tensor(&r, "conv1d.x"), ref_tensor(&r, "conv1d.w"), ref_tensor(&r, "conv1d.b"), 2,
                     2, 2));
    expect(&r, "convt1d.y",
           nn_conv_transpose1d(c, ref_tensor(&r, "convt1d.x"), ref_tensor(&r, "convt1d.w"),
                               ref_tensor(&r, "convt1d.b"), 2, 1, 1));
    nn_tensor *xp = ref_tensor(&r, "pool.x");
    expect(&r, "pool.max", nn_maxpool2d(c, xp, 3, 3, 2, 2, nn_pad_sym(1)));
    expect(&r, "pool.avg_incl", nn_avgpool2d(c, xp, 3, 3, 2, 2, nn_pad_sym(1), 1));
    expect(&r, "pool.avg_tf_same", nn_avgpool2d(c, xp, 2, 2, 1, 1, nn_pad_same(7, 7, 2, 2, 1, 1), 0));
    expect(&r, "pool.avg_tf_s2", nn_avgpool2d(c, xp, 3, 3, 2, 2, nn_pad_same(7, 7, 3, 3, 2, 2), 0));
    expect(&r, "pool.gap", nn_global_avgpool(c, xp));
    nn_tensor *xr = ref_tensor(&r, "resize.x");
    expect(&r, "resize.up2", nn_upsample2x(c, xr));
    expect(&r, "resize.odd", nn_resize_bilinear(c, xr, 7, 3));
    // batch norm: train output and the updated running statistics, then eval
    nn_tensor *xb = ref_tensor(&r, "bn.x"), *gm = ref_tensor(&r, "bn.gamma"), *bb = ref_tensor(&r, "bn.beta");
    nn_tensor *rm = nn_tensor_zeros(c, NN_SHAPE(3)), *rv = nn_tensor_new(c, NN_SHAPE(3));
    for (int i = 0; i < 3; i++) rv->data[i] = 1;
    expect(&r, "bn.y_train", nn_batchnorm(c, xb, gm, bb, rm, rv, 0.1f, 1e-5f));
    expect(&r, "bn.rmean", rm);
    expect(&r, "bn.rvar", rv);
    c->training = 0;
    expect(&r, "bn.y_eval", nn_batchnorm(c, xb, gm, bb, rm, rv, 0.1f, 1e-5f));
    c->training = 1;
    nn_tensor *xe = ref_tensor(&r, "elem.x");
    expect(&r, "elem.softplus", nn_softplus(c, xe));
    expect(&r, "elem.elu", nn_elu(c, xe, 1.0f));
    expect(&r, "elem.sigmoid", nn_sigmoid(c, xe));
    expect(&r, "elem.leaky", nn_leaky_relu(c, xe, 0.2f));
    expect(&r, "elem.log_softmax", nn_log_softmax(c, xe, 1));
    expect(&r, "elem.log_softmax0", nn_log_softmax(c, xe, 0));
    nn_tensor *lg = ref_tensor(&r, "loss.logits"), *lab = ref_tensor(&r, "loss.labels");
    int32_t labels[4];
    for (int i = 0; i < 4; i++) labels[i] = (int32_t)lab->data[i];
    nn_tensor *mu = ref_tensor(&r, "loss.mu"), *lv = ref_tensor(&r, "loss.lv"),
              *yy = ref_tensor(&r, "loss.y");
    expect(&r, "loss.ce", nn_cross_entropy(c, lg, labels));
    expect(&r, "loss.ce_soft", nn_cross_entropy_soft(c, lg, ref_tensor(&r, "loss.q")));
    expect(&r, "loss.bce", nn_bce_with_logits(c, lg, ref_tensor(&r, "loss.tb")));
    expect(&r, "loss.gnll", nn_gaussian_nll(c, mu, lv, yy, 0));
    expect(&r, "loss.gnll_full", nn_gaussian_nll(c, mu, lv, yy, 1));
    expect(&r, "loss.kl", nn_kl_normal(c, mu, lv));
    expect(&r, "loss.mse", nn_mse_loss(c, mu, yy));
    expect(&r, "loss.l1", nn_l1_loss(c, mu, yy));
    printf("    ops vs PyTorch: worst relative error %.2e over 33 references\n", worst_ops);
    nn_ctx_free(c);
    io_npz_free(&r.z);
}

int main(void) {
    gn_set_threads(0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward_backward), cmocka_unit_test(test_adam),
        cmocka_unit_test(test_amsgrad),          cmocka_unit_test(test_adamw_clip),
        cmocka_unit_test(test_sgd_momentum),
    };
    const struct CMUnitTest ops[] = {cmocka_unit_test(test_ops_reference)};
    int rc = cmocka_run_group_tests_name("golden network", tests, setup, teardown);
    return rc | cmocka_run_group_tests_name("golden ops", ops, NULL, NULL);
}
