// galnn: the program. Dispatches git-style subcommands; `galnn help CMD`.
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/gn_common.h"
#include "cmd.h"

typedef struct command {
    const char *name, *summary;
    int (*run)(int, char **);
    void (*help)(void);
} command;

static const command COMMANDS[] = {
    {"demo", "the main job on built-in data: mock survey, then log M* from photometry vs + cutouts", cmd_demo,
     cmd_demo_help},
    {"mock", "write the built-in mock survey (catalog + 5-band cutouts, optional kinematic maps)", cmd_mock,
     cmd_mock_help},
    {"train", "train a network from a configuration (models/*.cfg), or --resume a run exactly", cmd_train,
     cmd_train_help},
    {"eval", "metrics of saved weights on a split: bias, sigma_MAD, outliers, RMSE, R2, dex, CRPS", cmd_eval,
     cmd_eval_help},
    {"predict", "predictions (and uncertainties / p(y) quantiles) for every galaxy of a catalog", cmd_predict,
     cmd_predict_help},
    {"inspect", "what a checkpoint holds: tensors, training position, configuration", cmd_inspect,
     cmd_inspect_help},
    {"knn", "exact k nearest neighbours between two tables (KD-tree or GEMM, L2 or max-norm)", cmd_knn,
     cmd_knn_help},
    {"posterior",
     "posterior samples of a flow model: mean, median, 68/95 % intervals per galaxy (and raw samples)",
     cmd_posterior, cmd_posterior_help},
    {"embed", "the S-space vector of every galaxy from a latent model (for galnn causal)", cmd_embed,
     cmd_embed_help},
    {"causal", "local nearest-neighbour tests in a latent space: is a variable's information in it?",
     cmd_causal, cmd_causal_help},
    {"spectra-scan",
     "train the grid of spectral VAE/CVAE models (latent sizes x conditions) and rank them by BIC",
     cmd_spectra_scan, cmd_spectra_scan_help},
    {"spectra-latents",
     "a spectral VAE's latent space: PCA rotation, MI with catalog properties, traversal spectra",
     cmd_spectra_latents, cmd_spectra_latents_help},
    {"explain",
     "expected-gradients attributions: per wavelength (spectral VAE) or per pixel and band (image models)",
     cmd_explain, cmd_explain_help},
    {"pid",
     "partial information decomposition: redundant, unique, synergistic (discrete, samples, pointwise)",
     cmd_pid, cmd_pid_help},
    {"mi", "mutual information between column sets: KSG 1/2, conditional (Frenzel-Pompe), Gaussian", cmd_mi,
     cmd_mi_help},
    {"analyze", "the whole study from one config: latent models, local tests, MI triplets, PID, a report",
     cmd_analyze, cmd_analyze_help},
    {"data", "open a catalog + cutouts: nulls, splits, cache, band statistics, batch throughput", cmd_data,
     cmd_data_help},
};
#define N_COMMANDS (int)(sizeof COMMANDS / sizeof COMMANDS[0])

int cmd_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("galnn: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

int cmd_parse_int(const char *flag, const char *val, long lo, long hi, long *out) {
    if (!val) return cmd_error("%s needs a value", flag);
    char *end;
    errno = 0;
    long v = strtol(val, &end, 10);
    if (errno || end == val || *end || v < lo || v > hi)
        return cmd_error("%s: '%s' is not an integer in [%ld, %ld]", flag, val, lo, hi);
    *out = v;
    return 0;
}

int cmd_is_tty(void) { return isatty(fileno(stderr)); }

static void usage(FILE *f) {
    fprintf(f, "usage: galnn <command> [options]\n\n"
               "galnn trains, evaluates and interprets deep models of galaxy properties\n"
               "(stellar mass first) from multi-band cutouts and photometry.\n\ncommands:\n");
    for (int i = 0; i < N_COMMANDS; i++) fprintf(f, "  %-10s %s\n", COMMANDS[i].name, COMMANDS[i].summary);
    fprintf(f, "  %-10s %s\n  %-10s %s\n\n", "help", "show this list, or `galnn help CMD` for one command",
            "version", "print the version");
    fprintf(f, "Common options: --threads N (default: all cores), --seed S.\n"
               "A fixed seed and thread count give bit-identical results.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 1;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        if (argc > 2) {
            for (int i = 0; i < N_COMMANDS; i++)
                if (!strcmp(argv[2], COMMANDS[i].name)) {
                    COMMANDS[i].help();
                    return 0;
                }
            return cmd_error("no command '%s' (see `galnn help`)", argv[2]);
        }
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("galnn %s\n", GN_VERSION);
        return 0;
    }
    for (int i = 0; i < N_COMMANDS; i++)
        if (!strcmp(cmd, COMMANDS[i].name)) {
            for (int a = 2; a < argc; a++)
                if (!strcmp(argv[a], "--help") || !strcmp(argv[a], "-h")) {
                    COMMANDS[i].help();
                    return 0;
                }
            return COMMANDS[i].run(argc - 1, argv + 1);
        }
    return cmd_error("unknown command '%s' (see `galnn help`)", cmd);
}
