#include "spectra.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../common/gn_common.h"

void io_spec_log_grid(double lo, double hi, int n, double *out) {
    double a = log10(lo), b = log10(hi);
    for (int i = 0; i < n; i++) out[i] = pow(10, n > 1 ? a + (b - a) * i / (n - 1) : a);
}

void io_spec_to_rest(double *wl, double *flux, double *err, int n, double z) {
    for (int i = 0; i < n; i++) {
        wl[i] /= 1 + z;
        flux[i] *= 1 + z;
        if (err) err[i] *= 1 + z;
    }
}

// Bin edges halfway between centres; the outer edges mirror the first/last half-widths.
static void edges(const double *c, int n, double *e) {
    e[0] = c[0] - (n > 1 ? (c[1] - c[0]) / 2 : 0.5);
    for (int i = 1; i < n; i++) e[i] = (c[i - 1] + c[i]) / 2;
    e[n] = c[n - 1] + (n > 1 ? (c[n - 1] - c[n - 2]) / 2 : 0.5);
}

int io_spec_resample(const double *wl, const double *flux, const double *err, int n, const double *wl_out,
                     int n_out, double *flux_out, double *err_out) {
    if (n < 1 || n_out < 1) return gn_err(GN_EINVAL, "resample: empty grid"), -1;
    for (int i = 1; i < n; i++)
        if (!(wl[i] > wl[i - 1]))
            return gn_err(GN_EINVAL, "resample: input wavelengths not increasing at pixel %d", i), -1;
    for (int i = 1; i < n_out; i++)
        if (!(wl_out[i] > wl_out[i - 1]))
            return gn_err(GN_EINVAL, "resample: output wavelengths not increasing at pixel %d", i), -1;
    double *e = malloc(sizeof(double) * (size_t)(n + 1)), *eo = malloc(sizeof(double) * (size_t)(n_out + 1));
    if (!e || !eo) return free(e), free(eo), gn_err(GN_ENOMEM, "out of memory"), -1;
    edges(wl, n, e);
    edges(wl_out, n_out, eo);
    int masked = 0, start = 0;
    for (int j = 0; j < n_out; j++) {
        double lo = eo[j], hi = eo[j + 1], sw = 0, sf = 0, se = 0;
        int bad = lo < e[0] || hi > e[n];
        while (start < n && e[start + 1] <= lo) start++;
        for (int i = start; !bad && i < n && e[i] < hi; i++) {
            double w = fmin(hi, e[i + 1]) - fmax(lo, e[i]);
            if (w <= 0 || isnan(flux[i]) || (err && !(err[i] > 0))) continue; // bad old pixels drop out
            sw += w, sf += w * flux[i];
            if (err) se += (w * err[i]) * (w * err[i]);
        }
        if (bad || !(sw >= 0.5 * (hi - lo))) { // outside the input, or less than half of it good
            flux_out[j] = NAN;
            if (err_out) err_out[j] = NAN;
            masked++;
            continue;
        }
        flux_out[j] = sf / sw;
        if (err_out) err_out[j] = err ? sqrt(se) / sw : NAN;
    }
    free(e), free(eo);
    return masked;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double io_spec_median_norm(double *flux, double *err, int n, double target) {
    double *t = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    if (!t) return NAN;
    int m = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(flux[i])) t[m++] = flux[i];
    qsort(t, (size_t)m, sizeof(double), cmp_d);
    double med = m ? (m % 2 ? t[m / 2] : 0.5 * (t[m / 2 - 1] + t[m / 2])) : NAN;
    free(t);
    if (!(med > 0)) return NAN;
    double s = target / med;
    for (int i = 0; i < n; i++) {
        flux[i] *= s;
        if (err) err[i] *= s;
    }
    return s;
}
