#include "dataopts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/gn_common.h"
#include "cmd.h"

const char DATAOPTS_HELP[] =
    "data options:\n"
    "  --catalog FILE       CSV catalog: header row, an 'id' column, optional 'split' column\n"
    "  --images TEMPLATE    cutout path with {id} and optional {band}, e.g. 'cutouts/{id}.fits',\n"
    "                       'png/{id}_{band}.png', 'x/{id}.fits[SCI]' (FITS extension)\n"
    "  --bands LIST         band names, e.g. u,g,r,i,z: one file each with {band}, else the planes of each "
    "file\n"
    "  --size S             centre-crop cutouts to S x S (default: their size)\n"
    "  --bin B              then sum B x B pixel blocks (flux-conserving downsampling; default 1)\n"
    "  --transform T        none | signlog (sign(x) ln(1+|x|), default) | asinh\n"
    "  --asinh-scale A      asinh(x / A) (default 1)\n"
    "  --fluxnorm TEMPLATE  divide each band by its clipped catalog flux, e.g. 'flux_{band}'\n"
    "  --derive NAME=EXPR   add a column, e.g. 'g-r=mag_g-mag_r' (repeatable; + - * / ( ) log10 ln exp sqrt "
    "abs pow)\n"
    "  --split-frac T,V     train/val fractions when there is no split column (default 0.7,0.15)\n"
    "  --null-threshold X   |v| >= X counts as null (default 9000)\n"
    "  --cache-dir DIR      where the decoded-cutout cache lives (default: .galnn-cache beside the catalog)\n"
    "  --strict             a missing/unreadable cutout or a NaN pixel is an error (default: skip and "
    "report)\n";

void dataopts_defaults(dataopts *d) {
    memset(d, 0, sizeof *d);
    d->transform = "signlog";
    d->asinh_scale = 1;
    d->f_train = 0.7;
    d->f_val = 0.15;
    d->null_threshold = 9000;
}

int dataopts_parse(dataopts *d, int argc, char **argv, int *i) {
    const char *a = argv[*i], *v = *i + 1 < argc ? argv[*i + 1] : NULL;
    const char **str = NULL;
    if (!strcmp(a, "--catalog")) str = &d->catalog;
    else if (!strcmp(a, "--images")) str = &d->images;
    else if (!strcmp(a, "--bands")) str = &d->bands;
    else if (!strcmp(a, "--transform")) str = &d->transform;
    else if (!strcmp(a, "--fluxnorm")) str = &d->fluxnorm;
    else if (!strcmp(a, "--cache-dir")) str = &d->cache_dir;
    if (str) {
        if (!v) return cmd_error("%s needs a value", a), -1;
        *str = v;
        (*i)++;
        return 1;
    }
    if (!strcmp(a, "--strict")) return d->strict = 1, 1;
    if (!strcmp(a, "--derive")) {
        if (!v) return cmd_error("--derive needs NAME=EXPR"), -1;
        if (d->n_derive == 16) return cmd_error("at most 16 --derive columns"), -1;
        d->derive[d->n_derive++] = v;
        (*i)++;
        return 1;
    }
    if (!strcmp(a, "--size") || !strcmp(a, "--bin")) {
        long s;
        if (cmd_parse_int(a, v, 1, a[2] == 's' ? 16384 : 16, &s)) return -1;
        *(a[2] == 's' ? &d->size : &d->bin) = (int)s;
        (*i)++;
        return 1;
    }
    double *dv = !strcmp(a, "--asinh-scale")      ? &d->asinh_scale
                 : !strcmp(a, "--null-threshold") ? &d->null_threshold
                                                  : NULL;
    if (dv) {
        char *end;
        if (!v || (*dv = strtod(v, &end), end == v || *end || !(*dv > 0)))
            return cmd_error("%s: '%s' is not a positive number", a, v ? v : ""), -1;
        (*i)++;
        return 1;
    }
    if (!strcmp(a, "--split-frac")) {
        if (!v || sscanf(v, "%lf,%lf", &d->f_train, &d->f_val) != 2 || d->f_train < 0 || d->f_val < 0 ||
            d->f_train + d->f_val > 1)
            return cmd_error("--split-frac: '%s' is not TRAIN,VAL fractions adding to at most 1", v ? v : ""),
                   -1;
        (*i)++;
        return 1;
    }
    return 0;
}

static void print_line(void *u, const char *line) {
    (void)u;
    printf("%s\n", line);
}

int dataopts_catalog(const dataopts *d, io_catalog *cat, int verbose) {
    if (!d->catalog) return cmd_error("--catalog is required");
    io_catalog_opts co = {d->null_threshold, 1};
    if (io_catalog_read(d->catalog, &co, cat)) return cmd_error("%s", gn_errmsg());
    for (int k = 0; k < d->n_derive; k++)
        if (io_catalog_derive_spec(cat, d->derive[k])) {
            cmd_error("--derive: %s", gn_errmsg());
            io_catalog_free(cat);
            return 1;
        }
    if (verbose) {
        printf("catalog %s: %zu galaxies, %d columns\n", d->catalog, cat->n_rows, cat->n_cols);
        io_catalog_report_nulls(cat, print_line, NULL);
    }
    return 0;
}

int dataopts_spec(const dataopts *d, const io_catalog *cat, io_dataset_spec *s, int verbose) {
    memset(s, 0, sizeof *s);
    if (!d->images) return cmd_error("--images TEMPLATE is required");
    s->cat = cat;
    s->template = d->images;
    if (d->bands && io_parse_bands(d->bands, s)) return cmd_error("--bands: %s", gn_errmsg());
    s->size = d->size;
    s->bin = d->bin;
    if (!strcmp(d->transform, "none")) s->transform = IO_TF_NONE;
    else if (!strcmp(d->transform, "signlog")) s->transform = IO_TF_SIGNLOG;
    else if (!strcmp(d->transform, "asinh")) s->transform = IO_TF_ASINH;
    else return cmd_error("--transform: '%s' is not none, signlog or asinh", d->transform);
    s->asinh_scale = (float)d->asinh_scale;
    s->fluxnorm = d->fluxnorm;
    s->cache_dir = d->cache_dir;
    s->strict = d->strict;
    if (verbose) {
        s->log = print_line;
        s->log_user = NULL;
    }
    return 0;
}
