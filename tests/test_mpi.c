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
#include "../io/npy.h"
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
        float *f = malloc(sizeof(float) * n); // the float sum, in float
        for (size_t i = 0; i < n; i++) f[i] = (float)value(R, i);
        if (gn_mpi_sum_ordered_f(f, n)) bad = 1;
        for (size_t i = 0; i < n; i++) {
            float s = (float)value(0, i);
            for (int p = 1; p < P; p++) s += (float)value(p, i);
            if (memcmp(&s, &f[i], sizeof s)) bad = 1;
        }
        free(v), free(f);
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
        printf("    %d ranks: ordered sums (double and float) of 1 to 100,003 values bit-identical to the "
               "rank-order sum\n",
               np);
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

// Two checkpoints: the largest |a - b| over the weights (param.*), and in *same whether every array but the
// log's text (its seconds) and the configuration is equal byte for byte. -1 if one cannot be read.
static double ckpt_diff(const char *a, const char *b, int *same) {
    io_npz x, y;
    memset(&x, 0, sizeof x), memset(&y, 0, sizeof y);
    double d = -1;
    *same = 0;
    if (!io_npz_read(a, &x) && !io_npz_read(b, &y) && x.n == y.n) {
        d = 0, *same = 1;
        for (int k = 0; k < x.n; k++) {
            const io_array *p = &x.arrays[k], *q = io_npz_get(&y, x.names[k]);
            if (!strcmp(x.names[k], "meta.log") || !strcmp(x.names[k], "meta.config")) continue;
            if (!q || q->n != p->n || q->dtype != p->dtype) {
                d = -1, *same = 0;
                break;
            }
            *same &= !memcmp(p->data, q->data, p->n * io_dtype_size(p->dtype));
            for (size_t i = 0; !strncmp(x.names[k], "param.", 6) && i < p->n; i++)
                d = fmax(d, fabs((double)((float *)p->data)[i] - ((float *)q->data)[i]));
        }
    }
    io_npz_free(&x), io_npz_free(&y);
    return d;
}

// The two runs' logs agree but for the seconds column.
static int same_logs(const char *a, const char *b) {
    char c[1400];
    snprintf(c, sizeof c, "cmp <(cut -d, -f1-10 %s/log.csv) <(cut -d, -f1-10 %s/log.csv)", a, b);
    char w[1500];
    snprintf(w, sizeof w, "bash -c '%s'", c);
    return sh(w) == 0;
}

#define MPIRUN "timeout 120 mpirun --oversubscribe -np "

// A CNN with batch norm and dropout: two ranks of one thread give the one-process run of two slices per
// batch (--threads 1), state and log; with an MLP and plain SGD (the step is the gradient), one step of two
// ranks agrees with one full-batch step to float rounding.
static void test_train_slices(const char *d) {
    char c[1600];
    const char *cnn =
        "--config models/demo_cnn.cfg --epochs 2 train.crop=12 branch.img.dropout=0.2 --threads 1";
    snprintf(
        c, sizeof c,
        "./bin/galnn train %s --catalog %s/m/catalog.csv --images '%s/m/cutouts/{id}.fits' --out %s/s1 "
        "train.slices=2 data.cache_dir=%s/cache >/dev/null 2>&1 && " MPIRUN "2 ./bin/galnn train %s "
        "--catalog %s/m/catalog.csv --images '%s/m/cutouts/{id}.fits' --out %s/s2 data.cache_dir=%s/cache "
        ">/dev/null 2>&1",
        cnn, d, d, d, d, cnn, d, d, d, d);
    assert_int_equal(sh(c), 0);
    int same;
    char a[300], b[300];
    snprintf(a, sizeof a, "%s/s1/last.npz", d), snprintf(b, sizeof b, "%s/s2/last.npz", d);
    assert_true(ckpt_diff(a, b, &same) == 0 && same);
    snprintf(a, sizeof a, "%s/s1", d), snprintf(b, sizeof b, "%s/s2", d);
    assert_true(same_logs(a, b));
    printf("    CNN (batch norm, dropout), 2 ranks x 1 thread = 1 process in 2 slices: weights, statistics, "
           "moments, log\n");
    // a flow: best.npz is written by rank 0 and read back by every rank for its calibration
    snprintf(
        c, sizeof c,
        "A='--config models/flow_phot.cfg --catalog %s/m/catalog.csv --epochs 2 --threads 1'; ./bin/galnn "
        "train $A --out %s/f1 train.slices=2 >/dev/null 2>&1 && " MPIRUN "2 ./bin/galnn train $A --out %s/f2 "
        ">/dev/null 2>&1",
        d, d, d);
    assert_int_equal(sh(c), 0);
    snprintf(a, sizeof a, "%s/f1/best.npz", d), snprintf(b, sizeof b, "%s/f2/best.npz", d);
    assert_true(ckpt_diff(a, b, &same) == 0 && same);
    printf("    flow: the calibrated best.npz of 2 ranks = 1 process in 2 slices\n");
    const char *mlp = "--config models/ugriz_mlp.cfg --epochs 1 train.batch=1000 train.optimizer=sgd "
                      "train.momentum=0 train.lr=1 train.schedule=constant train.warmup=0 --threads 1";
    snprintf(c, sizeof c,
             "./bin/galnn train %s --catalog %s/m/catalog.csv --out %s/g1 >/dev/null 2>&1 && " MPIRUN
             "2 ./bin/galnn train %s --catalog %s/m/catalog.csv --out %s/g2 >/dev/null 2>&1",
             mlp, d, d, mlp, d, d);
    assert_int_equal(sh(c), 0);
    snprintf(a, sizeof a, "%s/g1/last.npz", d), snprintf(b, sizeof b, "%s/g2/last.npz", d);
    double dw = ckpt_diff(a, b, &same);
    printf("    MLP, one SGD step (lr 1) of 630 galaxies on 2 ranks vs the full batch: max |dw| %.2g\n", dw);
    assert_true(dw >= 0 && dw < 1e-5);
}

// SIGKILL to one rank mid-run: the job ends (no hang) with an error; its last.npz resumes on two ranks into
// the run that never stopped, and on one process it continues.
static void test_train_kill(const char *d) {
    char c[2000];
    const char *mlp =
        "--config models/ugriz_mlp.cfg --epochs 300 --ckpt-every 7 train.patience=0 --threads 1";
    snprintf(c, sizeof c,
             MPIRUN "2 ./bin/galnn train %s --catalog %s/m/catalog.csv --out %s/k0 >/dev/null 2>&1", mlp, d,
             d);
    assert_int_equal(sh(c), 0);
    snprintf(c, sizeof c,
             "(" MPIRUN "2 ./bin/galnn train %s --catalog %s/m/catalog.csv --out %s/k >%s/k.log 2>&1; "
             "echo $? >%s/k.rc) & for i in $(seq 300); do [ -f %s/k/last.npz ] && break; sleep 0.02; done; "
             "sleep 0.3; pkill -9 -n -f '^./bin/galnn train.*%s/k$' ; wait",
             mlp, d, d, d, d, d, d);
    assert_int_equal(sh(c), 0);
    snprintf(c, sizeof c, "rc=$(cat %s/k.rc); [ \"$rc\" -ne 0 ] && [ \"$rc\" -ne 124 ]", d);
    assert_int_equal(sh(c), 0); // killed before the end, and mpirun ended the job
    snprintf(c, sizeof c,
             "cp %s/k/last.npz %s/k1.npz && mkdir -p %s/k1 && mv %s/k1.npz %s/k1/last.npz && " MPIRUN
             "2 ./bin/galnn train --resume %s/k/last.npz --threads 1 >/dev/null 2>&1 && ./bin/galnn train "
             "--resume %s/k1/last.npz --threads 1 >/dev/null 2>&1",
             d, d, d, d, d, d, d);
    assert_int_equal(sh(c), 0);
    char a[300], b[300];
    int same;
    snprintf(a, sizeof a, "%s/k0/last.npz", d), snprintf(b, sizeof b, "%s/k/last.npz", d);
    assert_true(ckpt_diff(a, b, &same) == 0 && same);
    snprintf(a, sizeof a, "%s/k0", d), snprintf(b, sizeof b, "%s/k", d);
    assert_true(same_logs(a, b));
    snprintf(c, sizeof c, "grep -c . %s/k1/log.csv | grep -qx 301", d);
    assert_int_equal(sh(c), 0);
    printf("    a rank killed mid-run: the job ends; --resume on 2 ranks = the run that never stopped; on 1 "
           "process it runs to the end\n");
}

// Rank 1's copy of the cutouts has a damaged file (another node's disk): with data.strict = 1 the job ends
// at once with that file named and a non-zero status.
static void test_train_rank_error(const char *d) {
    char c[2000];
    snprintf(c, sizeof c,
             "rm -rf %s/m2 && cp -r %s/m %s/m2 && head -c 100 %s/m/cutouts/G000007.fits "
             ">%s/m2/cutouts/G000007.fits",
             d, d, d, d, d);
    assert_int_equal(sh(c), 0);
    const char *t = "./bin/galnn train --config models/demo_cnn.cfg --epochs 2 train.crop=12 data.strict=1 "
                    "--threads 1";
    snprintf(
        c, sizeof c,
        "timeout 60 mpirun --oversubscribe -np 1 %s --catalog %s/m/catalog.csv --images "
        "'%s/m/cutouts/{id}.fits' --out %s/e data.cache_dir=%s/cache : -np 1 %s --catalog %s/m/catalog.csv "
        "--images '%s/m2/cutouts/{id}.fits' --out %s/e data.cache_dir=%s/cache >%s/e.log 2>&1",
        t, d, d, d, d, t, d, d, d, d, d);
    int rc = sh(c);
    assert_true(rc != 0 && rc != 124);
    snprintf(c, sizeof c, "grep -q 'm2/cutouts/G000007.fits' %s/e.log", d);
    assert_int_equal(sh(c), 0);
    printf("    a damaged cutout on rank 1 only: the job ends with its name and a non-zero status\n");
}

// galnn analyze on 2 ranks: trainings data-parallel, embed and causal shared, eval/PID/report on rank 0; a
// rerun reuses every step.
static void test_analyze_ranks(const char *d) {
    char c[2400];
    snprintf(
        c, sizeof c,
        "printf '[analysis]\ntarget = logmstar\n[model.mags]\nconfig = models/scl_mopt.cfg\nset = "
        "model.depth=2; model.hidden=32; train.iterations=60; train.drops=45; train.lr=1e-3\n[causal]\n"
        "models = mags\nvars = sersic_n\nk = 50\n[pid.mm]\nx1 = models/mi_mopt.cfg\nx2 = "
        "models/mi_morph.cfg\nx12 = models/mi_mopt_morph.cfg\nset = model.depth=2; model.hidden=32; "
        "train.iterations=60; train.lr=1e-3\n' >%s/a.cfg && for i in 1 2; do " MPIRUN
        "2 ./bin/galnn analyze --config %s/a.cfg --out %s/A --catalog %s/m/catalog.csv --threads 1 "
        ">%s/a$i.log 2>&1 || exit 1; done && [ -s %s/A/report.md ] && [ -s %s/A/causal/mags/local.csv ] && "
        "grep -q 'pointwise PID' %s/a1.log && ! grep -q 'training\\|pointwise PID' %s/a2.log",
        d, d, d, d, d, d, d, d, d);
    assert_int_equal(sh(c), 0);
    printf("    analyze on 2 ranks: the study and its report; a rerun reuses every step\n");
}

// [train] sync_bn = 1: one SGD step (lr 1: the step is the gradient) of a CNN with batch norm on 2 ranks
// agrees with the one-process full-batch step to float rounding, and so do 2 ranks of 2 threads, each rank's
// rows cut between its threads (statistics over the threads, then the ranks), and one process of 2 threads;
// with each rank's own statistics it does not.
static void test_sync_bn(const char *d) {
    char c[2000];
    const char *t =
        "--config models/demo_cnn.cfg --epochs 1 train.crop=12 train.batch=1000 train.optimizer=sgd "
        "train.momentum=0 train.lr=1 train.schedule=constant train.warmup=0 train.weight_decay=0 "
        "--threads 1";
    snprintf(c, sizeof c,
             "A=\"%s --catalog %s/m/catalog.csv --images %s/m/cutouts/{id}.fits data.cache_dir=%s/cache\"; "
             "./bin/galnn train $A --out %s/b1 >/dev/null 2>&1 && " MPIRUN
             "2 ./bin/galnn train $A --out %s/b2s "
             "train.sync_bn=1 >/dev/null 2>&1 && " MPIRUN
             "2 ./bin/galnn train $A --out %s/b2 >/dev/null 2>&1 && " MPIRUN
             "2 ./bin/galnn train $A --threads 2 --out %s/b2t train.sync_bn=1 >/dev/null 2>&1 && "
             "./bin/galnn train $A --threads 2 --out %s/b1t >/dev/null 2>&1",
             t, d, d, d, d, d, d, d, d);
    assert_int_equal(sh(c), 0);
    char a[300], b[300];
    int same;
    snprintf(a, sizeof a, "%s/b1/last.npz", d), snprintf(b, sizeof b, "%s/b2s/last.npz", d);
    double ds = ckpt_diff(a, b, &same);
    snprintf(b, sizeof b, "%s/b2t/last.npz", d);
    double dt = ckpt_diff(a, b, &same);
    snprintf(b, sizeof b, "%s/b1t/last.npz", d);
    double d1 = ckpt_diff(a, b, &same);
    printf("    the same on 2 ranks x 2 threads (rows cut between the threads): %.2g; 1 process x 2 threads: "
           "%.2g\n",
           dt, d1);
    assert_true(dt >= 0 && dt < 1e-5 && d1 >= 0 && d1 < 1e-5);
    snprintf(b, sizeof b, "%s/b2/last.npz", d);
    double du = ckpt_diff(a, b, &same);
    printf("    CNN, one SGD step on 2 ranks vs the full batch: max |dw| %.2g with sync_bn, %.2g with each "
           "rank's "
           "batch statistics\n",
           ds, du);
    assert_true(ds >= 0 && ds < 1e-5 && du > 100 * ds);
}

static void test_train_ranks(void **s) {
    (void)s;
    if (!have_mpi()) {
        printf("    (no mpirun, or galnn built without MPI: skipped)\n");
        return;
    }
    const char *d = "/tmp/galnn_mpi_train";
    char c[600];
    snprintf(c, sizeof c,
             "rm -rf %s && mkdir -p %s && ./bin/galnn mock --out %s/m --n 900 --size 16 >/dev/null 2>&1", d,
             d, d);
    assert_int_equal(sh(c), 0);
    test_train_slices(d);
    test_sync_bn(d);
    test_train_kill(d);
    test_train_rank_error(d);
    test_analyze_ranks(d);
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
    // causal: the kNN queries and local tests in blocks of the query galaxies, the same files
    snprintf(
        cmd, sizeof cmd,
        "A='causal --latent %s/embed1.csv --catalog %s/m/catalog.csv --target logmstar --vars zspec,ebv "
        "--perms 9 --query-split all'; ./bin/galnn $A --out %s/c1 >/dev/null 2>&1 && timeout 120 mpirun "
        "--oversubscribe -np 3 ./bin/galnn $A --out %s/c3 --threads 1 >/dev/null 2>&1 && cmp %s/c1/local.csv "
        "%s/c3/local.csv && cmp %s/c1/summary.json %s/c3/summary.json",
        d, d, d, d, d, d, d, d);
    assert_int_equal(sh(cmd), 0);
    printf("    causal on 3 ranks: local.csv and summary.json as one process writes them\n");
    snprintf(cmd, sizeof cmd,
             "timeout 60 mpirun --oversubscribe -np 2 ./bin/galnn predict --ckpt %s/none.npz --out %s/x.csv "
             ">%s/err.log 2>&1",
             d, d, d);
    int rc = sh(cmd);
    assert_true(rc != 0 && rc != 124); // an error, and no hang (timeout's status)
    snprintf(cmd, sizeof cmd, "grep -q 'none.npz' %s/err.log", d);
    assert_int_equal(sh(cmd), 0);
    snprintf(
        cmd, sizeof cmd,
        "timeout 60 mpirun --oversubscribe -np 2 ./bin/galnn eval --ckpt %s/g/best.npz >%s/err2.log 2>&1", d,
        d);
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
                                       cmocka_unit_test(test_predict_ranks),
                                       cmocka_unit_test(test_train_ranks)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
