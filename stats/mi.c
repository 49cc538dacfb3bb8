#include "mi.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../common/gn_common.h"
#include "../common/gn_rng.h"
#include "knn.h"

double st_digamma(double x) {
    double r = 0;
    while (x < 6) r -= 1 / x, x += 1; // recurrence up to where the asymptotic series is accurate
    double f = 1 / (x * x);
    return r + log(x) - 0.5 / x -
           f * (1.0 / 12 - f * (1.0 / 120 - f * (1.0 / 252 - f * (1.0 / 240 - f / 132))));
}

static int check(const double *v, size_t n, int d, const char *what) {
    for (size_t i = 0; i < n * (size_t)d; i++)
        if (!isfinite(v[i]))
            return gn_err(GN_EINVAL, "MI: %s has a NaN or infinite value in row %zu (mask nulls first)", what,
                          i / (size_t)d);
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
    uint32_t *ord;  // point at each position of s
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
    sp->s = gn_malloc(sizeof(double) * n);
    if (!ord || !sp->s || sort_order(p, n, ord)) return free(ord), GN_ENOMEM;
    for (size_t j = 0; j < n; j++) sp->s[j] = p[ord[j]];
    sp->ord = ord;
    return GN_OK;
}

static void space_free(space *sp) {
    free(sp->s), free(sp->ord);
    st_kd_free(&sp->t);
    memset(sp, 0, sizeof *sp);
}

// The joint tree and the marginal spaces, built concurrently.
static int build_spaces(st_kdtree *tj, const double *j, int dj, size_t n, int m, space *sp,
                        const double *const *p, const int *d) {
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
// Galloping from lo brackets the answer at a cost O(log of its distance)
// rather than O(log n); a branch-free binary search finishes inside the
// bracket (the comparisons are unpredictable, the data is in cache).
#define GALLOP_UP(lo, hi, in)                                                                                \
    do {                                                                                                     \
        size_t step_ = 1, a_ = lo, b_;                                                                       \
        while (a_ + step_ < hi && (in(a_ + step_))) a_ += step_, step_ *= 2;                                 \
        b_ = a_ + step_ < hi ? a_ + step_ : hi; /* in(a_) holds or a_ == lo; answer in (a_, b_] */           \
        size_t base_ = a_ + 1, len_ = b_ - base_;                                                            \
        if (len_ == 0) {                                                                                     \
            lo = b_;                                                                                         \
            break;                                                                                           \
        }                                                                                                    \
        while (len_ > 1) {                                                                                   \
            size_t half_ = len_ / 2;                                                                         \
            base_ = (in(base_ + half_ - 1)) ? base_ + half_ : base_;                                         \
            len_ -= half_;                                                                                   \
        }                                                                                                    \
        lo = base_ + ((in(base_)) ? 1 : 0);                                                                  \
    } while (0)

// #{j != i : |p_j - p_i| < r} (strict) or <= r, for the point at position
// pos of the sorted values s (1-D) by galloping both ways from it.
static inline size_t sorted_count_(const double *s, size_t n, size_t pos, double r, const int strict) {
    const double x = s[pos];
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

static size_t sorted_count(const double *s, size_t n, size_t pos, double r, int strict) {
    return strict ? sorted_count_(s, n, pos, r, 1) : sorted_count_(s, n, pos, r, 0); // two specialised copies
}

// cnt[i] = #{j != i : |p_j - p_i| < r[i]} (strict) or <= r[i], for every
// point, visited in the space's own order (sorted values, or tree order) so
// consecutive queries touch the same memory.
static void space_counts(const space *sp, const double *r, int strict, uint32_t *cnt) {
    const long n = (long)sp->n;
    if (sp->d == 1) {
#pragma omp parallel for schedule(dynamic, 256)
        for (long a = 0; a < n; a++) {
            uint32_t i = sp->ord[a];
            cnt[i] = (uint32_t)sorted_count(sp->s, sp->n, (size_t)a, r[i], strict);
        }
        return;
    }
#pragma omp parallel for schedule(dynamic, 256)
    for (long a = 0; a < n; a++) {
        uint32_t i = sp->t.idx[a];
        cnt[i] = (uint32_t)st_kd_count(&sp->t, sp->t.tp + (size_t)a * sp->d, r[i], strict, (long)i);
    }
}

// The k-th neighbour of every point in the joint (max-norm) tree, self
// excluded: its distance eps[i], or with x/y given (KSG 2) the extents of the
// k neighbours along each side, ex[i] and ey[i]. Queries in tree order.
static int joint_radii(const st_kdtree *tj, size_t n, int k, double *eps, const double *x, int dx,
                       const double *y, int dy, double *ex, double *ey) {
    int fail = 0;
#pragma omp parallel
    {
        uint32_t *ni = malloc(sizeof(uint32_t) * (size_t)k);
        double *nd = malloc(sizeof(double) * (size_t)k);
        if (!ni || !nd) fail = 1; // every thread writes the same value
#pragma omp for schedule(dynamic, 64)
        for (long a_ = 0; a_ < (long)n; a_++) {
            if (!ni || !nd) continue;
            long i = tj->idx[a_];
            st_kd_knn(tj, tj->tp + (size_t)a_ * tj->d, k, i, ni, nd);
            if (eps) eps[i] = nd[k - 1];
            if (ex) {
                double u = 0, v = 0;
                for (int a = 0; a < k; a++) {
                    u = fmax(u, linf(x + (size_t)ni[a] * dx, x + (size_t)i * dx, dx));
                    v = fmax(v, linf(y + (size_t)ni[a] * dy, y + (size_t)i * dy, dy));
                }
                ex[i] = u, ey[i] = v;
            }
        }
        free(ni), free(nd);
    }
    return fail ? gn_err(GN_ENOMEM, "kNN MI: out of memory") : GN_OK;
}

int st_mi_ksg(const double *x, int dx, const double *y, int dy, size_t n, int k, int variant, double *mi) {
    if (k < 1 || (size_t)k >= n)
        return gn_err(GN_EINVAL, "KSG: k = %d needs at least k + 1 = %d samples (have %zu)", k, k + 1, n);
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
    free(j), j = NULL; // the tree holds its own copy
    double *rx = gn_malloc(sizeof(double) * n), *ry = variant == 2 ? gn_malloc(sizeof(double) * n) : rx;
    uint32_t *nx = gn_malloc(sizeof(uint32_t) * n), *ny = gn_malloc(sizeof(uint32_t) * n);
    if (!rx || !ry || !nx || !ny) rc = GN_ENOMEM;
    // KSG 1: strictly inside the joint k-th neighbour distance; KSG 2: each
    // side's own extent over the k neighbours, inclusive
    if (!rc) rc = variant == 1 ? joint_radii(&tj, n, k, rx, NULL, 0, NULL, 0, NULL, NULL)
                               : joint_radii(&tj, n, k, NULL, x, dx, y, dy, rx, ry);
    if (!rc) {
        space_counts(&sp[0], rx, variant == 1, nx);
        space_counts(&sp[1], ry, variant == 1, ny);
        double s = 0;
        for (size_t i = 0; i < n; i++) // fixed order: thread-count independent
            s += variant == 1 ? st_digamma((double)nx[i] + 1) + st_digamma((double)ny[i] + 1)
                              : st_digamma((double)nx[i]) + st_digamma((double)ny[i]);
        s /= (double)n;
        *mi = variant == 1 ? st_digamma(k) + st_digamma((double)n) - s
                           : st_digamma(k) - 1.0 / k + st_digamma((double)n) - s;
    }
    if (ry != rx) free(ry);
    free(rx), free(nx), free(ny);
    st_kd_free(&tj), space_free(&sp[0]), space_free(&sp[1]);
    return rc;
}

int st_cmi_fp(const double *x, int dx, const double *y, int dy, const double *z, int dz, size_t n, int k,
              double *cmi) {
    if (dz == 0) return st_mi_ksg(x, dx, y, dy, n, k, 1, cmi);
    if (k < 1 || (size_t)k >= n)
        return gn_err(GN_EINVAL, "CMI: k = %d needs at least k + 1 samples (have %zu)", k, n);
    int rc = check(x, n, dx, "X");
    if (!rc) rc = check(y, n, dy, "Y");
    if (!rc) rc = check(z, n, dz, "Z");
    if (rc) return rc;
    int dj, dxz, dyz;
    const double *pj[3] = {x, y, z};
    int dmj[3] = {dx, dy, dz};
    double *j = join(n, 3, pj, dmj, &dj), *xz = join2(x, dx, z, dz, n, &dxz),
           *yz = join2(y, dy, z, dz, n, &dyz);
    st_kdtree tj;
    space sp[3];
    memset(&tj, 0, sizeof tj), memset(sp, 0, sizeof sp);
    const double *pp[3] = {xz, yz, z};
    int dd[3] = {dxz, dyz, dz};
    double *eps = gn_malloc(sizeof(double) * n);
    uint32_t *c[3] = {gn_malloc(sizeof(uint32_t) * n), gn_malloc(sizeof(uint32_t) * n),
                      gn_malloc(sizeof(uint32_t) * n)};
    if (!j || !xz || !yz || !eps || !c[0] || !c[1] || !c[2]) rc = GN_ENOMEM;
    if (!rc) rc = build_spaces(&tj, j, dj, n, 3, sp, pp, dd);
    if (!rc) rc = joint_radii(&tj, n, k, eps, NULL, 0, NULL, 0, NULL, NULL);
    if (!rc) {
        for (int a = 0; a < 3; a++) space_counts(&sp[a], eps, 1, c[a]);
        double s = 0;
        for (size_t i = 0; i < n; i++)
            s += st_digamma((double)c[0][i] + 1) + st_digamma((double)c[1][i] + 1) -
                 st_digamma((double)c[2][i] + 1);
        *cmi = st_digamma(k) - s / (double)n;
    }
    free(j), free(xz), free(yz), free(eps), free(c[0]), free(c[1]), free(c[2]);
    st_kd_free(&tj);
    for (int a = 0; a < 3; a++) space_free(&sp[a]);
    return rc;
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
                if (!(t > 0))
                    rc = gn_err(GN_EINVAL,
                                "Gaussian MI: the covariance is singular (a constant or duplicated column?)");
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
    if (n < (size_t)(dx + dy) + 2)
        return gn_err(GN_EINVAL, "Gaussian MI: %zu samples for %d dimensions", n, dx + dy);
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

int st_cmi_gauss(const double *x, int dx, const double *y, int dy, const double *z, int dz, size_t n,
                 double *cmi) {
    if (dz == 0) return st_mi_gauss(x, dx, y, dy, n, cmi);
    int dt = dx + dy + dz;
    if (dt > 64) return gn_err(GN_EINVAL, "Gaussian CMI: at most 64 dimensions");
    if (n < (size_t)dt + 2) return gn_err(GN_EINVAL, "Gaussian CMI: %zu samples for %d dimensions", n, dt);
    int rc = check(x, n, dx, "X");
    if (!rc) rc = check(y, n, dy, "Y");
    if (!rc) rc = check(z, n, dz, "Z");
    if (rc) return rc;
    const double *parts[3] = {x, y, z};
    int dims[3] = {dx, dy, dz}, dj;
    double *j = join(n, 3, parts, dims, &dj);
    if (!j) return GN_ENOMEM;
    int cxz[64], cyz[64], cz[64], call[64], m = 0;
    for (int a = 0; a < dx; a++) cxz[m++] = a;
    for (int a = 0; a < dz; a++) cxz[m++] = dx + dy + a;
    m = 0;
    for (int a = 0; a < dy; a++) cyz[m++] = dx + a;
    for (int a = 0; a < dz; a++) cyz[m++] = dx + dy + a;
    for (int a = 0; a < dz; a++) cz[a] = dx + dy + a;
    for (int a = 0; a < dt; a++) call[a] = a;
    double l1, l2, l3, l4;
    rc = logdet_cov(j, n, dj, cxz, dx + dz, &l1);
    if (!rc) rc = logdet_cov(j, n, dj, cyz, dy + dz, &l2);
    if (!rc) rc = logdet_cov(j, n, dj, call, dt, &l3);
    if (!rc) rc = logdet_cov(j, n, dj, cz, dz, &l4);
    free(j);
    if (!rc) *cmi = 0.5 * (l1 + l2 - l3 - l4);
    return rc;
}

// ---- binned ----

static int cmp_dbl(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int st_discretize(const double *x, size_t n, size_t stride, int bins, int quantile, int *code) {
    if (bins < 1) return gn_err(GN_EINVAL, "binning: %d bins", bins);
    if (!n) return gn_err(GN_EINVAL, "binning: no samples");
    if (quantile) {
        double *s = gn_malloc(sizeof(double) * n), cut[1024];
        if (!s) return GN_ENOMEM;
        if (bins > 1024) return free(s), gn_err(GN_EINVAL, "binning: at most 1024 quantile bins");
        for (size_t i = 0; i < n; i++) s[i] = x[i * stride];
        qsort(s, n, sizeof(double), cmp_dbl);
        for (int b = 0; b < bins; b++) {
            long at = (long)((double)(b + 1) * (double)n / bins) - 1; // IDTxl: int((b+1) N / B) - 1
            cut[b] = s[at < 0 ? 0 : at];
        }
        free(s);
        for (size_t i = 0; i < n; i++) {
            int b = 0;
            while (b < bins - 1 && !(x[i * stride] <= cut[b])) b++;
            code[i] = b;
        }
        return GN_OK;
    }
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < n; i++) lo = fmin(lo, x[i * stride]), hi = fmax(hi, x[i * stride]);
    double w = (hi - lo) / bins;
    for (size_t i = 0; i < n; i++) {
        int b = w > 0 ? (int)((x[i * stride] - lo) / w) : 0;
        code[i] = b >= bins ? bins - 1 : b;
    }
    return GN_OK;
}

static _Thread_local const int *const *CODES;
static _Thread_local int NCODES;
static int cmp_rows(const void *a, const void *b) {
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    for (int c = 0; c < NCODES; c++)
        if (CODES[c][i] != CODES[c][j]) return CODES[c][i] < CODES[c][j] ? -1 : 1;
    return 0;
}

double st_entropy_codes(const int *const *codes, int nc, size_t n, int miller_madow, size_t *m_out) {
    if (!n) return NAN;
    size_t *ord = malloc(sizeof(size_t) * n);
    if (!ord) return NAN;
    for (size_t i = 0; i < n; i++) ord[i] = i;
    CODES = codes, NCODES = nc;
    qsort(ord, n, sizeof(size_t), cmp_rows);
    double h = 0;
    size_t m = 0, run = 1;
    for (size_t a = 1; a <= n; a++) {
        if (a < n && !cmp_rows(&ord[a - 1], &ord[a])) {
            run++;
            continue;
        }
        double p = (double)run / (double)n;
        h -= p * log(p), m++, run = 1;
    }
    free(ord);
    if (m_out) *m_out = m;
    return h + (miller_madow ? (double)(m - 1) / (2.0 * (double)n) : 0);
}

int st_mi_binned(const double *x, int dx, const double *y, int dy, const double *z, int dz, size_t n,
                 int bins, int quantile, int miller_madow, double *mi) {
    int dt = dx + dy + dz;
    if (dt > 64) return gn_err(GN_EINVAL, "binned MI: at most 64 columns");
    int rc = check(x, n, dx, "X");
    if (!rc) rc = check(y, n, dy, "Y");
    if (!rc && dz) rc = check(z, n, dz, "Z");
    if (rc) return rc;
    int *buf = gn_malloc(sizeof(int) * n * (size_t)dt);
    if (!buf) return GN_ENOMEM;
    const int *cols[64];
    for (int a = 0; a < dt && !rc; a++) {
        const double *src = a < dx ? x + a : a < dx + dy ? y + (a - dx) : z + (a - dx - dy);
        size_t stride = (size_t)(a < dx ? dx : a < dx + dy ? dy : dz);
        rc = st_discretize(src, n, stride, bins, quantile, buf + (size_t)a * n);
        cols[a] = buf + (size_t)a * n;
    }
    if (rc) return free(buf), rc;
    // H(XZ) + H(YZ) - H(Z) - H(XYZ)
    const int *xz[64], *yz[64];
    int nxz = 0, nyz = 0;
    for (int a = 0; a < dx; a++) xz[nxz++] = cols[a];
    for (int a = 0; a < dy; a++) yz[nyz++] = cols[dx + a];
    for (int a = 0; a < dz; a++) xz[nxz++] = yz[nyz++] = cols[dx + dy + a];
    double hxz = st_entropy_codes(xz, nxz, n, miller_madow, NULL),
           hyz = st_entropy_codes(yz, nyz, n, miller_madow, NULL);
    double hz = dz ? st_entropy_codes(cols + dx + dy, dz, n, miller_madow, NULL) : 0;
    double hall = st_entropy_codes(cols, dt, n, miller_madow, NULL);
    free(buf);
    if (isnan(hxz) || isnan(hyz) || isnan(hz) || isnan(hall))
        return gn_err(GN_ENOMEM, "binned MI: out of memory");
    *mi = hxz + hyz - hz - hall;
    return GN_OK;
}

int st_mi(const st_mi_opts *o, const double *x, int dx, const double *y, int dy, const double *z, int dz,
          size_t n, double *mi) {
    int k = o->k > 0 ? o->k : 3;
    switch (o->estimator) {
    case ST_MI_KSG1:
        return dz ? st_cmi_fp(x, dx, y, dy, z, dz, n, k, mi) : st_mi_ksg(x, dx, y, dy, n, k, 1, mi);
    case ST_MI_KSG2:
        if (dz)
            return gn_err(GN_EINVAL,
                          "conditional MI: KSG 2 has no conditional form here; use KSG 1 (Frenzel-Pompe)");
        return st_mi_ksg(x, dx, y, dy, n, k, 2, mi);
    case ST_MI_GAUSS: return st_cmi_gauss(x, dx, y, dy, z, dz, n, mi);
    case ST_MI_BINNED:
        return st_mi_binned(x, dx, y, dy, z, dz, n, o->bins > 0 ? o->bins : 8, o->quantile, o->miller_madow,
                            mi);
    }
    return gn_err(GN_EINVAL, "MI: unknown estimator %d", o->estimator);
}

// ---- transforms ----

int st_transform(double *v, size_t n, int d, int kind) {
    if (kind == ST_TF_NONE) return GN_OK;
    if (n < 2) return gn_err(GN_EINVAL, "transform: fewer than 2 samples");
    if (kind == ST_TF_STANDARDIZE) {
        for (int j = 0; j < d; j++) {
            double m = 0, s = 0;
            for (size_t i = 0; i < n; i++) m += v[i * d + j];
            m /= (double)n;
            for (size_t i = 0; i < n; i++) s += (v[i * d + j] - m) * (v[i * d + j] - m);
            s = sqrt(s / (double)(n - 1));
            if (!(s > 0))
                return gn_err(GN_EINVAL, "transform: column %d is constant (cannot standardise)", j + 1);
            for (size_t i = 0; i < n; i++) v[i * d + j] = (v[i * d + j] - m) / s;
        }
        return GN_OK;
    }
    if (kind != ST_TF_RANK) return gn_err(GN_EINVAL, "transform: unknown kind %d", kind);
    double *col = gn_malloc(sizeof(double) * n);
    uint32_t *ord = gn_malloc(sizeof(uint32_t) * n);
    if (!col || !ord) return free(col), free(ord), GN_ENOMEM;
    int rc = GN_OK;
    for (int j = 0; j < d && !rc; j++) {
        for (size_t i = 0; i < n; i++) col[i] = v[i * d + j];
        rc = sort_order(col, n, ord); // stable: ties by row order
        for (size_t a = 0; a < n && !rc; a++) v[(size_t)ord[a] * d + j] = (double)a;
    }
    free(col), free(ord);
    return rc ? gn_err(rc, "transform: out of memory") : GN_OK;
}

int st_add_noise(double *v, size_t n, int d, double amp, uint64_t seed) {
    if (!(amp >= 0)) return gn_err(GN_EINVAL, "noise amplitude must be >= 0");
    gn_rng r;
    gn_rng_seed(&r, seed, GN_STREAM_SAMPLE);
    for (int j = 0; j < d; j++) {
        double m = 0, s = 0;
        for (size_t i = 0; i < n; i++) m += v[i * d + j];
        m /= (double)n;
        for (size_t i = 0; i < n; i++) s += (v[i * d + j] - m) * (v[i * d + j] - m);
        s = n > 1 ? sqrt(s / (double)(n - 1)) : 0;
        if (!(s > 0)) s = 1; // a constant column: absolute amplitude
        for (size_t i = 0; i < n; i++) v[i * d + j] += amp * s * gn_rng_normal(&r);
    }
    return GN_OK;
}

// ---- local-permutation test (spec §A.6) ----

int st_mi_permtest(const st_mi_opts *o, const double *x, int dx, const double *y, int dy, const double *z,
                   int dz, size_t n, int B, int shuffle_k, uint64_t seed, double *value, double *p,
                   double *null) {
    if (B < 1) return gn_err(GN_EINVAL, "permutation test: B = %d surrogates", B);
    if (n > 0xffffffffu) return gn_err(GN_EINVAL, "permutation test: too many samples");
    int rc = st_mi(o, x, dx, y, dy, z, dz, n, value);
    if (rc) return rc;
    if (dz && (shuffle_k < 1 || (size_t)shuffle_k > n))
        return gn_err(GN_EINVAL, "permutation test: %d shuffle neighbours for %zu samples", shuffle_k, n);
    uint32_t *nb = NULL, *perm = gn_malloc(sizeof(uint32_t) * n), *order = gn_malloc(sizeof(uint32_t) * n);
    uint32_t *lst = gn_malloc(sizeof(uint32_t) * (size_t)(shuffle_k > 0 ? shuffle_k : 1));
    uint8_t *used = gn_malloc(n);
    double *yp = gn_malloc(sizeof(double) * n * (size_t)dy), *nd = NULL;
    if (!perm || !order || !lst || !used || !yp) rc = GN_ENOMEM;
    if (!rc && dz) {
        nb = gn_malloc(sizeof(uint32_t) * n * (size_t)shuffle_k),
        nd = gn_malloc(sizeof(double) * n * (size_t)shuffle_k);
        if (!nb || !nd) rc = GN_ENOMEM;
        // the shuffle_k nearest in Z, the point itself included (same_set = 0)
        else rc = st_knn(z, n, z, n, dz, shuffle_k, ST_LINF, 0, nb, nd);
    }
    gn_rng r;
    gn_rng_seed(&r, seed, GN_STREAM_SHUFFLE);
    int ge = 0;
    for (int b = 0; b < B && !rc; b++) {
        if (!dz) gn_rng_permutation(&r, perm, n);
        else {
            gn_rng_permutation(&r, order, n);
            memset(used, 0, n);
            for (size_t a = 0; a < n; a++) {
                size_t i = order[a];
                memcpy(lst, nb + i * (size_t)shuffle_k, sizeof(uint32_t) * (size_t)shuffle_k);
                for (int q = shuffle_k - 1; q > 0; q--) {
                    uint32_t t = gn_rng_below(&r, (uint32_t)q + 1), s = lst[q];
                    lst[q] = lst[t], lst[t] = s;
                }
                uint32_t pick = lst[shuffle_k - 1]; // all used: the last one tried
                for (int q = 0; q < shuffle_k; q++)
                    if (!used[lst[q]]) {
                        pick = lst[q];
                        break;
                    }
                perm[i] = pick, used[pick] = 1;
            }
        }
        for (size_t i = 0; i < n; i++)
            memcpy(yp + i * (size_t)dy, y + (size_t)perm[i] * dy, sizeof(double) * (size_t)dy);
        double v;
        rc = st_mi(o, x, dx, yp, dy, z, dz, n, &v);
        if (!rc) {
            ge += v >= *value;
            if (null) null[b] = v;
        }
    }
    if (!rc) *p = (1.0 + ge) / (B + 1.0);
    else if (rc == GN_ENOMEM) gn_err(rc, "permutation test: out of memory");
    free(nb), free(nd), free(perm), free(order), free(lst), free(used), free(yp);
    return rc;
}
