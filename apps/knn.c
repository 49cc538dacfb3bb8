// galnn knn: exact k nearest neighbours between two tables.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/gn_common.h"
#include "../io/catalog.h"
#include "../io/config.h"
#include "../io/npy.h"
#include "../stats/knn.h"
#include "cmd.h"
#include "flags.h"

static void knn_usage(void) {
    printf(
        "usage: galnn knn --ref REF.csv [--query Q.csv] --cols COLS --k K --out NN.csv [--metric l2|linf]\n"
        "                 [--include-self] [--threads N]\n\n"
        "For every query row, its K nearest reference rows in the space of COLS. Exact: a KD-tree, or a\n"
        "GEMM brute force for Euclidean spaces of 8 or more dimensions (same answers); ties by reference\n"
        "order. Without --query the reference set queries itself, each point excluded from its own\n"
        "neighbours unless --include-self (then it is its own first neighbour, as in the S-space\n"
        "analysis). Rows with a null in COLS are left out (counted). NN.csv: query_id, rank, ref_id,\n"
        "distance.\n");
}

static double *load(const char *path, const char *cols, io_catalog *c, size_t *n, int *d, uint32_t **rows) {
    if (io_catalog_read(path, NULL, c)) return NULL;
    char buf[2048], *items[64];
    snprintf(buf, sizeof buf, "%s", cols);
    *d = io_split_list(buf, items, 64);
    const double *v[64];
    for (int j = 0; j < *d; j++)
        if (!(v[j] = io_catalog_values(c, items[j]))) return NULL;
    double *p = gn_malloc(sizeof(double) * (c->n_rows ? c->n_rows : 1) * (size_t)*d);
    *rows = gn_malloc(sizeof(uint32_t) * (c->n_rows ? c->n_rows : 1));
    if (!p || !*rows) return NULL;
    *n = 0;
    for (size_t r = 0; r < c->n_rows; r++) {
        int ok = 1;
        for (int j = 0; j < *d; j++) ok &= !isnan(v[j][r]);
        if (!ok) continue;
        for (int j = 0; j < *d; j++) p[*n * (size_t)*d + (size_t)j] = v[j][r];
        (*rows)[(*n)++] = (uint32_t)r;
    }
    return p;
}

typedef struct knn_cli {
    const char *ref, *query, *cols, *out, *metric;
    long k, threads;
    int include_self;
} knn_cli;

#define CLI knn_cli
static const cmd_flag knn_flags[] = {
    F_STR("--ref", ref, "REF.csv", "the reference table"),
    F_STR("--query", query, "Q.csv", "the query table (default: the reference set)"),
    F_STR("--cols", cols, "COLS", "the columns of the space"),
    F_INT("--k", k, 1, 1000000, "K", "neighbours per query"),
    F_OUT(out, "NN.csv", "query_id, rank, ref_id, distance"),
    F_STR("--metric", metric, "l2|linf", "the distance"),
    F_ON("--include-self", include_self, "a point is its own first neighbour"),
    F_THREADS(threads),
    F_END};

static void knn_defaults(void *p) {
    knn_cli *o = p;
    o->metric = "l2", o->k = 10;
}

static int knn_run(const void *p) {
    const knn_cli cl = *(const knn_cli *)p;
    const char *ref = cl.ref, *query = cl.query, *cols = cl.cols, *out = cl.out, *metric = cl.metric;
    long k = cl.k, threads = cl.threads;
    int include_self = cl.include_self;
    if (!ref || !cols || !out) return cmd_error("knn: --ref, --cols and --out are required");
    int m = !strcmp(metric, "l2") ? ST_L2 : !strcmp(metric, "linf") ? ST_LINF : -1;
    if (m < 0) return cmd_error("knn: --metric '%s' is not l2 or linf", metric);
    gn_set_threads((int)threads);
    io_catalog cr, cq;
    memset(&cq, 0, sizeof cq);
    size_t nr, nq;
    int dr, dq, rc = 1;
    uint32_t *rr = NULL, *rq = NULL, *idx = NULL;
    double *pr = load(ref, cols, &cr, &nr, &dr, &rr), *pq = NULL, *dist = NULL;
    if (!pr) {
        cmd_error("knn: %s", gn_errmsg());
        goto out;
    }
    if (query && !(pq = load(query, cols, &cq, &nq, &dq, &rq))) {
        cmd_error("knn: %s", gn_errmsg());
        goto out;
    }
    if (!query) pq = pr, nq = nr, rq = rr;
    idx = malloc(sizeof(uint32_t) * nq * (size_t)k);
    dist = malloc(sizeof(double) * nq * (size_t)k);
    double t0 = gn_now();
    if (!idx || !dist || st_knn(pr, nr, pq, nq, dr, (int)k, m, !query && !include_self, idx, dist)) {
        cmd_error("knn: %s", gn_errmsg());
        goto out;
    }
    double el = gn_now() - t0;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    const io_catalog *qc = query ? &cq : &cr;
    fprintf(f, "query_id,rank,ref_id,distance\n");
    for (size_t q = 0; q < nq; q++)
        for (long a = 0; a < k; a++) {
            const char *qid = qc->id_col >= 0 ? io_catalog_id(qc, rq[q]) : NULL;
            const char *rid = cr.id_col >= 0 ? io_catalog_id(&cr, rr[idx[q * (size_t)k + (size_t)a]]) : NULL;
            if (qid)
                fprintf(f, "%s,", qid);
            else
                fprintf(f, "%u,", rq[q]);
            fprintf(f, "%ld,", a + 1);
            if (rid)
                fprintf(f, "%s,", rid);
            else
                fprintf(f, "%u,", rr[idx[q * (size_t)k + (size_t)a]]);
            fprintf(f, "%.9g\n", dist[q * (size_t)k + (size_t)a]);
        }
    fclose(f);
    if (io_write_atomic(out, buf, len))
        cmd_error("knn: %s", gn_errmsg());
    else {
        printf("wrote %s: %ld neighbours of %zu queries among %zu reference points (%d-D, %s) in %.2f s\n",
               out, k, nq, nr, dr, metric, el);
        rc = 0;
    }
    free(buf);
out:
    if (pq != pr) free(pq);
    if (rq != rr) free(rq);
    free(pr), free(rr), free(idx), free(dist);
    io_catalog_free(&cr);
    if (query) io_catalog_free(&cq);
    return rc;
}

CMD_DEF(cmd_knn, "knn", "exact k nearest neighbours between two tables (KD-tree or GEMM, L2 or max-norm)",
        knn_usage, knn_flags, sizeof(knn_cli), knn_defaults, knn_run, -1, NULL);
