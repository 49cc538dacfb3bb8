// Spectral VAE/CVAE helpers (spec/methods.md §4): the fit quality and BIC of
// galnn eval and spectra-scan, decoding, and the PCA rotation of the latent
// means that spectra-latents and explain share (spec_common.h).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/gn_common.h"
#include "../../stats/linalg.h"
#include "run.h"
#include "spec_common.h"

int run_spec_fit(const run *r, nn_ctx *c, const uint32_t *rows, size_t n, run_specfit *f) {
    const md_net *m = &r->net;
    if (run_report(r) != MD_REPORT_SPECTRA) return gn_err(GN_EINVAL, "not a spectral VAE");
    memset(f, 0, sizeof *f);
    int P = m->svae.sp.pixels, d = m->svae.sp.latent, B = r->batch;
    f->n = n, f->pixels = P, f->latent = d, f->n_cond = m->svae.sp.n_cond;
    if (!n) return gn_err(GN_EINVAL, "no spectra to evaluate");
    gn_rng eps;
    gn_rng_seed(&eps, 12345, GN_STREAM_DROPOUT); // the validation draws of galnn train
    double se_mu = 0, se_z = 0, kl = 0;
    run_batches it;
    int rc = run_batches_begin(&it, r, c, rows, n, B, 0);
    while (!rc && run_batches_next(&it)) {
        nn_tensor *mu, *lv, *x = it.in[m->lat_x], *cond = m->lat_a >= 0 ? it.in[m->lat_a] : NULL;
        md_specvae_encode(c, &m->svae, x, cond, &mu, &lv);
        nn_tensor *xm = md_specvae_decode(c, &m->svae, mu, cond);
        nn_tensor *xz = md_specvae_decode(c, &m->svae, md_vae_sample(c, mu, lv, &eps), cond);
        if (!xm || !xz) {
            rc = GN_EINVAL;
            break;
        }
        for (size_t k = 0; k < (size_t)it.b * P; k++) {
            double a = xm->data[k] - x->data[k], z = xz->data[k] - x->data[k];
            se_mu += a * a, se_z += z * z;
        }
        for (size_t k = 0; k < (size_t)it.b * d; k++) {
            double u = mu->data[k], l = lv->data[k];
            kl += -0.5 * (1 + l - u * u - exp(l));
        }
    }
    if ((rc = run_batches_end(&it, rc))) return rc;
    double N = (double)n;
    f->mse_mu = se_mu / (N * P), f->mse_z = se_z / (N * P), f->kl = kl / N;
    f->nelbo = 0.5 * P * (log(2 * M_PI * f->mse_z) + 1) + f->kl;
    int k = d + f->n_cond;
    f->bic = k * log(N) + 2 * N * f->nelbo;
    f->bic_gauss = k * log(N * P) + N * P * (log(2 * M_PI * f->mse_mu) + 1);
    return GN_OK;
}

int spec_decode_rows(const run *r, nn_ctx *c, const uint32_t *rows, int n, float *out) {
    const md_net *m = &r->net;
    int P = m->svae.sp.pixels;
    run_batches it;
    int rc = run_batches_begin(&it, r, c, rows, (size_t)n, 64, 0);
    while (!rc && run_batches_next(&it)) {
        nn_tensor *mu, *lv, *cond = m->lat_a >= 0 ? it.in[m->lat_a] : NULL;
        md_specvae_encode(c, &m->svae, it.in[m->lat_x], cond, &mu, &lv);
        nn_tensor *x = md_specvae_decode(c, &m->svae, mu, cond);
        if (!x)
            rc = GN_EINVAL;
        else
            memcpy(out + it.o * P, x->data, sizeof(float) * (size_t)it.b * P);
    }
    return run_batches_end(&it, rc);
}

// Decode n latent vectors z (n, d) with standardised conditions cond (n, n_cond) or NULL.
int spec_decode_z(const run *r, nn_ctx *c, const float *z, const float *cond, int n, float *out) {
    const md_net *m = &r->net;
    int d = m->svae.sp.latent, nc = m->svae.sp.n_cond, P = m->svae.sp.pixels;
    int tr = c->training, ge = c->grad_enabled, rc = GN_OK;
    c->training = 0, c->grad_enabled = 0;
    nn_ctx_reset(c);
    nn_tensor *Z = nn_tensor_from(c, NN_SHAPE(n, d), z),
              *C = nc ? nn_tensor_from(c, NN_SHAPE(n, nc), cond) : NULL;
    nn_tensor *x = Z && (!nc || C) ? md_specvae_decode(c, &m->svae, Z, C) : NULL;
    if (!x)
        rc = GN_EINVAL;
    else
        memcpy(out, x->data, sizeof(float) * (size_t)n * P);
    c->training = tr, c->grad_enabled = ge;
    return rc;
}

// Blue-to-red flux ratio of a spectrum: mean of the bluest third over the reddest third.
static double blueness(const float *x, int P) {
    double a = 0, b = 0;
    int t = P / 3;
    for (int j = 0; j < t; j++) a += x[j], b += x[P - 1 - j];
    return b > 0 ? a / b : a;
}

int spec_pca(const run *r, nn_ctx *c, spec_rot *R) {
    const md_net *m = &r->net;
    int d = m->svae.sp.latent, P = m->svae.sp.pixels, nc = m->svae.sp.n_cond;
    memset(R, 0, sizeof *R);
    R->d = d;
    size_t n = r->n_rows[IO_SPLIT_TRAIN];
    if (n < 2) return gn_err(GN_EINVAL, "the PCA rotation needs training spectra (found %zu)", n);
    float *mu = malloc(sizeof(float) * n * d);
    double *A = malloc(sizeof(double) * d * d);
    float *z = malloc(sizeof(float) * 2 * d), *cond = calloc(2 * (size_t)(nc ? nc : 1), sizeof(float)),
          *x = malloc(sizeof(float) * 2 * P);
    int rc = mu && A && z && cond && x ? run_embed(r, c, r->rows[IO_SPLIT_TRAIN], n, 0, mu) : GN_ENOMEM;
    if (!rc) {
        for (int a = 0; a < d; a++) {
            double s = 0;
            for (size_t i = 0; i < n; i++) s += mu[i * d + a];
            R->mean[a] = s / n;
        }
        for (int a = 0; a < d; a++)
            for (int b = 0; b < d; b++) {
                double s = 0;
                for (size_t i = 0; i < n; i++)
                    s += (mu[i * d + a] - R->mean[a]) * (mu[i * d + b] - R->mean[b]);
                A[a * d + b] = s / (n - 1);
            }
        st_eig_sym(A, d, R->var, R->V);
        double tot = 0;
        for (int a = 0; a < d; a++) tot += fmax(R->var[a], 0);
        for (int a = 0; a < d; a++) R->frac[a] = tot > 0 ? fmax(R->var[a], 0) / tot : 0;
    }
    // orientation: +D_k makes the decoded spectrum bluer (conditions at their training mean)
    for (int k = 0; !rc && k < d; k++) {
        double sd = sqrt(fmax(R->var[k], 1e-12));
        for (int s = 0; s < 2; s++)
            for (int a = 0; a < d; a++)
                z[s * d + a] = (float)(R->mean[a] + (s ? 1 : -1) * sd * R->V[a * d + k]);
        if ((rc = spec_decode_z(r, c, z, cond, 2, x))) break;
        if (blueness(x + P, P) < blueness(x, P))
            for (int a = 0; a < d; a++) R->V[a * d + k] = -R->V[a * d + k];
    }
    free(mu), free(A), free(z), free(cond), free(x);
    return rc;
}

void spec_rotate(const spec_rot *R, const float *mu, size_t n, double *D) {
    int d = R->d;
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < d; k++) {
            double s = 0;
            for (int a = 0; a < d; a++) s += (mu[i * d + a] - R->mean[a]) * R->V[a * d + k];
            D[i * d + k] = s;
        }
}

// Dn4000 (Balogh et al. 1999): <f_ν> over 4000-4100 Å / <f_ν> over 3850-3950 Å, f_ν ∝ λ² f_λ;
// NaN when the grid does not cover both windows.