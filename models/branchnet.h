// The multi-branch network after Chu et al. (spec/methods.md §2.2): each
// branch takes one input group — a stack of cutout bands, a stack of maps, or
// a vector of catalog columns — through its own backbone (ResNet-18, a small
// CNN, or an MLP); the branch features are concatenated and one linear head
// predicts the targets.
//
// Heads: regression (MSE on standardised targets), Gaussian (mean and log
// variance per target, Gaussian NLL), binned (softmax over B bins on [lo, hi]
// for one target, as InterpretSM: 520 bins on [6, 12.5]).
#ifndef MD_BRANCHNET_H
#define MD_BRANCHNET_H

#include "../nn/nn.h"
#include "gbdt.h"
#include "kind.h"
#include "latent.h"
#include "posterior.h"
#include "specvae.h"
#include "vae.h"

#define MD_MAX_BRANCH 4
#define MD_MAX_TARGETS 8

enum { MD_IN_IMAGE = 0, MD_IN_COLUMNS, MD_IN_SPECTRUM };
enum { MD_BB_RESNET18 = 0, MD_BB_SMALLCNN, MD_BB_MLP };
// MD_HEAD_QUANTILES: per target a point value, then the 16 % and 84 % quantiles (outputs T, T, T; gbdt)
enum { MD_HEAD_REGRESSION = 0, MD_HEAD_GAUSSIAN, MD_HEAD_BINNED, MD_HEAD_QUANTILES };
// [branch.X] init: PyTorch's defaults (Linear/Conv reset_parameters; ResNets as torchvision), He-normal
// (fan_in) with zero biases, Glorot-uniform with zero biases, or reset_parameters for every layer
// (kaiming-uniform a = sqrt 5, convolutions included: what a PyTorch model gets untouched).
enum { MD_INIT_TORCH = 0, MD_INIT_HE, MD_INIT_GLOROT, MD_INIT_UNIFORM };
enum { MD_ACT_RELU = 0, MD_ACT_SILU, MD_ACT_GELU, MD_ACT_LEAKY, MD_ACT_TANH }; // leaky: slope 0.01
#define MD_ACT_CHOICES "relu|silu|gelu|leaky_relu|tanh"                        // in MD_ACT_* order
enum { MD_NORM_BATCH = 0, MD_NORM_GROUP, MD_NORM_NONE };                       // group: 32 or fewer

// The normalisation after a convolution: batch norm, group norm (gamma, beta), or none (the conv
// has a bias then).
typedef struct md_norm {
    int kind, groups;
    nn_bn bn;
    nn_tensor *gamma, *beta;
} md_norm;

typedef struct md_block {
    nn_conv c1, c2, proj;
    md_norm b1, b2, bp;
    int has_proj;
} md_block;

typedef struct md_resnet {
    nn_conv stem;
    md_norm stem_bn;
    int stem_pool;
    md_block block[8];
    int out_dim;
} md_resnet;

typedef struct md_smallcnn {
    nn_conv c[3];
    md_norm b[3];
    int out_dim;
} md_smallcnn;

typedef struct md_mlpnet {
    int n, act;
    nn_dense l[8];
    int out_dim;
} md_mlpnet;

typedef struct md_branch_spec {
    char name[32];
    int input;                               // MD_IN_*
    int backbone;                            // MD_BB_*
    int in_ch;                               // image: bands; columns: number of columns
    int width;                               // resnet/smallcnn base width (resnet: 64 = standard)
    int stem_kernel, stem_stride, stem_pool; // resnet stem (7/2/1 = torchvision)
    int hidden[7], n_hidden;                 // mlp
    int init, act, norm;                     // MD_INIT_*, MD_ACT_* (mlp), MD_NORM_* (cnn)
    int zero_init_residual;                  // resnet: the last norm of each block starts at gamma 0
    float dropout;                           // on the branch's output features while training
    int feature_norm;                        // 1: layer norm (with affine) on the branch's output features
    float weight_decay;                      // this branch's parameters (with wd_set; else [train]'s)
    int wd_set;
} md_branch_spec;

typedef struct md_net {
    int kind;            // MD_KIND_*: its row md_kinds[kind] (models/kind.h)
    int lat_x, lat_a;    // latent: the branches feeding x and a (-1: none)
    int optional_target; // a target that may be missing (a flow's chain target), -1: none
    int pairs, morph;    // training batches are set-1/set-2 pairs; each row also has a morphology view
    md_latent lat;
    md_vae vae;                      // vae: over branch lat_x
    md_post post;                    // flow: over every (column) branch
    md_specvae svae;                 // specvae: spectrum lat_x, conditions lat_a
    gb_model gb;                     // gbdt: the trees (fitted by the run layer)
    gb_params gbp;                   // gbdt: [model]
    int gb_intervals;                // gbdt: also the 16 % and 84 % quantile ensembles of every target
    double gb_widen[MD_MAX_TARGETS]; // gbdt intervals: the conformal widening fitted on the validation split
    int n_branch;
    md_branch_spec spec[MD_MAX_BRANCH];
    md_resnet rn[MD_MAX_BRANCH];
    md_smallcnn sc[MD_MAX_BRANCH];
    md_mlpnet mlp[MD_MAX_BRANCH];
    nn_tensor *feat_g[MD_MAX_BRANCH], *feat_b[MD_MAX_BRANCH]; // feature_norm's affine
    int head, n_targets, bins;
    double lo, hi;                        // binned head range
    int n_out;                            // head outputs
    int head_hidden, head_act, head_init; // [target] hidden (one layer; 0: a linear head), activation, init
    nn_dense fc, fc_hidden;
} md_net;

// "a,b,c" -> positive integers (at most max); the count, or -1 with a message naming what.
int md_parse_int_list(const char *s, int *out, int max, const char *what);
// Register every parameter (names "<branch>.<layer>...", "head.fc...") in s.
int md_net_make(md_net *m, nn_store *s);
// The benchmarks' multi-branch net (m zeroed first): ResNet-18 branches "img" (5 channels) and "kin"
// (2 channels) of width w with 3x3 stride-2 stems, a regression head of 2 targets. md_net_make builds it.
void md_net_multibranch(md_net *m, int width);
// inputs[b]: (N, C, H, W) for image branches, (N, n_cols) for column branches.
nn_tensor *md_net_fwd(nn_ctx *c, const md_net *m, nn_tensor *const *inputs);
// Loss of the head outputs against standardised targets y (N, n_targets)
// (binned: raw target values, converted to bin labels).
nn_tensor *md_net_loss(nn_ctx *c, const md_net *m, nn_tensor *out, const float *y, int N);
// Point predictions (standardised for regression/gaussian, raw for binned)
// and, for probabilistic heads, a standard deviation per target (sd may be NULL).
void md_net_predict(const md_net *m, const nn_tensor *out, float *pred, float *sd);
int md_bin_label(const md_net *m, double y);
// The training objective on a batch: the head loss of md_net_fwd for branch
// networks; the latent model's objective (rows [0, N/2) and [N/2, N) the two
// sets of a contrastive batch; in_m: morphology views or NULL) otherwise.
nn_tensor *md_net_train_loss(nn_ctx *c, const md_net *m, nn_tensor *const *in, nn_tensor *const *in_m,
                             const float *y, int N);
// Latent models: the latent vector l (full = 1) or S (its first dim_main);
// VAEs: mu (full = 1: mu then sigma = exp(log sigma^2 / 2)).
nn_tensor *md_net_embed(nn_ctx *c, const md_net *m, nn_tensor *const *in, int full);
// The flow model's feature matrix (N, in_dim) from the branch inputs.
nn_tensor *md_net_flow_features(nn_ctx *c, const md_net *m, nn_tensor *const *in);
// Columns of md_net_embed, 0 if the model has no latent space; name of column d.
int md_net_embed_dim(const md_net *m, int full);
void md_net_embed_name(const md_net *m, int d, char *buf, size_t len);

#endif
