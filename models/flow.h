// Conditional RealNVP (spec/stats.md §D, spec/methods.md §3.3): a stack of
// affine couplings y = x ⊙ exp(s) + t on the transformed half of x, with
// (ŝ, t) = MLP([b ⊙ x, h]) from the identity half b ⊙ x and the context h.
// The halves alternate between layers (even dimensions identity in layer 0,
// odd in layer 1, ...). With dim = 1 every layer is an affine map of x whose
// scale and shift depend on h only (a conditional Gaussian for one layer).
//
// Scale parameterisation (bounded, as FrEIA's TANH with clamp 2):
// s = clamp · tanh(ŝ); MD_FLOW_EXP uses s = ŝ (unbounded, Dinh et al.).
// log|det J| = Σ s over the transformed dimensions. The couplings' last
// layers start at zero, so a new flow is the identity.
#ifndef MD_FLOW_H
#define MD_FLOW_H

#include "../nn/nn.h"

#define MD_FLOW_MAXLAYERS 32
#define MD_FLOW_MAXDEPTH 8
enum { MD_FLOW_TANH = 0, MD_FLOW_EXP };
enum { MD_FLOW_RELU = 0, MD_FLOW_ACT_TANH }; // hidden activation of the coupling nets

typedef struct md_flow_spec {
    int dim, ctx;        // target dimensions D, context size C (0: unconditional)
    int layers;          // couplings (12 in the paper)
    int depth, hidden;   // coupling nets: depth x [FC hidden + act], then FC -> 2D (ŝ | t)
    int act;             // MD_FLOW_RELU (default) or MD_FLOW_ACT_TANH
    int scale;           // MD_FLOW_TANH or MD_FLOW_EXP
    float clamp;         // s = clamp tanh(ŝ) (2)
} md_flow_spec;

typedef struct md_flow {
    md_flow_spec sp;
    nn_dense net[MD_FLOW_MAXLAYERS][MD_FLOW_MAXDEPTH + 1];
} md_flow;

// Parameters "<prefix>.cK.fcJ".
int md_flow_make(md_flow *f, nn_store *s, const char *prefix);
// x (N, D), h (N, C) or NULL -> u = f(x; h) (N, D); *logdet (N) = log|det df/dx|.
nn_tensor *md_flow_forward(nn_ctx *c, const md_flow *f, nn_tensor *x, nn_tensor *h, nn_tensor **logdet);
// The inverse: u -> x; *logdet (N) = log|det dx/du| (= -forward's at that x).
nn_tensor *md_flow_inverse(nn_ctx *c, const md_flow *f, nn_tensor *u, nn_tensor *h, nn_tensor **logdet);
// log p(x | h) = log N(f(x; h); 0, I) + log|det| (N).
nn_tensor *md_flow_log_prob(nn_ctx *c, const md_flow *f, nn_tensor *x, nn_tensor *h);
// Mean negative log-likelihood over the rows (a scalar loss).
nn_tensor *md_flow_nll(nn_ctx *c, const md_flow *f, nn_tensor *x, nn_tensor *h);
// Which dimensions layer l keeps (1) and transforms (0).
int md_flow_keeps(const md_flow *f, int layer, int j);

#endif
