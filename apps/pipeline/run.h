// A run: the configuration, the data it names (catalog, image datasets,
// columns, targets, splits, normalisation) and the network — everything
// train, eval and predict build the same way. Normalisation statistics come
// from the training split, or from a checkpoint when evaluating.
#ifndef APP_RUN_H
#define APP_RUN_H

#include "../../io/catalog.h"
#include "../../io/ckpt.h"
#include "../../io/config.h"
#include "../../io/dataset.h"
#include "../../io/loader.h"
#include "../../models/branchnet.h"
#include "opts.h"

#define RUN_MAX_COLS 32

typedef struct run_branch {
    int ds;            // image: index into run.ds
    io_loader_opts ro; // image: bands, crop, standardisation
    double mean[IO_MAX_BANDS], std[IO_MAX_BANDS];
    int n_cols; // columns
    const double *col[RUN_MAX_COLS];
    char *col_names[RUN_MAX_COLS];
    double cmean[RUN_MAX_COLS], cstd[RUN_MAX_COLS];
    double crange[RUN_MAX_COLS][2]; // columns: the training split's min and max
    double median;                  // spectrum: the level the spectra are normalised to
    double grid_lo, grid_hi;        // spectrum: its log-spaced rest-frame grid (Å), in_ch pixels
} run_branch;

#define RUN_CALIB_LEVELS 101

typedef struct run {
    io_config cfg;
    io_catalog cat;
    uint8_t *split;      // (rows)
    int n_ds, shared_ds; // shared_ds: the [data] dataset's index, -1 until opened
    io_dataset ds[MD_MAX_BRANCH];
    int32_t *entry[MD_MAX_BRANCH]; // (rows) dataset entry of each catalog row, -1 if none
    run_branch br[MD_MAX_BRANCH];
    int n_targets;
    const double *target[MD_MAX_TARGETS];
    char *target_names[MD_MAX_TARGETS];
    char target_units[MD_MAX_TARGETS][48]; // [target] units, else the name's (io_column_unit), for plots
    double tmean[MD_MAX_TARGETS], tstd[MD_MAX_TARGETS];
    double trange[MD_MAX_TARGETS][2]; // the training split's target min and max
    int has_range;                    // crange and trange are known (checkpoints from before lack them)
    uint32_t *rows[3];                // usable catalog rows per split
    size_t n_rows[3];
    size_t n_unusable; // rows lacking a target, an input column or an image
    md_net net;
    nn_store st;
    run_data_opts data;       // [data]
    run_train_opts train;     // [train]
    int crop, augment, batch; // from train: crop, augment = dihedral, batch
    int optional_target;      // a target that may be missing (a flow's chain target), -1: none
    // from a checkpoint, on another catalog than the training one: its galaxies have no
    // train/val/test split (and maybe no target column)
    int foreign_catalog;
    // Flow models: the recalibration fitted on the validation split (run_posterior_calibrate): calib[t][j]
    // = Q(j/100), the calibrated PIT level of target t's quantile j/100; samples are mapped through it
    // unless calib_off. Stored in checkpoints as calib.pit (targets x 101).
    double calib[MD_MAX_TARGETS][RUN_CALIB_LEVELS];
    int has_calib, calib_off;
    int tta; // eval/predict --tta: head outputs over the 8 dihedral views of the images (run_has_images)
    char *list_buf[MD_MAX_BRANCH + 1];
} run;

// Build the run from cfg (ownership moves in). ck: a checkpoint to take the
// normalisation statistics from (eval/predict), or NULL to compute them from
// the training split. need_targets: 0 for predict (rows need only inputs).
int run_setup(run *r, io_config *cfg, const char *ck_path, const io_npz *ck, int need_targets, int verbose);
void run_free(run *r);
// The normalisation arrays for a checkpoint (norm.*): fills up to max entries.
int run_norm_arrays(const run *r, io_named_array *out, int max);
// Build a batch: the inputs of every branch for catalog rows ids with
// augmentation aug, and standardised targets y (N, T) (binned head: raw).
int run_batch(const run *r, nn_ctx *c, const uint32_t *ids, const io_aug *aug, int n, nn_tensor **inputs,
              float *y, float *scratch);

// What the run's model kind reports (models/kind.h): what the programs may do with it.
static inline md_report run_report(const run *r) { return md_kind_of(&r->net)->report; }

// Whether any branch takes images (what --tta needs).
int run_has_images(const run *r);
// Identity augmentations for n rows (allocated).
io_aug *run_no_aug(size_t n);

// The rows in batches of B in evaluation mode (no augmentation, no tape):
//   run_batches it;
//   int rc = run_batches_begin(&it, r, c, rows, n, B, want_y);
//   while (!rc && run_batches_next(&it)) { ... it.in, rows it.o .. it.o + it.b ... }
//   rc = run_batches_end(&it, rc);
// next resets the context and fills it.in (and it.y, the standardised targets, if
// want_y); it returns 0 at the end or on an error, which end returns.
typedef struct run_batches {
    const run *r;
    nn_ctx *c;
    const uint32_t *rows;
    size_t n, o; // rows, and the first of the current batch
    int B, b;    // batch size, and the current batch's
    nn_tensor *in[MD_MAX_BRANCH];
    float *y; // (B, targets) or NULL
    io_aug *none;
    float *scratch;
    int training, grad_enabled, rc;
} run_batches;
int run_batches_begin(run_batches *it, const run *r, nn_ctx *c, const uint32_t *rows, size_t n, int B,
                      int want_y);
int run_batches_next(run_batches *it);
int run_batches_end(run_batches *it, int rc);

// MPI: this rank's share [lo, hi) of n rows, a contiguous block of whole batches of `batch` rows (so its
// batches are the one-process run's and its outputs the same, bit for bit); one process: [0, n).
void run_rank_block(size_t n, int batch, size_t *lo, size_t *hi);
// Evaluation-mode forward pass over catalog rows: raw head outputs (n, n_out).
int run_infer(const run *r, nn_ctx *c, const uint32_t *rows, size_t n, float *out);
// The kind's validation loss, averaged over rows; pred (or NULL): the first target's predictions. On MPI
// ranks every rank calls it: each evaluates its block of whole batches (run_rank_block), and the result is
// the one-process one, bit for bit (batch losses summed in batch order, noise drawn by row).
int run_split_loss(const run *r, nn_ctx *c, const uint32_t *rows, size_t n, double *loss, double *pred);
// The first n_dump of rows: their network inputs (input.<branch>) and out (n x width) as NPZ at path.
int run_write_dump(const run *r, nn_ctx *c, const uint32_t *rows, size_t n, const float *out, int width,
                   long n_dump, const char *path);
// Latent models: S (full = 0, dim_main per row) or the full latent vector.
int run_embed(const run *r, nn_ctx *c, const uint32_t *rows, size_t n, int full, float *out);
// The usable catalog rows of one split (only = IO_SPLIT_*) or all (-1), in
// catalog order; *rows is allocated.
int run_select_rows(const run *r, int only, uint32_t **rows, size_t *n);
// Point estimate, standard deviation (0 for plain regression) and, for the
// binned head, median and mode and the 16/84th percentiles, in target units,
// from one row of head outputs. est: (T) mean, sd, median, mode, p16, p84.
typedef struct run_est {
    double mean, sd, median, mode, p16, p84;
} run_est;
void run_estimate(const run *r, const float *o, run_est *est);
// Out of the training range (spec: "no silent wrong answers"): bit 1 when a
// column input of row lies more than nsig training standard deviations
// beyond the training split's [min, max] of that column, bit 2 when a
// prediction (est, one per target) does so for the target. 0 without ranges.
#define RUN_OOD_INPUT 1
#define RUN_OOD_PRED 2
int run_ood(const run *r, uint32_t row, const run_est *est, double nsig);
// Open a checkpoint for inference: its configuration (+ data overrides), the
// run, and the weights.
int run_from_checkpoint(run *r, const char *ckpt, const char *const *overrides, int n_overrides,
                        int need_targets, int verbose);

// Gradient-boosted trees (apps/pipeline/gbdt.c): predictions as head outputs (n, n_out; standardised
// targets, then with intervals their 16 % and 84 % quantiles), the trees from a checkpoint, and the feature
// matrix the trees read (every column branch's raw values side by side, NaN where missing; n x features).
int run_gbdt_infer(const run *r, const uint32_t *rows, size_t n, float *out);
int run_gbdt_load(run *r, const char *path, const io_npz *z);
int run_gbdt_features(const run *r, const uint32_t *rows, size_t n, double *X);
int run_gbdt_n_features(const run *r);
const char *run_gbdt_feature_name(const run *r, int f);

// Flow models (apps/pipeline/posterior.c): S posterior samples per row, in the
// targets' units, out (n, S, T); and the evaluation galnn eval prints and
// writes (metrics JSON in *json, PIT histograms in dir) for one model or a
// deep ensemble of K (samples pooled, mixture NLL, aleatoric/epistemic split).
int run_posterior_samples(const run *r, nn_ctx *c, const uint32_t *rows, size_t n, int S, uint64_t seed,
                          float *out);
// The same for rows that follow `first` others of one sample run (an MPI rank's block): the draws are those
// the whole run gives them, when first is a multiple of run_posterior_unit(S) (whole passes and batches).
int run_posterior_samples_at(const run *r, nn_ctx *c, const uint32_t *rows, size_t n, size_t first, int S,
                             uint64_t seed, float *out);
size_t run_posterior_unit(int S);
// Flow models: fit the recalibration on the validation split (r->calib, has_calib) from S samples per
// galaxy of the current weights: calibrated CDF = R(F(y)) (Kuleshov et al. 2018), R a two-parameter
// smooth of the validation PITs' CDF (core and tail widths in probit space; apps/pipeline/posterior.c).
int run_posterior_calibrate(run *r, nn_ctx *c, int S, uint64_t seed);
// A chain-rule flow model: P(the chain target is measured | x) per row.
int run_posterior_detect(const run *r, nn_ctx *c, const uint32_t *rows, size_t n, double *p);
int run_posterior_eval(const run *const *rs, int K, nn_ctx *c, const uint32_t *rows, size_t n, int S,
                       uint64_t seed, const char *dir, const char *split_name, int quiet, char **json,
                       size_t *json_len);

// Spectral VAE/CVAE (apps/pipeline/spec.c): how well it models the spectra of some
// rows. Reconstructions from z = mu and from one posterior draw z ~ q(z|x)
// (a fixed noise stream); the Gaussian decoder's variance is fitted, σ̂² =
// mse_z; the ELBO per spectrum is then -(P/2)[ln(2π σ̂²) + 1] - KL, and
//   BIC = k ln n - 2 ln L with -2 ln L := -2 Σ ELBO (the ELBO bounds ln L
//   from below), k = latent + conditions, n = spectra;
//   bic_gauss = k ln(nP) + nP [ln(2π mse_mu) + 1] (the Gaussian likelihood of
//   the mean reconstruction alone: the latent's information cost is ignored).
typedef struct run_specfit {
    size_t n;
    int pixels, latent, n_cond;
    double mse_mu, mse_z; // per pixel
    double kl;            // per spectrum, nats (summed over the latent dimensions)
    double nelbo;         // per spectrum, nats
    double bic, bic_gauss;
} run_specfit;
int run_spec_fit(const run *r, nn_ctx *c, const uint32_t *rows, size_t n, run_specfit *f);
// galnn eval on a spectral VAE: the fit on a split, metrics.json and recon.png in dir.
#endif
