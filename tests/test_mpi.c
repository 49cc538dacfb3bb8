// MPI (common/gn_mpi.c, `mpirun -np P galnn predict | embed`): started plainly, this program runs itself
// under `mpirun --oversubscribe -np 2` and `-np 3` (as root with OpenMPI's two variables) and checks that
// the ordered sum equals the rank-order sum bit for bit on every rank, whatever the lengths; that galnn
// predict (2 and 3 ranks), embed (3) and posterior (2) write the one-process file byte for byte; that a job
// ends with an error (not a hang) when the checkpoint is missing; and that commands which do not share their
// work among the ranks are refused. Skipped without mpirun, when galnn was built without MPI, and in the
// sanitizer pass.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "../common/gn_mpi.h"
#include "../common/gn_rng.h"
#include "testutil.h"

// A rank's contribution to element i: values of very different sizes, so that another summation order
// would change the last bits.
static double value(int rank, size_t i) {
    gn_rng r;
    gn_rng_seed(&r, 1000 + (uint64_t)rank, i);
    return gn_rng_normal(&r) * pow(10, (double)((rank * 7 + (int)i) % 9) - 4);
}

// Child mode (under mpirun): every rank checks the ordered sum against its own rank-order sum.
static int child(int argc, char **argv) {
    if (gn_mpi_init(&argc, &argv)) return 2;
    int R = gn_mpi_rank(), P = gn_mpi_size(), bad = P < 2;
    static const size_t lens[4] = {1, 7, 1000, 100003};
    for (int k = 0; k < 4; k++) {
        size_t n = lens[k];
        double *v = malloc(sizeof(double) * n);
        for (size_t i = 0; i < n; i++) v[i] = value(R, i);
        if (gn_mpi_sum_ordered(v, n)) bad = 1;
        for (size_t i = 0; i < n; i++) {
            double s = value(0, i);
            for (int p = 1; p < P; p++) s += value(p, i);
            if (memcmp(&s, &v[i], sizeof s)) bad = 1;
        }
        free(v);
    }
    gn_mpi_finalize();
    return bad;
}

static const char *self; // this program, for mpirun

static int have_mpi(void) {
    if (tu_sanitized()) return 0; // OpenMPI's own allocations would read as leaks
    if (system("command -v mpirun >/dev/null 2>&1")) return 0;
    return system("ldd bin/galnn 2>/dev/null | grep -q libmpi") == 0;
}

static int sh(const char *cmd) {
    int rc = system(cmd);
    return rc == -1 ? -1 : WEXITSTATUS(rc);
}

static void test_ordered_sum(void **s) {
    (void)s;
    if (!have_mpi()) {
        printf("    (no mpirun, or galnn built without MPI: skipped)\n");
        return;
    }
    for (int np = 2; np <= 3; np++) {
        char cmd[512];
        snprintf(cmd, sizeof cmd, "timeout 120 mpirun --oversubscribe -np %d %s --child", np, self);
        assert_int_equal(sh(cmd), 0);
        printf("    %d ranks: ordered sums of 1 to 100,003 values bit-identical to the rank-order sum\n", np);
    }
}

// Train `cfg` (a preset and its settings) on the test survey, run `cmd` on it as one process and on np
// ranks, and compare the two files byte for byte.
static void same_on_ranks(const char *d, const char *cfg, const char *cmd, const char *args, int np) {
    char c[1400];
    snprintf(
        c, sizeof c,
        "./bin/galnn train --config models/%s --catalog %s/m/catalog.csv --out %s/%s.run >/dev/null 2>&1 "
        "&& ./bin/galnn %s --ckpt %s/%s.run/best.npz --out %s/%s1.csv %s >/dev/null && timeout 120 mpirun "
        "--oversubscribe -np %d ./bin/galnn %s --ckpt %s/%s.run/best.npz --out %s/%s%d.csv %s --threads 1 "
        ">/dev/null 2>&1 && cmp %s/%s1.csv %s/%s%d.csv",
        cfg, d, d, cmd, cmd, d, cmd, d, cmd, args, np, cmd, d, cmd, d, cmd, np, args, d, cmd, d, cmd, np);
    assert_int_equal(sh(c), 0);
    printf("    %s on %d ranks: the one-process file, byte for byte\n", cmd, np);
}

static void test_predict_ranks(void **s) {
    (void)s;
    if (!have_mpi()) {
        printf("    (no mpirun, or galnn built without MPI: skipped)\n");
        return;
    }
    const char *d = "/tmp/galnn_mpi_test";
    char cmd[1024];
    snprintf(
        cmd, sizeof cmd,
        "rm -rf %s && mkdir -p %s && ./bin/galnn mock --out %s/m --n 900 --size 16 >/dev/null 2>&1 && "
        "./bin/galnn train --config models/ugriz_mlp.cfg --catalog %s/m/catalog.csv --out %s/g --epochs 2 "
        ">/dev/null 2>&1 && ./bin/galnn predict --ckpt %s/g/best.npz --out %s/p1.csv >/dev/null",
        d, d, d, d, d, d, d);
    assert_int_equal(sh(cmd), 0);
    for (int np = 2; np <= 3; np++) {
        snprintf(
            cmd, sizeof cmd,
            "timeout 120 mpirun --oversubscribe -np %d ./bin/galnn predict --ckpt %s/g/best.npz --out "
            "%s/p%d.csv --threads 1 >/dev/null 2>&1 && cmp %s/p1.csv %s/p%d.csv && ! ls %s/p%d.csv.part.* "
            "2>/dev/null",
            np, d, d, np, d, d, np, d, np);
        assert_int_equal(sh(cmd), 0);
        printf("    predict on %d ranks: the one-process file, byte for byte\n", np);
    }
    // embed: an S-space model of the photometry; posterior: a flow (its samples drawn as one process draws
    // them; 1,024 a galaxy: a block of 512 galaxies and the rest), each briefly trained
    same_on_ranks(d, "scl_mopt.cfg train.iterations=60", "embed", "", 3);
    same_on_ranks(d, "flow_phot.cfg train.epochs=2", "posterior", "--samples 1024", 2);
    snprintf(cmd, sizeof cmd,
             "timeout 60 mpirun --oversubscribe -np 2 ./bin/galnn predict --ckpt %s/none.npz --out %s/x.csv "
             ">%s/err.log 2>&1",
             d, d, d);
    int rc = sh(cmd);
    assert_true(rc != 0 && rc != 124); // an error, and no hang (timeout's status)
    snprintf(cmd, sizeof cmd, "grep -q 'none.npz' %s/err.log", d);
    assert_int_equal(sh(cmd), 0);
    snprintf(cmd, sizeof cmd,
             "timeout 60 mpirun --oversubscribe -np 2 ./bin/galnn train --config models/gbdt_mass.cfg --out "
             "%s/t >%s/err2.log 2>&1",
             d, d);
    rc = sh(cmd);
    assert_true(rc != 0 && rc != 124);
    snprintf(cmd, sizeof cmd, "grep -q 'does not run on 2 MPI ranks' %s/err2.log", d);
    assert_int_equal(sh(cmd), 0);
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--child")) return child(argc, argv);
    self = argv[0];
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1), setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_ordered_sum),
                                       cmocka_unit_test(test_predict_ranks)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
