// Gradient-boosted decision trees on histograms (paper 002's second model; spec/methods.md §2), after
// LightGBM's design (Ke et al. 2017): every feature quantised once into at most max_bins bins from the
// training rows (plus one bin for missing values), per-leaf histograms of gradient sums and counts with
// subtraction (the smaller child built, its sibling = parent - child), leaf-wise growth (always split the
// leaf of largest gain) up to num_leaves, and the direction of missing values learned at every split.
//
// Every loss here has a unit hessian: L2 (g = f - y), L1 (g = sign(f - y)), Huber (g = f - y clipped to
// +-delta) and quantile (g = 1[f > y] - alpha). L1 and quantile leaves are then set to the alpha-quantile
// of their rows' residuals (the "leaf renewal" of LightGBM and scikit-learn: the gradient step alone moves
// a leaf at most learning_rate per round). A split's gain is the loss reduction of the second-order model,
//   gain = (G_L^2 / (n_L + l2) + G_R^2 / (n_R + l2) - G^2 / (n + l2)) / 2,
// a leaf's value -learning_rate G / (n + l2). Gradients are held per tree as integers on a power-of-two
// scale (2^-21 of the largest for 10^6 rows) packed with a count, so histogram sums, and a sibling's by
// subtraction, are exact in any order: a seed gives the same trees for every thread count. With L2 loss,
// every row and every feature in each tree, a root's histograms come from running sums of the predictions
// and targets per bin instead of a pass over the rows (equal up to rounding; replayed on a resume).
//
// A model is one ensemble per output (targets, and with intervals their 16/84 % quantiles): trees as flat
// node arrays, the bin edges they were grown on, a base score. Random draws (bagging, feature fraction)
// come from a stream seeded by (seed, ensemble, round): a resumed fit draws what the unbroken one did.
#ifndef MD_GBDT_H
#define MD_GBDT_H

#include <stddef.h>
#include <stdint.h>

enum { GB_L2 = 0, GB_L1, GB_HUBER, GB_QUANTILE, GB_LOSS_COUNT };

typedef struct gb_params {
    int num_leaves, max_depth, min_data_in_leaf, max_bins, rounds, patience;
    double min_sum_hessian, lambda_l2, learning_rate, feature_fraction, bagging_fraction;
    int loss;     // GB_*
    double alpha; // quantile level (quantile loss), or the Huber delta in the targets' units
    uint64_t seed;
    int direct_root; // 1: every root histogram from the rows, never from the running sums (for tests)
} gb_params;

// A node: internal when feature >= 0 (x[feature] <= threshold, or missing with default_left, goes left);
// gain: the split's loss reduction; cover: the training rows that reached it (count, as the hessian).
typedef struct gb_node {
    int32_t feature, left, right, default_left;
    double threshold, value, gain, cover;
} gb_node;

typedef struct gb_ens {
    int loss;
    double alpha, base;
    gb_node *nodes;
    size_t n_nodes, cap_nodes;
    int64_t *tree_start; // (n_trees + 1) offsets into nodes
    int n_trees, cap_trees;
    // fitting state: the best validation loss, its round count, rounds without improvement, still growing
    double best_loss;
    int best_trees, stall, active;
} gb_ens;

typedef struct gb_model {
    int n_features, n_ens;
    int rounds_done;     // boosting rounds so far (an ensemble retired early has fewer trees)
    double *edges;       // every feature's bin upper edges, concatenated (the last of each is +inf)
    int64_t *edge_start; // (n_features + 1)
    gb_ens *ens;
} gb_model;

// Bin edges of each feature from the n rows of X (row-major n x F; NaN = missing): at most max_bins - 1
// finite edges at the midpoints between distinct values (all of them if few, else at equal-count
// quantiles), then +inf. m->n_features, edges and edge_start are set.
int gb_bin_edges(gb_model *m, const double *X, size_t n, int F, int max_bins);
// The bin of value v of feature f: the first edge >= v; missing values the bin after the last.
int gb_bin(const gb_model *m, int f, double v);
static inline int gb_n_bins(const gb_model *m, int f) {
    return (int)(m->edge_start[f + 1] - m->edge_start[f]);
}

// Fitting: X (n x F), y (n x n_out, NaN rows ignored per output), the validation rows Xv, yv (nv may be 0:
// no early stopping). out_loss/out_alpha give each ensemble's loss and level. gb_fit_init bins X (m's
// edges must be set already, by gb_bin_edges or a checkpoint) and starts from m's trees (a resume).
typedef struct gb_fit gb_fit;
gb_fit *gb_fit_init(gb_model *m, const gb_params *p, const double *X, const double *y, size_t n,
                    const double *Xv, const double *yv, size_t nv);
// One round: a tree for every active ensemble (early stopping retires one after patience rounds without a
// better validation loss). Returns the number still active, or < 0 on an error (message set).
int gb_fit_round(gb_fit *f);
int gb_fit_rounds_done(const gb_fit *f);
// The mean training and validation losses of ensemble e now (validation: NaN without rows).
void gb_fit_losses(const gb_fit *f, int e, double *train, double *val);
void gb_fit_free(gb_fit *f);
// The validation rows' current predictions (nv x n_ens).
const double *gb_fit_val_pred(const gb_fit *f);
// Keep each ensemble's best_trees (the early-stopping point).
void gb_truncate_best(gb_model *m);

// New model with n_ens empty ensembles and no edges (gb_bin_edges or a checkpoint fills them).
int gb_model_init(gb_model *m, int n_ens, const int *loss, const double *alpha);
void gb_model_free(gb_model *m);
// Predictions (n x n_ens) of rows of X (n x F, NaN = missing); trees summed in order.
void gb_predict(const gb_model *m, const double *X, size_t n, double *out);
double gb_predict_row(const gb_model *m, int e, const double *x);
// Ensemble e's per-feature importance: gain (sum of its splits' gains) and split count (F each).
void gb_importance(const gb_model *m, int e, double *gain, double *splits);

// Exact TreeSHAP (Lundberg, Erion & Lee 2018, Algorithm 2): phi[0..F-1] the Shapley values of row x for
// ensemble e under the trees' cover-weighted conditional expectations, phi[F] the expected value, so that
// sum(phi) = the prediction. Conditional expectation E[f(x) | x_S] by the trees' covers (for the
// brute-force check): in_s[f] nonzero for the features in S.
void gb_shap_row(const gb_model *m, int e, const double *x, double *phi);
// The same for n rows of X (phi: n x (F + 1)), the per-model work done once, rows shared among threads.
void gb_shap_rows(const gb_model *m, int e, const double *X, size_t n, double *phi);
double gb_cond_expect(const gb_model *m, int e, const double *x, const uint8_t *in_s);
double gb_expected_value(const gb_model *m, int e);

// The loss of prediction f against y (for reports and early stopping).
double gb_loss(int loss, double alpha, double f, double y);
const char *gb_loss_name(int loss);

#endif
