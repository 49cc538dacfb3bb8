#include "tensor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define ARENA_ALIGN 64

// Large buffers (the arena's blocks, big gradients) on 2 MiB pages where the
// kernel grants them: the Winograd transforms write 16-36 planes a few hundred
// KiB apart per tile, and with 4 KiB pages every tile's stores walk as many
// pages (measured: 6.6 % of data TLB lookups missed both TLB levels).
#define HUGE_PAGE ((size_t)2 << 20)
static void *big_alloc(size_t bytes) {
    if (bytes < 2 * HUGE_PAGE)
        return aligned_alloc(ARENA_ALIGN, (bytes + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN);
    size_t n = (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
    void *p = aligned_alloc(HUGE_PAGE, n);
#ifdef MADV_HUGEPAGE
    if (p) madvise(p, n, MADV_HUGEPAGE); // advice only: 4 KiB pages if refused
#endif
    return p;
}

static nn_arena_block *block_new(size_t cap) {
    nn_arena_block *b = gn_malloc(sizeof *b);
    if (!b) return NULL;
    b->mem = big_alloc(cap);
    if (!b->mem) {
        free(b);
        gn_err(GN_ENOMEM, "out of memory: activation arena of %zu MiB", cap >> 20);
        return NULL;
    }
    b->cap = cap;
    b->used = 0;
    b->next = NULL;
    return b;
}

int nn_arena_init(nn_arena *a, size_t cap) {
    memset(a, 0, sizeof *a);
    if (cap < (1u << 16)) cap = 1u << 16;
    a->head = a->cur = block_new(cap);
    if (!a->head) return GN_ENOMEM;
    a->total_cap = cap;
    return GN_OK;
}

// The blocks are kept from step to step and filled in order: after the first steps no allocation, and
// the pages the kernel has zeroed once stay mapped (merging them into one new block zeroed them again).
void *nn_arena_alloc(nn_arena *a, size_t bytes) {
    bytes = (bytes + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
    if (!bytes) bytes = ARENA_ALIGN;
    nn_arena_block *b = a->cur;
    while (b->used + bytes > b->cap && b->next) b = b->next; // the next empty block that holds it
    if (b->used + bytes > b->cap) {
        size_t cap = a->total_cap > bytes ? a->total_cap : bytes; // grow geometrically
        nn_arena_block *nb = block_new(cap);
        if (!nb) return NULL;
        b->next = nb, b = nb;
        a->total_cap += cap;
    }
    a->cur = b;
    void *p = b->mem + b->used;
    b->used += bytes;
    a->used += bytes;
    if (a->used > a->peak) a->peak = a->used;
    return p;
}

void nn_arena_reset(nn_arena *a) {
    for (nn_arena_block *b = a->head; b; b = b->next) b->used = 0;
    a->cur = a->head;
    a->used = 0;
}

int nn_arena_owns(const nn_arena *a, const void *p) {
    const unsigned char *q = p;
    for (const nn_arena_block *b = a->head; b; b = b->next)
        if (q >= b->mem && q < b->mem + b->cap) return 1;
    return 0;
}

nn_arena_mark nn_arena_get_mark(const nn_arena *a) {
    return (nn_arena_mark){a->cur, a->cur ? a->cur->used : 0, a->used};
}

void nn_arena_release(nn_arena *a, nn_arena_mark m) {
    if (!m.block) return;
    for (nn_arena_block *b = m.block->next; b && b->used; b = b->next) b->used = 0; // blocks begun since
    m.block->used = m.used;
    a->cur = m.block;
    a->used = m.total;
}

void nn_arena_free(nn_arena *a) {
    nn_arena_block *b = a->head;
    while (b) {
        nn_arena_block *n = b->next;
        free(b->mem);
        free(b);
        b = n;
    }
    a->head = a->cur = NULL;
    a->total_cap = 0;
    a->used = 0;
}

int nn_arena_fit(nn_arena *a) {
    if (!a->head || !a->head->next) return GN_OK;
    size_t cap = (a->peak + a->peak / 16 + (1u << 20)) & ~(size_t)((1u << 20) - 1);
    nn_arena_block *b = block_new(cap);
    if (!b) return GN_ENOMEM;
    size_t peak = a->peak;
    nn_arena_free(a);
    a->head = a->cur = b, a->total_cap = cap, a->peak = peak;
    return GN_OK;
}

nn_tune nn_tune_default(void) { return (nn_tune){0, -1, -1, -1, -1, 0, 0, -1, -1, -1, -1}; }

int nn_ctx_init(nn_ctx *ctx, size_t arena_bytes) {
    memset(ctx, 0, sizeof *ctx);
    ctx->grad_enabled = 1;
    ctx->training = 1;
    ctx->keep_im2col = 0;
    ctx->winograd = 1;
    ctx->tune = nn_tune_default();
    gn_rng_seed(&ctx->dropout_rng, 0, GN_STREAM_DROPOUT);
    return nn_arena_init(&ctx->arena, arena_bytes);
}

int nn_ctx_init_inference(nn_ctx *ctx, size_t arena_bytes) {
    int rc = nn_ctx_init(ctx, arena_bytes);
    ctx->training = 0, ctx->grad_enabled = 0, ctx->frozen = 1;
    return rc;
}

static float draw_one(gn_rng *r, float p) {
    if (p < 0) return (float)gn_rng_normal(r);
    return gn_rng_uniform(r) < p ? 0.0f : 1.0f / (1.0f - p);
}

void nn_ctx_draw(nn_ctx *ctx, gn_rng *rng, int rows, size_t per, float p, float *out) {
    if (!ctx->draws.key) { // sequential: the stream's order is part of reproducibility
        for (size_t i = 0; i < (size_t)rows * per; i++) out[i] = draw_one(rng, p);
        return;
    }
    uint64_t seed = ctx->draws.key + 0x9e3779b97f4a7c15ull * ++ctx->draws.call;
    int nr = ctx->draws.n_rows;
    for (int i = 0; i < rows; i++) {
        int64_t g = ctx->draws.row0 +
                    (ctx->draws.rows ? ctx->draws.rows[i % nr] + (int64_t)(i / nr) * ctx->draws.span : i);
        gn_rng r;
        gn_rng_seed(&r, seed, (uint64_t)g);
        for (size_t j = 0; j < per; j++) out[(size_t)i * per + j] = draw_one(&r, p);
    }
}

int nn_ctx_workers(nn_ctx *ctx, int n) {
    if (n > ctx->n_workers) {
        nn_ctx *w = gn_realloc(ctx->workers, sizeof *w * (size_t)n);
        if (!w) return GN_ENOMEM;
        ctx->workers = w;
        for (; ctx->n_workers < n; ctx->n_workers++)
            if (nn_ctx_init_inference(&w[ctx->n_workers], ctx->arena.total_cap / n > (16u << 20)
                                                               ? ctx->arena.total_cap / n : 16u << 20))
                return GN_ENOMEM;
    }
    for (int i = 0; i < ctx->n_workers; i++) { // ctx's settings as they are now
        nn_ctx *k = &ctx->workers[i];
        k->keep_im2col = ctx->keep_im2col, k->winograd = ctx->winograd, k->tune = ctx->tune;
        k->frozen = ctx->frozen, k->owner = ctx->owner ? ctx->owner : ctx;
        k->training = ctx->training, k->grad_enabled = ctx->grad_enabled, k->team = NULL; // (nn_team_step's)
    }
    return GN_OK;
}

void nn_ctx_free(nn_ctx *ctx) {
    for (int i = 0; i < ctx->n_workers; i++) nn_ctx_free(&ctx->workers[i]);
    free(ctx->workers);
    ctx->workers = NULL, ctx->n_workers = 0;
    free(ctx->team_own), free(ctx->grad_slab);
    ctx->team_own = NULL, ctx->grad_slab = NULL, ctx->grad_n = 0;
    nn_arena_free(&ctx->arena);
    for (nn_wcache *w = ctx->wcache, *n; w; w = n) n = w->next, free(w->U), free(w);
    ctx->wcache = NULL;
    for (nn_gblock *b = ctx->gpool, *n; b; b = n) {
        n = b->next;
        free(b->mem);
        free(b);
    }
    ctx->gpool = NULL;
    ctx->gpool_bytes = 0;
    free(ctx->ring);
    ctx->ring = NULL, ctx->ring_cap = 0, ctx->ring_owner = NULL;
}

void nn_ctx_reset(nn_ctx *ctx) {
    nn_arena_reset(&ctx->arena);
    for (nn_gblock *b = ctx->gpool; b; b = b->next) b->in_use = 0;
    ctx->tape = NULL;
    ctx->n_nodes = 0;
    ctx->ring_owner = NULL;
}

size_t nn_numel(int ndim, const int *shape) {
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    return n;
}

int nn_same_shape(const nn_tensor *a, const nn_tensor *b) {
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return 1;
}

const char *nn_shape_str(const nn_tensor *t, char *buf, size_t len) {
    size_t o = (size_t)snprintf(buf, len, "(");
    for (int i = 0; i < t->ndim && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, i ? ", %d" : "%d", t->shape[i]);
    if (o < len) snprintf(buf + o, len - o, ")");
    return buf;
}

static nn_tensor *tensor_head(nn_ctx *ctx, int ndim, const int *shape) {
    if (ndim < 0 || ndim > NN_MAXDIM) {
        gn_err(GN_EINVAL, "tensor rank %d outside 0..%d", ndim, NN_MAXDIM);
        return NULL;
    }
    for (int i = 0; i < ndim; i++)
        if (shape[i] <= 0) {
            gn_err(GN_EINVAL, "tensor dimension %d is %d (must be positive)", i, shape[i]);
            return NULL;
        }
    nn_tensor *t = nn_arena_alloc(&ctx->arena, sizeof *t);
    if (!t) return NULL;
    memset(t, 0, sizeof *t);
    t->ndim = ndim;
    if (ndim) memcpy(t->shape, shape, sizeof(int) * (size_t)ndim); // rank 0: shape may be NULL
    t->n = nn_numel(ndim, shape);
    return t;
}

nn_tensor *nn_tensor_new(nn_ctx *ctx, int ndim, const int *shape) {
    nn_tensor *t = tensor_head(ctx, ndim, shape);
    if (t) t->data = nn_arena_alloc(&ctx->arena, t->n * sizeof(float));
    return t && t->data ? t : NULL;
}

// The ring as t's data (grown to t's size; its previous owner's values are gone).
static float *ring_take(nn_ctx *ctx, nn_tensor *t) {
    if (ctx->ring_cap < t->n) {
        free(ctx->ring);
        ctx->ring_cap = 0, ctx->ring_owner = NULL;
        if (!(ctx->ring = big_alloc(t->n * sizeof(float)))) {
            gn_err(GN_ENOMEM, "out of memory for a %zu-byte transient activation", t->n * sizeof(float));
            return NULL;
        }
        ctx->ring_cap = t->n;
    }
    ctx->ring_owner = t;
    return t->data = ctx->ring;
}

nn_tensor *nn_tensor_wrap(nn_ctx *ctx, int ndim, const int *shape, const float *data) {
    nn_tensor *t = tensor_head(ctx, ndim, shape);
    if (t) t->data = (float *)data;
    return t;
}

nn_tensor *nn_tensor_transient(nn_ctx *ctx, int ndim, const int *shape) {
    nn_tensor *t = tensor_head(ctx, ndim, shape);
    return t && ring_take(ctx, t) ? t : NULL;
}

nn_tensor *nn_tensor_deferred(nn_ctx *ctx, int ndim, const int *shape) {
    nn_tensor *t = tensor_head(ctx, ndim, shape);
    if (t) t->deferred = 1;
    return t;
}

int nn_tensor_undefer(nn_ctx *ctx, nn_tensor *t) {
    if (!t->deferred || t->data) return GN_OK;
    if (!t->remake) return gn_err(GN_EINVAL, "a deferred activation has no op to compute it");
    if (!ring_take(ctx, t)) return GN_ENOMEM;
    t->deferred = 0;
    t->remake->recompute(t->remake, ctx);
    return GN_OK;
}

static float *gpool_get(nn_ctx *ctx, size_t bytes);
static void gpool_put(nn_ctx *ctx, float *mem);

nn_tensor *nn_tensor_pooled(nn_ctx *ctx, int ndim, const int *shape) {
    nn_tensor *t = tensor_head(ctx, ndim, shape);
    if (t) t->data = gpool_get(ctx, t->n * sizeof(float)), t->data_pooled = 1;
    return t && t->data ? t : NULL;
}

void nn_tensor_drop(nn_ctx *ctx, nn_tensor *t) {
    if (!t || !t->data_pooled || !t->data) return;
    gpool_put(ctx, t->data);
    t->data = NULL;
}

// A dropped pooled tensor's values back in a pool block: its maker's dropped inputs first.
static int repool(nn_ctx *ctx, nn_tensor *t) {
    if (t->data) return GN_OK;
    nn_node *p = t->remake;
    if (!p) return gn_err(GN_EINVAL, "backward: a dropped activation has no op to recompute it");
    for (int i = 0; i < p->nin; i++)
        if (p->in[i]->data_pooled && repool(ctx, p->in[i])) return GN_ENOMEM;
    if (!(t->data = gpool_get(ctx, t->n * sizeof(float)))) return GN_ENOMEM;
    p->recompute(p, ctx);
    return GN_OK;
}

// Before node nd runs backward: its dropped output and inputs recomputed; its transient output or input
// back in the ring (one per node; deferred ones stay uncomputed: their readers take them from x).
static int materialise(nn_ctx *ctx, nn_node *nd) {
    if (nd->out->data_pooled && repool(ctx, nd->out)) return GN_ENOMEM;
    for (int i = 0; i < nd->nin; i++)
        if (nd->in[i]->data_pooled && repool(ctx, nd->in[i])) return GN_ENOMEM;
    nn_tensor *t = nd->out->remake && !nd->out->data_pooled && !nd->out->deferred ? nd->out : NULL;
    for (int i = 0; i < nd->nin; i++)
        if (nd->in[i]->remake && !nd->in[i]->data_pooled && !nd->in[i]->deferred && nd->in[i] != t) {
            if (t) return gn_err(GN_EINVAL, "backward: a node reads two transient tensors (one ring)");
            t = nd->in[i];
        }
    if (!t || ctx->ring_owner == t) return GN_OK;
    if (!ring_take(ctx, t)) return GN_ENOMEM;
    t->remake->recompute(t->remake, ctx);
    return GN_OK;
}

nn_tensor *nn_tensor_zeros(nn_ctx *ctx, int ndim, const int *shape) {
    nn_tensor *t = nn_tensor_new(ctx, ndim, shape);
    if (t) memset(t->data, 0, t->n * sizeof(float));
    return t;
}

nn_tensor *nn_tensor_from(nn_ctx *ctx, int ndim, const int *shape, const float *data) {
    nn_tensor *t = nn_tensor_new(ctx, ndim, shape);
    if (t) memcpy(t->data, data, t->n * sizeof(float));
    return t;
}

// the smallest free block of at least `bytes` and at most 8 times as large (exact sizes recur: a network's
// layers repeat their shapes; a far larger block is left for a larger gradient); else the largest smaller
// free block grown to `bytes` (blocks made for small gradients early in backward do not stay beside the
// larger ones made later); else a new one. The image S-space model's step peaks at 8,269 MiB (8,363 with
// new blocks only, 8,644 growing without the limit); the benchmark ResNet holds 21.2 MiB of blocks.
static float *gpool_get(nn_ctx *ctx, size_t bytes) {
    nn_gblock *best = NULL, *grow = NULL;
    size_t al = (bytes + 63) / 64 * 64;
    for (nn_gblock *b = ctx->gpool; b; b = b->next)
        if (!b->in_use && b->bytes >= bytes && b->bytes / 8 <= bytes && (!best || b->bytes < best->bytes))
            best = b;
        else if (!b->in_use && b->bytes < bytes && (!grow || b->bytes > grow->bytes))
            grow = b;
    if (!best && grow) {
        float *mem = big_alloc(al ? al : 64);
        if (mem) {
            free(grow->mem);
            ctx->gpool_bytes += al - grow->bytes;
            grow->mem = mem, grow->bytes = al, best = grow;
        }
    }
    if (!best) {
        best = calloc(1, sizeof *best);
        if (best) best->mem = big_alloc(al ? al : 64);
        if (!best || !best->mem) {
            free(best);
            gn_err(GN_ENOMEM, "out of memory for a %zu-byte gradient (%zu bytes of gradients already held)",
                   bytes, ctx->gpool_bytes);
            return NULL;
        }
        best->bytes = al;
        best->next = ctx->gpool;
        ctx->gpool = best;
        ctx->gpool_bytes += al;
    }
    best->in_use = 1;
    return best->mem;
}

static void gpool_put(nn_ctx *ctx, float *mem) {
    for (nn_gblock *b = ctx->gpool; b; b = b->next)
        if (b->mem == mem) {
            b->in_use = 0;
            return;
        }
}

// n floats at p set to 0, by the threads in blocks of 64 Ki where there are many (a gradient buffer of the
// multi-branch net's first stage is 2 Mi floats: one thread's memset left the other waiting)
static void zero_floats(float *p, size_t n) {
    long nb = (long)((n + 65535) / 65536);
#pragma omp parallel for schedule(static) if (n > 4 * (size_t)NN_PAR_MIN)
    for (long b = 0; b < nb; b++) {
        size_t i = (size_t)b * 65536, m = n - i < 65536 ? n - i : 65536;
        memset(p + i, 0, m * sizeof(float));
    }
}

float *nn_grad(nn_ctx *ctx, nn_tensor *t) {
    if (!t->requires_grad) return NULL;
    if (!t->grad) {
        t->grad = gpool_get(ctx, t->n * sizeof(float));
        if (t->grad) zero_floats(t->grad, t->n);
        t->grad_pooled = t->grad != NULL;
    }
    return t->grad;
}

int nn_needs_grad(const nn_ctx *ctx, int nin, nn_tensor *const *in) {
    if (!ctx->grad_enabled) return 0;
    for (int i = 0; i < nin; i++)
        if (in[i] && in[i]->requires_grad) return 1;
    return 0;
}

nn_node *nn_record(nn_ctx *ctx, nn_tensor *out, void (*bw)(nn_node *, nn_ctx *), int nin,
                   nn_tensor *const *in) {
    if (!nn_needs_grad(ctx, nin, in)) return NULL;
    nn_node *nd = nn_arena_alloc(&ctx->arena, sizeof *nd);
    nn_tensor **ins = nn_arena_alloc(&ctx->arena, sizeof(nn_tensor *) * (size_t)nin);
    if (!nd || !ins) return NULL;
    memset(nd, 0, sizeof *nd);
    memcpy(ins, in, sizeof(nn_tensor *) * (size_t)nin);
    for (int i = 0; ctx->grad_slab && i < nin; i++) // a worker's parameters: their gradients in its slab
        if (in[i]->is_param && in[i]->grad >= ctx->grad_base && in[i]->grad < ctx->grad_base + ctx->grad_n) {
            nn_tensor *t = nn_arena_alloc(&ctx->arena, sizeof *t);
            if (!t) return NULL;
            *t = *in[i], t->grad = ctx->grad_slab + (in[i]->grad - ctx->grad_base), ins[i] = t;
        }
    nd->backward = bw;
    nd->out = out;
    nd->in = ins;
    nd->nin = nin;
    nd->prev = ctx->tape;
    ctx->tape = nd;
    ctx->n_nodes++;
    out->requires_grad = 1;
    return nd;
}

// out's pooled gradient becomes in[0]'s when the op allows it and in[0] has none yet (and is no other input).
static void steal_grad(const nn_ctx *ctx, nn_node *nd) {
    nn_tensor *x = nd->in[0], *y = nd->out;
    nd->grad_aliased = 0;
    if (!nd->grad_steal || ctx->tune.no_steal || !y->grad_pooled || !x->requires_grad || x->grad ||
        x->n != y->n)
        return;
    for (int i = 1; i < nd->nin; i++)
        if (nd->in[i] == x) return;
    x->grad = y->grad, x->grad_pooled = 1, y->grad_pooled = 0, nd->grad_aliased = 1;
}

int nn_backward(nn_ctx *ctx, nn_tensor *loss) {
    if (!loss) return gn_err(GN_EINVAL, "backward: no loss tensor");
    if (!loss->requires_grad) return gn_err(GN_EINVAL, "backward: the loss does not depend on any parameter");
    if (!loss->grad) {
        if (loss->n != 1) return gn_err(GN_EINVAL, "backward: the loss must be a scalar (or have .grad set)");
        if (!nn_grad(ctx, loss)) return GN_ENOMEM;
        loss->grad[0] = 1.0f;
    }
    for (nn_node *nd = ctx->tape; nd; nd = nd->prev) {
        if (!nd->out->grad) continue; // not on a path to the loss
        steal_grad(ctx, nd);
        for (int i = 0; i < nd->nin; i++)
            if (nd->in[i]->requires_grad && !nn_grad(ctx, nd->in[i])) return GN_ENOMEM;
        int rc = materialise(ctx, nd);
        if (rc) return rc;
        nd->backward(nd, ctx);
        if (nd->grad_aliased) nd->out->grad = NULL; // in[0]'s now
        nn_tensor_drop(ctx, nd->out); // read by its consumers and its maker: no one reads it again
        if (nd->out->grad_pooled) { // every consumer ran before its producer: no one reads it again
            gpool_put(ctx, nd->out->grad);
            nd->out->grad = NULL;
            nd->out->grad_pooled = 0;
        }
    }
    return GN_OK;
}
