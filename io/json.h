// A small JSON reader for the summaries galnn writes (metrics.json,
// summary.json, pid.json) so `galnn analyze` can assemble its report:
// RFC 8259 values into a tree; numbers as doubles, strings with \uXXXX
// escapes decoded to UTF-8. Errors name the file and line.
#ifndef IO_JSON_H
#define IO_JSON_H

#include <stddef.h>

enum { IO_JSON_NULL = 0, IO_JSON_BOOL, IO_JSON_NUM, IO_JSON_STR, IO_JSON_ARR, IO_JSON_OBJ };

typedef struct io_json {
    int type;
    double num;            // NUM; BOOL: 0 / 1
    char *str;             // STR
    char *key;             // member name inside an object
    int n;                 // ARR / OBJ: children
    struct io_json *kids;
} io_json;

int io_json_parse(const char *text, size_t len, const char *name, io_json *out);
int io_json_read(const char *path, io_json *out);
void io_json_free(io_json *j);
// Member `key` of an object (NULL if j is not an object or has no such member).
const io_json *io_json_get(const io_json *j, const char *key);
// Follow keys (NULL-terminated) from j; NULL if any step is missing.
const io_json *io_json_path(const io_json *j, ...);
// The number at j (or element i of an array j, i >= 0); NaN if absent or not a number.
double io_json_num(const io_json *j, int i);

// Writing: a number as JSON in the printf format fmt ("%.6g"), or null when it
// is not finite (NaN, inf: no JSON reader accepts them).
#include <stdio.h>
void io_json_put_num(FILE *f, const char *fmt, double v);
// `, "key": v` (v as io_json_put_num).
void io_json_put_kv(FILE *f, const char *key, const char *fmt, double v);

#endif
