// Galaxy spectra pre-processing (spec/methods.md §4.1): log-spaced
// wavelength grids, the rest-frame shift, flux-conserving resampling with
// errors, median normalisation, and iterative-PCA gap filling of masked
// pixels (Yip et al. 2004 style).
#ifndef IO_SPECTRA_H
#define IO_SPECTRA_H

#include <stddef.h>
#include <stdint.h>

// n wavelengths log-spaced from lo to hi inclusive (3400-8400 Å, 4000 in the paper).
void io_spec_log_grid(double lo, double hi, int n, double *out);

// Observed -> rest frame: λ_rest = λ_obs / (1 + z), f_λ,rest = f_λ,obs (1 + z)
// (the integral of f over λ is kept); errors scale like the flux. In place.
void io_spec_to_rest(double *wl, double *flux, double *err, int n, double z);

// Flux-conserving resampling (as SpectRes, Carnall 2017): each new pixel is
// the overlap-weighted mean flux density of the old pixels it covers, with
// bin edges halfway between centres; its error is sqrt(sum (w e)^2) / sum w.
// err / err_out may be NULL. Bad old pixels (NaN flux, or err <= 0 / NaN
// when err is given) drop out of the means; new pixels not fully inside the
// old grid, or less than half covered by good old pixels, get NaN flux and
// error (masked). Grids must increase. Returns the number
// of masked output pixels, or -1 on a bad grid (error message set).
int io_spec_resample(const double *wl, const double *flux, const double *err, int n, const double *wl_out,
                     int n_out, double *flux_out, double *err_out);

// Scale so that the median of the finite pixels is `target` (0.5 in the
// paper); returns the factor applied (NaN if no finite pixel or median <= 0).
double io_spec_median_norm(double *flux, double *err, int n, double target);

#endif
