// Stop and resume without losing anything (the image model also averages its weights, train.ema, and
// drops out its photometry features): a training run killed with
// SIGKILL at random moments — also in the middle of writing a checkpoint —
// and resumed until done ends with parameters, optimizer state and log
// byte-identical to the run that never stopped; a killed write never
// corrupts the previous checkpoint.
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../io/mock.h"
#include "testutil.h"

static const char *CFG = "[data]\nbands = u,g,r,i,z\ntransform = asinh\nasinh_scale = 0.1\n"
                         "[target]\nnames = logmstar\n"
                         "[branch.img]\ninput = image\nbackbone = smallcnn\nwidth = 8\n"
                         "[branch.phot]\ninput = columns\ncolumns = mag_g, mag_r, zspec\nhidden = 16\ndropout = 0.1\n"
                         "[train]\nlr = 3e-3\nschedule = cosine\nepochs = 3\nbatch = 16\ncrop = 28\nseed = 4\nema = 0.99\n";

// A latent (S-space) model with the SCL objective: its set-2 partners come from
// their own checkpointed stream.
static const char *SCL_CFG = "[target]\nnames = logmstar\nhead = binned\n"
                             "[branch.x]\ninput = columns\ncolumns = mag_u, mag_g, mag_r, mag_i, mag_z\n"
                             "[branch.a]\ninput = columns\ncolumns = ebv, magerr_r\n"
                             "[model]\nkind = latent\nobjective = scl\nmain = x\nextra = a\ndepth = 3\nhidden = 16\n"
                             "[train]\nlr = 1e-3\nschedule = step\ndrops = 20\ndrop_factor = 0.2\nepochs = 3\nbatch = 16\nseed = 5\n";

// The image S-space model (Inception encoder, decoder, morphology views drawn
// from the same checkpointed stream as the partners), 2x2-binned 16 x 16 cutouts.
static const char *ISCL_CFG = "[data]\nbands = u, g, r, i, z\nbin = 2\n[target]\nnames = logmstar\nhead = binned\n"
                              "[branch.x]\ninput = image\n[branch.a]\ninput = columns\ncolumns = ebv, mag_r\n"
                              "[model]\nkind = latent\nencoder = inception\nobjective = scl\nmain = x\nextra = a\ndim_ext = 4\n"
                              "conv_width = 4\ninception_width = 4\nfc_width = 16\nest_hidden = 16\ndecoder_channels = 2\n"
                              "decoder_width = 4\n[train]\nlr = 1e-3\nepochs = 3\nbatch = 16\nseed = 6\n";

// The image VAE: its reparameterisation noise comes from the checkpointed noise stream.
static const char *VAE_CFG = "[data]\nbands = u, g, r, i, z\nbin = 2\n[branch.img]\ninput = image\n"
                             "[model]\nkind = vae\nlatent = 6\nwidths = 4, 8\n[train]\nlr = 1e-3\nepochs = 3\nbatch = 16\nseed = 7\n";

static char catalog[600], images[600], cfgpath[600];

static int setup(void **st) {
    if (tu_tmpdir_setup(st)) return -1;
    io_mock_opts o = {.out = tu_tmp("survey"), .n = 240, .seed = 2, .size = 32};
    if (io_mock_write(&o)) return -1;
    snprintf(catalog, sizeof catalog, "%s/survey/catalog.csv", tu_tmpdir());
    snprintf(images, sizeof images, "%s/survey/cutouts/{id}.fits", tu_tmpdir());
    snprintf(cfgpath, sizeof cfgpath, "%s/small.cfg", tu_tmpdir());
    FILE *f = fopen(cfgpath, "w");
    if (!f) return -1;
    fputs(CFG, f);
    fclose(f);
    return 0;
}

static pid_t start(const char *out, const char *resume, const char *delay) {
    fflush(stdout); // or the child's freopen would print our buffered lines again
    pid_t p = fork();
    if (p == 0) {
        if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr)) _exit(127);
        if (delay) setenv("GALNN_NPZ_DELAY_US", delay, 1);
        if (resume)
            execl("./bin/galnn", "galnn", "train", "--resume", resume, "--threads", "2", (char *)NULL);
        else
            execl("./bin/galnn", "galnn", "train", "--config", cfgpath, "--catalog", catalog, "--images", images, "--out",
                  out, "--threads", "2", "--ckpt-every", "4", (char *)NULL);
        _exit(127);
    }
    return p;
}

static int finish(pid_t p) {
    int st;
    waitpid(p, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0;
}

// A temp file of a checkpoint being written, if any.
static int writing(const char *dir) {
    char cmd[800];
    snprintf(cmd, sizeof cmd, "ls %s/last.npz.tmp.* >/dev/null 2>&1", dir);
    return system(cmd) == 0;
}

static void compare(const char *a, const char *b) {
    io_npz x, y;
    if (io_npz_read(a, &x)) fail_msg("%s", gn_errmsg());
    if (io_npz_read(b, &y)) fail_msg("%s", gn_errmsg());
    assert_int_equal(x.n, y.n);
    int compared = 0;
    for (int i = 0; i < x.n; i++) {
        const io_array *p = &x.arrays[i], *q = io_npz_get(&y, x.names[i]);
        if (!q) fail_msg("%s lacks %s", b, x.names[i]);
        if (!strcmp(x.names[i], "meta.log")) { // the log's last column is wall-clock seconds: compare the rest
            char *u = strndup(p->data, p->n), *v = strndup(q->data, q->n), *su, *sv;
            char *lu = strtok_r(u, "\n", &su), *lv = strtok_r(v, "\n", &sv);
            for (; lu && lv; lu = strtok_r(NULL, "\n", &su), lv = strtok_r(NULL, "\n", &sv)) {
                char *cu = strrchr(lu, ','), *cv = strrchr(lv, ',');
                if (cu) *cu = 0;
                if (cv) *cv = 0;
                if (strcmp(lu, lv)) fail_msg("log lines differ: '%s' vs '%s'", lu, lv);
            }
            assert_true(!lu && !lv);
            free(u), free(v);
            compared++;
            continue;
        }
        assert_int_equal(p->n, q->n);
        if (memcmp(p->data, q->data, p->n * io_dtype_size(p->dtype)))
            fail_msg("'%s' differs between the uninterrupted and the resumed run", x.names[i]);
        compared++;
    }
    printf("    %d arrays byte-identical (parameters, BN buffers, optimizer moments, RNG streams, data order, log)\n",
           compared);
    io_npz_free(&x);
    io_npz_free(&y);
}

static void test_kill_and_resume(void **st) {
    (void)st;
    char straight[600], killed[600], last[700];
    snprintf(straight, sizeof straight, "%s/straight", tu_tmpdir());
    snprintf(killed, sizeof killed, "%s/killed", tu_tmpdir());
    snprintf(last, sizeof last, "%s/last.npz", killed);
    double t0 = gn_now();
    assert_int_equal(finish(start(straight, NULL, NULL)), 0);
    double T = gn_now() - t0;
    gn_rng r;
    gn_rng_seed(&r, (uint64_t)time(NULL), 1); // random moments; the seed is printed for reproduction
    uint64_t seed = r.s[0];
    printf("    uninterrupted run %.2f s; kill moments from seed %llu\n", T, (unsigned long long)seed);
    // 1. kills at random moments (the first one before any checkpoint may exist)
    int kills = 0, rc = -1;
    pid_t p = start(killed, NULL, NULL);
    for (int k = 0; k < 3; k++) {
        usleep((useconds_t)(1e6 * T * (0.15 + 0.3 * gn_rng_uniform(&r))));
        if (kill(p, SIGKILL) == 0) kills++;
        finish(p);
        if (!exists(last)) { // killed before the first checkpoint: start over
            p = start(killed, NULL, NULL);
            continue;
        }
        p = start(NULL, last, NULL);
    }
    rc = finish(p);
    printf("    %d random kills survived\n", kills);
    assert_int_equal(rc, 0);
    char ref[700];
    snprintf(ref, sizeof ref, "%s/last.npz", straight);
    compare(ref, last);
    // train.ema: param.* hold the averaged weights, train.live the slab training continues from, and
    // they differ; the first parameter sits at the slab's start
    io_npz z;
    assert_int_equal(io_npz_read(ref, &z), 0);
    const io_array *live = io_npz_get(&z, "train.live"), *w = io_npz_get(&z, "param.img.conv1.weight");
    assert_non_null(live), assert_non_null(w);
    assert_true(live->n >= w->n && memcmp(live->data, w->data, w->n * sizeof(float)) != 0);
    io_npz_free(&z);
}

static void test_kill_during_write(void **st) {
    (void)st;
    char straight[700], dir[600], last[700];
    snprintf(straight, sizeof straight, "%s/straight/last.npz", tu_tmpdir());
    snprintf(dir, sizeof dir, "%s/write", tu_tmpdir());
    snprintf(last, sizeof last, "%s/last.npz", dir);
    // run normally until the first checkpoint exists, then resume with slow writes and kill mid-write
    pid_t p = start(dir, NULL, NULL);
    while (!exists(last)) usleep(2000);
    kill(p, SIGKILL);
    finish(p);
    int hits = 0;
    for (int attempt = 0; attempt < 3; attempt++) {
        p = start(NULL, last, "3000");
        double t0 = gn_now();
        while (!writing(dir) && gn_now() - t0 < 20) usleep(500);
        if (writing(dir)) {
            usleep(20000); // well inside the write: members are 3 ms apart
            kill(p, SIGKILL);
            hits++;
        }
        finish(p);
        io_npz z; // the previous checkpoint must still load and verify
        if (io_npz_read(last, &z)) fail_msg("after a kill during a write: %s", gn_errmsg());
        io_npz_free(&z);
        char cmd[800];
        snprintf(cmd, sizeof cmd, "rm -f %s/last.npz.tmp.*", dir); // what a crash leaves behind
        assert_int_equal(system(cmd), 0);
    }
    printf("    %d kills inside a checkpoint write; the previous checkpoint loaded every time\n", hits);
    assert_true(hits >= 1);
    assert_int_equal(finish(start(NULL, last, NULL)), 0);
    compare(straight, last);
}

static int run_cmd(const char *cmd) {
    fflush(stdout);
    return system(cmd);
}

// Train 3 epochs straight, and 1 then --resume to 3: identical checkpoints.
static void straight_vs_resumed(const char *name, const char *text, int with_images) {
    char cfg[600], cmd[3000], extra[700] = "";
    snprintf(cfg, sizeof cfg, "%s/%s.cfg", tu_tmpdir(), name);
    FILE *f = fopen(cfg, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    if (with_images) snprintf(extra, sizeof extra, "--images '%s'", images);
    const char *base = "./bin/galnn train --config %s --catalog %s %s --out %s/%s_%s --threads 2 %s >/dev/null 2>&1";
    snprintf(cmd, sizeof cmd, base, cfg, catalog, extra, tu_tmpdir(), name, "straight", "--epochs 3");
    assert_int_equal(run_cmd(cmd), 0);
    snprintf(cmd, sizeof cmd, base, cfg, catalog, extra, tu_tmpdir(), name, "split", "--epochs 1");
    assert_int_equal(run_cmd(cmd), 0);
    snprintf(cmd, sizeof cmd, "./bin/galnn train --resume %s/%s_split/last.npz --epochs 3 --threads 2 >/dev/null 2>&1",
             tu_tmpdir(), name);
    assert_int_equal(run_cmd(cmd), 0);
    char a[700], b[700];
    snprintf(a, sizeof a, "%s/%s_straight/last.npz", tu_tmpdir(), name);
    snprintf(b, sizeof b, "%s/%s_split/last.npz", tu_tmpdir(), name);
    compare(a, b);
}

static void test_scl_resume(void **st) {
    (void)st;
    straight_vs_resumed("scl", SCL_CFG, 0);
    straight_vs_resumed("iscl", ISCL_CFG, 1);
    straight_vs_resumed("vae", VAE_CFG, 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_kill_and_resume), cmocka_unit_test(test_kill_during_write),
                                       cmocka_unit_test(test_scl_resume)};
    return cmocka_run_group_tests(tests, setup, tu_tmpdir_teardown);
}
