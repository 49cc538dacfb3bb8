// Catalog tables: CSV with a header row, comma- or whitespace-separated, '#'
// comment lines, an `id` column (string), numeric columns by name, an
// optional `split` column (train/val/test).
//
// Nulls — empty fields, NaN/nan, and sentinels with |v| >= null_threshold
// (default 9000, e.g. -9999) — are masked: their value is NaN, they are
// counted per column, and every consumer must treat NaN as "missing".
// Derived columns come from expressions over columns (`g-r = mag_g - mag_r`).
#ifndef IO_CATALOG_H
#define IO_CATALOG_H

#include <stddef.h>
#include <stdint.h>

typedef struct io_column {
    char *name;
    double *v;      // (n_rows) value, NaN when null or not a number
    char **s;       // (n_rows) the raw field text (points into the catalog's buffer)
    int numeric;    // every non-null field parsed as a number
    size_t n_null;  // masked fields (empty, NaN, sentinel)
    size_t n_text;  // fields that were not numbers (string column if == non-null count)
} io_column;

typedef struct io_catalog {
    char *path;
    size_t n_rows;
    int n_cols, cap_cols;
    io_column *cols;
    int id_col;     // -1 if no `id` column
    int split_col;  // -1 if no `split` column
    char *buf;      // the file text, tokenised in place
    uint64_t content_hash; // FNV-1a of the file bytes (dataset caches key on it)
    double null_threshold;
} io_catalog;

typedef struct io_catalog_opts {
    double null_threshold; // <= 0: 9000
    int require_id;        // error if there is no id column
    const char *id_column; // the id column's name (NULL: "id"), e.g. "objid" or "specobjid"
} io_catalog_opts;

int io_catalog_read(const char *path, const io_catalog_opts *o, io_catalog *cat);
// Parse text already in memory (malloc'd; the catalog takes ownership, even on error).
int io_catalog_parse(const char *name, char *text, size_t len, const io_catalog_opts *o, io_catalog *cat);
void io_catalog_free(io_catalog *cat);
int io_catalog_find(const io_catalog *cat, const char *name); // column index or -1
// Values of a numeric column; NULL and an error naming the catalog and the
// column (and the closest names) when it is missing or holds text.
const double *io_catalog_values(const io_catalog *cat, const char *name);
// The rows (of N) where every column of every set is present (not NaN),
// gathered set by set: out[s] (n, dims[s]) from the columns cols[s][0..dims[s]).
// Returns n; out[s] must hold N x dims[s] values.
size_t io_gather_complete(size_t N, int n_sets, const double *const *const *cols, const int *dims,
                          double *const *out);
const char *io_catalog_id(const io_catalog *cat, size_t row);
// The unit a catalog column of this name conventionally carries in astronomers' catalogs, for axis
// labels ("log10 M/Msun" for logmstar, "mag" for mag_r, "unitless" for zspec), or NULL when the name
// does not say (configurations name it: [target] units).
const char *io_column_unit(const char *name);

// Add column `name` = expr, where expr uses column names, numbers, + - * /,
// unary minus, parentheses and log10() ln() exp() sqrt() abs() asinh() pow(a, b).
// A row is null in the result if any column it uses is null there, or the
// result is not finite.
int io_catalog_derive(io_catalog *cat, const char *name, const char *expr);
// "name=expr" (the command-line form).
int io_catalog_derive_spec(io_catalog *cat, const char *spec);

// Append the numeric columns of another table (an `id` column, e.g. what
// `galnn embed` writes) matched by id; rows without a match get NaN (null).
// A column name the catalog has already is an error. *matched: rows found.
int io_catalog_join(io_catalog *cat, const char *path, size_t *matched);
// Null rules: mask (set to NaN, count as null) the values of the numeric
// columns matching pattern — a name, a prefix ending in '*' ("flux_*"), or "*"
// for every numeric column but id and split — that match any term of rules:
// "99, -99, -9999" (equal to), "<=0", "<0", ">=100", ">100". An unknown column
// or a malformed term is an error naming it. *masked (may be NULL): values masked.
int io_catalog_null_rule(io_catalog *cat, const char *pattern, const char *rules, size_t *masked);
// One line per column with nulls: "  mag_u: 12 null(s) masked".
void io_catalog_report_nulls(const io_catalog *cat, void (*print)(void *user, const char *line), void *user);

// ---- joining by id ----
// An index of the `id` column: io_id_find gives the row of an id, or -1.
typedef struct io_id_index {
    const io_catalog *cat;
    uint32_t *slot; // open addressing, row + 1 (0 = empty)
    size_t cap;
} io_id_index;
int io_id_index_build(const io_catalog *cat,
                      io_id_index *ix); // error on a missing id column or a duplicate id
long io_id_find(const io_id_index *ix, const char *id);
void io_id_index_free(io_id_index *ix);

// ---- splits ----
enum { IO_SPLIT_TRAIN = 0, IO_SPLIT_VAL = 1, IO_SPLIT_TEST = 2, IO_SPLIT_NONE = 3 };
const char *io_split_name(int split);
int io_split_parse(const char *s); // train/val/validation/test (any case); -1 otherwise
// Deterministic split from the id alone (FNV-1a 64 of the id bytes, then the
// splitmix64 finaliser): u = hash / 2^64; train if u < f_train, val if u < f_train + f_val, else test.
int io_split_from_id(const char *id, double f_train, double f_val);
// Fill split[n_rows]: from the `split` column when present (an unknown value
// is an error naming the row), else from the id hash.
int io_catalog_splits(const io_catalog *cat, double f_train, double f_val, uint8_t *split);

uint64_t io_fnv1a(const void *data, size_t n, uint64_t h);
#define IO_FNV_INIT 0xcbf29ce484222325ULL

#endif
