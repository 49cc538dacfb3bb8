// Expected gradients (Erion et al. 2021; spec/methods.md §4.4): attributions
// of a scalar model output f to every input feature,
//   φ_j(x) = E_{b ~ background, α ~ U(0,1)} [ (x_j - b_j) ∂f/∂x_j (b + α (x - b)) ],
// a sampled path integral that satisfies completeness in expectation:
// Σ_j φ_j(x) = f(x) - E_b f(b). It approximates DeepSHAP for deep networks.
#ifndef NN_ATTRIB_H
#define NN_ATTRIB_H

#include "nn.h"

// f: builds the model's output for a batch of inputs x (the shape of `shape`
// with a leading batch axis) and returns a tensor of one value per row (N) or
// (N, 1). user: passed through.
typedef nn_tensor *(*nn_attrib_fn)(nn_ctx *c, nn_tensor *x, void *user);

// φ (d values, d = the product of shape) for one input x against nb
// background rows (nb x d), from `samples` draws of (b, α) taken from rng, in
// batches of `batch`. Gradients only: the model's parameters are not changed.
int nn_expected_gradients(nn_ctx *c, nn_attrib_fn f, void *user, int ndim, const int *shape, const float *x,
                          const float *background, int nb, int samples, int batch, gn_rng *rng, double *phi);

#endif
