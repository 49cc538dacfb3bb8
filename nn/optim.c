#include "optim.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

void nn_optim_defaults(nn_optim *o, nn_opt_kind kind) {
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->beta1 = 0.9f;
    o->beta2 = 0.999f;
    o->eps = 1e-8f;
    if (kind == NN_OPT_ADAMW) o->weight_decay = 0.01f; // torch.optim.AdamW default
}

int nn_optim_init(nn_optim *o, const nn_store *s) {
    if (!s->finalized) return gn_err(GN_EINVAL, "optimizer: the parameter store is not finalized");
    o->n = s->n_param_floats;
    o->step = 0;
    o->m = gn_calloc(o->n ? o->n : 1, sizeof(float));
    if (!o->m) return GN_ENOMEM;
    if (o->kind != NN_OPT_SGD) {
        o->v = gn_calloc(o->n ? o->n : 1, sizeof(float));
        if (!o->v) return GN_ENOMEM;
        if (o->amsgrad && !(o->vmax = gn_calloc(o->n ? o->n : 1, sizeof(float)))) return GN_ENOMEM;
    }
    return GN_OK;
}

void nn_optim_free(nn_optim *o) {
    free(o->m);
    free(o->v);
    free(o->vmax);
    free(o->wd);
    o->m = o->v = o->vmax = o->wd = NULL;
}

int nn_optim_decay_prefix(nn_optim *o, const nn_store *s, const char *prefix, float wd) {
    if (!o->wd) {
        if (!(o->wd = malloc(sizeof(float) * o->n))) return gn_err(GN_ENOMEM, "optimizer: out of memory");
        for (size_t i = 0; i < o->n; i++) o->wd[i] = o->weight_decay;
    }
    size_t L = strlen(prefix);
    for (int k = 0; k < s->np; k++) {
        const nn_entry *e = s->params[k];
        if (!strncmp(e->t.name, prefix, L) && e->t.name[L] == '.')
            for (size_t i = 0; i < e->t.n; i++) o->wd[e->offset + i] = wd;
    }
    return GN_OK;
}

// Adam's (AdamW's) update of parameter i: every operation in the order of the scalar formula, so the 8-lane
// path below gives the same bits (IEEE square roots and divisions are exact in both)
typedef struct adam_k {
    float b1, b2, lr, step_size, sbc2, eps, wd0;
    int adamw;
} adam_k;
static inline void adam_one(const adam_k *k, float *p, const float *g, float *m, float *v, float *vm,
                            const float *wdv, long i) {
    float gi = g[i], wd = wdv ? wdv[i] : k->wd0;
    if (k->adamw)
        p[i] *= 1.0f - k->lr * wd;
    else
        gi += wd * p[i];
    m[i] = k->b1 * m[i] + (1.0f - k->b1) * gi;
    v[i] = k->b2 * v[i] + (1.0f - k->b2) * gi * gi;
    float vv = v[i];
    if (vm) {
        if (vv > vm[i]) vm[i] = vv;
        vv = vm[i];
    }
    p[i] -= k->step_size * m[i] / (sqrtf(vv) / k->sbc2 + k->eps);
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define ADAM_X86 1
// [i0, i1) by 8 lanes (the square root and division vectorised: the scalar loop spent 3 % of a ResNet step
// on them); returns where the scalar tail starts
__attribute__((target("avx2"))) static long adam_avx2(const adam_k *k, float *p, const float *g, float *m,
                                                      float *v, float *vm, const float *wdv, long i0,
                                                      long i1) {
    __m256 b1 = _mm256_set1_ps(k->b1), c1 = _mm256_set1_ps(1.0f - k->b1), b2 = _mm256_set1_ps(k->b2);
    __m256 c2 = _mm256_set1_ps(1.0f - k->b2), ss = _mm256_set1_ps(k->step_size);
    __m256 sb = _mm256_set1_ps(k->sbc2), eps = _mm256_set1_ps(k->eps), one = _mm256_set1_ps(1.0f);
    __m256 lr = _mm256_set1_ps(k->lr);
    long i = i0;
    for (; i + 8 <= i1; i += 8) {
        __m256 gi = _mm256_loadu_ps(g + i), pi = _mm256_loadu_ps(p + i);
        __m256 wd = wdv ? _mm256_loadu_ps(wdv + i) : _mm256_set1_ps(k->wd0);
        if (k->adamw) pi = _mm256_mul_ps(pi, _mm256_sub_ps(one, _mm256_mul_ps(lr, wd)));
        else gi = _mm256_add_ps(gi, _mm256_mul_ps(wd, pi));
        __m256 mi = _mm256_add_ps(_mm256_mul_ps(b1, _mm256_loadu_ps(m + i)), _mm256_mul_ps(c1, gi));
        __m256 vi = _mm256_add_ps(_mm256_mul_ps(b2, _mm256_loadu_ps(v + i)),
                                  _mm256_mul_ps(_mm256_mul_ps(c2, gi), gi));
        _mm256_storeu_ps(m + i, mi), _mm256_storeu_ps(v + i, vi);
        if (vm) { // vm = vv > vm ? vv : vm
            __m256 old = _mm256_loadu_ps(vm + i);
            vi = _mm256_blendv_ps(old, vi, _mm256_cmp_ps(vi, old, _CMP_GT_OQ));
            _mm256_storeu_ps(vm + i, vi);
        }
        __m256 den = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(vi), sb), eps);
        _mm256_storeu_ps(p + i, _mm256_sub_ps(pi, _mm256_div_ps(_mm256_mul_ps(ss, mi), den)));
    }
    return i;
}
#endif

void nn_optim_step(nn_optim *o, nn_store *s, float lr) {
    o->step++;
    float *p = s->data, *g = s->grad, *m = o->m, *v = o->v, *vm = o->vmax;
    long n = (long)o->n;
    float wd0 = o->weight_decay, *wdv = o->wd;
    if (o->kind == NN_OPT_SGD) {
        float mu = o->momentum;
        int first = o->step == 1, nest = o->nesterov;
#pragma omp parallel for schedule(static) if (n > NN_PAR_MIN)
        for (long i = 0; i < n; i++) {
            float gi = g[i] + (wdv ? wdv[i] : wd0) * p[i];
            if (mu != 0) {
                m[i] = first ? gi : mu * m[i] + gi; // torch: the buffer starts as the first gradient
                gi = nest ? gi + mu * m[i] : m[i];
            }
            p[i] -= lr * gi;
        }
        return;
    }
    float b1 = o->beta1, b2 = o->beta2, bc1 = 1.0f - powf(b1, (float)o->step);
    float bc2 = 1.0f - powf(b2, (float)o->step);
    adam_k k = {b1, b2, lr, lr / bc1, sqrtf(bc2), o->eps, wd0, o->kind == NN_OPT_ADAMW};
#pragma omp parallel if (n > NN_PAR_MIN)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        long i0 = n * t / nt / 8 * 8, i1 = t == nt - 1 ? n : n * (t + 1) / nt / 8 * 8, i = i0;
#ifdef ADAM_X86
        if (__builtin_cpu_supports("avx2")) i = adam_avx2(&k, p, g, m, v, vm, wdv, i0, i1);
#endif
        for (; i < i1; i++) adam_one(&k, p, g, m, v, vm, wdv, i);
    }
}

double nn_grad_norm(const nn_store *s) {
    double sq = 0;
    for (size_t i = 0; i < s->n_param_floats; i++) sq += (double)s->grad[i] * s->grad[i];
    return sqrt(sq);
}

float nn_clip_grad_norm(nn_store *s, float max_norm) {
    double norm = nn_grad_norm(s);
    double coef = max_norm / (norm + 1e-6);
    if (coef < 1.0)
        for (size_t i = 0; i < s->n_param_floats; i++) s->grad[i] = (float)(s->grad[i] * coef);
    return (float)norm;
}

float nn_sched_lr(const nn_sched *s, long step) {
    switch (s->kind) {
    case NN_SCHED_CONST:
        return step < s->warmup ? s->base_lr * (float)(step + 1) / (float)s->warmup : s->base_lr;
    case NN_SCHED_STEP: {
        int k = 0;
        while (k < s->n_drops && step >= s->drop_steps[k]) k++;
        if (s->use_values) return k ? s->drop_values[k - 1] : s->base_lr;
        return s->base_lr * powf(s->factor, (float)k);
    }
    case NN_SCHED_COSINE: {
        if (step < s->warmup) return s->base_lr * (float)(step + 1) / (float)s->warmup;
        long T = s->total - s->warmup, t = step - s->warmup;
        if (T <= 0 || t >= T) return s->min_lr;
        return s->min_lr + (s->base_lr - s->min_lr) * 0.5f * (1.0f + cosf((float)M_PI * (float)t / (float)T));
    }
    case NN_SCHED_EPOCH_COS: {
        long epoch = s->steps_per_epoch > 0 ? step / s->steps_per_epoch : 0;
        return s->base_lr * cosf((float)epoch / (s->period > 0 ? s->period : 200.0f));
    }
    }
    return s->base_lr;
}
