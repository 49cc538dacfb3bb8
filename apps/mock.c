// galnn mock: write the built-in mock survey.
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../common/gn_common.h"
#include "../io/mock.h"
#include "cmd.h"

void cmd_mock_help(void) {
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

int cmd_mock(int argc, char **argv) {
    io_mock_opts o = {0};
    o.n = 3000;
    o.seed = 1;
    o.size = 64;
    o.kin_size = 48;
    long v, threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--out")) {
            if (!val) return cmd_error("--out needs a directory");
            o.out = val, i++;
        } else if (!strcmp(a, "--n")) {
            if (cmd_parse_int(a, val, 1, 10000000, &v)) return 1;
            o.n = (int)v, i++;
        } else if (!strcmp(a, "--seed")) {
            if (cmd_parse_int(a, val, 0, 0x7fffffffL, &v)) return 1;
            o.seed = (uint64_t)v, i++;
        } else if (!strcmp(a, "--size")) {
            if (cmd_parse_int(a, val, 16, 1024, &v)) return 1;
            o.size = (int)v, i++;
        } else if (!strcmp(a, "--kin-size")) {
            if (cmd_parse_int(a, val, 8, 1024, &v)) return 1;
            o.kin_size = (int)v, i++;
        } else if (!strcmp(a, "--threads")) {
            if (cmd_parse_int(a, val, 0, 1024, &threads)) return 1;
            i++;
        } else if (!strcmp(a, "--png")) o.png = 1;
        else if (!strcmp(a, "--npy")) o.npy = 1;
        else if (!strcmp(a, "--kinematics")) o.kinematics = 1;
        else if (!strcmp(a, "--spectra")) o.spectra = 1;
        else return cmd_error("mock: unknown option '%s' (see `galnn help mock`)", a);
    }
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
