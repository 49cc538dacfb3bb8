// The S-space models (models/latent.c, spec/methods.md §1.5–1.7): the SCL
// objective's value against an independent double-precision assembly of its
// terms from the networks' outputs, and its gradient (every parameter and the
// inputs) against central differences corrected for the stop-gradient of the
// prediction contrast; the same gradient check for the SupCon and RnC
// variants; the CE objective is the estimator's cross-entropy.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../io/loader.h"
#include "../models/latent.h"
#include "testutil.h"

enum { P = 3, N = 2 * P, XD = 3, AD = 2 };

typedef struct fixture {
    nn_store st;
    md_latent m;
    nn_ctx c;
    float x[N * XD], a[N * AD], y[N], x_grad[N * XD];
} fixture;

// slope: the LeakyReLU slope. The gradient checks use 1 (no kinks for the
// finite differences to straddle; leaky_relu's own gradient is checked in
// test_grad), the value check the paper's 0.2.
static float g_slope = 0.2f;

static void make(fixture *F, int objective) {
    memset(F, 0, sizeof *F);
    nn_store_init(&F->st);
    md_latent_spec sp = {.encoder = MD_ENC_MLP, .objective = objective, .x_dim = XD, .a_dim = AD, .dim_main = 2,
                         .dim_ext = 1, .depth = 2, .hidden = 6, .est_hidden = 5, .slope = g_slope, .bins = 8, .lo = 0, .hi = 4,
                         .lambda_rec = 1.5f, .tau = objective == MD_OBJ_RNC ? 2.0f : 0.5f, .base_tau = 0.5f,
                         .supcon_width = 1.0f};
    F->m.sp = sp;
    assert_int_equal(md_latent_make(&F->m, &F->st), 0);
    assert_int_equal(nn_store_finalize(&F->st), 0);
    gn_rng r;
    gn_rng_seed(&r, 11, GN_STREAM_INIT);
    nn_store_reset_values(&F->st, &r);
    for (size_t i = 0; i < F->st.n_param_floats; i++) F->st.data[i] *= 1.2f; // livelier than at init
    tu_randn(F->x, N * XD, 1, 21);
    tu_randn(F->a, N * AD, 1, 22);
    tu_uniform(F->y, N, 0.1f, 3.9f, 23);
    F->y[3] = F->y[0] + 0.05f; // two galaxies in one SupCon class
    assert_int_equal(nn_ctx_init(&F->c, 1 << 20), 0);
}

static void drop(fixture *F) {
    nn_ctx_free(&F->c);
    nn_store_free(&F->st);
}

static double loss(fixture *F, int backward) {
    nn_ctx_reset(&F->c);
    F->c.grad_enabled = backward;
    nn_tensor *x = nn_tensor_from(&F->c, NN_SHAPE(N, XD), F->x), *a = nn_tensor_from(&F->c, NN_SHAPE(N, AD), F->a);
    x->requires_grad = backward;
    nn_tensor *L = md_latent_loss(&F->c, &F->m, x, a, NULL, F->y, N);
    assert_non_null(L);
    if (backward) {
        nn_store_zero_grad(&F->st);
        assert_int_equal(nn_backward(&F->c, L), 0);
        memcpy(F->x_grad, x->grad, sizeof F->x_grad);
    }
    return L->data[0];
}

// The networks' outputs for the current parameters: logits of both cycles,
// reconstructions, S of both cycles (double).
typedef struct outs {
    double z1[N][8], z2[N][8], xh1[N][XD], xh2[N][XD], S1[N][2], S2[N][2];
} outs;

static void forward(fixture *F, outs *o) {
    int dec = F->m.sp.objective != MD_OBJ_CE;
    nn_ctx_reset(&F->c);
    F->c.grad_enabled = 0;
    nn_ctx *c = &F->c;
    const md_latent *m = &F->m;
    nn_tensor *x = nn_tensor_from(c, NN_SHAPE(N, XD), F->x), *a = nn_tensor_from(c, NN_SHAPE(N, AD), F->a);
    nn_tensor *l1 = md_latent_encode(c, m, x, a), *z1 = md_latent_logits(c, m, l1);
    assert_non_null(z1);
    for (int i = 0; i < N; i++)
        for (int k = 0; k < 8; k++) o->z1[i][k] = z1->data[i * 8 + k];
    if (!dec) return;
    nn_tensor *xh1 = md_latent_decode(c, m, l1);
    nn_tensor *l2 = md_latent_encode(c, m, xh1, a), *xh2 = md_latent_decode(c, m, l2), *z2 = md_latent_logits(c, m, l2);
    assert_non_null(z2);
    for (int i = 0; i < N; i++) {
        for (int k = 0; k < 8; k++) o->z1[i][k] = z1->data[i * 8 + k], o->z2[i][k] = z2->data[i * 8 + k];
        for (int j = 0; j < XD; j++) o->xh1[i][j] = xh1->data[i * XD + j], o->xh2[i][j] = xh2->data[i * XD + j];
        for (int j = 0; j < 2; j++) o->S1[i][j] = l1->data[i * 3 + j], o->S2[i][j] = l2->data[i * 3 + j];
    }
}

static void softmax(const double *z, double *p) {
    double mx = z[0], s = 0;
    for (int k = 1; k < 8; k++) mx = fmax(mx, z[k]);
    for (int k = 0; k < 8; k++) s += p[k] = exp(z[k] - mx);
    for (int k = 0; k < 8; k++) p[k] /= s;
}

// sum_i mean CE(softmax(t_i), z_i) with t the "target" logits
static double soft_ce(double t[N][8], double z[N][8]) {
    double s = 0;
    for (int i = 0; i < N; i++) {
        double p[8], q[8];
        softmax(t[i], p), softmax(z[i], q);
        for (int k = 0; k < 8; k++) s -= p[k] * log(q[k]);
    }
    return s / N;
}

static double rms(const double *u, const double *v) {
    double s = 0;
    for (int j = 0; j < 2; j++) s += (u[j] - v[j]) * (u[j] - v[j]);
    return sqrt(s / 2 + 1e-12);
}

// §1.6 assembled by hand: L = L_CE + lambda L_rec + L_lcon + L_ycon, the sums
// over the two sets being 2 x the means over all N rows.
static double scl_by_hand(fixture *F, const outs *o) {
    double ce = 0, rec = 0, pos = 0, neg = 0;
    for (int i = 0; i < N; i++) {
        int lab = md_latent_label(&F->m, F->y[i]);
        double p1[8], p2[8];
        softmax(o->z1[i], p1), softmax(o->z2[i], p2);
        ce -= (log(p1[lab]) + log(p2[lab])) / N;
        for (int j = 0; j < XD; j++) {
            double d1 = o->xh1[i][j] - F->x[i * XD + j], d2 = o->xh2[i][j] - F->x[i * XD + j];
            rec += (d1 * d1 + d2 * d2) / (N * XD);
        }
        pos += rms(o->S1[i], o->S2[i]) / N;
    }
    for (int i = 0; i < P; i++) neg += rms(o->S1[i], o->S1[i + P]) / P;
    outs *w = (outs *)o;
    double yc = soft_ce(w->z1, w->z2) + soft_ce(w->z2, w->z1);
    double lcon = log1p(exp(pos - neg));
    return 2 * ce + 2 * F->m.sp.lambda_rec * rec + lcon + 2 * yc;
}

static void test_scl_value(void **st) {
    (void)st;
    fixture F;
    make(&F, MD_OBJ_SCL);
    outs o;
    forward(&F, &o);
    double want = scl_by_hand(&F, &o), got = loss(&F, 0);
    printf("    SCL loss %.6f, by hand %.6f\n", got, want);
    assert_true(fabs(got - want) <= 1e-5 * fabs(want));
    // CE objective: the estimator's cross-entropy on cycle 1, nothing else
    drop(&F);
    make(&F, MD_OBJ_CE);
    forward(&F, &o); // no decoder here: only z1
    double ce = 0;
    for (int i = 0; i < N; i++) {
        double p[8];
        softmax(o.z1[i], p);
        ce -= log(p[md_latent_label(&F.m, F.y[i])]) / N;
    }
    assert_true(fabs(loss(&F, 0) - ce) <= 1e-5 * ce);
    drop(&F);
}

// Central differences of L, minus those of the prediction contrast with its
// logits frozen (the stop-gradient: no gradient flows through the softmax
// targets), against the analytic gradient; every parameter and every input x.
static double grad_check(int objective, const char *what) {
    fixture F;
    make(&F, objective);
    outs o0, op, om;
    forward(&F, &o0);
    loss(&F, 1);
    // two step sizes (float32 round-off grows below ~5e-3, curvature above):
    // an entry passes if either central difference agrees
    const double hs[2] = {1e-2, 4e-3};
    double worst = 0, worst_raw = 0;
    int checked = 0;
    for (int pi = 0; pi <= F.st.np; pi++) { // the parameters, then the input x
        float *v = pi < F.st.np ? F.st.params[pi]->t.data : F.x;
        const float *g = pi < F.st.np ? F.st.params[pi]->t.grad : F.x_grad;
        size_t n = pi < F.st.np ? F.st.params[pi]->t.n : (size_t)N * XD;
        for (size_t e = 0; e < n; e++) {
            double err = INFINITY, raw = INFINITY, want = 0;
            for (int q = 0; q < 2; q++) {
                double h = hs[q];
                float keep = v[e];
                v[e] = keep + (float)h;
                double Lp = loss(&F, 0);
                forward(&F, &op);
                v[e] = keep - (float)h;
                double Lm = loss(&F, 0);
                forward(&F, &om);
                v[e] = keep;
                double dY = 2 * (soft_ce(op.z1, o0.z2) + soft_ce(op.z2, o0.z1) - soft_ce(om.z1, o0.z2) - soft_ce(om.z2, o0.z1));
                double fd = (Lp - Lm) / (2 * h), w = fd - dY / (2 * h);
                double eq = fabs(g[e] - w) / (2e-3 + 2e-2 * fabs(w));
                if (eq < err) err = eq, want = w;
                raw = fmin(raw, fabs(g[e] - fd) / (2e-3 + 2e-2 * fabs(fd)));
            }
            worst = fmax(worst, err), worst_raw = fmax(worst_raw, raw);
            if (err > 1) printf("    %s: %s[%zu]: analytic %.6g vs %.6g\n", what, pi < F.st.np ? F.st.params[pi]->t.name : "x", e, g[e], want);
            checked++;
        }
    }
    printf("    %s: %d gradient entries, worst error %.3f of the tolerance (%.1f without the stop-gradient correction)\n",
           what, checked, worst, worst_raw);
    assert_true(worst <= 1);
    drop(&F);
    return worst_raw;
}

static void test_scl_gradient(void **st) {
    (void)st;
    g_slope = 1;
    // the check can tell: ignoring the stop-gradient would fail it
    assert_true(grad_check(MD_OBJ_SCL, "SCL") > 1);
    grad_check(MD_OBJ_SUPCON, "SCL + SupCon");
    grad_check(MD_OBJ_RNC, "SCL + RnC");
    g_slope = 0.2f;
}

// ---- the image model (Inception encoder, image decoder, morphology view) ----

enum { IP = 2, IN = 2 * IP, IC = 2, IS = 16, IAD = 2, IB = 8, IDM = 2, IL = 4 };

typedef struct ifix {
    nn_store st;
    md_latent m;
    nn_ctx c;
    float x[IN * IC * IS * IS], xm[IN * IC * IS * IS], a[IN * IAD], y[IN];
} ifix;

static void io_dihedral_ref(const float *src, float *dst, int S) { io_dihedral(src, dst, S, 1); }

static void imake(ifix *F, int size) {
    memset(F, 0, sizeof *F);
    nn_store_init(&F->st);
    md_latent_spec sp = {.encoder = MD_ENC_INCEPTION, .objective = MD_OBJ_SCL, .x_dim = IC, .a_dim = IAD, .dim_main = IDM,
                         .dim_ext = IL - IDM, .est_hidden = 5, .slope = 0.2f, .bins = IB, .lo = 0, .hi = 4, .lambda_rec = 2,
                         .img_c = IC, .img_size = size, .conv_w = 3, .inc_w = 4, .fc_w = 6, .dec_ch = 2, .dec_w = 3};
    F->m.sp = sp;
    assert_int_equal(nn_ctx_init(&F->c, 16 << 20), 0);
    if (md_latent_make(&F->m, &F->st)) return;
    assert_int_equal(nn_store_finalize(&F->st), 0);
    gn_rng r;
    gn_rng_seed(&r, 12, GN_STREAM_INIT);
    nn_store_reset_values(&F->st, &r);
    tu_randn(F->x, IN * IC * IS * IS, 1, 31);
    tu_randn(F->a, IN * IAD, 1, 32);
    tu_uniform(F->y, IN, 0.1f, 3.9f, 33);
    // the morphology view: a quarter turn of each image (any fixed transform will do here)
    for (int i = 0; i < IN * IC; i++) io_dihedral_ref(F->x + (size_t)i * IS * IS, F->xm + (size_t)i * IS * IS, IS);
}

static void idrop(ifix *F) {
    nn_ctx_free(&F->c);
    nn_store_free(&F->st);
}

typedef struct iouts {
    double z[3][IN][IB], S[3][IN][IDM], rec[3]; // cycles 1, 2 and the morphology view
} iouts;

static nn_tensor *img(ifix *F, const float *v, int grad) {
    nn_tensor *t = nn_tensor_from(&F->c, NN_SHAPE(IN, IC, IS, IS), v);
    t->requires_grad = grad;
    return t;
}

static void iforward(ifix *F, iouts *o) {
    nn_ctx *c = &F->c;
    const md_latent *m = &F->m;
    nn_ctx_reset(c);
    c->grad_enabled = 0;
    nn_tensor *x = img(F, F->x, 0), *xm = img(F, F->xm, 0), *a = nn_tensor_from(c, NN_SHAPE(IN, IAD), F->a);
    nn_tensor *l[3], *xh[3];
    l[0] = md_latent_encode(c, m, x, a);
    xh[0] = md_latent_decode(c, m, l[0]);
    l[1] = md_latent_encode(c, m, xh[0], a);
    xh[1] = md_latent_decode(c, m, l[1]);
    l[2] = md_latent_encode(c, m, xm, a);
    xh[2] = md_latent_decode(c, m, l[2]);
    for (int v = 0; v < 3; v++) {
        assert_non_null(xh[v]);
        assert_int_equal(l[v]->shape[1], IL);
        assert_int_equal(xh[v]->ndim, 4), assert_int_equal(xh[v]->shape[1], IC), assert_int_equal(xh[v]->shape[3], IS);
        nn_tensor *z = md_latent_logits(c, m, l[v]);
        const float *ref = v == 2 ? F->xm : F->x;
        double r = 0;
        for (size_t e = 0; e < xh[v]->n; e++) r += ((double)xh[v]->data[e] - ref[e]) * ((double)xh[v]->data[e] - ref[e]);
        o->rec[v] = r / (double)xh[v]->n;
        for (int i = 0; i < IN; i++) {
            for (int k = 0; k < IB; k++) o->z[v][i][k] = z->data[i * IB + k];
            for (int j = 0; j < IDM; j++) o->S[v][i][j] = l[v]->data[i * IL + j];
        }
    }
}

static double iloss(ifix *F, int backward, float **gx, float **gxm) {
    nn_ctx_reset(&F->c);
    F->c.grad_enabled = backward;
    nn_tensor *x = img(F, F->x, backward), *xm = img(F, F->xm, backward), *a = nn_tensor_from(&F->c, NN_SHAPE(IN, IAD), F->a);
    nn_tensor *L = md_latent_loss(&F->c, &F->m, x, a, xm, F->y, IN);
    assert_non_null(L);
    if (backward) {
        nn_store_zero_grad(&F->st);
        assert_int_equal(nn_backward(&F->c, L), 0);
        *gx = x->grad, *gxm = xm->grad;
    }
    return L->data[0];
}

static void isoftmax(const double *z, double *p) {
    double mx = z[0], s = 0;
    for (int k = 1; k < IB; k++) mx = fmax(mx, z[k]);
    for (int k = 0; k < IB; k++) s += p[k] = exp(z[k] - mx);
    for (int k = 0; k < IB; k++) p[k] /= s;
}

static double isoft_ce(double t[IN][IB], double z[IN][IB]) { // mean_i CE(softmax t_i, z_i)
    double s = 0;
    for (int i = 0; i < IN; i++) {
        double p[IB], q[IB];
        isoftmax(t[i], p), isoftmax(z[i], q);
        for (int k = 0; k < IB; k++) s -= p[k] * log(q[k]);
    }
    return s / IN;
}

static double irms(const double *u, const double *v) {
    double s = 0;
    for (int j = 0; j < IDM; j++) s += (u[j] - v[j]) * (u[j] - v[j]);
    return sqrt(s / IDM + 1e-12);
}

// §1.6 with the morphology view, by hand: CE of both cycles; reconstruction of
// both cycles and of the view; positives (l, l') and (l, l_m), negatives the
// two sets; prediction contrast (z1, z2) and (z1, z_m).
static double iscl_by_hand(ifix *F, iouts *o) {
    double ce = 0, pos = 0, neg = 0;
    for (int i = 0; i < IN; i++) {
        int lab = md_latent_label(&F->m, F->y[i]);
        double p1[IB], p2[IB];
        isoftmax(o->z[0][i], p1), isoftmax(o->z[1][i], p2);
        ce -= (log(p1[lab]) + log(p2[lab])) / IN;
        pos += (irms(o->S[0][i], o->S[1][i]) + irms(o->S[0][i], o->S[2][i])) / (2 * IN);
    }
    for (int i = 0; i < IP; i++) neg += irms(o->S[0][i], o->S[0][i + IP]) / IP;
    double yc = isoft_ce(o->z[0], o->z[1]) + isoft_ce(o->z[1], o->z[0]) + isoft_ce(o->z[0], o->z[2]) + isoft_ce(o->z[2], o->z[0]);
    return 2 * ce + 2 * F->m.sp.lambda_rec * (o->rec[0] + o->rec[1] + o->rec[2]) + log1p(exp(pos - neg)) + 2 * yc;
}

// The Inception model: shapes, the SCL value with the morphology view against
// the hand assembly, and directional derivatives of the whole step (every
// parameter, both images) against central differences corrected for the
// stop-gradient. ReLU kinks can sit inside a finite-difference step, so each
// direction is tried at two step sizes and must agree at one of them.
static void test_image_scl(void **st) {
    (void)st;
    ifix F;
    imake(&F, 24); // not 16 * 2^m
    assert_non_null(strstr(gn_errmsg(), "not 16, 32"));
    idrop(&F);
    imake(&F, 32); // one VALID convolution down to 2 x 2: the sizes build
    assert_int_equal(F.m.n_valid, 1);
    assert_int_equal(F.m.n_dconv, 2 + 2 + 1 + 1);
    idrop(&F);
    imake(&F, IS);
    assert_int_equal(F.m.n_valid, 0);
    iouts o0, op, om;
    iforward(&F, &o0);
    float *gx, *gxm;
    double L = iloss(&F, 1, &gx, &gxm), want = iscl_by_hand(&F, &o0);
    printf("    image SCL with the morphology view: %.6f, by hand %.6f\n", L, want);
    assert_true(fabs(L - want) <= 1e-5 * fabs(want) + 1e-5);
    // analytic directional derivatives
    size_t nx = (size_t)IN * IC * IS * IS;
    float *G = malloc(sizeof(float) * (F.st.n_param_floats + 2 * nx)), *D = malloc(sizeof(float) * (F.st.n_param_floats + 2 * nx));
    assert_non_null(G), assert_non_null(D);
    size_t np = 0;
    for (int pi = 0; pi < F.st.np; pi++)
        for (size_t e = 0; e < F.st.params[pi]->t.n; e++) G[np++] = F.st.params[pi]->t.grad[e];
    memcpy(G + np, gx, sizeof(float) * nx), memcpy(G + np + nx, gxm, sizeof(float) * nx);
    size_t tot = np + 2 * nx;
    int bad = 0;
    for (int dir = 0; dir < 4; dir++) {
        tu_randn(D, tot, 1, 100 + (uint64_t)dir);
        double gd = 0;
        for (size_t e = 0; e < tot; e++) gd += (double)G[e] * D[e];
        double best = INFINITY, fdbest = 0;
        const double hs[2] = {2e-3, 5e-4};
        for (int q = 0; q < 2; q++) {
            double Lpm[2];
            iouts *oo[2] = {&op, &om};
            for (int sgn = 0; sgn < 2; sgn++) {
                double h = sgn ? -hs[q] : hs[q];
                size_t k = 0;
                float *keep = malloc(sizeof(float) * tot);
                for (int pi = 0; pi < F.st.np; pi++)
                    for (size_t e = 0; e < F.st.params[pi]->t.n; e++, k++) keep[k] = F.st.params[pi]->t.data[e], F.st.params[pi]->t.data[e] += (float)(h * D[k]);
                for (size_t e = 0; e < nx; e++) keep[np + e] = F.x[e], F.x[e] += (float)(h * D[np + e]);
                for (size_t e = 0; e < nx; e++) keep[np + nx + e] = F.xm[e], F.xm[e] += (float)(h * D[np + nx + e]);
                Lpm[sgn] = iloss(&F, 0, NULL, NULL);
                iforward(&F, oo[sgn]);
                k = 0;
                for (int pi = 0; pi < F.st.np; pi++)
                    for (size_t e = 0; e < F.st.params[pi]->t.n; e++, k++) F.st.params[pi]->t.data[e] = keep[k];
                memcpy(F.x, keep + np, sizeof(float) * nx), memcpy(F.xm, keep + np + nx, sizeof(float) * nx);
                free(keep);
            }
            // the targets' share of the prediction contrast (held fixed by the stop-gradient)
            double Yp = isoft_ce(op.z[0], o0.z[1]) + isoft_ce(op.z[1], o0.z[0]) + isoft_ce(op.z[0], o0.z[2]) + isoft_ce(op.z[2], o0.z[0]);
            double Ym = isoft_ce(om.z[0], o0.z[1]) + isoft_ce(om.z[1], o0.z[0]) + isoft_ce(om.z[0], o0.z[2]) + isoft_ce(om.z[2], o0.z[0]);
            double fd = (Lpm[0] - Lpm[1] - 2 * (Yp - Ym)) / (2 * hs[q]);
            double err = fabs(fd - gd) / (1e-2 + 1e-2 * fabs(gd));
            if (err < best) best = err, fdbest = fd;
        }
        printf("    direction %d: analytic %.6g, central difference %.6g (%.2f of the tolerance)\n", dir, gd, fdbest, best);
        bad += best > 1;
    }
    assert_int_equal(bad, 0);
    free(G), free(D);
    idrop(&F);
}

static void test_errors(void **st) {
    (void)st;
    fixture F;
    make(&F, MD_OBJ_SCL);
    nn_ctx_reset(&F.c);
    nn_tensor *x = nn_tensor_from(&F.c, NN_SHAPE(5, XD), F.x), *a = nn_tensor_from(&F.c, NN_SHAPE(5, AD), F.a);
    assert_null(md_latent_loss(&F.c, &F.m, x, a, NULL, F.y, 5)); // odd: not pairs
    assert_non_null(strstr(gn_errmsg(), "pairs"));
    drop(&F);
    nn_store s;
    nn_store_init(&s);
    md_latent m = {.sp = {.depth = 0, .hidden = 4, .dim_main = 2, .x_dim = 3, .est_hidden = 4, .bins = 8}};
    assert_int_not_equal(md_latent_make(&m, &s), 0);
    nn_store_free(&s);
}

int main(void) {
    gn_set_threads(1);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_scl_value), cmocka_unit_test(test_scl_gradient),
                                       cmocka_unit_test(test_image_scl), cmocka_unit_test(test_errors)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
