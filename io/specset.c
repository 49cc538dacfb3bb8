#include "specset.h"

#include <fitsio.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/gn_common.h"
#include "npy.h"
#include "spectra.h"
#include "../stats/linalg.h" // st_pca_fill

#define SPEC_MAGIC "GALNNSP1"

void io_specset_defaults(io_specset_spec *s) {
    s->lo = 3400, s->hi = 8400, s->pixels = 4000;
    s->max_gap = 0.075; // 300 of 4000 pixels, as the paper's cut
    s->err_pct = 95;
    s->n_ev = 15, s->iters = 10;
    s->median = 0.5;
}

#define logf_(s, ...) io_logf((s)->log, (s)->log_user, __VA_ARGS__)

// ---- reading one file ----

static int alloc3(int n, double **wl, double **flux, double **err) {
    *wl = malloc(sizeof(double) * (size_t)n), *flux = malloc(sizeof(double) * (size_t)n),
    *err = malloc(sizeof(double) * (size_t)n);
    if (*wl && *flux && *err) return GN_OK;
    free(*wl), free(*flux), free(*err);
    *wl = *flux = *err = NULL;
    return gn_err(GN_ENOMEM, "out of memory for a %d-pixel spectrum", n);
}

// flux, ivar (NULL: unit errors), mask (NULL: none) -> flux (NaN where bad), err
static void set_pixels(int n, const float *f, const float *iv, const float *mk, double *flux, double *err) {
    for (int i = 0; i < n; i++) {
        int bad = !isfinite(f[i]) || (iv && !(iv[i] > 0 && isfinite(iv[i]))) || (mk && mk[i] != 0);
        flux[i] = bad ? NAN : f[i];
        err[i] = bad ? NAN : iv ? 1 / sqrt((double)iv[i]) : 1;
    }
}

static int read_grid(const char *wave, int n, double *wl) {
    io_array a;
    int rc = io_npy_read(wave, &a);
    if (rc) return rc;
    if (a.ndim != 1 || (int)a.n != n) {
        int64_t got = a.n;
        io_array_free(&a);
        return gn_err(GN_EFORMAT, "%s: the wavelength grid has %lld values, the spectrum %d pixels", wave,
                      (long long)got, n);
    }
    float *g = io_array_to_f32(&a);
    if (a.dtype == IO_F64)
        for (int i = 0; i < n; i++) wl[i] = ((double *)a.data)[i];
    else
        for (int i = 0; g && i < n; i++) wl[i] = g[i];
    free(g);
    io_array_free(&a);
    return GN_OK;
}

static int read_npy(const char *path, const char *wave, int *n, double **wl, double **flux, double **err) {
    io_array a;
    int rc = io_npy_read(path, &a);
    if (rc) return rc;
    int rows = a.ndim == 1 ? 1 : (int)a.shape[0], P = (int)(a.ndim == 1 ? a.shape[0] : a.shape[1]);
    int w0 = wave ? 0 : 1; // rows before the flux
    if (a.ndim > 2 || rows - w0 < 1 || rows - w0 > 3 || P < 2) {
        io_array_free(&a);
        return gn_err(GN_EFORMAT,
                      "%s: a spectrum is %s (P) or (R, P) rows %s; got %d dimension(s) with %d row(s)", path,
                      wave ? "flux" : "wave, flux",
                      wave ? "flux, ivar[, mask]" : "wave, flux[, ivar[, mask]]", a.ndim, rows);
    }
    float *v = io_array_to_f32(&a);
    if (!v) return io_array_free(&a), GN_ENOMEM;
    if ((rc = alloc3(P, wl, flux, err))) return free(v), io_array_free(&a), rc;
    if (wave) rc = read_grid(wave, P, *wl);
    else if (a.dtype == IO_F64)
        for (int i = 0; i < P; i++) (*wl)[i] = ((double *)a.data)[i];
    else
        for (int i = 0; i < P; i++) (*wl)[i] = v[i];
    const float *f = v + (size_t)w0 * P;
    set_pixels(P, f, rows - w0 > 1 ? f + P : NULL, rows - w0 > 2 ? f + 2 * P : NULL, *flux, *err);
    free(v);
    io_array_free(&a);
    if (rc) free(*wl), free(*flux), free(*err);
    *n = P;
    return rc;
}

static int fits_fail(const char *path, int st, const char *what) {
    char msg[FLEN_STATUS];
    fits_get_errstatus(st, msg);
    fits_clear_errmsg();
    return gn_err(GN_EFORMAT, "%s: %s: %s", path, what, msg);
}

// The wavelengths of an image HDU's pixels from its header.
static int fits_header_grid(fitsfile *f, const char *path, int n, double *wl) {
    int st = 0;
    double c0, c1, crval, cdelt, crpix = 1;
    if (!fits_read_key(f, TDOUBLE, "COEFF0", &c0, NULL, &st) &&
        !fits_read_key(f, TDOUBLE, "COEFF1", &c1, NULL, &st)) {
        for (int i = 0; i < n; i++) wl[i] = pow(10, c0 + c1 * i);
        return GN_OK;
    }
    st = 0;
    if (fits_read_key(f, TDOUBLE, "CRVAL1", &crval, NULL, &st))
        return gn_err(
            GN_EFORMAT,
            "%s: no wavelength grid in the header (COEFF0/COEFF1 or CRVAL1/CDELT1) and no [branch] wave file",
            path);
    if (fits_read_key(f, TDOUBLE, "CDELT1", &cdelt, NULL, &st)) {
        st = 0;
        if (fits_read_key(f, TDOUBLE, "CD1_1", &cdelt, NULL, &st))
            return fits_fail(path, st, "CRVAL1 without CDELT1 or CD1_1");
    }
    st = 0;
    fits_read_key(f, TDOUBLE, "CRPIX1", &crpix, NULL, &st);
    st = 0;
    char ctype[FLEN_VALUE] = "";
    int dcflag = 0, lg;
    fits_read_key(f, TSTRING, "CTYPE1", ctype, NULL, &st);
    st = 0;
    fits_read_key(f, TINT, "DC-FLAG", &dcflag, NULL, &st);
    lg = dcflag == 1 || strstr(ctype, "LOG") || strstr(ctype, "log");
    for (int i = 0; i < n; i++) {
        double v = crval + cdelt * (i + 1 - crpix);
        wl[i] = lg ? pow(10, v) : v;
    }
    return GN_OK;
}

static int fits_col(fitsfile *f, const char *const *names, int *col) {
    for (int k = 0; names[k]; k++) {
        int st = 0;
        char nm[32];
        snprintf(nm, sizeof nm, "%s", names[k]);
        if (!fits_get_colnum(f, CASEINSEN, nm, col, &st)) return 1;
    }
    return 0;
}

static int read_fits(const char *path, const char *wave, int *n, double **wl, double **flux, double **err) {
    fitsfile *f;
    int st = 0, nh = 0, rc = GN_OK;
    if (fits_open_file(&f, path, READONLY, &st)) return fits_fail(path, st, "cannot open as FITS");
    fits_get_num_hdus(f, &nh, &st);
    float *buf = NULL;
    for (int h = 1; h <= nh; h++) {
        int type = 0;
        st = 0;
        if (fits_movabs_hdu(f, h, &type, &st)) break;
        if (type == IMAGE_HDU) {
            int naxis = 0;
            long ax[3] = {0, 0, 0};
            if (fits_get_img_param(f, 3, NULL, &naxis, ax, &st) || naxis < 1 || ax[0] < 2) continue;
            int P = (int)ax[0], rows = naxis > 1 ? (int)ax[1] : 1;
            if (naxis > 2 || rows > 3) {
                rc = gn_err(GN_EFORMAT, "%s: a spectrum image has 1-3 rows (flux, ivar, mask), not %d x %ld",
                            path, rows, naxis > 2 ? ax[2] : 1);
                break;
            }
            if (!(buf = malloc(sizeof(float) * (size_t)P * rows)) || (rc = alloc3(P, wl, flux, err))) {
                rc = rc ? rc : GN_ENOMEM;
                break;
            }
            float nul = NAN;
            int any;
            if (fits_read_img(f, TFLOAT, 1, (LONGLONG)P * rows, &nul, buf, &any, &st))
                rc = fits_fail(path, st, "reading the spectrum");
            else rc = wave ? read_grid(wave, P, *wl) : fits_header_grid(f, path, P, *wl);
            if (!rc)
                set_pixels(P, buf, rows > 1 ? buf + P : NULL, rows > 2 ? buf + 2 * P : NULL, *flux, *err);
            *n = P;
            goto done;
        }
        if (type == BINARY_TBL) {
            static const char *const fl[] = {"flux", NULL}, *const ll[] = {"loglam", NULL},
                                     *const wv[] = {"wave", "wavelength", "lambda", NULL},
                                     *const iv[] = {"ivar", NULL}, *const mk[] = {"and_mask", "mask", NULL};
            int cf, cl = 0, cw = 0, ci = 0, cm = 0;
            if (!fits_col(f, fl, &cf)) continue;
            int has_l = fits_col(f, ll, &cl), has_w = !has_l && fits_col(f, wv, &cw),
                has_i = fits_col(f, iv, &ci), has_m = fits_col(f, mk, &cm);
            long nr = 0;
            fits_get_num_rows(f, &nr, &st);
            if (nr < 2) {
                rc = gn_err(GN_EFORMAT, "%s: the spectrum table has %ld row(s)", path, nr);
                break;
            }
            if (!wave && !has_l && !has_w) {
                rc = gn_err(GN_EFORMAT,
                            "%s: the table has flux but no loglam/wave column (or give a [branch] wave file)",
                            path);
                break;
            }
            int P = (int)nr;
            if (!(buf = malloc(sizeof(float) * (size_t)P * 3)) || (rc = alloc3(P, wl, flux, err))) {
                rc = rc ? rc : GN_ENOMEM;
                break;
            }
            float nul = NAN;
            int any;
            fits_read_col(f, TFLOAT, cf, 1, 1, P, &nul, buf, &any, &st);
            if (has_i) fits_read_col(f, TFLOAT, ci, 1, 1, P, &nul, buf + P, &any, &st);
            if (has_m) fits_read_col(f, TFLOAT, cm, 1, 1, P, &nul, buf + 2 * P, &any, &st);
            if (!st && wave) rc = read_grid(wave, P, *wl);
            else if (!st) {
                fits_read_col(f, TDOUBLE, has_l ? cl : cw, 1, 1, P, NULL, *wl, &any, &st);
                for (int i = 0; has_l && i < P; i++) (*wl)[i] = pow(10, (*wl)[i]);
            }
            if (st) rc = fits_fail(path, st, "reading the spectrum table");
            if (!rc) set_pixels(P, buf, has_i ? buf + P : NULL, has_m ? buf + 2 * P : NULL, *flux, *err);
            *n = P;
            goto done;
        }
    }
    if (!rc)
        rc = gn_err(GN_EFORMAT, "%s: no spectrum: no image HDU with pixels and no table with a flux column",
                    path);
    fits_close_file(f, &st);
    free(buf);
    return rc;
done:
    st = 0;
    fits_close_file(f, &st);
    free(buf);
    if (rc && *wl) free(*wl), free(*flux), free(*err), *wl = *flux = *err = NULL;
    return rc;
}

int io_spectrum_read(const char *path, const char *wave, int *n, double **wl, double **flux, double **err) {
    *wl = *flux = *err = NULL;
    *n = 0;
    size_t L = strlen(path);
    int npy = L > 4 && !strcmp(path + L - 4, ".npy");
    int rc = npy ? read_npy(path, wave, n, wl, flux, err) : read_fits(path, wave, n, wl, flux, err);
    if (rc) return rc;
    for (int i = 1; i < *n; i++)
        if (!((*wl)[i] > (*wl)[i - 1])) {
            free(*wl), free(*flux), free(*err), *wl = *flux = *err = NULL;
            return gn_err(GN_EFORMAT, "%s: wavelengths do not increase at pixel %d", path, i);
        }
    if (!((*wl)[0] > 0)) {
        free(*wl), free(*flux), free(*err), *wl = *flux = *err = NULL;
        return gn_err(GN_EFORMAT, "%s: wavelength %g Å at pixel 0 (expected Å)", path, (*wl)[0]);
    }
    return GN_OK;
}

// ---- the chain for one galaxy ----

typedef struct slot {
    int ok, gaps, clipped;
    char reason[512];
} slot;

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void prep_one(const io_specset_spec *s, size_t row, const double *grid, float *out, uint8_t *mask,
                     slot *sl) {
    char path[4096], wpath[4096];
    const char *id = io_catalog_id(s->cat, row);
    sl->ok = 0, sl->gaps = sl->clipped = 0;
    if (io_expand_template(s->template, id, NULL, path, sizeof path) ||
        (s->wave && io_expand_template(s->wave, id, NULL, wpath, sizeof wpath))) {
        snprintf(sl->reason, sizeof sl->reason, "%s", gn_errmsg());
        return;
    }
    int n, P = s->pixels;
    double *wl, *fl, *er;
    if (io_spectrum_read(path, s->wave ? wpath : NULL, &n, &wl, &fl, &er)) {
        snprintf(sl->reason, sizeof sl->reason, "%s", gn_errmsg());
        return;
    }
    double z = 0;
    if (s->z_col && *s->z_col) {
        z = io_catalog_values(s->cat, s->z_col)[row];
        if (!(z > -1) || !isfinite(z)) {
            snprintf(sl->reason, sizeof sl->reason, "no redshift (%s is null)", s->z_col);
            free(wl), free(fl), free(er);
            return;
        }
        io_spec_to_rest(wl, fl, er, n, z);
    }
    double *fo = malloc(sizeof(double) * (size_t)P * 3), *eo = fo ? fo + P : NULL,
           *tmp = fo ? fo + 2 * P : NULL;
    if (!fo) {
        snprintf(sl->reason, sizeof sl->reason, "out of memory");
        free(wl), free(fl), free(er);
        return;
    }
    int gaps = io_spec_resample(wl, fl, er, n, grid, P, fo, eo);
    free(wl), free(fl), free(er);
    if (gaps < 0) {
        snprintf(sl->reason, sizeof sl->reason, "%.200s: %.300s", path, gn_errmsg());
        free(fo);
        return;
    }
    if (gaps > s->max_gap * P) {
        snprintf(sl->reason, sizeof sl->reason,
                 "%d of %d grid pixels have no good data at z = %.4f (more than max_gap %.3g)", gaps, P, z,
                 s->max_gap);
        free(fo);
        return;
    }
    // the error clip: above the err_pct percentile of this spectrum's errors
    double thr = INFINITY;
    int m = 0;
    for (int i = 0; i < P; i++)
        if (!isnan(fo[i])) tmp[m++] = eo[i];
    if (s->err_pct > 0 && s->err_pct < 100 && m > 1) {
        qsort(tmp, (size_t)m, sizeof(double), cmp_d);
        double pos = s->err_pct / 100 * (m - 1);
        int k = (int)pos;
        thr = k + 1 < m ? tmp[k] + (pos - k) * (tmp[k + 1] - tmp[k]) : tmp[m - 1];
    }
    for (int i = 0; i < P; i++) {
        int bad = isnan(fo[i]);
        int clip = !bad && eo[i] > thr;
        mask[i] = (uint8_t)(bad || clip);
        out[i] = mask[i] ? 0 : (float)fo[i];
        sl->clipped += clip;
    }
    sl->gaps = gaps;
    free(fo);
    if (m - sl->clipped < 2) {
        snprintf(sl->reason, sizeof sl->reason, "fewer than 2 good pixels");
        return;
    }
    sl->ok = 1;
}

// ---- the cache ----

static uint64_t hash_str(uint64_t h, const char *s) {
    return io_fnv1a(s ? s : "", strlen(s ? s : "") + 1, h);
}

static int source_hash(const io_specset_spec *s, uint64_t *out) {
    uint64_t h = io_fnv1a(SPEC_MAGIC, 8, IO_FNV_INIT);
    h = io_fnv1a(&s->cat->content_hash, 8, h);
    h = hash_str(h, s->template);
    h = hash_str(h, s->wave);
    h = hash_str(h, s->z_col);
    double par[6] = {s->lo, s->hi, s->max_gap, s->err_pct, s->median, 0};
    int32_t ip[3] = {s->pixels, s->n_ev, s->iters};
    h = io_fnv1a(par, sizeof par, h);
    h = io_fnv1a(ip, sizeof ip, h);
    char path[4096];
    const char *tm[2] = {s->template, s->wave};
    for (size_t r = 0; r < s->cat->n_rows; r++)
        for (int k = 0; k < 2; k++) {
            if (!tm[k] || (k == 1 && r > 0 && !strstr(tm[k], "{"))) continue; // a shared grid: once
            if (io_expand_template(tm[k], io_catalog_id(s->cat, r), NULL, path, sizeof path))
                return GN_EINVAL;
            h = io_hash_file(h, path, path);
        }
    *out = h;
    return GN_OK;
}

static int build(const io_specset_spec *s, uint64_t hash, const char *cache, io_dataset *ds) {
    size_t N = s->cat->n_rows;
    int P = s->pixels;
    double *grid = malloc(sizeof(double) * (size_t)P);
    float *X = malloc(sizeof(float) * (N ? N : 1) * (size_t)P);
    uint8_t *mask = malloc((N ? N : 1) * (size_t)P);
    slot *sl = malloc(sizeof(slot) * (N ? N : 1));
    uint32_t *rows = malloc(sizeof(uint32_t) * (N ? N : 1));
    if (!grid || !X || !mask || !sl || !rows) {
        free(grid), free(X), free(mask), free(sl), free(rows);
        return gn_err(GN_ENOMEM, "out of memory for %zu spectra of %d pixels", N, P);
    }
    io_spec_log_grid(s->lo, s->hi, P, grid);
    double t0 = gn_now();
#pragma omp parallel for schedule(dynamic, 16)
    for (size_t r = 0; r < N; r++) prep_one(s, r, grid, X + r * P, mask + r * P, &sl[r]);
    size_t kept = 0, skipped = 0, filled = 0, gap_px = 0;
    char skippath[4300];
    snprintf(skippath, sizeof skippath, "%s.skipped.txt", cache);
    FILE *skiplog = NULL;
    for (size_t r = 0; r < N; r++) {
        if (!sl[r].ok) {
            if (skipped < 10) logf_(s, "skipping galaxy %s: %s", io_catalog_id(s->cat, r), sl[r].reason);
            else if (skipped == 10) logf_(s, "(further skipped spectra are listed in %s)", skippath);
            if (!skiplog) skiplog = fopen(skippath, "w");
            if (skiplog) fprintf(skiplog, "%s\t%s\n", io_catalog_id(s->cat, r), sl[r].reason);
            skipped++;
            continue;
        }
        if (kept != r)
            memmove(X + kept * P, X + r * P, sizeof(float) * P),
                memmove(mask + kept * P, mask + r * P, (size_t)P);
        for (int i = 0; i < P; i++) filled += mask[kept * P + i];
        gap_px += (size_t)sl[r].gaps;
        rows[kept++] = (uint32_t)r;
    }
    if (skiplog) fclose(skiplog);
    int rc = GN_OK;
    if (!kept)
        rc = gn_err(GN_EIO, "no catalog row has a usable spectrum (%zu skipped; template '%s')", skipped,
                    s->template);
    if (!rc) {
        logf_(s,
              "spectra: %zu read and resampled in %.1f s; filling %zu masked pixels (%zu outside coverage or "
              "bad, %zu error-clipped) "
              "by iterative PCA (%d components, %d rounds)",
              kept, gn_now() - t0, filled, gap_px, filled - gap_px, s->n_ev, s->iters);
        rc = st_pca_fill(X, mask, kept, P, s->n_ev, s->iters);
    }
    for (size_t i = 0; !rc && i < kept; i++) {
        double *tmp = malloc(sizeof(double) * (size_t)P);
        if (!tmp) {
            rc = GN_ENOMEM;
            break;
        }
        for (int j = 0; j < P; j++) tmp[j] = X[i * P + j];
        double f = io_spec_median_norm(tmp, NULL, P, s->median);
        if (!isfinite(f))
            rc = gn_err(GN_EINVAL,
                        "galaxy %s: its spectrum's median is not positive after gap filling (flux units?)",
                        io_catalog_id(s->cat, rows[i]));
        for (int j = 0; j < P; j++) X[i * P + j] = (float)tmp[j];
        free(tmp);
    }
    if (!rc) {
        io_dataset d;
        memset(&d, 0, sizeof d);
        d.n = kept, d.c = 1, d.h = 1, d.w = P;
        d.row = rows, d.pix = X;
        d.n_skipped = skipped, d.n_masked_gal = kept, d.n_masked_pix = filled;
        snprintf(d.bands[0], IO_BAND_NAME, "flux");
        char desc[1024];
        snprintf(desc, sizeof desc,
                 "spectra catalog=%s template=%s wave=%s z=%s grid=%g-%g/%d max_gap=%g err_pct=%g pca=%d/%d "
                 "median=%g",
                 s->cat->path, s->template, s->wave ? s->wave : "-", s->z_col ? s->z_col : "-", s->lo, s->hi,
                 P, s->max_gap, s->err_pct, s->n_ev, s->iters, s->median);
        rc = io_dataset_save(cache, hash, &d, desc);
    }
    ds->n_skipped = skipped;
    ds->build_seconds = gn_now() - t0;
    free(grid), free(X), free(mask), free(sl), free(rows);
    return rc;
}

int io_specset_open(const io_specset_spec *s, io_dataset *ds) {
    memset(ds, 0, sizeof *ds);
    if (!s->cat || s->cat->id_col < 0) return gn_err(GN_EINVAL, "the catalog needs an 'id' column");
    if (!s->template) return gn_err(GN_EINVAL, "no spectra: give [branch] spectra = 'spectra/{id}.npy'");
    if (!(s->lo > 0) || !(s->hi > s->lo) || s->pixels < 64 || s->pixels > 1000000)
        return gn_err(GN_EINVAL,
                      "spectral grid %g-%g Å with %d pixels: need 0 < lo < hi and 64..1000000 pixels", s->lo,
                      s->hi, s->pixels);
    if (!(s->max_gap >= 0 && s->max_gap < 1) || !(s->err_pct >= 0 && s->err_pct <= 100) || s->n_ev < 1 ||
        s->iters < 0 || !(s->median > 0))
        return gn_err(GN_EINVAL,
                      "spectra: max_gap in [0, 1), err_pct in [0, 100], pca components >= 1, median > 0");
    if (s->z_col && *s->z_col && !io_catalog_values(s->cat, s->z_col))
        return gn_err_prefix(GN_EINVAL, "spectra redshift: ");
    uint64_t hash;
    int rc = source_hash(s, &hash);
    if (rc) return rc;
    char path[4096], why[256];
    if ((rc = io_cache_path(s->cat, s->cache_dir, "spec", hash, path, sizeof path))) return rc;
    if (io_dataset_load(path, hash, ds, why, sizeof why) == GN_OK) {
        snprintf(ds->cache_path, sizeof ds->cache_path, "%s", path);
        logf_(s, "spectra cache %s: %zu spectra of %d pixels (%zu catalog rows skipped when built)", path,
              ds->n, ds->w, ds->n_skipped);
        return GN_OK;
    }
    logf_(s, "building spectra cache %s (%s)", path, why);
    if ((rc = build(s, hash, path, ds))) return rc;
    double secs = ds->build_seconds;
    memset(ds, 0, sizeof *ds);
    if (io_dataset_load(path, hash, ds, why, sizeof why))
        return gn_err(GN_EIO, "%s: the new cache does not verify: %s", path, why);
    snprintf(ds->cache_path, sizeof ds->cache_path, "%s", path);
    ds->built = 1, ds->build_seconds = secs;
    logf_(s,
          "spectra: %zu galaxies on %g-%g Å (%d log-spaced pixels) in %.1f s; %zu catalog row(s) skipped; "
          "%.2f%% of pixels filled",
          ds->n, s->lo, s->hi, ds->w, secs, ds->n_skipped,
          100.0 * ds->n_masked_pix / ((double)ds->n * ds->w));
    return GN_OK;
}
