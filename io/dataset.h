// Datasets: a catalog + cutouts found by a path template, decoded once into
// a single binary cache file and memory-mapped from then on.
//
// The cache is keyed by a hash of everything it was made from: the catalog's
// bytes, the template, the bands, the size, the pixel transform, and the size
// and modification time of every cutout file. A cache whose key differs, or
// whose CRC does not verify, is rebuilt — never silently used.
#ifndef IO_DATASET_H
#define IO_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "catalog.h"

#define IO_MAX_BANDS 16
#define IO_BAND_NAME 16

enum { IO_TF_NONE = 0, IO_TF_SIGNLOG, IO_TF_ASINH };

typedef void (*io_log_fn)(void *user, const char *line);
// A formatted message to log (nothing when log is NULL).
void io_logf(io_log_fn log, void *user, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

typedef struct io_dataset_spec {
    const io_catalog *cat;
    const char *template; // "cutouts/{id}.fits", "png/{id}_{band}.png", "x/{id}.fits[SCI]"
    int n_bands;          // band names: one file each with {band}; else the planes of each file
    char bands[IO_MAX_BANDS][IO_BAND_NAME];
    int size;             // centre crop to size x size (0: keep the files' size; all must agree)
    int bin;              // then sum bin x bin pixel blocks (flux-conserving; 0/1: none); size % bin == 0
    int transform;        // IO_TF_*: sign(x) ln(1+|x|) or asinh(x / asinh_scale), after flux normalisation
    float asinh_scale;
    const char *fluxnorm; // column template, e.g. "flux_{band}": divide band b by its clipped flux
    const char *cache_dir; // NULL: $GALNN_CACHE, $XDG_CACHE_HOME/galnn or ~/.cache/galnn
    int strict;           // a missing/unreadable cutout or a NaN pixel is an error, not a skip
    io_log_fn log;        // messages (skips, progress); may be NULL
    void *log_user;
} io_dataset_spec;

typedef struct io_dataset {
    size_t n;             // galaxies with usable cutouts
    int c, h, w;
    char bands[IO_MAX_BANDS][IO_BAND_NAME];
    const uint32_t *row;  // (n) catalog row of each entry
    const float *pix;     // (n, c, h, w)
    void *map;
    size_t map_len;
    char cache_path[4096];
    size_t n_skipped;     // catalog rows without a usable cutout
    size_t n_masked_gal, n_masked_pix; // galaxies / pixels whose NaN was set to 0
    int built;            // 1: decoded this time; 0: read from the cache
    double build_seconds;
} io_dataset;

// Open (building the cache if needed).
int io_dataset_open(const io_dataset_spec *spec, io_dataset *ds);
void io_dataset_close(io_dataset *ds);
static inline const float *io_dataset_image(const io_dataset *ds, size_t i) {
    return ds->pix + i * (size_t)ds->c * ds->h * ds->w;
}
// Cache files for datasets made elsewhere (io/specset.c): the path DIR/PREFIX-HASH.bin
// (DIR: cache_dir, or $GALNN_CACHE, $XDG_CACHE_HOME/galnn, ~/.cache/galnn; created), an atomic
// write of an in-memory dataset (d->row, d->pix, n, c, h, w, bands, counters),
// and a verified, memory-mapped load (GN_OK only if the hash and CRC match;
// otherwise why says what is wrong).
// A cache key's share of one source file: its name, size and modification time
// (name: as written in the key; path: the file to stat).
uint64_t io_hash_file(uint64_t h, const char *name, const char *path);
int io_cache_path(const io_catalog *cat, const char *cache_dir, const char *prefix, uint64_t hash, char *out,
                  size_t len);
int io_dataset_save(const char *path, uint64_t hash, const io_dataset *d, const char *describe);
int io_dataset_load(const char *path, uint64_t hash, io_dataset *ds, char *why, size_t wlen);
// Parse "u,g,r,i,z" into spec->bands.
int io_parse_bands(const char *list, io_dataset_spec *spec);
// Expand {id} and {band} in a template; an unknown {...} is an error.
int io_expand_template(const char *tmpl, const char *id, const char *band, char *out, size_t len);

// Per-band mean and standard deviation over the entries whose split is
// `which` (split indexed by catalog row), in double precision.
int io_dataset_band_stats(const io_dataset *ds, const uint8_t *split, int which, double *mean, double *std);

#endif
