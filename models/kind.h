// Model kinds as a table ([model] kind = NAME): one md_kind row per kind says
// how to parse its config section into its typed spec, build it, and compute
// its training loss, forward pass, embedding and validation loss, and what
// `galnn eval` reports for it. The programs above never test a kind; they
// call through the row, or ask it what it can do (md_report, embed).
//
// A new kind: its own file models/kind_NAME.c (parse + the row `md_kind_NAME`)
// and one X(...) entry in MD_KINDS below, which makes its MD_KIND_* index, the
// row's declaration and its place in the table (models/kind.c, with a
// static_assert on the count). A kind whose network is not built from the
// existing parts also adds its member to md_net (models/branchnet.h).
#ifndef MD_KIND_H
#define MD_KIND_H

#include "../common/gn_rng.h"
#include "../io/config.h"
#include "../nn/nn.h"

struct md_net;

// MD_KIND_BRANCH: branches -> concatenated features -> head (models/branchnet.h);
// MD_KIND_LATENT: the S-space model of models/latent.h over two of the
// branches' inputs (main x, optional additional vector a), binned head.
// MD_KIND_VAE: the image VAE of models/vae.h over one image branch (lat_x).
// MD_KIND_FLOW: the conditional-flow posterior of models/posterior.h over the
// column branches' values (concatenated), standardised targets.
// MD_KIND_SPECVAE: the spectral VAE/CVAE of models/specvae.h over one
// spectrum branch (lat_x), conditioned on the column branch lat_a (-1: none).
// MD_KIND_GBDT: gradient-boosted trees (models/gbdt.h) over the column branches' values; not a network: the
// run layer fits it (apps/pipeline/gbdt.c) and predicts with it (run_infer).
#define MD_KINDS(X)                                                                                          \
    X(BRANCH, branches) X(LATENT, latent) X(VAE, vae) X(FLOW, flow) X(SPECVAE, specvae) X(GBDT, gbdt)
#define MD_KIND_ENUM_(E, row) MD_KIND_##E,
enum { MD_KINDS(MD_KIND_ENUM_) MD_KIND_COUNT };

// What `galnn eval` reports for a kind (and so which programs apply to it).
typedef enum md_report {
    MD_REPORT_POINT = 0, // point metrics of the head's predictions (predict, eval)
    MD_REPORT_LATENT,    // a latent space only (embed): eval reports the objective, predict refuses it
    MD_REPORT_SPECTRA,   // the spectral fit and its BIC (spectra-scan, spectra-latents)
    MD_REPORT_POSTERIOR, // posterior samples: calibration, CRPS, NLL (posterior)
    MD_REPORT_COUNT
} md_report;

// What a kind's parse needs to know of the data, filled by the run layer.
typedef struct md_data_info {
    int img_size[8];  // image branches: the size of the batches' cutouts (crop applied)
    double median[8]; // spectrum branches: the level the spectra are normalised to
    int n_targets;
    char *const *target_names;
    int batch; // [train] batch as configured
    // Wire branch b (already named) to the catalog columns of the list cols.
    int (*add_columns)(void *user, int b, const char *cols);
    void *user;
} md_data_info;

typedef struct md_kind {
    const char *name; // [model] kind = name
    const char *what; // for messages: "a VAE", ...
    int needs_target; // a [target] is required
    int val_metrics;  // validation also reports point metrics of md_net_fwd
    md_report report;
    // [model] -> the typed spec (branches are set up already; m->head,
    // m->bins, lo, hi and n_targets too).
    int (*parse)(struct md_net *m, io_config *c, const md_data_info *d);
    int (*make)(struct md_net *m, nn_store *s);
    nn_tensor *(*train_loss)(nn_ctx *c, const struct md_net *m, nn_tensor *const *in, nn_tensor *const *in_m,
                             const float *y, int N);
    nn_tensor *(*forward)(nn_ctx *c, const struct md_net *m, nn_tensor *const *in);
    // The loss on a validation batch: out is forward's result where val_metrics is set;
    // eps: a noise stream seeded afresh for every validation.
    nn_tensor *(*val_loss)(nn_ctx *c, const struct md_net *m, nn_tensor *const *in, nn_tensor *out,
                           const float *y, int N, gn_rng *eps);
    nn_tensor *(*embed)(nn_ctx *c, const struct md_net *m, nn_tensor *const *in, int full); // NULL: none
    int (*embed_dim)(const struct md_net *m, int full);
    int latent_names;      // embed columns are mu0.., sigma0.. (else s0..)
    const char *loss_unit; // the loss curve's axis: what the loss is, in which unit (NULL: by the head)
    int missing_inputs; // a missing column value is an input (the row stays usable), not a reason to drop it
    // the training loss is a mean over rows and nothing but batch norm mixes rows: a step's rows can be cut
    // among the threads (nn_team_step), each worker's loss a mean over its own
    int rows_apart;
} md_kind;

extern const md_kind *const md_kinds[MD_KIND_COUNT];
#define MD_KIND_EXTERN_(E, row) extern const md_kind md_kind_##row;
MD_KINDS(MD_KIND_EXTERN_)

// The row named name, or NULL with an error message naming the config file.
const md_kind *md_kind_find(const char *cfg_name, const char *name);
// The row of a built network, and a row's index (md_net.kind).
const md_kind *md_kind_of(const struct md_net *m);
int md_kind_index(const md_kind *k);
// [model] main (default: the only branch) as m->lat_x, which must take input
// kind `input`; nonzero if it does not.
int md_kind_main(struct md_net *m, io_config *c, int input);

#endif
