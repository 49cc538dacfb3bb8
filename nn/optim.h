// Optimizers over a store's parameter slab, gradient clipping, LR schedules.
// Update rules follow PyTorch's (torch.optim) formulas exactly, so a run can
// be checked step by step against it.
#ifndef NN_OPTIM_H
#define NN_OPTIM_H

#include "store.h"

typedef enum { NN_OPT_SGD = 0, NN_OPT_ADAM, NN_OPT_ADAMW } nn_opt_kind;

typedef struct nn_optim {
    nn_opt_kind kind;
    float beta1, beta2, eps; // Adam/AdamW
    float momentum;          // SGD (0: plain SGD)
    float weight_decay;      // SGD/Adam: L2 added to the gradient; AdamW: decoupled
    int amsgrad, nesterov;
    long step;               // completed steps
    size_t n;                // slab length (== store->n_param_floats)
    float *m;                // first moment / SGD momentum buffer (n)
    float *v;                // second moment (n); Adam family only
    float *vmax;             // AMSGrad running max (n); only when amsgrad
    float *wd;               // per-value weight decay (n), NULL: weight_decay for every value
} nn_optim;

// Defaults: Adam betas (0.9, 0.999), eps 1e-8; no weight decay; no momentum.
void nn_optim_defaults(nn_optim *o, nn_opt_kind kind);
// Allocate the moment slabs (zeroed) for a finalized store.
int nn_optim_init(nn_optim *o, const nn_store *s);
void nn_optim_free(nn_optim *o);
// Weight decay wd for the parameters named "<prefix>.*" (e.g. one branch), the rest keep theirs.
int nn_optim_decay_prefix(nn_optim *o, const nn_store *s, const char *prefix, float wd);
// One update of every parameter with learning rate lr.
void nn_optim_step(nn_optim *o, nn_store *s, float lr);

// Scale all gradients so their global L2 norm is at most max_norm (as
// torch.nn.utils.clip_grad_norm_). Returns the norm before clipping.
float nn_clip_grad_norm(nn_store *s, float max_norm);
double nn_grad_norm(const nn_store *s);

typedef enum { NN_SCHED_CONST = 0, NN_SCHED_STEP, NN_SCHED_COSINE, NN_SCHED_EPOCH_COS } nn_sched_kind;

#define NN_SCHED_MAXDROPS 16
typedef struct nn_sched {
    nn_sched_kind kind;
    float base_lr;
    // STEP: lr = base_lr * factor^(number of drop steps <= step), or, when
    // values are given, values[i] from drop step i on.
    int n_drops;
    long drop_steps[NN_SCHED_MAXDROPS];
    float drop_values[NN_SCHED_MAXDROPS];
    int use_values;
    float factor;
    // COSINE: linear warm-up over warmup steps from base_lr/warmup to base_lr,
    // then min_lr + (base_lr - min_lr) (1 + cos(pi t / T)) / 2 over the
    // remaining total - warmup steps; min_lr after that.
    long warmup, total;
    float min_lr;
    // EPOCH_COS (Chu et al. as printed, spec §2.2): lr = base_lr cos(epoch / period),
    // epoch = step / steps_per_epoch (integer). With period 200 over 200 epochs the
    // rate falls only to 0.54 base_lr — the literal formula, flagged in the spec.
    long steps_per_epoch;
    float period;
} nn_sched;

float nn_sched_lr(const nn_sched *s, long step); // step counts from 0

#endif
