// Dataset flags shared by every command that reads a catalog and cutouts
// (data, train, eval, ...): parsing, help text, and opening.
#ifndef APP_DATAOPTS_H
#define APP_DATAOPTS_H

#include "../io/catalog.h"
#include "../io/dataset.h"

typedef struct dataopts {
    const char *catalog, *images, *bands, *transform, *fluxnorm, *cache_dir;
    const char *derive[16];
    int n_derive;
    int size, bin, strict;
    double asinh_scale, f_train, f_val, null_threshold;
} dataopts;

void dataopts_defaults(dataopts *d);
// If argv[*i] is a dataset flag, consume it (and its value) and return 1;
// return -1 on a bad value (message printed), 0 if not ours.
int dataopts_parse(dataopts *d, int argc, char **argv, int *i);
extern const char DATAOPTS_HELP[];

// Read the catalog (+ derived columns) and report nulls on stdout.
int dataopts_catalog(const dataopts *d, io_catalog *cat, int verbose);
// Fill a dataset spec from the options (bands, transform, ...).
int dataopts_spec(const dataopts *d, const io_catalog *cat, io_dataset_spec *spec, int verbose);

#endif
