// Dataset throughput: 10,000 mock galaxies with 5x64x64 FITS cutouts.
//   1. decode every cutout into the dataset cache (galaxies/s)
//   2. iterate one training epoch from the cache (batch 64; plain, and with
//      dihedral augmentation + standardisation)
// next to `cat` of the same bytes (the FITS files; the cache file) to
// /dev/null, and the process's peak resident memory.
//   usage: data_bench [--n N] [--dir DIR] [--threads T]
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "../common/gn_common.h"
#include "../io/catalog.h"
#include "../io/dataset.h"
#include "../io/loader.h"
#include "../io/mock.h"

static double timed_system(const char *cmd) {
    double t0 = gn_now();
    if (system(cmd)) fprintf(stderr, "command failed: %s\n", cmd);
    return gn_now() - t0;
}

static double epoch(io_dataset *ds, int augment, double *mean, double *sd, size_t *count) {
    io_loader L;
    io_loader_opts o = {.batch = 64, .shuffle = 1, .dihedral = augment, .mean = augment ? mean : NULL,
                        .std = augment ? sd : NULL};
    if (io_loader_init(&L, ds, NULL, 0, &o, 1)) return -1;
    float *x = malloc(sizeof(float) * 64 * (size_t)ds->c * ds->h * ds->w);
    uint32_t e[64];
    double t0 = gn_now();
    int b;
    *count = 0;
    while ((b = io_loader_next(&L, x, e)) > 0) *count += (size_t)b;
    double t = gn_now() - t0;
    free(x);
    io_loader_free(&L);
    return t;
}

int main(int argc, char **argv) {
    gn_runtime_init(argv);
    int n = 10000, threads = 0;
    const char *dir = "build/bench_data";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--n")) n = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--dir")) dir = argv[i + 1];
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
    }
    gn_set_threads(threads);
    char cat_path[512], cmd[4400];
    snprintf(cat_path, sizeof cat_path, "%s/catalog.csv", dir);
    struct stat sb;
    io_catalog cat;
    if (stat(cat_path, &sb) || io_catalog_read(cat_path, NULL, &cat) || cat.n_rows != (size_t)n) {
        if (!stat(cat_path, &sb)) io_catalog_free(&cat);
        printf("making the mock survey (%d galaxies) in %s ...\n", n, dir);
        io_mock_opts o = {.out = dir, .n = n, .seed = 1, .size = 64};
        double t0 = gn_now();
        if (io_mock_write(&o)) return fprintf(stderr, "%s\n", gn_errmsg()), 1;
        printf("  %.1f s (%.0f galaxies/s)\n", gn_now() - t0, n / (gn_now() - t0));
        if (io_catalog_read(cat_path, NULL, &cat)) return fprintf(stderr, "%s\n", gn_errmsg()), 1;
    }
    printf("dataset benchmark: %d galaxies, 5 x 64 x 64 float32 FITS cutouts, %d threads\n\n", n,
           gn_threads());
    // warm the page cache so both sides read memory, then time cat of the FITS files
    snprintf(cmd, sizeof cmd, "cat %s/cutouts/*.fits > /dev/null", dir);
    timed_system(cmd);
    double t_cat = timed_system(cmd);
    snprintf(cmd, sizeof cmd, "du -sb %s/cutouts | cut -f1", dir);
    char tmpl[512], cdir[512];
    snprintf(tmpl, sizeof tmpl, "%s/cutouts/{id}.fits", dir);
    snprintf(cdir, sizeof cdir, "%s/bench-cache", dir);
    snprintf(cmd, sizeof cmd, "rm -rf %s", cdir);
    if (system(cmd)) return 1;
    io_dataset_spec s;
    memset(&s, 0, sizeof s);
    s.cat = &cat;
    s.template = tmpl;
    io_parse_bands("u,g,r,i,z", &s);
    s.transform = IO_TF_SIGNLOG;
    s.cache_dir = cdir;
    io_dataset ds;
    double t0 = gn_now();
    if (io_dataset_open(&s, &ds)) return fprintf(stderr, "%s\n", gn_errmsg()), 1;
    double t_build = gn_now() - t0;
    io_dataset_close(&ds);
    t0 = gn_now();
    if (io_dataset_open(&s, &ds)) return fprintf(stderr, "%s\n", gn_errmsg()), 1;
    double t_open = gn_now() - t0;
    snprintf(cmd, sizeof cmd, "cat %s > /dev/null", ds.cache_path);
    double t_cat_cache = timed_system(cmd);
    double mean[5], sd[5];
    io_dataset_band_stats(&ds, NULL, 0, mean, sd);
    size_t cnt;
    double t_plain = epoch(&ds, 0, mean, sd, &cnt), t_aug = epoch(&ds, 1, mean, sd, &cnt);
    double mb = (double)ds.map_len / 1048576.0;
    printf("%-52s %9s %12s\n", "step", "seconds", "galaxies/s");
    printf("%-52s %9.2f %12.0f\n", "cat of the FITS cutouts (page cache warm)", t_cat, n / t_cat);
    printf("%-52s %9.2f %12.0f   (%.2fx the cat)\n", "build the cache: decode + signlog + write + CRC",
           t_build, n / t_build, t_cat / t_build);
    printf("%-52s %9.2f %12.0f\n", "open + verify the cache (CRC of the whole file)", t_open, n / t_open);
    printf("%-52s %9.2f %12.0f\n", "cat of the cache file", t_cat_cache, n / t_cat_cache);
    printf("%-52s %9.2f %12.0f   (%.2fx the cat)\n", "one epoch, batch 64, shuffled", t_plain, cnt / t_plain,
           t_cat_cache / t_plain);
    printf("%-52s %9.2f %12.0f   (%.2fx the cat)\n", "one epoch, + dihedral augmentation + standardise",
           t_aug, cnt / t_aug, t_cat_cache / t_aug);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("\ncache file %.0f MiB; peak resident memory %.0f MiB (the mapped cache pages count once read)\n",
           mb, ru.ru_maxrss / 1024.0);
    io_dataset_close(&ds);
    io_catalog_free(&cat);
    return 0;
}
