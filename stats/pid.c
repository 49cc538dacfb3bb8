#include "pid.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../common/gn_common.h"
#include "../common/gn_rng.h"
#include "local.h"
#include "mi.h"

#define P3(d, a, b, c) ((d)->p[((size_t)(a) * (d)->n1 + (b)) * (d)->ny + (c)])

typedef struct marg {
    double *p0, *p1, *py, *p01, *p0y, *p1y; // marginals
} marg;

static int marg_init(marg *m, int n0, int n1, int ny, const double *p) {
    m->p0 = calloc((size_t)n0, sizeof(double)), m->p1 = calloc((size_t)n1, sizeof(double));
    m->py = calloc((size_t)ny, sizeof(double)), m->p01 = calloc((size_t)n0 * n1, sizeof(double));
    m->p0y = calloc((size_t)n0 * ny, sizeof(double)), m->p1y = calloc((size_t)n1 * ny, sizeof(double));
    if (!m->p0 || !m->p1 || !m->py || !m->p01 || !m->p0y || !m->p1y) return GN_ENOMEM;
    for (int a = 0; a < n0; a++)
        for (int b = 0; b < n1; b++)
            for (int c = 0; c < ny; c++) {
                double v = p[((size_t)a * n1 + b) * ny + c];
                m->p0[a] += v, m->p1[b] += v, m->py[c] += v;
                m->p01[a * n1 + b] += v, m->p0y[a * ny + c] += v, m->p1y[b * ny + c] += v;
            }
    return GN_OK;
}

static void marg_free(marg *m) {
    free(m->p0), free(m->p1), free(m->py), free(m->p01), free(m->p0y), free(m->p1y);
}

// I(Y; X0X1) of a table q with the given y-marginal (bits)
static double mi_joint(int n0, int n1, int ny, const double *q, const double *py) {
    double s = 0;
    for (int a = 0; a < n0; a++)
        for (int b = 0; b < n1; b++) {
            const double *r = q + ((size_t)a * n1 + b) * ny;
            double qab = 0;
            for (int c = 0; c < ny; c++) qab += r[c];
            for (int c = 0; c < ny; c++) // r[c] <= qab: the ratio stays finite when cells underflow
                if (r[c] > 0) s += r[c] * (log2(r[c] / qab) - log2(py[c]));
        }
    return s;
}

void st_dist3_mi(const st_dist3 *d, double *i0, double *i1, double *i01) {
    marg m;
    if (marg_init(&m, d->n0, d->n1, d->ny, d->p)) {
        *i0 = *i1 = *i01 = NAN;
        marg_free(&m);
        return;
    }
    double s0 = 0, s1 = 0;
    for (int c = 0; c < d->ny; c++) {
        for (int a = 0; a < d->n0; a++) {
            double v = m.p0y[a * d->ny + c];
            if (v > 0) s0 += v * log2(v / (m.p0[a] * m.py[c]));
        }
        for (int b = 0; b < d->n1; b++) {
            double v = m.p1y[b * d->ny + c];
            if (v > 0) s1 += v * log2(v / (m.p1[b] * m.py[c]));
        }
    }
    *i0 = s0, *i1 = s1, *i01 = mi_joint(d->n0, d->n1, d->ny, d->p, m.py);
    marg_free(&m);
}

// I_min (Williams & Beer 2010): sum_y p(y) min_i I(Y=y; X_i), the specific
// information I(Y=y; A) = sum_a p(a|y) log2[p(y|a)/p(y)].
static double imin(const st_dist3 *d, const marg *m) {
    double red = 0;
    for (int c = 0; c < d->ny; c++) {
        if (!(m->py[c] > 0)) continue;
        double s0 = 0, s1 = 0;
        for (int a = 0; a < d->n0; a++) {
            double pay = m->p0y[a * d->ny + c];
            if (pay > 0) s0 += pay / m->py[c] * log2(pay / m->p0[a] / m->py[c]);
        }
        for (int b = 0; b < d->n1; b++) {
            double pby = m->p1y[b * d->ny + c];
            if (pby > 0) s1 += pby / m->py[c] * log2(pby / m->p1[b] / m->py[c]);
        }
        red += m->py[c] * fmin(s0, s1);
    }
    return red;
}

typedef struct broja_ws {
    double *R, *u, *v, *q2;
} broja_ws;

// Q-step for slice c: scale R(x0,x1) to the row sums P(x0,c) and column sums P(x1,c) (Sinkhorn from
// the scaling u, v of the slice's previous Q-step);
// returns the largest row-sum error left (> 0 when R's zeros make the marginals unreachable).
static double broja_slice(const st_dist3 *d, const marg *m, const broja_ws *w, int c, double *q) {
    int n0 = d->n0, n1 = d->n1, ny = d->ny;
    double err = 0, *u = w->u + (size_t)c * n0, *v = w->v + (size_t)c * n1; // warm: the last step's scaling
    const double *R = w->R;
    for (int s = 0; s < 10000; s++) {
        for (int a = 0; a < n0; a++) {
            double t = 0;
            for (int b = 0; b < n1; b++) t += R[a * n1 + b] * v[b];
            u[a] = t > 0 ? m->p0y[a * ny + c] / t : 0;
        }
        for (int b = 0; b < n1; b++) {
            double t = 0;
            for (int a = 0; a < n0; a++) t += R[a * n1 + b] * u[a];
            v[b] = t > 0 ? m->p1y[b * ny + c] / t : 0;
        }
        err = 0;
        for (int a = 0; a < n0; a++) { // row sums after the column step
            double t = 0;
            for (int b = 0; b < n1; b++) t += R[a * n1 + b] * u[a] * v[b];
            err = fmax(err, fabs(t - m->p0y[a * ny + c]));
        }
        if (err < 1e-15) break;
    }
    for (int a = 0; a < n0; a++) // optima on the boundary of Delta_P drive cells to 0: flush them
        for (int b = 0; b < n1; b++) {
            double x = R[a * n1 + b] * u[a] * v[b];
            q[((size_t)a * n1 + b) * ny + c] = x > 1e-300 ? x : 0;
        }
    return err;
}

// Alternating steps from q until one gains less than tol (or maxit); returns I_Q (bits), or INFINITY
// when a Q-step misses the marginals by more than maxerr. *its: the steps taken.
static double broja_iterate(const st_dist3 *d, const marg *m, const broja_ws *w, double tol, int maxit,
                            double maxerr, double *q, int *its) {
    int n0 = d->n0, n1 = d->n1, ny = d->ny, it;
    double f = mi_joint(n0, n1, ny, q, m->py);
    for (size_t i = 0; i < (size_t)n0 * ny; i++) w->u[i] = 1;
    for (size_t i = 0; i < (size_t)n1 * ny; i++) w->v[i] = 1;
    for (it = 0; it < maxit; it++) {
        for (int ab = 0; ab < n0 * n1; ab++) { // R-step: the (x0, x1) marginal of q
            double s = 0;
            for (int c = 0; c < ny; c++) s += q[(size_t)ab * ny + c];
            w->R[ab] = s;
        }
        double err = 0;
        for (int c = 0; c < ny; c++)
            if (m->py[c] > 0) err = fmax(err, broja_slice(d, m, w, c, q));
        if (err > maxerr) return *its = it + 1, INFINITY;
        double fn = mi_joint(n0, n1, ny, q, m->py), step = f - fn;
        f = fn;
        if (step < tol) break;
    }
    *its = it + 1;
    return f;
}

// BROJA by alternating minimisation (Csiszar-Tusnady): over Q in Delta_P
// (Q(x0,y) = P(x0,y), Q(x1,y) = P(x1,y)) and R(x0,x1),
//   min KL(Q || R(x0,x1) P(y)) = min_Q I_Q(Y; X0X1)
// since the inner minimum over R is R = Q(x0,x1). The R-step is that marginal; the Q-step is the
// I-projection of R(x0,x1) P(y) onto Delta_P, which splits per y into a matrix scaling (Sinkhorn/IPF)
// of R to the row sums P(x0,y) and column sums P(x1,y). Both steps decrease the objective and the
// iteration converges to the minimum (the problem is convex); at the optimum q(y|x0,x1) = A(x0,y)
// B(x1,y), the KKT condition. Where the optimum lies on the boundary of Delta_P (pairs (x0,x1) of
// zero mass: GBand, pwu, Prob2, ReducedOr...) the approach is only O(1/k); a polish then sets the
// pairs whose mass has fallen below a threshold to zero (multiplicative steps keep them there) and
// iterates on that face, where convergence is fast again. Every candidate is a member of Delta_P;
// the one with the smallest I_Q wins, P itself included.
static int broja(const st_dist3 *d, const marg *m, double tol, double *q, int *iters) {
    int n0 = d->n0, n1 = d->n1, ny = d->ny, its = 0, more = 0;
    size_t n = (size_t)n0 * n1 * ny;
    broja_ws w = {malloc(sizeof(double) * (size_t)n0 * n1), malloc(sizeof(double) * (size_t)n0 * ny),
                  malloc(sizeof(double) * (size_t)n1 * ny), malloc(sizeof(double) * n)};
    if (!w.R || !w.u || !w.v || !w.q2) return free(w.R), free(w.u), free(w.v), free(w.q2), GN_ENOMEM;
    // start: X0 and X1 independent given Y (a member of Delta_P with the widest support)
    for (int a = 0; a < n0; a++)
        for (int b = 0; b < n1; b++)
            for (int c = 0; c < ny; c++)
                q[((size_t)a * n1 + b) * ny + c] =
                    m->py[c] > 0 ? m->p0y[a * ny + c] * m->p1y[b * ny + c] / m->py[c] : 0;
    double f = broja_iterate(d, m, &w, tol, 200000, INFINITY, q, &its);
    static const double thr[3] = {1e-4, 1e-6, 1e-8};
    for (int k = 0; k < 3; k++) {
        memcpy(w.q2, q, sizeof(double) * n);
        for (size_t ab = 0; ab < (size_t)n0 * n1; ab++) {
            double s = 0;
            for (int c = 0; c < ny; c++) s += w.q2[ab * ny + c];
            if (s < thr[k]) memset(w.q2 + ab * ny, 0, sizeof(double) * (size_t)ny);
        }
        double f2 = broja_iterate(d, m, &w, fmin(tol, 1e-15), 20000, 1e-10, w.q2, &more);
        if (f2 < f) f = f2, memcpy(q, w.q2, sizeof(double) * n);
        its += more;
    }
    // P itself lies in Delta_P: where it reaches the optimum already (X0 = X1 under P, or Delta_P = {P})
    if (mi_joint(n0, n1, ny, d->p, m->py) <= f) memcpy(q, d->p, sizeof(double) * n);
    if (iters) *iters = its;
    free(w.R), free(w.u), free(w.v), free(w.q2);
    return GN_OK;
}

// IPF towards the three pairwise marginals of m; returns the largest marginal error.
static double ipf(double *q, int n0, int n1, int ny, const marg *m, int iters, double tol) {
    marg mq;
    memset(&mq, 0, sizeof mq);
    double err = INFINITY;
    for (int it = 0; it < iters && err >= tol; it++) {
        err = 0;
        for (int pass = 0; pass < 3; pass++) {
            marg_free(&mq);
            if (marg_init(&mq, n0, n1, ny, q)) return marg_free(&mq), NAN;
            for (int a = 0; a < n0; a++)
                for (int b = 0; b < n1; b++)
                    for (int c = 0; c < ny; c++) {
                        double *x = &q[((size_t)a * n1 + b) * ny + c], have, want;
                        if (pass == 0)
                            have = mq.p01[a * n1 + b], want = m->p01[a * n1 + b];
                        else if (pass == 1)
                            have = mq.p0y[a * ny + c], want = m->p0y[a * ny + c];
                        else
                            have = mq.p1y[b * ny + c], want = m->p1y[b * ny + c];
                        err = fmax(err, fabs(have - want));
                        *x = have > 0 ? *x * want / have : 0;
                    }
        }
    }
    marg_free(&mq);
    return err;
}

// I_ccs (Ince 2017), spec §B.1: on the maximum-entropy distribution with the
// pairwise marginals (X0,X1), (X0,Y), (X1,Y) (iterative proportional fitting
// from uniform), sum p(e) c(e) over the outcomes where the pointwise
// co-information c = i(x0;y) + i(x1;y) - i(x0x1;y) has the sign of all three
// (values within 1e-9 of 0 count as 0). IPF converges only like 1/t when
// the constraints force cells to zero: such cells halve when the iteration
// count doubles, while the others settle. So cells that shrank by more than
// a quarter between iterations 2000 and 4000 are set to zero and IPF runs
// again on the remaining support (linear convergence); if the marginals
// then cannot be met, the plain IPF run continues instead.
static int ccs(const st_dist3 *d, const marg *m, double *red) {
    int n0 = d->n0, n1 = d->n1, ny = d->ny;
    size_t N = (size_t)n0 * n1 * ny;
    double *q = malloc(sizeof(double) * N), *q2 = malloc(sizeof(double) * N);
    marg mq;
    memset(&mq, 0, sizeof mq);
    if (!q || !q2) return free(q), free(q2), GN_ENOMEM;
    for (size_t i = 0; i < N; i++) q[i] = 1.0 / (double)N;
    double e1 = ipf(q, n0, n1, ny, m, 2000, 1e-15);
    if (isnan(e1)) return free(q), free(q2), GN_ENOMEM;
    if (e1 >= 1e-15) {
        memcpy(q2, q, sizeof(double) * N);
        if (isnan(ipf(q, n0, n1, ny, m, 2000, 1e-15))) return free(q), free(q2), GN_ENOMEM;
        for (size_t i = 0; i < N; i++) q2[i] = q[i] < 0.75 * q2[i] ? 0 : q[i];
        double e2 = ipf(q2, n0, n1, ny, m, 100000, 1e-15);
        if (isnan(e2)) return free(q), free(q2), GN_ENOMEM;
        if (e2 < 1e-12)
            memcpy(q, q2, sizeof(double) * N);
        else
            ipf(q, n0, n1, ny, m, 100000, 1e-15);
    }
    free(q2);
    marg_free(&mq);
    if (marg_init(&mq, n0, n1, ny, q)) return marg_free(&mq), free(q), GN_ENOMEM;
    double s = 0;
    for (int a = 0; a < n0; a++)
        for (int b = 0; b < n1; b++)
            for (int c = 0; c < ny; c++) {
                double pe = q[((size_t)a * n1 + b) * ny + c];
                if (!(pe > 0)) continue;
                double i0 = log2(mq.p0y[a * ny + c] / (mq.p0[a] * mq.py[c]));
                double i1 = log2(mq.p1y[b * ny + c] / (mq.p1[b] * mq.py[c]));
                double i01 = log2(pe / (mq.p01[a * n1 + b] * mq.py[c]));
                double cc = i0 + i1 - i01;
                if (fabs(cc) < 1e-9) cc = 0;
                if (fabs(i0) < 1e-9) i0 = 0;
                if (fabs(i1) < 1e-9) i1 = 0;
                if (fabs(i01) < 1e-9) i01 = 0;
                int sg = (cc > 0) - (cc < 0);
                if (sg == (i0 > 0) - (i0 < 0) && sg == (i1 > 0) - (i1 < 0) && sg == (i01 > 0) - (i01 < 0))
                    s += pe * cc;
            }
    marg_free(&mq);
    free(q);
    *red = s;
    return GN_OK;
}

static int check_dist(const st_dist3 *d) {
    if (d->n0 < 1 || d->n1 < 1 || d->ny < 1) return gn_err(GN_EINVAL, "PID: empty alphabet");
    size_t N = (size_t)d->n0 * d->n1 * d->ny;
    double s = 0;
    for (size_t i = 0; i < N; i++) {
        if (!isfinite(d->p[i]) || d->p[i] < 0)
            return gn_err(GN_EINVAL, "PID: probability %zu is negative or not a number", i);
        s += d->p[i];
    }
    if (fabs(s - 1) > 1e-9) return gn_err(GN_EINVAL, "PID: the probabilities sum to %.12g, not 1", s);
    return GN_OK;
}

int st_broja_q(const st_dist3 *d, double tol, double *q, int *iters) {
    int rc = check_dist(d);
    if (rc) return rc;
    marg m;
    rc = marg_init(&m, d->n0, d->n1, d->ny, d->p);
    if (!rc) rc = broja(d, &m, tol > 0 ? tol : 1e-12, q, iters);
    marg_free(&m);
    return rc ? gn_err(rc, "PID: out of memory") : GN_OK;
}

int st_pid_discrete(const st_dist3 *d, int measure, double tol, st_pid *o) {
    int rc = check_dist(d);
    if (rc) return rc;
    st_dist3_mi(d, &o->i0, &o->i1, &o->i01);
    marg m;
    if (marg_init(&m, d->n0, d->n1, d->ny, d->p))
        return marg_free(&m), gn_err(GN_ENOMEM, "PID: out of memory");
    double red = NAN;
    switch (measure) {
    case ST_PID_IMIN: red = imin(d, &m); break;
    case ST_PID_MMI: red = fmin(o->i0, o->i1); break;
    case ST_PID_BROJA: {
        double *q = malloc(sizeof(double) * (size_t)d->n0 * d->n1 * d->ny);
        if (!q || broja(d, &m, tol > 0 ? tol : 1e-12, q, NULL))
            rc = GN_ENOMEM;
        else // I0 + I1 - min I_Q(Y;X0X1), where min I_Q >= I_Q(Y;Xi) = I(Xi;Y) (rounding aside)
            red = o->i0 + o->i1 - fmax(mi_joint(d->n0, d->n1, d->ny, q, m.py), fmax(o->i0, o->i1));
        free(q);
        break;
    }
    case ST_PID_CCS: rc = ccs(d, &m, &red); break;
    default: rc = GN_EINVAL;
    }
    marg_free(&m);
    if (rc) return gn_err(rc, rc == GN_EINVAL ? "PID: unknown measure %d" : "PID: out of memory", measure);
    o->red = red, o->unq0 = o->i0 - red, o->unq1 = o->i1 - red;
    o->syn = o->i01 - red - o->unq0 - o->unq1;
    return GN_OK;
}

static void atoms_mmi(st_pid *o) {
    o->red = fmin(o->i0, o->i1), o->unq0 = o->i0 - o->red, o->unq1 = o->i1 - o->red;
    o->syn = o->i01 - o->red - o->unq0 - o->unq1;
}

static double *join_src(const double *x0, int d0, const double *x1, int d1, size_t n) {
    double *j = gn_malloc(sizeof(double) * n * (size_t)(d0 + d1));
    if (!j) return NULL;
    for (size_t i = 0; i < n; i++) {
        memcpy(j + i * (d0 + d1), x0 + i * d0, sizeof(double) * (size_t)d0);
        memcpy(j + i * (d0 + d1) + d0, x1 + i * d1, sizeof(double) * (size_t)d1);
    }
    return j;
}

int st_pid_gauss(const double *x0, int d0, const double *x1, int d1, const double *y, int dy, size_t n,
                 st_pid *o) {
    double *j = join_src(x0, d0, x1, d1, n);
    if (!j) return GN_ENOMEM;
    int rc = st_mi_gauss(x0, d0, y, dy, n, &o->i0);
    if (!rc) rc = st_mi_gauss(x1, d1, y, dy, n, &o->i1);
    if (!rc) rc = st_mi_gauss(j, d0 + d1, y, dy, n, &o->i01);
    free(j);
    if (!rc) atoms_mmi(o);
    return rc;
}

int st_pid_ksg(const double *x0, int d0, const double *x1, int d1, const double *y, int dy, size_t n, int k,
               st_pid *o) {
    double *j = join_src(x0, d0, x1, d1, n);
    if (!j) return GN_ENOMEM;
    int rc = st_mi_ksg(x0, d0, y, dy, n, k, 1, &o->i0);
    if (!rc) rc = st_mi_ksg(x1, d1, y, dy, n, k, 1, &o->i1);
    if (!rc) rc = st_mi_ksg(j, d0 + d1, y, dy, n, k, 1, &o->i01);
    free(j);
    if (!rc) atoms_mmi(o);
    return rc;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

// Joint symbols of a block of binned columns: dense ids 0..m-1 in the
// lexicographic order of the bin vectors (deterministic).
static int symbols(const double *v, int d, size_t n, int bins, int quantile, int *sym, int *m) {
    int *codes = malloc(sizeof(int) * n * (size_t)d);
    if (!codes) return GN_ENOMEM;
    int rc = GN_OK;
    for (int j = 0; j < d && !rc; j++)
        rc = st_discretize(v + j, n, (size_t)d, bins, quantile, codes + (size_t)j * n);
    if (rc) return free(codes), rc;
    // mixed radix in a 64-bit key (bins^d < 2^63 is checked by the caller)
    uint64_t *key = malloc(sizeof(uint64_t) * n);
    if (!key) return free(codes), GN_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        uint64_t kk = 0;
        for (int j = 0; j < d; j++) kk = kk * (uint64_t)bins + (uint64_t)codes[(size_t)j * n + i];
        key[i] = kk;
    }
    free(codes);
    // dense ids by sorting the distinct keys
    uint64_t *sk = malloc(sizeof(uint64_t) * n);
    if (!sk) return free(key), GN_ENOMEM;
    memcpy(sk, key, sizeof(uint64_t) * n);
    qsort(sk, n, sizeof(uint64_t), cmp_u64);
    size_t u = 0;
    for (size_t a = 0; a < n; a++)
        if (!a || sk[a] != sk[u - 1]) sk[u++] = sk[a];
    for (size_t i = 0; i < n; i++) { // binary search
        size_t lo = 0, hi = u;
        while (hi - lo > 1) {
            size_t mid = (lo + hi) / 2;
            if (sk[mid] <= key[i])
                lo = mid;
            else
                hi = mid;
        }
        sym[i] = (int)lo;
    }
    *m = (int)u;
    free(key), free(sk);
    return GN_OK;
}

int st_dist3_from_samples(const double *x0, int d0, const double *x1, int d1, const double *y, int dy,
                          size_t n, int bins, int quantile, st_dist3 *d) {
    memset(d, 0, sizeof *d);
    if (!n) return gn_err(GN_EINVAL, "PID: no samples");
    int dm = d0 > d1 ? d0 : d1;
    if (dy > dm) dm = dy;
    if (bins < 2 || dm * log2((double)bins) > 62)
        return gn_err(GN_EINVAL, "PID: %d bins over %d columns is too many symbols", bins, dm);
    int *s0 = malloc(sizeof(int) * n), *s1 = malloc(sizeof(int) * n), *sy = malloc(sizeof(int) * n), m0, m1,
        my;
    int rc = !s0 || !s1 || !sy ? GN_ENOMEM : GN_OK;
    if (!rc) rc = symbols(x0, d0, n, bins, quantile, s0, &m0);
    if (!rc) rc = symbols(x1, d1, n, bins, quantile, s1, &m1);
    if (!rc) rc = symbols(y, dy, n, bins, quantile, sy, &my);
    if (!rc && (double)m0 * m1 * my > 5e7)
        rc = gn_err(GN_EINVAL, "PID: the joint table (%d x %d x %d) is too large", m0, m1, my);
    if (!rc) {
        d->n0 = m0, d->n1 = m1, d->ny = my;
        d->p = calloc((size_t)m0 * m1 * my, sizeof(double));
        if (!d->p)
            rc = GN_ENOMEM;
        else
            for (size_t i = 0; i < n; i++) P3(d, s0[i], s1[i], sy[i]) += 1.0 / (double)n;
    }
    free(s0), free(s1), free(sy);
    return rc;
}

int st_pid_binned(const double *x0, int d0, const double *x1, int d1, const double *y, int dy, size_t n,
                  int bins, int quantile, int measure, st_pid *o) {
    st_dist3 d;
    int rc = st_dist3_from_samples(x0, d0, x1, d1, y, dy, n, bins, quantile, &d);
    if (!rc) {
        // renormalise exactly (the 1/n sums can be off by rounding)
        size_t N = (size_t)d.n0 * d.n1 * d.ny;
        double s = 0;
        for (size_t i = 0; i < N; i++) s += d.p[i];
        for (size_t i = 0; i < N; i++) d.p[i] /= s;
        rc = st_pid_discrete(&d, measure, 0, o);
    }
    free(d.p);
    return rc;
}

void st_pid_pointwise(const double *l1, const double *l2, const double *l12, const double *lp, size_t n,
                      double *R, double *U1, double *U2, double *S) {
    for (size_t i = 0; i < n; i++) {
        double i1 = l1[i] - lp[i], i2 = l2[i] - lp[i], i12 = l12[i] - lp[i];
        double r = fmin(i1, i2);
        if (isnan(i1) || isnan(i2) || isnan(i12)) r = NAN;
        R[i] = r, U1[i] = i1 - r, U2[i] = i2 - r, S[i] = i12 - fmax(i1, i2) + (isnan(r) ? NAN : 0);
    }
}

int st_bootstrap_mean(const double *v, size_t n, int B, double level, uint64_t seed, double *mean, double *lo,
                      double *hi) {
    size_t m = 0;
    double *w = gn_malloc(sizeof(double) * (n ? n : 1)),
           *bm = gn_malloc(sizeof(double) * (size_t)(B > 0 ? B : 1));
    if (!w || !bm) return free(w), free(bm), GN_ENOMEM;
    for (size_t i = 0; i < n; i++)
        if (!isnan(v[i])) w[m++] = v[i];
    if (!m) {
        *mean = *lo = *hi = NAN;
        free(w), free(bm);
        return GN_OK;
    }
    double s = 0;
    for (size_t i = 0; i < m; i++) s += w[i];
    *mean = s / (double)m;
    gn_rng r;
    gn_rng_seed(&r, seed, GN_STREAM_SAMPLE);
    for (int b = 0; b < B; b++) {
        double t = 0;
        for (size_t i = 0; i < m; i++) t += w[m > 0xffffffffu ? 0 : gn_rng_below(&r, (uint32_t)m)];
        bm[b] = t / (double)m;
    }
    *lo = B > 0 ? st_percentile(bm, (size_t)B, 50 * (1 - level)) : NAN;
    *hi = B > 0 ? st_percentile(bm, (size_t)B, 50 * (1 + level)) : NAN;
    free(w), free(bm);
    return GN_OK;
}
