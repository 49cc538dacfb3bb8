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

// Split a comma-separated list in place into at most max items (spaces trimmed).
int io_split_list(char *s, char **items, int max);

#endif
