// galnn demo: the main job on the built-in data. Makes the mock survey, then
// trains two stellar-mass models on it — photometry only (ugriz magnitudes,
// spec-z, E(B-V)) and the same photometry plus the 5-band cutouts — evaluates
// both on the test split and prints them side by side. The mock's M/L depends
// on morphology, so the cutouts should lower the scatter.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../common/gn_common.h"
#include "../io/catalog.h"
#include "../io/json.h"
#include "../io/mock.h"
#include "cmd.h"
#include "flags.h"

static void demo_usage(void) {
    printf(
        "usage: galnn demo [--out DIR] [--n N] [--seed S] [--threads N]\n\n"
        "1. writes the mock survey (default 4000 galaxies, 64x64 u,g,r,i,z cutouts) to DIR (default "
        "galnn-demo),\n"
        "2. trains models/demo_mlp.cfg (photometry only) and models/demo_cnn.cfg (photometry + cutouts) to\n"
        "   predict log M*, in DIR/runs/photometry and DIR/runs/images (loss.png in each),\n"
        "3. evaluates both on the test split (pred_vs_true_logmstar.png in each run) and prints a table;\n"
        "   then"
        " gradient-boosted trees on global properties (luminosity, colour, SFR, Sersic n, b/a, size,\n"
        "   velocity dispersion, spin) -> log M*, log M_tot, ranked by gain and exact TreeSHAP (paper 002),\n"
        "4. asks why: galnn analyze --config models/demo_analysis.cfg --out DIR/analysis trains S-space\n"
        "   models of the magnitudes and of the cutouts, runs the local tests for Sersic n, size, axis "
        "ratio,\n"
        "   spec-z and W1-W2 in both, trains the MI triplet <magnitudes, morphology> for the pointwise PID,\n"
        "   and writes DIR/analysis/report.html,\n"
        "5. posteriors: a VAE on the cutouts, then conditional flows over log M*, log SFR, z and log M/L_r "
        "from\n"
        "   photometry and from photometry + the VAE latent; their calibration (interval coverage, PIT),\n"
        "6. spectra: galnn spectra-scan trains spectral VAEs/CVAEs (latent sizes 1, 2, 4, 8; no condition "
        "or\n"
        "   log M*) on the mock spectra and ranks them by BIC (DIR/spectra_scan/bic.png); galnn "
        "spectra-latents\n"
        "   and galnn explain then show what the best VAE's latents mean and which wavelengths they read.\n"
        "About 12 minutes on 2 cores. A second run reuses the survey, the dataset cache and the finished\n"
        "analysis steps.\n");
}

extern const cmd_def cmd_train, cmd_eval, cmd_embed, cmd_analyze, cmd_spectra_scan, cmd_spectra_latents,
    cmd_explain;

// Run a command as a user would type it (args: NULL-terminated, args[0] its name).
static int call(const cmd_def *cmd, char **args) {
    int n = 0;
    while (args[n]) n++;
    int rc = cmd_run(cmd, n, args);
    fflush(stdout); // keep the steps in order when stdout is a file (subcommands also write to stderr)
    return rc;
}

// "sigma_mad" etc. of the "all" population in a metrics.json.
static int read_metrics(const char *path, double *v) {
    FILE *f = fopen(path, "r");
    if (!f) return 1;
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *a = strstr(buf, "\"all\": {");
    if (!a) return 1;
    static const char *keys[6] = {
        "\"bias\": ", "\"sigma_mad\": ", "\"eta\": ", "\"rmse\": ", "\"r2\": ", "\"n\": "};
    for (int k = 0; k < 6; k++) {
        char *p = strstr(a, keys[k]);
        if (!p) return 1;
        v[k] = atof(p + strlen(keys[k]));
    }
    return 0;
}

// The demo's paths and settings.
typedef struct demo {
    const char *out;
    long n, seed, threads;
    char cat[4096], tmpl[4096], runs[4096], th[16], sd[32], wave[4200];
} demo;

// 1. the mock survey (reused when it is there and complete).
static int demo_mock(const demo *D, double t0) {
    io_catalog c;
    io_catalog_opts co = {0, 1, NULL};
    struct stat wst;
    if (io_catalog_read(D->cat, &co, &c) || c.n_rows != (size_t)D->n || stat(D->wave, &wst) ||
        io_catalog_find(&c, "sigma_e") < 0) { // a survey from before the kinematic columns: made anew
        if (c.path) io_catalog_free(&c);
        printf("== 1. mock survey: %ld galaxies -> %s\n", D->n, D->out);
        io_mock_opts mo = {.out = D->out,
                           .n = (int)D->n,
                           .seed = (uint64_t)D->seed,
                           .size = 64,
                           .spectra = 1,
                           .kinematics = 1};
        if (io_mock_write(&mo)) return cmd_error("demo: %s", gn_errmsg());
        printf("   written in %.1f s (`galnn help mock` documents the model)\n\n", gn_now() - t0);
    } else {
        io_catalog_free(&c);
        printf("== 1. mock survey: reusing %s\n\n", D->cat);
    }
    mkdir(D->runs, 0755);
    return 0;
}

// 2-4. photometry only against photometry + cutouts on the test split.
static int demo_point(demo *D) {
    char r1[4200], r2[4200], *cat = D->cat, *th = D->th, *sd = D->sd;
    snprintf(r1, sizeof r1, "%s/photometry", D->runs);
    snprintf(r2, sizeof r2, "%s/images", D->runs);
    printf("== 2. photometry only (models/demo_mlp.cfg)\n");
    char *a1[] = {"train", "--config", "models/demo_mlp.cfg", "--catalog", cat, "--out", r1, "--threads", th,
                  sd,      NULL};
    if (call(&cmd_train, a1)) return 1;
    printf("\n== 3. photometry + 5-band cutouts (models/demo_cnn.cfg)\n");
    char *a2[] = {"train", "--config", "models/demo_cnn.cfg", "--catalog", cat, "--images", D->tmpl,
                  "--out", r2,         "--threads",           th,          sd,  NULL};
    if (call(&cmd_train, a2)) return 1;
    printf("\n== 4. test split\n");
    char ck1[4300], ck2[4300], m1[4300], m2[4300];
    snprintf(ck1, sizeof ck1, "%s/best.npz", r1);
    snprintf(ck2, sizeof ck2, "%s/best.npz", r2);
    char *e1[] = {"eval", "--ckpt", ck1, "--by", "type", "--threads", th, NULL};
    char *e2[] = {"eval", "--ckpt", ck2, "--by", "type", "--threads", th, NULL};
    if (call(&cmd_eval, e1) || call(&cmd_eval, e2)) return 1;
    snprintf(m1, sizeof m1, "%s/metrics.json", r1);
    snprintf(m2, sizeof m2, "%s/metrics.json", r2);
    double a[6], b[6];
    if (read_metrics(m1, a) || read_metrics(m2, b)) return cmd_error("demo: cannot read %s or %s", m1, m2);
    printf("\n== log M* on the test split (%.0f galaxies), dex\n", a[5]);
    printf("  %-28s %9s %10s %8s %8s %8s\n", "model", "bias", "sigma_MAD", "eta", "RMSE", "R2");
    printf("  %-28s %9.4f %10.4f %8.4f %8.4f %8.4f\n", "photometry only", a[0], a[1], a[2], a[3], a[4]);
    printf("  %-28s %9.4f %10.4f %8.4f %8.4f %8.4f\n", "photometry + cutouts", b[0], b[1], b[2], b[3], b[4]);
    printf("\nThe cutouts change sigma_MAD by %+.1f %% (the mock's M/L depends on Sersic n and dust with\n"
           "inclination, which only the images show).\n",
           100 * (b[1] / a[1] - 1));
    return 0;
}

// 4b. paper 002's second model: gradient-boosted trees on global properties, ranked by gain and TreeSHAP.
static int demo_trees(demo *D) {
    char r[4200], ck[4300], x[4300];
    snprintf(r, sizeof r, "%s/global_trees", D->runs);
    snprintf(ck, sizeof ck, "%s/best.npz", r);
    snprintf(x, sizeof x, "%s/explain", r);
    printf("\n== 4b. which global properties carry the mass: gradient-boosted trees "
           "(models/gbdt_chu_global.cfg)\n");
    char *a[] = {"train",     "--config",  "models/gbdt_chu_global.cfg",
                 "--catalog", D->cat,      "--out",
                 r,           "--threads", D->th,
                 D->sd,       NULL};
    char *e[] = {"eval", "--ckpt", ck, "--threads", D->th, NULL};
    char *w[] = {"explain", "--ckpt", ck, "--out", x, "--threads", D->th, NULL};
    if (call(&cmd_train, a) || call(&cmd_eval, e) || call(&cmd_explain, w)) return 1;
    printf("(Chu et al. find luminosity first and velocity dispersion next; the mock's masses follow its\n"
           "luminosities and colours. SHAP summary: %s/shap_summary.png)\n",
           x);
    return 0;
}

// 5. why: the interpretation study (spec/methods.md §1) in one analyze run.
static int demo_why(demo *D, char *adir, size_t len) {
    snprintf(adir, len, "%s/analysis", D->out);
    printf("\n== 5. why: galnn analyze --config models/demo_analysis.cfg (S-space models of the magnitudes "
           "and of the\n"
           "   cutouts, local tests in both S spaces, the PID of <magnitudes, morphology>) -> %s\n",
           adir);
    char aseed[64];
    snprintf(aseed, sizeof aseed, "analysis.seed=%ld", D->seed);
    char *az[] = {"analyze",   "--config",  "models/demo_analysis.cfg",
                  "--out",     adir,        "--replace",
                  "--catalog", D->cat,      "--images",
                  D->tmpl,     "--threads", D->th,
                  aseed,       NULL};
    return call(&cmd_analyze, az);
}

// The posterior table: R2, 68 / 95 % coverage and PIT KS per target, for both flows.
static void posterior_table(char fm[2][8800]) {
    printf("\n== posteriors on the test split: R2 of the posterior mean, 68 %% / 95 %% interval coverage, "
           "PIT KS\n");
    printf("  %-10s %-34s %-34s\n", "target", "photometry", "photometry + VAE latent");
    static const char *tg[4] = {"logmstar", "logsfr", "z", "logml_r"};
    for (int t = 0; t < 4; t++) {
        printf("  %-10s", tg[t]);
        for (int k = 0; k < 2; k++) {
            io_json j;
            char cell[80] = "(no metrics)";
            if (!io_json_read(fm[k], &j)) {
                const io_json *x = io_json_path(&j, "targets", tg[t], NULL);
                snprintf(cell, sizeof cell, "R2 %.3f  %.3f / %.3f  KS %.3f",
                         io_json_num(io_json_get(x, "r2"), -1), io_json_num(io_json_get(x, "coverage68"), -1),
                         io_json_num(io_json_get(x, "coverage95"), -1),
                         io_json_num(io_json_get(x, "pit_ks"), -1));
                io_json_free(&j);
            }
            printf(" %-34s", cell);
        }
        printf("\n");
    }
}

// 6. posteriors: a VAE on the cutouts, then conditional flows from photometry alone and with its latent.
static int demo_posteriors(demo *D) {
    char vdir[4300], vck[4400], mucsv[4400], join[4500], fdir[2][4300], fck[2][8800], fm[2][8800];
    char *cat = D->cat, *th = D->th;
    snprintf(vdir, sizeof vdir, "%s/vae", D->runs);
    snprintf(vck, sizeof vck, "%s/best.npz", vdir);
    snprintf(mucsv, sizeof mucsv, "%s/mu.csv", vdir);
    snprintf(join, sizeof join, "data.join=%s", mucsv);
    printf("\n== 6. posteriors: a VAE on the cutouts (models/vae_ugriz.cfg, 2x2-binned, 20 epochs), then "
           "conditional\n"
           "   RealNVP flows over log M*, log SFR, z and log M/L_r from photometry (models/flow_phot.cfg) "
           "and from\n"
           "   photometry + the VAE latent (models/flow_vae_phot.cfg)\n");
    char *av[] = {"train",
                  "--config",
                  "models/vae_ugriz.cfg",
                  "--catalog",
                  cat,
                  "--images",
                  D->tmpl,
                  "--out",
                  vdir,
                  "--threads",
                  th,
                  D->sd,
                  "data.bin=2",
                  "train.epochs=20",
                  "train.lr=1e-3",
                  NULL};
    char *ae[] = {"embed", "--ckpt", vck, "--full", "--out", mucsv, "--threads", th, NULL};
    if (call(&cmd_train, av) || call(&cmd_embed, ae)) return 1;
    const char *fcfg[2] = {"models/flow_phot.cfg", "models/flow_vae_phot.cfg"},
               *fname[2] = {"flow_phot", "flow_vae"};
    for (int k = 0; k < 2; k++) {
        snprintf(fdir[k], sizeof fdir[k], "%s/%s", D->runs, fname[k]);
        snprintf(fck[k], sizeof fck[k], "%s/best.npz", fdir[k]);
        snprintf(fm[k], sizeof fm[k], "%s/metrics.json", fdir[k]);
        char *af[] = {"train",
                      "--config",
                      (char *)fcfg[k],
                      "--catalog",
                      cat,
                      "--out",
                      fdir[k],
                      "--threads",
                      th,
                      D->sd,
                      "model.context=128",
                      "model.layers=8",
                      k ? join : NULL,
                      NULL};
        char *ev[] = {"eval", "--ckpt", fck[k], "--samples", "500", "--threads", th, NULL};
        if (call(&cmd_train, af) || call(&cmd_eval, ev)) return 1;
    }
    posterior_table(fm);
    printf("  (calibrated: 0.68 / 0.95 and a small KS distance; PIT histograms in %s and %s)\n", fdir[0],
           fdir[1]);
    return 0;
}

// The plain VAE of the scan with the lowest BIC (its latent size; 4 if the table is unreadable).
static int best_plain_latent(const char *sdir) {
    char p[4400];
    snprintf(p, sizeof p, "%s/scan.csv", sdir);
    io_catalog sc;
    double bb = 1e300;
    int bl = 4;
    io_catalog_opts big = {1e300, 0, NULL}; // BIC values are large numbers, not nulls
    if (!io_catalog_read(p, &big, &sc)) {
        const double *bic = io_catalog_values(&sc, "bic"), *lat = io_catalog_values(&sc, "latent");
        for (size_t i = 0; bic && lat && i < sc.n_rows; i++)
            if (!strcmp(sc.cols[0].s[i], "none") && bic[i] < bb) bb = bic[i], bl = (int)lat[i];
        io_catalog_free(&sc);
    }
    return bl;
}

// 7. spectra: the VAE/CVAE grid, the latent space's physics, where the latents look.
static int demo_spectra(demo *D) {
    char sdir[4200], spat[4200], swave[4300], sgrid[64] = "branch.spec.grid=3500,7500,256", best[4400],
                                              ldir[4200], xdir[4200], catov[4200];
    snprintf(sdir, sizeof sdir, "%s/spectra_scan", D->out);
    snprintf(spat, sizeof spat, "branch.spec.spectra=%s/spectra/{id}.npy", D->out);
    snprintf(swave, sizeof swave, "branch.spec.wave=%s", D->wave);
    snprintf(ldir, sizeof ldir, "%s/spectra_latents", D->out);
    snprintf(xdir, sizeof xdir, "%s/spectra_explain", D->out);
    snprintf(catov, sizeof catov, "data.catalog=%s", D->cat);
    printf("\n== 7. spectra (models/specvae.cfg on 256 rest-frame pixels, 3500-7500 Å): the VAE/CVAE grid "
           "over latent\n"
           "   sizes 1, 2, 4, 8 without and with log M* as the condition, ranked by BIC; then the best plain "
           "VAE's\n"
           "   latent space (PCA rotation, MI with catalog properties, traversals) and its wavelength "
           "attributions\n");
    char *as[] = {"spectra-scan",
                  "--config",
                  "models/specvae.cfg",
                  "--out",
                  sdir,
                  "--latents",
                  "1,2,4,8",
                  "--conditions",
                  "none,logmstar",
                  "--threads",
                  D->th,
                  catov,
                  spat,
                  swave,
                  sgrid,
                  "train.batch=64",
                  "train.epochs=12",
                  "train.patience=4",
                  NULL};
    if (call(&cmd_spectra_scan, as)) return 1;
    snprintf(best, sizeof best, "%s/runs/none_d%d/best.npz", sdir, best_plain_latent(sdir));
    printf("\n   the best plain VAE has %d latent(s): %s\n", best_plain_latent(sdir), best);
    char *al[] = {"spectra-latents",
                  "--ckpt",
                  best,
                  "--out",
                  ldir,
                  "--threads",
                  D->th,
                  catov,
                  "--properties",
                  "logmstar,logsfr,av,oh12,gr0,n_true,re_kpc,z",
                  NULL};
    char *ax[] = {"explain", "--ckpt", best, "--out", xdir, "--n", "20", "--threads", D->th, catov, NULL};
    if (call(&cmd_spectra_latents, al) || call(&cmd_explain, ax)) return 1;
    printf("   plots: %s/bic.png, %s/traversal_D1.png, mi.png, %s/attr.png\n", sdir, ldir, xdir);
    return 0;
}

#define CLI demo
static const cmd_flag demo_flags[] = {F_OUT(out, "DIR", "where the survey, runs and reports go"),
                                      F_INT("--n", n, 200, 1000000, "N", "galaxies in the mock survey"),
                                      F_SEED(seed, "survey and training seed"), F_THREADS(threads), F_END};

static void demo_defaults(void *p) {
    demo *D = p;
    D->out = "galnn-demo", D->n = 4000, D->seed = 1;
}

static int demo_run(const void *p) {
    demo D = *(const demo *)p;
    gn_set_threads((int)D.threads);
    double t0 = gn_now();
    printf("galnn demo: photometry vs photometry + images for log M* on the mock survey (%d threads)\n\n",
           gn_threads());
    snprintf(D.cat, sizeof D.cat, "%s/catalog.csv", D.out);
    snprintf(D.tmpl, sizeof D.tmpl, "%s/cutouts/{id}.fits", D.out);
    snprintf(D.runs, sizeof D.runs, "%s/runs", D.out);
    snprintf(D.th, sizeof D.th, "%ld", D.threads);
    snprintf(D.sd, sizeof D.sd, "train.seed=%ld", D.seed);
    snprintf(D.wave, sizeof D.wave, "%s/spectra/wave.npy", D.out);
    char adir[4300];
    if (demo_mock(&D, t0) || demo_point(&D) || demo_trees(&D) || demo_why(&D, adir, sizeof adir) ||
        demo_posteriors(&D) || demo_spectra(&D))
        return 1;
    printf(
        "\nRunning the demo again reuses the survey and the finished steps. Runs, logs and plots: %s; the\n"
        "study's report: %s/report.html (and report.md). %.0f s in all.\n",
        D.runs, adir, gn_now() - t0);
    return 0;
}

CMD_DEF(cmd_demo, "demo",
        "the main job on built-in data: mock survey, then log M* from photometry vs + cutouts", demo_usage,
        demo_flags, sizeof(demo), demo_defaults, demo_run, -1, NULL);
