#include "attrib.h"

#include <stdlib.h>
#include <string.h>

int nn_expected_gradients(nn_ctx *c, nn_attrib_fn f, void *user, int ndim, const int *shape, const float *x,
                          const float *background, int nb, int samples, int batch, gn_rng *rng, double *phi) {
    if (ndim < 1 || ndim >= NN_MAXDIM || nb < 1 || samples < 1 || batch < 1)
        return gn_err(GN_EINVAL, "expected gradients: bad sizes");
    size_t d = 1;
    for (int k = 0; k < ndim; k++) d *= (size_t)shape[k];
    int sh[NN_MAXDIM];
    memcpy(sh + 1, shape, sizeof(int) * (size_t)ndim);
    int *which = malloc(sizeof(int) * (size_t)batch);
    float *alpha = malloc(sizeof(float) * (size_t)batch);
    if (!which || !alpha) return free(which), free(alpha), gn_err(GN_ENOMEM, "out of memory");
    memset(phi, 0, sizeof(double) * d);
    int ge = c->grad_enabled, tr = c->training, rc = GN_OK;
    c->grad_enabled = 1, c->training = 0;
    for (int done = 0; done < samples && !rc; done += batch) {
        int m = samples - done < batch ? samples - done : batch;
        sh[0] = m;
        nn_ctx_reset(c);
        nn_tensor *z = nn_tensor_new(c, ndim + 1, sh);
        if (!z) {
            rc = GN_ENOMEM;
            break;
        }
        for (int s = 0; s < m; s++) { // the point b + α (x - b) on the path from a background row to x
            which[s] = (int)gn_rng_below(rng, (uint32_t)nb);
            alpha[s] = (float)gn_rng_uniform(rng);
            const float *b = background + (size_t)which[s] * d;
            for (size_t j = 0; j < d; j++) z->data[(size_t)s * d + j] = b[j] + alpha[s] * (x[j] - b[j]);
        }
        z->requires_grad = 1;
        nn_tensor *y = f(c, z, user);
        if (!y || y->n != (size_t)m) {
            rc =
                y ? gn_err(GN_EINVAL, "expected gradients: the model gives %zu values for %d inputs", y->n, m)
                  : GN_EINVAL;
            break;
        }
        // the rows are independent, so the gradient of their sum is each row's own gradient
        if ((rc = nn_backward(c, nn_sum(c, y, NN_ALL_AXES, 0)))) break;
        for (int s = 0; s < m; s++) {
            const float *b = background + (size_t)which[s] * d, *g = z->grad + (size_t)s * d;
            for (size_t j = 0; j < d; j++) phi[j] += (double)(x[j] - b[j]) * g[j] / samples;
        }
    }
    c->grad_enabled = ge, c->training = tr;
    free(which), free(alpha);
    return rc;
}
