#include "mi.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../common/gn_common.h"
#include "knn.h"

double st_digamma(double x) {
    double r = 0;
    while (x < 6) r -= 1 / x, x += 1; // recurrence up to where the asymptotic series is accurate
    double f = 1 / (x * x);
    return r + log(x) - 0.5 / x - f * (1.0 / 12 - f * (1.0 / 120 - f * (1.0 / 252 - f * (1.0 / 240 - f / 132))));
}

static int check(const double *v, size_t n, int d, const char *what) {
    for (size_t i = 0; i < n * (size_t)d; i++)
        if (!isfinite(v[i])) return gn_err(GN_EINVAL, "MI: %s has a NaN or infinite value in row %zu (mask nulls first)", what, i / (size_t)d);
    return GN_OK;
}

// Concatenate column blocks into one (n, sum d) array.
static double *join(size_t n, int nb, const double *const *v, const int *d, int *dt) {
    *dt = 0;
    for (int b = 0; b < nb; b++) *dt += d[b];
    double *o = gn_malloc(sizeof(double) * n * (size_t)(*dt ? *dt : 1));
    if (!o) return NULL;
    for (size_t i = 0; i < n; i++) {
        int off = 0;
        for (int b = 0; b < nb; b++) {
            memcpy(o + i * (size_t)*dt + off, v[b] + i * (size_t)d[b], sizeof(double) * (size_t)d[b]);
            off += d[b];
        }
    }
    return o;
}

static double *join2(const double *a, int da, const double *b, int db, size_t n, int *dt) {
    const double *parts[2] = {a, b};
    int dims[2] = {da, db};
    return join(n, 2, parts, dims, dt);
}

static double linf(const double *a, const double *b, int d) {
    double s = 0;
    for (int j = 0; j < d; j++) s = fmax(s, fabs(a[j] - b[j]));
    return s;
}

// A marginal space for the range counts: a sorted copy for one dimension
// (two binary searches, on the same |v - x| arithmetic as the tree), else a
// max-norm KD-tree.
typedef struct space {
    int d;
    size_t n;
    const double *p;
    double *s;     // sorted values (d == 1)
    uint32_t *rank; // position of point i in s
    st_kdtree t;
} space;

// Order of (value, index) by an LSD radix sort on the IEEE bits (negative
// values flipped so the unsigned keys sort like the doubles), 16 bits a pass;
// stable, so equal values keep index order.
static int sort_order(const double *p, size_t n, uint32_t *ord) {
    uint64_t *key = malloc(sizeof(uint64_t) * n), *k2 = malloc(sizeof(uint64_t) * n);
    uint32_t *o2 = malloc(sizeof(uint32_t) * n);
    size_t *cnt = calloc(65536, sizeof(size_t));
    if (!key || !k2 || !o2 || !cnt) return free(key), free(k2), free(o2), free(cnt), GN_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        uint64_t u;
        double v = p[i] == 0 ? 0.0 : p[i]; // -0 sorts with +0
        memcpy(&u, &v, 8);
        key[i] = u >> 63 ? ~u : u | 0x8000000000000000ULL;
        ord[i] = (uint32_t)i;
    }
    for (int sh = 0; sh < 64; sh += 16) {
        memset(cnt, 0, 65536 * sizeof(size_t));
        for (size_t i = 0; i < n; i++) cnt[(key[i] >> sh) & 0xffff]++;
        size_t sum = 0;
        for (int b = 0; b < 65536; b++) {
            size_t c = cnt[b];
            cnt[b] = sum, sum += c;
        }
        for (size_t i = 0; i < n; i++) {
            size_t at = cnt[(key[i] >> sh) & 0xffff]++;
            k2[at] = key[i], o2[at] = ord[i];
        }
        uint64_t *tk = key;
        key = k2, k2 = tk;
        memcpy(ord, o2, sizeof(uint32_t) * n);
    }
    free(key), free(k2), free(o2), free(cnt);
    return GN_OK;
}

static int space_init(space *sp, const double *p, size_t n, int d) {
    memset(sp, 0, sizeof *sp);
    sp->d = d, sp->n = n, sp->p = p;
    if (d > 1) return st_kd_build(&sp->t, p, n, d, ST_LINF);
    uint32_t *ord = gn_malloc(sizeof(uint32_t) * n);
    sp->s = gn_malloc(sizeof(double) * n), sp->rank = gn_malloc(sizeof(uint32_t) * n);
    if (!ord || !sp->s || !sp->rank || sort_order(p, n, ord)) return free(ord), GN_ENOMEM;
    for (size_t j = 0; j < n; j++) sp->s[j] = p[ord[j]], sp->rank[ord[j]] = (uint32_t)j;
    free(ord);
    return GN_OK;
}

static void space_free(space *sp) {
    free(sp->s), free(sp->rank);
    st_kd_free(&sp->t);
    memset(sp, 0, sizeof *sp);
}

// The joint tree and the marginal spaces, built concurrently.
static int build_spaces(st_kdtree *tj, const double *j, int dj, size_t n, int m, space *sp, const double *const *p,
                        const int *d) {
    memset(tj, 0, sizeof *tj);
    for (int a = 0; a < m; a++) memset(&sp[a], 0, sizeof sp[a]);
    int rc = GN_OK;
#pragma omp parallel for schedule(dynamic, 1)
    for (int a = 0; a < m; a++) {
        int e = space_init(&sp[a], p[a], n, d[a]);
        if (e) {
#pragma omp atomic write
            rc = e;
        }
    }
    if (!rc) rc = st_kd_build(tj, j, n, dj, ST_LINF); // parallel inside
    if (rc) { // the message was written on another thread
        st_kd_free(tj);
        for (int a = 0; a < m; a++) space_free(&sp[a]);
        return gn_err(rc, "kNN MI: out of memory building the search trees (n = %zu)", n);
    }
    return GN_OK;
}

// First j in [lo, hi) where in(j) is false, given in() true then false.
// Galloping from lo: cost O(log of the distance) rather than O(log n).
#define GALLOP_UP(lo, hi, in)                                                                                         \
    do {                                                                                                             \
        size_t step_ = 1, a_ = lo, b_;                                                                               \
        while (a_ + step_ < hi && (in(a_ + step_))) a_ += step_, step_ *= 2;                                         \
        b_ = a_ + step_ < hi ? a_ + step_ : hi; /* in(a_) holds or a_ == lo; answer in (a_, b_] */                  \
        while (a_ < b_) {                                                                                            \
            size_t m_ = a_ + (b_ - a_) / 2;                                                                          \
            if (in(m_)) a_ = m_ + 1;                                                                                 \
            else b_ = m_;                                                                                            \
        }                                                                                                            \
        lo = a_;                                                                                                     \
    } while (0)

// #{j != i : |p_j - p_i| < r} (strict) or <= r.
static size_t space_count(const space *sp, size_t i, double r, int strict) {
    if (sp->d > 1) return st_kd_count(&sp->t, sp->p + i * (size_t)sp->d, r, strict, (long)i);
    const double x = sp->p[i], *s = sp->s;
    const size_t pos = sp->rank[i], n = sp->n;
    // above: j > pos while s_j - x < r (strict) / <= r
#define UP_IN(j) (strict ? s[j] - x < r : s[j] - x <= r)
    size_t top = pos + 1;
    if (top < n && UP_IN(top)) GALLOP_UP(top, n, UP_IN);
    // below: mirror the array (index pos - 1 - m) and gallop the same way
#define DOWN_IN(m) (strict ? x - s[pos - 1 - (m)] < r : x - s[pos - 1 - (m)] <= r)
    size_t bot = 0;
    if (pos > 0 && DOWN_IN(0)) GALLOP_UP(bot, pos, DOWN_IN);
#undef UP_IN
#undef DOWN_IN
    return (top - pos - 1) + bot; // the point itself (at pos) is never counted
}

int st_mi_ksg(const double *x, int dx, const double *y, int dy, size_t n, int k, int variant, double *mi) {
    if (k < 1 || (size_t)k >= n) return gn_err(GN_EINVAL, "KSG: k = %d needs at least k + 1 = %d samples (have %zu)", k, k + 1, n);
    if (variant != 1 && variant != 2) return gn_err(GN_EINVAL, "KSG: variant must be 1 or 2");
    int rc = check(x, n, dx, "X");
    if (!rc) rc = check(y, n, dy, "Y");
    if (rc) return rc;
    int dj;
    double *j = join2(x, dx, y, dy, n, &dj);
    st_kdtree tj;
    space sp[2];
    const double *pp[2] = {x, y};
    int dd[2] = {dx, dy};
    if (!j) return GN_ENOMEM;
    if ((rc = build_spaces(&tj, j, dj, n, 2, sp, pp, dd))) return free(j), rc;
    space *tx = &sp[0], *ty = &sp[1];
    double *acc = gn_calloc(n, sizeof(double));
    int fail = !acc;
#pragma omp parallel
    {
        uint32_t *ni = malloc(sizeof(uint32_t) * (size_t)k);
        double *nd = malloc(sizeof(double) * (size_t)k);
#pragma omp for schedule(dynamic, 64)
        for (long a_ = 0; a_ < (long)n; a_++) {
            long i = tj.idx[a_]; // tree order: neighbouring queries share tree nodes (cache)
            if (!ni || !nd) {
                fail = 1; // every thread writes the same value
                continue;
            }
            st_kd_knn(&tj, tj.tp + (size_t)a_ * dj, k, i, ni, nd);
            size_t nx, ny;
            if (variant == 1) { // strictly inside the joint k-th neighbour distance
                double e = nd[k - 1];
                nx = space_count(tx, (size_t)i, e, 1);
                ny = space_count(ty, (size_t)i, e, 1);
                acc[i] = st_digamma((double)nx + 1) + st_digamma((double)ny + 1);
            } else { // each side's own extent over the k neighbours, inclusive
                double ex = 0, ey = 0;
                for (int a = 0; a < k; a++) {
                    ex = fmax(ex, linf(x + (size_t)ni[a] * dx, x + (size_t)i * dx, dx));
                    ey = fmax(ey, linf(y + (size_t)ni[a] * dy, y + (size_t)i * dy, dy));
                }
                nx = space_count(tx, (size_t)i, ex, 0);
                ny = space_count(ty, (size_t)i, ey, 0);
                acc[i] = st_digamma((double)nx) + st_digamma((double)ny);
            }
        }
        free(ni), free(nd);
    }
    if (!fail) {
        double s = 0;
        for (size_t i = 0; i < n; i++) s += acc[i]; // fixed order: thread-count independent
        s /= (double)n;
        *mi = variant == 1 ? st_digamma(k) + st_digamma((double)n) - s : st_digamma(k) - 1.0 / k + st_digamma((double)n) - s;
    }
    free(acc), free(j);
    st_kd_free(&tj), space_free(tx), space_free(ty);
    return fail ? GN_ENOMEM : GN_OK;
}

int st_cmi_fp(const double *x, int dx, const double *y, int dy, const double *z, int dz, size_t n, int k, double *cmi) {
    if (dz == 0) return st_mi_ksg(x, dx, y, dy, n, k, 1, cmi);
    if (k < 1 || (size_t)k >= n) return gn_err(GN_EINVAL, "CMI: k = %d needs at least k + 1 samples (have %zu)", k, n);
    int rc = check(x, n, dx, "X");
    if (!rc) rc = check(y, n, dy, "Y");
    if (!rc) rc = check(z, n, dz, "Z");
    if (rc) return rc;
    int dj, dxz, dyz;
    const double *pj[3] = {x, y, z};
    int dmj[3] = {dx, dy, dz};
    double *j = join(n, 3, pj, dmj, &dj), *xz = join2(x, dx, z, dz, n, &dxz), *yz = join2(y, dy, z, dz, n, &dyz);
    st_kdtree tj;
    space sp[3];
    memset(&tj, 0, sizeof tj), memset(sp, 0, sizeof sp);
    space *txz = &sp[0], *tyz = &sp[1], *tz = &sp[2];
    const double *pp[3] = {xz, yz, z};
    int dd[3] = {dxz, dyz, dz};
    double *acc = gn_calloc(n, sizeof(double));
    if (!j || !xz || !yz || !acc || (rc = build_spaces(&tj, j, dj, n, 3, sp, pp, dd))) goto out;
#pragma omp parallel
    {
        uint32_t *ni = malloc(sizeof(uint32_t) * (size_t)k);
        double *nd = malloc(sizeof(double) * (size_t)k);
#pragma omp for schedule(dynamic, 64)
        for (long a_ = 0; a_ < (long)n; a_++) {
            long i = tj.idx[a_]; // tree order: neighbouring queries share tree nodes (cache)
            if (!ni || !nd) {
                rc = GN_ENOMEM;
                continue;
            }
            st_kd_knn(&tj, tj.tp + (size_t)a_ * dj, k, i, ni, nd);
            double e = nd[k - 1];
            size_t a = space_count(txz, (size_t)i, e, 1), b = space_count(tyz, (size_t)i, e, 1),
                   c = space_count(tz, (size_t)i, e, 1);
            acc[i] = st_digamma((double)a + 1) + st_digamma((double)b + 1) - st_digamma((double)c + 1);
        }
        free(ni), free(nd);
    }
    double s = 0;
    for (size_t i = 0; i < n; i++) s += acc[i];
    if (!rc) *cmi = st_digamma(k) - s / (double)n;
out:
    free(j), free(xz), free(yz), free(acc);
    st_kd_free(&tj), space_free(txz), space_free(tyz), space_free(tz);
    return rc ? rc : (j && xz && yz ? GN_OK : GN_ENOMEM);
}

// log det of the sample covariance of columns cols[0..m) of (n, d) data, by Cholesky.
static int logdet_cov(const double *v, size_t n, int d, const int *cols, int m, double *ld) {
    double *mu = gn_calloc((size_t)m, sizeof(double)), *c = gn_calloc((size_t)m * m, sizeof(double));
    if (!mu || !c) return free(mu), free(c), GN_ENOMEM;
    for (size_t i = 0; i < n; i++)
        for (int a = 0; a < m; a++) mu[a] += v[i * (size_t)d + cols[a]];
    for (int a = 0; a < m; a++) mu[a] /= (double)n;
    for (size_t i = 0; i < n; i++)
        for (int a = 0; a < m; a++)
            for (int b = 0; b <= a; b++)
                c[a * m + b] += (v[i * (size_t)d + cols[a]] - mu[a]) * (v[i * (size_t)d + cols[b]] - mu[b]);
    double s = 0;
    int rc = GN_OK;
    for (int a = 0; a < m && !rc; a++) { // Cholesky in place (lower triangle)
        for (int b = 0; b <= a; b++) {
            double t = c[a * m + b] / (double)(n - 1);
            for (int q = 0; q < b; q++) t -= c[a * m + q] * c[b * m + q];
            if (a == b) {
                if (!(t > 0)) rc = gn_err(GN_EINVAL, "Gaussian MI: the covariance is singular (a constant or duplicated column?)");
                else c[a * m + a] = sqrt(t), s += log(t);
            } else
                c[a * m + b] = t / c[b * m + b];
            if (rc) break;
        }
    }
    *ld = s;
    free(mu), free(c);
    return rc;
}

int st_mi_gauss(const double *x, int dx, const double *y, int dy, size_t n, double *mi) {
    if (n < (size_t)(dx + dy) + 2) return gn_err(GN_EINVAL, "Gaussian MI: %zu samples for %d dimensions", n, dx + dy);
    int rc = check(x, n, dx, "X");
    if (!rc) rc = check(y, n, dy, "Y");
    if (rc) return rc;
    int dj;
    double *j = join2(x, dx, y, dy, n, &dj);
    if (!j) return GN_ENOMEM;
    int cols[64];
    if (dj > 64) return free(j), gn_err(GN_EINVAL, "Gaussian MI: at most 64 dimensions");
    double lx, ly, lj;
    for (int a = 0; a < dj; a++) cols[a] = a;
    rc = logdet_cov(j, n, dj, cols, dx, &lx);
    if (!rc) rc = logdet_cov(j, n, dj, cols + dx, dy, &ly);
    if (!rc) rc = logdet_cov(j, n, dj, cols, dj, &lj);
    free(j);
    if (!rc) *mi = 0.5 * (lx + ly - lj);
    return rc;
}
