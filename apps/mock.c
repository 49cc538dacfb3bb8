// galnn mock: write the built-in mock survey.
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../common/gn_common.h"
#include "../io/mock.h"
#include "cmd.h"
#include "flags.h"

static void mock_usage(void) {
    printf("usage: galnn mock --out DIR [--n N] [--seed S] [--size S] [--png] [--npy] [--kinematics] "
           "[--spectra]\n"
           "                  [--kin-size K] [--threads N]\n\n"
           "Writes a mock survey: DIR/catalog.csv and DIR/cutouts/{id}.fits (5-band u,g,r,i,z cubes).\n"
           "Defaults: 3000 galaxies, seed 1, 64x64 cutouts, 48x48 kinematic maps. Deterministic for a seed,\n"
           "whatever the thread count.\n\n%s",
           IO_MOCK_DOC);
}

static void progress(void *u, int done, int total) {
    double el = gn_now() - *(double *)u;
    if (cmd_is_tty())
        fprintf(stderr, "\r  %d / %d galaxies  %.0f/s  ETA %.0f s   ", done, total, done / el,
                (total - done) * el / done);
    else if (done == total || done % 1024 == 0)
        fprintf(stderr, "  %d / %d galaxies (%.0f/s)\n", done, total, done / el);
    if (done == total && cmd_is_tty()) fputc('\n', stderr);
}

typedef struct mock_cli {
    const char *out;
    long n, seed, size, kin_size, threads;
    int png, npy, kinematics, spectra;
} mock_cli;

#define CLI mock_cli
static const cmd_flag mock_flags[] = {F_OUT(out, "DIR", "where the survey goes"),
                                      F_INT("--n", n, 1, 10000000, "N", "galaxies"),
                                      F_SEED(seed, "the survey's seed"),
                                      F_INT("--size", size, 16, 1024, "S", "cutout size in pixels"),
                                      F_INT("--kin-size", kin_size, 8, 1024, "K", "kinematic map size"),
                                      F_ON("--png", png, "also 16-bit PNG cutouts per band"),
                                      F_ON("--npy", npy, "also NPY cutouts"),
                                      F_ON("--kinematics", kinematics, "also kinematic maps"),
                                      F_ON("--spectra", spectra, "also spectra"),
                                      F_THREADS(threads),
                                      F_END};

static void mock_defaults(void *p) {
    mock_cli *c = p;
    c->n = 3000, c->seed = 1, c->size = 64, c->kin_size = 48;
}

static int mock_run(const void *p) {
    const mock_cli c = *(const mock_cli *)p;
    io_mock_opts o = {.out = c.out,
                      .n = (int)c.n,
                      .seed = (uint64_t)c.seed,
                      .size = (int)c.size,
                      .kin_size = (int)c.kin_size,
                      .png = c.png,
                      .npy = c.npy,
                      .kinematics = c.kinematics,
                      .spectra = c.spectra};
    long threads = c.threads;
    if (!o.out) return cmd_error("mock: --out DIR is required");
    gn_set_threads((int)threads);
    double t0 = gn_now();
    o.progress = progress;
    o.user = &t0;
    printf("galnn mock: %d galaxies (seed %llu) -> %s\n", o.n, (unsigned long long)o.seed, o.out);
    if (io_mock_write(&o)) return cmd_error("%s", gn_errmsg());
    printf("wrote %s/catalog.csv and %d cutouts%s%s%s in %.1f s\n", o.out, o.n, o.png ? " + PNG" : "",
           o.npy ? " + NPY" : "", o.kinematics ? " + kinematic maps" : "", gn_now() - t0);
    return 0;
}

CMD_DEF(cmd_mock, "mock",
        "write the built-in mock survey (catalog + 5-band cutouts, optional kinematic maps)", mock_usage,
        mock_flags, sizeof(mock_cli), mock_defaults, mock_run, -1, NULL);
