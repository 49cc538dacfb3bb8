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

// Threads for OpenMP loops and OpenBLAS. n <= 0: gn_default_threads().
void gn_set_threads(int n);
int gn_threads(void);
// The calling thread's own thread count from here on (n <= 0: back to gn_set_threads'): for work that runs
// on each thread of a team at once, one team member per job (nn_ctx_workers).
void gn_threads_local(int n);
// The cores this process may use: its CPU affinity, capped by a cgroup CPU quota (containers, Slurm), and
// divided among the MPI ranks on the node when they are not bound to cores of their own.
int gn_default_threads(void);
// Whole cores of a cgroup v2 cpu.max text ("150000 100000" -> 2; "max 100000" or junk -> 0: no quota).
int gn_cpu_quota(const char *cpu_max);
// First thing in main: OpenMP threads that wait a bounded spin, then sleep (GN_SPINCOUNT), unless the
// user set OMP_WAIT_POLICY or GOMP_SPINCOUNT; restarts the program once to apply it (argv: main's).
#define GN_SPINCOUNT "4000"
void gn_runtime_init(char **argv);

// Allocation that records an error message on failure (never aborts).
void *gn_malloc(size_t n);
void *gn_calloc(size_t count, size_t size);
void *gn_realloc(void *p, size_t n);
char *gn_strdup(const char *s);

// Seconds on a monotonic clock (for timings and progress).
double gn_now(void);

#define GN_VERSION "0.1.0"

#endif
