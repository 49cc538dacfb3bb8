// Dataset flags shared by every command that reads a catalog and cutouts
// without a model configuration (galnn data): one flag-table fragment
// (DATAOPTS_FLAGS) that a command puts in its own table, and opening.
#ifndef APP_DATAOPTS_H
#define APP_DATAOPTS_H

#include "../io/catalog.h"
#include "../io/dataset.h"
#include "flags.h"
#include "pipeline/opts.h"

typedef struct dataopts {
    const char *catalog, *cache_dir, *id_column;
    run_image_opts img; // images, bands, size, bin, transform, asinh_scale, fluxnorm: as [data] has them
    cmd_strs derive;
    int strict;
    double frac[2], null_threshold; // train/val fractions when there is no split column
} dataopts;

int dataopts_parse_frac(void *target, const char *val);

// The rows of the dataset flags, for a command's table (followed by its own rows and F_END).
#define DATAOPTS_FLAGS(d)                                                                                    \
    F_STR("--catalog", d.catalog, "FILE", "CSV catalog: header row, an 'id' column, optional 'split'"),      \
        F_STR("--images", d.img.images, "TEMPLATE",                                                          \
              "cutout path with {id} and optional {band}, e.g. 'cutouts/{id}.fits', 'x/{id}.fits[SCI]'"),    \
        F_STR("--bands", d.img.bands, "LIST", "band names: one file each with {band}, else the planes"),     \
        F_INT("--size", d.img.size, 1, 16384, "S", "centre-crop cutouts to S x S (default: their size)"),    \
        F_INT("--bin", d.img.bin, 1, 16, "B", "then sum B x B pixel blocks (flux-conserving)"),              \
        F_STR("--transform", d.img.transform, "T", "none | signlog (sign(x) ln(1+|x|)) | asinh"),            \
        F_DBL("--asinh-scale", d.img.asinh_scale, 1e-300, 1e300, "A", "asinh(x / A)"),                       \
        F_STR("--fluxnorm", d.img.fluxnorm, "TEMPLATE",                                                      \
              "divide each band by its clipped catalog flux, e.g. 'flux_{band}'"),                           \
        F_STRS("--derive", d.derive, "NAME=EXPR",                                                            \
               "add a column, e.g. 'g-r=mag_g-mag_r' (repeatable; + - * / ( ) log10 ln exp sqrt abs pow)"),  \
        F_FN("--split-frac", d.frac, dataopts_parse_frac, "T,V",                                             \
             "train/val fractions when there is no split column (default 0.7,0.15)"),                        \
        F_DBL("--null-threshold", d.null_threshold, 1e-300, 1e300, "X", "|v| >= X counts as null"),          \
        F_STR("--cache-dir", d.cache_dir, "DIR",                                                             \
              "where the decoded-cutout cache lives (default: $GALNN_CACHE or ~/.cache/galnn)"),            \
        F_STR("--id-column", d.id_column, "NAME", "the catalog's id column (default id)"),                   \
        F_ON("--strict", d.strict, "a missing/unreadable cutout or a NaN pixel is an error (default: skip)")

void dataopts_defaults(dataopts *d);
// Read the catalog (+ derived columns) and report nulls on stdout.
int dataopts_catalog(const dataopts *d, io_catalog *cat, int verbose);
// Fill a dataset spec from the options (bands, transform, ...).
int dataopts_spec(const dataopts *d, const io_catalog *cat, io_dataset_spec *spec, int verbose);

#endif
