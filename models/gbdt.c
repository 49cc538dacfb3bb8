// Histogram gradient boosting: binning, leaf-wise growth, prediction (models/gbdt.h).
#include "gbdt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../common/gn_common.h"
#include "../common/gn_rng.h"

#include <omp.h>

#define GB_HB 256   // histogram slots per feature: up to 255 bins + the missing bin
#define GB_MAXT 256 // threads a partition uses
#define GB_LANES 16 // rows a prediction steps through a tree side by side
#define GB_QB 64    // rows of a prediction block

// Kernels compiled for AVX2 (and AVX-512) as well, chosen at run time from the CPU.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define GB_CLONES __attribute__((target_clones("avx2", "default")))
#define GB_CLONES512 __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define GB_CLONES
#define GB_CLONES512
#endif
#define GB_BIN_SAMPLE 200000 // rows the bin edges are found from (evenly spaced beyond this)

typedef struct gb_hist {
    double g, n;
} gb_hist;

typedef uint64_t gb_sum; // a packed sum of rows: count << qsh + scaled gradient sum (see pack_grad)

// A leaf while growing: its rows idx[b, e), tree node, histogram slot, sums and best split.
typedef struct gb_leaf {
    size_t b, e;
    int node, depth, slot;
    double G, N;
    int feature, bin, default_left; // best split (feature < 0: none)
    double gain, GL, NL;            // its gain and the left child's sums
} gb_leaf;

struct gb_fit {
    gb_model *m;
    gb_params p;
    int F, E, *fsel, n_fsel, ident; // ident: this tree's rows are all rows (idx[i] = i at the root)
    size_t n, nv;
    const double *X, *y, *Xv, *yv;
    uint8_t *bins;         // F x n, column-major
    double *pred, *predv;  // n x E, nv x E
    uint8_t *rows;         // the same bins, row-major (n x F)
    uint64_t *th;          // per thread: F x GB_HB packed histogram sums
    int nth;               // threads th has room for
    int64_t *q;            // the rows' packed gradients (see pack_grad)
    int qsh;               // count << qsh + gradient sum: the packing of this tree
    double qsc, qinv;      // the gradients' scale (a power of two) and its inverse
    uint8_t *fast_root;    // per ensemble: root histograms from the sums below (see root_hist)
    double *rP, *rSy, *rc; // per ensemble F x GB_HB: predictions' and targets' sums, counts; rc: scratch
    uint32_t *rN;
    double *res;
    uint32_t *idx, *tmp;
    uint8_t *mark;  // rows in the bag
    uint8_t *all_y; // per ensemble: every training row has its target
    gb_sum *hist;   // num_leaves slots of F x GB_HB
    gb_leaf *leaf;
};

static int cmp_dbl(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// Linear interpolation between order statistics (numpy's default); v is sorted in place.
static double quantile(double *v, size_t n, double q) {
    if (!n) return 0;
    qsort(v, n, sizeof(double), cmp_dbl);
    double h = q * (double)(n - 1);
    size_t k = (size_t)h;
    return k + 1 < n ? v[k] + (h - (double)k) * (v[k + 1] - v[k]) : v[n - 1];
}

const char *gb_loss_name(int loss) {
    static const char *nm[GB_LOSS_COUNT] = {"l2", "l1", "huber", "quantile"};
    return loss >= 0 && loss < GB_LOSS_COUNT ? nm[loss] : "?";
}

double gb_loss(int loss, double a, double f, double y) {
    double d = f - y, ad = fabs(d);
    switch (loss) {
    case GB_L1: return ad;
    case GB_HUBER: return ad <= a ? 0.5 * d * d : a * (ad - 0.5 * a);
    case GB_QUANTILE: return y >= f ? a * (y - f) : (1 - a) * (f - y);
    default: return d * d;
    }
}

static double grad(int loss, double a, double f, double y) {
    double d = f - y;
    switch (loss) {
    case GB_L1: return (d > 0) - (d < 0);
    case GB_HUBER: return fabs(d) <= a ? d : copysign(a, d);
    case GB_QUANTILE: return f >= y ? 1 - a : -a;
    default: return d;
    }
}

// ---- the model ----

int gb_model_init(gb_model *m, int n_ens, const int *loss, const double *alpha) {
    memset(m, 0, sizeof *m);
    m->n_ens = n_ens;
    m->ens = gn_calloc((size_t)n_ens, sizeof(gb_ens));
    if (!m->ens) return GN_ENOMEM;
    for (int e = 0; e < n_ens; e++) {
        gb_ens *E = &m->ens[e];
        E->loss = loss[e], E->alpha = alpha[e], E->active = 1, E->best_loss = INFINITY;
        if (!(E->tree_start = gn_calloc(1, sizeof(int64_t)))) return GN_ENOMEM;
    }
    return GN_OK;
}

void gb_model_free(gb_model *m) {
    for (int e = 0; m->ens && e < m->n_ens; e++) free(m->ens[e].nodes), free(m->ens[e].tree_start);
    free(m->ens), free(m->edges), free(m->edge_start);
    memset(m, 0, sizeof *m);
}

int gb_bin(const gb_model *m, int f, double v) {
    const double *ed = m->edges + m->edge_start[f];
    int nb = gb_n_bins(m, f);
    if (isnan(v)) return nb;
    const double *base = ed; // the first edge >= v (the last edge is +inf), without branches to mispredict
    int len = nb;
    while (len > 1) {
        int half = len / 2;
        base = base[half - 1] < v ? base + half : base;
        len -= half;
    }
    return (int)(base - ed) + (*base < v);
}

// Ascending sort of n finite doubles: LSD radix sort on their order-preserving 64-bit keys (16 bits a
// pass); qsort was a tenth of a fit on 80,000 rows. a, b: room for n keys each; cnt: 65536 counts.
static void sort_doubles(double *v, size_t n, uint64_t *a, uint64_t *b, size_t *cnt) {
    for (size_t i = 0; i < n; i++) {
        uint64_t u;
        memcpy(&u, &v[i], 8);
        a[i] = u >> 63 ? ~u : u | 0x8000000000000000ull;
    }
    for (int sh = 0; sh < 64; sh += 16) {
        memset(cnt, 0, sizeof(size_t) * 65536);
        for (size_t i = 0; i < n; i++) cnt[a[i] >> sh & 0xffff]++;
        size_t sum = 0;
        for (int d = 0; d < 65536; d++) {
            size_t c = cnt[d];
            cnt[d] = sum, sum += c;
        }
        for (size_t i = 0; i < n; i++) b[cnt[a[i] >> sh & 0xffff]++] = a[i];
        uint64_t *t = a;
        a = b, b = t;
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t u = a[i] >> 63 ? a[i] & 0x7fffffffffffffffull : ~a[i];
        memcpy(&v[i], &u, 8);
    }
}

// Finite upper edges of one feature from its sorted values s[0..k): written to out, their count returned.
static int feature_edges(const double *s, size_t k, int max_bins, double *out) {
    size_t distinct = k ? 1 : 0;
    for (size_t i = 1; i < k; i++) distinct += s[i] != s[i - 1];
    int ne = 0;
    for (int q = 1; k && q < max_bins; q++) {
        // few distinct values: an edge after each; else after the value at the q-th equal-count position
        size_t pos = distinct <= (size_t)max_bins ? 0 : (size_t)((double)q * (double)k / max_bins);
        if (distinct <= (size_t)max_bins && q > 1) break;
        size_t i = pos ? pos - 1 : 0;
        for (; i + 1 < k; i++) {
            if (s[i + 1] == s[i]) continue;
            double a = s[i], b = s[i + 1], mid = a + (b - a) / 2;
            if (mid >= b) mid = a;
            if (!ne || mid > out[ne - 1]) out[ne++] = mid;
            if (distinct > (size_t)max_bins || ne >= max_bins - 1) break;
        }
    }
    return ne;
}

int gb_bin_edges(gb_model *m, const double *X, size_t n, int F, int max_bins) {
    if (max_bins < 2 || max_bins > GB_HB - 1) return gn_err(GN_EINVAL, "max_bins must be in [2, 255]");
    size_t step = n > GB_BIN_SAMPLE ? n / GB_BIN_SAMPLE : 1, k_max = (n + step - 1) / step;
    double *all = gn_malloc(sizeof(double) * (size_t)F * (size_t)max_bins);
    enum { G = 4 }; // features per pass over X: the sampled rows of G features at a time, in order
    double *T = gn_malloc(sizeof(double) * (k_max ? k_max : 1) * G);
    // the sorts' room, one block from this thread (freed whole: no pages left behind in a thread's heap)
    size_t per = 2 * (k_max ? k_max : 1) + 65536;
    int nth = omp_get_max_threads() < G ? omp_get_max_threads() : G;
    uint64_t *room = gn_malloc(sizeof(uint64_t) * per * (size_t)nth);
    int *cnt = gn_malloc(sizeof(int) * (size_t)F), rc = GN_OK;
    if (!all || !cnt || !T || !room) return free(all), free(cnt), free(T), free(room), GN_ENOMEM;
    for (int f0 = 0; f0 < F; f0 += G) {
        int g1 = F - f0 < G ? F - f0 : G;
        size_t len[G] = {0};
        for (size_t i = 0; i < n; i += step)
            for (int q = 0; q < g1; q++)
                if (!isnan(X[i * F + f0 + q])) T[(size_t)q * k_max + len[q]++] = X[i * F + f0 + q];
#pragma omp parallel for schedule(dynamic) num_threads(nth)
        for (int q = 0; q < g1; q++) {
            double *s = T + (size_t)q * k_max;
            uint64_t *r = room + (size_t)omp_get_thread_num() * per;
            sort_doubles(s, len[q], r, r + (k_max ? k_max : 1), (size_t *)(r + 2 * (k_max ? k_max : 1)));
            cnt[f0 + q] = feature_edges(s, len[q], max_bins, all + (size_t)(f0 + q) * max_bins);
        }
    }
    free(T), free(room);
    free(m->edges), free(m->edge_start);
    m->n_features = F;
    m->edge_start = gn_malloc(sizeof(int64_t) * (size_t)(F + 1));
    m->edges = gn_malloc(sizeof(double) * (size_t)F * (size_t)max_bins);
    if (rc || !m->edges || !m->edge_start) return free(all), free(cnt), GN_ENOMEM;
    m->edge_start[0] = 0;
    for (int f = 0; f < F; f++) {
        double *o = m->edges + m->edge_start[f];
        memcpy(o, all + (size_t)f * max_bins, sizeof(double) * (size_t)cnt[f]);
        o[cnt[f]] = INFINITY;
        m->edge_start[f + 1] = m->edge_start[f] + cnt[f] + 1;
    }
    free(all), free(cnt);
    return GN_OK;
}

static int goes_left(const gb_node *nd, double v) { return isnan(v) ? nd->default_left : v <= nd->threshold; }

double gb_predict_row(const gb_model *m, int e, const double *x) {
    const gb_ens *E = &m->ens[e];
    double s = E->base;
    for (int t = 0; t < E->n_trees; t++) {
        const gb_node *T = E->nodes + E->tree_start[t];
        int j = 0;
        while (T[j].feature >= 0) j = goes_left(&T[j], x[T[j].feature]) ? T[j].left : T[j].right;
        s += T[j].value;
    }
    return s;
}

// Prediction nodes: threshold, feature, children (tree-local), missing values left. A leaf is a node whose
// two children are itself (threshold +inf, feature 0): a row that reached it stays, so every row of a block
// takes the same number of steps (the tree's depth) without a test for leaves, and eight rows step side by
// side with no branch to mispredict — their chains of dependent loads overlap. Leaf values apart (val).
typedef struct gb_pnode {
    double t;
    int32_t feature, kid[2], nr; // nr: missing values go right
} gb_pnode;

// Trees of at most 64 leaves are also kept as bit vectors (the QuickScorer method, Lucchese et al. 2015):
// leaves numbered left to right, and per internal node the mask of the leaves outside its left subtree. A row
// sent right by a node cannot end in that subtree, so the AND of the masks of the nodes that send it right
// leaves the exit leaf as the lowest bit still set. Every node is tested for eight rows at once (a block's
// features column by column), with no walk and no dependent loads.
typedef struct gb_pens {
    gb_pnode *P;
    double *val;
    int *depth;      // per tree
    int *qn;         // per tree: internal nodes in the bit-vector form, or -1 (more than 64 leaves: walked)
    int64_t *qo;     // per tree: its first internal node there (its leaves start at qo + t)
    int32_t *qf;     // per internal node: feature, threshold, missing values right (-1) or left (0), mask
    double *qt, *qv; // qv: leaf values left to right
    int64_t *qr;
    uint64_t *qm;
} gb_pens;

static int node_depth(const gb_node *T, int j) {
    if (T[j].feature < 0) return 0;
    int a = node_depth(T, T[j].left), b = node_depth(T, T[j].right);
    return 1 + (a > b ? a : b);
}

static int node_leaves(const gb_node *T, int j) {
    return T[j].feature < 0 ? 1 : node_leaves(T, T[j].left) + node_leaves(T, T[j].right);
}

// The bit-vector form of the subtree at j: its leaves from *nl on, its internal nodes from *ni on.
static void qs_fill(const gb_node *T, int j, gb_pens *C, int64_t lo, int64_t io, int *nl, int *ni) {
    if (T[j].feature < 0) {
        C->qv[lo + (*nl)++] = T[j].value;
        return;
    }
    int first = *nl;
    qs_fill(T, T[j].left, C, lo, io, nl, ni);
    uint64_t left = (*nl - first == 64 ? ~0ull : ((1ull << (*nl - first)) - 1)) << first;
    qs_fill(T, T[j].right, C, lo, io, nl, ni);
    int64_t k = io + (*ni)++;
    C->qf[k] = T[j].feature, C->qt[k] = T[j].threshold, C->qr[k] = T[j].default_left ? 0 : -1,
    C->qm[k] = ~left;
}

static void pens_free(gb_pens *C) {
    free(C->P), free(C->val), free(C->depth), free(C->qn), free(C->qo), free(C->qf), free(C->qt), free(C->qv);
    free(C->qr), free(C->qm);
}

static int compact(const gb_ens *E, gb_pens *C) {
    size_t nn = (size_t)E->tree_start[E->n_trees] + 1, nt = (size_t)E->n_trees + 1;
    *C = (gb_pens){malloc(sizeof(gb_pnode) * nn), malloc(sizeof(double) * nn),  malloc(sizeof(int) * nt),
                   malloc(sizeof(int) * nt),      malloc(sizeof(int64_t) * nt), malloc(sizeof(int32_t) * nn),
                   malloc(sizeof(double) * nn),   malloc(sizeof(double) * nn),  malloc(sizeof(int64_t) * nn),
                   malloc(sizeof(uint64_t) * nn)};
    if (!C->P || !C->val || !C->depth || !C->qn || !C->qo || !C->qf || !C->qt || !C->qv || !C->qr || !C->qm)
        return pens_free(C), -1;
    for (int t = 0; t < E->n_trees; t++) {
        const gb_node *T = E->nodes + E->tree_start[t];
        size_t o = (size_t)E->tree_start[t];
        C->depth[t] = node_depth(T, 0);
        for (int j = 0; j < (int)(E->tree_start[t + 1] - E->tree_start[t]); j++) {
            const gb_node *d = &T[j];
            C->val[o + j] = d->value;
            C->P[o + j] = d->feature < 0
                              ? (gb_pnode){INFINITY, 0, {j, j}, 0}
                              : (gb_pnode){d->threshold, d->feature, {d->left, d->right}, !d->default_left};
        }
        // a tree of n nodes has (n + 1) / 2 leaves: its internal nodes from o - t there, its leaves from o
        int nl = 0, ni = 0;
        C->qo[t] = (int64_t)o - t, C->qn[t] = -1;
        if (node_leaves(T, 0) <= 64) qs_fill(T, 0, C, C->qo[t] + t, C->qo[t], &nl, &ni), C->qn[t] = ni;
    }
    return 0;
}

// Tree t of the bit-vector form on a block of GB_QB rows (xt: the block's features, column by column).
GB_CLONES512 static void qs_tree(const gb_pens *C, int t, const double *xt, int b, double *acc) {
    typedef double v8 __attribute__((vector_size(64)));
    typedef int64_t v8i __attribute__((vector_size(64)));
    const int64_t io = C->qo[t];
    const double *lv = C->qv + io + t;
    for (int r = 0; r < b; r += 8) {
        v8i live = {-1, -1, -1, -1, -1, -1, -1, -1};
        for (int k = 0; k < C->qn[t]; k++) {
            v8 x;
            memcpy(&x, xt + (size_t)C->qf[io + k] * GB_QB + r, sizeof x);
            v8i right = (x > C->qt[io + k]) | ((x != x) & C->qr[io + k]);
            live &= (int64_t)C->qm[io + k] | ~right;
        }
        uint64_t lb[8];
        memcpy(lb, &live, sizeof lb);
        for (int i = 0; i < 8 && r + i < b; i++) acc[r + i] += lv[__builtin_ctzll(lb[i])];
    }
}

// Tree t walked by a block's rows, GB_LANES side by side.
static void walk_tree(const gb_ens *E, const gb_pens *C, int t, const double *X, int F, int b, double *acc) {
    const gb_pnode *T = C->P + E->tree_start[t];
    const double *val = C->val + E->tree_start[t];
    int D = C->depth[t];
    for (int i0 = 0; i0 < b; i0 += GB_LANES) {
        int m = b - i0 < GB_LANES ? b - i0 : GB_LANES, j[GB_LANES] = {0};
        const double *x = X + (size_t)i0 * F;
        for (int step = 0; step < D; step++)
            for (int r = 0; r < m; r++) {
                const gb_pnode *d = &T[j[r]];
                double v = x[(size_t)r * F + d->feature];
                int right = (v > d->t) | ((v != v) & d->nr); // no branch
                j[r] = d->kid[right];
            }
        for (int r = 0; r < m; r++) acc[i0 + r] += val[j[r]];
    }
}

// Rows [0, b) of X (b <= GB_QB) through every tree of one ensemble, tree by tree (a tree stays in cache for
// the block); xt: room for the block's F columns.
static void predict_block(const gb_ens *E, const gb_pens *C, const double *X, int F, int b, double *acc,
                          double *xt) {
    for (int i = 0; i < b; i++) acc[i] = E->base;
    for (int f = 0; f < F; f++)
        for (int r = 0; r < GB_QB; r++) xt[(size_t)f * GB_QB + r] = r < b ? X[(size_t)r * F + f] : 0;
    for (int t = 0; t < E->n_trees; t++)
        if (C->qn[t] >= 0)
            qs_tree(C, t, xt, b, acc);
        else
            walk_tree(E, C, t, X, F, b, acc);
}

void gb_predict(const gb_model *m, const double *X, size_t n, double *out) {
    int F = m->n_features, E = m->n_ens;
    for (int e = 0; e < E; e++) {
        gb_pens C;
        double *xt = NULL;
        if (compact(&m->ens[e], &C)) { // no room for the compact copy: row by row
            for (size_t i = 0; i < n; i++) out[i * E + e] = gb_predict_row(m, e, X + i * (size_t)F);
            continue;
        }
#pragma omp parallel if (n > 2 * GB_QB) private(xt)
        {
            xt = malloc(sizeof(double) * GB_QB * (size_t)(F ? F : 1));
#pragma omp for schedule(dynamic, 4)
            for (size_t o = 0; o < n; o += GB_QB) {
                double acc[GB_QB];
                int b = n - o < GB_QB ? (int)(n - o) : GB_QB;
                if (xt)
                    predict_block(&m->ens[e], &C, X + o * (size_t)F, F, b, acc, xt);
                else // no room for a block's columns: row by row
                    for (int i = 0; i < b; i++) acc[i] = gb_predict_row(m, e, X + (o + i) * (size_t)F);
                for (int i = 0; i < b; i++) out[(o + i) * E + e] = acc[i];
            }
            free(xt);
        }
        pens_free(&C);
    }
}

void gb_importance(const gb_model *m, int e, double *gain, double *splits) {
    const gb_ens *E = &m->ens[e];
    for (int f = 0; f < m->n_features; f++) gain[f] = splits[f] = 0;
    for (size_t j = 0; j < (size_t)E->tree_start[E->n_trees]; j++)
        if (E->nodes[j].feature >= 0)
            gain[E->nodes[j].feature] += E->nodes[j].gain, splits[E->nodes[j].feature]++;
}

void gb_truncate_best(gb_model *m) {
    for (int e = 0; e < m->n_ens; e++) {
        gb_ens *E = &m->ens[e];
        if (E->best_trees < E->n_trees)
            E->n_trees = E->best_trees, E->n_nodes = (size_t)E->tree_start[E->n_trees];
    }
}

// ---- growing one tree ----

static gb_sum *slot_hist(const gb_fit *f, int slot, int feat) {
    return f->hist + ((size_t)slot * f->F + feat) * GB_HB;
}

// Thread t's part (of nt) of leaf L's histograms: its share of the rows into its own packed sums (th: F x
// GB_HB per thread, the features fsel in order). Bins are also kept row-major for this: the F bins of a
// row are side by side, so one line serves every feature of a scattered row. Sums of packed gradients are
// exact, so the parts add up to the same histograms in any order and for any thread count.
static void hist_part(gb_fit *f, const gb_leaf *L, int t, int nt) {
    size_t len = L->e - L->b, i0 = L->b + len * t / nt, i1 = L->b + len * (t + 1) / nt, F = (size_t)f->F;
    int nf = f->n_fsel, all = nf == f->F, ident = f->ident && L->b == 0 && L->e == f->n;
    uint64_t *T = f->th + (size_t)t * F * GB_HB;
    const uint8_t *rows = f->rows;
    const uint64_t *q = (const uint64_t *)f->q;
    const uint32_t *idx = f->idx;
    const int *fs = f->fsel;
    memset(T, 0, sizeof(uint64_t) * (size_t)nf * GB_HB);
    for (size_t i = i0; i < i1; i++) {
        size_t r = ident ? i : idx[i];
        if (!ident && i + 16 < i1)
            __builtin_prefetch(rows + idx[i + 16] * F), __builtin_prefetch(q + idx[i + 16]);
        const uint8_t *rb = rows + r * F;
        uint64_t g = q[r];
        uint64_t *Tk = T;
        int k = 0;
        if (all)
            for (; k + 4 <= nf; k += 4, Tk += 4 * GB_HB) // unrolled: two instructions an update
                Tk[rb[k]] += g, Tk[GB_HB + rb[k + 1]] += g, Tk[2 * GB_HB + rb[k + 2]] += g,
                    Tk[3 * GB_HB + rb[k + 3]] += g;
        for (; k < nf; k++, Tk += GB_HB) Tk[rb[all ? k : fs[k]]] += g;
    }
}

// Features fsel[k0..k1) of leaf L's histograms: the nt threads' parts added.
static void hist_sum(gb_fit *f, const gb_leaf *L, int k0, int k1, int nt) {
    size_t stride = (size_t)f->F * GB_HB;
    for (int k = k0; k < k1; k++) {
        gb_sum *H = slot_hist(f, L->slot, f->fsel[k]);
        const uint64_t *T = f->th + (size_t)k * GB_HB;
        for (int j = 0; j <= gb_n_bins(f->m, f->fsel[k]); j++) {
            uint64_t S = 0;
            for (int t = 0; t < nt; t++) S += T[t * stride + j];
            H[j] = S;
        }
    }
}

// The histograms of leaf L: rows shared among threads, then features.
static void build_hist(gb_fit *f, const gb_leaf *L) {
    int nf = f->n_fsel;
#pragma omp parallel num_threads(f->nth) if ((L->e - L->b) * (size_t)nf > 32768)
    {
        int nt = omp_get_num_threads(), t = omp_get_thread_num();
        hist_part(f, L, t, nt);
#pragma omp barrier
        hist_sum(f, L, nf * t / nt, nf * (t + 1) / nt, nt);
    }
}

static double score(double G, double N, double l2) { return G * G / (N + l2); }

// A packed sum as gradient sum and count.
static gb_hist unpack(const gb_fit *f, gb_sum S) {
    int64_t G = (int64_t)(S << (64 - f->qsh)) >> (64 - f->qsh); // the low qsh bits, signed
    return (gb_hist){(double)G * f->qinv, (double)((S - (uint64_t)G) >> f->qsh)};
}

typedef double gb_v4 __attribute__((vector_size(32)));
typedef int64_t gb_v4i __attribute__((vector_size(32)));

// gain = (GL^2 / (NL + l2) + GR^2 / (NR + l2) - parent) / 2 for four candidates at GL, NL into out, 0 where
// a side would hold fewer than mn rows.
#define GB_GAINS4(out, GL_, NL_)                                                                             \
    do {                                                                                                     \
        gb_v4 gl_ = (GL_), nl_ = (NL_), gr_ = G - gl_, nr_ = N - nl_;                                        \
        gb_v4 v_ = 0.5 * (gl_ * gl_ / (nl_ + l2) + gr_ * gr_ / (nr_ + l2) - parent);                         \
        gb_v4i ok_ = (nl_ >= mn) & (nr_ >= mn);                                                              \
        v_ = (gb_v4)((gb_v4i)v_ & ok_);                                                                      \
        memcpy((out), &v_, sizeof v_);                                                                       \
    } while (0)

// The gains of the splits after bins t < nb of one feature: missing values right (g0) and, if any are
// missing, left (g1); 0 for a split that leaves a side empty. Four candidates a step (vector division).
// Returns the largest gain (0 if none is positive).
GB_CLONES static double split_gains(const gb_fit *f, const gb_leaf *L, const gb_sum *H, int nb, gb_hist miss,
                                    double *g0, double *g1) {
    double cg[GB_HB + 4], cn[GB_HB + 4], l2 = f->p.lambda_l2, parent = score(L->G, L->N, l2);
    double G = L->G, N = L->N;
    double mn = f->p.min_data_in_leaf > f->p.min_sum_hessian ? f->p.min_data_in_leaf : f->p.min_sum_hessian;
    double sg = 0, sn = 0;
    for (int t = 0; t < nb; t++) {
        gb_hist h = unpack(f, H[t]);
        cg[t] = sg += h.g, cn[t] = sn += h.n;
    }
    for (int t = nb; t < nb + 4; t++) cg[t] = cn[t] = 0;
    for (int t = 0; t < nb; t += 4) {
        gb_v4 GL, NL;
        memcpy(&GL, cg + t, sizeof GL), memcpy(&NL, cn + t, sizeof NL);
        GB_GAINS4(g0 + t, GL, NL);
        if (miss.n > 0) GB_GAINS4(g1 + t, GL + miss.g, NL + miss.n);
    }
    int nm = miss.n > 0;
    for (int t = nb - 1; t < nb + 4; t++) g0[t] = t == nb - 1 && nm ? g0[t] : 0, g1[t] = 0;
    gb_v4 mx = {0, 0, 0, 0};
    for (int t = 0; t < nb; t += 4)
        for (int d = 0; d <= nm; d++) {
            gb_v4 a;
            memcpy(&a, (d ? g1 : g0) + t, sizeof a);
            gb_v4i gt = a > mx; // NaN never wins
            mx = (gb_v4)(((gb_v4i)a & gt) | ((gb_v4i)mx & ~gt));
        }
    double b = mx[0];
    for (int i = 1; i < 4; i++) b = mx[i] > b ? mx[i] : b;
    return b;
}

// The best split of one feature of leaf L: its gain (0 if none), bin and missing direction. Candidates in
// the order bin, then missing right before left; the first of the largest gain.
static double best_of_feature(const gb_fit *f, const gb_leaf *L, int ft, int *bin, int *dl, double *gl,
                              double *nl) {
    const gb_sum *H = slot_hist(f, L->slot, ft);
    int nb = gb_n_bins(f->m, ft);
    const gb_hist miss = unpack(f, H[nb]);
    double g0[GB_HB + 4], g1[GB_HB + 4], best = split_gains(f, L, H, nb, miss, g0, g1);
    if (!(best > 0)) return 0;
    int bt = 0, bd = 0;
    while (g0[bt] != best && !(miss.n > 0 && g1[bt] == best)) bt++;
    bd = g0[bt] != best;
    gb_sum S = 0; // the left side's sums, exact, from the histogram
    for (int t = 0; t <= bt; t++) S += H[t];
    if (bd) S += H[nb];
    gb_hist h = unpack(f, S);
    *bin = bt, *gl = h.g, *nl = h.n, *dl = bd ? 1 : miss.n == 0 ? h.n >= L->N - h.n : 0;
    return best;
}

typedef struct gb_cand {
    double gain, gl, nl;
    int bin, dl;
} gb_cand;

static int can_split(const gb_fit *f, const gb_leaf *L) {
    return !(f->p.max_depth > 0 && L->depth >= f->p.max_depth) && L->N >= 2.0 * f->p.min_data_in_leaf;
}

static void score_feature(const gb_fit *f, const gb_leaf *L, int k, gb_cand *c) {
    c->gain = best_of_feature(f, L, f->fsel[k], &c->bin, &c->dl, &c->gl, &c->nl);
}

// The first feature of the largest gain among the candidates: the same for every thread count.
static void pick_split(const gb_fit *f, gb_leaf *L, const gb_cand *c) {
    L->feature = -1, L->gain = 0;
    for (int k = 0; k < f->n_fsel; k++)
        if (c[k].gain > L->gain)
            L->gain = c[k].gain, L->feature = f->fsel[k], L->bin = c[k].bin, L->default_left = c[k].dl,
            L->GL = c[k].gl, L->NL = c[k].nl;
}

static void find_split(gb_fit *f, gb_leaf *L) {
    int nf = f->n_fsel;
    gb_cand c[nf];
    for (int k = 0; k < nf; k++) c[k].gain = 0;
    if (can_split(f, L)) {
#pragma omp parallel for schedule(static) if (L->N * nf > 65536)
        for (int k = 0; k < nf; k++) score_feature(f, L, k, &c[k]);
    }
    pick_split(f, L, c);
}

// After a split, in one parallel region over groups of features: the smaller child's histograms from its
// rows, the larger child's as the parent's minus the smaller's, and both children's best split per feature.
static void grow_children(gb_fit *f, gb_leaf *small, gb_leaf *large) {
    int nf = f->n_fsel, cs = can_split(f, small), cl = can_split(f, large);
    gb_cand a[nf], b[nf];
#pragma omp parallel num_threads(f->nth) if (nf >= 4) // the split search alone is worth a second thread
    {
        int nt = omp_get_num_threads(), t = omp_get_thread_num(), k0 = nf * t / nt, k1 = nf * (t + 1) / nt;
        hist_part(f, small, t, nt);
#pragma omp barrier
        hist_sum(f, small, k0, k1, nt);
        for (int k = k0; k < k1; k++) {
            gb_sum *p = slot_hist(f, large->slot, f->fsel[k]), *q = slot_hist(f, small->slot, f->fsel[k]);
            for (int j = 0; j <= gb_n_bins(f->m, f->fsel[k]); j++) p[j] -= q[j]; // exact
            a[k].gain = b[k].gain = 0;
            if (cs) score_feature(f, small, k, &a[k]);
            if (cl) score_feature(f, large, k, &b[k]);
        }
    }
    pick_split(f, small, a);
    pick_split(f, large, b);
}

static int push_node(gb_ens *E, gb_node nd) {
    if (E->n_nodes == E->cap_nodes) {
        size_t c = E->cap_nodes ? 2 * E->cap_nodes : 1024;
        gb_node *p = realloc(E->nodes, sizeof(gb_node) * c);
        if (!p) return -1;
        E->nodes = p, E->cap_nodes = c;
    }
    E->nodes[E->n_nodes] = nd;
    return (int)E->n_nodes++;
}

// Whether bin v goes left at a split (bin thr, missing bin miss, missing values left if dl).
#define GB_LEFT(v, thr, miss, dl) ((v) == (miss) ? (dl) : (v) <= (thr))

// Stable partition of leaf L's rows by its best split (left rows first, each side in the old order);
// returns the end of the left rows. Small leaves branch-free on one thread: every row is written to both
// sides, one side advances (left rows in place: slot nl <= i is read already; right rows to tmp, which has
// a spare slot). Large ones in chunks, one per thread: counts, then each chunk's rows to their places in
// tmp. The result is the same either way.
static size_t partition(gb_fit *f, const gb_leaf *L) {
    const uint8_t *col = f->bins + (size_t)L->feature * f->n;
    const int miss = gb_n_bins(f->m, L->feature), thr = L->bin, dl = L->default_left;
    const size_t b = L->b, len = L->e - L->b;
    uint32_t *idx = f->idx, *tmp = f->tmp;
    if (len < 8192 || omp_get_max_threads() < 2) {
        size_t nl = b, nr = 0;
        for (size_t i = b; i < L->e; i++) {
            uint32_t r = idx[i];
            if (i + 64 < L->e) __builtin_prefetch(col + idx[i + 64]);
            int v = col[r], left = GB_LEFT(v, thr, miss, dl);
            idx[nl] = r, tmp[nr] = r;
            nl += left, nr += !left;
        }
        memcpy(idx + nl, tmp, sizeof(uint32_t) * nr);
        return nl;
    }
    size_t cnt[GB_MAXT + 1] = {0}, total = 0;
    int nthr = omp_get_max_threads() < GB_MAXT ? omp_get_max_threads() : GB_MAXT;
#pragma omp parallel num_threads(nthr)
    {
        int t = omp_get_thread_num(), T = omp_get_num_threads();
        size_t i0 = b + len * t / T, i1 = b + len * (t + 1) / T, c = 0;
        for (size_t i = i0; i < i1; i++) { // the sides, kept for the second pass (one read of col per row)
            if (i + 64 < i1) __builtin_prefetch(col + idx[i + 64]);
            int v = col[idx[i]], left = GB_LEFT(v, thr, miss, dl);
            f->mark[i] = (uint8_t)left, c += left;
        }
        cnt[t + 1] = c;
#pragma omp barrier
        size_t lo = b, nl = 0;
        for (int u = 0; u < T; u++) nl += cnt[u + 1];
        for (int u = 0; u < t; u++) lo += cnt[u + 1];
        size_t hi = b + nl + (i0 - b) - (lo - b);
        for (size_t i = i0; i < i1; i++) {
            uint32_t r = idx[i];
            int left = f->mark[i];
            size_t d = left ? lo : hi; // a select, not a branch
            tmp[d] = r, lo += left, hi += !left;
        }
#pragma omp barrier
        memcpy(idx + i0, tmp + i0, sizeof(uint32_t) * (i1 - i0));
#pragma omp single
        total = nl;
    }
    return b + total;
}

// Split leaf L (index li) into itself (left) and a new leaf (right); the node becomes internal.
static int split_leaf(gb_fit *f, gb_ens *E, int root, int li, int *n_leaves, int *free_slot) {
    gb_leaf *L = &f->leaf[li], R;
    size_t nl = partition(f, L);
    gb_node *P = &E->nodes[root + L->node];
    P->feature = L->feature, P->default_left = L->default_left, P->gain = L->gain, P->cover = L->N;
    P->threshold = f->m->edges[f->m->edge_start[L->feature] + L->bin];
    int lnode = push_node(E, (gb_node){.feature = -1}), rnode = push_node(E, (gb_node){.feature = -1});
    if (lnode < 0 || rnode < 0) return GN_ENOMEM;
    P = &E->nodes[root + L->node];
    P->left = lnode - root, P->right = rnode - root;
    R = (gb_leaf){.b = nl, .e = L->e, .node = rnode - root, .depth = L->depth + 1};
    L->e = nl, L->node = lnode - root, L->depth++;
    R.G = L->G - L->GL, R.N = (double)(R.e - R.b), L->G = L->GL, L->N = (double)(L->e - L->b);
    gb_leaf *small = L->N <= R.N ? L : &R, *large = small == L ? &R : L;
    large->slot = L->slot, small->slot = (*free_slot)++;
    f->leaf[*n_leaves] = R;
    if (small == &R)
        small = &f->leaf[*n_leaves];
    else
        large = &f->leaf[*n_leaves];
    (*n_leaves)++;
    grow_children(f, small, large);
    return GN_OK;
}

// Leaf values: the Newton step, or (L1, quantile) the alpha-quantile of the leaf's residuals.
static void leaf_values(gb_fit *f, gb_ens *E, int root, int e, int n_leaves) {
    for (int k = 0; k < n_leaves; k++) {
        gb_leaf *L = &f->leaf[k];
        gb_node *nd = &E->nodes[root + L->node];
        double v = -L->G / (L->N + f->p.lambda_l2);
        if (E->loss == GB_L1 || E->loss == GB_QUANTILE) {
            size_t m = 0;
            for (size_t i = L->b; i < L->e; i++) {
                uint32_t r = f->idx[i];
                f->res[m++] = f->y[r * (size_t)f->E + e] - f->pred[r * (size_t)f->E + e];
            }
            v = quantile(f->res, m, E->loss == GB_L1 ? 0.5 : E->alpha);
        }
        nd->value = f->p.learning_rate * v, nd->cover = L->N;
    }
}

// The rows of this round (bagging) and the tree's features (feature fraction), from (seed, e, round).
static size_t draw_rows(gb_fit *f, int e, gn_rng *rng) {
    size_t k = 0;
    int F = f->F, nk = (int)lround(f->p.feature_fraction * F);
    if (f->p.bagging_fraction >= 1 && f->all_y[e]) // every row, in order
        for (size_t i = 0; i < f->n; i++) f->idx[k++] = (uint32_t)i;
    else
        for (size_t i = 0; i < f->n; i++) {
            if (isnan(f->y[i * (size_t)f->E + e])) continue;
            if (f->p.bagging_fraction < 1 && gn_rng_uniform(rng) >= f->p.bagging_fraction) continue;
            f->idx[k++] = (uint32_t)i;
        }
    for (int j = 0; j < F; j++) f->fsel[j] = j;
    f->n_fsel = nk < 1 ? 1 : nk > F ? F : nk;
    for (int j = 0; j < f->n_fsel && f->n_fsel < F; j++) { // partial Fisher-Yates, then in feature order
        int r = j + (int)gn_rng_below(rng, (uint32_t)(F - j)), t = f->fsel[j];
        f->fsel[j] = f->fsel[r], f->fsel[r] = t;
    }
    int *s = f->fsel;
    for (int a = 1; a < f->n_fsel; a++)
        for (int b = a; b > 0 && s[b - 1] > s[b]; b--) {
            int t = s[b];
            s[b] = s[b - 1], s[b - 1] = t;
        }
    return k;
}

static uint64_t round_seed(const gb_fit *f, int e) {
    return f->p.seed * 0x9E3779B97F4A7C15ull + (uint64_t)e * 0x100000001B3ull + (uint64_t)f->m->rounds_done;
}

// The leaf of training row i in tree T (its bins).
static int route_bins(const gb_fit *f, const gb_node *T, size_t i) {
    int j = 0;
    while (T[j].feature >= 0) {
        int ft = T[j].feature, b = f->bins[(size_t)ft * f->n + i];
        int left = b == gb_n_bins(f->m, ft) ? T[j].default_left
                                            : T[j].threshold >= f->m->edges[f->m->edge_start[ft] + b];
        j = left ? T[j].left : T[j].right;
    }
    return j;
}

// Add the last tree of ensemble e to the predictions: (if train) the training rows not in mark (NULL: all)
// through the tree's splits, the validation rows by their values.
static void add_tree(gb_fit *f, const gb_ens *E, int e, int train, const uint8_t *mark) {
    const gb_node *T = E->nodes + E->tree_start[E->n_trees - 1];
    size_t n = f->n, nv = f->nv;
    int F = f->F;
    if (train)
#pragma omp parallel for schedule(static) if (n > 4096)
        for (size_t i = 0; i < n; i++)
            if (!mark || !mark[i]) f->pred[i * f->E + e] += T[route_bins(f, T, i)].value;
#pragma omp parallel for schedule(static) if (nv > 4096)
    for (size_t i = 0; i < nv; i++) {
        const double *x = f->Xv + i * (size_t)F;
        int j = 0;
        while (T[j].feature >= 0) j = goes_left(&T[j], x[T[j].feature]) ? T[j].left : T[j].right;
        f->predv[i * f->E + e] += T[j].value;
    }
}

// The rows of the tree's bag take their leaf's value from the partition (no routing), the others through
// add_tree: each row gains the same value either way.
static void add_grown_tree(gb_fit *f, const gb_ens *E, int e, int root, int n_leaves, size_t k) {
#pragma omp parallel for schedule(dynamic) if (k > 65536) // leaves hold disjoint rows
    for (int l = 0; l < n_leaves; l++) {
        const gb_leaf *L = &f->leaf[l];
        double v = E->nodes[root + L->node].value;
        for (size_t i = L->b; i < L->e; i++) {
            if (i + 16 < L->e) __builtin_prefetch(f->pred + (size_t)f->idx[i + 16] * f->E + e, 1);
            f->pred[(size_t)f->idx[i] * f->E + e] += v;
        }
    }
    if (k < f->n) {
        memset(f->mark, 0, f->n);
        for (size_t i = 0; i < k; i++) f->mark[f->idx[i]] = 1;
    }
    add_tree(f, E, e, k < f->n, f->mark); // k == n: every training row is done already
}

// The gradients of the tree's k rows, packed for exact histograms: q = 2^qsh + round(g * 2^s), so that the
// sum over any rows is count * 2^qsh + (their scaled gradient sum) with no carry between the two: count <
// 2^(64 - qsh) and |scaled sum| <= k max|g| 2^s + k / 2 < 2^(qsh - 1). The scale keeps each gradient to
// >= 2^(61 - 2 cb) of the largest (cb: the bits of k; 2^-21 of it for 10^6 rows). A gradient that is not
// finite (a target or prediction of inf) is an error.
static int pack_grad(gb_fit *f, int e, size_t k) {
    const int El = f->E, loss = f->m->ens[e].loss;
    const double al = f->m->ens[e].alpha;
    double mx = 0;
#pragma omp parallel for schedule(static) reduction(max : mx) if (k > 65536)
    for (size_t i = 0; i < k; i++) {
        uint32_t r = f->idx[i];
        double g = grad(loss, al, f->pred[r * (size_t)El + e], f->y[r * (size_t)El + e]);
        memcpy(&f->q[r], &g, sizeof g); // kept in q's place until the scale is known
        mx = fmax(mx, fabs(g));
    }
    if (!isfinite(mx))
        return gn_err(GN_EINVAL, "a gradient became %g in round %d (inputs or targets with inf?)", mx,
                      f->m->rounds_done + 1);
    int cb = 1;
    while (cb < 63 && ((uint64_t)1 << cb) <= k) cb++;
    f->qsh = 64 - cb;
    int ex; // k mx 2^s <= 2^(62 - cb): the sums' magnitude bound, halved for the rounding
    frexp(mx * (double)k, &ex);
    int s = mx > 0 ? 62 - cb - ex : 0;
    s = s > 1000 ? 1000 : s < -1000 ? -1000 : s;
    double sc = ldexp(1, s);
    f->qsc = sc, f->qinv = ldexp(1, -s);
#pragma omp parallel for schedule(static) if (k > 65536)
    for (size_t i = 0; i < k; i++) {
        uint32_t r = f->idx[i];
        double g;
        memcpy(&g, &f->q[r], sizeof g);
        f->q[r] = (int64_t)((uint64_t)1 << f->qsh) + llrint(g * sc);
    }
    return GN_OK;
}

// ---- root histograms from sums (L2 loss, every row in every tree, every feature) ----
// The root's gradient sum in bin b of feature f is sum (pred - y) = P(f, b) - Sy(f, b): Sy, the targets'
// sum, is fixed, and P, the predictions' sum, grows after each tree by the sum over its leaves of value x
// count(leaf, f, b) (the counts are in the leaves' histograms). So a root needs no pass over the rows. P is
// updated leaf by leaf in the order of the tree's nodes, in a resume's replay exactly as in the fit.

static int fast_root_ok(const gb_fit *f, int e) {
    return !f->p.direct_root && f->m->ens[e].loss == GB_L2 && f->p.bagging_fraction >= 1 && f->all_y[e] &&
           lround(f->p.feature_fraction * f->F) >= f->F;
}

static size_t rsum_at(const gb_fit *f, int e, int ft) { return ((size_t)e * f->F + ft) * GB_HB; }

// P += v * count (rc: counts of one leaf, F x GB_HB): the one update of the fit and the replay.
static void root_add(gb_fit *f, int e, double v) {
    for (int ft = 0; ft < f->F; ft++) {
        double *P = f->rP + rsum_at(f, e, ft);
        const double *c = f->rc + (size_t)ft * GB_HB;
        for (int b = 0; b <= gb_n_bins(f->m, ft); b++) P[b] += v * c[b];
    }
}

// Slot 0 (the root) from the sums, packed with this tree's scale.
static void root_hist(gb_fit *f, int e) {
    for (int ft = 0; ft < f->F; ft++) {
        gb_sum *H = slot_hist(f, 0, ft);
        size_t o = rsum_at(f, e, ft);
        for (int b = 0; b <= gb_n_bins(f->m, ft); b++)
            H[b] = ((uint64_t)f->rN[o + b] << f->qsh) +
                   (uint64_t)llrint((f->rP[o + b] - f->rSy[o + b]) * f->qsc);
    }
}

// After tree growth: P gains each leaf's value times its counts (from its slot), leaves in node order.
static void root_grown(gb_fit *f, int e, int root, int n_leaves) {
    const gb_ens *E = &f->m->ens[e];
    for (int j = 0; root + j < (int)E->n_nodes; j++) {
        const gb_node *nd = &E->nodes[root + j];
        int l = 0;
        if (nd->feature >= 0) continue;
        while (l < n_leaves && f->leaf[l].node != j) l++;
        for (int ft = 0; ft < f->F; ft++)
            for (int b = 0; b <= gb_n_bins(f->m, ft); b++)
                f->rc[(size_t)ft * GB_HB + b] = unpack(f, slot_hist(f, f->leaf[l].slot, ft)[b]).n;
        root_add(f, e, nd->value);
    }
}

// At the start of a fit: counts, Sy and P (the base) in row order, then P through the trees so far (each
// leaf's counts by routing every row: a resume costs about one root histogram per tree).
static int root_init(gb_fit *f, int e) {
    const gb_ens *E = &f->m->ens[e];
    size_t F = (size_t)f->F;
    for (size_t i = 0; i < f->n; i++)
        for (size_t ft = 0; ft < F; ft++) {
            size_t o = rsum_at(f, e, (int)ft) + f->rows[i * F + ft];
            f->rN[o]++, f->rSy[o] += f->y[i * (size_t)f->E + e];
        }
    for (size_t ft = 0; ft < F; ft++)
        for (int b = 0; b < GB_HB; b++)
            f->rP[rsum_at(f, e, (int)ft) + b] = E->base * f->rN[rsum_at(f, e, (int)ft) + b];
    for (int t = 0; t < E->n_trees; t++) {
        const gb_node *T = E->nodes + E->tree_start[t];
        int nn = (int)(E->tree_start[t + 1] - E->tree_start[t]);
        uint32_t *cnt = gn_calloc((size_t)nn * F * GB_HB, sizeof(uint32_t));
        if (!cnt) return GN_ENOMEM;
        for (size_t i = 0; i < f->n; i++) {
            uint32_t *c = cnt + (size_t)route_bins(f, T, i) * F * GB_HB;
            for (size_t ft = 0; ft < F; ft++) c[ft * GB_HB + f->rows[i * F + ft]]++;
        }
        for (int j = 0; j < nn; j++) {
            if (T[j].feature >= 0) continue;
            for (size_t z = 0; z < F * GB_HB; z++) f->rc[z] = cnt[(size_t)j * F * GB_HB + z];
            root_add(f, e, T[j].value);
        }
        free(cnt);
    }
    return GN_OK;
}

// One tree of ensemble e: gradients, the root, leaf-wise splits up to num_leaves, leaf values.
static int grow_tree(gb_fit *f, int e) {
    gb_ens *E = &f->m->ens[e];
    gn_rng rng;
    gn_rng_seed(&rng, round_seed(f, e), GN_STREAM_SAMPLE);
    size_t k = draw_rows(f, e, &rng);
    f->ident = k == f->n; // every row, in order
    if (E->n_trees + 1 >= E->cap_trees) {
        int c = E->cap_trees ? 2 * E->cap_trees : 256;
        int64_t *p = realloc(E->tree_start, sizeof(int64_t) * (size_t)(c + 1));
        if (!p) return GN_ENOMEM;
        E->tree_start = p, E->cap_trees = c;
    }
    int root = (int)E->n_nodes;
    if (push_node(E, (gb_node){.feature = -1}) < 0) return GN_ENOMEM;
    if (pack_grad(f, e, k)) return GN_EINVAL;
    int n_leaves = 1, free_slot = 1;
    f->leaf[0] = (gb_leaf){.b = 0, .e = k, .node = 0, .depth = 0, .slot = 0, .N = (double)k};
    if (f->fast_root[e])
        root_hist(f, e);
    else
        build_hist(f, &f->leaf[0]);
    const gb_sum *H0 = slot_hist(f, 0, f->fsel[0]); // the root's sum, from one feature's histogram
    gb_sum S0 = 0;
    for (int j = 0; j <= gb_n_bins(f->m, f->fsel[0]); j++) S0 += H0[j];
    f->leaf[0].G = unpack(f, S0).g;
    find_split(f, &f->leaf[0]);
    while (n_leaves < f->p.num_leaves) {
        int best = -1;
        for (int l = 0; l < n_leaves; l++)
            if (f->leaf[l].feature >= 0 && (best < 0 || f->leaf[l].gain > f->leaf[best].gain)) best = l;
        if (best < 0) break;
        int rc = split_leaf(f, E, root, best, &n_leaves, &free_slot);
        if (rc) return rc;
    }
    leaf_values(f, E, root, e, n_leaves);
    if (f->fast_root[e]) root_grown(f, e, root, n_leaves);
    E->tree_start[++E->n_trees] = (int64_t)E->n_nodes;
    add_grown_tree(f, E, e, root, n_leaves, k);
    return GN_OK;
}

static double mean_loss(const gb_fit *f, int e, const double *pred, const double *y, size_t n) {
    const gb_ens *E = &f->m->ens[e];
    double s = 0;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        double yi = y[i * (size_t)f->E + e];
        if (isnan(yi)) continue;
        s += gb_loss(E->loss, E->alpha, pred[i * (size_t)f->E + e], yi), m++;
    }
    return m ? s / (double)m : NAN;
}

void gb_fit_losses(const gb_fit *f, int e, double *train, double *val) {
    *train = mean_loss(f, e, f->pred, f->y, f->n);
    *val = f->nv ? mean_loss(f, e, f->predv, f->yv, f->nv) : NAN;
}

int gb_fit_rounds_done(const gb_fit *f) { return f->m->rounds_done; }

const double *gb_fit_val_pred(const gb_fit *f) { return f->predv; }

int gb_fit_round(gb_fit *f) {
    int active = 0;
    for (int e = 0; e < f->E; e++) {
        gb_ens *E = &f->m->ens[e];
        if (!E->active) continue;
        int rc = grow_tree(f, e);
        if (rc == GN_ENOMEM) return gn_err(rc, "out of memory growing tree %d", E->n_trees + 1), -1;
        if (rc) return -1; // the message is set
        const gb_node *T = E->nodes + E->tree_start[E->n_trees - 1];
        for (int64_t j = 0; j < E->tree_start[E->n_trees] - E->tree_start[E->n_trees - 1]; j++)
            if (T[j].feature < 0 && !isfinite(T[j].value))
                return gn_err(GN_EINVAL, "a leaf value became %g in round %d (inputs or targets with inf?)",
                              T[j].value, E->n_trees),
                       -1;
        double vl = f->nv ? mean_loss(f, e, f->predv, f->yv, f->nv) : 0;
        if (!f->nv || vl < E->best_loss)
            E->best_loss = vl, E->best_trees = E->n_trees, E->stall = 0;
        else
            E->stall++;
        if (f->p.patience > 0 && E->stall >= f->p.patience) E->active = 0;
        active += E->active;
    }
    f->m->rounds_done++;
    return active;
}

// The starting score of each ensemble: the mean (L2), median (L1, Huber) or alpha-quantile of y.
static int base_scores(gb_model *gm, const double *y, size_t n) {
    int El = gm->n_ens;
    for (int e = 0; e < El; e++) {
        gb_ens *E = &gm->ens[e];
        double *v = E->loss == GB_L2 ? NULL : gn_malloc(sizeof(double) * (n ? n : 1)), s = 0;
        if (E->loss != GB_L2 && !v) return GN_ENOMEM;
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            double yi = y[i * (size_t)El + e];
            if (!isnan(yi)) s += yi, m++;
            if (v && !isnan(yi)) v[m - 1] = yi;
        }
        E->base = !v ? (m ? s / (double)m : 0) : quantile(v, m, E->loss == GB_QUANTILE ? E->alpha : 0.5);
        free(v);
    }
    return GN_OK;
}

// Predictions of the model so far, as the unbroken fit accumulated them (base, then tree by tree).
static void replay(gb_fit *f) {
    for (int e = 0; e < f->E; e++) {
        gb_ens *E = &f->m->ens[e];
        int nt = E->n_trees;
        for (size_t i = 0; i < f->n; i++) f->pred[i * f->E + e] = E->base;
        for (size_t i = 0; i < f->nv; i++) f->predv[i * f->E + e] = E->base;
        for (E->n_trees = 1; E->n_trees <= nt; E->n_trees++) add_tree(f, E, e, 1, NULL);
        E->n_trees = nt;
    }
}

// The bins (column-major, n rows; and row-major) of rows [i0, i0 + b) of X, b <= GB_LANES: gb_bin's search
// for the b rows of one feature side by side, so their chains of dependent loads overlap.
static void bin_block(const gb_model *m, const double *X, size_t i0, size_t b, uint8_t *bins, uint8_t *rows,
                      size_t n) {
    int F = m->n_features;
    for (int ft = 0; ft < F; ft++) {
        const double *ed = m->edges + m->edge_start[ft];
        double v[GB_LANES];
        int nb = gb_n_bins(m, ft), o[GB_LANES];
        for (size_t r = 0; r < b; r++) v[r] = X[(i0 + r) * F + ft], o[r] = 0;
        for (int len = nb; len > 1; len -= len / 2) // o += h if ed[o + h - 1] < v: arithmetic, not a branch
            for (size_t r = 0; r < b; r++) o[r] += (len / 2) & -(int)(ed[o[r] + len / 2 - 1] < v[r]);
        for (size_t r = 0; r < b; r++)
            bins[(size_t)ft * n + i0 + r] = rows[(i0 + r) * F + ft] =
                (uint8_t)(isnan(v[r]) ? nb : o[r] + (ed[o[r]] < v[r]));
    }
}

gb_fit *gb_fit_init(gb_model *m, const gb_params *p, const double *X, const double *y, size_t n,
                    const double *Xv, const double *yv, size_t nv) {
    if (m->rounds_done == 0 && base_scores(m, y, n)) return NULL; // before the fit's arrays: a lower peak
    gb_fit *f = gn_calloc(1, sizeof *f);
    if (!f) return NULL;
    int F = m->n_features, E = m->n_ens;
    *f = (gb_fit){.m = m, .p = *p, .F = F, .E = E, .n = n, .nv = nv, .X = X, .y = y, .Xv = Xv, .yv = yv};
    size_t nn = n ? n : 1;
    f->bins = gn_malloc(nn * (size_t)F);
    f->pred = gn_malloc(sizeof(double) * nn * E), f->predv = gn_malloc(sizeof(double) * (nv ? nv : 1) * E);
    f->q = gn_malloc(sizeof(int64_t) * nn), f->rows = gn_malloc(nn * (size_t)F);
    f->nth = omp_get_max_threads();
    f->th = gn_malloc(sizeof(uint64_t) * (size_t)f->nth * F * GB_HB);
    int renew = 0; // L1 and quantile leaves need room for a leaf's residuals
    for (int e = 0; e < E; e++) renew |= m->ens[e].loss == GB_L1 || m->ens[e].loss == GB_QUANTILE;
    f->res = renew ? gn_malloc(sizeof(double) * nn) : NULL;
    f->idx = gn_malloc(sizeof(uint32_t) * nn), f->tmp = gn_malloc(sizeof(uint32_t) * (nn + 1));
    f->fsel = gn_malloc(sizeof(int) * (size_t)F);
    f->mark = gn_malloc(nn), f->all_y = gn_malloc((size_t)E);
    f->hist = gn_malloc(sizeof(gb_sum) * (size_t)p->num_leaves * F * GB_HB);
    f->leaf = gn_malloc(sizeof(gb_leaf) * (size_t)p->num_leaves);
    size_t nr = (size_t)E * F * GB_HB;
    f->rP = gn_calloc(nr, sizeof(double)), f->rSy = gn_calloc(nr, sizeof(double));
    f->rN = gn_calloc(nr, sizeof(uint32_t)), f->rc = gn_malloc(sizeof(double) * (size_t)F * GB_HB);
    f->fast_root = gn_calloc((size_t)E, 1);
    if (!f->rP || !f->rSy || !f->rN || !f->rc || !f->fast_root) return gb_fit_free(f), NULL;
    if (!f->bins || !f->pred || !f->predv || !f->q || !f->rows || !f->th || (renew && !f->res) || !f->idx ||
        !f->tmp || !f->fsel || !f->mark || !f->all_y || !f->hist || !f->leaf)
        return gb_fit_free(f), NULL;
        // blocks of rows: X is read once, in order (a column at a time read all of X per feature, from
        // memory)
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i += GB_LANES)
        bin_block(m, X, i, n - i < GB_LANES ? n - i : GB_LANES, f->bins, f->rows, n);
    for (int e = 0; e < E; e++) {
        f->all_y[e] = 1;
        for (size_t i = 0; i < n; i++) f->all_y[e] &= !isnan(y[i * (size_t)E + e]);
    }
    replay(f);
    for (int e = 0; e < E; e++)
        if ((f->fast_root[e] = (uint8_t)fast_root_ok(f, e)) && root_init(f, e)) return gb_fit_free(f), NULL;
    return f;
}

void gb_fit_free(gb_fit *f) {
    if (!f) return;
    free(f->bins), free(f->pred), free(f->predv), free(f->q), free(f->rows), free(f->th), free(f->res),
        free(f->idx);
    free(f->tmp), free(f->mark), free(f->all_y), free(f->fsel), free(f->hist), free(f->leaf), free(f->rP),
        free(f->rSy), free(f->rN), free(f->rc), free(f->fast_root), free(f);
}
