#include "team.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "../common/gn_mpi.h"

// Every worker here before any goes on; GN_OK, or an error once a worker has failed (it never arrives).
static int team_wait(nn_team *t) {
    unsigned g = atomic_load(&t->gen);
    if (atomic_fetch_add(&t->count, 1) == (unsigned)t->n - 1) {
        atomic_store(&t->count, 0);
        atomic_fetch_add(&t->gen, 1);
        return GN_OK;
    }
    for (long i = 0; atomic_load(&t->gen) == g; i++) {
        if (atomic_load(&t->failed)) return gn_err(GN_EINVAL, "another worker of the training step failed");
        if (i > 4096) sched_yield(); // a core shared with other jobs: let the late worker run
    }
    return GN_OK;
}

int nn_team_sum(nn_ctx *c, double *v, size_t n) {
    nn_team *t = c->team;
    if (!t) return c->sync_bn ? gn_mpi_sum_ordered(v, n) : GN_OK;
    nn_arena_mark mk = nn_arena_get_mark(&c->arena);
    double *s = nn_arena_alloc(&c->arena, sizeof(double) * (n ? n : 1));
    t->slot[c->team_rank] = v;
    int rc = team_wait(t);
    for (size_t j = 0; !rc && s && j < n; j++) {
        double a = t->slot[0][j];
        for (int k = 1; k < t->n; k++) a += t->slot[k][j];
        s[j] = a;
    }
    if (!rc) rc = team_wait(t); // every worker has read every vector
    if (!rc && s) memcpy(v, s, sizeof(double) * n);
    nn_arena_release(&c->arena, mk);
    if (!rc && !s) rc = GN_ENOMEM;
    if (rc || !c->sync_bn) return rc;
    // the ranks: worker 0's sum over them for every worker
    if (c->team_rank == 0) rc = gn_mpi_sum_ordered(v, n);
    if (!rc) rc = team_wait(t);
    if (!rc && c->team_rank) memcpy(v, t->slot[0], sizeof(double) * n);
    return rc ? rc : team_wait(t);
}

// The team of W workers of c, each with its own gradient slab (worker 0: the store's), settings as c's.
static int team_ready(nn_ctx *c, nn_store *st, int W) {
    if (W > NN_TEAM_MAX)
        return gn_err(GN_EINVAL, "a training step on %d threads: at most %d", W, NN_TEAM_MAX);
    if (!c->team_own && !(c->team_own = gn_calloc(1, sizeof(nn_team)))) return GN_ENOMEM;
    if (nn_ctx_workers(c, W)) return GN_ENOMEM;
    nn_team *t = c->team_own;
    t->n = W, t->msg[0] = 0;
    atomic_store(&t->failed, 0), atomic_store(&t->count, 0);
    for (int k = 0; k < W; k++) {
        nn_ctx *w = &c->workers[k];
        if (k && w->grad_n != st->n_param_floats) {
            free(w->grad_slab);
            if (!(w->grad_slab = gn_malloc(sizeof(float) * st->n_param_floats))) return GN_ENOMEM;
        }
        // an arena of several blocks after a first step as one block over its peak (pages touched once)
        if (nn_arena_fit(&w->arena)) return GN_ENOMEM;
        w->grad_base = st->grad, w->grad_n = st->n_param_floats;
        w->training = c->training, w->grad_enabled = c->grad_enabled, w->frozen = 0;
        w->team = t, w->team_rank = k, w->draws = c->draws, w->sync_bn = c->sync_bn;
    }
    return GN_OK;
}

// Worker k of a team on its own thread: its gradients zeroed (in its cache), its part, its failure told.
static int team_worker(nn_ctx *c, nn_store *st, int k, double share, int threads, nn_team_fn fn, void *arg) {
    nn_ctx *w = &c->workers[k];
    nn_team *t = w->team;
    gn_threads_local(threads);
    memset(k ? w->grad_slab : st->grad, 0, sizeof(float) * st->n_param_floats);
    w->sync_w = share * (c->sync_bn ? c->sync_w : 1);
    nn_ctx_reset(w);
    int rc = fn(w, k, arg);
    if (rc && atomic_exchange(&t->failed, 1) == 0) snprintf(t->msg, sizeof t->msg, "%s", gn_errmsg());
    gn_threads_local(0);
    return rc;
}

int nn_team_step(nn_ctx *c, nn_store *st, int W, const double *share, nn_team_fn fn, void *arg) {
    if (W <= 1) return nn_ctx_reset(c), nn_store_zero_grad(st), fn(c, 0, arg);
    int rc = team_ready(c, st, W), failed = 0, each = gn_threads() / W > 1 ? gn_threads() / W : 1;
    if (rc) return rc;
#ifdef _OPENMP
    if (each > 1 && omp_get_max_active_levels() < 2) omp_set_max_active_levels(2); // a worker's own team
#endif
#pragma omp parallel num_threads(W) reduction(| : failed)
    {
#ifdef _OPENMP
        int k = omp_get_thread_num(), got = omp_get_num_threads();
#else
        int k = 0, got = 1;
#endif
        if (got != W) // no worker runs: each would wait for the missing ones
            failed = 1, snprintf(c->team_own->msg, sizeof c->team_own->msg,
                                 "a training step on %d threads got %d from OpenMP", W, got);
        else
            failed |= team_worker(c, st, k, share[k], each, fn, arg) != GN_OK;
    }
    if (failed || atomic_load(&c->team_own->failed))
        return gn_err(GN_EINVAL, "%s", c->team_own->msg[0] ? c->team_own->msg : "a worker failed");
    // the weighted sum of the slabs in worker order, by blocks of the slab on the threads
    size_t n = st->n_param_floats, blk = 16384;
    long nblk = (long)((n + blk - 1) / blk);
#pragma omp parallel for schedule(static)
    for (long b = 0; b < nblk; b++) {
        size_t lo = (size_t)b * blk, hi = lo + blk < n ? lo + blk : n;
        float w0 = (float)share[0];
        for (size_t i = lo; i < hi; i++) {
            float g = w0 * st->grad[i];
            for (int k = 1; k < W; k++) g += (float)share[k] * c->workers[k].grad_slab[i];
            st->grad[i] = g;
        }
    }
    return GN_OK;
}
