// The train/eval/predict/inspect programs end to end on a small mock survey:
// every head trains (loss falls), eval's metrics agree with metrics computed
// from predict's output, binned-head quantiles are ordered, and bad input
// (unknown setting, missing column, corrupt checkpoint) is a clear error.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "../io/catalog.h"
#include "../io/image.h"
#include "../io/mock.h"
#include "../stats/metrics.h"
#include "testutil.h"

static char cat[600];

static int setup(void **st) {
    if (tu_tmpdir_setup(st)) return -1;
    io_mock_opts o = {.out = tu_tmp("s"), .n = 600, .seed = 3, .size = 16, .kinematics = 1, .kin_size = 16};
    if (io_mock_write(&o)) return -1;
    snprintf(cat, sizeof cat, "%s/s/catalog.csv", tu_tmpdir());
    return 0;
}

static int sh(const char *fmt, ...) {
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void write_cfg(const char *path, const char *head) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "[target]\nnames = logmstar\nhead = %s\nbins = 130\nlo = 8\nhi = 12.5\n"
               "[branch.phot]\ninput = columns\ncolumns = mag_g, mag_r, mag_i, zspec\nhidden = 32, 32\n"
               "[train]\nlr = 3e-3\nepochs = 12\nbatch = 32\nseed = 2\n",
            head);
    fclose(f);
}

// first and last train_loss of log.csv
static void losses(const char *dir, double *first, double *last) {
    char p[800], line[512];
    snprintf(p, sizeof p, "%s/log.csv", dir);
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    int k = 0;
    while (fgets(line, sizeof line, f)) {
        if (k++ == 0) continue;
        double v;
        if (sscanf(line, "%*d,%*d,%*g,%lf", &v) == 1) {
            if (k == 2) *first = v;
            *last = v;
        }
    }
    fclose(f);
}

static void test_heads(void **st) {
    (void)st;
    const char *heads[] = {"regression", "gaussian", "binned"};
    for (int h = 0; h < 3; h++) {
        char cfg[700], dir[700];
        snprintf(cfg, sizeof cfg, "%s/%s.cfg", tu_tmpdir(), heads[h]);
        snprintf(dir, sizeof dir, "%s/run_%s", tu_tmpdir(), heads[h]);
        write_cfg(cfg, heads[h]);
        assert_int_equal(sh("./bin/galnn train --config %s --catalog %s --out %s --threads 2 >/dev/null", cfg, cat, dir), 0);
        double a = 0, b = 0;
        losses(dir, &a, &b);
        printf("    %-10s train loss %.4f -> %.4f\n", heads[h], a, b);
        assert_true(b < a);
        // predict, then recompute the test metrics from its CSV and compare with eval's metrics.json
        assert_int_equal(sh("./bin/galnn predict --ckpt %s/best.npz --out %s/p.csv --split test >/dev/null", dir, dir), 0);
        assert_int_equal(sh("./bin/galnn eval --ckpt %s/best.npz --split test >/dev/null", dir), 0);
        char pp[800];
        snprintf(pp, sizeof pp, "%s/p.csv", dir);
        io_catalog pred, truth;
        assert_int_equal(io_catalog_read(pp, NULL, &pred), 0);
        assert_int_equal(io_catalog_read(cat, NULL, &truth), 0);
        const double *pv = io_catalog_values(&pred, "logmstar_pred"), *tv = io_catalog_values(&truth, "logmstar");
        double *x = malloc(sizeof(double) * pred.n_rows), *y = malloc(sizeof(double) * pred.n_rows);
        for (size_t i = 0; i < pred.n_rows; i++) {
            x[i] = pv[i];
            y[i] = tv[atoi(io_catalog_id(&pred, i) + 1) - 1]; // ids G000001... are catalog rows + 1
        }
        st_metrics m;
        assert_int_equal(st_point_metrics(x, y, pred.n_rows, &m), 0);
        char jp[800], json[8192];
        snprintf(jp, sizeof jp, "%s/metrics.json", dir);
        FILE *f = fopen(jp, "r");
        assert_non_null(f);
        size_t L = fread(json, 1, sizeof json - 1, f);
        json[L] = 0;
        fclose(f);
        double smad = -1, r2 = -1;
        char *q = strstr(json, "\"sigma_mad\": ");
        assert_non_null(q);
        smad = atof(q + 13);
        q = strstr(json, "\"r2\": ");
        r2 = atof(q + 6);
        assert_float_equal(smad, m.sigma_mad, 1e-4);
        assert_float_equal(r2, m.r2, 1e-4);
        assert_true(m.r2 > 0.5);
        if (h == 2) { // binned: p16 <= median <= p84, inside [lo, hi]
            const double *md = io_catalog_values(&pred, "logmstar_median"), *lo = io_catalog_values(&pred, "logmstar_p16"),
                         *hi = io_catalog_values(&pred, "logmstar_p84");
            for (size_t i = 0; i < pred.n_rows; i++) assert_true(lo[i] <= md[i] && md[i] <= hi[i] && lo[i] >= 8 && hi[i] <= 12.5);
        }
        if (h == 1) assert_non_null(strstr(json, "\"crps\""));
        const char *plots[2] = {"loss.png", "pred_vs_true_logmstar.png"}; // both written, both real PNGs
        for (int k = 0; k < 2; k++) {
            char pl[900];
            snprintf(pl, sizeof pl, "%s/%s", dir, plots[k]);
            io_image im;
            if (io_image_read(pl, &im)) fail_msg("%s", gn_errmsg());
            assert_true(im.c == 3 && im.w == 820 && im.h == 560);
            io_image_free(&im);
        }
        free(x), free(y);
        io_catalog_free(&pred), io_catalog_free(&truth);
    }
}

static void test_errors(void **st) {
    (void)st;
    char cfg[700], out[700];
    snprintf(cfg, sizeof cfg, "%s/bad.cfg", tu_tmpdir());
    snprintf(out, sizeof out, "%s/err.txt", tu_tmpdir());
    FILE *f = fopen(cfg, "w");
    fprintf(f, "[target]\nnames = logmstar\n[branch.p]\ninput = columns\ncolumns = mag_g\n[train]\nepochz = 3\n");
    fclose(f);
    assert_int_equal(sh("./bin/galnn train --config %s --catalog %s --out %s/x 2>%s >/dev/null", cfg, cat, tu_tmpdir(), out), 1);
    assert_int_equal(sh("grep -q 'unknown setting \\[train\\] epochz' %s", out), 0);
    f = fopen(cfg, "w");
    fprintf(f, "[target]\nnames = logmstar\n[branch.p]\ninput = columns\ncolumns = mag_gg\n");
    fclose(f);
    assert_int_equal(sh("./bin/galnn train --config %s --catalog %s --out %s/x 2>%s >/dev/null", cfg, cat, tu_tmpdir(), out), 1);
    assert_int_equal(sh("grep -q \"did you mean 'mag_g'\" %s", out), 0);
    f = fopen(cfg, "w");
    fprintf(f, "[target]\nnames = logmstar\n[branch.p]\ninput = columns\ncolumns = mag_g\n"
               "[train]\nwinograd = 5\n");
    fclose(f);
    assert_int_equal(sh("./bin/galnn train --config %s --catalog %s --out %s/x 2>%s >/dev/null", cfg, cat, tu_tmpdir(), out), 1);
    assert_int_equal(sh("grep -q 'winograd = 5 is not 0' %s", out), 0);
    // a corrupt checkpoint: one flipped byte in the middle
    char ck[700];
    snprintf(ck, sizeof ck, "%s/run_regression/best.npz", tu_tmpdir());
    assert_int_equal(sh("cp %s %s/bad.npz && printf '\\x55' | dd of=%s/bad.npz bs=1 seek=3000 conv=notrunc 2>/dev/null", ck,
                        tu_tmpdir(), tu_tmpdir()),
                     0);
    assert_int_equal(sh("./bin/galnn eval --ckpt %s/bad.npz 2>%s >/dev/null", tu_tmpdir(), out), 1);
    assert_int_equal(sh("grep -q 'bad.npz' %s && grep -qE 'CRC|corrupt' %s", out, out), 0);
    assert_int_equal(sh("./bin/galnn inspect %s > %s", ck, out), 0);
    assert_int_equal(sh("grep -q 'param.phot.fc1.weight' %s && grep -q 'optimizer step' %s", out, out), 0);
}

// The logmstar_pred column of a predict CSV, in row order (n rows).
static double *pred_column(const char *path, size_t *n) {
    io_catalog c;
    if (io_catalog_read(path, NULL, &c)) fail_msg("%s", gn_errmsg());
    const double *v = io_catalog_values(&c, "logmstar_pred");
    assert_non_null(v);
    double *out = malloc(sizeof(double) * c.n_rows);
    memcpy(out, v, sizeof(double) * c.n_rows);
    *n = c.n_rows;
    io_catalog_free(&c);
    return out;
}

// --tta averages the 8 dihedral views: its predictions do not change when every cutout is rotated by
// 90 degrees, while the plain predictions do; a model without images refuses --tta.
static void test_tta(void **st) {
    (void)st;
    char cfg[700], dir[700];
    snprintf(dir, sizeof dir, "%s/tta", tu_tmpdir());
    snprintf(cfg, sizeof cfg, "%s/tta.cfg", tu_tmpdir());
    FILE *f = fopen(cfg, "w");
    fprintf(f, "[data]\nbands = u,g,r,i,z\ntransform = asinh\nasinh_scale = 0.1\n[target]\nnames = logmstar\n"
               "[branch.img]\ninput = image\nbackbone = smallcnn\nwidth = 4\n[train]\nepochs = 2\nbatch = 32\n");
    fclose(f);
    assert_int_equal(sh("./bin/galnn train --config %s --catalog %s --images '%s/s/cutouts/{id}.fits' --out %s >/dev/null",
                        cfg, cat, tu_tmpdir(), dir), 0);
    assert_int_equal(sh("mkdir -p %s/rot", dir), 0);
    io_catalog c;
    assert_int_equal(io_catalog_read(cat, NULL, &c), 0);
    static const io_fits_card cards[] = {{"BANDS", "u,g,r,i,z", NULL}, {NULL, NULL, NULL}};
    for (size_t i = 0; i < c.n_rows; i++) { // every cutout rotated by 90 degrees
        char p[900];
        io_image im, r;
        snprintf(p, sizeof p, "%s/s/cutouts/%s.fits", tu_tmpdir(), io_catalog_id(&c, i));
        assert_int_equal(io_image_read(p, &im), 0);
        r = im, r.data = malloc(sizeof(float) * (size_t)im.c * im.h * im.w);
        for (int b = 0; b < im.c; b++)
            for (int y = 0; y < im.h; y++)
                for (int x = 0; x < im.w; x++)
                    r.data[((size_t)b * im.h + x) * im.w + (im.w - 1 - y)] = im.data[((size_t)b * im.h + y) * im.w + x];
        snprintf(p, sizeof p, "%s/rot/%s.fits", dir, io_catalog_id(&c, i));
        assert_int_equal(io_fits_write(p, &r, cards), 0);
        io_image_free(&im), free(r.data);
    }
    io_catalog_free(&c);
    const char *var[4][2] = {{"", "a"}, {"--tta", "b"}, {"", "c"}, {"--tta", "d"}};
    char rot[800];
    snprintf(rot, sizeof rot, "--images '%s/rot/{id}.fits'", dir);
    for (int k = 0; k < 4; k++)
        assert_int_equal(sh("./bin/galnn predict --ckpt %s/best.npz --out %s/%s.csv %s %s >/dev/null", dir, dir,
                            var[k][1], var[k][0], k < 2 ? "" : rot), 0);
    size_t n[4];
    double *p[4];
    for (int k = 0; k < 4; k++) {
        char path[800];
        snprintf(path, sizeof path, "%s/%s.csv", dir, var[k][1]);
        p[k] = pred_column(path, &n[k]);
        assert_int_equal(n[k], n[0]);
    }
    double dplain = 0, dtta = 0;
    for (size_t i = 0; i < n[0]; i++)
        dplain = fmax(dplain, fabs(p[0][i] - p[2][i])), dtta = fmax(dtta, fabs(p[1][i] - p[3][i]));
    if (!(dplain > 1e-3) || !(dtta < 1e-4)) fail_msg("rotation changes plain by %g, --tta by %g", dplain, dtta);
    for (int k = 0; k < 4; k++) free(p[k]);
    char phot[700];
    snprintf(phot, sizeof phot, "%s/phot.cfg", tu_tmpdir());
    write_cfg(phot, "regression");
    assert_int_equal(sh("./bin/galnn train --config %s --catalog %s --out %s/phot train.epochs=1 >/dev/null", phot, cat, dir), 0);
    assert_int_equal(sh("./bin/galnn predict --ckpt %s/phot/best.npz --out %s/x.csv --tta 2>/dev/null", dir, dir), 1);
}

// Checkpoints load into an equivalent PyTorch module (tools/torch_model.py)
// whose outputs on galnn's own inputs match to 1e-4 — when python3-torch is here.
static void test_torch_equivalence(void **st) {
    (void)st;
    if (sh("/usr/bin/python3 -c 'import torch, numpy' >/dev/null 2>&1")) {
        printf("    python3-torch not present: skipped\n");
        skip();
    }
    char cfg[700];
    snprintf(cfg, sizeof cfg, "%s/three.cfg", tu_tmpdir());
    FILE *f = fopen(cfg, "w");
    fprintf(f, "[data]\nbands = u,g,r,i,z\ntransform = asinh\nasinh_scale = 0.1\n"
               "[target]\nnames = logmstar\nhead = binned\nbins = 40\nlo = 8\nhi = 12\nhidden = 12\nactivation = tanh\n"
               "[branch.res]\ninput = image\nbands = g,r,i\nbackbone = resnet18\nwidth = 4\nstem_kernel = 7\nstem_pool = 1\n"
               "[branch.small]\ninput = image\nbackbone = smallcnn\nwidth = 4\nnorm = group\nfeature_norm = layer\n"
               "[branch.phot]\ninput = columns\ncolumns = mag_r, zspec\nhidden = 8\nactivation = gelu\n"
               "[branch.more]\ninput = columns\ncolumns = mag_g, mag_i\nhidden = 8, 6\nactivation = silu\n"
               "[train]\nepochs = 2\nbatch = 16\nlr = 1e-3\n");
    fclose(f);
    assert_int_equal(sh("./bin/galnn train --config %s --catalog %s --images '%s/s/cutouts/{id}.fits' --out %s/tq >/dev/null",
                        cfg, cat, tu_tmpdir(), tu_tmpdir()),
                     0);
    assert_int_equal(sh("./bin/galnn predict --ckpt %s/tq/last.npz --out %s/tq/p.csv --dump 16 %s/tq/dump.npz >/dev/null",
                        tu_tmpdir(), tu_tmpdir(), tu_tmpdir()),
                     0);
    assert_int_equal(sh("/usr/bin/python3 tools/torch_model.py %s/tq/last.npz %s/tq/dump.npz", tu_tmpdir(), tu_tmpdir()), 0);
}

// The Chu et al. preset: an r-band branch of the cutouts and a branch of the
// kinematic maps (their own dataset, untransformed) -> two targets.
static void test_chu_preset(void **st) {
    (void)st;
    assert_int_equal(sh("./bin/galnn train --config models/chu_rimage_kin.cfg --catalog %s --images '%s/s/cutouts/{id}.fits' "
                        "'branch.kin.images=%s/s/kin/{id}.fits' branch.rimg.width=4 branch.kin.width=4 train.lr=1e-3 "
                        "--epochs 2 --out %s/chu >/dev/null",
                        cat, tu_tmpdir(), tu_tmpdir(), tu_tmpdir()),
                     0);
    assert_int_equal(sh("./bin/galnn eval --ckpt %s/chu/best.npz >/dev/null", tu_tmpdir()), 0);
    assert_int_equal(sh("grep -q '\"logmtot\"' %s/chu/metrics.json && grep -q '\"logmstar\"' %s/chu/metrics.json", tu_tmpdir(),
                        tu_tmpdir()),
                     0);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_heads), cmocka_unit_test(test_errors), cmocka_unit_test(test_chu_preset),
                                       cmocka_unit_test(test_tta), cmocka_unit_test(test_torch_equivalence)};
    return cmocka_run_group_tests(tests, setup, tu_tmpdir_teardown);
}
