// galnn: the program. Dispatches git-style subcommands; `galnn help CMD`.
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/stat.h>

#include "../common/gn_common.h"
#include "../io/catalog.h"
#include "../common/gn_mpi.h"
#include "cmd.h"

// The subcommands, in the order `galnn help` lists them (each defined in its own file).
extern const cmd_def cmd_demo, cmd_mock, cmd_train, cmd_eval, cmd_predict, cmd_inspect, cmd_knn,
    cmd_posterior, cmd_embed, cmd_causal, cmd_spectra_scan, cmd_spectra_latents, cmd_explain, cmd_pid, cmd_mi,
    cmd_analyze, cmd_data;
static const cmd_def *const COMMANDS[] = {
    &cmd_demo,    &cmd_mock,      &cmd_train, &cmd_eval,    &cmd_predict,      &cmd_inspect,
    &cmd_knn,     &cmd_posterior, &cmd_embed, &cmd_causal,  &cmd_spectra_scan, &cmd_spectra_latents,
    &cmd_explain, &cmd_pid,       &cmd_mi,    &cmd_analyze, &cmd_data,
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

const char *cmd_find_preset(const char *config, char *buf, size_t len) {
    struct stat st;
    if (!stat(config, &st)) return config;
    char name[256], exe[4096], *slash = strrchr(config, '/');
    snprintf(name, sizeof name, "%s", slash ? slash + 1 : config);
    char *dot = strstr(name, ".cfg");
    if (dot && !dot[4]) *dot = 0;
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = 0;
    char *e = strrchr(exe, '/');
    if (e) *e = 0; // the binary's directory: bin/ of the source tree or of the installation
    const char *where[3] = {"models", "../models", "../share/galnn/models"};
    for (int k = 0; k < 3; k++) {
        if (k)
            snprintf(buf, len, "%s/%s/%s.cfg", exe, where[k], name);
        else
            snprintf(buf, len, "%s/%s.cfg", where[k], name);
        if (!stat(buf, &st)) return buf;
    }
    return config;
}

int cmd_ckpt_out(const char *cmd, const char *ckpt, const char *out, const char *split_name, long threads) {
    if (!ckpt || !out) return cmd_error("%s: --ckpt and --out are required", cmd), -1;
    int split = io_split_parse(split_name);
    if (split < 0) return cmd_error("%s: --split '%s' is not train, val or test", cmd, split_name), -1;
    if (mkdir(out, 0755) && errno != EEXIST)
        return cmd_error("%s: %s: cannot create: %s", cmd, out, strerror(errno)), -1;
    gn_set_threads((int)threads);
    return split;
}

static void usage(FILE *f) {
    fprintf(f, "usage: galnn <command> [options]\n\n"
               "galnn trains, evaluates and interprets deep models of galaxy properties\n"
               "(stellar mass first) from multi-band cutouts and photometry.\n\ncommands:\n");
    for (int i = 0; i < N_COMMANDS; i++) fprintf(f, "  %-10s %s\n", COMMANDS[i]->name, COMMANDS[i]->summary);
    fprintf(f, "  %-10s %s\n  %-10s %s\n\n", "help", "show this list, or `galnn help CMD` for one command",
            "version", "print the version");
    fprintf(f, "Common options: --threads N (default: the cores this process may use), --seed S.\n"
               "A fixed seed and thread count give bit-identical results.\n");
}

// `galnn help CMD`: the command's prose, then its options with their defaults.
static int help(const cmd_def *d) {
    d->usage();
    void *o = calloc(1, d->size);
    if (!o) return cmd_error("out of memory");
    if (d->defaults) d->defaults(o);
    printf("\n");
    cmd_flags_help(d->flags, o);
    free(o);
    return 0;
}

// Parse the flags into the command's options struct, then run it.
int cmd_run(const cmd_def *d, int argc, char **argv) {
    if (d->main) return d->main(argc, argv);
    void *o = calloc(1, d->size);
    if (!o) return cmd_error("out of memory");
    if (d->defaults) d->defaults(o);
    cmd_strs *sets = d->sets >= 0 ? (cmd_strs *)((char *)o + d->sets) : NULL;
    int rc = cmd_flags_parse(d->name, d->flags, o, argc, argv, sets) ? 1 : d->run(o);
    free(o);
    return rc;
}

#ifdef GN_MPI
#define GN_MPI_BUILT                                                                                         \
    "built with MPI (mpirun -np P galnn train: data-parallel; predict, embed, posterior, causal: the "       \
    "galaxies shared; analyze: both; docs/cluster.md)"
#else
#define GN_MPI_BUILT "not built with MPI (install openmpi-bin libopenmpi-dev and rebuild)"
#endif

// Under mpirun with more than one rank: the commands that share their work among the ranks. The others
// would run P copies writing the same files: refused.
static int runs_on_ranks(const char *cmd) {
    return !strcmp(cmd, "train") || !strcmp(cmd, "predict") || !strcmp(cmd, "embed") ||
           !strcmp(cmd, "posterior") || !strcmp(cmd, "causal") || !strcmp(cmd, "analyze");
}

static int galnn_main(int argc, char **argv);

int main(int argc, char **argv) {
    gn_runtime_init(argv);
    if (gn_mpi_init(&argc, &argv)) return cmd_error("%s", gn_errmsg());
    if (gn_mpi_size() > 1 && argc >= 2 && !runs_on_ranks(argv[1])) {
        if (gn_mpi_rank() == 0)
            cmd_error("galnn %s does not run on %d MPI ranks (train, predict, embed, posterior and causal "
                      "do); start it "
                      "without mpirun",
                      argv[1], gn_mpi_size());
        gn_mpi_finalize();
        return 1;
    }
    if (gn_mpi_rank() > 0 && !freopen("/dev/null", "w", stdout)) // rank 0 reports; errors from any rank
        return cmd_error("rank %d: cannot silence its output: %s", gn_mpi_rank(), strerror(errno));
    int rc = galnn_main(argc, argv);
    if (rc && gn_mpi_size() > 1) gn_mpi_abort(rc); // an error on one rank ends the job, never a hang
    gn_mpi_finalize();
    return rc;
}

static int galnn_main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 1;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        if (argc > 2) {
            for (int i = 0; i < N_COMMANDS; i++)
                if (!strcmp(argv[2], COMMANDS[i]->name)) return help(COMMANDS[i]);
            return cmd_error("no command '%s' (see `galnn help`)", argv[2]);
        }
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        const char *wp = getenv("OMP_WAIT_POLICY"), *sc = getenv("GOMP_SPINCOUNT");
        printf(
            "galnn %s\nthreads: %d by default (the cores this process may use: CPU affinity, cgroup quota, "
            "MPI ranks per node)\nOpenMP waiting: %s%s%s%s%s\nMPI: %s\n",
            GN_VERSION, gn_default_threads(), wp ? "OMP_WAIT_POLICY=" : "", wp ? wp : "",
            wp && sc ? ", " : "", sc ? "GOMP_SPINCOUNT=" : "", sc ? sc : "", GN_MPI_BUILT);
        return 0;
    }
    for (int i = 0; i < N_COMMANDS; i++)
        if (!strcmp(cmd, COMMANDS[i]->name)) {
            for (int a = 2; a < argc; a++)
                if (!strcmp(argv[a], "--help") || !strcmp(argv[a], "-h")) return help(COMMANDS[i]);
            return cmd_run(COMMANDS[i], argc - 1, argv + 1);
        }
    return cmd_error("unknown command '%s' (see `galnn help`)", cmd);
}
