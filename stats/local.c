#include "local.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../common/gn_common.h"
#include "../common/gn_rng.h"

// §1.10: closed-form normal equations (Cramer's rule) of the quadratic fit.
// x is centred and scaled to unit RMS first: the fit and residuals are the
// same, and the sums up to x^4 stay well conditioned for x ~ 10 (log M*).
int st_quadfit(const double *x, const double *y, int n, double *coef, double *e) {
    if (n <= 0) return -1;
    double mx = 0, my = 0;
    for (int i = 0; i < n; i++) mx += x[i], my += y[i];
    mx /= n, my /= n;
    double sxx = 0;
    for (int i = 0; i < n; i++) sxx += (x[i] - mx) * (x[i] - mx);
    double sc = sxx > 0 ? sqrt(sxx / n) : 1;
    double N = n, Sx = 0, Sx2 = 0, Sx3 = 0, Sx4 = 0, Sy = 0, Sxy = 0, Sx2y = 0;
    for (int i = 0; i < n; i++) {
        double u = (x[i] - mx) / sc, u2 = u * u, v = y[i] - my;
        Sx += u, Sx2 += u2, Sx3 += u2 * u, Sx4 += u2 * u2, Sy += v, Sxy += u * v, Sx2y += u2 * v;
    }
    double a0 = 0, a1 = 0, a2 = 0;
    int deg = 0;
    double D = N * Sx2 * Sx4 + 2 * Sx * Sx2 * Sx3 - Sx2 * Sx2 * Sx2 - N * Sx3 * Sx3 - Sx * Sx * Sx4;
    // With unit-RMS u, D ~ n^3 for three or more distinct values; exactly two
    // values give D = 0 up to rounding.
    if (sxx > 0 && D > 1e-9 * N * N * N) {
        a0 =
            ((Sx2 * Sx4 - Sx3 * Sx3) * Sy + (Sx2 * Sx3 - Sx * Sx4) * Sxy + (Sx * Sx3 - Sx2 * Sx2) * Sx2y) / D;
        a1 = ((Sx2 * Sx3 - Sx * Sx4) * Sy + (N * Sx4 - Sx2 * Sx2) * Sxy + (Sx * Sx2 - N * Sx3) * Sx2y) / D;
        a2 = ((Sx * Sx3 - Sx2 * Sx2) * Sy + (Sx * Sx2 - N * Sx3) * Sxy + (N * Sx2 - Sx * Sx) * Sx2y) / D;
        deg = 2;
    } else if (sxx > 0) { // a line through centred data
        a1 = Sxy / Sx2, a0 = Sy / N - a1 * Sx / N;
        deg = 1;
    } else
        a0 = Sy / N;
    for (int i = 0; i < n; i++) {
        double u = (x[i] - mx) / sc;
        e[i] = (y[i] - my) - (a0 + a1 * u + a2 * u * u);
    }
    if (coef) { // back to the coefficients of x itself: u = (x - mx)/sc
        double b2 = a2 / (sc * sc), b1 = a1 / sc - 2 * a2 * mx / (sc * sc);
        coef[0] = my + a0 - a1 * mx / sc + a2 * mx * mx / (sc * sc), coef[1] = b1, coef[2] = b2;
    }
    return deg;
}

double st_pearson(const double *x, const double *y, int n) {
    if (n < 2) return NAN;
    double mx = 0, my = 0;
    for (int i = 0; i < n; i++) mx += x[i], my += y[i];
    mx /= n, my /= n;
    double sxy = 0, sxx = 0, syy = 0;
    for (int i = 0; i < n; i++) {
        double a = x[i] - mx, b = y[i] - my;
        sxy += a * b, sxx += a * a, syy += b * b;
    }
    if (!(sxx > 0) || !(syy > 0)) return NAN;
    return sxy / sqrt(sxx * syy);
}

static double var(const double *v, int n) {
    double m = 0, s = 0;
    for (int i = 0; i < n; i++) m += v[i];
    m /= n;
    for (int i = 0; i < n; i++) s += (v[i] - m) * (v[i] - m);
    return s / n;
}

static double pe_buf(const double *x, const double *y, int n, double *e) {
    if (n < 2) return NAN;
    double vy = var(y, n);
    if (!(vy > 0)) return NAN;
    st_quadfit(x, y, n, NULL, e);
    return (vy - var(e, n)) / vy;
}

double st_pred_eff(const double *x, const double *y, int n) {
    double *e = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    if (!e) return NAN;
    double v = pe_buf(x, y, n, e);
    free(e);
    return v;
}

static int valid(double v, double null_abs) { return isfinite(v) && fabs(v) < null_abs; }

static void local_one(const uint32_t *nb, int k, const double *y, const double *x, const double *c,
                      const double *g, const st_local_opts *o, uint64_t q, double *buf, st_local_row *out) {
    double *yy = buf, *xx = buf + k, *cc = buf + 2 * k, *gg = buf + 3 * k, *yp = buf + 4 * k,
           *e = buf + 5 * k;
    int n = 0;
    for (int j = 0; j < k; j++) {
        uint32_t i = nb[j];
        if (!valid(y[i], o->null_abs) || !valid(x[i], o->null_abs) || (c && !valid(c[i], o->null_abs)) ||
            (g && !valid(g[i], o->null_abs)))
            continue;
        yy[n] = y[i], xx[n] = x[i], cc[n] = c ? c[i] : 0, gg[n] = g ? g[i] : 0;
        n++;
    }
    out->n_valid = n;
    out->r = out->r_perm = out->pe = out->pe_perm = out->p_r = out->p_pe = NAN;
    if (n < o->min_valid || n < 3) return;
    if (g) { // pre-conditioning: every variable residualised on g
        st_quadfit(gg, yy, n, NULL, yy);
        st_quadfit(gg, xx, n, NULL, xx);
        if (c) st_quadfit(gg, cc, n, NULL, cc);
    }
    if (c) {
        st_quadfit(cc, yy, n, NULL, yy);
        st_quadfit(cc, xx, n, NULL, xx);
    }
    double r = st_pearson(xx, yy, n), pe = pe_buf(xx, yy, n, e);
    out->r = r, out->pe = pe;
    if (isnan(r) || isnan(pe)) {
        out->r = out->pe = NAN;
        return;
    }
    gn_rng rng;
    gn_rng_seed(&rng, o->seed, 0x4c4f43414cULL + o->q0 + q); // "LOCAL" + galaxy: a stream per query
    int cr = 0, cp = 0;
    for (int b = 0; b < o->perms; b++) {
        memcpy(yp, yy, sizeof(double) * (size_t)n);
        for (int i = n - 1; i > 0; i--) { // Fisher-Yates
            uint32_t j = gn_rng_below(&rng, (uint32_t)i + 1);
            double t = yp[i];
            yp[i] = yp[j], yp[j] = t;
        }
        double rb = st_pearson(xx, yp, n), pb = pe_buf(xx, yp, n, e);
        if (b == 0) out->r_perm = rb, out->pe_perm = pb;
        cr += fabs(rb) >= fabs(r), cp += pb >= pe;
    }
    out->p_r = (1.0 + cr) / (o->perms + 1.0);
    out->p_pe = (1.0 + cp) / (o->perms + 1.0);
}

int st_local_test(const uint32_t *nb, size_t nq, int k, const double *y, const double *x, const double *c,
                  const double *g, const st_local_opts *opts, st_local_row *out) {
    st_local_opts o = {1, 10, 0, 9000, 0};
    if (opts) o = *opts;
    if (o.perms < 1)
        return gn_err(GN_EINVAL, "local test: the number of permutations must be >= 1 (got %d)", o.perms);
    if (o.min_valid < 3) o.min_valid = 3;
    if (!(o.null_abs > 0)) o.null_abs = 9000;
    if (k < 3) return gn_err(GN_EINVAL, "local test: K = %d neighbours is too few (at least 3)", k);
    int rc = GN_OK;
#pragma omp parallel
    {
        double *buf = malloc(sizeof(double) * 6 * (size_t)k);
        if (!buf) {
#pragma omp atomic write
            rc = GN_ENOMEM;
        }
#pragma omp for schedule(dynamic, 64)
        for (size_t q = 0; q < nq; q++)
            if (buf) local_one(nb + q * (size_t)k, k, y, x, c, g, &o, q, buf, &out[q]);
        free(buf);
    }
    return rc ? gn_err(rc, "local test: out of memory") : GN_OK;
}

static int cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// Sorted copy of the non-NaN values.
static double *sorted(const double *x, size_t n, size_t *m) {
    double *s = malloc(sizeof(double) * (n ? n : 1));
    if (!s) return NULL;
    *m = 0;
    for (size_t i = 0; i < n; i++)
        if (!isnan(x[i])) s[(*m)++] = x[i];
    qsort(s, *m, sizeof(double), cmpd);
    return s;
}

static double pct_sorted(const double *s, size_t m, double q) {
    if (!m) return NAN;
    double h = (m - 1) * q / 100.0;
    size_t lo = (size_t)floor(h);
    if (lo + 1 >= m) return s[m - 1];
    return s[lo] + (h - lo) * (s[lo + 1] - s[lo]);
}

double st_percentile(const double *x, size_t n, double q) {
    size_t m;
    double *s = sorted(x, n, &m);
    if (!s) return NAN;
    double v = pct_sorted(s, m, q);
    free(s);
    return v;
}

int st_ks2(const double *a, size_t na, const double *b, size_t nb, double *D, double *p) {
    size_t m1, m2;
    double *s1 = sorted(a, na, &m1), *s2 = sorted(b, nb, &m2);
    int rc = GN_OK;
    if (!s1 || !s2)
        rc = gn_err(GN_ENOMEM, "KS test: out of memory");
    else if (!m1 || !m2)
        rc = gn_err(GN_EINVAL, "KS test: a sample is empty");
    if (rc) {
        free(s1), free(s2);
        return rc;
    }
    size_t i = 0, j = 0;
    double d = 0;
    while (i < m1 && j < m2) {
        double v = fmin(s1[i], s2[j]);
        while (i < m1 && s1[i] == v) i++;
        while (j < m2 && s2[j] == v) j++;
        d = fmax(d, fabs((double)i / m1 - (double)j / m2));
    }
    double en = sqrt((double)m1 * m2 / (m1 + m2)), lam = (en + 0.12 + 0.11 / en) * d, q = 0;
    if (lam < 0.2)
        q = 1; // the series converges slowly there; Q(0.2) = 1 - 1e-20
    else {
        double sgn = 1;
        for (int k = 1; k <= 200; k++, sgn = -sgn) {
            double t = 2 * sgn * exp(-2.0 * k * k * lam * lam);
            q += t;
            if (fabs(t) < 1e-16) break;
        }
    }
    *D = d, *p = fmin(1, fmax(0, q));
    free(s1), free(s2);
    return GN_OK;
}

int st_local_summarize(const st_local_row *rows, size_t n, const uint8_t *sel, st_local_summary *s) {
    memset(s, 0, sizeof *s);
    double *v = malloc(sizeof(double) * 4 * (n ? n : 1));
    if (!v) return gn_err(GN_ENOMEM, "local summary: out of memory");
    double *r = v, *rp = v + n, *pe = v + 2 * n, *pp = v + 3 * n;
    size_t m = 0, sig = 0;
    for (size_t i = 0; i < n; i++) {
        if (sel && !sel[i]) continue;
        if (isnan(rows[i].r)) {
            s->n_nan++;
            continue;
        }
        r[m] = rows[i].r, rp[m] = rows[i].r_perm, pe[m] = rows[i].pe, pp[m] = rows[i].pe_perm;
        sig += rows[i].p_pe < 0.05;
        m++;
    }
    s->n = m;
    static const double Q[3] = {16, 50, 84};
    for (int j = 0; j < 3; j++) {
        s->r[j] = st_percentile(r, m, Q[j]), s->r_perm[j] = st_percentile(rp, m, Q[j]);
        s->pe[j] = st_percentile(pe, m, Q[j]), s->pe_perm[j] = st_percentile(pp, m, Q[j]);
    }
    s->ks_r = s->p_ks_r = s->ks_pe = s->p_ks_pe = NAN;
    s->frac_p05 = m ? (double)sig / m : NAN;
    int rc = GN_OK;
    if (m) {
        rc = st_ks2(r, m, rp, m, &s->ks_r, &s->p_ks_r);
        if (!rc) rc = st_ks2(pe, m, pp, m, &s->ks_pe, &s->p_ks_pe);
    }
    free(v);
    return rc;
}
