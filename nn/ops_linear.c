// Dense products through nn_sgemm (cblas_sgemm; one thread for small products).
#include <string.h>

#include "gemm.h"
#include "ops.h"

static void matmul_bw(nn_node *nd, nn_ctx *c) {
    (void)c;
    nn_tensor *a = nd->in[0], *b = nd->in[1], *y = nd->out;
    int M = a->shape[0], K = a->shape[1], N = b->shape[1];
    if (a->grad) // ga (M,K) += gy (M,N) b^T
        nn_sgemm(0, 1, M, K, N, 1.0f, y->grad, N, b->data, N, 1.0f, a->grad, K);
    if (b->grad) // gb (K,N) += a^T gy
        nn_sgemm(1, 0, K, N, M, 1.0f, a->data, K, y->grad, N, 1.0f, b->grad, N);
}

nn_tensor *nn_matmul(nn_ctx *c, nn_tensor *a, nn_tensor *b) {
    if (!a || !b) return NULL;
    if (a->ndim != 2 || b->ndim != 2 || a->shape[1] != b->shape[0]) {
        char s1[96], s2[96];
        gn_err(GN_EINVAL, "matmul: shapes %s and %s do not chain", nn_shape_str(a, s1, sizeof s1),
               nn_shape_str(b, s2, sizeof s2));
        return NULL;
    }
    int M = a->shape[0], K = a->shape[1], N = b->shape[1];
    nn_tensor *y = nn_tensor_new(c, NN_SHAPE(M, N));
    if (!y) return NULL;
    nn_sgemm(0, 0, M, N, K, 1.0f, a->data, K, b->data, N, 0.0f, y->data, N);
    nn_tensor *in[2] = {a, b};
    nn_record(c, y, matmul_bw, 2, in);
    return y;
}

static void linear_bw(nn_node *nd, nn_ctx *c) {
    (void)c;
    nn_tensor *x = nd->in[0], *w = nd->in[1], *b = nd->nin > 2 ? nd->in[2] : NULL, *y = nd->out;
    int O = w->shape[0], Din = w->shape[1], B = (int)(x->n / (size_t)Din);
    if (x->grad) // gx (B,Din) += gy (B,O) w (O,Din)
        nn_sgemm(0, 0, B, Din, O, 1.0f, y->grad, O, w->data, Din, 1.0f, x->grad, Din);
    if (w->grad) // gw (O,Din) += gy^T x
        nn_sgemm(1, 0, O, Din, B, 1.0f, y->grad, O, x->data, Din, 1.0f, w->grad, Din);
    if (b && b->grad)
        for (int r = 0; r < B; r++)
            for (int o = 0; o < O; o++) b->grad[o] += y->grad[(size_t)r * O + o];
}

nn_tensor *nn_linear(nn_ctx *c, nn_tensor *x, nn_tensor *w, nn_tensor *b) {
    if (!x || !w) return NULL;
    if (w->ndim != 2 || x->ndim < 1 || x->shape[x->ndim - 1] != w->shape[1] ||
        (b && (b->n != (size_t)w->shape[0]))) {
        char s1[96], s2[96];
        gn_err(GN_EINVAL, "linear: input %s does not match weight %s%s", nn_shape_str(x, s1, sizeof s1),
               nn_shape_str(w, s2, sizeof s2), b && b->n != (size_t)w->shape[0] ? " (or its bias)" : "");
        return NULL;
    }
    int O = w->shape[0], Din = w->shape[1], B = (int)(x->n / (size_t)Din);
    int shape[NN_MAXDIM];
    memcpy(shape, x->shape, sizeof shape);
    shape[x->ndim - 1] = O;
    nn_tensor *y = nn_tensor_new(c, x->ndim, shape);
    if (!y) return NULL;
    if (b)
        for (int r = 0; r < B; r++) memcpy(y->data + (size_t)r * O, b->data, sizeof(float) * (size_t)O);
    nn_sgemm(0, 1, B, O, Din, 1.0f, x->data, Din, w->data, Din, b ? 1.0f : 0.0f, y->data, O);
    nn_tensor *in[3] = {x, w, b};
    nn_record(c, y, linear_bw, b ? 3 : 2, in);
    return y;
}
