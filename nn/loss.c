// Losses, each one fused node (stable forms, exact gradients). All return a
// scalar (rank-0) tensor.
#include <math.h>
#include <string.h>

#include "ops.h"

static int same_or_err(const nn_tensor *a, const nn_tensor *b, const char *what) {
    if (nn_same_shape(a, b)) return GN_OK;
    char s1[96], s2[96];
    return gn_err(GN_EINVAL, "%s: shapes %s and %s differ", what, nn_shape_str(a, s1, sizeof s1),
                  nn_shape_str(b, s2, sizeof s2));
}

static nn_tensor *scalar(nn_ctx *c, double v) {
    nn_tensor *y = nn_tensor_new(c, 0, NULL);
    if (y) y->data[0] = (float)v;
    return y;
}

// ---- MSE / L1: in[0] = pred, in[1] = target; ia[0] = 1 for L1 ----

static void reg_bw(nn_node *nd, nn_ctx *c) {
    (void)c;
    nn_tensor *p = nd->in[0], *t = nd->in[1];
    float g = nd->out->grad[0] / (float)p->n;
    for (size_t i = 0; i < p->n; i++) {
        float d = p->data[i] - t->data[i];
        float gi = nd->ia[0] ? g * (float)((d > 0) - (d < 0)) : 2.0f * g * d;
        if (p->grad) p->grad[i] += gi;
        if (t->grad) t->grad[i] -= gi;
    }
}

static nn_tensor *reg_loss(nn_ctx *c, nn_tensor *p, nn_tensor *t, int l1) {
    if (!p || !t) return NULL;
    if (same_or_err(p, t, l1 ? "l1_loss" : "mse_loss")) return NULL;
    double s = 0;
    for (size_t i = 0; i < p->n; i++) {
        double d = (double)p->data[i] - t->data[i];
        s += l1 ? fabs(d) : d * d;
    }
    nn_tensor *y = scalar(c, s / (double)p->n);
    nn_tensor *in[2] = {p, t};
    nn_node *nd = y ? nn_record(c, y, reg_bw, 2, in) : NULL;
    if (nd) nd->ia[0] = l1;
    return y;
}

nn_tensor *nn_mse_loss(nn_ctx *c, nn_tensor *p, nn_tensor *t) { return reg_loss(c, p, t, 0); }
nn_tensor *nn_l1_loss(nn_ctx *c, nn_tensor *p, nn_tensor *t) { return reg_loss(c, p, t, 1); }

// ---- cross-entropy: saved = log-softmax (N, K) then labels ----

static int ce_logits_ok(const nn_tensor *x, const char *what) {
    char s[96];
    if (x->ndim != 2)
        return gn_err(GN_EINVAL, "%s: logits %s are not (N, K)", what, nn_shape_str(x, s, sizeof s));
    return GN_OK;
}

static void log_softmax_rows(const float *x, float *ls, int N, int K) {
    for (int n = 0; n < N; n++) {
        const float *r = x + (size_t)n * K;
        float m = r[0];
        for (int k = 1; k < K; k++)
            if (r[k] > m) m = r[k];
        double s = 0;
        for (int k = 0; k < K; k++) s += exp((double)(r[k] - m));
        float lse = m + (float)log(s);
        for (int k = 0; k < K; k++) ls[(size_t)n * K + k] = r[k] - lse;
    }
}

static void ce_bw(nn_node *nd, nn_ctx *c) {
    (void)c;
    nn_tensor *x = nd->in[0];
    int N = x->shape[0], K = x->shape[1], soft = nd->ia[0];
    const float *ls = nd->saved;
    const int32_t *lab = (const int32_t *)(ls + x->n);
    const nn_tensor *q = nd->aux;
    float g = nd->out->grad[0] / (float)N;
    for (int n = 0; n < N; n++) {
        float qs = 1.0f;
        if (soft) {
            qs = 0;
            for (int k = 0; k < K; k++) qs += q->data[(size_t)n * K + k];
        }
        for (int k = 0; k < K; k++) {
            size_t i = (size_t)n * K + k;
            float target = soft ? q->data[i] : (k == lab[n] ? 1.0f : 0.0f);
            x->grad[i] += g * (expf(ls[i]) * qs - target);
        }
    }
}

nn_tensor *nn_cross_entropy(nn_ctx *c, nn_tensor *x, const int32_t *labels) {
    if (!x) return NULL;
    if (ce_logits_ok(x, "cross_entropy")) return NULL;
    int N = x->shape[0], K = x->shape[1];
    for (int n = 0; n < N; n++)
        if (labels[n] < 0 || labels[n] >= K) {
            gn_err(GN_EINVAL, "cross_entropy: label %d of row %d outside [0, %d)", labels[n], n, K);
            return NULL;
        }
    float *ls = nn_arena_alloc(&c->arena, sizeof(float) * x->n + sizeof(int32_t) * (size_t)N);
    if (!ls) return NULL;
    log_softmax_rows(x->data, ls, N, K);
    memcpy(ls + x->n, labels, sizeof(int32_t) * (size_t)N);
    double s = 0;
    for (int n = 0; n < N; n++) s -= ls[(size_t)n * K + labels[n]];
    nn_tensor *y = scalar(c, s / N);
    nn_node *nd = y ? nn_record(c, y, ce_bw, 1, &x) : NULL;
    if (nd) {
        nd->saved = ls;
        nd->ia[0] = 0;
    }
    return y;
}

nn_tensor *nn_cross_entropy_soft(nn_ctx *c, nn_tensor *x, nn_tensor *q) {
    if (!x || !q) return NULL;
    if (ce_logits_ok(x, "cross_entropy_soft") || same_or_err(x, q, "cross_entropy_soft")) return NULL;
    int N = x->shape[0], K = x->shape[1];
    float *ls = nn_arena_alloc(&c->arena, sizeof(float) * x->n);
    if (!ls) return NULL;
    log_softmax_rows(x->data, ls, N, K);
    double s = 0;
    for (size_t i = 0; i < x->n; i++) s -= (double)q->data[i] * ls[i];
    nn_tensor *y = scalar(c, s / N);
    // The targets are constants: only the logits are a differentiable input.
    nn_node *nd = y ? nn_record(c, y, ce_bw, 1, &x) : NULL;
    if (nd) {
        nd->saved = ls;
        nd->ia[0] = 1;
        nd->aux = q; // read, never differentiated (stop-gradient)
    }
    return y;
}

// ---- BCE with logits: in[0] logits; targets are constants (aux) ----

static void bce_bw(nn_node *nd, nn_ctx *c) {
    (void)c;
    nn_tensor *x = nd->in[0];
    const nn_tensor *t = nd->aux;
    float g = nd->out->grad[0] / (float)x->n;
    for (size_t i = 0; i < x->n; i++) {
        float v = x->data[i];
        float s = v >= 0 ? 1.0f / (1.0f + expf(-v)) : expf(v) / (1.0f + expf(v));
        x->grad[i] += g * (s - t->data[i]);
    }
}

nn_tensor *nn_bce_with_logits(nn_ctx *c, nn_tensor *x, nn_tensor *t) {
    if (!x || !t) return NULL;
    if (same_or_err(x, t, "bce_with_logits")) return NULL;
    double s = 0;
    for (size_t i = 0; i < x->n; i++) {
        double v = x->data[i];
        s += (v > 0 ? v : 0) - v * t->data[i] + log1p(exp(-fabs(v)));
    }
    nn_tensor *y = scalar(c, s / (double)x->n);
    nn_node *nd = y ? nn_record(c, y, bce_bw, 1, &x) : NULL;
    if (nd) nd->aux = t;
    return y;
}

// ---- Gaussian NLL: in = mu, logvar, y ----

static void gnll_bw(nn_node *nd, nn_ctx *c) {
    (void)c;
    nn_tensor *mu = nd->in[0], *lv = nd->in[1], *y = nd->in[2];
    float g = nd->out->grad[0] / (float)mu->n;
    for (size_t i = 0; i < mu->n; i++) {
        float iv = expf(-lv->data[i]), d = y->data[i] - mu->data[i];
        if (mu->grad) mu->grad[i] -= g * d * iv;
        if (y->grad) y->grad[i] += g * d * iv;
        if (lv->grad) lv->grad[i] += g * 0.5f * (1.0f - d * d * iv);
    }
}

nn_tensor *nn_gaussian_nll(nn_ctx *c, nn_tensor *mu, nn_tensor *lv, nn_tensor *y, int full) {
    if (!mu || !lv || !y) return NULL;
    if (same_or_err(mu, lv, "gaussian_nll") || same_or_err(mu, y, "gaussian_nll")) return NULL;
    double s = 0;
    for (size_t i = 0; i < mu->n; i++) {
        double d = (double)y->data[i] - mu->data[i];
        s += 0.5 * (lv->data[i] + d * d * exp(-(double)lv->data[i]));
    }
    s /= (double)mu->n;
    if (full) s += 0.5 * log(2 * M_PI);
    nn_tensor *out = scalar(c, s);
    nn_tensor *in[3] = {mu, lv, y};
    if (out) nn_record(c, out, gnll_bw, 3, in);
    return out;
}

// ---- KL(N(mu, e^lv) || N(0, 1)): in = mu, logvar ----

static void kl_bw(nn_node *nd, nn_ctx *c) {
    (void)c;
    nn_tensor *mu = nd->in[0], *lv = nd->in[1];
    int D = mu->shape[mu->ndim - 1];
    float g = nd->out->grad[0] / (float)(mu->n / (size_t)D);
    for (size_t i = 0; i < mu->n; i++) {
        if (mu->grad) mu->grad[i] += g * mu->data[i];
        if (lv->grad) lv->grad[i] += g * 0.5f * (expf(lv->data[i]) - 1.0f);
    }
}

nn_tensor *nn_kl_normal(nn_ctx *c, nn_tensor *mu, nn_tensor *lv) {
    if (!mu || !lv) return NULL;
    if (same_or_err(mu, lv, "kl_normal")) return NULL;
    if (mu->ndim < 1) {
        gn_err(GN_EINVAL, "kl_normal: needs at least one axis");
        return NULL;
    }
    int D = mu->shape[mu->ndim - 1];
    double s = 0;
    for (size_t i = 0; i < mu->n; i++) {
        double m = mu->data[i], l = lv->data[i];
        s += -0.5 * (1 + l - m * m - exp(l));
    }
    nn_tensor *out = scalar(c, s / (double)(mu->n / (size_t)D));
    nn_tensor *in[2] = {mu, lv};
    if (out) nn_record(c, out, kl_bw, 2, in);
    return out;
}

// ---- contrastive losses on a batch of feature rows (spec/stats.md §E) ----
// The gradient with respect to the pair scores is formed in the forward pass
// (double precision, O(n^2) or O(n^3) for n rows) and saved; backward only
// scales it by the incoming gradient and applies the chain rule to the rows.

// SupCon (Khosla et al. 2020, §E.1): rows are view-major (row v*B + i is view
// v of sample i), l_ij = f_i.f_j / tau over j != i, positives j != i with the
// same label (no labels: the other views of the same sample), anchors without
// positives contribute 0 and still count; loss = -(tau/base) mean_i of the
// mean log-probability of i's positives. dL/df_i = sum_k (G_ik + G_ki) f_k / tau.
static void supcon_bw(nn_node *nd, nn_ctx *c) {
    (void)c;
    nn_tensor *f = nd->in[0];
    int n = f->shape[0], D = f->shape[1];
    const double *G = nd->saved; // (n, n) dL/dl_ij
    double g = nd->out->grad[0] / nd->fa[0];
    for (int i = 0; i < n; i++)
        for (int k = 0; k < n; k++) {
            double w = g * (G[(size_t)i * n + k] + G[(size_t)k * n + i]);
            if (w == 0) continue;
            for (int d = 0; d < D; d++) f->grad[(size_t)i * D + d] += (float)(w * f->data[(size_t)k * D + d]);
        }
}

nn_tensor *nn_supcon_loss(nn_ctx *c, nn_tensor *f, int views, const int32_t *labels, float tau,
                          float base_tau) {
    if (!f) return NULL;
    if (f->ndim != 2 || views < 1 || f->shape[0] % views || !(tau > 0) || !(base_tau > 0)) {
        gn_err(GN_EINVAL, "supcon_loss: features must be (views x B, D) with views >= 1 and tau > 0");
        return NULL;
    }
    int n = f->shape[0], D = f->shape[1], B = n / views;
    double *G = nn_arena_alloc(&c->arena, sizeof(double) * (size_t)n * n),
           *l = nn_arena_alloc(&c->arena, sizeof(double) * (size_t)n);
    if (!G || !l) return NULL;
    double scale = (double)tau / base_tau, total = 0;
    for (int i = 0; i < n; i++) {
        double mx = -INFINITY;
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int d = 0; d < D; d++) s += (double)f->data[(size_t)i * D + d] * f->data[(size_t)j * D + d];
            l[j] = s / tau;
            if (j != i && l[j] > mx) mx = l[j];
        }
        double z = 0;
        for (int j = 0; j < n; j++)
            if (j != i) z += exp(l[j] - mx);
        double lse = mx + log(z);
        int npos = 0;
        for (int j = 0; j < n; j++)
            if (j != i && (labels ? labels[i % B] == labels[j % B] : i % B == j % B)) npos++;
        double P = npos ? npos : 1, mlpp = 0;
        for (int j = 0; j < n; j++) {
            double *g = &G[(size_t)i * n + j];
            if (j == i) {
                *g = 0;
                continue;
            }
            int pos = labels ? labels[i % B] == labels[j % B] : i % B == j % B;
            if (pos) mlpp += l[j] - lse;
            *g = -scale / n / P * ((pos ? 1.0 : 0.0) - npos * exp(l[j] - lse)) / tau; // includes d l / d(f.f)
        }
        total += mlpp / P;
    }
    nn_tensor *y = scalar(c, -scale * total / n);
    nn_node *nd = y ? nn_record(c, y, supcon_bw, 1, &f) : NULL;
    if (nd) nd->saved = G, nd->fa[0] = 1;
    return y;
}

// Rank-N-Contrast (Zha et al. 2023, §E.2): rows view-major as above with
// labels (B, dy) repeated per view; s_ij = -|f_i - f_j|_2 / tau, d_ij =
// |y_i - y_j|_1; loss = sum_i sum_{j != i} -log(e^{s_ij} / sum_{k != i,
// d_ik >= d_ij} e^{s_ik}) / (n (n - 1)).
static void rnc_bw(nn_node *nd, nn_ctx *c) {
    (void)c;
    nn_tensor *f = nd->in[0];
    int n = f->shape[0], D = f->shape[1];
    const double *G = nd->saved; // (n, n) dL/ds_ij
    double g = nd->out->grad[0], tau = nd->fa[0];
    for (int i = 0; i < n; i++)
        for (int k = 0; k < n; k++) {
            double w = G[(size_t)i * n + k];
            if (w == 0 || k == i) continue;
            double r = 0;
            for (int d = 0; d < D; d++) {
                double v = (double)f->data[(size_t)i * D + d] - f->data[(size_t)k * D + d];
                r += v * v;
            }
            r = sqrt(r);
            if (r == 0) continue; // the norm's subgradient 0 at coincident rows
            double a = -g * w / (tau * r); // ds_ik/df_i = -(f_i - f_k) / (tau r)
            for (int d = 0; d < D; d++) {
                double v = (double)f->data[(size_t)i * D + d] - f->data[(size_t)k * D + d];
                f->grad[(size_t)i * D + d] += (float)(a * v);
                f->grad[(size_t)k * D + d] -= (float)(a * v);
            }
        }
}

nn_tensor *nn_rnc_loss(nn_ctx *c, nn_tensor *f, int views, const float *labels, int dy, float tau) {
    if (!f) return NULL;
    if (f->ndim != 2 || views < 1 || f->shape[0] % views || f->shape[0] < 2 || dy < 1 || !(tau > 0)) {
        gn_err(GN_EINVAL, "rnc_loss: features must be (views x B, D) with at least 2 rows, dy >= 1, tau > 0");
        return NULL;
    }
    int n = f->shape[0], D = f->shape[1], B = n / views;
    size_t nn2 = (size_t)n * n;
    double *G = nn_arena_alloc(&c->arena, sizeof(double) * nn2),
           *s = nn_arena_alloc(&c->arena, sizeof(double) * nn2),
           *dl = nn_arena_alloc(&c->arena, sizeof(double) * nn2);
    if (!G || !s || !dl) return NULL;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double r = 0, a = 0;
            for (int d = 0; d < D; d++) {
                double v = (double)f->data[(size_t)i * D + d] - f->data[(size_t)j * D + d];
                r += v * v;
            }
            for (int t = 0; t < dy; t++)
                a += fabs((double)labels[(i % B) * dy + t] - labels[(j % B) * dy + t]);
            s[(size_t)i * n + j] = -sqrt(r) / tau, dl[(size_t)i * n + j] = a;
            G[(size_t)i * n + j] = 0;
        }
    double total = 0, norm = (double)n * (n - 1);
    for (int i = 0; i < n; i++) {
        const double *si = s + (size_t)i * n, *di = dl + (size_t)i * n;
        double mx = -INFINITY;
        for (int k = 0; k < n; k++)
            if (k != i && si[k] > mx) mx = si[k];
        for (int j = 0; j < n; j++) {
            if (j == i) continue;
            double z = 0;
            for (int k = 0; k < n; k++)
                if (k != i && di[k] >= di[j]) z += exp(si[k] - mx);
            total += -(si[j] - mx - log(z));
            G[(size_t)i * n + j] -= 1 / norm;
            for (int k = 0; k < n; k++)
                if (k != i && di[k] >= di[j]) G[(size_t)i * n + k] += exp(si[k] - mx) / z / norm;
        }
    }
    nn_tensor *y = scalar(c, total / norm);
    nn_node *nd = y ? nn_record(c, y, rnc_bw, 1, &f) : NULL;
    if (nd) nd->saved = G, nd->fa[0] = tau;
    return y;
}
