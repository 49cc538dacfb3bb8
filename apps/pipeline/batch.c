// Batches of catalog rows: the network inputs of every branch (run_batch),
// and the one loop that walks a list of rows in evaluation mode (run_batches),
// which every program that evaluates, predicts, embeds or explains uses.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/gn_common.h"
#include "../../common/gn_mpi.h"
#include "run.h"

io_aug *run_no_aug(size_t n) {
    io_aug *a = gn_malloc(sizeof(io_aug) * (n ? n : 1));
    for (size_t i = 0; a && i < n; i++) a[i] = (io_aug){0, 0.5f, 0.5f};
    return a;
}

int run_has_images(const run *r) {
    for (int b = 0; b < r->net.n_branch; b++)
        if (r->net.spec[b].input == MD_IN_IMAGE) return 1;
    return 0;
}

int run_batches_begin(run_batches *it, const run *r, nn_ctx *c, const uint32_t *rows, size_t n, int B,
                      int want_y) {
    memset(it, 0, sizeof *it);
    it->r = r, it->c = c, it->rows = rows, it->n = n, it->B = B > 0 ? B : 64;
    int maxS = 1;
    for (int d = 0; d < r->n_ds; d++) maxS = r->ds[d].h > maxS ? r->ds[d].h : maxS;
    it->scratch = gn_malloc(sizeof(float) * (size_t)maxS * maxS);
    it->none = run_no_aug((size_t)it->B);
    it->y =
        want_y ? gn_malloc(sizeof(float) * (size_t)it->B * (size_t)(r->n_targets ? r->n_targets : 1)) : NULL;
    it->training = c->training, it->grad_enabled = c->grad_enabled;
    c->training = 0, c->grad_enabled = 0;
    if (!it->scratch || !it->none || (want_y && !it->y)) return GN_ENOMEM;
    return GN_OK;
}

int run_batches_next(run_batches *it) {
    it->o += (size_t)it->b;
    if (it->o >= it->n) return 0;
    it->b = (int)(it->n - it->o < (size_t)it->B ? it->n - it->o : (size_t)it->B);
    nn_ctx_reset(it->c);
    it->rc = run_batch(it->r, it->c, it->rows + it->o, it->none, it->b, it->in, it->y, it->scratch);
    return it->rc == GN_OK;
}

int run_batches_end(run_batches *it, int rc) {
    if (it->c) it->c->training = it->training, it->c->grad_enabled = it->grad_enabled;
    free(it->scratch), free(it->none), free(it->y);
    it->scratch = NULL, it->none = NULL, it->y = NULL;
    return rc ? rc : it->rc;
}

int run_batch(const run *r, nn_ctx *c, const uint32_t *ids, const io_aug *aug, int n, nn_tensor **in,
              float *y, float *scratch) {
    const md_net *m = &r->net;
    for (int b = 0; b < m->n_branch; b++) {
        const run_branch *rb = &r->br[b];
        if (m->spec[b].input == MD_IN_SPECTRUM) {
            const io_dataset *D = &r->ds[rb->ds];
            in[b] = nn_tensor_new(c, NN_SHAPE(n, D->w));
            if (!in[b]) return GN_ENOMEM;
            for (int i = 0; i < n; i++)
                memcpy(in[b]->data + (size_t)i * D->w, io_dataset_image(D, (size_t)r->entry[rb->ds][ids[i]]),
                       sizeof(float) * D->w);
        } else if (m->spec[b].input == MD_IN_IMAGE) {
            const io_dataset *D = &r->ds[rb->ds];
            int C = m->spec[b].in_ch, S = rb->ro.crop ? rb->ro.crop : D->h;
            in[b] = nn_tensor_new(c, NN_SHAPE(n, C, S, S));
            if (!in[b]) return GN_ENOMEM;
            for (int i = 0; i < n; i++)
                io_render(D, (uint32_t)r->entry[rb->ds][ids[i]], &rb->ro, &aug[i],
                          in[b]->data + (size_t)i * C * S * S, scratch);
        } else {
            in[b] = nn_tensor_new(c, NN_SHAPE(n, rb->n_cols));
            if (!in[b]) return GN_ENOMEM;
            for (int i = 0; i < n; i++)
                for (int k = 0; k < rb->n_cols; k++)
                    in[b]->data[i * rb->n_cols + k] =
                        (float)((rb->col[k][ids[i]] - rb->cmean[k]) / rb->cstd[k]);
        }
    }
    if (y)
        for (int i = 0; i < n; i++)
            for (int t = 0; t < r->n_targets; t++) {
                double v = r->target[t][ids[i]];
                y[i * r->n_targets + t] =
                    (float)(m->head == MD_HEAD_BINNED ? v : (v - r->tmean[t]) / r->tstd[t]);
            }
    return GN_OK;
}

// Test-time augmentation: one row's head outputs o under view k of 8 added to acc (2 n_out), and
// the combined outputs written to o after the last view — regression: the mean; Gaussian: the
// mixture's mean and variance; binned: the mean of the probabilities (as logits log p).
static void tta_row(const md_net *m, float *o, int k, double *acc) {
    int T = m->n_targets, n = m->n_out;
    if (k == 0) memset(acc, 0, sizeof(double) * 2 * (size_t)n);
    if (m->head == MD_HEAD_BINNED) {
        double mx = o[0], s = 0;
        for (int j = 1; j < n; j++) mx = o[j] > mx ? o[j] : mx;
        for (int j = 0; j < n; j++) s += exp(o[j] - mx);
        for (int j = 0; j < n; j++) acc[j] += exp(o[j] - mx) / s;
    } else
        for (int t = 0; t < T; t++) {
            double mu = o[t], var = m->head == MD_HEAD_GAUSSIAN ? exp(o[T + t]) : 0;
            acc[t] += mu, acc[n + t] += var + mu * mu;
        }
    if (k < 7) return;
    if (m->head == MD_HEAD_BINNED)
        for (int j = 0; j < n; j++) o[j] = (float)log(fmax(acc[j] / 8, 1e-300));
    else
        for (int t = 0; t < T; t++) {
            double mu = acc[t] / 8, var = acc[n + t] / 8 - mu * mu;
            o[t] = (float)mu;
            if (m->head == MD_HEAD_GAUSSIAN) o[T + t] = (float)log(fmax(var, 1e-30));
        }
}

// The head outputs of the current batch averaged over the 8 dihedral views of its images (out: b rows).
static int tta_batch(run_batches *it, float *out) {
    const md_net *m = &it->r->net;
    int n = m->n_out;
    double *acc = gn_malloc(sizeof(double) * 2 * (size_t)n * (size_t)it->b);
    if (!acc) return GN_ENOMEM;
    int rc = GN_OK;
    for (int k = 0; k < 8 && !rc; k++) {
        for (int i = 0; i < it->b; i++) it->none[i].k = k;
        nn_ctx_reset(it->c);
        rc = run_batch(it->r, it->c, it->rows + it->o, it->none, it->b, it->in, NULL, it->scratch);
        nn_tensor *y = rc ? NULL : md_net_fwd(it->c, m, it->in);
        if (!rc && !y) rc = GN_EINVAL;
        for (int i = 0; !rc && i < it->b; i++) {
            memcpy(out + (size_t)i * n, y->data + (size_t)i * n, sizeof(float) * n);
            tta_row(m, out + (size_t)i * n, k, acc + (size_t)i * 2 * n);
        }
    }
    for (int i = 0; i < it->b; i++) it->none[i].k = 0;
    free(acc);
    return rc;
}

// Evaluation-mode forward passes in batches: head outputs (embed < 0) or the
// latent model's S (embed 0) / full latent (embed 1), width `dim` per row.
static int infer(const run *r, nn_ctx *c, const uint32_t *rows, size_t n, int embed, int dim, float *out) {
    run_batches it;
    int rc = run_batches_begin(&it, r, c, rows, n, r->batch, 0);
    while (!rc && run_batches_next(&it)) {
        if (embed < 0 && r->tta) {
            rc = tta_batch(&it, out + it.o * (size_t)dim);
            continue;
        }
        nn_tensor *y = embed < 0 ? md_net_fwd(c, &r->net, it.in) : md_net_embed(c, &r->net, it.in, embed);
        if (!y)
            rc = GN_EINVAL;
        else
            memcpy(out + it.o * (size_t)dim, y->data, sizeof(float) * y->n);
    }
    return run_batches_end(&it, rc);
}

int run_infer(const run *r, nn_ctx *c, const uint32_t *rows, size_t n, float *out) {
    if (r->net.kind == MD_KIND_GBDT) return run_gbdt_infer(r, rows, n, out);
    return infer(r, c, rows, n, -1, r->net.n_out, out);
}

int run_embed(const run *r, nn_ctx *c, const uint32_t *rows, size_t n, int full, float *out) {
    int D = md_net_embed_dim(&r->net, full);
    if (!D) return gn_err(GN_EINVAL, "embed: the checkpoint is not a latent (S-space) model or a VAE");
    return infer(r, c, rows, n, full, D, out);
}

// The mean of the kind's validation loss over rows and (pred given, a kind with point metrics) the first
// target's predictions in its own units. Noise (a VAE's ε) comes from a stream seeded afresh every time:
// the same draws each call, and none taken from the training streams.
void run_rank_block(size_t n, int batch, size_t *lo, size_t *hi) {
    size_t R = (size_t)gn_mpi_rank(), P = (size_t)gn_mpi_size(), B = (size_t)(batch > 0 ? batch : 1);
    size_t nb = (n + B - 1) / B;
    *lo = nb * R / P * B, *hi = nb * (R + 1) / P * B;
    *lo = *lo < n ? *lo : n, *hi = *hi < n ? *hi : n;
}

// This rank's block of whole batches: each batch's loss sum in lb[batch], the first target's predictions
// in pred[row] (when asked); noise (a VAE's) by row streams, so the draws do not depend on the block.
static int split_loss_block(const run *r, nn_ctx *c, const uint32_t *rows, size_t n, double *lb,
                            double *pred) {
    const md_kind *k = md_kind_of(&r->net);
    int Tn = r->n_targets;
    float *p = pred ? gn_malloc(sizeof(float) * (size_t)r->batch * (size_t)(Tn ? Tn : 1)) : NULL;
    if (pred && !p) return GN_ENOMEM;
    gn_rng eps;
    gn_rng_seed(&eps, 12345, GN_STREAM_DROPOUT);
    size_t lo, hi;
    run_rank_block(n, r->batch, &lo, &hi);
    run_batches it;
    int rc = run_batches_begin(&it, r, c, rows + lo, hi - lo, r->batch, 1);
    while (!rc && run_batches_next(&it)) {
        c->draws = (nn_draws){.key = 0x5eed12345, .row0 = (int64_t)(lo + it.o)};
        nn_tensor *out = k->val_metrics ? md_net_fwd(c, &r->net, it.in) : NULL;
        nn_tensor *L = k->val_loss(c, &r->net, it.in, out, it.y, it.b, &eps);
        if (!L) {
            rc = GN_EINVAL;
            break;
        }
        lb[(lo + it.o) / (size_t)r->batch] = L->data[0] * it.b;
        if (!pred || !out) continue;
        md_net_predict(&r->net, out, p, NULL);
        for (int i = 0; i < it.b; i++)
            pred[lo + it.o + (size_t)i] =
                r->net.head == MD_HEAD_BINNED ? p[i * Tn] : p[i * Tn] * r->tstd[0] + r->tmean[0];
    }
    c->draws.key = 0;
    free(p);
    return run_batches_end(&it, rc);
}

int run_split_loss(const run *r, nn_ctx *c, const uint32_t *rows, size_t n, double *loss, double *pred) {
    size_t nb = (n + (size_t)r->batch - 1) / (size_t)r->batch, np = pred ? n : 0;
    double *v = calloc(nb + np + 1, sizeof(double)); // batches' loss sums, predictions
    if (!v) return gn_err(GN_ENOMEM, "out of memory (%zu rows to evaluate)", n);
    int rc = split_loss_block(r, c, rows, n, v, pred ? v + nb : NULL);
    if (gn_mpi_size() > 1) { // every rank's blocks: the others' entries are 0, x + 0 = x
        double bad = rc != GN_OK;
        if (gn_mpi_sum_ordered(&bad, 1) || (!rc && bad > 0)) rc = rc ? rc : gn_err(GN_EIO, "a rank failed");
        if (!rc) rc = gn_mpi_sum_ordered(v, nb + np);
    }
    double tot = 0;
    for (size_t j = 0; j < nb; j++) tot += v[j]; // in batch order, whatever the ranks
    if (np) memcpy(pred, v + nb, sizeof(double) * np);
    *loss = n ? tot / (double)n : NAN;
    free(v);
    return rc;
}

int run_write_dump(const run *r, nn_ctx *c, const uint32_t *rows, size_t n, const float *out, int width,
                   long n_dump, const char *path) {
    int k = (int)(n_dump < (long)n ? n_dump : (long)n), maxS = 1;
    for (int d = 0; d < r->n_ds; d++) maxS = r->ds[d].h > maxS ? r->ds[d].h : maxS;
    float *scr = malloc(sizeof(float) * (size_t)maxS * maxS);
    io_aug *none = run_no_aug((size_t)k);
    nn_tensor *in[MD_MAX_BRANCH];
    nn_ctx_reset(c);
    io_npz_writer *w = io_npz_create(path, 0);
    int bad = !scr || !none || !w || run_batch(r, c, rows, none, k, in, NULL, scr);
    for (int b = 0; !bad && b < r->net.n_branch; b++) {
        char nm[80];
        snprintf(nm, sizeof nm, "input.%s", r->net.spec[b].name);
        bad = io_npz_add_f32(w, nm, in[b]->ndim, in[b]->shape, in[b]->data);
    }
    if (!bad) bad = io_npz_add_f32(w, "output", 2, (int[]){k, width}, out);
    if (w) bad ? io_npz_abort(w) : (void)(bad = io_npz_close(w));
    free(scr), free(none);
    if (bad) {
        char why[512];
        snprintf(why, sizeof why, "%s", gn_errmsg());
        return gn_err(GN_EIO, "--dump %s: %s", path, why);
    }
    printf("wrote %s: inputs and outputs of %d galaxies\n", path, k);
    return GN_OK;
}

int run_select_rows(const run *r, int only, uint32_t **rows, size_t *n) {
    *n = 0;
    *rows = gn_malloc(sizeof(uint32_t) * (r->cat.n_rows ? r->cat.n_rows : 1));
    uint8_t *use = gn_calloc(r->cat.n_rows ? r->cat.n_rows : 1, 1);
    if (!*rows || !use) return free(use), GN_ENOMEM;
    for (int s = 0; s < 3; s++)
        if (only < 0 || only == s)
            for (size_t k = 0; k < r->n_rows[s]; k++) use[r->rows[s][k]] = 1;
    for (size_t row = 0; row < r->cat.n_rows; row++) // catalog order
        if (use[row]) (*rows)[(*n)++] = (uint32_t)row;
    free(use);
    return GN_OK;
}

void run_estimate(const run *r, const float *o, run_est *est) {
    const md_net *m = &r->net;
    int T = m->n_targets;
    for (int t = 0; t < T; t++) {
        run_est *e = &est[t];
        if (m->head == MD_HEAD_BINNED) {
            double mx = o[0], s = 0, m1 = 0, m2 = 0, w = (m->hi - m->lo) / m->bins, best = -1;
            for (int k = 1; k < m->bins; k++) mx = o[k] > mx ? o[k] : mx;
            for (int k = 0; k < m->bins; k++) s += exp(o[k] - mx);
            double cdf = 0, dmed = 2;
            e->p16 = e->p84 = e->median = NAN;
            for (int k = 0; k < m->bins; k++) {
                double p = exp(o[k] - mx) / s, yk = m->lo + (k + 0.5) * w;
                m1 += p * yk, m2 += p * yk * yk;
                if (p > best) best = p, e->mode = yk;
                cdf += p;
                if (fabs(cdf - 0.5) < dmed) dmed = fabs(cdf - 0.5), e->median = yk; // spec §1.8
                if (isnan(e->p16) && cdf >= 0.16) e->p16 = yk;
                if (isnan(e->p84) && cdf >= 0.84) e->p84 = yk;
            }
            e->mean = m1;
            e->sd = sqrt(fmax(m2 - m1 * m1, 0));
        } else {
            e->mean = o[t] * r->tstd[t] + r->tmean[t];
            e->sd = m->head == MD_HEAD_GAUSSIAN ? exp(0.5 * o[T + t]) * r->tstd[t] : 0;
            e->median = e->mode = e->mean;
            e->p16 = e->mean - e->sd, e->p84 = e->mean + e->sd;
            if (m->head ==
                MD_HEAD_QUANTILES) { // quantile ensembles: the interval as fitted (sd: its half-width)
                e->p16 = o[T + t] * r->tstd[t] + r->tmean[t],
                e->p84 = o[2 * T + t] * r->tstd[t] + r->tmean[t];
                e->sd = (e->p84 - e->p16) / 2;
            }
        }
    }
}

static int beyond(double v, const double *range, double sd, double nsig) {
    return !isnan(v) && (v < range[0] - nsig * sd || v > range[1] + nsig * sd);
}

int run_ood(const run *r, uint32_t row, const run_est *est, double nsig) {
    if (!r->has_range) return 0;
    int f = 0;
    for (int b = 0; b < r->net.n_branch; b++) {
        const run_branch *rb = &r->br[b];
        if (r->net.spec[b].input != MD_IN_COLUMNS) continue;
        for (int k = 0; k < rb->n_cols; k++)
            if (beyond(rb->col[k][row], rb->crange[k], rb->cstd[k], nsig)) f |= RUN_OOD_INPUT;
    }
    for (int t = 0; est && t < r->n_targets; t++)
        if (beyond(est[t].mean, r->trange[t], r->tstd[t], nsig)) f |= RUN_OOD_PRED;
    return f;
}
