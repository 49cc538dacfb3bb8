// The conditional-flow posterior of spec/methods.md §3.3: a context network
// h = MLP(features) (features: e.g. the VAE's mu ⊕ sigma, colours and a
// magnitude), a mean head ŷ(h), and a conditional RealNVP (models/flow.h)
// over the residual r = y - ŷ(h) conditioned on h, so
//   log p(y | x) = log p_flow(y - ŷ(h) | h)
// (a shift has unit Jacobian). Targets are standardised by the caller.
// Loss: the mean NLL plus mean_weight x the MSE of ŷ, which makes ŷ the
// conditional mean (the NLL alone leaves the split between ŷ and the flow's
// own location free).
//
// Chain-rule branch (optional, chain = 1): one further target y_c, last in y,
// missing (NaN) for some galaxies: p(y_core, y_c | x) = p(y_core | x) p(y_c |
// y_core, x), the second a 1-D conditional affine flow on the context h ⊕
// y_core (a conditional Gaussian for one layer), trained with the true y_core
// (teacher forcing) on the galaxies that have y_c; and a detectability head
// P(y_c measured | x) = sigmoid(MLP(h)) trained with binary cross-entropy on
// all galaxies. Sampling draws y_core, then y_c given each y_core draw.
#ifndef MD_POSTERIOR_H
#define MD_POSTERIOR_H

#include "flow.h"

#define MD_POST_MAXDEPTH 8

typedef struct md_post_spec {
    int in_dim;             // feature columns
    int ctx, ctx_depth;     // context: ctx_depth x [FC ctx + ReLU] (256, 2)
    int dim;                // targets
    int mean_hidden;        // mean head: FC mean_hidden + ReLU -> dim (128)
    float mean_weight;      // weight of the mean head's MSE (1)
    md_flow_spec flow;      // layers, depth, hidden, scale, clamp (dim and ctx are set from above)
    int chain;              // 1: a chain-rule target after the dim core targets
    int chain_layers;       // its affine layers (1)
    float det_weight;       // weight of the detectability BCE (1)
} md_post_spec;

typedef struct md_post {
    md_post_spec sp;
    nn_dense cx[MD_POST_MAXDEPTH], mh[2], det[2];
    md_flow flow, chainf;
} md_post;

// Parameters "post.ctx.fcK", "post.mean.fcK", "post.flow.cK.fcJ".
int md_post_make(md_post *p, nn_store *s);
nn_tensor *md_post_context(nn_ctx *c, const md_post *p, nn_tensor *x); // (N, ctx)
nn_tensor *md_post_mean(nn_ctx *c, const md_post *p, nn_tensor *h);    // (N, dim)
// Point estimates (N, dim + chain): the mean head, and for the chain target
// the flow's centre (base value 0) given h and those means.
nn_tensor *md_post_point(nn_ctx *c, const md_post *p, nn_tensor *x);
// log p(y_core | x) per row (N); y (N, dim [+ 1]) standardised (the chain column is ignored).
nn_tensor *md_post_log_prob(nn_ctx *c, const md_post *p, nn_tensor *x, nn_tensor *y);
// log p(y_c | y_core, x) per row (N) (rows without y_c: 0) and P(y_c measured | x) (N).
nn_tensor *md_post_chain_log_prob(nn_ctx *c, const md_post *p, nn_tensor *x, nn_tensor *y);
nn_tensor *md_post_detect(nn_ctx *c, const md_post *p, nn_tensor *x);
// y (N, dim + chain): NaN in the chain column marks a missing value.
nn_tensor *md_post_loss(nn_ctx *c, const md_post *p, nn_tensor *x, nn_tensor *y);
// S posterior samples per row: out (N, S, dim + chain), standardised units,
// base draws from rng. Works in batches of rows internally (no gradient).
int md_post_sample(nn_ctx *c, const md_post *p, const float *x, int n, int S, gn_rng *rng, float *out);

#endif
