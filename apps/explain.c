// galnn explain: expected-gradients attributions (nn/attrib.h) of a model's
// output to every input value — each rotated latent D_k of a spectral VAE per
// wavelength (spec/methods.md §4.4, Fig. 6), or an image model's prediction
// per pixel and band.
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../common/gn_common.h"
#include "../io/npy.h"
#include "../io/plot.h"
#include "../io/spectra.h"
#include "../nn/attrib.h"
#include "cmd.h"
#include "flags.h"
#include "pipeline/run.h"
#include "explain_gbdt.h"
#include "pipeline/spec_common.h"

static void explain_usage(void) {
    printf(
        "usage: galnn explain --ckpt RUN/best.npz --out DIR [--split test] [--n N | --ids ID,ID,...] "
        "[--target NAME]\n"
        "                     [--background 200] [--stratify COLUMN] [--samples 200] [--seed 1] [--threads "
        "N]\n"
        "                     [--catalog CSV] [--images TEMPLATE] [SECTION.KEY=VALUE ...]\n\n"
        "Expected gradients (Erion et al. 2021): phi_j(x) = E[(x_j - b_j) df/dx_j(b + a (x - b))] over "
        "background\n"
        "galaxies b and a ~ U(0, 1), from --samples draws per galaxy and output. The attributions of one "
        "galaxy add\n"
        "up to f(x) - E_b f(b) (completeness; the sampling error is printed). They approximate DeepSHAP.\n\n"
        "The background: --background training galaxies, stratified in 5 quantile bins of --stratify "
        "(default: the\n"
        "first condition of a CVAE, the first target of other models; logmstar if present otherwise), the "
        "same\n"
        "number from each bin. Explained: the first --n galaxies of --split (default 20 spectra, 4 images) "
        "or --ids.\n\n"
        "Spectral VAE/CVAE: f = each PCA-rotated latent D_k (as galnn spectra-latents: the training latent "
        "means\n"
        "rotated onto their principal axes, +D_k bluer), attributed to every wavelength; the conditions stay "
        "at the\n"
        "explained galaxy's values. Writes attr.npy (galaxies, components, pixels), mean_abs.csv and "
        "attr.png:\n"
        "log10 of the mean |phi| per wavelength for each D_k (the paper's Fig. 6C).\n"
        "Image models (branch CNNs, latent S-space models): f = the point prediction of --target\n"
        "(default: the first) in its own units, attributed to every pixel and band of the first image branch "
        "(the\n"
        "other inputs stay at the galaxy's values). Writes attr.npy (galaxies, bands, height, width), per "
        "galaxy\n"
        "input_ID.png and attr_ID.png (one map per band; red raises the prediction, blue lowers it) and\n"
        "mean_abs_attr.png, and prints each band's share of the total |phi|: where the CNN looks.\n"
        "Gradient-boosted trees (kind = gbdt): gain importance and exact TreeSHAP (Lundberg et al. 2018) of\n"
        "--target for every galaxy of --split (or the first --n, or --ids): importance.csv and\n"
        "importance.png, shap.npy (galaxies, features + 1: the last column is the expected value; each row\n"
        "sums to the prediction),\n"
        "shap_summary.png (beeswarm) and dependence_FEATURE.png of the top three features (exact:\n"
        "--background, --samples and --stratify do not apply).\n");
}

typedef struct xuser {
    const run *r;
    int spectral, comp, branch, target;
    const spec_rot *R;
    const float *row_in[MD_MAX_BRANCH]; // the explained galaxy's inputs of every branch
    size_t row_len[MD_MAX_BRANCH];
} xuser;

// The other branches' inputs: the galaxy's own, repeated m times.
static int fill_others(nn_ctx *c, const xuser *u, nn_tensor *x, int m, nn_tensor **in) {
    const md_net *net = &u->r->net;
    for (int b = 0; b < net->n_branch; b++) {
        if (b == u->branch) {
            in[b] = x;
            continue;
        }
        int sh[NN_MAXDIM], nd = 0;
        if (net->spec[b].input == MD_IN_COLUMNS)
            sh[0] = m, sh[1] = (int)u->row_len[b], nd = 2;
        else {
            const io_dataset *D = &u->r->ds[u->r->br[b].ds];
            int S = u->r->br[b].ro.crop ? u->r->br[b].ro.crop : D->h;
            sh[0] = m, sh[1] = net->spec[b].in_ch, sh[2] = sh[3] = S, nd = 4;
        }
        if (!(in[b] = nn_tensor_new(c, nd, sh))) return GN_ENOMEM;
        for (int i = 0; i < m; i++)
            memcpy(in[b]->data + (size_t)i * u->row_len[b], u->row_in[b], sizeof(float) * u->row_len[b]);
    }
    return GN_OK;
}

static nn_tensor *model_f(nn_ctx *c, nn_tensor *x, void *user) {
    const xuser *u = user;
    const md_net *net = &u->r->net;
    int m = x->shape[0];
    nn_tensor *in[MD_MAX_BRANCH];
    if (fill_others(c, u, x, m, in)) return NULL;
    if (u->spectral) { // D_k = (mu - mean) . V[:, k]
        nn_tensor *mu, *lv;
        md_specvae_encode(c, &net->svae, x, net->lat_a >= 0 ? in[net->lat_a] : NULL, &mu, &lv);
        int d = u->R->d;
        float v[SPEC_MAXLAT];
        double off = 0;
        for (int a = 0; a < d; a++)
            v[a] = (float)u->R->V[a * d + u->comp], off += u->R->mean[a] * u->R->V[a * d + u->comp];
        nn_tensor *V = nn_tensor_from(c, NN_SHAPE(d, 1), v);
        return nn_scale(c, nn_matmul(c, mu, V), 1, (float)-off);
    }
    nn_tensor *out = md_net_fwd(c, net, in);
    if (!out) return NULL;
    const run *r = u->r;
    if (net->head == MD_HEAD_BINNED) { // the posterior mean over the bin centres
        float *cen = nn_arena_alloc(&c->arena, sizeof(float) * (size_t)net->bins);
        if (!cen) return NULL;
        double w = (net->hi - net->lo) / net->bins;
        for (int k = 0; k < net->bins; k++) cen[k] = (float)(net->lo + (k + 0.5) * w);
        return nn_matmul(c, nn_softmax(c, out, 1), nn_tensor_from(c, NN_SHAPE(net->bins, 1), cen));
    }
    return nn_scale(c, nn_slice(c, out, 1, u->target, u->target + 1), (float)r->tstd[u->target],
                    (float)r->tmean[u->target]);
}

// f over n inputs (evaluation, no gradients).
static int eval_f(nn_ctx *c, xuser *u, int ndim, const int *shape, const float *X, int n, double *out) {
    size_t d = 1;
    for (int k = 0; k < ndim; k++) d *= (size_t)shape[k];
    int ge = c->grad_enabled, tr = c->training, rc = GN_OK, sh[NN_MAXDIM];
    c->grad_enabled = 0, c->training = 0;
    memcpy(sh + 1, shape, sizeof(int) * (size_t)ndim);
    for (int o = 0; o < n && !rc; o += 32) {
        int m = n - o < 32 ? n - o : 32;
        sh[0] = m;
        nn_ctx_reset(c);
        nn_tensor *x = nn_tensor_from(c, ndim + 1, sh, X + (size_t)o * d), *y = x ? model_f(c, x, u) : NULL;
        if (!y)
            rc = GN_EINVAL;
        else
            for (int i = 0; i < m; i++) out[o + i] = y->data[i];
    }
    c->grad_enabled = ge, c->training = tr;
    return rc;
}

static int cmp_dbl(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// nb background rows from the training split: equal numbers from 5 quantile bins of col (NULL: uniform).
static int pick_background(const run *r, const double *col, int nb, gn_rng *rng, uint32_t *out, int *n_out) {
    size_t n = r->n_rows[IO_SPLIT_TRAIN];
    const uint32_t *tr = r->rows[IO_SPLIT_TRAIN];
    if (!n) return gn_err(GN_EINVAL, "no training galaxies for the background");
    double *v = malloc(sizeof(double) * n), e[6];
    uint32_t *bin = malloc(sizeof(uint32_t) * n);
    if (!v || !bin) return free(v), free(bin), GN_ENOMEM;
    size_t m = 0;
    for (size_t i = 0; col && i < n; i++)
        if (!isnan(col[tr[i]])) v[m++] = col[tr[i]];
    int nbins = col && m >= 5 ? 5 : 1;
    if (nbins == 5) {
        qsort(v, m, sizeof(double), cmp_dbl);
        for (int k = 0; k <= 5; k++) e[k] = v[(size_t)((m - 1) * k / 5.0)];
    }
    int got = 0;
    for (int b = 0; b < nbins; b++) {
        size_t cnt = 0;
        for (size_t i = 0; i < n; i++) {
            double x = col ? col[tr[i]] : 0;
            if (nbins == 1 || (!isnan(x) && x >= e[b] && (b == 4 ? x <= e[5] : x < e[b + 1])))
                bin[cnt++] = tr[i];
        }
        int want = (nb - got) / (nbins - b);
        for (int k = 0; k < want && cnt; k++) { // without replacement within the bin (with, if it runs short)
            size_t j = gn_rng_below(rng, (uint32_t)cnt);
            out[got++] = bin[j];
            if (cnt > (size_t)want - k) bin[j] = bin[--cnt];
        }
    }
    free(v), free(bin);
    *n_out = got;
    return got > 0 ? GN_OK : gn_err(GN_EINVAL, "no background galaxies drawn");
}

typedef struct explain_cli {
    const char *ckpt, *out, *split_name, *ids, *target, *strat;
    long nshow, nb, samples, seed, threads;
    cmd_strs sets;
} explain_cli;

#define CLI explain_cli
static const cmd_flag explain_flags[] = {
    F_CKPT(ckpt, "the checkpoint"),
    F_OUT(out, "DIR", "where the attributions and plots go"),
    F_SPLIT(split_name, "explained galaxies from this split"),
    F_INT("--n", nshow, 1, 100000, "N", "explain the first N (default 20 spectra, 4 images)"),
    F_STR("--ids", ids, "ID,ID,...", "explain these galaxies"),
    F_STR("--target", target, "NAME", "image models: the target (default: the first)"),
    F_INT("--background", nb, 1, 100000, "B", "background galaxies"),
    F_STR("--stratify", strat, "COLUMN", "background stratified by this column"),
    F_INT("--samples", samples, 1, 100000, "S", "expected-gradients draws per output"),
    F_SEED(seed, "background and sampling seed"),
    F_THREADS(threads),
    F_CATALOG(sets, "the catalog, if it moved"),
    F_IMAGES(sets, "the cutouts, if they moved"),
    F_DATA_KEYS(sets),
    F_END};

static void explain_defaults(void *p) {
    explain_cli *o = p;
    o->split_name = "test", o->nb = 200, o->samples = 200, o->seed = 1;
}

// One explanation: the model, the explained galaxies and background, their
// inputs (X, bg: as the model sees them) and the attributions A (n, T, dim).
typedef struct xjob {
    const explain_cli *o;
    run r;
    int spectral, branch, tgt, T, ndim, shape[3], n, nbg;
    size_t dim;
    uint32_t *rows, *brow;
    float *bg, *X, *A;
    double *mabs;
    const char *sc;
    const double *scol;
    nn_ctx c;
    spec_rot R;
} xjob;

// The checkpoint's model: which branch is attributed, to which output, and its input shape.
static int open_model(xjob *J) {
    const explain_cli *o = J->o;
    run *r = &J->r;
    if (run_from_checkpoint(r, o->ckpt, o->sets.v, o->sets.n, 0, 0))
        return cmd_error("explain: %s", gn_errmsg());
    const md_net *net = &r->net;
    J->spectral = run_report(r) == MD_REPORT_SPECTRA, J->branch = -1, J->T = 1;
    if (run_report(r) == MD_REPORT_LATENT)
        return cmd_error("explain: %s is an image VAE; explain its latents' users (a flow) instead", o->ckpt);
    for (int b = 0; b < net->n_branch && J->branch < 0; b++)
        if (net->spec[b].input == (J->spectral ? MD_IN_SPECTRUM : MD_IN_IMAGE)) J->branch = b;
    if (J->branch < 0) return cmd_error("explain: %s has no image input to attribute to", o->ckpt);
    if (!J->spectral && o->target) {
        J->tgt = -1;
        for (int t = 0; t < r->n_targets; t++)
            if (!strcmp(r->target_names[t], o->target)) J->tgt = t;
        if (J->tgt < 0) return cmd_error("explain: --target %s is not one of the model's targets", o->target);
    }
    if (J->spectral)
        J->ndim = 1, J->shape[0] = net->svae.sp.pixels, J->T = net->svae.sp.latent;
    else {
        const run_branch *rb = &r->br[J->branch];
        int S = rb->ro.crop ? rb->ro.crop : r->ds[rb->ds].h;
        J->ndim = 3, J->shape[0] = net->spec[J->branch].in_ch, J->shape[1] = J->shape[2] = S;
    }
    J->dim = 1;
    for (int k = 0; k < J->ndim; k++) J->dim *= (size_t)J->shape[k];
    return 0;
}

// The explained galaxies: --ids, or the first of the split.
static int pick_rows(xjob *J, int split) {
    const explain_cli *o = J->o;
    const run *r = &J->r;
    J->rows = malloc(sizeof(uint32_t) * (r->cat.n_rows ? r->cat.n_rows : 1));
    if (!J->rows) return cmd_error("out of memory");
    if (!o->ids) {
        long want = o->nshow > 0 ? o->nshow : J->spectral ? 20 : 4;
        for (size_t j = 0; j < r->n_rows[split] && J->n < want; j++) J->rows[J->n++] = r->rows[split][j];
        return J->n ? 0 : cmd_error("explain: the %s split has no usable galaxies", o->split_name);
    }
    char *buf = gn_strdup(o->ids), *it[1024];
    int k = buf ? io_split_list(buf, it, 1024) : 0, rc = 0;
    for (int q = 0; q < k && !rc; q++) {
        int hit = -1;
        for (int s = 0; s < 3 && hit < 0; s++)
            for (size_t j = 0; j < r->n_rows[s]; j++)
                if (!strcmp(io_catalog_id(&r->cat, r->rows[s][j]), it[q])) hit = (int)r->rows[s][j];
        if (hit < 0)
            rc = cmd_error("explain: --ids: galaxy %s is not in the catalog or lacks an input", it[q]);
        else
            J->rows[J->n++] = (uint32_t)hit;
    }
    free(buf);
    return rc;
}

// The attributed branch's inputs of rows, as the model sees them (out: n x dim).
static int branch_inputs(xjob *J, const uint32_t *rows, int n, float *out) {
    run_batches it;
    int rc = run_batches_begin(&it, &J->r, &J->c, rows, (size_t)n, 64, 0);
    while (!rc && run_batches_next(&it))
        memcpy(out + it.o * J->dim, it.in[J->branch]->data, sizeof(float) * (size_t)it.b * J->dim);
    return run_batches_end(&it, rc);
}

// The stratified background and the inputs of background and explained galaxies.
static int prepare(xjob *J) {
    const explain_cli *o = J->o;
    const run *r = &J->r;
    const md_net *net = &r->net;
    size_t nb = (size_t)o->nb, dim = J->dim;
    const char *sc = o->strat;
    if (!sc && J->spectral && net->lat_a >= 0) sc = r->br[net->lat_a].col_names[0];
    if (!sc && !J->spectral && r->n_targets) sc = r->target_names[0];
    if (!sc && io_catalog_find(&r->cat, "logmstar") >= 0) sc = "logmstar";
    J->sc = sc;
    J->scol = sc ? io_catalog_values(&r->cat, sc) : NULL;
    if (sc && !J->scol) return cmd_error("explain: --stratify: %s", gn_errmsg());
    gn_rng rng;
    gn_rng_seed(&rng, (uint64_t)o->seed, GN_STREAM_SAMPLE);
    J->brow = malloc(sizeof(uint32_t) * nb);
    J->bg = malloc(sizeof(float) * nb * dim), J->X = malloc(sizeof(float) * (size_t)J->n * dim);
    J->A = malloc(sizeof(float) * (size_t)J->n * J->T * dim);
    J->mabs = calloc((size_t)J->T * dim, sizeof(double));
    if (!J->brow || !J->bg || !J->X || !J->A || !J->mabs) return cmd_error("out of memory");
    if (nn_ctx_init(&J->c, 256u << 20) || (J->spectral && spec_pca(r, &J->c, &J->R)) ||
        pick_background(r, J->scol, (int)nb, &rng, J->brow, &J->nbg) ||
        branch_inputs(J, J->brow, J->nbg, J->bg) || branch_inputs(J, J->rows, J->n, J->X))
        return cmd_error("explain: %s", gn_errmsg());
    return 0;
}

// Expected gradients of every output for every explained galaxy; prints the completeness check.
static int attribute(xjob *J) {
    const explain_cli *o = J->o;
    const run *r = &J->r;
    size_t dim = J->dim;
    int n = J->n, T = J->T, nbg = J->nbg, rc = 0, scr = 1, n_err = 0;
    for (int d = 0; d < r->n_ds; d++) scr = r->ds[d].h * r->ds[d].h > scr ? r->ds[d].h * r->ds[d].h : scr;
    float *scratch = malloc(sizeof(float) * (size_t)scr), *rowbuf[MD_MAX_BRANCH] = {0};
    double *phi = malloc(sizeof(double) * dim), *fb = malloc(sizeof(double) * (size_t)nbg), fx;
    double err_sum = 0, spread = 0;
    io_aug none = {0, 0.5f, 0.5f};
    xuser u = {.r = r, .spectral = J->spectral, .branch = J->branch, .target = J->tgt, .R = &J->R};
    if (!scratch || !phi || !fb) rc = GN_ENOMEM;
    for (int i = 0; !rc && i < n; i++) {
        nn_tensor *in[MD_MAX_BRANCH];
        nn_ctx_reset(&J->c);
        if ((rc = run_batch(r, &J->c, &J->rows[i], &none, 1, in, NULL, scratch))) break;
        for (int b = 0; b < r->net.n_branch && !rc; b++) { // the galaxy's other inputs, beyond the reset
            free(rowbuf[b]);
            if (!(rowbuf[b] = malloc(sizeof(float) * in[b]->n)))
                rc = GN_ENOMEM;
            else
                memcpy(rowbuf[b], in[b]->data, sizeof(float) * in[b]->n);
            u.row_in[b] = rowbuf[b], u.row_len[b] = in[b]->n;
        }
        for (int k = 0; !rc && k < T; k++) {
            u.comp = k;
            gn_rng sr;
            gn_rng_seed(&sr, (uint64_t)o->seed * 1000003u + (uint64_t)i * 101 + (uint64_t)k,
                        GN_STREAM_SAMPLE);
            const float *x = J->X + (size_t)i * dim;
            if ((rc = nn_expected_gradients(&J->c, model_f, &u, J->ndim, J->shape, x, J->bg, nbg,
                                            (int)o->samples, 25, &sr, phi)) ||
                (rc = eval_f(&J->c, &u, J->ndim, J->shape, x, 1, &fx)) ||
                (rc = eval_f(&J->c, &u, J->ndim, J->shape, J->bg, nbg, fb)))
                break;
            double s = 0, mb = 0, vb = 0;
            for (size_t j = 0; j < dim; j++)
                s += phi[j],
                    J->A[((size_t)i * T + k) * dim + j] = (float)phi[j],
                                                     J->mabs[(size_t)k * dim + j] += fabs(phi[j]) / n;
            for (int q = 0; q < nbg; q++) mb += fb[q] / nbg;
            for (int q = 0; q < nbg; q++) vb += (fb[q] - mb) * (fb[q] - mb) / nbg;
            err_sum += fabs(s - (fx - mb)), spread += sqrt(vb), n_err++;
        }
    }
    for (int b = 0; b < MD_MAX_BRANCH; b++) free(rowbuf[b]);
    free(scratch), free(phi), free(fb);
    if (rc) return cmd_error("explain: %s", gn_errmsg()[0] ? gn_errmsg() : "out of memory");
    printf("galnn explain: %d galaxies x %d output(s), %d background galaxies%s%s, %ld samples each\n", n, T,
           nbg, J->scol ? " stratified by " : "", J->scol ? J->sc : "", o->samples);
    printf("  completeness: mean |sum(phi) - (f(x) - E f(b))| = %.4g (the background spread of f is %.4g)\n",
           err_sum / n_err, spread / n_err);
    int64_t sh[5] = {n, T};
    int nd = 2;
    for (int k = 0; k < J->ndim; k++) sh[nd++] = J->shape[k];
    char p[4400];
    snprintf(p, sizeof p, "%s/attr.npy", o->out);
    io_array arr = io_array_view(IO_F32, nd, sh, J->A);
    return io_npy_write(p, &arr) ? cmd_error("explain: %s", gn_errmsg()) : 0;
}

// Spectra: mean |phi| per wavelength and component (mean_abs.csv, attr.png) and where each looks.
static int report_spectral(const xjob *J) {
    const char *out = J->o->out;
    int P = J->shape[0], T = J->T, rc = 0;
    const run_branch *rb = &J->r.br[J->branch];
    const double *mabs = J->mabs;
    double *wl = malloc(sizeof(double) * P), *ys = malloc(sizeof(double) * (size_t)T * P);
    char p[4400], nm[SPEC_MAXLAT][16];
    io_series s[SPEC_MAXLAT];
    snprintf(p, sizeof p, "%s/mean_abs.csv", out);
    FILE *f = fopen(p, "w");
    if (!wl || !ys || !f) rc = cmd_error("explain: %s: %s", p, strerror(errno));
    if (!rc) {
        io_spec_log_grid(rb->grid_lo, rb->grid_hi, P, wl);
        fprintf(f, "wavelength");
        for (int k = 0; k < T; k++) fprintf(f, ",D%d", k + 1);
        fprintf(f, "\n");
        for (int j = 0; j < P; j++) {
            fprintf(f, "%.3f", wl[j]);
            for (int k = 0; k < T; k++) fprintf(f, ",%.6g", mabs[(size_t)k * P + j]);
            fprintf(f, "\n");
        }
        for (int k = 0; k < T; k++) {
            for (int j = 0; j < P; j++) ys[(size_t)k * P + j] = mabs[(size_t)k * P + j];
            snprintf(nm[k], sizeof nm[k], "D%d", k + 1);
            s[k] = (io_series){nm[k], wl, ys + (size_t)k * P, (size_t)P};
        }
        snprintf(p, sizeof p, "%s/attr.png", out);
        if (io_plot_lines(p, "mean |expected-gradients attribution| per wavelength",
                          "rest-frame wavelength (Å)", "mean |phi| (latent units per pixel)", s,
                          T < 6 ? T : 6, 1))
            fprintf(stderr, "galnn: warning: %s\n", gn_errmsg());
        // where each component looks: the wavelength of its largest mean |phi|, and the share below 5000 Å
        for (int k = 0; k < T; k++) {
            int jm = 0;
            double tot = 0, blue = 0;
            for (int j = 0; j < P; j++) {
                double v = mabs[(size_t)k * P + j];
                if (v > mabs[(size_t)k * P + jm]) jm = j;
                tot += v, blue += wl[j] < 5000 ? v : 0;
            }
            printf("  D%d: largest mean |phi| at %.0f Å; "
                   "%.0f %% of the total below 5000 Å\n",
                   k + 1, wl[jm], tot > 0 ? 100 * blue / tot : 0);
        }
        printf("  wrote %s/attr.npy, mean_abs.csv and attr.png\n", out);
    }
    if (f && fclose(f) && !rc) rc = cmd_error("explain: write failed on %s", p);
    free(wl), free(ys);
    return rc;
}

// Images: input and attribution maps per galaxy, the mean |phi| map, per-band and central shares.
static int report_images(const xjob *J) {
    const run *r = &J->r;
    const char *out = J->o->out;
    int C = J->shape[0], S = J->shape[1];
    size_t dim = J->dim;
    const double *mabs = J->mabs;
    const char *lab[IO_MAX_BANDS];
    const run_branch *rb = &r->br[J->branch];
    const io_dataset *D = &r->ds[rb->ds];
    for (int b = 0; b < C; b++) lab[b] = D->bands[rb->ro.n_channels ? rb->ro.channels[b] : b];
    char p[4400], t[256], unit[96], mu[120];
    snprintf(unit, sizeof unit, "%s per pixel", r->n_targets ? r->target_units[J->tgt] : "output units");
    snprintf(mu, sizeof mu, "mean |phi|: %s", unit);
    for (int i = 0; i < J->n; i++) {
        const char *id = io_catalog_id(&r->cat, J->rows[i]);
        snprintf(p, sizeof p, "%s/input_%s.png", out, id);
        snprintf(t, sizeof t, "galaxy %s: standardised input", id);
        if (io_plot_maps(p, t, J->X + (size_t)i * dim, C, S, S, lab, 0, "standardised pixel value (sd)"))
            fprintf(stderr, "galnn: warning: %s\n", gn_errmsg());
        snprintf(p, sizeof p, "%s/attr_%s.png", out, id);
        snprintf(t, sizeof t, "galaxy %s: attribution to %s (red raises it)", id,
                 r->n_targets ? r->target_names[J->tgt] : "the output");
        if (io_plot_maps(p, t, J->A + (size_t)i * dim, C, S, S, lab, 1, unit))
            fprintf(stderr, "galnn: warning: %s\n", gn_errmsg());
    }
    float *mm = malloc(sizeof(float) * dim);
    double tot = 0, band[IO_MAX_BANDS] = {0}, cen = 0;
    for (size_t j = 0; mm && j < dim; j++)
        mm[j] = (float)mabs[j], tot += mabs[j], band[j / ((size_t)S * S)] += mabs[j];
    snprintf(p, sizeof p, "%s/mean_abs_attr.png", out);
    if (mm && io_plot_maps(p, "mean |attribution| per pixel and band", mm, C, S, S, lab, 0, mu))
        fprintf(stderr, "galnn: warning: %s\n", gn_errmsg());
    printf("  share of the total |phi| per band:");
    for (int b = 0; b < C; b++) printf(" %s %.1f%%", lab[b], tot > 0 ? 100 * band[b] / tot : 0);
    // concentration: share of |phi| within the central half of the cutout (in radius)
    for (int b = 0; b < C; b++)
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++) {
                double dx = x - (S - 1) / 2.0, dy = y - (S - 1) / 2.0;
                if (dx * dx + dy * dy <= S * S / 16.0) cen += mabs[((size_t)b * S + y) * S + x];
            }
    printf("\n  %.0f %% of it within the central circle of radius S/4 (%.0f %% of the area)\n",
           tot > 0 ? 100 * cen / tot : 0, 100 * M_PI / 16);
    printf("  wrote %s/attr.npy, input_*.png, attr_*.png and mean_abs_attr.png\n", out);
    free(mm);
    return 0;
}

// Whether the checkpoint holds gradient-boosted trees (the run is then open in J->r).
static int peek_gbdt(xjob *J) {
    if (run_from_checkpoint(&J->r, J->o->ckpt, J->o->sets.v, J->o->sets.n, 0, 0)) return 0;
    if (J->r.net.kind == MD_KIND_GBDT) return 1;
    run_free(&J->r);
    memset(&J->r, 0, sizeof J->r);
    return 0;
}

static int explain_run(const void *p) {
    const explain_cli o = *(const explain_cli *)p;
    int split = cmd_ckpt_out("explain", o.ckpt, o.out, o.split_name, o.threads);
    if (split < 0) return 1;
    xjob J;
    memset(&J, 0, sizeof J);
    J.o = &o;
    if (peek_gbdt(&J)) { // trees: gain importance and exact TreeSHAP instead of expected gradients
        int bad = (o.ids || o.nshow > 0) && pick_rows(&J, split); // else every galaxy of the split
        if (bad) return run_free(&J.r), free(J.rows), 1;
        bad = explain_gbdt(&J.r, o.out, split, o.target, J.rows, (size_t)J.n);
        free(J.rows);
        if (bad) cmd_error("explain: %s", gn_errmsg());
        run_free(&J.r);
        return bad ? 1 : 0;
    }
    int rc = open_model(&J) || pick_rows(&J, split) || prepare(&J) || attribute(&J);
    if (!rc) rc = J.spectral ? report_spectral(&J) : report_images(&J);
    if (J.c.arena.head) nn_ctx_free(&J.c);
    free(J.rows), free(J.brow), free(J.bg), free(J.X), free(J.A), free(J.mabs);
    run_free(&J.r);
    return rc ? 1 : 0;
}

CMD_DEF(cmd_explain, "explain",
        "expected-gradients attributions: per wavelength (spectral VAE) or per pixel and band (image models)",
        explain_usage, explain_flags, sizeof(explain_cli), explain_defaults, explain_run,
        offsetof(explain_cli, sets), NULL);
