#define _GNU_SOURCE // sched_getaffinity, CPU_COUNT
#include "gn_common.h"

#include <cblas.h>
#include <sched.h>
#include <math.h>
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
static _Thread_local int local_threads; // this thread's own cap (gn_threads_local), 0: none

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

int gn_cpu_quota(const char *cpu_max) {
    double quota, period;
    if (!cpu_max || sscanf(cpu_max, "%lf %lf", &quota, &period) != 2) return 0;
    if (!(quota > 0) || !(period > 0)) return 0;
    int n = (int)ceil(quota / period - 1e-9);
    return n > 0 ? n : 1;
}

// The first line of a small file (empty on failure).
static void first_line(const char *path, char *buf, size_t len) {
    buf[0] = 0;
    FILE *f = fopen(path, "r");
    if (!f) return;
    if (!fgets(buf, (int)len, f)) buf[0] = 0;
    fclose(f);
}

// A cgroup CPU quota in whole cores (0: none): cgroup v2's cpu.max of this process's group (or of the
// root the container sees), else cgroup v1's cfs quota and period.
static int cgroup_cores(void) {
    char line[512], path[700], v[128], p1[64];
    first_line("/proc/self/cgroup", line, sizeof line); // v2: "0::/the/group"
    line[strcspn(line, "\n")] = 0;
    if (!strncmp(line, "0::", 3)) {
        snprintf(path, sizeof path, "/sys/fs/cgroup%s/cpu.max", line + 3);
        first_line(path, v, sizeof v);
        if (gn_cpu_quota(v)) return gn_cpu_quota(v);
    }
    first_line("/sys/fs/cgroup/cpu.max", v, sizeof v);
    if (gn_cpu_quota(v)) return gn_cpu_quota(v);
    first_line("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", v, sizeof v);
    first_line("/sys/fs/cgroup/cpu/cpu.cfs_period_us", p1, sizeof p1);
    char both[200];
    v[strcspn(v, "\n")] = 0;
    snprintf(both, sizeof both, "%s %s", v, p1);
    return gn_cpu_quota(both);
}

int gn_default_threads(void) {
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    int n = online > 0 ? (int)online : 1;
    cpu_set_t set;
    if (!sched_getaffinity(0, sizeof set, &set) && CPU_COUNT(&set) > 0) n = CPU_COUNT(&set);
    int q = cgroup_cores();
    if (q > 0 && q < n) n = q;
    // ranks that share a node without being bound to their own cores share its cores
    const char *ls = getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
    if (!ls) ls = getenv("MPI_LOCALNRANKS");
    int ranks = ls ? atoi(ls) : 1;
    if (ranks > 1 && n == online) n = n / ranks > 0 ? n / ranks : 1;
    return n;
}

void gn_runtime_init(char **argv) {
    // libgomp reads its waiting policy when it loads, before main: where the user chose none, galnn
    // chooses a short spin (then sleep) and starts itself again once. Waiting threads that spin for
    // milliseconds (libgomp's default) take the cores of every other job on the machine.
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT") || !argv) return;
    if (setenv("GOMP_SPINCOUNT", GN_SPINCOUNT, 1)) return;
    execv("/proc/self/exe", argv);
    unsetenv("GOMP_SPINCOUNT"); // could not restart: the defaults stay
}

void gn_set_threads(int n) {
    if (n <= 0) n = gn_default_threads();
    n_threads = n;
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
    openblas_set_num_threads(n);
}

int gn_threads(void) {
    if (local_threads) return local_threads;
    if (n_threads == 0) gn_set_threads(0);
    return n_threads;
}

void gn_threads_local(int n) {
    local_threads = n > 0 ? n : 0;
#ifdef _OPENMP
    omp_set_num_threads(n > 0 ? n : gn_threads()); // this thread's nested regions
#endif
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
