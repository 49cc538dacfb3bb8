// The galnn program: help, version, and clear errors (exit status 1,
// "galnn: error: ..." on stderr) for unknown commands and bad flag values.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sys/wait.h>

#include "../common/gn_rng.h"
#include "../io/catalog.h"
#include "../io/json.h"
#include "../io/npy.h"

#include "testutil.h"

// Run bin/galnn with args; capture stdout+stderr into out; return exit status.
static int run(const char *args, char *out, size_t len) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "./bin/galnn %s 2>&1", args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, len - 1, p);
    out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_help_version(void **s) {
    (void)s;
    char out[4096];
    assert_int_equal(run("version", out, sizeof out), 0);
    assert_non_null(strstr(out, "galnn " GN_VERSION));
    // OpenMP threads wait a bounded spin unless the user chose: galnn restarts itself with it set
    const char *wp = getenv("OMP_WAIT_POLICY"), *sc = getenv("GOMP_SPINCOUNT");
    char *wp0 = wp ? strdup(wp) : NULL, *sc0 = sc ? strdup(sc) : NULL;
    unsetenv("OMP_WAIT_POLICY"), unsetenv("GOMP_SPINCOUNT");
    assert_int_equal(run("version", out, sizeof out), 0);
    assert_non_null(strstr(out, "OpenMP waiting: GOMP_SPINCOUNT=" GN_SPINCOUNT "\n"));
    setenv("OMP_WAIT_POLICY", "passive", 1);
    assert_int_equal(run("version", out, sizeof out), 0);
    assert_non_null(strstr(out, "OpenMP waiting: OMP_WAIT_POLICY=passive\n"));
    unsetenv("OMP_WAIT_POLICY");
    if (wp0) setenv("OMP_WAIT_POLICY", wp0, 1);
    if (sc0) setenv("GOMP_SPINCOUNT", sc0, 1);
    free(wp0), free(sc0);
    assert_int_equal(run("help", out, sizeof out), 0);
    assert_non_null(strstr(out, "demo"));
    assert_int_equal(run("help demo", out, sizeof out), 0);
    assert_non_null(strstr(out, "usage: galnn demo"));
    assert_int_equal(run("demo --help", out, sizeof out), 0);
    assert_non_null(strstr(out, "--threads"));
}

// galnn(1) is made from the help texts: a section per command; and presets are found by name.
static void test_man_preset(void **s) {
    (void)s;
    char out[4096];
    FILE *p = popen("sh tools/man.sh ./bin/galnn", "r");
    assert_non_null(p);
    int sections = 0;
    char line[4096];
    while (fgets(line, sizeof line, p)) sections += !strncmp(line, ".SH \"galnn ", 11);
    assert_int_equal(pclose(p), 0);
    assert_int_equal(sections, 17);
    // --config by name: the preset is read (the error is then about the catalog, not the configuration)
    assert_int_equal(run("train --config ugriz_mlp --catalog /tmp/galnn_cli_no_such.csv --out /tmp/galnn_cli_pz", out,
                         sizeof out),
                     1);
    assert_non_null(strstr(out, "/tmp/galnn_cli_no_such.csv: cannot open"));
}

// A 60-galaxy catalog (id, a, b, y) and a one-epoch column model of it reading catalog `catpath`.
static void write_small(const char *csv, const char *cfg, const char *catpath) {
    FILE *f = fopen(csv, "w");
    assert_non_null(f);
    fprintf(f, "id,a,b,y\n");
    for (int i = 0; i < 60; i++) fprintf(f, "g%d,%d,%d,%g\n", i, i % 7, i % 5, 0.1 * i);
    fclose(f);
    f = fopen(cfg, "w");
    assert_non_null(f);
    fprintf(f, "[data]\ncatalog = %s\n[target]\nnames = y\n[branch.p]\ninput = columns\ncolumns = a, b\n"
               "[train]\nepochs = 1\n", catpath);
    fclose(f);
}

// A run trained with a relative catalog path, then read from another directory (the checkpoint's absolute
// path), then moved together with its data (the path relative to the run).
static void test_moved_data(void **s) {
    (void)s;
    char out[4096], cmd[8192], cwd[4096];
    assert_non_null(getcwd(cwd, sizeof cwd));
    (void)system("rm -rf /tmp/galnn_cli_mv /tmp/galnn_cli_mv2 && mkdir -p /tmp/galnn_cli_mv");
    write_small("/tmp/galnn_cli_mv/cat.csv", "/tmp/galnn_cli_mv/m.cfg", "cat.csv");
    snprintf(cmd, sizeof cmd, "cd /tmp/galnn_cli_mv && %s/bin/galnn train --config m.cfg --out run >/dev/null 2>&1", cwd);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(run("eval --ckpt /tmp/galnn_cli_mv/run/best.npz", out, sizeof out), 0);
    assert_non_null(strstr(out, "using /tmp/galnn_cli_mv/cat.csv"));
    assert_int_equal(rename("/tmp/galnn_cli_mv", "/tmp/galnn_cli_mv2"), 0);
    assert_int_equal(run("eval --ckpt /tmp/galnn_cli_mv2/run/best.npz", out, sizeof out), 0);
    assert_non_null(strstr(out, "using /tmp/galnn_cli_mv2/run/../cat.csv"));
    (void)system("rm -rf /tmp/galnn_cli_mv2");
}

static void test_errors(void **s) {
    (void)s;
    char out[4096];
    assert_int_equal(run("", out, sizeof out), 1);
    assert_non_null(strstr(out, "usage"));
    assert_int_equal(run("frobnicate", out, sizeof out), 1);
    assert_non_null(strstr(out, "galnn: error: unknown command 'frobnicate'"));
    assert_int_equal(run("help frobnicate", out, sizeof out), 1);
    assert_int_equal(run("demo --threads many", out, sizeof out), 1);
    assert_non_null(strstr(out, "galnn: error: --threads: 'many'"));
    assert_int_equal(run("demo --epochs 0", out, sizeof out), 1);
    assert_int_equal(run("demo --seed", out, sizeof out), 1);
    assert_non_null(strstr(out, "--seed needs a value"));
    assert_int_equal(run("demo --bogus 1", out, sizeof out), 1);
    assert_non_null(strstr(out, "unknown option '--bogus'"));
}

// A trained model applied to new galaxies: a catalog without the target column, a sentinel value, the
// null rules, moved data, and eval's exit status (the run of test_config_ranges).
static void new_catalog(char *out, size_t cap) {
    FILE *f;
    // applying it to new galaxies: a catalog without the target column, one with a sentinel magnitude
    f = fopen("/tmp/galnn_cli_new.csv", "w");
    assert_non_null(f);
    fprintf(f, "id,a,b\nn1,3,2\nn2,99,2\nn3,4,1\n");
    fclose(f);
    const char *pr = "predict --ckpt /tmp/galnn_cli_cfg/best.npz --catalog /tmp/galnn_cli_new.csv --out "
                     "/tmp/galnn_cli_new_pred.csv";
    assert_int_equal(run(pr, out, cap), 0);
    assert_non_null(strstr(out, "wrote /tmp/galnn_cli_new_pred.csv: 3 galaxies"));
    assert_non_null(strstr(out, "1 galaxies have an input")); // a = 99 is far beyond the training range 0..6
    char csv[1024] = "", cmd[512];
    f = fopen("/tmp/galnn_cli_new_pred.csv", "r");
    assert_non_null(f);
    csv[fread(csv, 1, sizeof csv - 1, f)] = 0;
    fclose(f);
    assert_non_null(strstr(csv, "id,split,y_pred,ood\n"));
    assert_non_null(strstr(csv, "n1,none,")), assert_non_null(strstr(csv, "n2,none,"));
    char n2[128];
    snprintf(n2, sizeof n2, "%s", strstr(csv, "n2,none,"));
    *strchr(n2, '\n') = 0;
    assert_true(atoi(strrchr(n2, ',') + 1) & 1); // flagged: an input out of range
    // --out NAME.fits: a FITS binary table, which reads back as a catalog
    assert_int_equal(run("predict --ckpt /tmp/galnn_cli_cfg/best.npz --catalog /tmp/galnn_cli_new.csv --out "
                         "/tmp/galnn_cli_new_pred.fits",
                         out, cap),
                     0);
    io_catalog pc;
    assert_int_equal(io_catalog_read("/tmp/galnn_cli_new_pred.fits", NULL, &pc), 0);
    assert_int_equal(pc.n_rows, 3);
    assert_string_equal(io_catalog_id(&pc, 1), "n2");
    assert_non_null(io_catalog_values(&pc, "y_pred")), assert_non_null(io_catalog_values(&pc, "ood"));
    io_catalog_free(&pc);
    remove("/tmp/galnn_cli_new_pred.fits");
    snprintf(cmd, sizeof cmd, "%s --split test", pr); // a new catalog has no train/val/test split
    assert_int_equal(run(cmd, out, cap), 1);
    assert_non_null(strstr(out, "no train/val/test split"));
    snprintf(cmd, sizeof cmd, "%s data.null.a=99", pr); // the sentinel declared: the row is left out
    assert_int_equal(run(cmd, out, cap), 0);
    assert_non_null(strstr(out, "2 galaxies (1 catalog rows lack an input)"));
    snprintf(cmd, sizeof cmd, "%s 'data.nulls=<=-1, 99'", pr);
    assert_int_equal(run(cmd, out, cap), 0);
    assert_non_null(strstr(out, "2 galaxies"));
    snprintf(cmd, sizeof cmd, "%s data.null.nope=99", pr);
    assert_int_equal(run(cmd, out, cap), 1);
    assert_non_null(strstr(out, "'nope', which matches no numeric column"));
    // data that moved since training: the message says how to point at it, and --catalog does
    assert_int_equal(rename("/tmp/galnn_cli_cfg.csv", "/tmp/galnn_cli_cfg_moved.csv"), 0);
    assert_int_equal(run("eval --ckpt /tmp/galnn_cli_cfg/best.npz", out, cap), 1);
    assert_non_null(strstr(out, "is not there: pass --catalog"));
    assert_int_equal(run("eval --ckpt /tmp/galnn_cli_cfg/best.npz --catalog /tmp/galnn_cli_cfg_moved.csv "
                         "--out /tmp/galnn_cli_cfg",
                         out, cap),
                     0);
    assert_int_equal(rename("/tmp/galnn_cli_cfg_moved.csv", "/tmp/galnn_cli_cfg.csv"), 0);
    // eval exits non-zero when it cannot write metrics.json (here a directory of that name); a missing
    // --out directory is made
    (void)system("rm -rf /tmp/galnn_cli_no && mkdir -p /tmp/galnn_cli_no/metrics.json");
    assert_int_equal(run("eval --ckpt /tmp/galnn_cli_cfg/best.npz --split train --out /tmp/galnn_cli_no", out,
                         cap),
                     1);
    assert_non_null(strstr(out, "metrics.json"));
    assert_int_equal(run("eval --ckpt /tmp/galnn_cli_cfg/best.npz --split train --out /tmp/galnn_cli_no/a/b",
                         out, cap), 0);
    struct stat mst;
    assert_int_equal(stat("/tmp/galnn_cli_no/a/b/metrics.json", &mst), 0);
    (void)system("rm -rf /tmp/galnn_cli_no");
}

// Configuration values out of range or not among the choices are errors naming the key (typed sections).
static void test_config_ranges(void **s) {
    (void)s;
    char out[4096];
    write_small("/tmp/galnn_cli_cfg.csv", "/tmp/galnn_cli_cfg.cfg", "/tmp/galnn_cli_cfg.csv");
    const char *base = "train --config /tmp/galnn_cli_cfg.cfg --out /tmp/galnn_cli_cfg";
    struct {
        const char *set, *says;
    } bad[] = {{"train.lr=-1", "[train] lr = -1: give a value > 0"},
               {"train.epochs=0", "[train] epochs = 0: give a value >= 1"},
               {"train.optimizer=adagrad", "optimizer = 'adagrad' is not one of adam|adamw|sgd"},
               {"data.val_frac=0.9", "must add to at most 1"},
               {"branch.p.width=0", "[branch.p] width = 0"},
               {"train.warmup=-5", "[train] warmup = -5"},
               {"target.units=dex,mag", "[target] units lists 2 units for 1 targets"}};
    for (int k = 0; k < (int)(sizeof bad / sizeof bad[0]); k++) {
        char cmd[512];
        snprintf(cmd, sizeof cmd, "%s %s", base, bad[k].set);
        assert_int_equal(run(cmd, out, sizeof out), 1);
        if (!strstr(out, bad[k].says)) fail_msg("%s: expected '%s' in: %s", bad[k].set, bad[k].says, out);
    }
    char wcmd[512];
    // --out: missing parents are made; a run that fails leaves none of them behind
    (void)system("rm -rf /tmp/galnn_cli_deep");
    assert_int_equal(run("train --config /tmp/galnn_cli_cfg.cfg --out /tmp/galnn_cli_deep/a/b train.lr=-1", out,
                         sizeof out),
                     1);
    struct stat dst;
    assert_int_not_equal(stat("/tmp/galnn_cli_deep", &dst), 0);
    assert_int_equal(run("train --config /tmp/galnn_cli_cfg.cfg --out /tmp/galnn_cli_deep/a/b", out, sizeof out), 0);
    assert_non_null(strstr(out, "memory: a step holds")); // the first step's memory, next to the machine's
    // the temp file of a killed checkpoint write is removed when the run resumes
    FILE *tf = fopen("/tmp/galnn_cli_deep/a/b/last.npz.tmp.4242", "w");
    assert_non_null(tf);
    fclose(tf);
    assert_int_equal(run("train --resume /tmp/galnn_cli_deep/a/b/last.npz --epochs 2", out, sizeof out), 0);
    assert_non_null(strstr(out, "removed 1 temp file"));
    assert_int_not_equal(stat("/tmp/galnn_cli_deep/a/b/last.npz.tmp.4242", &dst), 0);
    (void)system("rm -rf /tmp/galnn_cli_deep");
    snprintf(wcmd, sizeof wcmd, "%s train.warmup=100000", base); // valid, but worth a warning
    assert_int_equal(run(wcmd, out, sizeof out), 0);
    assert_non_null(strstr(out, "is longer than the run"));
    assert_non_null(strstr(out, "capped at"));
    assert_int_equal(run(base, out, sizeof out), 0); // and the valid configuration trains
    snprintf(wcmd, sizeof wcmd, "%s --split-frac 0.5,0.25", base); // the [data] flags every command takes
    assert_int_equal(run(wcmd, out, sizeof out), 0);
    assert_null(strstr(out, "samples: train 40,")); // fewer training galaxies than the default 0.7
    snprintf(wcmd, sizeof wcmd, "%s --split-frac 0.9,0.5", base);
    assert_int_equal(run(wcmd, out, sizeof out), 1);
    assert_non_null(strstr(out, "adding to at most 1"));
    new_catalog(out, sizeof out);
    remove("/tmp/galnn_cli_cfg.csv"), remove("/tmp/galnn_cli_cfg.cfg");
    remove("/tmp/galnn_cli_new.csv"), remove("/tmp/galnn_cli_new_pred.csv");
    (void)system("rm -rf /tmp/galnn_cli_cfg");
}

static void test_mi_knn(void **s) {
    (void)s;
    char out[4096];
    FILE *f = fopen("/tmp/galnn_cli_mi.csv", "w");
    assert_non_null(f);
    fprintf(f, "id,a,b,c\n");
    for (int i = 0; i < 400; i++) fprintf(f, "r%d,%d,%d,%s\n", i, i % 17, (i % 17) * 2 + i % 3, i == 5 ? "-9999" : "1");
    fclose(f);
    assert_int_equal(run("mi --in /tmp/galnn_cli_mi.csv --x a --y b --json", out, sizeof out), 0);
    assert_non_null(strstr(out, "\"mi\": "));
    assert_true(atof(strstr(out, "\"mi\": ") + 6) > 1.0); // b is nearly a function of a
    assert_int_equal(run("mi --in /tmp/galnn_cli_mi.csv --x a --y c --estimator gauss --transform none", out,
                         sizeof out),
                     1);
    assert_non_null(strstr(out, "singular")); // c is constant once its null is dropped
    assert_int_equal(run("mi --in /tmp/galnn_cli_mi.csv --x a --y c --estimator gauss", out, sizeof out), 1);
    assert_non_null(strstr(out, "constant (cannot standardise)")); // the default standardises first
    // columns of very different scales: the default standardises them, so KSG's max-norm
    // neighbourhoods see both; I = 0.5 ln(var y / var noise) = 0.5 ln(2.04 / 0.04) for y = a + b + 0.2 e
    FILE *sf = fopen("/tmp/galnn_cli_mis.csv", "w");
    assert_non_null(sf);
    fprintf(sf, "id,a,b,y\n");
    gn_rng sr;
    gn_rng_seed(&sr, 5, GN_STREAM_SAMPLE);
    for (int i = 0; i < 1500; i++) {
        double a = gn_rng_normal(&sr), b = gn_rng_normal(&sr), e = gn_rng_normal(&sr);
        fprintf(sf, "r%d,%.6f,%.4f,%.6f\n", i, a, 1000 * b, a + b + 0.2 * e);
    }
    fclose(sf);
    assert_int_equal(run("mi --in /tmp/galnn_cli_mis.csv --x a,b --y y --json", out, sizeof out), 0);
    assert_float_equal(atof(strstr(out, "\"mi\": ") + 6), 0.5 * log(2.04 / 0.04), 0.1);
    assert_non_null(strstr(out, "\"transform\": \"standardize\""));
    assert_int_equal(run("mi --in /tmp/galnn_cli_mis.csv --x a,b --y y --transform none --json", out, sizeof out), 0);
    assert_true(atof(strstr(out, "\"mi\": ") + 6) < 0.5); // raw scales: b alone sets the neighbourhoods
    remove("/tmp/galnn_cli_mis.csv");
    assert_int_equal(run("mi --in /tmp/galnn_cli_mi.csv --x a --y nope", out, sizeof out), 1);
    assert_non_null(strstr(out, "no column 'nope'"));
    assert_int_equal(run("mi --in /tmp/galnn_cli_mi.csv --x a --y b --estimator ksg9", out, sizeof out), 1);
    assert_int_equal(run("knn --ref /tmp/galnn_cli_mi.csv --cols a,b --k 3 --out /tmp/galnn_cli_nn.csv", out, sizeof out), 0);
    assert_non_null(strstr(out, "3 neighbours of 400 queries"));
    assert_int_equal(run("knn --ref /tmp/galnn_cli_mi.csv --cols a,b --k 1 --include-self --out /tmp/galnn_cli_nn.csv", out, sizeof out), 0);
    FILE *nf = fopen("/tmp/galnn_cli_nn.csv", "r");
    char line[256];
    assert_non_null(fgets(line, sizeof line, nf)), assert_non_null(fgets(line, sizeof line, nf));
    fclose(nf);
    assert_string_equal(line, "r0,1,r0,0\n"); // itself, at distance 0
    assert_int_equal(run("knn --ref /tmp/galnn_cli_mi.csv --cols a --k 400 --out /tmp/galnn_cli_nn.csv", out, sizeof out), 1);
    assert_non_null(strstr(out, "k = 400"));
    remove("/tmp/galnn_cli_mi.csv"), remove("/tmp/galnn_cli_nn.csv");
    // --join and --each: per-column MI of joined columns selected by a prefix
    FILE *g = fopen("/tmp/galnn_cli_each_a.csv", "w"), *h = fopen("/tmp/galnn_cli_each_b.csv", "w");
    assert_non_null(g), assert_non_null(h);
    fprintf(g, "id,y\n"), fprintf(h, "id,lat_a,lat_b\n");
    gn_rng r;
    gn_rng_seed(&r, 3, GN_STREAM_SAMPLE);
    for (int i = 0; i < 2000; i++) {
        double y = gn_rng_normal(&r);
        fprintf(g, "g%d,%.6f\n", i, y);
        fprintf(h, "g%d,%.6f,%.6f\n", i, y + 0.3 * gn_rng_normal(&r), gn_rng_normal(&r));
    }
    fclose(g), fclose(h);
    assert_int_equal(run("mi --in /tmp/galnn_cli_each_a.csv --join /tmp/galnn_cli_each_b.csv --x 'lat_*' --y y --each --json", out,
                         sizeof out), 0);
    io_json j;
    assert_int_equal(io_json_parse(out, strlen(out), "mi --each", &j), 0);
    double ia = io_json_num(io_json_path(&j, "mi", "lat_a", "mi", NULL), -1), ib = io_json_num(io_json_path(&j, "mi", "lat_b", "mi", NULL), -1);
    io_json_free(&j);
    printf("    --each: I(lat_a; y) %.3f (Gaussian value %.3f), I(lat_b; y) %.3f nats\n", ia, 0.5 * log(1 + 1 / 0.09), ib);
    assert_true(fabs(ia - 0.5 * log(1 + 1 / 0.09)) < 0.1 && fabs(ib) < 0.05);
}

// galnn causal on a table whose latent space is (s0, s1): the target also
// depends on n (not in the latent space: external) but not on z (noise).
static void test_causal_pid(void **s) {
    (void)s;
    char out[8192];
    FILE *f = fopen("/tmp/galnn_cli_causal.csv", "w");
    assert_non_null(f);
    fprintf(f, "id,split,s0,s1,n,z,logmstar,type\n");
    gn_rng r;
    gn_rng_seed(&r, 2, 1);
    for (int i = 0; i < 3000; i++) {
        double s0 = gn_rng_uniform(&r), s1 = gn_rng_uniform(&r), n = gn_rng_normal(&r), z = gn_rng_normal(&r);
        fprintf(f, "g%d,%s,%.6f,%.6f,%.6f,%.6f,%.6f,%s\n", i, i % 5 == 0 ? "test" : "train", s0, s1, n, z,
                10 + s0 + 0.3 * n + 0.1 * gn_rng_normal(&r), i % 2 ? "sf" : "passive");
    }
    fclose(f);
    assert_int_equal(run("causal --latent /tmp/galnn_cli_causal.csv --latent-cols s0,s1 --catalog /tmp/galnn_cli_causal.csv "
                         "--target logmstar --vars n,z --by type --out /tmp/galnn_cli_causal",
                         out, sizeof out),
                     0);
    char *js = NULL;
    size_t len = 0;
    FILE *jf = fopen("/tmp/galnn_cli_causal/summary.json", "r");
    assert_non_null(jf);
    js = malloc(1 << 16);
    len = fread(js, 1, (1 << 16) - 1, jf);
    js[len] = 0;
    fclose(jf);
    char *zpos = strstr(js, "\"z\":");
    assert_non_null(zpos);
    char *npos = strstr(js, "\"n\": {");
    assert_non_null(npos);
    // the variable n: external in every population; z: not
    char *allz = strstr(zpos, "\"all\"");
    *zpos = 0;
    assert_non_null(strstr(strstr(npos, "\"all\""), "\"external\": true"));
    assert_non_null(strstr(allz, "\"external\": false"));
    free(js);
    FILE *png = fopen("/tmp/galnn_cli_causal/pe.png", "rb");
    assert_non_null(png);
    fclose(png);
    assert_int_equal(run("causal --latent /tmp/galnn_cli_causal.csv --latent-cols s0,s1 --catalog /tmp/galnn_cli_causal.csv "
                         "--target logmstar --vars nope --out /tmp/galnn_cli_causal",
                         out, sizeof out),
                     1);
    assert_non_null(strstr(out, "no column 'nope'"));
    assert_int_equal(run("causal --latent /tmp/galnn_cli_causal.csv --latent-cols s0,s1 --catalog /tmp/galnn_cli_causal.csv "
                         "--target logmstar --vars n --k 5000 --out /tmp/galnn_cli_causal",
                         out, sizeof out),
                     1);
    assert_non_null(strstr(out, "need more than K"));
    // a small K: every galaxy still gets its statistics (the minimum of valid neighbours follows K)
    assert_int_equal(run("causal --latent /tmp/galnn_cli_causal.csv --latent-cols s0,s1 --catalog /tmp/galnn_cli_causal.csv "
                         "--target logmstar --vars n --k 6 --out /tmp/galnn_cli_causal6",
                         out, sizeof out),
                     0);
    assert_null(strstr(out, "undefined"));
    io_json j6;
    assert_int_equal(io_json_read("/tmp/galnn_cli_causal6/summary.json", &j6), 0);
    const io_json *a6 = io_json_path(&j6, "variables", "n", "all", NULL);
    assert_int_equal((int)io_json_num(io_json_get(a6, "n_undefined"), -1), 0);
    assert_true(io_json_num(io_json_get(a6, "pe_p16_p50_p84"), 1) > 0); // a finite median PE
    io_json_free(&j6);
    (void)system("rm -rf /tmp/galnn_cli_causal6");

    // pid --dist on ReducedOr (BROJA's optimum on the boundary of Delta_P): finite numbers, valid JSON
    FILE *rf = fopen("/tmp/galnn_cli_ror.csv", "w");
    assert_non_null(rf);
    fprintf(rf, "x1,x2,y,p\n0,0,0,0.5\n0,1,1,0.25\n1,0,1,0.25\n");
    fclose(rf);
    assert_int_equal(run("pid --dist /tmp/galnn_cli_ror.csv --measure all --json", out, sizeof out), 0);
    io_json jr;
    assert_int_equal(io_json_parse(out, strlen(out), "pid --json", &jr), 0);
    assert_float_equal(io_json_num(io_json_path(&jr, "broja", "syn", NULL), -1), 0.688722, 1e-5);
    io_json_free(&jr);
    remove("/tmp/galnn_cli_ror.csv");

    // pid --pointwise: every galaxy at log M* = 10 (prior 1 in its bin), constant model probabilities
    f = fopen("/tmp/galnn_cli_p1.csv", "w");
    FILE *f2 = fopen("/tmp/galnn_cli_p2.csv", "w"), *f3 = fopen("/tmp/galnn_cli_p12.csv", "w"), *fc = fopen("/tmp/galnn_cli_pc.csv", "w");
    fprintf(f, "id,logp\n"), fprintf(f2, "id,logp\n"), fprintf(f3, "id,logp\n"), fprintf(fc, "id,split,logmstar\n");
    for (int i = 0; i < 50; i++) {
        fprintf(f, "g%d,%.17g\n", i, log(0.2)), fprintf(f2, "g%d,%.17g\n", i, log(0.05));
        fprintf(f3, "g%d,%.17g\n", i, log(0.3)), fprintf(fc, "g%d,test,10.0\n", i);
    }
    fclose(f), fclose(f2), fclose(f3), fclose(fc);
    assert_int_equal(run("pid --pointwise --p1 /tmp/galnn_cli_p1.csv --p2 /tmp/galnn_cli_p2.csv --p12 /tmp/galnn_cli_p12.csv "
                         "--catalog /tmp/galnn_cli_pc.csv --target logmstar --json --boot 50",
                         out, sizeof out),
                     0);
    char *red = strstr(out, "\"red\": [");
    assert_non_null(red);
    assert_float_equal(atof(red + 8), log(0.05), 1e-5);
    assert_float_equal(atof(strstr(out, "\"unq1\": [") + 9), log(4.0), 1e-5);
    assert_float_equal(atof(strstr(out, "\"syn\": [") + 8), log(1.5), 1e-5);
    // pid --dist: AND, and a table that does not sum to 1
    f = fopen("/tmp/galnn_cli_and.csv", "w");
    fprintf(f, "x1,x2,y,p\nlo,lo,no,0.25\nlo,hi,no,0.25\nhi,lo,no,0.25\nhi,hi,yes,0.25\n");
    fclose(f);
    assert_int_equal(run("pid --dist /tmp/galnn_cli_and.csv --measure ccs --json", out, sizeof out), 0);
    assert_float_equal(atof(strstr(out, "\"red\": ") + 7), 0.5 - 0.25 * log2(3.0), 1e-6);
    f = fopen("/tmp/galnn_cli_and.csv", "w");
    fprintf(f, "x1,x2,y,p\nlo,lo,no,0.25\nlo,hi,no,0.5\n");
    fclose(f);
    assert_int_equal(run("pid --dist /tmp/galnn_cli_and.csv", out, sizeof out), 1);
    assert_non_null(strstr(out, "sum to 0.75"));
    assert_int_equal(run("pid --dist /tmp/galnn_cli_and.csv --measure best", out, sizeof out), 1);
    // mi: binned with Miller-Madow, and a permutation p-value
    assert_int_equal(run("mi --in /tmp/galnn_cli_causal.csv --x n --y logmstar --estimator binned --bins 10 --perms 19 --json", out,
                         sizeof out),
                     0);
    assert_float_equal(atof(strstr(out, "\"p_value\": ") + 12), 0.05, 1e-9);
    remove("/tmp/galnn_cli_causal.csv"), remove("/tmp/galnn_cli_p1.csv"), remove("/tmp/galnn_cli_p2.csv");
    remove("/tmp/galnn_cli_p12.csv"), remove("/tmp/galnn_cli_pc.csv"), remove("/tmp/galnn_cli_and.csv");
    (void)system("rm -rf /tmp/galnn_cli_causal");
}


// A latent model end to end: train (SCL), embed (S and the full latent, one
// row per usable galaxy, the run's splits), predict's logp = ln p(true bin)
// of its own p0..p{B-1}; embed refuses a non-latent checkpoint.
static void test_latent_cli(void **s) {
    (void)s;
    char out[8192];
    (void)system("rm -rf /tmp/galnn_cli_lat && mkdir -p /tmp/galnn_cli_lat");
    assert_int_equal(run("mock --out /tmp/galnn_cli_lat/m --n 300 --size 16", out, sizeof out), 0);
    FILE *f = fopen("/tmp/galnn_cli_lat/lat.cfg", "w");
    assert_non_null(f);
    fprintf(f, "[target]\nnames = logmstar\nhead = binned\n[branch.x]\ninput = columns\ncolumns = mag_g, mag_r, mag_i\n"
               "[branch.a]\ninput = columns\ncolumns = ebv\n[model]\nkind = latent\nmain = x\nextra = a\ndepth = 2\nhidden = 8\n"
               "[train]\nepochs = 2\nbatch = 16\nlr = 1e-3\n");
    fclose(f);
    f = fopen("/tmp/galnn_cli_lat/reg.cfg", "w");
    fprintf(f, "[target]\nnames = logmstar\n[branch.x]\ninput = columns\ncolumns = mag_r\nhidden = 4\n[train]\nepochs = 1\n");
    fclose(f);
    assert_int_equal(run("train --config /tmp/galnn_cli_lat/lat.cfg --catalog /tmp/galnn_cli_lat/m/catalog.csv --out /tmp/galnn_cli_lat/r",
                         out, sizeof out),
                     0);
    assert_int_equal(run("embed --ckpt /tmp/galnn_cli_lat/r/last.npz --out /tmp/galnn_cli_lat/S.csv", out, sizeof out), 0);
    assert_non_null(strstr(out, "x 8 latent dimensions"));
    assert_int_equal(run("embed --ckpt /tmp/galnn_cli_lat/r/last.npz --out /tmp/galnn_cli_lat/L.csv --full --split test", out,
                         sizeof out),
                     0);
    assert_non_null(strstr(out, "x 16 latent dimensions"));
    io_catalog c;
    io_catalog_opts co = {9000, 1, NULL};
    assert_int_equal(io_catalog_read("/tmp/galnn_cli_lat/S.csv", &co, &c), 0);
    assert_true(io_catalog_find(&c, "split") >= 0 && io_catalog_find(&c, "s7") >= 0 && io_catalog_find(&c, "s8") < 0);
    size_t n_all = c.n_rows;
    io_catalog_free(&c);
    assert_int_equal(io_catalog_read("/tmp/galnn_cli_lat/L.csv", &co, &c), 0);
    assert_true(io_catalog_find(&c, "s15") >= 0 && c.n_rows > 0 && c.n_rows < n_all / 3);
    io_catalog_free(&c);
    assert_int_equal(run("predict --ckpt /tmp/galnn_cli_lat/r/last.npz --out /tmp/galnn_cli_lat/p.csv --split test --bins", out,
                         sizeof out),
                     0);
    io_catalog p, m;
    assert_int_equal(io_catalog_read("/tmp/galnn_cli_lat/p.csv", &co, &p), 0);
    assert_int_equal(io_catalog_read("/tmp/galnn_cli_lat/m/catalog.csv", &co, &m), 0);
    io_id_index ix;
    assert_int_equal(io_id_index_build(&m, &ix), 0);
    const double *lp = io_catalog_values(&p, "logp"), *y = io_catalog_values(&m, "logmstar");
    assert_non_null(lp);
    for (size_t i = 0; i < p.n_rows; i++) {
        long row = io_id_find(&ix, io_catalog_id(&p, i));
        assert_true(row >= 0);
        int k = (int)floor((y[row] - 6.0) / (6.5 / 520));
        k = k < 0 ? 0 : k > 519 ? 519 : k;
        char nm[16];
        snprintf(nm, sizeof nm, "p%d", k);
        double pk = io_catalog_values(&p, nm)[i];
        assert_true(fabs(lp[i] - log(pk)) < 1e-4);
    }
    io_id_index_free(&ix);
    io_catalog_free(&p), io_catalog_free(&m);
    // a branch network has no S space
    assert_int_equal(run("train --config /tmp/galnn_cli_lat/reg.cfg --catalog /tmp/galnn_cli_lat/m/catalog.csv --out /tmp/galnn_cli_lat/g",
                         out, sizeof out),
                     0);
    assert_int_equal(run("embed --ckpt /tmp/galnn_cli_lat/g/last.npz --out /tmp/galnn_cli_lat/x.csv", out, sizeof out), 1);
    assert_non_null(strstr(out, "is not a latent (S-space) model"));
    (void)system("rm -rf /tmp/galnn_cli_lat");
}

static int same_file(const char *a, const char *b) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "cmp -s %s %s", a, b);
    return system(cmd) == 0;
}

// A number from one of galnn's JSON outputs: keys k1/k2/k3/k4, element i of an array (-1: a scalar).
static double jnum(const char *path, const char *k1, const char *k2, const char *k3, const char *k4, int i) {
    io_json j;
    assert_int_equal(io_json_read(path, &j), 0);
    double v = io_json_num(io_json_path(&j, k1, k2, k3, k4, NULL), i);
    io_json_free(&j);
    return v;
}

// Pearson correlation of two columns over the rows where both are finite.
static double pearson(const double *a, const double *b, size_t n) {
    double sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(a[i]) || !isfinite(b[i])) continue;
        sa += a[i], sb += b[i], saa += a[i] * a[i], sbb += b[i] * b[i], sab += a[i] * b[i], m++;
    }
    double ca = saa - sa * sa / m, cb = sbb - sb * sb / m;
    return (sab - sa * sb / m) / sqrt(ca * cb);
}

// Spectra end to end on 1000 mock galaxies (128 rest-frame pixels): the BIC
// scan over 2, 4 and 16 latents prefers a small size (16 latents reconstruct
// no better but pay for the information they carry); a rerun resumes every
// run and rewrites the same table; eval reports the scan's BIC; in the
// 4-latent model the first rotated
// latent tracks the 4000 Å break (negative correlation, oriented bluer) and
// the specific SFR (positive), with KSG MI(D1, Dn4000) > 0.4 nats; explain's
// attributions add up (completeness) for the spectral model and for an image CNN.
static void test_spectra_cli(void **s) {
    (void)s;
    static char out[1 << 16];
    if (tu_sanitized()) {
        printf("    (skipped in the sanitizer pass)\n");
        return;
    }
    const char *D = "/tmp/galnn_cli_spec";
    (void)system("rm -rf /tmp/galnn_cli_spec && mkdir -p /tmp/galnn_cli_spec");
    assert_int_equal(run("mock --out /tmp/galnn_cli_spec/m --n 1000 --size 16 --spectra --seed 5", out, sizeof out), 0);
    char p[512];
    snprintf(p, sizeof p, "%s/s.cfg", D);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fprintf(f, "[data]\ncatalog = %s/m/catalog.csv\n[branch.spec]\ninput = spectrum\nspectra = %s/m/spectra/{id}.npy\nwave = %s/m/spectra/wave.npy\n"
               "grid = 3500,7500,128\n[model]\nkind = specvae\n[train]\noptimizer = adam\namsgrad = 1\nlr = 5e-4\nwarmup = 30\nbatch = 32\n"
               "epochs = 25\npatience = 10\n", D, D, D);
    fclose(f);
    const char *scan = "spectra-scan --config /tmp/galnn_cli_spec/s.cfg --out /tmp/galnn_cli_spec/scan --latents 2,4,16 --threads 2";
    assert_int_equal(run(scan, out, sizeof out), 0);
    io_catalog c;
    io_catalog_opts big = {1e300, 0, NULL}; // BIC values are large numbers, not nulls
    assert_int_equal(io_catalog_read("/tmp/galnn_cli_spec/scan/scan.csv", &big, &c), 0);
    assert_int_equal(c.n_rows, 3);
    const double *bic = io_catalog_values(&c, "bic"), *kl = io_catalog_values(&c, "kl"), *lat = io_catalog_values(&c, "latent");
    assert_true(lat[0] == 2 && lat[1] == 4 && lat[2] == 16);
    printf("    BIC (KL nats/spectrum): 2 latents %.1f (%.2f), 4 latents %.1f (%.2f), 16 latents %.1f (%.2f)\n", bic[0], kl[0], bic[1],
           kl[1], bic[2], kl[2]);
    // BIC = k ln n + 2 n (-ELBO), delta from the smallest (which latent size wins varies with the seed on
    // 132 validation spectra: a known answer, not a ranking); more latents carry more information (KL)
    const double *kk = io_catalog_values(&c, "k"), *nn = io_catalog_values(&c, "n");
    const double *ne = io_catalog_values(&c, "neg_elbo"), *db = io_catalog_values(&c, "delta_bic");
    double mn = fmin(bic[0], fmin(bic[1], bic[2]));
    for (int i = 0; i < 3; i++) {
        assert_true(fabs(bic[i] - (kk[i] * log(nn[i]) + 2 * nn[i] * ne[i])) < 1.0); // -ELBO has 6 digits
        assert_true(fabs(db[i] - (bic[i] - mn)) < 1e-3);
    }
    assert_true(kl[2] > kl[1]);
    double b2 = bic[1];
    io_catalog_free(&c);
    struct stat sb;
    assert_int_equal(stat("/tmp/galnn_cli_spec/scan/bic.png", &sb), 0);
    unsigned char *t1, *t2;
    size_t l1, l2;
    assert_int_equal(io_read_file("/tmp/galnn_cli_spec/scan/scan.csv", &t1, &l1), 0);
    assert_int_equal(run(scan, out, sizeof out), 0); // resumes the finished runs: nothing retrained
    assert_null(strstr(out, "epoch 1/"));
    assert_int_equal(io_read_file("/tmp/galnn_cli_spec/scan/scan.csv", &t2, &l2), 0);
    assert_true(l1 == l2 && !memcmp(t1, t2, l1));
    free(t1), free(t2);
    assert_int_equal(run("eval --ckpt /tmp/galnn_cli_spec/scan/runs/none_d4/best.npz --split val --out /tmp/galnn_cli_spec", out, sizeof out), 0);
    double be = jnum("/tmp/galnn_cli_spec/metrics.json", "bic", NULL, NULL, NULL, -1);
    assert_true(fabs(be - b2) < 1e-3 * fabs(b2) + 0.01);
    // the latent space's physics
    assert_int_equal(run("spectra-latents --ckpt /tmp/galnn_cli_spec/scan/runs/none_d4/best.npz --out /tmp/galnn_cli_spec/lat "
                         "--properties logmstar,logsfr,av", out, sizeof out), 0);
    io_catalog L, M, cat;
    assert_int_equal(io_catalog_read("/tmp/galnn_cli_spec/lat/latents.csv", NULL, &L), 0);
    assert_int_equal(io_catalog_read("/tmp/galnn_cli_spec/lat/mi.csv", NULL, &M), 0);
    assert_int_equal(io_catalog_read("/tmp/galnn_cli_spec/m/catalog.csv", NULL, &cat), 0);
    const double *d1 = io_catalog_values(&L, "D1"), *d4 = io_catalog_values(&L, "dn4000");
    const double *lm = io_catalog_values(&cat, "logmstar"), *ls = io_catalog_values(&cat, "logsfr");
    double *ssfr = malloc(sizeof(double) * L.n_rows);
    for (size_t i = 0; i < L.n_rows; i++) {
        ssfr[i] = NAN;
        for (size_t j = 0; j < cat.n_rows; j++)
            if (!strcmp(io_catalog_id(&cat, j), io_catalog_id(&L, i))) ssfr[i] = ls[j] - lm[j];
    }
    double r4 = pearson(d1, d4, L.n_rows), rs = pearson(d1, ssfr, L.n_rows);
    const double *mi1 = io_catalog_values(&M, "D1");
    double mi_d4 = NAN;
    for (size_t j = 0; j < M.n_rows; j++)
        if (!strcmp(M.cols[0].s[j], "dn4000")) mi_d4 = mi1[j];
    printf("    D1: r(Dn4000) = %.3f, r(log sSFR) = %.3f, MI(D1, Dn4000) = %.3f nats\n", r4, rs, mi_d4);
    assert_true(r4 < -0.3 && rs > 0.3 && mi_d4 > 0.4);
    free(ssfr);
    io_catalog_free(&L), io_catalog_free(&M), io_catalog_free(&cat);
    // attributions: spectral and image
    assert_int_equal(run("explain --ckpt /tmp/galnn_cli_spec/scan/runs/none_d4/best.npz --out /tmp/galnn_cli_spec/ex --n 5 --samples 400",
                         out, sizeof out), 0);
    double err, spread;
    const char *cp = strstr(out, "completeness: mean |sum(phi) - (f(x) - E f(b))| = ");
    assert_non_null(cp);
    assert_int_equal(sscanf(cp, "completeness: mean |sum(phi) - (f(x) - E f(b))| = %lf (the background spread of f is %lf", &err, &spread), 2);
    printf("    spectral completeness error %.4f vs spread %.4f\n", err, spread);
    assert_true(err < 0.25 * spread);
    io_array a;
    assert_int_equal(io_npy_read("/tmp/galnn_cli_spec/ex/attr.npy", &a), 0);
    assert_true(a.ndim == 3 && a.shape[0] == 5 && a.shape[1] == 4 && a.shape[2] == 128);
    io_array_free(&a);
    snprintf(p, sizeof p, "%s/c.cfg", D);
    f = fopen(p, "w");
    assert_non_null(f);
    fprintf(f, "[data]\ncatalog = %s/m/catalog.csv\nimages = %s/m/cutouts/{id}.fits\nbands = u,g,r,i,z\n[target]\nnames = logmstar\n"
               "[branch.img]\nbackbone = smallcnn\nwidth = 8\n[train]\nepochs = 2\nbatch = 32\nlr = 1e-3\n", D, D);
    fclose(f);
    assert_int_equal(run("train --config /tmp/galnn_cli_spec/c.cfg --out /tmp/galnn_cli_spec/cnn", out, sizeof out), 0);
    assert_int_equal(run("explain --ckpt /tmp/galnn_cli_spec/cnn/best.npz --out /tmp/galnn_cli_spec/exi --n 2 --samples 400 --background 50",
                         out, sizeof out), 0);
    cp = strstr(out, "completeness: mean |sum(phi) - (f(x) - E f(b))| = ");
    assert_non_null(cp);
    assert_int_equal(sscanf(cp, "completeness: mean |sum(phi) - (f(x) - E f(b))| = %lf (the background spread of f is %lf", &err, &spread), 2);
    printf("    image completeness error %.4f vs spread %.4f\n", err, spread);
    assert_true(err < 0.25 * spread);
    assert_non_null(strstr(out, "share of the total |phi| per band: u "));
    assert_int_equal(io_npy_read("/tmp/galnn_cli_spec/exi/attr.npy", &a), 0);
    assert_true(a.ndim == 5 && a.shape[0] == 2 && a.shape[1] == 1 && a.shape[2] == 5 && a.shape[3] == 16);
    io_array_free(&a);
    assert_int_equal(stat("/tmp/galnn_cli_spec/exi/mean_abs_attr.png", &sb), 0);
}

// A VAE trained with galnn train: embed writes mu (and with --full sigma) per
// galaxy, positive sigmas, --dump its inputs and mu; eval reports its -ELBO (on the validation split the
// trainer's own figure); predict refuses it with a clear message.
static void test_vae_cli(void **s) {
    (void)s;
    static char out[1 << 14];
    (void)system("rm -rf /tmp/galnn_cli_vae && mkdir -p /tmp/galnn_cli_vae");
    assert_int_equal(run("mock --out /tmp/galnn_cli_vae/m --n 200 --size 16", out, sizeof out), 0);
    FILE *f = fopen("/tmp/galnn_cli_vae/v.cfg", "w");
    assert_non_null(f);
    fprintf(f, "[data]\nbands = u, g, r, i, z\n[branch.img]\ninput = image\n[model]\nkind = vae\nlatent = 3\nwidths = 4, 8\n"
               "[train]\nepochs = 2\nbatch = 16\n");
    fclose(f);
    assert_int_equal(run("train --config /tmp/galnn_cli_vae/v.cfg --catalog /tmp/galnn_cli_vae/m/catalog.csv --images "
                         "/tmp/galnn_cli_vae/m/cutouts/{id}.fits --out /tmp/galnn_cli_vae/r", out, sizeof out), 0);
    assert_int_equal(run("embed --ckpt /tmp/galnn_cli_vae/r/last.npz --full --out /tmp/galnn_cli_vae/mu.csv", out, sizeof out), 0);
    assert_non_null(strstr(out, "200 galaxies x 6 latent dimensions"));
    io_catalog c;
    assert_int_equal(io_catalog_read("/tmp/galnn_cli_vae/mu.csv", NULL, &c), 0);
    assert_int_equal(c.n_rows, 200);
    const double *mu2 = io_catalog_values(&c, "mu2"), *sg = io_catalog_values(&c, "sigma1");
    assert_non_null(mu2), assert_non_null(sg);
    for (size_t i = 0; i < c.n_rows; i++) assert_true(isfinite(mu2[i]) && sg[i] > 0);
    io_catalog_free(&c);
    // eval reports the objective: on the validation split, the last epoch's validation loss (the same ε)
    assert_int_equal(run("eval --ckpt /tmp/galnn_cli_vae/r/last.npz --split val", out, sizeof out), 0);
    assert_non_null(strstr(out, "is a VAE"));
    double loss = jnum("/tmp/galnn_cli_vae/r/metrics.json", "loss", NULL, NULL, NULL, -1), last = NAN;
    assert_int_equal(io_catalog_read("/tmp/galnn_cli_vae/r/log.csv", NULL, &c), 0);
    last = io_catalog_values(&c, "val_loss")[c.n_rows - 1];
    io_catalog_free(&c);
    assert_true(isfinite(loss) && fabs(loss - last) <= 1e-5 * fabs(last));
    // embed --dump: the network's inputs and its latent means, the ones the CSV holds
    assert_int_equal(run("embed --ckpt /tmp/galnn_cli_vae/r/last.npz --out /tmp/galnn_cli_vae/mu1.csv --dump 7 "
                         "/tmp/galnn_cli_vae/d.npz", out, sizeof out), 0);
    io_npz z;
    assert_int_equal(io_npz_read("/tmp/galnn_cli_vae/d.npz", &z), 0);
    const io_array *in = tu_npz_get(&z, "input.img"), *o = tu_npz_get(&z, "output");
    assert_int_equal(in->ndim, 4), assert_int_equal(in->shape[0], 7), assert_int_equal(in->shape[1], 5);
    assert_int_equal(o->shape[0], 7), assert_int_equal(o->shape[1], 3);
    assert_int_equal(io_catalog_read("/tmp/galnn_cli_vae/mu1.csv", NULL, &c), 0);
    const double *mu = io_catalog_values(&c, "mu2");
    for (int i = 0; i < 7; i++) assert_float_equal(((const float *)o->data)[i * 3 + 2], mu[i], 1e-5);
    io_catalog_free(&c);
    io_npz_free(&z);
    assert_int_equal(run("embed --ckpt /tmp/galnn_cli_vae/r/last.npz --out /tmp/galnn_cli_vae/mu1.csv --dump 7", out, sizeof out), 1);
    assert_non_null(strstr(out, "--dump needs two values"));
    assert_int_equal(run("predict --ckpt /tmp/galnn_cli_vae/r/last.npz --out /tmp/galnn_cli_vae/p.csv", out, sizeof out), 1);
    assert_non_null(strstr(out, "is a VAE"));
}

// The posterior pipeline on a 10,000-galaxy mock: the flow's central 68 %
// intervals for log M* cover 68 +- 3 % of the test galaxies (95 % ones 95 +-
// 3 %), its PIT is close to uniform; galnn posterior's summaries are ordered
// and its NPY dump has the right shape; the VAE -> embed -> join -> flow chain
// runs end to end.
static void test_posterior_cli(void **s) {
    (void)s;
    static char out[1 << 14];
    if (tu_sanitized()) {
        printf("    (skipped in the sanitizer pass)\n");
        return;
    }
    (void)system("rm -rf /tmp/galnn_cli_post && mkdir -p /tmp/galnn_cli_post");
    assert_int_equal(run("mock --out /tmp/galnn_cli_post/m --n 10000 --size 16", out, sizeof out), 0);
    const char *small = "model.context=64 model.layers=6 model.flow_hidden=64 train.epochs=30 train.lr=1e-3";
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "train --config models/flow_phot.cfg --catalog /tmp/galnn_cli_post/m/catalog.csv --out /tmp/galnn_cli_post/f %s",
             small);
    assert_int_equal(run(cmd, out, sizeof out), 0);
    assert_int_equal(run("eval --ckpt /tmp/galnn_cli_post/f/best.npz --samples 300", out, sizeof out), 0);
    const char *mj = "/tmp/galnn_cli_post/f/metrics.json";
    double c68 = jnum(mj, "targets", "logmstar", "coverage68", NULL, -1), c95 = jnum(mj, "targets", "logmstar", "coverage95", NULL, -1);
    double ks = jnum(mj, "targets", "logmstar", "pit_ks", NULL, -1), r2 = jnum(mj, "targets", "logmstar", "r2", NULL, -1);
    printf("    log M*: 68 %% interval coverage %.3f, 95 %% %.3f, PIT KS %.3f, R2 of the posterior mean %.3f\n", c68, c95, ks, r2);
    assert_true(fabs(c68 - 0.68) <= 0.03);
    assert_true(fabs(c95 - 0.95) <= 0.03);
    assert_true(ks < 0.08 && r2 > 0.7);
    struct stat sb;
    assert_int_equal(stat("/tmp/galnn_cli_post/f/pit_logmstar.png", &sb), 0);
    // the recalibration fitted on the validation split when training ended (best.npz, calib.pit): eval
    // reports the flow's own intervals under "uncalibrated", and on the validation split itself the
    // calibrated ones cover their nominal shares for every target
    assert_true(jnum(mj, "uncalibrated", "targets", "logmstar", "coverage68", -1) > 0);
    assert_int_equal(run("eval --ckpt /tmp/galnn_cli_post/f/best.npz --split val --samples 1000 "
                         "--out /tmp/galnn_cli_post/fval", out, sizeof out), 0);
    const char *tn[4] = {"logmstar", "logsfr", "z", "logml_r"}, *vj = "/tmp/galnn_cli_post/fval/metrics.json";
    for (int t = 0; t < 4; t++) {
        double v68 = jnum(vj, "targets", tn[t], "coverage68", NULL, -1);
        double v95 = jnum(vj, "targets", tn[t], "coverage95", NULL, -1);
        printf("    %s on the validation split, calibrated: 68 %% interval coverage %.3f, 95 %% %.3f\n", tn[t], v68, v95);
        assert_true(fabs(v68 - 0.68) <= 0.02 && fabs(v95 - 0.95) <= 0.015);
    }
    assert_int_equal(run("posterior --ckpt /tmp/galnn_cli_post/f/best.npz --split test --samples 300 --out /tmp/galnn_cli_post/p.csv "
                         "--dump /tmp/galnn_cli_post/s.npy", out, sizeof out), 0);
    io_catalog c;
    assert_int_equal(io_catalog_read("/tmp/galnn_cli_post/p.csv", NULL, &c), 0);
    const double *lo = io_catalog_values(&c, "logmstar_p16"), *md = io_catalog_values(&c, "logmstar_median"),
                 *hi = io_catalog_values(&c, "logmstar_p84"), *l2 = io_catalog_values(&c, "z_p2.5"), *h2 = io_catalog_values(&c, "z_p97.5");
    assert_non_null(lo), assert_non_null(hi), assert_non_null(l2), assert_non_null(h2);
    for (size_t i = 0; i < c.n_rows; i++) assert_true(lo[i] <= md[i] && md[i] <= hi[i] && l2[i] < h2[i]);
    size_t nrows = c.n_rows;
    io_catalog_free(&c);
    io_array a;
    assert_int_equal(io_npy_read("/tmp/galnn_cli_post/s.npy", &a), 0);
    assert_int_equal(a.ndim, 3);
    assert_int_equal(a.shape[0], (int64_t)nrows), assert_int_equal(a.shape[1], 300), assert_int_equal(a.shape[2], 4);
    io_array_free(&a);
    // a deep ensemble of two members (another seed): pooled samples, aleatoric vs epistemic spread
    snprintf(cmd, sizeof cmd, "train --config models/flow_phot.cfg --catalog /tmp/galnn_cli_post/m/catalog.csv --out /tmp/galnn_cli_post/f2 %s "
             "train.seed=2", small);
    assert_int_equal(run(cmd, out, sizeof out), 0);
    assert_int_equal(run("eval --ensemble /tmp/galnn_cli_post/f/best.npz,/tmp/galnn_cli_post/f2/best.npz --samples 300 --out "
                         "/tmp/galnn_cli_post/f2", out, sizeof out), 0);
    const char *ej = "/tmp/galnn_cli_post/f2/metrics.json";
    double ale = jnum(ej, "targets", "logmstar", "sigma_aleatoric", NULL, -1), epi = jnum(ej, "targets", "logmstar", "sigma_epistemic", NULL, -1);
    double e68 = jnum(ej, "targets", "logmstar", "coverage68", NULL, -1);
    printf("    ensemble of 2: log M* sigma_ale %.4f, sigma_epi %.4f, 68 %% coverage %.3f\n", ale, epi, e68);
    assert_true(epi > 0 && epi < 0.5 * ale && fabs(e68 - 0.68) <= 0.03);
    assert_int_equal(jnum(ej, "members", NULL, NULL, NULL, -1), 2);
    // the chain-rule branch: 12 + log O/H, measured for about half the mock's galaxies, given the core
    // targets; the detectability head beats always guessing "measured"
    snprintf(cmd, sizeof cmd, "train --config models/flow_phot.cfg --catalog /tmp/galnn_cli_post/m/catalog.csv --out /tmp/galnn_cli_post/fc %s "
             "target.names=logmstar,logsfr,z,logml_r,oh12 model.chain=oh12", small);
    assert_int_equal(run(cmd, out, sizeof out), 0);
    assert_int_equal(run("eval --ckpt /tmp/galnn_cli_post/fc/best.npz --samples 300", out, sizeof out), 0);
    const char *cj = "/tmp/galnn_cli_post/fc/metrics.json";
    double oc = jnum(cj, "targets", "oh12", "coverage68", NULL, -1), or2 = jnum(cj, "targets", "oh12", "r2", NULL, -1);
    double acc = jnum(cj, "detect", "accuracy", NULL, NULL, -1), meas = jnum(cj, "detect", "measured", NULL, NULL, -1);
    printf("    chain target oh12: 68 %% coverage %.3f, R2 %.3f; measured for %.3f, detectability accuracy %.3f\n", oc, or2, meas, acc);
    assert_true(fabs(oc - 0.68) <= 0.05 && or2 > 0.4);
    assert_true(meas > 0.3 && meas < 0.8 && acc > fmax(meas, 1 - meas) + 0.1);
    assert_int_equal(run("posterior --ckpt /tmp/galnn_cli_post/fc/best.npz --split test --samples 100 --out /tmp/galnn_cli_post/pc.csv",
                         out, sizeof out), 0);
    assert_int_equal(io_catalog_read("/tmp/galnn_cli_post/pc.csv", NULL, &c), 0);
    const double *pdet = io_catalog_values(&c, "oh12_pdetect"), *om = io_catalog_values(&c, "oh12_median");
    assert_non_null(pdet), assert_non_null(om);
    for (size_t i = 0; i < c.n_rows; i++) assert_true(pdet[i] >= 0 && pdet[i] <= 1 && om[i] > 7 && om[i] < 10);
    io_catalog_free(&c);
    // stage 1 -> stage 2: a VAE's mu/sigma joined by id into the flow's features
    FILE *f = fopen("/tmp/galnn_cli_post/v.cfg", "w");
    fprintf(f, "[data]\nbands = u, g, r, i, z\n[branch.img]\ninput = image\n[model]\nkind = vae\nlatent = 32\nwidths = 4, 8\n"
               "[train]\nepochs = 1\nbatch = 64\n");
    fclose(f);
    assert_int_equal(run("train --config /tmp/galnn_cli_post/v.cfg --catalog /tmp/galnn_cli_post/m/catalog.csv --images "
                         "/tmp/galnn_cli_post/m/cutouts/{id}.fits --out /tmp/galnn_cli_post/v", out, sizeof out), 0);
    assert_int_equal(run("embed --ckpt /tmp/galnn_cli_post/v/last.npz --full --out /tmp/galnn_cli_post/mu.csv", out, sizeof out), 0);
    assert_int_equal(run("train --config models/flow_vae_phot.cfg --catalog /tmp/galnn_cli_post/m/catalog.csv --out "
                         "/tmp/galnn_cli_post/fv data.join=/tmp/galnn_cli_post/mu.csv model.context=32 model.layers=2 "
                         "model.flow_hidden=16 train.epochs=2", out, sizeof out), 0);
    assert_non_null(strstr(out, "joined /tmp/galnn_cli_post/mu.csv: 10000 of 10000 galaxies"));
    assert_int_equal(run("eval --ckpt /tmp/galnn_cli_post/fv/best.npz --samples 50", out, sizeof out), 0);
    assert_non_null(strstr(out, "cov68"));
}

// A tiny study end to end (galnn analyze on a 900-galaxy mock): the S space
// of the magnitudes and spec-z leaves Sersic n external, an S space that was
// also given the morphology much less so; morphology carries unique information about
// log M* (PID). A tiny Inception model goes through every step too (too short
// a run to assert its effect: the demo shows that on 4000 galaxies). A second
// run reuses every step; a different configuration for the
// same directory is refused; a removed step marker is redone (training
// resumes from its checkpoint); embed is deterministic.
static void test_analyze(void **s) {
    (void)s;
    static char out[1 << 16];
    if (tu_sanitized()) { // the program under test is the same unsanitized bin/galnn: once is enough
        printf("    (skipped in the sanitizer pass)\n");
        return;
    }
    (void)system("rm -rf /tmp/galnn_cli_az && mkdir -p /tmp/galnn_cli_az");
    assert_int_equal(run("mock --out /tmp/galnn_cli_az/m --n 900 --size 32", out, sizeof out), 0);
    FILE *f = fopen("/tmp/galnn_cli_az/a.cfg", "w");
    assert_non_null(f);
    fprintf(f, "[analysis]\ntarget = logmstar\nby = type\n"
               "[model.mags]\nconfig = models/scl_mopt.cfg\n"
               "set = branch.x.columns=mag_u,mag_g,mag_r,mag_i,mag_z,zspec; model.depth=4; model.hidden=64; train.iterations=600; train.drops=450; train.lr=1e-3\n"
               "[model.morph]\nconfig = models/scl_mopt.cfg\nlabel = magnitudes + morphology\n"
               "set = branch.x.columns=mag_u,mag_g,mag_r,mag_i,mag_z,zspec,sersic_n,ba,r50; model.depth=4; model.hidden=64; "
               "train.iterations=600; train.drops=450; train.lr=1e-3\n"
               "[model.img]\nconfig = models/scl_iopt.cfg\nlabel = cutouts + magnitudes\n"
               "set = data.bin=2; branch.a.columns=ebv,mag_u,mag_g,mag_r,mag_i,mag_z; model.conv_width=4; model.inception_width=4; "
               "model.fc_width=32; model.est_hidden=32; model.dim_ext=4; model.decoder_channels=2; model.decoder_width=4; "
               "model.lambda_rec=1; train.iterations=40; train.lr=1e-3; train.clip=0; train.amsgrad=0; train.crop=0\n"
               "[causal]\nmodels = mags, morph, img\nvars = sersic_n\nk = 50\ngiven = zspec\n"
               "[pid.mm]\nlabel1 = magnitudes\nlabel2 = morphology\nx1 = models/mi_mopt.cfg\nx2 = models/mi_morph.cfg\n"
               "x12 = models/mi_mopt_morph.cfg\nset = model.depth=4; model.hidden=64; train.iterations=600; train.lr=1e-3\n");
    fclose(f);
    const char *cmd = "analyze --config /tmp/galnn_cli_az/a.cfg --out /tmp/galnn_cli_az/A --catalog /tmp/galnn_cli_az/m/catalog.csv "
                      "--images /tmp/galnn_cli_az/m/cutouts/{id}.fits";
    int rc = run(cmd, out, sizeof out);
    if (rc) printf("%s\n", out);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "report: /tmp/galnn_cli_az/A/report.md"));
    const char *sm = "/tmp/galnn_cli_az/A/causal/mags/summary.json", *si = "/tmp/galnn_cli_az/A/causal/morph/summary.json";
    double pm = jnum(sm, "variables", "sersic_n", "all", "p_ks_pe", -1), pi = jnum(si, "variables", "sersic_n", "all", "p_ks_pe", -1);
    double em = jnum(sm, "variables", "sersic_n", "all", "pe_p16_p50_p84", 1), ei = jnum(si, "variables", "sersic_n", "all", "pe_p16_p50_p84", 1);
    double ext = jnum(sm, "variables", "sersic_n", "all", "external", -1);
    double u2 = jnum("/tmp/galnn_cli_az/A/pid/mm/pid.json", "populations", "all", "unq2", NULL, 0);
    printf("    Sersic n: magnitudes + spec-z S space KS p %.3g (median PE %.3f), magnitudes + morphology p %.3g (median PE %.3f); "
           "PID unique morphology %.3f nats\n", pm, em, pi, ei, u2);
    assert_true(ext == 1 && pm < 0.01);
    assert_true(ei < 0.5 * em && pi > 1e3 * pm);
    assert_true(jnum("/tmp/galnn_cli_az/A/causal/img/summary.json", "variables", "sersic_n", "all", "n", -1) > 100);
    assert_true(u2 > 0);
    // the report has the three parts and the figures
    f = fopen("/tmp/galnn_cli_az/A/report.html", "r");
    assert_non_null(f);
    size_t n = fread(out, 1, sizeof out - 1, f);
    out[n] = 0;
    fclose(f);
    assert_non_null(strstr(out, "Accuracy of the models"));
    assert_non_null(strstr(out, "Local tests in S space"));
    assert_non_null(strstr(out, "Partial information decomposition"));
    assert_non_null(strstr(out, "pid/mm/pid.png"));
    assert_non_null(strstr(out, "causal/mags/pe.png"));
    assert_non_null(strstr(out, "magnitudes + morphology, given zspec")); // the conditional variant
    assert_true(jnum("/tmp/galnn_cli_az/A/causal/morph.given_zspec/summary.json", "variables", "sersic_n", "all", "n", -1) > 100);
    // rerun: everything reused, the same report
    (void)system("cp /tmp/galnn_cli_az/A/report.md /tmp/galnn_cli_az/report1.md");
    assert_int_equal(run(cmd, out, sizeof out), 0);
    assert_non_null(strstr(out, "mags: trained (reusing"));
    assert_null(strstr(out, "galnn train:"));
    assert_true(same_file("/tmp/galnn_cli_az/A/report.md", "/tmp/galnn_cli_az/report1.md"));
    // a lost step is redone: training resumes from the run's checkpoint
    (void)system("rm /tmp/galnn_cli_az/A/state/train.mm.x2.done /tmp/galnn_cli_az/A/state/pid.mm.done");
    assert_int_equal(run(cmd, out, sizeof out), 0);
    assert_non_null(strstr(out, "mm.x2: resuming"));
    assert_non_null(strstr(out, "pointwise PID of mm"));
    assert_true(same_file("/tmp/galnn_cli_az/A/report.md", "/tmp/galnn_cli_az/report1.md"));
    // another study in the same directory is refused
    char other[700];
    snprintf(other, sizeof other, "%s causal.k=30", cmd);
    assert_int_equal(run(other, out, sizeof out), 1);
    assert_non_null(strstr(out, "holds a different analysis"));
    // --replace starts over: the old study's directories go (here the new one then fails: a missing model config)
    f = fopen("/tmp/galnn_cli_az/b.cfg", "w");
    fprintf(f, "[model.x]\nconfig = /tmp/galnn_cli_az/nosuch.cfg\n");
    fclose(f);
    (void)system("mkdir -p /tmp/galnn_cli_az/B/runs/old /tmp/galnn_cli_az/B/state && echo x > /tmp/galnn_cli_az/B/analysis.cfg"
                 " && touch /tmp/galnn_cli_az/B/state/train.old.done /tmp/galnn_cli_az/B/keep.txt");
    assert_int_equal(run("analyze --config /tmp/galnn_cli_az/b.cfg --out /tmp/galnn_cli_az/B --catalog /tmp/galnn_cli_az/m/catalog.csv",
                         out, sizeof out), 1);
    assert_non_null(strstr(out, "holds a different analysis"));
    assert_int_equal(run("analyze --config /tmp/galnn_cli_az/b.cfg --out /tmp/galnn_cli_az/B --replace --catalog "
                         "/tmp/galnn_cli_az/m/catalog.csv", out, sizeof out), 1);
    assert_non_null(strstr(out, "nosuch.cfg"));
    struct stat sb;
    assert_int_not_equal(stat("/tmp/galnn_cli_az/B/runs/old", &sb), 0);
    assert_int_not_equal(stat("/tmp/galnn_cli_az/B/state/train.old.done", &sb), 0);
    assert_int_equal(stat("/tmp/galnn_cli_az/B/keep.txt", &sb), 0); // not the study's: left alone
    // embed twice: identical files
    assert_int_equal(run("embed --ckpt /tmp/galnn_cli_az/A/runs/img/last.npz --out /tmp/galnn_cli_az/S2.csv", out, sizeof out), 0);
    assert_true(same_file("/tmp/galnn_cli_az/S2.csv", "/tmp/galnn_cli_az/A/runs/img/S.csv"));
}


// kind = gbdt end to end: galaxies with null magnitudes stay usable (missing values are inputs); a run
// stopped after 25 rounds and resumed to 60 holds the trees of the unbroken 60-round run byte for byte;
// eval reports the conformal 16-84 % interval's coverage; predict writes the quantiles; explain's TreeSHAP
// adds up to the predictions; a damaged checkpoint is refused with its name.
static void test_gbdt_cli(void **s) {
    (void)s;
    static char out[1 << 15];
    (void)system("rm -rf /tmp/galnn_cli_gbdt && mkdir -p /tmp/galnn_cli_gbdt");
    assert_int_equal(run("mock --out /tmp/galnn_cli_gbdt/m --n 2000 --size 16", out, sizeof out), 0);
    const char *base =
        "train --config models/gbdt_mass.cfg --catalog /tmp/galnn_cli_gbdt/m/catalog.csv model.patience=0";
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s --out /tmp/galnn_cli_gbdt/a --epochs 60", base);
    assert_int_equal(run(cmd, out, sizeof out), 0);
    assert_non_null(strstr(out, "(0 catalog rows lack"));
    snprintf(cmd, sizeof cmd, "%s --out /tmp/galnn_cli_gbdt/b --epochs 25", base);
    assert_int_equal(run(cmd, out, sizeof out), 0);
    assert_int_equal(run("train --resume /tmp/galnn_cli_gbdt/b/last.npz --epochs 60", out, sizeof out), 0);
    io_npz za, zb;
    assert_int_equal(io_npz_read("/tmp/galnn_cli_gbdt/a/last.npz", &za), 0);
    assert_int_equal(io_npz_read("/tmp/galnn_cli_gbdt/b/last.npz", &zb), 0);
    const char *arr[4] = {"gbdt.nodes_i", "gbdt.nodes_f", "gbdt.ens_f", "gbdt.edges"};
    for (int k = 0; k < 4; k++) {
        const io_array *x = io_npz_get(&za, arr[k]), *y = io_npz_get(&zb, arr[k]);
        assert_non_null(x), assert_non_null(y);
        assert_int_equal(x->n, y->n);
        assert_memory_equal(x->data, y->data, x->n * io_dtype_size(x->dtype));
    }
    io_npz_free(&za), io_npz_free(&zb);
    assert_int_equal(run("eval --ckpt /tmp/galnn_cli_gbdt/a/best.npz", out, sizeof out), 0);
    const char *mj = "/tmp/galnn_cli_gbdt/a/metrics.json";
    double cov = jnum(mj, "targets", "logmstar", "all", "coverage68", -1);
    double sm = jnum(mj, "targets", "logmstar", "all", "sigma_mad", -1);
    printf("    gbdt: test sigma_MAD %.4f, 16-84 %% interval coverage %.3f\n", sm, cov);
    assert_true(sm > 0 && sm < 0.12 && cov > 0.55 && cov < 0.8);
    assert_int_equal(
        run("predict --ckpt /tmp/galnn_cli_gbdt/a/best.npz --out /tmp/galnn_cli_gbdt/p.csv", out, sizeof out), 0);
    io_catalog c;
    assert_int_equal(io_catalog_read("/tmp/galnn_cli_gbdt/p.csv", NULL, &c), 0);
    const double *lo = io_catalog_values(&c, "logmstar_p16"), *hi = io_catalog_values(&c, "logmstar_p84");
    assert_non_null(lo), assert_non_null(hi);
    assert_int_equal(c.n_rows, 2000);
    for (size_t i = 0; i < c.n_rows; i++) assert_true(lo[i] < hi[i]);
    io_catalog_free(&c);
    assert_int_equal(
        run("explain --ckpt /tmp/galnn_cli_gbdt/a/best.npz --out /tmp/galnn_cli_gbdt/x", out, sizeof out), 0);
    const char *w = strstr(out, "prediction| = ");
    assert_non_null(w);
    assert_true(atof(w + 14) < 1e-6);
    struct stat sb;
    assert_int_equal(stat("/tmp/galnn_cli_gbdt/x/shap_summary.png", &sb), 0);
    assert_int_equal(stat("/tmp/galnn_cli_gbdt/x/importance.csv", &sb), 0);
    // a flipped byte in the middle of the archive
    (void)system("cp /tmp/galnn_cli_gbdt/a/best.npz /tmp/galnn_cli_gbdt/bad.npz && printf 'X' | "
                 "dd of=/tmp/galnn_cli_gbdt/bad.npz bs=1 seek=20000 conv=notrunc 2>/dev/null");
    assert_int_not_equal(run("eval --ckpt /tmp/galnn_cli_gbdt/bad.npz", out, sizeof out), 0);
    assert_non_null(strstr(out, "bad.npz"));
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_help_version), cmocka_unit_test(test_errors), cmocka_unit_test(test_man_preset), cmocka_unit_test(test_moved_data), cmocka_unit_test(test_config_ranges),
                                       cmocka_unit_test(test_mi_knn), cmocka_unit_test(test_causal_pid), cmocka_unit_test(test_latent_cli),
                                       cmocka_unit_test(test_vae_cli), cmocka_unit_test(test_posterior_cli), cmocka_unit_test(test_spectra_cli), cmocka_unit_test(test_gbdt_cli),
                                       cmocka_unit_test(test_analyze)};
    if (getenv("GALNN_TEST")) cmocka_set_test_filter(getenv("GALNN_TEST")); // e.g. GALNN_TEST=test_vae_cli
    return cmocka_run_group_tests(tests, NULL, NULL);
}
