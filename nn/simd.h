// 8-lane float vectors (GCC/Clang vector extensions) for the hot loops of the
// convolution transforms and batch norm. Plain adds/multiplies only: with
// ISO C's -ffp-contract=off the results do not depend on the instruction set
// the compiler picks (two SSE halves or one AVX register).
#ifndef NN_SIMD_H
#define NN_SIMD_H

#include <string.h>

typedef float v8 __attribute__((vector_size(32)));
typedef int v8i __attribute__((vector_size(32)));
typedef float v16 __attribute__((vector_size(64))); // two 8-lane vectors side by side (nn/ops_winograd.c)

// Hot kernels are compiled three times, for AVX-512 (x86-64-v4), AVX2 and the baseline x86-64 ISA, and the
// loader picks one for the CPU at hand (GCC function multiversioning). The arithmetic is the same in all,
// so the results are too. The AVX-512 copy keeps the same 8-lane vectors but has 32 registers instead of
// 16: a 6 x 6 Winograd tile of vectors stays in registers (AMD Zen 5, the multi-branch ResNet's
// image-vector transforms: 40 % less time, inference +5-7 % in alternated runs).
// (NN_MAX_ISA_AVX2, make bench: the copies an AVX2 machine takes, on any CPU.)
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#ifdef NN_MAX_ISA_AVX2
#define NN_SIMD_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define NN_SIMD_CLONES __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#endif
#else
#define NN_SIMD_CLONES
#endif

// Helpers of the cloned kernels: inlined into each clone (an outlined copy is compiled for the baseline ISA
// only: SSE2 halves for every vector).
#define NN_INLINE static inline __attribute__((always_inline))

// Macros, not functions: passing 32-byte vectors by value depends on the ISA's ABI.
#define v8_load(p) (__extension__({ v8 v_; memcpy(&v_, (p), sizeof v_); v_; }))
#define v8_store(p, v) (__extension__({ v8 v_ = (v); memcpy((p), &v_, sizeof v_); }))
#define v8_set1(s) ((v8){(s), (s), (s), (s), (s), (s), (s), (s)})
#define v16_load(p) (__extension__({ v16 v_; memcpy(&v_, (p), sizeof v_); v_; }))
#define v16_store(p, v) (__extension__({ v16 v_ = (v); memcpy((p), &v_, sizeof v_); }))
// lanes 0-7 from p0, 8-15 from p1; and back (register shuffles: halves through memory would stall the
// load on two smaller stores)
#define v16_load2(p0, p1)                                                                                    \
    __builtin_shufflevector(v8_load(p0), v8_load(p1), 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
#define v16_lo(v) __builtin_shufflevector((v), (v), 0, 1, 2, 3, 4, 5, 6, 7)
#define v16_hi(v) __builtin_shufflevector((v), (v), 8, 9, 10, 11, 12, 13, 14, 15)
#define v16_store2(p0, p1, v)                                                                                \
    (__extension__({                                                                                         \
        v16 w_ = (v);                                                                                        \
        v8_store((p0), v16_lo(w_)), v8_store((p1), v16_hi(w_));                                              \
    }))
// v where mask m is set, else 0 (m from a vector comparison: all bits or none)
#define v8_and(v, m) ((v8)((v8i)(v) & (m)))
#define v8_relu(v) (__extension__({ v8 r_ = (v); v8_and(r_, r_ > v8_set1(0.0f)); }))
// batch norm's affine map (x - mean) * inv * gamma + beta, in the one order every path uses (the same bits:
// the forward, its recompute, a conv's deferred input, backward's ReLU mask); on v8 values or floats
#define NN_BN_MAP(x, m, i, g, b) (((x) - (m)) * (i) * (g) + (b))
#define NN_BN_MAP8(x, q) NN_BN_MAP((x), v8_set1((q)[0]), v8_set1((q)[1]), v8_set1((q)[2]), v8_set1((q)[3]))
// the lanes' sum in double, lane 0 first
#define v8_hsum(v)                                                                                           \
    (__extension__({                                                                                         \
        v8 h_ = (v);                                                                                         \
        double s_ = 0;                                                                                       \
        for (int l_ = 0; l_ < 8; l_++) s_ += h_[l_];                                                         \
        s_;                                                                                                  \
    }))

#endif
