#include "store.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SLAB_ALIGN 16 // floats: each view starts on a 64-byte boundary

void nn_store_init(nn_store *s) { memset(s, 0, sizeof *s); }

static void free_entries(nn_entry **e, int n) {
    for (int i = 0; i < n; i++) {
        free((char *)e[i]->t.name);
        free(e[i]);
    }
    free(e);
}

void nn_store_free(nn_store *s) {
    free_entries(s->params, s->np);
    free_entries(s->buffers, s->nb);
    free(s->data);
    free(s->grad);
    free(s->bufdata);
    memset(s, 0, sizeof *s);
}

nn_tensor *nn_store_find(nn_store *s, const char *name) {
    for (int i = 0; i < s->np; i++)
        if (!strcmp(s->params[i]->t.name, name)) return &s->params[i]->t;
    for (int i = 0; i < s->nb; i++)
        if (!strcmp(s->buffers[i]->t.name, name)) return &s->buffers[i]->t;
    return NULL;
}

static nn_tensor *add(nn_store *s, int is_param, const char *name, int ndim, const int *shape, nn_init init) {
    if (s->finalized) {
        gn_err(GN_EINVAL, "store: cannot add '%s' after finalize", name);
        return NULL;
    }
    if (nn_store_find(s, name)) {
        gn_err(GN_EINVAL, "store: duplicate name '%s'", name);
        return NULL;
    }
    if (ndim < 0 || ndim > NN_MAXDIM) {
        gn_err(GN_EINVAL, "store: '%s' has rank %d", name, ndim);
        return NULL;
    }
    for (int i = 0; i < ndim; i++)
        if (shape[i] <= 0) {
            gn_err(GN_EINVAL, "store: '%s' dimension %d is %d", name, i, shape[i]);
            return NULL;
        }
    nn_entry ***arr = is_param ? &s->params : &s->buffers;
    int *n = is_param ? &s->np : &s->nb, *cap = is_param ? &s->cap_p : &s->cap_b;
    if (*n == *cap) {
        int nc = *cap ? *cap * 2 : 32;
        nn_entry **na = gn_realloc(*arr, sizeof(nn_entry *) * (size_t)nc);
        if (!na) return NULL;
        *arr = na;
        *cap = nc;
    }
    nn_entry *e = gn_calloc(1, sizeof *e);
    if (!e) return NULL;
    e->t.name = gn_strdup(name);
    if (!e->t.name) {
        free(e);
        return NULL;
    }
    e->t.ndim = ndim;
    memcpy(e->t.shape, shape, sizeof(int) * (size_t)ndim);
    e->t.n = nn_numel(ndim, shape);
    e->t.requires_grad = (unsigned char)is_param;
    e->t.is_param = 1;
    e->init = init;
    (*arr)[(*n)++] = e;
    return &e->t;
}

nn_tensor *nn_store_param(nn_store *s, const char *name, int ndim, const int *shape, nn_init init) {
    return add(s, 1, name, ndim, shape, init);
}

nn_tensor *nn_store_buffer(nn_store *s, const char *name, int ndim, const int *shape, nn_init init) {
    return add(s, 0, name, ndim, shape, init);
}

static size_t layout(nn_entry **e, int n) {
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        e[i]->offset = off;
        off += (e[i]->t.n + SLAB_ALIGN - 1) / SLAB_ALIGN * SLAB_ALIGN;
    }
    return off;
}

static float *slab(size_t n) {
    size_t bytes = (n ? n : SLAB_ALIGN) * sizeof(float);
    float *p = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!p) {
        gn_err(GN_ENOMEM, "out of memory: parameter slab of %zu floats", n);
        return NULL;
    }
    memset(p, 0, bytes);
    return p;
}

int nn_store_finalize(nn_store *s) {
    if (s->finalized) return GN_OK;
    s->n_param_floats = layout(s->params, s->np);
    s->n_buffer_floats = layout(s->buffers, s->nb);
    s->data = slab(s->n_param_floats);
    s->grad = slab(s->n_param_floats);
    s->bufdata = slab(s->n_buffer_floats);
    if (!s->data || !s->grad || !s->bufdata) return GN_ENOMEM;
    s->n_param_values = 0;
    for (int i = 0; i < s->np; i++) {
        s->params[i]->t.data = s->data + s->params[i]->offset;
        s->params[i]->t.grad = s->grad + s->params[i]->offset;
        s->n_param_values += s->params[i]->t.n;
    }
    for (int i = 0; i < s->nb; i++) s->buffers[i]->t.data = s->bufdata + s->buffers[i]->offset;
    s->finalized = 1;
    return GN_OK;
}

void nn_fans(int ndim, const int *shape, int *fan_in, int *fan_out) {
    if (ndim == 0) {
        *fan_in = *fan_out = 1;
    } else if (ndim == 1) {
        *fan_in = *fan_out = shape[0];
    } else {
        int rf = 1;
        for (int i = 2; i < ndim; i++) rf *= shape[i];
        *fan_in = shape[1] * rf;
        *fan_out = shape[0] * rf;
    }
}

void nn_init_fill(float *x, size_t n, nn_init init, int ndim, const int *shape, gn_rng *rng) {
    int fi = init.fan_in, fo = init.fan_out;
    if (!fi || !fo) {
        int a, b;
        nn_fans(ndim, shape, &a, &b);
        if (!fi) fi = a;
        if (!fo) fo = b;
    }
    switch (init.kind) {
    case NN_INIT_ZERO: memset(x, 0, n * sizeof(float)); break;
    case NN_INIT_CONST:
        for (size_t i = 0; i < n; i++) x[i] = init.value;
        break;
    case NN_INIT_GLOROT_UNIFORM: {
        double a = sqrt(6.0 / (double)(fi + fo));
        for (size_t i = 0; i < n; i++) x[i] = (float)((2.0 * gn_rng_uniform(rng) - 1.0) * a);
        break;
    }
    case NN_INIT_HE_NORMAL: {
        double sd = sqrt(2.0 / (double)fi);
        for (size_t i = 0; i < n; i++) x[i] = (float)(gn_rng_normal(rng) * sd);
        break;
    }
    case NN_INIT_HE_NORMAL_OUT: {
        double sd = sqrt(2.0 / (double)fo);
        for (size_t i = 0; i < n; i++) x[i] = (float)(gn_rng_normal(rng) * sd);
        break;
    }
    case NN_INIT_TORCH_UNIFORM: {
        double a = 1.0 / sqrt((double)fi);
        for (size_t i = 0; i < n; i++) x[i] = (float)((2.0 * gn_rng_uniform(rng) - 1.0) * a);
        break;
    }
    case NN_INIT_UNIFORM:
        for (size_t i = 0; i < n; i++) x[i] = (float)((2.0 * gn_rng_uniform(rng) - 1.0) * init.value);
        break;
    case NN_INIT_NORMAL:
        for (size_t i = 0; i < n; i++) x[i] = (float)(gn_rng_normal(rng) * init.value);
        break;
    }
}

void nn_store_reset_values(nn_store *s, gn_rng *rng) {
    for (int i = 0; i < s->np; i++) {
        nn_entry *e = s->params[i];
        nn_init_fill(e->t.data, e->t.n, e->init, e->t.ndim, e->t.shape, rng);
    }
    for (int i = 0; i < s->nb; i++) {
        nn_entry *e = s->buffers[i];
        nn_init_fill(e->t.data, e->t.n, e->init, e->t.ndim, e->t.shape, rng);
    }
}

void nn_store_zero_grad(nn_store *s) {
    if (s->grad) memset(s->grad, 0, s->n_param_floats * sizeof(float));
}

int nn_store_set_init(nn_store *s, const nn_tensor *t, nn_init init) {
    for (int i = 0; i < s->np + s->nb; i++) {
        nn_entry *e = i < s->np ? s->params[i] : s->buffers[i - s->np];
        if (&e->t == t) return e->init = init, 0;
    }
    return -1;
}
