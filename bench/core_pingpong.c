// The round trip of one cache line between two threads pinned to the process's first two CPUs: how far
// apart the two cores' caches are. On a virtual machine the hypervisor may move the vCPUs between
// physical cores from minute to minute; make bench prints this next to the training figures, which depend
// on it (README, Benchmark: threads that split each layer pass data between the two caches, a team of
// threads does not). AMD EPYC (Zen 5), 2 vCPUs: 100-165 ns sharing a CCX and its L3, 400-480 ns apart.
//   usage: core_pingpong [round trips]   (default 200000; prints the median of 5 runs)
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "../common/gn_common.h"

static _Alignas(64) atomic_int ball;
static long trips = 200000;

static int pin(int cpu) {
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    return pthread_setaffinity_np(pthread_self(), sizeof s, &s);
}

static int cpus[2];
static void *partner(void *arg) {
    (void)arg;
    pin(cpus[1]);
    for (long i = 0; i < trips; i++) {
        while (atomic_load_explicit(&ball, memory_order_acquire) != 1) {}
        atomic_store_explicit(&ball, 0, memory_order_release);
    }
    return NULL;
}

// One run: nanoseconds per round trip, or < 0 if the thread could not start.
static double run(void) {
    pthread_t t;
    atomic_store(&ball, 0);
    if (pthread_create(&t, NULL, partner, NULL)) return -1;
    double t0 = gn_now();
    for (long i = 0; i < trips; i++) {
        atomic_store_explicit(&ball, 1, memory_order_release);
        while (atomic_load_explicit(&ball, memory_order_acquire) != 0) {}
    }
    double dt = gn_now() - t0;
    pthread_join(t, NULL);
    return 1e9 * dt / (double)trips;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc > 1) trips = atol(argv[1]) > 0 ? atol(argv[1]) : trips;
    cpu_set_t s;
    int n = 0;
    if (sched_getaffinity(0, sizeof s, &s) == 0)
        for (int c = 0; c < CPU_SETSIZE && n < 2; c++)
            if (CPU_ISSET(c, &s)) cpus[n++] = c;
    if (n < 2) return printf("core_pingpong: fewer than 2 CPUs allowed: nothing to measure\n"), 0;
    cpu_set_t all = s;
    if (pin(cpus[0])) return fprintf(stderr, "core_pingpong: cannot pin to CPU %d\n", cpus[0]), 1;
    double r[5];
    for (int k = 0; k < 5; k++)
        if ((r[k] = run()) < 0) return fprintf(stderr, "core_pingpong: cannot start a thread\n"), 1;
    pthread_setaffinity_np(pthread_self(), sizeof all, &all);
    qsort(r, 5, sizeof r[0], cmp);
    printf("core_pingpong %.0f ns round trip of a cache line between CPUs %d and %d (median of 5; "
           "%.0f-%.0f)\n",
           r[2], cpus[0], cpus[1], r[0], r[4]);
    return 0;
}
