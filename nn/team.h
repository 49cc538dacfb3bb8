// A training step on a team of threads: the batch's rows cut among W worker contexts (nn_ctx_workers),
// each running the forward and backward pass of its rows alone on one thread, instead of every op split
// among the threads with a barrier around it. The workers share the weights; batch-norm statistics are
// summed over them at each layer (synchronised batch norm, in worker order), so the step computes the
// batch's statistics as one context would; each worker's parameter gradient goes to a slab of its own
// (worker 0's: the store's), and the slabs are summed in worker order, each weighted by its share of the
// rows. The same bits for the same W, whatever the machine's load; one context's up to rounding.
// Only for losses that are means over rows (a regression, a classification): a loss that couples rows
// (contrastive pairs) would see each worker's rows alone. Dropout and noise must be drawn by row
// (nn_ctx.draws.key set), as they are when the trainer slices a batch.
#ifndef NN_TEAM_H
#define NN_TEAM_H

#include <stdatomic.h>

#include "store.h"

#define NN_TEAM_MAX 64

typedef struct nn_team {
    int n;
    atomic_int failed; // a worker failed this step: the others leave the sums at once
    atomic_uint count, gen;
    double *slot[NN_TEAM_MAX]; // each worker's vector in a sum
    char msg[1024];            // the first failing worker's message
} nn_team;

// Worker k's part of the step on its context w (reset, its rows' forward pass, loss and nn_backward):
// GN_OK or an error (message in gn_errmsg()).
typedef int (*nn_team_fn)(nn_ctx *w, int k, void *arg);

// Runs fn on W worker contexts of c (made once, kept: nn_ctx_workers; c's settings, mode and draws), each on
// its own thread with gn_threads() / W threads of its own (nested; 1 when W takes them all); share[k] is
// worker k's share of the batch's rows (they sum to 1), the weight of its gradient and of its batch-norm
// sums. st->grad is zeroed, then set to the weighted sum of the workers' gradients; batch-norm running
// statistics move once, by the batch's statistics. With c->sync_bn the statistics are also summed over the
// MPI ranks (c->sync_w: this rank's share). W = 1: fn on c itself.
int nn_team_step(nn_ctx *c, nn_store *st, int W, const double *share, nn_team_fn fn, void *arg);

// In an op of a worker (c->team): v[0..n) summed over the workers in worker order, on every worker, then
// over the MPI ranks when c->sync_bn; outside a team, the MPI sum alone (c->sync_bn) or nothing.
int nn_team_sum(nn_ctx *c, double *v, size_t n);

#endif
