// galnn data: open a dataset (catalog + cutouts), building or verifying its
// cache, and report what a training run would see.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/gn_common.h"
#include "../io/loader.h"
#include "cmd.h"
#include "dataopts.h"

typedef struct data_cli {
    dataopts d;
    long batch, threads;
    int epoch;
} data_cli;

#define CLI data_cli
static const cmd_flag data_flags[] = {
    DATAOPTS_FLAGS(d), F_INT("--batch", batch, 1, 100000, "B", "--epoch: the batch size"),
    F_ON("--epoch", epoch, "iterate one augmented training epoch"), F_THREADS(threads), F_END};

static void data_defaults(void *p) {
    data_cli *o = p;
    dataopts_defaults(&o->d);
    o->batch = 32;
}

static void data_usage(void) {
    printf("usage: galnn data --catalog FILE --images TEMPLATE [data options] [--batch B] [--epoch]\n\n"
           "Reads the catalog (reporting null values per column), decodes every cutout once into the\n"
           "dataset cache (or verifies the existing one), assigns train/val/test splits, prints per-band\n"
           "statistics of the training split and, with --epoch, iterates one augmented training epoch\n"
           "in batches of B, reporting galaxies/s.\n");
}

static int data_run(const void *p) {
    const data_cli o = *(const data_cli *)p;
    const dataopts d = o.d;
    long batch = o.batch, threads = o.threads;
    int epoch = o.epoch;
    gn_set_threads((int)threads);
    io_catalog cat;
    if (dataopts_catalog(&d, &cat, 1)) return 1;
    io_dataset_spec spec;
    io_dataset ds;
    int rc = 1;
    uint8_t *split = malloc(cat.n_rows ? cat.n_rows : 1);
    if (!split || dataopts_spec(&d, &cat, &spec, 1)) goto out0;
    if (io_catalog_splits(&cat, d.frac[0], d.frac[1], split)) {
        cmd_error("%s", gn_errmsg());
        goto out0;
    }
    if (io_dataset_open(&spec, &ds)) {
        cmd_error("%s", gn_errmsg());
        goto out0;
    }
    size_t count[3] = {0};
    for (size_t i = 0; i < ds.n; i++) count[split[ds.row[i]]]++;
    printf("splits (%s): train %zu, val %zu, test %zu\n",
           cat.split_col >= 0 ? "from the split column" : "from id hashes", count[0], count[1], count[2]);
    double mean[IO_MAX_BANDS], sd[IO_MAX_BANDS];
    if (count[0] && !io_dataset_band_stats(&ds, split, IO_SPLIT_TRAIN, mean, sd)) {
        printf("training-split pixel statistics after the transform (used to standardise):\n");
        for (int b = 0; b < ds.c; b++)
            printf("  band %-4s mean %10.4g  std %10.4g\n", ds.bands[b], mean[b], sd[b]);
    }
    if (epoch && count[0]) {
        io_loader L;
        io_loader_opts lo = {.batch = (int)batch, .shuffle = 1, .dihedral = 1, .mean = mean, .std = sd};
        if (io_loader_init(&L, &ds, split, IO_SPLIT_TRAIN, &lo, 1)) {
            cmd_error("%s", gn_errmsg());
            goto out;
        }
        size_t per = (size_t)ds.c * ds.h * ds.w;
        float *x = malloc(sizeof(float) * per * (size_t)batch);
        uint32_t *e = malloc(sizeof(uint32_t) * (size_t)batch);
        double t0 = gn_now(), s = 0;
        size_t seen = 0;
        int b;
        while ((b = io_loader_next(&L, x, e)) > 0) {
            seen += (size_t)b;
            s += x[0];
        }
        double el = gn_now() - t0;
        printf("one training epoch: %zu galaxies in %zu batches, %.0f galaxies/s (checksum %.4g)\n", seen,
               io_loader_batches_per_epoch(&L), seen / el, s);
        free(x);
        free(e);
        io_loader_free(&L);
    }
    rc = 0;
out:
    io_dataset_close(&ds);
out0:
    free(split);
    io_catalog_free(&cat);
    return rc;
}

CMD_DEF(cmd_data, "data", "open a catalog + cutouts: nulls, splits, cache, band statistics, batch throughput",
        data_usage, data_flags, sizeof(data_cli), data_defaults, data_run, -1, NULL);
