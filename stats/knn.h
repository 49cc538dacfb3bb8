// Exact nearest neighbours: a KD-tree over n points in d dimensions
// (row-major doubles), Euclidean or max-norm (Chebyshev) distance, ties broken
// by the lower index so results never depend on the thread count; and range
// counts (strict < r or inclusive <= r) for the kNN information estimators.
#ifndef ST_KNN_H
#define ST_KNN_H

#include <stddef.h>
#include <stdint.h>

enum { ST_L2 = 0, ST_LINF = 1 };

typedef struct st_kdnode {
    uint32_t lo, hi;     // points idx[lo, hi)
    int32_t left, right; // children, -1 for a leaf
    int dim;
    double split;
} st_kdnode;

typedef struct st_kdtree {
    int d, metric;
    size_t n;
    const double *pts;   // (n, d), not owned
    double *tp;          // (n, d) the points in tree order (idx), for contiguous leaf scans
    uint32_t *idx;       // (n) permutation
    st_kdnode *node;
    double *box;         // (nodes, 2, d) bounding boxes
    int n_nodes, cap;
} st_kdtree;

int st_kd_build(st_kdtree *t, const double *pts, size_t n, int d, int metric);
void st_kd_free(st_kdtree *t);
// The k nearest neighbours of q, excluding point `self` (or -1): indices and
// distances in increasing (distance, index) order. Returns the number found.
int st_kd_knn(const st_kdtree *t, const double *q, int k, long self, uint32_t *idx, double *dist);
// Number of points within r of q (strict: distance < r; else <= r), excluding `self`.
size_t st_kd_count(const st_kdtree *t, const double *q, double r, int strict, long self);

// Batch: the k nearest reference points of every query (self excluded when
// query and reference are the same set, same_set = 1). Parallel over queries.
int st_knn(const double *ref, size_t n_ref, const double *query, size_t n_query, int d, int k, int metric,
           int same_set, uint32_t *idx, double *dist);

// The same with the method chosen: ST_KNN_AUTO picks the KD-tree for low
// dimensions or the max-norm, and the blocked-GEMM brute force (float32
// screening, exact double distances deciding, so identical results) for
// Euclidean spaces of ST_KNN_BRUTE_MIN_DIM dimensions or more.
enum { ST_KNN_AUTO = 0, ST_KNN_KDTREE = 1, ST_KNN_BRUTE = 2 };
#define ST_KNN_BRUTE_MIN_DIM 8
int st_knn_method(int d, int metric);
int st_knn_ex(const double *ref, size_t n_ref, const double *query, size_t n_query, int d, int k, int metric,
              int same_set, int method, uint32_t *idx, double *dist);

#endif
