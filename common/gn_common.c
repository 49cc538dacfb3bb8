#include "gn_common.h"

#include <cblas.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static _Thread_local char errbuf[1024];
static int n_threads = 0; // 0: not yet set

int gn_err(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, sizeof errbuf, fmt, ap);
    va_end(ap);
    return code;
}

int gn_err_prefix(int code, const char *fmt, ...) {
    char old[sizeof errbuf], pre[512];
    memcpy(old, errbuf, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    snprintf(errbuf, sizeof errbuf, "%s%s", pre, old);
    return code;
}

const char *gn_errmsg(void) { return errbuf[0] ? errbuf : "unknown error"; }
void gn_err_clear(void) { errbuf[0] = 0; }

void gn_set_threads(int n) {
    if (n <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n = c > 0 ? (int)c : 1;
    }
    n_threads = n;
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
    openblas_set_num_threads(n);
}

int gn_threads(void) {
    if (n_threads == 0) gn_set_threads(0);
    return n_threads;
}

void *gn_malloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) gn_err(GN_ENOMEM, "out of memory allocating %zu bytes", n);
    return p;
}

void *gn_calloc(size_t count, size_t size) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) gn_err(GN_ENOMEM, "out of memory allocating %zu x %zu bytes", count, size);
    return p;
}

void *gn_realloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) gn_err(GN_ENOMEM, "out of memory reallocating %zu bytes", n);
    return q;
}

char *gn_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = gn_malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

double gn_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}
