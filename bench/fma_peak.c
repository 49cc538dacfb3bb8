// make bench: the machine's single-precision FMA peak, the physical limit the other figures are a fraction
// of. Independent chains of fused multiply-adds on every thread, with the widest vectors the CPU has
// (chosen at run time: AVX-512, else AVX2 + FMA, else plain C; `fma_peak THREADS avx2|c` forces a narrower
// path); prints "fma_peak GFLOPS ... (ISA, THREADS)".
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/gn_common.h"

#define CHAINS 12 // more independent accumulators than FMA units x latency, so the units never wait

__attribute__((target("avx512f"))) static float run512(long iters) {
    __m512 acc[CHAINS], a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    for (int k = 0; k < CHAINS; k++) acc[k] = _mm512_set1_ps((float)k);
    for (long i = 0; i < iters; i++)
#pragma GCC unroll 16 // the accumulators live in registers only when the loop is unrolled
        for (int k = 0; k < CHAINS; k++) acc[k] = _mm512_fmadd_ps(acc[k], a, b);
    float s = 0;
    for (int k = 0; k < CHAINS; k++) s += _mm512_reduce_add_ps(acc[k]);
    return s;
}

__attribute__((target("avx2,fma"))) static float run256(long iters) {
    __m256 acc[CHAINS], a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    for (int k = 0; k < CHAINS; k++) acc[k] = _mm256_set1_ps((float)k);
    for (long i = 0; i < iters; i++)
#pragma GCC unroll 16
        for (int k = 0; k < CHAINS; k++) acc[k] = _mm256_fmadd_ps(acc[k], a, b);
    float s = 0, v[8];
    for (int k = 0; k < CHAINS; k++) {
        _mm256_storeu_ps(v, acc[k]);
        for (int j = 0; j < 8; j++) s += v[j];
    }
    return s;
}

static float run_c(long iters) {
    float acc[CHAINS], a = 0.999999f, b = 1e-7f, s = 0;
    for (int k = 0; k < CHAINS; k++) acc[k] = (float)k;
    for (long i = 0; i < iters; i++)
#pragma GCC unroll 16
        for (int k = 0; k < CHAINS; k++) acc[k] = acc[k] * a + b;
    for (int k = 0; k < CHAINS; k++) s += acc[k];
    return s;
}

int main(int argc, char **argv) {
    gn_runtime_init(argv);
    if (argc > 1) gn_set_threads(atoi(argv[1]));
    __builtin_cpu_init();
    int lanes = __builtin_cpu_supports("avx512f")                                 ? 16
                : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 8
                                                                                  : 1;
    if (argc > 2) { // fma_peak THREADS avx2|c: a narrower path than the CPU's widest, to measure each
        int want = !strcmp(argv[2], "c") ? 1 : !strcmp(argv[2], "avx2") ? 8 : 16;
        lanes = want < lanes ? want : lanes;
    }
    const char *isa = lanes == 16 ? "AVX-512" : lanes == 8 ? "AVX2+FMA" : "scalar";
    long iters = lanes == 1 ? 20000000L : 50000000L;
    double best = 0;
    volatile float sink = 0;
    for (int rep = 0; rep < 3; rep++) { // best of 3: the machine's speed wanders
        double t0 = gn_now();
#pragma omp parallel reduction(+ : sink)
        sink += lanes == 16 ? run512(iters) : lanes == 8 ? run256(iters) : run_c(iters);
        double t = gn_now() - t0, gf = 2.0 * CHAINS * lanes * (double)iters * gn_threads() / t * 1e-9;
        best = gf > best ? gf : best;
    }
    printf("fma_peak %.1f GFLOP/s single precision (%s, %d threads)\n", best, isa, gn_threads());
    return sink == 12345.0f; // keeps the loops
}
