#include "dataset.h"

#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "../common/gn_common.h"
#include "image.h"

#define CACHE_MAGIC "GALNNDS1"
#define CACHE_VERSION 1u
#define HEADER_BYTES 4096
#define CHUNK 256 // galaxies decoded in parallel per write

// On-disk header (little-endian hosts; the magic would not match elsewhere).
typedef struct cache_header {
    char magic[8];
    uint32_t version, header_bytes;
    uint64_t n, c, h, w;
    uint64_t source_hash;
    uint32_t payload_crc;
    uint32_t n_skipped;
    uint64_t n_masked_gal, n_masked_pix;
    char bands[IO_MAX_BANDS][IO_BAND_NAME];
    char describe[1024]; // human-readable: what the cache was made from
} cache_header;
_Static_assert(sizeof(cache_header) <= HEADER_BYTES, "cache header fits");

void io_logf(io_log_fn log, void *user, const char *fmt, ...) {
    if (!log) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    log(user, line);
}

#define logf_(s, ...) io_logf((s)->log, (s)->log_user, __VA_ARGS__)

int io_parse_bands(const char *list, io_dataset_spec *s) {
    s->n_bands = 0;
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == '\t') p++; // "u, g, r" as written in configuration files
        const char *e = strchr(p, ',');
        size_t L = e ? (size_t)(e - p) : strlen(p);
        while (L && (p[L - 1] == ' ' || p[L - 1] == '\t')) L--;
        if (!L || L >= IO_BAND_NAME)
            return gn_err(GN_EINVAL, "band list '%s': empty or too long band name", list);
        if (s->n_bands == IO_MAX_BANDS)
            return gn_err(GN_EINVAL, "band list '%s': more than %d bands", list, IO_MAX_BANDS);
        memcpy(s->bands[s->n_bands], p, L);
        s->bands[s->n_bands++][L] = 0;
        p = e ? e + 1 : p + strlen(p);
    }
    return s->n_bands ? GN_OK : gn_err(GN_EINVAL, "empty band list");
}

int io_expand_template(const char *t, const char *id, const char *band, char *out, size_t len) {
    size_t o = 0;
    for (const char *p = t; *p;) {
        const char *sub = NULL;
        if (!strncmp(p, "{id}", 4))
            sub = id, p += 4;
        else if (!strncmp(p, "{band}", 6)) {
            if (!band) return gn_err(GN_EINVAL, "template '%s' uses {band} but no bands were given", t);
            sub = band, p += 6;
        } else if (*p == '{') {
            const char *e = strchr(p, '}');
            return gn_err(GN_EINVAL, "template '%s': unknown placeholder '%.*s' (use {id} and {band})", t,
                          e ? (int)(e - p + 1) : (int)strlen(p), p);
        }
        if (sub) {
            size_t L = strlen(sub);
            if (o + L >= len) return gn_err(GN_EINVAL, "path from template '%s' too long", t);
            memcpy(out + o, sub, L);
            o += L;
        } else {
            if (o + 1 >= len) return gn_err(GN_EINVAL, "path from template '%s' too long", t);
            out[o++] = *p++;
        }
    }
    out[o] = 0;
    return GN_OK;
}

static int uses_band(const char *t) { return strstr(t, "{band}") != NULL; }

// The file part of a path ("x.fits[SCI]" -> "x.fits"), for stat().
static void file_part(const char *path, char *out, size_t len) {
    snprintf(out, len, "%s", path);
    size_t L = strlen(out);
    char *br = strrchr(out, '[');
    if (br && L && out[L - 1] == ']') *br = 0;
}

// ---- the source hash ----

static uint64_t hash_str(uint64_t h, const char *s) { return io_fnv1a(s, strlen(s) + 1, h); }

uint64_t io_hash_file(uint64_t h, const char *name, const char *path) {
    struct stat st;
    int64_t meta[3] = {-1, -1, -1};
    if (!stat(path, &st)) meta[0] = st.st_size, meta[1] = st.st_mtim.tv_sec, meta[2] = st.st_mtim.tv_nsec;
    h = hash_str(h, name);
    return io_fnv1a(meta, sizeof meta, h);
}

static int source_hash(const io_dataset_spec *s, uint64_t *out) {
    uint64_t h = io_fnv1a(CACHE_MAGIC, 8, IO_FNV_INIT);
    uint32_t v = CACHE_VERSION;
    h = io_fnv1a(&v, sizeof v, h);
    h = io_fnv1a(&s->cat->content_hash, 8, h);
    h = hash_str(h, s->template);
    for (int b = 0; b < s->n_bands; b++) h = hash_str(h, s->bands[b]);
    int32_t par[3] = {s->size, s->transform, s->bin > 1 ? s->bin : 1};
    h = io_fnv1a(par, sizeof par, h);
    h = io_fnv1a(&s->asinh_scale, sizeof s->asinh_scale, h);
    h = hash_str(h, s->fluxnorm ? s->fluxnorm : "");
    int per_band = uses_band(s->template);
    char path[4096], fp[4096];
    for (size_t r = 0; r < s->cat->n_rows; r++)
        for (int b = 0; b < (per_band ? s->n_bands : 1); b++) {
            if (io_expand_template(s->template, io_catalog_id(s->cat, r), per_band ? s->bands[b] : NULL, path,
                                   sizeof path))
                return GN_EINVAL;
            file_part(path, fp, sizeof fp);
            h = io_hash_file(h, path, fp);
        }
    *out = h;
    return GN_OK;
}

// ---- decoding one galaxy ----

typedef struct fluxclip {
    const double *col[IO_MAX_BANDS];
    double lo[IO_MAX_BANDS], hi[IO_MAX_BANDS];
} fluxclip;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// Percentile p (0..100) of the non-null values, linear interpolation (numpy's default).
static double percentile(const double *v, size_t n, double p, int *ok) {
    double *t = gn_malloc(sizeof(double) * (n ? n : 1));
    size_t m = 0;
    for (size_t i = 0; t && i < n; i++)
        if (!isnan(v[i])) t[m++] = v[i];
    *ok = t && m > 0;
    if (!*ok) return free(t), NAN;
    qsort(t, m, sizeof(double), cmp_double);
    double pos = p / 100.0 * (double)(m - 1);
    size_t i = (size_t)pos;
    double r = i + 1 < m ? t[i] + (t[i + 1] - t[i]) * (pos - (double)i) : t[m - 1];
    free(t);
    return r;
}

// Flux normalisation (spec/methods.md §1.4): band b divided by
// clip(flux_b, P_low, P_100); P_low is the 2nd percentile for u and the 0.1th
// for the other bands, P_100 the maximum, over the catalog's valid fluxes.
static int fluxclip_init(const io_dataset_spec *s, int nb, fluxclip *fc) {
    for (int b = 0; b < nb; b++) {
        char name[256];
        if (io_expand_template(s->fluxnorm, "", s->bands[b], name, sizeof name)) return GN_EINVAL;
        fc->col[b] = io_catalog_values(s->cat, name);
        if (!fc->col[b]) return gn_err_prefix(GN_EINVAL, "flux normalisation: ");
        int ok;
        fc->lo[b] = percentile(fc->col[b], s->cat->n_rows, strcmp(s->bands[b], "u") ? 0.1 : 2.0, &ok);
        fc->hi[b] = percentile(fc->col[b], s->cat->n_rows, 100.0, &ok);
        if (!ok)
            return gn_err(GN_EINVAL, "%s: column '%s' has no valid values for flux normalisation",
                          s->cat->path, name);
        if (!(fc->lo[b] > 0))
            return gn_err(GN_EINVAL, "%s: column '%s': the low clip %g is not positive", s->cat->path, name,
                          fc->lo[b]);
        logf_(s, "flux normalisation, band %s: %s clipped to [%.4g, %.4g]", s->bands[b], name, fc->lo[b],
              fc->hi[b]);
    }
    return GN_OK;
}

typedef struct slot {
    int ok;
    char reason[512];
    size_t masked;
} slot;

// Sum bin x bin blocks of each of C planes S x S in place (S % bin == 0).
// Every output index is at most the smallest index it reads, and later
// outputs read only larger indices, so working forward is safe.
static void rebin(float *p, int C, int S, int bin) {
    int So = S / bin;
    for (int b = 0; b < C; b++)
        for (int y = 0; y < So; y++)
            for (int x = 0; x < So; x++) {
                float acc = 0;
                for (int dy = 0; dy < bin; dy++)
                    for (int dx = 0; dx < bin; dx++)
                        acc += p[((size_t)b * S + (size_t)(y * bin + dy)) * S + x * bin + dx];
                p[((size_t)b * So + y) * So + x] = acc;
            }
}

// Decode, crop, bin, normalise and transform galaxy `row` into out (C, S/bin, S/bin).
static void decode_one(const io_dataset_spec *s, size_t row, int C, int S, const fluxclip *fc, float *out,
                       slot *sl) {
    const char *id = io_catalog_id(s->cat, row);
    int per_band = uses_band(s->template);
    char path[4096];
    sl->ok = 0;
    sl->masked = 0;
    for (int f = 0; f < (per_band ? C : 1); f++) {
        if (io_expand_template(s->template, id, per_band ? s->bands[f] : NULL, path, sizeof path)) {
            snprintf(sl->reason, sizeof sl->reason, "%s", gn_errmsg());
            return;
        }
        io_image im;
        if (io_image_read(path, &im)) {
            snprintf(sl->reason, sizeof sl->reason, "%s", gn_errmsg());
            return;
        }
        int want_c = per_band ? 1 : C;
        if (im.c != want_c) {
            snprintf(sl->reason, sizeof sl->reason, "%.400s: %d band(s), expected %d%s", path, im.c, want_c,
                     per_band ? " (one file per band)" : " (the --bands list)");
            io_image_free(&im);
            return;
        }
        if (im.h < S || im.w < S || (!s->size && (im.h != S || im.w != S))) {
            snprintf(sl->reason, sizeof sl->reason, "%.400s: %dx%d, but the dataset's cutouts are %dx%d%s",
                     path, im.h, im.w, S, S, s->size ? "" : " (--size or [data] size crops larger ones)");
            io_image_free(&im);
            return;
        }
        int oy = (im.h - S) / 2, ox = (im.w - S) / 2; // centre crop
        for (int b = 0; b < im.c; b++)
            for (int y = 0; y < S; y++)
                memcpy(out + ((size_t)(f + b) * S + y) * S, im.data + ((size_t)b * im.h + oy + y) * im.w + ox,
                       sizeof(float) * (size_t)S);
        io_image_free(&im);
    }
    int bin = s->bin > 1 ? s->bin : 1;
    if (bin > 1) rebin(out, C, S, bin), S /= bin;
    size_t P = (size_t)S * S;
    for (int b = 0; b < C; b++) {
        float scale = 1.0f;
        if (s->fluxnorm) {
            double fl = fc->col[b][row];
            if (isnan(fl)) {
                snprintf(sl->reason, sizeof sl->reason,
                         "flux for band %s is null (needed for flux normalisation)", s->bands[b]);
                return;
            }
            fl = fl < fc->lo[b] ? fc->lo[b] : fl > fc->hi[b] ? fc->hi[b] : fl;
            scale = (float)(1.0 / fl);
        }
        float *p = out + (size_t)b * P;
        for (size_t i = 0; i < P; i++) {
            float v = p[i];
            if (!isfinite(v)) {
                sl->masked++;
                p[i] = 0.0f;
                continue;
            }
            v *= scale;
            if (s->transform == IO_TF_SIGNLOG)
                v = copysignf(log1pf(fabsf(v)), v);
            else if (s->transform == IO_TF_ASINH)
                v = asinhf(v / s->asinh_scale);
            p[i] = v;
        }
    }
    if (sl->masked && s->strict) {
        snprintf(sl->reason, sizeof sl->reason, "%zu NaN/blank pixel(s) (--strict)", sl->masked);
        return;
    }
    sl->ok = 1;
}

// Probe the band count and the size of the cutouts: the most common size among
// the first readable ones (up to 64 of the first 1000 rows), so one odd file
// first in the catalog does not set the size of the whole dataset.
static int probe(const io_dataset_spec *s, int *C, int *H, int *W) {
    char path[4096];
    int per_band = uses_band(s->template), n = 0, hw[64][3]; // h, w, count
    for (size_t r = 0; r < s->cat->n_rows && r < 1000 && n < 64; r++) {
        if (io_expand_template(s->template, io_catalog_id(s->cat, r), per_band ? s->bands[0] : NULL, path,
                               sizeof path))
            return GN_EINVAL;
        io_image im;
        if (io_image_read(path, &im)) continue;
        if (!n) *C = per_band ? s->n_bands : im.c;
        int c = im.c, k = 0;
        hw[n][0] = im.h, hw[n][1] = im.w, hw[n][2] = 0;
        io_image_free(&im);
        if (!n && !per_band && s->n_bands && s->n_bands != c)
            return gn_err(GN_EINVAL, "%s has %d planes but %d band names were given", path, c, s->n_bands);
        while (hw[k][0] != hw[n][0] || hw[k][1] != hw[n][1]) k++;
        hw[k][2]++, n++;
    }
    if (!n)
        return gn_err(GN_EIO, "no readable cutout among the first catalog rows (template '%s'; first: %s)",
                      s->template, gn_errmsg());
    int best = 0;
    for (int k = 1; k < n; k++)
        if (hw[k][2] > hw[best][2]) best = k;
    *H = hw[best][0], *W = hw[best][1];
    return GN_OK;
}

// A galaxy without a usable cutout: an error with --strict, else logged (the first 20) and listed in
// the cache's .skipped.txt.
static int skip(const io_dataset_spec *s, io_dataset *ds, size_t r, const char *reason, FILE **skiplog,
                const char *skippath) {
    if (s->strict)
        return gn_err(GN_EIO, "galaxy %s (catalog row %zu): %s", io_catalog_id(s->cat, r), r + 1, reason);
    if (ds->n_skipped < 20)
        logf_(s, "skipping galaxy %s: %s", io_catalog_id(s->cat, r), reason);
    else if (ds->n_skipped == 20)
        logf_(s, "(further skipped galaxies are listed in %s)", skippath);
    if (!*skiplog) *skiplog = fopen(skippath, "w");
    if (*skiplog) fprintf(*skiplog, "%s\t%s\n", io_catalog_id(s->cat, r), reason);
    ds->n_skipped++;
    return GN_OK;
}

// Move n pixel bytes of the cache file from offset `from` to `to` (to <= from) and add them to the CRC,
// then cut the file there.
static int move_pixels(int fd, const char *tmp, size_t n, size_t from, size_t to, uint32_t *crc) {
    unsigned char *blk = gn_malloc(1 << 22);
    int rc = blk ? GN_OK : GN_ENOMEM;
    for (size_t o = 0; !rc && o < n; o += 1 << 22) {
        size_t L = n - o < (1u << 22) ? n - o : (1u << 22);
        if (pread(fd, blk, L, (off_t)(from + o)) != (ssize_t)L)
            rc = gn_err(GN_EIO, "%s: read back failed", tmp);
        else {
            *crc = (uint32_t)crc32(*crc, blk, (uInt)L);
            if (from != to && pwrite(fd, blk, L, (off_t)(to + o)) != (ssize_t)L)
                rc = gn_err(GN_EIO, "%s: write failed", tmp);
        }
    }
    free(blk);
    if (!rc && ftruncate(fd, (off_t)(to + n))) rc = gn_err(GN_EIO, "%s: truncate failed", tmp);
    return rc;
}

static void fill_header(cache_header *hd, const io_dataset_spec *s, size_t kept, int C, int S, int bin,
                        uint64_t hash, uint32_t crc, const io_dataset *ds) {
    memcpy(hd->magic, CACHE_MAGIC, 8);
    hd->version = CACHE_VERSION;
    hd->header_bytes = HEADER_BYTES;
    hd->n = kept, hd->c = (uint64_t)C, hd->h = hd->w = (uint64_t)(S / bin);
    hd->source_hash = hash;
    hd->payload_crc = crc;
    hd->n_skipped = (uint32_t)ds->n_skipped;
    hd->n_masked_gal = ds->n_masked_gal, hd->n_masked_pix = ds->n_masked_pix;
    for (int b = 0; b < C; b++) memcpy(hd->bands[b], s->bands[b], IO_BAND_NAME);
    snprintf(hd->describe, sizeof hd->describe,
             "catalog=%s template=%s size=%d bin=%d transform=%d asinh=%g fluxnorm=%s", s->cat->path,
             s->template, S, bin, s->transform, (double)s->asinh_scale, s->fluxnorm ? s->fluxnorm : "-");
}

// The bands (named 0.. when the spec names none), the decoded size S and the binning factor.
static int geometry(io_dataset_spec *s, int *C, int *S, int *bin) {
    int H = 0, W = 0, rc = probe(s, C, &H, &W);
    if (rc) return rc;
    if (!s->n_bands) {
        s->n_bands = *C;
        for (int b = 0; b < *C; b++) snprintf(s->bands[b], IO_BAND_NAME, "%d", b);
    }
    if (*C > IO_MAX_BANDS) return gn_err(GN_EINVAL, "%d bands (at most %d)", *C, IO_MAX_BANDS);
    *S = s->size ? s->size : H;
    if (!s->size && H != W)
        return gn_err(GN_EINVAL, "cutouts are %dx%d: give a square --size to crop to", H, W);
    *bin = s->bin > 1 ? s->bin : 1;
    if (*S % *bin)
        return gn_err(GN_EINVAL, "cutout size %d is not a multiple of the binning factor %d", *S, *bin);
    return GN_OK;
}

static int build(const io_dataset_spec *s0, uint64_t hash, const char *path, io_dataset *ds) {
    io_dataset_spec sd = *s0, *s = &sd;
    int C = 0, S = 0, bin = 1;
    int rc = geometry(s, &C, &S, &bin);
    if (rc) return rc;
    fluxclip fc;
    memset(&fc, 0, sizeof fc);
    if (s->fluxnorm && (rc = fluxclip_init(s, C, &fc))) return rc;
    size_t per = (size_t)C * S * S, N = s->cat->n_rows,
           per_out = per / ((size_t)bin * bin); // per: decode buffer
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w+b"); // read back for the CRC
    if (!f)
        return gn_err(GN_EIO, "%s: cannot create the dataset cache: %s (use --cache-dir)", tmp,
                      strerror(errno));
    uint32_t *rows = gn_malloc(sizeof(uint32_t) * (N ? N : 1));
    float *buf = gn_malloc(sizeof(float) * per * CHUNK);
    slot *sl = gn_malloc(sizeof(slot) * CHUNK);
    cache_header hd;
    memset(&hd, 0, sizeof hd);
    static const char zeros[HEADER_BYTES];
    double t0 = gn_now();
    size_t kept = 0;
    uint32_t crc = (uint32_t)crc32(0, NULL, 0);
    rc = rows && buf && sl ? GN_OK : GN_ENOMEM;
    // pixels first (after a placeholder header and the row table), rows after
    size_t rows_bytes = (sizeof(uint32_t) * N + 63) / 64 * 64;
    if (!rc && (fwrite(zeros, 1, HEADER_BYTES, f) != HEADER_BYTES)) rc = GN_EIO;
    for (size_t o = 0; !rc && o < rows_bytes; o += sizeof zeros)
        if (fwrite(zeros, 1, rows_bytes - o < sizeof zeros ? rows_bytes - o : sizeof zeros, f) == 0)
            rc = GN_EIO;
    FILE *skiplog = NULL;
    char skippath[4300];
    snprintf(skippath, sizeof skippath, "%s.skipped.txt", path);
    for (size_t c0 = 0; !rc && c0 < N; c0 += CHUNK) {
        int m = (int)(N - c0 < CHUNK ? N - c0 : CHUNK);
#pragma omp parallel for schedule(dynamic, 4)
        for (int k = 0; k < m; k++) decode_one(s, c0 + (size_t)k, C, S, &fc, buf + (size_t)k * per, &sl[k]);
        for (int k = 0; k < m && !rc; k++) {
            size_t r = c0 + (size_t)k;
            if (!sl[k].ok) {
                if ((rc = skip(s, ds, r, sl[k].reason, &skiplog, skippath))) break;
                continue;
            }
            if (sl[k].masked) ds->n_masked_gal++, ds->n_masked_pix += sl[k].masked;
            if (fwrite(buf + (size_t)k * per, sizeof(float), per_out, f) != per_out) {
                rc = gn_err(GN_EIO, "%s: write failed: %s", tmp, strerror(errno));
                break;
            }
            rows[kept++] = (uint32_t)r;
        }
        if (s->log && (c0 + (size_t)m) % (CHUNK * 8) == 0)
            logf_(s, "decoded %zu / %zu cutouts (%.0f galaxies/s)", c0 + (size_t)m, N,
                  (double)(c0 + (size_t)m) / (gn_now() - t0));
    }
    if (skiplog) fclose(skiplog);
    free(buf);
    free(sl);
    if (!rc && kept == 0)
        rc = gn_err(GN_EIO, "no catalog row has a usable cutout (%zu skipped; template '%s')", ds->n_skipped,
                    s->template);
    if (!rc) {
        // CRC over the row table (padded) and pixels, in file order
        memset(rows + kept, 0, sizeof(uint32_t) * (N - kept));
        size_t rb = (sizeof(uint32_t) * kept + 63) / 64 * 64; // final row table size
        unsigned char *rt = gn_calloc(1, rb ? rb : 1);
        if (!rt)
            rc = GN_ENOMEM;
        else {
            memcpy(rt, rows, sizeof(uint32_t) * kept);
            crc = (uint32_t)crc32(crc, rt, (uInt)rb);
            free(rt);
        }
        // the row table was reserved for N rows; move pixels up if fewer were kept
        if (!rc && fflush(f)) rc = GN_EIO;
        int fd = fileno(f);
        if (!rc)
            rc = move_pixels(fd, tmp, sizeof(float) * per_out * kept, HEADER_BYTES + rows_bytes,
                             HEADER_BYTES + rb, &crc);
        fill_header(&hd, s, kept, C, S, bin, hash, crc, ds);
        if (!rc &&
            (pwrite(fd, &hd, sizeof hd, 0) != (ssize_t)sizeof hd ||
             pwrite(fd, rows, sizeof(uint32_t) * kept, HEADER_BYTES) != (ssize_t)(sizeof(uint32_t) * kept)))
            rc = gn_err(GN_EIO, "%s: write failed", tmp);
        if (!rc && fsync(fd)) rc = gn_err(GN_EIO, "%s: fsync failed: %s", tmp, strerror(errno));
    }
    free(rows);
    if (fclose(f) && !rc) rc = gn_err(GN_EIO, "%s: close failed: %s", tmp, strerror(errno));
    if (!rc && rename(tmp, path)) rc = gn_err(GN_EIO, "%s: rename failed: %s", path, strerror(errno));
    if (rc) unlink(tmp);
    ds->build_seconds = gn_now() - t0;
    return rc;
}

// Map and verify a cache; GN_OK if it is valid for `hash`.
int io_dataset_load(const char *path, uint64_t hash, io_dataset *ds, char *why, size_t wlen) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        snprintf(why, wlen, "no cache yet");
        return GN_EIO;
    }
    struct stat st;
    cache_header hd;
    if (fstat(fd, &st) || st.st_size < HEADER_BYTES || pread(fd, &hd, sizeof hd, 0) != (ssize_t)sizeof hd) {
        close(fd);
        snprintf(why, wlen, "cache file is truncated");
        return GN_EFORMAT;
    }
    if (memcmp(hd.magic, CACHE_MAGIC, 8) || hd.version != CACHE_VERSION || hd.header_bytes != HEADER_BYTES) {
        close(fd);
        snprintf(why, wlen, "not a galnn dataset cache of this version");
        return GN_EFORMAT;
    }
    if (hd.source_hash != hash) {
        close(fd);
        snprintf(why, wlen, "its sources changed (catalog, cutouts or options)");
        return GN_EFORMAT;
    }
    size_t rb = (sizeof(uint32_t) * hd.n + 63) / 64 * 64;
    if (hd.c < 1 || hd.c > IO_MAX_BANDS || hd.h < 1 || hd.h > 16384 || (hd.w != hd.h && hd.h != 1) ||
        (uint64_t)st.st_size != HEADER_BYTES + rb + sizeof(float) * hd.n * hd.c * hd.h * hd.w) {
        close(fd);
        snprintf(why, wlen, "cache file size does not match its header (truncated?)");
        return GN_EFORMAT;
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        snprintf(why, wlen, "mmap failed: %s", strerror(errno));
        return GN_EIO;
    }
    const unsigned char *b = map;
    uint32_t crc = (uint32_t)crc32(0, NULL, 0);
    size_t total = (size_t)st.st_size - HEADER_BYTES;
    for (size_t o = 0; o < total; o += 1u << 30)
        crc = (uint32_t)crc32(crc, b + HEADER_BYTES + o,
                              (uInt)(total - o < (1u << 30) ? total - o : (1u << 30)));
    if (crc != hd.payload_crc) {
        munmap(map, (size_t)st.st_size);
        snprintf(why, wlen, "CRC mismatch (the cache file is corrupt)");
        return GN_EFORMAT;
    }
    ds->n = hd.n, ds->c = (int)hd.c, ds->h = (int)hd.h, ds->w = (int)hd.w;
    memcpy(ds->bands, hd.bands, sizeof ds->bands);
    ds->row = (const uint32_t *)(b + HEADER_BYTES);
    ds->pix = (const float *)(b + HEADER_BYTES + rb);
    ds->map = map;
    ds->map_len = (size_t)st.st_size;
    ds->n_skipped = hd.n_skipped;
    ds->n_masked_gal = hd.n_masked_gal, ds->n_masked_pix = hd.n_masked_pix;
    return GN_OK;
}

// The default cache directory: $GALNN_CACHE, else $XDG_CACHE_HOME/galnn, else ~/.cache/galnn (caches are
// keyed by content, so one directory serves every catalog); without a home, .galnn-cache beside the catalog.
static int default_cache_dir(const io_catalog *cat, char *dir, size_t len) {
    const char *g = getenv("GALNN_CACHE"), *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
    if (g && *g) snprintf(dir, len, "%s", g);
    else if (x && *x) snprintf(dir, len, "%s/galnn", x);
    else if (h && *h) snprintf(dir, len, "%s/.cache/galnn", h);
    else {
        char *cp = gn_strdup(cat->path);
        if (!cp) return GN_ENOMEM;
        snprintf(dir, len, "%s/.galnn-cache", dirname(cp));
        free(cp);
    }
    return GN_OK;
}

int io_cache_path(const io_catalog *cat, const char *cache_dir, const char *prefix, uint64_t hash, char *out,
                  size_t len) {
    char dir[3800];
    int rc = GN_OK;
    if (cache_dir) snprintf(dir, sizeof dir, "%s", cache_dir);
    else rc = default_cache_dir(cat, dir, sizeof dir);
    if (!rc && io_mkdirs(dir, NULL))
        return gn_err(GN_EIO, "%s: cannot create the cache directory (%s; set --cache-dir or GALNN_CACHE)",
                      dir,
                      gn_errmsg());
    if (rc) return rc;
    snprintf(out, len, "%s/%s-%016llx.bin", dir, prefix, (unsigned long long)hash);
    return GN_OK;
}

int io_dataset_save(const char *path, uint64_t hash, const io_dataset *d, const char *describe) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    size_t rb = (sizeof(uint32_t) * d->n + 63) / 64 * 64,
           pix = sizeof(float) * d->n * (size_t)d->c * d->h * d->w;
    unsigned char *rt = gn_calloc(1, rb ? rb : 1);
    if (!rt) return GN_ENOMEM;
    memcpy(rt, d->row, sizeof(uint32_t) * d->n);
    cache_header hd;
    memset(&hd, 0, sizeof hd);
    memcpy(hd.magic, CACHE_MAGIC, 8);
    hd.version = CACHE_VERSION;
    hd.header_bytes = HEADER_BYTES;
    hd.n = d->n, hd.c = (uint64_t)d->c, hd.h = (uint64_t)d->h, hd.w = (uint64_t)d->w;
    hd.source_hash = hash;
    uint32_t crc = (uint32_t)crc32(0, NULL, 0);
    crc = (uint32_t)crc32(crc, rt, (uInt)rb);
    for (size_t o = 0; o < pix; o += 1u << 30)
        crc = (uint32_t)crc32(crc, (const unsigned char *)d->pix + o,
                              (uInt)(pix - o < (1u << 30) ? pix - o : (1u << 30)));
    hd.payload_crc = crc;
    hd.n_skipped = (uint32_t)d->n_skipped;
    hd.n_masked_gal = d->n_masked_gal, hd.n_masked_pix = d->n_masked_pix;
    memcpy(hd.bands, d->bands, sizeof hd.bands);
    snprintf(hd.describe, sizeof hd.describe, "%s", describe ? describe : "");
    static const char zeros[HEADER_BYTES];
    FILE *f = fopen(tmp, "wb");
    int rc =
        f ? GN_OK
          : gn_err(GN_EIO, "%s: cannot create the dataset cache: %s (use --cache-dir)", tmp, strerror(errno));
    if (!rc &&
        (fwrite(&hd, sizeof hd, 1, f) != 1 ||
         fwrite(zeros, 1, HEADER_BYTES - sizeof hd, f) != HEADER_BYTES - sizeof hd ||
         fwrite(rt, 1, rb, f) != rb || fwrite(d->pix, 1, pix, f) != pix || fflush(f) || fsync(fileno(f))))
        rc = gn_err(GN_EIO, "%s: write failed: %s", tmp, strerror(errno));
    if (f && fclose(f) && !rc) rc = gn_err(GN_EIO, "%s: close failed: %s", tmp, strerror(errno));
    if (!rc && rename(tmp, path)) rc = gn_err(GN_EIO, "%s: rename failed: %s", path, strerror(errno));
    if (rc && f) unlink(tmp);
    free(rt);
    return rc;
}

int io_dataset_open(const io_dataset_spec *s, io_dataset *ds) {
    memset(ds, 0, sizeof *ds);
    if (!s->cat || s->cat->id_col < 0) return gn_err(GN_EINVAL, "the catalog needs an 'id' column");
    if (s->transform == IO_TF_ASINH && !(s->asinh_scale > 0))
        return gn_err(GN_EINVAL, "asinh scale must be positive");
    if (uses_band(s->template) && !s->n_bands)
        return gn_err(GN_EINVAL, "template '%s' uses {band}: give --bands", s->template);
    if (s->fluxnorm && !s->n_bands) return gn_err(GN_EINVAL, "flux normalisation needs band names (--bands)");
    if (s->size < 0 || s->size > 16384) return gn_err(GN_EINVAL, "cutout size %d", s->size);
    uint64_t hash;
    int rc = source_hash(s, &hash);
    if (rc) return rc;
    if ((rc = io_cache_path(s->cat, s->cache_dir, "ds", hash, ds->cache_path, sizeof ds->cache_path)))
        return rc;
    char why[256];
    if (io_dataset_load(ds->cache_path, hash, ds, why, sizeof why) == GN_OK) {
        if (s->strict && (ds->n_skipped || ds->n_masked_gal)) {
            size_t sk = ds->n_skipped, mg = ds->n_masked_gal;
            char cp[4096];
            memcpy(cp, ds->cache_path, sizeof cp);
            io_dataset_close(ds);
            return gn_err(
                GN_EIO,
                "--strict: %zu catalog row(s) have no usable cutout and %zu galaxies have NaN pixels "
                "(reported when the cache was built; skipped ids in %s.skipped.txt)",
                sk, mg, cp);
        }
        logf_(s, "dataset cache %s: %zu galaxies, %d bands, %dx%d (%zu catalog rows skipped when built)",
              ds->cache_path, ds->n, ds->c, ds->h, ds->w, ds->n_skipped);
        return GN_OK;
    }
    logf_(s, "building dataset cache %s (%s)", ds->cache_path, why);
    char cache_path[4096];
    memcpy(cache_path, ds->cache_path, sizeof cache_path);
    if ((rc = build(s, hash, cache_path, ds))) return rc;
    size_t skipped = ds->n_skipped;
    double secs = ds->build_seconds;
    memset(ds, 0, sizeof *ds);
    memcpy(ds->cache_path, cache_path, sizeof cache_path);
    if (io_dataset_load(cache_path, hash, ds, why, sizeof why))
        return gn_err(GN_EIO, "%s: the new cache does not verify: %s", cache_path, why);
    ds->built = 1;
    ds->build_seconds = secs;
    logf_(s, "dataset: %zu galaxies, %d bands, %dx%d in %.1f s; %zu catalog row(s) skipped", ds->n, ds->c,
          ds->h, ds->w, secs, skipped);
    if (ds->n_masked_gal)
        logf_(s, "dataset: %zu galaxies had %zu NaN/blank pixel(s), set to 0 (--strict makes this an error)",
              ds->n_masked_gal, ds->n_masked_pix);
    return GN_OK;
}

void io_dataset_close(io_dataset *ds) {
    if (ds->map) munmap(ds->map, ds->map_len);
    memset(ds, 0, sizeof *ds);
}

int io_dataset_band_stats(const io_dataset *ds, const uint8_t *split, int which, double *mean, double *std) {
    size_t P = (size_t)ds->h * ds->w, cnt = 0;
    for (int b = 0; b < ds->c; b++) mean[b] = std[b] = 0;
    for (size_t i = 0; i < ds->n; i++) {
        if (split && split[ds->row[i]] != which) continue;
        cnt++;
        const float *im = io_dataset_image(ds, i);
        for (int b = 0; b < ds->c; b++) {
            double s = 0;
            for (size_t p = 0; p < P; p++) s += im[(size_t)b * P + p];
            mean[b] += s;
        }
    }
    if (!cnt)
        return gn_err(GN_EINVAL, "no galaxies in the %s split to compute band statistics from",
                      io_split_name(which));
    for (int b = 0; b < ds->c; b++) mean[b] /= (double)cnt * (double)P;
    for (size_t i = 0; i < ds->n; i++) {
        if (split && split[ds->row[i]] != which) continue;
        const float *im = io_dataset_image(ds, i);
        for (int b = 0; b < ds->c; b++) {
            double s = 0;
            for (size_t p = 0; p < P; p++) {
                double d = im[(size_t)b * P + p] - mean[b];
                s += d * d;
            }
            std[b] += s;
        }
    }
    for (int b = 0; b < ds->c; b++) {
        std[b] = sqrt(std[b] / ((double)cnt * (double)P));
        if (!(std[b] > 0)) std[b] = 1; // a constant band: leave its scale alone
    }
    return GN_OK;
}
