// Subcommands of the galnn program: each lives in its own file.
#ifndef CMD_H
#define CMD_H

#include "flags.h"

int cmd_demo(int argc, char **argv);
void cmd_demo_help(void);
int cmd_mock(int argc, char **argv);
void cmd_mock_help(void);
int cmd_data(int argc, char **argv);
void cmd_data_help(void);
int cmd_train(int argc, char **argv);
void cmd_train_help(void);
int cmd_eval(int argc, char **argv);
void cmd_eval_help(void);
int cmd_predict(int argc, char **argv);
void cmd_predict_help(void);
int cmd_posterior(int argc, char **argv);
void cmd_posterior_help(void);
int cmd_embed(int argc, char **argv);
void cmd_embed_help(void);
int cmd_inspect(int argc, char **argv);
void cmd_inspect_help(void);
int cmd_knn(int argc, char **argv);
void cmd_knn_help(void);
int cmd_causal(int argc, char **argv);
void cmd_causal_help(void);
int cmd_pid(int argc, char **argv);
void cmd_pid_help(void);
int cmd_analyze(int argc, char **argv);
void cmd_analyze_help(void);
int cmd_mi(int argc, char **argv);
void cmd_mi_help(void);
int cmd_spectra_scan(int argc, char **argv);
void cmd_spectra_scan_help(void);
int cmd_spectra_latents(int argc, char **argv);
void cmd_spectra_latents_help(void);
int cmd_explain(int argc, char **argv);
void cmd_explain_help(void);

// Subcommands other programs call (analyze, spectra-scan, demo): the parsed
// options as a struct, filled by X_defaults and the flag table or by the
// caller, and X_run doing the work (0, or 1 after printing the error).
typedef struct eval_cli {
    const char *ckpt, *split_name, *by, *out, *ensemble;
    int json;
    long threads, samples, seed;
    cmd_strs sets; // --catalog/--images/--join and SECTION.KEY=VALUE
} eval_cli;
void eval_defaults(eval_cli *o);
int eval_run(const eval_cli *o);

typedef struct embed_cli {
    const char *ckpt, *out, *which;
    int full;
    long threads;
    cmd_strs sets;
} embed_cli;
void embed_defaults(embed_cli *o);
int embed_run(const embed_cli *o);

typedef struct predict_cli {
    const char *ckpt, *out, *which;
    int pbins;
    long threads;
    cmd_strs sets, dump; // dump: N FILE
} predict_cli;
void predict_defaults(predict_cli *o);
int predict_run(const predict_cli *o);

typedef struct train_cli {
    const char *config, *resume, *out;
    long threads, epochs, seed, ckpt_every;
    cmd_strs sets; // --catalog/--images/--bands/--target and SECTION.KEY=VALUE
} train_cli;
void train_defaults(train_cli *o);
int train_run(const train_cli *o);

typedef struct causal_cli {
    const char *latent, *catalog, *target, *vars, *out, *given, *pre, *by, *qsplit, *lcols;
    long k, perms, seed, threads;
    double alpha, f_train, f_val;
    cmd_strs derive;
} causal_cli;
void causal_defaults(causal_cli *o);
int causal_run(const causal_cli *o);

typedef struct pid_cli {
    const char *dist, *samples, *measure, *x1, *x2, *y, *method, *p[3], *catalog, *target, *split, *by, *out;
    int json, quantile, pointwise;
    long bins, k, boot, seed;
    double range[2];
} pid_cli;
void pid_defaults(pid_cli *o);
int pid_run(const pid_cli *o);

// Shared flag helpers: parse an integer / a non-negative integer flag value,
// printing "galnn: error: ..." and returning nonzero when it is not one.
int cmd_parse_int(const char *flag, const char *val, long lo, long hi, long *out);
int cmd_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int cmd_is_tty(void);


#endif
