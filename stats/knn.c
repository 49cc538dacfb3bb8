#include "knn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "../common/gn_common.h"

#define LEAF 16

static inline double dist_m(const double *a, const double *b, int d, const int metric) {
    double s = 0;
    for (int j = 0; j < d; j++) {
        double v = a[j] - b[j];
        if (metric == ST_LINF) {
            v = fabs(v);
            s = v > s ? v : s;
        } else
            s += v * v;
    }
    return metric == ST_LINF ? s : sqrt(s);
}

static double dist(const double *a, const double *b, int d, int metric) {
    return metric == ST_LINF ? dist_m(a, b, d, ST_LINF) : dist_m(a, b, d, ST_L2);
}

// Nodes of a subtree over m points (an upper bound: a box of identical points
// stays a leaf and leaves its slots unused). Node ids are laid out
// depth-first from this, so subtrees can be built concurrently.
static size_t subtree_nodes(size_t m) {
    return m <= LEAF ? 1 : 1 + subtree_nodes(m / 2) + subtree_nodes(m - m / 2);
}

// Quickselect over positions [lo, hi) of the tree-order arrays (idx and the
// coordinate rows tp, swapped together so every access is contiguous), by
// (coordinate dim, index): afterwards position mid holds the element of that
// rank and everything before it comes before it (Hoare partition,
// median-of-3). Equal coordinates still split deterministically.
#define KEY_LT(va, ia, vb, ib) ((va) < (vb) || ((va) == (vb) && (ia) < (ib)))
static void swap_pos(uint32_t *idx, double *tp, int d, uint32_t x, uint32_t y) {
    uint32_t t = idx[x];
    idx[x] = idx[y], idx[y] = t;
    for (int j = 0; j < d; j++) {
        double v = tp[(size_t)x * d + j];
        tp[(size_t)x * d + j] = tp[(size_t)y * d + j], tp[(size_t)y * d + j] = v;
    }
}

static void select_nth(uint32_t *idx, double *tp, int d, int dim, uint32_t lo, uint32_t hi, uint32_t mid) {
#define V(pos) tp[(size_t)(pos) * d + dim]
#define LT(x, y) KEY_LT(V(x), idx[x], V(y), idx[y])
    while (hi - lo > 2) {
        uint32_t a = lo, b = lo + (hi - lo) / 2, c = hi - 1;
        if (LT(b, a)) swap_pos(idx, tp, d, a, b);
        if (LT(c, b)) {
            swap_pos(idx, tp, d, b, c);
            if (LT(b, a)) swap_pos(idx, tp, d, a, b);
        }
        double pv = V(b);
        uint32_t pi = idx[b], i = lo, j = hi - 1;
        for (;;) { // [lo, i) before-or-equal the pivot, (j, hi) after-or-equal
            while (KEY_LT(V(i), idx[i], pv, pi)) i++;
            while (KEY_LT(pv, pi, V(j), idx[j])) j--;
            if (i >= j) break;
            swap_pos(idx, tp, d, i, j);
            i++, j--;
        }
        if (mid <= j) hi = j + 1; // [lo, j] <= pivot <= [j + 1, hi)
        else lo = j + 1;
    }
    if (hi - lo == 2 && LT(lo + 1, lo)) swap_pos(idx, tp, d, lo, lo + 1);
#undef V
#undef LT
}

// The split dimension is the widest of the node's cell (the parent's cell cut
// at the split: `cell`, (2, d)); the tight bounding boxes the searches prune
// with are scanned at the leaves and merged upwards.
static void build(st_kdtree *t, int id, uint32_t lo, uint32_t hi, const double *cell) {
    const int d = t->d;
    double *bx = t->box + (size_t)id * 2 * d;
    st_kdnode nd = {lo, hi, -1, -1, 0, 0};
    int dim = 0;
    double w = -1;
    for (int j = 0; j < d; j++)
        if (cell[d + j] - cell[j] > w) w = cell[d + j] - cell[j], dim = j;
    if (hi - lo > LEAF && w > 0) {
        uint32_t mid = lo + (hi - lo) / 2;
        select_nth(t->idx, t->tp, d, dim, lo, hi, mid);
        nd.dim = dim;
        nd.split = t->tp[(size_t)mid * d + dim];
        nd.left = id + 1, nd.right = id + 1 + (int)subtree_nodes(mid - lo);
        double cl[2 * d], cr[2 * d];
        memcpy(cl, cell, sizeof cl), memcpy(cr, cell, sizeof cr);
        cl[d + dim] = cr[dim] = nd.split;
#pragma omp task if (hi - lo > 20000)
        build(t, nd.left, lo, mid, cl);
#pragma omp task if (hi - lo > 20000)
        build(t, nd.right, mid, hi, cr);
#pragma omp taskwait
        const double *bl = t->box + (size_t)nd.left * 2 * d, *br = t->box + (size_t)nd.right * 2 * d;
        for (int j = 0; j < d; j++) bx[j] = fmin(bl[j], br[j]), bx[d + j] = fmax(bl[d + j], br[d + j]);
    } else {
        for (int j = 0; j < d; j++) bx[j] = INFINITY, bx[d + j] = -INFINITY;
        for (uint32_t i = lo; i < hi; i++)
            for (int j = 0; j < d; j++) {
                double v = t->tp[(size_t)i * d + j];
                if (v < bx[j]) bx[j] = v;
                if (v > bx[d + j]) bx[d + j] = v;
            }
    }
    t->node[id] = nd;
}

int st_kd_build(st_kdtree *t, const double *pts, size_t n, int d, int metric) {
    memset(t, 0, sizeof *t);
    if (n == 0 || d < 1) return gn_err(GN_EINVAL, "kNN: no points (n = %zu, d = %d)", n, d);
    if (n > 0x7fffffffu) return gn_err(GN_EINVAL, "kNN: at most 2^31 - 1 points");
    for (size_t i = 0; i < n * (size_t)d; i++)
        if (!isfinite(pts[i]))
            return gn_err(GN_EINVAL, "kNN: point %zu has a NaN or infinite coordinate", i / (size_t)d);
    t->d = d, t->metric = metric, t->n = n, t->pts = pts;
    size_t nn = subtree_nodes(n);
    t->n_nodes = t->cap = (int)nn;
    t->idx = gn_malloc(sizeof(uint32_t) * n);
    t->node = gn_malloc(sizeof(st_kdnode) * nn);
    t->box = gn_malloc(sizeof(double) * 2 * (size_t)d * nn);
    t->tp = gn_malloc(sizeof(double) * n * (size_t)d);
    if (!t->idx || !t->node || !t->box || !t->tp) {
        st_kd_free(t);
        return GN_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) t->idx[i] = (uint32_t)i;
    memcpy(t->tp, pts, sizeof(double) * n * (size_t)d); // reordered with idx while building
    double cell[2 * d]; // the root's cell: the bounding box of all points
    for (int j = 0; j < d; j++) cell[j] = INFINITY, cell[d + j] = -INFINITY;
    for (size_t i = 0; i < n; i++)
        for (int j = 0; j < d; j++)
            cell[j] = fmin(cell[j], pts[i * d + j]), cell[d + j] = fmax(cell[d + j], pts[i * d + j]);
#pragma omp parallel if (n > 20000)
#pragma omp single
    build(t, 0, 0, (uint32_t)n, cell);
    return GN_OK;
}

void st_kd_free(st_kdtree *t) {
    free(t->idx), free(t->node), free(t->box), free(t->tp);
    memset(t, 0, sizeof *t);
}

// A bounded max-heap ordered by (distance, index).
typedef struct heap {
    int k, n;
    double *d;
    uint32_t *i;
} heap;

static int worse(double da, uint32_t ia, double db, uint32_t ib) { return da > db || (da == db && ia > ib); }

static void heap_push(heap *h, double d, uint32_t i) {
    if (h->n == h->k) {
        if (!worse(h->d[0], h->i[0], d, i)) return; // not better than the current worst
        int p = 0; // replace the root and sift down
        for (;;) {
            int c = 2 * p + 1;
            if (c >= h->n) break;
            if (c + 1 < h->n && worse(h->d[c + 1], h->i[c + 1], h->d[c], h->i[c])) c++;
            if (!worse(h->d[c], h->i[c], d, i)) break;
            h->d[p] = h->d[c], h->i[p] = h->i[c];
            p = c;
        }
        h->d[p] = d, h->i[p] = i;
        return;
    }
    int c = h->n++;
    while (c > 0) {
        int p = (c - 1) / 2;
        if (!worse(d, i, h->d[p], h->i[p])) break;
        h->d[c] = h->d[p], h->i[c] = h->i[p];
        c = p;
    }
    h->d[c] = d, h->i[c] = i;
}

// Lower bound of the distance from q to node's box (inlined with a constant
// metric into the two specialised searches below).
static inline double box_dist_m(const st_kdtree *t, int id, const double *q, const int metric) {
    const int d = t->d;
    const double *bx = t->box + (size_t)id * 2 * d;
    double s = 0;
    for (int j = 0; j < d; j++) {
        double v = q[j] < bx[j] ? bx[j] - q[j] : q[j] > bx[d + j] ? q[j] - bx[d + j] : 0;
        if (metric == ST_LINF) s = v > s ? v : s;
        else s += v * v;
    }
    return metric == ST_LINF ? s : sqrt(s);
}

static double box_dist(const st_kdtree *t, int id, const double *q) {
    return t->metric == ST_LINF ? box_dist_m(t, id, q, ST_LINF) : box_dist_m(t, id, q, ST_L2);
}

// Depth-first search, nearer child first; a full heap prunes boxes farther
// than its worst entry, and leaf points no better than it are skipped
// before the (out-of-line) heap update.
#define KNN_REC(name, metric)                                                                                \
    static void name(const st_kdtree *t, int id, const double *q, long self, heap *h) {                      \
        const st_kdnode *nd = &t->node[id];                                                                  \
        if (h->n == h->k && box_dist_m(t, id, q, metric) > h->d[0]) return;                                  \
        if (nd->left < 0) {                                                                                  \
            for (uint32_t a = nd->lo; a < nd->hi; a++) {                                                     \
                double v = dist_m(q, t->tp + (size_t)a * t->d, t->d, metric);                                \
                if (h->n == h->k && v > h->d[0]) continue;                                                   \
                uint32_t i = t->idx[a];                                                                      \
                if ((long)i != self) heap_push(h, v, i);                                                     \
            }                                                                                                \
            return;                                                                                          \
        }                                                                                                    \
        int first = q[nd->dim] < nd->split ? nd->left : nd->right,                                           \
            second = first == nd->left ? nd->right : nd->left;                                               \
        name(t, first, q, self, h);                                                                          \
        name(t, second, q, self, h);                                                                         \
    }
KNN_REC(knn_rec_linf, ST_LINF)
KNN_REC(knn_rec_l2, ST_L2)
#undef KNN_REC

// Heap -> ascending (distance, index) order, in place (heap sort); returns the count.
static int heap_sort(heap *h) {
    int n = h->n;
    for (int end = n - 1; end > 0; end--) {
        double d0 = h->d[0], dl = h->d[end];
        uint32_t i0 = h->i[0], il = h->i[end];
        int p = 0;
        for (;;) { // sift the last element down from the root over [0, end)
            int c = 2 * p + 1;
            if (c >= end) break;
            if (c + 1 < end && worse(h->d[c + 1], h->i[c + 1], h->d[c], h->i[c])) c++;
            if (!worse(h->d[c], h->i[c], dl, il)) break;
            h->d[p] = h->d[c], h->i[p] = h->i[c];
            p = c;
        }
        h->d[p] = dl, h->i[p] = il;
        h->d[end] = d0, h->i[end] = i0;
    }
    return n;
}

int st_kd_knn(const st_kdtree *t, const double *q, int k, long self, uint32_t *idx, double *dist_out) {
    heap h = {k, 0, dist_out, idx};
    if (t->metric == ST_LINF) knn_rec_linf(t, 0, q, self, &h);
    else knn_rec_l2(t, 0, q, self, &h);
    return heap_sort(&h);
}

static size_t count_rec(const st_kdtree *t, int id, const double *q, double r, int strict, long self) {
    const st_kdnode *nd = &t->node[id];
    double lb = box_dist(t, id, q);
    if (strict ? lb >= r : lb > r) return 0;
    // the farthest corner of the box: if inside, count the whole node
    const double *bx = t->box + (size_t)id * 2 * t->d;
    double far = 0;
    for (int j = 0; j < t->d; j++) {
        double v = fmax(fabs(q[j] - bx[j]), fabs(q[j] - bx[t->d + j]));
        if (t->metric == ST_LINF) far = v > far ? v : far;
        else far += v * v;
    }
    if (t->metric == ST_L2) far = sqrt(far);
    if (strict ? far < r : far <= r) {
        size_t c = nd->hi - nd->lo;
        if (self >= 0) // is self inside this node?
            for (uint32_t a = nd->lo; a < nd->hi; a++)
                if ((long)t->idx[a] == self) {
                    c--;
                    break;
                }
        return c;
    }
    if (nd->left < 0) {
        size_t c = 0;
        for (uint32_t a = nd->lo; a < nd->hi; a++) {
            uint32_t i = t->idx[a];
            if ((long)i == self) continue;
            double v = dist(q, t->tp + (size_t)a * t->d, t->d, t->metric);
            c += strict ? v < r : v <= r;
        }
        return c;
    }
    return count_rec(t, nd->left, q, r, strict, self) + count_rec(t, nd->right, q, r, strict, self);
}

size_t st_kd_count(const st_kdtree *t, const double *q, double r, int strict, long self) {
    return count_rec(t, 0, q, r, strict, self);
}

// ---- brute force through a GEMM (Euclidean, higher dimensions) ----
// Squared distances |q|^2 + |r|^2 - 2 q.r of centred float32 copies come from
// an sgemm over (query block x reference block) tiles. They only screen: a
// reference point stays a candidate while its screened distance is within
// `tol` of the current k-th best, tol bounding the float32 rounding of both
// the coordinates and the GEMM; the survivors' exact double distances (the
// same function the KD-tree uses) decide, with ties by index. So the result
// equals the KD-tree's exactly.
enum { QB = 64, RB = 2048 };

typedef struct cand {
    uint32_t *i;
    float *a;
    size_t n, cap;
} cand;

static int cand_add(cand *c, uint32_t i, float a) {
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 256;
        uint32_t *ni = realloc(c->i, sizeof(uint32_t) * cap);
        if (ni) c->i = ni;
        float *na = realloc(c->a, sizeof(float) * cap);
        if (na) c->a = na;
        if (!ni || !na) return -1;
        c->cap = cap;
    }
    c->i[c->n] = i, c->a[c->n++] = a;
    return 0;
}

static void cand_prune(cand *c, float thr) {
    size_t m = 0;
    for (size_t j = 0; j < c->n; j++)
        if (c->a[j] <= thr) c->i[m] = c->i[j], c->a[m++] = c->a[j];
    c->n = m;
}

static int knn_brute(const double *ref, size_t n_ref, const double *query, size_t n_query, int d, int k,
                     int same_set, uint32_t *idx, double *dist_out) {
    double *mu = gn_calloc((size_t)d, sizeof(double));
    float *R = gn_malloc(sizeof(float) * n_ref * (size_t)d), *rn = gn_malloc(sizeof(float) * n_ref);
    if (!mu || !R || !rn) return free(mu), free(R), free(rn), GN_ENOMEM;
    for (size_t i = 0; i < n_ref; i++)
        for (int j = 0; j < d; j++) mu[j] += ref[i * d + j];
    for (int j = 0; j < d; j++) mu[j] /= (double)n_ref;
    float rmax = 0;
    for (size_t i = 0; i < n_ref; i++) {
        double s = 0;
        for (int j = 0; j < d; j++) {
            float v = (float)(ref[i * d + j] - mu[j]);
            R[i * d + j] = v, s += (double)v * v;
        }
        rn[i] = (float)s, rmax = fmaxf(rmax, (float)s);
    }
    const float u = 1.2e-7f * (2 * d + 8); // relative rounding bound on a screened squared distance
    int rc = GN_OK;
    long nblk = (long)((n_query + QB - 1) / QB);
#pragma omp parallel
    {
        float *Q = malloc(sizeof(float) * QB * (size_t)d), *G = malloc(sizeof(float) * QB * RB);
        float *qn = malloc(sizeof(float) * QB), *tol = malloc(sizeof(float) * QB);
        double *hd = malloc(sizeof(double) * (size_t)k * QB);
        uint32_t *hi = malloc(sizeof(uint32_t) * (size_t)k * QB);
        cand *cs = calloc(QB, sizeof(cand));
        int bad = !Q || !G || !qn || !tol || !hd || !hi || !cs;
        if (bad) {
#pragma omp atomic write
            rc = GN_ENOMEM;
        }
#pragma omp for schedule(dynamic, 1)
        for (long b = 0; b < nblk; b++) {
            if (bad) continue;
            size_t q0 = (size_t)b * QB, nq = n_query - q0 < QB ? n_query - q0 : QB;
            heap h[QB];
            for (size_t a = 0; a < nq; a++) {
                double s = 0;
                for (int j = 0; j < d; j++) {
                    float v = (float)(query[(q0 + a) * d + j] - mu[j]);
                    Q[a * d + j] = v, s += (double)v * v;
                }
                qn[a] = (float)s, tol[a] = u * (qn[a] + rmax) + 1e-30f;
                h[a] = (heap){k, 0, hd + a * k, hi + a * k}; // screened distances, as doubles
                cs[a].n = 0;
            }
            for (size_t r0 = 0; r0 < n_ref && !bad; r0 += RB) {
                size_t nr = n_ref - r0 < RB ? n_ref - r0 : RB;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nq, (int)nr, d, -2.0f, Q, d,
                            R + r0 * d, d, 0.0f, G, (int)nr);
                for (size_t a = 0; a < nq && !bad; a++) {
                    const float *g = G + a * nr;
                    heap *hp = &h[a];
                    float thr = hp->n == k ? (float)hp->d[0] + tol[a] : INFINITY;
                    for (size_t j = 0; j < nr; j++) {
                        float v = g[j] + qn[a] + rn[r0 + j];
                        if (v > thr) continue;
                        uint32_t i = (uint32_t)(r0 + j);
                        if (same_set && i == q0 + a) continue;
                        heap_push(hp, v, i);
                        if (cand_add(&cs[a], i, v)) bad = 1;
                        if (hp->n == k) thr = (float)hp->d[0] + tol[a];
                    }
                    if (cs[a].n > (size_t)8 * k + 1024) cand_prune(&cs[a], thr);
                }
            }
            if (bad) {
#pragma omp atomic write
                rc = GN_ENOMEM;
                continue;
            }
            for (size_t a = 0; a < nq; a++) { // exact distances decide among the survivors
                float thr = (float)h[a].d[0] + tol[a];
                heap e = {k, 0, dist_out + (q0 + a) * k, idx + (q0 + a) * k};
                const double *qq = query + (q0 + a) * d;
                for (size_t j = 0; j < cs[a].n; j++)
                    if (cs[a].a[j] <= thr)
                        heap_push(&e, dist(qq, ref + (size_t)cs[a].i[j] * d, d, ST_L2), cs[a].i[j]);
                heap_sort(&e);
            }
        }
        if (cs)
            for (int a = 0; a < QB; a++) free(cs[a].i), free(cs[a].a);
        free(Q), free(G), free(qn), free(tol), free(hd), free(hi), free(cs);
    }
    free(mu), free(R), free(rn);
    return rc ? gn_err(rc, "kNN: out of memory") : GN_OK;
}

int st_knn_method(int d, int metric) {
    return metric == ST_L2 && d >= ST_KNN_BRUTE_MIN_DIM ? ST_KNN_BRUTE : ST_KNN_KDTREE;
}

int st_knn_ex(const double *ref, size_t n_ref, const double *query, size_t n_query, int d, int k, int metric,
              int same_set, int method, uint32_t *idx, double *dist_out) {
    if (k < 1 || (size_t)k > n_ref - (same_set && n_ref ? 1 : 0))
        return gn_err(GN_EINVAL, "kNN: k = %d but only %zu reference points%s", k, n_ref,
                      same_set ? " besides the query" : "");
    for (size_t i = 0; i < n_query * (size_t)d; i++)
        if (!isfinite(query[i]))
            return gn_err(GN_EINVAL, "kNN: query %zu has a NaN coordinate", i / (size_t)d);
    for (size_t i = 0; i < n_ref * (size_t)d; i++)
        if (!isfinite(ref[i]))
            return gn_err(GN_EINVAL, "kNN: reference point %zu has a NaN coordinate", i / (size_t)d);
    if (method == ST_KNN_AUTO) method = st_knn_method(d, metric);
    if (method == ST_KNN_BRUTE) {
        if (metric != ST_L2) return gn_err(GN_EINVAL, "kNN: the GEMM brute force is Euclidean only");
        return knn_brute(ref, n_ref, query, n_query, d, k, same_set, idx, dist_out);
    }
    st_kdtree t;
    int rc = st_kd_build(&t, ref, n_ref, d, metric);
    if (rc) return rc;
#pragma omp parallel for schedule(dynamic, 64)
    for (long q = 0; q < (long)n_query; q++)
        st_kd_knn(&t, query + (size_t)q * d, k, same_set ? q : -1, idx + (size_t)q * k,
                  dist_out + (size_t)q * k);
    st_kd_free(&t);
    return GN_OK;
}

int st_knn(const double *ref, size_t n_ref, const double *query, size_t n_query, int d, int k, int metric,
           int same_set, uint32_t *idx, double *dist_out) {
    return st_knn_ex(ref, n_ref, query, n_query, d, k, metric, same_set, ST_KNN_AUTO, idx, dist_out);
}
