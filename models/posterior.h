// The conditional-flow posterior of spec/methods.md §3.3: a context network
// h = MLP(features) (features: e.g. the VAE's mu ⊕ sigma, colours and a
// magnitude), a mean head ŷ(h), and a conditional RealNVP (models/flow.h)
// over the residual r = y - ŷ(h) conditioned on h, so
//   log p(y | x) = log p_flow(y - ŷ(h) | h)
// (a shift has unit Jacobian). Targets are standardised by the caller.
// Loss: the mean NLL plus mean_weight x the MSE of ŷ, which makes ŷ the
// conditional mean (the NLL alone leaves the split between ŷ and the flow's
// own location free).
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
} md_post_spec;

typedef struct md_post {
    md_post_spec sp;
    nn_dense cx[MD_POST_MAXDEPTH], mh[2];
    md_flow flow;
} md_post;

// Parameters "post.ctx.fcK", "post.mean.fcK", "post.flow.cK.fcJ".
int md_post_make(md_post *p, nn_store *s);
nn_tensor *md_post_context(nn_ctx *c, const md_post *p, nn_tensor *x); // (N, ctx)
nn_tensor *md_post_mean(nn_ctx *c, const md_post *p, nn_tensor *h);    // (N, dim)
// log p(y | x) per row (N); y (N, dim) standardised.
nn_tensor *md_post_log_prob(nn_ctx *c, const md_post *p, nn_tensor *x, nn_tensor *y);
nn_tensor *md_post_loss(nn_ctx *c, const md_post *p, nn_tensor *x, nn_tensor *y);
// S posterior samples per row: out (N, S, dim), standardised units, base
// draws from rng. Works in batches of rows internally (no gradient).
int md_post_sample(nn_ctx *c, const md_post *p, const float *x, int n, int S, gn_rng *rng, float *out);

#endif
