// Subcommands of the galnn program: each lives in its own file.
#ifndef CMD_H
#define CMD_H

#include "flags.h"

#include <stddef.h>

// A subcommand: the prose of its help, its flag table and options struct, and
// what it does once the flags are parsed (parse -> compute -> write). Each
// command's file defines one `const cmd_def cmd_NAME`; apps/galnn.c lists them.
// `galnn help NAME` prints usage() and the table with the defaults.
typedef struct cmd_def {
    const char *name, *summary;
    void (*usage)(void);
    const cmd_flag *flags;
    size_t size;                        // sizeof the options struct
    void (*defaults)(void *o);          // NULL: all zero
    int (*run)(const void *o);          // 0, or 1 after printing the error
    ptrdiff_t sets;                     // offsetof the cmd_strs taking SECTION.KEY=VALUE, or -1
    int (*main)(int argc, char **argv); // a command that reads argv itself, or NULL
} cmd_def;

// const cmd_def var = {name, summary, usage, flags, size, defaults, run, sets, main}
#define CMD_DEF(var, ...) const cmd_def var = {__VA_ARGS__}

// Run a command on argv (argv[0]: its name): parse the flags, then run.
int cmd_run(const cmd_def *d, int argc, char **argv);

// Subcommands other programs call (analyze, spectra-scan, demo): the parsed
// options as a struct, filled by X_defaults (on a zeroed struct) and the flag table or by the
// caller, and X_run doing the work (0, or 1 after printing the error).
typedef struct eval_cli {
    const char *ckpt, *split_name, *by, *out, *ensemble;
    int json, tta;
    long threads, samples, seed;
    cmd_strs sets; // --catalog/--images/--join and SECTION.KEY=VALUE
} eval_cli;
void eval_defaults(void *o);
int eval_run(const eval_cli *o);

typedef struct embed_cli {
    const char *ckpt, *out, *which;
    int full;
    long threads;
    cmd_strs sets, dump; // dump: --dump N FILE
} embed_cli;
void embed_defaults(void *o);
int embed_run(const embed_cli *o);

typedef struct predict_cli {
    const char *ckpt, *out, *which;
    int pbins, tta;
    long threads;
    double ood_sigma;
    cmd_strs sets, dump; // dump: N FILE
} predict_cli;
void predict_defaults(void *o);
int predict_run(const predict_cli *o);

typedef struct train_cli {
    const char *config, *resume, *out;
    long threads, epochs, seed, ckpt_every;
    cmd_strs sets; // --catalog/--images/--bands/--target and SECTION.KEY=VALUE
} train_cli;
void train_defaults(void *o);
int train_run(const train_cli *o);

typedef struct causal_cli {
    const char *latent, *catalog, *target, *vars, *out, *given, *pre, *by, *qsplit, *lcols;
    long k, perms, seed, threads;
    double alpha;
    cmd_strs derive;
} causal_cli;
void causal_defaults(void *o);
int causal_run(const causal_cli *o);

typedef struct pid_cli {
    const char *dist, *samples, *measure, *x1, *x2, *y, *method, *p[3], *catalog, *target, *split, *by, *out;
    int json, quantile, pointwise;
    long bins, k, boot, seed;
    double range[2];
} pid_cli;
void pid_defaults(void *o);
int pid_run(const pid_cli *o);

// Shared flag helpers: parse an integer / a non-negative integer flag value,
// printing "galnn: error: ..." and returning nonzero when it is not one.
int cmd_parse_int(const char *flag, const char *val, long lo, long hi, long *out);
int cmd_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int cmd_is_tty(void);
// A configuration by path, or a preset by name ("ugriz_mlp", "models/ugriz_mlp.cfg" from anywhere):
// ./models, then the models/ of the source tree or share/galnn/models of the installation the binary
// runs from. Returns config itself when nothing else is found (the caller reports it).
const char *cmd_find_preset(const char *config, char *buf, size_t len);
// Commands that read a checkpoint and write into a directory: --ckpt and --out
// given, the split parsed, the directory made, the threads set; the split, or
// -1 after printing the error.
int cmd_ckpt_out(const char *cmd, const char *ckpt, const char *out, const char *split_name, long threads);

// On MPI ranks (apps/ranks.c; one process: the plain behaviour). The checkpoint's run opened on rank 0
// first (a dataset cache it builds is there for the others); an error ends the job. (Rank r's block of
// rows: run_rank_block.) Each rank's text of one output file (the header on rank 0):
// rank 0 writes the ranks' parts, joined in rank order, with write (io_write_atomic-like).
struct run;
int cmd_open_ranked(struct run *r, const char *cmd, const char *ckpt, const cmd_strs *sets);
int cmd_write_ranked(const char *out, char **buf, size_t *len, int (*write)(const char *, char **, size_t));

#endif
