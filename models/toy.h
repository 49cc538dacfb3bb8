// Toy models that exercise the whole engine end to end: a small CNN that
// classifies the synthetic shapes, and an MLP that fits a 1-D curve. Their
// training loops serve `galnn demo` and the training tests alike.
#ifndef MD_TOY_H
#define MD_TOY_H

#include <stdint.h>

#include "../nn/nn.h"

typedef struct md_tinycnn {
    nn_conv c1, c2;
    nn_bn bn1;
    nn_dense fc;
} md_tinycnn;

// conv3x3(in->16) -> BN -> ReLU -> maxpool2 -> conv3x3/2(16->32) -> ReLU -> GAP -> linear(n_classes)
int md_tinycnn_make(md_tinycnn *m, nn_store *s, int in_ch, int n_classes);
nn_tensor *md_tinycnn_fwd(nn_ctx *c, const md_tinycnn *m, nn_tensor *x);

typedef struct md_mlp {
    int n_layers;
    nn_dense layer[8];
} md_mlp;

// in -> [hidden, tanh] x depth -> out
int md_mlp_make(md_mlp *m, nn_store *s, const char *prefix, int in, int hidden, int depth, int out);
nn_tensor *md_mlp_fwd(nn_ctx *c, const md_mlp *m, nn_tensor *x);

// Progress callback: called once per epoch (train loss, held-out metric).
typedef void (*md_progress_fn)(void *user, int epoch, int epochs, double loss, double metric);

typedef struct md_toy_result {
    double first_loss, final_loss; // mean training loss of the first / last epoch
    double metric;                 // shapes: test accuracy; curve: test MSE
    uint32_t param_crc;            // CRC-32 of the final parameter slab (determinism checks)
} md_toy_result;

// Train the tiny CNN on n_train shapes for `epochs` (batch 32, Adam 3e-3),
// then measure accuracy on 512 fresh test shapes.
int md_train_shapes(uint64_t seed, int n_train, int epochs, md_progress_fn cb, void *user,
                    md_toy_result *res);
// Train a 1-32-32-1 tanh MLP on 256 points of io_synth_curve over [-2, 2]
// (full batch, Adam 1e-2, cosine schedule), test MSE on a 1000-point grid.
int md_train_curve(uint64_t seed, int steps, md_progress_fn cb, void *user, md_toy_result *res);

#endif
