// galnn common header: status codes, the error buffer, thread settings and
// checked allocation. nn/ and stats/ depend on nothing else of ours.
#ifndef GN_COMMON_H
#define GN_COMMON_H

#include <stddef.h>

enum {
    GN_OK = 0,
    GN_EINVAL = -1,  // bad argument, wrong shape
    GN_ENOMEM = -2,  // allocation failed
    GN_EIO = -3,     // read/write failure
    GN_EFORMAT = -4, // malformed or corrupt file
};

// Set the thread-local error message (printf-style) and return `code`.
int gn_err(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// Prefix the current message with more context ("file.npz: " + old message).
int gn_err_prefix(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *gn_errmsg(void);
void gn_err_clear(void);

// Threads for OpenMP loops and OpenBLAS. n <= 0 means all cores.
void gn_set_threads(int n);
int gn_threads(void);

// Allocation that records an error message on failure (never aborts).
void *gn_malloc(size_t n);
void *gn_calloc(size_t count, size_t size);
void *gn_realloc(void *p, size_t n);
char *gn_strdup(const char *s);

// Seconds on a monotonic clock (for timings and progress).
double gn_now(void);

#define GN_VERSION "0.1.0"

#endif
