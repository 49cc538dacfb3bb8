#include "dataopts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/gn_common.h"
#include "cmd.h"

void dataopts_defaults(dataopts *d) {
    memset(d, 0, sizeof *d);
    d->img.transform = "signlog";
    d->img.asinh_scale = 1;
    d->img.bin = 1;
    d->frac[0] = RUN_TRAIN_FRAC, d->frac[1] = RUN_VAL_FRAC;
    d->null_threshold = 9000;
}

int dataopts_parse_frac(void *target, const char *v) {
    double *f = target;
    char c;
    if (sscanf(v, "%lf,%lf%c", &f[0], &f[1], &c) != 2 || run_check_fractions("--split-frac", f[0], f[1]))
        return cmd_error("--split-frac: '%s' is not TRAIN,VAL fractions adding to at most 1", v);
    return 0;
}

static void print_line(void *u, const char *line) {
    (void)u;
    printf("%s\n", line);
}

int dataopts_catalog(const dataopts *d, io_catalog *cat, int verbose) {
    if (!d->catalog) return cmd_error("--catalog is required");
    io_catalog_opts co = {d->null_threshold, 1, d->id_column};
    if (io_catalog_read(d->catalog, &co, cat)) return cmd_error("%s", gn_errmsg());
    for (int k = 0; k < d->derive.n; k++)
        if (io_catalog_derive_spec(cat, d->derive.v[k])) {
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
    if (!d->img.images) return cmd_error("--images TEMPLATE is required");
    const char *tf = d->img.transform;
    if (strcmp(tf, "none") && strcmp(tf, "signlog") && strcmp(tf, "asinh"))
        return cmd_error("--transform: '%s' is not none, signlog or asinh", tf);
    if (run_image_spec(&d->img, s)) return cmd_error("--bands: %s", gn_errmsg());
    s->cat = cat;
    s->cache_dir = d->cache_dir;
    s->strict = d->strict;
    if (verbose) {
        s->log = print_line;
        s->log_user = NULL;
    }
    return 0;
}
