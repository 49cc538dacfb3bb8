// Configuration files: INI-like text, one [section] per branch / head / the
// training, `key = value` lines, `#` or `;` comments. Command-line overrides
// use "section.key=value". The full text (after overrides) is what checkpoints
// keep in meta.config, so eval and resume need only the checkpoint.
//
// Every key a program reads is marked used; io_config_check_unused() turns a
// misspelt key into an error instead of a silently ignored setting.
#ifndef IO_CONFIG_H
#define IO_CONFIG_H

#include <stddef.h>

typedef struct io_config_entry {
    char *section, *key, *value;
    int line, used;
} io_config_entry;

typedef struct io_config {
    char *name; // file name for messages
    io_config_entry *e;
    int n, cap;
} io_config;

int io_config_read(const char *path, io_config *c);
int io_config_parse(const char *name, const char *text, io_config *c);
void io_config_free(io_config *c);
// "section.key=value": replaces or adds.
int io_config_set(io_config *c, const char *assignment);
int io_config_put(io_config *c, const char *section, const char *key, const char *value);
// The text of the whole configuration (caller frees).
char *io_config_text(const io_config *c);

// Getters: `def` when absent; GN_EINVAL with a message naming file:line when
// present but malformed.
const char *io_config_str(io_config *c, const char *sec, const char *key, const char *def);
int io_config_int(io_config *c, const char *sec, const char *key, long def, long *out);
int io_config_double(io_config *c, const char *sec, const char *key, double def, double *out);
int io_config_has_section(const io_config *c, const char *sec);
// Sections whose name starts with prefix ("branch."), in file order; returns count.
int io_config_sections(const io_config *c, const char *prefix, const char **names, int max);
// Error listing keys never read (misspellings), or GN_OK.
int io_config_check_unused(const io_config *c);

// Typed sections: a table of {key, type, field offset, range, default,
// choices} reads a section's keys into a struct at once, each default and
// valid range written once. A value out of range or not among the choices is
// an error naming the file, section and key.
// IO_KEY_CHOICE: a string among the choices, stored as its position (int) in "a|b|c".
typedef enum io_keytype {
    IO_KEY_INT, IO_KEY_LONG, IO_KEY_FLOAT, IO_KEY_DOUBLE, IO_KEY_STR, IO_KEY_CHOICE
} io_keytype;
typedef struct io_key {
    const char *key;
    io_keytype type;
    size_t off;          // offsetof the field: int, long, float, double or const char *
    double lo, hi, def;  // numbers: the range [lo, hi] (lo = IO_KEY_POS: > 0) and the default (NAN: the
                         // field keeps its value when the key is absent)
    const char *sdef;    // IO_KEY_STR: the default (may be NULL)
    const char *choices; // IO_KEY_STR: "a|b|c", or NULL for any text
} io_key;
#define IO_KEY_POS 2.2250738585072014e-308 // DBL_MIN: a lower bound meaning "> 0"
#define IO_KEY_BIG 1e300                   // no upper bound
// Table rows for a struct TYPE defined by the caller (#define IO_KEY_TYPE my_struct).
#define IO_K(key, type, field, lo, hi, def) {key, type, offsetof(IO_KEY_TYPE, field), lo, hi, def, NULL, NULL}
#define IO_KI(name, lo, hi, def) {#name, IO_KEY_INT, offsetof(IO_KEY_TYPE, name), lo, hi, def, NULL, NULL}
#define IO_KL(name, lo, hi, def) {#name, IO_KEY_LONG, offsetof(IO_KEY_TYPE, name), lo, hi, def, NULL, NULL}
#define IO_KF(name, lo, hi, def) {#name, IO_KEY_FLOAT, offsetof(IO_KEY_TYPE, name), lo, hi, def, NULL, NULL}
#define IO_KD(name, lo, hi, def) {#name, IO_KEY_DOUBLE, offsetof(IO_KEY_TYPE, name), lo, hi, def, NULL, NULL}
#define IO_KS(name, def, choices) {#name, IO_KEY_STR, offsetof(IO_KEY_TYPE, name), 0, 0, 0, def, choices}
#define IO_KC(name, def, choices) {#name, IO_KEY_CHOICE, offsetof(IO_KEY_TYPE, name), 0, 0, 0, def, choices}
#define IO_KEND {NULL, IO_KEY_INT, 0, 0, 0, 0, NULL, NULL}
// Read the keys of one section into base (the table ends with IO_KEND).
int io_config_keys(io_config *c, const char *sec, const io_key *t, void *base);

// Split a comma-separated list in place into at most max items (spaces trimmed).
int io_split_list(char *s, char **items, int max);

#endif
