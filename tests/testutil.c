#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const tu_gc_opts TU_GC_DEFAULT = {1e-2, 1e-3, 2e-4, 1, 0};

double tu_rel_err(const float *a, const float *b, size_t n, double floor) {
    double scale = floor, worst = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs(b[i]) > scale) scale = fabs(b[i]);
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        if (!(e <= worst)) worst = e; // NaN-safe: a NaN makes worst NaN
    }
    return worst / scale;
}

double tu_check_close(const char *what, const float *got, const float *want, size_t n, double tol) {
    double e = tu_rel_err(got, want, n, 1e-6);
    if (!(e <= tol)) fail_msg("%s: relative error %.3g exceeds %.3g", what, e, tol);
    return e;
}

const char *tu_data(const char *file) {
    static char buf[512];
    snprintf(buf, sizeof buf, "tests/data/%s", file);
    return buf;
}

const io_array *tu_npz_get(const io_npz *z, const char *name) {
    const io_array *a = io_npz_get(z, name);
    if (!a) fail_msg("reference array '%s' missing", name);
    return a;
}

float *tu_npz_f32(const io_npz *z, const char *name) { return io_array_to_f32(tu_npz_get(z, name)); }

void tu_randn(float *x, size_t n, float s, uint64_t seed) {
    gn_rng r;
    gn_rng_seed(&r, seed, 77);
    for (size_t i = 0; i < n; i++) x[i] = s * (float)gn_rng_normal(&r);
}

void tu_uniform(float *x, size_t n, float lo, float hi, uint64_t seed) {
    gn_rng r;
    gn_rng_seed(&r, seed, 78);
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * (float)gn_rng_uniform(&r);
}

void tu_away_from_zero(float *x, size_t n, float lo, float hi, uint64_t seed) {
    gn_rng r;
    gn_rng_seed(&r, seed, 79);
    for (size_t i = 0; i < n; i++) {
        float m = lo + (hi - lo) * (float)gn_rng_uniform(&r);
        x[i] = gn_rng_below(&r, 2) ? m : -m;
    }
}

tu_input tu_in(int ndim, const int *shape, float *data, int grad) {
    tu_input t = {0};
    t.ndim = ndim;
    memcpy(t.shape, shape, sizeof(int) * (size_t)ndim);
    t.data = data;
    t.grad = grad;
    return t;
}

int tu_sanitized(void) { return getenv("GALNN_SAN") != NULL; }

// One evaluation: fresh tensors from the input arrays, forward, L = sum w*out.
static nn_tensor *eval(nn_ctx *c, tu_fn f, void *user, int nin, tu_input *in, nn_tensor **t, const float *w,
                       size_t *nout, double *L) {
    nn_ctx_reset(c);
    gn_rng_seed(&c->dropout_rng, 5, GN_STREAM_DROPOUT); // same dropout mask every evaluation
    for (int k = 0; k < nin; k++) {
        t[k] = nn_tensor_from(c, in[k].ndim, in[k].shape, in[k].data);
        assert_non_null(t[k]);
        t[k]->requires_grad = (unsigned char)in[k].grad;
    }
    nn_tensor *out = f(c, t, user);
    if (!out) fail_msg("forward failed: %s", gn_errmsg());
    *nout = out->n;
    double s = 0;
    if (w)
        for (size_t i = 0; i < out->n; i++) s += (double)w[i] * out->data[i];
    *L = s;
    return out;
}

double tu_gradcheck(const char *what, tu_fn f, void *user, int nin, tu_input *in, tu_gc_opts o) {
    nn_ctx c;
    assert_int_equal(nn_ctx_init(&c, 1u << 20), 0);
    c.training = o.training;
    if (o.winograd) c.winograd = o.winograd < 0 ? 0 : o.winograd;
    nn_tensor *t[8];
    assert_true(nin <= 8);
    size_t nout;
    double L;
    eval(&c, f, user, nin, in, t, NULL, &nout, &L);
    float *w = malloc(sizeof(float) * nout);
    tu_randn(w, nout, 1.0f, 4242);
    nn_tensor *out = eval(&c, f, user, nin, in, t, w, &nout, &L);
    // analytic
    float *ana[8] = {0};
    if (out->requires_grad) {
        float *g = nn_grad(&c, out);
        memcpy(g, w, sizeof(float) * nout);
        if (nn_backward(&c, out)) fail_msg("%s: backward failed: %s", what, gn_errmsg());
    }
    for (int k = 0; k < nin; k++) {
        if (!in[k].grad) continue;
        size_t n = nn_numel(in[k].ndim, in[k].shape);
        ana[k] = calloc(n, sizeof(float));
        if (t[k]->grad) memcpy(ana[k], t[k]->grad, sizeof(float) * n);
    }
    double worst = 0;
    char where[128] = "";
    for (int k = 0; k < nin; k++) {
        if (!in[k].grad) continue;
        size_t n = nn_numel(in[k].ndim, in[k].shape);
        for (size_t i = 0; i < n; i++) {
            float x0 = in[k].data[i];
            double lp, lm;
            in[k].data[i] = x0 + (float)o.h;
            eval(&c, f, user, nin, in, t, w, &nout, &lp);
            in[k].data[i] = x0 - (float)o.h;
            eval(&c, f, user, nin, in, t, w, &nout, &lm);
            in[k].data[i] = x0;
            double num = (lp - lm) / (2 * o.h);
            double r = fabs(ana[k][i] - num) / (o.atol + o.rtol * fabs(num));
            if (!(r <= worst)) {
                worst = r;
                snprintf(where, sizeof where, "input %d element %zu: analytic %.6g numeric %.6g", k, i,
                         (double)ana[k][i], num);
            }
        }
    }
    for (int k = 0; k < nin; k++) free(ana[k]);
    free(w);
    nn_ctx_free(&c);
    if (!(worst <= 1.0)) fail_msg("%s: gradient mismatch at %s", what, where);
    return worst;
}

static char tmpdir[64];

int tu_tmpdir_setup(void **state) {
    (void)state;
    strcpy(tmpdir, "/tmp/galnn_test_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

int tu_tmpdir_teardown(void **state) {
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

const char *tu_tmpdir(void) { return tmpdir; }

const char *tu_tmp(const char *file) {
    static char b[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(b[k], sizeof b[k], "%s/%s", tmpdir, file);
    return b[k];
}
