// Reductions, shape manipulation and (log-)softmax.
#include <math.h>
#include <string.h>

#include "ops.h"

static int norm_axis(const nn_tensor *x, int axis) {
    if (axis < 0) axis += x->ndim;
    if (axis < 0 || axis >= x->ndim) {
        char s[96];
        gn_err(GN_EINVAL, "axis out of range for shape %s", nn_shape_str(x, s, sizeof s));
        return -1;
    }
    return axis;
}

// outer = prod(shape[:axis]), inner = prod(shape[axis+1:])
static void split_dims(const nn_tensor *x, int axis, long *outer, long *inner) {
    *outer = 1;
    *inner = 1;
    for (int i = 0; i < axis; i++) *outer *= x->shape[i];
    for (int i = axis + 1; i < x->ndim; i++) *inner *= x->shape[i];
}

// ---- sum / mean ----

typedef struct red {
    int nd;
    int shape[NN_MAXDIM];
    long so[NN_MAXDIM]; // output strides in the input index space (0 on reduced axes)
    float scale;
} red;

#define RED_LOOP(r, n, BODY)                                                                                 \
    do {                                                                                                     \
        int idx_[NN_MAXDIM] = {0};                                                                           \
        long io = 0;                                                                                         \
        for (size_t i = 0; i < (n); i++) {                                                                   \
            BODY;                                                                                            \
            for (int d = (r)->nd - 1; d >= 0; d--) {                                                         \
                io += (r)->so[d];                                                                            \
                if (++idx_[d] < (r)->shape[d]) break;                                                        \
                io -= (r)->so[d] * (r)->shape[d];                                                            \
                idx_[d] = 0;                                                                                 \
            }                                                                                                \
        }                                                                                                    \
    } while (0)

static void reduce_bw(nn_node *nd, nn_ctx *c) {
    (void)c;
    nn_tensor *x = nd->in[0];
    const red *r = nd->saved;
    const float *gy = nd->out->grad;
    float *gx = x->grad;
    float s = r->scale;
    RED_LOOP(r, x->n, gx[i] += gy[io] * s);
}

static nn_tensor *reduce(nn_ctx *c, nn_tensor *x, unsigned mask, int keepdim, int mean) {
    if (!x) return NULL;
    red *r = nn_arena_alloc(&c->arena, sizeof *r);
    if (!r) return NULL;
    int oshape[NN_MAXDIM], ond = 0;
    long count = 1, stride = 1;
    r->nd = x->ndim;
    memcpy(r->shape, x->shape, sizeof r->shape);
    for (int d = x->ndim - 1; d >= 0; d--) {
        if (mask & (1u << d)) {
            r->so[d] = 0;
            count *= x->shape[d];
        } else {
            r->so[d] = stride;
            stride *= x->shape[d];
        }
    }
    for (int d = 0; d < x->ndim; d++) {
        if (!(mask & (1u << d)))
            oshape[ond++] = x->shape[d];
        else if (keepdim)
            oshape[ond++] = 1;
    }
    nn_tensor *y = nn_tensor_zeros(c, ond, oshape);
    if (!y) return NULL;
    r->scale = mean ? 1.0f / (float)count : 1.0f;
    float *yd = y->data;
    const float *xd = x->data;
    RED_LOOP(r, x->n, yd[io] += xd[i]);
    if (mean)
        for (size_t i = 0; i < y->n; i++) yd[i] *= r->scale;
    nn_node *nd = nn_record(c, y, reduce_bw, 1, &x);
    if (nd) nd->saved = r;
    return y;
}

nn_tensor *nn_sum(nn_ctx *c, nn_tensor *x, unsigned m, int keepdim) { return reduce(c, x, m, keepdim, 0); }
nn_tensor *nn_mean(nn_ctx *c, nn_tensor *x, unsigned m, int keepdim) { return reduce(c, x, m, keepdim, 1); }

// ---- reshape: shares the data, copies the gradient back ----

static void add_bw(nn_node *nd, nn_ctx *c) {
    (void)c;
    float *gx = nd->in[0]->grad;
    const float *gy = nd->out->grad;
    for (size_t i = 0; i < nd->out->n; i++) gx[i] += gy[i];
}

nn_tensor *nn_reshape(nn_ctx *c, nn_tensor *x, int ndim, const int *shape) {
    if (!x) return NULL;
    if (ndim < 0 || ndim > NN_MAXDIM) {
        gn_err(GN_EINVAL, "reshape: rank %d", ndim);
        return NULL;
    }
    int s[NN_MAXDIM], infer = -1;
    size_t known = 1;
    for (int i = 0; i < ndim; i++) {
        s[i] = shape[i];
        if (s[i] == -1) {
            if (infer >= 0) {
                gn_err(GN_EINVAL, "reshape: more than one -1");
                return NULL;
            }
            infer = i;
        } else if (s[i] <= 0) {
            gn_err(GN_EINVAL, "reshape: dimension %d is %d", i, s[i]);
            return NULL;
        } else
            known *= (size_t)s[i];
    }
    if (infer >= 0) {
        if (known == 0 || x->n % known) goto bad;
        s[infer] = (int)(x->n / known);
    }
    if (nn_numel(ndim, s) != x->n) goto bad;
    nn_tensor *y = nn_arena_alloc(&c->arena, sizeof *y);
    if (!y) return NULL;
    memset(y, 0, sizeof *y);
    y->ndim = ndim;
    memcpy(y->shape, s, sizeof(int) * (size_t)ndim);
    y->n = x->n;
    y->data = x->data;
    nn_record(c, y, add_bw, 1, &x);
    return y;
bad: {
    char b[96];
    gn_err(GN_EINVAL, "reshape: %zu elements of %s do not fit the new shape", x->n,
           nn_shape_str(x, b, sizeof b));
    return NULL;
}
}

// ---- concat / slice ----

static void concat_bw(nn_node *nd, nn_ctx *c) {
    (void)c;
    nn_tensor *y = nd->out;
    int axis = nd->ia[0];
    long outer, inner_y;
    split_dims(y, axis, &outer, &inner_y);
    inner_y *= y->shape[axis];
    long off = 0;
    for (int k = 0; k < nd->nin; k++) {
        nn_tensor *x = nd->in[k];
        long ix = (long)x->n / outer;
        if (x->grad)
            for (long o = 0; o < outer; o++) {
                const float *src = y->grad + o * inner_y + off;
                float *dst = x->grad + o * ix;
                for (long j = 0; j < ix; j++) dst[j] += src[j];
            }
        off += ix;
    }
}

// y = the inputs side by side along `axis`
static void concat_copy(nn_tensor *y, int n, nn_tensor *const *xs, int axis) {
    long outer, inner_y;
    split_dims(y, axis, &outer, &inner_y);
    inner_y *= y->shape[axis];
    long off = 0;
    for (int k = 0; k < n; k++) {
        long ix = (long)xs[k]->n / outer;
        for (long o = 0; o < outer; o++)
            memcpy(y->data + o * inner_y + off, xs[k]->data + o * ix, sizeof(float) * (size_t)ix);
        off += ix;
    }
}

static void concat_recompute(nn_node *nd, nn_ctx *c) {
    (void)c;
    concat_copy(nd->out, nd->nin, nd->in, nd->ia[0]);
}

static nn_tensor *concat_impl(nn_ctx *c, int n, nn_tensor *const *xs, int axis, int pooled) {
    if (n <= 0) {
        gn_err(GN_EINVAL, "concat: no inputs");
        return NULL;
    }
    for (int k = 0; k < n; k++)
        if (!xs[k]) return NULL;
    if ((axis = norm_axis(xs[0], axis)) < 0) return NULL;
    int shape[NN_MAXDIM];
    memcpy(shape, xs[0]->shape, sizeof shape);
    shape[axis] = 0;
    for (int k = 0; k < n; k++) {
        int ok = xs[k]->ndim == xs[0]->ndim;
        for (int d = 0; ok && d < xs[0]->ndim; d++)
            if (d != axis && xs[k]->shape[d] != xs[0]->shape[d]) ok = 0;
        if (!ok) {
            char s1[96], s2[96];
            gn_err(GN_EINVAL, "concat: shapes %s and %s differ off axis %d",
                   nn_shape_str(xs[0], s1, sizeof s1), nn_shape_str(xs[k], s2, sizeof s2), axis);
            return NULL;
        }
        shape[axis] += xs[k]->shape[axis];
    }
    pooled = pooled && !c->tune.no_pool && (!c->grad_enabled || nn_needs_grad(c, n, xs));
    nn_tensor *y = pooled ? nn_tensor_pooled(c, xs[0]->ndim, shape) : nn_tensor_new(c, xs[0]->ndim, shape);
    if (!y) return NULL;
    concat_copy(y, n, xs, axis);
    nn_node *nd = nn_record(c, y, concat_bw, n, xs);
    if (nd) nd->ia[0] = axis;
    if (nd && pooled) y->remake = nd, nd->recompute = concat_recompute;
    return y;
}

nn_tensor *nn_concat(nn_ctx *c, int n, nn_tensor *const *xs, int axis) {
    return concat_impl(c, n, xs, axis, 0);
}

nn_tensor *nn_concat_pooled(nn_ctx *c, int n, nn_tensor *const *xs, int axis) {
    return concat_impl(c, n, xs, axis, 1);
}

static void slice_bw(nn_node *nd, nn_ctx *c) {
    (void)c;
    nn_tensor *x = nd->in[0], *y = nd->out;
    int axis = nd->ia[0], start = nd->ia[1];
    long outer, inner;
    split_dims(x, axis, &outer, &inner);
    long ix = inner * x->shape[axis], iy = inner * y->shape[axis];
    for (long o = 0; o < outer; o++) {
        float *dst = x->grad + o * ix + (long)start * inner;
        const float *src = y->grad + o * iy;
        for (long j = 0; j < iy; j++) dst[j] += src[j];
    }
}

nn_tensor *nn_slice(nn_ctx *c, nn_tensor *x, int axis, int start, int end) {
    if (!x) return NULL;
    if ((axis = norm_axis(x, axis)) < 0) return NULL;
    if (start < 0 || end > x->shape[axis] || start >= end) {
        gn_err(GN_EINVAL, "slice [%d, %d) outside axis %d of size %d", start, end, axis, x->shape[axis]);
        return NULL;
    }
    int shape[NN_MAXDIM];
    memcpy(shape, x->shape, sizeof shape);
    shape[axis] = end - start;
    nn_tensor *y = nn_tensor_new(c, x->ndim, shape);
    if (!y) return NULL;
    long outer, inner;
    split_dims(x, axis, &outer, &inner);
    long ix = inner * x->shape[axis], iy = inner * shape[axis];
    for (long o = 0; o < outer; o++)
        memcpy(y->data + o * iy, x->data + o * ix + (long)start * inner, sizeof(float) * (size_t)iy);
    nn_node *nd = nn_record(c, y, slice_bw, 1, &x);
    if (nd) {
        nd->ia[0] = axis;
        nd->ia[1] = start;
    }
    return y;
}

int nn_split(nn_ctx *c, nn_tensor *x, int axis, int n, const int *sizes, nn_tensor **out) {
    if (!x) return GN_EINVAL;
    int a = norm_axis(x, axis);
    if (a < 0) return GN_EINVAL;
    int total = 0;
    for (int k = 0; k < n; k++) total += sizes[k];
    if (total != x->shape[a])
        return gn_err(GN_EINVAL, "split: sizes add to %d but axis %d has %d", total, a, x->shape[a]);
    int start = 0;
    for (int k = 0; k < n; k++) {
        out[k] = nn_slice(c, x, a, start, start + sizes[k]);
        if (!out[k]) return GN_EINVAL;
        start += sizes[k];
    }
    return GN_OK;
}

// ---- transpose of the last two axes ----

static void transpose_mat(const float *src, float *dst, int r, int cl, int accumulate) {
    for (int i = 0; i < r; i++)
        for (int j = 0; j < cl; j++) {
            if (accumulate)
                dst[(size_t)j * r + i] += src[(size_t)i * cl + j];
            else
                dst[(size_t)j * r + i] = src[(size_t)i * cl + j];
        }
}

static void transpose_bw(nn_node *nd, nn_ctx *c) {
    (void)c;
    nn_tensor *x = nd->in[0], *y = nd->out;
    int r = y->shape[y->ndim - 2], cl = y->shape[y->ndim - 1];
    size_t m = (size_t)r * cl, nb = y->n / m;
    for (size_t b = 0; b < nb; b++) transpose_mat(y->grad + b * m, x->grad + b * m, r, cl, 1);
}

nn_tensor *nn_transpose(nn_ctx *c, nn_tensor *x) {
    if (!x) return NULL;
    if (x->ndim < 2) {
        gn_err(GN_EINVAL, "transpose needs at least 2 axes, got %d", x->ndim);
        return NULL;
    }
    int shape[NN_MAXDIM];
    memcpy(shape, x->shape, sizeof shape);
    int r = x->shape[x->ndim - 2], cl = x->shape[x->ndim - 1];
    shape[x->ndim - 2] = cl;
    shape[x->ndim - 1] = r;
    nn_tensor *y = nn_tensor_new(c, x->ndim, shape);
    if (!y) return NULL;
    size_t m = (size_t)r * cl, nb = x->n / m;
    for (size_t b = 0; b < nb; b++) transpose_mat(x->data + b * m, y->data + b * m, r, cl, 0);
    nn_record(c, y, transpose_bw, 1, &x);
    return y;
}

// ---- softmax family ----

// Backward of both forms along the axis, with y the output:
//   log-softmax: gx = gy - softmax * sum(gy);  softmax: gx = y * (gy - sum(gy * y)).
static void softmax_bw(nn_node *nd, nn_ctx *c) {
    (void)c;
    nn_tensor *x = nd->in[0], *y = nd->out;
    long outer, inner;
    int axis = nd->ia[0], logform = nd->ia[1], d = x->shape[axis];
    split_dims(x, axis, &outer, &inner);
    for (long o = 0; o < outer; o++)
        for (long j = 0; j < inner; j++) {
            const float *gy = y->grad + o * d * inner + j, *yd = y->data + o * d * inner + j;
            float *gx = x->grad + o * d * inner + j;
            double s = 0;
            for (int k = 0; k < d; k++) s += logform ? gy[k * inner] : gy[k * inner] * yd[k * inner];
            for (int k = 0; k < d; k++)
                gx[k * inner] += logform ? gy[k * inner] - expf(yd[k * inner]) * (float)s
                                         : yd[k * inner] * (gy[k * inner] - (float)s);
        }
}

static nn_tensor *softmax_impl(nn_ctx *c, nn_tensor *x, int axis, int logform) {
    if (!x) return NULL;
    if ((axis = norm_axis(x, axis)) < 0) return NULL;
    nn_tensor *y = nn_tensor_new(c, x->ndim, x->shape);
    if (!y) return NULL;
    long outer, inner;
    int d = x->shape[axis];
    split_dims(x, axis, &outer, &inner);
    for (long o = 0; o < outer; o++)
        for (long j = 0; j < inner; j++) {
            const float *xd = x->data + o * d * inner + j;
            float *yd = y->data + o * d * inner + j;
            float m = xd[0];
            for (int k = 1; k < d; k++)
                if (xd[k * inner] > m) m = xd[k * inner];
            double s = 0;
            for (int k = 0; k < d; k++) s += exp((double)(xd[k * inner] - m));
            float lse = m + (float)log(s);
            for (int k = 0; k < d; k++)
                yd[k * inner] = logform ? xd[k * inner] - lse : expf(xd[k * inner] - lse);
        }
    nn_node *nd = nn_record(c, y, softmax_bw, 1, &x);
    if (nd) {
        nd->ia[0] = axis;
        nd->ia[1] = logform;
    }
    return y;
}

nn_tensor *nn_log_softmax(nn_ctx *c, nn_tensor *x, int axis) { return softmax_impl(c, x, axis, 1); }
nn_tensor *nn_softmax(nn_ctx *c, nn_tensor *x, int axis) { return softmax_impl(c, x, axis, 0); }
