// One table-driven flag parser for every subcommand: a table of
// {name, type, target, range, help} rows parses argv and prints the options'
// help, so each cmd_* is parse -> compute -> write. Errors are printed as
// "galnn: error: ..." and make the parse return nonzero.
#ifndef APP_FLAGS_H
#define APP_FLAGS_H

#include <stddef.h>

typedef enum cmd_fltype {
    FL_STR,   // const char **: the next argument
    FL_INT,   // long *: an integer in [lo, hi]
    FL_DBL,   // double *: a number in [lo, hi]
    FL_ON,    // int *: set to 1, no value
    FL_OFF,   // int *: set to 0, no value
    FL_STRS,  // cmd_strs *: repeatable, each value appended
    FL_SET,   // cmd_strs *: appends "key=VALUE" (a configuration override; key in .key)
    FL_FN,    // .fn(target, value) parses the value, prints its own error, nonzero on failure
    FL_SETON, // cmd_strs *: appends "key=1", no value (a configuration switch)
    FL_PAIR,  // cmd_strs *: the next two arguments, appended (once)
} cmd_fltype;

#define CMD_MAX_STRS 64

// A list of strings: repeated flag values, or configuration overrides
// (SECTION.KEY=VALUE) from FL_SET flags and the command line.
typedef struct cmd_strs {
    const char *v[CMD_MAX_STRS];
    int n;
    char own[32768]; // the texts made by FL_SET and cmd_strs_addf, one after another
    size_t n_own;    // bytes of own in use
} cmd_strs;

typedef struct cmd_flag {
    const char *name; // "--ckpt"; NULL ends the table
    cmd_fltype type;
    size_t off;      // the field's offset in the command's options struct
    double lo, hi;   // FL_INT, FL_DBL
    const char *arg; // the value's name in the help ("FILE", "N"), NULL for FL_ON/FL_OFF
    const char *help;
    const char *key; // FL_SET: the configuration key, e.g. "data.catalog"
    int (*fn)(void *field, const char *val);
} cmd_flag;

// Table rows (every field given, as -Wextra wants). A file defines CLI as its
// options struct before its table: F_STR("--out", out, ...) is the field CLI.out.
#define F_ROW(name, type, f, lo, hi, arg, help, key, fn)                                                     \
    { name, type, offsetof(CLI, f), lo, hi, arg, help, key, fn }
#define F_STR(name, f, arg, help) F_ROW(name, FL_STR, f, 0, 0, arg, help, NULL, NULL)
#define F_INT(name, f, lo, hi, arg, help) F_ROW(name, FL_INT, f, lo, hi, arg, help, NULL, NULL)
#define F_DBL(name, f, lo, hi, arg, help) F_ROW(name, FL_DBL, f, lo, hi, arg, help, NULL, NULL)
#define F_ON(name, f, help) F_ROW(name, FL_ON, f, 0, 0, NULL, help, NULL, NULL)
#define F_OFF(name, f, help) F_ROW(name, FL_OFF, f, 0, 0, NULL, help, NULL, NULL)
#define F_STRS(name, f, arg, help) F_ROW(name, FL_STRS, f, 0, 0, arg, help, NULL, NULL)
#define F_SET(name, f, key, arg, help) F_ROW(name, FL_SET, f, 0, 0, arg, help, key, NULL)
#define F_FN(name, f, fn, arg, help) F_ROW(name, FL_FN, f, 0, 0, arg, help, NULL, fn)
#define F_SETON(name, f, key, help) F_ROW(name, FL_SETON, f, 0, 0, NULL, help, key, NULL)
#define F_PAIR(name, f, arg, help) F_ROW(name, FL_PAIR, f, 0, 0, arg, help, NULL, NULL)
// --dump N FILE.npz: the first N galaxies' network inputs (input.<branch>) and outputs (cmd_dump_opts)
#define F_DUMP(f, help) F_PAIR("--dump", f, "N FILE.npz", help)
#define F_THREADS(f) F_INT("--threads", f, 0, 1024, "N", "threads (default: the cores this process may use)")
// Rows most commands share.
#define F_CKPT(f, help) F_STR("--ckpt", f, "FILE", help)
#define F_OUT(f, arg, help) F_STR("--out", f, arg, help)
#define F_SPLIT(f, help) F_STR("--split", f, "NAME", help)
#define F_SEED(f, help) F_INT("--seed", f, 0, 0x7fffffff, "S", help)
// The data-moved rows of commands that read a checkpoint (configuration overrides into sets).
#define F_CATALOG(sets, help) F_SET("--catalog", sets, "data.catalog", "CSV", help)
#define F_IMAGES(sets, help) F_SET("--images", sets, "data.images", "TEMPLATE", help)
// The catalog conventions every command that reads data accepts ([data] keys, as overrides).
#define F_DATA_KEYS(sets)                                                                                    \
    F_SET("--id-column", sets, "data.id_column", "NAME", "the catalog's id column (default id)"),            \
        F_SET("--nulls", sets, "data.nulls", "V,...", "null sentinels of every column, e.g. '-9999, 99'"),   \
        F_SET("--cache-dir", sets, "data.cache_dir", "DIR", "where the decoded-cutout cache lives"),         \
        F_FN("--split-frac", sets, cmd_split_frac, "T,V", "train/val fractions without a split column"),     \
        F_SETON("--strict", sets, "data.strict", "a missing/unreadable cutout or a NaN pixel is an error")
#define F_END                                                                                                \
    { NULL, FL_STR, 0, 0, 0, NULL, NULL, NULL, NULL }

// Parse argv[1..argc) (argv[0] is the command name) by the table into the
// options struct o. Arguments of the form SECTION.KEY=VALUE go to sets (an
// error where sets is NULL).
int cmd_flags_parse(const char *cmd, const cmd_flag *f, void *o, int argc, char **argv, cmd_strs *sets);
// The options' help: "  --name ARG  help (default: ...)", defaults read from o.
void cmd_flags_help(const cmd_flag *f, const void *o);
// --split-frac T,V as the configuration overrides data.train_frac and data.val_frac (into a cmd_strs).
int cmd_split_frac(void *sets, const char *val);
// --dump's two values (none given: *n = 0, *file = NULL); nonzero and a message when N is not a count.
int cmd_dump_opts(const cmd_strs *d, long *n, const char **file);
// Append one string (nonzero and a message when the list is full).
int cmd_strs_add(cmd_strs *l, const char *s);
// Append a formatted string, kept in the list's own storage.
int cmd_strs_addf(cmd_strs *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// Append each item of "a=1; b=2" (split at sep, spaces trimmed, empty items skipped).
int cmd_strs_split(cmd_strs *l, const char *list, char sep);

#endif
