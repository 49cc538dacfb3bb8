// Spectra datasets: one spectrum per catalog row found by a path template,
// put through the pre-processing chain of spec/methods.md §4.1 once and kept
// in a verified cache (the same file format as the image datasets, with
// c = h = 1 and w = the output pixels):
//   read (NPY or FITS) -> bad pixels (ivar <= 0, mask != 0, NaN) dropped ->
//   rest frame by the catalog redshift -> flux-conserving resampling onto a
//   log-spaced grid (3400-8400 Å, 4000 pixels by default) -> spectra whose
//   gaps exceed max_gap of the grid are skipped -> pixels whose error is
//   above the err_pct percentile of their spectrum are masked too ->
//   iterative-PCA filling of every masked pixel (n_ev components, iters
//   rounds) -> median normalised to `median` (0.5).
//
// Files: NPY, 1-D flux (P) or rows (R, P) = flux, inverse variance[, mask];
// with no shared grid (`wave`), row 0 is the wavelength: wave, flux[, ivar[,
// mask]]. FITS: an image HDU of 1-3 rows (flux, ivar, mask) with the
// wavelengths in its header (COEFF0/COEFF1: log10 λ = COEFF0 + COEFF1 i as
// SDSS; or CRVAL1/CDELT1 (CD1_1)/CRPIX1, log10 if CTYPE1 says LOG or
// DC-FLAG = 1), or a binary table with columns flux and loglam (log10 Å) or
// wave/wavelength/lambda (Å), optional ivar and and_mask/mask (SDSS spec
// files: HDU 1). A shared grid file (NPY, Å) may itself hold {id}.
#ifndef IO_SPECSET_H
#define IO_SPECSET_H

#include "dataset.h"

typedef struct io_specset_spec {
    const io_catalog *cat;
    const char *template;  // "spectra/{id}.npy", "sdss/spec-{id}.fits"
    const char *wave;      // shared wavelength grid (NPY, Å), or NULL (from the files)
    const char *z_col;     // redshift column; NULL or "": the spectra are already in the rest frame
    double lo, hi;         // output grid, Å (3400, 8400)
    int pixels;            // (4000)
    double max_gap;        // skip spectra with more than this fraction of the grid uncovered or bad (0.075)
    double err_pct;        // also mask pixels above this percentile of the spectrum's errors (95; 0: none)
    int n_ev, iters;       // PCA filling (15, 10)
    double median;         // final median (0.5)
    const char *cache_dir;
    io_log_fn log;
    void *log_user;
} io_specset_spec;

// Defaults of spec/methods.md §4.1 into s (cat, template, ... left alone).
void io_specset_defaults(io_specset_spec *s);
// Open (building the cache if needed): ds->c = ds->h = 1, ds->w = pixels,
// ds->bands[0] = "flux"; ds->n_masked_pix counts the PCA-filled pixels.
int io_specset_open(const io_specset_spec *s, io_dataset *ds);

// One spectrum file (as above) -> *n pixels of wavelength (Å), flux and
// error (NaN flux where bad); wave: an expanded shared-grid path or NULL.
// Arrays are allocated (free each).
int io_spectrum_read(const char *path, const char *wave, int *n, double **wl, double **flux, double **err);

#endif
