// Small row-major matrix products (nn/gemm.h). The AVX2+FMA kernels keep a
// block of C in registers for the whole K loop and read A and B where they
// are: 6 x 16 blocks of C (12 accumulators) for C = op(A) B; C += A B^T by 3 x 4
// dot products along K (12 accumulators, summed across lanes at the end), or
// where K is short by the C = A B kernels on panels of B transposed. The block
// loops run columns outer, rows inner, so that a 16-wide panel of B stays in L1
// while the rows of A stream past it.
#include "gemm.h"

#include <cblas.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define NN_GEMM_X86 1
#define GEMM_K static inline __attribute__((always_inline, target("avx2,fma")))
#define GEMM_F __attribute__((target("avx2,fma")))

// lanes [0, rem) set
GEMM_K __m256i lanes_below(int rem) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(rem), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// C[0:R, 0:8*NV] = op(A)[0:R, :] B[:, 0:8*NV]; the last vector masked to `rem` lanes if masked. Row k of B is
// B + k*ldb, or Bk[k] + j where Bk is given (the rows anywhere: nn_gemm_small_ind).
GEMM_K void nn_block(int R, int NV, int ta, int masked, int rem, int K, const float *A, int lda,
                     const float *B, int ldb, const float *const *Bk, int j, float *C, int ldc, int add) {
    __m256i mask = lanes_below(rem);
    __m256 acc[6][2];
    _Pragma("GCC unroll 6") for (int r = 0; r < R; r++) _Pragma("GCC unroll 2") for (int v = 0; v < NV; v++)
        acc[r][v] = _mm256_setzero_ps();
    for (int k = 0; k < K; k++) {
        const float *b = Bk ? Bk[k] + j : B + (size_t)k * ldb;
        __m256 bv[2];
        _Pragma("GCC unroll 2") for (int v = 0; v < NV; v++) bv[v] =
            masked && v == NV - 1 ? _mm256_maskload_ps(b + 8 * v, mask) : _mm256_loadu_ps(b + 8 * v);
        _Pragma("GCC unroll 6") for (int r = 0; r < R; r++) {
            __m256 a = _mm256_broadcast_ss(ta ? A + (size_t)k * lda + r : A + (size_t)r * lda + k);
            _Pragma("GCC unroll 2") for (int v = 0; v < NV; v++) acc[r][v] =
                _mm256_fmadd_ps(a, bv[v], acc[r][v]);
        }
    }
    _Pragma("GCC unroll 6") for (int r = 0; r < R; r++) _Pragma("GCC unroll 2") for (int v = 0; v < NV; v++) {
        float *c = C + (size_t)r * ldc + 8 * v;
        if (masked && v == NV - 1)
            _mm256_maskstore_ps(c, mask,
                                add ? _mm256_add_ps(_mm256_maskload_ps(c, mask), acc[r][v]) : acc[r][v]);
        else
            _mm256_storeu_ps(c, add ? _mm256_add_ps(_mm256_loadu_ps(c), acc[r][v]) : acc[r][v]);
    }
}

#define NN_ROWS(NV, TA, MASKED, BK)                                                                          \
    switch (R) {                                                                                             \
    case 6: nn_block(6, NV, TA, MASKED, rem, K, a, lda, b, ldb, BK, j, c, ldc, add); break;                  \
    case 5: nn_block(5, NV, TA, MASKED, rem, K, a, lda, b, ldb, BK, j, c, ldc, add); break;                  \
    case 4: nn_block(4, NV, TA, MASKED, rem, K, a, lda, b, ldb, BK, j, c, ldc, add); break;                  \
    case 3: nn_block(3, NV, TA, MASKED, rem, K, a, lda, b, ldb, BK, j, c, ldc, add); break;                  \
    case 2: nn_block(2, NV, TA, MASKED, rem, K, a, lda, b, ldb, BK, j, c, ldc, add); break;                  \
    default: nn_block(1, NV, TA, MASKED, rem, K, a, lda, b, ldb, BK, j, c, ldc, add);                        \
    }

// Bk given (ta = 0): row k of B is Bk[k]; add: C += the product
GEMM_F static void gemm_nn_fma(int ta, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                               const float *const *Bk, float *C, int ldc, int add) {
    for (int j = 0; j < N; j += 16) {
        int nc = N - j < 16 ? N - j : 16, nv = (nc + 7) / 8, rem = nc - 8 * (nv - 1), masked = rem < 8;
        for (int i = 0; i < M; i += 6) {
            int R = M - i < 6 ? M - i : 6;
            const float *a = ta ? A + i : A + (size_t)i * lda, *b = Bk ? NULL : B + j;
            float *c = C + (size_t)i * ldc + j;
            if (Bk) {
                if (nv == 2) {
                    if (masked) NN_ROWS(2, 0, 1, Bk) else NN_ROWS(2, 0, 0, Bk)
                } else {
                    if (masked) NN_ROWS(1, 0, 1, Bk) else NN_ROWS(1, 0, 0, Bk)
                }
            } else if (nv == 2) {
                if (ta) {
                    if (masked) NN_ROWS(2, 1, 1, NULL) else NN_ROWS(2, 1, 0, NULL)
                } else {
                    if (masked) NN_ROWS(2, 0, 1, NULL) else NN_ROWS(2, 0, 0, NULL)
                }
            } else {
                if (ta) {
                    if (masked) NN_ROWS(1, 1, 1, NULL) else NN_ROWS(1, 1, 0, NULL)
                } else {
                    if (masked) NN_ROWS(1, 0, 1, NULL) else NN_ROWS(1, 0, 0, NULL)
                }
            }
        }
    }
}

// The same products with AVX-512: 12 x 32 blocks of C (24 accumulators), the last 16-lane vector of a
// block masked. Each element of C is the same chain of fused multiply-adds over k as in the AVX2 kernel,
// so the two give identical bits.
#define GEMM512_K static inline __attribute__((always_inline, target("avx512f")))
#define GEMM512_F __attribute__((target("avx512f")))

GEMM512_K void nn_block16(int R, int NV, int ta, __mmask16 mask, int K, const float *A, int lda,
                          const float *B, int ldb, const float *const *Bk, int j, float *C, int ldc,
                          int add, const float *an, int rn) {
    __m512 acc[12][2];
    _Pragma("GCC unroll 12") for (int r = 0; r < R; r++) _Pragma("GCC unroll 2") for (int v = 0; v < NV; v++)
        acc[r][v] = _mm512_setzero_ps();
    for (int k = 0; k < K; k++) {
        if (!(k & 15)) // the next block's rows of A into L2 (from memory, the stride defeats the prefetcher)
            for (int r = 0; r < rn; r++) _mm_prefetch((const char *)(an + (size_t)r * lda + k), _MM_HINT_T1);
        const float *b = Bk ? Bk[k] + j : B + (size_t)k * ldb;
        __m512 bv[2];
        _Pragma("GCC unroll 2") for (int v = 0; v < NV; v++) bv[v] =
            v == NV - 1 ? _mm512_maskz_loadu_ps(mask, b + 16 * v) : _mm512_loadu_ps(b + 16 * v);
        _Pragma("GCC unroll 12") for (int r = 0; r < R; r++) {
            __m512 a = _mm512_set1_ps(ta ? A[(size_t)k * lda + r] : A[(size_t)r * lda + k]);
            _Pragma("GCC unroll 2") for (int v = 0; v < NV; v++) acc[r][v] =
                _mm512_fmadd_ps(a, bv[v], acc[r][v]);
        }
    }
    _Pragma("GCC unroll 12") for (int r = 0; r < R; r++) {
        _Pragma("GCC unroll 2") for (int v = 0; v < NV; v++) {
            float *c = C + (size_t)r * ldc + 16 * v;
            if (v == NV - 1)
                _mm512_mask_storeu_ps(
                    c, mask, add ? _mm512_add_ps(_mm512_maskz_loadu_ps(mask, c), acc[r][v]) : acc[r][v]);
            else
                _mm512_storeu_ps(c, add ? _mm512_add_ps(_mm512_loadu_ps(c), acc[r][v]) : acc[r][v]);
        }
    }
}

#define NN_ROWS16(NV, TA, BK)                                                                               \
    switch (R) {                                                                                             \
    case 12: nn_block16(12, NV, TA, mask, K, a, lda, b, ldb, BK, j, c, ldc, add, an, rn); break;             \
    case 11: nn_block16(11, NV, TA, mask, K, a, lda, b, ldb, BK, j, c, ldc, add, an, rn); break;             \
    case 10: nn_block16(10, NV, TA, mask, K, a, lda, b, ldb, BK, j, c, ldc, add, an, rn); break;             \
    case 9: nn_block16(9, NV, TA, mask, K, a, lda, b, ldb, BK, j, c, ldc, add, an, rn); break;               \
    case 8: nn_block16(8, NV, TA, mask, K, a, lda, b, ldb, BK, j, c, ldc, add, an, rn); break;               \
    case 7: nn_block16(7, NV, TA, mask, K, a, lda, b, ldb, BK, j, c, ldc, add, an, rn); break;               \
    case 6: nn_block16(6, NV, TA, mask, K, a, lda, b, ldb, BK, j, c, ldc, add, an, rn); break;               \
    case 5: nn_block16(5, NV, TA, mask, K, a, lda, b, ldb, BK, j, c, ldc, add, an, rn); break;               \
    case 4: nn_block16(4, NV, TA, mask, K, a, lda, b, ldb, BK, j, c, ldc, add, an, rn); break;               \
    case 3: nn_block16(3, NV, TA, mask, K, a, lda, b, ldb, BK, j, c, ldc, add, an, rn); break;               \
    case 2: nn_block16(2, NV, TA, mask, K, a, lda, b, ldb, BK, j, c, ldc, add, an, rn); break;               \
    default: nn_block16(1, NV, TA, mask, K, a, lda, b, ldb, BK, j, c, ldc, add, an, rn);                     \
    }

GEMM512_F static void gemm_nn_avx512(int ta, int M, int N, int K, const float *A, int lda, const float *B,
                                     int ldb, const float *const *Bk, float *C, int ldc, int add) {
    for (int j = 0; j < N; j += 32) {
        int nc = N - j < 32 ? N - j : 32, nv = (nc + 15) / 16, rem = nc - 16 * (nv - 1);
        __mmask16 mask = (__mmask16)((1u << rem) - 1);
        for (int i = 0; i < M; i += 12) {
            int R = M - i < 12 ? M - i : 12, rn = ta || M - i <= 12 ? 0 : M - i - 12 < 12 ? M - i - 12 : 12;
            const float *a = ta ? A + i : A + (size_t)i * lda, *b = Bk ? NULL : B + j,
                        *an = a + (size_t)12 * lda;
            float *c = C + (size_t)i * ldc + j;
            if (Bk) {
                if (nv == 2) NN_ROWS16(2, 0, Bk) else NN_ROWS16(1, 0, Bk)
            } else if (nv == 2) {
                if (ta) NN_ROWS16(2, 1, NULL) else NN_ROWS16(2, 0, NULL)
            } else {
                if (ta) NN_ROWS16(1, 1, NULL) else NN_ROWS16(1, 0, NULL)
            }
        }
    }
}

// the sums of four vectors' lanes, in one 4-vector
GEMM_K __m128 hsum4(__m256 a, __m256 b, __m256 c, __m256 d) {
    __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
    return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

// C[0:R, 0:S] += A[0:R, :] B[0:S, :]^T, S <= 4 columns (rows of B past S repeat row S-1, their sums dropped)
GEMM_K void nt_block(int R, int S, int K, const float *A, int lda, const float *B, int ldb, float *C,
                     int ldc) {
    const float *b[4];
    for (int s = 0; s < 4; s++) b[s] = B + (size_t)(s < S ? s : S - 1) * ldb;
    __m256 acc[3][4];
    _Pragma("GCC unroll 3") for (int r = 0; r < R; r++) _Pragma("GCC unroll 4") for (int s = 0; s < 4; s++)
        acc[r][s] = _mm256_setzero_ps();
    int k = 0;
    for (; k + 8 <= K; k += 8) {
        __m256 bv[4];
        _Pragma("GCC unroll 4") for (int s = 0; s < 4; s++) bv[s] = _mm256_loadu_ps(b[s] + k);
        _Pragma("GCC unroll 3") for (int r = 0; r < R; r++) {
            __m256 a = _mm256_loadu_ps(A + (size_t)r * lda + k);
            _Pragma("GCC unroll 4") for (int s = 0; s < 4; s++) acc[r][s] =
                _mm256_fmadd_ps(a, bv[s], acc[r][s]);
        }
    }
    if (k < K) { // both operands masked: the lanes past K may hold anything
        __m256i mask = lanes_below(K - k);
        __m256 bv[4];
        _Pragma("GCC unroll 4") for (int s = 0; s < 4; s++) bv[s] = _mm256_maskload_ps(b[s] + k, mask);
        _Pragma("GCC unroll 3") for (int r = 0; r < R; r++) {
            __m256 a = _mm256_maskload_ps(A + (size_t)r * lda + k, mask);
            _Pragma("GCC unroll 4") for (int s = 0; s < 4; s++) acc[r][s] =
                _mm256_fmadd_ps(a, bv[s], acc[r][s]);
        }
    }
    _Pragma("GCC unroll 3") for (int r = 0; r < R; r++) {
        float *c = C + (size_t)r * ldc;
        __m128 sum = hsum4(acc[r][0], acc[r][1], acc[r][2], acc[r][3]);
        if (S == 4)
            _mm_storeu_ps(c, _mm_add_ps(_mm_loadu_ps(c), sum));
        else {
            float t[4];
            _mm_storeu_ps(t, sum);
            for (int s = 0; s < S; s++) c[s] += t[s];
        }
    }
}

GEMM_F static void gemm_nt_acc_fma(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                                   float *C, int ldc) {
    for (int j = 0; j < N; j += 4) {
        int S = N - j < 4 ? N - j : 4;
        for (int i = 0; i < M; i += 3) {
            int R = M - i < 3 ? M - i : 3;
            const float *a = A + (size_t)i * lda, *b = B + (size_t)j * ldb;
            float *c = C + (size_t)i * ldc + j;
            if (S == 4) {
                if (R == 3)
                    nt_block(3, 4, K, a, lda, b, ldb, c, ldc);
                else if (R == 2)
                    nt_block(2, 4, K, a, lda, b, ldb, c, ldc);
                else
                    nt_block(1, 4, K, a, lda, b, ldb, c, ldc);
            } else {
                if (R == 3)
                    nt_block(3, S, K, a, lda, b, ldb, c, ldc);
                else if (R == 2)
                    nt_block(2, S, K, a, lda, b, ldb, c, ldc);
                else
                    nt_block(1, S, K, a, lda, b, ldb, c, ldc);
            }
        }
    }
}

// C[0:R, 0:S] += A[0:R, :] B[0:S, :]^T with AVX-512, R <= 6: each 16-lane vector holds two of the AVX2
// kernel's 8-lane dot products (columns s, s + 1 of row r) and runs the same chains of fused
// multiply-adds, summed across lanes by the same hsum4, so the two kernels give identical bits.
#define GEMM512DQ_K static inline __attribute__((always_inline, target("avx2,fma,avx512f,avx512dq")))
GEMM512DQ_K __m512 pair256(__m256 lo, __m256 hi) {
    return _mm512_insertf32x8(_mm512_castps256_ps512(lo), hi, 1);
}

GEMM512DQ_K void nt_block16(int R, int S, int K, const float *A, int lda, const float *B, int ldb, float *C,
                            int ldc) {
    const float *b[4];
    for (int s = 0; s < 4; s++) b[s] = B + (size_t)(s < S ? s : S - 1) * ldb;
    __m512 acc[6][2];
    _Pragma("GCC unroll 6") for (int r = 0; r < R; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    int k = 0;
    for (; k + 8 <= K; k += 8) {
        __m512 b01 = pair256(_mm256_loadu_ps(b[0] + k), _mm256_loadu_ps(b[1] + k));
        __m512 b23 = pair256(_mm256_loadu_ps(b[2] + k), _mm256_loadu_ps(b[3] + k));
        _Pragma("GCC unroll 6") for (int r = 0; r < R; r++) {
            __m512 a = _mm512_broadcast_f32x8(_mm256_loadu_ps(A + (size_t)r * lda + k));
            acc[r][0] = _mm512_fmadd_ps(a, b01, acc[r][0]), acc[r][1] = _mm512_fmadd_ps(a, b23, acc[r][1]);
        }
    }
    if (k < K) { // both operands masked: the lanes past K may hold anything
        __m256i mask = lanes_below(K - k);
        __m512 b01 = pair256(_mm256_maskload_ps(b[0] + k, mask), _mm256_maskload_ps(b[1] + k, mask));
        __m512 b23 = pair256(_mm256_maskload_ps(b[2] + k, mask), _mm256_maskload_ps(b[3] + k, mask));
        _Pragma("GCC unroll 6") for (int r = 0; r < R; r++) {
            __m512 a = _mm512_broadcast_f32x8(_mm256_maskload_ps(A + (size_t)r * lda + k, mask));
            acc[r][0] = _mm512_fmadd_ps(a, b01, acc[r][0]), acc[r][1] = _mm512_fmadd_ps(a, b23, acc[r][1]);
        }
    }
    _Pragma("GCC unroll 6") for (int r = 0; r < R; r++) {
        float *c = C + (size_t)r * ldc;
        __m128 sum = hsum4(_mm512_castps512_ps256(acc[r][0]), _mm512_extractf32x8_ps(acc[r][0], 1),
                           _mm512_castps512_ps256(acc[r][1]), _mm512_extractf32x8_ps(acc[r][1], 1));
        if (S == 4)
            _mm_storeu_ps(c, _mm_add_ps(_mm_loadu_ps(c), sum));
        else {
            float t[4];
            _mm_storeu_ps(t, sum);
            for (int s = 0; s < S; s++) c[s] += t[s];
        }
    }
}

// The same for 8 columns at once (R <= 6): each row's operand loaded once for twice the products, so that the
// loads of A and B from the cache keep up with the multiply-adds; each group of 4 columns summed as above.
GEMM512DQ_K void nt_block16x8(int R, int K, const float *A, int lda, const float *B, int ldb, float *C,
                              int ldc) {
    __m512 acc[6][4];
    _Pragma("GCC unroll 6") for (int r = 0; r < R; r++) for (int q = 0; q < 4; q++) acc[r][q] =
        _mm512_setzero_ps();
    int k = 0;
    for (; k + 8 <= K; k += 8) {
        __m512 bq[4];
        _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++) bq[q] =
            pair256(_mm256_loadu_ps(B + (size_t)(2 * q) * ldb + k),
                    _mm256_loadu_ps(B + (size_t)(2 * q + 1) * ldb + k));
        _Pragma("GCC unroll 6") for (int r = 0; r < R; r++) {
            __m512 a = _mm512_broadcast_f32x8(_mm256_loadu_ps(A + (size_t)r * lda + k));
            _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++) acc[r][q] =
                _mm512_fmadd_ps(a, bq[q], acc[r][q]);
        }
    }
    if (k < K) { // both operands masked: the lanes past K may hold anything
        __m256i mask = lanes_below(K - k);
        __m512 bq[4];
        _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++) bq[q] =
            pair256(_mm256_maskload_ps(B + (size_t)(2 * q) * ldb + k, mask),
                    _mm256_maskload_ps(B + (size_t)(2 * q + 1) * ldb + k, mask));
        _Pragma("GCC unroll 6") for (int r = 0; r < R; r++) {
            __m512 a = _mm512_broadcast_f32x8(_mm256_maskload_ps(A + (size_t)r * lda + k, mask));
            _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++) acc[r][q] =
                _mm512_fmadd_ps(a, bq[q], acc[r][q]);
        }
    }
    _Pragma("GCC unroll 6") for (int r = 0; r < R; r++) for (int h = 0; h < 2; h++) {
        float *c = C + (size_t)r * ldc + 4 * h;
        __m512 p = acc[r][2 * h], q = acc[r][2 * h + 1];
        __m128 sum = hsum4(_mm512_castps512_ps256(p), _mm512_extractf32x8_ps(p, 1), _mm512_castps512_ps256(q),
                           _mm512_extractf32x8_ps(q, 1));
        _mm_storeu_ps(c, _mm_add_ps(_mm_loadu_ps(c), sum));
    }
}

#define NN_NT16x8                                                                                            \
    switch (R) {                                                                                             \
    case 6: nt_block16x8(6, K, a, lda, b, ldb, c, ldc); break;                                               \
    case 5: nt_block16x8(5, K, a, lda, b, ldb, c, ldc); break;                                               \
    case 4: nt_block16x8(4, K, a, lda, b, ldb, c, ldc); break;                                               \
    case 3: nt_block16x8(3, K, a, lda, b, ldb, c, ldc); break;                                               \
    case 2: nt_block16x8(2, K, a, lda, b, ldb, c, ldc); break;                                               \
    default: nt_block16x8(1, K, a, lda, b, ldb, c, ldc);                                                     \
    }

#define NN_NT16(S)                                                                                           \
    switch (R) {                                                                                             \
    case 6: nt_block16(6, S, K, a, lda, b, ldb, c, ldc); break;                                              \
    case 5: nt_block16(5, S, K, a, lda, b, ldb, c, ldc); break;                                              \
    case 4: nt_block16(4, S, K, a, lda, b, ldb, c, ldc); break;                                              \
    case 3: nt_block16(3, S, K, a, lda, b, ldb, c, ldc); break;                                              \
    case 2: nt_block16(2, S, K, a, lda, b, ldb, c, ldc); break;                                              \
    default: nt_block16(1, S, K, a, lda, b, ldb, c, ldc);                                                    \
    }

__attribute__((target("avx2,fma,avx512f,avx512dq"))) static void
gemm_nt_acc_avx512(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc) {
    int j = 0;
    for (; j + 8 <= N; j += 8) // 8 columns at a time, the rest by 4
        for (int i = 0; i < M; i += 6) {
            int R = M - i < 6 ? M - i : 6;
            const float *a = A + (size_t)i * lda, *b = B + (size_t)j * ldb;
            float *c = C + (size_t)i * ldc + j;
            NN_NT16x8
        }
    for (; j < N; j += 4) {
        int S = N - j < 4 ? N - j : 4;
        for (int i = 0; i < M; i += 6) {
            int R = M - i < 6 ? M - i : 6;
            const float *a = A + (size_t)i * lda, *b = B + (size_t)j * ldb;
            float *c = C + (size_t)i * ldc + j;
            if (S == 4) NN_NT16(4) else NN_NT16(S)
        }
    }
}


// C += A B^T: B's panels of up to 32 rows transposed into P (K in blocks of NT_KC), then the C = A B
// kernels with their block added to C: every element of C gets the sum of each block of K in one chain
// of fused multiply-adds (k in order), then added to C — the same on either kernel.
#define NT_KC 256
GEMM_K void tr8x8(const float *s, int lds, float *d, int ldd) {
    __m256 r[8], t[8], u[8];
    _Pragma("GCC unroll 8") for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(s + (size_t)i * lds);
    _Pragma("GCC unroll 4") for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]), t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    _Pragma("GCC unroll 2") for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44), u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
        u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    _Pragma("GCC unroll 4") for (int i = 0; i < 4; i++) {
        _mm256_storeu_ps(d + (size_t)i * ldd, _mm256_permute2f128_ps(u[i], u[i + 4], 0x20));
        _mm256_storeu_ps(d + (size_t)(i + 4) * ldd, _mm256_permute2f128_ps(u[i], u[i + 4], 0x31));
    }
}

// P[k][c] = B[c][k] for c < nc, k < kc (P's rows 32 floats apart)
GEMM_F static void pack_bt(const float *B, int ldb, int nc, int kc, float *P) {
    int c8 = nc / 8 * 8, k8 = kc / 8 * 8;
    for (int c = 0; c < c8; c += 8)
        for (int k = 0; k < k8; k += 8) tr8x8(B + (size_t)c * ldb + k, ldb, P + (size_t)k * 32 + c, 32);
    for (int c = 0; c < nc; c++)
        for (int k = c < c8 ? k8 : 0; k < kc; k++) P[(size_t)k * 32 + c] = B[(size_t)c * ldb + k];
}

static void gemm_nt_acc_packed(int level, int M, int N, int K, const float *A, int lda, const float *B,
                               int ldb, float *C, int ldc) {
    float P[NT_KC * 32] __attribute__((aligned(64)));
    for (int j = 0; j < N; j += 32) {
        int nc = N - j < 32 ? N - j : 32;
        for (int k0 = 0; k0 < K; k0 += NT_KC) {
            int kc = K - k0 < NT_KC ? K - k0 : NT_KC;
            pack_bt(B + (size_t)j * ldb + k0, ldb, nc, kc, P);
            if (level == 2) gemm_nn_avx512(0, M, nc, kc, A + k0, lda, P, 32, NULL, C + j, ldc, 1);
            else gemm_nn_fma(0, M, nc, kc, A + k0, lda, P, 32, NULL, C + j, ldc, 1);
        }
    }
}

// 0 no AVX2 + FMA, 1 AVX2 + FMA, 2 also AVX-512F and DQ
static int cpu_level(void) {
    static int known = -1; // a benign race: every thread computes the same answer
    if (known < 0) {
        __builtin_cpu_init();
        int fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
        int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
#ifdef NN_MAX_ISA_AVX2 // (make bench: an AVX2 machine's kernels on any CPU)
        avx512 = 0;
#endif
        known = fma ? 1 + avx512 : 0;
    }
    return known;
}
#endif

// C's tiles for the threads: fixed sizes, whatever the thread count
#define SG_TILE 256
void nn_sgemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
              int ldb, float beta, float *C, int ldc) {
    if ((double)M * N * K < NN_GEMM_PAR_MIN) {
#ifdef _OPENMP
        // OpenBLAS built for OpenMP takes its thread count from omp_get_max_threads() at each call
        int prev = omp_get_max_threads();
        omp_set_num_threads(1);
#endif
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K,
                    alpha, A, lda, B, ldb, beta, C, ldc);
#ifdef _OPENMP
        omp_set_num_threads(prev);
#endif
        return;
    }
    // OpenBLAS's own threads split C by the thread count, and some of its kernels (Haswell and Zen:
    // AMD machines) round the parts at the split's edges differently: the same product on 1 and 2
    // threads differed in the last bit. Fixed tiles, each one single-threaded call inside the team, give
    // every thread count the same bits.
    int tm = (M + SG_TILE - 1) / SG_TILE, tn = (N + SG_TILE - 1) / SG_TILE;
#pragma omp parallel for schedule(static)
    for (int t = 0; t < tm * tn; t++) {
        int i = t / tn * SG_TILE, j = t % tn * SG_TILE;
        int m = M - i < SG_TILE ? M - i : SG_TILE, n = N - j < SG_TILE ? N - j : SG_TILE;
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, K,
                    alpha, ta ? A + i : A + (size_t)i * lda, lda, tb ? B + (size_t)j * ldb : B + j, ldb, beta,
                    C + (size_t)i * ldc + j, ldc);
    }
}

// C (+)= op(A) B on the kernel `blas` asks for on this CPU (nn/gemm.h)
static void gemm_nn_any(int blas, int ta, int M, int N, int K, const float *A, int lda, const float *B,
                        int ldb, float *C, int ldc, int add) {
    if (M <= 0 || N <= 0 || (add && K <= 0)) return;
#ifdef NN_GEMM_X86
    int level = blas == NN_GEMM_BLAS ? 0 : cpu_level();
    if (blas == NN_GEMM_AVX2 && level > 1) level = 1;
    if (level == 2) return gemm_nn_avx512(ta, M, N, K, A, lda, B, ldb, NULL, C, ldc, add);
    if (level == 1) return gemm_nn_fma(ta, M, N, K, A, lda, B, ldb, NULL, C, ldc, add);
#endif
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, A, lda, B, ldb,
                add ? 1.0f : 0.0f, C, ldc);
}

void nn_gemm_small(int blas, int ta, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                   float *C, int ldc) {
    gemm_nn_any(blas, ta, M, N, K, A, lda, B, ldb, C, ldc, 0);
}

void nn_gemm_small_add(int blas, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                       float *C, int ldc) {
    gemm_nn_any(blas, 0, M, N, K, A, lda, B, ldb, C, ldc, 1);
}

void nn_gemm_small_ind(int blas, int M, int N, int K, const float *A, int lda, const float *const *Bk,
                       float *scratch, int lds, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
#ifdef NN_GEMM_X86
    int level = blas == NN_GEMM_BLAS ? 0 : cpu_level();
    if (blas == NN_GEMM_AVX2 && level > 1) level = 1;
    if (level == 2) return gemm_nn_avx512(0, M, N, K, A, lda, NULL, 0, Bk, C, ldc, 0);
    if (level == 1) return gemm_nn_fma(0, M, N, K, A, lda, NULL, 0, Bk, C, ldc, 0);
#endif
    for (int k = 0; k < K; k++) memcpy(scratch + (size_t)k * lds, Bk[k], sizeof(float) * (size_t)N);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, A, lda, scratch, lds, 0.0f, C, ldc);
}

int nn_gemm_ind_gathers(int blas) { return nn_gemm_kernel(blas)[0] == 'c'; }
int nn_gemm_wide(int blas) { return !strcmp(nn_gemm_kernel(blas), "AVX-512"); }

const char *nn_gemm_kernel(int blas) {
#ifdef NN_GEMM_X86
    int level = blas == NN_GEMM_BLAS ? 0 : cpu_level();
    if (blas == NN_GEMM_AVX2 && level > 1) level = 1;
    return level == 2 ? "AVX-512" : level == 1 ? "AVX2+FMA" : "cblas_sgemm";
#else
    (void)blas;
    return "cblas_sgemm";
#endif
}

void nn_gemm_small_nt_acc(int blas, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                          float *C, int ldc) {
    if (M <= 0 || N <= 0 || K <= 0) return;
#ifdef NN_GEMM_X86
    int level = blas == NN_GEMM_BLAS ? 0 : cpu_level();
    if (blas == NN_GEMM_AVX2 && level > 1) level = 1;
    // short sums by the C = A B kernels on B transposed (its transpose costs N x K moves: worth it where K is
    // at most 8 M), long ones by dot products along K (their lane sums cost M x N)
    if (level && K <= 8 * M) return gemm_nt_acc_packed(level, M, N, K, A, lda, B, ldb, C, ldc);
    if (level == 2) return gemm_nt_acc_avx512(M, N, K, A, lda, B, ldb, C, ldc);
    if (level == 1) return gemm_nt_acc_fma(M, N, K, A, lda, B, ldb, C, ldc);
#endif
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, A, lda, B, ldb, 1.0f, C, ldc);
}
