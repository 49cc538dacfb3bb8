// The conditional RealNVP (models/flow.c, spec/stats.md §D): the known-answer
// coupling of §D.3 (exp and bounded-tanh scales, the one-layer log-density,
// inversion), inverse(forward(x)) = x and opposite log-dets for a deep random
// flow, the log-det against the log|det| of a numerical Jacobian, 1-D and 2-D
// densities integrating to 1, the gradient w.r.t. inputs and context against
// finite differences, and training: a conditional Gaussian's NLL approaches
// its entropy from above, and samples of a flow fitted to a conditional
// banana pass two-sample tests against fresh draws of the target.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../models/flow.h"
#include "../stats/local.h"
#include "testutil.h"

typedef struct fx {
    nn_store st;
    md_flow f;
    nn_ctx c;
} fx;

static void make(fx *F, md_flow_spec sp, float scale, uint64_t seed) {
    memset(F, 0, sizeof *F);
    nn_store_init(&F->st);
    F->f.sp = sp;
    assert_int_equal(md_flow_make(&F->f, &F->st, "flow"), 0);
    assert_int_equal(nn_store_finalize(&F->st), 0);
    gn_rng r;
    gn_rng_seed(&r, seed, GN_STREAM_INIT);
    nn_store_reset_values(&F->st, &r);
    // a random, non-identity flow: every parameter gets N(0, scale^2) added
    if (scale > 0) {
        float *z = malloc(sizeof(float) * F->st.n_param_floats);
        tu_randn(z, F->st.n_param_floats, scale, seed + 1);
        for (size_t i = 0; i < F->st.n_param_floats; i++) F->st.data[i] += z[i];
        free(z);
    }
    assert_int_equal(nn_ctx_init(&F->c, 8 << 20), 0);
}

static void drop(fx *F) {
    nn_ctx_free(&F->c);
    nn_store_free(&F->st);
}

// u, log-det of the forward pass for n rows (no gradient).
static void fwd(fx *F, const float *x, const float *h, int n, float *u, float *ld) {
    nn_ctx_reset(&F->c);
    F->c.grad_enabled = 0;
    nn_tensor *X = nn_tensor_from(&F->c, NN_SHAPE(n, F->f.sp.dim), x);
    nn_tensor *H = F->f.sp.ctx ? nn_tensor_from(&F->c, NN_SHAPE(n, F->f.sp.ctx), h) : NULL, *L;
    nn_tensor *U = md_flow_forward(&F->c, &F->f, X, H, &L);
    assert_non_null(U);
    if (u) memcpy(u, U->data, sizeof(float) * (size_t)n * F->f.sp.dim);
    if (ld) memcpy(ld, L->data, sizeof(float) * (size_t)n);
}

static void test_known_answer(void **st) {
    (void)st;
    // one coupling, x1 kept, x2 transformed; the net is the linear map of §D.3:
    // ŝ2 = 0.7 x1 + 0.2 c - 0.1, t2 = -0.4 x1 + 0.5 c + 0.25 (input [x1, x2, c])
    const double want_s[2] = {0.310000000000000, 0.600874194295308}, want_y2[2] = {-1.436110136958613, -1.988454859239975};
    for (int sc = 0; sc < 2; sc++) {
        fx F;
        md_flow_spec sp = {.dim = 2, .ctx = 1, .layers = 1, .depth = 0, .scale = sc ? MD_FLOW_TANH : MD_FLOW_EXP, .clamp = 2};
        make(&F, sp, 0, 1);
        assert_true(md_flow_keeps(&F.f, 0, 0) && !md_flow_keeps(&F.f, 0, 1));
        nn_dense *d = &F.f.net[0][0]; // weight (4, 3): rows ŝ1, ŝ2, t1, t2
        memset(d->w->data, 0, sizeof(float) * 12);
        memset(d->b->data, 0, sizeof(float) * 4);
        d->w->data[1 * 3 + 0] = 0.7f, d->w->data[1 * 3 + 2] = 0.2f, d->b->data[1] = -0.1f;
        d->w->data[3 * 3 + 0] = -0.4f, d->w->data[3 * 3 + 2] = 0.5f, d->b->data[3] = 0.25f;
        d->w->data[0 * 3 + 0] = 5.0f, d->b->data[2] = 3.0f; // on the kept dimension: must have no effect
        float x[2] = {0.5f, -1.2f}, c = 0.3f, u[2], ld;
        fwd(&F, x, &c, 1, u, &ld);
        printf("    %s scale: s %.9f (want %.9f), y2 %.9f (want %.9f)\n", sc ? "tanh (clamp 2)" : "exp", ld, want_s[sc], u[1],
               want_y2[sc]);
        assert_float_equal(u[0], 0.5, 0);
        assert_float_equal(ld, want_s[sc], 1e-6);
        assert_float_equal(u[1], want_y2[sc], 2e-6);
        if (sc == 0) { // one exp layer with base N(0, I2): log p(x | c)
            nn_ctx_reset(&F.c);
            nn_tensor *lp = md_flow_log_prob(&F.c, &F.f, nn_tensor_from(&F.c, NN_SHAPE(1, 2), x), nn_tensor_from(&F.c, NN_SHAPE(1, 1), &c));
            printf("    log p(x | c) %.9f (want -2.684083229)\n", lp->data[0]);
            assert_float_equal(lp->data[0], -2.684083229146989, 2e-6);
        }
        nn_ctx_reset(&F.c);
        nn_tensor *L, *xi = md_flow_inverse(&F.c, &F.f, nn_tensor_from(&F.c, NN_SHAPE(1, 2), u), nn_tensor_from(&F.c, NN_SHAPE(1, 1), &c), &L);
        assert_float_equal(xi->data[1], -1.2, 1e-6);
        assert_float_equal(L->data[0], -want_s[sc], 1e-6);
        drop(&F);
    }
}

// 12 couplings in 5-D with a 3-D context: inverse(forward(x)) = x, log-dets opposite.
static void test_inverse(void **st) {
    (void)st;
    for (int sc = 0; sc < 2; sc++) {
        fx F;
        md_flow_spec sp = {.dim = 5, .ctx = 3, .layers = 12, .depth = 2, .hidden = 16, .scale = sc ? MD_FLOW_TANH : MD_FLOW_EXP, .clamp = 2};
        make(&F, sp, 0.05f, 7);
        enum { N = 64 };
        float x[N * 5], h[N * 3], u[N * 5], ld[N];
        tu_randn(x, N * 5, 1.5f, 8);
        tu_randn(h, N * 3, 1, 9);
        fwd(&F, x, h, N, u, ld);
        double moved = 0, worst = 0, wl = 0, sum_ld = 0;
        for (int i = 0; i < N * 5; i++) moved = fmax(moved, fabs(u[i] - x[i]));
        nn_ctx_reset(&F.c);
        nn_tensor *L, *xi = md_flow_inverse(&F.c, &F.f, nn_tensor_from(&F.c, NN_SHAPE(N, 5), u), nn_tensor_from(&F.c, NN_SHAPE(N, 3), h), &L);
        for (int i = 0; i < N * 5; i++) worst = fmax(worst, fabs(xi->data[i] - x[i]) / (1 + fabs(x[i])));
        for (int i = 0; i < N; i++) wl = fmax(wl, fabs(L->data[i] + ld[i]) / (1 + fabs(ld[i]))), sum_ld += fabs(ld[i]) / N;
        printf("    %s: the flow moves x by up to %.2f, mean |log det| %.2f; inversion error %.2g, log-det sum %.2g\n",
               sc ? "tanh" : "exp", moved, sum_ld, worst, wl);
        assert_true(moved > 0.5 && sum_ld > 0.3); // really not the identity
        assert_true(worst <= 1e-5);
        assert_true(wl <= 1e-5);
        drop(&F);
    }
}

// log|det| of the central-difference Jacobian (double LU) against the analytic log-det.
static void test_numerical_jacobian(void **st) {
    (void)st;
    fx F;
    enum { D = 4, C = 2 };
    md_flow_spec sp = {.dim = D, .ctx = C, .layers = 6, .depth = 2, .hidden = 12, .act = MD_FLOW_ACT_TANH, .scale = MD_FLOW_TANH,
                       .clamp = 2};
    make(&F, sp, 0.2f, 21);
    float x[3 * D], h[3 * C];
    tu_randn(x, 3 * D, 1, 22);
    tu_randn(h, 3 * C, 1, 23);
    for (int r = 0; r < 3; r++) {
        double J[D][D];
        float ld;
        fwd(&F, x + r * D, h + r * C, 1, NULL, &ld);
        const double eps = 2e-3;
        for (int j = 0; j < D; j++) {
            float xp[D], xm[D], up[D], um[D];
            memcpy(xp, x + r * D, sizeof xp), memcpy(xm, x + r * D, sizeof xm);
            xp[j] += (float)eps, xm[j] -= (float)eps;
            fwd(&F, xp, h + r * C, 1, up, NULL);
            fwd(&F, xm, h + r * C, 1, um, NULL);
            for (int i = 0; i < D; i++) J[i][j] = ((double)up[i] - um[i]) / (2 * eps);
        }
        double logdet = 0; // LU with partial pivoting
        for (int k = 0; k < D; k++) {
            int p = k;
            for (int i = k + 1; i < D; i++)
                if (fabs(J[i][k]) > fabs(J[p][k])) p = i;
            for (int j = 0; j < D && p != k; j++) {
                double t = J[k][j];
                J[k][j] = J[p][j], J[p][j] = t;
            }
            logdet += log(fabs(J[k][k]));
            for (int i = k + 1; i < D; i++) {
                double m = J[i][k] / J[k][k];
                for (int j = k; j < D; j++) J[i][j] -= m * J[k][j];
            }
        }
        printf("    point %d: analytic log det %.5f, numerical %.5f\n", r, ld, logdet);
        assert_float_equal(ld, logdet, 2e-3 * (1 + fabs(logdet)));
    }
    drop(&F);
}

// ∫ p(x | h) dx = 1: trapezoid on a grid wide enough for the density's tails.
static void test_normalised(void **st) {
    (void)st;
    fx F;
    md_flow_spec s1 = {.dim = 1, .ctx = 2, .layers = 4, .depth = 2, .hidden = 8, .scale = MD_FLOW_TANH, .clamp = 2};
    make(&F, s1, 0.3f, 31);
    enum { G1 = 8001 };
    float *x = malloc(sizeof(float) * G1), *h = malloc(sizeof(float) * G1 * 2);
    double lo = -40, hi = 40, dx = (hi - lo) / (G1 - 1);
    for (int i = 0; i < G1; i++) x[i] = (float)(lo + i * dx), h[2 * i] = 0.7f, h[2 * i + 1] = -1.1f;
    nn_ctx_reset(&F.c);
    F.c.grad_enabled = 0;
    nn_tensor *lp = md_flow_log_prob(&F.c, &F.f, nn_tensor_from(&F.c, NN_SHAPE(G1, 1), x), nn_tensor_from(&F.c, NN_SHAPE(G1, 2), h));
    double I = 0;
    for (int i = 0; i < G1; i++) I += exp(lp->data[i]) * dx * (i == 0 || i == G1 - 1 ? 0.5 : 1);
    printf("    1-D conditional flow: integral %.6f\n", I);
    assert_float_equal(I, 1, 1e-3);
    assert_true(exp(lp->data[0]) < 1e-9 && exp(lp->data[G1 - 1]) < 1e-9); // the grid holds the tails
    free(x), free(h);
    drop(&F);
    md_flow_spec s2 = {.dim = 2, .ctx = 1, .layers = 6, .depth = 2, .hidden = 8, .scale = MD_FLOW_TANH, .clamp = 2};
    make(&F, s2, 0.08f, 32);
    enum { G2 = 641 };
    size_t n = (size_t)G2 * G2;
    x = malloc(sizeof(float) * n * 2), h = malloc(sizeof(float) * n);
    lo = -16, hi = 16, dx = (hi - lo) / (G2 - 1);
    for (int i = 0; i < G2; i++)
        for (int j = 0; j < G2; j++) {
            size_t k = (size_t)i * G2 + j;
            x[2 * k] = (float)(lo + i * dx), x[2 * k + 1] = (float)(lo + j * dx), h[k] = 0.4f;
        }
    nn_ctx_free(&F.c);
    assert_int_equal(nn_ctx_init(&F.c, 256 << 20), 0);
    F.c.grad_enabled = 0;
    lp = md_flow_log_prob(&F.c, &F.f, nn_tensor_from(&F.c, NN_SHAPE((int)n, 2), x), nn_tensor_from(&F.c, NN_SHAPE((int)n, 1), h));
    assert_non_null(lp);
    I = 0;
    double edge = 0;
    for (int i = 0; i < G2; i++)
        for (int j = 0; j < G2; j++) {
            double w = (i == 0 || i == G2 - 1 ? 0.5 : 1) * (j == 0 || j == G2 - 1 ? 0.5 : 1), p = exp(lp->data[(size_t)i * G2 + j]);
            I += w * p * dx * dx;
            if (i == 0 || j == 0 || i == G2 - 1 || j == G2 - 1) edge = fmax(edge, p);
        }
    printf("    2-D conditional flow: integral %.6f (largest density on the grid's edge %.2g)\n", I, edge);
    assert_float_equal(I, 1, 1e-3);
    free(x), free(h);
    drop(&F);
}

typedef struct gcu {
    md_flow *f;
} gcu;

static nn_tensor *nll_fn(nn_ctx *c, nn_tensor **in, void *u) { return md_flow_nll(c, ((gcu *)u)->f, in[0], in[1]); }

// d NLL / d(x, h) through 5 couplings against central differences: with
// smooth (tanh) coupling nets, and with linear ones (ReLU nets have kinks a
// finite difference can straddle; relu's own gradient is checked in test_grad).
static void test_gradient(void **st) {
    (void)st;
    for (int v = 0; v < 2; v++) {
        fx F;
        md_flow_spec sp = {.dim = 3, .ctx = 2, .layers = 5, .depth = v ? 0 : 2, .hidden = 6, .act = MD_FLOW_ACT_TANH,
                           .scale = MD_FLOW_TANH, .clamp = 2};
        make(&F, sp, 0.3f, 41);
        float x[4 * 3], h[4 * 2];
        tu_randn(x, 12, 1, 42);
        tu_randn(h, 8, 1, 43);
        tu_input in[2] = {tu_in(2, (int[]){4, 3}, x, 1), tu_in(2, (int[]){4, 2}, h, 1)};
        gcu u = {&F.f};
        tu_gradcheck(v ? "flow NLL (linear coupling nets) w.r.t. x and context" : "flow NLL (tanh coupling nets) w.r.t. x and context",
                     nll_fn, &u, 2, in, TU_GC_DEFAULT);
        drop(&F);
    }
}

// Train by Adam on draws from `target` (x | c) and return the test NLL.
typedef void (*draw_fn)(gn_rng *r, float *x, float *c);

static double train(fx *F, draw_fn draw, int steps, int batch, float lr, uint64_t seed) {
    nn_optim o;
    nn_optim_defaults(&o, NN_OPT_ADAM);
    assert_int_equal(nn_optim_init(&o, &F->st), 0);
    int D = F->f.sp.dim, C = F->f.sp.ctx;
    float *x = malloc(sizeof(float) * (size_t)batch * D), *c = malloc(sizeof(float) * (size_t)batch * C);
    gn_rng r;
    gn_rng_seed(&r, seed, GN_STREAM_SAMPLE);
    for (int s = 0; s < steps; s++) {
        for (int i = 0; i < batch; i++) draw(&r, x + i * D, c + i * C);
        nn_ctx_reset(&F->c);
        F->c.grad_enabled = 1;
        nn_store_zero_grad(&F->st);
        nn_tensor *L = md_flow_nll(&F->c, &F->f, nn_tensor_from(&F->c, NN_SHAPE(batch, D), x), nn_tensor_from(&F->c, NN_SHAPE(batch, C), c));
        assert_int_equal(nn_backward(&F->c, L), 0);
        nn_optim_step(&o, &F->st, s < steps * 3 / 4 ? lr : lr / 5);
    }
    // held-out NLL on 20,000 fresh draws
    double nll = 0;
    for (int rep = 0; rep < 20000 / batch; rep++) {
        for (int i = 0; i < batch; i++) draw(&r, x + i * D, c + i * C);
        nn_ctx_reset(&F->c);
        F->c.grad_enabled = 0;
        nll += md_flow_nll(&F->c, &F->f, nn_tensor_from(&F->c, NN_SHAPE(batch, D), x), nn_tensor_from(&F->c, NN_SHAPE(batch, C), c))->data[0];
    }
    nn_optim_free(&o);
    free(x), free(c);
    return nll / (20000 / batch);
}

// x | c ~ N(sin 2c + c, 0.3^2), c ~ U(-1, 1): entropy ½ ln(2πe 0.09) whatever c.
static void gauss_draw(gn_rng *r, float *x, float *c) {
    c[0] = (float)(2 * gn_rng_uniform(r) - 1);
    x[0] = (float)(sin(2 * c[0]) + c[0] + 0.3 * gn_rng_normal(r));
}

// a conditional banana: x1 ~ N(c, 1), x2 = 0.5 x1^2 - 1 + c/2 + 0.4 ε
static void banana_draw(gn_rng *r, float *x, float *c) {
    c[0] = (float)(2 * gn_rng_uniform(r) - 1);
    double x1 = c[0] + gn_rng_normal(r);
    x[0] = (float)x1, x[1] = (float)(0.5 * x1 * x1 - 1 + 0.5 * c[0] + 0.4 * gn_rng_normal(r));
}

static void test_train_gaussian(void **st) {
    (void)st;
    fx F;
    md_flow_spec sp = {.dim = 1, .ctx = 1, .layers = 2, .depth = 2, .hidden = 32, .scale = MD_FLOW_TANH, .clamp = 2};
    make(&F, sp, 0, 51);
    double H = 0.5 * log(2 * M_PI * M_E * 0.09);
    double nll = train(&F, gauss_draw, tu_sanitized() ? 800 : 2500, 256, 3e-3f, 52);
    printf("    conditional Gaussian: test NLL %.4f nats, entropy %.4f (excess %.4f)\n", nll, H, nll - H);
    assert_true(nll > H - 0.01); // from above (sampling error of 20,000 draws ~ 0.005)
    assert_true(nll < H + 0.03);
    drop(&F);
}

// The smallest two-sample KS p-value of S flow samples at context cv against
// S fresh target draws, over x1, x2 and the banana's residual x2 - 0.5 x1^2.
static double ks_min_p(fx *F, float cv, gn_rng *r, int verbose) {
    enum { S = 2000 };
    float *u = malloc(sizeof(float) * S * 2), *hc = malloc(sizeof(float) * S), *t = malloc(sizeof(float) * S * 2);
    double *a = malloc(sizeof(double) * S), *b = malloc(sizeof(double) * S), pmin = 1;
    for (int i = 0; i < S; i++) u[2 * i] = (float)gn_rng_normal(r), u[2 * i + 1] = (float)gn_rng_normal(r), hc[i] = cv;
    nn_ctx_reset(&F->c);
    F->c.grad_enabled = 0;
    nn_tensor *xs = md_flow_inverse(&F->c, &F->f, nn_tensor_from(&F->c, NN_SHAPE(S, 2), u), nn_tensor_from(&F->c, NN_SHAPE(S, 1), hc), NULL);
    for (int i = 0; i < S; i++) {
        double x1 = cv + gn_rng_normal(r);
        t[2 * i] = (float)x1, t[2 * i + 1] = (float)(0.5 * x1 * x1 - 1 + 0.5 * cv + 0.4 * gn_rng_normal(r));
    }
    for (int q = 0; q < 3; q++) {
        for (int i = 0; i < S; i++) {
            const float *p = xs->data + 2 * i, *w = t + 2 * i;
            a[i] = q == 2 ? p[1] - 0.5 * p[0] * p[0] : p[q];
            b[i] = q == 2 ? w[1] - 0.5 * w[0] * w[0] : w[q];
        }
        double Dks, p;
        assert_int_equal(st_ks2(a, S, b, S, &Dks, &p), 0);
        if (verbose) printf("    c = %+.1f, %s: KS D %.4f, p %.3f\n", cv, q == 0 ? "x1" : q == 1 ? "x2" : "x2 - x1^2/2", Dks, p);
        pmin = fmin(pmin, p);
    }
    free(u), free(hc), free(t), free(a), free(b);
    return pmin;
}

// A flow fitted to a conditional banana: its samples pass two-sample KS tests
// against fresh target draws at two contexts (p > 0.01 for x1, x2 and the
// residual x2 - x1^2/2); the untrained flow (a standard normal) fails them.
static void test_train_banana(void **st) {
    (void)st;
    fx F;
    md_flow_spec sp = {.dim = 2, .ctx = 1, .layers = 8, .depth = 2, .hidden = 32, .scale = MD_FLOW_TANH, .clamp = 2};
    make(&F, sp, 0, 61);
    gn_rng r;
    gn_rng_seed(&r, 63, GN_STREAM_SAMPLE);
    double p0 = ks_min_p(&F, 0.6f, &r, 0);
    printf("    untrained flow: smallest KS p %.2g\n", p0);
    assert_true(p0 < 1e-6);
    double nll = train(&F, banana_draw, tu_sanitized() ? 1500 : 4000, 256, 2e-3f, 62);
    printf("    conditional banana: test NLL %.4f nats\n", nll);
    assert_true(ks_min_p(&F, -0.5f, &r, 1) > 0.01);
    assert_true(ks_min_p(&F, 0.6f, &r, 1) > 0.01);
    drop(&F);
}

int main(void) {
    gn_set_threads(1);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_known_answer), cmocka_unit_test(test_inverse),
                                       cmocka_unit_test(test_numerical_jacobian), cmocka_unit_test(test_normalised),
                                       cmocka_unit_test(test_gradient), cmocka_unit_test(test_train_gaussian),
                                       cmocka_unit_test(test_train_banana)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
