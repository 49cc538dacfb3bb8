// Tensors, the activation arena and the autograd tape.
//
// A forward pass records one node per op on the context's tape; nn_backward()
// walks it in reverse and accumulates (+=) into .grad. Activations, saved
// values and the tape itself live in an arena that nn_ctx_reset() rewinds every
// step, so the training loop does no per-op malloc once the arena has grown.
//
// Error handling: every op returns NULL on failure (message in gn_errmsg())
// and returns NULL at once when any input is NULL, so a whole expression can be
// checked once at its end.
#ifndef NN_TENSOR_H
#define NN_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "../common/gn_common.h"
#include "../common/gn_rng.h"

// Below this many values a loop runs on one thread: waking the team costs more than it saves, and on cores
// shared with other jobs every parallel region waits for its slowest thread (measured: make bench, shared).
#define NN_PAR_MIN 32768

#define NN_MAXDIM 6

typedef struct nn_tensor {
    int ndim;
    int shape[NN_MAXDIM];
    size_t n;    // number of elements
    float *data; // contiguous, row-major (NCHW for images)
    float *grad; // same shape; NULL until backward needs it
    unsigned char requires_grad;
    unsigned char is_param; // data/grad live in an nn_store slab
    unsigned char
        grad_pooled;  // grad is a gradient-pool block (released once the tensor's producer has run backward)
    const char *name; // parameters and buffers only
    // transient data (in the context's ring, see nn_tensor_transient) or pooled data (data_pooled, see
    // nn_tensor_pooled): the node whose recompute refills it when backward needs it
    struct nn_node *remake;
    unsigned char data_pooled; // data is a pool block, or NULL once dropped (nn_tensor_drop)
    unsigned char deferred;    // a transient never computed while data is NULL (nn_tensor_deferred)
    unsigned char wino_il;     // data in the Winograd image-vector input layout (NN_ACT_WINO), not NCHW
} nn_tensor;

// Arena: a chain of blocks. Reset keeps the memory; if a step needed more than
// one block, the blocks are merged into one so later steps never allocate.
typedef struct nn_arena_block {
    struct nn_arena_block *next;
    size_t cap, used;
    unsigned char *mem;
} nn_arena_block;

typedef struct nn_arena {
    nn_arena_block *head; // the first block; the others follow in the order they were made
    nn_arena_block *cur;  // the block allocations come from (blocks after it are empty this step)
    size_t total_cap;
    size_t peak; // peak bytes used in one step
    size_t used; // bytes used this step
} nn_arena;

int nn_arena_init(nn_arena *a, size_t cap);
void *nn_arena_alloc(nn_arena *a, size_t bytes); // 64-byte aligned, NULL + error on failure
void nn_arena_reset(nn_arena *a);
// Scratch scopes: everything allocated after a mark is released by
// nn_arena_release, so an op's temporaries do not pile up over a whole step.
typedef struct nn_arena_mark {
    nn_arena_block *block;
    size_t used, total;
} nn_arena_mark;
nn_arena_mark nn_arena_get_mark(const nn_arena *a);
// Whether p points into one of the arena's blocks (this step's tensors and temporaries).
int nn_arena_owns(const nn_arena *a, const void *p);
void nn_arena_release(nn_arena *a, nn_arena_mark m);
void nn_arena_free(nn_arena *a);
// A reset arena of several blocks as one block a little over its peak: the pages of one step's tensors
// and no tails of blocks that a larger tensor skipped (each touched once); one block already: nothing.
int nn_arena_fit(nn_arena *a);

// Gradient pool: activation gradients live in reusable blocks outside the
// arena. nn_backward() hands a node's output gradient back as soon as the node
// itself has run backward (no one reads it after that), so only the gradients
// of the tensors between the current node and its consumers are alive at once.
typedef struct nn_gblock {
    struct nn_gblock *next;
    size_t bytes;
    int in_use;
    float *mem;
} nn_gblock;

struct nn_ctx;
typedef struct nn_node {
    void (*backward)(struct nn_node *node, struct nn_ctx *ctx);
    struct nn_node *prev;
    nn_tensor *out;
    nn_tensor **in;
    int nin;
    // refills out->data (a transient output, nn_tensor_transient)
    void (*recompute)(struct nn_node *node, struct nn_ctx *ctx);
    void *saved;    // op-specific saved values (arena)
    nn_tensor *aux; // a read-only operand that receives no gradient (e.g. soft targets)
    int ia[24];     // op-specific integer arguments
    // grad_steal (set by the op): its backward can write in[0]'s gradient over out's; when in[0] has no
    // gradient yet, nn_backward hands out's buffer over and sets grad_aliased (the backward then sets in[0]'s
    // gradient, reading each value of out's before writing over it): one gradient buffer fewer alive
    unsigned char grad_steal, grad_aliased;
    float fa[4];    // op-specific float arguments
} nn_node;

// Paths forced for tests and benchmarks; -1 (0 for gemm_blas): the default rule.
typedef struct nn_tune {
    int gemm_blas;    // 1: every small product through cblas_sgemm (the path of CPUs without AVX2+FMA)
    int wino_layout;  // Winograd transforms: 0 rows of tiles, 1 image vectors
    int wino_batch;   // image vectors: 1 the threads share one chunk of the batch (while under 32 MiB), 0 not
    int conv_batched; // other convs: 1 one im2col + GEMM over the batch, 0 by groups of images
    int conv_phases;  // their forward by groups: 1 from stride phases (nn/conv_internal.h), 0 from im2col
    int no_steal;     // 1: no gradient buffer handed from an op's output to its input (nn_node.grad_steal)
    int no_pool;      // 1: activations asked for pooled (NN_ACT_POOLED) are kept in the arena instead
    int infer_rows;   // inference of image branches by groups of this many rows (-1: the default rule, 0: the
                      // whole batch at once)
    int infer_front;  // and a ResNet's first stages in that by sub-groups of this many rows (-1: 8, 0: not)
    int wino_il;      // NN_ACT_WINO outputs in the reader's Winograd input layout: -1 where both take it,
                      // 0 never
    int wino_s2;      // 3x3 stride-2 convs by Winograd on their stride phases (nn_wino_tile's rule): -1
                      // without a tape, and under one where the dU copies are small; 0 never, 1 always
} nn_tune;
// No path forced (nn_ctx_init's)
nn_tune nn_tune_default(void);

// Draws by row (nn_ctx_draw): with key != 0, row i's dropout mask and noise come from the stream of
// (key, call, g(i)), g(i) = row0 + rows[i % n_rows] + (i / n_rows) * span (rows NULL: row0 + i), the
// row's place in the whole batch or list, so they do not depend on how it is sliced among ranks
typedef struct nn_draws {
    uint64_t key;
    uint32_t call; // ops that drew so far (each takes the next)
    const int32_t *rows;
    int n_rows;
    int64_t span, row0;
} nn_draws;

// A kept Winograd filter transform (nn_ctx.frozen): of the 3x3 weights at w, O x C, tile m.
typedef struct nn_wcache {
    struct nn_wcache *next;
    const float *w;
    int O, C, m;
    float *U;
} nn_wcache;

typedef struct nn_ctx {
    nn_arena arena;
    nn_node *tape; // last recorded node
    size_t n_nodes;
    int training;       // batch norm uses batch statistics, dropout is active
    int grad_enabled;   // record the tape
    gn_rng dropout_rng; // the dropout stream (its state belongs in checkpoints)
    nn_draws draws;
    int sync_bn;        // training batch norm: statistics over the MPI ranks' whole batch (synchronised)
    double sync_w;      // and this rank's slice's weight in the gradient sum (its share of the rows)
    int keep_im2col;  // 1: convs outside Winograd by one im2col + GEMM over the batch, keeping the matrix for
                      // backward (faster); 0: by groups of images, recomputed in backward (less memory)
    int winograd;     // 3x3 stride-1 convs by Winograd: 1 (default) F(m x m, 3x3), m = 2, 3, 4 or 6, the one
                      // with the fewest multiplications (nn_wino_tile's rule), im2col below 3x3 outputs, and
                      // 5x5 stride-1 convs of 16+ input channels by F(2x2, 5x5); 2, 3, 4 or 6: that tile
                      // only (3x3); 0: im2col + GEMM
    nn_tune tune;     // paths forced for tests and benchmarks (nn_ctx_init: none forced)
    int frozen;         // 1: the weights outside the arena (a store's) do not change while this context
                        // lives (inference apps): their Winograd filter transforms are computed once and
                        // kept (wcache); weights in the arena (made this step) are transformed each time
    nn_wcache *wcache;
    nn_gblock *gpool; // every gradient block this context has made
    size_t gpool_bytes; // their total size
    float *ring;        // the one transient tensor's data (nn_tensor_transient), ring_cap floats
    size_t ring_cap;
    const nn_tensor *ring_owner; // whose values the ring holds now
    struct nn_ctx *workers;      // nn_ctx_workers': one per thread, n_workers of them
    int n_workers;
    struct nn_ctx *owner;        // a worker's: the context whose kept filter transforms it shares
    // a worker of a training step on a team of threads (nn/team.h): its team and place in it, and its own
    // parameter gradients (grad_slab, grad_n floats; NULL for worker 0), which stand for the store's slab at
    // grad_base: nn_record points the parameters among an op's inputs there
    struct nn_team *team, *team_own; // team_own: the team of this context's workers (nn_team_step)
    int team_rank;
    float *grad_slab;
    const float *grad_base;
    size_t grad_n;
} nn_ctx;

int nn_ctx_init(nn_ctx *ctx, size_t arena_bytes);
// A context for inference with weights that stay fixed while it lives (predict, eval, embed): no
// training, no tape, the Winograd filter transforms kept (frozen).
int nn_ctx_init_inference(nn_ctx *ctx, size_t arena_bytes);
void nn_ctx_free(nn_ctx *ctx);
// At least n worker contexts of a context in inference (no tape; made once, kept until nn_ctx_free): each
// thread of a team runs a forward pass of its own rows in its own (its arena, pools and ring), with ctx's
// settings as they are at this call and, where ctx is frozen, its kept Winograd filter transforms (shared;
// made under a lock). GN_OK or an error.
int nn_ctx_workers(nn_ctx *ctx, int n);
// Forget the tape and every activation; keeps the arena's memory.
void nn_ctx_reset(nn_ctx *ctx);
// Random draws for `rows` rows of `per` values each: standard normals (p < 0), or inverted-dropout factors
// (0 with probability p, else 1 / (1 - p)). By row streams when ctx->draws.key is set, else sequentially
// from rng.
void nn_ctx_draw(nn_ctx *ctx, gn_rng *rng, int rows, size_t per, float p, float *out);

// Shape helpers.
size_t nn_numel(int ndim, const int *shape);
int nn_same_shape(const nn_tensor *a, const nn_tensor *b);
// "(4, 3, 16, 16)" into buf; returns buf.
const char *nn_shape_str(const nn_tensor *t, char *buf, size_t len);

// A new activation tensor in the arena (data uninitialised / zeroed).
nn_tensor *nn_tensor_new(nn_ctx *ctx, int ndim, const int *shape);
nn_tensor *nn_tensor_zeros(nn_ctx *ctx, int ndim, const int *shape);
// A tensor whose data lives in the context's ring, which holds one such tensor at a time: the op that
// makes it must give it a node with a recompute (nn_backward refills the ring before a node that reads
// it runs backward), and only the next op may read it in the forward pass. For activations that are
// cheap to recompute from stored ones (a batch norm + ReLU's output from its input): a step holds one
// buffer for all of them.
nn_tensor *nn_tensor_transient(nn_ctx *ctx, int ndim, const int *shape);
// A transient whose values are not computed at all (data NULL): its one reader takes them from its maker's
// input on the fly (a conv reading relu(batchnorm(x)) in its input transform, NN_ACT_DEFER), or, where it
// cannot, makes it an ordinary transient first (nn_tensor_undefer). nn_backward leaves it uncomputed.
nn_tensor *nn_tensor_deferred(nn_ctx *ctx, int ndim, const int *shape);
// A deferred tensor's values computed into the ring (an ordinary transient from then on); else nothing.
int nn_tensor_undefer(nn_ctx *ctx, nn_tensor *t);
// A tensor whose data is a block of the context's pool (shared with the gradients) instead of the arena:
// the op that makes it gives it a node with a recompute (when it records one), and the caller drops it
// (nn_tensor_drop) once its readers in the forward pass have run. nn_backward recomputes it before a node
// that reads or made it runs backward (its inputs first, if they were dropped too) and hands its block
// back after its maker's backward. For activations read by several ops but cheap to recompute from
// stored ones (a residual block's output from its conv outputs): a few blocks at a time instead of all.
nn_tensor *nn_tensor_pooled(nn_ctx *ctx, int ndim, const int *shape);
// Hands a pooled tensor's block back (its values are gone until backward recomputes them); anything
// else: nothing.
void nn_tensor_drop(nn_ctx *ctx, nn_tensor *t);
// A constant input (no grad) over the caller's data, not copied: it must stay unchanged while the step
// lasts (ops never write their inputs).
nn_tensor *nn_tensor_wrap(nn_ctx *ctx, int ndim, const int *shape, const float *data);
// A constant input (no grad) holding a copy of `data`.
nn_tensor *nn_tensor_from(nn_ctx *ctx, int ndim, const int *shape, const float *data);
// Convenience for literal shapes: NN_SHAPE(2, 3) -> 2, (int[]){2, 3}.
#define NN_SHAPE(...)                                                                                        \
    (int)(sizeof((int[]){__VA_ARGS__}) / sizeof(int)), (int[]) { __VA_ARGS__ }

// Gradient buffer of t for backward functions: allocated (zeroed) on first
// use; NULL when t does not require grad. Gradients of activations (node
// outputs) are released during nn_backward once consumed; those of leaves
// (inputs with requires_grad) stay readable until the next nn_ctx_reset.
float *nn_grad(nn_ctx *ctx, nn_tensor *t);

// Record a node whose output is `out` (called by ops). Returns the node (for
// saved values) or NULL if nothing needs a gradient / grad is disabled.
nn_node *nn_record(nn_ctx *ctx, nn_tensor *out, void (*bw)(nn_node *, nn_ctx *), int nin,
                   nn_tensor *const *in);
// True if any input requires grad and the tape is on.
int nn_needs_grad(const nn_ctx *ctx, int nin, nn_tensor *const *in);

// Reverse pass from a scalar loss (seed 1), or from a tensor whose .grad the
// caller has already filled (seed = 0).
int nn_backward(nn_ctx *ctx, nn_tensor *loss);

#endif
