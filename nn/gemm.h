// Small single-threaded row-major matrix products for the Winograd
// convolutions (nn/ops_winograd.c): dozens of products per chunk of a few
// thousand values each, too small for a general BLAS to amortise its packing
// of both operands and its separate pass that zeroes C.
#ifndef NN_GEMM_H
#define NN_GEMM_H

// C (M x N, ldc) = op(A) (M x K) * B (K x N, ldb), overwriting C.
//   ta = 0: A is M x K (lda);  ta = 1: A is K x M (lda), op(A) = A^T.
// AVX2+FMA register-blocked kernel where the CPU has it (B and C are used in
// place, no packing); cblas_sgemm otherwise, or always when blas = 1 (tests
// and benchmarks: ctx->tune.gemm_blas). Deterministic for a given CPU.
void nn_gemm_small(int blas, int ta, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                   float *C, int ldc);

// C (M x N, ldc) += A (M x K, lda) * B^T, B being N x K (ldb): the weight
// gradient's form, both operands contiguous along K.
void nn_gemm_small_nt_acc(int blas, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                          float *C, int ldc);

// cblas_sgemm (row-major) that runs on one thread below NN_GEMM_PAR_MIN multiply-adds: OpenBLAS would wake
// its team for products that take microseconds (a 64 x 128 x 128 layer), and on cores shared with other
// jobs each such product waits for the slowest thread. The threshold is measured by make bench (shared).
#define NN_GEMM_PAR_MIN (4.0 * 1024 * 1024)
void nn_sgemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
              int ldb, float beta, float *C, int ldc);

#endif
