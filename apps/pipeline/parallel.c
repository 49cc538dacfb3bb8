// Data-parallel training steps: each batch in slices, on one process ([train] slices) or on MPI ranks
// (`mpirun -np P galnn train`: rank r computes slices r*K .. r*K + K - 1 of the P*K). A slice's gradient
// is computed alone (its own batch-norm statistics, as PyTorch's DistributedDataParallel), weighted by its
// share of the batch's rows, and the slices' gradients are summed in slice order (across ranks by
// gn_mpi_sum_ordered_f, never in the order an MPI library picks). Batch-norm running statistics move by
// the mean of the slices' moves. Dropout and noise are drawn by row (nn_ctx_draw), from (seed, step, the
// row's place in the batch): they do not depend on how the batch is cut. So P ranks of K slices give, bit
// for bit, the run of one process with P*K slices (for K = 1 and the same thread count per process).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/gn_common.h"
#include "../../common/gn_mpi.h"
#include "../../nn/team.h"
#include "trainer.h"

int run_dp_open(run_trainer *T) {
    run *r = &T->r;
    int P = gn_mpi_size(), K = (int)r->train.slices;
    T->dp.n = P * K, T->dp.first = gn_mpi_rank() * K, T->dp.count = K;
    T->dp.check_every = r->train.check_every;
    int per_step = T->pairs ? r->batch / 2 : r->batch;
    size_t n_train = r->n_rows[IO_SPLIT_TRAIN];
    if ((size_t)per_step > n_train) per_step = (int)n_train; // the whole training split is one batch
    if (r->train.sync_bn && K > 1)
        return gn_err(GN_EINVAL, "[train] sync_bn = 1 needs slices = 1 (the statistics are shared by the MPI "
                                 "ranks' slices computed at once)");
    if (T->dp.n > per_step)
        return gn_err(GN_EINVAL,
                      "a batch of %d %s cannot be cut into %d slices ([train] slices = %d x %d MPI "
                      "rank(s)): fewer slices or a larger [train] batch",
                      per_step, T->pairs ? "pairs" : "galaxies", T->dp.n, K, P);
    size_t B = (size_t)r->batch, nb = r->st.n_buffer_floats;
    T->dp.ids = gn_malloc(sizeof(uint32_t) * B);
    T->dp.aug = gn_malloc(sizeof(io_aug) * B);
    T->dp.aug_m = gn_malloc(sizeof(io_aug) * B);
    T->dp.grow = gn_malloc(sizeof(int32_t) * B);
    if (!T->dp.ids || !T->dp.aug || !T->dp.aug_m || !T->dp.grow) return GN_ENOMEM;
    if (T->dp.n > 1) {
        T->dp.acc = gn_malloc(sizeof(float) * (r->st.n_param_floats + nb + 1));
        T->dp.pre = gn_malloc(sizeof(float) * (nb + 1));
        if (!T->dp.acc || !T->dp.pre) return GN_ENOMEM;
    }
    // a step's rows cut among the threads where the loss is a mean over rows ([train] split_rows)
    T->dp.workers =
        r->train.split_rows && md_kind_of(&r->net)->rows_apart && !T->pairs && !T->morph ? gn_threads() : 1;
    if (P == 1) return GN_OK;
    // rank 0's weights for everyone (a fresh start: the same draws; a resume: the same file), then checked
    int rc = gn_mpi_bcast(r->st.data, sizeof(float) * r->st.n_param_floats);
    if (!rc && nb) rc = gn_mpi_bcast(r->st.bufdata, sizeof(float) * nb);
    if (!rc && T->ema) rc = gn_mpi_bcast(T->ema, sizeof(float) * r->st.n_param_floats);
    return rc ? rc : run_dp_check(T);
}

void run_dp_free(run_trainer *T) {
    free(T->dp.ids), free(T->dp.aug), free(T->dp.aug_m), free(T->dp.grow), free(T->dp.acc), free(T->dp.pre);
}

static uint64_t hash_floats(uint64_t h, const float *x, size_t n) {
    const uint32_t *w = (const uint32_t *)x;
    for (size_t i = 0; x && i < n; i++) h = (h ^ w[i]) * 0x100000001b3ull;
    return h;
}

// Everything the ranks must hold alike: weights, batch-norm statistics, optimizer moments, averaged weights.
static uint64_t state_hash(const run_trainer *T) {
    const nn_store *s = &T->r.st;
    size_t n = s->n_param_floats;
    uint64_t h = hash_floats(0xcbf29ce484222325ull, s->data, n);
    h = hash_floats(h, s->bufdata, s->n_buffer_floats);
    h = hash_floats(hash_floats(h, T->opt.m, n), T->opt.v, n);
    h = hash_floats(h, T->opt.vmax, n);
    return hash_floats(h, T->ema, T->ema ? n : 0);
}

int run_dp_check(run_trainer *T) {
    if (gn_mpi_size() < 2) return GN_OK;
    uint64_t h = state_hash(T), h0 = h;
    if (gn_mpi_bcast(&h0, sizeof h0)) return GN_EIO;
    double differ = h != h0;
    if (gn_mpi_sum_ordered(&differ, 1)) return GN_EIO;
    if (differ > 0)
        return gn_err(GN_EINVAL,
                      "at step %ld the model on %g of %d MPI ranks differs from rank 0's (checksums of the "
                      "weights, statistics and moments): the ranks no longer train one model; stopped",
                      T->opt.step, differ, gn_mpi_size());
    return GN_OK;
}

// Slice s of the batch into T->dp: set-1 rows [lo, hi) and, for pairs, their partners (rows b1 + lo ..);
// the rows' places in the batch for the draws. Returns the slice's rows.
static int take_slice(run_trainer *T, int b, int s, int *m1) {
    int b1 = T->pairs ? b / 2 : b, N = T->dp.n;
    int lo = (int)((int64_t)b1 * s / N), hi = (int)((int64_t)b1 * (s + 1) / N), m = hi - lo, n = 0;
    for (int half = 0; half <= T->pairs; half++)
        for (int i = lo; i < hi; i++, n++) {
            int g = half * b1 + i;
            T->dp.ids[n] = T->ids[g], T->dp.aug[n] = T->aug[g], T->dp.grow[n] = g;
            if (T->morph) T->dp.aug_m[n] = T->aug_m[g];
        }
    *m1 = m;
    return n;
}

// A slice's n rows cut among W workers (nn_team_step): worker k's are [n k / W, n (k + 1) / W)
typedef struct dp_part {
    run_trainer *T;
    int n, W;
    float loss[NN_TEAM_MAX];
} dp_part;

// Worker k's rows (w: the slice's own context when it is not cut): inputs, loss, gradient.
static int part_grad(nn_ctx *w, int k, void *arg) {
    dp_part *p = arg;
    run_trainer *T = p->T;
    run *r = &T->r;
    nn_tensor *in[MD_MAX_BRANCH], *in_m[MD_MAX_BRANCH];
    int lo = (int)((int64_t)p->n * k / p->W), n = (int)((int64_t)p->n * (k + 1) / p->W) - lo, rc;
    float *y = T->y + (size_t)lo * (size_t)(r->n_targets ? r->n_targets : 1),
          *scr = T->scratch + k * T->dp.scratch_per;
    w->draws.rows = T->dp.grow + lo, w->draws.n_rows = n;
    if ((rc = run_batch(r, w, T->dp.ids + lo, T->dp.aug + lo, n, in, y, scr))) return rc;
    if (T->morph && (rc = run_batch(r, w, T->dp.ids + lo, T->dp.aug_m + lo, n, in_m, NULL, scr))) return rc;
    nn_tensor *L = md_net_train_loss(w, &r->net, in, T->morph ? in_m : NULL, y, n);
    if (!L || (rc = nn_backward(w, L))) return rc ? rc : GN_EINVAL;
    p->loss[k] = L->data[0];
    return GN_OK;
}

// The gradient of n rows alone (into the gradient slab; with [train] sync_bn the batch-norm statistics of
// the ranks' slices together, w this slice's weight) and their loss; the rows cut among the threads where
// T->dp.workers says so, each worker's part at least 8 rows (a Winograd image vector's; a worker's share of
// the threads runs its ops when there are more threads than parts).
static int slice_grad(run_trainer *T, int n, int span, double w, float *loss) {
    run *r = &T->r;
    int W = T->dp.workers < n / 8 ? T->dp.workers : n / 8, rc;
    W = W < 1 ? 1 : W > NN_TEAM_MAX ? NN_TEAM_MAX : W;
    gn_rng k; // this step's key of the draws by row
    gn_rng_seed(&k, (uint64_t)r->train.seed, GN_STREAM_DROPOUT + ((uint64_t)T->opt.step << 4));
    uint64_t key = gn_rng_u64(&k) | 1;
    T->ctx.draws = (nn_draws){.key = key, .rows = T->dp.grow, .n_rows = n, .span = span};
    T->ctx.sync_bn = r->train.sync_bn && gn_mpi_size() > 1, T->ctx.sync_w = w;
    dp_part p = {.T = T, .n = n, .W = W};
    double share[NN_TEAM_MAX];
    for (int j = 0; j < W; j++)
        share[j] = ((double)((int64_t)n * (j + 1) / W) - (double)((int64_t)n * j / W)) / n;
    rc = nn_team_step(&T->ctx, &r->st, W, share, part_grad, &p);
    T->ctx.draws.key = 0, T->ctx.sync_bn = 0;
    if (rc) return rc;
    double L = 0;
    for (int j = 0; j < W; j++) L += share[j] * p.loss[j];
    *loss = (float)L;
    return GN_OK;
}

// Slice k of this rank's into the sums: its weighted gradient, its move of the batch-norm statistics.
static void add_slice(run_trainer *T, int k, float w) {
    nn_store *s = &T->r.st;
    size_t n = s->n_param_floats, nb = s->n_buffer_floats;
    float *g = T->dp.acc, *d = g + n;
    for (size_t i = 0; i < n; i++) g[i] = k ? g[i] + w * s->grad[i] : w * s->grad[i];
    for (size_t i = 0; i < nb; i++) {
        float mv = s->bufdata[i] - T->dp.pre[i];
        d[i] = k ? d[i] + mv : mv;
        s->bufdata[i] = T->dp.pre[i];
    }
}

// The gradient of the batch's slices summed over this rank's and then the ranks', into the store.
static int combine(run_trainer *T, double *loss) {
    nn_store *s = &T->r.st;
    size_t n = s->n_param_floats, nb = s->n_buffer_floats;
    int rc = gn_mpi_sum_ordered(loss, 1);
    if (!rc) rc = gn_mpi_sum_ordered_f(T->dp.acc, n + nb);
    if (rc) return rc;
    memcpy(s->grad, T->dp.acc, sizeof(float) * n);
    for (size_t i = 0; i < nb; i++) s->bufdata[i] = T->dp.pre[i] + T->dp.acc[n + i] / (float)T->dp.n;
    return GN_OK;
}

int run_dp_step(run_trainer *T, int b, double *loss) {
    nn_store *s = &T->r.st;
    int N = T->dp.n, b1 = T->pairs ? b / 2 : b, rc;
    *loss = 0;
    if (N > 1) memcpy(T->dp.pre, s->bufdata, sizeof(float) * s->n_buffer_floats);
    for (int k = 0; k < T->dp.count; k++) {
        int m, n = take_slice(T, b, T->dp.first + k, &m);
        float L = 0;
        if (n == 0)
            nn_store_zero_grad(s); // a batch of fewer rows than slices: this slice is empty
        else if ((rc = slice_grad(T, n, b, (double)m / b1, &L)))
            return rc;
        if (N == 1) return *loss = L, GN_OK;
        *loss += (double)m / b1 * L;
        add_slice(T, k, (float)m / (float)b1);
    }
    return combine(T, loss);
}
