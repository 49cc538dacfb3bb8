// Exact TreeSHAP for the boosted trees (models/gbdt.h), after Lundberg, Erion & Lee (2018), Algorithm 2.
// Along the path from the root, each feature met carries the fraction of the training cover that follows
// the path when the feature is unknown (z) and whether x itself follows it (o); w holds the weights of the
// path's subsets by size, so that a leaf adds to each feature on the path the Shapley-weighted difference
// of its value with the feature known and unknown. A feature split twice on a path is folded into one
// entry (its earlier entry is unwound first). Cost O(leaves x depth^2) per tree and row.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gbdt.h"

typedef struct path_el {
    int d;
    double z, o, w;
} path_el;

// Append (pi, pz, po) to the path m[0..L) and update the subset weights.
static void extend(path_el *m, int L, double pz, double po, int pi) {
    m[L] = (path_el){pi, pz, po, L == 0 ? 1 : 0};
    for (int i = L - 1; i >= 0; i--) {
        m[i + 1].w += po * m[i].w * (i + 1) / (double)(L + 1);
        m[i].w = pz * m[i].w * (L - i) / (double)(L + 1);
    }
}

// Remove entry k from the path m[0..L] (L + 1 entries), undoing its extend.
static void unwind(path_el *m, int L, int k) {
    double n = m[L].w, z = m[k].z, o = m[k].o;
    for (int j = L - 1; j >= 0; j--) {
        if (o != 0) {
            double t = m[j].w;
            m[j].w = n * (L + 1) / ((j + 1) * o);
            n = t - m[j].w * z * (L - j) / (double)(L + 1);
        } else
            m[j].w = m[j].w * (L + 1) / (z * (L - j));
    }
    for (int j = k; j < L; j++) m[j].d = m[j + 1].d, m[j].z = m[j + 1].z, m[j].o = m[j + 1].o;
}

// The total weight of the path m[0..L] with entry k unwound, m unchanged.
static double unwound_sum(const path_el *m, int L, int k) {
    double n = m[L].w, z = m[k].z, o = m[k].o, tot = 0;
    for (int j = L - 1; j >= 0; j--) {
        if (o != 0) {
            double t = n * (L + 1) / ((j + 1) * o);
            tot += t;
            n = m[j].w - t * z * (L - j) / (double)(L + 1);
        } else
            tot += m[j].w * (L + 1) / (z * (L - j));
    }
    return tot;
}

static int goes_left(const gb_node *nd, double v) { return isnan(v) ? nd->default_left : v <= nd->threshold; }

// parent: the path so far (L entries); this node's own copy starts after it.
static void recurse(const gb_node *T, int j, const double *x, double *phi, const path_el *parent, int L,
                    double pz, double po, int pi) {
    path_el *m = (path_el *)parent + L + 1;
    memcpy(m, parent, sizeof(path_el) * (size_t)L);
    extend(m, L, pz, po, pi);
    const gb_node *nd = &T[j];
    if (nd->feature < 0) {
        for (int i = 1; i <= L; i++) phi[m[i].d] += unwound_sum(m, L, i) * (m[i].o - m[i].z) * nd->value;
        return;
    }
    int hot = goes_left(nd, x[nd->feature]) ? nd->left : nd->right,
        cold = hot == nd->left ? nd->right : nd->left;
    double iz = 1, io = 1;
    int k = 1, len = L + 1;
    while (k <= L && m[k].d != nd->feature) k++;
    if (k <= L) iz = m[k].z, io = m[k].o, unwind(m, L, k), len = L;
    recurse(T, hot, x, phi, m, len, iz * T[hot].cover / nd->cover, io, nd->feature);
    recurse(T, cold, x, phi, m, len, iz * T[cold].cover / nd->cover, 0, nd->feature);
}

static int depth(const gb_node *T, int j) {
    if (T[j].feature < 0) return 0;
    int a = depth(T, T[j].left), b = depth(T, T[j].right);
    return 1 + (a > b ? a : b);
}

static double tree_mean(const gb_node *T, int j) {
    if (T[j].feature < 0) return T[j].value;
    const gb_node *l = &T[T[j].left], *r = &T[T[j].right];
    return (tree_mean(T, T[j].left) * l->cover + tree_mean(T, T[j].right) * r->cover) / T[j].cover;
}

double gb_expected_value(const gb_model *m, int e) {
    const gb_ens *E = &m->ens[e];
    double s = E->base;
    for (int t = 0; t < E->n_trees; t++) s += tree_mean(E->nodes + E->tree_start[t], 0);
    return s;
}

void gb_shap_rows(const gb_model *m, int e, const double *X, size_t n, double *phi) {
    const gb_ens *E = &m->ens[e];
    int F = m->n_features, D = 0;
    for (int t = 0; t < E->n_trees; t++) { // once for all rows: the deepest path, the expected value
        int d = depth(E->nodes + E->tree_start[t], 0);
        D = d > D ? d : D;
    }
    double ev = gb_expected_value(m, e);
    size_t room = sizeof(path_el) * (size_t)(D + 2) * (size_t)(D + 3);
#pragma omp parallel if (n > 16)
    {
        path_el *buf = malloc(room); // one path buffer per thread
#pragma omp for schedule(dynamic, 16)
        for (size_t i = 0; i < n; i++) {
            double *ph = phi + i * (size_t)(F + 1);
            memset(ph, 0, sizeof(double) * (size_t)(F + 1));
            for (int t = 0; buf && t < E->n_trees; t++)
                recurse(E->nodes + E->tree_start[t], 0, X + i * (size_t)F, ph, buf, 0, 1, 1, -1);
            ph[F] = buf ? ev : NAN;
            for (int f = 0; !buf && f < F; f++) ph[f] = NAN;
        }
        free(buf);
    }
}

void gb_shap_row(const gb_model *m, int e, const double *x, double *phi) { gb_shap_rows(m, e, x, 1, phi); }

static double cond(const gb_node *T, int j, const double *x, const uint8_t *in_s) {
    const gb_node *nd = &T[j];
    if (nd->feature < 0) return nd->value;
    if (in_s[nd->feature]) return cond(T, goes_left(nd, x[nd->feature]) ? nd->left : nd->right, x, in_s);
    return (cond(T, nd->left, x, in_s) * T[nd->left].cover +
            cond(T, nd->right, x, in_s) * T[nd->right].cover) /
           nd->cover;
}

double gb_cond_expect(const gb_model *m, int e, const double *x, const uint8_t *in_s) {
    const gb_ens *E = &m->ens[e];
    double s = E->base;
    for (int t = 0; t < E->n_trees; t++) s += cond(E->nodes + E->tree_start[t], 0, x, in_s);
    return s;
}
