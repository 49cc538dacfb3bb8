// Parameters and buffers in contiguous slabs with named views (llm.c style).
//
// A model registers its tensors by name and shape; nn_store_finalize() then
// lays every parameter out in one data slab and one gradient slab (and every
// buffer, e.g. batch-norm running statistics, in a third), and points each
// registered tensor into them. Zero-grad is one memset, an optimizer step one
// loop over the slab, and a checkpoint one walk over the names.
#ifndef NN_STORE_H
#define NN_STORE_H

#include "../common/gn_rng.h"
#include "tensor.h"

typedef enum {
    NN_INIT_ZERO = 0,
    NN_INIT_CONST,          // value
    NN_INIT_GLOROT_UNIFORM, // U(-a, a), a = sqrt(6 / (fan_in + fan_out))
    NN_INIT_HE_NORMAL,      // N(0, 2 / fan_in)
    NN_INIT_UNIFORM,        // U(-value, value)
    NN_INIT_NORMAL,         // N(0, value^2)
    // PyTorch's Linear/Conv reset_parameters: weights kaiming-uniform with a = sqrt(5), i.e.
    // U(-b, b), b = sqrt(6 / ((1 + a^2) fan_in)) = 1 / sqrt(fan_in); biases U(+-1/sqrt(fan_in)) with
    // the weight's fan_in (given in fan_in)
    NN_INIT_TORCH_UNIFORM,
    NN_INIT_HE_NORMAL_OUT, // N(0, 2 / fan_out): torchvision's convs (kaiming-normal, mode fan_out, relu)
} nn_init_kind;

typedef struct nn_init {
    nn_init_kind kind;
    float value;
    int fan_in, fan_out; // 0: derived from the shape (see nn_fans)
} nn_init;

typedef struct nn_entry {
    nn_tensor t;
    size_t offset; // in floats, into the slab
    nn_init init;
} nn_entry;

typedef struct nn_store {
    nn_entry **params, **buffers;
    int np, nb, cap_p, cap_b;
    float *data;      // (n_param_floats)   parameter values
    float *grad;      // (n_param_floats)   their gradients
    float *bufdata;   // (n_buffer_floats)
    size_t n_param_floats, n_buffer_floats; // slab sizes incl. alignment padding
    size_t n_param_values;                  // real parameter count
    int finalized;
} nn_store;

void nn_store_init(nn_store *s);
void nn_store_free(nn_store *s);
// Register a trainable parameter / a buffer. Names must be unique. The
// returned pointer is stable; its data is valid after finalize.
nn_tensor *nn_store_param(nn_store *s, const char *name, int ndim, const int *shape, nn_init init);
nn_tensor *nn_store_buffer(nn_store *s, const char *name, int ndim, const int *shape, nn_init init);
int nn_store_finalize(nn_store *s);
// Change the initializer of a registered parameter or buffer (e.g. a layer's default); -1 if unknown.
int nn_store_set_init(nn_store *s, const nn_tensor *t, nn_init init);
// Apply every registered initializer, in registration order, from `rng`.
void nn_store_reset_values(nn_store *s, gn_rng *rng);
void nn_store_zero_grad(nn_store *s);
nn_tensor *nn_store_find(nn_store *s, const char *name); // param or buffer, NULL if absent
// Every registered tensor in a fixed order: parameters, then buffers.
static inline int nn_store_count(const nn_store *s) { return s->np + s->nb; }
static inline nn_tensor *nn_store_at(const nn_store *s, int i) {
    return i < s->np ? &s->params[i]->t : &s->buffers[i - s->np]->t;
}

// Fan-in/fan-out of a weight as Glorot/He define them: a dense weight
// (out, in) has fan_in = in; a conv weight (O, C, k...) has fan_in = C*prod(k),
// fan_out = O*prod(k).
void nn_fans(int ndim, const int *shape, int *fan_in, int *fan_out);
void nn_init_fill(float *x, size_t n, nn_init init, int ndim, const int *shape, gn_rng *rng);

static inline nn_init nn_init_const(float v) { return (nn_init){NN_INIT_CONST, v, 0, 0}; }
static inline nn_init nn_init_glorot(void) { return (nn_init){NN_INIT_GLOROT_UNIFORM, 0, 0, 0}; }
static inline nn_init nn_init_he(void) { return (nn_init){NN_INIT_HE_NORMAL, 0, 0, 0}; }
static inline nn_init nn_init_he_out(void) { return (nn_init){NN_INIT_HE_NORMAL_OUT, 0, 0, 0}; }
// fan_in 0: the tensor's own (weights); a bias passes its layer's fan_in
static inline nn_init nn_init_torch(int fan_in) { return (nn_init){NN_INIT_TORCH_UNIFORM, 0, fan_in, 0}; }

#endif
