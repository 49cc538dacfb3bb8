#include "knn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../common/gn_common.h"

#define LEAF 16

static double dist(const double *a, const double *b, int d, int metric) {
    double s = 0;
    if (metric == ST_LINF) {
        for (int j = 0; j < d; j++) {
            double v = fabs(a[j] - b[j]);
            if (v > s) s = v;
        }
        return s;
    }
    for (int j = 0; j < d; j++) s += (a[j] - b[j]) * (a[j] - b[j]);
    return sqrt(s);
}

static int new_node(st_kdtree *t) {
    if (t->n_nodes == t->cap) {
        int nc = t->cap ? t->cap * 2 : 64;
        st_kdnode *nn = gn_realloc(t->node, sizeof *nn * (size_t)nc);
        if (!nn) return -1;
        t->node = nn;
        double *nb = gn_realloc(t->box, sizeof(double) * 2 * (size_t)t->d * (size_t)nc);
        if (!nb) return -1;
        t->box = nb;
        t->cap = nc;
    }
    return t->n_nodes++;
}

typedef struct sortctx {
    const double *p;
    int d, dim;
} sortctx;
static _Thread_local sortctx SC;
static int cmp_dim(const void *a, const void *b) {
    double x = SC.p[(size_t)*(const uint32_t *)a * SC.d + SC.dim], y = SC.p[(size_t)*(const uint32_t *)b * SC.d + SC.dim];
    if (x != y) return x < y ? -1 : 1;
    return (*(const uint32_t *)a > *(const uint32_t *)b) - (*(const uint32_t *)a < *(const uint32_t *)b);
}

static int build(st_kdtree *t, uint32_t lo, uint32_t hi) {
    int id = new_node(t);
    if (id < 0) return -1;
    int d = t->d;
    double *bx = t->box + (size_t)id * 2 * d;
    for (int j = 0; j < d; j++) bx[j] = INFINITY, bx[d + j] = -INFINITY;
    for (uint32_t i = lo; i < hi; i++)
        for (int j = 0; j < d; j++) {
            double v = t->pts[(size_t)t->idx[i] * d + j];
            if (v < bx[j]) bx[j] = v;
            if (v > bx[d + j]) bx[d + j] = v;
        }
    st_kdnode nd = {lo, hi, -1, -1, 0, 0};
    if (hi - lo > LEAF) {
        int dim = 0;
        double w = -1;
        for (int j = 0; j < d; j++)
            if (bx[d + j] - bx[j] > w) w = bx[d + j] - bx[j], dim = j;
        if (w > 0) {
            SC = (sortctx){t->pts, d, dim};
            qsort(t->idx + lo, hi - lo, sizeof(uint32_t), cmp_dim);
            uint32_t mid = lo + (hi - lo) / 2;
            nd.dim = dim;
            nd.split = t->pts[(size_t)t->idx[mid] * d + dim];
            int l = build(t, lo, mid), r = l < 0 ? -1 : build(t, mid, hi);
            if (l < 0 || r < 0) return -1;
            nd.left = l, nd.right = r;
        }
    }
    t->node[id] = nd;
    return id;
}

int st_kd_build(st_kdtree *t, const double *pts, size_t n, int d, int metric) {
    memset(t, 0, sizeof *t);
    if (n == 0 || d < 1) return gn_err(GN_EINVAL, "kNN: no points (n = %zu, d = %d)", n, d);
    if (n > 0xffffffffu) return gn_err(GN_EINVAL, "kNN: at most 2^32 - 1 points");
    for (size_t i = 0; i < n * (size_t)d; i++)
        if (!isfinite(pts[i])) return gn_err(GN_EINVAL, "kNN: point %zu has a NaN or infinite coordinate", i / (size_t)d);
    t->d = d, t->metric = metric, t->n = n, t->pts = pts;
    t->idx = gn_malloc(sizeof(uint32_t) * n);
    if (!t->idx) return GN_ENOMEM;
    for (size_t i = 0; i < n; i++) t->idx[i] = (uint32_t)i;
    if (build(t, 0, (uint32_t)n) < 0) {
        st_kd_free(t);
        return GN_ENOMEM;
    }
    return GN_OK;
}

void st_kd_free(st_kdtree *t) {
    free(t->idx), free(t->node), free(t->box);
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

// Lower bound of the distance from q to node's box.
static double box_dist(const st_kdtree *t, int id, const double *q) {
    const double *bx = t->box + (size_t)id * 2 * t->d;
    double s = 0;
    for (int j = 0; j < t->d; j++) {
        double v = q[j] < bx[j] ? bx[j] - q[j] : q[j] > bx[t->d + j] ? q[j] - bx[t->d + j] : 0;
        if (t->metric == ST_LINF) s = v > s ? v : s;
        else s += v * v;
    }
    return t->metric == ST_LINF ? s : sqrt(s);
}

static void knn_rec(const st_kdtree *t, int id, const double *q, long self, heap *h) {
    const st_kdnode *nd = &t->node[id];
    if (h->n == h->k && box_dist(t, id, q) > h->d[0]) return;
    if (nd->left < 0) {
        for (uint32_t a = nd->lo; a < nd->hi; a++) {
            uint32_t i = t->idx[a];
            if ((long)i == self) continue;
            heap_push(h, dist(q, t->pts + (size_t)i * t->d, t->d, t->metric), i);
        }
        return;
    }
    int first = q[nd->dim] < nd->split ? nd->left : nd->right, second = first == nd->left ? nd->right : nd->left;
    knn_rec(t, first, q, self, h);
    knn_rec(t, second, q, self, h);
}

int st_kd_knn(const st_kdtree *t, const double *q, int k, long self, uint32_t *idx, double *dist_out) {
    heap h = {k, 0, dist_out, idx};
    knn_rec(t, 0, q, self, &h);
    // heap -> ascending order (heap sort in place)
    int n = h.n;
    for (int end = n - 1; end > 0; end--) {
        double d0 = h.d[0];
        uint32_t i0 = h.i[0];
        double dl = h.d[end];
        uint32_t il = h.i[end];
        h.n = end;
        int p = 0;
        for (;;) { // sift the last element down from the root over [0, end)
            int c = 2 * p + 1;
            if (c >= end) break;
            if (c + 1 < end && worse(h.d[c + 1], h.i[c + 1], h.d[c], h.i[c])) c++;
            if (!worse(h.d[c], h.i[c], dl, il)) break;
            h.d[p] = h.d[c], h.i[p] = h.i[c];
            p = c;
        }
        h.d[p] = dl, h.i[p] = il;
        h.d[end] = d0, h.i[end] = i0;
    }
    return n;
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
            double v = dist(q, t->pts + (size_t)i * t->d, t->d, t->metric);
            c += strict ? v < r : v <= r;
        }
        return c;
    }
    return count_rec(t, nd->left, q, r, strict, self) + count_rec(t, nd->right, q, r, strict, self);
}

size_t st_kd_count(const st_kdtree *t, const double *q, double r, int strict, long self) {
    return count_rec(t, 0, q, r, strict, self);
}

int st_knn(const double *ref, size_t n_ref, const double *query, size_t n_query, int d, int k, int metric, int same_set,
           uint32_t *idx, double *dist_out) {
    if (k < 1 || (size_t)k > n_ref - (same_set ? 1 : 0))
        return gn_err(GN_EINVAL, "kNN: k = %d but only %zu reference points%s", k, n_ref, same_set ? " besides the query" : "");
    st_kdtree t;
    int rc = st_kd_build(&t, ref, n_ref, d, metric);
    if (rc) return rc;
    for (size_t i = 0; i < n_query * (size_t)d; i++)
        if (!isfinite(query[i])) return st_kd_free(&t), gn_err(GN_EINVAL, "kNN: query %zu has a NaN coordinate", i / (size_t)d);
#pragma omp parallel for schedule(dynamic, 64)
    for (long q = 0; q < (long)n_query; q++)
        st_kd_knn(&t, query + (size_t)q * d, k, same_set ? q : -1, idx + (size_t)q * k, dist_out + (size_t)q * k);
    st_kd_free(&t);
    return GN_OK;
}
