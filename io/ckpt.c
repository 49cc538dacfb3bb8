#include "ckpt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int add_f32(io_npz_writer *w, const char *prefix, const nn_tensor *t, const float *data) {
    char name[512];
    snprintf(name, sizeof name, "%s%s", prefix, t->name);
    return io_npz_add_f32(w, name, t->ndim, t->shape, data);
}

int io_ckpt_save(const char *path, const nn_store *s, const nn_optim *o, const io_named_array *extra,
                 int n_extra, const char *config) {
    io_npz_writer *w = io_npz_create(path, 0);
    if (!w) return GN_EIO;
    int rc = GN_OK;
    for (int i = 0; i < nn_store_count(s) && !rc; i++) {
        const nn_tensor *t = nn_store_at(s, i);
        rc = add_f32(w, i < s->np ? "param." : "buffer.", t, t->data);
    }
    if (o) {
        for (int i = 0; i < s->np && !rc; i++) {
            const nn_tensor *t = &s->params[i]->t;
            size_t off = s->params[i]->offset;
            rc = add_f32(w, "opt.m.", t, o->m + off);
            if (!rc && o->v) rc = add_f32(w, "opt.v.", t, o->v + off);
            if (!rc && o->vmax) rc = add_f32(w, "opt.vmax.", t, o->vmax + off);
        }
        int64_t step = o->step, one = 1;
        io_array a = io_array_view(IO_I64, 1, &one, &step);
        if (!rc) rc = io_npz_add(w, "opt.step", &a);
    }
    for (int k = 0; k < n_extra && !rc; k++) rc = io_npz_add(w, extra[k].name, &extra[k].a);
    if (!rc && config) {
        int64_t len = (int64_t)strlen(config);
        io_array a = io_array_view(IO_U8, 1, &len, config);
        rc = io_npz_add(w, "meta.config", &a);
    }
    if (rc) {
        io_npz_abort(w);
        return rc;
    }
    return io_npz_close(w);
}

static int restore_one(const char *path, const io_npz *z, const char *prefix, const nn_tensor *t,
                       float *dst) {
    char name[512];
    snprintf(name, sizeof name, "%s%s", prefix, t->name);
    const io_array *a = io_npz_get(z, name);
    if (!a)
        return gn_err(GN_EFORMAT, "%s: checkpoint lacks '%s' (a different model or configuration?)", path,
                      name);
    int ok = a->dtype == IO_F32 && a->ndim == t->ndim;
    for (int d = 0; ok && d < t->ndim; d++) ok = a->shape[d] == t->shape[d];
    if (!ok) {
        char s[96];
        return gn_err(GN_EFORMAT, "%s: '%s' has the wrong shape or type (the model expects float32 %s)", path,
                      name, nn_shape_str(t, s, sizeof s));
    }
    memcpy(dst, a->data, sizeof(float) * t->n);
    return GN_OK;
}

int io_ckpt_restore(const char *path, const io_npz *z, nn_store *s, nn_optim *o) {
    for (int i = 0; i < nn_store_count(s); i++) {
        nn_tensor *t = nn_store_at(s, i);
        int rc = restore_one(path, z, i < s->np ? "param." : "buffer.", t, t->data);
        if (rc) return rc;
    }
    if (!o) return GN_OK;
    for (int i = 0; i < s->np; i++) {
        const nn_tensor *t = &s->params[i]->t;
        size_t off = s->params[i]->offset;
        int rc = restore_one(path, z, "opt.m.", t, o->m + off);
        if (!rc && o->v) rc = restore_one(path, z, "opt.v.", t, o->v + off);
        if (!rc && o->vmax) rc = restore_one(path, z, "opt.vmax.", t, o->vmax + off);
        if (rc) return rc;
    }
    const io_array *st = io_ckpt_get(path, z, "opt.step", IO_I64, 1);
    if (!st) return GN_EFORMAT;
    o->step = (long)((int64_t *)st->data)[0];
    return GN_OK;
}

const io_array *io_ckpt_get(const char *path, const io_npz *z, const char *name, io_dtype t, size_t n) {
    const io_array *a = io_npz_get(z, name);
    if (!a) {
        gn_err(GN_EFORMAT, "%s: checkpoint lacks '%s'", path, name);
        return NULL;
    }
    if (a->dtype != t || a->n != n) {
        gn_err(GN_EFORMAT, "%s: '%s' is %s with %zu values, expected %s with %zu", path, name,
               io_dtype_name(a->dtype), a->n, io_dtype_name(t), n);
        return NULL;
    }
    return a;
}

char *io_ckpt_config(const char *path, const io_npz *z) {
    const io_array *a = io_npz_get(z, "meta.config");
    if (!a || a->dtype != IO_U8) {
        gn_err(GN_EFORMAT, "%s: checkpoint lacks its configuration (meta.config)", path);
        return NULL;
    }
    char *t = gn_malloc(a->n + 1);
    if (t) {
        memcpy(t, a->data, a->n);
        t[a->n] = 0;
    }
    return t;
}
