// make bench: the statistics. Exact kNN of 100,000 points in 16-D (k = 100,
// each point querying the others) by the GEMM brute force, and by the KD-tree
// for the first 2,000 queries (same answers, for comparison);
// the full local-test pass (kNN in an 8-D S space + r, PE, one permutation)
// over 20,000 query galaxies; KSG 1 MI at n = 100,000. Prints one line per
// figure: "name seconds".
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/gn_common.h"
#include "../common/gn_rng.h"
#include "../stats/knn.h"
#include "../stats/local.h"
#include "../stats/mi.h"

static double *gauss(size_t n, uint64_t seed) {
    double *v = malloc(sizeof(double) * n);
    gn_rng r;
    gn_rng_seed(&r, seed, 1);
    for (size_t i = 0; i < n; i++) v[i] = gn_rng_normal(&r);
    return v;
}

int main(int argc, char **argv) {
    gn_runtime_init(argv);
    int threads = argc > 1 ? atoi(argv[1]) : 0;
    size_t n_knn = argc > 2 ? (size_t)atol(argv[2]) : 100000;
    gn_set_threads(threads);
    const int d = 16, k = 100;
    const size_t nq = 20000, nbuf = n_knn > nq ? n_knn : nq; // kNN queries, then the local-test queries
    double *p = gauss(n_knn * d, 1);
    uint32_t *idx = malloc(sizeof(uint32_t) * nbuf * k), *idx2 = malloc(sizeof(uint32_t) * nbuf * k);
    double *dist = malloc(sizeof(double) * nbuf * k), *dist2 = malloc(sizeof(double) * nbuf * k);
    double t0 = gn_now();
    if (st_knn_ex(p, n_knn, p, n_knn, d, k, ST_L2, 1, ST_KNN_BRUTE, idx, dist))
        return fprintf(stderr, "%s\n", gn_errmsg()), 1;
    double t_brute = gn_now() - t0;
    // the KD-tree (16-D is where it degrades) on the first 2,000 queries: time and identity of the answers
    const size_t nq2 = n_knn < 2000 ? n_knn : 2000;
    t0 = gn_now();
    if (st_knn_ex(p, n_knn, p, nq2, d, k, ST_L2, 1, ST_KNN_KDTREE, idx2, dist2))
        return fprintf(stderr, "%s\n", gn_errmsg()), 1;
    double t_kd = gn_now() - t0;
    int same =
        !memcmp(idx, idx2, sizeof(uint32_t) * nq2 * k) && !memcmp(dist, dist2, sizeof(double) * nq2 * k);
    printf("knn_brute %.3f\nknn_kdtree_2000_queries %.3f\nknn_identical %d\n", t_brute, t_kd, same);
    free(p);

    // local tests: 100,000 training galaxies in an 8-D S space, 20,000 queries
    const size_t nt = 100000;
    const int ds = 8;
    double *S = gauss(nt * ds, 2), *Q = gauss(nq * ds, 3), *y = gauss(nt, 4), *x = gauss(nt, 5);
    for (size_t i = 0; i < nt; i++) y[i] += S[i * ds], x[i] += 0.3 * y[i];
    st_local_row *rows = malloc(sizeof(st_local_row) * nq);
    t0 = gn_now();
    st_local_opts o = {1, 10, 7, 9000, 0};
    if (st_knn(S, nt, Q, nq, ds, k, ST_L2, 0, idx, dist) ||
        st_local_test(idx, nq, k, y, x, NULL, NULL, &o, rows))
        return fprintf(stderr, "%s\n", gn_errmsg()), 1;
    printf("local_pass %.3f\n", gn_now() - t0);

    // KSG 1 at n = 100,000 (1-D x, 1-D y, rho = 0.6): best of 5 calls (the
    // python peer times sklearn the same way)
    const size_t nm = 100000;
    double *a = gauss(nm, 6), *b = gauss(nm, 7), mi, best = INFINITY;
    for (size_t i = 0; i < nm; i++) b[i] = 0.6 * a[i] + 0.8 * b[i];
    for (int rep = 0; rep < 5; rep++) {
        t0 = gn_now();
        if (st_mi_ksg(a, 1, b, 1, nm, 3, 1, &mi)) return fprintf(stderr, "%s\n", gn_errmsg()), 1;
        best = fmin(best, gn_now() - t0);
    }
    printf("ksg_mi %.4f\nksg_value %.4f\n", best, mi);
    return 0;
}
